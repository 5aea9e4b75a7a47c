/* Dashboard pieces without a socket: the request-target parser against hostile input, the
 * listen address parser, /metrics rendering (cumulative buckets, unreported values left
 * out, label escaping), log chunks (UTF-8 cleaning, tails, cut characters), metric series and
 * the nodes' cached JSON (the same as rendering each afresh, whatever changed).
 * A deterministic fuzz loop feeds the parser random and mutated targets. */
/* cmocka.h needs these first. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/mem.h"
#include "proto/json.h"
#include "scheduler/http/http_int.h"
#include "scheduler/http/http_parse.h"

static int
parse(const char *t, http_req_t *req, int *status)
{
    wq_error_t err = {0};
    int rc = http_parse_target(t, strlen(t), req, status, &err);
    if (rc < 0)
        assert_true(err.text[0] != '\0');
    return rc;
}

static int
status_of(const char *t)
{
    http_req_t req;
    int status = 0;
    if (parse(t, &req, &status) == 0)
        return 200;
    return status;
}

static void
test_routes(void **state)
{
    (void) state;
    http_req_t r;
    int st;
    assert_int_equal(parse("/", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_STATIC);
    assert_string_equal(r.file, "index.html");
    assert_int_equal(parse("/assets/app.js", &r, &st), 0);
    assert_string_equal(r.file, "app.js");
    assert_int_equal(parse("/metrics", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_METRICS);
    assert_int_equal(parse("/api/v1/summary", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_SUMMARY);
    assert_int_equal(parse("/api/v1/nodes", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_NODES);
    assert_int_equal(parse("/api/v1/jobs/42", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_JOB);
    assert_int_equal(r.job_id, 42);
    assert_int_equal(parse("/api/v1/jobs/42/log?offset=10&max=100", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_JOB_LOG);
    assert_int_equal(r.offset, 10);
    assert_int_equal(r.max, 100);
    assert_int_equal(parse("/api/v1/jobs/42/log", &r, &st), 0);
    assert_int_equal(r.offset, -1);
    assert_int_equal(r.max, HTTP_LOG_DEFAULT);
    assert_int_equal(parse("/api/v1/jobs/7/metrics", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_JOB_METRICS);
    assert_int_equal(parse("/api/v1/events?job=9", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_EVENTS);
    assert_int_equal(r.job_id, 9);
    assert_int_equal(parse("/healthz", &r, &st), 0);
    assert_int_equal(parse("/api/v1/usage", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_USAGE);
    assert_int_equal(parse("/api/v1/usage?days=3", &r, &st), -1); /* it takes no parameter */
    assert_int_equal(st, 400);
    /* The page ignores its query. */
    assert_int_equal(parse("/?x=1&y", &r, &st), 0);
    /* %-escapes in the path are decoded before matching. */
    assert_int_equal(parse("/api/v1/%73ummary", &r, &st), 0);
    assert_int_equal(r.route, HTTP_R_SUMMARY);
}

static void
test_jobs_query(void **state)
{
    (void) state;
    http_req_t r;
    int st;
    assert_int_equal(parse("/api/v1/jobs", &r, &st), 0);
    assert_int_equal(r.limit, HTTP_JOBS_DEFAULT);
    assert_int_equal(r.state_mask, 0);
    assert_int_equal(
        parse("/api/v1/jobs?state=Running,pending&user=ann+lee&name=a%2Fb&limit=5&before=99", &r,
              &st),
        0);
    assert_int_equal(r.state_mask, (1u << 3) | (1u << 1));
    assert_string_equal(r.user, "ann lee");
    assert_string_equal(r.name, "a/b");
    assert_int_equal(r.limit, 5);
    assert_int_equal(r.before, 99);
    assert_int_equal(parse("/api/v1/jobs?state=active", &r, &st), 0);
    assert_int_equal(r.state_mask, (1u << 1) | (1u << 2) | (1u << 3));
    assert_int_equal(parse("/api/v1/jobs?state=ended", &r, &st), 0);
    assert_int_equal(r.state_mask, 0x1f0u | (1u << WSLQ__JOB_STATE__OUT_OF_MEMORY));
    assert_int_equal(parse("/api/v1/jobs?state=out_of_memory", &r, &st), 0);
    assert_int_equal(r.state_mask, 1u << WSLQ__JOB_STATE__OUT_OF_MEMORY);
    assert_int_equal(parse("/api/v1/jobs?access_token=abc&limit=1", &r, &st), 0);
    assert_string_equal(r.token, "abc");
    /* Empty pairs are skipped. */
    assert_int_equal(parse("/api/v1/jobs?&&limit=3&", &r, &st), 0);
    assert_int_equal(r.limit, 3);
}

static void
test_hostile(void **state)
{
    (void) state;
    static const struct {
        const char *target;
        int status;
    } cases[] = {
        {"", 400},
        {"api/v1/jobs", 400},
        {"*", 400},
        {"/../etc/passwd", 400},
        {"/assets/../../etc/passwd", 400},
        {"/assets/%2e%2e/x", 400},
        {"/assets/.%2E/x", 400},
        {"/assets/./app.js", 400},
        {"/assets/a%2Fb", 400},
        {"/assets/a%5Cb", 400},
        {"/assets/app.js%00.png", 400},
        {"/api/v1/jobs?name=a%00b", 400},
        {"/api/v1/jobs?name=%0a", 400},
        {"/api/v1/jobs?name=%zz", 400},
        {"/api/v1/jobs?name=%4", 400},
        {"/api/v1/jobs?name=%", 400},
        {"/assets/%", 400},
        {"/assets/%4", 400},
        {"/api/v1/jobs?limit=0", 400},
        {"/api/v1/jobs?limit=1001", 400},
        {"/api/v1/jobs?limit=-1", 400},
        {"/api/v1/jobs?limit=1e3", 400},
        {"/api/v1/jobs?limit=99999999999999999999999", 400},
        {"/api/v1/jobs?limit=5&limit=6", 400},
        {"/api/v1/jobs?state=bogus", 400},
        {"/api/v1/jobs?state=", 400},
        {"/api/v1/jobs?state=running,", 400},
        {"/api/v1/jobs?before=0", 400},
        {"/api/v1/jobs?sort=id", 400},
        {"/api/v1/summary?limit=5", 400},
        {"/api/v1/jobs/1/log?max=0", 400},
        {"/api/v1/jobs/1/log?max=2000000", 400},
        {"/api/v1/jobs/1/log?offset=x", 400},
        {"/api/v1/events?job=0", 400},
        {"/api/v1/jobs#frag", 400},
        {"/api/v1/jobs/0", 404},
        {"/api/v1/jobs/-1", 404},
        {"/api/v1/jobs/abc", 404},
        {"/api/v1/jobs/9007199254740993", 404},
        {"/api/v1/jobs/1/nope", 404},
        {"/api/v1/jobs/1/log/x", 404},
        {"/api/v2/jobs", 404},
        {"/api/v1", 404},
        {"/api/v1/", 404},
        {"/api//v1/jobs", 404},
        {"/metrics/", 404},
        {"/etc/passwd", 404},
        {"/assets/.hidden", 404},
        {"/assets/", 404},
        {"/a/b/c/d/e/f/g/h/i/j", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int got = status_of(cases[i].target);
        if (got != cases[i].status)
            fail_msg("'%s': status %d, want %d", cases[i].target, got, cases[i].status);
    }
    /* Overlong targets: 414, however they are made. */
    char *big = wq_malloc(HTTP_MAX_TARGET + 100);
    memset(big, 'a', HTTP_MAX_TARGET + 99);
    big[0] = '/';
    big[HTTP_MAX_TARGET + 99] = '\0';
    assert_int_equal(status_of(big), 414);
    big[HTTP_MAX_TARGET] = '\0';
    assert_int_equal(status_of(big), 400); /* one 2047-byte segment: too long to decode */
    /* A long query value is refused, not truncated. */
    strcpy(big, "/api/v1/jobs?user=");
    memset(big + 18, 'u', 300);
    big[318] = '\0';
    assert_int_equal(status_of(big), 400);
    /* Too many parameters. */
    strcpy(big, "/api/v1/jobs?");
    for (int i = 0; i < 20; i++)
        strcat(big, "access_token=a&");
    assert_int_equal(status_of(big), 400);
    free(big);
    /* Not NUL-terminated: the parser stops at len. */
    http_req_t r;
    int st;
    wq_error_t err;
    assert_int_equal(http_parse_target("/metricsXYZ", 8, &r, &st, &err), 0);
    assert_int_equal(r.route, HTTP_R_METRICS);
}

/* Random and mutated targets: the parser answers every one with 0 or a 4xx, never crashes
 * (ASan/UBSan builds check the memory side). */
static void
test_fuzz(void **state)
{
    (void) state;
    static const char *const seeds[] = {
        "/api/v1/jobs?state=running&user=a&name=b&limit=5&before=9",
        "/api/v1/jobs/12/log?offset=0&max=100",
        "/assets/app.js",
        "/api/v1/events?job=3&access_token=x",
    };
    static const char alphabet[] = "/?&=%.0123456789abcdefAF+-_~\\#\x01\x7f\xff";
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char buf[HTTP_MAX_TARGET + 64];
    for (int iter = 0; iter < 200000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t len;
        if (iter % 2) {
            const char *seed = seeds[x % 4];
            len = strlen(seed);
            memcpy(buf, seed, len);
            int muts = (int) ((x >> 8) % 4) + 1;
            for (int m = 0; m < muts; m++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[(x >> 16) % len] = alphabet[(x >> 32) % (sizeof alphabet - 1)];
            }
        } else {
            len = (size_t) ((x >> 4) % 64);
            for (size_t i = 0; i < len; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                buf[i] = alphabet[x % (sizeof alphabet - 1)];
            }
        }
        http_req_t r;
        int st = 0;
        wq_error_t err;
        int rc = http_parse_target(buf, len, &r, &st, &err);
        if (rc < 0)
            assert_true(st == 400 || st == 404 || st == 414);
        else
            assert_true(r.route != HTTP_R_NONE);
    }
}

static void
test_listen(void **state)
{
    (void) state;
    struct sockaddr_storage ss;
    socklen_t len;
    wq_error_t err;
    assert_int_equal(http_parse_listen("127.0.0.1:7421", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 7421);
    assert_int_equal(http_parse_listen("[::1]:0", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(http_parse_listen("*:80", &ss, &len, &err), 0);
    assert_int_equal(((struct sockaddr_in *) &ss)->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(http_parse_listen("8080", &ss, &len, &err), 0);
    assert_int_equal(((struct sockaddr_in *) &ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(http_parse_listen("localhost:1", &ss, &len, &err), 0);
    /* an interface by name: its IPv4 address (the loopback's here; a LAN's on a lab host) */
    assert_int_equal(http_parse_listen("lo:7421", &ss, &len, &err), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(((struct sockaddr_in *) &ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    assert_int_equal(ntohs(((struct sockaddr_in *) &ss)->sin_port), 7421);
    assert_int_equal(http_parse_listen("nosuch0:80", &ss, &len, &err), -1);
    assert_string_equal(err.text, "http: 'nosuch0' is not an IPv4 address, a network interface "
                                  "with one, [IPv6], '*' or 'localhost'");
    const char *bad[] = {"",      "host:80", "1.2.3.4:", "1.2.3.4:65536", "1.2.3.4:-1",
                         "[::1]", "[::1:80", "[zz]:80",  "1.2.3.4:80x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (http_parse_listen(bad[i], &ss, &len, &err) == 0)
            fail_msg("'%s' accepted", bad[i]);
}

static void
test_prom(void **state)
{
    (void) state;
    http_snap_t s;
    memset(&s, 0, sizeof s);
    s.active[1] = 3;
    s.active[3] = 2;
    s.stats.wait_bucket[0] = 1;
    s.stats.wait_bucket[2] = 2;
    s.stats.wait_count = 4; /* one above the last bound */
    s.stats.wait_sum_s = 100000;
    s.stats.ended_total[4] = 7;
    s.nodes_by_state[0] = 1;
    http_gpu_t g[2] = {{.node = "pc\"1\\\n",
                        .uuid = "GPU-1",
                        .index = 0,
                        .mem_total_mb = 100,
                        .mem_used_mb = 50,
                        .temp_c = 40,
                        .util_pct = -1,
                        .power_w = -1},
                       {.node = "pc2",
                        .uuid = "",
                        .index = 1,
                        .mem_total_mb = 0,
                        .temp_c = -1,
                        .util_pct = 30,
                        .power_w = -1,
                        .job_id = 5}};
    s.gpus = g;
    s.n_gpus = 2;
    uint64_t codes[HTTP_N_CODES] = {0};
    codes[0] = 11;
    size_t len;
    char *txt = http_prom_render(&s, codes, &len);
    assert_int_equal(strlen(txt), len);
    assert_non_null(strstr(txt, "wslq_jobs{state=\"pending\"} 3\n"));
    assert_non_null(strstr(txt, "wslq_jobs{state=\"running\"} 2\n"));
    assert_non_null(strstr(txt, "wslq_job_wait_seconds_bucket{le=\"0.01\"} 1\n"));
    assert_non_null(strstr(txt, "wslq_job_wait_seconds_bucket{le=\"0.1\"} 1\n"));
    assert_non_null(strstr(txt, "wslq_job_wait_seconds_bucket{le=\"1\"} 3\n"));
    assert_non_null(strstr(txt, "wslq_job_wait_seconds_bucket{le=\"86400\"} 3\n"));
    assert_non_null(strstr(txt, "wslq_job_wait_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(txt, "wslq_job_wait_seconds_count 4\n"));
    assert_non_null(strstr(txt, "wslq_jobs_ended_total{state=\"completed\"} 7\n"));
    assert_non_null(strstr(txt, "wslq_nodes{state=\"idle\"} 1\n"));
    assert_non_null(strstr(txt, "wslq_gpu_memory_used_bytes{node=\"pc\\\"1\\\\\\n\",gpu=\"0\","
                                "uuid=\"GPU-1\"} 52428800\n"));
    assert_non_null(strstr(txt, "wslq_gpu_temperature_celsius{node=\"pc\\\"1\\\\\\n\""));
    assert_non_null(strstr(txt, "wslq_gpu_utilization_ratio{node=\"pc2\",gpu=\"1\",uuid=\"\"} "
                                "0.29999999999999999\n"));
    assert_non_null(strstr(txt, "wslq_gpu_allocated{node=\"pc2\",gpu=\"1\",uuid=\"\"} 1\n"));
    /* Not reported: no sample at all. */
    assert_null(strstr(txt, "wslq_gpu_memory_used_bytes{node=\"pc2\""));
    assert_null(strstr(txt, "wslq_gpu_temperature_celsius{node=\"pc2\""));
    assert_null(strstr(txt, "wslq_gpu_utilization_ratio{node=\"pc\\\""));
    assert_null(strstr(txt, "wslq_gpu_power_watts{"));
    assert_non_null(strstr(txt, "wslq_http_requests_total{code=\"200\"} 11\n"));
    free(txt);
}

static char tmpdir[64];

static void
write_file(const char *name, const void *data, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static const char *
str_of(cJSON *o, const char *k)
{
    return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static double
num_of(cJSON *o, const char *k)
{
    return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static void
test_log_chunk(void **state)
{
    (void) state;
    /* "ok\n", an invalid byte, a NUL, "é" (2 bytes), and "€" (3 bytes) cut after 1 byte. */
    static const unsigned char data[] = {'o', 'k', '\n', 0xff, 0x00, 0xc3, 0xa9, 0xe2};
    write_file("1.log", data, sizeof data);
    cJSON *o = http_log_chunk(tmpdir, 1, 0, 1000, 0);
    assert_string_equal(str_of(o, "data"), "ok\n\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9");
    assert_int_equal((int) num_of(o, "next_offset"), 7); /* the cut € waits */
    assert_int_equal((int) num_of(o, "size"), 8);
    cJSON_Delete(o);
    o = http_log_chunk(tmpdir, 1, 7, 1000, 1); /* the job ended: nothing more comes */
    assert_string_equal(str_of(o, "data"), "\xef\xbf\xbd");
    assert_int_equal((int) num_of(o, "next_offset"), 8);
    cJSON_Delete(o);
    /* Tail: starts after a line break. */
    write_file("2.log", "first line\nsecond\nthird\n", 24);
    o = http_log_chunk(tmpdir, 2, -1, 10, 0);
    assert_string_equal(str_of(o, "data"), "third\n");
    assert_int_equal((int) num_of(o, "offset"), 18);
    assert_int_equal((int) num_of(o, "next_offset"), 24);
    cJSON_Delete(o);
    /* A window ending inside a line is fine; past the end is empty. */
    o = http_log_chunk(tmpdir, 2, 0, 5, 0);
    assert_string_equal(str_of(o, "data"), "first");
    cJSON_Delete(o);
    o = http_log_chunk(tmpdir, 2, 100, 5, 0);
    assert_string_equal(str_of(o, "data"), "");
    assert_int_equal((int) num_of(o, "next_offset"), 24);
    cJSON_Delete(o);
    /* No log yet. */
    o = http_log_chunk(tmpdir, 3, -1, 100, 0);
    assert_int_equal((int) num_of(o, "size"), 0);
    cJSON_Delete(o);
}

static void
test_metric_series(void **state)
{
    (void) state;
    const char *lines = "0\t{\"step\":1,\"loss\":2.5,\"acc\":0.1,\"tag\":\"x\"}\n"
                        "1\t{\"step\":1,\"loss\":2.0}\n"
                        "0\tnot json\n"
                        "0\t{\"loss\":1.5}\n"
                        "0\t{\"bad key!\":1,\"step\":3}\n"
                        "0\t{\"step\":4,\"lo"; /* being written */
    write_file("5.metrics", lines, strlen(lines));
    uint64_t off = 0;
    cJSON *o = http_metric_series(tmpdir, 5, &off);
    assert_non_null(o);
    char *txt = cJSON_PrintUnformatted(o);
    assert_string_equal(txt, "{\"x\":\"step\",\"series\":{\"loss\":{\"0\":[[1,2.5],[2,1.5]],"
                             "\"1\":[[1,2]]},\"acc\":{\"0\":[[1,0.1]]}}}");
    cJSON_free(txt);
    cJSON_Delete(o);
    assert_int_equal(off, strlen(lines) - strlen("0\t{\"step\":4,\"lo"));
    /* Nothing new. */
    assert_null(http_metric_series(tmpdir, 5, &off));
    /* No file. */
    off = 0;
    assert_null(http_metric_series(tmpdir, 6, &off));
}

static void
test_many_points_thinned(void **state)
{
    (void) state;
    size_t n = HTTP_METRIC_POINTS * 3 + 7;
    char *buf = wq_malloc(n * 40);
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += (size_t) sprintf(buf + len, "0\t{\"step\":%zu,\"loss\":1}\n", i);
    write_file("8.metrics", buf, len);
    free(buf);
    uint64_t off = 0;
    cJSON *o = http_metric_series(tmpdir, 8, &off);
    cJSON *pts = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "series"), "loss"),
        "0");
    int count = cJSON_GetArraySize(pts);
    print_message("points kept: %d of %zu\n", count, n);
    assert_true(count <= HTTP_METRIC_POINTS && count > HTTP_METRIC_POINTS / 2);
    cJSON *last = cJSON_GetArrayItem(pts, count - 1);
    assert_int_equal((int) cJSON_GetArrayItem(last, 0)->valuedouble, (int) n - 1);
    cJSON *first = cJSON_GetArrayItem(pts, 0);
    assert_true(cJSON_GetArrayItem(first, 0)->valuedouble < 4);
    cJSON_Delete(o);
}

static int
setup(void **state)
{
    (void) state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/wslq-http-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---------- the nodes' JSON, each node rendered again only when it changed ---------- */

/* What the dashboard served before the cache: every node through json_node(). */
static char *
nodes_plain(const Wslq__NodeInfo *const *nodes, size_t n)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, json_node(nodes[i]));
    char *text = cJSON_PrintUnformatted(arr);
    cJSON_Delete(arr);
    return text;
}

/* The cached rendering equals the plain one; returns how many nodes it rendered again. */
static uint64_t
assert_nodes_render(http_nodecache_t *c, const Wslq__NodeInfo *const *nodes, size_t n)
{
    uint64_t before = c->rendered;
    char *got = http_nodes_render(c, nodes, n);
    char *want = nodes_plain(nodes, n);
    assert_string_equal(got, want);
    free(got);
    cJSON_free(want);
    return c->rendered - before;
}

typedef struct {
    Wslq__NodeInfo info;
    Wslq__GpuInfo gpu[2], *gpus[2];
    char name[16];
} tnode_t;

static void
tnode_init(tnode_t *t, int i)
{
    wslq__node_info__init(&t->info);
    snprintf(t->name, sizeof t->name, "n%d", i);
    t->info.name = t->name;
    t->info.state = "idle";
    t->info.cpus = 16;
    t->info.last_seen_ms = 1764700000000 + i;
    for (int g = 0; g < 2; g++) {
        wslq__gpu_info__init(&t->gpu[g]);
        t->gpu[g].index = (uint32_t) g;
        t->gpu[g].uuid = "GPU-x";
        t->gpu[g].mem_total_mb = 24576;
        t->gpu[g].temp_c = 40;
        t->gpus[g] = &t->gpu[g];
    }
    t->info.gpus = t->gpus;
    t->info.n_gpus = 2;
}

static void
test_nodes_cache(void **state)
{
    (void) state;
    enum { N = 5 };
    tnode_t t[N];
    const Wslq__NodeInfo *nodes[N];
    for (int i = 0; i < N; i++) {
        tnode_init(&t[i], i);
        nodes[i] = &t[i].info;
    }
    http_nodecache_t c = {0};
    assert_int_equal(assert_nodes_render(&c, nodes, N), N);
    /* nothing changed, or only last_seen (a heartbeat): nothing rendered again */
    assert_int_equal(assert_nodes_render(&c, nodes, N), 0);
    for (int i = 0; i < N; i++)
        t[i].info.last_seen_ms += 1000;
    t[4].info.last_seen_ms = 0; /* never seen: nulls */
    assert_int_equal(assert_nodes_render(&c, nodes, N), 0);
    /* a node's state, a GPU's metrics, a drain: that node only, and it shows */
    t[1].info.state = "lost";
    assert_int_equal(assert_nodes_render(&c, nodes, N), 1);
    t[2].gpu[1].job_id = 9;
    assert_int_equal(assert_nodes_render(&c, nodes, N), 1);
    /* a heartbeat's GPU metrics go in without rendering the node again; unreported: null */
    t[2].gpu[1].temp_c = 71;
    t[2].gpu[0].util_pct = 100;
    t[2].gpu[0].mem_used_mb = 1234;
    t[1].gpu[0].power_w = 250;
    t[1].gpu[1].temp_c = -1;
    t[1].gpu[1].mem_other_mb = 77;
    assert_int_equal(assert_nodes_render(&c, nodes, N), 0);
    t[2].gpu[0].mem_total_mb = 48000;
    assert_int_equal(assert_nodes_render(&c, nodes, N), 1);
    t[3].info.drained = 1;
    t[3].info.drain_reason = "disk \"full\"";
    assert_int_equal(assert_nodes_render(&c, nodes, N), 1);
    /* an attribute named like the pair being spliced does not confuse it */
    Wslq__NodeAttr attr = WSLQ__NODE_ATTR__INIT, *attrs[] = {&attr};
    attr.key = "last_seen_ms";
    attr.value = "\"last_seen_ms\":null,\"last_seen_time\":null,\"mem_used_mb\":0,\"temp_c\":null,"
                 "\"util_pct\":null,\"power_w\":null,\"mem_other_mb\":0";
    t[0].info.attrs = attrs;
    t[0].info.n_attrs = 1;
    assert_int_equal(assert_nodes_render(&c, nodes, N), 1);
    /* a node gone, the others in new places; then one more */
    const Wslq__NodeInfo *fewer[] = {nodes[4], nodes[0], nodes[2]};
    assert_nodes_render(&c, fewer, 3);
    assert_int_equal(c.n, 3);
    assert_nodes_render(&c, nodes, N);
    assert_int_equal(assert_nodes_render(&c, nodes, 0), 0);
    http_nodecache_free(&c);
    /* without a cache */
    char *got = http_nodes_render(NULL, nodes, N), *want = nodes_plain(nodes, N);
    assert_string_equal(got, want);
    free(got);
    cJSON_free(want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_jobs_query),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_listen),
        cmocka_unit_test(test_prom),
        cmocka_unit_test(test_log_chunk),
        cmocka_unit_test(test_metric_series),
        cmocka_unit_test(test_many_points_thinned),
        cmocka_unit_test(test_nodes_cache),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
