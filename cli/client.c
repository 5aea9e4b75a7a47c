/* Request/reply with the scheduler; see client.h.
 *
 * No ZMQ_IMMEDIATE: the DEALER queues the request at once and ZeroMQ delivers it when the
 * TCP connection comes up (retrying every 100 ms). The only wait is then the reply poll, so
 * a scheduler that is down gives the "cannot reach" line exactly when the timeout ends, and
 * a scheduler that is starting up still gets the request. With IMMEDIATE the send itself
 * would block while unconnected and need its own deadline. */
#include "cli/client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
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
};

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

void
client_destroy(client_t **cp)
{
    if (cp == NULL || *cp == NULL)
        return;
    client_t *c = *cp;
    if (c->mon != NULL)
        zmq_close(c->mon);
    if (c->sock != NULL)
        zmq_close(c->sock);
    if (c->zctx != NULL)
        zmq_ctx_term(c->zctx);
    free(c);
    *cp = NULL;
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

Wslq__Envelope *
client_call(client_t *c,
            Wslq__Envelope *req,
            Wslq__Envelope__BodyCase expect,
            int extra_wait_ms,
            wq_error_t *err)
{
    req->request_id = new_request_id();
    int wait_ms = c->timeout_ms + (extra_wait_ms > 0 ? extra_wait_ms : 0);
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
        Wslq__Envelope *rep = wire_recv(c->sock, NULL, NULL, ZMQ_DONTWAIT, &rerr);
        if (rep == NULL) {
            if (rerr.code == WQ_EBUSY)
                continue;
            wq_fail(err, rerr.code == WQ_ESYS ? WQ_ESYS : WQ_EPROTO,
                    "bad reply from the scheduler: %.200s", rerr.text);
            return NULL;
        }
        int is_error = rep->body_case == WSLQ__ENVELOPE__BODY_ERROR;
        /* request_id 0 on an ErrorReply: the scheduler could not decode our frame. */
        if (rep->request_id != req->request_id && !(is_error && rep->request_id == 0)) {
            wire_free(&rep);
            continue;
        }
        if (is_error) {
            enum wq_errc code = (enum wq_errc) rep->error->code;
            if (code <= WQ_OK || code > WQ_EPERM)
                code = WQ_EIO;
            const char *text = rep->error->text;
            wq_fail(err, code, "%.250s", text && text[0] ? text : "the scheduler refused");
            wire_free(&rep);
            return NULL;
        }
        if (rep->body_case != expect) {
            wq_fail(err, WQ_EPROTO, "unexpected reply from the scheduler (message %d, wanted %d)",
                    (int) rep->body_case, (int) expect);
            wire_free(&rep);
            return NULL;
        }
        return rep;
    }
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
