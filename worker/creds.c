/* A node's identity; see creds.h. */
#include "worker/creds.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "common/clock.h"
#include "common/fs.h"
#include "proto/wire.h"

/* The directory that will hold path, made 0700 when missing. */
static int
make_parent(const char *path, wq_error_t *err)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    return wq_mkdir_p(dir, 0700, err);
}

/* One EnrolRequest, one answer (or a handshake failure, or the deadline). */
static Wslq__Envelope *
enrol(void *zctx,
      const keys_creds_t *c,
      const char *secret,
      const char *node_name,
      int timeout_ms,
      wq_error_t *err)
{
    void *sock = zmq_socket(zctx, ZMQ_DEALER);
    if (sock == NULL) {
        wq_fail_errno(err, "cannot create a ZeroMQ socket");
        return NULL;
    }
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    Wslq__Envelope *rep = NULL;
    void *mon = NULL;
    if (keys_client_socket(sock, c, err) < 0)
        goto out;
    mon = keys_watch(zctx, sock);
    if (zmq_connect(sock, c->scheduler) < 0) {
        wq_fail(err, WQ_EINVAL, "the code's scheduler address '%.120s' is not usable: %s",
                c->scheduler, zmq_strerror(errno));
        goto out;
    }
    Wslq__EnrolRequest req = WSLQ__ENROL_REQUEST__INIT;
    req.secret = (char *) secret;
    req.node_name = (char *) node_name;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_ENROL;
    env.enrol = &req;
    env.request_id = (uint64_t) getpid() << 20 | (uint64_t) (wq_clock_mono_ms() & 0xfffff);
    if (wire_send(sock, NULL, 0, &env, 0, err) < 0)
        goto out;
    int64_t deadline = wq_clock_mono_ms() + timeout_ms;
    for (;;) {
        int hs = keys_handshake_event(mon);
        if (hs == KEYS_HS_WRONG_SERVER) {
            wq_fail(err, WQ_EPERM,
                    "the security handshake with %.150s failed: it is not the scheduler the code "
                    "was made by (its key differs), or it does not use CURVE",
                    c->scheduler);
            goto out;
        }
        if (hs != KEYS_HS_NONE) {
            wq_fail(err, WQ_EPERM, "the scheduler at %.150s refused the handshake", c->scheduler);
            goto out;
        }
        int64_t left = deadline - wq_clock_mono_ms();
        if (left <= 0) {
            wq_fail(err, WQ_ETIMEDOUT,
                    "no answer from the scheduler at %.150s within %d s; is it running, and "
                    "does this PC reach it?",
                    c->scheduler, timeout_ms / 1000);
            goto out;
        }
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, left > 100 ? 100 : (long) left) <= 0)
            continue;
        rep = wire_recv(sock, NULL, NULL, 0, err);
        if (rep == NULL)
            goto out;
        if (rep->request_id != env.request_id) {
            wire_free(&rep);
            continue;
        }
        if (rep->body_case == WSLQ__ENVELOPE__BODY_ERROR) {
            wq_fail(err, WQ_EPERM, "the scheduler refused the code: %s", rep->error->text);
            wire_free(&rep);
        } else if (rep->body_case != WSLQ__ENVELOPE__BODY_ENROL_REPLY) {
            wq_fail(err, WQ_EPROTO, "unexpected answer to the join request");
            wire_free(&rep);
        }
        goto out;
    }
out:
    if (mon != NULL)
        zmq_close(mon);
    zmq_close(sock);
    return rep;
}

int
creds_join(const wcfg_t *cfg, int timeout_ms, keys_creds_t *creds, wq_error_t *err)
{
    memset(creds, 0, sizeof *creds);
    char secret[KEYS_SECRET_HEX + 1];
    if (keys_code_parse(cfg->join, creds->server, secret, creds->scheduler, sizeof creds->scheduler,
                        err) < 0)
        return -1;
    /* a code made elsewhere may name an address this PC does not use: --scheduler wins */
    if (cfg->scheduler_given)
        snprintf(creds->scheduler, sizeof creds->scheduler, "%s", cfg->scheduler);
    if (keys_generate(creds, err) < 0 || make_parent(cfg->credentials, err) < 0)
        return -1;
    void *zctx = zmq_ctx_new();
    if (zctx == NULL)
        return wq_fail_errno(err, "cannot create a ZeroMQ context");
    Wslq__Envelope *rep = enrol(zctx, creds, secret, cfg->name, timeout_ms, err);
    zmq_ctx_term(zctx);
    if (rep == NULL)
        return -1;
    int ok = strcmp(rep->enrol_reply->kind, "node") == 0;
    snprintf(creds->name, sizeof creds->name, "%s", rep->enrol_reply->name);
    wire_free(&rep);
    if (!ok)
        return wq_fail(err, WQ_EINVAL,
                       "that is a user's enrolment code (for 'wslq login'), not a node's join "
                       "code; an admin makes one with 'wslq admin node invite'");
    return keys_save(cfg->credentials, creds, err);
}

int
creds_resolve(wcfg_t *cfg, keys_creds_t *creds, wq_error_t *err)
{
    memset(creds, 0, sizeof *creds);
    if (access(cfg->credentials, F_OK) < 0 && errno == ENOENT)
        return wq_fail(err, WQ_ENOENT,
                       "no credentials at %s: join the cluster first with 'wslq-worker --join "
                       "CODE' (an admin makes the code with 'wslq admin node invite')",
                       cfg->credentials);
    if (keys_load(cfg->credentials, creds, err) < 0)
        return -1;
    if (!creds->server[0] || !creds->public_[0] || !creds->secret[0] || !creds->name[0])
        return wq_fail(err, WQ_EINVAL,
                       "%s is not a node's credentials (it lacks the server key, a key pair "
                       "or the node name); join again with 'wslq-worker --join CODE'",
                       cfg->credentials);
    if (!cfg->scheduler_given && creds->scheduler[0])
        snprintf(cfg->scheduler, sizeof cfg->scheduler, "%s", creds->scheduler);
    if (cfg->name_given && strcmp(cfg->name, creds->name) != 0)
        return wq_fail(err, WQ_EINVAL,
                       "this PC joined as '%s' but --name says '%s'; drop --name, or join "
                       "again under the new name",
                       creds->name, cfg->name);
    snprintf(cfg->name, sizeof cfg->name, "%s", creds->name);
    return 0;
}
