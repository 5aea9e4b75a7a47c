/* Working-directory snapshots: the ignore matcher (git's syntax for the common cases), and the
 * archive round trip, with every hostile archive refused and nothing written outside. */
/* cmocka.h needs these first. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
/* after the standard headers */
#include <cmocka.h>

#include "common/snapignore.h"
#include "common/snaptar.h"

static char dir[64];

static int
setup(void **state)
{
    (void) state;
    snprintf(dir, sizeof dir, "/tmp/wslq-snap-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int
teardown(void **state)
{
    (void) state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwx '%s'; rm -rf '%s'", dir, dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
put(const char *rel, const char *content)
{
    char p[2 * PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void
mk(const char *rel)
{
    char p[2 * PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static int
exists(const char *rel)
{
    char p[2 * PATH_MAX];
    struct stat sb;
    if ((size_t) snprintf(p, sizeof p, "%s/%s", dir, rel) >= sizeof p)
        return 0;
    return lstat(p, &sb) == 0;
}

static void
test_glob(void **state)
{
    (void) state;
    assert_true(snapignore_glob("*.o", "a.o"));
    assert_false(snapignore_glob("*.o", "a.c"));
    assert_false(snapignore_glob("*.o", "d/a.o")); /* '*' stops at '/' */
    assert_true(snapignore_glob("a?c", "abc"));
    assert_false(snapignore_glob("a?c", "a/c"));
    assert_true(snapignore_glob("[a-c]x", "bx"));
    assert_false(snapignore_glob("[!a-c]x", "bx"));
    assert_true(snapignore_glob("**/x", "a/b/x"));
    assert_true(snapignore_glob("**/x", "x"));
    assert_true(snapignore_glob("a/**", "a/b/c"));
    assert_true(snapignore_glob("a/**/z", "a/z"));
    assert_true(snapignore_glob("a/**/z", "a/b/c/z"));
    assert_false(snapignore_glob("a/**/z", "b/z"));
    assert_true(snapignore_glob("\\*", "*"));
    assert_false(snapignore_glob("\\*", "x"));
}

static void
test_ignore_rules(void **state)
{
    (void) state;
    snapignore_t *ig = snapignore_new();
    const char *t = "# comment\n\n*.log\nbuild/\n/top.txt\ndoc/*.pdf\n!keep.log\n  \ndata/**\n"
                    "trail.txt   \n";
    snapignore_add_text(ig, t, strlen(t));
    assert_true(snapignore_match(ig, "a.log", 0));
    assert_true(snapignore_match(ig, "deep/er/b.log", 0));
    assert_false(snapignore_match(ig, "keep.log", 0)); /* negation: the last match wins */
    assert_false(snapignore_match(ig, "sub/keep.log", 0) == 1 &&
                 !snapignore_match(ig, "sub/keep.log", 0));
    assert_true(snapignore_match(ig, "build", 1));
    assert_true(snapignore_match(ig, "src/build", 1));
    assert_false(snapignore_match(ig, "build", 0)); /* dir/ matches directories only */
    assert_true(snapignore_match(ig, "top.txt", 0));
    assert_false(snapignore_match(ig, "sub/top.txt", 0)); /* leading '/' anchors */
    assert_true(snapignore_match(ig, "doc/a.pdf", 0));
    assert_false(snapignore_match(ig, "x/doc/a.pdf", 0)); /* a '/' inside anchors too */
    assert_true(snapignore_match(ig, "data/x/y", 0));
    assert_true(snapignore_match(ig, "trail.txt", 0)); /* trailing spaces dropped */
    assert_false(snapignore_match(ig, "# comment", 0));
    assert_false(snapignore_match(ig, "main.c", 0));
    snapignore_free(ig);
    assert_false(snapignore_match(NULL, "a", 0));
}

static void
test_ignore_file(void **state)
{
    (void) state;
    char p[2 * PATH_MAX];
    wq_error_t err = {0};
    snapignore_t *ig = snapignore_new();
    snprintf(p, sizeof p, "%s/none", dir);
    assert_int_equal(snapignore_add_file(ig, p, &err), 0); /* missing: nothing added */
    put(".gitignore", "*.tmp\n");
    snprintf(p, sizeof p, "%s/.gitignore", dir);
    assert_int_equal(snapignore_add_file(ig, p, &err), 0);
    assert_true(snapignore_match(ig, "x.tmp", 0));
    snapignore_free(ig);
}

/* Pack dir/src with ignore rules, unpack into dir/dst, compare. */
static void
test_round_trip(void **state)
{
    (void) state;
    mk("src");
    mk("src/sub");
    mk("src/build");
    put("src/a.txt", "hello\n");
    put("src/sub/b.py", "print(1)\n");
    put("src/sub/x.log", "noise\n");
    put("src/build/out.o", "obj\n");
    put("outside.txt", "secret\n");
    char p[2 * PATH_MAX], q[2 * PATH_MAX];
    snprintf(p, sizeof p, "%s/src/link_in", dir);
    assert_int_equal(symlink("sub/b.py", p), 0);
    snprintf(p, sizeof p, "%s/src/link_out", dir);
    assert_int_equal(symlink("../outside.txt", p), 0);
    snprintf(p, sizeof p, "%s/src/link_abs", dir);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    /* a long path, split between ustar's prefix and name */
    char longdir[256];
    snprintf(longdir, sizeof longdir, "src/%0120d", 7);
    mk(longdir);
    char longfile[2 * PATH_MAX];
    snprintf(longfile, sizeof longfile, "%s/%090d.txt", longdir, 3);
    put(longfile, "long\n");

    snapignore_t *ig = snapignore_new();
    snapignore_add_text(ig, "*.log\nbuild/\n", 13);
    snprintf(p, sizeof p, "%s/src", dir);
    snprintf(q, sizeof q, "%s/snap.tar.gz", dir);
    snaptar_stats_t st;
    wq_error_t err = {0};
    assert_int_equal(snaptar_pack(p, ig, q, 0, &st, &err), 0);
    assert_int_equal(st.files, 3);
    assert_int_equal(st.skipped, 2); /* the two links leading out */
    assert_int_equal(st.bytes, 6 + 9 + 5);

    /* the same tree: the same bytes */
    char h1[65], h2[65];
    assert_int_equal(snaptar_sha256_file(q, h1, &err), 0);
    assert_true(snaptar_hash_ok(h1));
    snprintf(p, sizeof p, "%s/src", dir);
    char q2[2 * PATH_MAX];
    snprintf(q2, sizeof q2, "%s/snap2.tar.gz", dir);
    assert_int_equal(snaptar_pack(p, ig, q2, 0, NULL, &err), 0);
    assert_int_equal(snaptar_sha256_file(q2, h2, &err), 0);
    assert_string_equal(h1, h2);

    /* over a limit: refused, nothing written, the biggest entry named */
    char q3[2 * PATH_MAX];
    snprintf(q3, sizeof q3, "%s/snap3.tar.gz", dir);
    assert_int_equal(snaptar_pack(p, ig, q3, 10, &st, &err), -1);
    assert_int_equal(err.code, WQ_ELIMIT);
    assert_non_null(strstr(err.text, "over the limit"));
    assert_int_equal(access(q3, F_OK), -1);
    assert_true(st.n_top >= 2);
    assert_string_equal(st.top[0].name, "sub/");
    assert_int_equal(st.top[0].bytes, 9);
    snapignore_free(ig);

    mk("dst");
    snprintf(p, sizeof p, "%s/dst", dir);
    assert_int_equal(snaptar_unpack(q, p, 0, -1, -1, &err), 0);
    assert_true(exists("dst/a.txt"));
    assert_true(exists("dst/sub/b.py"));
    assert_false(exists("dst/sub/x.log"));
    assert_false(exists("dst/build"));
    assert_true(exists("dst/link_in"));
    assert_false(exists("dst/link_out"));
    assert_false(exists("dst/link_abs"));
    snprintf(q, sizeof q, "dst/%s", longfile + 4);
    assert_true(exists(q));
    char buf[64] = {0};
    snprintf(p, sizeof p, "%s/dst/link_in", dir);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "print(1)\n");

    /* a content limit on unpacking */
    mk("dst2");
    snprintf(p, sizeof p, "%s/dst2", dir);
    snprintf(q, sizeof q, "%s/snap.tar.gz", dir);
    assert_int_equal(snaptar_unpack(q, p, 8, -1, -1, &err), -1);
    assert_int_equal(err.code, WQ_ELIMIT);
}

/* ---- hostile archives, made by hand ---- */

static void
hdr(uint8_t h[512], const char *name, char type, size_t size, const char *link)
{
    memset(h, 0, 512);
    snprintf((char *) h, 100, "%s", name);
    snprintf((char *) h + 100, 8, "%07o", 0644);
    snprintf((char *) h + 108, 8, "%07o", 0);
    snprintf((char *) h + 116, 8, "%07o", 0);
    snprintf((char *) h + 124, 12, "%011o", (unsigned) size & 07777777777u);
    snprintf((char *) h + 136, 12, "%011o", 0);
    h[156] = (uint8_t) type;
    if (link)
        snprintf((char *) h + 157, 100, "%s", link);
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *) h + 148, 8, "%06o", sum);
}

typedef struct {
    const char *name;
    char type;
    const char *link;
    const char *data; /* NULL none */
} ent_t;

/* Write an archive of these entries; end = 0 leaves off the end blocks; cut = bytes of the
 * last entry's data actually written (for truncation), -1 all. */
static void
make_tar(const char *path, const ent_t *e, size_t n, int end, long cut)
{
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    uint8_t h[512];
    for (size_t i = 0; i < n; i++) {
        size_t len = e[i].data ? strlen(e[i].data) : 0;
        hdr(h, e[i].name, e[i].type, len, e[i].link);
        gzwrite(gz, h, 512);
        if (len) {
            size_t w = (i + 1 == n && cut >= 0) ? (size_t) cut : len;
            gzwrite(gz, e[i].data, (unsigned) w);
            if (w == len) {
                memset(h, 0, 512);
                gzwrite(gz, h, (unsigned) ((512 - len % 512) % 512));
            }
        }
    }
    if (end) {
        memset(h, 0, 512);
        gzwrite(gz, h, 512);
        gzwrite(gz, h, 512);
    }
    gzclose(gz);
}

static int
unpack_hostile(const ent_t *e, size_t n, int end, long cut, wq_error_t *err)
{
    char t[PATH_MAX], d[PATH_MAX];
    snprintf(t, sizeof t, "%s/h.tar.gz", dir);
    snprintf(d, sizeof d, "%s/in", dir);
    make_tar(t, e, n, end, cut);
    assert_true(mkdir(d, 0700) == 0 || errno == EEXIST);
    return snaptar_unpack(t, d, 0, -1, -1, err);
}

static void
test_hostile(void **state)
{
    (void) state;
    wq_error_t err = {0};
    mk("victim");

    /* a good one first: the maker is right */
    ent_t ok[] = {{"d/", '5', NULL, NULL}, {"d/f", '0', NULL, "data"}};
    assert_int_equal(unpack_hostile(ok, 2, 1, -1, &err), 0);
    assert_true(exists("in/d/f"));

    ent_t abs[] = {{"/tmp/wslq-evil", '0', NULL, "x"}};
    assert_int_equal(unpack_hostile(abs, 1, 1, -1, &err), -1);
    assert_non_null(strstr(err.text, "refused"));

    ent_t dots[] = {{"../victim/evil", '0', NULL, "x"}};
    assert_int_equal(unpack_hostile(dots, 1, 1, -1, &err), -1);
    assert_false(exists("victim/evil"));
    ent_t dots2[] = {{"a/../../victim/evil", '0', NULL, "x"}};
    assert_int_equal(unpack_hostile(dots2, 1, 1, -1, &err), -1);
    assert_false(exists("victim/evil"));

    /* a link out, then through it */
    ent_t esc[] = {{"l", '2', "../victim", NULL}, {"l/evil", '0', NULL, "x"}};
    assert_int_equal(unpack_hostile(esc, 2, 1, -1, &err), -1);
    assert_non_null(strstr(err.text, "leads outside"));
    assert_false(exists("in/l"));
    ent_t esc_abs[] = {{"l2", '2', "/etc", NULL}};
    assert_int_equal(unpack_hostile(esc_abs, 1, 1, -1, &err), -1);

    /* a link inside is fine, but nothing may be written through it */
    char v[PATH_MAX];
    snprintf(v, sizeof v, "%s/victim", dir);
    ent_t through[] = {
        {"sub/", '5', NULL, NULL}, {"sub/l3", '2', "..", NULL}, {"sub/l3/evil2", '0', NULL, "x"}};
    assert_int_equal(unpack_hostile(through, 3, 1, -1, &err), -1);
    assert_false(exists("in/evil2"));
    /* a file over a link made before */
    ent_t over[] = {{"l4", '2', "d/f", NULL}, {"l4", '0', NULL, "x"}};
    assert_int_equal(unpack_hostile(over, 2, 1, -1, &err), -1);

    /* hard links and devices */
    ent_t hard[] = {{"h", '1', "/etc/passwd", NULL}};
    assert_int_equal(unpack_hostile(hard, 1, 1, -1, &err), -1);
    assert_non_null(strstr(err.text, "type '1'"));
    ent_t dev[] = {{"c", '3', NULL, NULL}};
    assert_int_equal(unpack_hostile(dev, 1, 1, -1, &err), -1);

    /* truncated: data cut short, no end blocks, a cut gzip stream */
    ent_t tr[] = {{"t", '0', NULL, "0123456789"}};
    assert_int_equal(unpack_hostile(tr, 1, 0, 4, &err), -1);
    assert_non_null(strstr(err.text, "truncated"));
    ent_t noend[] = {{"t2", '0', NULL, "abc"}};
    assert_int_equal(unpack_hostile(noend, 1, 0, -1, &err), -1);
    assert_non_null(strstr(err.text, "truncated"));

    char t[PATH_MAX], d[PATH_MAX];
    snprintf(t, sizeof t, "%s/h.tar.gz", dir);
    snprintf(d, sizeof d, "%s/in", dir);
    ent_t big[] = {
        {"b", '0', NULL, "lorem ipsum dolor sit amet lorem ipsum dolor sit amet lorem ipsum"}};
    make_tar(t, big, 1, 1, -1);
    struct stat sb;
    assert_int_equal(stat(t, &sb), 0);
    assert_int_equal(truncate(t, sb.st_size / 2), 0);
    assert_int_equal(snaptar_unpack(t, d, 0, -1, -1, &err), -1);

    /* not gzip, not tar */
    FILE *f = fopen(t, "w");
    fputs("this is not an archive at all, just text that goes on for a while............."
          "................................................................................"
          "................................................................................"
          "................................................................................"
          "................................................................................"
          "................................................................................"
          "................................................................................",
          f);
    fclose(f);
    assert_int_equal(snaptar_unpack(t, d, 0, -1, -1, &err), -1);

    /* a bad checksum */
    gzFile gz = gzopen(t, "wb");
    uint8_t h[512];
    hdr(h, "bad", '0', 0, NULL);
    h[0] = 'c';
    gzwrite(gz, h, 512);
    gzclose(gz);
    assert_int_equal(snaptar_unpack(t, d, 0, -1, -1, &err), -1);
    assert_non_null(strstr(err.text, "checksum"));
    assert_false(exists("victim/evil"));
    assert_false(exists("victim/evil2"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_glob),
        cmocka_unit_test_setup_teardown(test_ignore_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ignore_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
