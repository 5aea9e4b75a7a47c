/* Error filling helpers; see err.h. */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
wq_fail(wq_error_t *err, enum wq_errc code, const char *fmt, ...)
{
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    err->code = code;
    err->sys_errno = 0;
    return -1;
}

int
wq_fail_errno(wq_error_t *err, const char *fmt, ...)
{
    int saved = errno;
    if (err == NULL)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t) n < sizeof err->text)
        snprintf(err->text + n, sizeof err->text - (size_t) n, ": %s", strerror(saved));
    err->code = WQ_ESYS;
    err->sys_errno = saved;
    errno = saved;
    return -1;
}

const char *
wq_errc_name(enum wq_errc code)
{
    switch (code) {
    case WQ_OK:
        return "OK";
    case WQ_EINVAL:
        return "EINVAL";
    case WQ_ENOENT:
        return "ENOENT";
    case WQ_EBUSY:
        return "EBUSY";
    case WQ_EPROTO:
        return "EPROTO";
    case WQ_EIO:
        return "EIO";
    case WQ_ETIMEDOUT:
        return "ETIMEDOUT";
    case WQ_ESYS:
        return "ESYS";
    case WQ_ELIMIT:
        return "ELIMIT";
    case WQ_EPERM:
        return "EPERM";
    }
    return "EUNKNOWN";
}

void
wq_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "wslq: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
    abort();
}
