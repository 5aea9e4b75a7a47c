/* wslq doctor: check this machine as a wslq node. */
#include <stdio.h>

#include "cli.h"

int
cmd_doctor(cli_ctx_t *ctx, int argc, char **argv)
{
    (void) ctx;
    (void) argc;
    (void) argv;
    fprintf(stderr, "wslq: doctor is not built into this wslq yet\n");
    return CLI_FAIL;
}
