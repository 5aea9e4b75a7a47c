/* What every command shares; see cli.h. */
#include "cli/cli.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/parse.h"
#include "proto/keys.h"

int
cli_parse_timeout(const char *s, const char *what, int *timeout_ms, wq_error_t *err)
{
    const char *p = s;
    int64_t v = 0;
    int digits = 0;
    while (isdigit((unsigned char) *p) && digits < 8) {
        v = v * 10 + (*p - '0');
        p++;
        digits++;
    }
    int64_t mult;
    if (digits == 0)
        goto bad;
    if (*p == '\0' || strcmp(p, "s") == 0)
        mult = 1000;
    else if (strcmp(p, "ms") == 0)
        mult = 1;
    else if (strcmp(p, "m") == 0)
        mult = 60000;
    else
        goto bad;
    v *= mult;
    if (v < 1 || v > 3600 * 1000)
        return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is out of range (1ms..1h)", what, s);
    *timeout_ms = (int) v;
    return 0;
bad:
    return wq_fail(err, WQ_EINVAL, "%s: '%.40s' is not a timeout; use seconds, e.g. 5, 500ms, 2m",
                   what, s);
}

void
cli_ctx_defaults(cli_ctx_t *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->scheduler = CLI_DEFAULT_SCHEDULER;
    ctx->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    ctx->admin_socket = CLI_DEFAULT_ADMIN_SOCKET;
}

int
cli_ctx_init(cli_ctx_t *ctx, wq_error_t *err)
{
    cli_ctx_defaults(ctx);
    /* the files, the machine's first, then the user's; the environment and the flags win */
    const char *s = getenv("WSLQ_SYSTEM_CONFIG");
    if (cli_conf_load(ctx, s != NULL && s[0] != '\0' ? s : CLI_SYSTEM_CONFIG, err) < 0)
        return -1;
    char user[4096];
    cli_conf_user_path(user, sizeof user);
    if (user[0] != '\0' && cli_conf_load(ctx, user, err) < 0)
        return -1;
    s = getenv("WSLQ_SCHEDULER");
    if (s != NULL && s[0] != '\0') {
        ctx->scheduler = s;
        ctx->scheduler_given = 1;
    }
    s = getenv("WSLQ_ADMIN_SOCKET");
    if (s != NULL && s[0] != '\0')
        ctx->admin_socket = s;
    s = getenv("WSLQ_INSECURE");
    ctx->insecure = s != NULL && strcmp(s, "yes") == 0;
    s = getenv("WSLQ_CREDENTIALS");
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    if (s != NULL && s[0] != '\0')
        snprintf(ctx->credentials, sizeof ctx->credentials, "%s", s);
    else if (xdg != NULL && xdg[0] == '/')
        snprintf(ctx->credentials, sizeof ctx->credentials, "%.4000s/wslq/credentials", xdg);
    else if (home != NULL && home[0] == '/')
        snprintf(ctx->credentials, sizeof ctx->credentials, "%.4000s/.config/wslq/credentials",
                 home);
    s = getenv("WSLQ_TIMEOUT");
    if (s != NULL && s[0] != '\0')
        return cli_parse_timeout(s, "WSLQ_TIMEOUT", &ctx->timeout_ms, err);
    return 0;
}

int
cli_usage_error(const cli_ctx_t *ctx, const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (ctx != NULL && ctx->verb != NULL)
        fprintf(stderr, "wslq: %s; see 'wslq %s --help'\n", what, ctx->verb);
    else
        fprintf(stderr, "wslq: %s; see 'wslq --help'\n", what);
    return CLI_USAGE;
}

int
cli_fail(const wq_error_t *err)
{
    fprintf(stderr, "wslq: %s\n", err->text[0] ? err->text : "unknown error");
    return CLI_FAIL;
}

int
cli_parse_job_id(const char *s, uint64_t *id, wq_error_t *err)
{
    const char *p = s;
    if (*p == '\0')
        return wq_fail(err, WQ_EINVAL, "empty job id");
    uint64_t v = 0;
    for (; *p; p++) {
        if (!isdigit((unsigned char) *p) || v > (UINT64_MAX - 9) / 10)
            return wq_fail(err, WQ_EINVAL, "'%.40s' is not a job id", s);
        v = v * 10 + (uint64_t) (*p - '0');
    }
    if (v == 0)
        return wq_fail(err, WQ_EINVAL, "'%.40s' is not a job id", s);
    *id = v;
    return 0;
}

int
cli_by_uid(const cli_ctx_t *ctx)
{
    return ctx != NULL && (ctx->scheduler_given || ctx->scheduler_conf) &&
           strncmp(ctx->scheduler, "unix:", 5) == 0;
}

const char *
cli_user_name(const cli_ctx_t *ctx)
{
    static char name[129];
    if (name[0] != '\0')
        return name;
    /* enrolled: the scheduler knows us by the name in our credentials; over the user
     * socket (unix:PATH) by our account's name, and no credentials file is read */
    keys_creds_t creds;
    wq_error_t err = {0};
    int by_uid = cli_by_uid(ctx);
    if (ctx != NULL && !by_uid && !ctx->insecure && ctx->credentials[0] != '\0' &&
        keys_load(ctx->credentials, &creds, &err) == 0 && creds.name[0] != '\0') {
        snprintf(name, sizeof name, "%s", creds.name);
        return name;
    }
    struct passwd *pw = getpwuid(getuid());
    if (pw != NULL && pw->pw_name != NULL && pw->pw_name[0] != '\0')
        snprintf(name, sizeof name, "%s", pw->pw_name);
    else
        snprintf(name, sizeof name, "%u", (unsigned) getuid());
    return name;
}

/* Defined by cli/cjson_lazy.c in the static wslq, which opens cJSON on first use. */
const char *cli_json_lib_error(void) __attribute__((weak));

int
cli_print_json(struct cJSON *doc)
{
    char *text = cJSON_Print(doc);
    cJSON_Delete(doc);
    const char *lib_err = cli_json_lib_error != NULL ? cli_json_lib_error() : NULL;
    if (text == NULL && lib_err != NULL) {
        fprintf(stderr, "wslq: cannot print JSON: %s (install libcjson1)\n", lib_err);
        return CLI_FAIL;
    }
    if (text == NULL) {
        fprintf(stderr, "wslq: out of memory formatting JSON\n");
        return CLI_FAIL;
    }
    fputs(text, stdout);
    fputc('\n', stdout);
    free(text);
    return CLI_OK;
}

int
cli_one_job_id(char **operands, int n, uint64_t *id, wq_error_t *err)
{
    if (n == 0)
        return wq_fail(err, WQ_EINVAL, "no job id given");
    if (n > 1)
        return wq_fail(err, WQ_EINVAL, "one job id expected, got %d", n);
    return cli_parse_job_id(operands[0], id, err);
}
