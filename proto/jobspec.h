/* The job spec's contract between the programs: the defaults a spec gets when a field is left
 * empty, and the variables the worker sets for every rank (DESIGN.md §6). The CLI, the
 * scheduler and the worker all use these, so they cannot disagree. */
#ifndef WSLQ_PROTO_JOBSPEC_H
#define WSLQ_PROTO_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/wslq.pb-c.h"

/* Every variable the worker sets for a rank, NULL-terminated. `wslq submit --export ALL`
 * does not copy them from the submitting shell (a shell inside a job would otherwise hand its
 * own rank's values to the next job), and `$NAME` / `${NAME}` in a job's argv expand only
 * these. */
extern const char *const jobspec_rank_vars[];

/* 1 if name[0..len) is one of jobspec_rank_vars. */
int jobspec_is_rank_var(const char *name, size_t len);

/* The name of a job submitted without one: "wrap" for a --wrap job, else the last path part
 * of argv[0] (argv[0] itself when that part is empty), cut to WIRE_MAX_NAME bytes, control
 * characters as '?'. Written to buf (size > WIRE_MAX_NAME); returns buf. */
const char *jobspec_default_name(const Wslq__JobSpec *spec, char *buf, size_t size);

/* Fill what a client left empty: cpus_per_node 1, the default name, user "unknown". The
 * scheduler applies it to every submission; the CLI fills the same before it sends. */
void jobspec_apply_defaults(Wslq__JobSpec *spec);

/* A wait reason's short name, as squeue writes them: "Priority", "Resources", "Dependency",
 * "Held", "ArrayLimit", "NoNode", "Backoff"; "" for none. */
const char *jobspec_wait_name(Wslq__WaitReason r);

/* ---- job arrays and job selectors ---- */

/* A set of array indices, ascending, each once; and the %K cap (0 = none). */
typedef struct {
    uint32_t *idx; /* owned */
    size_t n;
    uint32_t limit;
} jobspec_array_t;

/* Parse an array spec: comma-separated items N, A-B or A-B:STEP, then an optional %K:
 * "0-499%8", "1,3,5-9:2". Indices 0..WIRE_MAX_ARRAY_INDEX, at most WIRE_MAX_ARRAY_TASKS of
 * them (duplicates count once), K 1..WIRE_MAX_ARRAY_TASKS. allow_limit = 0 refuses a %K (a
 * selector's task list). 0, or -1 with a one-line *err and *out empty. */
int jobspec_parse_array(const char *s, int allow_limit, jobspec_array_t *out, wq_error_t *err);
void jobspec_array_fini(jobspec_array_t *a);

/* Write ascending indices as ranges: "3-9,12". At most size-1 bytes; a list that does not fit
 * ends in "...". Returns buf. */
const char *jobspec_format_indices(const uint32_t *idx, size_t n, char *buf, size_t size);

/* Which jobs a command names: "42" (a job; for an array's id, the whole array), "40_7" (one
 * task), "40_[3-9,12]" (those tasks; the brackets may be left out for one task). */
typedef struct {
    uint64_t id;
    int has_tasks; /* an _INDEX or _[LIST] part was given */
    jobspec_array_t tasks;
} jobspec_selector_t;

/* 0, or -1 with a one-line *err ("'40_[3-' is not a job selector: ...") and *out empty. */
int jobspec_parse_selector(const char *s, jobspec_selector_t *out, wq_error_t *err);
void jobspec_selector_fini(jobspec_selector_t *sel);

/* --notify: the job changes posted to the owner's webhook (JobSpec.notify). */
#define JOBSPEC_NOTIFY_START   1u /* it started running */
#define JOBSPEC_NOTIFY_END     2u /* it ended, however */
#define JOBSPEC_NOTIFY_FAIL    4u /* it ended other than COMPLETED */
#define JOBSPEC_NOTIFY_REQUEUE 8u /* it went back to the queue */
#define JOBSPEC_NOTIFY_ALL     15u

/* "start,end,fail,requeue,all" (any of them, comma-separated, or "none") -> mask. 0, or -1
 * with a one-line reason naming the bad word. */
int jobspec_parse_notify(const char *s, uint32_t *mask, wq_error_t *err);
/* The mask as "end,fail" ("none" for 0). */
const char *jobspec_format_notify(uint32_t mask, char *buf, size_t size);

#endif
