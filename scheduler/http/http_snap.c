/* The dashboard's snapshot of the loop's state; see http_int.h. Runs on the loop thread:
 * everything here must stay cheap. Measured (bench/http_bench.py): 4 nodes, 8 GPUs and
 * 10,000 active jobs take a median 2.4 ms, and the loop takes a snapshot at most every
 * 250 ms, so under 1 % of the loop's time. */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
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

static int
node_state_index(const char *s)
{
    for (int i = 0; i < HTTP_NODE_STATES - 1; i++)
        if (s != NULL && strcmp(s, http_node_state_names[i]) == 0)
            return i;
    return HTTP_NODE_STATES - 1;
}

http_snap_t *
http_snap_take(sched_t *s, int64_t started_ms, http_jobwalk_t *walk)
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
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < nn; i++) {
        const Wslq__NodeInfo *n = sched_node(s, i);
        snap->nodes_by_state[node_state_index(n->state)]++;
        cJSON_AddItemToArray(arr, json_node(n));
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
    snap->nodes_json = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
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
    cJSON_free(snap->nodes_json);
    free(snap->summary_json);
    free(snap->update_json);
    free(snap);
}
