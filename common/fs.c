/* File system helpers; see fs.h. */
#include "common/fs.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

int
wq_mkdir_p(const char *path, mode_t mode, wq_error_t *err)
{
    if (path == NULL || path[0] == '\0')
        return wq_fail(err, WQ_EINVAL, "cannot create a directory with an empty name");
    size_t len = strlen(path);
    if (len >= PATH_MAX) {
        /* never create a truncated path: fail as the kernel would */
        errno = ENAMETOOLONG;
        return wq_fail_errno(err, "cannot create %.64s...", path);
    }
    char buf[PATH_MAX];
    memcpy(buf, path, len + 1);
    /* Each prefix that ends before a '/', then the whole path ("/" itself: only the latter). */
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
            return wq_fail_errno(err, "cannot create %s", buf);
        *p = c;
        if (c == '\0')
            break;
    }
    /* EEXIST also answers for a file of that name: the caller wants a directory. */
    struct stat st;
    if (stat(path, &st) < 0)
        return wq_fail_errno(err, "cannot create %s", path);
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return wq_fail_errno(err, "cannot create %s", path);
    }
    return 0;
}

long
wq_raise_fd_limit(void)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) < 0)
        return -1;
    if (r.rlim_cur < r.rlim_max) {
        struct rlimit want = {r.rlim_max, r.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            r.rlim_cur = r.rlim_max;
    }
    return r.rlim_cur == RLIM_INFINITY ? LONG_MAX : (long) r.rlim_cur;
}
