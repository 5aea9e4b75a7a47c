/* Who a request comes from, and what that principal may see of a job. Shared by the event
 * loop (requests over ZeroMQ, identity from the CURVE key) and the dashboard's threads
 * (identity from a bearer token). Pure functions: no I/O, no clock. */
#ifndef WSLQ_SCHEDULER_WHO_H
#define WSLQ_SCHEDULER_WHO_H

#include "common/limits.h"
#include "proto/wslq.pb-c.h"

typedef enum {
    WHO_NOBODY,      /* nothing we accept (a revoked key) */
    WHO_ANON,        /* a CURVE key nobody enrolled: it may only enrol */
    WHO_USER,        /* an enrolled user */
    WHO_NODE,        /* an enrolled node, bound to its name */
    WHO_LOCAL_ADMIN, /* the scheduler host's local socket */
    WHO_INSECURE,    /* insecure = yes: every peer is what it claims */
} who_kind_t;

typedef struct who {
    who_kind_t kind;
    char name[WIRE_MAX_NAME + 1]; /* user or node name ("root" for the local admin) */
    int admin;                    /* an admin user */
    char key[48];                 /* its CURVE key (Z85), "" without one */
} who_t;

/* May act on any job and administer: the local admin, an admin user, or anyone when insecure. */
#define WHO_IS_ADMIN(w)                                           \
    ((w)->kind == WHO_LOCAL_ADMIN || (w)->kind == WHO_INSECURE || \
     ((w)->kind == WHO_USER && (w)->admin))

/* 1 if this principal may act on the job (cancel it, read its log and metrics, see its
 * command): its owner or an admin. */
int who_may_touch(const who_t *who, const Wslq__JobInfo *info);

/* Make a job fit to show this principal, in place (on a copy): no secret_env value ever, to
 * anyone; no argv, working directory or environment of a job that is not theirs. Everyone
 * keeps seeing its id, owner, name, state and resources. */
void who_redact(const who_t *who, Wslq__JobInfo *info);

#endif
