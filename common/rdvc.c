/* Rendezvous socket client; see rdvc.h. */
#include "common/rdvc.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int
rdv_connect(const char *path, wq_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (path == NULL || path[0] == '\0')
        return wq_fail(err, WQ_EINVAL, "not inside a wslq job (WSLQ_RENDEZVOUS is not set)");
    if (strlen(path) >= sizeof sa.sun_path)
        return wq_fail(err, WQ_EINVAL, "rendezvous socket path is too long");
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wq_fail_errno(err, "socket");
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        wq_fail_errno(err, "cannot reach the job's rendezvous socket %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

static int
write_full(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t) w;
    }
    return 0;
}

/* Read exactly len bytes, waiting at most until the reply deadline. */
static int
read_full(int fd, void *buf, size_t len, int timeout_ms)
{
    char *p = buf;
    while (len > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int n = poll(&pfd, 1, timeout_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        ssize_t r = read(fd, p, len);
        if (r <= 0)
            return -1;
        p += r;
        len -= (size_t) r;
    }
    return 0;
}

static int
read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
    for (size_t n = 0; n + 1 < cap; n++) {
        if (read_full(fd, buf + n, 1, timeout_ms) < 0)
            return -1;
        if (buf[n] == '\n') {
            buf[n] = '\0';
            return 0;
        }
    }
    return -1;
}

static int
check_key(const char *key, wq_error_t *err)
{
    size_t n = key ? strlen(key) : 0;
    if (n == 0 || n > WIRE_MAX_KV_KEY || strpbrk(key, " \n\r\t") != NULL)
        return wq_fail(err, WQ_EINVAL, "key must be 1..%d bytes without spaces", WIRE_MAX_KV_KEY);
    return 0;
}

/* Turn an "ERR <text>" answer into *err. */
static int
answer_error(const char *line, wq_error_t *err)
{
    if (strncmp(line, "ERR ", 4) != 0)
        return wq_fail(err, WQ_EPROTO, "unexpected answer from the rendezvous socket");
    const char *text = line + 4;
    enum wq_errc code = WQ_EIO;
    if (strstr(text, "timed out") || strstr(text, "not set in time"))
        code = WQ_ETIMEDOUT;
    else if (strstr(text, "limit") || strstr(text, "exceed"))
        code = WQ_ELIMIT;
    return wq_fail(err, code, "%s", text);
}

/* Replies come after the scheduler answers: allow its relay time on top of any wait. */
#define REPLY_SLACK_MS 15000

int
rdvc_put(const char *path, const char *key, const void *value, size_t len, wq_error_t *err)
{
    if (check_key(key, err) < 0)
        return -1;
    if (len > WIRE_MAX_KV_VALUE)
        return wq_fail(err, WQ_ELIMIT, "value is larger than %u bytes", WIRE_MAX_KV_VALUE);
    int fd = rdv_connect(path, err);
    if (fd < 0)
        return -1;
    char line[WIRE_MAX_KV_KEY + 64];
    snprintf(line, sizeof line, "PUT %s %zu\n", key, len);
    int rc;
    if (write_full(fd, line, strlen(line)) < 0 || (len && write_full(fd, value, len) < 0) ||
        read_line(fd, line, sizeof line, REPLY_SLACK_MS) < 0)
        rc = wq_fail(err, WQ_EIO, "the rendezvous socket closed without an answer");
    else
        rc = strcmp(line, "OK") == 0 ? 0 : answer_error(line, err);
    close(fd);
    return rc;
}

int
rdvc_get(const char *path,
         const char *key,
         int timeout_ms,
         void *buf,
         size_t cap,
         size_t *len,
         wq_error_t *err)
{
    if (check_key(key, err) < 0)
        return -1;
    int fd = rdv_connect(path, err);
    if (fd < 0)
        return -1;
    char line[WIRE_MAX_KV_KEY + 64];
    if (timeout_ms < 0)
        snprintf(line, sizeof line, "GET %s\n", key);
    else
        snprintf(line, sizeof line, "WAIT %s %d\n", key, timeout_ms);
    int wait = (timeout_ms > 0 ? timeout_ms : 0) + REPLY_SLACK_MS;
    int rc;
    if (write_full(fd, line, strlen(line)) < 0 || read_line(fd, line, sizeof line, wait) < 0) {
        rc = wq_fail(err, WQ_EIO, "the rendezvous socket closed without an answer");
    } else if (strcmp(line, "NONE") == 0) {
        rc = wq_fail(err, WQ_ENOENT, "key '%.64s' is not set", key);
    } else if (strncmp(line, "VAL ", 4) == 0) {
        char *end = NULL;
        unsigned long n = strtoul(line + 4, &end, 10);
        if (end == line + 4 || *end != '\0' || n > WIRE_MAX_KV_VALUE)
            rc = wq_fail(err, WQ_EPROTO, "bad value length from the rendezvous socket");
        else if (n > cap)
            rc = wq_fail(err, WQ_ELIMIT, "value of %lu bytes does not fit in %zu", n, cap);
        else if (read_full(fd, buf, n, REPLY_SLACK_MS) < 0)
            rc = wq_fail(err, WQ_EIO, "short value from the rendezvous socket");
        else {
            *len = n;
            rc = 0;
        }
    } else {
        rc = answer_error(line, err);
    }
    close(fd);
    return rc;
}
