/* Ranks in containers (see container.h). */
#include "worker/container.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/mem.h"
#include "proto/jobspec.h"
#include "worker/jobenv.h"

/* A growable NULL-terminated argv of malloc'd strings. */
typedef struct {
    char **v;
    size_t n, cap;
} args_t;

static void
add(args_t *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = wq_realloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void
add2(args_t *a, const char *opt, char *val)
{
    add(a, wq_strdup(opt));
    add(a, val);
}

/* The global flags, blank-separated. */
static void
add_flags(args_t *a, const char *flags)
{
    for (const char *p = flags; p != NULL && *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, " \t");
        if (n > 0)
            add(a, wq_strndup(p, n));
        p += n;
    }
}

static int
executable(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* name in PATH: 1 with the path in out. */
static int
in_path(const char *name, const char *path, char *out, size_t size)
{
    if (strchr(name, '/') != NULL) {
        snprintf(out, size, "%s", name);
        return executable(out);
    }
    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *e = strchr(p, ':');
        size_t n = e ? (size_t) (e - p) : strlen(p);
        if (n > 0) {
            snprintf(out, size, "%.*s/%s", (int) n, p, name);
            if (executable(out))
                return 1;
        }
        if (e == NULL)
            return 0;
        p = e + 1;
    }
}

int
container_engine(const container_cfg_t *cfg, const char *path, char *out, size_t size, int *docker)
{
    const char *want = cfg != NULL && cfg->engine != NULL ? cfg->engine : "";
    int ok = *want ? in_path(want, path, out, size)
                   : in_path("podman", path, out, size) || in_path("docker", path, out, size);
    if (!ok)
        return -1;
    const char *base = strrchr(out, '/');
    *docker = strstr(base ? base + 1 : out, "docker") != NULL;
    return 0;
}

void
container_name(char *out,
               size_t size,
               const char *node,
               const char *state_dir,
               uint64_t job,
               uint32_t attempt,
               uint32_t grank)
{
    uint32_t h = 2166136261u; /* FNV-1a of the state directory */
    for (const char *p = state_dir ? state_dir : ""; *p; p++)
        h = (h ^ (unsigned char) *p) * 16777619u;
    snprintf(out, size, "wslq-%s-%" PRIu64 ".%" PRIu32 "-%" PRIu32 "-%08" PRIx32, node, job,
             attempt, grank, h);
}

/* The variables of the job that go into the container: the ones wslq sets and the job's own
 * (spec env and secrets); not the worker's PATH, HOME and the like, which belong to the host. */
static int
passed(const char *kv, const Wslq__JobSpec *spec)
{
    size_t n = strcspn(kv, "=");
    if (n == 20 && strncmp(kv, "CUDA_VISIBLE_DEVICES", 20) == 0)
        return 0; /* renumbered: the container sees only the rank's GPUs */
    if (jobspec_is_rank_var(kv, n) || strncmp(kv, "WSLQ_", 5) == 0 ||
        strncmp(kv, "NCCL_", 5) == 0 ||
        (n == 25 && strncmp(kv, "TF_FORCE_GPU_ALLOW_GROWTH", 25) == 0))
        return 1;
    for (size_t i = 0; spec != NULL && i < spec->n_env + spec->n_secret_env; i++) {
        const char *e = i < spec->n_env ? spec->env[i] : spec->secret_env[i - spec->n_env];
        if (strncmp(e, kv, n) == 0 && e[n] == '=')
            return 1;
    }
    return 0;
}

char **
container_argv(const container_rank_t *c,
               const char *exe_inside,
               char *const *argv,
               char *const *envp)
{
    args_t a = {0};
    add(&a, wq_strdup(c->engine));
    add_flags(&a, c->flags);
    add(&a, wq_strdup("run"));
    add(&a, wq_strdup("--rm"));
    add(&a, wq_strdup("--init"));           /* signals reach the job's process inside */
    add(&a, wq_strdup("--sig-proxy=true")); /* the client passes SIGTERM on */
    add2(&a, "--name", wq_strdup(c->name));
    add2(&a, "--network", wq_strdup("host")); /* NCCL, Gloo and MASTER_ADDR as on the host */
    add2(&a, "--ipc", wq_strdup("host"));
    add2(&a, "--volume", wq_asprintf("%s:%s", c->cwd, c->cwd));
    if (c->spool != NULL && *c->spool && strcmp(c->spool, c->cwd) != 0)
        add2(&a, "--volume", wq_asprintf("%s:%s", c->spool, c->spool));
    add2(&a, "--workdir", wq_strdup(c->cwd));
    /* never root inside: a rank that runs as root on the host runs as nobody */
    uid_t uid = c->uid ? c->uid : 65534;
    gid_t gid = c->uid ? c->gid : 65534;
    add2(&a, "--user", wq_asprintf("%u:%u", (unsigned) uid, (unsigned) gid));
    if (!c->docker && c->uid != 0)
        add(&a, wq_strdup("--userns=keep-id")); /* rootless Podman: the same uid inside */

    /* The rank's GPUs, by UUID (the index where a GPU has none). */
    const Wslq__Alloc *al = c->launch->alloc;
    size_t first = 0, count = 0;
    jobenv_rank_gpus(c->launch, c->lrank, &first, &count);
    char *ids = wq_strdup("");
    char *cvd = wq_strdup("");
    for (size_t i = first; al != NULL && i < first + count && i < al->n_gpus; i++) {
        char *id = i < al->n_gpu_uuids && al->gpu_uuids[i] && *al->gpu_uuids[i]
                       ? wq_strdup(al->gpu_uuids[i])
                       : wq_asprintf("%u", al->gpus[i]);
        if (!c->docker)
            add2(&a, "--device", wq_asprintf("nvidia.com/gpu=%s", id));
        char *t = wq_asprintf("%s%s%s", ids, *ids ? "," : "", id);
        free(ids);
        ids = t;
        t = wq_asprintf("%s%s%zu", cvd, *cvd ? "," : "", i - first);
        free(cvd);
        cvd = t;
        free(id);
    }
    /* Docker reads --gpus as CSV: a list of devices is quoted as one field */
    if (c->docker && *ids)
        add2(&a, "--gpus",
             strchr(ids, ',') ? wq_asprintf("\"device=%s\"", ids) : wq_asprintf("device=%s", ids));
    free(ids);
    add2(&a, "--env", wq_asprintf("CUDA_VISIBLE_DEVICES=%s", cvd));
    free(cvd);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (passed(envp[i], c->launch->spec))
            add2(&a, "--env", wq_strndup(envp[i], strcspn(envp[i], "=")));
    add(&a, wq_strdup(c->image));
    add(&a, wq_strdup(exe_inside != NULL ? exe_inside : argv[0]));
    for (size_t i = 1; argv[0] != NULL && argv[i] != NULL; i++)
        add(&a, wq_strdup(argv[i]));
    return a.v;
}

char **
container_rm_argv(const char *engine, int docker, const char *flags, char *const *names, size_t n)
{
    args_t a = {0};
    add(&a, wq_strdup(engine));
    add_flags(&a, flags);
    add(&a, wq_strdup("rm"));
    add(&a, wq_strdup("-f"));
    if (!docker) /* Podman would first wait 10 s for the container to stop; the grace is over */
        add2(&a, "--time", wq_strdup("0"));
    for (size_t i = 0; i < n; i++)
        add(&a, wq_strdup(names[i]));
    return a.v;
}

void
container_spawn_detached(char *const *argv, const runas_acct_t *acct)
{
    pid_t pid = fork();
    if (pid < 0)
        return;
    if (pid == 0) {
        setsid();
        if (fork() != 0)
            _exit(0);
        int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            dup2(fd, 0);
            dup2(fd, 1);
            dup2(fd, 2);
        }
        int e = 0;
        if (runas_switch(acct, &e) != 0)
            _exit(126);
        execv(argv[0], argv);
        _exit(127);
    }
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
}
