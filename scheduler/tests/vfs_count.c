/* A VFS over the default one that counts the syncs of WAL files (vfs_count.h). */
#include "scheduler/tests/vfs_count.h"

/* cmocka.h needs these first. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* after the standard headers */
#include <cmocka.h>
#include <sqlite3.h>

typedef struct {
    sqlite3_file base; /* the methods below */
    sqlite3_file *real;
    int wal;
} shim_file_t;

static sqlite3_vfs *real_vfs;
static int wal_syncs;

#define REAL(f) (((shim_file_t *) (f))->real)
static int
s_close(sqlite3_file *f)
{
    return REAL(f)->pMethods->xClose(REAL(f));
}
static int
s_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int
s_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
    return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int
s_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int
s_sync(sqlite3_file *f, int flags)
{
    if (((shim_file_t *) f)->wal)
        wal_syncs++;
    return REAL(f)->pMethods->xSync(REAL(f), flags);
}
static int
s_size(sqlite3_file *f, sqlite3_int64 *size)
{
    return REAL(f)->pMethods->xFileSize(REAL(f), size);
}
static int
s_lock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int
s_unlock(sqlite3_file *f, int l)
{
    return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int
s_reserved(sqlite3_file *f, int *out)
{
    return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}
static int
s_fcntl(sqlite3_file *f, int op, void *arg)
{
    return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}
static int
s_sector(sqlite3_file *f)
{
    return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int
s_devchar(sqlite3_file *f)
{
    return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int
s_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p);
}
static int
s_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), off, n, flags);
}
static void
s_shm_barrier(sqlite3_file *f)
{
    REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int
s_shm_unmap(sqlite3_file *f, int del)
{
    return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}
static int
s_fetch(sqlite3_file *f, sqlite3_int64 o, int n, void **p)
{
    return REAL(f)->pMethods->xFetch(REAL(f), o, n, p);
}
static int
s_unfetch(sqlite3_file *f, sqlite3_int64 o, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), o, p);
}

static const sqlite3_io_methods shim_methods = {
    3,          s_close,       s_read,      s_write, s_truncate, s_sync,    s_size,
    s_lock,     s_unlock,      s_reserved,  s_fcntl, s_sector,   s_devchar, s_shm_map,
    s_shm_lock, s_shm_barrier, s_shm_unmap, s_fetch, s_unfetch,
};

static int
s_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    (void) vfs;
    shim_file_t *sf = (shim_file_t *) f;
    sf->real = (sqlite3_file *) (sf + 1);
    sf->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = real_vfs->xOpen(real_vfs, name, sf->real, flags, out);
    /* the real file's methods stay NULL when its open failed: SQLite then skips xClose */
    sf->base.pMethods = sf->real->pMethods ? &shim_methods : NULL;
    return rc;
}

static sqlite3_vfs shim_vfs;

void
vfs_count_install(void)
{
    if (real_vfs != NULL)
        return;
    real_vfs = sqlite3_vfs_find(NULL);
    assert_non_null(real_vfs);
    shim_vfs = *real_vfs;
    shim_vfs.zName = "wslq-test-shim";
    shim_vfs.szOsFile = (int) sizeof(shim_file_t) + real_vfs->szOsFile;
    shim_vfs.xOpen = s_open;
    assert_int_equal(sqlite3_vfs_register(&shim_vfs, 1), SQLITE_OK);
}

int
vfs_count_wal_syncs(void)
{
    return wal_syncs;
}
