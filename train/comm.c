/* comm: option parsing, dispatch through the transport table, and the world-1 transport. */
#include "train/comm.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/parse.h"

int
comm_fail(comm_t *c, wq_error_t *err, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!c->failed) {
        c->failed = 1;
        snprintf(c->why, sizeof c->why, "%s", line);
    }
    return wq_fail(err, WQ_EPROTO, "%s", line);
}

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char) *s) * 1099511628211ull;
    return h;
}

int
comm_opts_from_env(comm_opts_t *o, wq_error_t *err)
{
    int64_t v;
    const char *s;
    memset(o, 0, sizeof *o);
    o->world = 1;
    snprintf(o->master_addr, sizeof o->master_addr, "127.0.0.1");
    o->master_port = 29500;
    o->timeout_ms = COMM_DEFAULT_TIMEOUT_MS;
    if ((s = getenv("WORLD_SIZE")) && *s) {
        if (wq_parse_int(s, 1, COMM_MAX_WORLD, "WORLD_SIZE", &v, err) < 0)
            return -1;
        o->world = (int) v;
    }
    if ((s = getenv("RANK")) && *s) {
        if (wq_parse_int(s, 0, COMM_MAX_WORLD - 1, "RANK", &v, err) < 0)
            return -1;
        o->rank = (int) v;
    }
    if ((s = getenv("MASTER_ADDR")) && *s) {
        if (strlen(s) >= sizeof o->master_addr)
            return wq_fail(err, WQ_EINVAL, "MASTER_ADDR is too long");
        snprintf(o->master_addr, sizeof o->master_addr, "%s", s);
    }
    if ((s = getenv("MASTER_PORT")) && *s) {
        if (wq_parse_int(s, 1, 65535, "MASTER_PORT", &v, err) < 0)
            return -1;
        o->master_port = (int) v;
    }
    if ((s = getenv("WSLQ_JOB_ID")) && *s)
        o->job_tag = fnv1a(s);
    return 0;
}

/* ---- world of one ------------------------------------------------------------------- */

static int
self_allreduce(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err)
{
    (void) c, (void) buf, (void) n, (void) op, (void) err;
    return 0;
}

static int
self_broadcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err)
{
    (void) c, (void) buf, (void) bytes, (void) root, (void) err;
    return 0;
}

static int
self_barrier(comm_t *c, wq_error_t *err)
{
    (void) c, (void) err;
    return 0;
}

static void
self_noop(comm_t *c)
{
    (void) c;
}

/* The average (or sum) over one rank of device memory is the buffer itself. */
static int
self_dev_allreduce(comm_t *c, float *dbuf, size_t n, comm_op_t op, void *after, wq_error_t *err)
{
    (void) c, (void) dbuf, (void) n, (void) op, (void) after, (void) err;
    return 0;
}

static const comm_ops_t self_ops = {
    .name = "self",
    .allreduce = self_allreduce,
    .broadcast = self_broadcast,
    .barrier = self_barrier,
    .abort = self_noop,
    .destroy = self_noop,
    .dev_allreduce = self_dev_allreduce,
    .dev_wait = self_barrier,
};

comm_t *
comm_init(const comm_opts_t *o, wq_error_t *err)
{
    if (o->world < 1 || o->world > COMM_MAX_WORLD || o->rank < 0 || o->rank >= o->world) {
        wq_fail(err, WQ_EINVAL, "rank %d is not in 0..%d (world size %d)", o->rank, o->world - 1,
                o->world);
        return NULL;
    }
    if (o->world == 1) {
        comm_t *c = wq_calloc(1, sizeof *c);
        c->ops = &self_ops;
        c->world = 1;
        c->timeout_ms = o->timeout_ms;
        return c;
    }
    struct in_addr a;
    if (inet_pton(AF_INET, o->master_addr, &a) != 1) {
        wq_fail(err, WQ_EINVAL, "master address '%s' is not an IPv4 address", o->master_addr);
        return NULL;
    }
    const char *rdv = getenv("WSLQ_RENDEZVOUS");
    return comm_tcp_new(o, rdv && *rdv ? comm_bootstrap_kv : comm_bootstrap_master, err);
}

int
comm_allreduce(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err)
{
    if (c->failed)
        return wq_fail(err, WQ_EPROTO, "%s", c->why);
    return c->ops->allreduce(c, buf, n, op, err);
}

int
comm_broadcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err)
{
    if (c->failed)
        return wq_fail(err, WQ_EPROTO, "%s", c->why);
    return c->ops->broadcast(c, buf, bytes, root, err);
}

int
comm_barrier(comm_t *c, wq_error_t *err)
{
    if (c->failed)
        return wq_fail(err, WQ_EPROTO, "%s", c->why);
    return c->ops->barrier(c, err);
}

void
comm_abort(comm_t *c)
{
    if (!c)
        return;
    c->failed = 1;
    c->ops->abort(c);
}

void
comm_destroy(comm_t **cp)
{
    comm_t *c = *cp;
    if (!c)
        return;
    c->ops->destroy(c);
    free(c);
    *cp = NULL;
}

int
comm_has_dev(const comm_t *c)
{
    return c->ops->dev_allreduce && c->ops->dev_wait;
}

int
comm_dev_allreduce(comm_t *c, float *dbuf, size_t n, comm_op_t op, void *after, wq_error_t *err)
{
    if (!comm_has_dev(c))
        return wq_fail(err, WQ_EINVAL, "comm: the %s transport cannot reduce device memory",
                       c->ops->name);
    if (c->failed)
        return wq_fail(err, WQ_EPROTO, "%s", c->why);
    return c->ops->dev_allreduce(c, dbuf, n, op, after, err);
}

int
comm_dev_wait(comm_t *c, wq_error_t *err)
{
    if (!comm_has_dev(c))
        return wq_fail(err, WQ_EINVAL, "comm: the %s transport cannot reduce device memory",
                       c->ops->name);
    if (c->failed)
        return wq_fail(err, WQ_EPROTO, "%s", c->why);
    return c->ops->dev_wait(c, err);
}

int
comm_agree_nccl(comm_t *c, int mine, wq_error_t *err)
{
    float v[2] = {mine ? 1.0f : 0.0f, 1.0f};
    if (comm_allreduce(c, v, 2, COMM_SUM, err) < 0)
        return -1;
    int n = (int) v[0], world = (int) v[1];
    if (n == 0 || n == world)
        return 0;
    return wq_fail(err, WQ_EINVAL,
                   "%d of %d ranks use NCCL but this one %s: give every rank the same --device "
                   "and --comm (did --device auto find a GPU on some PCs only?)",
                   n, world, mine ? "does" : "does not");
}

int
comm_check(comm_t *c, wq_error_t *err)
{
    if (c->failed)
        return wq_fail(err, WQ_EPROTO, "%s", c->why);
    return c->ops->check ? c->ops->check(c, err) : 0;
}

/* ---- the deadline loop ------------------------------------------------------------------ */

static int64_t
real_now(void *ctx)
{
    (void) ctx;
    return wq_clock_mono_ms();
}

/* Busy-poll first (a collective of a few KiB finishes in tens of microseconds), then sleep in
 * growing steps up to 1 ms: a waiting rank costs ~0 CPU and notices completion within 1 ms. */
static void
real_pause(void *ctx, unsigned polls)
{
    (void) ctx;
    if (polls < 200)
        return;
    long us = polls < 1000 ? 50 : 1000;
    struct timespec ts = {0, us * 1000L};
    nanosleep(&ts, NULL);
}

int
comm_wait(comm_t *c, const comm_waiter_t *w, int64_t deadline_ms, const char *what, wq_error_t *err)
{
    int64_t (*now)(void *) = w->now_ms ? w->now_ms : real_now;
    void (*pause)(void *, unsigned) = w->pause ? w->pause : real_pause;
    int64_t start = now(w->ctx);
    wq_error_t e;
    for (unsigned polls = 0;; polls++) {
        int d = w->done(w->ctx, &e);
        if (d > 0)
            return 0;
        if (d < 0 || w->async_error(w->ctx, &e) < 0)
            break;
        if (now(w->ctx) >= deadline_ms) {
            snprintf(e.text, sizeof e.text, "no progress in %lld ms (a peer died or stalled)",
                     (long long) (now(w->ctx) - start));
            break;
        }
        pause(w->ctx, polls);
    }
    w->abort(w->ctx);
    if (c)
        return comm_fail(c, err, "comm: %s: %s", what, e.text);
    return wq_fail(err, WQ_EPROTO, "comm: %s: %s", what, e.text);
}
