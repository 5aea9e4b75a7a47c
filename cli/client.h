/* Request/reply with the scheduler over a ZeroMQ DEALER.
 *
 * One client per process. Each call sends one Envelope with a fresh random request_id and
 * waits for the reply carrying the same id; replies to earlier, abandoned calls are dropped.
 * An ErrorReply becomes a failure whose text is the server's line. */
#ifndef WSLQ_CLI_CLIENT_H
#define WSLQ_CLI_CLIENT_H

#include "cli/cli.h"
#include "proto/wire.h"

typedef struct client client_t;

/* Connect (lazily: ZeroMQ connects in the background) to ctx->scheduler. Returns NULL with
 * *err for an address ZeroMQ cannot parse. Caller owns the result (client_destroy).
 * A scheduler address unix:PATH (from --scheduler, WSLQ_SCHEDULER or a config file) is the
 * scheduler host's user socket: a plain Unix stream connected here (no ZeroMQ context, no
 * keys; the scheduler knows us by uid), NULL with "cannot reach scheduler at unix:PATH
 * (why); is wslq-scheduler running?" when it cannot be. */
client_t *client_new(const cli_ctx_t *ctx, wq_error_t *err);

/* Send 'req' and wait ctx->timeout_ms + extra_wait_ms for the reply, which must have body
 * 'expect'. Returns the reply (caller owns it: wire_free), or NULL with *err:
 *   the server's code and text for an ErrorReply;
 *   WQ_ETIMEDOUT "cannot reach scheduler at ADDR (timed out after N s); is wslq-scheduler
 *   running?" when nothing came back in time;
 *   WQ_EPROTO for a reply that does not decode or is of the wrong kind. */
Wslq__Envelope *client_call(client_t *c,
                            Wslq__Envelope *req,
                            Wslq__Envelope__BodyCase expect,
                            int extra_wait_ms,
                            wq_error_t *err);

/* Ask for the nodes (all, or the one named; NULL = all). Returns the NodesReply envelope
 * (caller owns it: wire_free) or NULL with *err, as client_call. */
Wslq__Envelope *client_nodes(client_t *c, const char *name, wq_error_t *err);

/* The client's DEALER (NULL over unix:PATH). */
void *client_socket(client_t *c);

/* To wait for replies together with other things (wslq top): send without waiting for the
 * reply (req->request_id as the caller set it; 0 or -1), take one message that has arrived
 * (NULL: none now, or a bad one), and the zmq_pollitem_t that is readable when one may have. */
int client_post(client_t *c, Wslq__Envelope *req);
Wslq__Envelope *client_take(client_t *c);
typedef struct zmq_pollitem_t zmq_pollitem_t;
void client_pollitem(client_t *c, zmq_pollitem_t *item);

/* Close the socket (linger 0) and NULL *cp. NULL-safe. A ZeroMQ context is left running for
 * client_exit; the one left by the client destroyed before, if any, is ended here. */
void client_destroy(client_t **cp);

/* The end of a wslq process that has used ZeroMQ: flush stdout and stderr and _exit(rc)
 * without ending the context client_destroy left. Ending it (zmq_ctx_term) waits for its I/O
 * and reaper threads to close the connection and stop: about a tenth of a command over TCP
 * (bench/README.md). The kernel closes the connection at the exit just the same, and with
 * linger 0 nothing unsent would have gone out either way. Returns rc when no context was left
 * (the user socket, or no connection), or, after ending it, in a build under
 * AddressSanitizer, whose leak check runs at exit. */
int client_exit(int rc);

/* The "cannot reach" line for an address and timeout, in *err (code WQ_ETIMEDOUT). */
int client_unreachable(const char *addr, int timeout_ms, wq_error_t *err);

#endif
