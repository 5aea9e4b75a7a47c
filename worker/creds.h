/* A node's identity: joining the cluster with a one-time code (wslq-worker --join CODE), and
 * the keys every later start connects with. The credentials file (proto/keys.h) holds the
 * node's CURVE key pair, the scheduler's pinned public key and address, and the name the
 * scheduler bound to the key. */
#ifndef WSLQ_WORKER_CREDS_H
#define WSLQ_WORKER_CREDS_H

#include "common/err.h"
#include "proto/keys.h"
#include "worker/config.h"

/* Enrol with cfg->join: a new key pair, an EnrolRequest over CURVE to the scheduler the code
 * names (pinning the key the code carries), the reply's name saved with the keys in
 * cfg->credentials (0600). Waits at most timeout_ms for the answer. 0 with *creds filled, or
 * -1 with *err one line (a used or expired code, a scheduler that cannot be reached). */
int creds_join(const wcfg_t *cfg, int timeout_ms, keys_creds_t *creds, wq_error_t *err);

/* Before the worker starts: read cfg->credentials into *creds and reconcile it with cfg. The
 * scheduler's address comes from the file unless the flags, the config or WSLQ_SCHEDULER gave
 * one; the node's name is the one its key was bound to (a different --name is refused). -1
 * with *err saying how to get credentials when there are none. */
int creds_resolve(wcfg_t *cfg, keys_creds_t *creds, wq_error_t *err);

#endif
