/* Fuzz target: a job spec as the CLI builds it, `wslq submit [options] [--] CMD [ARGS...]`
 * (cli/cmd_submit.c: submit_parse(), with cli/opt.c's option parser), and the value parsers
 * it and the config files use (common/parse.c: durations, sizes, integers).
 *
 * The input is the argument list after "submit": each word ended by a NUL byte (the last one
 * may end with the input; an empty input is no words), at most FUZZ_MAX_WORDS of them. Every
 * word is also given to wq_parse_duration(), wq_parse_size_mb() and wq_parse_int() on its own.
 * --export reads this process's environment, as the CLI does.
 *
 * Checked beyond "no crash, no leak, no undefined behaviour":
 * - a spec submit_parse() accepts passes wire_validate_spec(), still does after
 *   jobspec_apply_defaults(), and, sent as a SubmitRequest, is accepted by wire_decode(): the
 *   scheduler never refuses what the CLI let through;
 * - a refused one says why;
 * - a duration that parses is 0..365 days and wq_format_duration() of it parses back to the
 *   same seconds; a size that parses is 0..1 PiB in MiB. */
#include <stdlib.h>
#include <string.h>

#include "cli/submit.h"
#include "common/parse.h"
#include "proto/jobspec.h"
#include "proto/wire.h"
#include "tests/fuzz/fuzz.h"

/* words after "submit": the wire takes 256 command words, and options come before them */
#define FUZZ_MAX_WORDS 320

static void
check_value_parsers(const char *w)
{
    wq_error_t err = {0};
    int64_t v;
    if (wq_parse_duration(w, "--time", &v, &err) == 0) {
        FUZZ_CHECK(v >= 0 && v <= 365 * 86400);
        char buf[32];
        int64_t back = -1;
        FUZZ_CHECK(wq_parse_duration(wq_format_duration(v, buf, sizeof buf), "t", &back, &err) ==
                   0);
        FUZZ_CHECK(back == v);
    } else {
        FUZZ_CHECK(err.text[0] != '\0');
    }
    if (wq_parse_size_mb(w, "--mem", &v, &err) == 0) {
        FUZZ_CHECK(v >= 0 && v <= (int64_t) 1 << 30); /* 1 PiB */
        char buf[32];
        wq_format_size_mb(v, buf, sizeof buf);
    }
    if (wq_parse_int(w, -1000000, 1000000, "--priority", &v, &err) == 0)
        FUZZ_CHECK(v >= -1000000 && v <= 1000000);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = fuzz_strndup(data, size);
    static char verb[] = "submit";
    char *argv[FUZZ_MAX_WORDS + 2];
    int argc = 0;
    argv[argc++] = verb;
    for (size_t i = 0; i < size && argc <= FUZZ_MAX_WORDS; i += strlen(copy + i) + 1)
        argv[argc++] = copy + i;
    argv[argc] = NULL;
    for (int i = 1; i < argc; i++)
        check_value_parsers(argv[i]);

    cli_ctx_t ctx = {.scheduler = "tcp://127.0.0.1:7420", .timeout_ms = 5000, .verb = "submit"};
    submit_args_t a;
    wq_error_t err = {0};
    int rc = submit_parse(&ctx, argc, argv, &a, &err);
    if (rc < 0) {
        FUZZ_CHECK(err.text[0] != '\0');
        FUZZ_CHECK(a.spec == NULL);
    } else if (rc == 0) {
        FUZZ_CHECK(a.spec != NULL);
        FUZZ_CHECK_OK(wire_validate_spec(a.spec, &err), err);
        Wslq__SubmitRequest req = WSLQ__SUBMIT_REQUEST__INIT;
        req.spec = a.spec;
        Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
        env.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
        env.submit = &req;
        size_t len = 0;
        uint8_t *buf = wire_encode(&env, &len);
        Wslq__Envelope *got = wire_decode(buf, len, &err);
        FUZZ_CHECK_OK(got != NULL ? 0 : -1, err);
        jobspec_apply_defaults(got->submit->spec);
        FUZZ_CHECK_OK(wire_validate_spec(got->submit->spec, &err), err);
        wire_free(&got);
        free(buf);
    }
    submit_args_fini(&a);
    free(copy);
    return 0;
}
