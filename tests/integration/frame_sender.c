/* Sends malformed frames to a scheduler and checks each gets an ErrorReply (or is dropped)
 * while a valid request is still answered. Usage: wslq-frame-sender ENDPOINT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

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

int
main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: wslq-frame-sender ENDPOINT\n");
        return 2;
    }
    void *ctx = zmq_ctx_new();
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    zmq_connect(sock, argv[1]);

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

    /* 6. An oversized frame makes the scheduler drop the connection, nothing more. */
    size_t big = WIRE_MAX_FRAME + 1024;
    uint8_t *huge = calloc(1, big);
    zmq_send(sock, huge, big, 0);
    free(huge);
    r = reply(sock);
    expect(r == NULL || r->body_case == WSLQ__ENVELOPE__BODY_ERROR, "oversized frame dropped");
    wire_free(&r);

    free(good);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
