/* Command-line options; see opt.h. */
#include "cli/opt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/mem.h"
#include "proto/jobspec.h"

void
opt_parser_init(opt_parser_t *p, int argc, char **argv, int stop_at_operand)
{
    memset(p, 0, sizeof *p);
    p->argc = argc;
    p->argv = argv;
    p->next = 1;
    p->stop_at_operand = stop_at_operand;
    p->rest = argc;
    p->operands = wq_calloc((size_t) (argc > 0 ? argc : 1), sizeof *p->operands);
}

void
opt_parser_fini(opt_parser_t *p)
{
    free(p->operands);
    p->operands = NULL;
    p->n_operands = 0;
}

static const opt_t *
find_long(const opt_t *opts, const char *name, size_t len)
{
    for (const opt_t *o = opts; o->long_name != NULL; o++)
        if (strlen(o->long_name) == len && strncmp(o->long_name, name, len) == 0)
            return o;
    return NULL;
}

static const opt_t *
find_short(const opt_t *opts, char c)
{
    for (const opt_t *o = opts; o->long_name != NULL; o++)
        if (o->short_name != 0 && o->short_name == c)
            return o;
    return NULL;
}

int
opt_next(opt_parser_t *p, const opt_t *opts, wq_error_t *err)
{
    p->arg = NULL;
    p->name = NULL;
    while (!p->done && p->next < p->argc) {
        char *w = p->argv[p->next];
        if (strcmp(w, "--") == 0) {
            p->next++;
            p->done = 1;
            p->dashdash = 1;
            break;
        }
        if (w[0] != '-' || w[1] == '\0') {
            if (p->stop_at_operand) {
                p->done = 1;
                break;
            }
            p->operands[p->n_operands++] = w;
            p->next++;
            continue;
        }
        p->next++;
        const opt_t *o;
        const char *inline_val = NULL;
        if (w[1] == '-') {
            const char *name = w + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t) (eq - name) : strlen(name);
            o = find_long(opts, name, len);
            if (o == NULL)
                return wq_fail(err, WQ_EINVAL, "unknown option '--%.*s'",
                               (int) (len > 40 ? 40 : len), name);
            snprintf(p->name_buf, sizeof p->name_buf, "--%s", o->long_name);
            if (eq != NULL) {
                if (!o->has_arg)
                    return wq_fail(err, WQ_EINVAL, "option '%s' takes no value", p->name_buf);
                inline_val = eq + 1;
            }
        } else {
            o = find_short(opts, w[1]);
            if (o == NULL || (!o->has_arg && w[2] != '\0'))
                return wq_fail(err, WQ_EINVAL, "unknown option '%.40s'", w);
            snprintf(p->name_buf, sizeof p->name_buf, "-%c", w[1]);
            if (w[2] != '\0')
                inline_val = w + 2;
        }
        p->name = p->name_buf;
        if (o->has_arg) {
            if (inline_val != NULL) {
                p->arg = inline_val;
            } else if (p->next < p->argc) {
                p->arg = p->argv[p->next++];
            } else {
                return wq_fail(err, WQ_EINVAL, "option '%s' needs a value", p->name_buf);
            }
        }
        return o->id;
    }
    /* Options are over: the rest are operands. */
    p->done = 1;
    if (p->stop_at_operand) {
        p->rest = p->next;
    } else {
        while (p->next < p->argc)
            p->operands[p->n_operands++] = p->argv[p->next++];
    }
    return 0;
}

int
opt_common(struct cli_ctx *ctx, int id, const char *arg, wq_error_t *err)
{
    switch (id) {
    case OPT_SCHEDULER:
        if (arg[0] == '\0')
            return wq_fail(err, WQ_EINVAL, "--scheduler: empty address");
        ctx->scheduler = arg;
        ctx->scheduler_given = 1;
        return 0;
    case OPT_TIMEOUT:
        return cli_parse_timeout(arg, "--timeout", &ctx->timeout_ms, err);
    default:
        return 1;
    }
}

int
opt_flag_loop(struct cli_ctx *ctx,
              opt_parser_t *p,
              const opt_t *opts,
              int flag_id,
              const char *usage,
              int *flag,
              wq_error_t *err)
{
    int id;
    while ((id = opt_next(p, opts, err)) > 0) {
        if (id == OPT_HELP) {
            fputs(usage, stdout);
            return 1;
        }
        if (flag_id != 0 && id == flag_id)
            *flag = 1;
        else if (opt_common(ctx, id, p->arg, err) != 0)
            return -1;
    }
    return id < 0 ? -1 : 0;
}

int
opt_job_command(struct cli_ctx *ctx,
                int argc,
                char **argv,
                const opt_t *opts,
                int flag_id,
                const char *usage,
                int *flag,
                uint64_t *job)
{
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int rc = opt_flag_loop(ctx, &p, opts, flag_id, usage, flag, &err);
    if (rc == 0 && cli_one_job_id(p.operands, p.n_operands, job, &err) < 0)
        rc = -1;
    opt_parser_fini(&p);
    if (rc > 0)
        return CLI_OK;
    if (rc < 0)
        return cli_usage_error(ctx, "%s", err.text);
    return -1;
}

int
opt_one_job_selector(
    const opt_parser_t *p, const char *verb, char *sel, size_t size, wq_error_t *err)
{
    if (p->n_operands != 1)
        return wq_fail(err, WQ_EINVAL,
                       p->n_operands == 0 ? "no job id given" : "one job id expected, got %d",
                       p->n_operands);
    jobspec_selector_t js;
    int rc = 0;
    if (jobspec_parse_selector(p->operands[0], &js, err) < 0) {
        rc = -1;
    } else if (js.has_tasks && js.tasks.n != 1) {
        rc = wq_fail(err, WQ_EINVAL, "'%.40s' names %zu jobs; %s takes one (40_7)", p->operands[0],
                     js.tasks.n, verb);
    }
    jobspec_selector_fini(&js);
    snprintf(sel, size, "%s", p->operands[0]);
    return rc;
}

int
opt_one_job_command(struct cli_ctx *ctx,
                    int argc,
                    char **argv,
                    const opt_t *opts,
                    int flag_id,
                    const char *usage,
                    const char *verb,
                    int *flag,
                    char *sel,
                    size_t size)
{
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int rc = opt_flag_loop(ctx, &p, opts, flag_id, usage, flag, &err);
    if (rc == 0)
        rc = opt_one_job_selector(&p, verb, sel, size, &err);
    opt_parser_fini(&p);
    if (rc > 0)
        return CLI_OK;
    if (rc < 0)
        return cli_usage_error(ctx, "%s", err.text);
    return -1;
}
