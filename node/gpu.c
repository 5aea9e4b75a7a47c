/* GPU discovery: NVML and the CUDA driver API through dlopen; see gpu.h. NVML types are
 * declared here (ABI-stable since NVML 2.x) so no nvml.h is needed at build time. */
#define _GNU_SOURCE /* dladdr */
#include "node/gpu.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/mem.h"
#include "node/facts.h"
#include "node/node_internal.h"

#define GPU_MAX 64

/* ---- NVML ABI (subset) ------------------------------------------------------------------ */
typedef int nvml_ret_t; /* nvmlReturn_t: 0 = NVML_SUCCESS */
typedef void *nvml_dev_t;
typedef struct {
    unsigned long long total, free, used; /* bytes */
} nvml_memory_t;
typedef struct {
    unsigned int gpu, memory; /* percent */
} nvml_util_t;
typedef struct {
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
} nvml_pci_t; /* nvmlPciInfo_t as of nvmlDeviceGetPciInfo_v3 */

/* ---- CUDA driver ABI (subset) ----------------------------------------------------------- */
typedef int cu_ret_t; /* CUresult: 0 = CUDA_SUCCESS */
typedef struct {
    unsigned char bytes[16];
} cu_uuid_t;

struct gpu_set {
    void *nvml, *cuda;
    int nvml_ok;
    char nvml_path[PATH_MAX];
    char absent[256];
    char driver[80];
    int ngpu;
    gpu_info_t gpus[GPU_MAX];
    nvml_dev_t handles[GPU_MAX];
    int cuda_count;
    char cuda_err[160];
    int cuda_ver;
    int p2p;

    nvml_ret_t (*shutdown)(void);
    const char *(*error_string)(nvml_ret_t);
    nvml_ret_t (*get_memory)(nvml_dev_t, nvml_memory_t *);
    nvml_ret_t (*get_temp)(nvml_dev_t, int, unsigned int *);
    nvml_ret_t (*get_util)(nvml_dev_t, nvml_util_t *);
    nvml_ret_t (*get_power)(nvml_dev_t, unsigned int *);
};

/* dlopen the first candidate that loads; *why gets the last dlerror. */
static void *
load_lib(const char *env, const char *soname, const char *root, char *why, size_t whysize)
{
    const char *forced = getenv(env);
    void *h;
    if (forced && forced[0]) {
        if ((h = dlopen(forced, RTLD_NOW | RTLD_LOCAL)) == NULL)
            snprintf(why, whysize, "%s (from %s) cannot be loaded: %s", forced, env, dlerror());
        return h;
    }
    if ((h = dlopen(soname, RTLD_NOW | RTLD_LOCAL)) != NULL)
        return h;
    char rel[256], path[PATH_MAX];
    snprintf(rel, sizeof rel, "/usr/lib/wsl/lib/%s", soname);
    if (node_path(path, sizeof path, root, rel)) {
        if ((h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
            return h;
        /* Keep the message short: "not found" is the common, calm case. */
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            snprintf(why, whysize, "%s cannot be loaded: %s", path, dlerror());
            return NULL;
        }
    }
    snprintf(why, whysize, "%s not found", soname);
    return NULL;
}

static void
lib_path(void *sym, char *out, size_t size)
{
    Dl_info info;
    char real[PATH_MAX];
    out[0] = '\0';
    if (!sym || !dladdr(sym, &info) || !info.dli_fname)
        return;
    if (realpath(info.dli_fname, real))
        node_copy(out, size, real);
    else
        node_copy(out, size, info.dli_fname);
}

static void
format_uuid(const cu_uuid_t *u, char *out, size_t size)
{
    const unsigned char *b = u->bytes;
    snprintf(out, size, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

#define SYM(lib, name) dlsym(lib, name)

static void
read_dynamic(gpu_set_t *s, int i, int first)
{
    gpu_info_t *g = &s->gpus[i];
    nvml_dev_t h = s->handles[i];
    nvml_memory_t mem;
    nvml_util_t util;
    unsigned int v;

    g->mem_total_mb = g->mem_used_mb = g->mem_free_mb = -1;
    if ((first || (g->caps & GPU_CAP_MEMORY)) && s->get_memory && s->get_memory(h, &mem) == 0) {
        g->mem_total_mb = (int64_t) (mem.total >> 20);
        g->mem_used_mb = (int64_t) (mem.used >> 20);
        g->mem_free_mb = (int64_t) (mem.free >> 20);
        g->caps |= first ? GPU_CAP_MEMORY : 0;
    }
    g->temp_c = -1;
    if ((first || (g->caps & GPU_CAP_TEMP)) && s->get_temp && s->get_temp(h, 0, &v) == 0) {
        g->temp_c = (int) v;
        g->caps |= first ? GPU_CAP_TEMP : 0;
    }
    g->util_pct = -1;
    if ((first || (g->caps & GPU_CAP_UTIL)) && s->get_util && s->get_util(h, &util) == 0) {
        g->util_pct = (int) util.gpu;
        g->caps |= first ? GPU_CAP_UTIL : 0;
    }
    g->power_w = -1;
    if ((first || (g->caps & GPU_CAP_POWER)) && s->get_power && s->get_power(h, &v) == 0) {
        g->power_w = (int) ((v + 500) / 1000); /* NVML reports milliwatts */
        g->caps |= first ? GPU_CAP_POWER : 0;
    }
}

static void
query_nvml(gpu_set_t *s)
{
    nvml_ret_t (*init)(void) = (nvml_ret_t(*)(void)) SYM(s->nvml, "nvmlInit_v2");
    if (!init)
        init = (nvml_ret_t(*)(void)) SYM(s->nvml, "nvmlInit");
    s->shutdown = (nvml_ret_t(*)(void)) SYM(s->nvml, "nvmlShutdown");
    s->error_string = (const char *(*) (nvml_ret_t)) SYM(s->nvml, "nvmlErrorString");
    nvml_ret_t (*get_count)(unsigned int *) =
        (nvml_ret_t(*)(unsigned int *)) SYM(s->nvml, "nvmlDeviceGetCount_v2");
    nvml_ret_t (*get_handle)(unsigned int, nvml_dev_t *) =
        (nvml_ret_t(*)(unsigned int, nvml_dev_t *)) SYM(s->nvml, "nvmlDeviceGetHandleByIndex_v2");
    nvml_ret_t (*get_name)(nvml_dev_t, char *, unsigned int) =
        (nvml_ret_t(*)(nvml_dev_t, char *, unsigned int)) SYM(s->nvml, "nvmlDeviceGetName");
    nvml_ret_t (*get_uuid)(nvml_dev_t, char *, unsigned int) =
        (nvml_ret_t(*)(nvml_dev_t, char *, unsigned int)) SYM(s->nvml, "nvmlDeviceGetUUID");
    nvml_ret_t (*get_pci)(nvml_dev_t, nvml_pci_t *) =
        (nvml_ret_t(*)(nvml_dev_t, nvml_pci_t *)) SYM(s->nvml, "nvmlDeviceGetPciInfo_v3");
    nvml_ret_t (*get_display)(nvml_dev_t, int *) =
        (nvml_ret_t(*)(nvml_dev_t, int *)) SYM(s->nvml, "nvmlDeviceGetDisplayActive");
    nvml_ret_t (*get_cc)(nvml_dev_t, int *, int *) = (nvml_ret_t(*)(nvml_dev_t, int *, int *)) SYM(
        s->nvml, "nvmlDeviceGetCudaComputeCapability");
    nvml_ret_t (*get_driver)(char *, unsigned int) =
        (nvml_ret_t(*)(char *, unsigned int)) SYM(s->nvml, "nvmlSystemGetDriverVersion");
    s->get_memory =
        (nvml_ret_t(*)(nvml_dev_t, nvml_memory_t *)) SYM(s->nvml, "nvmlDeviceGetMemoryInfo");
    s->get_temp =
        (nvml_ret_t(*)(nvml_dev_t, int, unsigned int *)) SYM(s->nvml, "nvmlDeviceGetTemperature");
    s->get_util =
        (nvml_ret_t(*)(nvml_dev_t, nvml_util_t *)) SYM(s->nvml, "nvmlDeviceGetUtilizationRates");
    s->get_power =
        (nvml_ret_t(*)(nvml_dev_t, unsigned int *)) SYM(s->nvml, "nvmlDeviceGetPowerUsage");
    lib_path(init ? (void *) init : (void *) get_count, s->nvml_path, sizeof s->nvml_path);

    if (!init || !get_count || !get_handle) {
        snprintf(s->absent, sizeof s->absent, "%s lacks nvmlInit/nvmlDeviceGetCount",
                 s->nvml_path[0] ? s->nvml_path : "NVML library");
        return;
    }
    nvml_ret_t r = init();
    if (r != 0) {
        snprintf(s->absent, sizeof s->absent, "nvmlInit failed: %s",
                 s->error_string ? s->error_string(r) : "error");
        return;
    }
    s->nvml_ok = 1;
    if (get_driver && get_driver(s->driver, sizeof s->driver) != 0)
        s->driver[0] = '\0';
    unsigned int n = 0;
    if ((r = get_count(&n)) != 0) {
        snprintf(s->absent, sizeof s->absent, "nvmlDeviceGetCount failed: %s",
                 s->error_string ? s->error_string(r) : "error");
        return;
    }
    for (unsigned int i = 0; i < n && s->ngpu < GPU_MAX; i++) {
        nvml_dev_t h;
        if (get_handle(i, &h) != 0)
            continue; /* a GPU NVML cannot open ("GPU is lost") is not schedulable */
        int k = s->ngpu++;
        gpu_info_t *g = &s->gpus[k];
        memset(g, 0, sizeof *g);
        s->handles[k] = h;
        g->index = (int) i;
        g->cuda_ordinal = -1;
        g->display_active = -1;
        char buf[96];
        if (get_name && get_name(h, buf, sizeof buf) == 0) {
            node_copy(g->name, sizeof g->name, buf);
            g->caps |= GPU_CAP_NAME;
        }
        if (get_uuid && get_uuid(h, buf, sizeof buf) == 0) {
            node_copy(g->uuid, sizeof g->uuid, buf);
            g->caps |= GPU_CAP_UUID;
        }
        union {
            nvml_pci_t pci;
            char pad[512]; /* room for a larger future struct */
        } pci;
        memset(&pci, 0, sizeof pci);
        if (get_pci && get_pci(h, &pci.pci) == 0) {
            snprintf(g->pci_bus_id, sizeof g->pci_bus_id, "%.31s", pci.pci.bus_id);
            g->caps |= GPU_CAP_PCI;
        }
        int active;
        if (get_display && get_display(h, &active) == 0) {
            g->display_active = active != 0;
            g->caps |= GPU_CAP_DISPLAY;
        }
        int major = 0, minor = 0;
        if (get_cc && get_cc(h, &major, &minor) == 0 && major > 0) {
            g->cc_major = major;
            g->cc_minor = minor;
            g->caps |= GPU_CAP_CC;
        }
        read_dynamic(s, k, 1);
    }
}

static void
query_cuda(gpu_set_t *s, const char *root)
{
    s->cuda_count = -1;
    s->p2p = -1;
    s->cuda = load_lib("WSLQ_CUDA_LIB", "libcuda.so.1", root, s->cuda_err, sizeof s->cuda_err);
    if (!s->cuda)
        return;
    cu_ret_t (*init)(unsigned int) = (cu_ret_t(*)(unsigned int)) SYM(s->cuda, "cuInit");
    cu_ret_t (*count)(int *) = (cu_ret_t(*)(int *)) SYM(s->cuda, "cuDeviceGetCount");
    cu_ret_t (*get)(int *, int) = (cu_ret_t(*)(int *, int)) SYM(s->cuda, "cuDeviceGet");
    cu_ret_t (*uuid)(cu_uuid_t *, int) =
        (cu_ret_t(*)(cu_uuid_t *, int)) SYM(s->cuda, "cuDeviceGetUuid_v2");
    if (!uuid)
        uuid = (cu_ret_t(*)(cu_uuid_t *, int)) SYM(s->cuda, "cuDeviceGetUuid");
    cu_ret_t (*version)(int *) = (cu_ret_t(*)(int *)) SYM(s->cuda, "cuDriverGetVersion");
    cu_ret_t (*peer)(int *, int, int) =
        (cu_ret_t(*)(int *, int, int)) SYM(s->cuda, "cuDeviceCanAccessPeer");
    if (!init || !count || !get) {
        snprintf(s->cuda_err, sizeof s->cuda_err, "libcuda lacks cuInit/cuDeviceGetCount");
        return;
    }
    if (version && version(&s->cuda_ver) != 0)
        s->cuda_ver = 0;
    cu_ret_t r = init(0);
    if (r != 0) {
        snprintf(s->cuda_err, sizeof s->cuda_err, "cuInit failed: CUresult %d", r);
        return;
    }
    int n = 0;
    if ((r = count(&n)) != 0) {
        snprintf(s->cuda_err, sizeof s->cuda_err, "cuDeviceGetCount failed: CUresult %d", r);
        return;
    }
    s->cuda_count = n;
    int devs[GPU_MAX];
    int nd = 0;
    for (int ord = 0; ord < n && nd < GPU_MAX; ord++) {
        int dev;
        if (get(&dev, ord) != 0)
            continue;
        devs[nd++] = dev;
        cu_uuid_t u;
        char str[96];
        if (!uuid || uuid(&u, dev) != 0)
            continue;
        format_uuid(&u, str, sizeof str);
        for (int i = 0; i < s->ngpu; i++)
            if (strcasecmp(s->gpus[i].uuid, str) == 0)
                s->gpus[i].cuda_ordinal = ord;
    }
    if (peer && nd >= 2) {
        s->p2p = 1;
        for (int a = 0; a < nd; a++)
            for (int b = 0; b < nd; b++) {
                int can = 0;
                if (a != b && (peer(&can, devs[a], devs[b]) != 0 || !can))
                    s->p2p = 0;
            }
    }
}

gpu_set_t *
gpu_open(const char *root, wq_error_t *err)
{
    (void) err; /* nothing here fails for real: allocation aborts, missing pieces are facts */
    gpu_set_t *s = wq_calloc(1, sizeof *s);
    s->cuda_count = -1;
    s->p2p = -1;
    s->nvml = load_lib("WSLQ_NVML_LIB", "libnvidia-ml.so.1", root, s->absent, sizeof s->absent);
    if (s->nvml)
        query_nvml(s);
    /* CUDA only when NVML sees GPUs: cuInit on a GPU-less box can take seconds. */
    if (s->ngpu > 0)
        query_cuda(s, root);
    else
        snprintf(s->cuda_err, sizeof s->cuda_err, "not queried: no GPU seen by NVML");
    return s;
}

const char *
gpu_absent_reason(const gpu_set_t *s)
{
    return s->absent[0] ? s->absent : NULL;
}

int
gpu_nvml_loaded(const gpu_set_t *s)
{
    return s->nvml != NULL;
}

int
gpu_nvml_ok(const gpu_set_t *s)
{
    return s->nvml_ok;
}

const char *
gpu_nvml_path(const gpu_set_t *s)
{
    return s->nvml_path;
}

int
gpu_count(const gpu_set_t *s)
{
    return s ? s->ngpu : 0;
}

const gpu_info_t *
gpu_get(const gpu_set_t *s, int i)
{
    return (s && i >= 0 && i < s->ngpu) ? &s->gpus[i] : NULL;
}

const gpu_info_t *
gpu_find_uuid(const gpu_set_t *s, const char *uuid)
{
    for (int i = 0; s && uuid && i < s->ngpu; i++)
        if (s->gpus[i].uuid[0] && strcasecmp(s->gpus[i].uuid, uuid) == 0)
            return &s->gpus[i];
    return NULL;
}

int
gpu_refresh(gpu_set_t *s)
{
    if (!s || !s->nvml_ok)
        return -1;
    for (int i = 0; i < s->ngpu; i++)
        read_dynamic(s, i, 0);
    return 0;
}

const char *
gpu_driver_version(const gpu_set_t *s)
{
    return s->driver;
}

int
gpu_driver_major(const gpu_set_t *s)
{
    return s ? atoi(s->driver) : 0;
}

int
gpu_cuda_count(const gpu_set_t *s)
{
    return s->cuda_count;
}

const char *
gpu_cuda_error(const gpu_set_t *s)
{
    return s->cuda_count >= 0 ? "" : s->cuda_err;
}

int
gpu_cuda_driver_version(const gpu_set_t *s)
{
    return s->cuda_ver;
}

int
gpu_cuda_p2p_all(const gpu_set_t *s)
{
    return s ? s->p2p : -1;
}

int
gpu_nccl_version(const char **path)
{
    const char *name = getenv("WSLQ_NCCL_LIB");
    if (!name || !name[0])
        name = "libnccl.so.2";
    if (path)
        *path = name;
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return 0;
    int (*get)(int *) = (int (*)(int *)) dlsym(h, "ncclGetVersion");
    int v = 0;
    if (!get || get(&v) != 0)
        v = 0;
    dlclose(h);
    return v;
}

char *
gpu_caps_string(unsigned caps, char *buf, size_t size)
{
    static const char *const names[GPU_CAP_COUNT] = {"name",  "uuid", "memory",  "temp", "util",
                                                     "power", "pci",  "display", "cc"};
    size_t len = 0;
    if (size)
        buf[0] = '\0';
    for (int i = 0; i < GPU_CAP_COUNT; i++) {
        if (!(caps & (1u << i)))
            continue;
        int n = snprintf(buf + len, size - len, "%s%s", len ? "," : "", names[i]);
        if (n < 0 || (size_t) n >= size - len) {
            buf[len] = '\0'; /* whole names only */
            break;
        }
        len += (size_t) n;
    }
    return buf;
}

cJSON *
gpu_set_to_json(const gpu_set_t *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "driver", s->driver);
    cJSON_AddStringToObject(o, "nvml_path", s->nvml_path);
    if (s->absent[0])
        cJSON_AddStringToObject(o, "absent_reason", s->absent);
    else
        cJSON_AddNullToObject(o, "absent_reason");
    cJSON_AddNumberToObject(o, "cuda_count", s->cuda_count);
    cJSON_AddNumberToObject(o, "cuda_driver", s->cuda_ver);
    cJSON_AddStringToObject(o, "cuda_error", gpu_cuda_error(s));
    cJSON_AddNumberToObject(o, "p2p_all", s->p2p);
    cJSON *arr = cJSON_AddArrayToObject(o, "gpus");
    for (int i = 0; i < s->ngpu; i++) {
        const gpu_info_t *g = &s->gpus[i];
        char caps[128];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "index", g->index);
        cJSON_AddNumberToObject(j, "cuda_ordinal", g->cuda_ordinal);
        cJSON_AddStringToObject(j, "uuid", g->uuid);
        cJSON_AddStringToObject(j, "name", g->name);
        cJSON_AddStringToObject(j, "pci_bus_id", g->pci_bus_id);
        cJSON_AddNumberToObject(j, "mem_total_mb", (double) g->mem_total_mb);
        cJSON_AddNumberToObject(j, "mem_used_mb", (double) g->mem_used_mb);
        cJSON_AddNumberToObject(j, "mem_free_mb", (double) g->mem_free_mb);
        cJSON_AddNumberToObject(j, "temp_c", g->temp_c);
        cJSON_AddNumberToObject(j, "util_pct", g->util_pct);
        cJSON_AddNumberToObject(j, "power_w", g->power_w);
        cJSON_AddNumberToObject(j, "display_active", g->display_active);
        cJSON_AddNumberToObject(j, "cc_major", g->cc_major);
        cJSON_AddNumberToObject(j, "cc_minor", g->cc_minor);
        cJSON_AddNumberToObject(j, "caps_mask", g->caps);
        cJSON_AddStringToObject(j, "caps", gpu_caps_string(g->caps, caps, sizeof caps));
        cJSON_AddItemToArray(arr, j);
    }
    return o;
}

void
gpu_close(gpu_set_t **sp)
{
    if (!sp || !*sp)
        return;
    gpu_set_t *s = *sp;
    if (s->nvml_ok && s->shutdown)
        s->shutdown();
    if (s->nvml)
        dlclose(s->nvml);
    if (s->cuda)
        dlclose(s->cuda);
    free(s);
    *sp = NULL;
}
