/* wslq doctor --scheduler-host: the scheduler host's checks (doctor_sched.h). The pure parts first,
 * then the checks, each one function adding one line to a node/doctor.h report. */
#include "cli/doctor_sched.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <ini.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "common/mem.h"
#include "proto/keys.h"
#include "proto/nodecheck.h"

#define CONNECT_TIMEOUT_MS 2000
#define MAX_ADDRS          16
#define WAL_WARN_BYTES     (256ull << 20)

/* ---------- pure parts ---------- */

static void
copy(char *dst, size_t n, const char *v)
{
    snprintf(dst, n, "%s", v);
}

static int
on_ini(void *user, const char *section, const char *name, const char *value)
{
    dsched_conf_t *c = user;
    if (strcmp(section, "scheduler") != 0)
        return 1;
    c->found = 1;
    if (strcmp(name, "listen") == 0)
        copy(c->listen, sizeof c->listen, value);
    else if (strcmp(name, "state_dir") == 0 || strcmp(name, "state-dir") == 0)
        copy(c->state_dir, sizeof c->state_dir, value);
    else if (strcmp(name, "http") == 0)
        copy(c->http, sizeof c->http, value);
    else if (strcmp(name, "http_token_file") == 0 || strcmp(name, "http-token") == 0)
        copy(c->http_token, sizeof c->http_token, value);
    else if (strcmp(name, "http_public") == 0 || strcmp(name, "http-public") == 0)
        c->http_public = strcmp(value, "summary") == 0;
    else if (strcmp(name, "insecure") == 0)
        c->insecure = strcmp(value, "yes") == 0;
    return 1; /* the scheduler checks its own keys; the doctor reads what it needs */
}

int
dsched_conf_load(dsched_conf_t *c, const char *path, wq_error_t *err)
{
    memset(c, 0, sizeof *c);
    copy(c->listen, sizeof c->listen, "tcp://*:7420");
    copy(c->state_dir, sizeof c->state_dir, "/var/lib/wslq/scheduler");
    copy(c->http, sizeof c->http, "127.0.0.1:7421");
    if (path == NULL || path[0] == '\0')
        return 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        return wq_fail_errno(err, "cannot read config %.200s", path);
    }
    copy(c->path, sizeof c->path, path);
    int rc = ini_parse_file(f, on_ini, c);
    fclose(f);
    if (rc != 0)
        return wq_fail(err, WQ_EINVAL, "%.200s:%d: syntax error", path, rc);
    return 0;
}

int
dsched_endpoint(const char *ep, char *host, size_t hsize, unsigned *port)
{
    if (strncmp(ep, "tcp://", 6) != 0)
        return -1;
    const char *h = ep + 6, *colon = strrchr(h, ':');
    if (colon == NULL || colon[1] == '\0')
        return -1;
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end != '\0' || errno || p == 0 || p > 65535)
        return -1;
    size_t n = (size_t) (colon - h);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= hsize)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (unsigned) p;
    return 0;
}

int
dsched_is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "::1") == 0;
}

int
dsched_is_any(const char *host)
{
    return host[0] == '\0' || strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0 ||
           strcmp(host, "::") == 0;
}

int
dsched_ntp_parse(const char *out)
{
    const char *p = strstr(out, "NTPSynchronized=");
    if (p == NULL || (p != out && p[-1] != '\n'))
        return -1;
    p += strlen("NTPSynchronized=");
    if (strncmp(p, "yes", 3) == 0 && (p[3] == '\0' || p[3] == '\n'))
        return 1;
    if (strncmp(p, "no", 2) == 0 && (p[2] == '\0' || p[2] == '\n'))
        return 0;
    return -1;
}

doctor_verdict_t
dsched_key_mode(mode_t mode, char *why, size_t size)
{
    unsigned m = (unsigned) mode & 0777;
    if (mode & (S_IRWXG | S_IRWXO)) {
        snprintf(why, size, "mode %04o: %s may read or change it", m,
                 (mode & S_IRWXO) ? "every user of this host" : "its group");
        return DOCTOR_FAIL;
    }
    snprintf(why, size, "mode %04o, its owner's only", m);
    return DOCTOR_PASS;
}

int
dsched_sqlite_header(const unsigned char *hdr, size_t n, uint32_t *user_version)
{
    static const char magic[16] = "SQLite format 3";
    if (n < 100 || memcmp(hdr, magic, sizeof magic) != 0)
        return -1;
    /* the file format: user_version is the big-endian 4 bytes at offset 60 */
    *user_version = (uint32_t) hdr[60] << 24 | (uint32_t) hdr[61] << 16 | (uint32_t) hdr[62] << 8 |
                    (uint32_t) hdr[63];
    return 0;
}

doctor_verdict_t
dsched_disk_verdict(uint64_t avail, uint64_t total)
{
    if (avail < (100ull << 20))
        return DOCTOR_FAIL;
    if (avail < (1ull << 30) || (total > 0 && avail * 100 < total * 5))
        return DOCTOR_WARN;
    return DOCTOR_PASS;
}

/* ---------- the checks ---------- */

typedef struct {
    doctor_report_t *r;
    dsched_conf_t conf;
    const char *conf_path;     /* where a fix says to set a key */
    char addrs[MAX_ADDRS][64]; /* this host's LAN IPv4 addresses */
    int n_addrs;
    int pid;               /* the running scheduler, 0 unknown */
    Wslq__Envelope *nodes; /* its NodesReply, NULL if it did not answer */
} dctx_t;

static const char *
human(uint64_t b, char *buf, size_t n)
{
    if (b >= (1ull << 30))
        snprintf(buf, n, "%.1f GiB", (double) b / (double) (1ull << 30));
    else if (b >= (1ull << 20))
        snprintf(buf, n, "%.1f MiB", (double) b / (double) (1ull << 20));
    else
        snprintf(buf, n, "%" PRIu64 " KiB", (b + 1023) / 1024);
    return buf;
}

/* 1 when a TCP connection to ip:port is accepted within the timeout. */
static int
tcp_reaches(const char *ip, unsigned port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t) port)};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
        return 0;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int ok = 0;
    if (connect(fd, (struct sockaddr *) &sa, sizeof sa) == 0) {
        ok = 1;
    } else if (errno == EINPROGRESS) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        int e = 0;
        socklen_t el = sizeof e;
        if (poll(&p, 1, CONNECT_TIMEOUT_MS) == 1 &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e == 0)
            ok = 1;
    }
    close(fd);
    return ok;
}

/* --lan-addr's list, or this host's addresses. -1 with err when the list is not IPv4
 * addresses. */
static int
lan_addrs(dctx_t *d, const char *given, wq_error_t *err)
{
    if (given != NULL) {
        char *dup = wq_strdup(given), *save = NULL;
        struct in_addr a;
        for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (inet_pton(AF_INET, t, &a) != 1 || d->n_addrs == MAX_ADDRS) {
                wq_fail(err, WQ_EINVAL, "--lan-addr: '%.60s' is %s", t,
                        d->n_addrs == MAX_ADDRS ? "one too many (16 at most)"
                                                : "not an IPv4 address");
                free(dup);
                return -1;
            }
            copy(d->addrs[d->n_addrs++], sizeof d->addrs[0], t);
        }
        free(dup);
        if (d->n_addrs == 0)
            return wq_fail(err, WQ_EINVAL, "--lan-addr: give one or more IPv4 addresses");
        return 0;
    }
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) < 0)
        return 0;
    for (struct ifaddrs *i = ifa; i && d->n_addrs < MAX_ADDRS; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, d->addrs[d->n_addrs],
                  sizeof d->addrs[0]);
        d->n_addrs++;
    }
    freeifaddrs(ifa);
    return 0;
}

/* The IPv4 address of interface name, "" if none. */
static void
iface_addr(const char *name, char *out, size_t n)
{
    out[0] = '\0';
    struct ifaddrs *ifa = NULL;
    if (getifaddrs(&ifa) < 0)
        return;
    for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && strcmp(i->ifa_name, name) == 0) {
            inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, out, n);
            break;
        }
    freeifaddrs(ifa);
}

static int
is_lan(const dctx_t *d, const char *host)
{
    for (int i = 0; i < d->n_addrs; i++)
        if (strcmp(d->addrs[i], host) == 0)
            return 1;
    return 0;
}

static void
check_config(dctx_t *d)
{
    const dsched_conf_t *c = &d->conf;
    if (c->found)
        doctor_add(d->r, "sched.config", DOCTOR_INFO, NULL,
                   "[scheduler] of %.200s: listen %.100s, state_dir %.200s, http %.80s", c->path,
                   c->listen, c->state_dir, c->http);
    else
        doctor_add(d->r, "sched.config", DOCTOR_INFO, NULL,
                   "no [scheduler] section in %.200s: the scheduler's defaults are assumed "
                   "(listen %s, state_dir %s, http %s)",
                   d->conf_path, c->listen, c->state_dir, c->http);
}

/* The lock the running scheduler holds (flock) and the pid it wrote there. */
static void
check_process(dctx_t *d)
{
    char *path = wq_asprintf("%s/scheduler.lock", d->conf.state_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        doctor_check_t *ck = doctor_add(d->r, "sched.process", DOCTOR_FAIL, NULL,
                                        "no scheduler has run on %.200s (%.200s: %s)",
                                        d->conf.state_dir, path, strerror(errno));
        snprintf(ck->fix, sizeof ck->fix,
                 "systemctl start wslq-scheduler; or set state_dir in [scheduler] of %.150s",
                 d->conf_path);
        free(path);
        return;
    }
    char buf[32] = "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    d->pid = atoi(buf);
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) { /* nobody holds it: no scheduler runs */
        flock(fd, LOCK_UN);
        d->pid = 0;
        doctor_add(d->r, "sched.process", DOCTOR_FAIL,
                   "systemctl start wslq-scheduler; journalctl -u wslq-scheduler says why it "
                   "stopped",
                   "no scheduler is running on %.200s (its lock is free)", d->conf.state_dir);
    } else {
        doctor_add(d->r, "sched.process", DOCTOR_PASS, NULL, "running on %.200s, pid %d",
                   d->conf.state_dir, d->pid);
    }
    close(fd);
    free(path);
}

static void
check_answers(dctx_t *d, cli_ctx_t *ctx)
{
    wq_error_t err = {0};
    int creds = ctx->credentials[0] && access(ctx->credentials, F_OK) == 0;
    client_t *c = client_new(ctx, &err);
    if (c != NULL) {
        d->nodes = client_nodes(c, NULL, &err);
        client_destroy(&c);
    }
    char how[300];
    if (creds)
        snprintf(how, sizeof how, "over CURVE with %.200s", ctx->credentials);
    else
        snprintf(how, sizeof how, "on its admin socket %.200s", ctx->admin_socket);
    if (d->nodes == NULL) {
        doctor_add(d->r, "sched.answers", DOCTOR_FAIL,
                   "is it running (sched.process)? as root on this host the admin socket needs "
                   "no key; else 'wslq login CODE'",
                   "no answer %s: %.160s", how, err.text);
        return;
    }
    doctor_add(d->r, "sched.answers", DOCTOR_PASS, NULL, "answers %s: nodes known: %zu", how,
               d->nodes->nodes_reply->n_nodes);
}

/* Connect to host:port as other PCs would, through each LAN address it is bound to. */
static void
reach(dctx_t *d,
      const char *id,
      const char *key,
      const char *value,
      const char *host,
      unsigned port,
      int expect_lan)
{
    if (dsched_is_loopback(host) && !is_lan(d, host)) {
        doctor_check_t *ck = doctor_add(d->r, id, expect_lan ? DOCTOR_WARN : DOCTOR_INFO, NULL,
                                        "%s = %.100s is this host only: %s", key, value,
                                        strcmp(key, "listen") == 0
                                            ? "workers and users on other PCs cannot reach it"
                                            : "people and monitoring on other PCs cannot open it");
        if (strcmp(key, "listen") == 0)
            snprintf(ck->fix, sizeof ck->fix,
                     "set listen = tcp://0.0.0.0:%u in [scheduler] of %.150s, restart it, and "
                     "open %u/tcp in the firewall",
                     port, d->conf_path, port);
        else
            snprintf(ck->fix, sizeof ck->fix,
                     "for the LAN: http = eth0:%u (the LAN interface) in [scheduler] of %.150s",
                     port, d->conf_path);
        return;
    }
    char targets[MAX_ADDRS][64];
    int n = 0;
    if (dsched_is_any(host)) {
        for (int i = 0; i < d->n_addrs; i++)
            copy(targets[n++], sizeof targets[0], d->addrs[i]);
    } else {
        copy(targets[n++], sizeof targets[0], host);
    }
    if (n == 0) {
        doctor_add(d->r, id, DOCTOR_WARN,
                   "connect this host to the lab's network (or give --lan-addr)",
                   "%s = %.100s, but this host has no LAN IPv4 address to test it on", key, value);
        return;
    }
    char ok[MAX_ADDRS * 72] = "", bad[MAX_ADDRS * 72] = "";
    for (int i = 0; i < n; i++) {
        char *dst = tcp_reaches(targets[i], port) ? ok : bad;
        size_t len = strlen(dst);
        snprintf(dst + len, sizeof ok - len, "%s%.63s:%u", len ? ", " : "", targets[i], port);
    }
    if (bad[0]) {
        doctor_check_t *ck = doctor_add(d->r, id, DOCTOR_FAIL, NULL,
                                        "%s = %.100s: nothing answers at %.200s%s%.200s", key,
                                        value, bad, ok[0] ? " (it does at " : "", ok);
        if (ok[0])
            snprintf(ck->summary + strlen(ck->summary), sizeof ck->summary - strlen(ck->summary),
                     ")");
        snprintf(ck->fix, sizeof ck->fix,
                 "is the scheduler running with this config? a host firewall (ufw, nftables) "
                 "must let %u/tcp in",
                 port);
        return;
    }
    doctor_add(d->r, id, DOCTOR_PASS, NULL, "%s = %.100s: reachable from this host at %.300s", key,
               value, ok);
}

static void
check_listen(dctx_t *d)
{
    char host[256];
    unsigned port;
    if (strncmp(d->conf.listen, "ipc://", 6) == 0) {
        doctor_add(d->r, "sched.listen", DOCTOR_WARN, NULL,
                   "listen = %.200s is a local socket: no worker on another PC can reach it",
                   d->conf.listen);
        return;
    }
    if (dsched_endpoint(d->conf.listen, host, sizeof host, &port) < 0) {
        doctor_add(d->r, "sched.listen", DOCTOR_FAIL, "write it as tcp://0.0.0.0:7420",
                   "listen = %.200s is not tcp://HOST:PORT", d->conf.listen);
        return;
    }
    reach(d, "sched.listen", "listen", d->conf.listen, host, port, 1);
}

static void
check_http(dctx_t *d)
{
    const char *v = d->conf.http;
    if (strcmp(v, "off") == 0) {
        doctor_add(d->r, "sched.http", DOCTOR_INFO, NULL, "http = off: no dashboard or /metrics");
        return;
    }
    char host[256], ep[600];
    unsigned port;
    snprintf(ep, sizeof ep, "tcp://%s", v);
    if (dsched_endpoint(ep, host, sizeof host, &port) < 0) {
        doctor_add(d->r, "sched.http", DOCTOR_FAIL, "write it as ADDR:PORT (eth0:7421)",
                   "http = %.200s is not ADDR:PORT", v);
        return;
    }
    /* an interface name stands for its address when the scheduler started */
    if (!dsched_is_any(host) && strchr(host, '.') == NULL && strchr(host, ':') == NULL &&
        strcmp(host, "localhost") != 0) {
        char ip[64];
        iface_addr(host, ip, sizeof ip);
        if (ip[0] == '\0') {
            doctor_add(d->r, "sched.http", DOCTOR_FAIL,
                       "name the LAN interface (ip -4 addr) or its address",
                       "http = %.200s: this host has no interface %.60s with an IPv4 address", v,
                       host);
            return;
        }
        copy(host, sizeof host, ip);
    }
    /* a monitoring token or public summary is for readers on other machines */
    int expect_lan = d->conf.http_token[0] != '\0' || d->conf.http_public;
    reach(d, "sched.http", "http", v, host, port, expect_lan);
}

static void
check_ntp(dctx_t *d)
{
    FILE *p = popen("timedatectl show -p NTPSynchronized 2>&1", "r");
    char out[512] = "";
    size_t n = 0;
    if (p != NULL) {
        n = fread(out, 1, sizeof out - 1, p);
        out[n] = '\0';
    }
    int st = p ? pclose(p) : -1;
    int sync = st == 0 ? dsched_ntp_parse(out) : -1;
    if (sync == 1) {
        doctor_add(d->r, "time.ntp", DOCTOR_PASS, NULL, "the clock is synchronised (NTP)");
        return;
    }
    if (sync == 0) {
        doctor_add(d->r, "time.ntp", DOCTOR_WARN,
                   "timedatectl set-ntp true (systemd-timesyncd or chrony)",
                   "the clock is not synchronised by NTP: job times and node offsets drift");
        return;
    }
    char *nl = strchr(out, '\n');
    if (nl)
        *nl = '\0';
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        copy(out, sizeof out, "no timedatectl on this host");
    doctor_add(d->r, "time.ntp", DOCTOR_INFO, NULL, "skipped: %.200s",
               out[0] ? out : "timedatectl gave no answer");
}

/* Each node's clock as the scheduler measured it (its time.offset check). */
static void
check_node_clocks(dctx_t *d)
{
    if (d->nodes == NULL) {
        doctor_add(d->r, "time.nodes", DOCTOR_INFO, NULL,
                   "skipped: the scheduler did not answer (sched.answers)");
        return;
    }
    const Wslq__NodesReply *r = d->nodes->nodes_reply;
    char warn[256] = "", fix[256] = "";
    size_t measured = 0, warned = 0;
    for (size_t i = 0; i < r->n_nodes; i++) {
        const Wslq__NodeCheck *ck =
            nodecheck_find(r->nodes[i]->checks, r->nodes[i]->n_checks, "time.offset");
        if (ck == NULL)
            continue;
        measured++;
        if (ck->verdict < WSLQ__CHECK_VERDICT__CHECK_WARN)
            continue;
        warned++;
        size_t len = strlen(warn);
        snprintf(warn + len, sizeof warn - len, "%s%.40s %.80s", len ? "; " : "", r->nodes[i]->name,
                 ck->summary);
        copy(fix, sizeof fix, ck->fix);
    }
    if (r->n_nodes == 0)
        doctor_add(d->r, "time.nodes", DOCTOR_INFO, NULL, "no nodes registered yet");
    else if (warned)
        doctor_add(d->r, "time.nodes", DOCTOR_WARN, fix, "%zu of %zu nodes off this clock: %s",
                   warned, r->n_nodes, warn);
    else
        doctor_add(d->r, "time.nodes", DOCTOR_PASS, NULL,
                   "%zu of %zu nodes measured, every one within 0.5 s of this clock", measured,
                   r->n_nodes);
}

static void
check_state(dctx_t *d)
{
    const char *dir = d->conf.state_dir;
    struct stat st;
    if (stat(dir, &st) < 0) {
        doctor_add(d->r, "state.dir", DOCTOR_FAIL, "the scheduler makes it at its first start",
                   "%.200s: %s", dir, strerror(errno));
        return;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        doctor_check_t *ck =
            doctor_add(d->r, "state.dir", DOCTOR_WARN, NULL,
                       "%.200s is mode %04o: others may read the jobs' commands and logs", dir,
                       (unsigned) st.st_mode & 0777);
        snprintf(ck->fix, sizeof ck->fix, "chmod 700 %.200s", dir);
    } else {
        doctor_add(d->r, "state.dir", DOCTOR_PASS, NULL, "%.200s is mode %04o", dir,
                   (unsigned) st.st_mode & 0777);
    }
    struct statvfs vfs;
    char a[32], t[32];
    if (statvfs(dir, &vfs) == 0) {
        uint64_t avail = (uint64_t) vfs.f_bavail * vfs.f_frsize;
        uint64_t total = (uint64_t) vfs.f_blocks * vfs.f_frsize;
        doctor_verdict_t v = dsched_disk_verdict(avail, total);
        doctor_add(d->r, "state.disk", v,
                   v == DOCTOR_PASS ? NULL
                                    : "free space there: the scheduler stops (exit 3) when it "
                                      "cannot write its queue",
                   "%s free of %s on the state directory's file system", human(avail, a, sizeof a),
                   human(total, t, sizeof t));
    }
}

static void
check_db(dctx_t *d)
{
    char *path = wq_asprintf("%s/queue.db", d->conf.state_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        doctor_add(d->r, "state.db", DOCTOR_FAIL, "the scheduler makes it at its first start",
                   "%.200s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(path);
        return;
    }
    unsigned char hdr[100];
    ssize_t n = read(fd, hdr, sizeof hdr);
    close(fd);
    uint32_t schema = 0; /* the header's is as of the last checkpoint: not shown */
    if (n < 0 || dsched_sqlite_header(hdr, (size_t) n, &schema) < 0) {
        doctor_add(d->r, "state.db", DOCTOR_FAIL,
                   "restore it from a backup; the scheduler refuses to start on it",
                   "%.200s is not an SQLite database (%zd bytes read)", path, n);
        free(path);
        return;
    }
    char *wal = wq_asprintf("%s-wal", path);
    struct stat ws;
    uint64_t wal_bytes = stat(wal, &ws) == 0 ? (uint64_t) ws.st_size : 0;
    free(wal);
    char a[32], b[32];
    doctor_verdict_t v = DOCTOR_PASS;
    char why[200] = "";
    /* the scheduler's account (the owner of its process) must be able to write it */
    char proc[64];
    struct stat ps;
    snprintf(proc, sizeof proc, "/proc/%d", d->pid);
    if (!(st.st_mode & S_IWUSR)) {
        v = DOCTOR_FAIL;
        snprintf(why, sizeof why, ": its owner may not write it (mode %04o)",
                 (unsigned) st.st_mode & 0777);
    } else if (d->pid > 0 && stat(proc, &ps) == 0 && ps.st_uid != st.st_uid && ps.st_uid != 0) {
        v = DOCTOR_FAIL;
        snprintf(why, sizeof why, ": owned by uid %u, the scheduler runs as uid %u",
                 (unsigned) st.st_uid, (unsigned) ps.st_uid);
    } else if (wal_bytes > WAL_WARN_BYTES) {
        v = DOCTOR_WARN;
        snprintf(why, sizeof why, ": the WAL is large (a reader holding it open?)");
    }
    doctor_add(d->r, "state.db", v,
               v == DOCTOR_PASS   ? NULL
               : v == DOCTOR_WARN ? "restart the scheduler; it checkpoints the WAL"
                                  : "chown and chmod 600 it for the scheduler's account",
               "%.200s: SQLite, %s, WAL %s%s (its quick_check runs at each start)", path,
               human((uint64_t) st.st_size, a, sizeof a), human(wal_bytes, b, sizeof b), why);
    free(path);
}

/* A secret the scheduler holds: present, its owner's only. */
static void
check_secret_file(dctx_t *d, const char *id, const char *path, int is_keys)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        doctor_add(d->r, id, DOCTOR_FAIL,
                   is_keys ? "the scheduler makes its key pair at its first start" : NULL,
                   "%.200s: %s", path, strerror(errno));
        return;
    }
    char why[160];
    doctor_verdict_t v = dsched_key_mode(st.st_mode, why, sizeof why);
    if (v == DOCTOR_FAIL) {
        doctor_check_t *ck = doctor_add(d->r, id, v, NULL, "%.200s is %s", path, why);
        snprintf(ck->fix, sizeof ck->fix,
                 "chmod 600 %.120s (then revoke and remake it if others "
                 "read it)",
                 path);
        return;
    }
    if (is_keys) {
        keys_creds_t k;
        wq_error_t err = {0};
        if (keys_load(path, &k, &err) < 0 || k.public_[0] == '\0' || k.secret[0] == '\0') {
            doctor_add(d->r, id, DOCTOR_FAIL,
                       "restore it from a backup (or remove it: a new "
                       "key means enrolling every user and PC again)",
                       "%.200s cannot be used: %.120s", path,
                       err.text[0] ? err.text : "no key pair in it");
            return;
        }
        doctor_add(d->r, id, DOCTOR_PASS, NULL, "%.200s: %s, public key %.12s...", path, why,
                   k.public_);
        return;
    }
    doctor_add(d->r, id, DOCTOR_PASS, NULL, "%.200s: %s", path, why);
}

static void
check_keys(dctx_t *d)
{
    if (d->conf.insecure) {
        doctor_add(d->r, "keys.server", DOCTOR_WARN,
                   "remove insecure = yes: for test clusters only",
                   "insecure = yes: no CURVE, anyone who reaches the port is any user or node");
    } else {
        char *path = wq_asprintf("%s/server.key", d->conf.state_dir);
        check_secret_file(d, "keys.server", path, 1);
        free(path);
    }
    if (d->conf.http_token[0])
        check_secret_file(d, "keys.http_token", d->conf.http_token, 0);
}

static cJSON *
to_json(const dctx_t *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *s = cJSON_AddObjectToObject(o, "scheduler");
    cJSON_AddStringToObject(s, "config", d->conf_path);
    cJSON_AddStringToObject(s, "listen", d->conf.listen);
    cJSON_AddStringToObject(s, "state_dir", d->conf.state_dir);
    cJSON_AddStringToObject(s, "http", d->conf.http);
    cJSON_AddNumberToObject(s, "pid", d->pid);
    doctor_checks_to_json(d->r, o);
    return o;
}

int
doctor_sched_run(cli_ctx_t *ctx, const char *config, const char *lan, int json)
{
    dctx_t d = {0};
    wq_error_t err = {0};
    int given = config != NULL; /* the system file's [client] is already applied */
    if (config == NULL) {
        const char *sys = getenv("WSLQ_SYSTEM_CONFIG");
        config = sys && *sys ? sys : CLI_SYSTEM_CONFIG;
    }
    if (dsched_conf_load(&d.conf, config, &err) < 0 ||
        (given && d.conf.path[0] && cli_conf_load(ctx, config, &err) < 0)) {
        fprintf(stderr, "wslq: doctor: %s\n", err.text);
        return CLI_USAGE;
    }
    d.conf_path = config;
    if (ctx->admin_socket == NULL || !d.conf.found) {
        static char sock[4200];
        snprintf(sock, sizeof sock, "%s/admin.sock", d.conf.state_dir);
        if (ctx->admin_socket == NULL || strcmp(ctx->admin_socket, CLI_DEFAULT_ADMIN_SOCKET) == 0)
            ctx->admin_socket = sock;
    }
    if (lan_addrs(&d, lan, &err) < 0)
        return cli_usage_error(ctx, "%s", err.text);
    d.r = doctor_report_new();
    check_config(&d);
    check_process(&d);
    check_answers(&d, ctx);
    check_listen(&d);
    check_http(&d);
    check_ntp(&d);
    check_node_clocks(&d);
    check_state(&d);
    check_db(&d);
    check_keys(&d);
    int rc = doctor_exit_code(d.r);
    if (json) {
        if (cli_print_json(to_json(&d)) != CLI_OK)
            rc = CLI_FAIL;
    } else {
        doctor_print(d.r, stdout);
    }
    wire_free(&d.nodes);
    doctor_destroy(&d.r);
    return rc;
}
