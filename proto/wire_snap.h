/* Validation of the snapshot and output messages (wslq.proto: SnapshotPut ... FetchReply) and
 * of the spec's --workdir / --output fields. Called by wire.c's validate_body and
 * wire_validate_spec. */
#ifndef WSLQ_WIRE_SNAP_H
#define WSLQ_WIRE_SNAP_H

#include "common/err.h"
#include "proto/wslq.pb-c.h"

/* 1 when body is one of the messages here (then wire_validate_snap decides). */
int wire_is_snap(const Wslq__Envelope *env);
int wire_validate_snap(const Wslq__Envelope *env, wq_error_t *err);
/* JobSpec.workdir_hash: "" or 64 lowercase hex; output_dir: "" or a relative path without
 * ".." parts (it names a directory inside the work area), and only with a workdir. */
int wire_check_snap_spec(const Wslq__JobSpec *spec, wq_error_t *err);
/* 1 when s is 64 lowercase hex digits (a SHA-256). */
int wire_hash_ok(const char *s);

#endif
