/* Connections to the ROUTER, counted and capped. ZeroMQ accepts every TCP connection and has
 * no limit of its own, so a flood of idle connections would take every file descriptor (the
 * queue's and the logs' included). A socket monitor tells the loop of each accepted and each
 * closed connection; one over the total or the per-address cap is shut down at once
 * (shutdown(2), never close: the descriptor stays libzmq's, which then drops the session
 * itself). A connection that does not finish ZeroMQ's handshake within SCHED_HANDSHAKE_MS is
 * dropped by libzmq (ZMQ_HANDSHAKE_IVL). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zmq.h>

#include "common/mem.h"
#include "scheduler/sched_int.h"

typedef struct conn {
    int fd;
    char addr[48]; /* peer address without the port, "" when not TCP */
} conn_t;

struct conns {
    void *mon; /* PAIR socket receiving the ROUTER's monitor events */
    conn_t *c; /* open connections */
    size_t n, cap;
};

static void
peer_addr(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    buf[0] = '\0';
    if (getpeername(fd, (struct sockaddr *) &ss, &len) < 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *) &ss)->sin_addr, buf, (socklen_t) size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &ss)->sin6_addr, buf, (socklen_t) size);
}

conns_t *
conns_new(void *zctx, void *router, wq_error_t *err)
{
    static int seq;
    char ep[64];
    snprintf(ep, sizeof ep, "inproc://wslq-conns-%d-%d", (int) getpid(), ++seq);
    if (zmq_socket_monitor(router, ep,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) < 0) {
        wq_fail(err, WQ_ESYS, "cannot monitor connections: %s", zmq_strerror(errno));
        return NULL;
    }
    conns_t *self = wq_calloc(1, sizeof *self);
    self->mon = zmq_socket(zctx, ZMQ_PAIR);
    int zero = 0;
    zmq_setsockopt(self->mon, ZMQ_LINGER, &zero, sizeof zero);
    if (self->mon == NULL || zmq_connect(self->mon, ep) < 0) {
        wq_fail(err, WQ_ESYS, "cannot monitor connections: %s", zmq_strerror(errno));
        conns_destroy(&self);
        return NULL;
    }
    return self;
}

void
conns_destroy(conns_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    conns_t *self = *self_p;
    if (self->mon)
        zmq_close(self->mon);
    free(self->c);
    free(self);
    *self_p = NULL;
}

size_t
conns_count(const conns_t *cs)
{
    return cs != NULL ? cs->n : 0;
}

void *
conns_socket(conns_t *self)
{
    return self->mon;
}

static void
forget(conns_t *self, int fd)
{
    for (size_t i = 0; i < self->n; i++)
        if (self->c[i].fd == fd) {
            self->c[i] = self->c[--self->n];
            return;
        }
}

static void
accepted(sched_t *self, conns_t *cs, int fd)
{
    char addr[48];
    peer_addr(fd, addr, sizeof addr);
    size_t same = 0;
    for (size_t i = 0; i < cs->n && addr[0]; i++)
        same += strcmp(cs->c[i].addr, addr) == 0;
    if (cs->n >= self->max_conns || same >= SCHED_MAX_CONNS_PER_ADDR) {
        shutdown(fd, SHUT_RDWR); /* libzmq sees the end and drops the session */
        self->stats.conns_refused_total++;
        int sup = wq_ratelimit(&self->conn_rl, 5, 10000);
        if (sup >= 0)
            log_warn("connection refused addr=%s open=%zu from_addr=%zu (limits %zu, %d per "
                     "address) suppressed=%d",
                     addr[0] ? addr : "?", cs->n, same, self->max_conns, SCHED_MAX_CONNS_PER_ADDR,
                     sup);
        return;
    }
    if (cs->n == cs->cap) {
        cs->cap = cs->cap ? cs->cap * 2 : 64;
        cs->c = wq_realloc(cs->c, cs->cap * sizeof *cs->c);
    }
    cs->c[cs->n].fd = fd;
    snprintf(cs->c[cs->n].addr, sizeof cs->c[cs->n].addr, "%s", addr);
    cs->n++;
}

void
conns_events(sched_t *self, conns_t *cs)
{
    for (int i = 0; i < 10000; i++) {
        zmq_msg_t head, endpoint;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, cs->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            break;
        }
        zmq_msg_init(&endpoint);
        if (zmq_msg_more(&head))
            zmq_msg_recv(&endpoint, cs->mon, 0); /* the second frame: the endpoint, unused */
        if (zmq_msg_size(&head) >= 6) {
            const uint8_t *d = zmq_msg_data(&head);
            uint16_t event;
            uint32_t value;
            memcpy(&event, d, sizeof event);
            memcpy(&value, d + 2, sizeof value);
            if (event == ZMQ_EVENT_ACCEPTED) {
                accepted(self, cs, (int) value);
            } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL ||
                       event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
                /* a peer without CURVE, or one that pins another server's key (a ZAP refusal
                 * is counted where it is made, auth.c) */
                self->stats.auth_denied_total++;
                int sup = wq_ratelimit(&self->auth_rl, 10, 60000);
                if (sup >= 0)
                    log_warn("handshake failed: a peer without CURVE or with another server's "
                             "key code=0x%x suppressed=%d",
                             value, sup);
            } else {
                forget(cs, (int) value);
            }
        }
        zmq_msg_close(&head);
        zmq_msg_close(&endpoint);
    }
    self->stats.conns_open = cs->n;
}
