/* wslq submit --file: many jobs from one file, one a line, each its line run with
 * /bin/sh -c and the command line's options. Every line is checked before anything is
 * sent; then the jobs go over one connection, several requests in flight, so the
 * scheduler takes them in few loop turns (one COMMIT, one fdatasync for each turn's
 * batch) rather than one process and one fdatasync a job. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "cli/submit_int.h"
#include "common/clock.h"
#include "common/limits.h"
#include "common/mem.h"

/* Requests in flight at once: enough that the scheduler finds a batch on each turn, few
 * enough that its replies never fill a socket's buffers. */
#define SUBMIT_FILE_WINDOW 64
/* The largest file read, as the largest batch script of an array */
#define SUBMIT_FILE_MAX WIRE_MAX_ARRAY_SCRIPTS

/* All of fd into *text (NUL-terminated), at most SUBMIT_FILE_MAX bytes. */
static int
read_all(int fd, const char *path, char **text, size_t *len, wq_error_t *err)
{
    size_t cap = 64 * 1024, n = 0;
    char *buf = wq_malloc(cap + 1);
    for (;;) {
        if (n == cap) {
            if (cap >= SUBMIT_FILE_MAX) {
                free(buf);
                return wq_fail(err, WQ_ELIMIT, "--file %.200s: more than %d MiB", path,
                               SUBMIT_FILE_MAX >> 20);
            }
            cap *= 2;
            buf = wq_realloc(buf, cap + 1);
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            free(buf);
            return wq_fail(err, WQ_ESYS, "--file %.200s: cannot read: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        n += (size_t) r;
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

void
submit_lines_free(submit_lines_t *l)
{
    free(l->text);
    free(l->line);
    free(l->lineno);
    memset(l, 0, sizeof *l);
}

int
submit_lines_read(const char *path, Wslq__JobSpec *spec, submit_lines_t *l, wq_error_t *err)
{
    memset(l, 0, sizeof *l);
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return wq_fail(err, WQ_ESYS, "--file %.200s: cannot open: %s", path, strerror(errno));
    size_t len = 0;
    int rc = read_all(fd, path, &l->text, &len, err);
    if (fd != STDIN_FILENO)
        close(fd);
    if (rc < 0)
        return -1;
    if (memchr(l->text, '\0', len) != NULL) {
        submit_lines_free(l);
        return wq_fail(err, WQ_EINVAL, "--file %.200s: holds a NUL byte: not a text file", path);
    }
    size_t cap = 0;
    char *save = spec->argv[2];
    char *p = l->text;
    for (size_t no = 1; *p != '\0'; no++) {
        char *nl = strchr(p, '\n'), *next = nl != NULL ? nl + 1 : p + strlen(p);
        if (nl != NULL)
            *nl = '\0';
        size_t n = strlen(p);
        if (n > 0 && p[n - 1] == '\r')
            p[--n] = '\0';
        const char *t = p + strspn(p, " \t");
        if (*t != '\0' && *t != '#') {
            if (l->n == WIRE_MAX_ARRAY_TASKS) {
                rc = wq_fail(err, WQ_ELIMIT, "--file %.200s: more than %d jobs; split it", path,
                             WIRE_MAX_ARRAY_TASKS);
                break;
            }
            spec->argv[2] = p;
            if (wire_validate_spec(spec, err) < 0) {
                char why[sizeof err->text];
                snprintf(why, sizeof why, "%s", err->text);
                rc = wq_fail(err, WQ_EINVAL, "%.200s:%zu: %s", path, no, why);
                break;
            }
            if (l->n == cap) {
                cap = cap ? cap * 2 : 256;
                l->line = wq_realloc(l->line, cap * sizeof *l->line);
                l->lineno = wq_realloc(l->lineno, cap * sizeof *l->lineno);
            }
            l->line[l->n] = p;
            l->lineno[l->n++] = no;
        }
        p = next;
    }
    spec->argv[2] = save;
    if (rc == 0 && l->n == 0)
        rc = wq_fail(err, WQ_EINVAL,
                     "--file %.200s: no job in it (every line empty or a # "
                     "comment)",
                     path);
    if (rc < 0)
        submit_lines_free(l);
    return rc;
}

/* One job's outcome: its id, or why the scheduler refused it. */
typedef struct {
    uint64_t id;
    char *why; /* NULL: queued (id) or not answered */
} outcome_t;

/* A reply taken: filed under its request id (i + 1 for the i-th job). Returns 1 when it was
 * one of ours still open, 0 otherwise. */
static int
file_reply(Wslq__Envelope *rep, outcome_t *out, unsigned char *done, size_t n)
{
    uint64_t rid = rep->request_id;
    if (rid == 0 || rid > n || done[rid - 1]) {
        wire_free(&rep);
        return 0;
    }
    outcome_t *o = &out[rid - 1];
    if (rep->body_case == WSLQ__ENVELOPE__BODY_SUBMIT_REPLY)
        o->id = rep->submit_reply->job_id;
    else if (rep->body_case == WSLQ__ENVELOPE__BODY_ERROR)
        o->why = wq_strdup(rep->error->text && rep->error->text[0] ? rep->error->text
                                                                   : "the scheduler refused");
    else
        o->why =
            wq_asprintf("unexpected reply from the scheduler (message %d)", (int) rep->body_case);
    done[rid - 1] = 1;
    wire_free(&rep);
    return 1;
}

/* The first job without an answer (0 when every one has one). */
static size_t
first_open(const unsigned char *done, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!done[i])
            return i;
    return 0;
}

int
submit_file(cli_ctx_t *ctx, client_t *c, submit_args_t *a, const submit_lines_t *l)
{
    outcome_t *out = wq_calloc(l->n, sizeof *out);
    unsigned char *done = wq_calloc(l->n, 1);
    size_t sent = 0, answered = 0;
    int lost = 0; /* the connection failed or went silent: the rest are unknown */
    char *save = a->spec->argv[2];
    Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
    req.spec = a->spec;
    req.array = "";
    req.hold = a->hold;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env.submit = &req;
    int64_t quiet_since = wq_clock_mono_ms();
    while (answered < l->n && !lost) {
        while (sent < l->n && sent - answered < SUBMIT_FILE_WINDOW) {
            a->spec->argv[2] = l->line[sent];
            env.request_id = sent + 1;
            if (client_post(c, &env) < 0) {
                lost = 1;
                break;
            }
            sent++;
        }
        a->spec->argv[2] = save;
        if (lost)
            break;
        Wslq__Envelope *rep;
        int got = 0;
        while ((rep = client_take(c)) != NULL)
            got += file_reply(rep, out, done, l->n);
        answered += (size_t) got;
        int64_t now = wq_clock_mono_ms();
        if (got > 0)
            quiet_since = now;
        if (answered == l->n || got > 0)
            continue;
        if (now - quiet_since >= ctx->timeout_ms) {
            lost = 1;
            break;
        }
        zmq_pollitem_t item;
        client_pollitem(c, &item);
        if (item.socket == NULL && item.fd < 0) {
            lost = 1; /* the user socket closed */
            break;
        }
        long wait = (long) (ctx->timeout_ms - (now - quiet_since));
        if (zmq_poll(&item, 1, wait > 0 ? wait : 0) < 0 && zmq_errno() != EINTR)
            lost = 1;
    }
    a->spec->argv[2] = save;

    size_t queued = 0, refused = 0;
    cJSON *jobs = a->json ? cJSON_CreateArray() : NULL;
    for (size_t i = 0; i < l->n; i++) {
        outcome_t *o = &out[i];
        cJSON *j = NULL;
        if (jobs != NULL) {
            j = cJSON_CreateObject();
            cJSON_AddNumberToObject(j, "line", (double) l->lineno[i]);
            cJSON_AddItemToArray(jobs, j);
        }
        if (done[i] && o->why == NULL) {
            queued++;
            if (j != NULL)
                cJSON_AddNumberToObject(j, "job_id", (double) o->id);
            else if (a->parsable)
                printf("%" PRIu64 "\n", o->id);
            else
                printf("Submitted job %" PRIu64 "\n", o->id);
        } else if (done[i]) {
            refused++;
            if (j != NULL)
                cJSON_AddStringToObject(j, "error", o->why);
            fprintf(stderr, "wslq: %s:%zu: %s\n", a->file, l->lineno[i], o->why);
        } else if (j != NULL) {
            cJSON_AddStringToObject(j, "error", "no answer");
        }
        free(o->why);
    }
    int rc = queued == l->n ? CLI_OK : CLI_FAIL;
    if (lost) {
        wq_error_t err = {0};
        client_unreachable(ctx->scheduler, ctx->timeout_ms, &err);
        fprintf(stderr,
                "wslq: %s: %zu of %zu jobs queued, %zu refused, %zu not answered (from line "
                "%zu): %s\n",
                a->file, queued, l->n, refused, l->n - queued - refused,
                l->lineno[first_open(done, l->n)], err.text);
    } else if (refused > 0) {
        fprintf(stderr, "wslq: %s: %zu of %zu jobs queued, %zu refused\n", a->file, queued, l->n,
                refused);
    }
    if (jobs != NULL) {
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "jobs", jobs);
        int prc = cli_print_json(doc);
        if (prc != CLI_OK)
            rc = prc;
    }
    free(out);
    free(done);
    return rc;
}
