/* Server-Sent Events for the dashboard (GET /api/v1/events): snapshot updates, and for a
 * followed job its new log bytes and metric points, with keepalives; see http_srv.h. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/mem.h"
#include "scheduler/http/http_srv.h"

typedef struct {
    http_t *h;
    uint64_t job_id;     /* followed job, 0 = none */
    uint64_t version;    /* of the last update sent; 0 = none yet */
    int64_t log_off;     /* next log byte to send; -1 = start with the tail */
    uint64_t met_off;    /* next metrics byte to read */
    int64_t last_send;   /* monotonic ms */
    int64_t next_follow; /* monotonic ms of the next file check */
    char *buf;           /* pending bytes of the current event; owned */
    size_t len, pos, cap;
} sse_t;

static void
sse_put(sse_t *s, const char *event, const char *data)
{
    size_t need = strlen(event) + strlen(data) + 32;
    if (s->len + need > s->cap) {
        s->cap = s->len + need + 1024;
        s->buf = wq_realloc(s->buf, s->cap);
    }
    /* cJSON output has no raw newlines, so each event is one data: line. */
    s->len +=
        (size_t) snprintf(s->buf + s->len, s->cap - s->len, "event: %s\ndata: %s\n\n", event, data);
}

static void
sse_put_json(sse_t *s, const char *event, cJSON *o)
{
    char *txt = cJSON_PrintUnformatted(o);
    sse_put(s, event, txt);
    cJSON_free(txt);
    cJSON_Delete(o);
}

/* New log bytes and metric points of the followed job, if any; returns 1 if it queued. */
static int
sse_follow(sse_t *s)
{
    http_t *h = s->h;
    int queued = 0;
    cJSON *log = http_log_chunk(h->log_dir, s->job_id, s->log_off, HTTP_LOG_DEFAULT, 0);
    double next = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(log, "next_offset"));
    if (s->log_off < 0 || next > (double) s->log_off) {
        s->log_off = (int64_t) next;
        sse_put_json(s, "log", log);
        queued = 1;
    } else {
        cJSON_Delete(log);
    }
    cJSON *met = http_metric_series(h->log_dir, s->job_id, &s->met_off);
    if (met != NULL) {
        sse_put_json(s, "metrics", met);
        queued = 1;
    }
    return queued;
}

static ssize_t
sse_read(void *cls, uint64_t pos, char *out, size_t max)
{
    (void) pos;
    sse_t *s = cls;
    http_t *h = s->h;
    for (;;) {
        if (s->pos < s->len) {
            size_t n = s->len - s->pos < max ? s->len - s->pos : max;
            memcpy(out, s->buf + s->pos, n);
            s->pos += n;
            s->last_send = wq_clock_mono_ms();
            return (ssize_t) n;
        }
        s->pos = s->len = 0;
        pthread_mutex_lock(&h->snap_lock);
        int stopping = h->stopping;
        pthread_mutex_unlock(&h->snap_lock);
        if (stopping)
            return MHD_CONTENT_READER_END_OF_STREAM;

        http_snap_t *snap = http_snap_acquire(h);
        if (snap != NULL && snap->version != s->version) {
            pthread_mutex_lock(&h->db_lock);
            const char *ev = http_api_update_event(h->q, &h->counts, snap);
            sse_put(s, "update", ev);
            pthread_mutex_unlock(&h->db_lock);
            s->version = snap->version;
        }
        http_snap_release(h, snap);
        int64_t now = wq_clock_mono_ms();
        if (s->job_id && now >= s->next_follow) {
            s->next_follow = now + SSE_FOLLOW_MS;
            sse_follow(s);
        }
        if (s->len > 0)
            continue;
        if (now - s->last_send >= SSE_KEEPALIVE_MS) {
            sse_put(s, "ping", "{}");
            continue;
        }
        /* Sleep until a publish, the next file check or the keepalive. */
        int64_t wake = s->last_send + SSE_KEEPALIVE_MS;
        if (s->job_id && s->next_follow < wake)
            wake = s->next_follow;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t wait_ms = wake - now > 0 ? wake - now : 1;
        ts.tv_sec += wait_ms / 1000;
        ts.tv_nsec += (wait_ms % 1000) * 1000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&h->snap_lock);
        if (!h->stopping && (h->snap == NULL || h->snap->version == s->version))
            pthread_cond_timedwait(&h->snap_cond, &h->snap_lock, &ts);
        pthread_mutex_unlock(&h->snap_lock);
    }
}

static void
sse_free(void *cls)
{
    sse_t *s = cls;
    atomic_fetch_sub(&s->h->sse, 1);
    free(s->buf);
    free(s);
}

enum MHD_Result
http_serve_events(
    http_t *h, struct MHD_Connection *c, const http_req_t *req, const who_t *who, int head)
{
    if (req->job_id) {
        pthread_mutex_lock(&h->db_lock);
        Wslq__JobInfo *info = queue_get(h->q, req->job_id, NULL);
        pthread_mutex_unlock(&h->db_lock);
        if (info == NULL)
            return http_send_error(h, c, 404, "no such job to follow");
        int may = who_may_touch(who, info);
        wslq__job_info__free_unpacked(info, NULL);
        if (!may)
            return http_send_error(h, c, 403,
                                   "not your job: only its owner or an admin may follow it");
    }
    if (head) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Content-Type", "text/event-stream");
        return http_send_response(h, c, 200, resp);
    }
    if (atomic_fetch_add(&h->sse, 1) >= h->cfg.max_sse) {
        atomic_fetch_sub(&h->sse, 1);
        return http_send_error(h, c, 503, "too many event streams open; try again later");
    }
    sse_t *s = wq_calloc(1, sizeof *s);
    s->h = h;
    s->job_id = req->job_id;
    s->log_off = -1;
    s->last_send = wq_clock_mono_ms();
    /* Tell the browser how soon to reconnect after the scheduler restarts. */
    s->cap = 4096;
    s->buf = wq_malloc(s->cap);
    s->len = (size_t) snprintf(s->buf, s->cap, "retry: 2000\n\n");
    sse_put(s, "hello", "{\"retry_ms\":2000}");
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 << 10, sse_read, s, sse_free);
    if (resp == NULL) {
        sse_free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    return http_send_response(h, c, 200, resp);
}

/* ---------- dispatch ---------- */
