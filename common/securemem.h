/* A reuse cache in front of libsodium's guarded allocator, for the daemons and the static wslq.
 *
 * libzmq's CURVE mechanism allocates its key and handshake buffers with sodium_allocarray()
 * and releases them with sodium_free(), on every connection. Each such block costs about ten
 * system calls (guard pages, mlock, mprotect, munmap): about a third of the scheduler's CPU
 * for one short `wslq` command (bench/README.md). securemem.c defines sodium_allocarray() and
 * sodium_free() itself; the scheduler and worker executables export these two symbols (their
 * CMakeLists.txt), so libzmq.so's calls bind to them instead of libsodium.so's.
 *
 * A request of up to 64 KiB is rounded up to a size class (a power of two from 64 B) and
 * served from a block of exactly that class obtained once from the real sodium_malloc(): the
 * guard pages, the canary and mlock stay. On sodium_free() the whole class is wiped with
 * sodium_memzero() and the block is kept for the next request of its class (at most
 * SECUREMEM_KEEP per class; more go back to the real sodium_free()). Kept blocks stay
 * mlocked: at most SECUREMEM_KEEP times the sum of the classes, about 2 MiB. A reused block
 * reads as zeros, not as libsodium's fill pattern. Bigger requests and pointers the cache did
 * not hand out (the real sodium_malloc()'s) go to the real functions.
 *
 * Tradeoff: libsodium places a block so that its end touches the trailing guard page; here
 * the class may be larger than the request, so a small overflow past the requested length
 * lands in the class's slack instead of faulting. The leading guard page, the canary
 * (checked only when a block finally goes back to libsodium), mlock (no swap) and the wipe on
 * every free (no key outlives its buffer) are kept. Thread-safe (libzmq's I/O threads call
 * it): one mutex. A pointer freed twice aborts.
 *
 * The real functions are looked up once with dlsym(RTLD_NEXT), so this works only in an
 * executable linked against libsodium.so. Built with SECUREMEM_WRAP (wslq_securemem_wrap) the
 * cache's two functions are named __wrap_sodium_allocarray and __wrap_sodium_free instead,
 * and the real ones are __real_*: for a program linked with the static archives and the
 * linker's --wrap=sodium_allocarray --wrap=sodium_free (the static wslq, whose CURVE
 * handshake with the scheduler otherwise set up and tore down a guarded block six times). */
#ifndef WSLQ_SECUREMEM_H
#define WSLQ_SECUREMEM_H

#include <stddef.h>

#define SECUREMEM_MIN_CLASS 64u
#define SECUREMEM_MAX_CLASS 65536u
#define SECUREMEM_KEEP      16u /* free blocks kept per class */

/* Interposed over libsodium's (same contract): count*size bytes, NULL with errno ENOMEM on
 * overflow or failure. Release with sodium_free(). */
void *sodium_allocarray(size_t count, size_t size);
void sodium_free(void *ptr); /* NULL is ignored */

/* Counters since start, for tests and benchmarks. */
struct securemem_stats {
    unsigned long hits;   /* requests served from a kept block */
    unsigned long misses; /* requests that took a new block from libsodium */
    unsigned long passed; /* requests too big for a class, passed to libsodium */
    unsigned long kept;   /* blocks now kept free, all classes */
};
void securemem_stats(struct securemem_stats *out);

#endif
