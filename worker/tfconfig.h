/* TensorFlow's multi-worker contract: TF_CONFIG, read by tf.distribute's
 * TFConfigClusterResolver (MultiWorkerMirroredStrategy). */
#ifndef WSLQ_WORKER_TFCONFIG_H
#define WSLQ_WORKER_TFCONFIG_H

#include <stdint.h>

#include "proto/wire.h"

/* {"cluster":{"worker":["host:port",...]},"task":{"type":"worker","index":RANK}} with the
 * launch's tf_workers in rank order; NULL when the job is not a --tf job or the launch names
 * no worker for 'rank'. Caller frees (free()). */
char *tfconfig_json(const Wslq__JobLaunch *l, uint32_t rank);

#endif
