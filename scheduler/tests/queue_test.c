/* queue: insert/update/events/list on :memory: and on a file, reopen, schema version. */
/* cmocka.h needs these first. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>
#include <sqlite3.h>

#include "scheduler/acct.h"
#include "scheduler/queue.h"
#include "scheduler/tests/vfs_count.h"

static char *argv_one[] = {"true"};

/* PRAGMA user_version lives at offset 60 of the database header, 4 bytes big-endian. */
#define SQLITE_USER_VERSION_OFFSET 60

static void
set_user_version(const char *path, int version)
{
    unsigned char b[4] = {(unsigned char) (version >> 24), (unsigned char) (version >> 16),
                          (unsigned char) (version >> 8), (unsigned char) version};
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, 4, SQLITE_USER_VERSION_OFFSET), 4);
    close(fd);
}

static int
get_user_version(const char *path)
{
    unsigned char b[4];
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, b, 4, SQLITE_USER_VERSION_OFFSET), 4);
    close(fd);
    return (int) ((uint32_t) b[0] << 24 | (uint32_t) b[1] << 16 | (uint32_t) b[2] << 8 | b[3]);
}

/* Insert a job and its "submitted" event in a transaction of its own, committed durably
 * (queue_commit) or lazily (queue_commit_lazy); its id in *id when id is not NULL. */
static void
add_job_commit(queue_t *q, const char *user, Wslq__JobState st, int lazy, uint64_t *id)
{
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv_one;
    spec.n_argv = 1;
    spec.nodes = 1;
    spec.user = (char *) user;
    spec.name = "t";
    Wslq__JobInfo info = WSLQ__JOB_INFO__INIT;
    info.spec = &spec;
    info.state = st;
    info.submit_ms = 1000;
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_insert(q, &info, NULL), 0);
    Wslq__JobEvent ev = WSLQ__JOB_EVENT__INIT;
    ev.state = st;
    ev.reason = "submitted";
    assert_int_equal(queue_add_event(q, info.id, &ev, NULL), 0);
    assert_int_equal(lazy ? queue_commit_lazy(q, NULL) : queue_commit(q, NULL), 0);
    if (id != NULL)
        *id = info.id;
}

static void
add_job(queue_t *q, const char *user, Wslq__JobState st, uint64_t *id)
{
    add_job_commit(q, user, st, 0, id);
}

static void
count_cb(Wslq__JobInfo *info, void *arg)
{
    (*(int *) arg)++;
    wslq__job_info__free_unpacked(info, NULL);
}

static void
exercise(queue_t *q)
{
    uint64_t a, b, c;
    add_job(q, "ann", WSLQ__JOB_STATE__PENDING, &a);
    add_job(q, "bob", WSLQ__JOB_STATE__PENDING, &b);
    add_job(q, "ann", WSLQ__JOB_STATE__PENDING, &c);
    assert_true(a < b && b < c);

    Wslq__JobInfo *info = queue_get(q, b, NULL);
    assert_non_null(info);
    assert_int_equal(info->id, b);
    assert_string_equal(info->spec->user, "bob");
    info->state = WSLQ__JOB_STATE__COMPLETED;
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_update(q, info, NULL), 0);
    Wslq__JobEvent ev = WSLQ__JOB_EVENT__INIT;
    ev.state = WSLQ__JOB_STATE__COMPLETED;
    ev.reason = "done";
    ev.node = "pc1";
    assert_int_equal(queue_add_event(q, b, &ev, NULL), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    wslq__job_info__free_unpacked(info, NULL);

    Wslq__JobEvent **events;
    size_t n;
    assert_int_equal(queue_events(q, b, &events, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(events[0]->reason, "submitted");
    assert_string_equal(events[1]->node, "pc1");
    queue_free_events(events, n);

    int count = 0;
    queue_filter_t f = {.active_only = 1};
    assert_int_equal(queue_list(q, &f, count_cb, &count, NULL), 2);
    count = 0;
    queue_filter_t f2 = {.user = "ann"};
    assert_int_equal(queue_list(q, &f2, count_cb, &count, NULL), 2);
    queue_filter_t f3 = {.state_mask = 1u << WSLQ__JOB_STATE__COMPLETED};
    count = 0;
    assert_int_equal(queue_list(q, &f3, count_cb, &count, NULL), 1);

    int64_t counts[WIRE_JOB_STATES];
    assert_int_equal(queue_count_states(q, counts, NULL), 0);
    assert_int_equal(counts[WSLQ__JOB_STATE__PENDING], 2);
    assert_int_equal(counts[WSLQ__JOB_STATE__COMPLETED], 1);

    wq_error_t err = {0};
    assert_null(queue_get(q, 999, &err));
    assert_int_equal(err.code, WQ_ENOENT);
    assert_string_equal(err.text, "job 999 not found");
}

typedef struct {
    uint64_t ids[16];
    int n;
} active_ids_t;

static void
active_ids_cb(Wslq__JobInfo *info, void *arg)
{
    active_ids_t *ids = arg;
    if (ids->n < 16)
        ids->ids[ids->n++] = info->id;
    wslq__job_info__free_unpacked(info, NULL);
}

/* The active jobs come in id order whatever their states (the listing merges one range per
 * state), with the user, id bound, limit and newest-first filters applied to every state. */
static void
test_active_in_id_order(void **state)
{
    (void) state;
    queue_t *q = queue_new(":memory:", 0, NULL);
    assert_non_null(q);
    const Wslq__JobState states[] = {
        WSLQ__JOB_STATE__RUNNING,  WSLQ__JOB_STATE__PENDING,  WSLQ__JOB_STATE__COMPLETED,
        WSLQ__JOB_STATE__STARTING, WSLQ__JOB_STATE__PENDING,  WSLQ__JOB_STATE__RUNNING,
        WSLQ__JOB_STATE__FAILED,   WSLQ__JOB_STATE__STARTING, WSLQ__JOB_STATE__PENDING,
    };
    uint64_t id[9];
    for (int i = 0; i < 9; i++)
        add_job(q, i % 2 ? "bob" : "ann", states[i], &id[i]);

    active_ids_t got = {0};
    queue_filter_t f = {.active_only = 1};
    assert_int_equal(queue_list(q, &f, active_ids_cb, &got, NULL), 7);
    const int want[] = {0, 1, 3, 4, 5, 7, 8};
    for (int i = 0; i < 7; i++)
        assert_int_equal(got.ids[i], id[want[i]]);

    memset(&got, 0, sizeof got);
    queue_filter_t newest = {.active_only = 1, .newest_first = 1, .limit = 3};
    assert_int_equal(queue_list(q, &newest, active_ids_cb, &got, NULL), 3);
    assert_int_equal(got.ids[0], id[8]);
    assert_int_equal(got.ids[1], id[7]);
    assert_int_equal(got.ids[2], id[5]);

    memset(&got, 0, sizeof got);
    queue_filter_t ann = {.active_only = 1, .user = "ann", .before_id = id[8]};
    assert_int_equal(queue_list(q, &ann, active_ids_cb, &got, NULL), 2); /* 0 running, 4 pending */
    assert_int_equal(got.ids[0], id[0]);
    assert_int_equal(got.ids[1], id[4]);
    queue_destroy(&q);
}

static void
test_memory(void **state)
{
    (void) state;
    queue_t *q = queue_new(":memory:", 1, NULL);
    assert_non_null(q);
    exercise(q);
    queue_destroy(&q);
    assert_null(q);
}

static void
test_file_and_reopen(void **state)
{
    (void) state;
    char dir[] = "/tmp/wslq-queue-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/q.db", dir);
    queue_t *q = queue_new(path, 0, NULL);
    assert_non_null(q);
    exercise(q);
    /* An uncommitted insert disappears; committed ones survive a reopen. */
    uint64_t id;
    add_job(q, "cat", WSLQ__JOB_STATE__PENDING, &id);
    queue_begin(q, NULL);
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv_one;
    spec.n_argv = 1;
    spec.nodes = 1;
    Wslq__JobInfo info = WSLQ__JOB_INFO__INIT;
    info.spec = &spec;
    info.state = WSLQ__JOB_STATE__PENDING;
    assert_int_equal(queue_insert(q, &info, NULL), 0);
    queue_rollback(q);
    queue_destroy(&q);
    q = queue_new(path, 0, NULL);
    assert_non_null(q);
    assert_int_equal(queue_max_id(q), id);
    Wslq__JobInfo *got = queue_get(q, id, NULL);
    assert_non_null(got);
    assert_string_equal(got->spec->user, "cat");
    wslq__job_info__free_unpacked(got, NULL);
    queue_destroy(&q);

    /* The read-only connection the dashboard uses opens a current database. */
    queue_t *r = queue_open_reader(path, NULL);
    assert_non_null(r);
    queue_destroy(&r);

    /* A newer schema than this build is refused with a reason, by the scheduler and by the
     * dashboard's reader, and the file is left as it was. The version is written straight into
     * the database header (user_version: 4 bytes, big-endian, at offset 60 of the SQLite file
     * format) so this test needs no SQLite of its own. Breaks this catches: the
     * "version > QUEUE_SCHEMA_VERSION" check in migrate() removed (queue_new then opens the
     * file as if current), and the version check in queue_open_reader() removed. */
    set_user_version(path, QUEUE_SCHEMA_VERSION + 1);
    wq_error_t err = {0};
    assert_null(queue_new(path, 0, &err));
    assert_int_equal(err.code, WQ_EIO);
    char want[160];
    snprintf(want, sizeof want, "database schema version %d is newer than this scheduler (%d)",
             QUEUE_SCHEMA_VERSION + 1, QUEUE_SCHEMA_VERSION);
    assert_non_null(strstr(err.text, want));
    assert_non_null(strstr(err.text, "upgrade wslq-scheduler"));
    assert_int_equal(get_user_version(path), QUEUE_SCHEMA_VERSION + 1);
    wq_error_t rerr = {0};
    assert_null(queue_open_reader(path, &rerr));
    assert_int_equal(rerr.code, WQ_EIO);
    snprintf(want, sizeof want, "schema version %d, expected %d", QUEUE_SCHEMA_VERSION + 1,
             QUEUE_SCHEMA_VERSION);
    assert_non_null(strstr(rerr.text, want));
    /* Back to the current version: both open it again (the refusal was the version alone). */
    set_user_version(path, QUEUE_SCHEMA_VERSION);
    q = queue_new(path, 0, NULL);
    assert_non_null(q);
    assert_int_equal(queue_max_id(q), id);
    queue_destroy(&q);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* What schema 4 added (the accounting columns and their indexes), taken away again to make
 * an older file from a current one. */
#define UNDO_V4                                                                                \
    "DROP INDEX jobs_ended; DROP INDEX jobs_user_ended; ALTER TABLE jobs DROP COLUMN end_ms; " \
    "ALTER TABLE jobs DROP COLUMN start_ms; ALTER TABLE jobs DROP COLUMN gpus; "               \
    "ALTER TABLE jobs DROP COLUMN cpus; ALTER TABLE jobs DROP COLUMN nodes; "

/* A state directory from before principals (schema 1) upgrades in place: its jobs stay, the
 * identity tables appear, and the file says the current version. The schema-1 file is made
 * from a current one by dropping what versions 2 and 3 added. */
static void
test_migration_v1_to_v2(void **state)
{
    (void) state;
    char dir[] = "/tmp/wslq-queue-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/q.db", dir);
    queue_t *q = queue_new(path, 0, NULL);
    assert_non_null(q);
    uint64_t id;
    add_job(q, "old", WSLQ__JOB_STATE__PENDING, &id);
    queue_destroy(&q);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE principals; DROP TABLE codes; DROP TABLE tokens; "
                                  "DROP TABLE node_drains; DROP TABLE node_tags; " UNDO_V4
                                  "PRAGMA user_version=1;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(get_user_version(path), 1);

    wq_error_t err = {0};
    q = queue_new(path, 0, &err);
    assert_non_null(q);
    Wslq__JobInfo *got = queue_get(q, id, NULL);
    assert_non_null(got);
    assert_string_equal(got->spec->user, "old");
    wslq__job_info__free_unpacked(got, NULL);
    /* the new tables work */
    queue_principal_t p = {.key = "k", .kind = "user", .name = "alice", .admin = 1};
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_principal_put(q, &p, &err), 0);
    assert_int_equal(queue_token_put(q, "hash1", "alice", 5, &err), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    char user[64];
    int admin = 0;
    assert_int_equal(queue_token_user(q, "hash1", user, sizeof user, &admin), 0);
    assert_string_equal(user, "alice");
    assert_int_equal(admin, 1);
    assert_int_equal(queue_token_user(q, "nope", user, sizeof user, &admin), -1);
    queue_destroy(&q); /* the last close folds the WAL back into the file */
    assert_int_equal(get_user_version(path), QUEUE_SCHEMA_VERSION);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void
got_tags(const char *name, const char *tags, void *arg)
{
    char *out = arg;
    snprintf(out, 128, "%s=%s", name, tags);
}

static void
count_drain(const queue_drain_t *d, void *arg)
{
    queue_drain_t *out = arg;
    *out = *d;
}

/* A schema-2 state directory (before drained nodes were kept) upgrades in place: its jobs and
 * keys stay, node_drains appears, and drains survive a reopen; resuming removes them. */
static void
test_migration_v2_to_v3(void **state)
{
    (void) state;
    char dir[] = "/tmp/wslq-queue-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/q.db", dir);
    queue_t *q = queue_new(path, 0, NULL);
    assert_non_null(q);
    uint64_t id;
    add_job(q, "old", WSLQ__JOB_STATE__PENDING, &id);
    queue_principal_t p = {.key = "k", .kind = "user", .name = "alice", .admin = 1};
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_principal_put(q, &p, NULL), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    queue_destroy(&q);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE node_drains; DROP TABLE node_tags; " UNDO_V4
                                  "PRAGMA user_version=2;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(get_user_version(path), 2);

    wq_error_t err = {0};
    q = queue_new(path, 0, &err);
    assert_non_null(q);
    Wslq__JobInfo *got = queue_get(q, id, NULL);
    assert_non_null(got);
    assert_string_equal(got->spec->user, "old");
    wslq__job_info__free_unpacked(got, NULL);
    queue_drain_t d = {.name = "pc7", .reason = "windows update", .since_ms = 1234, .by = "alice"};
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_drain_put(q, &d, &err), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    queue_destroy(&q);
    assert_int_equal(get_user_version(path), QUEUE_SCHEMA_VERSION);

    /* kept across a reopen, with every field */
    q = queue_new(path, 0, &err);
    assert_non_null(q);
    queue_drain_t back = {0};
    assert_int_equal(queue_drains_list(q, count_drain, &back, &err), 1);
    assert_string_equal(back.name, "pc7");
    assert_string_equal(back.reason, "windows update");
    assert_int_equal(back.since_ms, 1234);
    assert_string_equal(back.by, "alice");
    /* draining again replaces the row; resume removes it, once */
    d.since_ms = 99;
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_drain_put(q, &d, &err), 0);
    assert_int_equal(queue_drains_list(q, count_drain, &back, &err), 1);
    assert_int_equal(back.since_ms, 99);
    assert_int_equal(queue_drain_remove(q, "pc7", &err), 1);
    assert_int_equal(queue_drain_remove(q, "pc7", &err), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    assert_int_equal(queue_drains_list(q, count_drain, &back, &err), 0);
    /* tags: set, replaced, kept, and "" removes them */
    char tags[128] = "";
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_tags_put(q, "pc7", "ampere", &err), 0);
    assert_int_equal(queue_tags_put(q, "pc7", "ampere,48g", &err), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    queue_destroy(&q);
    q = queue_new(path, 0, &err);
    assert_non_null(q);
    assert_int_equal(queue_tags_list(q, got_tags, tags, &err), 1);
    assert_string_equal(tags, "pc7=ampere,48g");
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_tags_put(q, "pc7", "", &err), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    assert_int_equal(queue_tags_list(q, got_tags, tags, &err), 0);
    queue_destroy(&q);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void
test_garbage_file_refused(void **state)
{
    (void) state;
    char path[] = "/tmp/wslq-queue-garbage-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    char junk[4096];
    memset(junk, 'x', sizeof junk);
    assert_int_equal(write(fd, junk, sizeof junk), (ssize_t) sizeof junk);
    close(fd);
    wq_error_t err = {0};
    assert_null(queue_new(path, 1, &err));
    assert_int_equal(err.code, WQ_EIO);
    assert_non_null(strstr(err.text, path));
    unlink(path);
}

/* ---------- accounting (schema 4) ---------- */

/* An ended job: 'gpus' GPUs on each of the nodes in 'nodes' (comma-separated), run from
 * start_s to end_s (seconds), submitted at 1000 ms. */
static uint64_t
add_ended(queue_t *q,
          const char *user,
          const char *name,
          Wslq__JobState st,
          const char *nodes,
          uint32_t gpus,
          uint32_t cpus,
          int64_t start_s,
          int64_t end_s)
{
    Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
    spec.argv = argv_one;
    spec.n_argv = 1;
    spec.user = (char *) user;
    spec.name = (char *) name;
    spec.gpus_per_node = gpus;
    spec.cpus_per_node = cpus;
    Wslq__JobInfo info = WSLQ__JOB_INFO__INIT;
    info.spec = &spec;
    info.state = WSLQ__JOB_STATE__PENDING;
    info.submit_ms = 1000;
    assert_int_equal(queue_begin(q, NULL), 0);
    assert_int_equal(queue_insert(q, &info, NULL), 0);
    Wslq__Alloc allocs[4], *ap[4];
    char names[4][32];
    const char *p = nodes;
    while (*p && spec.nodes < 4) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t) (end - p) : strlen(p);
        snprintf(names[spec.nodes], sizeof names[0], "%.*s", (int) len, p);
        wslq__alloc__init(&allocs[spec.nodes]);
        allocs[spec.nodes].node = names[spec.nodes];
        ap[spec.nodes] = &allocs[spec.nodes];
        spec.nodes++;
        p += len + (end != NULL);
    }
    if (spec.nodes == 0)
        spec.nodes = 1;
    info.allocs = nodes[0] ? ap : NULL;
    info.n_allocs = nodes[0] ? spec.nodes : 0;
    info.state = st;
    info.start_ms = start_s * 1000;
    info.end_ms = end_s * 1000;
    assert_int_equal(queue_update(q, &info, NULL), 0);
    assert_int_equal(queue_commit(q, NULL), 0);
    return info.id;
}

typedef struct {
    uint64_t ids[64];
    size_t n;
} ids_t;

static void
collect_ids(Wslq__JobInfo *info, void *arg)
{
    ids_t *c = arg;
    if (c->n < 64)
        c->ids[c->n++] = info->id;
    wslq__job_info__free_unpacked(info, NULL);
}

static long
history(queue_t *q, const queue_acct_filter_t *f, ids_t *out)
{
    memset(out, 0, sizeof *out);
    wq_error_t err = {0};
    long n = queue_history(q, f, collect_ids, out, &err);
    assert_true(n >= 0);
    assert_int_equal((size_t) n, out->n);
    return n;
}

/* Ended jobs only, newest end first, and every filter narrows by what it says. */
static void
test_history_filters(void **state)
{
    (void) state;
    queue_t *q = queue_new(":memory:", 0, NULL);
    assert_non_null(q);
    uint64_t pend;
    add_job(q, "alice", WSLQ__JOB_STATE__PENDING, &pend);
    uint64_t a1 = add_ended(q, "alice", "train", WSLQ__JOB_STATE__COMPLETED, "pc1", 2, 4, 100, 200);
    uint64_t a2 = add_ended(q, "alice", "eval", WSLQ__JOB_STATE__FAILED, "pc2", 1, 1, 300, 400);
    uint64_t b1 =
        add_ended(q, "bob", "train", WSLQ__JOB_STATE__COMPLETED, "pc1,pc2", 1, 2, 50, 500);
    uint64_t b2 = add_ended(q, "bob", "x", WSLQ__JOB_STATE__CANCELLED, "", 1, 1, 0, 150);
    /* a node whose name is another's prefix is not a match for it */
    uint64_t c1 = add_ended(q, "carol", "t", WSLQ__JOB_STATE__TIMEOUT, "pc10", 1, 1, 10, 20);
    ids_t got;
    queue_acct_filter_t f = {0};
    assert_int_equal(history(q, &f, &got), 5);
    uint64_t order[] = {b1, a2, a1, b2, c1}; /* by end: 500, 400, 200, 150, 20 */
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(got.ids[i], order[i]);
    (void) pend;

    f = (queue_acct_filter_t){.user = "alice"};
    assert_int_equal(history(q, &f, &got), 2);
    assert_int_equal(got.ids[0], a2);
    assert_int_equal(got.ids[1], a1);

    f = (queue_acct_filter_t){.node = "pc1"};
    assert_int_equal(history(q, &f, &got), 2);
    assert_int_equal(got.ids[0], b1);
    assert_int_equal(got.ids[1], a1);
    f = (queue_acct_filter_t){.node = "pc10"};
    assert_int_equal(history(q, &f, &got), 1);
    assert_int_equal(got.ids[0], c1);
    f = (queue_acct_filter_t){.node = "pc"};
    assert_int_equal(history(q, &f, &got), 0);

    f = (queue_acct_filter_t){.name = "train"};
    assert_int_equal(history(q, &f, &got), 2);
    f = (queue_acct_filter_t){.state_mask = 1u << WSLQ__JOB_STATE__COMPLETED};
    assert_int_equal(history(q, &f, &got), 2);
    f = (queue_acct_filter_t){.state_mask = (1u << WSLQ__JOB_STATE__FAILED) |
                                            (1u << WSLQ__JOB_STATE__CANCELLED)};
    assert_int_equal(history(q, &f, &got), 2);
    assert_int_equal(got.ids[0], a2);
    assert_int_equal(got.ids[1], b2);

    /* since is inclusive, until exclusive */
    f = (queue_acct_filter_t){.since_ms = 200 * 1000, .until_ms = 500 * 1000};
    assert_int_equal(history(q, &f, &got), 2);
    assert_int_equal(got.ids[0], a2);
    assert_int_equal(got.ids[1], a1);
    f = (queue_acct_filter_t){.user = "bob", .since_ms = 160 * 1000};
    assert_int_equal(history(q, &f, &got), 1);
    assert_int_equal(got.ids[0], b1);

    f = (queue_acct_filter_t){.limit = 2};
    assert_int_equal(history(q, &f, &got), 2);
    assert_int_equal(got.ids[0], b1);
    assert_int_equal(got.ids[1], a2);
    queue_destroy(&q);
}

typedef struct {
    int64_t gpu_s[3], cpu_s[3]; /* alice, bob, carol */
    int64_t pc1_gpu_s;
    long n;
} usage_sum_t;

static void
sum_usage(const queue_acct_row_t *r, void *arg)
{
    usage_sum_t *u = arg;
    int k = strcmp(r->user, "alice") == 0 ? 0 : strcmp(r->user, "bob") == 0 ? 1 : 2;
    int64_t run = r->start_ms > 0 ? (r->end_ms - r->start_ms) / 1000 : 0;
    u->gpu_s[k] += run * r->gpus;
    u->cpu_s[k] += run * r->cpus;
    if (strstr(r->nodes, ",pc1,") != NULL)
        u->pc1_gpu_s += run * r->gpus;
    u->n++;
}

/* queue_usage gives every ended job of the window with its GPUs and CPUs over all its nodes;
 * acct_usage sums them per user and per node (a 2-node job: half on each). */
static void
test_usage_sums(void **state)
{
    (void) state;
    queue_t *q = queue_new(":memory:", 0, NULL);
    assert_non_null(q);
    uint64_t pend;
    add_job(q, "alice", WSLQ__JOB_STATE__PENDING, &pend);
    add_ended(q, "alice", "a", WSLQ__JOB_STATE__COMPLETED, "pc1", 2, 4, 100, 200);   /* 200 GPU-s */
    add_ended(q, "alice", "b", WSLQ__JOB_STATE__FAILED, "pc2", 1, 0, 300, 400);      /* 100 */
    add_ended(q, "bob", "c", WSLQ__JOB_STATE__COMPLETED, "pc1,pc2", 1, 2, 100, 400); /* 2 x 300 */
    add_ended(q, "carol", "d", WSLQ__JOB_STATE__CANCELLED, "", 1, 1, 0, 150);        /* never ran */
    usage_sum_t u = {0};
    wq_error_t err = {0};
    assert_int_equal(queue_usage(q, 0, 0, sum_usage, &u, &err), 4);
    assert_int_equal(u.gpu_s[0], 300);
    assert_int_equal(u.cpu_s[0], 400 + 100); /* cpus 0 counts as 1 */
    assert_int_equal(u.gpu_s[1], 600);
    assert_int_equal(u.cpu_s[1], 1200);
    assert_int_equal(u.gpu_s[2], 0);
    assert_int_equal(u.pc1_gpu_s, 200 + 600);
    memset(&u, 0, sizeof u);
    assert_int_equal(queue_usage(q, 250 * 1000, 401 * 1000, sum_usage, &u, &err), 2);

    Wslq__UsageReply rep = WSLQ__USAGE_REPLY__INIT;
    assert_int_equal(acct_usage(q, 0, 0, &rep, &err), 0);
    assert_int_equal(rep.n_users, 3);
    assert_string_equal(rep.users[0]->key, "bob"); /* most GPU-seconds first */
    assert_int_equal(rep.users[0]->gpu_s, 600);
    assert_int_equal(rep.users[0]->jobs, 1);
    assert_string_equal(rep.users[1]->key, "alice");
    assert_int_equal(rep.users[1]->gpu_s, 300);
    assert_int_equal(rep.users[1]->jobs, 2);
    assert_int_equal(rep.users[1]->run_s, 200);
    assert_string_equal(rep.users[2]->key, "carol");
    assert_int_equal(rep.users[2]->jobs, 1);
    assert_int_equal(rep.n_nodes, 2);
    assert_string_equal(rep.nodes[0]->key, "pc1");
    assert_int_equal(rep.nodes[0]->gpu_s, 200 + 300);
    assert_int_equal(rep.nodes[0]->jobs, 2);
    assert_string_equal(rep.nodes[1]->key, "pc2");
    assert_int_equal(rep.nodes[1]->gpu_s, 100 + 300);
    acct_usage_free(&rep);

    /* the figures of one job */
    Wslq__JobInfo *info = queue_get(q, pend + 3, &err);
    assert_non_null(info);
    Wslq__AcctJob a = WSLQ__ACCT_JOB__INIT;
    acct_figures(info, &a);
    assert_string_equal(a.user, "bob");
    assert_int_equal(a.gpus, 2);
    assert_int_equal(a.cpus, 4);
    assert_int_equal(a.run_s, 300);
    assert_int_equal(a.wait_s, 99);
    assert_int_equal(a.gpu_seconds, 600);
    assert_int_equal(a.cpu_seconds, 1200);
    wslq__job_info__free_unpacked(info, NULL);
    queue_destroy(&q);
}

/* A schema-3 file upgrades in place: jobs that ended before it get their accounting columns
 * from their records, so history and usage see them; pending ones stay out. */
static void
test_migration_v3_to_v4(void **state)
{
    (void) state;
    char dir[] = "/tmp/wslq-queue-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/q.db", dir);
    queue_t *q = queue_new(path, 0, NULL);
    assert_non_null(q);
    uint64_t pend;
    add_job(q, "old", WSLQ__JOB_STATE__PENDING, &pend);
    uint64_t done = add_ended(q, "old", "t", WSLQ__JOB_STATE__COMPLETED, "pc1,pc2", 1, 2, 10, 70);
    queue_destroy(&q);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, UNDO_V4 "PRAGMA user_version=3;", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(get_user_version(path), 3);

    wq_error_t err = {0};
    q = queue_new(path, 0, &err);
    assert_non_null(q);
    ids_t got;
    queue_acct_filter_t f = {.node = "pc2"};
    assert_int_equal(history(q, &f, &got), 1);
    assert_int_equal(got.ids[0], done);
    f = (queue_acct_filter_t){.user = "old"};
    assert_int_equal(history(q, &f, &got), 1);
    usage_sum_t u = {0};
    assert_int_equal(queue_usage(q, 0, 0, sum_usage, &u, &err), 1);
    assert_int_equal(u.gpu_s[2], 120); /* 2 nodes x 1 GPU x 60 s */
    queue_destroy(&q);
    assert_int_equal(get_user_version(path), QUEUE_SCHEMA_VERSION);
    /* the reader opens it too, and answers history */
    queue_t *r = queue_open_reader(path, &err);
    assert_non_null(r);
    f = (queue_acct_filter_t){0};
    assert_int_equal(history(r, &f, &got), 1);
    queue_destroy(&r);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

static void
commit_one(queue_t *q, int lazy)
{
    add_job_commit(q, "cat", WSLQ__JOB_STATE__PENDING, lazy, NULL);
}

/* With sync_full a commit syncs the WAL before it returns, a lazy one does not, and the next
 * durable commit, or a queue_commit with no transaction open, syncs what a lazy one left;
 * without sync_full nothing waits for the disk. Both kinds are seen after a reopen. Breaks
 * this catches: the WAL left unsynced after an acknowledged commit (a power loss would lose
 * it), or synced after every commit (each turn waiting for the disk). */
static void
test_lazy_commit_syncs(void **state)
{
    (void) state;
    vfs_count_install();
    char dir[] = "/tmp/wslq-queue-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/q.db", dir);
    queue_t *q = queue_new(path, 1, NULL);
    assert_non_null(q);
    int syncs = vfs_count_wal_syncs();
    commit_one(q, 0);
    assert_int_equal(vfs_count_wal_syncs() - syncs, 1);
    commit_one(q, 1);
    commit_one(q, 1);
    assert_int_equal(vfs_count_wal_syncs() - syncs, 1);
    commit_one(q, 0);
    assert_int_equal(vfs_count_wal_syncs() - syncs, 2);
    assert_int_equal(queue_commit(q, NULL), 0); /* nothing new: no sync */
    assert_int_equal(vfs_count_wal_syncs() - syncs, 2);
    commit_one(q, 1);
    assert_int_equal(vfs_count_wal_syncs() - syncs, 2);
    assert_int_equal(queue_commit(q, NULL), 0); /* the lazy one's sync */
    assert_int_equal(vfs_count_wal_syncs() - syncs, 3);
    queue_destroy(&q);

    q = queue_new(path, 0, NULL);
    assert_non_null(q);
    assert_int_equal(queue_max_id(q), 5);
    syncs = vfs_count_wal_syncs();
    commit_one(q, 0);
    commit_one(q, 1);
    assert_int_equal(queue_commit(q, NULL), 0);
    assert_int_equal(vfs_count_wal_syncs() - syncs, 0);
    assert_int_equal(queue_max_id(q), 7);
    queue_destroy(&q);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* With sync_full the WAL is made as long as a checkpoint's worth of frames at open, zeros past
 * its frames, so commits overwrite it rather than grow it. A process that dies after its
 * commits leaves frames followed by zeros: the next open finds every committed job, and one
 * that was rolled back is not there. Breaks this catches: the zeros written over the frames
 * (from the WAL's start, not its end): the committed jobs would be gone. */
static void
test_wal_prefilled(void **state)
{
    (void) state;
    char dir[] = "/tmp/wslq-queue-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], wal[160];
    snprintf(path, sizeof path, "%s/q.db", dir);
    snprintf(wal, sizeof wal, "%s-wal", path);
    const long long want = 32 + 1001LL * (4096 + 24); /* autocheckpoint 1,000 pages of 4 KiB */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        queue_t *q = queue_new(path, 1, NULL);
        struct stat st;
        if (q == NULL || stat(wal, &st) < 0 || st.st_size < want)
            _exit(2);
        for (int i = 0; i < 3; i++)
            add_job_commit(q, "cat", WSLQ__JOB_STATE__PENDING, 0, NULL);
        Wslq__JobSpec spec = WSLQ__JOB_SPEC__INIT;
        spec.argv = argv_one;
        spec.n_argv = 1;
        Wslq__JobInfo info = WSLQ__JOB_INFO__INIT;
        info.spec = &spec;
        queue_begin(q, NULL);
        queue_insert(q, &info, NULL);
        queue_rollback(q);
        _exit(0); /* as if killed: nothing closed, nothing checkpointed */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stat st;
    assert_int_equal(stat(wal, &st), 0);
    assert_true(st.st_size >= want);
    queue_t *q = queue_new(path, 1, NULL);
    assert_non_null(q);
    assert_int_equal(queue_max_id(q), 3);
    for (uint64_t id = 1; id <= 3; id++) {
        Wslq__JobInfo *got = queue_get(q, id, NULL);
        assert_non_null(got);
        assert_string_equal(got->spec->user, "cat");
        wslq__job_info__free_unpacked(got, NULL);
    }
    add_job_commit(q, "cat", WSLQ__JOB_STATE__PENDING, 0, NULL);
    assert_int_equal(queue_max_id(q), 4);
    queue_destroy(&q);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_active_in_id_order),
        cmocka_unit_test(test_file_and_reopen),
        cmocka_unit_test(test_migration_v1_to_v2),
        cmocka_unit_test(test_migration_v2_to_v3),
        cmocka_unit_test(test_garbage_file_refused),
        cmocka_unit_test(test_history_filters),
        cmocka_unit_test(test_usage_sums),
        cmocka_unit_test(test_migration_v3_to_v4),
        cmocka_unit_test(test_lazy_commit_syncs),
        cmocka_unit_test(test_wal_prefilled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
