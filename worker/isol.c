/* Isolation of a job's ranks: CPU affinity, cgroup limits, the memory watch (isol.h). */
#define _GNU_SOURCE /* sched_getaffinity's cpu_set_t */
#include "worker/isol.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MIB ((uint64_t) 1024 * 1024)

int
isol_cpu_count(const isol_cpus_t *s)
{
    int n = 0;
    for (size_t i = 0; i < sizeof s->bits / sizeof s->bits[0]; i++)
        n += __builtin_popcountll(s->bits[i]);
    return n;
}

int
isol_pick_cpus(const isol_cpus_t *avail, const int *use, int n, isol_cpus_t *out)
{
    memset(out, 0, sizeof *out);
    int total = isol_cpu_count(avail);
    if (n >= total) {
        *out = *avail;
        return total;
    }
    int picked = 0;
    while (picked < n) {
        int best = -1;
        for (int c = 0; c < ISOL_MAX_CPUS; c++)
            if (isol_cpu_has(avail, c) && !isol_cpu_has(out, c) && (best < 0 || use[c] < use[best]))
                best = c;
        if (best < 0)
            break;
        isol_cpu_add(out, best);
        picked++;
    }
    return picked;
}

size_t
isol_cpulist(const isol_cpus_t *set, char *buf, size_t n)
{
    size_t len = 0;
    if (n == 0)
        return 0;
    buf[0] = '\0';
    for (int c = 0; c < ISOL_MAX_CPUS; c++) {
        if (!isol_cpu_has(set, c))
            continue;
        int e = c;
        while (e + 1 < ISOL_MAX_CPUS && isol_cpu_has(set, e + 1))
            e++;
        int w = e > c ? snprintf(buf + len, n - len, "%s%d-%d", len ? "," : "", c, e)
                      : snprintf(buf + len, n - len, "%s%d", len ? "," : "", c);
        if (w < 0 || (size_t) w >= n - len) {
            buf[len] = '\0'; /* no partial item */
            return len;
        }
        len += (size_t) w;
        c = e;
    }
    return len;
}

int
isol_cpulist_parse(const char *s, isol_cpus_t *set)
{
    memset(set, 0, sizeof *set);
    if (s == NULL || *s == '\0')
        return -1;
    const char *p = s;
    while (*p) {
        char *e;
        if (*p < '0' || *p > '9')
            return -1;
        long a = strtol(p, &e, 10), b = a;
        if (*e == '-') {
            if (e[1] < '0' || e[1] > '9')
                return -1;
            b = strtol(e + 1, &e, 10);
        }
        if (a < 0 || b < a || b >= ISOL_MAX_CPUS)
            return -1;
        for (long c = a; c <= b; c++)
            isol_cpu_add(set, (int) c);
        if (*e == ',' && e[1] != '\0')
            e++;
        else if (*e != '\0')
            return -1;
        p = e;
    }
    return 0;
}

/* Write a short text to dir/name. 0, or -1 with errno. */
static int
put(const char *dir, const char *name, const char *text)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    size_t len = strlen(text);
    ssize_t w = write(fd, text, len);
    int saved = errno;
    close(fd);
    errno = saved;
    return w == (ssize_t) len ? 0 : -1;
}

static int
exists(const char *dir, const char *name)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

/* Read dir/name (at most 4 KiB) into buf. Bytes read, -1 on failure. */
static ssize_t
get(const char *dir, const char *name, char *buf, size_t n)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    ssize_t r = read(fd, buf, n - 1);
    close(fd);
    buf[r > 0 ? r : 0] = '\0';
    return r;
}

/* The value after "key " on a line of dir/name ("oom_kill 3"), 0 when absent. */
static uint64_t
keyed(const char *dir, const char *name, const char *key)
{
    char buf[4096];
    if (get(dir, name, buf, sizeof buf) <= 0)
        return 0;
    size_t kl = strlen(key);
    for (char *line = buf; line && *line;) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ' ')
            return strtoull(line + kl + 1, NULL, 10);
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    return 0;
}

int
isol_cg_create(int kind,
               const char *root,
               uint64_t id,
               uint32_t attempt,
               uint64_t mem_mb,
               int ncpus,
               char *path,
               size_t n,
               wq_error_t *err)
{
    if (kind != ISOL_CG_V2 && kind != ISOL_CG_V1)
        return wq_fail(err, WQ_EINVAL, "no cgroup in use");
    int w = snprintf(path, n, "%s/wslq-job-%" PRIu64 "-%" PRIu32, root, id, attempt);
    if (w < 0 || (size_t) w >= n)
        return wq_fail(err, WQ_EINVAL, "cgroup path too long");
    int there = mkdir(path, 0755) < 0;
    if (there && errno != EEXIST)
        return wq_fail(err, WQ_EIO, "cannot create cgroup %s: %s", path, strerror(errno));
    char v[64];
    const char *what = NULL;
    if (kind == ISOL_CG_V2) {
        snprintf(v, sizeof v, "%" PRIu64 "\n", mem_mb * MIB);
        if (mem_mb > 0 && put(path, "memory.max", v) < 0)
            what = "memory.max";
        if (what == NULL && mem_mb > 0 && exists(path, "memory.swap.max") &&
            put(path, "memory.swap.max", "0\n") < 0)
            what = "memory.swap.max";
        snprintf(v, sizeof v, "%d 100000\n", ncpus * 100000);
        if (what == NULL && ncpus > 0 && exists(path, "cpu.max") && put(path, "cpu.max", v) < 0)
            what = "cpu.max";
    } else {
        snprintf(v, sizeof v, "%" PRIu64 "\n", mem_mb * MIB);
        if (mem_mb > 0 && put(path, "memory.limit_in_bytes", v) < 0)
            what = "memory.limit_in_bytes";
        /* memory and swap together: not there when the kernel accounts no swap */
        if (what == NULL && mem_mb > 0 && exists(path, "memory.memsw.limit_in_bytes") &&
            put(path, "memory.memsw.limit_in_bytes", v) < 0 && errno != EINVAL)
            what = "memory.memsw.limit_in_bytes";
    }
    if (what != NULL) {
        int saved = errno;
        rmdir(path);
        return wq_fail(err, WQ_EIO, "cannot write %s of cgroup %s: %s", what, path,
                       strerror(saved));
    }
    return there;
}

int
isol_cg_procs_fd(int kind, const char *path)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/%s", path, kind == ISOL_CG_V1 ? "tasks" : "cgroup.procs");
    return open(p, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
}

uint64_t
isol_cg_oom_kills(int kind, const char *path)
{
    if (kind == ISOL_CG_V2)
        return keyed(path, "memory.events", "oom_kill");
    if (kind == ISOL_CG_V1)
        return keyed(path, "memory.oom_control", "oom_kill");
    return 0;
}

uint64_t
isol_cg_peak(int kind, const char *path)
{
    char buf[64];
    const char *name = kind == ISOL_CG_V2   ? "memory.peak"
                       : kind == ISOL_CG_V1 ? "memory.max_usage_in_bytes"
                                            : NULL;
    if (name == NULL || get(path, name, buf, sizeof buf) <= 0)
        return 0;
    return strtoull(buf, NULL, 10);
}

int
isol_cg_remove(const char *path)
{
    return rmdir(path);
}

int
isol_cg_sweep(const isol_t *is, const char *const *held, size_t n)
{
    if (is->cg != ISOL_CG_V2 && is->cg != ISOL_CG_V1)
        return 0;
    DIR *d = opendir(is->cg_root);
    if (d == NULL)
        return 0;
    int removed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "wslq-job-", 9) != 0)
            continue;
        char p[PATH_MAX + 300];
        snprintf(p, sizeof p, "%s/%s", is->cg_root, e->d_name);
        int kept = 0;
        for (size_t i = 0; i < n && !kept; i++)
            kept = held[i] != NULL && strcmp(held[i], p) == 0;
        if (!kept && rmdir(p) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

uint64_t
isol_rss_groups(const char *proc, const pid_t *pgids, int n)
{
    DIR *d = opendir(proc);
    if (d == NULL)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        char p[PATH_MAX], buf[1024];
        snprintf(p, sizeof p, "%s/%s/stat", proc, de->d_name);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t r = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (r <= 0)
            continue;
        buf[r] = '\0';
        /* pid (comm) state ppid pgrp ... : comm may hold anything, so from its last ')' */
        char *s = strrchr(buf, ')');
        if (s == NULL)
            continue;
        long pgrp = 0;
        unsigned long long rss = 0;
        /* fields after comm: 3 state, 4 ppid, 5 pgrp, ..., 24 rss */
        char *tok = s + 1;
        for (int f = 3; f <= 24 && tok != NULL; f++) {
            while (*tok == ' ')
                tok++;
            if (f == 5)
                pgrp = strtol(tok, NULL, 10);
            if (f == 24)
                rss = strtoull(tok, NULL, 10);
            tok = strchr(tok, ' ');
        }
        for (int i = 0; i < n; i++)
            if (pgids[i] > 0 && pgrp == pgids[i]) {
                total += rss * (uint64_t) page;
                break;
            }
    }
    closedir(d);
    return total;
}

uint64_t
isol_watch_limit(uint64_t mem_mb)
{
    return mem_mb * MIB + mem_mb * MIB / 20; /* 5 % over */
}

int
isol_affinity(pid_t pid, isol_cpus_t *out)
{
    memset(out, 0, sizeof *out);
    cpu_set_t cs;
    CPU_ZERO(&cs);
    if (sched_getaffinity(pid, sizeof cs, &cs) < 0)
        return -1;
    for (int c = 0; c < CPU_SETSIZE && c < ISOL_MAX_CPUS; c++)
        if (CPU_ISSET(c, &cs))
            isol_cpu_add(out, c);
    return 0;
}

/* The worker's own cgroup v2 directory from /proc/self/cgroup ("0::/path"), or "". */
static void
own_v2(char *buf, size_t n)
{
    buf[0] = '\0';
    char txt[4096];
    if (get("/proc/self", "cgroup", txt, sizeof txt) <= 0)
        return;
    char *l = strstr(txt, "0::");
    if (l != NULL && (l == txt || l[-1] == '\n')) {
        char *e = strchr(l, '\n');
        if (e)
            *e = '\0';
        snprintf(buf, n, "/sys/fs/cgroup%s", strcmp(l + 3, "/") == 0 ? "" : l + 3);
    }
}

/* The worker's own v1 memory cgroup directory ("4:memory:/path"), or "". */
static void
own_v1(char *buf, size_t n)
{
    buf[0] = '\0';
    char txt[4096];
    if (get("/proc/self", "cgroup", txt, sizeof txt) <= 0)
        return;
    for (char *l = txt; l && *l;) {
        char *e = strchr(l, '\n');
        if (e)
            *e = '\0';
        char *c = strchr(l, ':');
        if (c && strncmp(c + 1, "memory:", 7) == 0) {
            snprintf(buf, n, "/sys/fs/cgroup/memory%s", strcmp(c + 8, "/") == 0 ? "" : c + 8);
            return;
        }
        l = e ? e + 1 : NULL;
    }
}

/* 1 if a child cgroup can be made in dir and removed again (tried once). */
static int
can_make(const char *dir)
{
    char p[PATH_MAX + 64];
    snprintf(p, sizeof p, "%s/wslq-probe-%ld", dir, (long) getpid());
    if (mkdir(p, 0755) < 0)
        return 0;
    rmdir(p);
    return 1;
}

int
isol_init(isol_t *is, int bind, int cgroup, const char *cgroup_root, int mem_watch, wq_error_t *err)
{
    memset(is, 0, sizeof *is);
    is->bind = bind;
    is->mem_watch = mem_watch;
    if (isol_affinity(0, &is->avail) < 0)
        for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN) && c < ISOL_MAX_CPUS; c++)
            isol_cpu_add(&is->avail, (int) c);
    is->n_avail = isol_cpu_count(&is->avail);
    is->cg = ISOL_CG_NONE;
    snprintf(is->why, sizeof is->why, "cgroup = none");
    if (cgroup == ISOL_CG_NONE)
        return 0;
    const char *given = cgroup_root != NULL && *cgroup_root ? cgroup_root : NULL;
    if (cgroup == ISOL_CG_AUTO || cgroup == ISOL_CG_V2) {
        char root[PATH_MAX];
        if (given)
            snprintf(root, sizeof root, "%s", given);
        else
            own_v2(root, sizeof root);
        /* The worker's own cgroup holds the worker: a cgroup with processes cannot give
         * its children controllers, so the worker moves into a leaf of its own first. */
        if (!given && root[0] && exists(root, "cgroup.controllers") && can_make(root)) {
            char leaf[PATH_MAX + 16];
            snprintf(leaf, sizeof leaf, "%s/wslq-worker", root);
            if ((mkdir(leaf, 0755) == 0 || errno == EEXIST) && put(leaf, "cgroup.procs", "0\n") < 0)
                rmdir(leaf);
        }
        char ctl[256] = "";
        if (root[0] && exists(root, "cgroup.controllers") && can_make(root)) {
            /* the job cgroups' controllers: memory is needed, cpu is welcome */
            (void) put(root, "cgroup.subtree_control", "+memory +cpu");
            if (get(root, "cgroup.subtree_control", ctl, sizeof ctl) < 0 ||
                strstr(ctl, "memory") == NULL)
                ctl[0] = '\0';
        }
        if (ctl[0]) {
            is->cg = ISOL_CG_V2;
            snprintf(is->cg_root, sizeof is->cg_root, "%s", root);
            snprintf(is->why, sizeof is->why, "cgroup v2 at %.200s", root);
            return 0;
        }
        if (cgroup == ISOL_CG_V2)
            return wq_fail(err, WQ_EINVAL,
                           "cgroup = v2: %.200s is not a cgroup v2 directory this worker can "
                           "make cgroups in",
                           root[0] ? root : "(no cgroup v2 of this process)");
    }
    char root[PATH_MAX];
    if (given)
        snprintf(root, sizeof root, "%s", given);
    else
        own_v1(root, sizeof root);
    if (root[0] && exists(root, "memory.limit_in_bytes") && can_make(root)) {
        is->cg = ISOL_CG_V1;
        snprintf(is->cg_root, sizeof is->cg_root, "%s", root);
        snprintf(is->why, sizeof is->why, "cgroup v1 memory at %.200s", root);
        return 0;
    }
    if (cgroup == ISOL_CG_V1)
        return wq_fail(err, WQ_EINVAL,
                       "cgroup = v1: %.200s is not a cgroup v1 memory directory this worker "
                       "can make cgroups in",
                       root[0] ? root : "(no memory cgroup of this process)");
    snprintf(is->why, sizeof is->why, "no writable cgroup (auto): %s",
             mem_watch ? "memory watch" : "no memory limit");
    return 0;
}
