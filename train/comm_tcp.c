/* The TCP ring transport and the MASTER_ADDR bootstrap.
 *
 * Connections: every rank listens on an ephemeral port, learns all ranks' addresses from the
 * bootstrap, opens one connection to its right neighbour (rank+1) and accepts one from its left
 * (rank-1). Data only flows rightwards; nothing ever comes back on the right connection, so the
 * right socket turning readable while we still have bytes for it means the right neighbour
 * closed or reset, and that is an error at once (so an abort also travels against the ring).
 *
 * Wire (all integers big-endian):
 *   bootstrap hello, rank -> rank 0   u32 magic 'WQRB', u32 version, u32 world, u32 rank,
 *                                     u32 ring port, u64 job tag                    (28 bytes)
 *   bootstrap table, rank 0 -> rank   u32 magic, then per rank u32 IPv4, u32 port   (4+8P)
 *   ring hello, rank -> right         u32 magic 'WQRR', u32 rank, u64 job tag       (16 bytes)
 *   collectives                       raw float32 / bytes, no framing: both ends know sizes
 *
 * All-reduce: messages up to small_bytes (default 32 KiB, env WSLQ_RING_SMALL_BYTES) take P-1
 * steps passing whole vectors around, then every rank adds the P vectors in rank order: half
 * the latency of the ring. Larger ones use reduce-scatter (P-1 steps) then all-gather (P-1
 * steps) over P near-equal chunks, each step sending one chunk right while receiving one from
 * the left (poll on both non-blocking sockets, so neither side waits for the other to drain and
 * large messages cannot deadlock). Each chunk's sum is formed in one fixed order and then
 * copied, so every rank holds bit-identical results. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "train/comm.h"

#define BOOT_MAGIC   0x57515242u /* 'WQRB' */
#define RING_MAGIC   0x57515252u /* 'WQRR' */
#define BOOT_VERSION 1u
#define BOOT_HELLO   28
#define RING_HELLO   16
#define SMALL_BYTES  (32 * 1024)
#define BCAST_SEG    (256 * 1024) /* broadcast pipeline segment */

typedef struct {
    int lfd;            /* our ring listening socket (closed once the ring is up) */
    int left, right;    /* connections: receive from rank-1, send to rank+1 */
    float *scratch;     /* receive buffer for reductions */
    size_t scratch_n;   /* floats */
    size_t small_bytes; /* all-reduce switch point */
} tcp_t;

/* ---- socket helpers ---------------------------------------------------------------- */

static void
put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char) (v >> 24);
    p[1] = (unsigned char) (v >> 16);
    p[2] = (unsigned char) (v >> 8);
    p[3] = (unsigned char) v;
}

static uint32_t
get32(const unsigned char *p)
{
    return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

static void
put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t) (v >> 32));
    put32(p + 4, (uint32_t) v);
}

static uint64_t
get64(const unsigned char *p)
{
    return (uint64_t) get32(p) << 32 | get32(p + 4);
}

static int
set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void
tune(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static void
close_fd(int *fd)
{
    if (*fd >= 0) {
        /* RST-free close: shutdown first so a peer blocked in recv sees EOF now. */
        shutdown(*fd, SHUT_RDWR);
        close(*fd);
        *fd = -1;
    }
}

static int
ms_left(int64_t deadline)
{
    int64_t left = deadline - wq_clock_mono_ms();
    return left < 0 ? 0 : (left > 1000000 ? 1000000 : (int) left);
}

/* Listening socket on ip:port (port 0 = ephemeral), non-blocking. Returns fd or -1. */
static int
listen_on(uint32_t ip, int port, wq_error_t *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wq_fail_errno(err, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    sa.sin_addr.s_addr = ip;
    if (bind(fd, (struct sockaddr *) &sa, sizeof sa) < 0) {
        wq_fail_errno(err, "cannot listen on port %d", port);
        close(fd);
        return -1;
    }
    if (listen(fd, COMM_MAX_WORLD) < 0 || set_nonblock(fd) < 0) {
        wq_fail_errno(err, "listen");
        close(fd);
        return -1;
    }
    return fd;
}

static int
local_port(int fd)
{
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
        return -1;
    return ntohs(sa.sin_port);
}

/* Accept one connection before the deadline. Returns fd (non-blocking) or -1. */
static int
accept_until(int lfd, int64_t deadline, uint32_t *peer_ip, const char *what, wq_error_t *err)
{
    for (;;) {
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        int r = poll(&p, 1, ms_left(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return wq_fail_errno(err, "poll");
        if (r == 0)
            return wq_fail(err, WQ_ETIMEDOUT, "timed out waiting for %s to connect", what);
        struct sockaddr_in sa;
        socklen_t len = sizeof sa;
        int fd = accept(lfd, (struct sockaddr *) &sa, &len);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
                continue;
            return wq_fail_errno(err, "accept");
        }
        if (set_nonblock(fd) < 0) {
            close(fd);
            return wq_fail_errno(err, "fcntl");
        }
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        tune(fd);
        if (peer_ip)
            *peer_ip = sa.sin_addr.s_addr;
        return fd;
    }
}

/* Connect to ip:port, retrying refused/unreachable attempts every 100 ms until the deadline
 * (the peer may not be listening yet). Returns a non-blocking fd or -1. */
static int
connect_until(uint32_t ip, int port, int64_t deadline, const char *what, wq_error_t *err)
{
    char addr[INET_ADDRSTRLEN];
    struct in_addr ia = {.s_addr = ip};
    inet_ntop(AF_INET, &ia, addr, sizeof addr);
    int last = ETIMEDOUT;
    while (wq_clock_mono_ms() < deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
            return wq_fail_errno(err, "socket");
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
        sa.sin_addr.s_addr = ip;
        int r = connect(fd, (struct sockaddr *) &sa, sizeof sa);
        if (r < 0 && errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int left = ms_left(deadline);
            r = poll(&p, 1, left);
            if (r == 1) {
                int so = 0;
                socklen_t len = sizeof so;
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
                if (so == 0)
                    r = 0;
                else {
                    errno = so;
                    r = -1;
                }
            } else {
                errno = r == 0 ? ETIMEDOUT : errno;
                r = -1;
            }
        }
        if (r == 0) {
            tune(fd);
            return fd;
        }
        last = errno;
        close(fd);
        if (last != ECONNREFUSED && last != ETIMEDOUT && last != EHOSTUNREACH &&
            last != ENETUNREACH && last != EINTR && last != ECONNRESET)
            break;
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    errno = last;
    return wq_fail(err, WQ_ETIMEDOUT, "cannot reach %s at %s:%d: %s", what, addr, port,
                   strerror(last));
}

/* Move slen bytes out of sfd and rlen bytes into rfd at the same time, before the deadline.
 * sfd and rfd may be the same socket (bootstrap) or different ones (ring: right and left).
 * In ring mode (sfd != rfd) the send side must never become readable: if it does, the peer
 * closed. speer/rpeer name the peers in errors. */
static int
xfer(int sfd,
     const void *sbuf,
     size_t slen,
     int rfd,
     void *rbuf,
     size_t rlen,
     int64_t deadline,
     const char *speer,
     const char *rpeer,
     wq_error_t *err)
{
    size_t sent = 0, got = 0;
    int ring = sfd != rfd;
    while (sent < slen || got < rlen) {
        struct pollfd p[2];
        int np = 0, si = -1, ri = -1;
        /* The send side is watched only while we still owe it bytes: a neighbour that got
         * everything from us may finish and close before we have finished receiving. */
        if (sfd >= 0 && sent < slen) {
            si = np++;
            p[si] = (struct pollfd){.fd = sfd, .events = (short) (POLLOUT | (ring ? POLLIN : 0))};
        }
        if (got < rlen) {
            if (!ring && si >= 0) {
                p[si].events |= POLLIN;
                ri = si;
            } else {
                ri = np++;
                p[ri] = (struct pollfd){.fd = rfd, .events = POLLIN};
            }
        }
        int r = poll(p, (nfds_t) np, ms_left(deadline));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return wq_fail_errno(err, "poll");
        if (r == 0)
            return wq_fail(err, WQ_ETIMEDOUT, "timed out waiting for %s",
                           got < rlen ? rpeer : speer);
        if (ri >= 0 && (p[ri].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t n = recv(rfd, (char *) rbuf + got, rlen - got, MSG_DONTWAIT);
            if (n == 0)
                return wq_fail(err, WQ_EPROTO, "%s closed the connection", rpeer);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return wq_fail(err, WQ_EPROTO, "receiving from %s: %s", rpeer, strerror(errno));
            if (n > 0)
                got += (size_t) n;
        }
        if (si >= 0 && ring && si != ri && (p[si].revents & (POLLIN | POLLHUP | POLLERR))) {
            char c;
            ssize_t n = recv(sfd, &c, 1, MSG_DONTWAIT | MSG_PEEK);
            if (n > 0)
                return wq_fail(err, WQ_EPROTO, "%s sent unexpected data", speer);
            if (n == 0 || (errno != EAGAIN && errno != EINTR))
                return wq_fail(err, WQ_EPROTO, "%s closed the connection", speer);
        }
        if (si >= 0 && sent < slen && (p[si].revents & (POLLOUT | POLLERR))) {
            ssize_t n =
                send(sfd, (const char *) sbuf + sent, slen - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                return wq_fail(err, WQ_EPROTO, "sending to %s: %s", speer, strerror(errno));
            if (n > 0)
                sent += (size_t) n;
        }
    }
    return 0;
}

/* ---- bootstrap through rank 0 -------------------------------------------------------- */

static int
boot_root(const comm_opts_t *o, const comm_addr_t *mine, comm_addr_t *table, wq_error_t *err)
{
    int64_t deadline = wq_clock_mono_ms() + o->timeout_ms;
    int P = o->world, rc = -1, seen = 1;
    int *fds = wq_malloc(sizeof(int) * (size_t) P);
    for (int i = 0; i < P; i++)
        fds[i] = -1;
    int lfd = listen_on(htonl(INADDR_ANY), o->master_port, err);
    if (lfd < 0)
        goto out;
    table[0] = *mine;
    while (seen < P) {
        uint32_t ip;
        int fd = accept_until(lfd, deadline, &ip, "the other ranks", err);
        if (fd < 0) {
            wq_fail(err, WQ_ETIMEDOUT, "bootstrap: only %d of %d ranks arrived at port %d in %d s",
                    seen, P, o->master_port, o->timeout_ms / 1000);
            goto out;
        }
        unsigned char h[BOOT_HELLO];
        wq_error_t e2;
        if (xfer(fd, NULL, 0, fd, h, sizeof h, deadline, "a rank", "a rank", &e2) < 0) {
            log_warn("bootstrap: dropped a connection: %s", e2.text);
            close(fd);
            continue;
        }
        uint32_t r = get32(h + 12);
        if (get32(h) != BOOT_MAGIC || get32(h + 4) != BOOT_VERSION ||
            get32(h + 8) != (uint32_t) P || r == 0 || r >= (uint32_t) P || fds[r] >= 0 ||
            get64(h + 20) != o->job_tag) {
            log_warn("bootstrap: refused a hello (wrong magic, version, world size, job or rank "
                     "%u)",
                     r);
            close(fd);
            continue;
        }
        fds[r] = fd;
        table[r].ip = ip;
        table[r].port = (uint16_t) get32(h + 16);
        seen++;
    }
    size_t tlen = 4 + 8 * (size_t) P;
    unsigned char *t = wq_malloc(tlen);
    put32(t, BOOT_MAGIC);
    for (int i = 0; i < P; i++) {
        memcpy(t + 4 + 8 * i, &table[i].ip, 4); /* already network order */
        put32(t + 8 + 8 * i, table[i].port);
    }
    rc = 0;
    for (int i = 1; i < P && rc == 0; i++) {
        char name[32];
        snprintf(name, sizeof name, "rank %d", i);
        rc = xfer(fds[i], t, tlen, fds[i], NULL, 0, deadline, name, name, err);
    }
    free(t);
out:
    for (int i = 0; i < P; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    if (lfd >= 0)
        close(lfd);
    free(fds);
    return rc;
}

int
comm_bootstrap_master(const comm_opts_t *o,
                      const comm_addr_t *mine,
                      comm_addr_t *table,
                      wq_error_t *err)
{
    struct in_addr master;
    if (inet_pton(AF_INET, o->master_addr, &master) != 1)
        return wq_fail(err, WQ_EINVAL, "master address '%s' is not an IPv4 address",
                       o->master_addr);
    if (o->rank == 0) {
        comm_addr_t me = *mine;
        me.ip = master.s_addr; /* what the others can reach us at */
        return boot_root(o, &me, table, err);
    }
    int64_t deadline = wq_clock_mono_ms() + o->timeout_ms;
    int fd = connect_until(master.s_addr, o->master_port, deadline, "rank 0", err);
    if (fd < 0)
        return -1;
    unsigned char h[BOOT_HELLO];
    put32(h, BOOT_MAGIC);
    put32(h + 4, BOOT_VERSION);
    put32(h + 8, (uint32_t) o->world);
    put32(h + 12, (uint32_t) o->rank);
    put32(h + 16, mine->port);
    put64(h + 20, o->job_tag);
    size_t tlen = 4 + 8 * (size_t) o->world;
    unsigned char *t = wq_malloc(tlen);
    int rc = xfer(fd, h, sizeof h, fd, t, tlen, deadline, "rank 0", "rank 0", err);
    if (rc == 0 && get32(t) != BOOT_MAGIC)
        rc = wq_fail(err, WQ_EPROTO, "bootstrap: rank 0 answered with a bad table");
    for (int i = 0; rc == 0 && i < o->world; i++) {
        memcpy(&table[i].ip, t + 4 + 8 * i, 4);
        table[i].port = (uint16_t) get32(t + 8 + 8 * i);
    }
    free(t);
    close(fd);
    return rc;
}

/* ---- the ring ------------------------------------------------------------------------- */

static tcp_t *
impl(comm_t *c)
{
    return c->impl;
}

static void
names(const comm_t *c, char *l, char *r)
{
    snprintf(l, 32, "rank %d", (c->rank + c->world - 1) % c->world);
    snprintf(r, 32, "rank %d", (c->rank + 1) % c->world);
}

static float *
scratch(tcp_t *t, size_t n)
{
    if (t->scratch_n < n) {
        free(t->scratch);
        t->scratch = wq_malloc(sizeof(float) * n);
        t->scratch_n = n;
    }
    return t->scratch;
}

/* Chunk i of P over n floats: near-equal, the first n % P one longer. */
static void
chunk(size_t n, int P, int i, size_t *off, size_t *len)
{
    size_t base = n / (size_t) P, rem = n % (size_t) P, ui = (size_t) i;
    *off = ui * base + (ui < rem ? ui : rem);
    *len = base + (ui < rem ? 1 : 0);
}

static int
ring_step(
    comm_t *c, const void *s, size_t slen, void *r, size_t rlen, int64_t deadline, wq_error_t *err)
{
    tcp_t *t = impl(c);
    char ln[32], rn[32];
    wq_error_t e;
    names(c, ln, rn);
    if (xfer(t->right, s, slen, t->left, r, rlen, deadline, rn, ln, &e) < 0)
        return comm_fail(c, err, "comm: %s", e.text);
    return 0;
}

static int
tcp_allreduce(comm_t *c, float *buf, size_t n, comm_op_t op, wq_error_t *err)
{
    tcp_t *t = impl(c);
    int P = c->world, r = c->rank;
    int64_t deadline = wq_clock_mono_ms() + c->timeout_ms;
    if (n * sizeof(float) <= t->small_bytes) {
        /* Pass whole vectors round the ring: after P-1 steps every rank holds all P. */
        float *all = scratch(t, n * (size_t) P);
        memcpy(all + (size_t) r * n, buf, n * sizeof(float));
        for (int s = 0; s < P - 1; s++) {
            size_t sc = (size_t) ((r - s + P) % P), rc = (size_t) ((r - s - 1 + P) % P);
            if (ring_step(c, all + sc * n, n * sizeof(float), all + rc * n, n * sizeof(float),
                          deadline, err) < 0)
                return -1;
        }
        for (size_t i = 0; i < n; i++) {
            float acc = all[i];
            for (int k = 1; k < P; k++)
                acc += all[(size_t) k * n + i];
            buf[i] = acc;
        }
    } else {
        float *tmp = scratch(t, n / (size_t) P + 1);
        for (int s = 0; s < P - 1; s++) { /* reduce-scatter */
            size_t so, sl, ro, rl;
            chunk(n, P, (r - s + P) % P, &so, &sl);
            chunk(n, P, (r - s - 1 + P) % P, &ro, &rl);
            if (ring_step(c, buf + so, sl * sizeof(float), tmp, rl * sizeof(float), deadline, err) <
                0)
                return -1;
            for (size_t i = 0; i < rl; i++)
                buf[ro + i] += tmp[i];
        }
        for (int s = 0; s < P - 1; s++) { /* all-gather */
            size_t so, sl, ro, rl;
            chunk(n, P, (r + 1 - s + P) % P, &so, &sl);
            chunk(n, P, (r - s + P) % P, &ro, &rl);
            if (ring_step(c, buf + so, sl * sizeof(float), buf + ro, rl * sizeof(float), deadline,
                          err) < 0)
                return -1;
        }
    }
    if (op == COMM_AVG) {
        float fp = (float) P;
        for (size_t i = 0; i < n; i++)
            buf[i] /= fp;
    }
    return 0;
}

/* Chain from root rightwards in segments: each rank receives segment k while forwarding k-1. */
static int
tcp_broadcast(comm_t *c, void *buf, size_t bytes, int root, wq_error_t *err)
{
    int P = c->world;
    if (root < 0 || root >= P)
        return wq_fail(err, WQ_EINVAL, "broadcast root %d out of range", root);
    int64_t deadline = wq_clock_mono_ms() + c->timeout_ms;
    int pos = (c->rank - root + P) % P;
    char *p = buf;
    if (pos == 0)
        return ring_step(c, p, bytes, NULL, 0, deadline, err);
    int forward = pos < P - 1;
    size_t nseg = (bytes + BCAST_SEG - 1) / BCAST_SEG;
    for (size_t k = 0; k <= nseg; k++) {
        size_t soff = (k - 1) * BCAST_SEG, roff = k * BCAST_SEG;
        size_t slen = forward && k >= 1 ? (bytes - soff < BCAST_SEG ? bytes - soff : BCAST_SEG) : 0;
        size_t rlen = k < nseg ? (bytes - roff < BCAST_SEG ? bytes - roff : BCAST_SEG) : 0;
        if (ring_step(c, slen ? p + soff : NULL, slen, rlen ? p + roff : NULL, rlen, deadline,
                      err) < 0)
            return -1;
    }
    return 0;
}

static int
tcp_barrier(comm_t *c, wq_error_t *err)
{
    float one = 1.0f;
    return tcp_allreduce(c, &one, 1, COMM_SUM, err);
}

static void
tcp_abort(comm_t *c)
{
    tcp_t *t = impl(c);
    if (!t)
        return;
    close_fd(&t->left);
    close_fd(&t->right);
    close_fd(&t->lfd);
}

static void
tcp_destroy(comm_t *c)
{
    tcp_t *t = impl(c);
    if (!t)
        return;
    tcp_abort(c);
    free(t->scratch);
    free(t);
    c->impl = NULL;
}

/* Between collectives a closed or reset connection shows as EOF or an error on a peek. Bytes
 * waiting on the left are fine (that neighbour is ahead of us); on the right nothing ever
 * arrives, so anything there means the neighbour is gone or broken. Used by the NCCL transport
 * to notice a killed rank while its GPU spins in a collective. */
static int
tcp_check(comm_t *c, wq_error_t *err)
{
    tcp_t *t = impl(c);
    char ln[32], rn[32];
    names(c, ln, rn);
    int fds[2] = {t->left, t->right};
    for (int k = 0; k < 2; k++) {
        if (fds[k] < 0)
            continue;
        char b;
        ssize_t n = recv(fds[k], &b, 1, MSG_DONTWAIT | MSG_PEEK);
        if (n > 0 && k == 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n > 0)
            return comm_fail(c, err, "comm: %s sent unexpected data", rn);
        return comm_fail(c, err, "comm: %s closed the connection", k == 0 ? ln : rn);
    }
    return 0;
}

static const comm_ops_t tcp_ops = {
    .name = "tcp-ring",
    .allreduce = tcp_allreduce,
    .broadcast = tcp_broadcast,
    .barrier = tcp_barrier,
    .abort = tcp_abort,
    .destroy = tcp_destroy,
    .check = tcp_check,
};

comm_t *
comm_tcp_new(const comm_opts_t *o, comm_bootstrap_fn boot, wq_error_t *err)
{
    comm_t *c = wq_calloc(1, sizeof *c);
    tcp_t *t = wq_calloc(1, sizeof *t);
    comm_addr_t *table = wq_calloc((size_t) o->world, sizeof *table);
    c->ops = &tcp_ops;
    c->impl = t;
    c->rank = o->rank;
    c->world = o->world;
    c->timeout_ms = o->timeout_ms;
    t->left = t->right = -1;
    t->small_bytes = SMALL_BYTES;
    const char *s = getenv("WSLQ_RING_SMALL_BYTES");
    if (s && *s)
        t->small_bytes = (size_t) strtoull(s, NULL, 10);

    t->lfd = listen_on(htonl(INADDR_ANY), 0, err);
    if (t->lfd < 0)
        goto error;
    comm_addr_t mine = {.ip = htonl(INADDR_ANY), .port = (uint16_t) local_port(t->lfd)};
    if (boot(o, &mine, table, err) < 0)
        goto error;

    /* Connect right first (completes in the kernel's backlog even before the peer accepts),
     * then accept from the left, then say who we are. */
    int64_t deadline = wq_clock_mono_ms() + o->timeout_ms;
    int right = (o->rank + 1) % o->world, left = (o->rank + o->world - 1) % o->world;
    char rn[32], ln[32];
    snprintf(rn, sizeof rn, "rank %d", right);
    snprintf(ln, sizeof ln, "rank %d", left);
    t->right = connect_until(table[right].ip, table[right].port, deadline, rn, err);
    if (t->right < 0)
        goto error;
    unsigned char h[RING_HELLO], hin[RING_HELLO];
    put32(h, RING_MAGIC);
    put32(h + 4, (uint32_t) o->rank);
    put64(h + 8, o->job_tag);
    if (xfer(t->right, h, sizeof h, t->right, NULL, 0, deadline, rn, rn, err) < 0)
        goto error;
    while (t->left < 0) {
        int fd = accept_until(t->lfd, deadline, NULL, ln, err);
        if (fd < 0)
            goto error;
        wq_error_t e2;
        if (xfer(fd, NULL, 0, fd, hin, sizeof hin, deadline, ln, ln, &e2) < 0 ||
            get32(hin) != RING_MAGIC || get32(hin + 4) != (uint32_t) left ||
            get64(hin + 8) != o->job_tag) {
            log_warn("comm: refused a ring connection that is not from %s", ln);
            close(fd);
            continue;
        }
        t->left = fd;
    }
    close_fd(&t->lfd);
    free(table);
    return c;
error:
    free(table);
    tcp_destroy(c);
    free(c);
    return NULL;
}
