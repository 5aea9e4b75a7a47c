/* Job environment and argv building (see jobenv.h). */
#include "worker/jobenv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "proto/jobspec.h"
#include "worker/tfconfig.h"

/* A growable NULL-terminated vector of "K=V" strings. */
typedef struct {
    char **v;
    size_t n, cap;
} vec_t;

static void
vec_push(vec_t *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = wq_realloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static size_t
key_len(const char *kv)
{
    const char *eq = strchr(kv, '=');
    return eq ? (size_t) (eq - kv) : strlen(kv);
}

/* Set "K=V" (takes ownership of kv), replacing an earlier entry with the same key. */
static void
env_put(vec_t *a, char *kv)
{
    size_t kl = key_len(kv);
    for (size_t i = 0; i < a->n; i++) {
        if (key_len(a->v[i]) == kl && strncmp(a->v[i], kv, kl) == 0) {
            free(a->v[i]);
            a->v[i] = kv;
            return;
        }
    }
    vec_push(a, kv);
}

static void
env_set(vec_t *a, const char *k, const char *v)
{
    env_put(a, wq_asprintf("%s=%s", k, v ? v : ""));
}

static void
env_setu(vec_t *a, const char *k, uint64_t v)
{
    env_put(a, wq_asprintf("%s=%" PRIu64, k, v));
}

/* Variables of the worker that must not leak into jobs. */
static int
is_private(const char *kv)
{
    return strncmp(kv, "WSLQ_", 5) == 0 || strncmp(kv, "NOTIFY_SOCKET=", 14) == 0 ||
           strncmp(kv, "LISTEN_", 7) == 0;
}

int
jobenv_nranks(const Wslq__JobLaunch *l)
{
    if (l->spec != NULL && l->spec->per_node)
        return 1;
    if (l->alloc == NULL || l->alloc->nranks == 0)
        return 1;
    return (int) l->alloc->nranks;
}

void
jobenv_rank_gpus(const Wslq__JobLaunch *l, int lrank, size_t *first, size_t *count)
{
    size_t g = l->alloc ? l->alloc->n_gpus : 0;
    size_t r = (size_t) jobenv_nranks(l);
    *first = 0;
    *count = g;
    if (g == 0 || r <= 1)
        return;
    if (g % r == 0) {
        *count = g / r;
        *first = (size_t) lrank * *count;
    }
}

char **
jobenv_build(const Wslq__JobLaunch *l, const jobenv_ctx_t *c, int lrank, char *const *base)
{
    vec_t a = {0};
    for (size_t i = 0; base != NULL && base[i] != NULL; i++)
        if (!is_private(base[i]) && strchr(base[i], '=') != NULL)
            env_put(&a, wq_strdup(base[i]));
    /* The worker's own values (root's HOME, say) would be wrong for another account. */
    if (c->user != NULL) {
        env_set(&a, "HOME", c->home ? c->home : "/");
        env_set(&a, "USER", c->user);
        env_set(&a, "LOGNAME", c->user);
    }

    const Wslq__JobSpec *spec = l->spec;
    const Wslq__Alloc *al = l->alloc;
    int nranks = jobenv_nranks(l);
    uint32_t first_rank = al ? al->first_rank : 0;
    uint32_t node_rank = al ? al->node_rank : 0;
    uint32_t nnodes = l->nnodes ? l->nnodes : 1;
    uint32_t world = l->world_size ? l->world_size : (uint32_t) nranks;

    env_setu(&a, "WSLQ_JOB_ID", l->job_id);
    env_set(&a, "WSLQ_JOB_NAME", spec && spec->name ? spec->name : "");
    env_setu(&a, "WSLQ_ATTEMPT", l->attempt);
    env_set(&a, "WSLQ_NODE", c->node);
    if (c->cpus != NULL && c->cpus[0])
        env_set(&a, "WSLQ_CPUS", c->cpus);
    if (l->array_job_id != 0) { /* a task of a job array */
        env_setu(&a, "WSLQ_ARRAY_JOB_ID", l->array_job_id);
        env_setu(&a, "WSLQ_ARRAY_INDEX", l->array_index);
    }

    /* CUDA_VISIBLE_DEVICES holds NVML indices; CUDA_DEVICE_ORDER=PCI_BUS_ID makes CUDA number
     * devices the way NVML does (CUDA's default is fastest-first). A job without GPUs gets
     * the empty string, which hides every GPU from CUDA. */
    size_t gfirst, gcount;
    jobenv_rank_gpus(l, lrank, &gfirst, &gcount);
    char cvd[WIRE_MAX_GPUS * 12 + 1] = "";
    char *uuids = wq_strdup("");
    size_t used = 0;
    char dml[WIRE_MAX_GPUS * 4 + 1] = "";
    char *dx = wq_strdup("");
    size_t dml_len = 0;
    for (size_t i = gfirst; i < gfirst + gcount; i++) {
        if (i < al->n_dx_luids && al->dx_luids[i][0] != '\0') {
            /* a DirectX GPU of another vendor: not CUDA's; DML_VISIBLE_DEVICES numbers the
             * node's adapters in DXCore's order */
            int ord = -1;
            for (int k = 0; c->dx_order != NULL && c->dx_order[k] != NULL; k++)
                if (strcmp(c->dx_order[k], al->dx_luids[i]) == 0)
                    ord = k;
            int n = ord < 0 ? 0
                            : snprintf(dml + dml_len, sizeof dml - dml_len, "%s%d",
                                       dml_len ? "," : "", ord);
            if (n > 0 && (size_t) n < sizeof dml - dml_len)
                dml_len += (size_t) n;
            char *d = wq_asprintf("%s%s%s", dx, *dx ? "," : "", al->dx_luids[i]);
            free(dx);
            dx = d;
            continue;
        }
        int n = snprintf(cvd + used, sizeof cvd - used, "%s%u", used ? "," : "", al->gpus[i]);
        if (n > 0 && (size_t) n < sizeof cvd - used)
            used += (size_t) n;
        if (i < al->n_gpu_uuids) {
            char *u = wq_asprintf("%s%s%s", uuids, *uuids ? "," : "", al->gpu_uuids[i]);
            free(uuids);
            uuids = u;
        }
    }
    env_set(&a, "CUDA_VISIBLE_DEVICES", cvd);
    env_set(&a, "CUDA_DEVICE_ORDER", "PCI_BUS_ID");
    env_set(&a, "WSLQ_GPU_UUIDS", uuids);
    free(uuids);
    if (*dx) {
        env_set(&a, "DML_VISIBLE_DEVICES", dml);
        env_set(&a, "WSLQ_DX_ADAPTERS", dx);
    }
    free(dx);
    if (al != NULL && al->gpu_mem_mb > 0 && gcount > 0) {
        /* A share of each GPU (--gpu-mem): the budget in MiB, as a fraction of the smallest
         * card (torch.cuda.set_per_process_memory_fraction), and allocator settings that keep
         * a framework from taking the whole card; the job's own --env wins. */
        uint64_t total = 0;
        for (size_t i = gfirst; i < gfirst + gcount; i++)
            if (i < al->n_gpu_mem_total_mb && al->gpu_mem_total_mb[i] > 0 &&
                (total == 0 || al->gpu_mem_total_mb[i] < total))
                total = al->gpu_mem_total_mb[i];
        env_setu(&a, "WSLQ_GPU_MEM", al->gpu_mem_mb);
        if (total > 0) {
            double f = (double) al->gpu_mem_mb / (double) total;
            env_put(&a, wq_asprintf("WSLQ_GPU_MEM_FRACTION=%.3f", f > 1.0 ? 1.0 : f));
        }
        env_set(&a, "PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True");
        env_set(&a, "TF_FORCE_GPU_ALLOW_GROWTH", "true");
    }

    env_setu(&a, "RANK", (uint64_t) first_rank + (uint64_t) lrank);
    env_setu(&a, "WORLD_SIZE", world);
    env_setu(&a, "LOCAL_RANK", (uint64_t) lrank);
    env_setu(&a, "LOCAL_WORLD_SIZE", (uint64_t) nranks);
    env_setu(&a, "GROUP_RANK", node_rank);
    env_setu(&a, "NODE_RANK", node_rank);
    env_setu(&a, "NNODES", nnodes);
    const char *maddr = l->master_addr;
    if (maddr == NULL || *maddr == '\0')
        maddr = (al && al->ip && *al->ip) ? al->ip : (c->ip && *c->ip ? c->ip : "127.0.0.1");
    env_set(&a, "MASTER_ADDR", maddr);
    env_setu(&a, "MASTER_PORT", l->master_port ? l->master_port : c->master_port);
    env_setu(&a, "TORCHELASTIC_RESTART_COUNT", l->attempt);
    /* torchrun --nproc-per-node for a --per-node launcher: its node's GPUs (1 without) */
    env_setu(&a, "WSLQ_GPUS_ON_NODE", al ? al->n_gpus : 0);
    env_setu(&a, "WSLQ_NPROC_PER_NODE",
             spec && spec->per_node ? (al && al->n_gpus ? al->n_gpus : 1) : (uint64_t) nranks);
    if (spec != NULL && spec->tf) {
        char *tf = tfconfig_json(l, first_rank + (uint32_t) lrank);
        if (tf != NULL)
            env_put(&a, wq_asprintf("TF_CONFIG=%s", tf));
        free(tf);
        /* each rank sees only its GPUs already (CUDA_VISIBLE_DEVICES); TensorFlow would still
         * take all their memory at start */
        env_set(&a, "TF_FORCE_GPU_ALLOW_GROWTH", "true");
    }
    if (c->iface != NULL && *c->iface != '\0') {
        env_set(&a, "NCCL_SOCKET_IFNAME", c->iface);
        env_set(&a, "GLOO_SOCKET_IFNAME", c->iface);
    }
    env_set(&a, "NCCL_IB_DISABLE", "1");
    for (size_t i = 0; c->nccl_env != NULL && c->nccl_env[i] != NULL; i++)
        if (strchr(c->nccl_env[i], '=') != NULL)
            env_put(&a, wq_strdup(c->nccl_env[i]));
    env_put(&a, wq_asprintf("WSLQ_METRICS=%s/metrics-%" PRIu64 ".jsonl", c->spool,
                            (uint64_t) first_rank + (uint64_t) lrank));
    if (c->rdv_path != NULL)
        env_set(&a, "WSLQ_RENDEZVOUS", c->rdv_path);

    for (size_t i = 0; spec != NULL && i < spec->n_env; i++)
        if (strchr(spec->env[i], '=') != NULL && spec->env[i][0] != '=')
            env_put(&a, wq_strdup(spec->env[i]));
    /* --secret-env last: the job sees these values; nothing of wslq's shows them */
    for (size_t i = 0; spec != NULL && i < spec->n_secret_env; i++)
        if (strchr(spec->secret_env[i], '=') != NULL && spec->secret_env[i][0] != '=')
            env_put(&a, wq_strdup(spec->secret_env[i]));
    return a.v;
}

const char *
jobenv_get(char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
        if (strncmp(envp[i], name, n) == 0 && envp[i][n] == '=')
            return envp[i] + n + 1;
    return NULL;
}

static int
is_name_char(char ch, int first)
{
    return ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (!first && ch >= '0' && ch <= '9');
}

/* Expand wslq variable references in one argv item. Caller owns the result. */
static char *
expand_item(const char *s, char *const *envp)
{
    size_t cap = strlen(s) + 64, n = 0;
    char *out = wq_malloc(cap);
    for (size_t i = 0; s[i] != '\0';) {
        const char *val = NULL;
        size_t skip = 0;
        if (s[i] == '$') {
            int brace = s[i + 1] == '{';
            size_t st = i + 1 + (size_t) brace, e = st;
            while (s[e] != '\0' && is_name_char(s[e], e == st))
                e++;
            if (e > st && (!brace || s[e] == '}') && jobspec_is_rank_var(s + st, e - st)) {
                char name[64];
                size_t len = e - st < sizeof name - 1 ? e - st : sizeof name - 1;
                memcpy(name, s + st, len);
                name[len] = '\0';
                val = jobenv_get(envp, name);
                if (val == NULL)
                    val = "";
                skip = e - i + (size_t) brace;
            }
        }
        size_t add = val ? strlen(val) : 1;
        if (n + add + 1 > cap) {
            cap = (n + add + 1) * 2;
            out = wq_realloc(out, cap);
        }
        if (val) {
            memcpy(out + n, val, add);
            i += skip;
        } else {
            out[n] = s[i++];
        }
        n += add;
    }
    out[n] = '\0';
    return out;
}

char **
jobenv_argv(const Wslq__JobSpec *spec, char *const *envp)
{
    char **v = wq_calloc(spec->n_argv + 1, sizeof *v);
    for (size_t i = 0; i < spec->n_argv; i++)
        v[i] = spec->wrap ? wq_strdup(spec->argv[i]) : expand_item(spec->argv[i], envp);
    return v;
}

void
jobenv_free(char ***vp)
{
    if (vp == NULL || *vp == NULL)
        return;
    for (char **p = *vp; *p != NULL; p++)
        free(*p);
    free(*vp);
    *vp = NULL;
}
