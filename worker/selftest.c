/* The inbound connection self-test (proto/README.md, "Inbound self-test"): a TCP listener on
 * probe_port that answers one line, and the outbound connects this worker makes, as the
 * tester, when the scheduler sends a ProbeRequest. Nothing here blocks: sockets are
 * non-blocking and polled by the event loop. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "worker/worker_int.h"

#define SELFTEST_IN_MS      5000 /* an inbound test connection must send its line by then */
#define SELFTEST_TIMEOUT_MS 3000 /* ProbeRequest.timeout_ms when 0 */

void
selftest_listen(worker_t *w)
{
    /* Never fatal: a node that cannot listen reports port 0 and the scheduler marks its test
     * failed. */
    selftest_t *st = &w->selftest;
    st->fd = -1;
    st->port = 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_warn("no inbound self-test listener err=\"%s\"", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons((uint16_t) w->cfg.probe_port);
    socklen_t alen = sizeof a;
    if (bind(fd, (struct sockaddr *) &a, sizeof a) < 0 || listen(fd, 16) < 0 ||
        getsockname(fd, (struct sockaddr *) &a, &alen) < 0) {
        log_warn("no inbound self-test listener port=%d err=\"%s\"", w->cfg.probe_port,
                 strerror(errno));
        close(fd);
        return;
    }
    st->fd = fd;
    st->port = ntohs(a.sin_port);
    log_info("inbound self-test listening port=%u", st->port);
}

static selftest_conn_t *
free_slot(worker_t *w)
{
    for (int i = 0; i < WORKER_SELFTEST_MAX; i++)
        if (w->selftest.conns[i].fd < 0)
            return &w->selftest.conns[i];
    return NULL;
}

static void
conn_close(selftest_conn_t *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* The end of an outbound test: ProbeResult to the scheduler, then the connection closes. */
static void
finish(worker_t *w, selftest_conn_t *c, int ok, const char *error, int64_t now)
{
    char e[120];
    snprintf(e, sizeof e, "%s", error ? error : "");
    for (char *q = e; *q; q++)
        if ((unsigned char) *q < 0x20 || *q == 0x7f)
            *q = '?';
    uint32_t elapsed_ms = (uint32_t) (now - c->start);
    outbox_probe_result(w, c->target, c->token, ok, e, elapsed_ms);
    log_info("inbound self-test of a peer target=%s ok=%d elapsed_ms=%u err=\"%s\"", c->target, ok,
             elapsed_ms, e);
    conn_close(c);
}

void
selftest_connect(worker_t *w, const Wslq__ProbeRequest *r, int64_t now)
{
    selftest_conn_t tmp, *c = free_slot(w);
    if (c == NULL) {
        memset(&tmp, 0, sizeof tmp);
        c = &tmp; /* answer "busy" through a slot that is not kept */
    }
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->outbound = 1;
    c->start = now;
    c->deadline = now + (r->timeout_ms ? r->timeout_ms : SELFTEST_TIMEOUT_MS);
    snprintf(c->target, sizeof c->target, "%s", r->target_node);
    snprintf(c->token, sizeof c->token, "%s", r->token);
    if (c == &tmp) {
        finish(w, c, 0, "the testing worker has too many tests running", now);
        return;
    }
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t) r->port);
    if (inet_pton(AF_INET, r->ip, &a.sin_addr) != 1) {
        finish(w, c, 0, "address is not an IPv4 address", now);
        return;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        finish(w, c, 0, strerror(errno), now);
        return;
    }
    if (connect(c->fd, (struct sockaddr *) &a, sizeof a) < 0 && errno != EINPROGRESS) {
        finish(w, c, 0, strerror(errno), now);
        return;
    }
    log_flag(WORKER, "inbound self-test connecting target=%s addr=%s:%u", c->target, r->ip,
             r->port);
}

/* Accept waiting connections on the probe port (never blocks). */
static void
accept_all(worker_t *w, int64_t now)
{
    for (int n = 0; n < WORKER_SELFTEST_MAX; n++) {
        int fd = accept(w->selftest.fd, NULL, NULL);
        if (fd < 0)
            return;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        selftest_conn_t *c = free_slot(w);
        if (c == NULL) {
            close(fd); /* too many at once: the tester sees a reset and reports it */
            continue;
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        c->start = now;
        c->deadline = now + SELFTEST_IN_MS;
    }
}

/* Read what arrived; 1 when a whole line is in c->buf (newline removed), 0 for more,
 * -1 on EOF or error (errno or 0 for EOF). */
static int
read_line(selftest_conn_t *c)
{
    for (;;) {
        if (c->len + 1 >= sizeof c->buf)
            return 1; /* over-long: judge what we have */
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - 1 - c->len);
        if (n == 0) {
            errno = 0;
            return -1;
        }
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
        c->len += (size_t) n;
        c->buf[c->len] = '\0';
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl != NULL) {
            *nl = '\0';
            return 1;
        }
    }
}

static void
conn_io(worker_t *w, selftest_conn_t *c, short revents, int64_t now)
{
    if (!c->outbound) {
        int r = read_line(c);
        if (r == 1) {
            char ans[WIRE_MAX_NAME + 8];
            int n = snprintf(ans, sizeof ans, "OK %s\n", w->cfg.name);
            ssize_t wr = send(c->fd, ans, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT);
            (void) wr; /* a few bytes into an empty socket buffer */
            log_flag(WORKER, "inbound self-test answered");
        }
        if (r != 0)
            conn_close(c);
        return;
    }
    if (!c->connected) {
        if (!(revents & (ZMQ_POLLOUT | ZMQ_POLLERR)))
            return;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr != 0) {
            finish(w, c, 0, strerror(soerr), now);
            return;
        }
        char line[96];
        int n = snprintf(line, sizeof line, "%s\n", c->token);
        if (send(c->fd, line, (size_t) n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
            finish(w, c, 0, "could not send the token", now);
            return;
        }
        c->connected = 1;
        return;
    }
    int r = read_line(c);
    if (r == 0)
        return;
    if (r < 0) {
        finish(w, c, 0, errno ? strerror(errno) : "connection closed without an answer", now);
        return;
    }
    char want[WIRE_MAX_NAME + 8];
    snprintf(want, sizeof want, "OK %s", c->target);
    size_t l = strlen(c->buf);
    if (l > 0 && c->buf[l - 1] == '\r')
        c->buf[l - 1] = '\0';
    if (strcmp(c->buf, want) == 0) {
        finish(w, c, 1, "", now);
    } else {
        char e[100];
        snprintf(e, sizeof e, "wrong answer '%.40s' (another program on the port?)", c->buf);
        finish(w, c, 0, e, now);
    }
}

void
selftest_tick(worker_t *w, int64_t now)
{
    for (int i = 0; i < WORKER_SELFTEST_MAX; i++) {
        selftest_conn_t *c = &w->selftest.conns[i];
        if (c->fd < 0 || now < c->deadline)
            continue;
        if (c->outbound)
            finish(w, c, 0, c->connected ? "no answer in time" : "connection timed out", now);
        else
            conn_close(c);
    }
}

int64_t
selftest_next_deadline(const worker_t *w, int64_t next)
{
    for (int i = 0; i < WORKER_SELFTEST_MAX; i++)
        if (w->selftest.conns[i].fd >= 0 && w->selftest.conns[i].deadline < next)
            next = w->selftest.conns[i].deadline;
    return next;
}

int
selftest_pollitems(worker_t *w, zmq_pollitem_t *items, int *map)
{
    int n = 0;
    if (w->selftest.fd >= 0) {
        items[n] = (zmq_pollitem_t){NULL, w->selftest.fd, ZMQ_POLLIN, 0};
        map[n++] = -1;
    }
    for (int i = 0; i < WORKER_SELFTEST_MAX; i++) {
        selftest_conn_t *c = &w->selftest.conns[i];
        if (c->fd < 0)
            continue;
        short ev = c->outbound && !c->connected ? ZMQ_POLLOUT : ZMQ_POLLIN;
        items[n] = (zmq_pollitem_t){NULL, c->fd, ev, 0};
        map[n++] = i;
    }
    return n;
}

void
selftest_handle(worker_t *w, const zmq_pollitem_t *items, const int *map, int n, int64_t now)
{
    for (int k = 0; k < n; k++) {
        if (items[k].revents == 0)
            continue;
        if (map[k] < 0)
            accept_all(w, now);
        else if (w->selftest.conns[map[k]].fd == items[k].fd)
            conn_io(w, &w->selftest.conns[map[k]], items[k].revents, now);
    }
}

void
selftest_close(worker_t *w)
{
    for (int i = 0; i < WORKER_SELFTEST_MAX; i++)
        conn_close(&w->selftest.conns[i]);
    if (w->selftest.fd >= 0)
        close(w->selftest.fd);
    w->selftest.fd = -1;
}
