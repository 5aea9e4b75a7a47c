/* The job spec's contract between the programs: the defaults a spec gets when a field is left
 * empty, and the variables the worker sets for every rank (DESIGN.md §6). The CLI, the
 * scheduler and the worker all use these, so they cannot disagree. */
#ifndef WSLQ_PROTO_JOBSPEC_H
#define WSLQ_PROTO_JOBSPEC_H

#include <stddef.h>

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

#endif
