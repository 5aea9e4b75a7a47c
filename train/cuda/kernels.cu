/* The CUDA kernels: every one is the kernels.h function of the same name run over a
 * grid-stride index, so the GPU executes exactly the arithmetic the CPU tests check. Nothing
 * else lives here (GEMMs are cuBLAS calls in dlayers.c). Built with --fmad=false (see
 * CMakeLists.txt) so a*b+c is not contracted into an FMA: elementwise results then match the
 * CPU's bit for bit, except where expf/logf differ by their last bits. */
#include "train/cuda/launch.h"
#include "train/kernels.h"

namespace
{

constexpr int block = 256;
constexpr long max_blocks = 4096; /* more indices than this many blocks: each thread loops */

template <auto F, typename... A>
__global__ void
__launch_bounds__(block) each_index(long n, A... a)
{
    long stride = (long) gridDim.x * blockDim.x;
    for (long i = (long) blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride)
        F(i, a...);
}

template <auto F, typename... A>
cudaError_t
launch(cudaStream_t s, long n, A... a)
{
    if (n <= 0)
        return cudaSuccess;
    long blocks = (n + block - 1) / block;
    each_index<F, A...>
        <<<(unsigned) (blocks < max_blocks ? blocks : max_blocks), block, 0, s>>>(n, a...);
    return cudaGetLastError();
}

} // namespace

extern "C" {

cudaError_t
wqk_relu_fwd(cudaStream_t s, long n, const float *x, float *y)
{
    return launch<k_relu_fwd>(s, n, x, y);
}

cudaError_t
wqk_relu_bwd(cudaStream_t s, long n, const float *x, const float *dy, float *dx)
{
    return launch<k_relu_bwd>(s, n, x, dy, dx);
}

cudaError_t
wqk_bias_add(cudaStream_t s, long rows, float *y, const float *b, long inner, long nb)
{
    return launch<k_bias_add>(s, rows, y, b, inner, nb);
}

cudaError_t
wqk_bias_grad_rows(cudaStream_t s, long m, const float *dy, float *db, long n)
{
    return launch<k_bias_grad_rows>(s, m, dy, db, n, m);
}

cudaError_t
wqk_bias_grad_cols(cudaStream_t s, long c, const float *dyt, float *db, long len)
{
    return launch<k_bias_grad_cols>(s, c, dyt, db, len);
}

cudaError_t
wqk_xent_row(cudaStream_t s,
             long n,
             const float *logits,
             const unsigned char *labels,
             int C,
             float gscale,
             float *dz,
             float *loss)
{
    return launch<k_xent_row>(s, n, logits, labels, C, gscale, dz, loss);
}

cudaError_t
wqk_hit_row(
    cudaStream_t s, long n, const float *logits, const unsigned char *labels, int C, int *hit)
{
    return launch<k_hit_row>(s, n, logits, labels, C, hit);
}

cudaError_t
wqk_loss_accum(cudaStream_t s, const float *loss, long n, double *acc)
{
    return launch<k_loss_accum>(s, 1, loss, n, acc);
}

cudaError_t
wqk_grad_extras(cudaStream_t s, double *acc, float gscale, float stop, float *extra)
{
    return launch<k_grad_extras>(s, 1, acc, gscale, stop, extra);
}

cudaError_t
wqk_maxpool_fwd(
    cudaStream_t s, long rows, const float *x, float *y, int H, int W, int OH, int OW, int k)
{
    return launch<k_maxpool_fwd>(s, rows, x, y, H, W, OH, OW, k);
}

cudaError_t
wqk_maxpool_bwd(cudaStream_t s,
                long rows,
                const float *x,
                const float *dy,
                float *dx,
                int H,
                int W,
                int OH,
                int OW,
                int k)
{
    return launch<k_maxpool_bwd>(s, rows, x, dy, dx, H, W, OH, OW, k);
}

cudaError_t
wqk_im2col(cudaStream_t s,
           long rows,
           const float *x,
           float *col,
           int n,
           int C,
           int H,
           int W,
           int K,
           int P,
           int OH,
           int OW)
{
    return launch<k_im2col>(s, rows, x, col, n, C, H, W, K, P, OH, OW);
}

cudaError_t
wqk_col2im(cudaStream_t s,
           long rows,
           const float *col,
           float *dx,
           int n,
           int C,
           int H,
           int W,
           int K,
           int P,
           int OH,
           int OW)
{
    return launch<k_col2im>(s, rows, col, dx, n, C, H, W, K, P, OH, OW);
}

cudaError_t
wqk_nchw_to_cn(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw)
{
    return launch<k_nchw_to_cn>(s, rows, src, dst, n, C, hw);
}

cudaError_t
wqk_cn_to_nchw(cudaStream_t s, long rows, const float *src, float *dst, int n, int C, long hw)
{
    return launch<k_cn_to_nchw>(s, rows, src, dst, n, C, hw);
}

cudaError_t
wqk_sgd_momentum(cudaStream_t s, long n, float *p, const float *g, float *v, float lr, float mu)
{
    return launch<k_sgd_momentum>(s, n, p, g, v, lr, mu);
}

cudaError_t
wqk_adam(cudaStream_t s,
         long n,
         float *p,
         const float *g,
         float *m,
         float *v,
         float lr,
         float b1,
         float b2,
         float eps,
         float bc1,
         float bc2)
{
    return launch<k_adam>(s, n, p, g, m, v, lr, b1, b2, eps, bc1, bc2);
}

} // extern "C"
