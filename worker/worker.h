/* The worker: one event loop over the DEALER socket to the scheduler and a self-pipe for
 * signals (SIGCHLD, SIGTERM, SIGINT). It registers, heartbeats, launches and watches jobs,
 * streams their logs and metrics, and reports their ends until acknowledged. */
#ifndef WSLQ_WORKER_WORKER_H
#define WSLQ_WORKER_WORKER_H

#include "common/err.h"
#include "proto/keys.h"
#include "worker/config.h"

typedef struct worker worker_t;

/* Create the state directory, probe the node, adopt jobs left by an earlier worker process
 * and connect to the scheduler: over CURVE with creds (creds_resolve), or in the clear when
 * creds is NULL (cfg->insecure). Caller owns the result (worker_destroy). */
worker_t *worker_new(const wcfg_t *cfg, const keys_creds_t *creds, wq_error_t *err);

/* Run until SIGTERM or SIGINT. Running jobs are left running (they are re-adopted by the
 * next worker process). Returns 0, or -1 on a fatal socket error. */
int worker_run(worker_t *w);

/* Close the socket and free everything; does not signal jobs. NULLs *wp. NULL-safe. */
void worker_destroy(worker_t **wp);

#endif
