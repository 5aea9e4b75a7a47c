/* The doctor's owner.reporter check, made by the worker (its config knows the owner file and
 * policy) and sent with the others in Register.checks, so `wslq doctor --node NAME` shows it:
 * the node's owner policy, and whether the Windows reporter's file exists and is fresh. */
#ifndef WSLQ_WORKER_OWNERCHECK_H
#define WSLQ_WORKER_OWNERCHECK_H

#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"
#include "worker/owner.h"

/* file: the owner_file ("" none); policy: enum owner_policy; owner_user: "" none. Reads the
 * file at Unix time now. summary and fix get one line each (fix "" when nothing to do). */
Wslq__CheckVerdict owner_check(const char *file,
                               int policy,
                               const char *owner_user,
                               const owner_limits_t *lim,
                               int64_t now,
                               char *summary,
                               size_t summary_len,
                               char *fix,
                               size_t fix_len);

#endif
