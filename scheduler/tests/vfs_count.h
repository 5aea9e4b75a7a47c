/* For the tests: a VFS over SQLite's default one that counts the syncs of WAL files, made
 * the default so that the queue (queue_new) opens through it. Every other call is passed on. */
#ifndef WSLQ_SCHEDULER_TESTS_VFS_COUNT_H
#define WSLQ_SCHEDULER_TESTS_VFS_COUNT_H

/* Register it as the default VFS; once a process (a second call does nothing). */
void vfs_count_install(void);
/* The syncs of WAL files since it was installed. One thread only. */
int vfs_count_wal_syncs(void);

#endif
