/* Every limit on what wslq accepts from outside or holds in memory, in one place, each with
 * the reason for its value. Code compares against these names only. Pacing constants (how
 * much one loop turn does, intervals, timeouts) stay beside the code they pace; the trainer,
 * a program of its own, keeps its own in train/comm.h.
 *
 * A message is checked against these before anything is allocated for it: the frame size by
 * ZeroMQ (ZMQ_MAXMSGSIZE) and again by wire_decode() before unpacking, the rest by
 * wire_validate() after. */
#ifndef WSLQ_LIMITS_H
#define WSLQ_LIMITS_H

/* ---- one message on the wire (proto/wire.c) ---- */

/* bytes of one frame: a full queue page (below) or a 256 KiB log chunk fits many times over,
 * and a peer cannot make the scheduler buffer more than this per message */
#define WIRE_MAX_FRAME (8u << 20)
/* what CURVE adds to a frame on the wire: the MESSAGE command's name (8), nonce (8), flags (1)
 * and MAC (16). ZMQ_MAXMSGSIZE limits the encrypted size, so the scheduler allows this much
 * more there, and a frame of WIRE_MAX_FRAME plain bytes still fits exactly */
#define WIRE_CURVE_OVERHEAD 33
/* how long an enrolment or join code may work: a day unless the admin says, 30 days at most */
#define WIRE_CODE_VALID_DEFAULT_S (24u * 3600)
#define WIRE_CODE_VALID_MAX_S     (30u * 24 * 3600)
/* argv items and bytes per item: far above any real command line (Linux's own is 128 KiB per
 * string), small enough that a spec stays a few hundred KiB */
#define WIRE_MAX_ARGV    256
#define WIRE_MAX_ARG_LEN 4096
/* environment items and bytes per K=V item */
#define WIRE_MAX_ENV     256
#define WIRE_MAX_ENV_LEN 8192
/* argv + env + cwd of one spec, summed: every job row stays small in SQLite and in replies */
#define WIRE_MAX_SPEC_BYTES (128u << 10)
/* job, node and user names: printable in one table cell; node names are path parts */
#define WIRE_MAX_NAME 128
/* a batch script sent with its job (JobSpec.script); counts towards WIRE_MAX_SPEC_BYTES */
#define WIRE_MAX_SCRIPT (64u << 10)
/* an array's tasks each store their spec: their batch scripts together at most this */
#define WIRE_MAX_ARRAY_SCRIPTS (64u << 20)
/* a working directory: PATH_MAX on Linux */
#define WIRE_MAX_PATH 4096
/* an IPv4 or IPv6 address as text (INET6_ADDRSTRLEN is 46) */
#define WIRE_MAX_IP 63
/* a GPU's UUID or product name as NVML reports them (NVML's buffers are 96 bytes) */
#define WIRE_MAX_GPU_TEXT 95
/* A container image reference (--container). */
#define WIRE_MAX_IMAGE 255
/* one node attribute's value: a doctor verdict with its fix on one line */
#define WIRE_MAX_ATTR_VALUE 1024
/* an ErrorReply's text: one line for a person (wq_error_t holds 256) with room to spare */
#define WIRE_MAX_ERROR_TEXT 1024
/* why a job ended or was killed, as the worker or scheduler words it */
#define WIRE_MAX_REASON 512
/* why an admin drained a node ("windows update"): one line, shown in every node listing */
#define WIRE_MAX_DRAIN_REASON 200
/* tags an admin gives a node (wslq admin node tag) and a job's --constraint: a few words */
#define WIRE_MAX_TAGS 16
#define WIRE_MAX_TAG  32
/* nodes in one job, and nodes the placement policy considers: a lab of 3 to 50 PCs, with room */
#define WIRE_MAX_NODES 256
/* GPUs per node: one bit each in the policy's uint64_t masks */
#define WIRE_MAX_GPUS 64
/* a job's --gpu-type: model names to match ("4090,rtx a6000") */
#define WIRE_MAX_GPU_TYPE 128
/* ranks per node: a rank per GPU, or per CPU core for CPU jobs */
#define WIRE_MAX_RANKS 256
/* dependencies of one job */
#define WIRE_MAX_DEPS 64
/* bytes of job output in one LogChunk, and in one `wslq logs` reply */
#define WIRE_MAX_LOG_CHUNK (256u << 10)
/* a key/value store key and value (the rendezvous client common/rdvc.c uses the same): an
 * NCCL unique id is 128 bytes, a ring address list a few KiB */
#define WIRE_MAX_KV_KEY   256
#define WIRE_MAX_KV_VALUE (64u << 10)
/* metric lines per MetricLines message, and bytes per line */
#define WIRE_MAX_METRIC_LINES 256
#define WIRE_MAX_METRIC_LINE  4096
/* any other repeated field (jobs in a QueueReply, running jobs in a Register, ...) */
#define WIRE_MAX_LIST 100000
/* a job's time limit: a year; longer is a typo */
#define WIRE_MAX_TIME_LIMIT_S (366LL * 86400)
/* CPUs per node a job may ask for */
#define WIRE_MAX_CPUS 65536
/* retries of one job: each is a full rerun */
#define WIRE_MAX_RETRIES 100
/* node attributes per node, and bytes of a key */
#define WIRE_MAX_ATTRS    256
#define WIRE_MAX_ATTR_KEY 64
/* node checks (wslq doctor) per node, and bytes of a check id ("gpu.nvml"): the doctor runs
 * about 25 */
#define WIRE_MAX_CHECKS   64
#define WIRE_MAX_CHECK_ID 48
/* one line of a check's summary or fix */
#define WIRE_MAX_CHECK_TEXT 512
/* the secret of an enrolment or join code, as hex (128 bits make 32 characters) */
#define WIRE_MAX_SECRET_HEX 64
/* a key or a dashboard token as text (a CURVE key is 40 Z85 characters) */
#define WIRE_MAX_KEY_TEXT 128
/* a program version string */
#define WIRE_MAX_VERSION 64
/* jobs a worker lists as running, or is told to kill, in one message: far above the GPUs and
 * cores of one PC */
#define WIRE_MAX_RUNNING 4096

/* A CPU list ("0-3,8", Alloc.cpus, JobEnded.cpus): bytes. */
#define WIRE_MAX_CPULIST 1024
/* states in one `wslq queue --state` filter; job ids in one cancel */
#define WIRE_MAX_STATE_FILTER 16
#define WIRE_MAX_CANCEL       10000
/* job arrays: tasks in one array (one submit, one transaction), the largest index, the text
 * of an array spec or a job selector ("40_[3-9,12]"), selectors in one request */
#define WIRE_MAX_ARRAY_TASKS 100000
#define WIRE_MAX_ARRAY_INDEX 9999999
#define WIRE_MAX_SELECTOR    1024
#define WIRE_MAX_SELECTORS   1000
/* how long a request may be parked: `logs -f` and `watch` a minute (the client asks again),
 * `kv wait` an hour (a rendezvous waits for the slowest rank's start) */
#define WIRE_MAX_PARK_MS    60000
#define WIRE_MAX_KV_WAIT_MS 3600000
/* a measured round trip or a self-test's connect timeout */
#define WIRE_MAX_RTT_MS      3600000
#define WIRE_MAX_SELFTEST_MS 60000

/* ---- what the scheduler holds ---- */

/* connections to the scheduler's port at once, and from one address: a lab has tens of
 * workers and a few CLIs at a time (all of a PC's local CLIs share 127.0.0.1); a flood of idle
 * connections must not take the descriptors the queue and the logs need */
#define SCHED_MAX_CONNS          4096
#define SCHED_MAX_CONNS_PER_ADDR 256
/* descriptors kept for the database, log files and the dashboard when the process limit is
 * lower than SCHED_MAX_CONNS + this (connections are then capped lower) */
#define SCHED_FD_RESERVE 512
/* a connection that has not finished ZeroMQ's handshake by then is dropped */
#define SCHED_HANDSHAKE_MS 5000
/* parked requests (logs -f, kv wait, watch) at once, and from one peer: each holds a little
 * memory until it is answered; a client parks one or two */
#define SCHED_MAX_WAITERS          10000
#define SCHED_MAX_WAITERS_PER_PEER 64

/* messages queued per peer on the ROUTER before ZeroMQ drops sends: a worker streaming logs
 * while the loop is busy stays far below it */
#define SCHED_ROUTER_HWM 100000
/* per job, the key/value store's default keys and bytes (keys + values): a rendezvous needs a
 * handful of keys; `[scheduler] kv_max_keys`/`kv_max_bytes` change them */
#define SCHED_KV_KEYS_DEFAULT  1024
#define SCHED_KV_BYTES_DEFAULT (4u << 20)
/* jobs per `wslq queue` reply when the request does not say, and at most: a reply stays
 * well under WIRE_MAX_FRAME (it is also cut at half of it) */
#define SCHED_LIST_DEFAULT 1000
#define SCHED_LIST_MAX     10000
/* bytes per `wslq logs` reply when the request does not say (WIRE_MAX_LOG_CHUNK at most) */
#define SCHED_LOG_READ_DEFAULT (64u << 10)

/* ---- what a worker holds ---- */

/* bytes of job output per LogChunk the worker sends (WIRE_MAX_LOG_CHUNK at most) */
#define WORKER_LOG_CHUNK (64u << 10)
/* rendezvous socket connections over all of a worker's jobs, and bytes of one request line
 * (a PUT of a WIRE_MAX_KV_VALUE value is base64 in the line's body, not its head) */
#define WORKER_RDV_MAX_CONN 1024
#define WORKER_RDV_MAX_HEAD 512
/* inbound and outbound self-test connections at once, and bytes of the one line each sends:
 * a test is one short exchange; more at once is a flood */
#define WORKER_SELFTEST_MAX  8
#define WORKER_SELFTEST_LINE 160

/* ---- the dashboard (scheduler/http/) ---- */

#define HTTP_MAX_TARGET   2048         /* bytes of path + query, as sent: any real link fits */
#define HTTP_MAX_PARAMS   16           /* query parameters: the API takes at most 6 */
#define HTTP_MAX_VALUE    256          /* bytes of one decoded query value */
#define HTTP_MAX_TOKEN    256          /* bytes of an access_token */
#define HTTP_JOBS_DEFAULT 50           /* /api/v1/jobs rows when no limit is given */
#define HTTP_JOBS_MAX     1000         /* largest accepted limit: about 1 MB of JSON */
#define HTTP_LOG_DEFAULT  (64u << 10)  /* /log bytes when no max is given */
#define HTTP_LOG_MAX      (1u << 20)   /* largest accepted max */
#define HTTP_MAX_JOB_ID   (1ull << 53) /* ids stay exact as JSON numbers */
/* a request head (or the next one on a kept-alive connection) must be complete this long
 * after the connection opened or the last answer: a client that trickles its head, or sits
 * idle, cannot hold one of the few connection slots for longer */
#define HTTP_HEAD_TIMEOUT_MS 10000

/* bytes of one working-directory snapshot or job output chunk (SnapshotPut, SnapshotData,
 * OutputPut, FetchReply): well under WIRE_MAX_FRAME, few round trips for 100 MB */
#define WIRE_MAX_SNAP_CHUNK (4u << 20)

#endif
