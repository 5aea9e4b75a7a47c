/* Worker settings (see config.h). */
#include "worker/config.h"

#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/parse.h"

#define DEFAULT_SCHEDULER  "tcp://127.0.0.1:7420"
#define DEFAULT_OWNER_FILE "/mnt/c/ProgramData/wslq/owner.json"

int
wcfg_valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > WIRE_MAX_NAME)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

void
wcfg_defaults(wcfg_t *c)
{
    memset(c, 0, sizeof *c);
    const char *s = getenv("WSLQ_SCHEDULER");
    snprintf(c->scheduler, sizeof c->scheduler, "%s", s && *s ? s : DEFAULT_SCHEDULER);
    c->scheduler_given = s && *s;
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) == 0)
        snprintf(c->name, sizeof c->name, "%.128s", host);
    /* root (the systemd unit): /var/lib/wslq/worker; a user: the XDG state directory */
    const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
    if (geteuid() == 0)
        snprintf(c->state_dir, sizeof c->state_dir, "/var/lib/wslq/worker");
    else if (xdg != NULL && *xdg == '/')
        snprintf(c->state_dir, sizeof c->state_dir, "%.4000s/wslq/worker", xdg);
    else
        snprintf(c->state_dir, sizeof c->state_dir, "%.4000s/.local/state/wslq/worker",
                 home && *home ? home : "/tmp");
    c->gpus = -1;
    c->heartbeat_ms = 1000;
    c->idle_heartbeat_ms = 0; /* unset: as the scheduler allows (wcfg_idle_ms) */
    c->kill_grace_ms = 10000;
    c->spool_keep_days = 7;
    c->rendezvous = 1;
    c->inbound_ok = -1;
    c->run_as = RUNAS_SERVICE;
    snprintf(c->service_user, sizeof c->service_user, "wslq");
    snprintf(c->owner_file, sizeof c->owner_file, "%s", DEFAULT_OWNER_FILE);
    c->owner = OWNER_IGNORE;
    owner_limits_default(&c->owner_lim);
    c->owner_suspend_max_min = 30;
    c->cpu_bind = ISOL_BIND_CORES;
    c->cgroup = ISOL_CG_AUTO;
    c->mem_watch = 1;
}

static int
copy_str(char *dst, size_t n, const char *v, const char *key, wq_error_t *err)
{
    if (strlen(v) >= n)
        return wq_fail(err, WQ_EINVAL, "%s is too long (at most %zu characters)", key, n - 1);
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

static int
parse_bool(const char *v, const char *key, int *out, wq_error_t *err)
{
    if (!strcasecmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "true") ||
        !strcasecmp(v, "on"))
        *out = 1;
    else if (!strcasecmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "false") ||
             !strcasecmp(v, "off"))
        *out = 0;
    else if (!strcasecmp(v, "auto") && strcmp(key, "inbound_ok") == 0)
        *out = -1;
    else
        return wq_fail(err, WQ_EINVAL, "%s: expected yes or no, got '%s'", key, v);
    return 0;
}

int
wcfg_set(wcfg_t *c, const char *key, const char *v, wq_error_t *err)
{
    int64_t x;
    if (strcmp(key, "scheduler") == 0) {
        if (strncmp(v, "tcp://", 6) != 0 && strncmp(v, "ipc://", 6) != 0)
            return wq_fail(err, WQ_EINVAL, "scheduler: expected tcp://HOST:PORT, got '%s'", v);
        c->scheduler_given = 1;
        return copy_str(c->scheduler, sizeof c->scheduler, v, key, err);
    }
    if (strcmp(key, "name") == 0) {
        if (!wcfg_valid_name(v))
            return wq_fail(err, WQ_EINVAL,
                           "name: '%s' is not a valid node name (letters, digits, '.', '_', '-')",
                           v);
        c->name_given = 1;
        return copy_str(c->name, sizeof c->name, v, key, err);
    }
    if (strcmp(key, "state_dir") == 0) {
        if (*v != '/')
            return wq_fail(err, WQ_EINVAL, "state_dir: '%s' is not an absolute path", v);
        return copy_str(c->state_dir, sizeof c->state_dir, v, key, err);
    }
    if (strcmp(key, "iface") == 0)
        return copy_str(c->iface, sizeof c->iface, v, key, err);
    if (strcmp(key, "ip") == 0)
        return copy_str(c->ip, sizeof c->ip, v, key, err);
    if (strcmp(key, "gpus") == 0) {
        if (wq_parse_int(v, 0, WIRE_MAX_GPUS, "gpus", &x, err) < 0)
            return -1;
        c->gpus = (int) x;
        return 0;
    }
    if (strcmp(key, "cpus") == 0) {
        if (wq_parse_int(v, 1, WIRE_MAX_CPUS, "cpus", &x, err) < 0)
            return -1;
        c->cpus = (int) x;
        return 0;
    }
    if (strcmp(key, "mem") == 0) {
        if (wq_parse_size_mb(v, "mem", &x, err) < 0)
            return -1;
        if (x <= 0)
            return wq_fail(err, WQ_EINVAL, "mem: must be more than 0");
        c->mem_mb = x;
        return 0;
    }
    if (strcmp(key, "heartbeat_ms") == 0) {
        if (wq_parse_int(v, 50, 60000, "heartbeat_ms", &x, err) < 0)
            return -1;
        c->heartbeat_ms = (int) x;
        return 0;
    }
    if (strcmp(key, "idle_heartbeat_ms") == 0) {
        if (wq_parse_int(v, 50, 60000, "idle_heartbeat_ms", &x, err) < 0)
            return -1;
        c->idle_heartbeat_ms = (int) x;
        return 0;
    }
    if (strcmp(key, "kill_grace_ms") == 0) {
        if (wq_parse_int(v, 0, 3600000, "kill_grace_ms", &x, err) < 0)
            return -1;
        c->kill_grace_ms = x;
        return 0;
    }
    if (strcmp(key, "spool_keep_days") == 0) {
        if (wq_parse_int(v, 0, 3650, "spool_keep_days", &x, err) < 0)
            return -1;
        c->spool_keep_days = (int) x;
        return 0;
    }
    if (strcmp(key, "probe_port") == 0) {
        if (wq_parse_int(v, 0, 65535, "probe_port", &x, err) < 0)
            return -1;
        c->probe_port = (int) x;
        return 0;
    }
    if (strcmp(key, "rendezvous") == 0)
        return parse_bool(v, key, &c->rendezvous, err);
    if (strcmp(key, "cpu_bind") == 0) {
        if (strcmp(v, "none") == 0 || strcmp(v, "cores") == 0) {
            c->cpu_bind = strcmp(v, "cores") == 0 ? ISOL_BIND_CORES : ISOL_BIND_NONE;
            return 0;
        }
        return wq_fail(err, WQ_EINVAL, "cpu_bind: expected none or cores, got '%.64s'", v);
    }
    if (strcmp(key, "cgroup") == 0) {
        static const char *const names[] = {"auto", "v2", "v1", "none"};
        for (int i = 0; i < 4; i++)
            if (strcmp(v, names[i]) == 0) {
                c->cgroup = i;
                return 0;
            }
        return wq_fail(err, WQ_EINVAL, "cgroup: expected auto, v2, v1 or none, got '%.64s'", v);
    }
    if (strcmp(key, "cgroup_root") == 0) {
        if (*v != '\0' && *v != '/')
            return wq_fail(err, WQ_EINVAL, "cgroup_root: '%.200s' is not an absolute path", v);
        return copy_str(c->cgroup_root, sizeof c->cgroup_root, v, key, err);
    }
    if (strcmp(key, "mem_watch") == 0)
        return parse_bool(v, key, &c->mem_watch, err);
    if (strcmp(key, "container_engine") == 0)
        return copy_str(c->container_engine, sizeof c->container_engine, v, key, err);
    if (strcmp(key, "container_flags") == 0)
        return copy_str(c->container_flags, sizeof c->container_flags, v, key, err);
    if (strcmp(key, "inbound_ok") == 0)
        return parse_bool(v, key, &c->inbound_ok, err);
    if (strcmp(key, "run_as") == 0)
        return runas_parse_mode(v, &c->run_as, err);
    if (strcmp(key, "credentials") == 0) {
        if (*v != '/')
            return wq_fail(err, WQ_EINVAL, "credentials: '%s' is not an absolute path", v);
        return copy_str(c->credentials, sizeof c->credentials, v, key, err);
    }
    if (strcmp(key, "insecure") == 0)
        return parse_bool(v, key, &c->insecure, err);
    if (strcmp(key, "service_user") == 0) {
        if (!runas_valid_name(v))
            return wq_fail(err, WQ_EINVAL, "service_user: '%.64s' is not an account name", v);
        return copy_str(c->service_user, sizeof c->service_user, v, key, err);
    }
    if (strcmp(key, "owner_file") == 0) {
        if (*v != '\0' && *v != '/')
            return wq_fail(err, WQ_EINVAL, "owner_file: '%s' is not an absolute path", v);
        return copy_str(c->owner_file, sizeof c->owner_file, v, key, err);
    }
    if (strcmp(key, "owner") == 0) {
        if (owner_policy_parse(v, &c->owner) < 0)
            return wq_fail(err, WQ_EINVAL,
                           "owner: expected ignore, yield, suspend or evict, got '%s'", v);
        return 0;
    }
    if (strcmp(key, "owner_user") == 0) {
        if (!runas_valid_name(v))
            return wq_fail(err, WQ_EINVAL, "owner_user: '%.64s' is not an account name", v);
        return copy_str(c->owner_user, sizeof c->owner_user, v, key, err);
    }
    struct {
        const char *key;
        int lo, hi;
        int *dst;
    } ints[] = {
        {"owner_away_min", 0, 1440, &c->owner_lim.away_min},
        {"owner_stale_s", 1, 86400, &c->owner_lim.stale_s},
        {"owner_gpu_mem_mb", 0, 1048576, &c->owner_lim.gpu_mem_mb},
        {"owner_gpu_pct", 0, 100, &c->owner_lim.gpu_pct},
        {"owner_suspend_max_min", 1, 10080, &c->owner_suspend_max_min},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (strcmp(key, ints[i].key) == 0) {
            if (wq_parse_int(v, ints[i].lo, ints[i].hi, key, &x, err) < 0)
                return -1;
            *ints[i].dst = (int) x;
            return 0;
        }
    return wq_fail(err, WQ_EINVAL, "unknown key '%s'", key);
}

typedef struct {
    wcfg_t *c;
    const char *path;
    wq_error_t err; /* the first error */
    int failed;
} load_ctx_t;

/* This inih has no line numbers in the handler; ini_parse_file returns the first failing
 * line, which wcfg_load puts in front of the handler's text. */
static int
on_ini(void *user, const char *section, const char *name, const char *value)
{
    load_ctx_t *lc = user;
    wq_error_t e = {0};
    int rc = 0;
    if (strcmp(section, "worker") != 0)
        return 1; /* other programs' sections in a shared file */
    rc = wcfg_set(lc->c, name, value, &e);
    if (rc < 0 && !lc->failed) {
        lc->failed = 1;
        lc->err = e;
    }
    return rc == 0;
}

int
wcfg_load(wcfg_t *c, const char *path, wq_error_t *err)
{
    load_ctx_t lc = {.c = c, .path = path};
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return wq_fail_errno(err, "cannot read config %s", path);
    int rc = ini_parse_file(f, on_ini, &lc);
    fclose(f);
    if (lc.failed && rc > 0)
        return wq_fail(err, WQ_EINVAL, "%s:%d: %s", path, rc, lc.err.text);
    if (rc > 0)
        return wq_fail(err, WQ_EINVAL, "%s:%d: syntax error", path, rc);
    if (rc < 0)
        return wq_fail(err, WQ_EIO, "%s: cannot parse", path);
    return 0;
}

int
wcfg_finish(wcfg_t *c, wq_error_t *err)
{
    if (c->idle_heartbeat_ms != 0 && c->idle_heartbeat_ms < c->heartbeat_ms)
        return wq_fail(err, WQ_EINVAL, "idle_heartbeat_ms: %d is less than heartbeat_ms (%d)",
                       c->idle_heartbeat_ms, c->heartbeat_ms);
    return 0;
}

int
wcfg_idle_ms(const wcfg_t *c, uint32_t sched_max_ms)
{
    int hb = c->heartbeat_ms, ms;
    if (c->idle_heartbeat_ms > 0)
        ms = c->idle_heartbeat_ms; /* the scheduler warns when it is over half of --lost */
    else if (sched_max_ms == 0)
        ms = 3 * hb < 3000 ? 3 * hb : 3000;
    else {
        /* 5000 at the shipped heartbeat_ms and --lost 10s: 2 heartbeats before a loss */
        ms = 5 * hb < 5000 ? 5 * hb : 5000;
        if ((uint32_t) ms > sched_max_ms)
            ms = (int) sched_max_ms;
    }
    return ms > hb ? ms : hb;
}

static const struct option long_opts[] = {
    {"scheduler", required_argument, NULL, 0},
    {"name", required_argument, NULL, 0},
    {"state-dir", required_argument, NULL, 0},
    {"config", required_argument, NULL, 'c'},
    {"gpus", required_argument, NULL, 0},
    {"cpus", required_argument, NULL, 0},
    {"mem", required_argument, NULL, 0},
    {"iface", required_argument, NULL, 0},
    {"ip", required_argument, NULL, 0},
    {"heartbeat-ms", required_argument, NULL, 0},
    {"idle-heartbeat-ms", required_argument, NULL, 0},
    {"kill-grace-ms", required_argument, NULL, 0},
    {"spool-keep-days", required_argument, NULL, 0},
    {"rendezvous", required_argument, NULL, 0},
    {"cpu-bind", required_argument, NULL, 0},
    {"cgroup", required_argument, NULL, 0},
    {"cgroup-root", required_argument, NULL, 0},
    {"mem-watch", required_argument, NULL, 0},
    {"container-engine", required_argument, NULL, 0},
    {"container-flags", required_argument, NULL, 0},
    {"inbound-ok", required_argument, NULL, 0},
    {"probe-port", required_argument, NULL, 0},
    {"run-as", required_argument, NULL, 0},
    {"service-user", required_argument, NULL, 0},
    {"credentials", required_argument, NULL, 0},
    {"insecure", required_argument, NULL, 0},
    {"owner", required_argument, NULL, 0},
    {"owner-file", required_argument, NULL, 0},
    {"owner-away-min", required_argument, NULL, 0},
    {"owner-stale-s", required_argument, NULL, 0},
    {"owner-gpu-mem-mb", required_argument, NULL, 0},
    {"owner-gpu-pct", required_argument, NULL, 0},
    {"owner-user", required_argument, NULL, 0},
    {"owner-suspend-max-min", required_argument, NULL, 0},
    {"join", required_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

const char *
wcfg_usage(void)
{
    return "usage: wslq-worker [options]\n"
           "  --scheduler URL       scheduler endpoint (default $WSLQ_SCHEDULER "
           "or " DEFAULT_SCHEDULER ")\n"
           "  --name NAME           node name (default the hostname)\n"
           "  --state-dir DIR       job state and spooled logs (default /var/lib/wslq/worker as\n"
           "                        root, else $XDG_STATE_HOME/wslq/worker)\n"
           "  --config FILE         INI file with a [worker] section (keys as these flags)\n"
           "  --gpus N              declare N GPUs instead of discovering them (test machines)\n"
           "  --cpus N              CPUs to offer (default all online)\n"
           "  --mem SIZE            memory to offer, e.g. 16G (default MemTotal)\n"
           "  --iface NAME          cluster interface (default the default route's)\n"
           "  --ip ADDR             LAN IP to report (default the interface's address)\n"
           "  --heartbeat-ms N      heartbeat interval (default 1000)\n"
           "  --idle-heartbeat-ms N heartbeat interval while no job runs here, at least\n"
           "                        --heartbeat-ms (default 5 x it, at most 5000 and\n"
           "                        at most half the scheduler's --lost)\n"
           "  --kill-grace-ms N     SIGTERM to SIGKILL grace (default 10000)\n"
           "  --spool-keep-days N   keep ended jobs' logs this long (default 7, 0 = forever)\n"
           "  --rendezvous yes|no   offer WSLQ_RENDEZVOUS sockets to jobs (default yes)\n"
           "  --cpu-bind none|cores bind each job's ranks to CPUs of its own (default cores)\n"
           "  --cgroup auto|v2|v1|none  a cgroup per job with its --mem as the limit\n"
           "                        (default auto: v2, else v1's memory controller, else none)\n"
           "  --cgroup-root DIR     where job cgroups are made (default the worker's own)\n"
           "  --mem-watch yes|no    without a cgroup, end a job over its --mem (default yes)\n"
           "  --container-engine E  podman or docker (a name or path) for --container jobs\n"
           "                        (default podman, else docker, whichever PATH has)\n"
           "  --container-flags F   the engine's global flags, e.g. '--runtime runc'\n"
           "  --inbound-ok yes|no|auto  peers can connect in (multi-node jobs)\n"
           "  --probe-port N        TCP port of the inbound self-test (default 0 = ephemeral)\n"
           "  --run-as MODE         service: jobs run as the service account (default);\n"
           "                        owner: as the local account named like the job's owner\n"
           "                        (needs root); worker: as this worker's account, even\n"
           "                        root (test machines only)\n"
           "  --service-user NAME   service mode with a root worker: the jobs' account\n"
           "                        (default wslq)\n"
           "  --join CODE           join the cluster with a code from 'wslq admin node invite':\n"
           "                        makes this PC's key pair, enrols it, saves the credentials,\n"
           "                        exits. Then start the worker as usual\n"
           "  --credentials FILE    this node's keys (default STATE_DIR/credentials, 0600)\n"
           "  --insecure yes|no     no CURVE: only with a scheduler started --insecure\n"
           "  --owner POLICY        ignore (default); yield: no new jobs here while the PC's\n"
           "                        owner is present, gaming or unknown; suspend: also stop\n"
           "                        (SIGSTOP) running --preemptible jobs while the owner is\n"
           "                        present or gaming; evict: requeue them elsewhere instead\n"
           "  --owner-user NAME     the PC owner's wslq user: their jobs run here regardless\n"
           "  --owner-suspend-max-min N  suspend: requeue a job stopped this long (default 30)\n"
           "  --owner-file FILE     the Windows reporter's file (default\n"
           "                        " DEFAULT_OWNER_FILE ")\n"
           "  --owner-away-min N    no input for N minutes = away (default 10)\n"
           "  --owner-stale-s N     an older owner file = unknown (default 30)\n"
           "  --owner-gpu-mem-mb N  Windows GPU memory in use that means gaming (default 2048)\n"
           "  --owner-gpu-pct N     a Windows process's GPU engine % that means gaming (default "
           "30)\n"
           "  --version, --help\n";
}

int
wcfg_parse_args(wcfg_t *c, int argc, char **argv, enum wcfg_action *action, wq_error_t *err)
{
    wcfg_defaults(c);
    *action = WCFG_RUN;
    const char *config = NULL;
    /* keys and values of the flags, applied after the config file so flags win */
    const char *keys[64], *vals[64];
    int nkv = 0;
    opterr = 0;
    optind = 1;
    for (;;) {
        int idx = -1;
        int ch = getopt_long(argc, argv, ":hV", long_opts, &idx);
        if (ch == -1)
            break;
        if (ch == 'h') {
            *action = WCFG_HELP;
            return 0;
        }
        if (ch == 'V') {
            *action = WCFG_VERSION;
            return 0;
        }
        if (ch == 'c') {
            config = optarg;
            continue;
        }
        if (ch == 'j') {
            if (snprintf(c->join, sizeof c->join, "%s", optarg) >= (int) sizeof c->join)
                return wq_fail(err, WQ_EINVAL, "--join: the code is too long");
            *action = WCFG_JOIN;
            continue;
        }
        if (ch == ':')
            return wq_fail(err, WQ_EINVAL, "option %s needs a value", argv[optind - 1]);
        if (ch == '?' || idx < 0)
            return wq_fail(err, WQ_EINVAL, "unknown option '%s' (try --help)", argv[optind - 1]);
        if (nkv == 64)
            return wq_fail(err, WQ_EINVAL, "too many options");
        keys[nkv] = long_opts[idx].name;
        vals[nkv++] = optarg;
    }
    if (optind < argc)
        return wq_fail(err, WQ_EINVAL, "unexpected argument '%s' (try --help)", argv[optind]);
    if (config != NULL && wcfg_load(c, config, err) < 0)
        return -1;
    for (int i = 0; i < nkv; i++) {
        char key[32];
        snprintf(key, sizeof key, "%s", keys[i]);
        for (char *p = key; *p; p++)
            if (*p == '-')
                *p = '_';
        wq_error_t e = {0};
        if (wcfg_set(c, key, vals[i], &e) < 0)
            return wq_fail(err, WQ_EINVAL, "--%s: %s", keys[i], e.text);
    }
    if (wcfg_finish(c, err) < 0)
        return -1;
    if (c->credentials[0] == '\0' &&
        snprintf(c->credentials, sizeof c->credentials, "%s/credentials", c->state_dir) >=
            (int) sizeof c->credentials)
        return wq_fail(err, WQ_EINVAL, "state_dir is too long");
    if (!wcfg_valid_name(c->name))
        return wq_fail(err, WQ_EINVAL, "hostname '%s' is not a valid node name; pass --name NAME",
                       c->name);
    return 0;
}
