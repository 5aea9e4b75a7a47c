/* Which files a working-directory snapshot leaves out (wslq submit --workdir): the patterns
 * of the directory's .gitignore and .wslqignore, in git's syntax for the common cases.
 *
 * One pattern a line; blank lines and lines starting with '#' are skipped, trailing spaces
 * dropped. "!pat" takes a path back in (the last matching line wins). A trailing '/' matches
 * directories only. A pattern with a '/' before its end is matched against the whole path
 * from the snapshot's root (a leading '/' only anchors it); one without is matched against
 * the last component at any depth. '*' and '?' do not cross '/', "[a-z]" / "[!x]" are
 * classes, "**" crosses '/' ("**" + "/x", "a/" + "**"). A path inside an ignored directory
 * is never taken in again (the walk does not enter it). Only the root's two files are read,
 * not .gitignore files in subdirectories. */
#ifndef WSLQ_SNAPIGNORE_H
#define WSLQ_SNAPIGNORE_H

#include <stddef.h>

#include "common/err.h"

typedef struct snapignore snapignore_t;

snapignore_t *snapignore_new(void);
void snapignore_free(snapignore_t *ig);
/* Add the patterns in text (len bytes, lines separated by '\n'). */
void snapignore_add_text(snapignore_t *ig, const char *text, size_t len);
/* Add the patterns of a file; a missing file adds nothing. 0, or -1 with *err when it exists
 * but cannot be read. */
int snapignore_add_file(snapignore_t *ig, const char *path, wq_error_t *err);
/* 1 when the relative path (no leading '/', components separated by '/') is ignored. */
int snapignore_match(const snapignore_t *ig, const char *path, int is_dir);
/* The glob matcher alone: 1 when name matches pat ('*', '?', classes, "**"). */
int snapignore_glob(const char *pat, const char *name);

#endif
