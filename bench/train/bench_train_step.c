/* Training throughput of one rank: forward + backward + Adam on a fixed random batch, the
 * same work wslq-train does per step minus data gathering.
 *
 *   bench_train_step [mlp|cnn] [threads] [batch] [steps]
 *
 * Prints samples/s and ms/step. Compare with torch_ref.py (same nets, batch, optimizer). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "train/model.h"
#include "train/optim.h"
#include "train/rng.h"

int
main(int argc, char **argv)
{
    const char *kind = argc > 1 ? argv[1] : "mlp";
    int threads = argc > 2 ? atoi(argv[2]) : 1;
    int batch = argc > 3 ? atoi(argv[3]) : 64;
    int steps = argc > 4 ? atoi(argv[4]) : (strcmp(kind, "cnn") ? 400 : 40);
    if (threads < 1 || batch < 1 || steps < 1) {
        fprintf(stderr, "usage: bench_train_step [mlp|cnn] [threads] [batch] [steps]\n");
        return 2;
    }
    openblas_set_num_threads(threads);
    model_spec_t spec = {.kind = MODEL_MLP,
                         .in_c = 1,
                         .in_h = 28,
                         .in_w = 28,
                         .classes = 10,
                         .n_hidden = 2,
                         .hidden = {256, 128},
                         .kernel = 3};
    if (!strcmp(kind, "cnn")) {
        spec.kind = MODEL_CNN;
        spec.n_conv = 2;
        spec.conv[0] = 32;
        spec.conv[1] = 64;
        spec.n_hidden = 1;
        spec.hidden[0] = 128;
    }
    wq_error_t err;
    model_t *m = model_new(&spec, batch, &err);
    if (!m) {
        fprintf(stderr, "%s\n", err.text);
        return 1;
    }
    model_init_params(m, 1);
    optim_t *o = optim_new(OPTIM_ADAM, m->n_params, 1e-3f, 0.9f);
    float *x = malloc(sizeof(float) * 784 * (size_t) batch);
    unsigned char *y = malloc((size_t) batch);
    rng_t r = {42};
    for (int i = 0; i < 784 * batch; i++)
        x[i] = rng_uniform(&r) * 2 - 1;
    for (int i = 0; i < batch; i++)
        y[i] = (unsigned char) rng_below(&r, 10);
    int warm = steps / 10 + 2;
    int64_t t0 = 0;
    for (int s = 0; s < warm + steps; s++) {
        if (s == warm)
            t0 = wq_clock_mono_ms();
        memset(m->grads, 0, sizeof(float) * m->n_params);
        model_forward(m, x, batch);
        model_backward(m, y, batch, 1.0f / (float) batch);
        optim_step(o, m->params, m->grads);
    }
    double secs = (double) (wq_clock_mono_ms() - t0) / 1000.0;
    printf("model %s threads %d batch %d steps %d: %.0f samples/s, %.2f ms/step\n", m->shape,
           threads, batch, steps, steps * (double) batch / secs, 1000.0 * secs / steps);
    free(x);
    free(y);
    optim_destroy(&o);
    model_destroy(&m);
    return 0;
}
