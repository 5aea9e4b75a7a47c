/* Error reports for CUDA runtime and cuBLAS calls: call site, the call as written, and the
 * library's own words, in one line of wq_error_t text:
 *
 *     dlayers.c:57: cudaMalloc(&p, bytes): out of memory (cudaErrorMemoryAllocation)
 *
 * Use as  if (!CU_OK(err, cudaMemcpyAsync(...))) goto error;  (NCCL's twin, NCCL_OK, lives in
 * comm_nccl.c, the only file that includes nccl.h). */
#ifndef WSLQ_TRAIN_CUDA_CUERR_H
#define WSLQ_TRAIN_CUDA_CUERR_H

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "common/err.h"

#ifdef __FILE_NAME__
#define CU_FILE __FILE_NAME__
#else
#define CU_FILE __FILE__
#endif

/* 0 if e is cudaSuccess, else fill err and return -1. */
int cu_check(wq_error_t *err, const char *file, int line, const char *call, cudaError_t e);
int cublas_check(wq_error_t *err, const char *file, int line, const char *call, cublasStatus_t s);

#define CU_OK(err, call)   (cu_check((err), CU_FILE, __LINE__, #call, (call)) == 0)
#define BLAS_OK(err, call) (cublas_check((err), CU_FILE, __LINE__, #call, (call)) == 0)

#endif
