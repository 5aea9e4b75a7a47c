/* DirectX adapters through libdxcore (WSL's /usr/lib/wsl/lib/libdxcore.so), loaded with dlopen
 * so nothing is needed at build time: every DirectX 12 compute adapter's vendor, name,
 * dedicated memory and LUID. Library search order: $WSLQ_DXCORE_LIB if set (tests point it at
 * a fake), else "libdxcore.so", else <root>/usr/lib/wsl/lib/libdxcore.so. Software adapters
 * (WARP, the basic render driver) are left out. The calls go through the interfaces' tables
 * of functions as DirectX-Headers' dxcore interface header lays them out (IUnknown's three first).
 */
#ifndef WSLQ_NODE_DXCORE_H
#define WSLQ_NODE_DXCORE_H

#include <stddef.h>
#include <stdint.h>

#define DX_MAX_ADAPTERS 16

typedef struct dx_adapter {
    char luid[24];      /* "0x0000000000012345" (HighPart, LowPart) */
    char name[128];     /* driver description: "AMD Radeon RX 7900 XTX" */
    char vendor[16];    /* "NVIDIA", "AMD", "Intel", or "0x1234" */
    uint32_t vendor_id; /* PCI vendor id, 0 unknown */
    uint64_t mem_mb;    /* dedicated adapter memory, MiB */
} dx_adapter_t;

/* The adapters, in DXCore's order (tensorflow-directml's DML_VISIBLE_DEVICES numbering).
 * Returns how many (0..max), or -1 with a one-line reason in 'why' when libdxcore is missing
 * or fails ("libdxcore.so not found"). */
int dx_adapters(const char *root, dx_adapter_t *out, int max, char *why, size_t whylen);

/* "NVIDIA", "AMD", "Intel", "Microsoft", or NULL for another vendor id. */
const char *dx_vendor_name(uint32_t vendor_id);

#endif
