/* The PC owner's state from the reporter's file (see owner.h). */
#include "worker/owner.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

void
owner_limits_default(owner_limits_t *l)
{
    l->away_min = 10;
    l->stale_s = 30;
    l->gpu_mem_mb = 2048;
    l->gpu_pct = 30;
}

const char *
owner_state_name(int s)
{
    switch (s) {
    case OWNER_AWAY:
        return "away";
    case OWNER_PRESENT:
        return "present";
    case OWNER_GAMING:
        return "gaming";
    default:
        return "unknown";
    }
}

const char *
owner_policy_name(int p)
{
    switch (p) {
    case OWNER_YIELD:
        return "yield";
    case OWNER_SUSPEND:
        return "suspend";
    case OWNER_EVICT:
        return "evict";
    default:
        return "ignore";
    }
}

int
owner_policy_parse(const char *s, int *out)
{
    if (strcmp(s, "ignore") == 0)
        *out = OWNER_IGNORE;
    else if (strcmp(s, "yield") == 0)
        *out = OWNER_YIELD;
    else if (strcmp(s, "suspend") == 0)
        *out = OWNER_SUSPEND;
    else if (strcmp(s, "evict") == 0)
        *out = OWNER_EVICT;
    else
        return -1;
    return 0;
}

static enum owner_state
say(enum owner_state st, char *why, size_t n, const char *fmt, ...)
{
    if (why != NULL && n > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, n, fmt, ap);
        va_end(ap);
    }
    return st;
}

/* A number field that must be present and finite, within [lo, hi]. */
static int
get_num(const cJSON *o, const char *key, double lo, double hi, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return -1;
    *out = v->valuedouble;
    return 0;
}

static int
get_bool(const cJSON *o, const char *key, int *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsBool(v))
        return -1;
    *out = cJSON_IsTrue(v);
    return 0;
}

/* WSL's own GPU work shows up under these Windows processes: our jobs, not the owner's. */
static int
is_wsl_process(const char *name)
{
    return strcasecmp(name, "vmmem") == 0 || strcasecmp(name, "vmmemWSL") == 0;
}

#define BAD(field) say(OWNER_UNKNOWN, why, whylen, "owner file: %s is missing or invalid", field)

static enum owner_state
classify_json(const cJSON *root,
              int64_t now,
              const owner_limits_t *lim,
              owner_report_t *r,
              char *why,
              size_t whylen)
{
    double d;
    if (!cJSON_IsObject(root))
        return say(OWNER_UNKNOWN, why, whylen, "owner file: not a JSON object");
    if (get_num(root, "version", 0, 1e9, &d) < 0)
        return BAD("version");
    r->version = (int) d;
    if (r->version != OWNER_FORMAT_VERSION)
        return say(OWNER_UNKNOWN, why, whylen, "owner file: version %d, this worker reads %d",
                   r->version, OWNER_FORMAT_VERSION);
    if (get_num(root, "time", 0, 1e13, &d) < 0)
        return BAD("time");
    r->time = (int64_t) d;
    if (get_num(root, "idle_s", -1, 1e10, &d) < 0)
        return BAD("idle_s");
    r->idle_s = (int64_t) d;
    if (get_bool(root, "fullscreen", &r->fullscreen) < 0)
        return BAD("fullscreen");
    if (get_bool(root, "gpu_ok", &r->gpu_ok) < 0)
        return BAD("gpu_ok");
    const cJSON *procs = cJSON_GetObjectItemCaseSensitive(root, "gpu_procs");
    if (!cJSON_IsArray(procs))
        return BAD("gpu_procs");
    const cJSON *p;
    cJSON_ArrayForEach(p, procs)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
        double mb, pct;
        if (!cJSON_IsObject(p) || !cJSON_IsString(name) || get_num(p, "mem_mb", 0, 1e9, &mb) < 0 ||
            get_num(p, "engine_pct", 0, 100, &pct) < 0)
            return BAD("gpu_procs[]");
        if (is_wsl_process(name->valuestring))
            continue;
        r->gpu_mem_mb += (int64_t) mb;
        if (pct > r->gpu_pct || r->gpu_top[0] == '\0') {
            if (pct > r->gpu_pct)
                r->gpu_pct = pct;
            snprintf(r->gpu_top, sizeof r->gpu_top, "%.63s", name->valuestring);
        }
    }
    const cJSON *tdr = cJSON_GetObjectItemCaseSensitive(root, "tdr");
    if (!cJSON_IsObject(tdr) || get_num(tdr, "delay_s", 0, 1e6, &d) < 0)
        return BAD("tdr.delay_s");
    r->tdr_delay_s = (int) d;
    /* optional (reporters before it leave it out); present, it must be a count */
    if (cJSON_GetObjectItemCaseSensitive(tdr, "events") != NULL) {
        if (get_num(tdr, "events", 0, 1e12, &d) < 0)
            return BAD("tdr.events");
        r->tdr_events = (int64_t) d;
    }

    if (now - r->time > lim->stale_s)
        return say(OWNER_UNKNOWN, why, whylen, "owner file is stale (%lld s old)",
                   (long long) (now - r->time));
    if (r->time - now > lim->stale_s)
        return say(OWNER_UNKNOWN, why, whylen, "owner file is %lld s in the future",
                   (long long) (r->time - now));
    if (r->fullscreen)
        return say(OWNER_GAMING, why, whylen, "a full-screen application is in front");
    if (r->gpu_ok && lim->gpu_mem_mb > 0 && r->gpu_mem_mb >= lim->gpu_mem_mb)
        return say(OWNER_GAMING, why, whylen, "Windows processes hold %lld MiB of GPU memory",
                   (long long) r->gpu_mem_mb);
    if (r->gpu_ok && lim->gpu_pct > 0 && r->gpu_pct >= lim->gpu_pct)
        return say(OWNER_GAMING, why, whylen, "%s uses %.0f%% of a GPU engine", r->gpu_top,
                   r->gpu_pct);
    if (r->idle_s < 0)
        return say(OWNER_UNKNOWN, why, whylen, "the reporter could not read the idle time");
    if (r->idle_s >= (int64_t) lim->away_min * 60)
        return say(OWNER_AWAY, why, whylen, "no input for %lld s", (long long) r->idle_s);
    return say(OWNER_PRESENT, why, whylen, "input %lld s ago", (long long) r->idle_s);
}

/* A report with nothing read: no version, no time, the TDR fields absent. */
static void
report_clear(owner_report_t *r)
{
    memset(r, 0, sizeof *r);
    r->tdr_delay_s = -1;
    r->tdr_events = -1;
}

enum owner_state
owner_classify(const char *text,
               size_t len,
               int64_t now,
               const owner_limits_t *lim,
               owner_report_t *r,
               char *why,
               size_t whylen)
{
    owner_report_t local;
    if (r == NULL)
        r = &local;
    report_clear(r);
    if (len > OWNER_FILE_MAX)
        return say(OWNER_UNKNOWN, why, whylen, "owner file is larger than %d bytes",
                   OWNER_FILE_MAX);
    cJSON *root = cJSON_ParseWithLength(text, len);
    if (root == NULL)
        return say(OWNER_UNKNOWN, why, whylen, "owner file is not valid JSON");
    enum owner_state st = classify_json(root, now, lim, r, why, whylen);
    cJSON_Delete(root);
    return st;
}

enum owner_state
owner_read(const char *path,
           int64_t now,
           const owner_limits_t *lim,
           owner_report_t *r,
           char *why,
           size_t whylen)
{
    if (r != NULL) /* a file that cannot be read leaves nothing of an earlier report */
        report_clear(r);
    if (path == NULL || *path == '\0')
        return say(OWNER_UNKNOWN, why, whylen, "no owner_file configured");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return say(OWNER_UNKNOWN, why, whylen, "cannot read %s: %s", path, strerror(errno));
    /* one byte more than allowed tells a too-large file from one exactly at the limit */
    char *buf = malloc(OWNER_FILE_MAX + 1);
    if (buf == NULL) {
        close(fd);
        return say(OWNER_UNKNOWN, why, whylen, "out of memory");
    }
    size_t n = 0;
    while (n < OWNER_FILE_MAX + 1) {
        ssize_t k = read(fd, buf + n, OWNER_FILE_MAX + 1 - n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        n += (size_t) k;
    }
    close(fd);
    enum owner_state st = owner_classify(buf, n, now, lim, r, why, whylen);
    free(buf);
    return st;
}
