/* The JSON API's bodies; see http_int.h and API.md. Jobs, events and history come from the
 * HTTP thread's own read-only queue connection; nodes and counters from the loop's snapshot.
 * Job and node objects have the shape of `wslq ... --json` (proto/json.h), except that the
 * values of a job's environment are hidden: the API may be reachable by more people than
 * `wslq show`, and secrets travel in --env. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/mem.h"
#include "proto/json.h"
#include "scheduler/acct.h"
#include "scheduler/http/http_int.h"

#define WSLQ_VERSION_STR "0.1.0"

void
http_reply_error(http_reply_t *r, int status, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", text);
    cJSON_AddNumberToObject(o, "status", status);
    r->status = status;
    r->body = cJSON_PrintUnformatted(o);
    r->len = strlen(r->body);
    r->type = "application/json";
    cJSON_Delete(o);
}

static void
reply_json(http_reply_t *r, cJSON *doc)
{
    r->status = 200;
    r->body = cJSON_PrintUnformatted(doc);
    r->len = strlen(r->body);
    r->type = "application/json";
    cJSON_Delete(doc);
}

static void
reply_db_error(http_reply_t *r, const wq_error_t *err)
{
    if (err->code == WQ_ENOENT)
        http_reply_error(r, 404, err->text);
    else
        http_reply_error(r, 500, err->text[0] ? err->text : "database read failed");
}

/* "K=V" -> "K=…": the names say what was set; the values stay with `wslq show`. */
static cJSON *
job_json(const Wslq__JobInfo *j)
{
    cJSON *o = json_job(j);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(o, "spec");
    cJSON *env = spec ? cJSON_GetObjectItemCaseSensitive(spec, "env") : NULL;
    cJSON *item;
    cJSON_ArrayForEach(item, env)
    {
        const char *kv = cJSON_GetStringValue(item);
        const char *eq = kv ? strchr(kv, '=') : NULL;
        if (eq == NULL)
            continue;
        char *hidden = wq_asprintf("%.*s=\xe2\x80\xa6", (int) (eq - kv), kv);
        cJSON_SetValuestring(item, hidden);
        free(hidden);
    }
    return o;
}

static char *
path_of(const char *log_dir, uint64_t id, const char *ext)
{
    return wq_asprintf("%s/%" PRIu64 ".%s", log_dir, id, ext);
}

static int64_t
size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t) st.st_size : 0;
}

/* ---------- summary, update event, nodes ---------- */

static cJSON *
summary_doc(queue_t *q, http_counts_t *cache, const http_snap_t *s)
{
    cJSON *o = cJSON_CreateObject();
    char buf[40];
    cJSON_AddNumberToObject(o, "version", (double) s->version);
    cJSON_AddNumberToObject(o, "jobs_version", (double) s->jobs_version);
    cJSON_AddNumberToObject(o, "time_ms", (double) s->taken_ms);
    cJSON_AddStringToObject(o, "time", json_format_time(s->taken_ms, buf, sizeof buf));
    cJSON *sch = cJSON_AddObjectToObject(o, "scheduler");
    cJSON_AddStringToObject(sch, "version", WSLQ_VERSION_STR);
    cJSON_AddNumberToObject(sch, "started_ms", (double) s->started_ms);
    cJSON_AddNumberToObject(sch, "uptime_s", (double) ((s->taken_ms - s->started_ms) / 1000));

    /* Every job ever queued, by state, from the database; active ones from the loop when the
     * read fails (it should not), so the page still shows the queue. */
    if (!cache->valid || cache->jobs_version != s->jobs_version) {
        cache->valid = queue_count_states(q, cache->counts, NULL) == 0;
        cache->jobs_version = s->jobs_version;
    }
    int64_t counts[WIRE_JOB_STATES] = {0};
    for (int i = 0; i < WIRE_JOB_STATES; i++)
        counts[i] = cache->valid ? cache->counts[i] : (int64_t) s->active[i];
    cJSON *jobs = cJSON_AddObjectToObject(o, "jobs");
    int64_t total = 0;
    for (int i = WSLQ__JOB_STATE__PENDING; i < WIRE_JOB_STATES; i++) {
        if (!wire_state_known(i))
            continue;
        const char *n = wire_state_name((Wslq__JobState) i);
        char low[32];
        size_t k = 0;
        for (; n[k] && k + 1 < sizeof low; k++)
            low[k] = (char) (n[k] >= 'A' && n[k] <= 'Z' ? n[k] - 'A' + 'a' : n[k]);
        low[k] = '\0';
        cJSON_AddNumberToObject(jobs, low, (double) counts[i]);
        total += counts[i];
    }
    cJSON_AddNumberToObject(jobs, "total", (double) total);
    cJSON_AddNumberToObject(jobs, "active",
                            (double) (s->active[WSLQ__JOB_STATE__PENDING] +
                                      s->active[WSLQ__JOB_STATE__STARTING] +
                                      s->active[WSLQ__JOB_STATE__RUNNING]));

    cJSON *nodes = cJSON_AddObjectToObject(o, "nodes");
    cJSON_AddNumberToObject(nodes, "total", s->n_nodes);
    for (int i = 0; i < HTTP_NODE_STATES; i++)
        cJSON_AddNumberToObject(nodes, http_node_state_names[i], s->nodes_by_state[i]);
    cJSON *gpus = cJSON_AddObjectToObject(o, "gpus");
    cJSON_AddNumberToObject(gpus, "total", s->gpus_total);
    cJSON_AddNumberToObject(gpus, "used", s->gpus_used);

    const sched_stats_t *st = &s->stats;
    cJSON *c = cJSON_AddObjectToObject(o, "counters");
    cJSON_AddNumberToObject(c, "submitted_total", (double) st->submitted_total);
    cJSON_AddNumberToObject(c, "refused_total", (double) st->refused_total);
    cJSON_AddNumberToObject(c, "requeued_total", (double) st->requeued_total);
    cJSON_AddNumberToObject(c, "notify_sent_total", (double) st->notify_sent_total);
    cJSON_AddNumberToObject(c, "notify_failed_total", (double) st->notify_failed_total);
    cJSON_AddNumberToObject(c, "wire_protocol_errors_total", (double) st->bad_frames_total);
    uint64_t ended = 0;
    for (int i = 0; i < WIRE_JOB_STATES; i++)
        ended += st->ended_total[i];
    cJSON_AddNumberToObject(c, "ended_total", (double) ended);
    cJSON *w = cJSON_AddObjectToObject(o, "wait");
    cJSON_AddNumberToObject(w, "count", (double) st->wait_count);
    if (st->wait_count > 0)
        cJSON_AddNumberToObject(w, "mean_s", st->wait_sum_s / (double) st->wait_count);
    else
        cJSON_AddNullToObject(w, "mean_s");
    return o;
}

void
http_api_summary(queue_t *q, http_counts_t *cache, http_snap_t *snap, http_reply_t *r)
{
    if (snap->summary_json == NULL) {
        cJSON *doc = summary_doc(q, cache, snap);
        snap->summary_json = cJSON_PrintUnformatted(doc);
        cJSON_Delete(doc);
    }
    r->status = 200;
    r->body = wq_strdup(snap->summary_json);
    r->len = strlen(r->body);
    r->type = "application/json";
}

const char *
http_api_update_event(queue_t *q, http_counts_t *cache, http_snap_t *snap)
{
    if (snap->update_json == NULL) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "version", (double) snap->version);
        cJSON_AddNumberToObject(o, "jobs_version", (double) snap->jobs_version);
        cJSON_AddItemToObject(o, "summary", summary_doc(q, cache, snap));
        /* the nodes spliced in as rendered: parsing and printing a fleet's again cost more
         * than the rest of the event */
        char *head = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        size_t n = strlen(head);
        WQ_ASSERT(n >= 2 && head[n - 1] == '}');
        head[n - 1] = '\0';
        snap->update_json =
            wq_asprintf("%s,\"nodes\":%s}", head, snap->nodes_json ? snap->nodes_json : "[]");
        cJSON_free(head);
    }
    return snap->update_json;
}

void
http_api_nodes(const http_snap_t *snap, http_reply_t *r)
{
    /* {"version":V,"nodes":[...]}: splice the rendered array rather than parse it again. */
    r->status = 200;
    r->body = wq_asprintf("{\"version\":%" PRIu64 ",\"nodes\":%s}", snap->version,
                          snap->nodes_json ? snap->nodes_json : "[]");
    r->len = strlen(r->body);
    r->type = "application/json";
}

/* ---------- usage (accounting) ---------- */

static cJSON *
usage_rows(Wslq__UsageRow **rows, size_t n, const char *key)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, key, rows[i]->key);
        cJSON_AddNumberToObject(o, "jobs", (double) rows[i]->jobs);
        cJSON_AddNumberToObject(o, "gpu_seconds", (double) rows[i]->gpu_s);
        cJSON_AddNumberToObject(o, "cpu_seconds", (double) rows[i]->cpu_s);
        cJSON_AddNumberToObject(o, "gpu_hours", (double) rows[i]->gpu_s / 3600.0);
        cJSON_AddNumberToObject(o, "cpu_hours", (double) rows[i]->cpu_s / 3600.0);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

void
http_api_usage(queue_t *q, http_reply_t *r)
{
    int64_t now = wq_clock_wall_ms();
    Wslq__UsageReply rep = WSLQ__USAGE_REPLY__INIT;
    wq_error_t err = {0};
    if (acct_usage(q, now - HTTP_USAGE_DAYS * 86400000LL, now + 1, &rep, &err) < 0) {
        http_reply_error(r, 500, err.text);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "days", HTTP_USAGE_DAYS);
    cJSON_AddNumberToObject(o, "since_ms", (double) rep.since_ms);
    cJSON_AddNumberToObject(o, "until_ms", (double) rep.until_ms);
    cJSON_AddItemToObject(o, "users", usage_rows(rep.users, rep.n_users, "user"));
    cJSON_AddItemToObject(o, "nodes", usage_rows(rep.nodes, rep.n_nodes, "node"));
    acct_usage_free(&rep);
    r->status = 200;
    r->body = cJSON_PrintUnformatted(o);
    r->len = strlen(r->body);
    r->type = "application/json";
    cJSON_Delete(o);
}

/* ---------- jobs ---------- */

typedef struct {
    cJSON *arr;
    unsigned n, limit;
    uint64_t last_id;
    int more;
    const who_t *who;
} jobs_ctx_t;

static void
add_job(Wslq__JobInfo *info, void *arg)
{
    jobs_ctx_t *c = arg;
    if (c->n == c->limit) {
        c->more = 1; /* the one extra row asked for */
    } else {
        who_redact(c->who, info);
        cJSON_AddItemToArray(c->arr, job_json(info));
        c->last_id = info->id;
        c->n++;
    }
    wslq__job_info__free_unpacked(info, NULL);
}

void
http_api_jobs(queue_t *q, const http_req_t *req, const who_t *who, http_reply_t *r)
{
    queue_filter_t f = {0};
    f.state_mask = req->state_mask;
    f.user = req->user[0] ? req->user : NULL;
    f.name = req->name[0] ? req->name : NULL;
    f.before_id = req->before;
    f.limit = req->limit + 1;
    f.newest_first = 1;
    jobs_ctx_t c = {cJSON_CreateArray(), 0, req->limit, 0, 0, who};
    wq_error_t err = {0};
    if (queue_list(q, &f, add_job, &c, &err) < 0) {
        cJSON_Delete(c.arr);
        reply_db_error(r, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "jobs", c.arr);
    cJSON_AddBoolToObject(o, "more", c.more);
    if (c.more)
        cJSON_AddNumberToObject(o, "next_before", (double) c.last_id);
    else
        cJSON_AddNullToObject(o, "next_before");
    reply_json(r, o);
}

/* 403 with the reason when who may not read the job's log or metrics; 1 = refused. */
static int
forbid(const who_t *who, const Wslq__JobInfo *info, const char *what, http_reply_t *r)
{
    if (who_may_touch(who, info))
        return 0;
    char text[256];
    snprintf(text, sizeof text,
             "job %" PRIu64 " is %.64s's: only its owner or an admin may read its %s", info->id,
             info->spec ? info->spec->user : "someone else", what);
    http_reply_error(r, 403, text);
    return 1;
}

void
http_api_job(queue_t *q, const char *log_dir, uint64_t id, const who_t *who, http_reply_t *r)
{
    wq_error_t err = {0};
    Wslq__JobInfo *info = queue_get(q, id, &err);
    if (info == NULL) {
        reply_db_error(r, &err);
        return;
    }
    who_redact(who, info);
    Wslq__JobEvent **events = NULL;
    size_t n = 0;
    if (queue_events(q, id, &events, &n, &err) < 0) {
        wslq__job_info__free_unpacked(info, NULL);
        reply_db_error(r, &err);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "job", job_json(info));
    cJSON *ev = cJSON_AddArrayToObject(o, "events");
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(ev, json_event(events[i]));
    char *lp = path_of(log_dir, id, "log"), *mp = path_of(log_dir, id, "metrics");
    cJSON_AddNumberToObject(o, "log_bytes", (double) size_of(lp));
    cJSON_AddNumberToObject(o, "metrics_bytes", (double) size_of(mp));
    free(lp);
    free(mp);
    queue_free_events(events, n);
    wslq__job_info__free_unpacked(info, NULL);
    reply_json(r, o);
}

/* ---------- log ---------- */

/* Length of the valid UTF-8 sequence at p (n bytes available): 1..4, 0 when the sequence
 * is cut by the end of the buffer, -1 when invalid. */
static int
utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    int len;
    unsigned min;
    if (c < 0x80)
        return c == 0 ? -1 : 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        min = 0x10000;
    } else {
        return -1;
    }
    unsigned cp = c & (0x7fu >> len);
    for (int i = 1; i < len; i++) {
        if ((size_t) i >= n)
            return 0;
        if ((p[i] & 0xc0) != 0x80)
            return -1;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    return len;
}

/* Copy buf into a NUL-terminated valid UTF-8 string; *used = bytes consumed (a character cut
 * at the end is left unless 'at_end'). Caller owns the result. */
static char *
utf8_clean(const unsigned char *buf, size_t n, int at_end, size_t *used)
{
    char *out = wq_malloc(n * 3 + 1);
    size_t o = 0, i = 0;
    while (i < n) {
        int l = utf8_len(buf + i, n - i);
        if (l == 0 && !at_end)
            break;
        if (l <= 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3); /* U+FFFD */
            o += 3;
            i++;
            continue;
        }
        memcpy(out + o, buf + i, (size_t) l);
        o += (size_t) l;
        i += (size_t) l;
    }
    out[o] = '\0';
    *used = i;
    return out;
}

cJSON *
http_log_chunk(const char *log_dir, uint64_t id, int64_t offset, uint32_t max, int final)
{
    char *path = path_of(log_dir, id, "log");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    struct stat st;
    int64_t size = 0;
    if (fd >= 0 && fstat(fd, &st) == 0)
        size = (int64_t) st.st_size;
    int tail = offset < 0;
    int64_t from = tail ? (size > (int64_t) max ? size - (int64_t) max : 0) : offset;
    if (from > size)
        from = size;
    size_t want = (size_t) (size - from < (int64_t) max ? size - from : (int64_t) max);
    unsigned char *buf = wq_malloc(want + 1);
    size_t got = 0;
    while (fd >= 0 && got < want) {
        ssize_t k = pread(fd, buf + got, want - got, (off_t) (from + (int64_t) got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t) k;
    }
    if (fd >= 0)
        close(fd);
    size_t skip = 0;
    if (tail && from > 0) {
        /* Start on a line: the first bytes of a cut line only confuse the reader. */
        while (skip < got && buf[skip] != '\n')
            skip++;
        skip = skip < got ? skip + 1 : 0;
    }
    /* A character cut by the window end waits for the next read, unless nothing more can
     * come (the job ended and this is the end of the file). */
    int last = final && from + (int64_t) got >= size;
    size_t used = 0;
    char *text = utf8_clean(buf + skip, got - skip, last, &used);
    if (used == 0 && got - skip >= 4)
        used = got - skip; /* unreachable for valid input; never stall on garbage */
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "offset", (double) (from + (int64_t) skip));
    cJSON_AddNumberToObject(o, "next_offset", (double) (from + (int64_t) skip + (int64_t) used));
    cJSON_AddNumberToObject(o, "size", (double) size);
    cJSON_AddStringToObject(o, "data", text);
    free(text);
    free(buf);
    return o;
}

void
http_api_log(
    queue_t *q, const char *log_dir, const http_req_t *req, const who_t *who, http_reply_t *r)
{
    wq_error_t err = {0};
    Wslq__JobInfo *info = queue_get(q, req->job_id, &err);
    if (info == NULL) {
        reply_db_error(r, &err);
        return;
    }
    if (forbid(who, info, "log", r)) {
        wslq__job_info__free_unpacked(info, NULL);
        return;
    }
    int ended = wire_state_is_final(info->state);
    cJSON *o = http_log_chunk(log_dir, req->job_id, req->offset, req->max, ended);
    cJSON_AddNumberToObject(o, "job_id", (double) req->job_id);
    cJSON_AddStringToObject(o, "state", wire_state_name(info->state));
    double next = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "next_offset"));
    double size = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "size"));
    cJSON_AddBoolToObject(o, "eof", ended && next >= size);
    wslq__job_info__free_unpacked(info, NULL);
    reply_json(r, o);
}

/* ---------- metric series ---------- */

static int
key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 64)
        return 0;
    for (const char *p = k; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-' || *p == '.' || *p == '/'))
            return 0;
    return 1;
}

/* Keep at most HTTP_METRIC_POINTS points of a series: every k-th, always the newest. */
static void
thin(cJSON *series)
{
    cJSON *key;
    cJSON_ArrayForEach(key, series)
    {
        cJSON *rank;
        cJSON_ArrayForEach(rank, key)
        {
            int n = cJSON_GetArraySize(rank);
            if (n <= HTTP_METRIC_POINTS)
                continue;
            int step = (n + HTTP_METRIC_POINTS - 1) / HTTP_METRIC_POINTS;
            cJSON *kept = cJSON_CreateArray();
            for (int i = n - 1; i >= 0; i -= step)
                cJSON_AddItemToArray(kept, cJSON_Duplicate(cJSON_GetArrayItem(rank, i), 1));
            /* reversed back into ascending x */
            cJSON *asc = cJSON_CreateArray();
            for (int i = cJSON_GetArraySize(kept) - 1; i >= 0; i--)
                cJSON_AddItemToArray(asc, cJSON_DetachItemFromArray(kept, i));
            cJSON_Delete(kept);
            char name[16];
            snprintf(name, sizeof name, "%s", rank->string);
            cJSON_ReplaceItemInObjectCaseSensitive(key, name, asc);
            rank = asc;
        }
    }
}

cJSON *
http_metric_series(const char *log_dir, uint64_t id, uint64_t *offset)
{
    char *path = path_of(log_dir, id, "metrics");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    free(path);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) != 0 || (uint64_t) st.st_size <= *offset) {
        close(fd);
        return NULL;
    }
    uint64_t from = *offset, size = (uint64_t) st.st_size;
    if (size - from > HTTP_METRIC_READ)
        from = size - HTTP_METRIC_READ; /* the newest part; a cut first line is skipped */
    size_t want = (size_t) (size - from);
    char *buf = wq_malloc(want + 1);
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(fd, buf + got, want - got, (off_t) (from + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t) k;
    }
    close(fd);
    buf[got] = '\0';
    size_t start = 0;
    if (from != *offset) {
        while (start < got && buf[start] != '\n')
            start++;
        start = start < got ? start + 1 : got;
    }
    cJSON *series = cJSON_CreateObject();
    int nkeys = 0, any = 0;
    double last_x[256]; /* per rank (mod 256): a line without "step" gets the previous x + 1 */
    for (int r = 0; r < 256; r++)
        last_x[r] = -1;
    size_t i = start, consumed = start;
    while (i < got) {
        char *nl = memchr(buf + i, '\n', got - i);
        if (nl == NULL)
            break; /* a line still being written */
        *nl = '\0';
        char *line = buf + i;
        size_t next = (size_t) (nl - buf) + 1;
        char *tab = strchr(line, '\t');
        cJSON *obj = tab ? cJSON_Parse(tab + 1) : NULL;
        unsigned rank = tab ? (unsigned) strtoul(line, NULL, 10) : 0;
        if (cJSON_IsObject(obj)) {
            cJSON *stepj = cJSON_GetObjectItemCaseSensitive(obj, "step");
            double x = cJSON_IsNumber(stepj) ? stepj->valuedouble : last_x[rank & 255] + 1;
            last_x[rank & 255] = x;
            char rk[16];
            snprintf(rk, sizeof rk, "%u", rank);
            cJSON *f;
            cJSON_ArrayForEach(f, obj)
            {
                if (!cJSON_IsNumber(f) || !key_ok(f->string) || strcmp(f->string, "step") == 0)
                    continue;
                cJSON *k = cJSON_GetObjectItemCaseSensitive(series, f->string);
                if (k == NULL) {
                    if (nkeys == HTTP_METRIC_KEYS)
                        continue;
                    k = cJSON_AddObjectToObject(series, f->string);
                    nkeys++;
                }
                cJSON *pts = cJSON_GetObjectItemCaseSensitive(k, rk);
                if (pts == NULL)
                    pts = cJSON_AddArrayToObject(k, rk);
                cJSON *pt = cJSON_CreateArray();
                cJSON_AddItemToArray(pt, cJSON_CreateNumber(x));
                cJSON_AddItemToArray(pt, cJSON_CreateNumber(f->valuedouble));
                cJSON_AddItemToArray(pts, pt);
                any = 1;
            }
        }
        cJSON_Delete(obj);
        i = next;
        consumed = next;
    }
    free(buf);
    *offset = from + consumed;
    if (!any && consumed == start) {
        cJSON_Delete(series);
        return NULL;
    }
    thin(series);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "x", "step");
    cJSON_AddItemToObject(o, "series", series);
    return o;
}

void
http_api_metrics(queue_t *q, const char *log_dir, uint64_t id, const who_t *who, http_reply_t *r)
{
    wq_error_t err = {0};
    Wslq__JobInfo *info = queue_get(q, id, &err);
    if (info == NULL) {
        reply_db_error(r, &err);
        return;
    }
    int refused = forbid(who, info, "metrics", r);
    wslq__job_info__free_unpacked(info, NULL);
    if (refused)
        return;
    uint64_t off = 0;
    cJSON *o = http_metric_series(log_dir, id, &off);
    if (o == NULL) {
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "x", "step");
        cJSON_AddObjectToObject(o, "series");
    }
    cJSON_AddNumberToObject(o, "job_id", (double) id);
    cJSON_AddNumberToObject(o, "next_offset", (double) off);
    reply_json(r, o);
}
