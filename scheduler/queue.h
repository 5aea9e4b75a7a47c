/* The durable queue: jobs, their events and known nodes in SQLite (WAL).
 * The only file that includes <sqlite3.h>; used from the scheduler's loop thread only.
 * Each job row keeps the whole JobInfo packed (column info) plus the columns that
 * listings filter on. Writes happen inside queue_begin()/queue_commit(): the loop opens
 * one transaction per turn and commits it before any reply leaves (group commit). */
#ifndef WSLQ_QUEUE_H
#define WSLQ_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "proto/wire.h" /* WIRE_JOB_STATES */

typedef struct queue queue_t;

/* 2: principals, codes, tokens; 3: node_drains, node_tags; 4: accounting columns */
#define QUEUE_SCHEMA_VERSION 4

/* Open (creating and migrating) the queue at 'path' (":memory:" for tests). With
 * 'sync_full' queue_commit returns once the commit is on disk (it survives a power loss),
 * as SQLite's synchronous=FULL; without, a commit survives a crash of the process only.
 * Runs PRAGMA quick_check and refuses a damaged file. Caller owns the result. */
queue_t *queue_new(const char *path, int sync_full, wq_error_t *err);
void queue_destroy(queue_t **self_p);

/* Open an existing queue read-only, for a thread other than the loop (the HTTP server keeps
 * its own connection; WAL lets it read while the loop writes). No schema change, no
 * quick_check. Only the read functions may be used on it (queue_get, queue_events,
 * queue_list, queue_count_states, queue_max_id, queue_list_nodes). One thread at a time.
 * Caller owns the result (queue_destroy). */
queue_t *queue_open_reader(const char *path, wq_error_t *err);

/* Open a write transaction if none is open (BEGIN IMMEDIATE). */
int queue_begin(queue_t *self, wq_error_t *err);
/* Commit the open transaction, if any; with sync_full it and every earlier commit are on
 * disk when this returns (a sync of the WAL, even with no transaction open, where a lazy
 * commit left one unsynced). -1 with *err: the transaction is rolled back, or it is
 * committed but its sync failed (not durable: say nothing of it to anyone). */
int queue_commit(queue_t *self, wq_error_t *err);
/* Commit the open transaction, if any, without waiting for the disk: safe from a crash of
 * the process at once, from a power loss once a later queue_commit returns. For a turn that
 * tells no one anything (nothing a peer will forget because it was told so). */
int queue_commit_lazy(queue_t *self, wq_error_t *err);
/* Roll the open transaction back, if any. */
void queue_rollback(queue_t *self);
/* 1 if a transaction is open. */
int queue_in_txn(const queue_t *self);

/* Insert a new job (info->id is ignored and set to the new id). Inside a transaction. */
int queue_insert(queue_t *self, Wslq__JobInfo *info, wq_error_t *err);
/* Write the job's current info (state, allocs, ...). Inside a transaction. */
int queue_update(queue_t *self, const Wslq__JobInfo *info, wq_error_t *err);
/* Append an event row for job 'id' (seq is the next one). Inside a transaction. */
int queue_add_event(queue_t *self, uint64_t id, const Wslq__JobEvent *ev, wq_error_t *err);

/* Load one job. Caller owns the result (wslq__job_info__free_unpacked). NULL + WQ_ENOENT. */
Wslq__JobInfo *queue_get(queue_t *self, uint64_t id, wq_error_t *err);

/* Events of a job, oldest first. Caller owns *events (queue_free_events). */
int queue_events(queue_t *self, uint64_t id, Wslq__JobEvent ***events, size_t *n, wq_error_t *err);
void queue_free_events(Wslq__JobEvent **events, size_t n);

typedef struct {
    int active_only;     /* only PENDING/STARTING/RUNNING */
    unsigned state_mask; /* bit (1 << state); 0 = any */
    const char *user;    /* NULL = any */
    const char *name;    /* NULL = any */
    uint64_t before_id;  /* only ids below this; 0 = no bound */
    unsigned limit;      /* rows at most */
    int newest_first;    /* order by id descending */
    int strict;          /* a record that cannot be read fails the call (else it is logged and
                            left out) */
} queue_filter_t;

/* Call fn for each matching job (ascending id unless newest_first). The info passed is
 * owned by the callback (free it or keep it). Returns the number visited or -1. */
typedef void (*queue_visit_f)(Wslq__JobInfo *info, void *arg);
long
queue_list(queue_t *self, const queue_filter_t *f, queue_visit_f fn, void *arg, wq_error_t *err);

/* Count jobs by state into counts[0..8]. */
int queue_count_states(queue_t *self, int64_t counts[WIRE_JOB_STATES], wq_error_t *err);

/* Highest job id ever issued (0 for none). */
uint64_t queue_max_id(queue_t *self);

/* Remember a node's last registration (packed NodeInfo) across restarts. */
int queue_save_node(queue_t *self, const Wslq__NodeInfo *node, wq_error_t *err);
/* Call fn for each remembered node; the callback owns the NodeInfo. */
typedef void (*queue_node_f)(Wslq__NodeInfo *node, void *arg);
int queue_list_nodes(queue_t *self, queue_node_f fn, void *arg, wq_error_t *err);

/* ---- who is who (queue.c, schema 2) ---- */

typedef struct {
    char key[48];  /* the CURVE public key, Z85 */
    char kind[16]; /* "user", "node", "revoked" */
    char name[WIRE_MAX_NAME + 1];
    int admin;
    int64_t since_ms;
} queue_principal_t;

typedef struct {
    char hash[80]; /* of the code's secret (keys_hash_hex): the code itself is never kept */
    char kind[16]; /* "user", "node" */
    char name[WIRE_MAX_NAME + 1]; /* "" = a node that names itself when it joins */
    int admin;
    int64_t made_ms, expires_ms;
} queue_code_t;

/* Add or replace a key's principal. Inside a transaction. */
int queue_principal_put(queue_t *self, const queue_principal_t *p, wq_error_t *err);
/* Mark every key of (kind, name) revoked. Returns how many, or -1. */
int queue_principals_revoke(queue_t *self, const char *kind, const char *name, wq_error_t *err);
/* Set a user's admin flag on all of its keys. Returns how many, or -1. */
int queue_principals_set_admin(queue_t *self, const char *name, int admin, wq_error_t *err);
typedef void (*queue_principal_f)(const queue_principal_t *p, void *arg);
long queue_principals_list(queue_t *self, queue_principal_f fn, void *arg, wq_error_t *err);

int queue_code_put(queue_t *self, const queue_code_t *c, wq_error_t *err);
/* Use a code: it is removed whatever it holds; -1 with WQ_ENOENT (unknown or used) or
 * WQ_ETIMEDOUT (expired). */
int queue_code_take(
    queue_t *self, const char *hash, int64_t now_ms, queue_code_t *out, wq_error_t *err);
/* Codes not yet used or expired (expired ones are removed first). */
typedef void (*queue_code_f)(const queue_code_t *c, void *arg);
long queue_codes_list(queue_t *self, int64_t now_ms, queue_code_f fn, void *arg, wq_error_t *err);

/* A node an admin drained (wslq drain): kept apart from the node's registration. */
typedef struct queue_drain {
    char name[WIRE_MAX_NAME + 1];
    char reason[WIRE_MAX_DRAIN_REASON + 1];
    int64_t since_ms; /* wall clock */
    char by[WIRE_MAX_NAME + 1];
} queue_drain_t;

/* Drain a node, or change its reason. Inside a transaction. */
int queue_drain_put(queue_t *self, const queue_drain_t *d, wq_error_t *err);
/* Resume a node: 1 if it was drained, 0 if not, -1. Inside a transaction. */
int queue_drain_remove(queue_t *self, const char *name, wq_error_t *err);
/* Every drained node, by name. Returns how many, or -1. */
typedef void (*queue_drain_f)(const queue_drain_t *d, void *arg);
long queue_drains_list(queue_t *self, queue_drain_f fn, void *arg, wq_error_t *err);

/* A node's tags (wslq admin node tag), comma-separated; "" removes them. Inside a
 * transaction. */
int queue_tags_put(queue_t *self, const char *name, const char *tags, wq_error_t *err);
/* Every node with tags, by name. Returns how many, or -1. */
typedef void (*queue_tags_f)(const char *name, const char *tags, void *arg);
long queue_tags_list(queue_t *self, queue_tags_f fn, void *arg, wq_error_t *err);

/* Forget a node's registration (an admin removed it). Inside a transaction. */
int queue_forget_node(queue_t *self, const char *name, wq_error_t *err);

/* Dashboard tokens, kept as hashes. queue_token_user works on a reader (the HTTP threads). */
int
queue_token_put(queue_t *self, const char *hash, const char *user, int64_t now_ms, wq_error_t *err);
int queue_tokens_revoke(queue_t *self, const char *user, wq_error_t *err);
/* The user a token (its hash) belongs to, and whether that user is an admin: 0, or -1 when
 * no such token. */
int queue_token_user(queue_t *self, const char *hash, char *user, size_t size, int *admin);

/* ---- accounting (schema 4): ended jobs only ---- */

typedef struct {
    const char *user;    /* NULL = any */
    const char *node;    /* NULL = any: only jobs one of whose parts ran there */
    const char *name;    /* NULL = any */
    unsigned state_mask; /* bit (1 << state); 0 = any ended state */
    int64_t since_ms;    /* ended at or after; 0 = no bound */
    int64_t until_ms;    /* ended before; 0 = no bound */
    unsigned limit;      /* the newest this many (by end time); 0 = 100 */
} queue_acct_filter_t;

/* Ended jobs matching f, newest end first; fn owns each info. Returns how many, or -1. Works
 * on a reader. */
long queue_history(
    queue_t *self, const queue_acct_filter_t *f, queue_visit_f fn, void *arg, wq_error_t *err);

/* One ended job's accounting columns: its nodes as ",pc1,pc2,". */
typedef struct {
    const char *user;
    const char *nodes;
    int64_t gpus, cpus; /* nodes x per node */
    int64_t start_ms, end_ms;
} queue_acct_row_t;
typedef void (*queue_acct_f)(const queue_acct_row_t *row, void *arg);
/* Every job that ended in [since_ms, until_ms) (0: no bound), without unpacking records.
 * Returns how many, or -1. Works on a reader. */
long queue_usage(
    queue_t *self, int64_t since_ms, int64_t until_ms, queue_acct_f fn, void *arg, wq_error_t *err);

#endif
