/* A job's --notify: which webhook it goes to, refusing a submit that has none, and the JSON
 * each change posts (notify.c sends it). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/jobspec.h"
#include "proto/json.h"
#include "scheduler/notify.h"
#include "scheduler/sched_int.h"

/* The user's own webhook, else the lab's; NULL when neither is configured. */
static const char *
url_for(const sched_t *self, const char *user)
{
    for (size_t i = 0; i < self->cfg.n_notify_urls; i++)
        if (strcmp(self->cfg.notify_urls[i].user, user) == 0)
            return self->cfg.notify_urls[i].url;
    return self->cfg.notify_url;
}

int
jobnotify_admit(sched_t *self, const Wslq__JobSpec *spec, wq_error_t *err)
{
    if (spec->notify == 0)
        return 0;
    if (spec->notify & ~JOBSPEC_NOTIFY_ALL)
        return wq_fail(err, WQ_EINVAL, "job refused: --notify has unknown events (0x%x)",
                       spec->notify);
    if (url_for(self, spec->user) == NULL)
        return wq_fail(err, WQ_EINVAL,
                       "job refused: --notify, but no webhook is configured for user %s (the "
                       "scheduler's notify-url or notify-url.%s)",
                       spec->user, spec->user);
    return 0;
}

static int
is_end(Wslq__JobState s)
{
    return s != WSLQ__JOB_STATE__PENDING && s != WSLQ__JOB_STATE__STARTING &&
           s != WSLQ__JOB_STATE__RUNNING && s != WSLQ__JOB_STATE__JOB_STATE_UNSPECIFIED;
}

static void
add_time(cJSON *o, const char *key, int64_t ms)
{
    char buf[40];
    if (ms > 0)
        cJSON_AddStringToObject(o, key, json_format_time(ms, buf, sizeof buf));
    else
        cJSON_AddNullToObject(o, key);
}

/* {"event","job_id","name","user","state","attempt","reason","exit_code","signal","nodes":[..],
 *  "submit_time","start_time","end_time", an array task's "array_job_id","array_index",
 *  "text" (one line for chat webhooks), "content" (the same)}. No command, environment or
 *  secret: the receiver may be outside the lab. */
static char *
body(const Wslq__JobInfo *info, const char *event)
{
    const Wslq__JobSpec *s = info->spec;
    char name[WIRE_MAX_NAME + 32];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "event", event);
    cJSON_AddNumberToObject(o, "job_id", (double) info->id);
    cJSON_AddStringToObject(o, "name", jobspec_default_name(s, name, sizeof name));
    cJSON_AddStringToObject(o, "user", s->user);
    cJSON_AddStringToObject(o, "state", wire_state_name(info->state));
    cJSON_AddNumberToObject(o, "attempt", info->attempt);
    cJSON_AddStringToObject(o, "reason", info->reason ? info->reason : "");
    if (is_end(info->state)) {
        cJSON_AddNumberToObject(o, "exit_code", info->exit_code);
        cJSON_AddNumberToObject(o, "signal", info->signal);
    }
    cJSON *nodes = cJSON_AddArrayToObject(o, "nodes");
    for (size_t i = 0; i < info->n_allocs; i++)
        cJSON_AddItemToArray(nodes, cJSON_CreateString(info->allocs[i]->node));
    add_time(o, "submit_time", info->submit_ms);
    add_time(o, "start_time", info->start_ms);
    add_time(o, "end_time", is_end(info->state) ? info->end_ms : 0);
    if (info->array_job_id != 0) {
        cJSON_AddNumberToObject(o, "array_job_id", (double) info->array_job_id);
        cJSON_AddNumberToObject(o, "array_index", info->array_index);
    }
    char text[WIRE_MAX_NAME + 320];
    snprintf(text, sizeof text, "wslq job %" PRIu64 " (%s, %s) %s%s%.200s", info->id, name, s->user,
             wire_state_name(info->state), info->reason && info->reason[0] ? ": " : "",
             info->reason ? info->reason : "");
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddStringToObject(o, "content", text);
    char *out = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    WQ_ASSERT(out != NULL);
    return out;
}

void
jobnotify_change(sched_t *self, const job_t *job, Wslq__JobState old, int requeued)
{
    const Wslq__JobInfo *info = job->info;
    uint32_t want = info->spec ? info->spec->notify : 0;
    if (want == 0 || self->notify == NULL)
        return;
    const char *event = NULL;
    Wslq__JobState st = info->state;
    if (requeued && (want & JOBSPEC_NOTIFY_REQUEUE))
        event = "requeue";
    else if (st == WSLQ__JOB_STATE__RUNNING && old != st && (want & JOBSPEC_NOTIFY_START))
        event = "start";
    else if (is_end(st) && !is_end(old) && st != WSLQ__JOB_STATE__COMPLETED &&
             (want & (JOBSPEC_NOTIFY_FAIL | JOBSPEC_NOTIFY_END)))
        event = "fail";
    else if (is_end(st) && !is_end(old) && (want & JOBSPEC_NOTIFY_END))
        event = "end";
    if (event == NULL)
        return;
    const char *url = url_for(self, info->spec->user);
    if (url == NULL)
        return; /* the configuration changed since the submit */
    notify_stage(self->notify, url, body(info, event));
}
