/* Node facts read through a root prefix; see facts.h for the files and the heuristics. */
#include "node/facts.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <ini.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "node/node_internal.h"

#define MAX_ADDRS 64

int
node_root_is_real(const char *root)
{
    return root == NULL || root[0] == '\0' || strcmp(root, "/") == 0;
}

char *
node_path(char *buf, size_t size, const char *root, const char *path)
{
    int n;
    if (node_root_is_real(root)) {
        n = snprintf(buf, size, "%s", path);
    } else {
        size_t rl = strlen(root);
        while (rl > 1 && root[rl - 1] == '/')
            rl--;
        n = snprintf(buf, size, "%.*s%s", (int) rl, root, path);
    }
    if (n < 0 || (size_t) n >= size)
        return NULL;
    return buf;
}

int
node_read_file(const char *root, const char *path, char *buf, size_t size)
{
    char p[4096];
    if (size == 0 || !node_path(p, sizeof p, root, path))
        return -1;
    FILE *f = fopen(p, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return (int) n;
}

static int
path_exists(const char *root, const char *path)
{
    char p[4096];
    return node_path(p, sizeof p, root, path) && access(p, F_OK) == 0;
}

void
node_copy(char *dst, size_t size, const char *src)
{
    if (size == 0)
        return;
    size_t n = strnlen(src, size - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int
node_ci_contains(const char *hay, const char *needle)
{
    size_t nl = strlen(needle);
    for (; *hay; hay++)
        if (strncasecmp(hay, needle, nl) == 0)
            return 1;
    return nl == 0;
}

int
node_parse_bool(const char *s)
{
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") || !strcmp(s, "1"))
        return 1;
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") || !strcmp(s, "0"))
        return 0;
    return -1;
}

struct ini_query {
    const char *section, *key;
    char *out;
    size_t size;
    int found;
};

static int
ini_cb(void *user, const char *section, const char *name, const char *value)
{
    struct ini_query *q = user;
    if (strcasecmp(section, q->section) != 0 || strcasecmp(name, q->key) != 0)
        return 1;
    /* .wslconfig files in the wild carry "key=value   # comment"; inih only strips ';'. */
    char v[256];
    node_copy(v, sizeof v, value);
    char *hash = strchr(v, '#');
    if (hash)
        *hash = '\0';
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
        v[--n] = '\0';
    char *s = v;
    if (n >= 2 && (s[0] == '"' || s[0] == '\'') && s[n - 1] == s[0]) {
        s[n - 1] = '\0';
        s++;
    }
    node_copy(q->out, q->size, s);
    q->found = 1;
    return 1;
}

int
node_ini_get(const char *file, const char *section, const char *key, char *out, size_t size)
{
    struct ini_query q = {section, key, out, size, 0};
    if (size)
        out[0] = '\0';
    FILE *f = fopen(file, "r");
    if (!f)
        return -1;
    /* A syntax error on one line is not fatal: inih keeps parsing and we keep what we got. */
    (void) ini_parse_file(f, ini_cb, &q);
    fclose(f);
    return q.found;
}

int
node_run_output(const char *const argv[], int timeout_ms, char *out, size_t size)
{
    int fds[2];
    if (size)
        out[0] = '\0';
    if (size == 0 || pipe(fds) < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 2);
        }
        dup2(fds[1], 1);
        close(fds[0]);
        execv(argv[0], (char *const *) argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    char buf[512];
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int timed_out = 0;
    for (;;) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        long waited = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
        if (waited >= timeout_ms) {
            timed_out = 1;
            break;
        }
        struct pollfd p = {fds[0], POLLIN, 0};
        int r = poll(&p, 1, (int) (timeout_ms - waited));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        size_t keep = (size_t) n < size - 1 - len ? (size_t) n : size - 1 - len;
        memcpy(out + len, buf, keep); /* the rest is read and dropped, so the child ends */
        len += keep;
    }
    out[len] = '\0';
    close(fds[0]);
    if (timed_out)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (timed_out || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int
node_run_line(const char *const argv[], int timeout_ms, char *out, size_t size)
{
    char buf[512];
    int rc = node_run_output(argv, timeout_ms, buf, sizeof buf);
    buf[strcspn(buf, "\r\n")] = '\0';
    node_copy(out, size, buf);
    return rc;
}

/* ---- facts ------------------------------------------------------------------------------ */

static void
read_kernel(const char *root, node_facts_t *f)
{
    char buf[512];
    if (node_read_file(root, "/proc/sys/kernel/osrelease", buf, sizeof buf) > 0) {
        node_copy(f->kernel, sizeof f->kernel, buf);
    } else if (node_read_file(root, "/proc/version", buf, sizeof buf) > 0) {
        /* "Linux version 5.15.153.1-microsoft-standard-WSL2 (...)" */
        char a[32], b[32], rel[128];
        if (sscanf(buf, "%31s %31s %127s", a, b, rel) == 3)
            node_copy(f->kernel, sizeof f->kernel, rel);
    } else if (node_root_is_real(root)) {
        struct utsname u;
        if (uname(&u) == 0)
            node_copy(f->kernel, sizeof f->kernel, u.release);
    }
    f->has_dxg = path_exists(root, "/dev/dxg");
    /* WSL 2 kernels: "5.15.153.1-microsoft-standard-WSL2" (older: "4.19.128-microsoft-standard");
     * WSL 1 fakes a kernel like "4.4.0-19041-Microsoft". /dev/dxg exists only on WSL 2. */
    if (node_ci_contains(f->kernel, "microsoft") || f->has_dxg) {
        f->is_wsl = 1;
        if (f->has_dxg || node_ci_contains(f->kernel, "WSL2") ||
            strstr(f->kernel, "microsoft-standard"))
            f->wsl_version = 2;
        else if (strstr(f->kernel, "Microsoft"))
            f->wsl_version = 1;
    }
}

static void
read_resources(const char *root, node_facts_t *f)
{
    char buf[4096];
    if (node_read_file(root, "/proc/sys/kernel/hostname", buf, sizeof buf) > 0)
        node_copy(f->hostname, sizeof f->hostname, buf);
    else if (node_root_is_real(root) && gethostname(buf, sizeof buf) == 0)
        snprintf(f->hostname, sizeof f->hostname, "%.255s", buf);

    /* "0-7" or "0,2-3" */
    if (node_read_file(root, "/sys/devices/system/cpu/online", buf, sizeof buf) > 0) {
        int n = 0;
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            int a, b;
            if (sscanf(tok, "%d-%d", &a, &b) == 2 && b >= a)
                n += b - a + 1;
            else if (sscanf(tok, "%d", &a) == 1)
                n++;
        }
        f->cpus = n;
    }
    if (f->cpus <= 0 && node_root_is_real(root)) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        f->cpus = n > 0 ? (int) n : 0;
    }

    char p[4096];
    FILE *m = node_path(p, sizeof p, root, "/proc/meminfo") ? fopen(p, "r") : NULL;
    if (m) {
        char line[256];
        while (fgets(line, sizeof line, m)) {
            long long kb;
            if (sscanf(line, "MemTotal: %lld kB", &kb) == 1)
                f->mem_total_mb = kb / 1024;
            else if (sscanf(line, "MemAvailable: %lld kB", &kb) == 1)
                f->mem_avail_mb = kb / 1024;
            else if (sscanf(line, "SwapTotal: %lld kB", &kb) == 1)
                f->swap_total_mb = kb / 1024;
        }
        fclose(m);
    }

    if (node_read_file(root, "/proc/1/comm", buf, sizeof buf) > 0) {
        node_copy(f->pid1, sizeof f->pid1, buf);
        f->systemd = strcmp(buf, "systemd") == 0;
    }

    if (node_read_file(root, "/proc/sys/net/ipv4/ip_local_port_range", buf, sizeof buf) > 0 &&
        sscanf(buf, "%d %d", &f->port_lo, &f->port_hi) != 2)
        f->port_lo = f->port_hi = 0;
}

static void
read_wsl_config(const char *root, node_facts_t *f)
{
    char p[4096], v[64];
    f->wslconf_gpu = 1;
    if (!node_path(p, sizeof p, root, "/etc/wsl.conf") || access(p, R_OK) != 0) {
        f->wslconf_systemd = -1;
    } else {
        f->wslconf_systemd = 0;
        if (node_ini_get(p, "boot", "systemd", v, sizeof v) == 1 && node_parse_bool(v) == 1)
            f->wslconf_systemd = 1;
        if (node_ini_get(p, "gpu", "enabled", v, sizeof v) == 1 && node_parse_bool(v) == 0)
            f->wslconf_gpu = 0;
    }

    char buf[256];
    f->interop = -1;
    if (f->is_wsl) {
        /* "enabled\ninterpreter /init\n..." ; newer WSL registers WSLInterop-late as well. */
        if (node_read_file(root, "/proc/sys/fs/binfmt_misc/WSLInterop", buf, sizeof buf) >= 0 ||
            node_read_file(root, "/proc/sys/fs/binfmt_misc/WSLInterop-late", buf, sizeof buf) >= 0)
            f->interop = strncmp(buf, "enabled", 7) == 0;
        else
            f->interop = 0;
    }
    f->has_wsl_libcuda = path_exists(root, "/usr/lib/wsl/lib/libcuda.so.1");
    f->has_wsl_libnvml = path_exists(root, "/usr/lib/wsl/lib/libnvidia-ml.so.1");

    /* wslinfo is /usr/bin/wslinfo -> /init on WSL >= 2.0; run whatever sits at that path
     * under root (fixtures provide a script). */
    if (f->wsl_version == 2 && node_path(p, sizeof p, root, "/usr/bin/wslinfo") &&
        access(p, X_OK) == 0) {
        const char *argv_mode[] = {p, "--networking-mode", NULL};
        if (node_run_line(argv_mode, 3000, buf, sizeof buf) == 0 && buf[0]) {
            node_copy(f->net_mode, sizeof f->net_mode, buf);
            f->net_mode_from = NODE_NETMODE_WSLINFO;
        }
        const char *argv_ver[] = {p, "--version", NULL};
        if (node_run_line(argv_ver, 3000, buf, sizeof buf) == 0)
            node_copy(f->wsl_pkg, sizeof f->wsl_pkg, buf);
    }
}

static void
read_shm(const char *root, node_facts_t *f)
{
    char p[4096];
    f->shm_tmpfs = -1;
    f->shm_total_mb = f->shm_free_mb = -1;
    FILE *m = node_path(p, sizeof p, root, "/proc/mounts") ? fopen(p, "r") : NULL;
    long long size_kb = -1;
    if (m) {
        char line[1024];
        while (fgets(line, sizeof line, m)) {
            char dev[256], mnt[256], type[64], opts[512];
            if (sscanf(line, "%255s %255s %63s %511s", dev, mnt, type, opts) != 4 ||
                strcmp(mnt, "/dev/shm") != 0)
                continue;
            f->shm_tmpfs = strcmp(type, "tmpfs") == 0;
            char *s = strstr(opts, "size=");
            if (s) {
                long long v = atoll(s + 5);
                char unit = s[5 + strspn(s + 5, "0123456789")];
                size_kb = unit == 'k'   ? v
                          : unit == 'm' ? v * 1024
                          : unit == 'g' ? v << 20
                                        : v >> 10;
            }
        }
        fclose(m);
    }
    if (node_root_is_real(root)) {
        struct statvfs sv;
        if (statvfs("/dev/shm", &sv) == 0) {
            f->shm_total_mb = (int64_t) ((unsigned long long) sv.f_blocks * sv.f_frsize >> 20);
            f->shm_free_mb = (int64_t) ((unsigned long long) sv.f_bavail * sv.f_frsize >> 20);
        }
    } else if (size_kb >= 0) {
        /* A fixture cannot have a real file system; take the mount's size as free space. */
        f->shm_total_mb = f->shm_free_mb = size_kb / 1024;
    }
}

static void
read_hosts(const char *root, node_facts_t *f)
{
    char p[4096], line[1024];
    FILE *h = node_path(p, sizeof p, root, "/etc/hosts") ? fopen(p, "r") : NULL;
    if (!h || !f->hostname[0]) {
        if (h)
            fclose(h);
        return;
    }
    while (fgets(line, sizeof line, h)) {
        line[strcspn(line, "#\r\n")] = '\0';
        char *save = NULL, *addr = strtok_r(line, " \t", &save);
        if (!addr || strncmp(addr, "127.", 4) != 0)
            continue;
        for (char *n = strtok_r(NULL, " \t", &save); n; n = strtok_r(NULL, " \t", &save))
            if (strcasecmp(n, f->hostname) == 0)
                f->hostname_loopback = 1;
    }
    fclose(h);
}

/* ---- interfaces ------------------------------------------------------------------------- */

struct addr {
    char name[64];
    char ip[64];
    int prefix;
    int up;
};

static int
iface_up_sysfs(const char *root, const char *name)
{
    char path[256], buf[64];
    snprintf(path, sizeof path, "/sys/class/net/%s/operstate", name);
    if (node_read_file(root, path, buf, sizeof buf) < 0)
        return 1;
    return strcmp(buf, "down") != 0;
}

static int
list_addrs(const char *root, struct addr *a, int max)
{
    int n = 0;
    if (node_root_is_real(root)) {
        struct ifaddrs *ifa = NULL;
        if (getifaddrs(&ifa) < 0)
            return 0;
        for (struct ifaddrs *i = ifa; i && n < max; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
                continue;
            struct sockaddr_in *sin = (struct sockaddr_in *) (void *) i->ifa_addr;
            node_copy(a[n].name, sizeof a[n].name, i->ifa_name);
            inet_ntop(AF_INET, &sin->sin_addr, a[n].ip, sizeof a[n].ip);
            a[n].prefix = 0;
            if (i->ifa_netmask) {
                struct sockaddr_in *m = (struct sockaddr_in *) (void *) i->ifa_netmask;
                a[n].prefix = __builtin_popcount(m->sin_addr.s_addr);
            }
            a[n].up = (i->ifa_flags & IFF_UP) != 0;
            n++;
        }
        freeifaddrs(ifa);
        return n;
    }
    char p[4096], line[512];
    FILE *fp = node_path(p, sizeof p, root, "/ip-4-o-addr.txt") ? fopen(p, "r") : NULL;
    if (!fp)
        return 0;
    while (n < max && fgets(line, sizeof line, fp)) {
        char idx[16], name[64], fam[16], cidr[80];
        if (sscanf(line, "%15s %63s %15s %79s", idx, name, fam, cidr) != 4 ||
            strcmp(fam, "inet") != 0)
            continue;
        char *slash = strchr(cidr, '/');
        a[n].prefix = slash ? atoi(slash + 1) : 0;
        if (slash)
            *slash = '\0';
        struct in_addr tmp;
        if (inet_pton(AF_INET, cidr, &tmp) != 1)
            continue;
        name[strcspn(name, ":@")] = '\0'; /* "eth0:1" alias label, "eth0@if3" */
        node_copy(a[n].name, sizeof a[n].name, name);
        node_copy(a[n].ip, sizeof a[n].ip, cidr);
        a[n].up = iface_up_sysfs(root, name);
        n++;
    }
    fclose(fp);
    return n;
}

static int
is_loopback_name(const char *name)
{
    return strcmp(name, "lo") == 0 || strcmp(name, "loopback0") == 0;
}

static int
is_virtual_name(const char *name)
{
    static const char *const pfx[] = {"docker", "virbr", "veth", "br-", "cni", "flannel"};
    for (size_t i = 0; i < sizeof pfx / sizeof pfx[0]; i++)
        if (strncmp(name, pfx[i], strlen(pfx[i])) == 0)
            return 1;
    return 0;
}

static const struct addr *
find_usable(const struct addr *a, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(a[i].name, name) == 0 && !is_loopback_name(name) &&
            strncmp(a[i].ip, "127.", 4) != 0)
            return &a[i];
    return NULL;
}

static void
default_route_iface(const char *root, char *out, size_t size)
{
    char p[4096], line[512];
    out[0] = '\0';
    FILE *fp = node_path(p, sizeof p, root, "/proc/net/route") ? fopen(p, "r") : NULL;
    if (!fp)
        return;
    long best = -1;
    while (fgets(line, sizeof line, fp)) {
        char name[64];
        unsigned long dest, gw, flags, refcnt, use, metric, mask;
        if (sscanf(line, "%63s %lx %lx %lx %lu %lu %lu %lx", name, &dest, &gw, &flags, &refcnt,
                   &use, &metric, &mask) != 8)
            continue; /* header */
        if (dest != 0 || mask != 0 || !(flags & 1 /* RTF_UP */))
            continue;
        if (best < 0 || (long) metric < best) {
            best = (long) metric;
            node_copy(out, size, name);
        }
    }
    fclose(fp);
}

static void
read_iface(const char *root, const char *override, node_facts_t *f)
{
    struct addr a[MAX_ADDRS];
    int n = list_addrs(root, a, MAX_ADDRS);
    const struct addr *pick = NULL;

    if (override && override[0]) {
        node_copy(f->iface, sizeof f->iface, override);
        f->iface_from = NODE_IFACE_OVERRIDE;
        pick = find_usable(a, n, override);
    } else {
        char rt[64];
        default_route_iface(root, rt, sizeof rt);
        if (rt[0] && !is_loopback_name(rt) && (pick = find_usable(a, n, rt)) != NULL)
            f->iface_from = NODE_IFACE_ROUTE;
        for (int pass = 0; pass < 2 && !pick; pass++)
            for (int i = 0; i < n && !pick; i++)
                if (a[i].up && !is_loopback_name(a[i].name) && strncmp(a[i].ip, "127.", 4) != 0 &&
                    (pass == 1 || !is_virtual_name(a[i].name)))
                    pick = &a[i];
        if (pick && f->iface_from == NODE_IFACE_NONE)
            f->iface_from = NODE_IFACE_FIRST;
        if (pick)
            node_copy(f->iface, sizeof f->iface, pick->name);
    }
    if (pick) {
        node_copy(f->ip, sizeof f->ip, pick->ip);
        f->prefix_len = pick->prefix;
    }
    if (f->iface[0]) {
        char path[256], buf[32];
        snprintf(path, sizeof path, "/sys/class/net/%s/mtu", f->iface);
        if (node_read_file(root, path, buf, sizeof buf) > 0)
            f->mtu = atoi(buf);
    }
}

static void
read_netmode(const char *root, node_facts_t *f)
{
    f->networking_mirrored = -1;
    if (f->wsl_version != 2) {
        node_copy(f->net_mode, sizeof f->net_mode, f->is_wsl ? "unknown" : "n/a");
        f->net_mode_from = NODE_NETMODE_NA;
        return;
    }
    if (f->net_mode_from != NODE_NETMODE_WSLINFO) {
        f->net_mode_from = NODE_NETMODE_GUESS;
        unsigned b0 = 0, b1 = 0;
        if (path_exists(root, "/sys/class/net/loopback0"))
            snprintf(f->net_mode, sizeof f->net_mode, "mirrored");
        else if (sscanf(f->ip, "%u.%u.", &b0, &b1) == 2 && b0 == 172 && b1 >= 16 && b1 <= 31)
            snprintf(f->net_mode, sizeof f->net_mode, "nat");
        else
            snprintf(f->net_mode, sizeof f->net_mode, "unknown");
    }
    if (strcmp(f->net_mode, "mirrored") == 0)
        f->networking_mirrored = 1;
    else if (strcmp(f->net_mode, "unknown") != 0)
        f->networking_mirrored = 0; /* nat, none, bridged, virtioproxy, consomme */
}

int
node_facts_read(const char *root, const char *iface_override, node_facts_t *out, wq_error_t *err)
{
    if (!node_root_is_real(root)) {
        struct stat st;
        if (stat(root, &st) < 0)
            return wq_fail_errno(err, "node root %s", root);
        if (!S_ISDIR(st.st_mode))
            return wq_fail(err, WQ_EINVAL, "node root %s is not a directory", root);
    }
    node_facts_t f;
    memset(&f, 0, sizeof f);
    f.systemd = -1;
    read_kernel(root, &f);
    read_resources(root, &f);
    read_wsl_config(root, &f);
    read_shm(root, &f);
    read_hosts(root, &f);
    read_iface(root, iface_override, &f);
    read_netmode(root, &f);
    *out = f;
    return 0;
}

cJSON *
node_facts_to_json(const node_facts_t *f)
{
    static const char *const iface_from[] = {"none", "override", "route", "first"};
    static const char *const mode_from[] = {"n/a", "wslinfo", "guess"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "hostname", f->hostname);
    cJSON_AddBoolToObject(o, "is_wsl", f->is_wsl);
    cJSON_AddNumberToObject(o, "wsl_version", f->wsl_version);
    cJSON_AddStringToObject(o, "kernel", f->kernel);
    cJSON_AddStringToObject(o, "wsl_pkg", f->wsl_pkg);
    cJSON_AddNumberToObject(o, "cpus", f->cpus);
    cJSON_AddNumberToObject(o, "mem_total_mb", (double) f->mem_total_mb);
    cJSON_AddNumberToObject(o, "mem_avail_mb", (double) f->mem_avail_mb);
    cJSON_AddNumberToObject(o, "swap_total_mb", (double) f->swap_total_mb);
    cJSON_AddStringToObject(o, "iface", f->iface);
    cJSON_AddStringToObject(o, "ip", f->ip);
    cJSON_AddNumberToObject(o, "prefix_len", f->prefix_len);
    cJSON_AddNumberToObject(o, "mtu", f->mtu);
    cJSON_AddStringToObject(o, "iface_from", iface_from[f->iface_from & 3]);
    cJSON_AddNumberToObject(o, "networking_mirrored", f->networking_mirrored);
    cJSON_AddStringToObject(o, "net_mode", f->net_mode);
    cJSON_AddStringToObject(o, "net_mode_from", mode_from[f->net_mode_from % 3]);
    cJSON_AddNumberToObject(o, "systemd", f->systemd);
    cJSON_AddStringToObject(o, "pid1", f->pid1);
    cJSON_AddNumberToObject(o, "wslconf_systemd", f->wslconf_systemd);
    cJSON_AddNumberToObject(o, "wslconf_gpu", f->wslconf_gpu);
    cJSON_AddNumberToObject(o, "interop", f->interop);
    cJSON_AddBoolToObject(o, "has_dxg", f->has_dxg);
    cJSON_AddBoolToObject(o, "has_wsl_libcuda", f->has_wsl_libcuda);
    cJSON_AddBoolToObject(o, "has_wsl_libnvml", f->has_wsl_libnvml);
    cJSON_AddNumberToObject(o, "port_lo", f->port_lo);
    cJSON_AddNumberToObject(o, "port_hi", f->port_hi);
    cJSON_AddNumberToObject(o, "shm_tmpfs", f->shm_tmpfs);
    cJSON_AddNumberToObject(o, "shm_total_mb", (double) f->shm_total_mb);
    cJSON_AddNumberToObject(o, "shm_free_mb", (double) f->shm_free_mb);
    cJSON_AddBoolToObject(o, "hostname_loopback", f->hostname_loopback);
    return o;
}

/* ---- stale NCCL shared memory ----------------------------------------------------------- */

#define MAX_INUSE 256

struct inuse {
    char names[MAX_INUSE][64];
    int n;
};

static void
inuse_add(struct inuse *u, const char *path)
{
    const char *p = strstr(path, "/dev/shm/nccl-");
    if (!p || u->n >= MAX_INUSE)
        return;
    p += strlen("/dev/shm/");
    size_t len = strcspn(p, " \t\n");
    if (len >= sizeof u->names[0])
        return;
    memcpy(u->names[u->n], p, len);
    u->names[u->n][len] = '\0';
    u->n++;
}

static void
collect_inuse(const char *root, struct inuse *u)
{
    char p[4096];
    u->n = 0;
    DIR *proc = node_path(p, sizeof p, root, "/proc") ? opendir(p) : NULL;
    if (!proc)
        return;
    struct dirent *d;
    while ((d = readdir(proc)) != NULL) {
        if (d->d_name[0] < '1' || d->d_name[0] > '9')
            continue;
        char rel[300], line[1024];
        snprintf(rel, sizeof rel, "/proc/%s/maps", d->d_name);
        FILE *m = node_path(p, sizeof p, root, rel) ? fopen(p, "r") : NULL;
        if (m) {
            while (fgets(line, sizeof line, m))
                if (strstr(line, "/dev/shm/nccl-"))
                    inuse_add(u, line);
            fclose(m);
        }
        snprintf(rel, sizeof rel, "/proc/%s/fd", d->d_name);
        DIR *fd = node_path(p, sizeof p, root, rel) ? opendir(p) : NULL;
        if (!fd)
            continue;
        struct dirent *e;
        while ((e = readdir(fd)) != NULL) {
            char link[600], target[512];
            if (e->d_name[0] == '.')
                continue;
            snprintf(link, sizeof link, "%s/%s", p, e->d_name);
            ssize_t n = readlink(link, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            inuse_add(u, target);
        }
        closedir(fd);
    }
    closedir(proc);
}

static int
scan_shm(
    const char *root, int64_t min_age_s, int do_unlink, int *count, int64_t *bytes, wq_error_t *err)
{
    char p[4096];
    int c = 0;
    int64_t b = 0;
    if (!node_path(p, sizeof p, root, "/dev/shm"))
        return wq_fail(err, WQ_EINVAL, "path too long");
    DIR *dir = opendir(p);
    if (!dir)
        return wq_fail_errno(err, "open %s", p);
    /* Reading every process's maps and fds is the costly part, and the worker calls this
     * after each job: look for a candidate first, so the usual case (none) costs a readdir. */
    time_t now = time(NULL);
    int candidates = 0;
    struct dirent *d;
    while ((d = readdir(dir)) != NULL && candidates == 0) {
        struct stat st;
        candidates = strncmp(d->d_name, "nccl-", 5) == 0 &&
                     fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                     S_ISREG(st.st_mode) && (int64_t) (now - st.st_mtime) >= min_age_s;
    }
    if (candidates == 0) {
        closedir(dir);
        if (count)
            *count = 0;
        if (bytes)
            *bytes = 0;
        return 0;
    }
    rewinddir(dir);
    struct inuse *u = calloc(1, sizeof *u);
    if (!u) {
        closedir(dir);
        return wq_fail(err, WQ_ESYS, "out of memory");
    }
    collect_inuse(root, u);
    while ((d = readdir(dir)) != NULL) {
        if (strncmp(d->d_name, "nccl-", 5) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(dir), d->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
            continue;
        if ((int64_t) (now - st.st_mtime) < min_age_s)
            continue;
        int busy = 0;
        for (int i = 0; i < u->n && !busy; i++)
            busy = strcmp(u->names[i], d->d_name) == 0;
        if (busy)
            continue;
        if (do_unlink && unlinkat(dirfd(dir), d->d_name, 0) < 0) {
            log_warn("cannot remove stale NCCL segment file=%s/%s errno=%d", p, d->d_name, errno);
            continue;
        }
        c++;
        b += (int64_t) st.st_size;
    }
    free(u);
    closedir(dir);
    if (count)
        *count = c;
    if (bytes)
        *bytes = b;
    return c;
}

int
node_stale_nccl_shm(
    const char *root, int64_t min_age_s, int *count, int64_t *bytes, wq_error_t *err)
{
    return scan_shm(root, min_age_s, 0, count, bytes, err) < 0 ? -1 : 0;
}

int
node_cleanup_nccl_shm(const char *root, int64_t min_age_s, wq_error_t *err)
{
    return scan_shm(root, min_age_s, 1, NULL, NULL, err);
}
