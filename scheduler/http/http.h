/* The dashboard: web page, JSON API (/api/v1/...), Server-Sent Events and /metrics, served
 * by libmicrohttpd inside wslq-scheduler.
 *
 * Threads: MHD runs its own listening thread and one thread per connection; nothing here
 * runs on the scheduler's loop except the per-turn hook, which takes a snapshot of the
 * loop's views (at most every 250 ms, or once a second when nothing changed) and publishes
 * it under a mutex. Jobs, events and history are read through the server's own read-only
 * connection to <state_dir>/queue.db (never the loop's), serialised by a second mutex; logs
 * and metric lines are read from <state_dir>/logs. The loop never waits for HTTP.
 *
 * Read-only: GET and HEAD only (405 otherwise). Limits: connections (503 above
 * max_conns), event streams (503 above max_sse), requests per second per client address
 * (429), request head size (431, from MHD's per-connection memory), request targets (414,
 * see http_parse.h); a request body is refused (413). */
#ifndef WSLQ_HTTP_H
#define WSLQ_HTTP_H

#include <stdint.h>

#include "common/err.h"
#include "scheduler/sched.h"

#define HTTP_DEFAULT_ADDR "127.0.0.1:7421"

typedef struct {
    const char *addr;       /* "HOST:PORT" (http_parse_listen); not owned */
    const char *token_file; /* a monitoring token (Prometheus): sees all, read-only; or NULL */
    int open;               /* no login at all: an insecure test cluster without token_file */
    int public_summary;     /* summary, nodes, /metrics and the update stream need no login */
    unsigned max_conns;     /* connections served at once; more get 503 */
    unsigned max_sse;       /* event streams at once; more get 503 */
    unsigned rate;          /* requests per second per client address (burst 2x); 0 = no limit */
} http_config_t;

/* Fill defaults: HTTP_DEFAULT_ADDR, no token, 64 connections, 32 streams, 50 requests/s. */
void http_config_init(http_config_t *cfg);

typedef struct http http_t;

/* Read the token, open the read-only queue connection, bind, start the server threads and
 * install the per-turn hook on 's' (which must outlive the server). Loop thread, before
 * sched_run(). Returns NULL with *err when the address is bad or taken, the token file is
 * unreadable or empty, or the database cannot be opened. Caller owns the result. */
http_t *http_new(const http_config_t *cfg, sched_t *s, wq_error_t *err);

/* Remove the hook, end event streams, stop the threads, close the database, NULL *self_p.
 * Call after sched_run() has returned, before sched_destroy(). NULL-safe. */
void http_destroy(http_t **self_p);

/* The port actually bound (port 0 in the address picks a free one). */
uint16_t http_port(const http_t *self);

#endif
