/* The rendezvous relay: one Unix socket per job (WSLQ_RENDEZVOUS = <spool>/rdv.sock) on which
 * the job's processes reach the scheduler's per-job key/value store. Each request becomes a
 * KvRequest { job_id, attempt, op, key, value, timeout_ms } and the KvReply or ErrorReply with
 * the same request_id is written back. Line protocol (README.md, "Rendezvous socket"):
 *
 *   PUT <key> <len>\n<len bytes>     ->  OK\n
 *   GET <key>\n                      ->  VAL <len>\n<bytes>   or  NONE\n
 *   WAIT <key> <timeout_ms>\n        ->  VAL <len>\n<bytes>   or  ERR timed out\n
 *   anything wrong                   ->  ERR <one line>\n  (a malformed request also closes)
 *
 * One request at a time per connection; a connection may send many in turn. */
#ifndef WSLQ_WORKER_RDV_H
#define WSLQ_WORKER_RDV_H

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "common/err.h"
#include "proto/wire.h"

typedef struct rdv rdv_t;

/* Send a KvRequest (env is complete, request_id set) to the scheduler: 0 or -1. */
typedef int (*rdv_send_fn)(void *ctx, Wslq__Envelope *env);

rdv_t *rdv_new(rdv_send_fn send, void *ctx); /* Caller owns the result (rdv_destroy). */

/* Listen on 'path' for job (job_id, attempt). 0 or -1 with *err (path too long, bind). */
int rdv_open(rdv_t *r, uint64_t job_id, uint32_t attempt, const char *path, wq_error_t *err);

/* Close the job's listener and connections and remove the socket file. */
void rdv_close_job(rdv_t *r, uint64_t job_id, uint32_t attempt);

/* Fill up to max poll items (listeners and connections). Returns the count. */
size_t rdv_pollitems(const rdv_t *r, zmq_pollitem_t *items, size_t max);

/* Handle ready items (as filled by rdv_pollitems, after zmq_poll). */
void rdv_handle(rdv_t *r, const zmq_pollitem_t *items, size_t n);

/* A KvReply or ErrorReply: 1 if it answered one of our requests, else 0. */
int rdv_reply(rdv_t *r, const Wslq__Envelope *env);

void rdv_destroy(rdv_t **rp); /* NULL-safe; NULLs *rp; removes socket files */

#endif
