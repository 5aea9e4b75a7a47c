/* Request/reply with the scheduler; see client.h.
 *
 * No ZMQ_IMMEDIATE: the DEALER queues the request at once and ZeroMQ delivers it when the
 * TCP connection comes up (retrying every 100 ms). The only wait is then the reply poll, so
 * a scheduler that is down gives the "cannot reach" line exactly when the timeout ends, and
 * a scheduler that is starting up still gets the request. With IMMEDIATE the send itself
 * would block while unconnected and need its own deadline. */
#include "cli/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/mem.h"
#include "proto/keys.h"

struct client {
    void *zctx;
    void *sock;
    void *mon; /* handshake events of sock (CURVE): a refusal is known at once */
    char addr[4200];
    int timeout_ms;
    /* unix:PATH, the scheduler host's user socket: a plain stream, no ZeroMQ at all */
    int local; /* over unix:PATH */
    int fd;    /* its connection; -1 when closed (the next send connects again) */
    uint8_t *rbuf;
    size_t rlen, rcap;
};

/* ---------- the user socket (unix:PATH): framed Envelopes over a Unix stream ---------- */

static int
unix_unreachable(const char *addr, const char *why, wq_error_t *err)
{
    return wq_fail(err, WQ_ETIMEDOUT,
                   "cannot reach scheduler at %.150s (%s); is wslq-scheduler running?", addr, why);
}

/* Connect to unix:PATH within the timeout (a full backlog is retried). */
static int
unix_connect(client_t *c, const char *path, wq_error_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (path[0] == '\0' || strlen(path) >= sizeof sa.sun_path)
        return wq_fail(err, WQ_EINVAL, "invalid scheduler address '%.120s'; expected unix:PATH",
                       c->addr);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    c->rlen = 0;
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return wq_fail_errno(err, "cannot make a socket");
    int64_t deadline = wq_clock_mono_ms() + c->timeout_ms;
    while (connect(c->fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN && wq_clock_mono_ms() < deadline) {
            struct timespec ts = {0, 10 * 1000 * 1000};
            nanosleep(&ts, NULL); /* the backlog is full: the scheduler is busy */
            continue;
        }
        int e = errno;
        close(c->fd);
        c->fd = -1;
        return unix_unreachable(c->addr, e == EAGAIN ? "busy" : strerror(e), err);
    }
    return 0;
}

/* Wait for fd to be ready for 'events' until deadline: 1 ready, 0 timed out, -1 error. */
static int
unix_wait(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - wq_clock_mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left > 60000 ? 60000 : (int) left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n > 0)
            return 1;
    }
}

static int
unix_send(client_t *c, Wslq__Envelope *req, int64_t deadline, int wait_ms, wq_error_t *err)
{
    if (c->fd < 0 && unix_connect(c, c->addr + 5, err) < 0)
        return -1; /* the scheduler closed the last one (a restart): connect again */
    size_t len = 0;
    uint8_t *body = wire_encode(req, &len);
    if (len > WIRE_MAX_FRAME) {
        free(body);
        return wq_fail(err, WQ_ELIMIT, "request too large (%zu bytes)", len);
    }
    uint8_t *buf = wq_malloc(len + WIRE_STREAM_HDR);
    wire_stream_header(buf, len);
    memcpy(buf + WIRE_STREAM_HDR, body, len);
    free(body);
    size_t off = 0, total = len + WIRE_STREAM_HDR;
    int rc = 0;
    while (off < total) {
        ssize_t n = send(c->fd, buf + off, total - off, MSG_NOSIGNAL);
        if (n >= 0) {
            off += (size_t) n;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN && unix_wait(c->fd, POLLOUT, deadline) > 0)
            continue;
        if (errno == EAGAIN)
            rc = client_unreachable(c->addr, wait_ms, err);
        else
            rc = wq_fail(err, WQ_EIO, "the scheduler at %.150s closed the connection (%s)", c->addr,
                         strerror(errno));
        break;
    }
    free(buf);
    return rc;
}

/* One whole frame from what was read so far, decoded: the message, or NULL with *err
 * (WQ_EBUSY: not complete yet). */
#define UNIX_READ_CHUNK 16384

static Wslq__Envelope *
unix_frame(client_t *c, wq_error_t *err)
{
    size_t body = 0;
    int r = wire_stream_frame(c->rbuf, c->rlen, &body, err);
    if (r <= 0) {
        if (r == 0)
            wq_fail(err, WQ_EBUSY, "no reply yet");
        return NULL;
    }
    Wslq__Envelope *env = wire_decode(c->rbuf + WIRE_STREAM_HDR, body, err);
    c->rlen -= WIRE_STREAM_HDR + body;
    memmove(c->rbuf, c->rbuf + WIRE_STREAM_HDR + body, c->rlen);
    return env;
}

/* Read what is there (without waiting): 1 some bytes, 0 none now, -1 closed or failed. */
static int
unix_read(client_t *c, wq_error_t *err)
{
    /* 16 KiB at a time: most replies are a few hundred bytes, and a first buffer of 128 KiB
     * was a mmap, its page faults and a munmap in every command */
    if (c->rcap - c->rlen < UNIX_READ_CHUNK) {
        c->rcap = c->rcap ? c->rcap * 2 : UNIX_READ_CHUNK * 2;
        if (c->rcap > 2 * (WIRE_MAX_FRAME + WIRE_STREAM_HDR) && c->rlen < c->rcap / 2)
            c->rcap = c->rlen + UNIX_READ_CHUNK;
        c->rbuf = wq_realloc(c->rbuf, c->rcap);
    }
    for (;;) {
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t) n;
            return 1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        int e = errno;
        close(c->fd); /* nothing more comes on it */
        c->fd = -1;
        c->rlen = 0;
        errno = e;
        return wq_fail(err, WQ_EIO, "the scheduler at %.150s closed the connection%s%s", c->addr,
                       n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
    }
}

/* The next message, waiting until deadline: NULL with *err (WQ_ETIMEDOUT via the caller when
 * err->code is WQ_EBUSY: time ran out). */
static Wslq__Envelope *
unix_recv(client_t *c, int64_t deadline, wq_error_t *err)
{
    for (;;) {
        wq_error_t ferr = {0};
        Wslq__Envelope *env = unix_frame(c, &ferr);
        if (env != NULL)
            return env;
        if (ferr.code != WQ_EBUSY) {
            wq_fail(err, WQ_EPROTO, "bad reply from the scheduler: %.200s", ferr.text);
            return NULL;
        }
        int r = unix_read(c, err);
        if (r < 0)
            return NULL;
        if (r > 0)
            continue;
        r = unix_wait(c->fd, POLLIN, deadline);
        if (r == 0) {
            wq_fail(err, WQ_EBUSY, "timed out");
            return NULL;
        }
        if (r < 0) {
            wq_fail_errno(err, "waiting for the scheduler failed");
            return NULL;
        }
    }
}

/* A handshake failure the monitor saw: 0 none, else -1 with *err saying what it means. */
static int
handshake_failed(client_t *c, wq_error_t *err)
{
    switch (keys_handshake_event(c->mon)) {
    case KEYS_HS_NONE:
        return 0;
    case KEYS_HS_REFUSED:
        return wq_fail(err, WQ_EPERM,
                       "the scheduler at %.150s refused this key: it was revoked; ask an admin "
                       "for a new enrolment code (wslq login CODE)",
                       c->addr);
    case KEYS_HS_WRONG_SERVER:
        return wq_fail(err, WQ_EPERM,
                       "the security handshake with %.150s failed: it is not the scheduler these "
                       "credentials trust (its key differs), or it does not use CURVE",
                       c->addr);
    default:
        return wq_fail(err, WQ_EPERM, "the security handshake with %.150s failed", c->addr);
    }
}

client_t *
client_new(const cli_ctx_t *ctx, wq_error_t *err)
{
    client_t *c = wq_calloc(1, sizeof *c);
    c->timeout_ms = ctx->timeout_ms;
    c->fd = -1;
    if (!ctx->admin && (ctx->scheduler_given || ctx->scheduler_conf) &&
        strncmp(ctx->scheduler, "unix:", 5) == 0) {
        /* the scheduler host's user socket: the kernel tells the scheduler our uid */
        snprintf(c->addr, sizeof c->addr, "%s", ctx->scheduler);
        c->local = 1;
        if (unix_connect(c, ctx->scheduler + 5, err) < 0)
            goto error;
        return c;
    }
    keys_creds_t creds;
    /* an ipc:// address is the scheduler host's local socket: no keys there, the file's
     * permissions decide */
    int have_creds = 0, local = ctx->admin || ((ctx->scheduler_given || ctx->scheduler_conf) &&
                                               strncmp(ctx->scheduler, "ipc://", 6) == 0);
    if (!local && !ctx->insecure) {
        wq_error_t kerr = {0};
        have_creds = ctx->credentials[0] && keys_load(ctx->credentials, &creds, &kerr) == 0;
        if (!have_creds && access(ctx->credentials, F_OK) == 0) {
            *err = kerr; /* there, but unusable: say why */
            goto error;
        }
        /* root on the scheduler host needs no key: the local socket */
        if (!have_creds && !ctx->scheduler_given && access(ctx->admin_socket, W_OK) == 0)
            local = 1;
        if (!have_creds && !local) {
            wq_fail(err, WQ_EPERM,
                    "no credentials (%.200s): ask an admin for an enrolment code, then run "
                    "'wslq login CODE'",
                    ctx->credentials[0] ? ctx->credentials : "~/.config/wslq/credentials");
            goto error;
        }
    }
    if (local && !ctx->admin && (ctx->scheduler_given || ctx->scheduler_conf) &&
        strncmp(ctx->scheduler, "ipc://", 6) == 0) {
        snprintf(c->addr, sizeof c->addr, "%s", ctx->scheduler);
    } else if (local) {
        if (access(ctx->admin_socket, W_OK) < 0) {
            wq_fail(err, WQ_EPERM,
                    "cannot use the admin socket %.200s (%s): run this as root or the "
                    "scheduler's user on the scheduler host, or give --admin-socket PATH",
                    ctx->admin_socket, strerror(errno));
            goto error;
        }
        snprintf(c->addr, sizeof c->addr, "ipc://%s", ctx->admin_socket);
    } else if (have_creds && !ctx->scheduler_given && !ctx->scheduler_conf && creds.scheduler[0]) {
        snprintf(c->addr, sizeof c->addr, "%s", creds.scheduler);
    } else {
        snprintf(c->addr, sizeof c->addr, "%s", ctx->scheduler);
    }
    c->zctx = zmq_ctx_new();
    if (c->zctx == NULL) {
        wq_fail_errno(err, "cannot create a ZeroMQ context");
        goto error;
    }
    c->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (c->sock == NULL) {
        wq_fail_errno(err, "cannot create a ZeroMQ socket");
        goto error;
    }
    int linger = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
    if (have_creds && !local) {
        if (keys_client_socket(c->sock, &creds, err) < 0)
            goto error;
        c->mon = keys_watch(c->zctx, c->sock);
    }
    if (zmq_connect(c->sock, c->addr) < 0) {
        wq_fail(err, WQ_EINVAL, "invalid scheduler address '%.120s' (%s); expected tcp://HOST:PORT",
                c->addr, zmq_strerror(errno));
        goto error;
    }
    return c;
error:
    client_destroy(&c);
    return NULL;
}

/* The ZeroMQ context of the client destroyed last, not yet ended: client_exit. */
static void *zctx_kept;

void
client_destroy(client_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    client_t *c = *cp;
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    if (c->mon != NULL)
        zmq_close(c->mon);
    if (c->sock != NULL)
        zmq_close(c->sock); /* the reaper thread closes the connection; this does not wait */
    if (c->zctx != NULL) {
        if (zctx_kept != NULL) /* one at most: a command that connects again ends the last */
            zmq_ctx_term(zctx_kept);
        zctx_kept = c->zctx;
    }
    free(c);
    *cp = NULL;
}

#if defined(__SANITIZE_ADDRESS__)
#define CLIENT_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CLIENT_SANITIZED 1
#endif
#endif

int
client_exit(int rc)
{
    if (zctx_kept == NULL)
        return rc;
#ifdef CLIENT_SANITIZED
    /* the leak check runs at exit: end everything it would otherwise have to look through */
    zmq_ctx_term(zctx_kept);
    zctx_kept = NULL;
    return rc;
#else
    fflush(stdout);
    fflush(stderr);
    _exit(rc);
#endif
}

int
client_unreachable(const char *addr, int timeout_ms, wq_error_t *err)
{
    char t[32];
    if (timeout_ms % 1000 == 0)
        snprintf(t, sizeof t, "%d s", timeout_ms / 1000);
    else
        snprintf(t, sizeof t, "%.1f s", timeout_ms / 1000.0);
    return wq_fail(err, WQ_ETIMEDOUT,
                   "cannot reach scheduler at %.150s (timed out after %s); is wslq-scheduler "
                   "running?",
                   addr, t);
}

static uint64_t
new_request_id(void)
{
    uint64_t id = 0;
    if (getrandom(&id, sizeof id, GRND_NONBLOCK) != (ssize_t) sizeof id)
        id = ((uint64_t) getpid() << 32) ^ (uint64_t) wq_clock_mono_ms() ^ (uint64_t) time(NULL);
    return id ? id : 1;
}

/* A message that came while waiting for the reply to want: 1 it is the answer (*out the
 * reply, or NULL with *err), 0 it is not (freed). */
static int
take_reply(Wslq__Envelope *rep,
           uint64_t want,
           Wslq__Envelope__BodyCase expect,
           Wslq__Envelope **out,
           wq_error_t *err)
{
    *out = NULL;
    int is_error = rep->body_case == WSLQ__ENVELOPE__BODY_ERROR;
    /* request_id 0 on an ErrorReply: the scheduler could not decode our frame. */
    if (rep->request_id != want && !(is_error && rep->request_id == 0)) {
        wire_free(&rep);
        return 0;
    }
    if (is_error) {
        enum wq_errc code = (enum wq_errc) rep->error->code;
        if (code <= WQ_OK || code > WQ_EPERM)
            code = WQ_EIO;
        const char *text = rep->error->text;
        wq_fail(err, code, "%.250s", text && text[0] ? text : "the scheduler refused");
        wire_free(&rep);
        return 1;
    }
    if (rep->body_case != expect) {
        wq_fail(err, WQ_EPROTO, "unexpected reply from the scheduler (message %d, wanted %d)",
                (int) rep->body_case, (int) expect);
        wire_free(&rep);
        return 1;
    }
    *out = rep;
    return 1;
}

static Wslq__Envelope *
unix_call(
    client_t *c, Wslq__Envelope *req, Wslq__Envelope__BodyCase expect, int wait_ms, wq_error_t *err)
{
    int64_t deadline = wq_clock_mono_ms() + wait_ms;
    if (unix_send(c, req, deadline, wait_ms, err) < 0)
        return NULL;
    for (;;) {
        wq_error_t rerr = {0};
        Wslq__Envelope *rep = unix_recv(c, deadline, &rerr), *out;
        if (rep == NULL) {
            if (rerr.code == WQ_EBUSY)
                client_unreachable(c->addr, wait_ms, err);
            else
                *err = rerr;
            return NULL;
        }
        if (take_reply(rep, req->request_id, expect, &out, err))
            return out;
    }
}

Wslq__Envelope *
client_call(client_t *c,
            Wslq__Envelope *req,
            Wslq__Envelope__BodyCase expect,
            int extra_wait_ms,
            wq_error_t *err)
{
    req->request_id = new_request_id();
    int wait_ms = c->timeout_ms + (extra_wait_ms > 0 ? extra_wait_ms : 0);
    if (c->local)
        return unix_call(c, req, expect, wait_ms, err);
    if (wire_send(c->sock, NULL, 0, req, ZMQ_DONTWAIT, err) < 0) {
        if (errno == EAGAIN)
            client_unreachable(c->addr, wait_ms, err);
        return NULL;
    }
    int64_t deadline = wq_clock_mono_ms() + wait_ms;
    /* Bounded by the deadline: every pass either returns or waits on zmq_poll. */
    for (;;) {
        int64_t left = deadline - wq_clock_mono_ms();
        if (left <= 0) {
            client_unreachable(c->addr, wait_ms, err);
            return NULL;
        }
        if (handshake_failed(c, err) < 0)
            return NULL;
        zmq_pollitem_t items[2] = {{c->sock, 0, ZMQ_POLLIN, 0}, {c->mon, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, c->mon ? 2 : 1, (long) left);
        zmq_pollitem_t item = items[0];
        if (n < 0) {
            if (errno == EINTR)
                continue;
            wq_fail_errno(err, "waiting for the scheduler failed");
            return NULL;
        }
        if (n == 0 || !(item.revents & ZMQ_POLLIN))
            continue;
        wq_error_t rerr = {0};
        Wslq__Envelope *rep = wire_recv(c->sock, NULL, NULL, ZMQ_DONTWAIT, &rerr), *out;
        if (rep == NULL) {
            if (rerr.code == WQ_EBUSY)
                continue;
            wq_fail(err, rerr.code == WQ_ESYS ? WQ_ESYS : WQ_EPROTO,
                    "bad reply from the scheduler: %.200s", rerr.text);
            return NULL;
        }
        if (take_reply(rep, req->request_id, expect, &out, err))
            return out;
    }
}

int
client_post(client_t *c, Wslq__Envelope *req)
{
    wq_error_t err = {0};
    if (c->local)
        return unix_send(c, req, wq_clock_mono_ms() + c->timeout_ms, c->timeout_ms, &err);
    return wire_send(c->sock, NULL, 0, req, ZMQ_DONTWAIT, &err);
}

Wslq__Envelope *
client_take(client_t *c)
{
    wq_error_t err = {0};
    if (!c->local)
        return wire_recv(c->sock, NULL, NULL, ZMQ_DONTWAIT, &err);
    if (c->fd < 0)
        return NULL;
    Wslq__Envelope *env = unix_frame(c, &err);
    if (env == NULL && err.code == WQ_EBUSY && unix_read(c, &err) > 0)
        env = unix_frame(c, &err);
    return env;
}

void
client_pollitem(client_t *c, zmq_pollitem_t *item)
{
    memset(item, 0, sizeof *item);
    if (c->local)
        item->fd = c->fd; /* -1 while closed: poll skips it */
    else
        item->socket = c->sock;
    item->events = ZMQ_POLLIN;
}

Wslq__Envelope *
client_nodes(client_t *c, const char *name, wq_error_t *err)
{
    Wslq__NodesRequest req = WSLQ__NODES_REQUEST__INIT;
    if (name != NULL)
        req.name = (char *) name;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_NODES;
    env.nodes = &req;
    return client_call(c, &env, WSLQ__ENVELOPE__BODY_NODES_REPLY, 0, err);
}

void *
client_socket(client_t *c)
{
    return c->sock;
}
