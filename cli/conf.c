/* The configuration files of the wslq command; see cli.h (cli_conf_load). */
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/mem.h"

typedef struct {
    cli_ctx_t *ctx;
    const char *path;
    wq_error_t err; /* the handler's first error, without the line */
    int failed;
    char state_dir[4000]; /* [scheduler] state_dir, when the file has one */
    int admin_socket_set; /* the file set admin_socket (in [client] or [scheduler]) */
} conf_load_t;

static int
copy_value(char *dst, size_t n, const char *v, const char *key, wq_error_t *err)
{
    if (v[0] == '\0')
        return wq_fail(err, WQ_EINVAL, "%s: empty value", key);
    if (strlen(v) >= n)
        return wq_fail(err, WQ_EINVAL, "%s: value too long (%zu bytes, at most %zu)", key,
                       strlen(v), n - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int
set_client(conf_load_t *cl, const char *key, const char *v, wq_error_t *err)
{
    cli_ctx_t *ctx = cl->ctx;
    if (strcmp(key, "scheduler") == 0) {
        if (strncmp(v, "tcp://", 6) != 0 && strncmp(v, "ipc://", 6) != 0 &&
            strncmp(v, "unix:/", 6) != 0)
            return wq_fail(err, WQ_EINVAL,
                           "scheduler: '%.120s' is not tcp://HOST:PORT, unix:PATH or ipc://PATH",
                           v);
        if (copy_value(ctx->conf_scheduler, sizeof ctx->conf_scheduler, v, key, err) < 0)
            return -1;
        ctx->scheduler = ctx->conf_scheduler;
        ctx->scheduler_conf = 1;
        return 0;
    }
    if (strcmp(key, "timeout") == 0)
        return cli_parse_timeout(v, "timeout", &ctx->timeout_ms, err);
    if (strcmp(key, "admin_socket") == 0) {
        if (copy_value(ctx->conf_admin_socket, sizeof ctx->conf_admin_socket, v, key, err) < 0)
            return -1;
        ctx->admin_socket = ctx->conf_admin_socket;
        cl->admin_socket_set = 1;
        return 0;
    }
    return wq_fail(err, WQ_EINVAL,
                   "unknown key '%.60s' in [client] (scheduler, timeout, admin_socket)", key);
}

/* The scheduler host's own section says where its admin socket is; the rest of it is the
 * scheduler's business (it checks its keys itself). */
static int
set_scheduler(conf_load_t *cl, const char *key, const char *v, wq_error_t *err)
{
    cli_ctx_t *ctx = cl->ctx;
    if (strcmp(key, "state_dir") == 0 || strcmp(key, "state-dir") == 0)
        return copy_value(cl->state_dir, sizeof cl->state_dir, v, key, err);
    if ((strcmp(key, "admin_socket") == 0 || strcmp(key, "admin-socket") == 0) && v[0] != '\0') {
        if (copy_value(ctx->conf_admin_socket, sizeof ctx->conf_admin_socket, v, key, err) < 0)
            return -1;
        ctx->admin_socket = ctx->conf_admin_socket;
        cl->admin_socket_set = 1;
    }
    return 0;
}

static int
on_ini(void *user, const char *section, const char *name, const char *value)
{
    conf_load_t *cl = user;
    wq_error_t e = {0};
    int rc = 0;
    if (strcmp(section, "client") == 0)
        rc = set_client(cl, name, value, &e);
    else if (strcmp(section, "scheduler") == 0)
        rc = set_scheduler(cl, name, value, &e);
    else
        return 1; /* other programs' sections in a shared file */
    if (rc < 0 && !cl->failed) {
        cl->failed = 1;
        cl->err = e;
    }
    return rc == 0;
}

int
cli_conf_load(cli_ctx_t *ctx, const char *path, wq_error_t *err)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0; /* no file: nothing to say */
        return wq_fail_errno(err, "cannot read config %.200s", path);
    }
    conf_load_t *cl = wq_calloc(1, sizeof *cl);
    cl->ctx = ctx;
    cl->path = path;
    int rc = ini_parse_file(f, on_ini, cl);
    fclose(f);
    int ret = 0;
    if (cl->failed && rc > 0)
        ret = wq_fail(err, WQ_EINVAL, "%.200s:%d: %s", path, rc, cl->err.text);
    else if (rc > 0)
        ret = wq_fail(err, WQ_EINVAL, "%.200s:%d: syntax error", path, rc);
    else if (rc < 0)
        ret = wq_fail(err, WQ_EIO, "%.200s: cannot parse", path);
    else if (cl->state_dir[0] != '\0' && !cl->admin_socket_set) {
        if ((size_t) snprintf(ctx->conf_admin_socket, sizeof ctx->conf_admin_socket,
                              "%s/admin.sock", cl->state_dir) < sizeof ctx->conf_admin_socket)
            ctx->admin_socket = ctx->conf_admin_socket;
    }
    free(cl);
    return ret;
}

void
cli_conf_user_path(char *buf, size_t n)
{
    const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
    buf[0] = '\0';
    if (xdg != NULL && xdg[0] == '/')
        snprintf(buf, n, "%.4000s/wslq/wslq.conf", xdg);
    else if (home != NULL && home[0] == '/')
        snprintf(buf, n, "%.4000s/.config/wslq/wslq.conf", home);
}
