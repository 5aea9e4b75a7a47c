/* wslq fetch: the files a job's --output brought back from each of its nodes. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "cli/snapshot.h"
#include "common/mem.h"

static const char usage[] =
    "usage: wslq fetch JOB [--dest DIR]\n"
    "\n"
    "Download what the job's --output directory held on each node when it ended, and unpack\n"
    "it into DIR/<node>/ (default DIR: ./wslq-JOB-output). Only the job's owner or an admin\n"
    "may; the job must have ended and have been submitted with --workdir and --output.\n"
    "  --dest DIR          where to unpack (made if missing)\n"
    "  --scheduler ADDR, --timeout SEC   as for every command\n";

enum { O_DEST = 1 };
static const opt_t opts[] = {{"dest", 0, 1, O_DEST}, OPT_COMMON, {NULL, 0, 0, 0}};

int
cmd_fetch(cli_ctx_t *ctx, int argc, char **argv)
{
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    wq_error_t err = {0};
    const char *dest = NULL;
    int id_opt;
    while ((id_opt = opt_next(&p, opts, &err)) > 0) {
        if (id_opt == OPT_HELP) {
            opt_parser_fini(&p);
            fputs(usage, stdout);
            return CLI_OK;
        }
        if (id_opt == O_DEST) {
            if (p.arg[0] == '\0') {
                opt_parser_fini(&p);
                return cli_usage_error(ctx, "--dest: empty directory");
            }
            dest = p.arg;
            continue;
        }
        if (opt_common(ctx, id_opt, p.arg, &err) != 0) {
            id_opt = -1;
            break;
        }
    }
    uint64_t id = 0;
    if (id_opt < 0 || cli_one_job_id(p.operands, p.n_operands, &id, &err) < 0) {
        opt_parser_fini(&p);
        return cli_usage_error(ctx, "%s", err.text);
    }
    char *own = dest ? wq_strdup(dest) : wq_asprintf("wslq-%" PRIu64 "-output", id);
    opt_parser_fini(&p);
    client_t *c = client_new(ctx, &err);
    int rc = c != NULL ? cli_fetch_output(c, id, own, &err) : -1;
    client_destroy(&c);
    free(own);
    return rc < 0 ? cli_fail(&err) : CLI_OK;
}
