/* The dashboard server: libmicrohttpd glue, limits, the bearer token, routing and the
 * snapshot hand-over from the loop; see http.h. Server-Sent Events are http_sse.c. Lock order:
 * db_lock before snap_lock (never the other way round); stat_lock is a leaf. */
#include "scheduler/http/http.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "proto/keys.h"
#include "scheduler/http/http_assets.h"
#include "scheduler/http/http_int.h"
#include "scheduler/http/http_parse.h"
#include "scheduler/http/http_srv.h"
#include "scheduler/who.h"

#define PUBLISH_MIN_MS  250  /* snapshots at most this often while things change */
#define PUBLISH_IDLE_MS 1000 /* and this often when nothing changed (loop counters) */
/* ...but never more often than keeps the snapshots under 1/PUBLISH_BUDGET of the loop's
 * time (1/(2 x PUBLISH_BUDGET) when nothing changed): a thousand nodes' JSON took 44-60 ms
 * here, and taken every second it was most of the scheduler's CPU (bench/README.md); with
 * each node's JSON cached (http_snap.c) 4-13 ms. */
#define PUBLISH_BUDGET 25
/* Snapshots are taken only while someone reads them: a request or an event stream in the last
 * READERS_MS. A thousand nodes' JSON every second was a tenth of an idle scheduler's CPU with
 * no one looking (bench/README.md). The first request after a pause asks the loop for a
 * fresh snapshot and waits for it, WANTED_WAIT_MS at most (a loop held up by a long turn:
 * then the last snapshot is served). */
#define READERS_MS     5000
#define WANTED_WAIT_MS 2000
#define CONN_TIMEOUT_S 30          /* idle connection closed after this */
#define CONN_MEMORY    (16u << 10) /* per-connection pool: request head above ~12 KiB is 431 */
#define THREAD_STACK   (512u << 10)
#define TOKEN_FILE_MAX 4096

/* Per request, made by the URI log callback before the headers are parsed. */
typedef struct {
    char *target; /* the request-target as sent (path and query, not decoded); owned */
} req_ctx_t;

void
http_config_init(http_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->addr = HTTP_DEFAULT_ADDR;
    cfg->max_conns = 64;
    cfg->max_sse = 32;
    cfg->rate = 50;
}

uint16_t
http_port(const http_t *self)
{
    return self->port;
}

/* ---------- snapshots ---------- */

http_snap_t *
http_snap_acquire(http_t *h)
{
    pthread_mutex_lock(&h->snap_lock);
    int64_t now = wq_clock_mono_ms();
    int64_t last = atomic_exchange(&h->read_mono, now); /* under the lock: see wanted below */
    /* The loop may have stopped taking snapshots (on_turn): ask for a fresh one. A reader
     * that comes while another's is wanted waits for it too, never taking the stale one. */
    if ((now - last >= READERS_MS || atomic_load(&h->wanted)) && !h->stopping) {
        uint64_t seen = h->published;
        atomic_store(&h->wanted, 1);
        sched_wake(h->sched);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += WANTED_WAIT_MS / 1000;
        ts.tv_nsec += (WANTED_WAIT_MS % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (h->published == seen && !h->stopping)
            if (pthread_cond_timedwait(&h->snap_cond, &h->snap_lock, &ts) == ETIMEDOUT)
                break;
    }
    http_snap_t *s = h->snap;
    if (s != NULL)
        s->refs++;
    pthread_mutex_unlock(&h->snap_lock);
    return s;
}

void
http_snap_release(http_t *h, http_snap_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&h->snap_lock);
    int last = --s->refs == 0;
    pthread_mutex_unlock(&h->snap_lock);
    if (last)
        http_snap_free(s);
}

static void
publish(http_t *h)
{
    struct timespec t0, t1, c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    uint64_t rendered = h->nodecache.rendered;
    http_snap_t *s = http_snap_take(h->sched, h->started_ms, &h->jobwalk, &h->nodecache);
    pthread_mutex_lock(&h->stat_lock);
    s->http_slow_cut_total = h->slow_cut_total;
    s->http_auth_refused_total = h->auth_refused_total;
    pthread_mutex_unlock(&h->stat_lock);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    h->last_snap_us =
        (int64_t) (c1.tv_sec - c0.tv_sec) * 1000000 + (c1.tv_nsec - c0.tv_nsec) / 1000;
    log_flag(HTTP, "http snapshot version=%" PRIu64 " ms=%.3f nodes_rendered=%" PRIu64, s->version,
             (double) (t1.tv_sec - t0.tv_sec) * 1e3 + (double) (t1.tv_nsec - t0.tv_nsec) / 1e6,
             h->nodecache.rendered - rendered);
    pthread_mutex_lock(&h->snap_lock);
    http_snap_t *old = h->snap;
    h->snap = s;
    h->published++;
    atomic_store(&h->wanted, 0);
    pthread_cond_broadcast(&h->snap_cond);
    pthread_mutex_unlock(&h->snap_lock);
    http_snap_release(h, old);
}

/* Shut connections whose request head is not complete within HTTP_HEAD_TIMEOUT_MS. shutdown,
 * not close: the descriptor stays MHD's, whose thread then sees the end and cleans up. */
static void
cut_slow_heads(http_t *h, int64_t now)
{
    pthread_mutex_lock(&h->stat_lock);
    for (hconn_t *hc = h->hconns; hc != NULL; hc = hc->next)
        if (!hc->in_request && !hc->cut && now - hc->since_mono > HTTP_HEAD_TIMEOUT_MS) {
            shutdown(hc->fd, SHUT_RDWR);
            hc->cut = 1;
            h->slow_cut_total++;
        }
    pthread_mutex_unlock(&h->stat_lock);
}

/* The loop's per-turn hook: cheap unless a snapshot is due. With no reader in the last
 * READERS_MS none is due, until a reader asks (wanted). A change that comes within
 * PUBLISH_MIN_MS of the last snapshot (longer when snapshots are dear: PUBLISH_BUDGET) asks
 * the loop to wake when it may be published, so the
 * dashboard never waits for the next message to show it; with nothing changed the loop is
 * not woken (the loop counters refresh on the turns that come anyway). */
static int64_t
on_turn(sched_t *s, void *arg)
{
    http_t *h = arg;
    int64_t now = wq_clock_mono_ms();
    cut_slow_heads(h, now);
    uint64_t v = sched_stats(s)->version;
    if (atomic_load(&h->wanted)) {
        publish(h);
        h->last_version = v;
        h->last_publish_mono = now;
        return INT64_MAX;
    }
    if (atomic_load(&h->sse) == 0 && now - atomic_load(&h->read_mono) >= READERS_MS)
        return INT64_MAX;
    int64_t since = now - h->last_publish_mono;
    int64_t min_ms = h->last_snap_us * PUBLISH_BUDGET / 1000;
    min_ms = min_ms > PUBLISH_MIN_MS ? min_ms : PUBLISH_MIN_MS;
    int64_t idle_ms = 2 * h->last_snap_us * PUBLISH_BUDGET / 1000;
    idle_ms = idle_ms > PUBLISH_IDLE_MS ? idle_ms : PUBLISH_IDLE_MS;
    if (since < min_ms)
        return v != h->last_version ? h->last_publish_mono + min_ms : INT64_MAX;
    if (v == h->last_version && since < idle_ms)
        return INT64_MAX;
    publish(h);
    h->last_version = v;
    h->last_publish_mono = now;
    return INT64_MAX;
}

/* ---------- responses ---------- */

static void
count_status(http_t *h, int status)
{
    pthread_mutex_lock(&h->stat_lock);
    h->codes[http_code_slot(status)]++;
    pthread_mutex_unlock(&h->stat_lock);
}

enum MHD_Result
http_send_response(http_t *h, struct MHD_Connection *c, int status, struct MHD_Response *resp)
{
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, "X-Frame-Options", "DENY");
    enum MHD_Result rc = MHD_queue_response(c, (unsigned) status, resp);
    MHD_destroy_response(resp);
    count_status(h, status);
    return rc;
}

/* Takes ownership of r->body. */
static enum MHD_Result
send_reply(http_t *h, struct MHD_Connection *c, http_reply_t *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    r->body = NULL;
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", r->type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (r->status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"wslq\"");
    if (r->status == 405)
        MHD_add_response_header(resp, "Allow", "GET, HEAD");
    if (r->status == 429 || r->status == 503)
        MHD_add_response_header(resp, "Retry-After", "1");
    if (r->status == 413 || r->status == 503)
        MHD_add_response_header(resp, "Connection", "close");
    return http_send_response(h, c, r->status, resp);
}

enum MHD_Result
http_send_error(http_t *h, struct MHD_Connection *c, int status, const char *text)
{
    http_reply_t r = {0};
    http_reply_error(&r, status, text);
    return send_reply(h, c, &r);
}

/* ---------- limits and the token ---------- */

static void
client_key(struct MHD_Connection *c, unsigned char key[16])
{
    memset(key, 0, 16);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci == NULL || ci->client_addr == NULL)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        memcpy(key, &((const struct sockaddr_in *) (const void *) sa)->sin_addr, 4);
    else if (sa->sa_family == AF_INET6)
        memcpy(key, &((const struct sockaddr_in6 *) (const void *) sa)->sin6_addr, 16);
}

/* Token bucket per client address: 'rate' per second, bursts of 2 x rate. 1 = allowed. */
static int
rate_ok(http_t *h, struct MHD_Connection *c)
{
    if (h->cfg.rate == 0)
        return 1;
    unsigned char key[16];
    client_key(c, key);
    uint64_t hash = 0xcbf29ce484222325ull;
    for (int i = 0; i < 16; i++)
        hash = (hash ^ key[i]) * 0x100000001b3ull;
    int64_t now = wq_clock_mono_ms();
    double burst = 2.0 * h->cfg.rate;
    pthread_mutex_lock(&h->stat_lock);
    /* Probe 8 slots; a full neighbourhood evicts its least recently refilled entry. */
    rate_bucket_t *b = NULL, *oldest = NULL;
    for (int i = 0; i < 8 && b == NULL; i++) {
        rate_bucket_t *x = &h->buckets[(hash + (uint64_t) i) % RATE_BUCKETS];
        if (x->used && memcmp(x->addr, key, 16) == 0)
            b = x;
        else if (oldest == NULL || !x->used || (oldest->used && x->last_ms < oldest->last_ms))
            oldest = x;
    }
    if (b == NULL) {
        b = oldest;
        memcpy(b->addr, key, 16);
        b->used = 1;
        b->tokens = burst;
        b->last_ms = now;
    }
    b->tokens += (double) (now - b->last_ms) * h->cfg.rate / 1000.0;
    if (b->tokens > burst)
        b->tokens = burst;
    b->last_ms = now;
    int ok = b->tokens >= 1.0;
    if (ok)
        b->tokens -= 1.0;
    pthread_mutex_unlock(&h->stat_lock);
    return ok;
}

/* Compare without an early exit, so the time taken does not tell how much matched. */
static int
token_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = (unsigned char) (la != lb);
    for (size_t i = 0; i < lb; i++)
        d |= (unsigned char) (a[i % (la ? la : 1)] ^ b[i]);
    return d == 0 && la > 0;
}

/* Who is asking: the monitoring token (sees all), a user's token from `wslq token` (the
 * user, with the user's admin flag as it is now), or nobody (kind WHO_NOBODY). A token is
 * looked up by its hash; tokens are never kept in clear. */
static void
identify(http_t *h, struct MHD_Connection *c, const http_req_t *req, who_t *who)
{
    memset(who, 0, sizeof *who);
    who->kind = WHO_NOBODY;
    if (h->cfg.open) {
        who->kind = WHO_INSECURE;
        return;
    }
    const char *tok = NULL;
    const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
        tok = auth + 7;
    else if (req->token[0] != '\0') /* EventSource cannot set headers (RFC 6750 2.3) */
        tok = req->token;
    if (tok == NULL || tok[0] == '\0' || strlen(tok) > HTTP_MAX_TOKEN)
        return;
    if (h->token != NULL && token_equal(tok, h->token)) {
        who->kind = WHO_LOCAL_ADMIN;
        snprintf(who->name, sizeof who->name, "monitoring token");
        return;
    }
    char hash[KEYS_HEX_LEN + 1];
    keys_hash_hex(tok, hash);
    char user[sizeof who->name];
    int admin = 0;
    pthread_mutex_lock(&h->db_lock);
    int found = queue_token_user(h->q, hash, user, sizeof user, &admin) == 0;
    pthread_mutex_unlock(&h->db_lock);
    if (found) {
        who->kind = WHO_USER;
        who->admin = admin;
        snprintf(who->name, sizeof who->name, "%s", user);
    }
}

/* Routes anyone may read when public_summary is set: counts and nodes, no job's details. */
static int
public_route(const http_req_t *req)
{
    return req->route == HTTP_R_SUMMARY || req->route == HTTP_R_NODES ||
           req->route == HTTP_R_METRICS || (req->route == HTTP_R_EVENTS && req->job_id == 0);
}

static char *
read_token(const char *path, wq_error_t *err)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        wq_fail_errno(err, "cannot read http token file %s", path);
        return NULL;
    }
    char buf[TOKEN_FILE_MAX + 1];
    size_t n = fread(buf, 1, TOKEN_FILE_MAX + 1, f);
    fclose(f);
    if (n > TOKEN_FILE_MAX) {
        wq_fail(err, WQ_EINVAL, "http token file %s is larger than %d bytes", path, TOKEN_FILE_MAX);
        return NULL;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = '\0';
    if (n == 0 || n > HTTP_MAX_TOKEN) {
        wq_fail(err, WQ_EINVAL, "http token file %s must hold one token of 1 to %d characters",
                path, HTTP_MAX_TOKEN);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (buf[i] <= ' ' || buf[i] == 0x7f || buf[i] == '&' || buf[i] == '%' || buf[i] == '+') {
            wq_fail(err, WQ_EINVAL,
                    "http token file %s: the token must be one word of printable characters "
                    "without '&', '%%' or '+'",
                    path);
            return NULL;
        }
    return wq_strdup(buf);
}

/* ---------- static files ---------- */

static enum MHD_Result
serve_static(http_t *h, struct MHD_Connection *c, const char *file)
{
    const http_asset_t *a = NULL;
    for (size_t i = 0; i < http_n_assets; i++)
        if (strcmp(http_assets[i].name, file) == 0)
            a = &http_assets[i];
    if (a == NULL)
        return http_send_error(h, c, 404, "no such file");
    const char *inm = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
    int fresh = inm != NULL && strcmp(inm, a->etag) == 0;
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        fresh ? 0 : a->len, fresh ? (void *) "" : (void *) a->data, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", a->type);
    MHD_add_response_header(resp, "ETag", a->etag);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data:; style-src 'self'; "
                            "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
                            "base-uri 'none'; form-action 'none'");
    return http_send_response(h, c, fresh ? 304 : 200, resp);
}

static enum MHD_Result
send_whoami(http_t *h, struct MHD_Connection *c, const who_t *who)
{
    http_reply_t r = {0};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "user", who->kind == WHO_INSECURE ? "" : who->name);
    cJSON_AddBoolToObject(o, "admin", WHO_IS_ADMIN(who));
    cJSON_AddBoolToObject(o, "open", who->kind == WHO_INSECURE);
    r.status = 200;
    r.body = cJSON_PrintUnformatted(o);
    r.len = strlen(r.body);
    r.type = "application/json";
    cJSON_Delete(o);
    return send_reply(h, c, &r);
}

static enum MHD_Result
route(http_t *h, struct MHD_Connection *c, const http_req_t *req, const who_t *who, int head)
{
    http_reply_t r = {0};
    switch (req->route) {
    case HTTP_R_WHOAMI:
        return send_whoami(h, c, who);
    case HTTP_R_STATIC:
        return serve_static(h, c, req->file);
    case HTTP_R_EVENTS:
        return http_serve_events(h, c, req, who, head);
    case HTTP_R_HEALTH:
        r.status = 200;
        r.body = wq_strdup("ok\n");
        r.len = 3;
        r.type = "text/plain; charset=utf-8";
        return send_reply(h, c, &r);
    case HTTP_R_METRICS:
    case HTTP_R_NODES:
    case HTTP_R_SUMMARY: {
        http_snap_t *snap = http_snap_acquire(h);
        if (snap == NULL)
            return http_send_error(h, c, 503, "the scheduler has not published its state yet");
        if (req->route == HTTP_R_METRICS) {
            uint64_t codes[HTTP_N_CODES];
            pthread_mutex_lock(&h->stat_lock);
            memcpy(codes, h->codes, sizeof codes);
            pthread_mutex_unlock(&h->stat_lock);
            r.status = 200;
            r.body = http_prom_render(snap, codes, &r.len);
            r.type = "text/plain; version=0.0.4; charset=utf-8";
        } else if (req->route == HTTP_R_NODES) {
            http_api_nodes(snap, &r);
        } else {
            pthread_mutex_lock(&h->db_lock);
            http_api_summary(h->q, &h->counts, snap, &r);
            pthread_mutex_unlock(&h->db_lock);
        }
        http_snap_release(h, snap);
        return send_reply(h, c, &r);
    }
    default:
        break;
    }
    pthread_mutex_lock(&h->db_lock);
    switch (req->route) {
    case HTTP_R_JOBS:
        http_api_jobs(h->q, req, who, &r);
        break;
    case HTTP_R_JOB:
        http_api_job(h->q, h->log_dir, req->job_id, who, &r);
        break;
    case HTTP_R_JOB_LOG:
        http_api_log(h->q, h->log_dir, req, who, &r);
        break;
    case HTTP_R_JOB_METRICS:
        http_api_metrics(h->q, h->log_dir, req->job_id, who, &r);
        break;
    case HTTP_R_USAGE:
        http_api_usage(h->q, &r);
        break;
    default:
        http_reply_error(&r, 404, "no such path");
        break;
    }
    pthread_mutex_unlock(&h->db_lock);
    return send_reply(h, c, &r);
}

/* The path part of a target, control characters replaced, for logs (never the query: it
 * may hold the access token). */
static void
log_path(const char *target, char *out, size_t cap)
{
    size_t o = 0;
    for (const char *p = target; *p && *p != '?' && o + 1 < cap; p++)
        out[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : *p;
    out[o] = '\0';
}

/* A request head is complete (1), or its answer ended (0: the next head's clock starts). */
static void
mark_request(http_t *h, struct MHD_Connection *c, int in_request)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    hconn_t *hc = ci ? ci->socket_context : NULL;
    if (hc == NULL)
        return;
    pthread_mutex_lock(&h->stat_lock);
    hc->in_request = in_request;
    hc->since_mono = wq_clock_mono_ms();
    pthread_mutex_unlock(&h->stat_lock);
}

static enum MHD_Result
on_request(void *cls,
           struct MHD_Connection *c,
           const char *url,
           const char *method,
           const char *version,
           const char *upload_data,
           size_t *upload_size,
           void **con_cls)
{
    (void) version;
    (void) upload_data;
    (void) upload_size;
    http_t *h = cls;
    req_ctx_t *ctx = *con_cls;
    mark_request(h, c, 1);
    const char *target = ctx && ctx->target ? ctx->target : url;
    char shown[129];
    log_path(target, shown, sizeof shown);
    log_flag(HTTP, "http request method=%.16s path=%s", method, shown);

    int head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (!head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return http_send_error(h, c, 405, "read-only API: only GET and HEAD are allowed");
    const char *clen = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if ((clen != NULL && strcmp(clen, "0") != 0) ||
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding") != NULL)
        return http_send_error(h, c, 413, "a GET request carries no body");
    if (atomic_load(&h->conns) > h->cfg.max_conns)
        return http_send_error(h, c, 503, "too many connections; try again later");
    if (!rate_ok(h, c)) {
        int sup = 0;
        pthread_mutex_lock(&h->stat_lock);
        sup = wq_ratelimit(&h->warn_rl, 5, 60000);
        pthread_mutex_unlock(&h->stat_lock);
        if (sup >= 0)
            log_warn("http rate limit hit path=%s suppressed=%d", shown, sup);
        return http_send_error(h, c, 429, "too many requests; slow down");
    }
    http_req_t req;
    int status;
    wq_error_t err = {0};
    if (http_parse_target(target, strlen(target), &req, &status, &err) < 0)
        return http_send_error(h, c, status, err.text);
    who_t who;
    if (req.route == HTTP_R_STATIC || req.route == HTTP_R_HEALTH) {
        memset(&who, 0, sizeof who);
    } else {
        identify(h, c, &req, &who);
        if (who.kind == WHO_NOBODY && !(h->cfg.public_summary && public_route(&req))) {
            pthread_mutex_lock(&h->stat_lock);
            h->auth_refused_total++;
            pthread_mutex_unlock(&h->stat_lock);
            return http_send_error(h, c, 401,
                                   "sign in: a token from 'wslq token' is required "
                                   "(Authorization: Bearer TOKEN)");
        }
    }
    return route(h, c, &req, &who, head);
}

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void) cls;
    (void) c;
    req_ctx_t *ctx = wq_calloc(1, sizeof *ctx);
    /* MHD has already limited the request line to its connection memory. */
    ctx->target = wq_strdup(uri);
    return ctx;
}

static void
on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void) t;
    mark_request(cls, c, 0);
    req_ctx_t *ctx = *con_cls;
    if (ctx != NULL) {
        free(ctx->target);
        free(ctx);
        *con_cls = NULL;
    }
}

static void
on_connection(void *cls,
              struct MHD_Connection *c,
              void **socket_context,
              enum MHD_ConnectionNotificationCode code)
{
    http_t *h = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&h->conns, 1);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        hconn_t *hc = wq_calloc(1, sizeof *hc);
        hc->fd = ci ? ci->connect_fd : -1;
        hc->since_mono = wq_clock_mono_ms();
        pthread_mutex_lock(&h->stat_lock);
        hc->next = h->hconns;
        h->hconns = hc;
        pthread_mutex_unlock(&h->stat_lock);
        *socket_context = hc;
        return;
    }
    atomic_fetch_sub(&h->conns, 1);
    hconn_t *hc = *socket_context;
    pthread_mutex_lock(&h->stat_lock);
    for (hconn_t **pp = &h->hconns; *pp != NULL; pp = &(*pp)->next)
        if (*pp == hc) {
            *pp = hc->next;
            break;
        }
    pthread_mutex_unlock(&h->stat_lock);
    free(hc);
    *socket_context = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    http_t *h = cls;
    char line[256];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    pthread_mutex_lock(&h->stat_lock);
    int sup = wq_ratelimit(&h->warn_rl, 5, 60000);
    pthread_mutex_unlock(&h->stat_lock);
    if (sup >= 0)
        log_warn("http: %s suppressed=%d", line, sup);
}

/* ---------- life cycle ---------- */

http_t *
http_new(const http_config_t *cfg, sched_t *s, wq_error_t *err)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (http_parse_listen(cfg->addr, &ss, &sslen, err) < 0)
        return NULL;
    http_t *h = wq_calloc(1, sizeof *h);
    h->cfg = *cfg;
    h->sched = s;
    h->started_ms = wq_clock_wall_ms();
    pthread_mutex_init(&h->snap_lock, NULL);
    pthread_mutex_init(&h->db_lock, NULL);
    pthread_mutex_init(&h->stat_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&h->snap_cond, &ca);
    pthread_condattr_destroy(&ca);
    h->log_dir = wq_asprintf("%s/logs", sched_state_dir(s));
    if (cfg->token_file != NULL && (h->token = read_token(cfg->token_file, err)) == NULL)
        goto error;
    char *db = wq_asprintf("%s/queue.db", sched_state_dir(s));
    h->q = queue_open_reader(db, err);
    free(db);
    if (h->q == NULL)
        goto error;
    /* A first snapshot before any request can arrive. */
    publish(h);
    h->last_version = sched_stats(s)->version;
    h->last_publish_mono = wq_clock_mono_ms();

    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger first: MHD reports problems with later options through it. Connections
     * above max_conns still get an HTTP answer (503 from on_request); MHD's own limit, a
     * little higher, only drops what arrives beyond that. */
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &ss, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned) (cfg->max_conns + 16), MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) CONN_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) CONN_MEMORY, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t) THREAD_STACK, MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned) 64,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_END);
    if (h->mhd == NULL) {
        wq_fail(err, WQ_ESYS, "cannot serve http on %s (address in use or not local?)", cfg->addr);
        goto error;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    sched_set_hook(s, on_turn, h);
    int loopback = ss.ss_family == AF_INET
                       ? (ntohl(((struct sockaddr_in *) &ss)->sin_addr.s_addr) >> 24) == 127
                       : IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *) &ss)->sin6_addr);
    log_info("dashboard listening addr=%s port=%u sign_in=%s monitoring_token=%s public=%s",
             cfg->addr, h->port, cfg->open ? "none (insecure)" : "required",
             h->token ? "yes" : "no", cfg->public_summary ? "summary" : "none");
    if (!loopback && cfg->open)
        log_warn("dashboard reachable from the network with no sign-in (insecure = yes); "
                 "anyone who can reach %s can read every job",
                 cfg->addr);
    return h;
error:
    http_destroy(&h);
    return NULL;
}

void
http_destroy(http_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    http_t *h = *self_p;
    if (h->mhd != NULL)
        sched_set_hook(h->sched, NULL, NULL);
    pthread_mutex_lock(&h->snap_lock);
    h->stopping = 1;
    pthread_cond_broadcast(&h->snap_cond);
    pthread_mutex_unlock(&h->snap_lock);
    if (h->mhd != NULL)
        MHD_stop_daemon(h->mhd);
    http_snap_release(h, h->snap);
    http_nodecache_free(&h->nodecache);
    queue_destroy(&h->q);
    free(h->token);
    free(h->log_dir);
    pthread_cond_destroy(&h->snap_cond);
    pthread_mutex_destroy(&h->snap_lock);
    pthread_mutex_destroy(&h->db_lock);
    pthread_mutex_destroy(&h->stat_lock);
    free(h);
    *self_p = NULL;
}
