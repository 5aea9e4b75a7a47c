/* wire: round trips and every rejection wire_decode() must make. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "proto/wire.h"

static char *argv_one[] = {"python3", "-c", "print('hi')"};

static Wslq__Envelope *
roundtrip(Wslq__Envelope *env, wq_error_t *err)
{
    size_t len;
    uint8_t *buf = wire_encode(env, &len);
    Wslq__Envelope *out = wire_decode(buf, len, err);
    free(buf);
    return out;
}

static void
init_submit(Wslq__Envelope *env, Wslq__SubmitRequest *req, Wslq__JobSpec *spec)
{
    wslq__job_spec__init(spec);
    spec->n_argv = 3;
    spec->argv = argv_one;
    spec->nodes = 1;
    spec->gpus_per_node = 1;
    spec->name = "hello";
    wslq__submit_request__init(req);
    req->spec = spec;
    wslq__envelope__init(env);
    env->request_id = 42;
    env->body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    env->submit = req;
}

static void
test_submit_roundtrip(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_int_equal(out->proto_version, WIRE_PROTO_CUR);
    assert_int_equal(out->request_id, 42);
    assert_int_equal(out->body_case, WSLQ__ENVELOPE__BODY_SUBMIT);
    assert_int_equal(out->submit->spec->n_argv, 3);
    assert_string_equal(out->submit->spec->argv[2], "print('hi')");
    assert_string_equal(out->submit->spec->name, "hello");
    wire_free(&out);
    assert_null(out);
}

static void
expect_reject(Wslq__Envelope *env, enum wq_errc code, const char *text_part)
{
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(env, &err);
    assert_null(out);
    assert_int_equal(err.code, code);
    if (strstr(err.text, text_part) == NULL)
        fail_msg("error '%s' does not mention '%s'", err.text, text_part);
}

static void
test_version_zero_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    size_t len;
    uint8_t *buf = wire_encode(&env, &len);
    free(buf);
    /* Pack by hand with version 0 and a future version. */
    for (uint32_t v = 0; v < 3; v += 2) {
        env.proto_version = v;
        len = wslq__envelope__get_packed_size(&env);
        buf = malloc(len);
        wslq__envelope__pack(&env, buf);
        wq_error_t err = {0};
        assert_null(wire_decode(buf, len, &err));
        assert_int_equal(err.code, WQ_EPROTO);
        assert_non_null(strstr(err.text, "protocol version"));
        free(buf);
    }
}

static void
test_missing_body_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    expect_reject(&env, WQ_EPROTO, "no body");
}

static void
test_argv_empty_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    spec.n_argv = 0;
    expect_reject(&env, WQ_EPROTO, "argv is empty");
}

static void
test_argv_too_many_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    char *many[WIRE_MAX_ARGV + 1];
    for (int i = 0; i <= WIRE_MAX_ARGV; i++)
        many[i] = "x";
    spec.argv = many;
    spec.n_argv = WIRE_MAX_ARGV + 1;
    expect_reject(&env, WQ_ELIMIT, "argv");
    spec.n_argv = WIRE_MAX_ARGV; /* exactly at the limit is fine */
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(&env, &err);
    assert_non_null(out);
    wire_free(&out);
}

static void
test_long_arg_and_bad_env_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    char *big = malloc(WIRE_MAX_ARG_LEN + 2);
    memset(big, 'a', WIRE_MAX_ARG_LEN + 1);
    big[WIRE_MAX_ARG_LEN + 1] = '\0';
    char *args[] = {"echo", big};
    spec.argv = args;
    spec.n_argv = 2;
    expect_reject(&env, WQ_ELIMIT, "argv[1]");
    free(big);

    init_submit(&env, &req, &spec);
    char *env_bad[] = {"NOEQUALS"};
    spec.env = env_bad;
    spec.n_env = 1;
    expect_reject(&env, WQ_EPROTO, "NAME=VALUE");
    char *env_empty_key[] = {"=x"};
    spec.env = env_empty_key;
    expect_reject(&env, WQ_EPROTO, "NAME=VALUE");
}

/* --tf with --per-node, and container images the engine could read as an option. */
static void
test_tf_and_container_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    spec.tf = 1;
    spec.per_node = 1;
    expect_reject(&env, WQ_EINVAL, "--per-node");
    spec.per_node = 0;
    spec.container = "localhost/lab-pytorch:2.3@sha256:ab";
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_true(out->submit->spec->tf);
    assert_string_equal(out->submit->spec->container, "localhost/lab-pytorch:2.3@sha256:ab");
    wire_free(&out);
    const char *bad[] = {"--privileged", "-v", "img name", "img;rm", "/abs", "img\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spec.container = (char *) bad[i];
        expect_reject(&env, WQ_EINVAL, "not an image name");
    }
    char longimg[WIRE_MAX_IMAGE + 2];
    memset(longimg, 'a', sizeof longimg - 1);
    longimg[sizeof longimg - 1] = '\0';
    spec.container = longimg;
    expect_reject(&env, WQ_ELIMIT, "container image");
}

static void
test_counts_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    spec.nodes = 0;
    expect_reject(&env, WQ_EPROTO, "node count");
    spec.nodes = 1;
    spec.gpus_per_node = WIRE_MAX_GPUS + 1;
    expect_reject(&env, WQ_ELIMIT, "GPUs per node");
    spec.gpus_per_node = 1;
    spec.cwd = "relative/dir";
    expect_reject(&env, WQ_EPROTO, "not absolute");
    spec.cwd = "";
    spec.name = "bad\nname";
    expect_reject(&env, WQ_EPROTO, "control character");
}

static void
test_truncated_and_garbage_rejected(void **state)
{
    (void) state;
    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    size_t len;
    uint8_t *buf = wire_encode(&env, &len);
    int rejected = 0;
    for (size_t cut = 0; cut < len; cut++) {
        wq_error_t err = {0};
        Wslq__Envelope *out = wire_decode(buf, cut, &err);
        if (out == NULL) {
            assert_true(err.code == WQ_EPROTO || err.code == WQ_ELIMIT);
            rejected++;
        }
        wire_free(&out);
    }
    /* Nearly every prefix is malformed or fails validation (the empty one among them). */
    assert_true(rejected >= (int) len - 2);
    free(buf);

    srand(7);
    uint8_t junk[512];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t) (rand() % (int) sizeof junk);
        for (size_t i = 0; i < n; i++)
            junk[i] = (uint8_t) rand();
        wq_error_t err = {0};
        Wslq__Envelope *out = wire_decode(junk, n, &err);
        if (out != NULL) /* a random frame may parse; it must then be valid */
            assert_int_equal(wire_validate(out, NULL), 0);
        wire_free(&out);
    }
}

static void
test_oversized_rejected_before_unpack(void **state)
{
    (void) state;
    size_t n = WIRE_MAX_FRAME + 1;
    uint8_t *buf = calloc(1, n);
    wq_error_t err = {0};
    assert_null(wire_decode(buf, n, &err));
    assert_int_equal(err.code, WQ_ELIMIT);
    assert_non_null(strstr(err.text, "exceeds"));
    free(buf);
}

static void
test_kv_and_log_limits(void **state)
{
    (void) state;
    Wslq__KvRequest kv = WSLQ__KV_REQUEST__INIT;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_KV;
    env.kv = &kv;
    kv.job_id = 1;
    kv.key = "k";
    kv.op = 9;
    expect_reject(&env, WQ_EPROTO, "out of range");
    kv.op = WSLQ__KV_REQUEST__OP__PUT;
    kv.value.len = WIRE_MAX_KV_VALUE + 1;
    kv.value.data = calloc(1, kv.value.len);
    expect_reject(&env, WQ_ELIMIT, "larger than");
    free(kv.value.data);

    Wslq__LogChunk lc = WSLQ__LOG_CHUNK__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_LOG;
    env.log = &lc;
    lc.job_id = 1;
    lc.data.len = WIRE_MAX_LOG_CHUNK + 1;
    lc.data.data = calloc(1, lc.data.len);
    expect_reject(&env, WQ_ELIMIT, "log chunk");
    free(lc.data.data);
}

/* Arrays, job selectors, hold/release/requeue and why: every field is bounded. */
static void
test_selector_messages(void **state)
{
    (void) state;
    char *longsel = malloc(WIRE_MAX_SELECTOR + 2);
    memset(longsel, '1', WIRE_MAX_SELECTOR + 1);
    longsel[WIRE_MAX_SELECTOR + 1] = '\0';

    Wslq__Envelope env;
    Wslq__SubmitRequest req;
    Wslq__JobSpec spec;
    init_submit(&env, &req, &spec);
    req.array = "0-9%2";
    req.hold = 1;
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_string_equal(out->submit->array, "0-9%2");
    assert_true(out->submit->hold);
    wire_free(&out);
    req.array = longsel;
    expect_reject(&env, WQ_ELIMIT, "array index list");
    req.array = "0-9\n";
    expect_reject(&env, WQ_EPROTO, "array index list");

    char *sels[2] = {"40_[3-9]", "42"};
    Wslq__JobControlRequest jc = WSLQ__JOB_CONTROL_REQUEST__INIT;
    wslq__envelope__init(&env);
    env.request_id = 1;
    env.body_case = WSLQ__ENVELOPE__BODY_CONTROL;
    env.control = &jc;
    jc.selectors = sels;
    jc.n_selectors = 2;
    jc.op = WSLQ__JOB_CONTROL_REQUEST__OP__REQUEUE;
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_int_equal(out->control->n_selectors, 2);
    wire_free(&out);
    jc.op = 0;
    expect_reject(&env, WQ_EPROTO, "out of range");
    jc.op = 4;
    expect_reject(&env, WQ_EPROTO, "out of range");
    jc.op = WSLQ__JOB_CONTROL_REQUEST__OP__HOLD;
    jc.n_selectors = 0;
    expect_reject(&env, WQ_EPROTO, "names no job");
    sels[1] = longsel;
    jc.n_selectors = 2;
    expect_reject(&env, WQ_ELIMIT, "job selector");
    sels[1] = "";
    expect_reject(&env, WQ_EPROTO, "job selector");

    Wslq__CancelRequest cr = WSLQ__CANCEL_REQUEST__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_CANCEL;
    env.cancel = &cr;
    expect_reject(&env, WQ_EPROTO, "names no job");
    sels[1] = "42";
    cr.selectors = sels;
    cr.n_selectors = 2;
    out = roundtrip(&env, &err);
    assert_non_null(out);
    wire_free(&out);

    Wslq__WhyRequest wr = WSLQ__WHY_REQUEST__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_WHY;
    env.why = &wr;
    expect_reject(&env, WQ_EPROTO, "job selector");
    wr.selector = longsel;
    expect_reject(&env, WQ_ELIMIT, "job selector");
    wr.selector = "40_7";
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_string_equal(out->why->selector, "40_7");
    wire_free(&out);

    Wslq__ShowRequest sr = WSLQ__SHOW_REQUEST__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_SHOW;
    env.show = &sr;
    expect_reject(&env, WQ_EPROTO, "job id 0");
    sr.selector = "40_7";
    out = roundtrip(&env, &err);
    assert_non_null(out);
    wire_free(&out);
    sr.selector = longsel;
    expect_reject(&env, WQ_ELIMIT, "job selector");
    free(longsel);
}

static void
test_register_name_charset(void **state)
{
    (void) state;
    Wslq__Register r = WSLQ__REGISTER__INIT;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &r;
    r.name = "pc 1";
    expect_reject(&env, WQ_EPROTO, "letters, digits");
    r.name = "";
    expect_reject(&env, WQ_EPROTO, "empty");
    r.name = "lab-pc1.local";
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_string_equal(out->reg->name, "lab-pc1.local");
    wire_free(&out);
}

static void
test_probe_messages(void **state)
{
    (void) state;
    Wslq__ProbeRequest p = WSLQ__PROBE_REQUEST__INIT;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_PROBE;
    env.probe = &p;
    p.target_node = "pc1";
    p.ip = "192.168.1.20";
    p.port = 40123;
    p.token = "0123456789abcdef";
    p.timeout_ms = 3000;
    p.scheduler_time_ms = 1700000000000;
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_string_equal(out->probe->target_node, "pc1");
    assert_int_equal(out->probe->port, 40123);
    assert_int_equal(out->probe->scheduler_time_ms, 1700000000000);
    wire_free(&out);
    p.port = 0;
    expect_reject(&env, WQ_EPROTO, "probe port");
    p.port = 65536;
    expect_reject(&env, WQ_EPROTO, "probe port");
    p.port = 7;
    p.timeout_ms = 60001;
    expect_reject(&env, WQ_ELIMIT, "probe timeout");
    p.timeout_ms = 0;
    p.ip = "";
    expect_reject(&env, WQ_EPROTO, "probe address");
    p.ip = "10.0.0.1";
    p.token = "";
    expect_reject(&env, WQ_EPROTO, "probe token");
    char longtok[80];
    memset(longtok, 'a', sizeof longtok - 1);
    longtok[sizeof longtok - 1] = '\0';
    p.token = longtok;
    expect_reject(&env, WQ_ELIMIT, "probe token");
    p.token = "tok";
    p.target_node = "";
    expect_reject(&env, WQ_EPROTO, "probe target");

    Wslq__ProbeResult r = WSLQ__PROBE_RESULT__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_PROBE_RESULT;
    env.probe_result = &r;
    r.target_node = "pc1";
    r.token = "tok";
    r.ok = 0;
    r.error = "connection refused";
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_string_equal(out->probe_result->error, "connection refused");
    wire_free(&out);
    r.error = "bad\nline";
    expect_reject(&env, WQ_EPROTO, "control character");
    char longerr[200];
    memset(longerr, 'e', sizeof longerr - 1);
    longerr[sizeof longerr - 1] = '\0';
    r.error = longerr;
    expect_reject(&env, WQ_ELIMIT, "probe error");

    /* Register's probe port and Heartbeat's clock fields */
    Wslq__Register reg = WSLQ__REGISTER__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &reg;
    reg.name = "pc1";
    reg.probe_port = 65536;
    expect_reject(&env, WQ_EPROTO, "probe port");
    reg.probe_port = 65535;
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_int_equal(out->reg->probe_port, 65535);
    wire_free(&out);
    Wslq__Heartbeat hb = WSLQ__HEARTBEAT__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    hb.clock_offset_ms = -2300;
    hb.clock_rtt_ms = 4;
    hb.clock_measured = 1;
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_int_equal(out->heartbeat->clock_offset_ms, -2300);
    assert_true(out->heartbeat->clock_measured);
    wire_free(&out);
    hb.clock_rtt_ms = 3600001;
    expect_reject(&env, WQ_EPROTO, "round trip");
    hb.clock_rtt_ms = 4;
    /* the PC owner: state 0..3, policy 0..3, a one-line reason, a user name */
    hb.owner_state = 3;
    hb.owner_policy = 1;
    hb.owner_why = "a full-screen application is in front";
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_int_equal(out->heartbeat->owner_state, 3);
    assert_string_equal(out->heartbeat->owner_why, "a full-screen application is in front");
    wire_free(&out);
    hb.owner_state = 4;
    expect_reject(&env, WQ_EPROTO, "owner state");
    hb.owner_state = 2;
    hb.owner_policy = 3; /* evict */
    hb.owner_user = "alice";
    hb.owner_suspend_max_s = 600;
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_int_equal(out->heartbeat->owner_policy, 3);
    assert_string_equal(out->heartbeat->owner_user, "alice");
    assert_int_equal(out->heartbeat->owner_suspend_max_s, 600);
    wire_free(&out);
    hb.owner_user = "al\x01ice";
    expect_reject(&env, WQ_EPROTO, "owner user");
    hb.owner_user = "";
    hb.owner_policy = 4;
    expect_reject(&env, WQ_EPROTO, "owner policy");
    hb.owner_policy = 1;
    hb.owner_why = "two\nlines";
    expect_reject(&env, WQ_EPROTO, "owner reason");
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &reg; /* the body is a union */
    reg.owner_state = 9;
    expect_reject(&env, WQ_EPROTO, "owner state");
}

/* Isolation's fields: JobEnded.out_of_memory and .cpus, Heartbeat.job_cpus; a CPU list is
 * digits, '-' and ',' only, and bounded. */
static void
test_isolation_fields(void **state)
{
    (void) state;
    Wslq__JobEnded e = WSLQ__JOB_ENDED__INIT;
    e.job_id = 7;
    e.out_of_memory = 1;
    e.cpus = "0-3,8";
    e.reason = "used 612 MiB, more than its --mem 256M";
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.proto_version = WIRE_PROTO_CUR;
    env.body_case = WSLQ__ENVELOPE__BODY_ENDED;
    env.ended = &e;
    wq_error_t err = {0};
    Wslq__Envelope *out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_true(out->ended->out_of_memory);
    assert_string_equal(out->ended->cpus, "0-3,8");
    wire_free(&out);
    e.cpus = "0-3;rm";
    expect_reject(&env, WQ_EPROTO, "CPU list");
    char big[WIRE_MAX_CPULIST + 2];
    memset(big, '1', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    e.cpus = big;
    expect_reject(&env, WQ_ELIMIT, "CPU list");

    Wslq__Heartbeat hb = WSLQ__HEARTBEAT__INIT;
    Wslq__IsolJobCpus jc = WSLQ__ISOL_JOB_CPUS__INIT, *jcp = &jc;
    jc.job_id = 7;
    jc.cpus = "2";
    hb.n_job_cpus = 1;
    hb.job_cpus = &jcp;
    env.body_case = WSLQ__ENVELOPE__BODY_HEARTBEAT;
    env.heartbeat = &hb;
    out = roundtrip(&env, &err);
    assert_non_null(out);
    assert_string_equal(out->heartbeat->job_cpus[0]->cpus, "2");
    wire_free(&out);
    jc.cpus = "two";
    expect_reject(&env, WQ_EPROTO, "CPU list");
}

static void
test_state_names(void **state)
{
    (void) state;
    assert_string_equal(wire_state_name(WSLQ__JOB_STATE__NODE_FAIL), "NODE_FAIL");
    assert_string_equal(wire_state_name(WSLQ__JOB_STATE__OUT_OF_MEMORY), "OUT_OF_MEMORY");
    assert_string_equal(wire_state_name(9), "UNKNOWN"); /* not a state (yet) */
    assert_false(wire_state_known(9));
    assert_true(wire_state_known(WSLQ__JOB_STATE__OUT_OF_MEMORY));
    assert_int_equal(wire_state_parse("out_of_memory"), WSLQ__JOB_STATE__OUT_OF_MEMORY);
    assert_int_equal(wire_state_parse("OOM"), WSLQ__JOB_STATE__OUT_OF_MEMORY);
    assert_int_equal(wire_state_parse("UNKNOWN"), 0);
    assert_true(wire_state_is_final(WSLQ__JOB_STATE__OUT_OF_MEMORY));
    assert_string_equal(wire_state_name(99), "UNKNOWN");
    assert_int_equal(wire_state_parse("running"), WSLQ__JOB_STATE__RUNNING);
    assert_int_equal(wire_state_parse("PD"), WSLQ__JOB_STATE__PENDING);
    assert_int_equal(wire_state_parse("bogus"), 0);
    assert_true(wire_state_is_final(WSLQ__JOB_STATE__TIMEOUT));
    assert_false(wire_state_is_final(WSLQ__JOB_STATE__STARTING));
}

/* The user socket's framing: a 4-byte big-endian length, then the body. */
static void
test_stream_frames(void **state)
{
    (void) state;
    uint8_t buf[16] = {0};
    size_t body = 0;
    wq_error_t err = {0};
    wire_stream_header(buf, 5);
    assert_int_equal(buf[0], 0);
    assert_int_equal(buf[3], 5);
    for (size_t have = 0; have < WIRE_STREAM_HDR + 5; have++)
        assert_int_equal(wire_stream_frame(buf, have, &body, &err), 0); /* not complete yet */
    assert_int_equal(wire_stream_frame(buf, WIRE_STREAM_HDR + 5, &body, &err), 1);
    assert_int_equal(body, 5);
    assert_int_equal(wire_stream_frame(buf, sizeof buf, &body, &err), 1); /* more after it */
    wire_stream_header(buf, 0);
    assert_int_equal(wire_stream_frame(buf, sizeof buf, &body, &err), -1);
    assert_int_equal(err.code, WQ_ELIMIT);
    assert_non_null(strstr(err.text, "bad frame length 0"));
    wire_stream_header(buf, WIRE_MAX_FRAME);
    assert_int_equal(wire_stream_frame(buf, WIRE_STREAM_HDR, &body, &err), 0); /* the limit */
    wire_stream_header(buf, (size_t) WIRE_MAX_FRAME + 1);
    assert_int_equal(wire_stream_frame(buf, WIRE_STREAM_HDR, &body, &err), -1);
    memset(buf, 0xff, 4);
    assert_int_equal(wire_stream_frame(buf, WIRE_STREAM_HDR, &body, &err), -1);
    assert_non_null(strstr(err.text, "4294967295"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_submit_roundtrip),
        cmocka_unit_test(test_version_zero_rejected),
        cmocka_unit_test(test_missing_body_rejected),
        cmocka_unit_test(test_argv_empty_rejected),
        cmocka_unit_test(test_argv_too_many_rejected),
        cmocka_unit_test(test_long_arg_and_bad_env_rejected),
        cmocka_unit_test(test_counts_rejected),
        cmocka_unit_test(test_tf_and_container_rejected),
        cmocka_unit_test(test_truncated_and_garbage_rejected),
        cmocka_unit_test(test_oversized_rejected_before_unpack),
        cmocka_unit_test(test_kv_and_log_limits),
        cmocka_unit_test(test_selector_messages),
        cmocka_unit_test(test_register_name_charset),
        cmocka_unit_test(test_isolation_fields),
        cmocka_unit_test(test_probe_messages),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_stream_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
