/* Optimizers over the model's flat parameter buffer: SGD with momentum, and Adam. Update rules
 * are PyTorch's (torch.optim.SGD with momentum, dampening 0; torch.optim.Adam, no weight decay)
 * so learning rates carry over. The per-parameter math is k_sgd_momentum / k_adam (kernels.h). */
#ifndef WSLQ_TRAIN_OPTIM_H
#define WSLQ_TRAIN_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    OPTIM_SGD = 1,
    OPTIM_ADAM = 2,
} optim_kind_t;

typedef struct {
    optim_kind_t kind;
    float lr;                /* learning rate */
    float momentum;          /* SGD momentum */
    float beta1, beta2, eps; /* Adam */
    uint64_t t;              /* optimizer steps taken (Adam's bias correction) */
    size_t n;                /* parameters */
    float *m;                /* SGD velocity, or Adam first moment; n floats */
    float *v;                /* Adam second moment; n floats (unused by SGD but kept, zero) */
} optim_t;

/* Caller owns the result (optim_destroy). */
optim_t *optim_new(optim_kind_t kind, size_t n, float lr, float momentum);

void optim_destroy(optim_t **op);

/* params -= update(grads); t += 1. */
void optim_step(optim_t *o, float *params, const float *grads);

/* Adam's 1 - beta1^t and 1 - beta2^t for the current o->t (after the increment). Shared with
 * the device engine so both backends update with the same numbers. */
void optim_bias_corrections(const optim_t *o, float *bc1, float *bc2);

const char *optim_name(optim_kind_t kind);

#endif
