/*
 * check_journal.c — Check suite for the journal (daemon/journal.c): the exact
 * on-disk format, round trips of every record type with awkward text, torn tails
 * cut off, corrupt lines in the middle skipped, reopen, refusal of bad records,
 * and an append that fails half-way (RLIMIT_FSIZE) leaving the journal intact.
 *
 * Lines are also written by hand here, with a bitwise CRC-32 of the test's own,
 * to build corrupt journals byte by byte.
 */
#include "journal.h"
#include "log.h"
#include "tmpdir.h"
#include "check_main.h"
#include "test_file.h"
#include "test_jrec.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[2048];
static char jdir[2100];
static char jpath[2200];
static char rrddir[2100];

#define HEADER "#parkpulse-journal 1\n"

/* ---- helpers ------------------------------------------------------------------ */

/* One directory per test case (removed even when a test fails, since a failed
 * test in a forked child skips its checked teardown), one below it per test. */
static char basedir[1024];

static void suite_setup(void) { tmpdir_make_or_exit(basedir, sizeof basedir, "check_journal"); }

static void suite_teardown(void) { tmpdir_remove(basedir); }

static void setup(void)
{
    int n = snprintf(tmpdir, sizeof tmpdir, "%s/t.XXXXXX", basedir);
    ck_assert(n > 0 && (size_t)n < sizeof tmpdir);
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(jdir, sizeof jdir, "%s/journal", tmpdir);
    snprintf(jpath, sizeof jpath, "%s/journal.log", jdir);
    snprintf(rrddir, sizeof rrddir, "%s/rrd", tmpdir);
    log_set_level(getenv("PP_TEST_VERBOSE") ? LOG_LVL_DEBUG : 0);
}

static void teardown(void) { tmpdir_remove(tmpdir); }

static uint32_t ref_crc32(const char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    while (n--) {
        c ^= (unsigned char)*p++;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

/* body + TAB + crc + LF, into a static buffer. */
static const char *line_of(const char *body, size_t n)
{
    static char buf[3][20000];
    static int k;
    char *out = buf[k++ % 3];
    ck_assert_uint_lt(n + 11, sizeof buf[0]);
    memcpy(out, body, n);
    snprintf(out + n, 11, "\t%08x\n", ref_crc32(body, n));
    return out;
}

static const char *line(const char *body) { return line_of(body, strlen(body)); }

static void write_file(const char *path, const char *data, size_t n, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0640);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, data, n), (ssize_t)n);
    ck_assert_int_eq(close(fd), 0);
}

static void put_file(const char *s) { write_file(jpath, s, strlen(s), O_TRUNC); }
static void add_file(const char *s) { write_file(jpath, s, strlen(s), O_APPEND); }

static off_t file_size(void)
{
    struct stat st;
    ck_assert_int_eq(stat(jpath, &st), 0);
    return st.st_size;
}

/* The journal.log.damaged-* files in jdir: how many, and the content of the
 * last one found (malloc'd, in *data, with its length in *len) when data is not NULL. */
static int damaged_files(char **data, size_t *len)
{
    char path[4400];
    int n = 0;
    DIR *d = opendir(jdir);
    ck_assert_ptr_nonnull(d);
    if (data)
        *data = NULL;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "journal.log.damaged-", 20) != 0)
            continue;
        n++;
        if (data) {
            free(*data);
            snprintf(path, sizeof path, "%s/%s", jdir, e->d_name);
            *data = test_read_file(path, len);
        }
    }
    closedir(d);
    return n;
}


static const char D_CONTENT[] = "park,indicator,period,value\nxiangtan-etdz,fai,2024-10,192.2\n";

static journal_delivery mk_delivery(const char *name, const char *content, int64_t at)
{
    journal_delivery d;
    memset(&d, 0, sizeof d);
    d.received_at = at;
    d.hash = journal_hash(content, strlen(content));
    d.size = strlen(content);
    snprintf(d.name, sizeof d.name, "%s", name);
    return d;
}

/* Replay collects copies of the records. */
typedef struct collected {
    journal_record *recs;
    size_t n, cap;
    int stop_after; /* > 0: return 7 after this many */
} collected;

static int collect(const journal_record *rec, void *ud)
{
    collected *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->recs = realloc(c->recs, c->cap * sizeof *c->recs);
        ck_assert_ptr_nonnull(c->recs);
    }
    c->recs[c->n++] = *rec;
    return c->stop_after > 0 && c->n == (size_t)c->stop_after ? 7 : 0;
}

static collected replay_all(journal *j)
{
    collected c = { 0 };
    ck_assert_int_eq(journal_replay(j, collect, &c), 0);
    return c;
}

static void assert_same(const journal_record *a, const journal_record *b)
{
    ck_assert_int_eq(a->type, b->type);
    switch (a->type) {
    case JREC_OBS:
        ck_assert_str_eq(a->obs.park, b->obs.park);
        ck_assert_str_eq(a->obs.indicator, b->obs.indicator);
        ck_assert_int_eq(a->obs.period, b->obs.period);
        ck_assert_mem_eq(&a->obs.value, &b->obs.value, sizeof(double)); /* bit for bit */
        ck_assert_int_eq(a->obs.status, b->obs.status);
        ck_assert_str_eq(a->obs.source, b->obs.source);
        ck_assert_str_eq(a->obs.note, b->obs.note);
        ck_assert_int_eq(a->obs.received_at, b->obs.received_at);
        ck_assert_int_eq(a->obs.has_yoy, b->obs.has_yoy);
        if (a->obs.has_yoy)
            ck_assert_mem_eq(&a->obs.yoy, &b->obs.yoy, sizeof(double));
        break;
    case JREC_TARGET:
        ck_assert_str_eq(a->target.park, b->target.park);
        ck_assert_str_eq(a->target.indicator, b->target.indicator);
        ck_assert_int_eq(a->target.year, b->target.year);
        ck_assert_mem_eq(&a->target.value, &b->target.value, sizeof(double));
        ck_assert_str_eq(a->target.source, b->target.source);
        ck_assert_int_eq(a->target.received_at, b->target.received_at);
        break;
    case JREC_EVENT:
        ck_assert_str_eq(a->event, b->event);
        break;
    case JREC_DELIVERY:
        ck_assert_int_eq(a->delivery.received_at, b->delivery.received_at);
        ck_assert(a->delivery.hash == b->delivery.hash);
        ck_assert(a->delivery.size == b->delivery.size);
        ck_assert_str_eq(a->delivery.name, b->delivery.name);
        break;
    }
}

static journal *open_ok(void)
{
    journal *j = NULL;
    ck_assert_int_eq(journal_open(jdir, &j), 0);
    ck_assert_ptr_nonnull(j);
    return j;
}

/* ---- format -------------------------------------------------------------------- */

START_TEST(test_format_exact)
{
    journal_record r[4];
    r[0] = jrec_obs("xiangtan-etdz", "fai", 2024, 10, 192.2, 'A', "spool:fai-2024-10.csv", "",
                  1732060800);
    r[1] = jrec_obs("xiangtan-etdz", "fai", 2024, 10, 193.05, 'R', "POST", "统计局修订\t二稿",
                  1732147200);
    r[2] = jrec_target("xiangtan-etdz", "fai", 2024, 250, "targets-2024.csv", 1732060800);
    r[3] = jrec_event("alert xiangtan-etdz fai warning");
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 4), 0);
    ck_assert_uint_eq(journal_count(j), 4);
    journal_close(j);

    /* checksums cross-checked with Python's zlib.crc32 */
    const char *want =
        "#parkpulse-journal 1\n"
        "O\t1732060800\txiangtan-etdz\tfai\t2024-10\t192.2\tA\tspool:fai-2024-10.csv\t\taa79d1f8\n"
        "O\t1732147200\txiangtan-etdz\tfai\t2024-10\t193.05\tR\tPOST\t统计局修订\\t二稿\t69caf4ee\n"
        "T\t1732060800\txiangtan-etdz\tfai\t2024\t250\ttargets-2024.csv\t38757543\n"
        "E\talert xiangtan-etdz fai warning\t9fc8db60\n";
    char *got = test_read_file(jpath, NULL);
    ck_assert_str_eq(got, want);
    free(got);

    struct stat st;
    ck_assert_int_eq(stat(jdir, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0750);
}
END_TEST


/* The yoy field of an O line (journal.c's top comment): written only for a
 * figure that has one, as "yoy=<value>"; a line without it (the old format)
 * replays with yoy null; the sample of the top comment is exact. */
START_TEST(test_yoy_field)
{
    journal_record r[3];
    r[0] = jrec_obs("xiangtan-etdz", "fai", 2024, 10, 192.2, 'A', "spool:fai-2024-10.csv", "",
                  1732060800);
    r[1] = jrec_obs("xiangtan-etdz", "fai", 2024, 10, 193.05, 'R', "POST", "", 1732233600);
    r[1].obs.has_yoy = true;
    r[1].obs.yoy = 12.4;
    r[2] = jrec_obs("p", "i", 2024, 11, 1, 'A', "s", "n", 5);
    r[2].obs.has_yoy = true;
    r[2].obs.yoy = -0.1 - 0.2; /* bit for bit */
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 3), 0);
    journal_close(j);
    char *got = test_read_file(jpath, NULL);
    ck_assert_ptr_nonnull(strstr(got, "O\t1732060800\txiangtan-etdz\tfai\t2024-10\t192.2\tA\t"
                                      "spool:fai-2024-10.csv\t\taa79d1f8\n"));
    ck_assert_ptr_nonnull(strstr(got, "O\t1732233600\txiangtan-etdz\tfai\t2024-10\t193.05\tR\t"
                                      "POST\t\tyoy=12.4\td6d515c9\n"));
    free(got);
    j = open_ok();
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_same(&r[i], &c.recs[i]);
    ck_assert(!c.recs[0].obs.has_yoy);
    free(c.recs);
    journal_close(j);
}
END_TEST

/* ---- round trips --------------------------------------------------------------- */

START_TEST(test_roundtrip)
{
    static char long_note[PP_NOTE_MAX + 1], long_src[PP_SOURCE_MAX + 1];
    static char payload[JOURNAL_EVENT_MAX];
    memset(long_note, '\\', PP_NOTE_MAX); /* every byte escaped: twice as long on disk */
    memset(long_src, '\t', PP_SOURCE_MAX);
    for (size_t i = 0; i < sizeof payload - 1; i++)
        payload[i] = "\\\t\n\rx\xe5\x9b\xad"[i % 8]; /* specials and raw UTF-8 bytes */

    journal_record r[] = {
        jrec_obs("a", "b", PP_PERIOD_MIN_YEAR, 1, 0.0, 'A', "", "", 0),
        jrec_obs("xiangtan-etdz", "fai", PP_PERIOD_MAX_YEAR, 12, -0.0, 'P', "tab\there", "nl\nhere", 1),
        jrec_obs("p_1", "ind-2", 2024, 2, 0.1 + 0.2, 'E', "back\\slash\\", "cr\r\nlf", -5),
        jrec_obs("p", "i", 2024, 6, 1.7976931348623157e308, 'R', "湘潭经开区·统计局", "备注：一季度", INT64_MAX),
        jrec_obs("p", "i", 2024, 7, 4.9406564584124654e-324, 'A', "\\t is not a tab", "\\\\n", INT64_MIN),
        jrec_obs("p", "i", 2024, 8, -123456789.123456789, 'A', long_src, long_note, 1700000000),
        jrec_target("p", "i", 2024, 1234.5, "targets\t2024.csv", 1700000001),
        jrec_target("p", "i", PP_PERIOD_MIN_YEAR, -1e-7, "", 0),
        jrec_event(""),
        jrec_event("{\"seq\":17,\"text\":\"line1\\nline2\"}\n"),
        jrec_event(payload),
    };
    size_t n = sizeof r / sizeof r[0];
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 3), 0);
    ck_assert_int_eq(journal_append(j, r + 3, n - 3), 0);
    ck_assert_uint_eq(journal_count(j), n);
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, n);
    for (size_t i = 0; i < n; i++)
        assert_same(&r[i], &c.recs[i]);
    free(c.recs);
    journal_close(j);

    /* and again from a fresh open */
    j = open_ok();
    ck_assert_uint_eq(journal_count(j), n);
    c = replay_all(j);
    ck_assert_uint_eq(c.n, n);
    for (size_t i = 0; i < n; i++)
        assert_same(&r[i], &c.recs[i]);
    free(c.recs);
    journal_close(j);

    /* no raw TAB, CR or stray LF inside a line: exactly one line per record */
    size_t len;
    char *all = test_read_file(jpath, &len);
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += all[i] == '\n';
    ck_assert_uint_eq(lines, n + 1);
    ck_assert_ptr_null(memchr(all, '\r', len));
    free(all);
}
END_TEST

/* journal_append_figures and journal_append_events write the same lines as
 * journal_append, and refuse a bad batch whole. */
START_TEST(test_append_figures_and_events)
{
    journal_record o1 = jrec_obs("p", "i", 2024, 1, 192.2, 'A', "a.csv", "", 10);
    journal_record o2 = jrec_obs("q", "j", 2024, 2, -0.0, 'R', "b\tc.csv", "n", 11);
    journal_record t1 = jrec_target("p", "i", 2024, 300, "t.csv", 12);
    journal_record e1 = jrec_event("alert 1 p i 2024-01 critical {}"), e2 = jrec_event("");
    pp_obs obs[] = { o1.obs, o2.obs };
    pp_target tg[] = { t1.target };
    const char *ev[] = { e1.event, e2.event };
    journal *j = open_ok();
    ck_assert_int_eq(journal_append_figures(j, obs, 2, tg, 1), 0);
    ck_assert_int_eq(journal_append_events(j, ev, 2), 0);
    ck_assert_int_eq(journal_append_figures(j, NULL, 0, NULL, 0), 0);
    ck_assert_uint_eq(journal_count(j), 5);

    pp_obs bad[] = { o1.obs, o1.obs };
    bad[1].value = NAN;
    ck_assert_int_eq(journal_append_figures(j, bad, 2, NULL, 0), -EINVAL);
    static char too_long[JOURNAL_EVENT_MAX + 1];
    memset(too_long, 'x', JOURNAL_EVENT_MAX);
    const char *bad_ev[] = { "fine", too_long };
    ck_assert_int_eq(journal_append_events(j, bad_ev, 2), -EINVAL);
    ck_assert_uint_eq(journal_count(j), 5);

    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 5);
    const journal_record *want[] = { &o1, &o2, &t1, &e1, &e2 };
    for (size_t i = 0; i < 5; i++)
        assert_same(want[i], &c.recs[i]);
    free(c.recs);
    journal_close(j);
}
END_TEST

/* Appends n figures to a new journal, in batches of 1,000: figure k of park
 * "p<k / per_series>", ten years of months over and over, value k * step,
 * received_at k. */
static void append_figures(int n, int per_series, double step)
{
    enum { BATCH = 1000 };
    journal *j = open_ok();
    journal_record *r = calloc(BATCH, sizeof *r);
    ck_assert_ptr_nonnull(r);
    for (int b = 0; b * BATCH < n; b++) {
        int m = n - b * BATCH < BATCH ? n - b * BATCH : BATCH;
        for (int i = 0; i < m; i++) {
            int k = b * BATCH + i;
            char park[16];
            snprintf(park, sizeof park, "p%d", k / per_series);
            r[i] = jrec_obs(park, "ind", 2000 + k % 120 / 12, 1 + k % 12, k * step, 'A',
                            "some-source-file-name.csv", "a note of moderate length", k);
        }
        ck_assert_int_eq(journal_append(j, r, (size_t)m), 0);
    }
    free(r);
    journal_close(j);
}

START_TEST(test_many_records_cross_chunks)
{
    /* ~3 MiB: replay reads in 1 MiB pieces, so lines straddle the boundaries */
    enum { N = 30000 };
    append_figures(N, N, 0.5);
    ck_assert_int_gt(file_size(), 2 << 20);

    journal *j = open_ok();
    ck_assert_uint_eq(journal_count(j), N);
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, N);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(c.recs[k].obs.received_at, k);
        ck_assert(c.recs[k].obs.value == k * 0.5);
    }
    free(c.recs);
    journal_close(j);
}
END_TEST

/* The replay reader splits a line at its TABs eight bytes at a time and
 * checksums it sixteen at a time: intact lines of every length and with
 * bytes next to a TAB that a carry-prone byte test would take for one (0x08,
 * 0x89, 0x88, 0xff) read back with each field exact. */
static const struct field_case {
    const char *name, *source, *note; /* as stored: any bytes but NUL, TAB, LF, CR, '\' */
} field_cases[] = {
    { "plain", "spool:a.csv", "" },
    { "backspace after a tab", "\bsrc", "\b" },
    { "0x89 after a tab", "\x89src", "\x89\x89" },
    { "0x88 and 0x0a-like bytes", "\x88\x08\x89", "x\x0b\x0c" },
    { "0xff bytes", "\xff\xff\xff\xff\xff\xff\xff\xff", "\xff" },
    { "UTF-8", "统计局", "修订二稿" },
    { "source of 63 bytes", "012345678901234567890123456789012345678901234567890123456789012", "" },
};

START_TEST(test_fields_exact)
{
    const struct field_case *fc = &field_cases[_i];
    char file[200000];
    size_t n = strlen(HEADER);
    memcpy(file, HEADER, n);
    /* the note grows one byte a line: the TABs and the checksum's tail fall
     * on every position of the eight- and sixteen-byte steps */
    char body[1024], note[300];
    for (int k = 0; k < 40; k++) {
        snprintf(note, sizeof note, "%s%.*s", fc->note, k, "abcdefghijklmnopqrstuvwxyz0123456789ABCD");
        int bn = snprintf(body, sizeof body, "O\t%d\tp\ti\t2024-01\t1.5\tA\t%s\t%s", k, fc->source, note);
        const char *l = line_of(body, (size_t)bn);
        memcpy(file + n, l, strlen(l));
        n += strlen(l);
    }
    file[n] = '\0';
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file(file);
    journal *j = open_ok();
    ck_assert_msg(journal_count(j) == 40, "%s: %llu intact", fc->name,
                  (unsigned long long)journal_count(j));
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 40);
    for (int k = 0; k < 40; k++) {
        snprintf(note, sizeof note, "%s%.*s", fc->note, k, "abcdefghijklmnopqrstuvwxyz0123456789ABCD");
        ck_assert_int_eq(c.recs[k].obs.received_at, k);
        ck_assert_str_eq(c.recs[k].obs.park, "p");
        ck_assert_str_eq(c.recs[k].obs.indicator, "i");
        ck_assert_str_eq(c.recs[k].obs.source, fc->source);
        ck_assert_str_eq(c.recs[k].obs.note, note);
        ck_assert(c.recs[k].obs.value == 1.5);
        ck_assert_int_eq(c.recs[k].same_series, k > 0);
    }
    free(c.recs);
    journal_close(j);
}
END_TEST

/* same_series and the ids the reader takes over from the line before: only
 * from an intact O or T line, only when both ids are equal byte for byte. */
START_TEST(test_same_series_ids)
{
    static const struct {
        const char *body;
        bool intact, same;
        const char *park, *ind;
    } rows[] = {
        { "O\t1\tp\ti\t2024-01\t1\tA\ts\t", true, false, "p", "i" },
        { "O\t2\tp\ti\t2024-02\t1\tA\ts\t", true, true, "p", "i" },
        { "O\t3\tp\ti\t2024-03\t1\tX\ts\t", false, false, NULL, NULL }, /* bad status */
        { "T\t4\tp\ti\t2024\t10\ts", true, true, "p", "i" },
        { "E\tbetween", true, false, NULL, NULL },
        { "O\t5\tp\ti\t2024-04\t1\tA\ts\t", true, true, "p", "i" },
        { "O\t6\tp\tii\t2024-04\t1\tA\ts\t", true, false, "p", "ii" },   /* longer id */
        { "O\t7\tp\tij\t2024-04\t1\tA\ts\t", true, false, "p", "ij" },   /* same length */
        { "O\t8\tP\tij\t2024-04\t1\tA\ts\t", false, false, NULL, NULL }, /* checked: bad */
        { "O\t9\tp\tij\t2024-05\t1\tA\ts\t", true, true, "p", "ij" },
        { "O\t10\tq\tij\t2024-05\t1\tA\ts\t", true, false, "q", "ij" },
        { "O\t11\tq\tij\t2024-06\t1\tA\ts\t", true, true, "q", "ij" },
    };
    enum { N = sizeof rows / sizeof rows[0] };
    char file[8192];
    snprintf(file, sizeof file, "%s", HEADER);
    for (size_t k = 0; k < N; k++)
        strcat(file, line(rows[k].body));
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file(file);
    journal *j = open_ok();
    collected c = replay_all(j);
    size_t at = 0;
    for (size_t k = 0; k < N; k++) {
        if (!rows[k].intact)
            continue;
        ck_assert_uint_lt(at, c.n);
        const journal_record *r = &c.recs[at++];
        ck_assert_msg(r->same_series == rows[k].same, "row %zu: same_series %d", k, r->same_series);
        if (r->type == JREC_OBS) {
            ck_assert_str_eq(r->obs.park, rows[k].park);
            ck_assert_str_eq(r->obs.indicator, rows[k].ind);
        } else if (r->type == JREC_TARGET) {
            ck_assert_str_eq(r->target.park, rows[k].park);
            ck_assert_str_eq(r->target.indicator, rows[k].ind);
        }
    }
    ck_assert_uint_eq(c.n, at);
    ck_assert_uint_eq(journal_count(j), at);
    free(c.recs);
    journal_close(j);
}
END_TEST

/* A journal of more than 4 MiB is replayed on two threads (journal.c, the
 * replay pipe: batches handed over, each side woken only when several are
 * ready): every record in order, the open's count, and a callback's stop
 * in the middle ends the replay with its value. */
START_TEST(test_replay_piped)
{
    enum { N = 70000 };
    append_figures(N, 120, 0.25); /* series of 120 figures */
    ck_assert_int_gt(file_size(), 5 << 20);

    collected c = { 0 };
    journal *j = NULL;
    ck_assert_int_eq(journal_open_replay(jdir, collect, NULL, &c, &j), 0);
    ck_assert_uint_eq(journal_count(j), N);
    ck_assert_uint_eq(c.n, N);
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(c.recs[k].obs.received_at, k);
        ck_assert(c.recs[k].obs.value == k * 0.25);
        ck_assert_int_eq(c.recs[k].same_series, k % 120 != 0);
    }
    free(c.recs);
    c = (collected){ .stop_after = 55555 };
    ck_assert_int_eq(journal_replay(j, collect, &c), 7);
    ck_assert_uint_eq(c.n, 55555);
    ck_assert_int_eq(c.recs[55554].obs.received_at, 55554);
    free(c.recs);
    journal_close(j);
    /* the open's replay stopped by its callback fails the open */
    c = (collected){ .stop_after = 12345 };
    j = NULL;
    ck_assert_int_eq(journal_open_replay(jdir, collect, NULL, &c, &j), -ECANCELED);
    ck_assert_ptr_null(j);
    ck_assert_uint_eq(c.n, 12345);
    free(c.recs);
}
END_TEST

START_TEST(test_replay_stops_early)
{
    journal_record r[5];
    for (int i = 0; i < 5; i++)
        r[i] = jrec_event("x");
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 5), 0);
    collected c = { .stop_after = 2 };
    ck_assert_int_eq(journal_replay(j, collect, &c), 7);
    ck_assert_uint_eq(c.n, 2);
    free(c.recs);
    journal_close(j);
}
END_TEST

START_TEST(test_reopen_keeps_count)
{
    journal_record r = jrec_obs("p", "i", 2024, 1, 1, 'A', "s", "", 1);
    journal *j = open_ok();
    ck_assert_uint_eq(journal_count(j), 0);
    ck_assert_int_eq(journal_append(j, NULL, 0), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(journal_append(j, &r, 1), 0);
    journal_close(j);
    for (int round = 0; round < 2; round++) {
        j = open_ok();
        ck_assert_uint_eq(journal_count(j), 3 + round);
        collected c = replay_all(j);
        ck_assert_uint_eq(c.n, 3 + round);
        free(c.recs);
        ck_assert_int_eq(journal_append(j, &r, 1), 0);
        ck_assert_uint_eq(journal_count(j), 4 + round);
        journal_close(j);
    }
}
END_TEST

START_TEST(test_second_open_locked_out)
{
    journal *j = open_ok(), *k = NULL;
    ck_assert_int_eq(journal_open(jdir, &k), -EWOULDBLOCK);
    ck_assert_ptr_null(k);
    journal_close(j);
    k = open_ok();
    journal_close(k);
}
END_TEST

/* ---- torn tails ------------------------------------------------------------------- */

/* How a crash can leave the end of the file. */
static const struct {
    const char *name;
    int cut;            /* bytes taken off the end of the last good line */
    const char *append; /* bytes added after it (NULL: none) */
    size_t big;         /* or this many bytes of 'x' without a newline */
    int survivors;      /* of the three records */
} torn_cases[] = {
    { "newline missing", 1, NULL, 0, 2 },
    { "checksum cut", 5, NULL, 0, 2 },
    { "only the type left", 0, "O", 0, 3 },
    { "half a line", 12, NULL, 0, 2 },
    { "garbage without newline", 0, "garbage\tgarbage", 0, 3 },
    { "complete line, bad checksum", 0, "E\tpayload\t00000000\n", 0, 3 },
    { "zeros", 0, "\0\0\0\0", 0, 3 },
    { "a huge tail without newline", 0, NULL, 3u << 20, 3 },
};

START_TEST(test_torn_tail)
{
    journal_record r[3] = { jrec_obs("p", "i", 2024, 1, 1, 'A', "s", "", 1),
                            jrec_target("p", "i", 2024, 100, "t", 2),
                            jrec_event("third") };
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 3), 0);
    journal_close(j);
    off_t good = file_size();

    if (torn_cases[_i].cut > 0)
        ck_assert_int_eq(truncate(jpath, good - torn_cases[_i].cut), 0);
    if (torn_cases[_i].append) {
        const char *a = torn_cases[_i].append;
        size_t n = strcmp(torn_cases[_i].name, "zeros") == 0 ? 4 : strlen(a);
        write_file(jpath, a, n, O_APPEND);
    }
    if (torn_cases[_i].big) {
        char *x = malloc(torn_cases[_i].big);
        ck_assert_ptr_nonnull(x);
        memset(x, 'x', torn_cases[_i].big);
        write_file(jpath, x, torn_cases[_i].big, O_APPEND);
        free(x);
    }

    j = open_ok();
    int n = torn_cases[_i].survivors;
    /* a torn write is cut off; a complete line is damage, kept aside (below) */
    ck_assert_int_eq(damaged_files(NULL, NULL),
                     strcmp(torn_cases[_i].name, "complete line, bad checksum") == 0);
    ck_assert_msg(journal_count(j) == (uint64_t)n, "%s: count %llu", torn_cases[_i].name,
                  (unsigned long long)journal_count(j));
    off_t now = file_size();
    if (n == 3)
        ck_assert_int_eq(now, good);
    else
        ck_assert_int_lt(now, good);
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, (size_t)n);
    for (int i = 0; i < n; i++)
        assert_same(&r[i], &c.recs[i]);
    free(c.recs);

    /* the next append lands on a clean line boundary */
    journal_record more = jrec_event("after the crash");
    ck_assert_int_eq(journal_append(j, &more, 1), 0);
    journal_close(j);
    j = open_ok();
    ck_assert_uint_eq(journal_count(j), (uint64_t)n + 1);
    c = replay_all(j);
    ck_assert_uint_eq(c.n, (size_t)n + 1);
    assert_same(&more, &c.recs[n]);
    free(c.recs);
    journal_close(j);
}
END_TEST

/* ---- corrupt lines in the middle ------------------------------------------------------ */

static const struct {
    const char *name;
    const char *body; /* checksummed correctly unless raw */
    bool raw;         /* written as is (with its own ending) */
} corrupt_cases[] = {
    { "checksum mismatch", "E\tone byte flipped\t00000001\n", true },
    { "no checksum", "E\tno checksum\n", true },
    { "empty line", "\n", true },
    { "upper-case checksum", "E\tx\tDEADBEEF\n", true },
    { "bad status", "O\t1\tp\ti\t2024-01\t1\tX\ts\t", false },
    { "month 13", "O\t1\tp\ti\t2024-13\t1\tA\ts\t", false },
    { "period not canonical", "O\t1\tp\ti\t2024-1\t1\tA\ts\t", false },
    { "year out of range", "O\t1\tp\ti\t2200-01\t1\tA\ts\t", false },
    { "value inf", "O\t1\tp\ti\t2024-01\tinf\tA\ts\t", false },
    { "value nan", "O\t1\tp\ti\t2024-01\tnan\tA\ts\t", false },
    { "value overflows", "O\t1\tp\ti\t2024-01\t1e999\tA\ts\t", false },
    { "value with space", "O\t1\tp\ti\t2024-01\t 1\tA\ts\t", false },
    { "value empty", "O\t1\tp\ti\t2024-01\t\tA\ts\t", false },
    { "value hex", "O\t1\tp\ti\t2024-01\t0x10\tA\ts\t", false },
    { "upper-case id", "O\t1\tPark\ti\t2024-01\t1\tA\ts\t", false },
    { "empty id", "O\t1\t\ti\t2024-01\t1\tA\ts\t", false },
    { "id too long",
      "O\t1\taaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\ti\t2024-01\t1\tA\ts\t",
      false },
    { "received_at not a number", "O\tnow\tp\ti\t2024-01\t1\tA\ts\t", false },
    { "received_at overflows", "O\t99999999999999999999\tp\ti\t2024-01\t1\tA\ts\t", false },
    { "unknown escape", "O\t1\tp\ti\t2024-01\t1\tA\ts\\x\t", false },
    { "trailing backslash", "O\t1\tp\ti\t2024-01\t1\tA\ts\t\\", false },
    { "source too long",
      "O\t1\tp\ti\t2024-01\t1\tA\t0123456789012345678901234567890123456789012345678901234567890123\t",
      false },
    { "too few fields", "O\t1\tp\ti\t2024-01\t1\tA\ts", false },
    { "too many fields", "O\t1\tp\ti\t2024-01\t1\tA\ts\tn\textra", false },
    { "yoy empty", "O\t1\tp\ti\t2024-01\t1\tA\ts\tn\tyoy=", false },
    { "yoy not a number", "O\t1\tp\ti\t2024-01\t1\tA\ts\tn\tyoy=abc", false },
    { "yoy nan", "O\t1\tp\ti\t2024-01\t1\tA\ts\tn\tyoy=nan", false },
    { "yoy without its key", "O\t1\tp\ti\t2024-01\t1\tA\ts\tn\t12.5", false },
    { "yoy and one more", "O\t1\tp\ti\t2024-01\t1\tA\ts\tn\tyoy=1\tx", false },
    { "target year bad", "T\t1\tp\ti\t24\t100\ts", false },
    { "target extra field", "T\t1\tp\ti\t2024\t100\ts\tx", false },
    { "event extra field", "E\ta\tb", false },
    { "unknown type", "X\tsomething", false },
    { "long type", "OO\t1\tp\ti\t2024-01\t1\tA\ts\t", false },
    /* after an intact line of series p/i: its ids are taken over, nothing else */
    { "same series, period with a letter", "O\t1\tp\ti\t2024-0a\t1\tA\ts\t", false },
    { "same series, period without its dash", "O\t1\tp\ti\t2024001\t1\tA\ts\t", false },
    { "same series, year 1979", "O\t1\tp\ti\t1979-12\t1\tA\ts\t", false },
    { "same series, month 00", "O\t1\tp\ti\t2024-00\t1\tA\ts\t", false },
    { "same series, eleven fields", "O\t1\tp\ti\t2024-01\t1\tA\ts\tn\tyoy=1\t\t", false },
    { "checksum with a non-hex digit", "E\tx\t0000000g\n", true },
    { "checksum one digit short", "E\tx\t0000000\n", true },
};

START_TEST(test_corrupt_middle_line)
{
    char file[8192];
    const char *good1 = line("O\t1\tp\ti\t2024-01\t1.5\tA\tfirst\t");
    snprintf(file, sizeof file, "%s%s", HEADER, good1);
    strcat(file, corrupt_cases[_i].raw ? corrupt_cases[_i].body : line(corrupt_cases[_i].body));
    strcat(file, line("T\t2\tp\ti\t2024\t10\tsecond"));
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file(file);

    journal *j = open_ok();
    ck_assert_msg(journal_count(j) == 2, "%s: count %llu", corrupt_cases[_i].name,
                  (unsigned long long)journal_count(j));
    ck_assert_int_eq(file_size(), (off_t)strlen(file)); /* nothing cut */
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_str_eq(c.recs[0].obs.source, "first");
    ck_assert(c.recs[0].obs.value == 1.5);
    ck_assert_int_eq(c.recs[1].type, JREC_TARGET);
    ck_assert_str_eq(c.recs[1].target.source, "second");
    free(c.recs);
    journal_record more = jrec_event("third");
    ck_assert_int_eq(journal_append(j, &more, 1), 0);
    ck_assert_uint_eq(journal_count(j), 3);
    journal_close(j);

    j = open_ok();
    ck_assert_uint_eq(journal_count(j), 3);
    c = replay_all(j);
    ck_assert_uint_eq(c.n, 3);
    ck_assert_str_eq(c.recs[2].event, "third");
    free(c.recs);
    journal_close(j);
}
END_TEST

/* A last line with a good checksum but bad fields was written whole: kept, skipped. */
START_TEST(test_corrupt_last_line_with_good_checksum_is_kept)
{
    char file[1024];
    snprintf(file, sizeof file, "%s%s%s", HEADER, line("E\tfine"),
             line("O\t1\tp\ti\t2024-13\t1\tA\ts\t"));
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file(file);
    journal *j = open_ok();
    ck_assert_uint_eq(journal_count(j), 1);
    ck_assert_int_eq(file_size(), (off_t)strlen(file));
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 1);
    free(c.recs);
    journal_close(j);
}
END_TEST

/* A complete last line with a bad checksum is not what a crash leaves (it
 * ends in a newline): its bytes are kept in journal.log.damaged-<time>
 * before the journal is cut back to the last intact line. */
START_TEST(test_bad_checksum_last_line_kept_aside)
{
    journal_record r[2] = { jrec_event("first"), jrec_event("second") };
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 2), 0);
    journal_close(j);
    off_t good = file_size();
    const char *bad = "O\t1\tp\ti\t2024-01\t1\tA\ts\t\t0badc0de\n";
    add_file(bad);

    j = open_ok();
    ck_assert_uint_eq(journal_count(j), 2);
    ck_assert_int_eq(file_size(), good);
    char *kept;
    size_t len;
    ck_assert_int_eq(damaged_files(&kept, &len), 1);
    ck_assert_ptr_nonnull(kept);
    ck_assert_uint_eq(len, strlen(bad));
    ck_assert(memcmp(kept, bad, len) == 0);
    free(kept);
    /* the next append goes where the damaged line was; a reopen changes nothing */
    journal_record more = jrec_event("third");
    ck_assert_int_eq(journal_append(j, &more, 1), 0);
    journal_close(j);
    j = open_ok();
    ck_assert_uint_eq(journal_count(j), 3);
    ck_assert_int_eq(damaged_files(NULL, NULL), 1);
    journal_close(j);
}
END_TEST

START_TEST(test_corrupt_line_is_logged_with_number)
{
    char file[1024];
    snprintf(file, sizeof file, "%s%s%s%s", HEADER, line("E\tone"),
             "E\tbroken\t12345678\n", line("E\tthree"));
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file(file);
    journal *j = open_ok();

    char logpath[4200];
    snprintf(logpath, sizeof logpath, "%s/stderr.txt", tmpdir);
    int saved = dup(2);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_ge(dup2(fd, 2), 0);
    log_set_level(LOG_LVL_WARN);
    collected c = { 0 };
    int rc = journal_replay(j, collect, &c);
    log_set_level(0);
    dup2(saved, 2);
    close(saved);
    close(fd);
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(c.n, 2);
    free(c.recs);
    journal_close(j);

    char *log = test_read_file(logpath, NULL);
    ck_assert_msg(strstr(log, "journal.log line 3: checksum mismatch") != NULL, "log: %s", log);
    free(log);
}
END_TEST

START_TEST(test_over_long_middle_line)
{
    size_t big = 3u << 20;
    char *x = malloc(big + 1);
    ck_assert_ptr_nonnull(x);
    memset(x, 'x', big);
    x[big - 1] = '\n';
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file(HEADER);
    add_file(line("E\tbefore"));
    write_file(jpath, x, big, O_APPEND);
    add_file(line("E\tafter"));
    free(x);
    journal *j = open_ok();
    ck_assert_uint_eq(journal_count(j), 2);
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 2);
    ck_assert_str_eq(c.recs[0].event, "before");
    ck_assert_str_eq(c.recs[1].event, "after");
    free(c.recs);
    journal_close(j);
}
END_TEST

/* ---- header and directory ------------------------------------------------------------ */

static const struct {
    const char *content;
    int rc;      /* of journal_open */
} header_cases[] = {
    { "", 0 },                                /* empty file: initialised */
    { "#parkpulse-jour", 0 },                 /* torn while being created */
    { "#parkpulse-journal 2\nE\tx\t0\n", -EINVAL },
    { "#parkpulse-journal 1", 0 },            /* header without newline: torn, redone */
    { "time,park,value\n", -EINVAL },         /* not a journal */
    { "#parkpulse-journal 10\n", -EINVAL },
};

START_TEST(test_header)
{
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file(header_cases[_i].content);
    journal *j = NULL;
    ck_assert_int_eq(journal_open(jdir, &j), header_cases[_i].rc);
    if (header_cases[_i].rc == 0) {
        ck_assert_uint_eq(journal_count(j), 0);
        journal_close(j);
        char *got = test_read_file(jpath, NULL);
        ck_assert_str_eq(got, HEADER);
        free(got);
    } else {
        ck_assert_ptr_null(j);
        char *got = test_read_file(jpath, NULL);
        ck_assert_str_eq(got, header_cases[_i].content); /* left alone */
        free(got);
    }
}
END_TEST

START_TEST(test_dir_is_a_file)
{
    write_file(jdir, "x", 1, 0);
    journal *j = NULL;
    ck_assert_int_eq(journal_open(jdir, &j), -ENOTDIR);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(journal_open(NULL, &j), -EINVAL);
}
END_TEST

/* ---- refused appends ------------------------------------------------------------------- */

START_TEST(test_invalid_records_refused)
{
    journal_record good = jrec_obs("p", "i", 2024, 1, 1, 'A', "s", "", 1);
    journal_record bad[8];
    bad[0] = jrec_obs("P", "i", 2024, 1, 1, 'A', "s", "", 1);
    bad[1] = jrec_obs("p", "", 2024, 1, 1, 'A', "s", "", 1);
    bad[2] = jrec_obs("p", "i", 2024, 1, NAN, 'A', "s", "", 1);
    bad[3] = jrec_obs("p", "i", 2024, 1, 1, 'X', "s", "", 1);
    bad[4] = jrec_obs("p", "i", 2300, 1, 1, 'A', "s", "", 1);
    bad[5] = jrec_target("p", "i", 2024, INFINITY, "s", 1);
    bad[6] = jrec_event("");
    memset(bad[6].event, 'x', sizeof bad[6].event); /* no NUL */
    bad[7] = good;
    bad[7].type = (journal_type)'Z';

    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, &good, 1), 0);
    off_t before = file_size();
    for (size_t i = 0; i < 8; i++) {
        journal_record batch[2] = { good, bad[i] };
        ck_assert_msg(journal_append(j, batch, 2) == -EINVAL, "bad record %zu accepted", i);
        ck_assert_int_eq(file_size(), before);
        ck_assert_uint_eq(journal_count(j), 1);
    }
    ck_assert_int_eq(journal_append(NULL, &good, 1), -EINVAL);
    ck_assert_int_eq(journal_append(j, NULL, 1), -EINVAL);
    journal_close(j);
}
END_TEST

/* A file-size limit makes the write fail part-way (EFBIG), as a full disk would. */
START_TEST(test_append_fails_cleanly)
{
    journal_record small = jrec_event("before the limit");
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, &small, 1), 0);
    off_t before = file_size();

    enum { N = 50 };
    journal_record *big = calloc(N, sizeof *big);
    ck_assert_ptr_nonnull(big);
    for (int i = 0; i < N; i++) {
        big[i] = jrec_event("");
        memset(big[i].event, 'y', 1000);
    }
    struct rlimit old, lim;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = (rlim_t)before + 10000; /* about ten of the fifty records fit */
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);

    int rc = journal_append(j, big, N);

    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldsig);
    ck_assert_int_eq(rc, -EFBIG);
    ck_assert_int_eq(file_size(), before); /* the partial batch is cut off */
    ck_assert_uint_eq(journal_count(j), 1);
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 1);
    free(c.recs);

    /* works again once there is room, and everything survives a reopen */
    ck_assert_int_eq(journal_append(j, big, N), 0);
    ck_assert_uint_eq(journal_count(j), N + 1);
    journal_close(j);
    j = open_ok();
    ck_assert_uint_eq(journal_count(j), N + 1);
    c = replay_all(j);
    ck_assert_uint_eq(c.n, N + 1);
    ck_assert_str_eq(c.recs[0].event, "before the limit");
    ck_assert_uint_eq(strlen(c.recs[N].event), 1000);
    free(c.recs);
    journal_close(j);
    free(big);
}
END_TEST

/* ---- deliveries (issue 10, defect 2) ---------------------------------------------- */

START_TEST(test_hash_is_fnv1a_64)
{
    ck_assert(journal_hash("", 0) == 14695981039346656037ULL);
    ck_assert(journal_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
    ck_assert(journal_hash(D_CONTENT, strlen(D_CONTENT)) == 0xf19391aa56307856ULL);
}
END_TEST

/* A D line as documented in journal.c, written with the figures in one batch. */
START_TEST(test_delivery_format_and_batch)
{
    pp_obs o = jrec_obs("xiangtan-etdz", "fai", 2024, 10, 192.2, 'A', "spool:fai-2024-10.csv", "",
                      1732060800).obs;
    journal_delivery d[2] = { mk_delivery("spool/fai-2024-10.csv", D_CONTENT, 1732060800),
                              mk_delivery("spool/a\tb.csv", D_CONTENT, 1732060800) };
    journal *j = open_ok();
    ck_assert(!journal_delivery_known(j, d[0].name, d[0].size, d[0].hash, NULL));
    ck_assert_int_eq(journal_append_batch(j, &o, 1, NULL, 0, d, 2), 0);
    ck_assert_uint_eq(journal_count(j), 3);
    int64_t at = 0;
    ck_assert(journal_delivery_known(j, d[0].name, d[0].size, d[0].hash, &at));
    ck_assert_int_eq(at, 1732060800);
    journal_close(j);

    const char *want =
        "#parkpulse-journal 1\n"
        "O\t1732060800\txiangtan-etdz\tfai\t2024-10\t192.2\tA\tspool:fai-2024-10.csv\t\taa79d1f8\n"
        "D\t1732060800\tf19391aa56307856\t60\tspool/fai-2024-10.csv\t971393e3\n"
        "D\t1732060800\tf19391aa56307856\t60\tspool/a\\tb.csv\t55b92c9d\n";
    char *got = test_read_file(jpath, NULL);
    ck_assert_str_eq(got, want);
    free(got);
}
END_TEST

/* The set of known deliveries is rebuilt when the journal is opened again;
 * name, size and hash each count. Replay hands the D records over. */
START_TEST(test_delivery_known_after_reopen)
{
    journal_record r[2];
    memset(r, 0, sizeof r);
    r[0] = jrec_event("before");
    r[1].type = JREC_DELIVERY;
    r[1].delivery = mk_delivery("spool/x.csv", D_CONTENT, 1700000000);
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 2), 0);
    journal_close(j);

    j = open_ok();
    const journal_delivery *d = &r[1].delivery;
    int64_t at = 0;
    ck_assert(journal_delivery_known(j, "spool/x.csv", d->size, d->hash, &at));
    ck_assert_int_eq(at, 1700000000);
    ck_assert(!journal_delivery_known(j, "spool/y.csv", d->size, d->hash, NULL));
    ck_assert(!journal_delivery_known(j, "spool/x.csv", d->size + 1, d->hash, NULL));
    ck_assert(!journal_delivery_known(j, "spool/x.csv", d->size, d->hash ^ 1, NULL));
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 2);
    assert_same(&r[0], &c.recs[0]);
    assert_same(&r[1], &c.recs[1]);
    free(c.recs);

    /* many: the set grows */
    journal_delivery many[3000];
    for (int i = 0; i < 3000; i++) {
        char name[32];
        snprintf(name, sizeof name, "spool/f%d.csv", i);
        many[i] = mk_delivery(name, name, i);
    }
    ck_assert_int_eq(journal_append_batch(j, NULL, 0, NULL, 0, many, 3000), 0);
    journal_close(j);
    j = open_ok();
    for (int i = 0; i < 3000; i++)
        ck_assert(journal_delivery_known(j, many[i].name, many[i].size, many[i].hash, &at) &&
                  at == i);
    journal_close(j);
}
END_TEST

/* A refused batch (a bad figure, or a delivery without a name) is not
 * remembered; an old journal without D lines is read as before. */
START_TEST(test_delivery_refused_not_known)
{
    pp_obs bad = jrec_obs("P", "i", 2024, 1, 1, 'A', "s", "", 1).obs;
    journal_delivery d = mk_delivery("spool/x.csv", D_CONTENT, 1);
    journal_delivery noname = mk_delivery("", D_CONTENT, 1);
    journal *j = open_ok();
    ck_assert_int_eq(journal_append_batch(j, &bad, 1, NULL, 0, &d, 1), -EINVAL);
    ck_assert_int_eq(journal_append_batch(j, NULL, 0, NULL, 0, &noname, 1), -EINVAL);
    ck_assert(!journal_delivery_known(j, d.name, d.size, d.hash, NULL));
    ck_assert_uint_eq(journal_count(j), 0);
    ck_assert_int_eq(file_size(), (off_t)strlen(HEADER));
    journal_close(j);
}
END_TEST

/* ---- damage found before opening (issue 10, defect 6) ------------------------------ */

static void make_rrd_file(const char *park, const char *name)
{
    char p[2300];
    snprintf(p, sizeof p, "%s/%s", rrddir, park);
    mkdir(rrddir, 0755);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/%s/%s", rrddir, park, name);
    write_file(p, "RRD", 3, O_TRUNC);
}

static int check(char *why, size_t len) { return journal_check(jdir, rrddir, why, len); }

START_TEST(test_check_new_state_dir)
{
    char why[1024] = "";
    /* nothing at all, an empty rrd/, an empty or half-created journal: new */
    ck_assert_int_eq(check(why, sizeof why), 0);
    ck_assert_int_eq(mkdir(rrddir, 0755), 0);
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    ck_assert_int_eq(check(why, sizeof why), 0);
    put_file("");
    ck_assert_int_eq(check(why, sizeof why), 0);
    put_file("#parkpulse");
    ck_assert_int_eq(check(why, sizeof why), 0);
    /* a park directory without RRD files, a marker of an empty journal */
    make_rrd_file("pa", "notes.txt");
    char marker[2300];
    snprintf(marker, sizeof marker, "%s/.clean", rrddir);
    write_file(marker, "0\n", 2, O_TRUNC);
    ck_assert_int_eq(check(why, sizeof why), 0);
    /* an intact journal, whatever the RRD files */
    make_rrd_file("pa", "tax_revenue.rrd");
    journal *j = open_ok();
    journal_record r = jrec_event("x");
    ck_assert_int_eq(journal_append(j, &r, 1), 0);
    journal_close(j);
    ck_assert_int_eq(check(why, sizeof why), 0);
}
END_TEST

static const struct {
    const char *name;
    const char *content; /* NULL: no journal.log */
    bool rrd_file, marker;
    const char *says;    /* in the message */
} damage_cases[] = {
    { "cut to 0, RRD files", "", true, false, "is empty" },
    { "cut to 0, marker", "", false, true, "is empty" },
    { "cut inside the header", "#parkpulse", true, false, "cut inside its header" },
    { "header only", HEADER, true, false, "holds no record" },
    { "missing", NULL, true, true, "is missing" },
    { "not a journal", "time,park,value\nE\tx\t00000000\n", false, false, "not a parkpulse journal" },
};

START_TEST(test_check_damage)
{
    char why[1024] = "";
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    if (damage_cases[_i].content)
        put_file(damage_cases[_i].content);
    ck_assert_int_eq(mkdir(rrddir, 0755), 0);
    if (damage_cases[_i].rrd_file)
        make_rrd_file("xiangtan-etdz", "fiscal_revenue.rrd");
    if (damage_cases[_i].marker) {
        char marker[2300];
        snprintf(marker, sizeof marker, "%s/.clean", rrddir);
        write_file(marker, "60\n", 3, O_TRUNC);
    }
    ck_assert_msg(check(why, sizeof why) == 1, "%s: not found damaged", damage_cases[_i].name);
    ck_assert_msg(strstr(why, damage_cases[_i].says) != NULL, "%s: %s", damage_cases[_i].name,
                  why);
    ck_assert_msg(strstr(why, "journal.log") != NULL, "%s", why);
    ck_assert_msg(strstr(why, "parkpulsed --recover") != NULL, "%s", why);
    /* the check changes nothing */
    if (damage_cases[_i].content) {
        char *got = test_read_file(jpath, NULL);
        ck_assert_str_eq(got, damage_cases[_i].content);
        free(got);
    }
}
END_TEST

/* --recover: the damaged file moves aside, intact records are saved into a
 * fresh journal, the RRD files move aside; then the check passes. */
START_TEST(test_recover)
{
    char why[1024] = "";
    journal_record r[2] = { jrec_obs("p", "i", 2024, 1, 1, 'A', "s", "", 1), jrec_event("kept") };
    journal *j = open_ok();
    ck_assert_int_eq(journal_append(j, r, 2), 0);
    journal_close(j);
    /* the header overwritten: journal_open refuses it, the lines are fine */
    int fd = open(jpath, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "XXXX", 4, 0), 4);
    close(fd);
    char *damaged = test_read_file(jpath, NULL);
    make_rrd_file("p", "i.rrd");
    ck_assert_int_eq(check(why, sizeof why), 1);

    ck_assert_int_eq(journal_recover(jdir, rrddir), 0);
    ck_assert_int_eq(check(why, sizeof why), 0);
    char *kept;
    size_t len;
    ck_assert_int_eq(damaged_files(&kept, &len), 1);
    ck_assert_str_eq(kept, damaged);
    free(kept);
    free(damaged);
    j = open_ok();
    ck_assert_uint_eq(journal_count(j), 2);
    collected c = replay_all(j);
    ck_assert_uint_eq(c.n, 2);
    assert_same(&r[0], &c.recs[0]);
    assert_same(&r[1], &c.recs[1]);
    free(c.recs);
    journal_close(j);
    /* the RRD files are kept aside, rrd/ is empty */
    char p[2400];
    struct stat st;
    snprintf(p, sizeof p, "%s/p/i.rrd", rrddir);
    ck_assert_int_ne(stat(p, &st), 0);
    ck_assert_int_eq(stat(rrddir, &st), 0);
    DIR *d = opendir(tmpdir);
    int n_aside = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strncmp(e->d_name, "rrd.damaged-", 12) == 0) {
            snprintf(p, sizeof p, "%s/%s/p/i.rrd", tmpdir, e->d_name);
            ck_assert_int_eq(stat(p, &st), 0);
            n_aside++;
        }
    closedir(d);
    ck_assert_int_eq(n_aside, 1);
    /* nothing damaged: nothing to do */
    ck_assert_int_eq(journal_recover(jdir, rrddir), 0);
    ck_assert_int_eq(damaged_files(NULL, NULL), 1);
}
END_TEST

/* A journal cut to 0 bytes: kept aside as it is, a fresh one started. */
START_TEST(test_recover_empty)
{
    char why[1024] = "";
    ck_assert_int_eq(mkdir(jdir, 0750), 0);
    put_file("");
    make_rrd_file("p", "i.rrd");
    ck_assert_int_eq(check(why, sizeof why), 1);
    ck_assert_int_eq(journal_recover(jdir, rrddir), 0);
    ck_assert_int_eq(check(why, sizeof why), 0);
    char *kept;
    size_t len = 99;
    ck_assert_int_eq(damaged_files(&kept, &len), 1);
    ck_assert_uint_eq(len, 0);
    free(kept);
    char *got = test_read_file(jpath, NULL);
    ck_assert_str_eq(got, HEADER);
    free(got);
}
END_TEST

static Suite *journal_suite(void)
{
    Suite *s = suite_create("journal");
    TCase *tc = check_tcase(s, "format", setup, teardown, 0);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_test(tc, test_format_exact);
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_yoy_field);
    tcase_add_test(tc, test_append_figures_and_events);
    tcase_add_test(tc, test_many_records_cross_chunks);
    tcase_add_loop_test(tc, test_fields_exact, 0, sizeof field_cases / sizeof field_cases[0]);
    tcase_add_test(tc, test_same_series_ids);
    tcase_add_test(tc, test_replay_stops_early);
    tcase_add_test(tc, test_reopen_keeps_count);
    tcase_add_test(tc, test_second_open_locked_out);
    tcase_add_test(tc, test_hash_is_fnv1a_64);
    tcase_add_test(tc, test_delivery_format_and_batch);
    tcase_add_test(tc, test_delivery_known_after_reopen);
    tcase_add_test(tc, test_delivery_refused_not_known);

    tc = check_tcase(s, "replay on two threads", setup, teardown, 60); /* MiBs under ASan */
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_test(tc, test_replay_piped);

    tc = check_tcase(s, "recovery", setup, teardown, 30);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_loop_test(tc, test_torn_tail, 0, sizeof torn_cases / sizeof torn_cases[0]);
    tcase_add_loop_test(tc, test_corrupt_middle_line, 0,
                        sizeof corrupt_cases / sizeof corrupt_cases[0]);
    tcase_add_test(tc, test_corrupt_last_line_with_good_checksum_is_kept);
    tcase_add_test(tc, test_bad_checksum_last_line_kept_aside);
    tcase_add_test(tc, test_corrupt_line_is_logged_with_number);
    tcase_add_test(tc, test_over_long_middle_line);

    tc = check_tcase(s, "errors", setup, teardown, 0);
    tcase_add_unchecked_fixture(tc, suite_setup, suite_teardown);
    tcase_add_loop_test(tc, test_header, 0, sizeof header_cases / sizeof header_cases[0]);
    tcase_add_test(tc, test_dir_is_a_file);
    tcase_add_test(tc, test_invalid_records_refused);
    tcase_add_test(tc, test_append_fails_cleanly);
    tcase_add_test(tc, test_check_new_state_dir);
    tcase_add_loop_test(tc, test_check_damage, 0, sizeof damage_cases / sizeof damage_cases[0]);
    tcase_add_test(tc, test_recover);
    tcase_add_test(tc, test_recover_empty);
    return s;
}

CHECK_MAIN(journal_suite)
