/* The dashboard's snapshot of the loop's state; see http_int.h. Runs on the loop thread:
 * everything here must stay cheap. Measured (bench/http_bench.py): 4 nodes, 8 GPUs and
 * 10,000 active jobs take a median 2.4 ms, and the loop takes a snapshot at most every
 * 250 ms, so under 1 % of the loop's time. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/mem.h"
#include "proto/json.h"
#include "scheduler/http/http_int.h"

const char *const http_node_state_names[HTTP_NODE_STATES] = {
    "idle", "mixed", "allocated", "torpid", "lost", "draining", "drained", "other"};

/* A fingerprint of the active jobs, to notice any change between snapshots. It runs over
 * every active job at each snapshot (100,000 waiting in a lab's backlog), so it mixes eight
 * bytes at a time: hashed a byte at a time (FNV-1a) the walk took about 13 ms a snapshot at
 * 100,000 jobs. Equality is all that is asked of it. */
static uint64_t
mix_u64(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static uint64_t
mix_str(uint64_t h, const char *str)
{
    size_t n = strlen(str);
    const char *p = str;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = mix_u64(h, w);
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    return mix_u64(h, tail ^ ((uint64_t) (p - str + (ptrdiff_t) n) << 56));
}

/* ---------- each node's JSON, rendered again only when the node changed ---------- */

/* The holes as json_node() writes the cleared fields (add_time with 0; add_u64 0 and
 * add_opt_int -1). A string value cannot hold these bytes (its quotes are escaped), and they
 * come in this order: last_seen among the node's first keys, the GPUs last, each with its
 * metrics and then the memory that no job holds (mem_other_mb, from its used memory). */
#define HOLE_LAST_SEEN "\"last_seen_ms\":null,\"last_seen_time\":null"
#define HOLE_GPU       "\"mem_used_mb\":0,\"temp_c\":null,\"util_pct\":null,\"power_w\":null"
#define HOLE_GPU_OTHER "\"mem_other_mb\":0"
#define GPU_HOLES      2

static void
nodejson_clear(http_nodejson_t *e)
{
    free(e->key);
    free(e->text);
    free(e->holes);
    memset(e, 0, sizeof *e);
}

void
http_nodecache_free(http_nodecache_t *cache)
{
    if (cache == NULL)
        return;
    for (size_t i = 0; i < cache->n; i++)
        nodejson_clear(&cache->v[i]);
    free(cache->v);
    free(cache->scratch);
    free(cache->gpus);
    free(cache->gpu_ptrs);
    memset(cache, 0, sizeof *cache);
}

/* *key is *n with the holes' fields cleared (shallow, its GPUs in the cache's scratch). */
static void
clear_holes(http_nodecache_t *c, const Wslq__NodeInfo *n, Wslq__NodeInfo *key)
{
    *key = *n;
    key->last_seen_ms = 0;
    if (n->n_gpus > c->n_gpus_cap) {
        c->n_gpus_cap = n->n_gpus * 2;
        c->gpus = wq_realloc(c->gpus, c->n_gpus_cap * sizeof *c->gpus);
        c->gpu_ptrs = wq_realloc(c->gpu_ptrs, c->n_gpus_cap * sizeof *c->gpu_ptrs);
    }
    for (size_t g = 0; g < n->n_gpus; g++) {
        c->gpus[g] = *n->gpus[g];
        c->gpus[g].mem_used_mb = 0;
        c->gpus[g].temp_c = -1;
        c->gpus[g].util_pct = -1;
        c->gpus[g].power_w = -1;
        c->gpus[g].mem_other_mb = 0;
        c->gpu_ptrs[g] = &c->gpus[g];
    }
    key->gpus = n->n_gpus ? c->gpu_ptrs : NULL;
}

/* Render the cleared node into e->text and find its holes: 0, or -1 when one is not where
 * json_node() was expected to write it (the caller renders that node whole instead). */
static int
nodejson_fill(http_nodejson_t *e, const Wslq__NodeInfo *key)
{
    cJSON *o = json_node(key);
    e->text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    e->text_len = strlen(e->text);
    e->n_holes = 1 + GPU_HOLES * key->n_gpus;
    e->holes = wq_malloc(2 * e->n_holes * sizeof *e->holes);
    const char *from = e->text;
    for (size_t k = 0; k < e->n_holes; k++) {
        const char *what = k == 0                ? HOLE_LAST_SEEN
                           : (k - 1) % GPU_HOLES ? HOLE_GPU_OTHER
                                                 : HOLE_GPU;
        const char *at = strstr(from, what);
        if (at == NULL)
            return -1;
        e->holes[2 * k] = (size_t) (at - e->text);
        e->holes[2 * k + 1] = strlen(what);
        from = at + strlen(what);
    }
    return 0;
}

typedef struct {
    char *p;
    size_t len, cap;
} strbuf_t;

static void
sb_add(strbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->p = wq_realloc(b->p, b->cap);
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
sb_str(strbuf_t *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

/* An integer as cJSON prints it (integral, far below 2^53: its digits), or null for the
 * 'unset' value. By hand: snprintf for each of a fleet's GPU figures was a good part of
 * a snapshot. */
static void
sb_int(strbuf_t *b, int64_t v, int64_t unset)
{
    if (v == unset) {
        sb_str(b, "null");
        return;
    }
    char d[24], *p = d + sizeof d;
    uint64_t u = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;
    do {
        *--p = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    sb_add(b, p, (size_t) (d + sizeof d - p));
}

/* json_format_time()'s text, its whole seconds kept for the next nodes: a fleet's last_seen
 * times fall within a second or two. */
typedef struct {
    int64_t sec[4];
    char day[4][40]; /* "YYYY-MM-DDTHH:MM:SS", "" = not filled */
} days_t;

static void
sb_time(strbuf_t *b, days_t *days, int64_t ms)
{
    int64_t sec = ms / 1000;
    int slot = (int) (sec & 3);
    char *day = days->day[slot];
    if (day[0] == '\0' || days->sec[slot] != sec) {
        json_format_time(sec * 1000, day, sizeof days->day[slot]);
        size_t n = strlen(day);
        if (n < 5 || strcmp(day + n - 5, ".000Z") != 0) { /* not a time: as it comes */
            char t[40];
            day[0] = '\0';
            sb_str(b, json_format_time(ms, t, sizeof t));
            return;
        }
        day[n - 5] = '\0';
        days->sec[slot] = sec;
    }
    char frac[8] = {'.', (char) ('0' + ms % 1000 / 100), (char) ('0' + ms % 100 / 10),
                    (char) ('0' + ms % 10), 'Z'};
    sb_str(b, day);
    sb_add(b, frac, 5);
}

/* A hole filled exactly as json_node() writes its fields. */
static void
sb_hole(strbuf_t *b, days_t *days, const Wslq__NodeInfo *n, size_t k)
{
    if (k == 0) {
        if (n->last_seen_ms <= 0) {
            sb_str(b, HOLE_LAST_SEEN);
            return;
        }
        sb_str(b, "\"last_seen_ms\":");
        sb_int(b, n->last_seen_ms, INT64_MIN);
        sb_str(b, ",\"last_seen_time\":\"");
        sb_time(b, days, n->last_seen_ms);
        sb_str(b, "\"");
    } else if ((k - 1) % GPU_HOLES) {
        sb_str(b, "\"mem_other_mb\":");
        sb_int(b, (int64_t) n->gpus[(k - 1) / GPU_HOLES]->mem_other_mb, INT64_MIN);
    } else {
        const Wslq__GpuInfo *g = n->gpus[(k - 1) / GPU_HOLES];
        sb_str(b, "\"mem_used_mb\":");
        sb_int(b, (int64_t) g->mem_used_mb, INT64_MIN);
        sb_str(b, ",\"temp_c\":");
        sb_int(b, g->temp_c, -1);
        sb_str(b, ",\"util_pct\":");
        sb_int(b, g->util_pct, -1);
        sb_str(b, ",\"power_w\":");
        sb_int(b, g->power_w, -1);
    }
}

char *
http_nodes_render(http_nodecache_t *cache, const Wslq__NodeInfo *const *nodes, size_t n)
{
    http_nodecache_t local = {0};
    http_nodecache_t *c = cache != NULL ? cache : &local;
    if (c->n != n) {
        for (size_t i = n; i < c->n; i++)
            nodejson_clear(&c->v[i]);
        c->v = wq_realloc(c->v, (n ? n : 1) * sizeof *c->v);
        if (n > c->n)
            memset(c->v + c->n, 0, (n - c->n) * sizeof *c->v);
        c->n = n;
    }
    strbuf_t b = {.cap = c->last_len + c->last_len / 8 + 64};
    b.p = wq_malloc(b.cap); /* sized like the last: no copying as it grows */
    days_t days = {0};
    sb_add(&b, "[", 1);
    for (size_t i = 0; i < n; i++) {
        Wslq__NodeInfo key;
        clear_holes(c, nodes[i], &key);
        size_t len = wslq__node_info__get_packed_size(&key);
        if (len > c->cap) {
            c->cap = len * 2;
            c->scratch = wq_realloc(c->scratch, c->cap);
        }
        wslq__node_info__pack(&key, c->scratch);
        http_nodejson_t *e = &c->v[i];
        if (e->key == NULL || e->key_len != len || memcmp(e->key, c->scratch, len) != 0) {
            nodejson_clear(e);
            if (nodejson_fill(e, &key) < 0) {
                /* never expected: the whole node, uncached, rather than wrong figures */
                nodejson_clear(e);
                cJSON *o = json_node(nodes[i]);
                char *text = cJSON_PrintUnformatted(o);
                cJSON_Delete(o);
                if (i > 0)
                    sb_add(&b, ",", 1);
                sb_add(&b, text, strlen(text));
                free(text);
                continue;
            }
            e->key = wq_malloc(len ? len : 1);
            memcpy(e->key, c->scratch, len);
            e->key_len = len;
            c->rendered++;
        }
        if (i > 0)
            sb_add(&b, ",", 1);
        size_t from = 0;
        for (size_t k = 0; k < e->n_holes; k++) {
            sb_add(&b, e->text + from, e->holes[2 * k] - from);
            sb_hole(&b, &days, nodes[i], k);
            from = e->holes[2 * k] + e->holes[2 * k + 1];
        }
        sb_add(&b, e->text + from, e->text_len - from);
    }
    sb_add(&b, "]", 1);
    c->last_len = b.len;
    http_nodecache_free(&local);
    return b.p;
}

/* ---------- the snapshot ---------- */

static int
node_state_index(const char *s)
{
    for (int i = 0; i < HTTP_NODE_STATES - 1; i++)
        if (s != NULL && strcmp(s, http_node_state_names[i]) == 0)
            return i;
    return HTTP_NODE_STATES - 1;
}

http_snap_t *
http_snap_take(sched_t *s, int64_t started_ms, http_jobwalk_t *walk, http_nodecache_t *nodes)
{
    http_snap_t *snap = wq_calloc(1, sizeof *snap);
    snap->refs = 1;
    const sched_stats_t *st = sched_stats(s);
    snap->stats = *st;
    snap->version = st->version;
    snap->taken_ms = wq_clock_wall_ms();
    snap->started_ms = started_ms;

    /* Jobs: counts by state, and a fingerprint of what a job listing shows. Counters cover
     * the jobs that left the active set (ended, refused). Every job change bumps
     * jobs_changes: without one, the last walk's figures stand. */
    if (walk != NULL && walk->valid && walk->gen == st->jobs_changes) {
        memcpy(snap->active, walk->active, sizeof snap->active);
        snap->suspended_now = walk->suspended_now;
        snap->jobs_version = walk->jobs_version;
    } else {
        uint64_t h = 0xcbf29ce484222325ull;
        h = mix_u64(h, st->submitted_total);
        h = mix_u64(h, st->requeued_total);
        for (int i = 0; i < WIRE_JOB_STATES; i++)
            h = mix_u64(h, st->ended_total[i]);
        size_t nj = sched_job_count(s);
        for (size_t i = 0; i < nj; i++) {
            const Wslq__JobInfo *j = sched_job(s, i);
            if (j->state >= 0 && j->state < WIRE_JOB_STATES)
                snap->active[j->state]++;
            snap->suspended_now += j->suspended;
            h = mix_u64(h, j->id ^ ((uint64_t) j->suspended << 63));
            h = mix_u64(h, ((uint64_t) j->state << 32) | j->attempt);
            h = mix_u64(h, (uint64_t) j->start_ms);
            if (j->reason)
                h = mix_str(h, j->reason);
        }
        snap->jobs_version = h & ((1ull << 53) - 1); /* exact as a JSON number */
        if (walk != NULL) {
            walk->valid = 1;
            walk->gen = st->jobs_changes;
            memcpy(walk->active, snap->active, sizeof walk->active);
            walk->suspended_now = snap->suspended_now;
            walk->jobs_version = snap->jobs_version;
        }
    }

    /* Nodes: the JSON the API serves, and the GPU numbers /metrics needs. */
    size_t nn = sched_node_count(s);
    snap->n_nodes = (unsigned) nn;
    size_t ng = 0;
    for (size_t i = 0; i < nn; i++)
        ng += sched_node(s, i)->n_gpus;
    snap->gpus = wq_calloc(ng ? ng : 1, sizeof *snap->gpus);
    snap->drained = wq_calloc(2 * (nn ? nn : 1), sizeof *snap->drained);
    snap->owners = wq_calloc(3 * (nn ? nn : 1), sizeof *snap->owners);
    snap->gpu_resets = wq_calloc(nn ? nn : 1, sizeof *snap->gpu_resets);
    const Wslq__NodeInfo **infos = wq_calloc(nn ? nn : 1, sizeof *infos);
    for (size_t i = 0; i < nn; i++) {
        const Wslq__NodeInfo *n = sched_node(s, i);
        infos[i] = n;
        snap->nodes_by_state[node_state_index(n->state)]++;
        if (n->drained) {
            snap->drained[2 * snap->n_drained] = wq_strdup(n->name ? n->name : "");
            snap->drained[2 * snap->n_drained + 1] =
                wq_strdup(n->drain_reason ? n->drain_reason : "");
            snap->n_drained++;
        }
        snap->gpu_resets[snap->n_owners] = n->gpu_resets;
        char **o = &snap->owners[3 * snap->n_owners++];
        o[0] = wq_strdup(n->name ? n->name : "");
        o[1] = wq_strdup(n->owner && n->owner[0] ? n->owner : "ignore");
        o[2] = wq_strdup(n->owner_state && n->owner_state[0] ? n->owner_state : "unknown");
        for (size_t g = 0; g < n->n_gpus; g++) {
            const Wslq__GpuInfo *src = n->gpus[g];
            http_gpu_t *dst = &snap->gpus[snap->n_gpus++];
            dst->node = wq_strdup(n->name ? n->name : "");
            dst->uuid = wq_strdup(src->uuid ? src->uuid : "");
            dst->index = src->index;
            dst->mem_total_mb = src->mem_total_mb;
            dst->mem_used_mb = src->mem_used_mb;
            dst->temp_c = src->temp_c;
            dst->util_pct = src->util_pct;
            dst->power_w = src->power_w;
            dst->job_id = src->job_id;
            snap->gpus_total++;
            snap->gpus_used += src->job_id != 0;
        }
    }
    snap->nodes_json = http_nodes_render(nodes, infos, nn);
    free(infos);
    return snap;
}

void
http_snap_free(http_snap_t *snap)
{
    if (snap == NULL)
        return;
    for (size_t i = 0; i < snap->n_gpus; i++) {
        free(snap->gpus[i].node);
        free(snap->gpus[i].uuid);
    }
    free(snap->gpus);
    for (size_t i = 0; i < 2 * snap->n_drained; i++)
        free(snap->drained[i]);
    free(snap->drained);
    for (size_t i = 0; i < 3 * snap->n_owners; i++)
        free(snap->owners[i]);
    free(snap->owners);
    free(snap->gpu_resets);
    free(snap->nodes_json);
    free(snap->summary_json);
    free(snap->update_json);
    free(snap);
}
