/* Wire messages as JSON, for `--json` listings (and, later, the scheduler's HTTP API).
 * No printing here. Keys are stable snake_case; states are names ("RUNNING"); each time is
 * given twice, as "<x>_ms" (ms since the epoch, null when unset) and "<x>_time" (ISO-8601
 * UTC with milliseconds, null when unset); "not reported" values (-1) are null.
 * Every function returns a new object the caller owns (cJSON_Delete). */
#ifndef WSLQ_CLI_JSON_H
#define WSLQ_CLI_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/wire.h"

/* {"argv":[..],"wrap","cwd","env":["K=V"],"name","user","uid","nodes","gpus_per_node",
 *  "gpus" (total),"ranks_per_node","per_node","cpus_per_node","mem_mb_per_node",
 *  "time_limit_s" (null = none),"priority","retries","requeue_on_fail","notify" ("end,fail",
 *  "none"),"depends_on":[ids]} */
cJSON *json_spec(const Wslq__JobSpec *spec);

/* {"node","node_rank","ip","gpus":[idx],"gpu_uuids":[..],"first_rank","nranks"} */
cJSON *json_alloc(const Wslq__Alloc *a);

/* {"id","state","attempt","submit_ms","submit_time","start_ms","start_time","end_ms",
 *  "end_time","exit_code","signal","reason","failed_rank","failed_node","master_addr",
 *  "master_port", an array task's "array_job_id","array_index","array_size","array_limit",
 *  a listing line of an array's pending tasks' "array_tasks","array_pending", "held", a
 *  pending job's "wait_reason", "spec":{..},"allocs":[..]} */
cJSON *json_job(const Wslq__JobInfo *j);

/* {"ts_ms","time","state","attempt","node","reason","detail"} */
cJSON *json_event(const Wslq__JobEvent *e);

/* {"index","uuid","name","mem_total_mb","mem_used_mb","temp_c","util_pct","power_w",
 *  "job_id" (null = free),"declared"} */
cJSON *json_gpu(const Wslq__GpuInfo *g);

/* {"name","state","hostname","ip","version","cpus","cpus_alloc","mem_mb","mem_alloc_mb",
 *  "gpus_total","gpus_used","last_seen_ms","last_seen_time","inbound_ok","attrs":{k:v},
 *  "gpus":[..]} */
cJSON *json_node(const Wslq__NodeInfo *n);

/* Listings: {"jobs":[..],"more":bool}, {"job":{..},"events":[..]}, {"nodes":[..]}. */
cJSON *json_queue_reply(const Wslq__QueueReply *r);
cJSON *json_show_reply(const Wslq__ShowReply *r);
cJSON *json_nodes_reply(const Wslq__NodesReply *r);

/* ISO-8601 UTC with milliseconds ("2024-05-01T12:00:00.123Z") into buf (>= 32 bytes). */
const char *json_format_time(int64_t ms, char *buf, size_t len);

#endif
