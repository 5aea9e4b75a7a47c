/* Worker settings: defaults, then the INI file (--config, section [worker]), then flags.
 * Every config key has a flag of the same name with '-' for '_' (state_dir = --state-dir). */
#ifndef WSLQ_WORKER_CONFIG_H
#define WSLQ_WORKER_CONFIG_H

#include <limits.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/wire.h"
#include "worker/isol.h"
#include "worker/owner.h"
#include "worker/runas.h"

typedef struct wcfg {
    char scheduler[256];          /* ZeroMQ endpoint of the scheduler */
    char name[WIRE_MAX_NAME + 1]; /* node name, [A-Za-z0-9._-] */
    char state_dir[PATH_MAX];     /* jobs/ and spool/ live here */
    int gpus;                     /* declared GPUs; -1 = discover through NVML */
    int cpus;                     /* 0 = detect */
    int64_t mem_mb;               /* MiB; 0 = detect */
    char iface[64];               /* cluster interface; "" = detect */
    char ip[64];                  /* reported LAN IP; "" = the interface's address */
    int heartbeat_ms;             /* heartbeat interval, 50..60000 */
    int idle_heartbeat_ms;        /* while no job runs here, heartbeat_ms..60000; 0 = unset
                                   * (wcfg_idle_ms picks it) */
    int64_t kill_grace_ms;        /* SIGTERM -> SIGKILL default grace */
    int spool_keep_days;          /* spool dirs of ended jobs are removed after this; 0 = never */
    int rendezvous;               /* 1: offer WSLQ_RENDEZVOUS sockets to jobs */
    int inbound_ok;               /* peers can connect in: 1, 0, -1 = detect */
    int probe_port;               /* inbound self-test listener port; 0 = ephemeral */
    int run_as;                   /* enum runas_mode: whose account jobs run as */
    char service_user[RUNAS_NAME_MAX + 1]; /* run_as = service with a root worker: the account */
    char credentials[PATH_MAX]; /* our keys and the scheduler's; "" = STATE_DIR/credentials */
    int insecure;               /* no CURVE: only against a scheduler started with --insecure */
    int scheduler_given;        /* --scheduler, the config or WSLQ_SCHEDULER said where */
    int name_given;             /* --name or the config named this node */
    char join[1024];            /* --join CODE: enrol with it, save the credentials, exit */
    char owner_file[PATH_MAX];  /* the Windows reporter's file; "" = none (owner unknown) */
    int owner;                  /* enum owner_policy */
    owner_limits_t owner_lim;   /* owner_away_min, owner_stale_s, owner_gpu_mem_mb, owner_gpu_pct */
    char owner_user[WIRE_MAX_NAME + 1]; /* the PC owner's wslq user: its jobs run regardless */
    int owner_suspend_max_min;       /* suspend: a job stopped this long is requeued (default 30) */
    char container_engine[PATH_MAX]; /* --container jobs: podman or docker (name or path);
                                        "" = podman, else docker, by PATH */
    char container_flags[1024];      /* the engine's global flags ("--runtime runc") */
    int cpu_bind;                    /* enum isol_bind: each job's ranks bound to its CPUs */
    int cgroup;                      /* enum isol_cg: auto, v2, v1 or none */
    char cgroup_root[PATH_MAX];      /* where job cgroups are made; "" = the worker's own */
    int mem_watch;                   /* 1: without a cgroup, watch each job's resident memory */
} wcfg_t;

enum wcfg_action { WCFG_RUN, WCFG_HELP, WCFG_VERSION, WCFG_JOIN };

/* Fill defaults (WSLQ_SCHEDULER, hostname, a state dir that depends on the user). */
void wcfg_defaults(wcfg_t *c);

/* Set one key from its text ("heartbeat_ms", "250"). 0 or -1 with *err naming the key. */
int wcfg_set(wcfg_t *c, const char *key, const char *value, wq_error_t *err);

/* Apply an INI file's [worker] section. A syntax error, unknown key or bad value gives
 * -1 with *err = "FILE:LINE: what". */
int wcfg_load(wcfg_t *c, const char *path, wq_error_t *err);

/* The checks across keys, after the file and the flags: an idle_heartbeat_ms set below
 * heartbeat_ms is -1 with *err naming the key. */
int wcfg_finish(wcfg_t *c, wq_error_t *err);

/* The interval of an idle worker's heartbeats (DESIGN.md 7.1): idle_heartbeat_ms where it is
 * set. Unset, 5 x heartbeat_ms, at most 5000 and at most sched_max_ms, the longest the
 * scheduler takes (RegisterReply.idle_heartbeat_max_ms, half its --lost); while no scheduler
 * has said (sched_max_ms 0: not registered yet, or an old scheduler), 3 x heartbeat_ms, at
 * most 3000. Never below heartbeat_ms. */
int wcfg_idle_ms(const wcfg_t *c, uint32_t sched_max_ms);

/* Defaults, then --config FILE, then the other flags. *action says what main should do.
 * 0 or -1 with *err (one line; main exits 2). */
int wcfg_parse_args(wcfg_t *c, int argc, char **argv, enum wcfg_action *action, wq_error_t *err);

/* 1 if s is a valid node name. */
int wcfg_valid_name(const char *s);

/* The --help text. */
const char *wcfg_usage(void);

#endif
