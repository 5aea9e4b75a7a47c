/* Rendezvous relay (see rdv.h). */
#include "worker/rdv.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

typedef struct {
    int fd;
    int listener; /* 1 = listening socket */
    uint64_t job_id;
    uint32_t attempt;
    char path[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    char *buf; /* input not yet parsed */
    size_t len;
    int broken;       /* a reply could not be written: drop it */
    uint64_t pending; /* request_id awaiting the scheduler, 0 = none */
    int op;           /* op of the pending request */
} conn_t;

struct rdv {
    conn_t *c;
    size_t n, cap;
    uint64_t next_id;
    rdv_send_fn send;
    void *ctx;
};

rdv_t *
rdv_new(rdv_send_fn send, void *ctx)
{
    rdv_t *r = wq_calloc(1, sizeof *r);
    r->send = send;
    r->ctx = ctx;
    r->next_id = 1;
    return r;
}

static conn_t *
add(rdv_t *r)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->c = wq_realloc(r->c, r->cap * sizeof *r->c);
    }
    conn_t *c = &r->c[r->n++];
    memset(c, 0, sizeof *c);
    return c;
}

static void
drop(rdv_t *r, size_t i)
{
    conn_t *c = &r->c[i];
    close(c->fd);
    if (c->listener)
        unlink(c->path);
    free(c->buf);
    r->c[i] = r->c[--r->n];
}

int
rdv_open(rdv_t *r, uint64_t job_id, uint32_t attempt, const char *path, wq_error_t *err)
{
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path)
        return wq_fail(err, WQ_ELIMIT, "rendezvous path too long: %s", path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return wq_fail_errno(err, "rendezvous socket");
    /* bound first: a fresh spool has no socket file, and a stale one (a rerun) is unlinked
     * and bound again */
    int rc = bind(fd, (struct sockaddr *) &a, sizeof a);
    if (rc < 0 && errno == EADDRINUSE && unlink(path) == 0)
        rc = bind(fd, (struct sockaddr *) &a, sizeof a);
    if (rc < 0 || listen(fd, 64) < 0) {
        wq_fail_errno(err, "rendezvous socket %s", path);
        close(fd);
        return -1;
    }
    conn_t *c = add(r);
    c->fd = fd;
    c->listener = 1;
    c->job_id = job_id;
    c->attempt = attempt;
    memcpy(c->path, path, strlen(path) + 1);
    return 0;
}

void
rdv_close_job(rdv_t *r, uint64_t job_id, uint32_t attempt)
{
    for (size_t i = 0; i < r->n;)
        if (r->c[i].job_id == job_id && r->c[i].attempt == attempt)
            drop(r, i);
        else
            i++;
}

size_t
rdv_pollitems(const rdv_t *r, zmq_pollitem_t *items, size_t max)
{
    size_t k = 0;
    for (size_t i = 0; i < r->n && k < max; i++) {
        if (r->c[i].pending)
            continue; /* one request at a time: read the next after the answer */
        zmq_pollitem_t it = {NULL, r->c[i].fd, ZMQ_POLLIN, 0};
        items[k++] = it;
    }
    return k;
}

static void
reply(conn_t *c, const char *head, const void *data, size_t len)
{
    /* SO_SNDTIMEO bounds a reader that does not read; then the connection is dropped */
    size_t hl = strlen(head);
    if (send(c->fd, head, hl, MSG_NOSIGNAL) != (ssize_t) hl ||
        (len > 0 && send(c->fd, data, len, MSG_NOSIGNAL) != (ssize_t) len))
        c->broken = 1;
}

/* Parse one complete request in c->buf: 1 sent, 0 need more bytes, -1 malformed. */
static int
parse(rdv_t *r, conn_t *c)
{
    char *nl = memchr(c->buf, '\n', c->len);
    if (nl == NULL)
        return c->len > WORKER_RDV_MAX_HEAD ? -1 : 0;
    size_t hl = (size_t) (nl - c->buf);
    if (hl >= WORKER_RDV_MAX_HEAD)
        return -1;
    char head[WORKER_RDV_MAX_HEAD];
    memcpy(head, c->buf, hl);
    head[hl] = '\0';
    char op[8], key[WIRE_MAX_KV_KEY + 2];
    unsigned long long num = 0;
    int n = sscanf(head, "%7s %257s %llu", op, key, &num);
    if (n < 2 || strlen(key) > WIRE_MAX_KV_KEY)
        return -1;
    Wslq__KvRequest kv = WSLQ__KV_REQUEST__INIT;
    size_t used = hl + 1;
    if (strcmp(op, "PUT") == 0 && n == 3) {
        if (num > WIRE_MAX_KV_VALUE)
            return -1;
        if (c->len < used + num)
            return 0;
        kv.op = WSLQ__KV_REQUEST__OP__PUT;
        kv.value.data = (uint8_t *) c->buf + used;
        kv.value.len = (size_t) num;
        used += (size_t) num;
    } else if (strcmp(op, "GET") == 0 && n == 2) {
        kv.op = WSLQ__KV_REQUEST__OP__GET;
    } else if (strcmp(op, "WAIT") == 0 && n == 3 && num <= 3600000) {
        kv.op = WSLQ__KV_REQUEST__OP__WAIT;
        kv.timeout_ms = (uint32_t) num;
    } else {
        return -1;
    }
    kv.job_id = c->job_id;
    kv.attempt = c->attempt;
    kv.key = key;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = r->next_id++;
    env.body_case = WSLQ__ENVELOPE__BODY_KV;
    env.kv = &kv;
    if (r->send(r->ctx, &env) < 0) {
        reply(c, "ERR scheduler unreachable\n", NULL, 0);
    } else {
        c->pending = env.request_id;
        c->op = kv.op;
    }
    memmove(c->buf, c->buf + used, c->len - used);
    c->len -= used;
    return 1;
}

void
rdv_handle(rdv_t *r, const zmq_pollitem_t *items, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        if (!(items[k].revents & (ZMQ_POLLIN | ZMQ_POLLERR)))
            continue;
        size_t i = 0;
        while (i < r->n && r->c[i].fd != items[k].fd)
            i++;
        if (i == r->n)
            continue;
        if (r->c[i].listener) {
            int fd = accept(r->c[i].fd, NULL, NULL);
            if (fd < 0)
                continue;
            if (r->n >= WORKER_RDV_MAX_CONN) {
                close(fd);
                continue;
            }
            fcntl(fd, F_SETFD, FD_CLOEXEC);
            struct timeval tv = {0, 200000};
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            uint64_t job = r->c[i].job_id;
            uint32_t att = r->c[i].attempt;
            conn_t *c = add(r);
            c->fd = fd;
            c->job_id = job;
            c->attempt = att;
            c->buf = wq_malloc(WORKER_RDV_MAX_HEAD + WIRE_MAX_KV_VALUE + 1);
            continue;
        }
        conn_t *c = &r->c[i];
        size_t room = WORKER_RDV_MAX_HEAD + WIRE_MAX_KV_VALUE + 1 - c->len;
        ssize_t got = recv(c->fd, c->buf + c->len, room, MSG_DONTWAIT);
        if (got <= 0) {
            if (got == 0 || (errno != EAGAIN && errno != EINTR))
                drop(r, i);
            continue;
        }
        c->len += (size_t) got;
        int rc = c->pending ? 0 : parse(r, c);
        if (rc < 0)
            reply(c, "ERR malformed request\n", NULL, 0);
        if (rc < 0 || c->broken)
            drop(r, i);
    }
}

int
rdv_reply(rdv_t *r, const Wslq__Envelope *env)
{
    if (env->request_id == 0)
        return 0;
    for (size_t i = 0; i < r->n; i++) {
        conn_t *c = &r->c[i];
        if (c->listener || c->pending != env->request_id)
            continue;
        c->pending = 0;
        if (env->body_case == WSLQ__ENVELOPE__BODY_ERROR) {
            char line[300];
            snprintf(line, sizeof line, "ERR %.280s\n", env->error->text);
            for (char *p = line + 4; *p && p[1]; p++)
                if (*p == '\n')
                    *p = ' ';
            reply(c, line, NULL, 0);
        } else if (env->body_case == WSLQ__ENVELOPE__BODY_KV_REPLY) {
            const Wslq__KvReply *kr = env->kv_reply;
            if (c->op == WSLQ__KV_REQUEST__OP__PUT) {
                reply(c, "OK\n", NULL, 0);
            } else if (kr->found) {
                char head[48];
                snprintf(head, sizeof head, "VAL %zu\n", kr->value.len);
                reply(c, head, kr->value.data, kr->value.len);
            } else {
                reply(c, c->op == WSLQ__KV_REQUEST__OP__WAIT ? "ERR timed out\n" : "NONE\n", NULL,
                      0);
            }
        } else {
            return 0;
        }
        int rc = c->broken || c->len == 0 ? 0 : parse(r, c); /* sent before the answer */
        if (rc < 0)
            reply(c, "ERR malformed request\n", NULL, 0);
        if (rc < 0 || c->broken)
            drop(r, i);
        return 1;
    }
    return 0;
}

void
rdv_destroy(rdv_t **rp)
{
    if (rp == NULL || *rp == NULL)
        return;
    rdv_t *r = *rp;
    while (r->n > 0)
        drop(r, r->n - 1);
    free(r->c);
    free(r);
    *rp = NULL;
}
