/* The job spec's defaults and the per-rank variables; see jobspec.h. */
#include "proto/jobspec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/wire.h"

const char *const jobspec_rank_vars[] = {
    /* identity */
    "WSLQ_JOB_ID", "WSLQ_JOB_NAME", "WSLQ_ATTEMPT", "WSLQ_ARRAY_INDEX", "WSLQ_ARRAY_JOB_ID",
    "WSLQ_NODE",
    /* where a rank reaches its worker */
    "WSLQ_METRICS", "WSLQ_RENDEZVOUS",
    /* its GPUs */
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "WSLQ_GPU_UUIDS",
    /* the torchrun contract */
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "NNODES",
    "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT", "WSLQ_GPUS_ON_NODE",
    "WSLQ_NPROC_PER_NODE",
    /* TensorFlow multi-worker (--tf) */
    "TF_CONFIG",
    /* the node's network and NCCL profile */
    "NCCL_SOCKET_IFNAME", "GLOO_SOCKET_IFNAME", "NCCL_IB_DISABLE", "NCCL_SHM_DISABLE",
    "NCCL_P2P_DISABLE", NULL};

int
jobspec_is_rank_var(const char *name, size_t len)
{
    for (const char *const *v = jobspec_rank_vars; *v != NULL; v++)
        if (strlen(*v) == len && memcmp(*v, name, len) == 0)
            return 1;
    return 0;
}

const char *
jobspec_default_name(const Wslq__JobSpec *spec, char *buf, size_t size)
{
    const char *name = "wrap";
    if (!spec->wrap) {
        const char *argv0 = spec->n_argv > 0 ? spec->argv[0] : "";
        const char *slash = strrchr(argv0, '/');
        name = slash && slash[1] ? slash + 1 : argv0;
    }
    size_t n = strlen(name);
    if (n > WIRE_MAX_NAME)
        n = WIRE_MAX_NAME;
    snprintf(buf, size, "%.*s", (int) n, name);
    /* argv[0] may hold control characters, a stored job name may not (wire.c's check_name) */
    for (char *p = buf; *p != '\0'; p++)
        if ((unsigned char) *p < 0x20 || *p == 0x7f)
            *p = '?';
    return buf;
}

void
jobspec_apply_defaults(Wslq__JobSpec *spec)
{
    if (spec->cpus_per_node == 0)
        spec->cpus_per_node = 1;
    if (spec->name == NULL || spec->name[0] == '\0') {
        char buf[WIRE_MAX_NAME + 1];
        wire_set_str(&spec->name, jobspec_default_name(spec, buf, sizeof buf));
    }
    if (spec->user == NULL || spec->user[0] == '\0')
        wire_set_str(&spec->user, "unknown");
}

/* ---------- job arrays and selectors ---------- */

/* A decimal number of at most 9 digits at *p (0 if none); advances *p. */
static int
take_num(const char **p, uint32_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    int digits = 0;
    while (*s >= '0' && *s <= '9') {
        if (++digits > 9)
            return 0;
        x = x * 10 + (uint64_t) (*s++ - '0');
    }
    if (digits == 0)
        return 0;
    *v = (uint32_t) x;
    *p = s;
    return 1;
}

int
jobspec_parse_array(const char *s, int allow_limit, jobspec_array_t *out, wq_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (s == NULL || *s == '\0')
        return wq_fail(err, WQ_EINVAL, "empty array index list; use e.g. 0-99 or 1,3,5-9:2");
    if (strlen(s) > WIRE_MAX_SELECTOR)
        return wq_fail(err, WQ_ELIMIT, "array index list is longer than %d characters",
                       WIRE_MAX_SELECTOR);
    /* a bitmap over every possible index: duplicates count once, the result comes sorted */
    size_t words = WIRE_MAX_ARRAY_INDEX / 64 + 1;
    uint64_t *bits = wq_calloc(words, sizeof *bits);
    size_t count = 0;
    uint32_t lo_seen = UINT32_MAX, hi_seen = 0;
    const char *p = s;
    int rc = 0;
    for (;;) {
        uint32_t a, b, step = 1;
        const char *item = p;
        if (!take_num(&p, &a)) {
            rc = wq_fail(err, WQ_EINVAL,
                         "'%.60s' is not an array index list: expected a number at '%.20s'", s,
                         item);
            break;
        }
        b = a;
        if (*p == '-') {
            p++;
            if (!take_num(&p, &b)) {
                rc = wq_fail(err, WQ_EINVAL,
                             "'%.60s' is not an array index list: a range needs an end, as in "
                             "3-9",
                             s);
                break;
            }
            if (*p == ':') {
                p++;
                if (!take_num(&p, &step) || step == 0) {
                    rc = wq_fail(err, WQ_EINVAL,
                                 "'%.60s' is not an array index list: a step is a number of 1 "
                                 "or more, as in 5-9:2",
                                 s);
                    break;
                }
            }
        }
        if (a > WIRE_MAX_ARRAY_INDEX || b > WIRE_MAX_ARRAY_INDEX) {
            rc = wq_fail(err, WQ_ELIMIT, "array index %u is larger than %d", a > b ? a : b,
                         WIRE_MAX_ARRAY_INDEX);
            break;
        }
        if (b < a) {
            rc = wq_fail(err, WQ_EINVAL, "array range %u-%u runs backwards", a, b);
            break;
        }
        for (uint64_t i = a; i <= b && rc == 0; i += step) {
            uint64_t bit = 1ULL << (i % 64);
            if (bits[i / 64] & bit)
                continue;
            if (++count > WIRE_MAX_ARRAY_TASKS)
                rc = wq_fail(err, WQ_ELIMIT, "'%.60s' names more than %d array tasks", s,
                             WIRE_MAX_ARRAY_TASKS);
            bits[i / 64] |= bit;
            if (i < lo_seen)
                lo_seen = (uint32_t) i;
            if (i > hi_seen)
                hi_seen = (uint32_t) i;
        }
        if (rc < 0)
            break;
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '%') {
            if (!allow_limit) {
                rc = wq_fail(err, WQ_EINVAL, "'%.60s': a %%K limit is not allowed here", s);
                break;
            }
            p++;
            uint32_t k;
            if (!take_num(&p, &k) || *p != '\0' || k == 0 || k > WIRE_MAX_ARRAY_TASKS) {
                rc = wq_fail(err, WQ_EINVAL,
                             "'%.60s': %%K takes how many tasks may run at once, 1..%d", s,
                             WIRE_MAX_ARRAY_TASKS);
                break;
            }
            out->limit = k;
            break;
        }
        if (*p != '\0')
            rc = wq_fail(err, WQ_EINVAL, "'%.60s' is not an array index list: unexpected '%c'", s,
                         *p);
        break;
    }
    if (rc == 0) {
        out->idx = wq_malloc(count * sizeof *out->idx);
        for (uint32_t i = lo_seen; count > 0 && i <= hi_seen; i++)
            if (bits[i / 64] & (1ULL << (i % 64)))
                out->idx[out->n++] = i;
    } else {
        out->limit = 0;
    }
    free(bits);
    return rc;
}

void
jobspec_array_fini(jobspec_array_t *a)
{
    free(a->idx);
    memset(a, 0, sizeof *a);
}

const char *
jobspec_format_indices(const uint32_t *idx, size_t n, char *buf, size_t size)
{
    size_t off = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && idx[j + 1] == idx[j] + 1)
            j++;
        char item[32];
        if (j == i)
            snprintf(item, sizeof item, "%s%u", i ? "," : "", idx[i]);
        else
            snprintf(item, sizeof item, "%s%u-%u", i ? "," : "", idx[i], idx[j]);
        size_t len = strlen(item);
        if (off + len + 4 > size) { /* room for "..." and the NUL */
            snprintf(buf + off, size - off, "...");
            return buf;
        }
        memcpy(buf + off, item, len + 1);
        off += len;
        i = j + 1;
    }
    return buf;
}

int
jobspec_parse_selector(const char *s, jobspec_selector_t *out, wq_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (s == NULL || *s == '\0')
        return wq_fail(err, WQ_EINVAL, "empty job id");
    if (strlen(s) > WIRE_MAX_SELECTOR)
        return wq_fail(err, WQ_ELIMIT, "job selector is longer than %d characters",
                       WIRE_MAX_SELECTOR);
    const char *p = s;
    uint64_t id = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (id > (UINT64_MAX - 9) / 10)
            return wq_fail(err, WQ_EINVAL, "'%.40s' is not a job id", s);
        id = id * 10 + (uint64_t) (*p - '0');
    }
    if (p == s || id == 0 || (*p != '\0' && *p != '_'))
        return wq_fail(err, WQ_EINVAL,
                       "'%.40s' is not a job id; use 42, or ARRAY_INDEX (40_7) or "
                       "ARRAY_[LIST] (40_[3-9]) for array tasks",
                       s);
    out->id = id;
    if (*p == '\0')
        return 0;
    p++; /* '_' */
    char list[WIRE_MAX_SELECTOR + 1];
    size_t len = strlen(p);
    if (len >= 2 && p[0] == '[' && p[len - 1] == ']') {
        snprintf(list, sizeof list, "%.*s", (int) (len - 2), p + 1);
    } else if (len > 0 && strchr(p, '[') == NULL && strchr(p, ']') == NULL) {
        snprintf(list, sizeof list, "%s", p);
    } else {
        memset(out, 0, sizeof *out);
        return wq_fail(err, WQ_EINVAL,
                       "'%.40s' is not a job selector; array tasks are written 40_7 or 40_[3-9]",
                       s);
    }
    wq_error_t e = {0};
    if (jobspec_parse_array(list, 0, &out->tasks, &e) < 0) {
        memset(out, 0, sizeof *out);
        return wq_fail(err, e.code, "'%.40s': %s", s, e.text);
    }
    out->has_tasks = 1;
    return 0;
}

void
jobspec_selector_fini(jobspec_selector_t *sel)
{
    jobspec_array_fini(&sel->tasks);
    sel->has_tasks = 0;
}

const char *
jobspec_wait_name(Wslq__WaitReason r)
{
    switch (r) {
    case WSLQ__WAIT_REASON__WAIT_PRIORITY:
        return "Priority";
    case WSLQ__WAIT_REASON__WAIT_RESOURCES:
        return "Resources";
    case WSLQ__WAIT_REASON__WAIT_DEPENDENCY:
        return "Dependency";
    case WSLQ__WAIT_REASON__WAIT_HELD:
        return "Held";
    case WSLQ__WAIT_REASON__WAIT_ARRAY_LIMIT:
        return "ArrayLimit";
    case WSLQ__WAIT_REASON__WAIT_NO_NODE:
        return "NoNode";
    case WSLQ__WAIT_REASON__WAIT_BACKOFF:
        return "Backoff";
    case WSLQ__WAIT_REASON__WAIT_RESERVATION:
        return "Reservation";
    case WSLQ__WAIT_REASON__WAIT_LIMIT:
        return "Limit";
    case WSLQ__WAIT_REASON__WAIT_OWNER:
        return "Owner";
    default:
        return "";
    }
}

/* ---------- --notify ---------- */

static const struct {
    const char *name;
    uint32_t bit;
} notify_words[] = {
    {"start", JOBSPEC_NOTIFY_START},     {"end", JOBSPEC_NOTIFY_END}, {"fail", JOBSPEC_NOTIFY_FAIL},
    {"requeue", JOBSPEC_NOTIFY_REQUEUE}, {"all", JOBSPEC_NOTIFY_ALL}, {"none", 0},
};

int
jobspec_parse_notify(const char *s, uint32_t *mask, wq_error_t *err)
{
    uint32_t m = 0;
    const char *p = s;
    if (*p == '\0')
        return wq_fail(err, WQ_EINVAL, "--notify: empty; give start, end, fail, requeue or all");
    for (;;) {
        size_t len = strcspn(p, ",");
        if (len == 0)
            return wq_fail(err, WQ_EINVAL, "--notify: an empty event in '%.60s'", s);
        size_t i;
        for (i = 0; i < sizeof notify_words / sizeof notify_words[0]; i++)
            if (strlen(notify_words[i].name) == len && strncmp(p, notify_words[i].name, len) == 0)
                break;
        if (i == sizeof notify_words / sizeof notify_words[0])
            return wq_fail(err, WQ_EINVAL,
                           "--notify: '%.*s' is not start, end, fail, requeue, all or none",
                           (int) (len > 40 ? 40 : len), p);
        m |= notify_words[i].bit;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *mask = m;
    return 0;
}

const char *
jobspec_format_notify(uint32_t mask, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < 4; i++) /* the four single events, in their order */
        if (mask & notify_words[i].bit)
            off += (size_t) snprintf(buf + off, off < size ? size - off : 0, "%s%s", off ? "," : "",
                                     notify_words[i].name);
    if (off == 0)
        snprintf(buf, size, "none");
    return buf;
}
