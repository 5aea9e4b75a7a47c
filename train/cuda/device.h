/* CUDA device discovery, binding and version text. No CUDA types in this header, so main.c
 * and train.c stay plain C. Built only with WSLQ_HAVE_CUDA. */
#ifndef WSLQ_TRAIN_CUDA_DEVICE_H
#define WSLQ_TRAIN_CUDA_DEVICE_H

#include <stddef.h>

#include "common/err.h"

/* Visible CUDA devices (CUDA_VISIBLE_DEVICES applies). 0 when there are none, with why set to
 * the runtime's reason, e.g. "cudaGetDeviceCount: CUDA driver version is insufficient for CUDA
 * runtime version (cudaErrorInsufficientDriver)". */
int cuda_device_count(char *why, size_t len);

/* Choose this rank's device (engine_pick_device: the only visible one, LOCAL_RANK, or forced
 * >= 0), make it current and create its context, so a broken device fails here. */
int cuda_open_device(int local_rank, int forced, int *dev, wq_error_t *err);

/* "cuda:0 (NVIDIA GeForce RTX 4090, 23.6 GiB, 21.9 GiB free, cc 8.9)" */
void cuda_describe(int dev, char *buf, size_t len);

/* For --version: compile-time CUDART_VERSION, runtime and driver versions, cuBLAS version.
 * Callable without a device or a driver. */
void cuda_version_text(char *buf, size_t len);

#endif
