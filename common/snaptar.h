/* Working-directory snapshots and job output as gzip-compressed ustar archives, written and
 * read here (no external tar): wslq submit --workdir packs, the worker unpacks into a job's
 * work area; --output goes the other way.
 *
 * Packing walks a directory tree without following symbolic links: a link is stored as a link
 * only when its target is relative and stays inside the tree, otherwise it is left out (and
 * counted in skipped). Regular files, directories and such links are stored, in name order,
 * owner 0, with their mode and mtime, so the same tree gives the same bytes (and hash).
 *
 * Unpacking refuses, with one line naming the entry, anything that could write outside the
 * destination: absolute names, ".." components, links whose target is absolute or climbs out,
 * entries reached through a link, hard links, devices and other types, duplicate names, a
 * bad header checksum, truncated data, and more than max_bytes of file content in total. */
#ifndef WSLQ_SNAPTAR_H
#define WSLQ_SNAPTAR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "common/snapignore.h"

/* the entries counted as "biggest" in a refusal */
#define SNAPTAR_TOP 3

typedef struct {
    uint64_t bytes; /* file content of what is (or would be) packed */
    size_t files;   /* regular files packed */
    size_t skipped; /* links pointing outside, sockets, devices, unreadable entries */
    /* the biggest top-level entries (a directory counts with its whole content) */
    struct {
        char name[256];
        uint64_t bytes;
    } top[SNAPTAR_TOP];
    size_t n_top;
} snaptar_stats_t;

/* Pack the tree at root (minus what ign ignores; NULL = nothing) into out_path (created,
 * 0600). With max_bytes > 0 and more content than that, nothing is written and -1 returned
 * with err->code WQ_ELIMIT and *st filled (bytes, top). Also -1 on any I/O error. */
int snaptar_pack(const char *root,
                 const snapignore_t *ign,
                 const char *out_path,
                 uint64_t max_bytes,
                 snaptar_stats_t *st,
                 wq_error_t *err);

/* Unpack the archive at path into the existing directory dest. uid/gid >= 0: every entry is
 * given to them (a root worker unpacking for a job's account); -1 = left as created.
 * max_bytes: the limit on file content (0 = none). 0, or -1 with *err. What was unpacked
 * before a refusal stays in dest (the caller removes the work area). */
int snaptar_unpack(
    const char *path, const char *dest, uint64_t max_bytes, int uid, int gid, wq_error_t *err);

/* The same into an open file (written from its current position; the caller's fd stays
 * open), and from one (read from its start): for a worker that opens the file as itself and
 * packs or unpacks in a child running as the job's account. */
int snaptar_pack_fd(const char *root,
                    const snapignore_t *ign,
                    int fd,
                    uint64_t max_bytes,
                    snaptar_stats_t *st,
                    wq_error_t *err);
int snaptar_unpack_fd(int fd, const char *dest, uint64_t max_bytes, wq_error_t *err);

/* The SHA-256 of a file, as 64 lowercase hex digits in hex[65]. 0, or -1 with *err. */
int snaptar_sha256_file(const char *path, char hex[65], wq_error_t *err);
/* 1 when s is 64 lowercase hex digits. */
int snaptar_hash_ok(const char *s);

/* "1.5 MiB" style into buf. */
const char *snaptar_size_text(uint64_t bytes, char *buf, size_t len);

#endif
