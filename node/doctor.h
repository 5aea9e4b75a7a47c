/* wslq doctor: checks of a node that can be done from inside the distro (DESIGN.md §10; the
 * WSL 2 facts behind them: DESIGN.md §9), each PASS/WARN/FAIL/INFO with a one-line fix.
 *
 * Verdicts: FAIL = the node must not get jobs until fixed; WARN = the node works but is
 * limited (e.g. single-node jobs only) or fragile; PASS = checked and fine; INFO = a fact
 * recorded for the scheduler. Checks that only make sense on WSL are skipped elsewhere, so a
 * plain Linux box without GPUs gets a few calm INFO lines and exit code 0.
 *
 * Exit code (doctor_exit_code): 0 = no FAIL (warnings allowed), 1 = at least one FAIL.
 * Callers use 2 when doctor_run itself failed (err filled).
 *
 * Check ids (stable; the scheduler stores them as node attributes):
 *   wsl.detect wsl.version wsl.network wsl.idle wsl.systemd wsl.gpu_enabled
 *   gpu.wsl_lib gpu.dxg gpu.shadow gpu.nvml gpu.cuda gpu.<n> gpu.pinned nccl.version
 *   nccl.profile shm.size shm.stale vm.resources net.iface net.ports net.hostname time.daemon
 *   oci.engine oci.cdi gpu.tdr (node/tdrdelay.h)
 * plus whatever a hook adds (e.g. sched.reach, time.offset). */
#ifndef WSLQ_NODE_DOCTOR_H
#define WSLQ_NODE_DOCTOR_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "common/err.h"
#include "node/facts.h"
#include "node/gpu.h"

typedef enum { DOCTOR_PASS, DOCTOR_WARN, DOCTOR_FAIL, DOCTOR_INFO } doctor_verdict_t;

typedef struct {
    char id[48]; /* e.g. "wsl.version" */
    doctor_verdict_t verdict;
    char summary[256]; /* one line: what was found */
    char fix[256];     /* one line: what to do, "" when nothing */
} doctor_check_t;

typedef struct doctor_report doctor_report_t;

/* Called once after the built-in checks, to add checks that need the scheduler (reachability,
 * clock offset). Use doctor_add. */
typedef void (*doctor_hook_fn)(doctor_report_t *r, void *ctx);

typedef struct doctor_opts {
    const char *iface;       /* cluster interface override, NULL = automatic */
    int agent_installed;     /* -1 auto (wslq-worker.service in <root>/etc/systemd/system),
                                0/1 forced; decides whether systemd off is a FAIL */
    int64_t shm_stale_age_s; /* a nccl-* file older than this and unused is stale; 0 = 60 */
    int skip_gpu;            /* 1 = do not load NVML/CUDA (tests, quick runs) */
    doctor_hook_fn hook;     /* optional */
    void *hook_ctx;
} doctor_opts_t;

/* Default options: automatic everything, no hook. */
#define DOCTOR_OPTS_INIT           \
    {                              \
        NULL, -1, 0, 0, NULL, NULL \
    }

/* Probe the node under root ("" or "/" = this machine) and run every check. opts may be
 * NULL. Returns NULL (err filled) only if the node cannot be examined at all. Caller owns the
 * result (doctor_destroy). */
doctor_report_t *doctor_run(const char *root, const doctor_opts_t *opts, wq_error_t *err);

/* Append a check; summary is printf-style, fix may be NULL. Returns the new check. */
doctor_check_t *doctor_add(
    doctor_report_t *r, const char *id, doctor_verdict_t v, const char *fix, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

int doctor_count(const doctor_report_t *r);
const doctor_check_t *doctor_get(const doctor_report_t *r, int i); /* NULL if out of range */
const doctor_check_t *doctor_find(const doctor_report_t *r, const char *id); /* NULL if none */
int doctor_tally(const doctor_report_t *r, doctor_verdict_t v); /* checks with verdict v */
const node_facts_t *doctor_facts(const doctor_report_t *r);     /* owned by the report */
const gpu_set_t *doctor_gpus(const doctor_report_t *r);         /* owned by the report, or NULL */

/* "PASS", "WARN", "FAIL", "INFO" */
const char *doctor_verdict_name(doctor_verdict_t v);

/* Aligned table: "VERDICT  id  summary", then an indented "fix: ..." line when there is one,
 * then a totals line. */
void doctor_print(const doctor_report_t *r, FILE *out);

/* {"node":{facts},"gpus":{set},"nccl_profile":"..","nccl_env":["K=V"],"checks":[{"id",
 * "verdict":"pass|warn|fail|info","summary","fix"}],"counts":{..},"exit_code":n}.
 * Caller owns the result. */
cJSON *doctor_to_json(const doctor_report_t *r);
/* The report's "checks", "counts" and "exit_code" added to o (doctor_to_json's tail). */
void doctor_checks_to_json(const doctor_report_t *r, cJSON *o);

/* 0 = no FAIL, 1 = at least one FAIL. */
int doctor_exit_code(const doctor_report_t *r);

/* NCCL profile for intra-node multi-GPU jobs on this node:
 *   "default"        not WSL, or fewer than 2 GPUs (intra-node transports unused);
 *   "no-shm"         WSL 2 with 2+ GPUs: NCCL's SHM transport needs cudaHostRegister and
 *                    pinned memory is limited on WSL (microsoft/WSL#12467, NVIDIA/nccl#1518);
 *   "no-shm-no-p2p"  as no-shm, and P2P is not usable: cuDeviceCanAccessPeer is false for
 *                    some pair, or the driver is older than R510 (no legacy CUDA IPC on WSL).
 * A measured intra-node all-reduce self-test would refine this; until then it is this rule.
 * gpus may be NULL (treated as 0 GPUs). Returns a static string. */
const char *doctor_nccl_profile(const node_facts_t *facts, const gpu_set_t *gpus);

/* The environment a profile implies, NULL-terminated "K=V" strings (static). An unknown
 * profile name gives the empty list. */
const char *const *doctor_nccl_env(const char *profile);

/* The profile chosen in this report. */
const char *doctor_report_nccl_profile(const doctor_report_t *r);

/* Free the report and NULL *rp. NULL-safe. */
void doctor_destroy(doctor_report_t **rp);

/* An empty report for checks of another kind (wslq doctor --scheduler, cli/doctor_sched.h):
 * no node facts or GPUs; doctor_add, doctor_print, doctor_exit_code and the accessors work on
 * it (doctor_to_json is for node reports). Caller owns it (doctor_destroy). */
doctor_report_t *doctor_report_new(void);

#endif
