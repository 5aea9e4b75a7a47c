/* Node facts: what a worker knows about the PC it runs on, read through a root prefix.
 *
 * Every read goes to <root><path>, so tests point root at a fixture tree; "" or "/" is the
 * real system. Files read (all optional; a missing file leaves its fact "unknown"):
 *   /proc/sys/kernel/osrelease (or /proc/version), /proc/sys/kernel/hostname, /proc/meminfo,
 *   /proc/cpuinfo (fixtures) or sysconf (real root), /proc/1/comm, /proc/net/route,
 *   /proc/sys/net/ipv4/ip_local_port_range, /proc/sys/fs/binfmt_misc/WSLInterop[-late],
 *   /sys/class/net/<if>/{operstate,mtu}, /sys/class/net/loopback0, /dev/dxg, /dev/shm,
 *   /etc/wsl.conf, /etc/hosts, /usr/lib/wsl/lib/{libcuda.so.1,libnvidia-ml.so.1}.
 *
 * Interface addresses: with the real root they come from getifaddrs(3). With a fixture root
 * they come from <root>/ip-4-o-addr.txt, the output of `ip -4 -o addr` (one line per address:
 * "2: eth0    inet 192.168.1.23/24 brd ... scope global eth0"). An interface is "up" unless
 * <root>/sys/class/net/<if>/operstate says "down".
 *
 * Cluster interface choice: the override if given; else the interface of the default route
 * in /proc/net/route; else the first non-loopback up interface with an IPv4 address. Loopback
 * (lo, 127.x) and WSL's mirrored-mode "loopback0" are never chosen.
 *
 * Networking mode (WSL 2 only): `wslinfo --networking-mode` when root is real and wslinfo
 * exists; otherwise a heuristic: WSL creates an interface named "loopback0" only in mirrored
 * mode (microsoft/WSL#10650, MicrosoftDocs/WSL#1967), so /sys/class/net/loopback0 => mirrored;
 * else a cluster address in 172.16.0.0/12 (Hyper-V's NAT range) => NAT; else unknown. */
#ifndef WSLQ_NODE_FACTS_H
#define WSLQ_NODE_FACTS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct node_facts {
    char hostname[256];
    int is_wsl;              /* 0/1: kernel release names Microsoft, or /dev/dxg exists */
    int wsl_version;         /* 2, 1, or 0 unknown / not WSL */
    char kernel[128];        /* kernel release string */
    char wsl_pkg[32];        /* WSL package version from `wslinfo --version`, "" unknown */
    int cpus;                /* online logical CPUs */
    int64_t mem_total_mb;    /* MiB, MemTotal */
    int64_t mem_avail_mb;    /* MiB, MemAvailable */
    int64_t swap_total_mb;   /* MiB, SwapTotal */
    char iface[64];          /* cluster interface, "" none found */
    char ip[64];             /* its IPv4 address (dotted), never 127.x; "" none */
    int prefix_len;          /* its netmask length, 0 unknown */
    int mtu;                 /* bytes, 0 unknown */
    int iface_from;          /* NODE_IFACE_* : how iface was chosen */
    int networking_mirrored; /* 1 mirrored, 0 NAT, -1 unknown / not WSL 2 */
    char net_mode[16];       /* "mirrored", "nat", "none", ... or "unknown" */
    int net_mode_from;       /* NODE_NETMODE_* : where net_mode came from */
    int systemd;             /* 1 if PID 1 is systemd (/proc/1/comm), 0 not, -1 unknown */
    char pid1[32];           /* PID 1's comm, "" unknown */
    int wslconf_systemd;     /* /etc/wsl.conf [boot] systemd: 1 true, 0 false/absent, -1 no file */
    int wslconf_gpu;         /* /etc/wsl.conf [gpu] enabled: 1 (default), 0 disabled */
    int interop;             /* 1 WSLInterop binfmt registered and enabled, 0 not, -1 unknown */
    int has_dxg;             /* 1 if /dev/dxg exists */
    int has_wsl_libcuda;     /* 1 if /usr/lib/wsl/lib/libcuda.so.1 exists */
    int has_wsl_libnvml;     /* 1 if /usr/lib/wsl/lib/libnvidia-ml.so.1 exists */
    int port_lo, port_hi;    /* ip_local_port_range, 0 unknown */
    int shm_tmpfs;           /* 1 if /dev/shm is tmpfs, 0 not, -1 unknown (fixtures) */
    int64_t shm_total_mb;    /* MiB size of /dev/shm, -1 unknown */
    int64_t shm_free_mb;     /* MiB free in /dev/shm, -1 unknown */
    int hostname_loopback;   /* 1 if /etc/hosts maps our hostname to 127.x (WSL: 127.0.1.1) */
} node_facts_t;

enum node_iface_from {
    NODE_IFACE_NONE = 0,
    NODE_IFACE_OVERRIDE, /* configured */
    NODE_IFACE_ROUTE,    /* default route */
    NODE_IFACE_FIRST,    /* first up non-loopback interface with IPv4 */
};

enum node_netmode_from {
    NODE_NETMODE_NA = 0,  /* not WSL 2 */
    NODE_NETMODE_WSLINFO, /* wslinfo --networking-mode */
    NODE_NETMODE_GUESS,   /* heuristic above */
};

/* Fill *out. root: "" or "/" for the real system, else a fixture directory. iface_override:
 * NULL or "" for automatic choice. Fails (-1) only if root is not a directory; a missing fact
 * is recorded as unknown, and an override naming an interface without IPv4 leaves iface set
 * and ip "" (doctor reports it). */
int
node_facts_read(const char *root, const char *iface_override, node_facts_t *out, wq_error_t *err);

/* 1 if root means the real system ("", "/" or NULL). */
int node_root_is_real(const char *root);

/* "<root><path>" in buf; path starts with '/'. Returns buf, or NULL if it does not fit. */
char *node_path(char *buf, size_t size, const char *root, const char *path);

/* Read a small text file (first size-1 bytes, NUL-terminated, trailing newline removed).
 * Returns the length, or -1 if it cannot be opened. */
int node_read_file(const char *root, const char *path, char *buf, size_t size);

/* All facts as a JSON object (keys as the struct fields). Caller owns the result. */
cJSON *node_facts_to_json(const node_facts_t *f);

/* NCCL leaves /dev/shm/nccl-* segments behind when ranks are killed (NVIDIA/nccl#1518).
 * Count them: files under <root>/dev/shm named nccl-* that no process maps or holds open
 * (scans <root>/proc/<pid>/maps and /proc/<pid>/fd) and whose mtime is at least min_age_s
 * old. *count and *bytes (either may be NULL) receive totals. Returns 0, or -1 if /dev/shm
 * cannot be read. */
int node_stale_nccl_shm(
    const char *root, int64_t min_age_s, int *count, int64_t *bytes, wq_error_t *err);

/* Remove the stale segments node_stale_nccl_shm would count (call after a job ended).
 * Returns the number removed, or -1 if /dev/shm cannot be read; an unlink failure is
 * logged and skipped. */
int node_cleanup_nccl_shm(const char *root, int64_t min_age_s, wq_error_t *err);

#endif
