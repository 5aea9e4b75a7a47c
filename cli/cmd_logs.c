/* wslq logs: a job's output, from the scheduler's copy; -f follows it until the job ends. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "common/clock.h"
#include "proto/jobspec.h"
#include "proto/wire.h"

static const char usage[] =
    "usage: wslq logs [-f] JOB          (JOB: 42, or an array task 40_7)\n"
    "\n"
    "Print the job's output (stdout and stderr of every rank, as the worker captured it).\n"
    "  -f, --follow        keep printing new output until the job has ended, then exit 0\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_FOLLOW = 1 };
static const opt_t opts[] = {{"follow", 'f', 0, O_FOLLOW}, OPT_COMMON, {NULL, 0, 0, 0}};

/* How long the scheduler may hold a follow request open waiting for output. */
#define FOLLOW_WAIT_MS 1000

int
cmd_logs(cli_ctx_t *ctx, int argc, char **argv)
{
    int follow = 0;
    char selector[WIRE_MAX_SELECTOR + 1] = "";
    wq_error_t err = {0};
    int done = opt_one_job_command(ctx, argc, argv, opts, O_FOLLOW, usage, "logs", &follow,
                                   selector, sizeof selector);
    if (done >= 0)
        return done;
    uint64_t job = 0;
    jobspec_selector_t sel;
    if (jobspec_parse_selector(selector, &sel, &err) == 0 && !sel.has_tasks)
        job = sel.id;
    jobspec_selector_fini(&sel);

    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    int rc = CLI_OK;
    uint64_t offset = 0;
    /* Without -f: ends at the first empty reply (caught up) or at eof. With -f: ends at eof;
     * each pass waits at most FOLLOW_WAIT_MS on the scheduler plus the request timeout. */
    for (;;) {
        Wslq__LogsRequest req = WSLQ__LOGS_REQUEST__INIT;
        if (job != 0)
            req.job_id = job; /* a plain id: understood by schedulers without selectors too */
        else
            req.selector = selector;
        req.offset = offset;
        req.wait_ms = follow ? FOLLOW_WAIT_MS : 0;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.body_case = WSLQ__ENVELOPE__BODY_LOGS;
        env.logs = &req;
        int64_t t0 = wq_clock_mono_ms();
        Wslq__Envelope *rep =
            client_call(c, &env, WSLQ__ENVELOPE__BODY_LOGS_REPLY, (int) req.wait_ms, &err);
        if (rep == NULL) {
            rc = cli_fail(&err);
            break;
        }
        const Wslq__LogsReply *r = rep->logs_reply;
        size_t len = r->data.len;
        if (len > 0) {
            if (fwrite(r->data.data, 1, len, stdout) != len || fflush(stdout) != 0) {
                int e = errno;
                wire_free(&rep);
                if (e != EPIPE) {
                    fprintf(stderr, "wslq: cannot write the log: %s\n", strerror(e));
                    rc = CLI_FAIL;
                }
                break; /* a closed pipe (| head) is an ordinary end */
            }
        }
        uint64_t next = r->next_offset > offset ? r->next_offset : offset + len;
        int eof = r->eof;
        wire_free(&rep);
        offset = next;
        if (eof || (!follow && len == 0))
            break;
        if (follow && len == 0 && wq_clock_mono_ms() - t0 < FOLLOW_WAIT_MS / 4) {
            /* The scheduler answered at once with nothing: do not spin on it. */
            struct timespec ts = {0, 200 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    client_destroy(&c);
    return rc;
}
