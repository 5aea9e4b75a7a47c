/* Client of a job's rendezvous socket (WSLQ_RENDEZVOUS, served by the local worker; protocol
 * in worker/README.md): put, get and wait on the job's key/value store. Used by `wslq kv`
 * and by wslq-train's bootstrap. Blocking calls; each opens its own connection. */
#ifndef WSLQ_RDVC_H
#define WSLQ_RDVC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/limits.h"

/* Store 'len' bytes under 'key'. 0, or -1 with *err (the scheduler's refusal text, e.g. a
 * limit, with code WQ_ELIMIT/WQ_EIO/...). */
int rdvc_put(const char *path, const char *key, const void *value, size_t len, wq_error_t *err);

/* Read 'key' into buf (cap bytes). timeout_ms < 0: GET (absent = WQ_ENOENT at once);
 * otherwise WAIT up to timeout_ms (absent at the end = WQ_ETIMEDOUT). *len gets the size;
 * a value larger than cap fails with WQ_ELIMIT. */
int rdvc_get(const char *path,
             const char *key,
             int timeout_ms,
             void *buf,
             size_t cap,
             size_t *len,
             wq_error_t *err);

#endif
