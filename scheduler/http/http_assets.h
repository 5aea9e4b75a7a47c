/* The dashboard's files (scheduler/http/web/), compiled into the binary by web/embed.cmake so the
 * page works offline and cannot drift from the server that serves it. */
#ifndef WSLQ_HTTP_ASSETS_H
#define WSLQ_HTTP_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;          /* file name, as in /assets/<name> ("index.html" for "/") */
    const char *type;          /* Content-Type */
    const unsigned char *data; /* len bytes (plus a NUL not counted) */
    size_t len;
    const char *etag; /* quoted, from the content's SHA-1 */
} http_asset_t;

extern const http_asset_t http_assets[];
extern const size_t http_n_assets;

#endif
