/* The NCCL transport (comm.h's table): gradients reduced in GPU memory by NCCL, everything
 * else over the TCP ring it was bootstrapped with. Built only with WSLQ_HAVE_NCCL.
 *
 *   1. The TCP ring comes up through MASTER_ADDR:MASTER_PORT (comm_tcp_new), as on CPUs.
 *   2. Rank 0 makes the ncclUniqueId (128 opaque bytes naming its NCCL bootstrap socket) and an
 *      id-exchange function hands it to the others: by default a broadcast over that ring.
 *      The job's rendezvous store (WSLQ_RENDEZVOUS) can replace it through the same hook.
 *   3. ncclCommInitRankConfig with config.blocking = 0: no NCCL call ever blocks; init and
 *      every collective are waited for in comm_wait's deadline loop, which polls
 *      cudaEventQuery / ncclCommGetAsyncError and the ring's sockets (a killed rank's
 *      connections close at once, while NCCL itself would wait forever), and on an error or
 *      at the deadline calls ncclCommAbort. The trainer then exits 3, as on the TCP ring.
 *   4. dev_allreduce queues ncclAllReduce(ncclAvg) on the transport's own stream after the
 *      caller's event; dev_wait records one event behind everything queued and waits for it.
 *   Host-memory collectives (parameter broadcast, evaluation sums, barrier) use the ring. */
#ifndef WSLQ_TRAIN_CUDA_COMM_NCCL_H
#define WSLQ_TRAIN_CUDA_COMM_NCCL_H

#include <stddef.h>

#include "train/comm.h"

/* Hands rank 0's id (len bytes at id) to every rank over the bootstrap comm 'boot'; on rank 0
 * id is input, elsewhere output. */
typedef int (*comm_nccl_id_fn)(comm_t *boot, void *id, size_t len, wq_error_t *err);

/* The default id exchange: comm_broadcast from rank 0 over the TCP ring. */
int comm_nccl_id_over_comm(comm_t *boot, void *id, size_t len, wq_error_t *err);

/* For world > 1, with this rank's device already current (cuda_open_device). Caller owns the
 * result (comm_destroy). */
comm_t *comm_nccl_new(const comm_opts_t *o, comm_nccl_id_fn xchg, wq_error_t *err);

/* For --version: "compiled with NCCL 2.28.9, library 2.28.9". Needs no device. */
void nccl_version_text(char *buf, size_t len);

#endif
