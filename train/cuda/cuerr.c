#include "train/cuda/cuerr.h"

int
cu_check(wq_error_t *err, const char *file, int line, const char *call, cudaError_t e)
{
    if (e == cudaSuccess)
        return 0;
    return wq_fail(err, WQ_EIO, "%s:%d: %s: %s (%s)", file, line, call, cudaGetErrorString(e),
                   cudaGetErrorName(e));
}

int
cublas_check(wq_error_t *err, const char *file, int line, const char *call, cublasStatus_t s)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return 0;
    return wq_fail(err, WQ_EIO, "%s:%d: %s: %s (%s)", file, line, call, cublasGetStatusString(s),
                   cublasGetStatusName(s));
}
