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
#include <unistd.h>
/* after the standard headers */
#include <cmocka.h>
#include <sqlite3.h>

#include "scheduler/queue.h"

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

static void
add_job(queue_t *q, const char *user, Wslq__JobState st, uint64_t *id)
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
    assert_int_equal(queue_commit(q, NULL), 0);
    *id = info.id;
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

    int64_t counts[9];
    assert_int_equal(queue_count_states(q, counts, NULL), 0);
    assert_int_equal(counts[WSLQ__JOB_STATE__PENDING], 2);
    assert_int_equal(counts[WSLQ__JOB_STATE__COMPLETED], 1);

    wq_error_t err = {0};
    assert_null(queue_get(q, 999, &err));
    assert_int_equal(err.code, WQ_ENOENT);
    assert_string_equal(err.text, "job 999 not found");
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
                                  "DROP TABLE node_drains; DROP TABLE node_tags; "
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
    assert_int_equal(
        sqlite3_exec(db, "DROP TABLE node_drains; DROP TABLE node_tags; PRAGMA user_version=2;",
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory),
        cmocka_unit_test(test_file_and_reopen),
        cmocka_unit_test(test_migration_v1_to_v2),
        cmocka_unit_test(test_migration_v2_to_v3),
        cmocka_unit_test(test_garbage_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
