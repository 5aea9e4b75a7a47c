/* Identity at the terminal: `wslq login CODE` (a new key pair, enrolled with a one-time
 * code), `wslq admin ...` (users, nodes and their codes; over the scheduler host's local
 * socket, or as an admin user) and `wslq token` (a token for the dashboard and JSON API). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/opt.h"
#include "common/fs.h"
#include "common/parse.h"
#include "proto/keys.h"

/* ---------- wslq login ---------- */

static const char login_usage[] =
    "usage: wslq login CODE\n"
    "\n"
    "Enrol with the scheduler: makes your key pair, sends the public key with the one-time\n"
    "CODE an admin gave you (wslq admin user add NAME), and keeps the keys and the\n"
    "scheduler's address and key in your credentials file (mode 0600):\n"
    "  $WSLQ_CREDENTIALS, else ~/.config/wslq/credentials. A file already there is replaced.\n";

int
cmd_login(cli_ctx_t *ctx, int argc, char **argv)
{
    static const opt_t opts[] = {OPT_COMMON, {NULL, 0, 0, 0}};
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id = opt_flag_loop(ctx, &p, opts, 0, login_usage, NULL, &err);
    if (id > 0) {
        opt_parser_fini(&p);
        return CLI_OK;
    }
    if (id == 0 && p.n_operands != 1)
        id = wq_fail(&err, WQ_EINVAL, "expected one CODE");
    char code[1024];
    if (id == 0)
        snprintf(code, sizeof code, "%s", p.operands[0]);
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);
    if (ctx->credentials[0] == '\0') {
        wq_fail(&err, WQ_EINVAL, "no place for credentials: set HOME or WSLQ_CREDENTIALS");
        return cli_fail(&err);
    }

    keys_creds_t creds = {0};
    char secret[KEYS_SECRET_HEX + 1];
    if (keys_code_parse(code, creds.server, secret, creds.scheduler, sizeof creds.scheduler, &err) <
            0 ||
        keys_generate(&creds, &err) < 0)
        return cli_fail(&err);
    /* the new key talks to the scheduler the code names; a key it does not know yet may
     * only enrol */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", ctx->credentials);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (wq_mkdir_p(dir, 0700, &err) < 0)
            return cli_fail(&err);
    }
    char tmp[sizeof ctx->credentials];
    if ((size_t) snprintf(tmp, sizeof tmp, "%s.new", ctx->credentials) >= sizeof tmp) {
        wq_fail(&err, WQ_EINVAL, "credentials path too long");
        return cli_fail(&err);
    }
    if (keys_save(tmp, &creds, &err) < 0)
        return cli_fail(&err);
    cli_ctx_t c2 = *ctx;
    snprintf(c2.credentials, sizeof c2.credentials, "%s", tmp);
    c2.scheduler_given = 0;
    c2.scheduler_conf = 0;
    c2.admin = 0;
    client_t *c = client_new(&c2, &err);
    if (c == NULL) {
        unlink(tmp);
        return cli_fail(&err);
    }
    Wslq__EnrolRequest req = WSLQ__ENROL_REQUEST__INIT;
    req.secret = secret;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_ENROL;
    env.enrol = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_ENROL_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL) {
        unlink(tmp);
        return cli_fail(&err);
    }
    snprintf(creds.name, sizeof creds.name, "%s", rep->enrol_reply->name);
    int admin = rep->enrol_reply->admin;
    wire_free(&rep);
    if (keys_save(ctx->credentials, &creds, &err) < 0) {
        unlink(tmp);
        return cli_fail(&err);
    }
    unlink(tmp);
    printf("Enrolled as %s%s with %s; credentials in %s\n", creds.name, admin ? " (admin)" : "",
           creds.scheduler, ctx->credentials);
    return CLI_OK;
}

/* ---------- wslq admin ---------- */

static const char admin_usage[] =
    "usage: wslq admin user add NAME [--admin] [--valid DUR]  a one-time enrolment code\n"
    "       wslq admin user list [--json]        users, their keys, codes not yet used\n"
    "       wslq admin user set NAME --admin|--no-admin\n"
    "       wslq admin user remove NAME          revoke every key of NAME (and its tokens)\n"
    "       wslq admin node invite [NAME] [--valid DUR]  a one-time join code for a new PC\n"
    "       wslq admin node list [--json]\n"
    "       wslq admin node remove NAME          revoke the node's key; its jobs requeue\n"
    "       wslq admin node tag NAME TAG[,TAG]   the node's tags, for 'wslq submit\n"
    "                                            --constraint'; they replace its old ones\n"
    "                                            ('' clears them)\n"
    "\n"
    "A code works once, for --valid (default 24h; e.g. 30m, 2h, 7d; at most 30d).\n"
    "Run on the scheduler host as root (or the scheduler's user): it uses the local socket\n"
    "(--admin-socket PATH, env WSLQ_ADMIN_SOCKET, default " CLI_DEFAULT_ADMIN_SOCKET ").\n"
    "With --remote it goes over the network with your credentials, if you are an admin user.\n";

/* "a,b,c" */
static const char *
p_tags_text(char *const *tags, size_t n, char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n && off < size; i++)
        off += (size_t) snprintf(buf + off, size - off, "%s%s", i ? "," : "", tags[i]);
    return buf;
}

/* "24 hours", "30 minutes", "7 days": how long a code works */
static const char *
valid_text(int64_t s, char *buf, size_t size)
{
    if (s == 0)
        s = WIRE_CODE_VALID_DEFAULT_S;
    if (s % 86400 == 0)
        snprintf(buf, size, "%lld day%s", (long long) (s / 86400), s == 86400 ? "" : "s");
    else if (s % 3600 == 0)
        snprintf(buf, size, "%lld hour%s", (long long) (s / 3600), s == 3600 ? "" : "s");
    else if (s % 60 == 0)
        snprintf(buf, size, "%lld minute%s", (long long) (s / 60), s == 60 ? "" : "s");
    else
        snprintf(buf, size, "%lld second%s", (long long) s, s == 1 ? "" : "s");
    return buf;
}

enum { A_ADMIN = 1, A_NO_ADMIN, A_JSON, A_SOCKET, A_REMOTE, A_VALID };

static void
print_principals(const Wslq__AdminReply *r)
{
    printf("%-6s %-20s %-6s %-40s %s\n", "KIND", "NAME", "ADMIN", "KEY", "SINCE");
    for (size_t i = 0; i < r->n_principals; i++) {
        const Wslq__Principal *p = r->principals[i];
        char when[32] = "";
        time_t t = (time_t) ((p->expires_ms ? p->expires_ms : p->since_ms) / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm) != NULL)
            strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
        printf("%-6s %-20s %-6s %-40s %s%s\n", p->kind, p->name[0] ? p->name : "(any)",
               p->admin ? "yes" : "no", p->key[0] ? p->key : "-", p->expires_ms ? "expires " : "",
               when);
    }
}

static int
print_principals_json(const Wslq__AdminReply *r)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < r->n_principals; i++) {
        const Wslq__Principal *p = r->principals[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", p->kind);
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddBoolToObject(o, "admin", p->admin);
        cJSON_AddStringToObject(o, "key", p->key);
        cJSON_AddNumberToObject(o, "since_ms", (double) p->since_ms);
        if (p->expires_ms)
            cJSON_AddNumberToObject(o, "expires_ms", (double) p->expires_ms);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "principals", arr);
    return cli_print_json(doc);
}

int
cmd_admin(cli_ctx_t *ctx, int argc, char **argv)
{
    static const opt_t opts[] = {{"admin", 0, 0, A_ADMIN},
                                 {"no-admin", 0, 0, A_NO_ADMIN},
                                 {"json", 0, 0, A_JSON},
                                 {"admin-socket", 0, 1, A_SOCKET},
                                 {"remote", 0, 0, A_REMOTE},
                                 {"valid", 0, 1, A_VALID},
                                 OPT_COMMON,
                                 {NULL, 0, 0, 0}};
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id, admin = -1, json = 0, remote = 0;
    int64_t valid_s = 0;
    while ((id = opt_next(&p, opts, &err)) > 0) {
        switch (id) {
        case OPT_HELP:
            opt_parser_fini(&p);
            fputs(admin_usage, stdout);
            return CLI_OK;
        case A_ADMIN:
            admin = 1;
            break;
        case A_NO_ADMIN:
            admin = 0;
            break;
        case A_JSON:
            json = 1;
            break;
        case A_SOCKET:
            ctx->admin_socket = p.arg;
            break;
        case A_REMOTE:
            remote = 1;
            break;
        case A_VALID:
            if (wq_parse_duration(p.arg, "--valid", &valid_s, &err) < 0)
                id = -1;
            else if (valid_s < 1 || valid_s > WIRE_CODE_VALID_MAX_S)
                id = wq_fail(&err, WQ_EINVAL, "--valid: '%.40s' is out of range (1s..30d)", p.arg);
            break;
        default:
            if (opt_common(ctx, id, p.arg, &err) != 0)
                id = -1;
        }
        if (id < 0)
            break;
    }
    Wslq__AdminRequest req = WSLQ__ADMIN_REQUEST__INIT;
    char what[16] = "", verb[16] = "", name[160] = "";
    char *tagv[WIRE_MAX_TAGS];
    size_t ntags = 0;
    char tagbuf[WIRE_MAX_TAGS * (WIRE_MAX_TAG + 1) + 64] = "";
    int tagging = 0;
    if (id == 0 && p.n_operands >= 2) {
        snprintf(what, sizeof what, "%s", p.operands[0]);
        snprintf(verb, sizeof verb, "%s", p.operands[1]);
        tagging = strcmp(what, "node") == 0 && strcmp(verb, "tag") == 0;
        if (p.n_operands >= 3)
            snprintf(name, sizeof name, "%s", p.operands[2]);
        if (tagging && p.n_operands == 3)
            id = wq_fail(&err, WQ_EINVAL, "'node tag' needs NAME and TAG[,TAG] ('' clears)");
        else if (tagging && p.n_operands == 4 && strlen(p.operands[3]) >= sizeof tagbuf)
            id = wq_fail(&err, WQ_EINVAL, "tags: at most %d of %d bytes", WIRE_MAX_TAGS,
                         WIRE_MAX_TAG);
        else if (tagging && p.n_operands == 4)
            snprintf(tagbuf, sizeof tagbuf, "%s", p.operands[3]);
        if (p.n_operands > 3 + tagging)
            id = wq_fail(&err, WQ_EINVAL, "unexpected argument '%.40s'", p.operands[3 + tagging]);
    } else if (id == 0) {
        id = wq_fail(&err, WQ_EINVAL, "expected 'user' or 'node' and what to do");
    }
    opt_parser_fini(&p);
    int user = strcmp(what, "user") == 0, node = strcmp(what, "node") == 0;
    int need_name = 1;
    if (id == 0 && user && strcmp(verb, "add") == 0)
        req.op = WSLQ__ADMIN_REQUEST__OP__USER_ADD;
    else if (id == 0 && user && strcmp(verb, "remove") == 0)
        req.op = WSLQ__ADMIN_REQUEST__OP__USER_REMOVE;
    else if (id == 0 && user && strcmp(verb, "set") == 0)
        req.op = WSLQ__ADMIN_REQUEST__OP__USER_SET;
    else if (id == 0 && user && strcmp(verb, "list") == 0)
        req.op = WSLQ__ADMIN_REQUEST__OP__USER_LIST, need_name = 0;
    else if (id == 0 && node && strcmp(verb, "invite") == 0)
        req.op = WSLQ__ADMIN_REQUEST__OP__NODE_INVITE, need_name = 0;
    else if (id == 0 && node && strcmp(verb, "remove") == 0)
        req.op = WSLQ__ADMIN_REQUEST__OP__NODE_REMOVE;
    else if (id == 0 && node && strcmp(verb, "list") == 0)
        req.op = WSLQ__ADMIN_REQUEST__OP__NODE_LIST, need_name = 0;
    else if (id == 0 && tagging)
        req.op = WSLQ__ADMIN_REQUEST__OP__NODE_TAG;
    else if (id == 0)
        id = wq_fail(&err, WQ_EINVAL, "unknown admin command '%.16s %.16s'", what, verb);
    char *save = NULL;
    for (char *t = id == 0 && tagging ? strtok_r(tagbuf, ",", &save) : NULL; t != NULL && id == 0;
         t = strtok_r(NULL, ",", &save)) {
        if (wire_check_tag(t, "tag", &err) < 0)
            id = -1;
        else if (ntags == WIRE_MAX_TAGS)
            id = wq_fail(&err, WQ_EINVAL, "tags: at most %d", WIRE_MAX_TAGS);
        else
            tagv[ntags++] = t;
    }
    if (id == 0 && need_name && name[0] == '\0')
        id = wq_fail(&err, WQ_EINVAL, "'%s %s' needs a NAME", what, verb);
    if (id == 0 && req.op == WSLQ__ADMIN_REQUEST__OP__USER_SET && admin < 0)
        id = wq_fail(&err, WQ_EINVAL, "'user set' needs --admin or --no-admin");
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);
    if (id == 0 && valid_s > 0 && req.op != WSLQ__ADMIN_REQUEST__OP__USER_ADD &&
        req.op != WSLQ__ADMIN_REQUEST__OP__NODE_INVITE)
        id = wq_fail(&err, WQ_EINVAL, "--valid goes with 'user add' and 'node invite'");
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);
    req.name = name;
    req.tags = tagv;
    req.n_tags = ntags;
    req.admin = admin > 0;
    req.valid_s = (uint32_t) valid_s;
    ctx->admin = !remote;
    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_ADMIN;
    env.admin = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_ADMIN_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    const Wslq__AdminReply *r = rep->admin_reply;
    int rc = CLI_OK;
    char vt[32];
    switch (req.op) {
    case WSLQ__ADMIN_REQUEST__OP__USER_ADD:
        printf("Give %s this one-time code (it works once, for %s):\n  wslq login %s\n", name,
               valid_text(valid_s, vt, sizeof vt), r->code);
        break;
    case WSLQ__ADMIN_REQUEST__OP__NODE_INVITE:
        printf("On the new PC, inside WSL, run (the code works once, for %s):\n"
               "  deploy/wsl/install.sh --join %s\n"
               "or, with wslq installed: wslq-worker --join %s\n",
               valid_text(valid_s, vt, sizeof vt), r->code, r->code);
        break;
    case WSLQ__ADMIN_REQUEST__OP__USER_LIST:
    case WSLQ__ADMIN_REQUEST__OP__NODE_LIST:
        if (json)
            rc = print_principals_json(r);
        else
            print_principals(r);
        break;
    case WSLQ__ADMIN_REQUEST__OP__USER_REMOVE:
        printf("Removed user %s: its keys and tokens no longer work\n", name);
        break;
    case WSLQ__ADMIN_REQUEST__OP__NODE_REMOVE:
        printf("Removed node %s: its key no longer works\n", name);
        break;
    case WSLQ__ADMIN_REQUEST__OP__USER_SET:
        printf("User %s is %s\n", name, req.admin ? "an admin" : "not an admin");
        break;
    case WSLQ__ADMIN_REQUEST__OP__NODE_TAG: {
        char shown[sizeof tagbuf];
        if (ntags == 0)
            printf("Node %s has no tags now\n", name);
        else
            printf("Node %s is tagged %s\n", name, p_tags_text(tagv, ntags, shown, sizeof shown));
        break;
    }
    default:
        break;
    }
    wire_free(&rep);
    return rc;
}

/* ---------- wslq token ---------- */

static const char token_usage[] =
    "usage: wslq token\n"
    "\n"
    "Print a new token for the dashboard and the JSON API, bound to you: paste it into the\n"
    "dashboard's sign-in box, or send it as 'Authorization: Bearer TOKEN'. It is shown once;\n"
    "'wslq admin user remove' revokes all of a user's tokens.\n";

int
cmd_token(cli_ctx_t *ctx, int argc, char **argv)
{
    static const opt_t opts[] = {OPT_COMMON, {NULL, 0, 0, 0}};
    wq_error_t err = {0};
    opt_parser_t p;
    opt_parser_init(&p, argc, argv, 0);
    int id = opt_flag_loop(ctx, &p, opts, 0, token_usage, NULL, &err);
    if (id > 0) {
        opt_parser_fini(&p);
        return CLI_OK;
    }
    if (id == 0 && p.n_operands > 0)
        id = wq_fail(&err, WQ_EINVAL, "unexpected argument '%.40s'", p.operands[0]);
    opt_parser_fini(&p);
    if (id < 0)
        return cli_usage_error(ctx, "%s", err.text);
    client_t *c = client_new(ctx, &err);
    if (c == NULL)
        return cli_fail(&err);
    Wslq__TokenRequest req = WSLQ__TOKEN_REQUEST__INIT;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_TOKEN;
    env.token = &req;
    Wslq__Envelope *rep = client_call(c, &env, WSLQ__ENVELOPE__BODY_TOKEN_REPLY, 0, &err);
    client_destroy(&c);
    if (rep == NULL)
        return cli_fail(&err);
    printf("%s\n", rep->token_reply->token);
    wire_free(&rep);
    return CLI_OK;
}
