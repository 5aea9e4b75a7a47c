/* wq_free_tcp_port: a port the kernel calls free, on loopback or on every interface, that the
 * caller can then bind itself. */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>
/* after the standard headers */
#include <arpa/inet.h>
#include <cmocka.h>
#include <sys/socket.h>

#include "common/net.h"

/* 0 if this process can bind and listen on addr:port now. */
static int
bind_listen(uint32_t addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(addr);
    a.sin_port = htons((uint16_t) port);
    int rc = bind(fd, (struct sockaddr *) &a, sizeof a) == 0 && listen(fd, 1) == 0 ? 0 : -1;
    close(fd);
    return rc;
}

static void
test_loopback(void **state)
{
    (void) state;
    int port = wq_free_tcp_port(INADDR_LOOPBACK);
    assert_in_range(port, 1, 65535);
    assert_int_equal(bind_listen(INADDR_LOOPBACK, port), 0);
}

static void
test_any(void **state)
{
    (void) state;
    int port = wq_free_tcp_port(INADDR_ANY);
    assert_in_range(port, 1, 65535);
    assert_int_equal(bind_listen(INADDR_ANY, port), 0);
}

static void
test_taken(void **state)
{
    (void) state;
    /* a port held by a listener is never the answer while it is held */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
    int held = ntohs(a.sin_port);
    for (int i = 0; i < 50; i++)
        assert_int_not_equal(wq_free_tcp_port(INADDR_LOOPBACK), held);
    close(fd);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_any),
        cmocka_unit_test(test_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
