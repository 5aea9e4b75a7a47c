/* Inside the dashboard: the snapshot the loop publishes and the renderers that turn it (and
 * the HTTP thread's own read-only queue connection) into response bodies. Split from http.c
 * so the renderers can be tested without a socket.
 *
 * Threads: http_snap_take() runs on the loop thread (it reads the scheduler's views); a
 * snapshot is immutable once published, apart from the lazily filled 'cache' strings, which
 * are guarded by the caller's database lock. Renderers run on HTTP connection threads. */
#ifndef WSLQ_HTTP_INT_H
#define WSLQ_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>

#include "scheduler/http/http_parse.h"
#include "scheduler/queue.h"
#include "scheduler/sched.h"
#include "scheduler/who.h"

#define HTTP_NODE_STATES 8 /* idle, mixed, allocated, torpid, lost, draining, drained, other */
extern const char *const http_node_state_names[HTTP_NODE_STATES];

/* One GPU as /metrics labels it. */
typedef struct {
    char *node;            /* owned */
    char *uuid;            /* owned; "" when not reported */
    uint32_t index;        /* GPU index on its node */
    uint64_t mem_total_mb; /* 0 = not reported */
    uint64_t mem_used_mb;
    int32_t temp_c;   /* -1 = not reported */
    int32_t util_pct; /* -1 = not reported */
    int32_t power_w;  /* -1 = not reported */
    uint64_t job_id;  /* holding job, 0 = free */
} http_gpu_t;

typedef struct http_snap {
    unsigned refs;                    /* owners; guarded by the server's snapshot lock */
    uint64_t version;                 /* sched_stats()->version when taken */
    uint64_t jobs_version;            /* changes whenever any job is added, ends or changes state */
    int64_t taken_ms;                 /* wall clock */
    int64_t started_ms;               /* wall clock when the dashboard started */
    sched_stats_t stats;              /* copy */
    uint64_t http_slow_cut_total;     /* connections shut for a slow request head */
    uint64_t http_auth_refused_total; /* requests answered 401 for want of a valid token */
    uint64_t active[WIRE_JOB_STATES]; /* active jobs by JobState */
    unsigned nodes_by_state[HTTP_NODE_STATES];
    unsigned n_nodes;
    unsigned gpus_total, gpus_used;
    http_gpu_t *gpus; /* owned, n_gpus */
    size_t n_gpus;
    char *nodes_json; /* owned: [NODE...] as proto/json.h renders it */
    char **drained;   /* owned: name and reason of each drained node, in pairs */
    size_t n_drained; /* pairs */

    char **owners;          /* owned: name, owner policy and owner state of each node, threes */
    size_t n_owners;        /* threes */
    uint64_t *gpu_resets;   /* owned: NodeInfo.gpu_resets of each owners entry */
    uint64_t suspended_now; /* active jobs suspended for a PC's owner */

    /* Filled on first use by an HTTP thread holding the database lock: */
    char *summary_json; /* owned: the /api/v1/summary body */
    char *update_json;  /* owned: the SSE "update" event data */
} http_snap_t;

/* What the walk over the active jobs found, kept for the next snapshot: a change of nodes
 * only (a fleet's GPU metrics, about once a second) reuses it instead of walking 100,000
 * waiting jobs again. Valid while the scheduler's jobs_changes is 'gen'. Loop thread only. */
typedef struct {
    int valid;
    uint64_t gen;
    uint64_t active[WIRE_JOB_STATES];
    uint64_t suspended_now;
    uint64_t jobs_version;
} http_jobwalk_t;

/* Each node's JSON as the last snapshot rendered it, to render only the nodes that changed:
 * building every node's JSON through cJSON was most of a snapshot's cost (a fleet of 1,000).
 * What a heartbeat changes (last_seen, each GPU's used memory, temperature, utilisation,
 * power and so the memory no job holds) is left out of the cached text as holes filled in at each
 * snapshot; the key is the node's NodeInfo packed with those cleared, so any other change (any
 * field, by whichever writer) renders the node again. Entry i is the i-th node of the last
 * snapshot. Loop thread only. */
typedef struct {
    uint8_t *key; /* owned: NodeInfo packed, the holes' fields cleared */
    size_t key_len;
    char *text; /* owned: json_node() of the cleared NodeInfo */
    size_t text_len;
    size_t *holes; /* owned: offset and length in text of last_seen, then of each GPU's */
    size_t n_holes;
} http_nodejson_t;

typedef struct {
    http_nodejson_t *v; /* owned, n */
    size_t n;
    uint8_t *scratch; /* a packing buffer, cap bytes */
    size_t cap;
    Wslq__GpuInfo *gpus; /* the cleared GPUs of the node at hand, n_gpus_cap */
    Wslq__GpuInfo **gpu_ptrs;
    size_t n_gpus_cap;
    size_t last_len;   /* the last rendering's length */
    uint64_t rendered; /* nodes rendered again, for the tests */
} http_nodecache_t;

/* The JSON array of nodes[0..n), as json_node() renders each, reusing and refreshing *cache
 * (NULL: none kept). Returns a malloc'd string. */
char *http_nodes_render(http_nodecache_t *cache, const Wslq__NodeInfo *const *nodes, size_t n);
void http_nodecache_free(http_nodecache_t *cache);

/* Build a snapshot from the scheduler's read-only views, the job counts from *walk when no
 * job changed since it was filled (NULL: always walk), the nodes' JSON through *nodes (NULL:
 * none kept). Loop thread only. refs = 1. Caller owns the result (http_snap_free). */
http_snap_t *
http_snap_take(sched_t *s, int64_t started_ms, http_jobwalk_t *walk, http_nodecache_t *nodes);
void http_snap_free(http_snap_t *snap);

/* A rendered response: status, body (owned) and its content type (static). */
typedef struct {
    int status;
    char *body;
    size_t len;
    const char *type;
} http_reply_t;

/* Fill *r with {"error": text, "status": status}. */
void http_reply_error(http_reply_t *r, int status, const char *text);

/* Jobs by state in the database, kept while jobs_version stays the same (heartbeats change
 * the snapshot several times a second; job states do not). Guarded like the connection. */
typedef struct {
    int valid;
    uint64_t jobs_version;           /* of the snapshot the counts were read for */
    int64_t counts[WIRE_JOB_STATES]; /* by JobState */
} http_counts_t;

/* API renderers: each fills *r (status 200 with JSON, or an error reply). 'q' is the HTTP
 * thread's own read-only queue connection, 'log_dir' is <state_dir>/logs; the caller holds
 * the lock that serialises use of 'q'. */
void http_api_summary(queue_t *q, http_counts_t *cache, http_snap_t *snap, http_reply_t *r);
/* 'who' asks: jobs are redacted for it (who_redact), and a job's log and metrics are its
 * owner's and the admins' alone (403 for anyone else). */
void http_api_jobs(queue_t *q, const http_req_t *req, const who_t *who, http_reply_t *r);
void http_api_job(queue_t *q, const char *log_dir, uint64_t id, const who_t *who, http_reply_t *r);
void http_api_log(
    queue_t *q, const char *log_dir, const http_req_t *req, const who_t *who, http_reply_t *r);
void
http_api_metrics(queue_t *q, const char *log_dir, uint64_t id, const who_t *who, http_reply_t *r);
void http_api_nodes(const http_snap_t *snap, http_reply_t *r);
/* GPU-hours, CPU-hours and jobs per user and per node of the jobs that ended in the last
 * HTTP_USAGE_DAYS days (acct.h), as wslq usage --json shows them. */
#define HTTP_USAGE_DAYS 7
void http_api_usage(queue_t *q, http_reply_t *r);

/* The SSE "update" event data: {"version","jobs_version","summary":{..},"nodes":[..]}.
 * Cached in snap->update_json; returns that string (borrowed). Same locking as above. */
const char *http_api_update_event(queue_t *q, http_counts_t *cache, http_snap_t *snap);

/* Log bytes [offset, offset+max) of job 'id' as a JSON object {"offset","next_offset",
 * "size","data"}; offset < 0 = the tail of 'max' bytes, starting after a line break. A log
 * not written yet reads as empty. Invalid UTF-8 and NUL bytes become U+FFFD; a multi-byte
 * character cut by the end of the file is left for the next read unless 'final' (the job
 * ended). Caller owns the result (cJSON_Delete). */
struct cJSON;
struct cJSON *
http_log_chunk(const char *log_dir, uint64_t id, int64_t offset, uint32_t max, int final);

/* Metric series parsed from <log_dir>/<id>.metrics ("rank<TAB>json" lines) starting at byte
 * *offset; complete lines only; *offset is advanced past what was read. Returns
 * {"x":"step","series":{KEY:{RANK:[[x,y],...]}}} (caller owns), NULL when no new line.
 * Numeric fields only; "step" (or the line's position) is x; at most HTTP_METRIC_KEYS keys
 * and HTTP_METRIC_POINTS points per series (thinned evenly, the newest kept). */
#define HTTP_METRIC_KEYS   32
#define HTTP_METRIC_POINTS 5000
#define HTTP_METRIC_READ   (32u << 20) /* bytes read at most per call (the newest) */
struct cJSON *http_metric_series(const char *log_dir, uint64_t id, uint64_t *offset);

/* Prometheus text exposition of a snapshot plus the server's own request counters
 * (http_codes[i] requests answered with http_code_values[i]). Caller owns the result. */
#define HTTP_N_CODES 13
extern const int http_code_values[HTTP_N_CODES];
char *
http_prom_render(const http_snap_t *snap, const uint64_t http_codes[HTTP_N_CODES], size_t *len);

/* Index into http_code_values for a status (the last slot counts any other). */
int http_code_slot(int status);

/* Escape a Prometheus label value (\\, \", \n) into out (cap bytes, truncated). */
void http_prom_escape(const char *in, char *out, size_t cap);

#endif
