/* What the worker reports about its PC: hostname, LAN IP and interface, CPUs, memory, GPUs.
 *
 * Facts come from node/ (node_facts_read) and GPUs from NVML through gpu_open. Declared GPUs
 * (--gpus N) replace discovery: they are reported with declared = true, uuid "DECLARED-<name>-<i>",
 * name "declared". */
#ifndef WSLQ_WORKER_SYSINFO_H
#define WSLQ_WORKER_SYSINFO_H

#include <stdint.h>

#include "proto/wire.h"

typedef struct sysinfo_gpu {
    uint32_t index;        /* NVML index (declared: 0..N-1) */
    char uuid[96];         /* "GPU-..." or "DECLARED-<name>-<i>" */
    char name[96];         /* product name or "declared" */
    uint64_t mem_total_mb; /* MiB, 0 unknown */
    uint64_t mem_used_mb;  /* MiB, 0 unknown */
    uint64_t mem_idle_mb;  /* MiB used when last seen with no job of ours on it, 0 not seen */
    int temp_c;            /* -1 unknown */
    int util_pct;          /* -1 unknown */
    int power_w;           /* -1 unknown */
    int declared;          /* 1 configured by hand */
    uint32_t cc_major;     /* CUDA compute capability, 0 unknown */
    uint32_t cc_minor;
    int dx;          /* a DirectX adapter of another vendor (kind "dx"), from libdxcore */
    char luid[24];   /* DirectX adapter LUID, "" unknown */
    char vendor[16]; /* a dx adapter's vendor ("AMD") */
} sysinfo_gpu_t;

#define SYSINFO_MAX_CHECKS 48

/* One of wslq doctor's checks as the worker found it (sent as a NodeCheck). */
typedef struct sysinfo_check {
    char id[WIRE_MAX_CHECK_ID + 1];
    Wslq__CheckVerdict verdict;
    char summary[256];
    char fix[256];
} sysinfo_check_t;

typedef struct sysinfo {
    char hostname[256];
    char iface[64]; /* "" unknown */
    char ip[64];    /* IPv4 dotted, "" unknown */
    int cpus;       /* online logical CPUs */
    int64_t mem_mb; /* MiB total */
    int is_wsl;     /* 0/1 */
    int inbound_ok; /* 1 if peers can reach this node (not WSL NAT mode) */
    int ngpus;
    sysinfo_gpu_t gpus[WIRE_MAX_GPUS];
    char gpu_note[256]; /* why no GPU was discovered, "" if some were or none expected */
    /* Every DirectX adapter's LUID in DXCore's order (DML_VISIBLE_DEVICES numbers them so),
     * NULL-ended; NVIDIA ones included */
    char dx_luid_buf[16][24];
    const char *dx_order[17];
    void *gpuset; /* node's gpu_set_t when NVML is in use, else NULL */
    /* wslq doctor's findings, sent to the scheduler in Register.checks */
    char nccl_profile[32];       /* "default", "no-shm", "no-shm-no-p2p" */
    const char *const *nccl_env; /* static "K=V" list for that profile, NULL-terminated */
    int n_checks;
    sysinfo_check_t checks[SYSINFO_MAX_CHECKS];
} sysinfo_t;

/* Gather facts. node: the node name (for declared UUIDs). declared_gpus: -1 = discover.
 * iface: override, "" = detect. Never fails: unknown facts stay empty/0. */
void sysinfo_open(sysinfo_t *si, const char *node, int declared_gpus, const char *iface);

/* Re-read GPU metrics (memory, temperature, utilisation, power) where supported. */
void sysinfo_refresh(sysinfo_t *si);

/* After a refresh: 'ours' (bit i: a job of ours holds GPU i) and 'unsure' (some job's GPUs
 * are not known: an adopted one). Each GPU none of ours holds has its use remembered as what
 * others hold (the Windows desktop), sent as GpuInfo.mem_idle_used_mb. desktop_mb: the
 * Windows processes' GPU memory from the owner reporter (-1 unknown); on a PC with one
 * NVIDIA GPU it is that GPU's, and the remembered use is never less. */
void sysinfo_note_idle(sysinfo_t *si, uint64_t ours, int unsure, int64_t desktop_mb);

/* Fill a Wslq__GpuInfo array (caller provides n = si->ngpus structs and the pointer array). */
void sysinfo_gpu_msgs(const sysinfo_t *si, Wslq__GpuInfo *msgs, Wslq__GpuInfo **ptrs);

void sysinfo_close(sysinfo_t *si);

/* Remove NCCL shared-memory files (/dev/shm/nccl-*) no process uses any more and older than
 * a minute: NCCL leaves them behind when a rank is killed. Best effort. */
void sysinfo_cleanup_nccl_shm(void);

#endif
