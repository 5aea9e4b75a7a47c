/* Fuzz target: one ZeroMQ frame as it comes off a socket, through wire_decode() (size check,
 * protobuf-c unpack, wire_validate()). The input is the frame's bytes.
 *
 * Checked beyond "no crash, no leak, no undefined behaviour":
 * - a refused frame says why, with code WQ_EPROTO or WQ_ELIMIT (wire.h's contract);
 * - a frame that decodes still validates, and re-encoding it gives a frame that decodes
 *   again to the same body and request id: what one program accepts, the next accepts too;
 * - a submitted spec that passed stays valid after jobspec_apply_defaults(), as the scheduler
 *   applies them before storing it (every later QueueReply and ShowReply carries the stored
 *   spec, and clients validate those). */
#include <stdlib.h>
#include <string.h>

#include "proto/jobspec.h"
#include "proto/wire.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wq_error_t err = {0};
    Wslq__Envelope *env = wire_decode(data, size, &err);
    if (env == NULL) {
        FUZZ_CHECK(err.code == WQ_EPROTO || err.code == WQ_ELIMIT);
        FUZZ_CHECK(err.text[0] != '\0');
        return 0;
    }
    FUZZ_CHECK_OK(wire_validate(env, &err), err);

    size_t len = 0;
    uint8_t *buf = wire_encode(env, &len);
    Wslq__Envelope *again = wire_decode(buf, len, &err);
    FUZZ_CHECK_OK(again != NULL ? 0 : -1, err);
    FUZZ_CHECK(again->body_case == env->body_case);
    FUZZ_CHECK(again->request_id == env->request_id);
    wire_free(&again);
    free(buf);

    if (env->body_case == WSLQ__ENVELOPE__BODY_SUBMIT) {
        jobspec_apply_defaults(env->submit->spec);
        FUZZ_CHECK_OK(wire_validate_spec(env->submit->spec, &err), err);
    }
    wire_free(&env);
    FUZZ_CHECK(env == NULL);
    return 0;
}
