/* A fake libdxcore for tests: DXCoreCreateAdapterFactory and the few interface functions
 * node/dxcore.c calls, laid out as DirectX-Headers' dxcore interface header does. Three adapters:
 * the NVIDIA RTX 4090 the NVML fake also has, an AMD Radeon RX 7900 XTX, and Microsoft's
 * software Basic Render Driver (IsHardware false), which must be left out.
 *
 * Knobs (read at call time): FAKE_DXCORE_FAIL=1 (the factory fails with E_FAIL),
 * FAKE_DXCORE_NO_NVIDIA=1 (only the AMD and software adapters). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT       __attribute__((visibility("default")))
#define E_FAIL       ((int32_t) 0x80004005u)
#define E_INVALIDARG ((int32_t) 0x80070057u)

typedef struct {
    uint32_t d1;
    uint16_t d2, d3;
    uint8_t d4[8];
} guid_t;

struct fake_adapter {
    void **vtbl;
    const char *desc;
    uint32_t vendor, device;
    uint64_t mem_bytes;
    uint32_t luid_low;
    int32_t luid_high;
    uint8_t hardware;
};

static int32_t
qi(void *self, const guid_t *riid, void **out)
{
    (void) self;
    (void) riid;
    *out = NULL;
    return E_FAIL;
}

static int refs;

static uint32_t
add_ref(void *self)
{
    (void) self;
    return (uint32_t) ++refs;
}

static uint32_t
release(void *self)
{
    (void) self;
    return (uint32_t) --refs;
}

/* ---- adapters ---- */

static uint8_t
adapter_is_valid(void *self)
{
    (void) self;
    return 1;
}

static uint8_t
adapter_attr(void *self, const guid_t *g)
{
    (void) self;
    (void) g;
    return 1;
}

static uint8_t
adapter_has_prop(void *self, uint32_t p)
{
    (void) self;
    return p <= 14;
}

static int32_t
adapter_get(void *self, uint32_t prop, size_t size, void *buf)
{
    struct fake_adapter *a = self;
    switch (prop) {
    case 0: { /* InstanceLuid */
        if (size < 8)
            return E_INVALIDARG;
        memcpy(buf, &a->luid_low, 4);
        memcpy((char *) buf + 4, &a->luid_high, 4);
        return 0;
    }
    case 2: /* DriverDescription */
        if (size < strlen(a->desc) + 1)
            return E_INVALIDARG;
        memcpy(buf, a->desc, strlen(a->desc) + 1);
        return 0;
    case 3: { /* HardwareID */
        uint32_t id[4] = {a->vendor, a->device, 0, 1};
        if (size < sizeof id)
            return E_INVALIDARG;
        memcpy(buf, id, sizeof id);
        return 0;
    }
    case 7: /* DedicatedAdapterMemory */
        if (size < 8)
            return E_INVALIDARG;
        memcpy(buf, &a->mem_bytes, 8);
        return 0;
    case 11: /* IsHardware */
        if (size < 1)
            return E_INVALIDARG;
        *(uint8_t *) buf = a->hardware;
        return 0;
    default:
        return E_INVALIDARG;
    }
}

static int32_t
adapter_size(void *self, uint32_t prop, size_t *size)
{
    struct fake_adapter *a = self;
    static const size_t sizes[] = {[0] = 8, [3] = 16, [7] = 8, [11] = 1};
    if (prop == 2)
        *size = strlen(a->desc) + 1;
    else if (prop < sizeof sizes / sizeof sizes[0] && sizes[prop])
        *size = sizes[prop];
    else
        return E_INVALIDARG;
    return 0;
}

static void *adapter_vtbl[] = {(void *) qi,           (void *) add_ref,
                               (void *) release,      (void *) adapter_is_valid,
                               (void *) adapter_attr, (void *) adapter_has_prop,
                               (void *) adapter_get,  (void *) adapter_size};

static struct fake_adapter adapters[] = {
    {adapter_vtbl, "NVIDIA GeForce RTX 4090", 0x10de, 0x2684, 24564ULL << 20, 0x1a2b3, 0, 1},
    {adapter_vtbl, "AMD Radeon RX 7900 XTX", 0x1002, 0x744c, 24560ULL << 20, 0x54321, 0, 1},
    {adapter_vtbl, "Microsoft Basic Render Driver", 0x1414, 0x8c, 0, 0x999, 0, 0},
};

/* ---- the list ---- */

struct fake_list {
    void **vtbl;
};

static int
visible(unsigned i)
{
    const char *v = getenv("FAKE_DXCORE_NO_NVIDIA");
    return !(v && v[0] == '1' && adapters[i].vendor == 0x10de);
}

static int32_t
list_get(void *self, uint32_t index, const guid_t *riid, void **out)
{
    (void) self;
    (void) riid;
    for (unsigned i = 0, k = 0; i < sizeof adapters / sizeof adapters[0]; i++) {
        if (!visible(i))
            continue;
        if (k++ == index) {
            refs++;
            *out = &adapters[i];
            return 0;
        }
    }
    *out = NULL;
    return E_INVALIDARG;
}

static uint32_t
list_count(void *self)
{
    (void) self;
    uint32_t n = 0;
    for (unsigned i = 0; i < sizeof adapters / sizeof adapters[0]; i++)
        n += (uint32_t) visible(i);
    return n;
}

static void *list_vtbl[] = {(void *) qi, (void *) add_ref, (void *) release, (void *) list_get,
                            (void *) list_count};
static struct fake_list the_list = {list_vtbl};

/* ---- the factory ---- */

struct fake_factory {
    void **vtbl;
};

static int32_t
factory_list(void *self, uint32_t n, const guid_t *attrs, const guid_t *riid, void **out)
{
    (void) self;
    (void) riid;
    if (n != 0 && attrs == NULL)
        return E_INVALIDARG;
    refs++;
    *out = &the_list;
    return 0;
}

static void *factory_vtbl[] = {(void *) qi, (void *) add_ref, (void *) release,
                               (void *) factory_list};
static struct fake_factory the_factory = {factory_vtbl};

EXPORT int32_t
DXCoreCreateAdapterFactory(const guid_t *riid, void **out)
{
    const char *f = getenv("FAKE_DXCORE_FAIL");
    (void) riid;
    if (f && f[0] == '1') {
        *out = NULL;
        return E_FAIL;
    }
    refs++;
    *out = &the_factory;
    return 0;
}

/* For the tests: references taken and not given back (0 when every object was released). */
EXPORT int
fake_dxcore_refs(void)
{
    return refs;
}
