/* securemem.c: the reuse cache in front of libsodium's guarded allocator. The test calls the
 * cache's sodium_allocarray()/sodium_free() directly (they are linked into this program). */
/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
/* after the standard headers */
#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>

#include "common/securemem.h"

/* Every size up to past the biggest class is usable to its full length. */
static void
test_sizes_usable(void **state)
{
    (void) state;
    static const size_t sizes[] = {0,    1,    63,   64,    65,    100,   127,   128,   1000,
                                   4095, 4096, 4097, 32768, 40000, 65535, 65536, 65537, 200000};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        unsigned char *p = sodium_allocarray(1, n);
        assert_non_null(p);
        memset(p, 0xa5, n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0xa5);
        sodium_free(p);
        /* count*size, as libzmq calls it (element size first). */
        uint32_t *q = sodium_allocarray(n / 4 + 1, sizeof *q);
        assert_non_null(q);
        for (size_t i = 0; i < n / 4 + 1; i++)
            q[i] = (uint32_t) i;
        for (size_t i = 0; i < n / 4 + 1; i++)
            assert_int_equal(q[i], i);
        sodium_free(q);
    }
}

/* A freed block comes back wiped: read before writing. */
static void
test_reuse_zeroed(void **state)
{
    (void) state;
    unsigned char *p = sodium_allocarray(1, 300); /* class 512 */
    assert_non_null(p);
    memset(p, 0x5a, 300);
    sodium_free(p);
    struct securemem_stats before;
    securemem_stats(&before);
    unsigned char *q = sodium_allocarray(1, 512); /* same class */
    assert_non_null(q);
    struct securemem_stats after;
    securemem_stats(&after);
    assert_int_equal(after.hits, before.hits + 1);
    assert_ptr_equal(q, p);
    for (size_t i = 0; i < 512; i++)
        assert_int_equal(q[i], 0);
    sodium_free(q);
}

/* At most SECUREMEM_KEEP blocks per class stay cached; the rest go back to libsodium. */
static void
test_keep_bounded(void **state)
{
    (void) state;
    enum { N = SECUREMEM_KEEP + 8 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = sodium_allocarray(2048, 1);
        assert_non_null(p[i]);
        memset(p[i], i, 2048);
    }
    for (int i = 0; i < N; i++)
        sodium_free(p[i]);
    struct securemem_stats st;
    securemem_stats(&st);
    assert_true(st.kept <= 11 * SECUREMEM_KEEP);
    /* Allocating N again reuses exactly SECUREMEM_KEEP of them. */
    struct securemem_stats before;
    securemem_stats(&before);
    for (int i = 0; i < N; i++) {
        p[i] = sodium_allocarray(2048, 1);
        assert_non_null(p[i]);
    }
    struct securemem_stats after;
    securemem_stats(&after);
    assert_int_equal(after.hits - before.hits, SECUREMEM_KEEP);
    assert_int_equal(after.misses - before.misses, N - SECUREMEM_KEEP);
    for (int i = 0; i < N; i++)
        sodium_free(p[i]);
}

static void
test_overflow_refused(void **state)
{
    (void) state;
    errno = 0;
    assert_null(sodium_allocarray(SIZE_MAX / 2, 3));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(sodium_allocarray((size_t) 1 << 40, (size_t) 1 << 40));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(sodium_allocarray(1, SIZE_MAX));
    assert_int_equal(errno, ENOMEM);
    sodium_free(NULL); /* ignored */
}

/* libsodium's own sodium_malloc() blocks pass through the cache's sodium_free(). */
static void
test_real_block_passes(void **state)
{
    (void) state;
    for (size_t n = 1; n <= 8192; n *= 2) {
        unsigned char *p = sodium_malloc(n);
        assert_non_null(p);
        memset(p, 1, n);
        sodium_free(p);
    }
}

static void *
churn(void *arg)
{
    unsigned seed = (unsigned) (uintptr_t) arg;
    unsigned char *held[8] = {0};
    size_t len[8] = {0};
    for (int round = 0; round < 3000; round++) {
        seed = seed * 1103515245u + 12345u;
        unsigned k = (seed >> 16) % 8;
        if (held[k]) {
            for (size_t i = 0; i < len[k]; i++)
                if (held[k][i] != (unsigned char) k)
                    return (void *) 1;
            sodium_free(held[k]);
            held[k] = NULL;
        } else {
            len[k] = ((seed >> 8) % 5000) + 1;
            held[k] = sodium_allocarray(len[k], 1);
            if (!held[k])
                return (void *) 1;
            memset(held[k], (int) k, len[k]);
        }
    }
    for (unsigned k = 0; k < 8; k++)
        sodium_free(held[k]);
    return NULL;
}

/* Many threads allocating and freeing at once: no crash, no block shared between two. */
static void
test_threads(void **state)
{
    (void) state;
    enum { T = 8 };
    pthread_t t[T];
    for (uintptr_t i = 0; i < T; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, (void *) (i + 1)), 0);
    for (int i = 0; i < T; i++) {
        void *rc = (void *) 1;
        assert_int_equal(pthread_join(t[i], &rc), 0);
        assert_null(rc);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_usable),      cmocka_unit_test(test_reuse_zeroed),
        cmocka_unit_test(test_keep_bounded),      cmocka_unit_test(test_overflow_refused),
        cmocka_unit_test(test_real_block_passes), cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
