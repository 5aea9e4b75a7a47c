/* Sends malformed frames to a scheduler and checks each gets an ErrorReply while a valid
 * request is still answered.
 *
 *   wslq-frame-sender ENDPOINT             random, truncated, wrong-version, multi-frame
 *   wslq-frame-sender ENDPOINT oversized   the frame size limit, at and just past it
 *
 * The oversized case sends frames that would decode if anyone unpacked them (a valid
 * QueueRequest padded with an unknown field, which protobuf skips), so "unpacked and
 * rejected" cannot pass for "dropped": a frame of exactly WIRE_MAX_FRAME bytes is answered
 * with a QueueReply; one byte more and libzmq closes the connection at the frame's length
 * header (the scheduler sets ZMQ_MAXMSGSIZE = WIRE_MAX_FRAME, plus WIRE_CURVE_OVERHEAD with
 * CURVE, which counts the encrypted size), seen here as a disconnect on
 * this socket's monitor and no reply. It sends one junk frame before and one after, so the
 * caller (test_bad_input.py) can check that the scheduler's count of frames it refused
 * (wslq_wire_protocol_errors_total) grew by exactly those two: the oversized frame never
 * reached the scheduler's code. Breaks this catches: ZMQ_MAXMSGSIZE not set in
 * scheduler/sched.c (the frame reaches wire_decode and gets an ErrorReply "exceeds the
 * limit"), and that with wire_decode's size check removed too (a QueueReply).
 *
 *   wslq-frame-sender ENDPOINT intruder plain|unknown|wrong-server|creds NODE
 *
 * A peer the scheduler must not serve: without CURVE (plain), with a key nobody enrolled
 * (unknown: right server key), pinning another server's key (wrong-server), or with the keys
 * of WSLQ_CREDENTIALS as they are (creds: a user posing as a node, or a node as a user). It
 * registers
 * as node NODE, asks for the queue, job 1, its log and its key/value store, and submits a job;
 * then prints one line per reply within 3 s ("reply error: TEXT" or "reply KIND") and
 * "handshake refused" / "handshake failed" when the monitor saw that. test_security.py
 * checks none of it got anything but a refusal.
 *
 * The scheduler's key comes from the credentials file in WSLQ_CREDENTIALS; every mode but
 * intruder uses those credentials to talk CURVE (without the variable: no CURVE, for an
 * --insecure scheduler). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "proto/keys.h"
#include "proto/wire.h"

static int failures;

static void
expect(int cond, const char *what)
{
    printf("%s: %s\n", cond ? "ok" : "FAIL", what);
    if (!cond)
        failures++;
}

/* Wait up to 3 s for one reply frame; returns it decoded (caller frees) or NULL. */
static Wslq__Envelope *
reply(void *sock)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 3000) <= 0)
        return NULL;
    return wire_recv(sock, NULL, NULL, 0, NULL);
}

static void
send_raw(void *sock, const void *buf, size_t len)
{
    zmq_send(sock, buf, len, 0);
}

static size_t
put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    do {
        p[n++] = (uint8_t) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* An unknown field number: protobuf-c keeps such a field aside and the validator ignores it. */
#define PAD_FIELD 4095

/* A QueueRequest envelope (request_id id) of exactly total bytes: the packed request followed
 * by one unknown length-delimited field of padding. Caller frees. */
static uint8_t *
padded_request(uint64_t id, size_t total)
{
    Wslq__QueueRequest q = WSLQ__QUEUE_REQUEST__INIT;
    q.user = "someone";
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = id;
    env.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
    env.queue = &q;
    size_t len;
    uint8_t *head = wire_encode(&env, &len);
    uint8_t key[10], lenv[10];
    size_t nk = put_varint(key, (PAD_FIELD << 3) | 2);
    /* The padding's length varint counts in the total: find the width that agrees. */
    size_t pad = 0, nl = 0;
    for (size_t w = 1; w <= 5; w++) {
        pad = total - len - nk - w;
        nl = put_varint(lenv, pad);
        if (nl == w)
            break;
    }
    if (len + nk + nl + pad != total)
        abort();
    uint8_t *buf = calloc(1, total);
    memcpy(buf, head, len);
    memcpy(buf + len, key, nk);
    memcpy(buf + len + nk, lenv, nl);
    memset(buf + len + nk + nl, 'p', pad);
    free(head);
    return buf;
}

/* Wait up to timeout_ms for either a reply on sock or a disconnect event on mon.
 * Returns 1 for a disconnect (and *r NULL), 0 for a reply (*r set), -1 for neither. */
static int
reply_or_disconnect(void *sock, void *mon, int timeout_ms, Wslq__Envelope **r)
{
    *r = NULL;
    zmq_pollitem_t it[2] = {{sock, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
    for (int waited = 0; waited < timeout_ms; waited += 100) {
        if (zmq_poll(it, 2, 100) <= 0)
            continue;
        if (it[0].revents & ZMQ_POLLIN) {
            *r = wire_recv(sock, NULL, NULL, 0, NULL);
            return 0;
        }
        if (it[1].revents & ZMQ_POLLIN) {
            zmq_msg_t ev;
            zmq_msg_init(&ev);
            zmq_msg_recv(&ev, mon, 0);
            uint16_t event = 0;
            if (zmq_msg_size(&ev) >= 2)
                memcpy(&event, zmq_msg_data(&ev), 2);
            zmq_msg_close(&ev);
            char addr[256];
            zmq_recv(mon, addr, sizeof addr, 0); /* the endpoint frame */
            if (event == ZMQ_EVENT_DISCONNECTED)
                return 1;
        }
    }
    return -1;
}

static void
send_junk(void *sock, const char *what)
{
    uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    send_raw(sock, junk, sizeof junk);
    Wslq__Envelope *r = NULL;
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 20000) > 0) /* generous: an ASan build on two busy cores */
        r = wire_recv(sock, NULL, NULL, 0, NULL);
    expect(r && r->body_case == WSLQ__ENVELOPE__BODY_ERROR, what);
    wire_free(&r);
}

static void
oversized(void *ctx, void *sock)
{
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    zmq_socket_monitor(sock, "inproc://frame-sender-monitor", ZMQ_EVENT_DISCONNECTED);
    zmq_connect(mon, "inproc://frame-sender-monitor");

    send_junk(sock, "junk frame before the limit test refused (counted once)");

    /* At the limit: served. */
    uint8_t *at = padded_request(8, WIRE_MAX_FRAME);
    zmq_send(sock, at, WIRE_MAX_FRAME, 0);
    free(at);
    Wslq__Envelope *r = NULL;
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, 30000) > 0) /* 8 MiB through an ASan build on a busy machine */
        r = wire_recv(sock, NULL, NULL, 0, NULL);
    expect(r && r->body_case == WSLQ__ENVELOPE__BODY_QUEUE_REPLY && r->request_id == 8,
           "a valid frame of exactly WIRE_MAX_FRAME bytes is answered");
    wire_free(&r);

    /* One byte past it: libzmq drops the connection before the scheduler reads the frame. */
    uint8_t *past = padded_request(9, WIRE_MAX_FRAME + 1);
    zmq_send(sock, past, WIRE_MAX_FRAME + 1, 0);
    free(past);
    int got = reply_or_disconnect(sock, mon, 30000, &r);
    if (got == 0)
        printf("oversized frame: got a reply: %s\n", !r ? "(undecodable)"
                                                     : r->body_case == WSLQ__ENVELOPE__BODY_ERROR
                                                         ? r->error->text
                                                         : "a QueueReply: it was unpacked");
    expect(got == 1, "a frame of WIRE_MAX_FRAME + 1 bytes: connection dropped, no reply");
    wire_free(&r);
    r = reply(sock); /* nothing may follow the drop either */
    expect(r == NULL, "no reply to the oversized frame after the drop");
    wire_free(&r);

    /* The socket reconnects; the scheduler serves it. */
    uint8_t *small = padded_request(10, 4096);
    zmq_send(sock, small, 4096, 0);
    free(small);
    r = NULL;
    if (zmq_poll(&it, 1, 30000) > 0)
        r = wire_recv(sock, NULL, NULL, 0, NULL);
    expect(r && r->body_case == WSLQ__ENVELOPE__BODY_QUEUE_REPLY && r->request_id == 10,
           "a valid request is answered after the reconnect");
    wire_free(&r);

    send_junk(sock, "junk frame after the limit test refused (counted once)");
    zmq_socket_monitor(sock, NULL, 0);
    zmq_close(mon);
}

static void
send_env(void *sock, Wslq__Envelope *env, uint64_t id)
{
    env->request_id = id;
    wire_send(sock, NULL, 0, env, 0, NULL);
}

static int
intruder(void *ctx, const char *endpoint, const char *mode, const char *node)
{
    keys_creds_t real = {0}, me = {0};
    wq_error_t err = {0};
    const char *path = getenv("WSLQ_CREDENTIALS");
    if (strcmp(mode, "plain") != 0 && (path == NULL || keys_load(path, &real, &err) < 0)) {
        fprintf(stderr, "intruder %s: need WSLQ_CREDENTIALS for the server key: %s\n", mode,
                err.text);
        return 2;
    }
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    void *mon = NULL;
    if (strcmp(mode, "creds") == 0) {
        me = real;
        if (keys_client_socket(sock, &me, &err) < 0)
            return 2;
        mon = keys_watch(ctx, sock);
    } else if (strcmp(mode, "plain") != 0) {
        if (keys_generate(&me, &err) < 0)
            return 2;
        if (strcmp(mode, "unknown") == 0) {
            snprintf(me.server, sizeof me.server, "%s", real.server);
        } else {
            keys_creds_t other;
            if (keys_generate(&other, &err) < 0)
                return 2;
            snprintf(me.server, sizeof me.server, "%s", other.public_);
        }
        if (keys_client_socket(sock, &me, &err) < 0)
            return 2;
        mon = keys_watch(ctx, sock);
    }
    zmq_connect(sock, endpoint);

    Wslq__Register reg = WSLQ__REGISTER__INIT;
    reg.name = (char *) node;
    reg.hostname = (char *) node;
    reg.ip = "127.0.0.1";
    reg.cpus = 64;
    reg.mem_mb = 1 << 20;
    reg.version = "intruder";
    reg.heartbeat_ms = 1000;
    Wslq__Envelope e = WSLQ__ENVELOPE__INIT;
    e.body_case = WSLQ__ENVELOPE__BODY_REG;
    e.reg = &reg;
    send_env(sock, &e, 1);

    Wslq__QueueRequest q = WSLQ__QUEUE_REQUEST__INIT;
    q.all = 1;
    Wslq__Envelope eq = WSLQ__ENVELOPE__INIT;
    eq.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
    eq.queue = &q;
    send_env(sock, &eq, 2);

    Wslq__ShowRequest sh = WSLQ__SHOW_REQUEST__INIT;
    sh.job_id = 1;
    Wslq__Envelope es = WSLQ__ENVELOPE__INIT;
    es.body_case = WSLQ__ENVELOPE__BODY_SHOW;
    es.show = &sh;
    send_env(sock, &es, 3);

    Wslq__LogsRequest lg = WSLQ__LOGS_REQUEST__INIT;
    lg.job_id = 1;
    Wslq__Envelope el = WSLQ__ENVELOPE__INIT;
    el.body_case = WSLQ__ENVELOPE__BODY_LOGS;
    el.logs = &lg;
    send_env(sock, &el, 4);

    Wslq__KvRequest kv = WSLQ__KV_REQUEST__INIT;
    kv.job_id = 1;
    kv.op = WSLQ__KV_REQUEST__OP__GET;
    kv.key = "MASTER_ADDR";
    Wslq__Envelope ek = WSLQ__ENVELOPE__INIT;
    ek.body_case = WSLQ__ENVELOPE__BODY_KV;
    ek.kv = &kv;
    send_env(sock, &ek, 5);

    char *argv[] = {"true"};
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv;
    spec.n_argv = 1;
    spec.name = "intruder";
    spec.user = "alice";
    spec.cwd = "/";
    spec.nodes = 1;
    Wslq__SubmitRequest sub = WSLQ__SUBMIT_REQUEST__INIT;
    sub.spec = &spec;
    Wslq__Envelope eb = WSLQ__ENVELOPE__INIT;
    eb.body_case = WSLQ__ENVELOPE__BODY_SUBMIT;
    eb.submit = &sub;
    if (strcmp(mode, "creds") != 0) /* an enrolled user's submit is no intrusion */
        send_env(sock, &eb, 6);

    int64_t end = 3000;
    for (int waited = 0; waited < end; waited += 100) {
        int hs = keys_handshake_event(mon);
        if (hs == KEYS_HS_REFUSED)
            printf("handshake refused\n");
        else if (hs != KEYS_HS_NONE)
            printf("handshake failed\n");
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 100) <= 0)
            continue;
        Wslq__Envelope *r = wire_recv(sock, NULL, NULL, 0, NULL);
        if (r == NULL)
            printf("reply undecodable\n");
        else if (r->body_case == WSLQ__ENVELOPE__BODY_ERROR)
            printf("reply error: %s\n", r->error->text);
        else
            printf("reply body %d\n", (int) r->body_case);
        wire_free(&r);
    }
    fflush(stdout);
    if (mon != NULL)
        zmq_close(mon);
    zmq_close(sock);
    return 0;
}

int
main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[2], "intruder") == 0) {
        void *ctx = zmq_ctx_new();
        int rc = intruder(ctx, argv[1], argv[3], argv[4]);
        zmq_ctx_term(ctx);
        return rc;
    }
    if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "oversized") != 0)) {
        fprintf(stderr, "usage: wslq-frame-sender ENDPOINT [oversized]\n"
                        "       wslq-frame-sender ENDPOINT intruder "
                        "plain|unknown|wrong-server|creds NODE\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    const char *path = getenv("WSLQ_CREDENTIALS");
    if (path != NULL && path[0] != '\0') {
        keys_creds_t c;
        wq_error_t err = {0};
        if (keys_load(path, &c, &err) < 0 || keys_client_socket(sock, &c, &err) < 0) {
            fprintf(stderr, "wslq-frame-sender: %s\n", err.text);
            return 2;
        }
    }
    zmq_connect(sock, argv[1]);
    if (argc == 3) {
        oversized(ctx, sock);
        zmq_close(sock);
        zmq_ctx_term(ctx);
        printf("%d failures\n", failures);
        return failures ? 1 : 0;
    }

    /* A valid QueueRequest, packed, to cut and corrupt. */
    Wslq__QueueRequest q = WSLQ__QUEUE_REQUEST__INIT;
    Wslq__JobState states[] = {WSLQ__JOB_STATE__PENDING};
    q.states = states;
    q.n_states = 1;
    q.user = "someone";
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.request_id = 7;
    env.body_case = WSLQ__ENVELOPE__BODY_QUEUE;
    env.queue = &q;
    size_t len;
    uint8_t *good = wire_encode(&env, &len);

    /* 1. Garbage: each answered with an ErrorReply. */
    srand(11);
    int errors = 0;
    for (int i = 0; i < 50; i++) {
        uint8_t junk[300];
        size_t n = 1 + (size_t) (rand() % (int) sizeof junk);
        for (size_t k = 0; k < n; k++)
            junk[k] = (uint8_t) rand();
        send_raw(sock, junk, n);
        Wslq__Envelope *r = reply(sock);
        if (r && r->body_case == WSLQ__ENVELOPE__BODY_ERROR)
            errors++;
        else if (r && r->body_case == WSLQ__ENVELOPE__BODY_QUEUE_REPLY)
            errors++; /* random bytes that happen to decode as a valid request */
        wire_free(&r);
    }
    expect(errors == 50, "every random frame was answered");

    /* 2. Truncations of a valid frame. */
    errors = 0;
    int sent = 0;
    for (size_t cut = 1; cut < len; cut++) {
        send_raw(sock, good, cut);
        sent++;
        Wslq__Envelope *r = reply(sock);
        if (r && (r->body_case == WSLQ__ENVELOPE__BODY_ERROR ||
                  r->body_case == WSLQ__ENVELOPE__BODY_QUEUE_REPLY))
            errors++;
        wire_free(&r);
    }
    expect(errors == sent, "every truncated frame was answered");

    /* 3. Version 0 and a future version: an error naming the version. */
    for (uint32_t v = 0; v <= 9; v += 9) {
        env.proto_version = v;
        size_t n = wslq__envelope__get_packed_size(&env);
        uint8_t *buf = malloc(n);
        wslq__envelope__pack(&env, buf);
        send_raw(sock, buf, n);
        free(buf);
        Wslq__Envelope *r = reply(sock);
        expect(r && r->body_case == WSLQ__ENVELOPE__BODY_ERROR &&
                   strstr(r->error->text, "protocol version") != NULL,
               "wrong protocol version refused with a reason");
        wire_free(&r);
    }

    /* 4. Two frames in one message: refused. */
    zmq_send(sock, good, len, ZMQ_SNDMORE);
    zmq_send(sock, good, len, 0);
    Wslq__Envelope *r = reply(sock);
    expect(r && r->body_case == WSLQ__ENVELOPE__BODY_ERROR, "multi-frame message refused");
    wire_free(&r);

    /* 5. The valid request is still served. */
    send_raw(sock, good, len);
    r = reply(sock);
    expect(r && r->body_case == WSLQ__ENVELOPE__BODY_QUEUE_REPLY && r->request_id == 7,
           "a valid request is answered after all that");
    wire_free(&r);

    free(good);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
