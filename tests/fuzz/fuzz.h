/* What the fuzz targets share: the libFuzzer entry points, a check that aborts (so libFuzzer
 * and the replay both report it as a crash), and a private temporary directory for the
 * readers that only take a path. Header-only so each target stays one .c file. */
#ifndef WSLQ_FUZZ_H
#define WSLQ_FUZZ_H

#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An invariant of the code under test broke: say which and abort. */
#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "fuzz: check '%s' failed at %s:%d\n", #cond, __FILE__, __LINE__); \
            abort();                                                                          \
        }                                                                                     \
    } while (0)

/* As FUZZ_CHECK for a call that returns 0 or -1 with *err: also prints err's text. */
#define FUZZ_CHECK_OK(call, err)                                                           \
    do {                                                                                   \
        if ((call) != 0) {                                                                 \
            fprintf(stderr, "fuzz: '%s' failed at %s:%d: %s\n", #call, __FILE__, __LINE__, \
                    (err).text);                                                           \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static char fuzz_dir[256];

/* Remove the files fuzz_tmpdir() holds (it has no subfolders), then the folder. */
static inline void
fuzz_tmpdir_remove(void)
{
    DIR *d = opendir(fuzz_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[512];
            snprintf(p, sizeof p, "%s/%s", fuzz_dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(fuzz_dir);
}

/* A folder of this process's own under $TMPDIR, else /dev/shm, else /tmp, made on the first
 * call and removed at exit: the only place a target writes. /dev/shm first because it is
 * memory: writing and reopening a small file there took 17 us, on this VM's /tmp 211 us, which
 * alone held the config target to 2,000 runs/s. Aborts if the folder cannot be made. */
static inline const char *
fuzz_tmpdir(void)
{
    if (fuzz_dir[0] != '\0')
        return fuzz_dir;
    const char *t = getenv("TMPDIR");
    if (t == NULL || *t != '/')
        t = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%.200s/wslq-fuzz-XXXXXX", t);
    if (mkdtemp(fuzz_dir) == NULL) {
        perror("fuzz: mkdtemp");
        abort();
    }
    atexit(fuzz_tmpdir_remove);
    return fuzz_dir;
}

/* Replace fuzz_tmpdir()/name with data[0..size); returns the path (a static buffer). */
static inline const char *
fuzz_write_file(const char *name, const uint8_t *data, size_t size)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FUZZ_CHECK(fd >= 0);
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(fd, data + off, size - off);
        FUZZ_CHECK(n > 0);
        off += (size_t) n;
    }
    FUZZ_CHECK(close(fd) == 0);
    return path;
}

/* data[0..size) as a NUL-terminated string (cut at the first NUL). Caller frees. */
static inline char *
fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

#endif
