/* CURVE keys and the files and codes that carry them (ZeroMQ's CURVE and libsodium do the
 * cryptography; nothing here is crypto of our own).
 *
 * A credentials file holds the keys of one peer, a line each, mode 0600:
 *     scheduler tcp://10.0.0.5:7420     where the scheduler is (clients and workers)
 *     server    <Z85 public key>        the scheduler's key, pinned
 *     public    <Z85 public key>        ours
 *     secret    <Z85 secret key>        ours
 *     name      alice                   who the scheduler enrolled us as
 * The scheduler's own file (server.key in its state directory) has public and secret only.
 *
 * An enrolment or join code is "wq1:<server key, hex>:<secret, hex>@<scheduler address>": all a
 * new user or PC needs to enrol its new key with the right scheduler, and to know it is the
 * right one. */
#ifndef WSLQ_PROTO_KEYS_H
#define WSLQ_PROTO_KEYS_H

#include <stddef.h>

#include "common/err.h"

#define KEYS_Z85_LEN    40 /* a CURVE key in Z85 */
#define KEYS_HEX_LEN    64 /* the same 32 bytes in hex */
#define KEYS_SECRET_HEX 32 /* an enrolment code's secret: 128 bits */

typedef struct keys_creds {
    char scheduler[256];            /* "" when the file does not say */
    char server[KEYS_Z85_LEN + 1];  /* the scheduler's public key, "" unknown */
    char public_[KEYS_Z85_LEN + 1]; /* ours */
    char secret[KEYS_Z85_LEN + 1];  /* ours */
    char name[129];                 /* who the scheduler enrolled us as (\"alice\", \"pc7\") */
} keys_creds_t;

/* A new key pair (public_ and secret; the other fields left as they are). */
int keys_generate(keys_creds_t *c, wq_error_t *err);

/* Write c to path atomically, mode 0600 (fields that are "" are left out). */
int keys_save(const char *path, const keys_creds_t *c, wq_error_t *err);

/* Read path. Refuses a file others may read ("chmod 600 ..."), a bad line, or a key that is not
 * 40 Z85 characters. Fields not in the file are "". */
int keys_load(const char *path, keys_creds_t *c, wq_error_t *err);

/* Z85 key <-> hex (for codes, which travel through shells and chat windows). */
int keys_z85_to_hex(const char *z85, char hex[KEYS_HEX_LEN + 1]);
int keys_hex_to_z85(const char *hex, char z85[KEYS_Z85_LEN + 1]);

/* A code: see above. */
void keys_code_format(
    char *buf, size_t size, const char *server_z85, const char *secret_hex, const char *scheduler);
int keys_code_parse(const char *code,
                    char server_z85[KEYS_Z85_LEN + 1],
                    char secret_hex[KEYS_SECRET_HEX + 1],
                    char *scheduler,
                    size_t scheduler_size,
                    wq_error_t *err);

/* Make sock a CURVE client of the scheduler whose key c->server is, with c's key pair. */
int keys_client_socket(void *sock, const keys_creds_t *c, wq_error_t *err);

/* Watch sock's CURVE handshakes, so a refusal is known at once rather than as a timeout:
 * returns a PAIR socket (in zctx) that receives the failures, or NULL. Close it before sock. */
void *keys_watch(void *zctx, void *sock);

enum {
    KEYS_HS_NONE = 0,     /* nothing failed (yet) */
    KEYS_HS_REFUSED,      /* the server refused our key: unknown to it, or revoked */
    KEYS_HS_WRONG_SERVER, /* not the server these credentials trust, or it has no CURVE */
    KEYS_HS_FAILED,       /* some other handshake failure */
};

/* The next handshake failure keys_watch saw, without waiting. NULL-safe. */
int keys_handshake_event(void *mon);

/* A random secret as hex (size > 2 * bytes), from the kernel (getrandom). */
int keys_random_hex(char *buf, size_t size, size_t bytes, wq_error_t *err);

/* BLAKE2b-256 of s as hex (libsodium): how codes and tokens are kept, never in clear. */
void keys_hash_hex(const char *s, char out[KEYS_HEX_LEN + 1]);

#endif
