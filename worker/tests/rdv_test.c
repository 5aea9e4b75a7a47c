/* rdv: the rendezvous line protocol over a real Unix socket, with a fake scheduler behind
 * the send callback: PUT/GET/WAIT become KvRequests with the job's id, replies and errors
 * come back as OK / VAL / NONE / ERR lines, malformed requests are refused. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>

#include "proto/wire.h"
#include "worker/rdv.h"

static char dir[32], path[64];
static rdv_t *rdv;
static Wslq__KvRequest last; /* copy of the last request sent (key/value point to statics) */
static uint64_t last_id;
static char last_key[300], last_val[300];
static int sent;

static int
fake_send(void *ctx, Wslq__Envelope *env)
{
    (void) ctx;
    assert_int_equal(env->body_case, WSLQ__ENVELOPE__BODY_KV);
    last = *env->kv;
    last_id = env->request_id;
    snprintf(last_key, sizeof last_key, "%s", env->kv->key);
    if (env->kv->value.len > 0) /* data is NULL for an empty value */
        memcpy(last_val, env->kv->value.data, env->kv->value.len);
    last_val[env->kv->value.len] = '\0';
    sent++;
    return 0;
}

/* Run the relay's side for a few turns (bounded). */
static void
pump(void)
{
    for (int i = 0; i < 5; i++) {
        zmq_pollitem_t items[16];
        size_t n = rdv_pollitems(rdv, items, 16);
        if (zmq_poll(items, (int) n, 20) > 0)
            rdv_handle(rdv, items, n);
    }
}

static int
client(void)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    assert_int_equal(connect(fd, (struct sockaddr *) &a, sizeof a), 0);
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void
say(int fd, const char *s, size_t n)
{
    assert_int_equal(write(fd, s, n), (ssize_t) n);
    pump();
}

static char *
hear(int fd)
{
    static char buf[512];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static void
answer(int found, const char *value)
{
    Wslq__KvReply kr = WSLQ__KV_REPLY__INIT;
    kr.found = found;
    if (value) {
        kr.value.data = (uint8_t *) value;
        kr.value.len = strlen(value);
    }
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = last_id;
    env.body_case = WSLQ__ENVELOPE__BODY_KV_REPLY;
    env.kv_reply = &kr;
    assert_int_equal(rdv_reply(rdv, &env), 1);
    assert_int_equal(rdv_reply(rdv, &env), 0); /* answered once */
}

static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof dir, "/tmp/wslq-rdv-XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/rdv.sock", dir);
    rdv = rdv_new(fake_send, NULL);
    wq_error_t err = {0};
    return rdv_open(rdv, 42, 3, path, &err);
}

static int
teardown(void **state)
{
    (void) state;
    rdv_destroy(&rdv);
    assert_int_equal(access(path, F_OK), -1); /* socket file removed */
    return rmdir(dir);
}

static void
test_put_get_wait(void **state)
{
    (void) state;
    int fd = client();
    pump(); /* accept */
    say(fd, "PUT nccl-id 5\nab\ncd", 19);
    assert_int_equal(sent, 1);
    assert_int_equal(last.job_id, 42);
    assert_int_equal(last.attempt, 3);
    assert_int_equal(last.op, WSLQ__KV_REQUEST__OP__PUT);
    assert_string_equal(last_key, "nccl-id");
    assert_string_equal(last_val, "ab\ncd");
    answer(1, NULL);
    assert_string_equal(hear(fd), "OK\n");

    say(fd, "GET nccl-id\n", 12);
    assert_int_equal(last.op, WSLQ__KV_REQUEST__OP__GET);
    answer(1, "ab\ncd");
    assert_string_equal(hear(fd), "VAL 5\nab\ncd");

    say(fd, "GET missing\n", 12);
    answer(0, NULL);
    assert_string_equal(hear(fd), "NONE\n");

    say(fd, "WAIT later 250\n", 15);
    assert_int_equal(last.op, WSLQ__KV_REQUEST__OP__WAIT);
    assert_int_equal(last.timeout_ms, 250);
    answer(0, NULL);
    assert_string_equal(hear(fd), "ERR timed out\n");

    say(fd, "GET k\n", 6); /* the scheduler refuses: its text comes back */
    Wslq__ErrorReply er = WSLQ__ERROR_REPLY__INIT;
    er.code = WQ_ELIMIT;
    er.text = "too many keys for job 42";
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = last_id;
    env.body_case = WSLQ__ENVELOPE__BODY_ERROR;
    env.error = &er;
    assert_int_equal(rdv_reply(rdv, &env), 1);
    assert_string_equal(hear(fd), "ERR too many keys for job 42\n");
    close(fd);
    pump();
}

static void
test_malformed(void **state)
{
    (void) state;
    const char *bad[] = {"FROB x\n", "PUT k 99999999\n", "GET\n", "WAIT k\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int before = sent;
        int fd = client();
        pump();
        say(fd, bad[i], strlen(bad[i]));
        assert_int_equal(sent, before);
        assert_string_equal(hear(fd), "ERR malformed request\n");
        assert_string_equal(hear(fd), ""); /* and closed */
        close(fd);
    }
    /* a peer vanishing with a request pending is dropped at the answer */
    int fd = client();
    pump();
    say(fd, "WAIT k 1000\n", 12);
    close(fd);
    answer(1, "v");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_wait),
        cmocka_unit_test(test_malformed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
