/* wslq kv: the job's rendezvous key/value store (put, get, wait), from inside a job.
 *
 * The store lives in the scheduler, scoped to the job. A job reaches it through its
 * worker's Unix socket named in WSLQ_RENDEZVOUS (line protocol in worker/README.md), so
 * ranks need no route to the scheduler. Without that socket (the worker runs with
 * rendezvous = no) the command sends KvRequest {job_id = WSLQ_JOB_ID, attempt =
 * WSLQ_ATTEMPT} to the scheduler directly (WSLQ_SCHEDULER or --scheduler). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "common/parse.h"
#include "common/rdvc.h"

static const char usage[] =
    "usage: wslq kv put KEY VALUE      (VALUE '-' reads it from stdin)\n"
    "       wslq kv get KEY\n"
    "       wslq kv wait KEY [--timeout SEC]\n"
    "\n"
    "The job's key/value store, shared by all its ranks and deleted when the job ends.\n"
    "Only inside a job (WSLQ_JOB_ID is set there). get and wait print the value followed by\n"
    "a newline. wait blocks until another rank puts KEY, at most --timeout (here the wait:\n"
    "seconds, or 500ms, 2m; default 60 s).\n"
    "Exit: 0 done; 1 key not set (get), wait timed out, or the scheduler refused; 2 usage or\n"
    "not inside a job.\n";

static const opt_t opts[] = {OPT_COMMON, {NULL, 0, 0, 0}};

#define KV_DEFAULT_WAIT_MS 60000

static int
read_stdin(char **buf, size_t *len, wq_error_t *err)
{
    size_t cap = WIRE_MAX_KV_VALUE + 1, n = 0;
    char *b = malloc(cap);
    if (b == NULL)
        return wq_fail(err, WQ_ESYS, "out of memory");
    size_t k;
    while (n < cap && (k = fread(b + n, 1, cap - n, stdin)) > 0)
        n += k;
    if (n > WIRE_MAX_KV_VALUE) {
        free(b);
        return wq_fail(err, WQ_ELIMIT, "value is larger than %u bytes", WIRE_MAX_KV_VALUE);
    }
    *buf = b;
    *len = n;
    return 0;
}

/* One request over the worker's rendezvous socket. Returns CLI_OK / CLI_FAIL. */
static int
rdv_call(const char *path,
         const char *op,
         const char *key,
         const uint8_t *value,
         size_t value_len,
         int wait_ms)
{
    wq_error_t err = {0};
    if (strcmp(op, "put") == 0) {
        if (rdvc_put(path, key, value, value_len, &err) == 0)
            return CLI_OK;
    } else {
        static uint8_t buf[WIRE_MAX_KV_VALUE];
        size_t len = 0;
        if (rdvc_get(path, key, strcmp(op, "get") == 0 ? -1 : wait_ms, buf, sizeof buf, &len,
                     &err) == 0) {
            fwrite(buf, 1, len, stdout);
            fputc('\n', stdout);
            return CLI_OK;
        }
    }
    if (err.code == WQ_ETIMEDOUT)
        fprintf(stderr, "wslq: key '%s' was not set within the wait\n", key);
    else
        fprintf(stderr, "wslq: %s\n", err.text);
    return CLI_FAIL;
}

int
cmd_kv(cli_ctx_t *ctx, int argc, char **argv)
{
    wq_error_t err = {0};
    int wait_ms = KV_DEFAULT_WAIT_MS;
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, opts, &err)) > 0) {
        if (id == OPT_HELP) {
            opt_parser_fini(&p);
            fputs(usage, stdout);
            return CLI_OK;
        }
        /* --timeout is the wait here; the reply timeout is added on top of it. */
        if (id == OPT_TIMEOUT) {
            if (cli_parse_timeout(p.arg, "--timeout", &wait_ms, &err) < 0)
                id = -1;
        } else if (opt_common(ctx, id, p.arg, &err) != 0) {
            id = -1;
        }
        if (id < 0)
            break;
    }
    const char *op = p.n_operands > 0 ? p.operands[0] : NULL;
    const char *key = p.n_operands > 1 ? p.operands[1] : NULL;
    const char *value = p.n_operands > 2 ? p.operands[2] : NULL;
    int want = op && strcmp(op, "put") == 0 ? 3 : 2;
    if (id == 0) {
        if (op == NULL)
            id = wq_fail(&err, WQ_EINVAL, "no operation given (put, get or wait)");
        else if (strcmp(op, "put") && strcmp(op, "get") && strcmp(op, "wait"))
            id = wq_fail(&err, WQ_EINVAL, "unknown operation '%.40s' (put, get or wait)", op);
        else if (p.n_operands != want)
            id = wq_fail(&err, WQ_EINVAL, "%s takes %s", op, want == 3 ? "KEY VALUE" : "KEY");
        else if (key[0] == '\0' || strlen(key) > WIRE_MAX_KV_KEY)
            id = wq_fail(&err, WQ_EINVAL, "KEY must be 1..%d bytes", WIRE_MAX_KV_KEY);
    }
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);

    const char *job_s = getenv("WSLQ_JOB_ID");
    const char *rdv = getenv("WSLQ_RENDEZVOUS");
    if (rdv != NULL && rdv[0] != '\0') {
        if (strchr(key, ' ') || strchr(key, '\n'))
            return cli_usage_error(ctx, "KEY may not contain spaces or newlines");
        if (strcmp(op, "put") != 0)
            return rdv_call(rdv, op, key, NULL, 0, wait_ms);
        if (strcmp(value, "-") != 0) {
            if (strlen(value) > WIRE_MAX_KV_VALUE)
                return cli_usage_error(ctx, "VALUE is larger than %u bytes", WIRE_MAX_KV_VALUE);
            return rdv_call(rdv, op, key, (const uint8_t *) value, strlen(value), 0);
        }
        char *buf = NULL;
        size_t len = 0;
        if (read_stdin(&buf, &len, &err) < 0)
            return cli_fail(&err);
        int rc = rdv_call(rdv, op, key, (const uint8_t *) buf, len, 0);
        free(buf);
        return rc;
    }
    if (job_s == NULL || job_s[0] == '\0') {
        if (rdv == NULL || rdv[0] == '\0')
            fprintf(stderr, "wslq: not inside a wslq job (WSLQ_RENDEZVOUS is not set)\n");
        else
            fprintf(stderr, "wslq: not inside a wslq job (WSLQ_JOB_ID is not set)\n");
        return CLI_USAGE;
    }
    uint64_t job;
    if (cli_parse_job_id(job_s, &job, &err) < 0) {
        fprintf(stderr, "wslq: WSLQ_JOB_ID: %s\n", err.text);
        return CLI_USAGE;
    }
    int64_t attempt = 0;
    const char *att = getenv("WSLQ_ATTEMPT");
    if (att != NULL && att[0] != '\0' &&
        wq_parse_int(att, 0, UINT32_MAX, "WSLQ_ATTEMPT", &attempt, &err) < 0) {
        fprintf(stderr, "wslq: %s\n", err.text);
        return CLI_USAGE;
    }

    Wslq__KvRequest req = WSLQ__KV_REQUEST__INIT;
    req.job_id = job;
    req.attempt = (uint32_t) attempt;
    req.key = (char *) key;
    char *stdin_buf = NULL;
    if (strcmp(op, "put") == 0) {
        req.op = WSLQ__KV_REQUEST__OP__PUT;
        if (strcmp(value, "-") == 0) {
            size_t len = 0;
            if (read_stdin(&stdin_buf, &len, &err) < 0)
                return cli_fail(&err);
            req.value.data = (uint8_t *) stdin_buf;
            req.value.len = len;
        } else {
            if (strlen(value) > WIRE_MAX_KV_VALUE)
                return cli_usage_error(ctx, "VALUE is larger than %u bytes", WIRE_MAX_KV_VALUE);
            req.value.data = (uint8_t *) value;
            req.value.len = strlen(value);
        }
    } else if (strcmp(op, "get") == 0) {
        req.op = WSLQ__KV_REQUEST__OP__GET;
    } else {
        req.op = WSLQ__KV_REQUEST__OP__WAIT;
        req.timeout_ms = (uint32_t) wait_ms;
    }

    client_t *c = client_new(ctx, &err);
    if (c == NULL) {
        free(stdin_buf);
        return cli_fail(&err);
    }
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_KV;
    env.kv = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_KV_REPLY,
                                      req.op == WSLQ__KV_REQUEST__OP__WAIT ? wait_ms : 0, &err);
    client_destroy(&c);
    free(stdin_buf);
    if (rep == NULL)
        return cli_fail(&err);
    int rc = CLI_OK;
    const Wslq__KvReply *r = rep->kv_reply;
    if (req.op != WSLQ__KV_REQUEST__OP__PUT) {
        if (!r->found) {
            if (req.op == WSLQ__KV_REQUEST__OP__WAIT)
                fprintf(stderr, "wslq: key '%s' was not set within the wait\n", key);
            else
                fprintf(stderr, "wslq: key '%s' is not set\n", key);
            rc = CLI_FAIL;
        } else {
            fwrite(r->value.data, 1, r->value.len, stdout);
            fputc('\n', stdout);
        }
    }
    wire_free(&rep);
    return rc;
}
