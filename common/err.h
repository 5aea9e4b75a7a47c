/* Errors: a code programs can test plus one line of text a person can act on.
 * Functions return 0/-1 or object/NULL and fill an optional wq_error_t. */
#ifndef WSLQ_ERR_H
#define WSLQ_ERR_H

enum wq_errc {
    WQ_OK = 0,
    WQ_EINVAL,    /* bad argument or malformed request */
    WQ_ENOENT,    /* no such job / node / key */
    WQ_EBUSY,     /* resource in use; retry later */
    WQ_EPROTO,    /* peer broke the protocol */
    WQ_EIO,       /* disk or database failure */
    WQ_ETIMEDOUT, /* a deadline passed */
    WQ_ESYS,      /* see sys_errno */
    WQ_ELIMIT,    /* a size or count limit was exceeded */
    WQ_EPERM,     /* not allowed */
};

typedef struct {
    enum wq_errc code; /* WQ_OK when unset */
    int sys_errno;     /* errno when code == WQ_ESYS, else 0 */
    char text[256];    /* one line for humans: logged, and sent back to the CLI */
} wq_error_t;

/* Fill *err (if non-NULL) and return -1:
 *     return wq_fail(err, WQ_ENOENT, "job %" PRIu64 " not found", id); */
int wq_fail(wq_error_t *err, enum wq_errc code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* As wq_fail with code WQ_ESYS, appending ": strerror(errno)". Preserves errno. */
int wq_fail_errno(wq_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short stable name of a code ("EINVAL"), for JSON and logs. */
const char *wq_errc_name(enum wq_errc code);

/* Abort with file, line and expression: for our own invariants only, never for input. */
#define WQ_ASSERT(cond)                                \
    do {                                               \
        if (!(cond))                                   \
            wq_assert_fail(#cond, __FILE__, __LINE__); \
    } while (0)
_Noreturn void wq_assert_fail(const char *expr, const char *file, int line);

#endif
