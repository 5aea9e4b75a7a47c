/* The durable queue; see queue.h. Only this file includes <sqlite3.h>. */
#include "scheduler/queue.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mem.h"

struct queue {
    sqlite3 *db;
    char *path;       /* for messages */
    int in_txn;       /* a BEGIN is open */
    int sync_full;    /* queue_commit waits for the disk (SQLite itself runs NORMAL) */
    int unsynced;     /* a commit since the last sync of the WAL */
    uint64_t next_id; /* the id the next insert of this transaction gets; 0 = not known yet */
    sqlite3_stmt *st_begin;
    sqlite3_stmt *st_commit;
    sqlite3_stmt *st_rollback;
    sqlite3_stmt *st_insert;
    sqlite3_stmt *st_update;
    sqlite3_stmt *st_get;
    sqlite3_stmt *st_event_add;
    sqlite3_stmt *st_events;
    sqlite3_stmt *st_counts;
    sqlite3_stmt *st_max;
    sqlite3_stmt *st_node_save;
    sqlite3_stmt *st_nodes;
};

static const char *const sql_schema_v1 = "CREATE TABLE jobs ("
                                         "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
                                         "  state INTEGER NOT NULL,"
                                         "  user TEXT NOT NULL,"
                                         "  name TEXT NOT NULL,"
                                         "  priority INTEGER NOT NULL,"
                                         "  submit_ms INTEGER NOT NULL,"
                                         "  info BLOB NOT NULL);"
                                         "CREATE INDEX jobs_state ON jobs(state, id);"
                                         "CREATE TABLE job_events ("
                                         "  job_id INTEGER NOT NULL REFERENCES jobs(id),"
                                         "  seq INTEGER NOT NULL,"
                                         "  ts_ms INTEGER NOT NULL,"
                                         "  state INTEGER NOT NULL,"
                                         "  attempt INTEGER NOT NULL,"
                                         "  reason TEXT NOT NULL,"
                                         "  node TEXT NOT NULL,"
                                         "  detail TEXT NOT NULL,"
                                         "  PRIMARY KEY (job_id, seq));"
                                         "CREATE TABLE nodes ("
                                         "  name TEXT PRIMARY KEY,"
                                         "  info BLOB NOT NULL);";

/* Version 2: who is who. A key is enrolled once, with a code that is kept only as its hash,
 * works once and expires; a revoked key stays, marked, so it can never enrol again. */
static const char *const sql_schema_v2 = "CREATE TABLE principals ("
                                         "  key TEXT PRIMARY KEY,"
                                         "  kind TEXT NOT NULL," /* user, node, revoked */
                                         "  name TEXT NOT NULL,"
                                         "  admin INTEGER NOT NULL,"
                                         "  since_ms INTEGER NOT NULL);"
                                         "CREATE TABLE codes ("
                                         "  hash TEXT PRIMARY KEY,"
                                         "  kind TEXT NOT NULL," /* user, node */
                                         "  name TEXT NOT NULL,"
                                         "  admin INTEGER NOT NULL,"
                                         "  made_ms INTEGER NOT NULL,"
                                         "  expires_ms INTEGER NOT NULL);"
                                         "CREATE TABLE tokens ("
                                         "  hash TEXT PRIMARY KEY,"
                                         "  user TEXT NOT NULL,"
                                         "  made_ms INTEGER NOT NULL);";

/* Version 3: what an admin says about a node, apart from nodes, whose rows each registration
 * rewrites: drained (wslq drain), with why, since when and by whom, a row per drained node
 * that resuming deletes; and its tags (wslq admin node tag), comma-separated. */
static const char *const sql_schema_v3 = "CREATE TABLE node_drains ("
                                         "  name TEXT PRIMARY KEY,"
                                         "  reason TEXT NOT NULL,"
                                         "  since_ms INTEGER NOT NULL,"
                                         "  by_whom TEXT NOT NULL);"
                                         "CREATE TABLE node_tags ("
                                         "  name TEXT PRIMARY KEY,"
                                         "  tags TEXT NOT NULL);";

/* Version 4: accounting (wslq history, wslq usage). An ended job's row also keeps when it
 * started and ended, its GPUs and CPUs (nodes x per node) and its nodes (",pc1,pc2,"), so
 * the listings filter and sum without unpacking every record. end_ms is 0 until the job
 * ends; the partial indexes hold ended jobs only, so inserting pending jobs costs nothing
 * more. */
static const char *const sql_schema_v4 =
    "ALTER TABLE jobs ADD COLUMN end_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN start_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN gpus INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN cpus INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE jobs ADD COLUMN nodes TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX jobs_ended ON jobs(end_ms, id) WHERE end_ms > 0;"
    "CREATE INDEX jobs_user_ended ON jobs(user, end_ms, id) WHERE end_ms > 0;";

/* ?7: the id when the transaction already knows it (NULL: the next one) */
static const char *const sql_insert = "INSERT INTO jobs(id, state, user, name, priority, "
                                      "submit_ms, info) VALUES(?7,?1,?2,?3,?4,?5,?6)";
static const char *const sql_update =
    "UPDATE jobs SET state=?2, info=?3, name=?4, priority=?5, end_ms=?6, start_ms=?7, gpus=?8, "
    "cpus=?9, nodes=?10 WHERE id=?1";
static const char *const sql_get = "SELECT info FROM jobs WHERE id=?1";
static const char *const sql_event_add =
    "INSERT INTO job_events(job_id, seq, ts_ms, state, attempt, reason, node, detail) "
    "VALUES(?1, (SELECT IFNULL(MAX(seq),0)+1 FROM job_events WHERE job_id=?1),"
    " ?2, ?3, ?4, ?5, ?6, ?7)";
static const char *const sql_events =
    "SELECT ts_ms, state, attempt, reason, node, detail FROM job_events WHERE job_id=?1 "
    "ORDER BY seq";
static const char *const sql_counts = "SELECT state, COUNT(*) FROM jobs GROUP BY state";
static const char *const sql_max = "SELECT IFNULL(MAX(id),0) FROM jobs";
static const char *const sql_node_save = "INSERT INTO nodes(name, info) VALUES(?1, ?2) "
                                         "ON CONFLICT(name) DO UPDATE SET info=excluded.info";
static const char *const sql_nodes = "SELECT info FROM nodes ORDER BY name";

/* Why a file system refuses writes, for a message: "is on a read-only file system", ... */
static const char *
unwritable_why(const char *path, char *buf, size_t size)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    struct statvfs vfs;
    if (statvfs(dir, &vfs) == 0 && (vfs.f_flag & ST_RDONLY))
        snprintf(buf, size, "%s is on a read-only file system", dir);
    else if (statvfs(dir, &vfs) == 0 && vfs.f_bavail == 0)
        snprintf(buf, size, "no space is left on the file system of %s", dir);
    else if (access(path, W_OK) < 0 && errno != ENOENT)
        snprintf(buf, size, "%s: %s", path, strerror(errno));
    else if (access(dir, W_OK) < 0)
        snprintf(buf, size, "%s: %s", dir, strerror(errno));
    else
        snprintf(buf, size, "%s cannot be written", path);
    return buf;
}

static int
db_fail(queue_t *self, wq_error_t *err, const char *what)
{
    int code = sqlite3_errcode(self->db) & 0xff;
    char why[PATH_MAX + 64];
    if (self->path != NULL && (code == SQLITE_READONLY || code == SQLITE_FULL ||
                               code == SQLITE_IOERR || code == SQLITE_CANTOPEN))
        return wq_fail(err, WQ_EIO, "database %s failed: %s (%s)", what,
                       unwritable_why(self->path, why, sizeof why), sqlite3_errmsg(self->db));
    return wq_fail(err, WQ_EIO, "database %s failed: %s", what, sqlite3_errmsg(self->db));
}

static int
prepare(queue_t *self, const char *sql, sqlite3_stmt **st, wq_error_t *err)
{
    if (sqlite3_prepare_v3(self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return db_fail(self, err, "prepare");
    return 0;
}

static int
exec(queue_t *self, const char *sql, wq_error_t *err)
{
    if (sqlite3_exec(self->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return db_fail(self, err, "write");
    return 0;
}

static int
pragma_int(queue_t *self, const char *sql, int *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* The accounting columns of a job's row (schema 4), from its record. */
typedef struct {
    int64_t end_ms, start_ms;
    int64_t gpus, cpus;
    char nodes[WIRE_MAX_NODES * 16];
} acct_cols_t;

static void
acct_cols(const Wslq__JobInfo *info, acct_cols_t *c)
{
    memset(c, 0, sizeof *c);
    const Wslq__JobSpec *s = info->spec;
    if (s != NULL) {
        c->gpus = (int64_t) s->nodes * s->gpus_per_node;
        c->cpus = (int64_t) s->nodes * (s->cpus_per_node ? s->cpus_per_node : 1);
    }
    if (!wire_state_is_final(info->state))
        return;
    c->start_ms = info->start_ms > 0 ? info->start_ms : 0;
    c->end_ms = info->end_ms > 0 ? info->end_ms : info->submit_ms > 0 ? info->submit_ms : 1;
    size_t off = 0;
    for (size_t i = 0; i < info->n_allocs && off + 2 < sizeof c->nodes; i++) {
        const char *n = info->allocs[i]->node ? info->allocs[i]->node : "";
        int w = snprintf(c->nodes + off, sizeof c->nodes - off, "%s%s,", off ? "" : ",", n);
        if (w < 0 || (size_t) w >= sizeof c->nodes - off) {
            c->nodes[off] = '\0'; /* too many to list: left out of node filters */
            break;
        }
        off += (size_t) w;
    }
}

/* Schema 3 to 4: the accounting columns of the jobs that ended before it. */
static int
acct_backfill(queue_t *self, wq_error_t *err)
{
    sqlite3_stmt *sel = NULL, *upd = NULL;
    if (sqlite3_prepare_v2(self->db, "SELECT id, info FROM jobs WHERE state >= 4", -1, &sel,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(self->db,
                           "UPDATE jobs SET end_ms=?2, start_ms=?3, gpus=?4, cpus=?5, nodes=?6 "
                           "WHERE id=?1",
                           -1, &upd, NULL) != SQLITE_OK) {
        sqlite3_finalize(sel);
        return db_fail(self, err, "migration");
    }
    int rc;
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        Wslq__JobInfo *info = wslq__job_info__unpack(NULL, (size_t) sqlite3_column_bytes(sel, 1),
                                                     sqlite3_column_blob(sel, 1));
        if (info == NULL)
            continue; /* a damaged record stays out of accounting */
        acct_cols_t c;
        acct_cols(info, &c);
        wslq__job_info__free_unpacked(info, NULL);
        sqlite3_bind_int64(upd, 1, sqlite3_column_int64(sel, 0));
        sqlite3_bind_int64(upd, 2, c.end_ms);
        sqlite3_bind_int64(upd, 3, c.start_ms);
        sqlite3_bind_int64(upd, 4, c.gpus);
        sqlite3_bind_int64(upd, 5, c.cpus);
        sqlite3_bind_text(upd, 6, c.nodes, -1, SQLITE_STATIC);
        int urc = sqlite3_step(upd);
        sqlite3_reset(upd);
        if (urc != SQLITE_DONE) {
            rc = urc;
            break;
        }
    }
    sqlite3_finalize(sel);
    sqlite3_finalize(upd);
    return rc == SQLITE_DONE ? 0 : db_fail(self, err, "migration");
}

static int
migrate(queue_t *self, wq_error_t *err)
{
    int version = 0;
    if (pragma_int(self, "PRAGMA user_version", &version) < 0)
        return db_fail(self, err, "read of user_version");
    if (version > QUEUE_SCHEMA_VERSION)
        return wq_fail(err, WQ_EIO,
                       "database schema version %d is newer than this scheduler (%d); "
                       "upgrade wslq-scheduler",
                       version, QUEUE_SCHEMA_VERSION);
    if (version == QUEUE_SCHEMA_VERSION)
        return 0;
    /* One transaction from whatever version to the newest: all or nothing. */
    if (exec(self, "BEGIN IMMEDIATE", err) < 0)
        return -1;
    if ((version < 1 && exec(self, sql_schema_v1, err) < 0) ||
        (version < 2 && exec(self, sql_schema_v2, err) < 0) ||
        (version < 3 && exec(self, sql_schema_v3, err) < 0) ||
        (version < 4 && exec(self, sql_schema_v4, err) < 0) ||
        (version >= 1 && version < 4 && acct_backfill(self, err) < 0) ||
        exec(self, "PRAGMA user_version=4", err) < 0) {
        exec(self, "ROLLBACK", NULL);
        return -1;
    }
    if (exec(self, "COMMIT", err) < 0)
        return -1;
    if (version > 0)
        log_info("database migrated from schema %d to %d", version, QUEUE_SCHEMA_VERSION);
    return 0;
}

/* The first row of a text PRAGMA ("ok" for a sound quick_check). */
static int
pragma_text(queue_t *self, const char *sql, char *out, size_t size)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        snprintf(out, size, "%s", (const char *) sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

/* Tables of any kind in the file (a wslq queue has jobs, job_events, nodes). */
static int
count_tables(queue_t *self)
{
    int n = -1;
    pragma_int(self, "SELECT count(*) FROM sqlite_master WHERE type='table'", &n);
    return n;
}

/* SQLite's page cache (negative: KiB). Its default, 2,000 KiB, filled up within a few thousand
 * jobs and was the larger part of the scheduler's resident memory; a submit touches the
 * B-trees' interior pages and the last leaves only, and a page not cached is read again from
 * the system's file cache. */
#define QUEUE_CACHE_KIB "-512"
#define WAY_OUT         "keep a copy, then move it aside to start an empty queue, or restore a backup"

/* The WAL made, once at start, as long as it gets between two checkpoints (the
 * autocheckpoint's pages), with zeros past its frames. SQLite writes it again from its start
 * after each checkpoint, so a scheduler that has run a while syncs commits that overwrite the
 * file; a fresh one would grow it at every commit until its first checkpoint, and on ext4
 * with a journal a sync that grows a file commits the journal too (bench/README.md: 0.57-0.74
 * ms against 0.31-0.39 ms). Zeros are no frame (no valid salt or checksum), so SQLite's
 * recovery stops at them as at the frames an earlier cycle left. Through SQLite's own handle,
 * past what is there; best effort, and only on a file system with room to spare
 * (WAL_PREFILL_MIN_FREE): on a small or nearly full one the WAL grows as it did, so its last
 * free space goes to the jobs. */
#define WAL_PREFILL_MIN_FREE (256ull << 20)

static void
wal_prefill(queue_t *self)
{
    sqlite3_file *wal = NULL;
    int pages = 0, psz = 0;
    sqlite3_int64 have = 0;
    struct statvfs fs;
    if (statvfs(self->path, &fs) < 0 ||
        (unsigned long long) fs.f_bavail * fs.f_frsize < WAL_PREFILL_MIN_FREE)
        return;
    if (sqlite3_file_control(self->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
        wal == NULL || wal->pMethods == NULL ||
        pragma_int(self, "PRAGMA wal_autocheckpoint", &pages) < 0 ||
        pragma_int(self, "PRAGMA page_size", &psz) < 0 || pages <= 0 || psz <= 0 ||
        wal->pMethods->xFileSize(wal, &have) != SQLITE_OK)
        return;
    /* the 32-byte header, then frames of a 24-byte header and a page; one more for the
     * commit that passes the mark */
    sqlite3_int64 want = 32 + ((sqlite3_int64) pages + 1) * (psz + 24);
    static const char zeros[64 * 1024];
    for (sqlite3_int64 off = have; off < want;) {
        int n = want - off < (sqlite3_int64) sizeof zeros ? (int) (want - off) : (int) sizeof zeros;
        if (wal->pMethods->xWrite(wal, zeros, n, off) != SQLITE_OK)
            return;
        off += n;
    }
    if (have < want)
        wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
}

queue_t *
queue_new(const char *path, int sync_full, wq_error_t *err)
{
    queue_t *self = wq_calloc(1, sizeof *self);
    int memory = strcmp(path, ":memory:") == 0;
    struct stat fst;
    int existed = !memory && stat(path, &fst) == 0;
    char why[PATH_MAX + 64];
    if (existed && fst.st_size == 0) {
        /* SQLite would take it for a new database: every job in it would be forgotten */
        wq_fail(err, WQ_EIO,
                "database %s is empty (0 bytes): it was truncated or is not a wslq queue; " WAY_OUT,
                path);
        goto error;
    }
    self->path = wq_strdup(path);
    if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        wq_fail(err, WQ_EIO, "cannot open database %s: %s", path,
                self->db ? sqlite3_errmsg(self->db) : "out of memory");
        goto error;
    }
    /* the queue holds every job's command and environment: its account's alone (SQLite gives
     * the -wal and -shm files the database file's mode) */
    (void) chmod(path, 0600);
    if (sqlite3_db_readonly(self->db, "main") == 1) {
        wq_fail(err, WQ_EIO, "database %s cannot be written: %s", path,
                unwritable_why(path, why, sizeof why));
        goto error;
    }
    sqlite3_busy_timeout(self->db, 5000);
    char check[256] = "";
    if (pragma_text(self, "PRAGMA quick_check", check, sizeof check) < 0) {
        wq_fail(err, WQ_EIO, "database %s is damaged or not a database (%s); " WAY_OUT, path,
                sqlite3_errmsg(self->db));
        goto error;
    }
    if (strcmp(check, "ok") != 0) {
        wq_fail(err, WQ_EIO, "database %s is damaged (%.120s); " WAY_OUT, path, check);
        goto error;
    }
    int version = 0;
    pragma_int(self, "PRAGMA user_version", &version);
    if (existed && version == 0 && count_tables(self) != 0) {
        wq_fail(err, WQ_EIO, "database %s is not a wslq queue (it has other tables); " WAY_OUT,
                path);
        goto error;
    }
    /* NORMAL in WAL mode: a commit is safe from a crash of this process without a sync; with
     * sync_full queue_commit syncs the WAL itself, which is what FULL does at every commit,
     * and queue_commit_lazy leaves it to the next one (commits reach the WAL in order) */
    self->sync_full = sync_full;
    if (exec(self, "PRAGMA journal_mode=WAL", err) < 0 ||
        exec(self, "PRAGMA synchronous=NORMAL", err) < 0 ||
        exec(self, "PRAGMA foreign_keys=ON", err) < 0 ||
        exec(self, "PRAGMA cache_size=" QUEUE_CACHE_KIB, err) < 0 || migrate(self, err) < 0)
        goto error;
    /* Write once now, so a full disk or a file that cannot be written is found at start with
     * its reason, not at the first submission. */
    char w[64];
    snprintf(w, sizeof w, "PRAGMA user_version=%d", QUEUE_SCHEMA_VERSION);
    if (exec(self, "BEGIN IMMEDIATE", err) < 0 || exec(self, w, err) < 0 ||
        exec(self, "COMMIT", err) < 0) {
        exec(self, "ROLLBACK", NULL);
        goto error;
    }
    if (sync_full)
        wal_prefill(self);
    if (prepare(self, "BEGIN IMMEDIATE", &self->st_begin, err) < 0 ||
        prepare(self, "COMMIT", &self->st_commit, err) < 0 ||
        prepare(self, "ROLLBACK", &self->st_rollback, err) < 0 ||
        prepare(self, sql_insert, &self->st_insert, err) < 0 ||
        prepare(self, sql_update, &self->st_update, err) < 0 ||
        prepare(self, sql_get, &self->st_get, err) < 0 ||
        prepare(self, sql_event_add, &self->st_event_add, err) < 0 ||
        prepare(self, sql_events, &self->st_events, err) < 0 ||
        prepare(self, sql_counts, &self->st_counts, err) < 0 ||
        prepare(self, sql_max, &self->st_max, err) < 0 ||
        prepare(self, sql_node_save, &self->st_node_save, err) < 0 ||
        prepare(self, sql_nodes, &self->st_nodes, err) < 0)
        goto error;
    return self;
error:
    queue_destroy(&self);
    return NULL;
}

queue_t *
queue_open_reader(const char *path, wq_error_t *err)
{
    queue_t *self = wq_calloc(1, sizeof *self);
    if (sqlite3_open_v2(path, &self->db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        wq_fail(err, WQ_EIO, "cannot open database %s: %s", path,
                self->db ? sqlite3_errmsg(self->db) : "out of memory");
        goto error;
    }
    /* The loop's commits are short; a reader waits for the WAL index rather than failing. */
    sqlite3_busy_timeout(self->db, 2000);
    int version = 0;
    if (pragma_int(self, "PRAGMA user_version", &version) < 0 || version != QUEUE_SCHEMA_VERSION) {
        wq_fail(err, WQ_EIO, "database %s: schema version %d, expected %d", path, version,
                QUEUE_SCHEMA_VERSION);
        goto error;
    }
    if (prepare(self, sql_get, &self->st_get, err) < 0 ||
        prepare(self, sql_events, &self->st_events, err) < 0 ||
        prepare(self, sql_counts, &self->st_counts, err) < 0 ||
        prepare(self, sql_max, &self->st_max, err) < 0 ||
        prepare(self, sql_nodes, &self->st_nodes, err) < 0)
        goto error;
    return self;
error:
    queue_destroy(&self);
    return NULL;
}

void
queue_destroy(queue_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    queue_t *self = *self_p;
    if (self->in_txn)
        queue_rollback(self);
    sqlite3_stmt *all[] = {self->st_begin,  self->st_commit, self->st_rollback,  self->st_insert,
                           self->st_update, self->st_get,    self->st_event_add, self->st_events,
                           self->st_counts, self->st_max,    self->st_node_save, self->st_nodes};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(self->db);
    free(self->path);
    free(self);
    *self_p = NULL;
}

static int
step_done(queue_t *self, sqlite3_stmt *st, wq_error_t *err, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return db_fail(self, err, what);
    return 0;
}

int
queue_begin(queue_t *self, wq_error_t *err)
{
    if (self->in_txn)
        return 0;
    if (step_done(self, self->st_begin, err, "begin") < 0)
        return -1;
    self->in_txn = 1;
    self->next_id = 0;
    return 0;
}

/* The WAL's own file handle (SQLite's VFS object) synced as a FULL commit would sync it: the
 * commit and every one before it are then on disk. */
static int
sync_wal(queue_t *self, wq_error_t *err)
{
    sqlite3_file *wal = NULL;
    if (sqlite3_file_control(self->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK ||
        wal == NULL || wal->pMethods == NULL)
        return 0; /* no WAL file: an in-memory database */
    int rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK)
        return wq_fail(err, WQ_EIO, "sync of database %s-wal failed: %s", self->path,
                       sqlite3_errstr(rc));
    return 0;
}

static int
commit(queue_t *self, int durable, wq_error_t *err)
{
    if (!self->in_txn)
        return durable && self->sync_full && self->unsynced ? sync_wal(self, err) : 0;
    if (step_done(self, self->st_commit, err, "commit") < 0) {
        queue_rollback(self);
        return -1;
    }
    self->in_txn = 0;
    self->unsynced = 1;
    if (!durable || !self->sync_full)
        return 0;
    if (sync_wal(self, err) < 0)
        return -1;
    self->unsynced = 0;
    return 0;
}

int
queue_commit(queue_t *self, wq_error_t *err)
{
    return commit(self, 1, err);
}

int
queue_commit_lazy(queue_t *self, wq_error_t *err)
{
    return commit(self, 0, err);
}

void
queue_rollback(queue_t *self)
{
    if (!self->in_txn)
        return;
    sqlite3_step(self->st_rollback);
    sqlite3_reset(self->st_rollback);
    self->in_txn = 0;
}

int
queue_in_txn(const queue_t *self)
{
    return self->in_txn;
}

static uint8_t *
pack_info(const Wslq__JobInfo *info, size_t *len)
{
    *len = wslq__job_info__get_packed_size(info);
    uint8_t *buf = wq_malloc(*len);
    wslq__job_info__pack(info, buf);
    return buf;
}

static const char *
or_empty(const char *s)
{
    return s ? s : "";
}

int
queue_insert(queue_t *self, Wslq__JobInfo *info, wq_error_t *err)
{
    WQ_ASSERT(self->in_txn);
    /* AUTOINCREMENT gives max(every id ever given, the largest row) + 1, and this connection
     * is the only writer inside its transaction: after one insert the next id is known, so a
     * job (an array's 100,000 tasks) is written once, with its id, rather than twice. */
    info->id = self->next_id;
    size_t len;
    uint8_t *buf = pack_info(info, &len);
    sqlite3_stmt *st = self->st_insert;
    if (self->next_id)
        sqlite3_bind_int64(st, 7, (sqlite3_int64) self->next_id);
    else
        sqlite3_bind_null(st, 7);
    sqlite3_bind_int(st, 1, info->state);
    sqlite3_bind_text(st, 2, or_empty(info->spec->user), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, or_empty(info->spec->name), -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 4, info->spec->priority);
    sqlite3_bind_int64(st, 5, info->submit_ms);
    sqlite3_bind_blob(st, 6, buf, (int) len, SQLITE_STATIC);
    int rc = step_done(self, st, err, "insert");
    free(buf);
    if (rc < 0) {
        self->next_id = 0;
        return -1;
    }
    uint64_t id = (uint64_t) sqlite3_last_insert_rowid(self->db);
    self->next_id = id + 1;
    if (info->id == id)
        return 0;
    /* The first of the transaction was written with id 0; write it again with its id. */
    info->id = id;
    return queue_update(self, info, err);
}

int
queue_update(queue_t *self, const Wslq__JobInfo *info, wq_error_t *err)
{
    WQ_ASSERT(self->in_txn);
    size_t len;
    uint8_t *buf = pack_info(info, &len);
    sqlite3_stmt *st = self->st_update;
    acct_cols_t c;
    acct_cols(info, &c);
    sqlite3_bind_int64(st, 1, (sqlite3_int64) info->id);
    sqlite3_bind_int(st, 2, info->state);
    sqlite3_bind_blob(st, 3, buf, (int) len, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, info->spec ? or_empty(info->spec->name) : "", -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 5, info->spec ? info->spec->priority : 0);
    sqlite3_bind_int64(st, 6, c.end_ms);
    sqlite3_bind_int64(st, 7, c.start_ms);
    sqlite3_bind_int64(st, 8, c.gpus);
    sqlite3_bind_int64(st, 9, c.cpus);
    sqlite3_bind_text(st, 10, c.nodes, -1, SQLITE_STATIC);
    int rc = step_done(self, st, err, "update");
    free(buf);
    return rc;
}

int
queue_add_event(queue_t *self, uint64_t id, const Wslq__JobEvent *ev, wq_error_t *err)
{
    WQ_ASSERT(self->in_txn);
    sqlite3_stmt *st = self->st_event_add;
    sqlite3_bind_int64(st, 1, (sqlite3_int64) id);
    sqlite3_bind_int64(st, 2, ev->ts_ms);
    sqlite3_bind_int(st, 3, ev->state);
    sqlite3_bind_int(st, 4, (int) ev->attempt);
    sqlite3_bind_text(st, 5, or_empty(ev->reason), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, or_empty(ev->node), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 7, or_empty(ev->detail), -1, SQLITE_STATIC);
    return step_done(self, st, err, "event insert");
}

static Wslq__JobInfo *
unpack_column(sqlite3_stmt *st, int col)
{
    const void *blob = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    return wslq__job_info__unpack(NULL, (size_t) n, blob);
}

Wslq__JobInfo *
queue_get(queue_t *self, uint64_t id, wq_error_t *err)
{
    sqlite3_stmt *st = self->st_get;
    sqlite3_bind_int64(st, 1, (sqlite3_int64) id);
    Wslq__JobInfo *info = NULL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        info = unpack_column(st, 0);
        if (info == NULL)
            wq_fail(err, WQ_EIO, "job %" PRIu64 " record is damaged", id);
    } else if (rc == SQLITE_DONE) {
        wq_fail(err, WQ_ENOENT, "job %" PRIu64 " not found", id);
    } else {
        db_fail(self, err, "read");
    }
    sqlite3_reset(st);
    return info;
}

int
queue_events(queue_t *self, uint64_t id, Wslq__JobEvent ***events, size_t *n, wq_error_t *err)
{
    sqlite3_stmt *st = self->st_events;
    sqlite3_bind_int64(st, 1, (sqlite3_int64) id);
    size_t cap = 8, count = 0;
    Wslq__JobEvent **out = wq_malloc(cap * sizeof *out);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap *= 2;
            out = wq_realloc(out, cap * sizeof *out);
        }
        Wslq__JobEvent *ev = wq_malloc(sizeof *ev);
        wslq__job_event__init(ev);
        ev->ts_ms = sqlite3_column_int64(st, 0);
        ev->state = sqlite3_column_int(st, 1);
        ev->attempt = (uint32_t) sqlite3_column_int(st, 2);
        ev->reason = wq_strdup((const char *) sqlite3_column_text(st, 3));
        ev->node = wq_strdup((const char *) sqlite3_column_text(st, 4));
        ev->detail = wq_strdup((const char *) sqlite3_column_text(st, 5));
        out[count++] = ev;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        queue_free_events(out, count);
        return db_fail(self, err, "event read");
    }
    *events = out;
    *n = count;
    return 0;
}

void
queue_free_events(Wslq__JobEvent **events, size_t n)
{
    for (size_t i = 0; i < n; i++)
        wslq__job_event__free_unpacked(events[i], NULL);
    free(events);
}

long
queue_list(queue_t *self, const queue_filter_t *f, queue_visit_f fn, void *arg, wq_error_t *err)
{
    char sql[512];
    int off = snprintf(sql, sizeof sql, "SELECT info, id FROM jobs WHERE 1");
    /* The active jobs alone: one index range per state, merged by id (a UNION ALL with
     * ORDER BY is a merge of ordered scans), where IN (1,2,3) would sort every row first. */
    int merge = f->active_only && !f->state_mask;
    if (merge)
        off += snprintf(sql + off, sizeof sql - (size_t) off, " AND state=1");
    else if (f->active_only)
        off += snprintf(sql + off, sizeof sql - (size_t) off, " AND state IN (1,2,3)");
    if (f->state_mask) {
        off += snprintf(sql + off, sizeof sql - (size_t) off, " AND state IN (0");
        for (int s = 1; s < WIRE_JOB_STATES; s++)
            if (f->state_mask & (1u << s))
                off += snprintf(sql + off, sizeof sql - (size_t) off, ",%d", s);
        off += snprintf(sql + off, sizeof sql - (size_t) off, ")");
    }
    if (f->user)
        off += snprintf(sql + off, sizeof sql - (size_t) off, " AND user=?1");
    if (f->name)
        off += snprintf(sql + off, sizeof sql - (size_t) off, " AND name=?2");
    if (f->before_id)
        off += snprintf(sql + off, sizeof sql - (size_t) off, " AND id<?3");
    const char *order = f->newest_first ? "DESC" : "ASC";
    char all[3 * sizeof sql + 64];
    if (merge) { /* the same query for states 2 and 3 */
        char arm2[sizeof sql], arm3[sizeof sql];
        snprintf(arm2, sizeof arm2, "%s", sql);
        snprintf(arm3, sizeof arm3, "%s", sql);
        strstr(arm2, "state=1")[6] = '2';
        strstr(arm3, "state=1")[6] = '3';
        snprintf(all, sizeof all, "%s UNION ALL %s UNION ALL %s ORDER BY id %s LIMIT ?4", sql, arm2,
                 arm3, order);
    } else {
        snprintf(all, sizeof all, "%s ORDER BY id %s LIMIT ?4", sql, order);
    }
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, all, -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "list");
    if (f->user)
        sqlite3_bind_text(st, 1, f->user, -1, SQLITE_STATIC);
    if (f->name)
        sqlite3_bind_text(st, 2, f->name, -1, SQLITE_STATIC);
    if (f->before_id)
        sqlite3_bind_int64(st, 3, (sqlite3_int64) f->before_id);
    sqlite3_bind_int64(st, 4, f->limit ? f->limit : 1000);
    long count = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Wslq__JobInfo *info = unpack_column(st, 0);
        if (info == NULL) {
            sqlite3_int64 id = sqlite3_column_int64(st, 1);
            if (f->strict) {
                sqlite3_finalize(st);
                return wq_fail(err, WQ_EIO,
                               "database %s is damaged: the record of job %lld cannot be read; "
                               "keep a copy, then move it aside to start an empty queue, or "
                               "restore a backup",
                               self->path ? self->path : "(memory)", (long long) id);
            }
            log_warn("job record damaged, left out job=%lld", (long long) id);
            continue;
        }
        fn(info, arg);
        count++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return db_fail(self, err, "list");
    return count;
}

int
queue_count_states(queue_t *self, int64_t counts[WIRE_JOB_STATES], wq_error_t *err)
{
    memset(counts, 0, 9 * sizeof counts[0]);
    sqlite3_stmt *st = self->st_counts;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int s = sqlite3_column_int(st, 0);
        if (s >= 0 && s < WIRE_JOB_STATES)
            counts[s] = sqlite3_column_int64(st, 1);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(self, err, "count");
}

uint64_t
queue_max_id(queue_t *self)
{
    uint64_t id = 0;
    if (sqlite3_step(self->st_max) == SQLITE_ROW)
        id = (uint64_t) sqlite3_column_int64(self->st_max, 0);
    sqlite3_reset(self->st_max);
    return id;
}

int
queue_save_node(queue_t *self, const Wslq__NodeInfo *node, wq_error_t *err)
{
    size_t len = wslq__node_info__get_packed_size(node);
    uint8_t *buf = wq_malloc(len);
    wslq__node_info__pack(node, buf);
    sqlite3_stmt *st = self->st_node_save;
    sqlite3_bind_text(st, 1, node->name, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, buf, (int) len, SQLITE_STATIC);
    int rc = step_done(self, st, err, "node save");
    free(buf);
    return rc;
}

int
queue_list_nodes(queue_t *self, queue_node_f fn, void *arg, wq_error_t *err)
{
    sqlite3_stmt *st = self->st_nodes;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Wslq__NodeInfo *n = wslq__node_info__unpack(NULL, (size_t) sqlite3_column_bytes(st, 0),
                                                    sqlite3_column_blob(st, 0));
        if (n != NULL)
            fn(n, arg);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : db_fail(self, err, "node list");
}

/* ---------- who is who (schema 2) ---------- */

/* Run one statement with text/int parameters ("t" text, "i" int64 per char of types). */
static int
run(queue_t *self, const char *sql, const char *types, wq_error_t *err, ...)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "prepare");
    va_list ap;
    va_start(ap, err);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't')
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
    }
    va_end(ap);
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(self->db);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_fail(self, err, "write");
    return changes;
}

int
queue_principal_put(queue_t *self, const queue_principal_t *p, wq_error_t *err)
{
    return run(self,
               "INSERT INTO principals(key, kind, name, admin, since_ms) VALUES(?1,?2,?3,?4,?5) "
               "ON CONFLICT(key) DO UPDATE SET kind=excluded.kind, name=excluded.name, "
               "admin=excluded.admin",
               "tttii", err, p->key, p->kind, p->name, (int64_t) p->admin, p->since_ms) < 0
               ? -1
               : 0;
}

int
queue_principals_revoke(queue_t *self, const char *kind, const char *name, wq_error_t *err)
{
    return run(self, "UPDATE principals SET kind='revoked' WHERE kind=?1 AND name=?2", "tt", err,
               kind, name);
}

int
queue_principals_set_admin(queue_t *self, const char *name, int admin, wq_error_t *err)
{
    return run(self, "UPDATE principals SET admin=?2 WHERE kind='user' AND name=?1", "ti", err,
               name, (int64_t) admin);
}

long
queue_principals_list(queue_t *self, queue_principal_f fn, void *arg, wq_error_t *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db,
                           "SELECT key, kind, name, admin, since_ms FROM principals ORDER BY "
                           "kind, name",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "prepare");
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        queue_principal_t p = {0};
        snprintf(p.key, sizeof p.key, "%s", (const char *) sqlite3_column_text(st, 0));
        snprintf(p.kind, sizeof p.kind, "%s", (const char *) sqlite3_column_text(st, 1));
        snprintf(p.name, sizeof p.name, "%s", (const char *) sqlite3_column_text(st, 2));
        p.admin = sqlite3_column_int(st, 3);
        p.since_ms = sqlite3_column_int64(st, 4);
        fn(&p, arg);
        n++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : db_fail(self, err, "read");
}

int
queue_code_put(queue_t *self, const queue_code_t *c, wq_error_t *err)
{
    return run(self,
               "INSERT INTO codes(hash, kind, name, admin, made_ms, expires_ms) "
               "VALUES(?1,?2,?3,?4,?5,?6)",
               "tttiii", err, c->hash, c->kind, c->name, (int64_t) c->admin, c->made_ms,
               c->expires_ms) < 0
               ? -1
               : 0;
}

int
queue_code_take(queue_t *self, const char *hash, int64_t now_ms, queue_code_t *out, wq_error_t *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db,
                           "SELECT kind, name, admin, made_ms, expires_ms FROM codes WHERE hash=?1",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "prepare");
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        snprintf(out->hash, sizeof out->hash, "%s", hash);
        snprintf(out->kind, sizeof out->kind, "%s", (const char *) sqlite3_column_text(st, 0));
        snprintf(out->name, sizeof out->name, "%s", (const char *) sqlite3_column_text(st, 1));
        out->admin = sqlite3_column_int(st, 2);
        out->made_ms = sqlite3_column_int64(st, 3);
        out->expires_ms = sqlite3_column_int64(st, 4);
    }
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE)
        return wq_fail(err, WQ_ENOENT,
                       "this code is not known: it was used already, or never made");
    if (rc != SQLITE_ROW)
        return db_fail(self, err, "read");
    /* single use, whether it is still good or not */
    if (run(self, "DELETE FROM codes WHERE hash=?1", "t", err, hash) < 0)
        return -1;
    if (out->expires_ms <= now_ms)
        return wq_fail(err, WQ_ETIMEDOUT, "this code has expired; ask an admin for a new one");
    return 0;
}

long
queue_codes_list(queue_t *self, int64_t now_ms, queue_code_f fn, void *arg, wq_error_t *err)
{
    if (run(self, "DELETE FROM codes WHERE expires_ms<=?1", "i", err, now_ms) < 0)
        return -1;
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db,
                           "SELECT hash, kind, name, admin, made_ms, expires_ms FROM codes "
                           "ORDER BY made_ms",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "prepare");
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        queue_code_t c = {0};
        snprintf(c.hash, sizeof c.hash, "%s", (const char *) sqlite3_column_text(st, 0));
        snprintf(c.kind, sizeof c.kind, "%s", (const char *) sqlite3_column_text(st, 1));
        snprintf(c.name, sizeof c.name, "%s", (const char *) sqlite3_column_text(st, 2));
        c.admin = sqlite3_column_int(st, 3);
        c.made_ms = sqlite3_column_int64(st, 4);
        c.expires_ms = sqlite3_column_int64(st, 5);
        fn(&c, arg);
        n++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : db_fail(self, err, "read");
}

int
queue_token_put(queue_t *self, const char *hash, const char *user, int64_t now_ms, wq_error_t *err)
{
    return run(self, "INSERT INTO tokens(hash, user, made_ms) VALUES(?1,?2,?3)", "tti", err, hash,
               user, now_ms) < 0
               ? -1
               : 0;
}

int
queue_tokens_revoke(queue_t *self, const char *user, wq_error_t *err)
{
    return run(self, "DELETE FROM tokens WHERE user=?1", "t", err, user) < 0 ? -1 : 0;
}

int
queue_token_user(queue_t *self, const char *hash, char *user, size_t size, int *admin)
{
    sqlite3_stmt *st;
    /* a user removed (every key revoked) has no tokens left; admin is the user's flag now */
    if (sqlite3_prepare_v2(self->db,
                           "SELECT t.user, EXISTS(SELECT 1 FROM principals p WHERE p.name=t.user "
                           "AND p.kind='user' AND p.admin=1) FROM tokens t WHERE t.hash=?1",
                           -1, &st, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(user, size, "%s", (const char *) sqlite3_column_text(st, 0));
        *admin = sqlite3_column_int(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : -1;
}

int
queue_forget_node(queue_t *self, const char *name, wq_error_t *err)
{
    return run(self, "DELETE FROM nodes WHERE name=?1", "t", err, name) < 0 ? -1 : 0;
}

/* ---------- drained nodes (schema 3) ---------- */

int
queue_drain_put(queue_t *self, const queue_drain_t *d, wq_error_t *err)
{
    return run(self,
               "INSERT INTO node_drains(name, reason, since_ms, by_whom) VALUES(?1,?2,?3,?4) "
               "ON CONFLICT(name) DO UPDATE SET reason=excluded.reason, "
               "since_ms=excluded.since_ms, by_whom=excluded.by_whom",
               "ttit", err, d->name, d->reason, d->since_ms, d->by) < 0
               ? -1
               : 0;
}

int
queue_drain_remove(queue_t *self, const char *name, wq_error_t *err)
{
    return run(self, "DELETE FROM node_drains WHERE name=?1", "t", err, name);
}

long
queue_drains_list(queue_t *self, queue_drain_f fn, void *arg, wq_error_t *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db,
                           "SELECT name, reason, since_ms, by_whom FROM node_drains ORDER BY name",
                           -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "prepare");
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        queue_drain_t d = {0};
        snprintf(d.name, sizeof d.name, "%s", (const char *) sqlite3_column_text(st, 0));
        snprintf(d.reason, sizeof d.reason, "%s", (const char *) sqlite3_column_text(st, 1));
        d.since_ms = sqlite3_column_int64(st, 2);
        snprintf(d.by, sizeof d.by, "%s", (const char *) sqlite3_column_text(st, 3));
        fn(&d, arg);
        n++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : db_fail(self, err, "read");
}

/* ---------- node tags (schema 3) ---------- */

int
queue_tags_put(queue_t *self, const char *name, const char *tags, wq_error_t *err)
{
    if (tags[0] == '\0')
        return run(self, "DELETE FROM node_tags WHERE name=?1", "t", err, name) < 0 ? -1 : 0;
    return run(self,
               "INSERT INTO node_tags(name, tags) VALUES(?1,?2) "
               "ON CONFLICT(name) DO UPDATE SET tags=excluded.tags",
               "tt", err, name, tags) < 0
               ? -1
               : 0;
}

long
queue_tags_list(queue_t *self, queue_tags_f fn, void *arg, wq_error_t *err)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, "SELECT name, tags FROM node_tags ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK)
        return db_fail(self, err, "prepare");
    long n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        fn((const char *) sqlite3_column_text(st, 0), (const char *) sqlite3_column_text(st, 1),
           arg);
        n++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? n : db_fail(self, err, "read");
}

/* ---------- accounting (schema 4) ---------- */

/* The WHERE clause of an accounting filter; binds are ?1 user, ?2 since, ?3 until, ?4 name,
 * ?5 node (",pc1,"). */
static int
acct_where(char *sql, size_t size, int off, const queue_acct_filter_t *f)
{
    off += snprintf(sql + off, size - (size_t) off, " WHERE end_ms > 0");
    if (f->user)
        off += snprintf(sql + off, size - (size_t) off, " AND user=?1");
    if (f->since_ms > 0)
        off += snprintf(sql + off, size - (size_t) off, " AND end_ms>=?2");
    if (f->until_ms > 0)
        off += snprintf(sql + off, size - (size_t) off, " AND end_ms<?3");
    if (f->name)
        off += snprintf(sql + off, size - (size_t) off, " AND name=?4");
    if (f->node)
        off += snprintf(sql + off, size - (size_t) off, " AND instr(nodes, ?5) > 0");
    if (f->state_mask) {
        off += snprintf(sql + off, size - (size_t) off, " AND state IN (0");
        for (int s = 1; s < WIRE_JOB_STATES; s++)
            if (f->state_mask & (1u << s))
                off += snprintf(sql + off, size - (size_t) off, ",%d", s);
        off += snprintf(sql + off, size - (size_t) off, ")");
    }
    return off;
}

static void
acct_bind(sqlite3_stmt *st, const queue_acct_filter_t *f, char *node_pat, size_t size)
{
    if (f->user)
        sqlite3_bind_text(st, 1, f->user, -1, SQLITE_STATIC);
    if (f->since_ms > 0)
        sqlite3_bind_int64(st, 2, f->since_ms);
    if (f->until_ms > 0)
        sqlite3_bind_int64(st, 3, f->until_ms);
    if (f->name)
        sqlite3_bind_text(st, 4, f->name, -1, SQLITE_STATIC);
    if (f->node) {
        snprintf(node_pat, size, ",%s,", f->node);
        sqlite3_bind_text(st, 5, node_pat, -1, SQLITE_STATIC);
    }
}

long
queue_history(
    queue_t *self, const queue_acct_filter_t *f, queue_visit_f fn, void *arg, wq_error_t *err)
{
    char sql[512], pat[WIRE_MAX_NAME + 3];
    int off = snprintf(sql, sizeof sql, "SELECT info, id FROM jobs");
    off = acct_where(sql, sizeof sql, off, f);
    snprintf(sql + off, sizeof sql - (size_t) off, " ORDER BY end_ms DESC, id DESC LIMIT ?6");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "history");
    acct_bind(st, f, pat, sizeof pat);
    sqlite3_bind_int64(st, 6, f->limit ? f->limit : 100);
    long count = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        Wslq__JobInfo *info = unpack_column(st, 0);
        if (info == NULL) {
            log_warn("job record damaged, left out job=%lld",
                     (long long) sqlite3_column_int64(st, 1));
            continue;
        }
        fn(info, arg);
        count++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? count : db_fail(self, err, "history");
}

long
queue_usage(
    queue_t *self, int64_t since_ms, int64_t until_ms, queue_acct_f fn, void *arg, wq_error_t *err)
{
    queue_acct_filter_t f = {.since_ms = since_ms, .until_ms = until_ms};
    char sql[512];
    int off =
        snprintf(sql, sizeof sql, "SELECT user, nodes, gpus, cpus, start_ms, end_ms FROM jobs");
    acct_where(sql, sizeof sql, off, &f);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) != SQLITE_OK)
        return db_fail(self, err, "usage");
    acct_bind(st, &f, NULL, 0);
    long count = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        queue_acct_row_t r = {
            .user = (const char *) sqlite3_column_text(st, 0),
            .nodes = (const char *) sqlite3_column_text(st, 1),
            .gpus = sqlite3_column_int64(st, 2),
            .cpus = sqlite3_column_int64(st, 3),
            .start_ms = sqlite3_column_int64(st, 4),
            .end_ms = sqlite3_column_int64(st, 5),
        };
        fn(&r, arg);
        count++;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? count : db_fail(self, err, "usage");
}
