/* Isolation that matches the request: each job's ranks bound to CPUs of their own (affinity),
 * a cgroup per job with its --mem as the memory limit where the node has cgroups the worker
 * may write (v2, or v1's memory controller), and otherwise the memory watch: the job's
 * resident memory summed over its process groups, the job ended OUT_OF_MEMORY when it goes
 * over its --mem. worker/README.md, "Isolation", says what each config key does. */
#ifndef WSLQ_WORKER_ISOL_H
#define WSLQ_WORKER_ISOL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* A set of CPU ids, laid out as the kernel's affinity mask (64-bit words, low bit first). */
#define ISOL_MAX_CPUS 1024
typedef struct isol_cpus {
    uint64_t bits[ISOL_MAX_CPUS / 64];
} isol_cpus_t;

static inline void
isol_cpu_add(isol_cpus_t *s, int c)
{
    if (c >= 0 && c < ISOL_MAX_CPUS)
        s->bits[c / 64] |= 1ull << (c % 64);
}

static inline int
isol_cpu_has(const isol_cpus_t *s, int c)
{
    return c >= 0 && c < ISOL_MAX_CPUS && (s->bits[c / 64] >> (c % 64) & 1u);
}

/* CPUs in s. */
int isol_cpu_count(const isol_cpus_t *s);

enum isol_bind { ISOL_BIND_NONE = 0, ISOL_BIND_CORES = 1 };
enum isol_cg { ISOL_CG_AUTO = 0, ISOL_CG_V2, ISOL_CG_V1, ISOL_CG_NONE };

/* The worker's isolation state, decided at start (isol_init). */
typedef struct isol {
    int bind;               /* enum isol_bind */
    isol_cpus_t avail;      /* CPUs jobs may be bound to: the worker's own affinity */
    int n_avail;            /* CPUs in avail */
    int cg;                 /* enum isol_cg in effect: V2, V1 or NONE (never AUTO) */
    char cg_root[PATH_MAX]; /* the directory job cgroups are made in */
    int mem_watch;          /* 1: jobs without a cgroup memory limit are watched */
    char why[256];          /* one line: why cg is what it is (logged at start) */
} isol_t;

/* Decide bind/cgroup from the config: cgroup "auto" takes v2 when root (or the worker's own
 * v2 cgroup under /sys/fs/cgroup when root is "") is a cgroup v2 directory a child can be
 * made in, then v1's memory controller, else none; "v2"/"v1" insist (an error when
 * unusable); "none" never. 0, or -1 with *err. */
int isol_init(
    isol_t *is, int bind, int cgroup, const char *cgroup_root, int mem_watch, wq_error_t *err);

/* Pick n CPUs from avail, the least used first (use[c]: jobs bound to CPU c now), lowest id
 * among equals; all of avail when n >= its size. Pure. Returns the count picked. */
int isol_pick_cpus(const isol_cpus_t *avail, const int *use, int n, isol_cpus_t *out);

/* The affinity of process pid (0 = this one). 0, or -1 with errno. */
int isol_affinity(pid_t pid, isol_cpus_t *out);

/* "0-3,8" of set into buf (always terminated; "" for an empty set). Returns its length. */
size_t isol_cpulist(const isol_cpus_t *set, char *buf, size_t n);

/* Parse "0-3,8" into set. 0, or -1 if it is not such a list. */
int isol_cpulist_parse(const char *s, isol_cpus_t *set);

/* A job's cgroup: <root>/wslq-job-<id>-<attempt>, made with memory.max = mem_mb (v2; and
 * memory.swap.max 0, cpu.max = ncpus whole CPUs, each when the file is there) or
 * memory.limit_in_bytes (v1; and memory.memsw.limit_in_bytes when there). path gets its
 * directory. 0 (made now: its counters start at 0), 1 (there already, a leftover of the same
 * job and attempt: its counters are not fresh), or -1 with *err (nothing left behind). */
int isol_cg_create(int kind,
                   const char *root,
                   uint64_t id,
                   uint32_t attempt,
                   uint64_t mem_mb,
                   int ncpus,
                   char *path,
                   size_t n,
                   wq_error_t *err);

/* Open the file through which a rank's vfork child joins the cgroup at path (kind
 * ISOL_CG_V2 or ISOL_CG_V1), close-on-exec: cgroup.procs for v2; for v1 tasks, which moves
 * the writing thread alone, the whole of a child that has one thread, without the
 * kernel's lock on all thread groups (a wait of an RCU grace period, 5 ms measured on an
 * idle machine, in every job's start). -1 on failure. */
int isol_cg_procs_fd(int kind, const char *path);

/* In a rank's child between vfork and exec (system calls only): bind to cpus (NULL = no
 * change) and join the cgroup whose join file (isol_cg_procs_fd) is fd (-1 = none) by
 * writing "0", the kernel's name for the writer itself. */
void isol_child(const isol_cpus_t *cpus, int procs_fd);

/* Processes the kernel's OOM killer ended in the cgroup: v2 memory.events "oom_kill", v1
 * memory.oom_control "oom_kill". 0 when not readable. */
uint64_t isol_cg_oom_kills(int kind, const char *path);

/* The most memory the cgroup held, bytes: v2 memory.peak, v1 memory.max_usage_in_bytes; 0
 * when not known. */
uint64_t isol_cg_peak(int kind, const char *path);

/* Remove the job's cgroup (empty by then); 0 or -1. */
int isol_cg_remove(const char *path);

/* Remove the job cgroups (wslq-job-*) in is->cg_root that no job holds (held: the cgroup
 * directories of the jobs this worker has, n of them) and that are empty: left by a worker
 * that was killed while its job ran. A cgroup with processes in it stays (rmdir refuses).
 * Returns how many were removed. */
int isol_cg_sweep(const isol_t *is, const char *const *held, size_t n);

/* Resident memory of every process in these process groups, bytes, from /proc/<pid>/stat
 * (the rank leaders' groups: wslq-rank, the rank, its children). proc is "/proc" but for
 * tests. */
uint64_t isol_rss_groups(const char *proc, const pid_t *pgids, int n);

/* The memory watch's limit for a job with --mem of mem_mb: a little over it (resident
 * counts shared pages in each process), bytes. */
uint64_t isol_watch_limit(uint64_t mem_mb);

#endif
