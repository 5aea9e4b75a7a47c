/* A fake NVML + CUDA driver + NCCL library for tests: two GPUs as WSL reports them, with
 * utilisation NOT_SUPPORTED everywhere, GPU 1's temperature failing with NVML_ERROR_UNKNOWN
 * (seen on WSL for unsupported calls) and its display query unsupported. CUDA orders the
 * GPUs the other way round, so only a UUID match maps them right.
 *
 * Knobs (read at call time): FAKE_NVML_INIT_FAIL=1 (nvmlInit returns DRIVER_NOT_LOADED),
 * FAKE_NVML_GPUS=n (0..2), FAKE_NVML_DRIVER="470.00", FAKE_CUDA_COUNT=n, FAKE_CUDA_P2P=1,
 * FAKE_NCCL_VERSION=21005, FAKE_NVML_GPU0_USED=MiB. nvmlInit resets "used"; each
 * nvmlDeviceGetMemoryInfo call then adds 100 MiB to it, so a refresh shows a change, unless
 * FAKE_NVML_STEADY=1. FAKE_NVML_GPU0_NAME / FAKE_NVML_GPU1_NAME rename a GPU. Compute
 * capability: 8.9 (4090), 8.6 (3090). */
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

enum {
    NVML_SUCCESS = 0,
    NVML_ERROR_INVALID_ARGUMENT = 2,
    NVML_ERROR_NOT_SUPPORTED = 3,
    NVML_ERROR_DRIVER_NOT_LOADED = 9,
    NVML_ERROR_UNKNOWN = 999,
};

typedef struct {
    unsigned long long total, free, used;
} nvmlMemory_t;
typedef struct {
    unsigned int gpu, memory;
} nvmlUtilization_t;
typedef struct {
    char busIdLegacy[16];
    unsigned int domain, bus, device, pciDeviceId, pciSubSystemId;
    char busId[32];
} nvmlPciInfo_t;

struct fake_gpu {
    const char *name, *uuid, *bus;
    unsigned long long total_mib, base_used_mib, used_mib;
    int temp; /* -1 = NVML_ERROR_UNKNOWN */
    unsigned mw;
    int display; /* -1 = NOT_SUPPORTED */
    int cc_major, cc_minor;
    unsigned char cuda_uuid[16];
};

static struct fake_gpu gpus[2] = {
    {.name = "NVIDIA GeForce RTX 4090",
     .uuid = "GPU-11111111-2222-3333-4444-555555555555",
     .bus = "00000000:01:00.0",
     .total_mib = 24564,
     .base_used_mib = 1843,
     .temp = 45,
     .mw = 35400,
     .display = 1,
     .cc_major = 8,
     .cc_minor = 9,
     .cuda_uuid = {0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44, 0x55, 0x55, 0x55,
                   0x55, 0x55, 0x55}},
    {.name = "NVIDIA GeForce RTX 3090",
     .uuid = "GPU-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
     .bus = "00000000:02:00.0",
     .total_mib = 24576,
     .base_used_mib = 300,
     .temp = -1,
     .mw = 20000,
     .display = -1,
     .cc_major = 8,
     .cc_minor = 6,
     .cuda_uuid = {0xaa, 0xaa, 0xaa, 0xaa, 0xbb, 0xbb, 0xcc, 0xcc, 0xdd, 0xdd, 0xee, 0xee, 0xee,
                   0xee, 0xee, 0xee}},
};
static int inited;

static int
env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && v[0] ? atoi(v) : dflt;
}

static int
ngpus(void)
{
    int n = env_int("FAKE_NVML_GPUS", 2);
    return n < 0 ? 0 : n > 2 ? 2 : n;
}

static struct fake_gpu *
dev(void *h)
{
    for (int i = 0; i < 2; i++)
        if (h == &gpus[i])
            return &gpus[i];
    return NULL;
}

static void
copy(char *dst, unsigned len, const char *src)
{
    if (len == 0)
        return;
    strncpy(dst, src, len - 1);
    dst[len - 1] = '\0';
}

EXPORT int
nvmlInit_v2(void)
{
    if (env_int("FAKE_NVML_INIT_FAIL", 0))
        return NVML_ERROR_DRIVER_NOT_LOADED;
    inited = 1;
    for (int i = 0; i < 2; i++)
        gpus[i].used_mib = gpus[i].base_used_mib;
    if (env_int("FAKE_NVML_GPU0_USED", 0) > 0)
        gpus[0].used_mib = (unsigned long long) env_int("FAKE_NVML_GPU0_USED", 0);
    return NVML_SUCCESS;
}

EXPORT int
nvmlShutdown(void)
{
    inited = 0;
    return NVML_SUCCESS;
}

EXPORT const char *
nvmlErrorString(int r)
{
    switch (r) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_NOT_SUPPORTED:
        return "Not Supported";
    case NVML_ERROR_DRIVER_NOT_LOADED:
        return "Driver Not Loaded";
    default:
        return "Unknown Error";
    }
}

EXPORT int
nvmlSystemGetDriverVersion(char *buf, unsigned len)
{
    const char *v = getenv("FAKE_NVML_DRIVER");
    copy(buf, len, v && v[0] ? v : "555.99");
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetCount_v2(unsigned *n)
{
    *n = (unsigned) ngpus();
    return inited ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
}

EXPORT int
nvmlDeviceGetHandleByIndex_v2(unsigned i, void **h)
{
    if (i >= (unsigned) ngpus())
        return NVML_ERROR_INVALID_ARGUMENT;
    *h = &gpus[i];
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetName(void *h, char *buf, unsigned len)
{
    const char *forced = getenv(dev(h) == &gpus[0] ? "FAKE_NVML_GPU0_NAME" : "FAKE_NVML_GPU1_NAME");
    copy(buf, len, forced && forced[0] ? forced : dev(h)->name);
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetUUID(void *h, char *buf, unsigned len)
{
    copy(buf, len, dev(h)->uuid);
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetPciInfo_v3(void *h, nvmlPciInfo_t *p)
{
    memset(p, 0, sizeof *p);
    copy(p->busId, sizeof p->busId, dev(h)->bus);
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetMemoryInfo(void *h, nvmlMemory_t *m)
{
    struct fake_gpu *g = dev(h);
    m->total = g->total_mib << 20;
    m->used = g->used_mib << 20;
    m->free = m->total - m->used;
    if (!env_int("FAKE_NVML_STEADY", 0))
        g->used_mib += 100;
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetCudaComputeCapability(void *h, int *major, int *minor)
{
    *major = dev(h)->cc_major;
    *minor = dev(h)->cc_minor;
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetTemperature(void *h, int sensor, unsigned *t)
{
    struct fake_gpu *g = dev(h);
    if (sensor != 0)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (g->temp < 0)
        return NVML_ERROR_UNKNOWN;
    *t = (unsigned) g->temp;
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetUtilizationRates(void *h, nvmlUtilization_t *u)
{
    (void) h;
    (void) u;
    return NVML_ERROR_NOT_SUPPORTED;
}

EXPORT int
nvmlDeviceGetPowerUsage(void *h, unsigned *mw)
{
    *mw = dev(h)->mw;
    return NVML_SUCCESS;
}

EXPORT int
nvmlDeviceGetDisplayActive(void *h, int *active)
{
    struct fake_gpu *g = dev(h);
    if (g->display < 0)
        return NVML_ERROR_NOT_SUPPORTED;
    *active = g->display;
    return NVML_SUCCESS;
}

/* ---- CUDA driver API: ordinal 0 is the 3090, ordinal 1 the 4090 ---------------------------- */

EXPORT int
cuInit(unsigned flags)
{
    return flags == 0 ? 0 : 1;
}

EXPORT int
cuDriverGetVersion(int *v)
{
    *v = 12040;
    return 0;
}

EXPORT int
cuDeviceGetCount(int *n)
{
    *n = env_int("FAKE_CUDA_COUNT", ngpus());
    return 0;
}

EXPORT int
cuDeviceGet(int *d, int ordinal)
{
    int n = env_int("FAKE_CUDA_COUNT", ngpus());
    if (ordinal < 0 || ordinal >= n)
        return 101; /* CUDA_ERROR_INVALID_DEVICE */
    *d = ordinal;
    return 0;
}

EXPORT int
cuDeviceGetUuid(unsigned char out[16], int d)
{
    int n = ngpus();
    if (d < 0 || d >= n)
        return 101;
    memcpy(out, gpus[n - 1 - d].cuda_uuid, 16);
    return 0;
}

EXPORT int
cuDeviceCanAccessPeer(int *can, int a, int b)
{
    *can = a != b && env_int("FAKE_CUDA_P2P", 0);
    return 0;
}

/* ---- NCCL ---------------------------------------------------------------------------------- */

EXPORT int
ncclGetVersion(int *v)
{
    *v = env_int("FAKE_NCCL_VERSION", 22105);
    return 0;
}
