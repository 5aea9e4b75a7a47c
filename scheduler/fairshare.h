/* Fair-share and per-user limits: the configuration (read by main.c from the [scheduler]
 * section), the usage table and the arithmetic. The core's glue (users counted as jobs
 * change, the pass's order, the limits, wslq share) is in fairshare.c too; its functions on
 * sched_t are declared in sched_int.h.
 *
 * Usage: every run of a job adds GPU-seconds (GPUs x seconds run) and CPU-seconds to its
 * user when it stops running; that amount then halves every half-life. A running job counts
 * its time so far, undecayed.
 *
 * Fair-share factor of a user (0..1, Slurm's classic formula):
 *   F = 2^(-U/S), U = the user's GPU-seconds / every user's (CPU-seconds when nobody used a
 *   GPU), S = the user's share / the shares of every user with usage or jobs.
 * Nobody used anything: F = 1 for everyone. Age factor of a pending job: its time since
 * submit / max-age, at most 1. The effective priority the placement pass orders by:
 *   priority-weight * priority + fairshare-weight * F + age-weight * A. */
#ifndef WSLQ_FAIRSHARE_H
#define WSLQ_FAIRSHARE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define FS_MAX_USERS 4096 /* configured users ([scheduler] share.NAME, limit-*.NAME) */

/* Defaults: a priority step (1000) outweighs the whole fair-share range (1000 x 0..1), which
 * outweighs age (100 x 0..1): with one user, or users of equal standing, the order is
 * priority then submit order, as without fair-share. */
#define FS_DEFAULT_HALFLIFE_MS (7LL * 24 * 3600 * 1000)
#define FS_DEFAULT_MAX_AGE_MS  (7LL * 24 * 3600 * 1000)
#define FS_DEFAULT_W_PRIORITY  1000
#define FS_DEFAULT_W_FAIRSHARE 1000
#define FS_DEFAULT_W_AGE       100

/* A user's own settings; 0 in a limit = the lab-wide one, -1 = none for this user. */
typedef struct fs_user_conf {
    char *name;
    double share;     /* 0 = the default, 1 */
    int64_t max_gpus; /* GPUs running at once */
    int64_t max_jobs; /* jobs running at once */
    int64_t max_pend; /* jobs pending at once */
} fs_user_conf_t;

typedef struct fs_config {
    int64_t halflife_ms;
    int64_t max_age_ms;
    int64_t w_priority, w_fairshare, w_age;
    /* lab-wide limits per user; 0 = none */
    int64_t max_gpus, max_jobs, max_pend;
    fs_user_conf_t *users; /* sorted by name after fs_config_finish */
    size_t n_users;
} fs_config_t;

void fs_config_init(fs_config_t *c);
void fs_config_free(fs_config_t *c);
/* One [scheduler] setting: 1 if it is one of ours and valid, 0 if it is not ours, -1 with a
 * one-line *err if it is ours and bad. Keys: fairshare-halflife, max-age (durations; bare
 * numbers are seconds), priority-weight, fairshare-weight, age-weight (0..1000000),
 * max-running-gpus, max-running-jobs, max-pending-jobs (0 = none), and per user
 * share.NAME (a number > 0), max-running-gpus.NAME, max-running-jobs.NAME,
 * max-pending-jobs.NAME (0 = none for this user, whatever the lab-wide limit). */
int fs_config_apply(fs_config_t *c, const char *key, const char *value, wq_error_t *err);
/* A deep copy (the scheduler keeps its own). */
void fs_config_copy(fs_config_t *dst, const fs_config_t *src);

/* ---- the arithmetic, pure (unit-tested alone) ---- */

/* value left of an amount after dt_ms with this half-life */
double fs_decay(double value, int64_t dt_ms, int64_t halflife_ms);
/* 2^(-norm_usage / norm_share); 1 when norm_share is 0 and nothing was used */
double fs_factor(double norm_usage, double norm_share);
/* age / max_age, clamped to 0..1 */
double fs_age_factor(int64_t age_ms, int64_t max_age_ms);

/* ---- the usage table ---- */

typedef struct fs_user {
    char *name;
    uint32_t no;  /* the core's number for it (the order it was first seen) */
    double share; /* configured, else 1 */
    int64_t max_gpus, max_jobs, max_pend; /* effective limits, 0 = none */
    double gpu_s, cpu_s;                  /* ended runs' usage, decayed to ref_ms */
    int64_t ref_ms;                       /* wall clock */
    uint32_t n_pend;                      /* PENDING jobs now */
    uint32_t n_run;                       /* STARTING or RUNNING jobs now */
    uint32_t gpus_run;                    /* GPUs they hold */
    double run_gpu_s, run_cpu_s;          /* the running jobs' time so far (fs_refresh) */
    double factor;                        /* the fair-share factor at the last fs_refresh */
    double norm_usage, norm_share;
} fs_user_t;

typedef struct fs_table {
    fs_config_t cfg;
    fs_user_t **users; /* sorted by name */
    size_t n_users;
    int64_t refreshed_ms; /* wall clock of the last fs_refresh, 0 = never */
} fs_table_t;

void fs_table_init(fs_table_t *t, const fs_config_t *cfg); /* copies cfg */
void fs_table_fini(fs_table_t *t);
/* The user of this name, added (with its configured share and limits) if new. */
fs_user_t *fs_user(fs_table_t *t, const char *name);
/* A run that stopped at end_ms: its amounts are added, decayed from then on. */
void fs_add_usage(fs_table_t *t, fs_user_t *u, double gpu_s, double cpu_s, int64_t end_ms);
/* The user's ended usage, decayed to now (GPU-seconds, and CPU-seconds in *cpu_s). */
double fs_usage_at(const fs_table_t *t, const fs_user_t *u, int64_t now_ms, double *cpu_s);
/* Every user's factor at now_ms. The running jobs' time (u->run_gpu_s, u->run_cpu_s) must
 * have been filled by the caller. */
void fs_refresh(fs_table_t *t, int64_t now_ms);

#endif
