/* nodecheck: the line a check becomes, set and replace by id, and the wire's refusal of bad
 * checks (an unknown verdict, an empty id, too many). */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/mem.h"
#include "proto/nodecheck.h"
#include "proto/wire.h"

static void
test_line(void **state)
{
    (void) state;
    Wslq__NodeCheck c = WSLQ__NODE_CHECK__INIT;
    c.id = "time.offset";
    c.verdict = WSLQ__CHECK_VERDICT__CHECK_PASS;
    c.summary = "offset +3 ms (rtt 1 ms)";
    c.fix = "";
    char buf[256];
    assert_string_equal(nodecheck_line(&c, buf, sizeof buf), "PASS offset +3 ms (rtt 1 ms)");
    c.verdict = WSLQ__CHECK_VERDICT__CHECK_FAIL;
    c.fix = "open the port";
    assert_string_equal(nodecheck_line(&c, buf, sizeof buf),
                        "FAIL offset +3 ms (rtt 1 ms) | fix: open the port");
    assert_string_equal(nodecheck_verdict_name(WSLQ__CHECK_VERDICT__CHECK_WARN), "WARN");
    assert_string_equal(nodecheck_verdict_lower(WSLQ__CHECK_VERDICT__CHECK_INFO), "info");
    assert_string_equal(nodecheck_verdict_name(WSLQ__CHECK_VERDICT__CHECK_VERDICT_UNSPECIFIED),
                        "?");
    assert_string_equal(nodecheck_verdict_name((Wslq__CheckVerdict) 9), "?");
}

static void
test_set_replaces_by_id(void **state)
{
    (void) state;
    Wslq__NodeInfo *ni = wq_malloc(sizeof *ni);
    wslq__node_info__init(ni);
    nodecheck_set(&ni->checks, &ni->n_checks, "net.inbound", WSLQ__CHECK_VERDICT__CHECK_INFO,
                  "pending", "");
    nodecheck_set(&ni->checks, &ni->n_checks, "time.offset", WSLQ__CHECK_VERDICT__CHECK_PASS, "ok",
                  "");
    nodecheck_set(&ni->checks, &ni->n_checks, "net.inbound", WSLQ__CHECK_VERDICT__CHECK_FAIL,
                  "refused", "open it");
    assert_int_equal(ni->n_checks, 2);
    const Wslq__NodeCheck *c = nodecheck_find(ni->checks, ni->n_checks, "net.inbound");
    assert_non_null(c);
    assert_int_equal(c->verdict, WSLQ__CHECK_VERDICT__CHECK_FAIL);
    assert_string_equal(c->summary, "refused");
    assert_string_equal(c->fix, "open it");
    assert_null(nodecheck_find(ni->checks, ni->n_checks, "gpu.nvml"));
    /* it survives the wire */
    Wslq__NodesReply rep = WSLQ__NODES_REPLY__INIT;
    rep.nodes = &ni;
    rep.n_nodes = 1;
    ni->name = wq_strdup("pc1");
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.body_case = WSLQ__ENVELOPE__BODY_NODES_REPLY;
    env.nodes_reply = &rep;
    size_t len;
    uint8_t *buf = wire_encode(&env, &len);
    wq_error_t err = {0};
    Wslq__Envelope *back = wire_decode(buf, len, &err);
    assert_non_null(back);
    assert_int_equal(back->nodes_reply->nodes[0]->n_checks, 2);
    assert_string_equal(back->nodes_reply->nodes[0]->checks[0]->id, "net.inbound");
    wire_free(&back);
    free(buf);
    wslq__node_info__free_unpacked(ni, NULL);
}

/* A Register carrying one check, made bad in one way. */
static int
register_with(Wslq__NodeCheck *c, size_t copies, wq_error_t *err)
{
    Wslq__NodeCheck **list = wq_calloc(copies, sizeof *list);
    for (size_t i = 0; i < copies; i++)
        list[i] = c;
    Wslq__Register r = WSLQ__REGISTER__INIT;
    r.name = "pc1";
    r.checks = list;
    r.n_checks = copies;
    Wslq__Envelope env = WSLQ__ENVELOPE__INIT;
    env.proto_version = WIRE_PROTO_CUR;
    env.body_case = WSLQ__ENVELOPE__BODY_REG;
    env.reg = &r;
    int rc = wire_validate(&env, err);
    free(list);
    return rc;
}

static void
test_wire_refuses_bad_checks(void **state)
{
    (void) state;
    Wslq__NodeCheck c = WSLQ__NODE_CHECK__INIT;
    c.id = "gpu.nvml";
    c.verdict = WSLQ__CHECK_VERDICT__CHECK_WARN;
    c.summary = "NVML is old";
    c.fix = "update the driver";
    wq_error_t err = {0};
    assert_int_equal(register_with(&c, 1, &err), 0);
    assert_int_equal(register_with(&c, WIRE_MAX_CHECKS, &err), 0);
    assert_int_equal(register_with(&c, WIRE_MAX_CHECKS + 1, &err), -1);
    assert_non_null(strstr(err.text, "node checks"));
    c.verdict = (Wslq__CheckVerdict) 7;
    assert_int_equal(register_with(&c, 1, &err), -1);
    assert_non_null(strstr(err.text, "verdict 7 is out of range"));
    c.verdict = WSLQ__CHECK_VERDICT__CHECK_VERDICT_UNSPECIFIED;
    assert_int_equal(register_with(&c, 1, &err), -1);
    c.verdict = WSLQ__CHECK_VERDICT__CHECK_PASS;
    c.id = "";
    assert_int_equal(register_with(&c, 1, &err), -1);
    assert_non_null(strstr(err.text, "check id"));
    char long_text[WIRE_MAX_CHECK_TEXT + 2];
    memset(long_text, 'x', sizeof long_text - 1);
    long_text[sizeof long_text - 1] = '\0';
    c.id = "gpu.nvml";
    c.fix = long_text;
    assert_int_equal(register_with(&c, 1, &err), -1);
    assert_non_null(strstr(err.text, "check fix"));
}

/* Wire compatibility: the field numbers are the contract. A Register from a worker older than
 * checks (no field 13) still decodes, and field 13 of Register is the checks. */
static void
test_field_numbers(void **state)
{
    (void) state;
    Wslq__Register r = WSLQ__REGISTER__INIT;
    r.name = "pc1";
    uint8_t old[64];
    size_t n = wslq__register__pack(&r, old);
    Wslq__Register *back = wslq__register__unpack(NULL, n, old);
    assert_non_null(back);
    assert_int_equal(back->n_checks, 0);
    wslq__register__free_unpacked(back, NULL);
    Wslq__NodeCheck c = WSLQ__NODE_CHECK__INIT, *cp = &c;
    c.id = "a";
    c.verdict = WSLQ__CHECK_VERDICT__CHECK_FAIL;
    Wslq__Register only = WSLQ__REGISTER__INIT;
    only.checks = &cp;
    only.n_checks = 1;
    uint8_t buf[64];
    n = wslq__register__pack(&only, buf);
    /* tag (13 << 3 | length-delimited), length, then NodeCheck: id (1) "a", verdict (2) = 4 */
    const uint8_t want[] = {13 << 3 | 2, 5, 1 << 3 | 2, 1, 'a', 2 << 3 | 0, 4};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(buf, want, sizeof want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line),
        cmocka_unit_test(test_set_replaces_by_id),
        cmocka_unit_test(test_wire_refuses_bad_checks),
        cmocka_unit_test(test_field_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
