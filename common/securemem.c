/* Reuse cache of libsodium guarded blocks (securemem.h). */
#define _GNU_SOURCE /* RTLD_NEXT */
#include "common/securemem.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NCLASS 11 /* 64 B .. 64 KiB */

#ifdef SECUREMEM_WRAP
/* The static wslq (cli/CMakeLists.txt) links libzmq.a and libsodium.a with
 * --wrap=sodium_allocarray --wrap=sodium_free: libzmq's calls reach the cache's functions under
 * these names, and libsodium's own are __real_*. */
void *__real_sodium_allocarray(size_t count, size_t size);
void __real_sodium_free(void *ptr);
void *__wrap_sodium_allocarray(size_t count, size_t size);
void __wrap_sodium_free(void *ptr);
#define CACHE_ALLOCARRAY __wrap_sodium_allocarray
#define CACHE_FREE       __wrap_sodium_free
#else
#define CACHE_ALLOCARRAY sodium_allocarray
#define CACHE_FREE       sodium_free
#endif

typedef void *(*allocarray_fn)(size_t, size_t);
typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static allocarray_fn real_allocarray;
static malloc_fn real_malloc;
static free_fn real_free;

/* Every block the cache owns, handed out or kept: open addressing, linear probing. */
struct slot {
    void *p;
    unsigned char cls;
    unsigned char in_use;
};
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct slot *tab;
static size_t tab_cap; /* power of two, or 0 */
static size_t tab_n;
static void *kept[NCLASS][SECUREMEM_KEEP];
static unsigned nkept[NCLASS];
static struct securemem_stats stats;

static void
init(void)
{
    /* libsodium's allocator needs its page size, which sodium_init() sets; libzmq calls it
     * too, and later calls are no-ops. */
    if (sodium_init() < 0) {
        fputs("securemem: sodium_init failed\n", stderr);
        abort();
    }
#ifdef SECUREMEM_WRAP
    real_allocarray = __real_sodium_allocarray;
    real_malloc = sodium_malloc;
    real_free = __real_sodium_free;
#else
    real_allocarray = (allocarray_fn) dlsym(RTLD_NEXT, "sodium_allocarray");
    real_malloc = (malloc_fn) dlsym(RTLD_NEXT, "sodium_malloc");
    real_free = (free_fn) dlsym(RTLD_NEXT, "sodium_free");
#endif
    if (!real_allocarray || !real_malloc || !real_free) {
        fputs("securemem: libsodium's allocator not found (is libsodium.so linked?)\n", stderr);
        abort();
    }
}

static size_t
hash(const void *p, size_t cap)
{
    uint64_t x = (uint64_t) (uintptr_t) p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (size_t) x & (cap - 1);
}

/* Index of p's slot, or SIZE_MAX. Called with mu held. */
static size_t
tab_find(const void *p)
{
    if (!tab_cap)
        return SIZE_MAX;
    for (size_t i = hash(p, tab_cap);; i = (i + 1) & (tab_cap - 1)) {
        if (tab[i].p == p)
            return i;
        if (!tab[i].p)
            return SIZE_MAX;
    }
}

static void
tab_put(struct slot *t, size_t cap, struct slot s)
{
    size_t i = hash(s.p, cap);
    while (t[i].p)
        i = (i + 1) & (cap - 1);
    t[i] = s;
}

/* 0 on success; -1 if the table could not grow (the block then stays untracked and its free
 * goes to libsodium, which is correct for a real sodium_malloc() block). Called with mu held. */
static int
tab_add(void *p, unsigned cls)
{
    if ((tab_n + 1) * 2 > tab_cap) {
        size_t cap = tab_cap ? tab_cap * 2 : 256;
        struct slot *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        for (size_t i = 0; i < tab_cap; i++)
            if (tab[i].p)
                tab_put(t, cap, tab[i]);
        free(tab);
        tab = t;
        tab_cap = cap;
    }
    tab_put(tab, tab_cap, (struct slot){.p = p, .cls = (unsigned char) cls, .in_use = 1});
    tab_n++;
    return 0;
}

/* Removes slot i, shifting later entries of its run back so lookups need no tombstones. */
static void
tab_del(size_t i)
{
    size_t mask = tab_cap - 1;
    tab[i].p = NULL;
    tab_n--;
    for (size_t j = (i + 1) & mask; tab[j].p; j = (j + 1) & mask) {
        size_t h = hash(tab[j].p, tab_cap);
        /* Move j to the hole at i if its home h is not cyclically within (i, j]. */
        if ((j > i && (h <= i || h > j)) || (j < i && h <= i && h > j)) {
            tab[i] = tab[j];
            tab[j].p = NULL;
            i = j;
        }
    }
}

void *
CACHE_ALLOCARRAY(size_t count, size_t size)
{
    pthread_once(&once, init);
    if (count > 0 && size >= SIZE_MAX / count) {
        errno = ENOMEM;
        return NULL;
    }
    size_t n = count * size;
    if (n > SECUREMEM_MAX_CLASS) {
        pthread_mutex_lock(&mu);
        stats.passed++;
        pthread_mutex_unlock(&mu);
        return real_allocarray(count, size);
    }
    unsigned cls = 0;
    while ((SECUREMEM_MIN_CLASS << cls) < n)
        cls++;
    pthread_mutex_lock(&mu);
    if (nkept[cls]) {
        void *p = kept[cls][--nkept[cls]];
        tab[tab_find(p)].in_use = 1;
        stats.hits++;
        pthread_mutex_unlock(&mu);
        return p;
    }
    stats.misses++;
    pthread_mutex_unlock(&mu);
    void *p = real_malloc((size_t) SECUREMEM_MIN_CLASS << cls);
    if (!p)
        return NULL; /* errno from libsodium */
    pthread_mutex_lock(&mu);
    (void) tab_add(p, cls);
    pthread_mutex_unlock(&mu);
    return p;
}

void
CACHE_FREE(void *ptr)
{
    if (!ptr)
        return;
    pthread_once(&once, init);
    pthread_mutex_lock(&mu);
    size_t i = tab_find(ptr);
    if (i == SIZE_MAX) {
        pthread_mutex_unlock(&mu);
        real_free(ptr);
        return;
    }
    if (!tab[i].in_use) {
        fputs("securemem: block freed twice\n", stderr);
        abort();
    }
    unsigned cls = tab[i].cls;
    sodium_memzero(ptr, (size_t) SECUREMEM_MIN_CLASS << cls);
    if (nkept[cls] < SECUREMEM_KEEP) {
        tab[i].in_use = 0;
        kept[cls][nkept[cls]++] = ptr;
        pthread_mutex_unlock(&mu);
        return;
    }
    tab_del(i);
    pthread_mutex_unlock(&mu);
    real_free(ptr);
}

void
securemem_stats(struct securemem_stats *out)
{
    pthread_mutex_lock(&mu);
    *out = stats;
    out->kept = 0;
    for (unsigned c = 0; c < NCLASS; c++)
        out->kept += nkept[c];
    pthread_mutex_unlock(&mu);
}
