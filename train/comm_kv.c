/* The rendezvous-store bootstrap: under wslq each rank publishes its ring address in the
 * job's key/value store (through WSLQ_RENDEZVOUS, the local worker's socket) and waits for
 * everyone else's. Nothing needs a fixed port free on rank 0's node, and ranks find each
 * other even when the job's launcher is not wslq-train itself.
 *
 * A job may run the trainer more than once (a script with two trainings): each rank counts
 * its bootstraps in a small file beside the rendezvous socket, and the keys carry that
 * generation, so a second run never reads the first run's addresses. Every rank runs the
 * same sequence of trainings, so the counts agree. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/rdvc.h"
#include "train/comm.h"

/* The local address this host uses to reach 'peer' (no packet is sent: a UDP connect only
 * picks the route). */
static int
local_addr_towards(const char *peer, uint32_t *ip, wq_error_t *err)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(9)};
    if (inet_pton(AF_INET, peer, &sa.sin_addr) != 1)
        return wq_fail(err, WQ_EINVAL, "master address '%s' is not an IPv4 address", peer);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return wq_fail_errno(err, "socket");
    struct sockaddr_in me;
    socklen_t len = sizeof me;
    int rc = 0;
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) < 0 ||
        getsockname(fd, (struct sockaddr *) &me, &len) < 0)
        rc = wq_fail_errno(err, "no route to %s", peer);
    else
        *ip = me.sin_addr.s_addr;
    close(fd);
    return rc;
}

/* This rank's bootstrap count in this job, from a counter file beside the socket. */
static int
next_generation(const char *rdv, int rank, unsigned *gen, wq_error_t *err)
{
    const char *slash = strrchr(rdv, '/');
    int dirlen = slash ? (int) (slash - rdv) : 1;
    char path[4200];
    snprintf(path, sizeof path, "%.*s/train-boot.%d", dirlen, slash ? rdv : ".", rank);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return wq_fail_errno(err, "cannot open %s", path);
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    unsigned g = n > 0 ? (unsigned) strtoul(buf, NULL, 10) : 0;
    int len = snprintf(buf, sizeof buf, "%u\n", g + 1);
    int rc = 0;
    if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t) len, 0) != len)
        rc = wq_fail_errno(err, "cannot write %s", path);
    close(fd);
    *gen = g;
    return rc;
}

int
comm_bootstrap_kv(const comm_opts_t *o,
                  const comm_addr_t *mine,
                  comm_addr_t *table,
                  wq_error_t *err)
{
    const char *rdv = getenv("WSLQ_RENDEZVOUS");
    uint32_t ip = 0;
    unsigned gen = 0;
    if (local_addr_towards(o->master_addr, &ip, err) < 0 ||
        next_generation(rdv ? rdv : "", o->rank, &gen, err) < 0)
        return -1;
    char key[96], val[64], addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &ip, addr, sizeof addr);
    snprintf(key, sizeof key, "wslq-train.%u.ring.%d", gen, o->rank);
    snprintf(val, sizeof val, "%s:%u", addr, (unsigned) mine->port);
    if (rdvc_put(rdv, key, val, strlen(val), err) < 0)
        return -1;
    int64_t deadline = wq_clock_mono_ms() + o->timeout_ms;
    for (int r = 0; r < o->world; r++) {
        int64_t left = deadline - wq_clock_mono_ms();
        if (left <= 0)
            return wq_fail(err, WQ_ETIMEDOUT,
                           "bootstrap: rank %d did not publish its address "
                           "within the deadline",
                           r);
        snprintf(key, sizeof key, "wslq-train.%u.ring.%d", gen, r);
        char got[64];
        size_t len = 0;
        wq_error_t e = {0};
        if (rdvc_get(rdv, key, (int) left, got, sizeof got - 1, &len, &e) < 0)
            return wq_fail(err, e.code == WQ_ETIMEDOUT ? WQ_ETIMEDOUT : e.code,
                           "bootstrap: rank %d's address: %s", r, e.text);
        got[len] = '\0';
        char *colon = strrchr(got, ':');
        struct in_addr a;
        unsigned long port = colon ? strtoul(colon + 1, NULL, 10) : 0;
        if (colon)
            *colon = '\0';
        if (colon == NULL || inet_pton(AF_INET, got, &a) != 1 || port == 0 || port > 65535)
            return wq_fail(err, WQ_EPROTO, "bootstrap: rank %d published a bad address", r);
        table[r].ip = a.s_addr;
        table[r].port = (uint16_t) port;
    }
    return 0;
}
