/* Seeded random numbers for initialisation and shuffling: splitmix64, one uint64_t of state,
 * so a checkpoint can store it exactly. Same sequence on every platform. */
#ifndef WSLQ_TRAIN_RNG_H
#define WSLQ_TRAIN_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s; /* the whole state */
} rng_t;

static inline uint64_t
rng_next(rng_t *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1) with 24 bits. */
static inline float
rng_uniform(rng_t *r)
{
    return (float) (rng_next(r) >> 40) * (1.0f / 16777216.0f);
}

/* Uniform integer in [0, n), n > 0 (Lemire's multiply; the bias is below 2^-32 for our n). */
static inline uint32_t
rng_below(rng_t *r, uint32_t n)
{
    return (uint32_t) (((rng_next(r) >> 32) * (uint64_t) n) >> 32);
}

#endif
