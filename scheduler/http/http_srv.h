/* Inside the dashboard server: what http.c (libmicrohttpd glue, limits, routing) and
 * http_sse.c (Server-Sent Events) share. Lock order: db_lock before snap_lock (never the
 * other way round); stat_lock is a leaf. */
#ifndef WSLQ_SCHEDULER_HTTP_SRV_H
#define WSLQ_SCHEDULER_HTTP_SRV_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "common/log.h"
#include "scheduler/http/http.h"
#include "scheduler/http/http_int.h"
#include "scheduler/http/http_parse.h"
#include "scheduler/who.h"

#define SSE_KEEPALIVE_MS 15000 /* comment line on an idle stream; below proxies' timeouts */
#define SSE_FOLLOW_MS    250   /* log/metric file check interval for a followed job */
#define SSE_BUF          (256u << 10)
#define RATE_BUCKETS     256

typedef struct {
    unsigned char addr[16]; /* IPv4 in the first 4 bytes, or IPv6 */
    int used;
    double tokens;   /* requests that may still be made now */
    int64_t last_ms; /* monotonic, last refill */
} rate_bucket_t;

/* Per connection: when its current request head started (HTTP_HEAD_TIMEOUT_MS). */
typedef struct hconn {
    struct hconn *next;
    int fd;
    int64_t since_mono; /* ms: opened, or the last answer ended */
    int in_request;     /* its head is complete: a request is being answered (or streamed) */
    int cut;            /* shut down for being too slow */
} hconn_t;

struct http {
    http_config_t cfg;
    sched_t *sched;
    http_jobwalk_t jobwalk;     /* the last snapshot's walk over the jobs (loop thread) */
    http_nodecache_t nodecache; /* the last snapshot's node JSON (loop thread) */
    struct MHD_Daemon *mhd;
    char *log_dir; /* <state_dir>/logs; owned */
    char *token;   /* owned; NULL = no token needed */
    uint16_t port;
    int64_t started_ms; /* wall clock */

    pthread_mutex_t snap_lock; /* snap, published, stopping */
    pthread_cond_t snap_cond;  /* broadcast on publish and on stop */
    http_snap_t *snap;         /* newest published; one reference held here */
    uint64_t published;        /* snapshots published so far */
    int stopping;
    /* Snapshots are taken only while someone reads them (READERS_MS, http.c). */
    atomic_llong read_mono; /* ms: when a request or stream last took one */
    atomic_int wanted;      /* a reader waits for a fresh one: publish at the next turn */

    pthread_mutex_t db_lock; /* q, counts, and the snapshots' lazy caches */
    queue_t *q;              /* read-only connection of the HTTP threads */
    http_counts_t counts;    /* jobs by state, read through q */

    /* Loop thread only. */
    int64_t last_publish_mono; /* ms */
    int64_t last_snap_us;      /* what the last snapshot cost the loop (CPU of its thread) */
    uint64_t last_version;

    atomic_uint conns; /* open connections */
    atomic_uint sse;   /* open event streams */

    pthread_mutex_t stat_lock; /* codes, buckets, the connection list */
    uint64_t codes[HTTP_N_CODES];
    hconn_t *hconns;             /* open connections, for the head timeout */
    uint64_t slow_cut_total;     /* connections shut for a head not complete in time */
    uint64_t auth_refused_total; /* requests without a valid token (401) */
    rate_bucket_t buckets[RATE_BUCKETS];
    wq_ratelimit_t warn_rl;
};

/* The newest published snapshot with a reference taken, or NULL before the first. When no
 * one has read one for READERS_MS the loop has stopped taking them: this asks it for a fresh
 * one and waits for it (WANTED_WAIT_MS at most, then the last one). */
http_snap_t *http_snap_acquire(http_t *h);
void http_snap_release(http_t *h, http_snap_t *s);

/* Queue resp with the security headers every answer carries, count it, drop our reference. */
enum MHD_Result
http_send_response(http_t *h, struct MHD_Connection *c, int status, struct MHD_Response *resp);

/* A JSON error answer {"error": text} with the headers its status needs. */
enum MHD_Result http_send_error(http_t *h, struct MHD_Connection *c, int status, const char *text);

/* GET /api/v1/events[?job=ID]: an event stream of updates (and the job's log and metrics);
 * who must own the job or be an admin. head: HEAD, headers only. */
enum MHD_Result http_serve_events(
    http_t *h, struct MHD_Connection *c, const http_req_t *req, const who_t *who, int head);

#endif
