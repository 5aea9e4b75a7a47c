/* Node checks (wslq doctor's verdicts) as they travel: a NodeCheck message per check, set by
 * the worker at start and by the scheduler (net.inbound, time.offset). This file is the one
 * place a check becomes text, so no program parses a verdict out of a string. */
#ifndef WSLQ_PROTO_NODECHECK_H
#define WSLQ_PROTO_NODECHECK_H

#include <stddef.h>

#include "proto/wslq.pb-c.h"

/* "PASS", "INFO", "WARN", "FAIL"; "?" for anything else. */
const char *nodecheck_verdict_name(Wslq__CheckVerdict v);

/* "pass", "info", "warn", "fail" (JSON), "?" for anything else. */
const char *nodecheck_verdict_lower(Wslq__CheckVerdict v);

/* "PASS <summary>" or "WARN <summary> | fix: <fix>": the line `wslq nodes` prints and the
 * JSON's attrs carry under "doctor.<id>". Written to buf; returns buf. */
const char *nodecheck_line(const Wslq__NodeCheck *c, char *buf, size_t size);

/* Add a check to a repeated field, or replace the one with the same id. The strings are
 * copied; the messages are freed with the field's owner (protobuf-c's free_unpacked). */
void nodecheck_set(Wslq__NodeCheck ***checks,
                   size_t *n,
                   const char *id,
                   Wslq__CheckVerdict verdict,
                   const char *summary,
                   const char *fix);

/* The check with this id, or NULL. */
const Wslq__NodeCheck *nodecheck_find(Wslq__NodeCheck *const *checks, size_t n, const char *id);

#endif
