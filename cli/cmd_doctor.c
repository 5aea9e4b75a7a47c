/* wslq doctor: check this machine as a wslq node (worker/node/doctor.h does the checks). */
#include <stdio.h>

#include "cli.h"
#include "opt.h"

static const char usage[] =
    "usage: wslq doctor [--json] [--no-gpu] [--iface IF]\n"
    "\n"
    "Check this machine as a wslq node: WSL version and settings, GPU driver, NVML and CUDA,\n"
    "NCCL, shared memory, network. Each check is PASS, WARN, FAIL or INFO with a one-line fix.\n"
    "  --json           the report as JSON (node facts, GPUs, checks, counts, exit_code)\n"
    "  --no-gpu         do not load NVML/CUDA\n"
    "  --iface IF       cluster network interface (default: detected)\n"
    "  --root DIR       read the system under DIR instead of / (tests)\n"
    "Exit: 0 no FAIL (warnings allowed), 1 at least one FAIL, 2 the checks could not run or\n"
    "usage error.\n";

#ifdef WSLQ_HAVE_DOCTOR
#include <cjson/cJSON.h>

#include "worker/node/doctor.h"

enum { O_JSON = 1, O_NO_GPU, O_IFACE, O_ROOT };
static const opt_t opts[] = {
    {"json", 0, 0, O_JSON},
    {"no-gpu", 0, 0, O_NO_GPU},
    {"iface", 0, 1, O_IFACE},
    {"root", 0, 1, O_ROOT},
    OPT_COMMON,
    {NULL, 0, 0, 0},
};

int
cmd_doctor(cli_ctx_t *ctx, int argc, char **argv)
{
    int json = 0;
    const char *root = "/";
    doctor_opts_t dopts = DOCTOR_OPTS_INIT;
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id;
    while ((id = opt_next(&p, opts, &err)) > 0) {
        switch (id) {
        case OPT_HELP:
            opt_parser_fini(&p);
            fputs(usage, stdout);
            return CLI_OK;
        case O_JSON:
            json = 1;
            break;
        case O_NO_GPU:
            dopts.skip_gpu = 1;
            break;
        case O_IFACE:
            dopts.iface = p.arg;
            break;
        case O_ROOT:
            root = p.arg;
            break;
        default:
            if (opt_common(ctx, id, p.arg, &err) != 0)
                id = -1;
            break;
        }
        if (id < 0)
            break;
    }
    if (id == 0 && p.n_operands > 0)
        id = wq_fail(&err, WQ_EINVAL, "unexpected argument '%.40s'", p.operands[0]);
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);

    doctor_report_t *r = doctor_run(root, &dopts, &err);
    if (r == NULL) {
        fprintf(stderr, "wslq: doctor: %s\n", err.text);
        return CLI_USAGE;
    }
    int rc = doctor_exit_code(r);
    if (json) {
        if (cli_print_json(doctor_to_json(r)) != CLI_OK)
            rc = CLI_FAIL;
    } else {
        doctor_print(r, stdout);
    }
    doctor_destroy(&r);
    return rc;
}

#else

int
cmd_doctor(cli_ctx_t *ctx, int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && (argv[i][1] == 'h' || argv[i][1] == '-') &&
            (argv[i][1] == 'h' || argv[i][2] == 'h')) {
            fputs(usage, stdout);
            return CLI_OK;
        }
    (void) ctx;
    fprintf(stderr, "wslq: doctor is not built into this wslq (worker/node was not built)\n");
    return CLI_FAIL;
}

#endif
