/* The user socket: users on the scheduler host reach the scheduler over a Unix stream socket
 * (--user-socket PATH, mode 0666) without ZeroMQ, CURVE or a credentials file. The kernel
 * vouches for the peer: SO_PEERCRED gives its uid, whose account name (getpwuid_r, once per
 * connection) is the wslq user it acts as (auth_who: the enrolled, unrevoked user of that
 * name, as a job of that user runs as the account of that name). Nothing a user could not do
 * over TCP with their own key becomes possible here.
 *
 * Framing (proto/wire.h): a 4-byte big-endian length, then one encoded Envelope. A
 * connection may carry any number of requests, one after another or several in flight
 * (replies carry their request_id). A bad length, a frame wire_decode refuses, or a frame
 * left incomplete for SCHED_HANDSHAKE_MS (or at the peer's close) counts in
 * stats.bad_frames_total and closes the connection, after an ErrorReply with the reason
 * where the peer can still read one.
 *
 * Everything is non-blocking and driven by sched_turn's poll: a connection has an input
 * buffer (at most one frame) and an output buffer (replies the outbox gave it, written as
 * the peer reads). Replies leave through the outbox like every other (after the turn's
 * COMMIT); one for a connection already closed is dropped. The number of connections is
 * capped with the ROUTER's figures: max_conns in all (both kinds together), and
 * SCHED_MAX_CONNS_PER_ADDR per uid. */
#define _GNU_SOURCE /* accept4, struct ucred */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

#define READ_CHUNK   (64u << 10)
#define OUT_MAX      (4u * (WIRE_MAX_FRAME + WIRE_STREAM_HDR)) /* a peer that does not read */
#define ACCEPT_BURST 256

typedef struct uconn {
    int fd;
    uint64_t serial;
    uint32_t uid;
    char account[WIRE_MAX_NAME + 1]; /* "" when the uid has no account */
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_off;
    int64_t partial_since; /* mono ms a frame began arriving; 0 = none in progress */
    int closing;           /* close once out is written (a bad frame was answered) */
    int dead;              /* closed: freed at the end of usock_events */
} uconn_t;

int
usock_open(sched_t *self, wq_error_t *err)
{
    self->usock_fd = -1;
    const char *path = self->cfg.user_path;
    if (path == NULL || path[0] == '\0' || strcmp(path, "none") == 0)
        return 0;
    if (self->cfg.insecure) {
        log_warn("INSECURE: the user socket %s is off (it needs the enrolled users)", path);
        return 0;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return wq_fail(err, WQ_EINVAL, "user socket path too long (at most %zu bytes): %.200s",
                       sizeof sa.sun_path - 1, path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    snprintf(self->usock_path, sizeof self->usock_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wq_fail(err, WQ_ESYS, "cannot make the user socket: %s", strerror(errno));
    unlink(path); /* a stale one of an earlier run */
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0 || listen(fd, 128) < 0) {
        int e = errno;
        close(fd);
        return wq_fail(err, WQ_ESYS,
                       "cannot open the user socket %.200s: %s (its directory must exist; "
                       "user_socket = none turns it off)",
                       path, strerror(e));
    }
    chmod(path, 0666); /* who may act is decided per connection, by uid */
    self->usock_fd = fd;
    log_info("user socket path=%s (local users by uid)", path);
    return 0;
}

static void
conn_close(sched_t *self, uconn_t *c)
{
    (void) self;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->dead = 1;
}

static void
conn_free(uconn_t *c)
{
    free(c->in);
    free(c->out);
    free(c);
}

void
usock_close(sched_t *self)
{
    for (size_t i = 0; i < self->n_uconns; i++) {
        conn_close(self, self->uconns[i]);
        conn_free(self->uconns[i]);
    }
    free(self->uconns);
    self->uconns = NULL;
    self->n_uconns = 0;
    if (self->usock_fd >= 0) {
        close(self->usock_fd);
        unlink(self->usock_path);
    }
    self->usock_fd = -1;
}

static uconn_t *
conn_of(const sched_t *self, const peer_t *p)
{
    uint64_t serial;
    if (!p->local || p->len != sizeof serial)
        return NULL;
    memcpy(&serial, p->id, sizeof serial);
    for (size_t i = 0; i < self->n_uconns; i++)
        if (self->uconns[i]->serial == serial && !self->uconns[i]->dead)
            return self->uconns[i];
    return NULL;
}

const char *
usock_account(const sched_t *self, const peer_t *p)
{
    const uconn_t *c = conn_of(self, p);
    return c != NULL ? c->account : "";
}

static peer_t
peer_of(const uconn_t *c)
{
    peer_t p = {.local = 1, .uid = c->uid, .len = sizeof c->serial};
    memcpy(p.id, &c->serial, sizeof c->serial);
    return p;
}

static void
bad_frame(sched_t *self, uconn_t *c, const wq_error_t *err, int answer)
{
    self->stats.bad_frames_total++;
    self->stats.version++; /* a counter the dashboard shows */
    int suppressed = wq_ratelimit(&self->bad_rl, 10, 10000);
    if (suppressed >= 0)
        log_warn("bad frame on the user socket uid=%u, connection closed: %s total=%" PRIu64
                 " suppressed=%d",
                 (unsigned) c->uid, err->text, self->stats.bad_frames_total, suppressed);
    c->in_len = 0;
    c->partial_since = 0;
    if (answer) {
        peer_t p = peer_of(c);
        out_error(self, &p, 0, err); /* leaves with the outbox; closed after */
        c->closing = 1;
    } else {
        conn_close(self, c);
    }
}

static void
try_write(sched_t *self, uconn_t *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(self, c); /* the peer went away: what it asked is dropped */
            return;
        }
        c->out_off += (size_t) n;
    }
    c->out_off = c->out_len = 0;
}

void
usock_send(sched_t *self, const peer_t *to, const uint8_t *buf, size_t len)
{
    uconn_t *c = conn_of(self, to);
    if (c == NULL)
        return; /* closed before its reply */
    if (c->out_len - c->out_off + len + WIRE_STREAM_HDR > OUT_MAX) {
        log_flag(SCHED, "user socket uid=%u reads nothing: closed", (unsigned) c->uid);
        conn_close(self, c);
        return;
    }
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    c->out = wq_realloc(c->out, c->out_len + WIRE_STREAM_HDR + len);
    wire_stream_header(c->out + c->out_len, len);
    memcpy(c->out + c->out_len + WIRE_STREAM_HDR, buf, len);
    c->out_len += WIRE_STREAM_HDR + len;
    try_write(self, c);
}

static void
reap(sched_t *self)
{
    size_t k = 0;
    for (size_t i = 0; i < self->n_uconns; i++) {
        if (self->uconns[i]->dead)
            conn_free(self->uconns[i]);
        else
            self->uconns[k++] = self->uconns[i];
    }
    self->n_uconns = k;
}

void
usock_flushed(sched_t *self)
{
    for (size_t i = 0; i < self->n_uconns; i++) {
        uconn_t *c = self->uconns[i];
        if (!c->dead && c->closing && c->out_off >= c->out_len)
            conn_close(self, c);
    }
    reap(self);
}

/* Complete frames in c->in: decode and dispatch each. */
static void
take_frames(sched_t *self, uconn_t *c)
{
    size_t off = 0;
    while (!c->closing && !c->dead && !self->failed) {
        size_t body = 0;
        wq_error_t err = {0};
        int r = wire_stream_frame(c->in + off, c->in_len - off, &body, &err);
        if (r == 0)
            break;
        if (r < 0) {
            bad_frame(self, c, &err, 1);
            return;
        }
        Wslq__Envelope *env = wire_decode(c->in + off + WIRE_STREAM_HDR, body, &err);
        off += WIRE_STREAM_HDR + body;
        if (env == NULL) {
            bad_frame(self, c, &err, 1);
            return;
        }
        peer_t p = peer_of(c);
        dispatch(self, &p, "", env);
        wire_free(&env);
    }
    if (c->dead || c->closing)
        return;
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->in_len == 0)
        c->partial_since = 0;
    else if (off > 0 || c->partial_since == 0)
        c->partial_since = wq_clock_mono_ms();
}

static void
on_readable(sched_t *self, uconn_t *c)
{
    /* at most one frame's worth per turn: the others get their turn too */
    size_t budget = WIRE_MAX_FRAME + WIRE_STREAM_HDR;
    while (budget > 0 && !c->dead && !c->closing) {
        size_t want = c->in_len + READ_CHUNK;
        if (want > WIRE_MAX_FRAME + WIRE_STREAM_HDR)
            want = WIRE_MAX_FRAME + WIRE_STREAM_HDR;
        if (want <= c->in_len) { /* full: take_frames left a whole frame? cannot happen */
            wq_error_t err;
            wq_fail(&err, WQ_ELIMIT, "frame over %u bytes", (unsigned) WIRE_MAX_FRAME);
            bad_frame(self, c, &err, 1);
            return;
        }
        if (want > c->in_cap) {
            c->in_cap = want;
            c->in = wq_realloc(c->in, c->in_cap);
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, want - c->in_len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                conn_close(self, c);
            return;
        }
        if (n == 0) { /* the peer closed */
            if (c->in_len > 0) {
                wq_error_t err;
                wq_fail(&err, WQ_EPROTO, "connection closed in the middle of a frame (%zu bytes)",
                        c->in_len);
                bad_frame(self, c, &err, 0);
            } else {
                conn_close(self, c);
            }
            return;
        }
        c->in_len += (size_t) n;
        budget = (size_t) n < budget ? budget - (size_t) n : 0;
        take_frames(self, c);
    }
}

static void
on_accept(sched_t *self)
{
    for (int i = 0; i < ACCEPT_BURST; i++) {
        int fd = accept4(self->usock_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                log_flag(SCHED, "user socket: no descriptor for a connection");
            return;
        }
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
            close(fd);
            continue;
        }
        size_t same = 0;
        for (size_t k = 0; k < self->n_uconns; k++)
            same += self->uconns[k]->uid == (uint32_t) cred.uid;
        size_t open = self->n_uconns + conns_count(self->conns);
        if (open >= self->max_conns || same >= SCHED_MAX_CONNS_PER_ADDR) {
            close(fd);
            self->stats.conns_refused_total++;
            int sup = wq_ratelimit(&self->conn_rl, 5, 10000);
            if (sup >= 0)
                log_warn("user socket connection refused uid=%u open=%zu from_uid=%zu (limits "
                         "%zu, %d per uid) suppressed=%d",
                         (unsigned) cred.uid, open, same, self->max_conns, SCHED_MAX_CONNS_PER_ADDR,
                         sup);
            continue;
        }
        uconn_t *c = wq_calloc(1, sizeof *c);
        c->fd = fd;
        c->serial = ++self->usock_serial;
        c->uid = (uint32_t) cred.uid;
        struct passwd pw, *res = NULL;
        char buf[4096];
        if (getpwuid_r(cred.uid, &pw, buf, sizeof buf, &res) == 0 && res != NULL &&
            strlen(res->pw_name) <= WIRE_MAX_NAME)
            snprintf(c->account, sizeof c->account, "%s", res->pw_name);
        self->uconns = wq_realloc(self->uconns, (self->n_uconns + 1) * sizeof *self->uconns);
        self->uconns[self->n_uconns++] = c;
    }
}

void
usock_poll_add(sched_t *self, size_t *n)
{
    if (self->usock_fd < 0)
        return;
    size_t need = *n + 1 + self->n_uconns + 1;
    if (need > self->cap_pfd) {
        self->cap_pfd = need * 2;
        self->pfd = wq_realloc(self->pfd, self->cap_pfd * sizeof *self->pfd);
    }
    self->pfd[*n].fd = self->usock_fd;
    self->pfd[*n].events = POLLIN;
    self->pfd[*n].revents = 0;
    (*n)++;
    for (size_t i = 0; i < self->n_uconns; i++) {
        uconn_t *c = self->uconns[i];
        self->pfd[*n].fd = c->fd;
        self->pfd[*n].events =
            (short) ((c->closing ? 0 : POLLIN) | (c->out_off < c->out_len ? POLLOUT : 0));
        self->pfd[*n].revents = 0;
        (*n)++;
    }
}

void
usock_events(sched_t *self, size_t first, size_t n)
{
    if (self->usock_fd < 0 || n == 0)
        return;
    /* pfd[first + 1 + i] is uconns[i]: nothing is added or removed until reap */
    size_t nc = n - 1 < self->n_uconns ? n - 1 : self->n_uconns;
    for (size_t i = 0; i < nc && !self->failed; i++) {
        uconn_t *c = self->uconns[i];
        short ev = self->pfd[first + 1 + i].revents;
        if (ev == 0 || c->dead)
            continue;
        if (ev & POLLOUT)
            try_write(self, c);
        if (!c->dead && (ev & (POLLIN | POLLHUP | POLLERR)) && !c->closing)
            on_readable(self, c);
        else if (!c->dead && (ev & (POLLHUP | POLLERR)))
            conn_close(self, c);
    }
    reap(self);
    if (self->pfd[first].revents & POLLIN)
        on_accept(self);
}

int64_t
usock_next_timer(const sched_t *self)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < self->n_uconns; i++) {
        const uconn_t *c = self->uconns[i];
        if (c->partial_since != 0 && c->partial_since + SCHED_HANDSHAKE_MS < next)
            next = c->partial_since + SCHED_HANDSHAKE_MS;
    }
    return next;
}

void
usock_tick(sched_t *self, int64_t now)
{
    for (size_t i = 0; i < self->n_uconns; i++) {
        uconn_t *c = self->uconns[i];
        if (c->dead || c->partial_since == 0 || now < c->partial_since + SCHED_HANDSHAKE_MS)
            continue;
        wq_error_t err;
        wq_fail(&err, WQ_ETIMEDOUT, "a frame left incomplete for %d s (%zu bytes)",
                SCHED_HANDSHAKE_MS / 1000, c->in_len);
        bad_frame(self, c, &err, 1);
    }
}
