/* wire_snap.c: the snapshot messages and the spec's --workdir / --output fields, each bad
 * value refused by wire_validate with a line saying what. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "proto/wire.h"
#include "proto/wire_snap.h"

static const char *H = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void
test_hash(void **state)
{
    (void) state;
    assert_true(wire_hash_ok(H));
    assert_false(wire_hash_ok("0123"));
    assert_false(wire_hash_ok(NULL));
    char up[65];
    memcpy(up, H, 65);
    up[3] = 'A';
    assert_false(wire_hash_ok(up));
    char longer[80];
    snprintf(longer, sizeof longer, "%s00", H);
    assert_false(wire_hash_ok(longer));
}

static void
test_put(void **state)
{
    (void) state;
    Wslq__SnapshotPut p = WSLQ__SNAPSHOT_PUT__INIT;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.proto_version = WIRE_PROTO_CUR;
    env.body_case = WSLQ__ENVELOPE__BODY_SNAP_PUT;
    env.snap_put = &p;
    wq_error_t err = {0};
    p.hash = (char *) H;
    assert_int_equal(wire_validate(&env, &err), 0);
    p.hash = "../../etc";
    assert_int_equal(wire_validate(&env, &err), -1);
    assert_non_null(strstr(err.text, "hex"));
    p.hash = (char *) H;
    static uint8_t big[WIRE_MAX_SNAP_CHUNK + 1];
    p.data.data = big;
    p.data.len = sizeof big;
    assert_int_equal(wire_validate(&env, &err), -1);
    assert_int_equal(err.code, WQ_ELIMIT);
}

static void
test_fetch(void **state)
{
    (void) state;
    Wslq__FetchRequest f = WSLQ__FETCH_REQUEST__INIT;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.proto_version = WIRE_PROTO_CUR;
    env.body_case = WSLQ__ENVELOPE__BODY_FETCH;
    env.fetch = &f;
    wq_error_t err = {0};
    f.node = "pc1";
    assert_int_equal(wire_validate(&env, &err), 0);
    f.node = "../x";
    assert_int_equal(wire_validate(&env, &err), -1);
    f.node = "..";
    assert_int_equal(wire_validate(&env, &err), -1);
}

static void
test_spec(void **state)
{
    (void) state;
    Wslq__JobSpec s = WSLQ__JOB_SPEC__INIT;
    wq_error_t err = {0};
    assert_int_equal(wire_check_snap_spec(&s, &err), 0);
    s.output_dir = "out";
    assert_int_equal(wire_check_snap_spec(&s, &err), -1); /* --output needs --workdir */
    assert_non_null(strstr(err.text, "--workdir"));
    s.workdir_hash = (char *) H;
    assert_int_equal(wire_check_snap_spec(&s, &err), 0);
    s.output_dir = "/etc";
    assert_int_equal(wire_check_snap_spec(&s, &err), -1);
    s.output_dir = "a/../../b";
    assert_int_equal(wire_check_snap_spec(&s, &err), -1);
    assert_non_null(strstr(err.text, ".."));
    s.output_dir = "a/b..c";
    assert_int_equal(wire_check_snap_spec(&s, &err), 0);
    s.workdir_hash = "xyz";
    assert_int_equal(wire_check_snap_spec(&s, &err), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_fetch),
        cmocka_unit_test(test_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
