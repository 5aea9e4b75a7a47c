/* wslq kv: the job's rendezvous key/value store, from inside a job. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int
cmd_kv(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) argc;
    (void) argv;
    const char *rv = getenv("WSLQ_RENDEZVOUS");
    if (rv == NULL || rv[0] == '\0') {
        fprintf(stderr, "wslq: not inside a wslq job (WSLQ_RENDEZVOUS is not set)\n");
        return CLI_USAGE;
    }
    (void) ctx;
    fprintf(stderr, "wslq: kv is not implemented yet\n");
    return CLI_FAIL;
}
