/* wslq-scheduler: flags and config file, signals, then sched_run(). */
#include <getopt.h>
#include <ini.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fs.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/parse.h"
#include "proto/wire.h"
#include "scheduler/bfplan.h"
#include "scheduler/fairshare.h"
#include "scheduler/http/http.h"
#include "scheduler/http/http_parse.h"
#include "scheduler/notify.h"
#include "scheduler/sched.h"
#include "scheduler/snapshots.h"

static sched_t *running;

static void
on_signal(int sig)
{
    (void) sig;
    if (running)
        sched_stop(running);
}

/* The state directory or its database cannot be used: systemd does not restart on it
 * (RestartPreventExitStatus in deploy/systemd/wslq-scheduler.service). */
#define EXIT_STATE 3

static void
usage(FILE *out)
{
    fprintf(
        out,
        "usage: wslq-scheduler [options]\n"
        "  --listen ENDPOINT     ZeroMQ endpoint to bind (default tcp://*:7420)\n"
        "  --state-dir DIR       queue database and job logs (default /var/lib/wslq/scheduler)\n"
        "  --config FILE         INI file with a [scheduler] section (keys as the flags;\n"
        "                        fair-share and limits there only: fairshare-halflife,\n"
        "                        max-age, priority-weight, fairshare-weight, age-weight,\n"
        "                        share.USER, max-running-gpus[.USER],\n"
        "                        max-running-jobs[.USER], max-pending-jobs[.USER])\n"
        "  --http ADDR:PORT      dashboard, API and /metrics address (default\n"
        "                        127.0.0.1:7421; 'off' disables; [::1]:PORT for IPv6;\n"
        "                        eth0:PORT for the address of the LAN interface eth0)\n"
        "  --http-token FILE     a monitoring token (Prometheus): whoever sends it reads\n"
        "                        everything, read-only. Users sign in with 'wslq token'\n"
        "  --http-public summary|none  'summary': counts, nodes, /metrics and the live\n"
        "                        update stream need no sign-in (default none)\n"
        "  --http-rate N         requests per second per client address (default 50; 0 =\n"
        "                        no limit)\n"
        "  --torpid TIME         silence before a node gets no new jobs (default 3s)\n"
        "  --lost TIME           silence before a node is lost (default 10s)\n"
        "  --start-timeout TIME  every rank must start within this (default 60s)\n"
        "  --kill-grace TIME     SIGTERM to SIGKILL on cancel/time limit (default 10s)\n"
        "  --preempt-grace TIME  SIGTERM to SIGKILL of a preempted job (default: the kill grace)\n"
        "  --port-range LO-HI    MASTER_PORT range (default 29500-29999)\n"
        "  --sync full|normal    SQLite durability (default full)\n"
        "  --backfill-depth N    pending jobs that get a reservation in each pass; later\n"
        "                        jobs start only if they do not delay them (default 8,\n"
        "                        at most 64; 0 = strict priority order, no backfill)\n"
        "  --default-time-limit TIME  how long a job without --time counts as running,\n"
        "                        for planning only: it is not stopped then (default 24h)\n"
        "  --advertise ADDR      the address enrolment and join codes give clients and\n"
        "                        workers, tcp://HOST:PORT (default: this host's first IPv4)\n"
        "  --admin-socket PATH   the local admin socket (default STATE_DIR/admin.sock;\n"
        "                        '' for none): 'wslq admin' as root or the scheduler's user\n"
        "  --user-socket PATH    a Unix socket (made 0666) for the users of this host: each\n"
        "                        connection acts as the enrolled user named as its account\n"
        "                        (by uid, no keys); clients use --scheduler unix:PATH. Its\n"
        "                        directory must be reachable by them (not STATE_DIR, which\n"
        "                        is 0700). Default none (off); off with --insecure\n"
        "  --insecure yes|no     no CURVE keys: every peer is what it claims. Only for\n"
        "                        throwaway test clusters (default no)\n"
        "  --notify-url URL      webhook (http:// or https://) for jobs submitted with\n"
        "                        --notify; in the config file notify-url.USER = URL gives\n"
        "                        one user their own (default none: --notify is refused)\n"
        "  --notify-timeout TIME one webhook post (default 5s)\n"
        "  --notify-retries N    posts after a failed one, 2 s apart and doubling (default 5)\n"
        "  --version, --help\n"
        "exit: 0 stopped by SIGTERM/SIGINT, 1 failed, 2 bad usage or config, 3 the state\n"
        "directory or its database cannot be used (damaged, read-only, full, or held by\n"
        "another scheduler): restarting will not help until that is fixed\n");
}

typedef struct {
    sched_config_t *cfg;
    http_config_t *http;
    fs_config_t *fs; /* fair-share and limits (config file only) */
    char **owned;    /* strings kept for cfg's lifetime */
    size_t n_owned;
    sched_notify_url_t *notify_urls; /* cfg->notify_urls */
    wq_error_t err;
    const char *file;
} conf_ctx_t;

static const char *
keep(conf_ctx_t *c, const char *v)
{
    c->owned = wq_realloc(c->owned, (c->n_owned + 1) * sizeof *c->owned);
    return c->owned[c->n_owned++] = wq_strdup(v);
}

static int
set_time(const char *v, const char *what, int64_t *ms, wq_error_t *err)
{
    int64_t s;
    /* Bare numbers are seconds here (unlike job --time, where they are minutes). */
    char *tmp = NULL;
    size_t n = strlen(v);
    if (n > 0 && v[n - 1] >= '0' && v[n - 1] <= '9')
        v = tmp = wq_asprintf("%ss", v);
    int rc = wq_parse_duration(v, what, &s, err);
    free(tmp);
    if (rc < 0)
        return -1;
    if (s == 0)
        return wq_fail(err, WQ_EINVAL, "%s must be more than 0", what);
    *ms = s * 1000;
    return 0;
}

/* Apply one setting (from a flag or the config file). */
static int
apply(conf_ctx_t *c, const char *key, const char *v, wq_error_t *err)
{
    sched_config_t *cfg = c->cfg;
    if (strcmp(key, "listen") == 0) {
        cfg->listen = keep(c, v);
    } else if (strcmp(key, "state-dir") == 0 || strcmp(key, "state_dir") == 0) {
        cfg->state_dir = keep(c, v);
    } else if (strcmp(key, "http") == 0) {
        cfg->http = keep(c, v);
    } else if (strcmp(key, "http-token") == 0 || strcmp(key, "http_token_file") == 0) {
        c->http->token_file = keep(c, v);
    } else if (strcmp(key, "http-public") == 0 || strcmp(key, "http_public") == 0) {
        if (strcmp(v, "summary") == 0)
            c->http->public_summary = 1;
        else if (strcmp(v, "none") == 0)
            c->http->public_summary = 0;
        else
            return wq_fail(err, WQ_EINVAL, "http-public: '%.40s' is not summary or none", v);
    } else if (strcmp(key, "http-rate") == 0 || strcmp(key, "http_rate") == 0) {
        int64_t n;
        if (wq_parse_int(v, 0, 100000, "http-rate", &n, err) < 0)
            return -1;
        c->http->rate = (unsigned) n;
    } else if (strcmp(key, "torpid") == 0) {
        return set_time(v, "torpid", &cfg->torpid_ms, err);
    } else if (strcmp(key, "lost") == 0) {
        return set_time(v, "lost", &cfg->lost_ms, err);
    } else if (strcmp(key, "start-timeout") == 0 || strcmp(key, "start_timeout") == 0) {
        return set_time(v, "start-timeout", &cfg->start_timeout_ms, err);
    } else if (strcmp(key, "kill-grace") == 0 || strcmp(key, "kill_grace") == 0) {
        return set_time(v, "kill-grace", &cfg->kill_grace_ms, err);
    } else if (strcmp(key, "preempt-grace") == 0 || strcmp(key, "preempt_grace") == 0) {
        return set_time(v, "preempt-grace", &cfg->preempt_grace_ms, err);
    } else if (strcmp(key, "port-range") == 0 || strcmp(key, "port_range") == 0) {
        unsigned lo, hi;
        char extra;
        if (sscanf(v, "%u-%u%c", &lo, &hi, &extra) != 2 || lo < 1024 || hi > 65535 || lo > hi)
            return wq_fail(err, WQ_EINVAL, "port-range: '%s' is not LO-HI within 1024-65535", v);
        cfg->port_lo = lo;
        cfg->port_hi = hi;
    } else if (strcmp(key, "advertise") == 0) {
        if (strncmp(v, "tcp://", 6) != 0)
            return wq_fail(err, WQ_EINVAL, "advertise: '%s' is not tcp://HOST:PORT", v);
        cfg->advertise = keep(c, v);
    } else if (strcmp(key, "admin-socket") == 0 || strcmp(key, "admin_socket") == 0) {
        cfg->admin_path = keep(c, v);
    } else if (strcmp(key, "user-socket") == 0 || strcmp(key, "user_socket") == 0) {
        if (v[0] != '\0' && strcmp(v, "none") != 0 && v[0] != '/')
            return wq_fail(err, WQ_EINVAL, "user-socket: '%s' is not an absolute path or none", v);
        cfg->user_path = keep(c, v);
    } else if (strcmp(key, "insecure") == 0) {
        if (strcmp(v, "yes") == 0)
            cfg->insecure = 1;
        else if (strcmp(v, "no") == 0)
            cfg->insecure = 0;
        else
            return wq_fail(err, WQ_EINVAL, "insecure: '%s' is not 'yes' or 'no'", v);
    } else if (strcmp(key, "notify-url") == 0 || strcmp(key, "notify_url") == 0) {
        if (notify_check_url(v, err) < 0)
            return -1;
        cfg->notify_url = keep(c, v);
    } else if (strncmp(key, "notify-url.", 11) == 0 || strncmp(key, "notify_url.", 11) == 0) {
        const char *user = key + 11;
        if (*user == '\0' || strlen(user) > WIRE_MAX_NAME)
            return wq_fail(err, WQ_EINVAL, "%.40s: give a user name after 'notify-url.'", key);
        if (notify_check_url(v, err) < 0)
            return -1;
        size_t i;
        for (i = 0; i < cfg->n_notify_urls; i++)
            if (strcmp(c->notify_urls[i].user, user) == 0)
                break; /* a later line wins */
        if (i == cfg->n_notify_urls) {
            c->notify_urls = wq_realloc(c->notify_urls, (i + 1) * sizeof *c->notify_urls);
            c->notify_urls[i].user = keep(c, user);
            cfg->n_notify_urls++;
        }
        c->notify_urls[i].url = keep(c, v);
        cfg->notify_urls = c->notify_urls;
    } else if (strcmp(key, "notify-timeout") == 0 || strcmp(key, "notify_timeout") == 0) {
        return set_time(v, "notify-timeout", &cfg->notify_timeout_ms, err);
    } else if (strcmp(key, "notify-retries") == 0 || strcmp(key, "notify_retries") == 0) {
        int64_t n;
        if (wq_parse_int(v, 0, 100, "notify-retries", &n, err) < 0)
            return -1;
        cfg->notify_retries = (unsigned) n;
    } else if (strcmp(key, "backfill-depth") == 0 || strcmp(key, "backfill_depth") == 0) {
        int64_t n;
        if (wq_parse_int(v, 0, BF_MAX_DEPTH, "backfill_depth", &n, err) < 0)
            return -1;
        cfg->backfill_depth = (unsigned) n;
    } else if (strcmp(key, "default-time-limit") == 0 || strcmp(key, "default_time_limit") == 0) {
        return set_time(v, "default_time_limit", &cfg->default_time_limit_ms, err);
    } else if (strcmp(key, "sync") == 0) {
        if (strcmp(v, "full") == 0)
            cfg->sync_full = 1;
        else if (strcmp(v, "normal") == 0)
            cfg->sync_full = 0;
        else
            return wq_fail(err, WQ_EINVAL, "sync: '%s' is not 'full' or 'normal'", v);
    } else {
        int rc = c->fs ? fs_config_apply(c->fs, key, v, err) : 0;
        if (rc == 0)
            rc = snapshots_config_apply(cfg, key, v, err);
        if (rc != 0)
            return rc < 0 ? -1 : 0;
        return wq_fail(err, WQ_EINVAL, "unknown setting '%s'", key);
    }
    return 0;
}

static void
conf_free(conf_ctx_t *c)
{
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    free(c->notify_urls);
    c->notify_urls = NULL;
    c->owned = NULL;
    c->n_owned = 0;
    if (c->fs)
        fs_config_free(c->fs);
}

/* main's every way out: the configuration's strings go with it (LeakSanitizer checks). */
static int
done(conf_ctx_t *c, int rc)
{
    conf_free(c);
    return rc;
}

static int
on_ini(void *user, const char *section, const char *name, const char *value)
{
    conf_ctx_t *c = user;
    if (strcmp(section, "scheduler") != 0)
        return 1; /* other programs' sections share the file */
    wq_error_t e = {0};
    if (apply(c, name, value, &e) < 0) {
        c->err = e;
        return 0;
    }
    return 1;
}

int
main(int argc, char **argv)
{
    wq_log_init("wslq-scheduler");
    umask(077);          /* everything it writes (queue, logs, keys) is its account's alone */
    wq_raise_fd_limit(); /* peers, the queue, logs and the dashboard all take descriptors */
    sched_config_t cfg;
    sched_config_init(&cfg);
    http_config_t hcfg;
    http_config_init(&hcfg);
    fs_config_t fsc;
    fs_config_init(&fsc);
    cfg.fairshare = &fsc;
    conf_ctx_t ctx = {.cfg = &cfg, .http = &hcfg, .fs = &fsc};
    static const struct option opts[] = {{"listen", required_argument, 0, 'l'},
                                         {"state-dir", required_argument, 0, 's'},
                                         {"config", required_argument, 0, 'c'},
                                         {"http", required_argument, 0, 'H'},
                                         {"http-token", required_argument, 0, 'T'},
                                         {"http-rate", required_argument, 0, 'R'},
                                         {"http-public", required_argument, 0, 'P'},
                                         {"torpid", required_argument, 0, 't'},
                                         {"lost", required_argument, 0, 'L'},
                                         {"start-timeout", required_argument, 0, 'S'},
                                         {"kill-grace", required_argument, 0, 'k'},
                                         {"preempt-grace", required_argument, 0, 'G'},
                                         {"port-range", required_argument, 0, 'p'},
                                         {"sync", required_argument, 0, 'y'},
                                         {"backfill-depth", required_argument, 0, 'b'},
                                         {"default-time-limit", required_argument, 0, 'D'},
                                         {"advertise", required_argument, 0, 'a'},
                                         {"admin-socket", required_argument, 0, 'A'},
                                         {"user-socket", required_argument, 0, 'U'},
                                         {"insecure", required_argument, 0, 'I'},
                                         {"notify-url", required_argument, 0, 'n'},
                                         {"notify-timeout", required_argument, 0, 'N'},
                                         {"notify-retries", required_argument, 0, 'r'},
                                         {"version", no_argument, 0, 'V'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    /* The config file first, so flags override it. */
    for (int i = 1; i < argc - 1; i++)
        if (strcmp(argv[i], "--config") == 0) {
            ctx.file = argv[i + 1];
            int rc = ini_parse(ctx.file, on_ini, &ctx);
            if (rc < 0) {
                fprintf(stderr, "wslq-scheduler: cannot read config file %s\n", ctx.file);
                return done(&ctx, 2);
            }
            if (rc > 0) {
                if (ctx.err.text[0])
                    fprintf(stderr, "wslq-scheduler: %s:%d: %s\n", ctx.file, rc, ctx.err.text);
                else
                    fprintf(stderr, "wslq-scheduler: %s:%d: syntax error\n", ctx.file, rc);
                return done(&ctx, 2);
            }
        }
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        wq_error_t err = {0};
        int rc = 0;
        switch (c) {
        case 'c':
            break;
        case 'V':
            printf("wslq-scheduler 0.1.0\n");
            return done(&ctx, 0);
        case 'h':
            usage(stdout);
            return done(&ctx, 0);
        case '?':
            fprintf(stderr, "wslq-scheduler: unknown or incomplete option '%s'; see --help\n",
                    argv[optind - 1]);
            return done(&ctx, 2);
        default: {
            const char *key = NULL;
            for (const struct option *o = opts; o->name; o++)
                if (o->val == c)
                    key = o->name;
            rc = apply(&ctx, key, optarg, &err);
        }
        }
        if (rc < 0) {
            fprintf(stderr, "wslq-scheduler: %s\n", err.text);
            return done(&ctx, 2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "wslq-scheduler: unexpected argument '%s'; see --help\n", argv[optind]);
        return done(&ctx, 2);
    }
    if (cfg.http != NULL && strcmp(cfg.http, "off") != 0) {
        struct sockaddr_storage ss;
        socklen_t sslen;
        wq_error_t err = {0};
        if (http_parse_listen(cfg.http, &ss, &sslen, &err) < 0) {
            fprintf(stderr, "wslq-scheduler: %s\n", err.text);
            conf_free(&ctx);
            return done(&ctx, 2);
        }
    }
    if (cfg.state_dir == NULL)
        cfg.state_dir = "/var/lib/wslq/scheduler";
    if (cfg.lost_ms <= cfg.torpid_ms) {
        fprintf(stderr, "wslq-scheduler: lost (%lld ms) must be longer than torpid (%lld ms)\n",
                (long long) cfg.lost_ms, (long long) cfg.torpid_ms);
        return done(&ctx, 2);
    }
    wq_error_t err = {0};
    sched_t *s = sched_new(&cfg, &err);
    if (s == NULL) {
        fprintf(stderr, "wslq-scheduler: %s\n", err.text);
        return done(&ctx, err.code == WQ_EIO || err.code == WQ_EBUSY ? EXIT_STATE : 1);
    }
    /* The dashboard. Asked for explicitly, it must start; the default address is best
     * effort (another scheduler on this machine may hold it) and only warns. */
    http_t *http = NULL;
    if (cfg.http == NULL || strcmp(cfg.http, "off") != 0) {
        if (cfg.http != NULL)
            hcfg.addr = cfg.http;
        /* an insecure cluster without a monitoring token keeps the dashboard open, as before */
        hcfg.open = cfg.insecure && hcfg.token_file == NULL;
        http = http_new(&hcfg, s, &err);
        if (http == NULL && cfg.http != NULL) {
            fprintf(stderr, "wslq-scheduler: %s\n", err.text);
            sched_destroy(&s);
            conf_free(&ctx);
            return done(&ctx, 1);
        }
        if (http == NULL)
            log_warn("dashboard not started: %s (set --http ADDR:PORT, or --http off)", err.text);
    }
    running = s;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    int rc = sched_run(s, &err);
    if (rc < 0)
        fprintf(stderr, "wslq-scheduler: %s\n", err.text);
    int db_failed = rc < 0 && err.code == WQ_EIO;
    running = NULL;
    http_destroy(&http);
    sched_destroy(&s);
    conf_free(&ctx);
    log_info("scheduler stopped");
    return done(&ctx, db_failed ? EXIT_STATE : rc < 0 ? 1 : 0);
}
