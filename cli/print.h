/* Human-readable output of the listing commands, apart from the sending so tests can check
 * it. 'now_ms' is the wall clock used for elapsed and waiting times. */
#ifndef WSLQ_CLI_PRINT_H
#define WSLQ_CLI_PRINT_H

#include <stdint.h>
#include <stdio.h>

#include "proto/wire.h"

/* Table: ID USER NAME STATE GPUS NODES TIME NODELIST(REASON). */
/* A job's name in listings: "42", an array task "40_7", an array's pending tasks
 * "40_[3-499%8]". Returns buf. */
const char *print_job_label(const Wslq__JobInfo *j, char *buf, size_t size);
/* A wall time as "14:05" today, else "12-03 14:05" (local time). */
const char *print_short_time(int64_t wall_ms, int64_t now_ms, char *buf, size_t size);
void print_queue(const Wslq__QueueReply *r, int64_t now_ms, int no_header, FILE *out);

/* Spec, resources, state, allocation per node and every event. */
void print_show(const Wslq__ShowReply *r, int64_t now_ms, FILE *out);

/* Per node a table row, then one line per GPU. */
void print_nodes(const Wslq__NodesReply *r, int64_t now_ms, FILE *out);

/* The job's command as a shell would read it: words quoted when needed. Caller owns it. */
char *print_command(const Wslq__JobSpec *spec);

/* The job's TIME column: elapsed when running, waiting when pending, run time when ended. */
int64_t print_job_seconds(const Wslq__JobInfo *j, int64_t now_ms);

#endif
