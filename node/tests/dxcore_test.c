/* dxcore.c against the fake libdxcore: the hardware adapters in DXCore's order with vendor,
 * name, dedicated memory and LUID, the software adapter left out, every object released, and
 * a missing or failing library reported in one line. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>
#include <dlfcn.h>

#include "node/dxcore.h"

static int
reset_env(void **state)
{
    (void) state;
    setenv("WSLQ_DXCORE_LIB", FAKE_DXCORE, 1);
    unsetenv("FAKE_DXCORE_FAIL");
    unsetenv("FAKE_DXCORE_NO_NVIDIA");
    return 0;
}

static void
test_adapters(void **state)
{
    (void) state;
    dx_adapter_t a[DX_MAX_ADAPTERS];
    char why[256] = "";
    /* keep the fake loaded across the call, to read its reference count after */
    void *lib = dlopen(FAKE_DXCORE, RTLD_NOW);
    assert_non_null(lib);
    int (*refs)(void) = (int (*)(void)) dlsym(lib, "fake_dxcore_refs");
    assert_non_null(refs);
    int n = dx_adapters("/", a, DX_MAX_ADAPTERS, why, sizeof why);
    assert_int_equal(n, 2); /* the Basic Render Driver is not a GPU */
    assert_string_equal(a[0].name, "NVIDIA GeForce RTX 4090");
    assert_string_equal(a[0].vendor, "NVIDIA");
    assert_int_equal(a[0].vendor_id, 0x10de);
    assert_int_equal(a[0].mem_mb, 24564);
    assert_string_equal(a[0].luid, "0x000000000001a2b3");
    assert_string_equal(a[1].name, "AMD Radeon RX 7900 XTX");
    assert_string_equal(a[1].vendor, "AMD");
    assert_int_equal(a[1].mem_mb, 24560);
    assert_string_equal(a[1].luid, "0x0000000000054321");
    assert_int_equal(refs(), 0); /* factory, list and each adapter released */

    assert_int_equal(dx_adapters("/", a, 1, why, sizeof why), 1); /* at most max */
    setenv("FAKE_DXCORE_NO_NVIDIA", "1", 1);
    assert_int_equal(dx_adapters("/", a, DX_MAX_ADAPTERS, why, sizeof why), 1);
    assert_string_equal(a[0].vendor, "AMD");
    assert_int_equal(refs(), 0);
    dlclose(lib);
}

static void
test_failures(void **state)
{
    (void) state;
    dx_adapter_t a[DX_MAX_ADAPTERS];
    char why[256] = "";
    setenv("FAKE_DXCORE_FAIL", "1", 1);
    assert_int_equal(dx_adapters("/", a, DX_MAX_ADAPTERS, why, sizeof why), -1);
    assert_string_equal(why, "DXCoreCreateAdapterFactory failed: HRESULT 0x80004005");
    setenv("WSLQ_DXCORE_LIB", "/nonexistent/libdxcore.so", 1);
    assert_int_equal(dx_adapters("/", a, DX_MAX_ADAPTERS, why, sizeof why), -1);
    assert_non_null(strstr(why, "/nonexistent/libdxcore.so (from WSLQ_DXCORE_LIB) cannot be "
                                "loaded"));
    unsetenv("WSLQ_DXCORE_LIB"); /* no libdxcore on this machine, none under this root */
    assert_int_equal(dx_adapters("/nonexistent-root", a, DX_MAX_ADAPTERS, why, sizeof why), -1);
    assert_string_equal(why, "libdxcore.so not found");
    assert_string_equal(dx_vendor_name(0x8086), "Intel");
    assert_null(dx_vendor_name(0x1234));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_adapters, reset_env),
        cmocka_unit_test_setup(test_failures, reset_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
