/* The wire: the only code that turns network bytes into messages.
 *
 * wire_decode() checks the frame size before unpacking and the meaning after (version,
 * body present, string lengths, argv/env counts, GPU counts, enum ranges). Everything past
 * it handles a valid Wslq__Envelope. Frames go over ZeroMQ: a DEALER (CLI, worker) sends
 * one frame; the scheduler's ROUTER sees [identity][frame]. */
#ifndef WSLQ_WIRE_H
#define WSLQ_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/limits.h" /* WIRE_MAX_*: every limit a message is checked against */
#include "proto/wslq.pb-c.h"

#define WIRE_PROTO_MIN 1 /* oldest version accepted */
/* The version this build speaks: a plain number (`wslq --version` prints it as written). */
#define WIRE_PROTO_CUR 1

/* JobState values, UNSPECIFIED to OUT_OF_MEMORY: the size of arrays indexed by state. Not
 * every value below it is a state (9 and 10 are not yet): loops skip !wire_state_known. */
#define WIRE_JOB_STATES (WSLQ__JOB_STATE__OUT_OF_MEMORY + 1)

/* 1 if state is a JobState this build names (not UNSPECIFIED). */
int wire_state_known(int state);

/* Decode and validate one frame. Returns a message the caller owns (wire_free), or NULL
 * with *err (code WQ_EPROTO or WQ_ELIMIT) naming the first problem found. */
Wslq__Envelope *wire_decode(const void *data, size_t len, wq_error_t *err);

/* Validate an already built or unpacked message: 0 or -1 with *err. */
int wire_validate(const Wslq__Envelope *env, wq_error_t *err);

/* Validate a job spec alone (the CLI checks its own before sending). */
int wire_validate_spec(const Wslq__JobSpec *spec, wq_error_t *err);

/* A node tag or --constraint word: 1 to WIRE_MAX_TAG of [A-Za-z0-9_.-]. 0, or -1 with *err
 * ("<what>: 'x y' is not a tag (letters, digits, _ . -)"). */
int wire_check_tag(const char *s, const char *what, wq_error_t *err);

/* A --container image reference: "" or up to WIRE_MAX_IMAGE of [A-Za-z0-9._-/:@], starting
 * with a letter or digit (never read as an option of podman or docker). 0, or -1 with *err. */
int wire_check_container(const char *image, wq_error_t *err);

/* Free a decoded message and NULL the pointer. NULL-safe. */
void wire_free(Wslq__Envelope **env_p);

/* Pack 'env' (its proto_version is set to WIRE_PROTO_CUR). Caller owns the buffer (free). */
uint8_t *wire_encode(Wslq__Envelope *env, size_t *len);

/* Send 'env' as one frame on a DEALER socket, or as [identity][frame] on a ROUTER when
 * 'identity' is non-NULL. flags: ZMQ_DONTWAIT or 0. Returns 0 or -1 with *err. */
int wire_send(void *sock,
              const void *identity,
              size_t identity_len,
              Wslq__Envelope *env,
              int flags,
              wq_error_t *err);

/* Receive one message. On a ROUTER pass 'identity' (a buffer of at least 256 bytes) and
 * get its length in *identity_len. Extra frames are drained and rejected.
 * Returns a message the caller owns, or NULL with *err (WQ_EPROTO for bad frames,
 * WQ_EBUSY when ZMQ_DONTWAIT found nothing, WQ_ESYS on socket errors). */
Wslq__Envelope *
wire_recv(void *sock, void *identity, size_t *identity_len, int flags, wq_error_t *err);

/* As wire_recv, and the User-Id the scheduler's ZAP handler gave the connection the message
 * came on, copied to user_id ("" when the socket has no security mechanism). */
Wslq__Envelope *wire_recv_user(void *sock,
                               void *identity,
                               size_t *identity_len,
                               char *user_id,
                               size_t user_id_size,
                               int flags,
                               wq_error_t *err);

/* The scheduler host's user socket (a Unix stream, no ZeroMQ): each message is a 4-byte
 * big-endian length, then that many bytes of one encoded Envelope (1 to WIRE_MAX_FRAME). */
#define WIRE_STREAM_HDR 4

/* Write the length header of a frame of len bytes. */
void wire_stream_header(uint8_t hdr[WIRE_STREAM_HDR], size_t len);

/* Look at the bytes received so far (buf, have): 0 when the header or body is not complete
 * yet, 1 with *body_len when a whole frame is there (header + *body_len bytes), -1 with *err
 * (WQ_ELIMIT, one line) when the header announces 0 bytes or more than WIRE_MAX_FRAME. */
int wire_stream_frame(const uint8_t *buf, size_t have, size_t *body_len, wq_error_t *err);

/* "PENDING", "RUNNING", ...; "UNKNOWN" out of range. */
const char *wire_state_name(Wslq__JobState state);

/* Parse a state name (any case; "CD", "R", "PD" short forms as in Slurm). 0 if unknown. */
Wslq__JobState wire_state_parse(const char *name);

/* 1 for COMPLETED, FAILED, CANCELLED, TIMEOUT, NODE_FAIL, OUT_OF_MEMORY. */
int wire_state_is_final(Wslq__JobState state);

/* Send an ErrorReply carrying err->code and err->text in answer to 'request_id'. */
int wire_send_error(void *sock,
                    const void *identity,
                    size_t identity_len,
                    uint64_t request_id,
                    const wq_error_t *err);

/* Set a protobuf string field to a malloc'd copy of v (NULL = ""), freeing what it held
 * unless that is protobuf-c's shared empty string; protobuf-c frees the copy with free()
 * when the message is freed as unpacked. */
void wire_set_str(char **field, const char *v);

#endif
