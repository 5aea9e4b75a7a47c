/* GPU discovery through NVML and the CUDA driver API, both loaded with dlopen.
 *
 * WSL 2 has no /dev/nvidia* and no PCI sysfs; the driver's user-mode libraries live in
 * /usr/lib/wsl/lib and carry only versioned names. Library search order:
 *   NVML: $WSLQ_NVML_LIB if set (tests point it at a fake), else "libnvidia-ml.so.1",
 *         else <root>/usr/lib/wsl/lib/libnvidia-ml.so.1.
 *   CUDA: $WSLQ_CUDA_LIB, else "libcuda.so.1", else <root>/usr/lib/wsl/lib/libcuda.so.1.
 *   NCCL (version only): $WSLQ_NCCL_LIB, else "libnccl.so.2".
 *
 * Every per-GPU NVML query is tried once at open; a failure of any kind (NOT_SUPPORTED, but
 * also UNKNOWN, which WSL drivers have returned for unsupported calls) clears that bit in the
 * GPU's capability mask and its value stays -1 / "". gpu_refresh re-reads only the queries
 * whose bit is set. GPUs are keyed by UUID; the CUDA ordinal of each is found by matching
 * cuDeviceGetUuid against the NVML UUID (CUDA orders fastest-first, NVML by PCI bus). */
#ifndef WSLQ_NODE_GPU_H
#define WSLQ_NODE_GPU_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum gpu_cap_b {
    GPU_CAP_NAME = 1u << 0,    /* nvmlDeviceGetName */
    GPU_CAP_UUID = 1u << 1,    /* nvmlDeviceGetUUID */
    GPU_CAP_MEMORY = 1u << 2,  /* nvmlDeviceGetMemoryInfo */
    GPU_CAP_TEMP = 1u << 3,    /* nvmlDeviceGetTemperature (GPU sensor) */
    GPU_CAP_UTIL = 1u << 4,    /* nvmlDeviceGetUtilizationRates */
    GPU_CAP_POWER = 1u << 5,   /* nvmlDeviceGetPowerUsage */
    GPU_CAP_PCI = 1u << 6,     /* nvmlDeviceGetPciInfo_v3 */
    GPU_CAP_DISPLAY = 1u << 7, /* nvmlDeviceGetDisplayActive */
    GPU_CAP_CC = 1u << 8,      /* nvmlDeviceGetCudaComputeCapability */
};
#define GPU_CAP_COUNT 9

typedef struct gpu_info {
    int index;            /* NVML index */
    int cuda_ordinal;     /* CUDA device ordinal with the same UUID, -1 unknown */
    char uuid[96];        /* "GPU-xxxxxxxx-...", "" unsupported */
    char name[96];        /* "NVIDIA GeForce RTX 4090", "" unsupported */
    char pci_bus_id[32];  /* "00000000:01:00.0", "" unsupported */
    int64_t mem_total_mb; /* MiB, -1 unsupported */
    int64_t mem_used_mb;  /* MiB in use by anything, the Windows desktop included; -1 */
    int64_t mem_free_mb;  /* MiB, -1 unsupported */
    int temp_c;           /* degrees C, -1 unsupported */
    int util_pct;         /* percent, -1 unsupported */
    int power_w;          /* watts, -1 unsupported */
    int display_active;   /* 1 drives a display (shared with the desktop, TDR-exposed), 0, -1 */
    int cc_major;         /* CUDA compute capability (8.9: 8, 9), 0 unknown */
    int cc_minor;
    unsigned caps; /* gpu_cap_b bits of queries that worked at open */
} gpu_info_t;

typedef struct gpu_set gpu_set_t;

/* Load NVML (and libcuda for the UUID cross-check) and query every GPU. Without NVML, or if
 * nvmlInit fails, returns a set with 0 GPUs and gpu_absent_reason() says why; that is not an
 * error. Returns NULL (err filled) only on a real failure. Caller owns the result
 * (gpu_close). */
gpu_set_t *gpu_open(const char *root, wq_error_t *err);

/* NULL if GPUs were found or NVML simply has 0 devices; else one line such as
 * "libnvidia-ml.so.1 not found" or "nvmlInit failed: Driver Not Loaded". Owned by the set. */
const char *gpu_absent_reason(const gpu_set_t *s);

/* 1 if the NVML library was loaded (even if its init failed). */
int gpu_nvml_loaded(const gpu_set_t *s);
/* 1 if nvmlInit succeeded. */
int gpu_nvml_ok(const gpu_set_t *s);
/* The file NVML was actually loaded from (resolved by the dynamic linker), "" if not loaded.
 * Used to detect a Linux driver shadowing /usr/lib/wsl/lib. Owned by the set. */
const char *gpu_nvml_path(const gpu_set_t *s);

int gpu_count(const gpu_set_t *s);
/* NULL if i is out of range. Owned by the set; valid until gpu_close (refresh updates it). */
const gpu_info_t *gpu_get(const gpu_set_t *s, int i);
/* The GPU with this UUID, or NULL. */
const gpu_info_t *gpu_find_uuid(const gpu_set_t *s, const char *uuid);

/* Re-read memory, temperature, utilisation and power, only where supported. Returns 0, or -1
 * if NVML is not initialised. A GPU whose query now fails keeps its cap bit; its value
 * becomes -1 until the query works again. */
int gpu_refresh(gpu_set_t *s);

/* NVML's driver version ("555.99" on WSL: the Windows driver), "" unknown. */
const char *gpu_driver_version(const gpu_set_t *s);
/* Major number of the driver version (555), 0 unknown. */
int gpu_driver_major(const gpu_set_t *s);

/* CUDA driver API cross-check: device count from cuDeviceGetCount, -1 if libcuda could not
 * be loaded or cuInit failed (gpu_cuda_error says which). */
int gpu_cuda_count(const gpu_set_t *s);
/* "" when CUDA is fine; else one line ("libcuda.so.1 not found", "cuInit failed: 100"). */
const char *gpu_cuda_error(const gpu_set_t *s);
/* cuDriverGetVersion as 12040, 0 unknown. */
int gpu_cuda_driver_version(const gpu_set_t *s);
/* 1 if every pair of CUDA devices can access each other (cuDeviceCanAccessPeer), 0 if some
 * pair cannot, -1 unknown (fewer than 2 devices or no libcuda). */
int gpu_cuda_p2p_all(const gpu_set_t *s);

/* NCCL version code (2.21.5 -> 22105) from ncclGetVersion, 0 if libnccl cannot be loaded.
 * *path (may be NULL) gets the library name that was tried. Independent of any set. */
int gpu_nccl_version(const char **path);

/* Capability bits as "name,uuid,memory,temp,power". Returns buf. */
char *gpu_caps_string(unsigned caps, char *buf, size_t size);

/* The set as JSON: {"driver":..,"cuda_count":..,"absent_reason":..,"gpus":[{..}]}. Caller
 * owns the result. */
cJSON *gpu_set_to_json(const gpu_set_t *s);

/* Shut NVML down, unload the libraries, free the set and NULL *sp. NULL-safe. */
void gpu_close(gpu_set_t **sp);

#endif
