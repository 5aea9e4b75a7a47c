/* DirectX adapters through libdxcore; see dxcore.h. */
#include "node/dxcore.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node/facts.h"
#include "node/node_internal.h"

typedef int32_t dx_hr_t; /* HRESULT: negative = failure */
typedef struct {
    uint32_t d1;
    uint16_t d2, d3;
    uint8_t d4[8];
} dx_guid_t;
typedef struct {
    uint32_t low;
    int32_t high;
} dx_luid_t;
typedef struct {
    uint32_t vendor, device, subsys, revision;
} dx_hwid_t;

/* A COM object: its first word points at its table of functions. */
typedef struct {
    void **vtbl;
} dx_obj_t;

static const dx_guid_t IID_FACTORY = {
    0x78ee5945, 0xc36e, 0x4b13, {0xa6, 0x69, 0x00, 0x5d, 0xd1, 0x1c, 0x0f, 0x06}};
static const dx_guid_t IID_LIST = {
    0x526c7776, 0x40e9, 0x459b, {0xb7, 0x11, 0xf3, 0x2a, 0xd7, 0x6d, 0xfc, 0x28}};
static const dx_guid_t IID_ADAPTER = {
    0xf0db4c7f, 0xfe5a, 0x42a2, {0xbd, 0x62, 0xf2, 0xa6, 0xcf, 0x6f, 0xc8, 0x3e}};
static const dx_guid_t ATTR_CORE_COMPUTE = {
    0x248e2800, 0xa793, 0x4724, {0xab, 0xaa, 0x23, 0xa6, 0xde, 0x1b, 0xe0, 0x90}};

/* DXCoreAdapterProperty values */
enum { P_LUID = 0, P_DESCRIPTION = 2, P_HWID = 3, P_DEDICATED_MEM = 7, P_IS_HARDWARE = 11 };

/* Slots in the tables: IUnknown's QueryInterface, AddRef, Release come first. */
#define SLOT_RELEASE       2
#define SLOT_CREATE_LIST   3 /* IDXCoreAdapterFactory::CreateAdapterList */
#define SLOT_GET_ADAPTER   3 /* IDXCoreAdapterList::GetAdapter */
#define SLOT_ADAPTER_COUNT 4 /* IDXCoreAdapterList::GetAdapterCount */
#define SLOT_GET_PROPERTY  6 /* IDXCoreAdapter::GetProperty */
#define SLOT_PROPERTY_SIZE 7 /* IDXCoreAdapter::GetPropertySize */

typedef uint32_t (*release_fn)(dx_obj_t *);
typedef dx_hr_t (*create_list_fn)(
    dx_obj_t *, uint32_t, const dx_guid_t *, const dx_guid_t *, void **);
typedef dx_hr_t (*get_adapter_fn)(dx_obj_t *, uint32_t, const dx_guid_t *, void **);
typedef uint32_t (*count_fn)(dx_obj_t *);
typedef dx_hr_t (*get_property_fn)(dx_obj_t *, uint32_t, size_t, void *);
typedef dx_hr_t (*property_size_fn)(dx_obj_t *, uint32_t, size_t *);

#define CALL(obj, slot, type) ((type) (obj)->vtbl[slot])

static void
release(dx_obj_t *o)
{
    if (o != NULL)
        CALL(o, SLOT_RELEASE, release_fn)(o);
}

const char *
dx_vendor_name(uint32_t id)
{
    switch (id) {
    case 0x10de:
        return "NVIDIA";
    case 0x1002:
    case 0x1022:
        return "AMD";
    case 0x8086:
        return "Intel";
    case 0x1414:
        return "Microsoft";
    default:
        return NULL;
    }
}

static void *
load(const char *root, char *why, size_t whylen)
{
    const char *forced = getenv("WSLQ_DXCORE_LIB");
    void *h;
    if (forced != NULL && forced[0] != '\0') {
        if ((h = dlopen(forced, RTLD_NOW | RTLD_LOCAL)) == NULL)
            snprintf(why, whylen, "%s (from WSLQ_DXCORE_LIB) cannot be loaded: %s", forced,
                     dlerror());
        return h;
    }
    if ((h = dlopen("libdxcore.so", RTLD_NOW | RTLD_LOCAL)) != NULL)
        return h;
    char path[PATH_MAX];
    if (node_path(path, sizeof path, root, "/usr/lib/wsl/lib/libdxcore.so") &&
        (h = dlopen(path, RTLD_NOW | RTLD_LOCAL)) != NULL)
        return h;
    snprintf(why, whylen, "libdxcore.so not found");
    return NULL;
}

/* One adapter's facts; 0 if it is to be left out (software, or its facts cannot be read). */
static int
read_adapter(dx_obj_t *a, dx_adapter_t *out)
{
    get_property_fn get = CALL(a, SLOT_GET_PROPERTY, get_property_fn);
    property_size_fn size = CALL(a, SLOT_PROPERTY_SIZE, property_size_fn);
    memset(out, 0, sizeof *out);
    uint8_t hw = 1;
    if (get(a, P_IS_HARDWARE, sizeof hw, &hw) >= 0 && !hw)
        return 0;
    dx_luid_t luid;
    if (get(a, P_LUID, sizeof luid, &luid) < 0)
        return 0;
    snprintf(out->luid, sizeof out->luid, "0x%08x%08x", (uint32_t) luid.high, luid.low);
    size_t n = 0;
    if (size(a, P_DESCRIPTION, &n) >= 0 && n > 0 && n < 4096) {
        char *d = calloc(1, n + 1);
        if (d != NULL && get(a, P_DESCRIPTION, n, d) >= 0)
            node_copy(out->name, sizeof out->name, d);
        free(d);
    }
    dx_hwid_t id;
    if (get(a, P_HWID, sizeof id, &id) >= 0) {
        out->vendor_id = id.vendor;
        const char *v = dx_vendor_name(id.vendor);
        if (v != NULL)
            node_copy(out->vendor, sizeof out->vendor, v);
        else
            snprintf(out->vendor, sizeof out->vendor, "0x%04x", id.vendor);
    }
    if (out->vendor_id == 0x1414)
        return 0; /* Microsoft: the basic render driver, WARP */
    uint64_t mem = 0;
    if (get(a, P_DEDICATED_MEM, sizeof mem, &mem) >= 0)
        out->mem_mb = mem >> 20;
    return 1;
}

int
dx_adapters(const char *root, dx_adapter_t *out, int max, char *why, size_t whylen)
{
    void *lib = load(root, why, whylen);
    if (lib == NULL)
        return -1;
    dx_hr_t (*create)(const dx_guid_t *, void **) =
        (dx_hr_t(*)(const dx_guid_t *, void **)) dlsym(lib, "DXCoreCreateAdapterFactory");
    if (create == NULL) {
        snprintf(why, whylen, "libdxcore lacks DXCoreCreateAdapterFactory");
        dlclose(lib);
        return -1;
    }
    dx_obj_t *factory = NULL, *list = NULL;
    dx_hr_t r = create(&IID_FACTORY, (void **) &factory);
    if (r < 0 || factory == NULL) {
        snprintf(why, whylen, "DXCoreCreateAdapterFactory failed: HRESULT 0x%08x", (unsigned) r);
        dlclose(lib);
        return -1;
    }
    r = CALL(factory, SLOT_CREATE_LIST, create_list_fn)(factory, 1, &ATTR_CORE_COMPUTE, &IID_LIST,
                                                        (void **) &list);
    if (r < 0 || list == NULL) {
        snprintf(why, whylen, "CreateAdapterList failed: HRESULT 0x%08x", (unsigned) r);
        release(factory);
        dlclose(lib);
        return -1;
    }
    int n = 0;
    uint32_t count = CALL(list, SLOT_ADAPTER_COUNT, count_fn)(list);
    for (uint32_t i = 0; i < count && n < max; i++) {
        dx_obj_t *a = NULL;
        if (CALL(list, SLOT_GET_ADAPTER, get_adapter_fn)(list, i, &IID_ADAPTER, (void **) &a) < 0 ||
            a == NULL)
            continue;
        n += read_adapter(a, &out[n]);
        release(a);
    }
    release(list);
    release(factory);
    dlclose(lib);
    return n;
}
