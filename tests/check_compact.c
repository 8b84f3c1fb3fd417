/*
 * check_compact.c — Check suite for journal compaction (journal_compact in
 * daemon/journal.c, ingest_open_replay/ingest_compact in daemon/ingest.c).
 *
 * Each case writes a journal of known records into a fresh mkdtemp()
 * directory, replays it the way start-up does (ingest_open_replay: one pass,
 * noting what is superseded), compacts it, and replays the compacted file
 * again: the state must be the same — every series' vintages (value, time,
 * status, source, yoy, a retraction's reason), every target, the answers of
 * journal_delivery_known, and the E lines the alert engine and the silences
 * replay, in their order — and nothing may be superseded any more. A crash
 * at each step of compaction (a forked child that _exit()s in the test hook,
 * as a kill -9 would stop it) must leave a whole journal: the old one or the
 * new one, with the same state.
 */
#include "ingest.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "alert.h"
#include "db.h"
#include "journal.h"
#include "json.h"
#include "silence.h"

#include "test_app.h"
#include "test_jrec.h"

#include "check_main.h"
#include "tmpdir.h"

static char dir[PATH_MAX];

static void setup(void) { tmpdir_make(dir, sizeof dir, "check_compact"); }
static void teardown(void) { tmpdir_remove(dir); }

/* ---- records ---------------------------------------------------------------- */

#define T0 1700000000

static journal_record obs(const char *park, const char *ind, int y, int m, double v, char st,
                          const char *src, int64_t at)
{
    return jrec_obs(park, ind, y, m, v, st, src, st == 'W' ? "录入错误" : "", at);
}

static journal_record obs_yoy(journal_record r, double yoy)
{
    r.obs.has_yoy = true;
    r.obs.yoy = yoy;
    return r;
}

static journal_record target(const char *park, const char *ind, int year, double v, int64_t at)
{
    char src[32];
    snprintf(src, sizeof src, "targets-%d.csv", year);
    return jrec_target(park, ind, year, v, src, at);
}

static journal_record delivery(const char *name, uint64_t size, uint64_t hash, int64_t at)
{
    journal_record r;
    memset(&r, 0, sizeof r);
    r.type = JREC_DELIVERY;
    r.delivery.received_at = at;
    r.delivery.size = size;
    r.delivery.hash = hash;
    snprintf(r.delivery.name, sizeof r.delivery.name, "%s", name);
    return r;
}

#define END { .type = 0 }

/* ---- the state replay rebuilds ------------------------------------------------ */

typedef struct state {
    pp_app app;
    ingest_superseded sup;
} state;

static void state_open(state *st)
{
    char jdir[PATH_MAX + 16];
    memset(st, 0, sizeof *st);
    ck_assert_int_eq(app_locks_init(&st->app), 0);
    st->app.db = db_new();
    st->app.silences = silence_new();
    ck_assert_ptr_nonnull(st->app.db);
    ck_assert_ptr_nonnull(st->app.silences);
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    ck_assert_int_eq(ingest_open_replay(&st->app, jdir, &st->sup), 0);
}

static void state_close(state *st)
{
    journal_close(st->app.journal);
    db_free(st->app.db);
    silence_free(st->app.silences);
    ingest_superseded_free(&st->sup);
    pthread_mutex_destroy(&st->app.ingest_lock);
    pthread_rwlock_destroy(&st->app.cfg_lock);
}

static int collect_events(const journal_record *r, void *ud)
{
    if (r->type == JREC_EVENT)
        fprintf(ud, "E %s\n", r->event);
    return 0;
}

/* Everything replay rebuilt, as text: the db, the deliveries known (of the
 * identities in ids), and the E lines in their order. */
static char *state_dump(state *st, const journal_record *ids)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    const db *d = st->app.db;
    for (size_t i = 0; i < db_series_count(d); i++) {
        const db_series *s = db_series_at(d, i);
        fprintf(f, "series %s/%s\n", s->park, s->indicator);
        for (int y = 2022; y <= 2025; y++) {
            double tv;
            if (db_target(d, s->park, s->indicator, y, &tv))
                fprintf(f, "  target %d %.17g\n", y, tv);
            for (int m = 1; m <= 12; m++) {
                db_vintage v[16];
                size_t n = db_series_vintages(s, pp_period_make(y, m), v, 16);
                for (size_t k = 0; k < n && k < 16; k++)
                    fprintf(f, "  %d-%02d #%zu %.17g %c at %lld src %s reason %s yoy %d %.17g\n", y,
                            m, k, v[k].value, v[k].status, (long long)v[k].received_at,
                            v[k].source, v[k].reason ? v[k].reason : "-", v[k].has_yoy,
                            v[k].yoy);
            }
        }
    }
    for (const journal_record *r = ids; r && r->type; r++) {
        if (r->type != JREC_DELIVERY)
            continue;
        int64_t at = -1;
        bool known = journal_delivery_known(st->app.journal, r->delivery.name, r->delivery.size,
                                            r->delivery.hash, &at);
        fprintf(f, "delivery %s %d at %lld\n", r->delivery.name, known, (long long)at);
        /* a different content of the same name is not known */
        known = journal_delivery_known(st->app.journal, r->delivery.name, r->delivery.size,
                                       r->delivery.hash ^ 1, NULL);
        fprintf(f, "  other content %d\n", known);
    }
    ck_assert_int_eq(journal_replay(st->app.journal, collect_events, f), 0);
    fclose(f);
    return buf;
}

/* Writes recs (up to END) as a journal, in batches of batch records. */
static void write_journal(const journal_record *recs, size_t batch)
{
    char jdir[PATH_MAX + 16];
    journal *j;
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    ck_assert_int_eq(journal_open(jdir, &j), 0);
    size_t n = 0;
    while (recs[n].type)
        n++;
    for (size_t i = 0; i < n; i += batch)
        ck_assert_int_eq(journal_append(j, recs + i, i + batch > n ? n - i : batch), 0);
    journal_close(j);
}

/* ---- the cases ------------------------------------------------------------------- */

typedef struct compact_case {
    const char *name;
    journal_record recs[24];
    uint64_t dropped;    /* records compaction leaves out */
    const char *gone[4]; /* the E lines among them (the rest of the state is unchanged) */
} compact_case;

static compact_case cases[6];

static void cases_init(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    cases[0] = (compact_case){
        "repeats and revisions",
        { obs("pa", "fai", 2024, 1, 10.5, 'A', "a.csv", T0),
          obs("pa", "fai", 2024, 1, 10.5, 'A', "a.csv", T0 + 10),      /* repeat: dropped */
          obs("pa", "fai", 2024, 1, 10.5, 'A', "a.csv", T0 + 20),      /* repeat: dropped */
          obs("pa", "fai", 2024, 1, 11.25, 'R', "b.csv", T0 + 30),     /* revision: kept */
          obs("pa", "fai", 2024, 1, 11.25, 'R', "b.csv", T0 + 40),     /* repeat: dropped */
          obs("pa", "fai", 2024, 1, 11.25, 'R', "c.csv", T0 + 50),     /* other source: kept */
          obs("pa", "fai", 2024, 2, 0.30000000000000004, 'P', "a.csv", T0 + 60), /* wide */
          obs("pa", "fai", 2024, 2, 0.30000000000000004, 'P', "a.csv", T0 + 70), /* dropped */
          obs("pb", "tax", 2023, 12, 5, 'E', "x", T0 + 80),
          obs_yoy(obs("pb", "tax", 2023, 12, 5, 'E', "x", T0 + 90), 3.5), /* yoy: kept */
          obs_yoy(obs("pb", "tax", 2023, 12, 5, 'E', "x", T0 + 95), 3.5), /* dropped */
          END },
        5, { NULL } };
    cases[1] = (compact_case){
        "retractions",
        { obs("pa", "fai", 2024, 3, 7, 'A', "a.csv", T0),
          obs("pa", "fai", 2024, 3, 0, 'W', "http 127.0.0.1", T0 + 10),  /* kept */
          obs("pa", "fai", 2024, 3, 0, 'W', "http 127.0.0.1", T0 + 20),  /* nothing: dropped */
          obs("pa", "fai", 2024, 4, 0, 'W', "http 127.0.0.1", T0 + 25),  /* nothing: dropped */
          obs("pa", "fai", 2024, 3, 7, 'A', "a.csv", T0 + 30),           /* after it: kept */
          obs("pa", "fai", 2024, 3, 7, 'A', "a.csv", T0 + 40),           /* repeat: dropped */
          obs("pa", "fai", 2024, 3, 0, 'W', "cli", T0 + 50),             /* kept */
          END },
        3, { NULL } };
    cases[2] = (compact_case){
        "targets",
        { target("pa", "fai", 2024, 100, T0),
          target("pa", "fai", 2024, 100, T0 + 10), /* same: dropped */
          target("pa", "fai", 2024, 120, T0 + 20), /* replaces the first: that one dropped */
          target("pa", "fai", 2023, 90, T0 + 30),
          obs("pa", "fai", 2024, 1, 10, 'A', "a.csv", T0 + 40),
          target("pa", "fai", 2024, 130, T0 + 50), /* replaces the third */
          target("pb", "tax", 2024, 5, T0 + 60),   /* a series with a target only */
          END },
        3, { NULL } };
    cases[3] = (compact_case){
        "deliveries",
        { obs("pa", "fai", 2024, 1, 10, 'A', "spool/a.csv", T0),
          delivery("spool/a.csv", 60, 0x1111222233334444u, T0),
          obs("pa", "fai", 2024, 1, 10, 'A', "spool/a.csv", T0 + 10),   /* repeat: dropped */
          delivery("spool/a.csv", 60, 0x1111222233334444u, T0 + 10),    /* same: dropped */
          delivery("spool/a.csv", 61, 0x1111222233334445u, T0 + 20),    /* new content: kept */
          delivery("spool/b.csv", 60, 0x1111222233334444u, T0 + 30),
          END },
        2, { NULL } };
    cases[4] = (compact_case){
        "events",
        { jrec_event("alert 1 pa fai 2024-01 warning {\"seq\":1}"),
          obs("pa", "fai", 2024, 1, 10, 'A', "a.csv", T0),
          obs("pa", "fai", 2024, 1, 10, 'A', "a.csv", T0 + 5),           /* dropped */
          jrec_event("state pa fai 2024-01 ok"),                 /* the alert below: dropped */
          jrec_event("state pa fai 2024-01 received"),           /* the overdue flag: kept */
          jrec_event("silence add {\"id\":1,\"park\":\"pa\"}"),
          jrec_event("silence rm 1"),
          jrec_event("state pb tax 2024-01 warning"),            /* the next: dropped */
          jrec_event("state pb tax 2024-13 ok"),                 /* not a valid line: kept */
          jrec_event("state pb tax 2024-02 ok"),                 /* pb/tax's last: kept */
          jrec_event("alert 2 pa fai 2024-01 critical/2 {\"seq\":2}"),
          jrec_event("state pa tax 2024-01 ok"),                 /* another series: kept */
          jrec_event("some\tother\\payload"),
          END },
        3, { "state pa fai 2024-01 ok", "state pb tax 2024-01 warning" } };
    cases[5] = (compact_case){
        "interleaved series",
        { obs("pa", "fai", 2024, 1, 10, 'A', "a.csv", T0),
          obs("pb", "tax", 2024, 1, 20, 'A', "a.csv", T0),
          delivery("a.csv", 60, 0x1111222233334444u, T0),
          jrec_event("state pa fai 2024-01 ok"),                   /* replaced below: dropped */
          obs("pa", "fai", 2024, 2, 11, 'A', "b.csv", T0 + 10),
          obs("pb", "tax", 2024, 2, 21, 'A', "b.csv", T0 + 10),
          obs("pa", "fai", 2024, 1, 10.5, 'R', "b.csv", T0 + 10),     /* revision: kept */
          target("pb", "tax", 2024, 300, T0 + 15),            /* replaced below: dropped */
          delivery("b.csv", 61, 0x1111222233334445u, T0 + 10),
          jrec_event("state pa fai 2024-02 warning"),
          obs("pc", "gdp", 2024, 1, 5, 'A', "c.csv", T0 + 20),        /* a third series */
          obs("pa", "fai", 2024, 1, 10.5, 'R', "b.csv", T0 + 20),     /* repeat: dropped */
          obs("pb", "tax", 2024, 1, 0, 'W', "http 127.0.0.1", T0 + 30), /* kept */
          jrec_event("alert 1 pb tax 2024-01 warning {\"seq\":1}"),
          obs("pb", "tax", 2024, 1, 22, 'R', "c.csv", T0 + 40),       /* after it: kept */
          target("pb", "tax", 2024, 310, T0 + 45),
          obs("pa", "fai", 2024, 2, 11.5, 'R', "c.csv", T0 + 50),     /* revision: kept */
          delivery("a.csv", 60, 0x1111222233334444u, T0 + 50),        /* same: dropped */
          obs("pc", "gdp", 2024, 2, 6, 'A', "c.csv", T0 + 50),
          jrec_event("silence add {\"id\":1,\"park\":\"pa\"}"),
          obs("pa", "fai", 2024, 3, 12, 'A', "c.csv", T0 + 60),
          END },
        4, { "state pa fai 2024-01 ok" } };
}

/* The compacted journal's order: the E and D lines first, then the figures
 * and targets of each series one after another (in their order: state_dump
 * shows the same vintages), every series once. */
typedef struct order_check {
    char seen[16][2 * PP_ID_MAX + 2];
    int n_seen;
    const char *bad;
} order_check;

static int order_cb(const journal_record *r, void *ud)
{
    order_check *oc = ud;
    char key[2 * PP_ID_MAX + 2];
    if (r->type == JREC_EVENT || r->type == JREC_DELIVERY) {
        if (oc->n_seen > 0 && oc->bad == NULL)
            oc->bad = "an E or D line after a figure";
        return 0;
    }
    const char *park = r->type == JREC_OBS ? r->obs.park : r->target.park;
    const char *ind = r->type == JREC_OBS ? r->obs.indicator : r->target.indicator;
    snprintf(key, sizeof key, "%s/%s", park, ind);
    if (oc->n_seen > 0 && strcmp(oc->seen[oc->n_seen - 1], key) == 0)
        return 0;
    for (int k = 0; k < oc->n_seen; k++)
        if (strcmp(oc->seen[k], key) == 0 && oc->bad == NULL)
            oc->bad = "a series' lines apart";
    ck_assert_int_lt(oc->n_seen, 16);
    snprintf(oc->seen[oc->n_seen++], sizeof oc->seen[0], "%s", key);
    return 0;
}

static void assert_series_order(state *st, const char *name)
{
    order_check oc = { .n_seen = 0 };
    ck_assert_int_eq(journal_replay(st->app.journal, order_cb, &oc), 0);
    ck_assert_msg(oc.bad == NULL, "%s: not in series order: %s", name, oc.bad);
    ck_assert_uint_eq(ingest_scattered(&st->sup, db_series_count(st->app.db)), 0);
}

START_TEST(test_compact_same_state)
{
    cases_init();
    const compact_case *c = &cases[_i];
    write_journal(c->recs, 3);
    size_t n = 0;
    while (c->recs[n].type)
        n++;

    state a;
    state_open(&a);
    ck_assert_uint_eq(journal_count(a.app.journal), n);
    char *before = state_dump(&a, c->recs);
    uint64_t dropped = 99;
    ck_assert_int_eq(ingest_compact(&a.app, &a.sup, true, &dropped), 0);
    ck_assert_msg(dropped == c->dropped, "%s: %llu dropped, want %llu", c->name,
                  (unsigned long long)dropped, (unsigned long long)c->dropped);
    ck_assert_uint_eq(journal_count(a.app.journal), n - c->dropped);
    /* the journal in use goes on: its answers, and appends after the compaction */
    /* what the state is without the E lines compaction drops */
    for (int g = 0; g < 4 && c->gone[g]; g++) {
        char line[256];
        snprintf(line, sizeof line, "E %s\n", c->gone[g]);
        char *at = strstr(before, line);
        ck_assert_msg(at != NULL, "%s: no line %s", c->name, line);
        memmove(at, at + strlen(line), strlen(at + strlen(line)) + 1);
    }
    char *after_live = state_dump(&a, c->recs);
    ck_assert_str_eq(after_live, before);
    state_close(&a);

    state b;
    state_open(&b);
    ck_assert_uint_eq(journal_count(b.app.journal), n - c->dropped);
    ck_assert_msg(b.sup.n_superseded == 0, "%s: %llu superseded after compaction", c->name,
                  (unsigned long long)b.sup.n_superseded);
    char *after = state_dump(&b, c->recs);
    ck_assert_msg(strcmp(after, before) == 0, "%s: state differs\nbefore:\n%s\nafter:\n%s",
                  c->name, before, after);
    assert_series_order(&b, c->name);
    /* appending to the compacted journal, then reading it again */
    journal_record more = obs("pa", "new", 2024, 5, 1, 'A', "z.csv", T0 + 999);
    ck_assert_int_eq(journal_append(b.app.journal, &more, 1), 0);
    state_close(&b);
    state d;
    state_open(&d);
    ck_assert_uint_eq(journal_count(d.app.journal), n - c->dropped + 1);
    ck_assert_ptr_nonnull(db_series_get(d.app.db, "pa", "new"));
    state_close(&d);
    free(before);
    free(after_live);
    free(after);
}
END_TEST

/* Nothing superseded, or too little: start-up does not compact. */
START_TEST(test_compact_threshold)
{
    cases_init();
    write_journal(cases[0].recs, 4);
    state a;
    state_open(&a);
    uint64_t n = journal_count(a.app.journal), dropped = 7;
    ck_assert_uint_eq(a.sup.n_superseded, 5);
    ck_assert_int_eq(ingest_compact(&a.app, &a.sup, false, &dropped), 0);
    ck_assert_uint_eq(dropped, 0);
    ck_assert_uint_eq(journal_count(a.app.journal), n);
    state_close(&a);
}
END_TEST

/* When start-up compacts: many records superseded (as many as the live
 * ones), or many figures out of series order (a tenth of the records). */
START_TEST(test_compact_due)
{
    static const struct {
        uint64_t records, superseded, switches;
        size_t series;
        bool due;
    } rows[] = {
        { 0, 0, 0, 0, false },
        { 300000, 150000, 1000, 1000, true },         /* half superseded */
        { 300000, 149999, 1000, 1000, false },        /* less than half */
        { 150000, 80000, 1000, 1000, false },         /* half, but too few */
        { 15000000, 0, 125000, 125000, false },       /* in series order */
        { 15000000, 0, 15000000, 125000, true },      /* in arrival order */
        { 15000000, 0, 1125000, 125000, false },      /* 1M appended: < 1/10 */
        { 15000000, 0, 1625000, 125000, true },       /* 1.5M appended: >= 1/10 */
        { 5000000, 0, 1124999, 125000, false },       /* 999,999 out of order: too few */
        { 5000000, 0, 1125000, 125000, true },
        { 200, 0, 200, 100000, false },               /* more series than switches */
    };
    for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
        ingest_superseded sup = { .n_records = rows[k].records,
                                  .n_superseded = rows[k].superseded,
                                  .n_switches = rows[k].switches };
        ck_assert_msg(ingest_compact_due(&sup, rows[k].series) == rows[k].due, "row %zu", k);
    }
}
END_TEST

/* Replay counts the figures out of series order: a journal written month by
 * month (as figures arrive) has all but the first of each series' ... none
 * when each series' figures come together. */
START_TEST(test_compact_scattered)
{
    static journal_record recs[3 * 4 + 1];
    const char *inds[3] = { "fai", "tax", "gdp" };
    for (int m = 0; m < 4; m++)
        for (int s = 0; s < 3; s++)
            recs[m * 3 + s] = obs("pa", inds[s], 2024, m + 1, m + s, 'A', "a.csv", T0 + m);
    recs[12] = (journal_record)END;
    write_journal(recs, 3);
    state a;
    state_open(&a);
    ck_assert_uint_eq(a.sup.n_switches, 12);
    ck_assert_uint_eq(ingest_scattered(&a.sup, db_series_count(a.app.db)), 9);
    ck_assert_int_eq(ingest_compact(&a.app, &a.sup, true, NULL), 0);
    state_close(&a);
    state b;
    state_open(&b);
    ck_assert_uint_eq(b.sup.n_switches, 3);
    assert_series_order(&b, "scattered");
    state_close(&b);
}
END_TEST

/* A corrupt line in the middle is kept, byte for byte, with the E and D
 * lines before the figures: the compacted file still ends in an intact line,
 * so that the next open does not take the corrupt one for a damaged tail. */
START_TEST(test_compact_corrupt_line)
{
    static const char bad[] = "O\t1700000000\tpa\tfai\t2024-09\t1\tA\tx\t\t00000000";
    journal_record recs[] = { obs("pa", "fai", 2024, 1, 1, 'A', "a.csv", T0),
                              obs("pb", "tax", 2024, 1, 2, 'A', "a.csv", T0),
                              obs("pa", "fai", 2024, 2, 3, 'A', "b.csv", T0 + 9), END };
    write_journal(recs, 3);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/journal/journal.log", dir);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char old[4096];
    size_t n = fread(old, 1, sizeof old - 1, f);
    fclose(f);
    old[n] = '\0';
    /* after the header and the first record */
    char *at = strchr(strchr(old, '\n') + 1, '\n') + 1;
    f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(old, 1, (size_t)(at - old), f);
    fprintf(f, "%s\n", bad);
    fputs(at, f);
    fclose(f);

    state a;
    state_open(&a);
    ck_assert_uint_eq(journal_count(a.app.journal), 3);
    char *before = state_dump(&a, recs);
    ck_assert_int_eq(ingest_compact(&a.app, &a.sup, true, NULL), 0);
    state_close(&a);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char now[4096];
    n = fread(now, 1, sizeof now - 1, f);
    fclose(f);
    now[n] = '\0';
    char want[128];
    snprintf(want, sizeof want, "#parkpulse-journal 1\n%s\n", bad);
    ck_assert_msg(strncmp(now, want, strlen(want)) == 0, "the corrupt line is not first:\n%s", now);
    ck_assert_uint_eq(strlen(now), strlen(old) + strlen(bad) + 1);
    state b;
    state_open(&b);
    ck_assert_uint_eq(journal_count(b.app.journal), 3);
    char *after = state_dump(&b, recs);
    ck_assert_str_eq(after, before);
    assert_series_order(&b, "corrupt line");
    state_close(&b);
    f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    n = fread(now, 1, sizeof now - 1, f);
    fclose(f);
    now[n] = '\0';
    ck_assert_msg(strstr(now, bad) != NULL, "the corrupt line was cut off at the next open");
    free(before);
    free(after);
}
END_TEST

/* ---- the alert engine's state ---------------------------------------------------- */

static char *alerts_dump(pp_app *app)
{
    jbuf b;
    jbuf_init(&b);
    alert_active_json(app->alerts, &b);
    alert_since_json(app->alerts, 0, &b);
    char *out;
    ck_assert_int_ge(asprintf(&out, "seq %llu\n%s", (unsigned long long)alert_seq(app->alerts),
                              b.data), 0);
    jbuf_free(&b);
    return out;
}

/* The daemon's own path (app_open, parkpulsed --compact) with an alert
 * engine: the alerts, their seq and history answer the same. */
START_TEST(test_compact_alert_engine)
{
    char adir[PATH_MAX], conf[PATH_MAX + 32], jdir[PATH_MAX + 16];
    pp_app app;
    test_app_open_with(&app, adir, "check_compact_app", T0, true);
    app_stop(&app, false);
    static const char *const lines[] = {
        "alert 1 pa fixed_asset_investment 2024-01 warning {\"seq\":1,\"id\":\"pa/fixed_asset_investment/2024-01/warning\"}",
        "state pa fixed_asset_investment 2024-01 ok",
        "state pa fixed_asset_investment 2024-02 warning",
        "alert 2 pa fixed_asset_investment 2024-02 critical {\"seq\":2,\"id\":\"pa/fixed_asset_investment/2024-02/critical\"}",
        "state pb tax_revenue 2024-01 ok",
        "state pb tax_revenue 2024-01 warning",
        "alert 3 pb tax_revenue 2024-01 overdue {\"seq\":3,\"id\":\"pb/tax_revenue/2024-01/overdue\"}",
        "state pb tax_revenue 2024-01 received",
    };
    journal *j;
    snprintf(jdir, sizeof jdir, "%s/journal", adir);
    ck_assert_int_eq(journal_open(jdir, &j), 0);
    ck_assert_int_eq(journal_append_events(j, lines, sizeof lines / sizeof lines[0]), 0);
    journal_close(j);

    snprintf(conf, sizeof conf, "%s/parkpulse.conf", adir);
    app_options o = { .conf_file = conf, .fixed_now = T0, .foreground = true, .alerts = true };
    ck_assert_int_eq(app_open(&app, &o), 0);
    uint64_t n = journal_count(app.journal);
    char *before = alerts_dump(&app);
    app_stop(&app, false);

    o.compact = true;
    ck_assert_int_eq(app_open(&app, &o), 0);
    ck_assert_uint_eq(journal_count(app.journal), n - 3); /* the three "state" lines replaced */
    app_stop(&app, false);
    o.compact = false;
    ck_assert_int_eq(app_open(&app, &o), 0);
    ck_assert_uint_eq(journal_count(app.journal), n - 3);
    char *after = alerts_dump(&app);
    ck_assert_str_eq(after, before);
    test_app_close(&app, adir);
    free(before);
    free(after);
}
END_TEST

/* ---- a crash at each step ------------------------------------------------------- */

#define CRASH_SERIES 150
#define CRASH_MONTHS 120

static int crash_at;

static void crash_hook(int step)
{
    if (step == crash_at)
        _exit(0); /* what a kill -9 leaves: no clean-up of any kind */
}

/* A journal of CRASH_SERIES × CRASH_MONTHS figures, each delivered twice
 * (the second time a repeat), large enough for the new file to be written
 * in several pieces (JOURNAL_COMPACT_STEP_WRITING). */
static void write_big_journal(void)
{
    char jdir[PATH_MAX + 16];
    journal *j;
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    ck_assert_int_eq(journal_open(jdir, &j), 0);
    static pp_obs o[CRASH_SERIES * CRASH_MONTHS];
    for (int round = 0; round < 2; round++) {
        size_t n = 0;
        for (int s = 0; s < CRASH_SERIES; s++)
            for (int m = 0; m < CRASH_MONTHS; m++) {
                journal_record r = obs(s % 2 ? "pa" : "pb", "fai", 2015 + m / 12, m % 12 + 1,
                                       s * 1000 + m + 0.5, 'A', "spool/a-rather-long-name.csv",
                                       T0 + round);
                snprintf(r.obs.indicator, sizeof r.obs.indicator, "ind%03d", s);
                o[n++] = r.obs;
            }
        ck_assert_int_eq(journal_append_figures(j, o, n, NULL, 0), 0);
    }
    journal_close(j);
}

START_TEST(test_compact_crash)
{
    static const int steps[] = { JOURNAL_COMPACT_STEP_WRITING, JOURNAL_COMPACT_STEP_WRITTEN,
                                 JOURNAL_COMPACT_STEP_SYNCED, JOURNAL_COMPACT_STEP_RENAMED,
                                 JOURNAL_COMPACT_STEP_DONE };
    const uint64_t total = 2 * CRASH_SERIES * CRASH_MONTHS, live = total / 2;
    write_big_journal();
    state a;
    state_open(&a);
    ck_assert_uint_eq(a.sup.n_superseded, live);
    char *want = state_dump(&a, NULL);
    state_close(&a);
    char leftover[PATH_MAX + 64];
    snprintf(leftover, sizeof leftover, "%s/journal/journal.log.compact", dir);

    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        char jdir[PATH_MAX + 16];
        snprintf(jdir, sizeof jdir, "%s/journal", dir);
        ck_assert_int_eq(tmpdir_remove(jdir), 0);
        write_big_journal(); /* the same journal again for every step */
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            state c;
            state_open(&c);
            crash_at = steps[k];
            journal_compact_hook = crash_hook;
            ingest_compact(&c.app, &c.sup, true, NULL);
            _exit(3); /* the hook did not stop it */
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "step %d: the child was not stopped at its step (status %d)", steps[k],
                      status);
        struct stat sb;
        bool renamed = steps[k] >= JOURNAL_COMPACT_STEP_RENAMED;
        ck_assert_int_eq(stat(leftover, &sb) == 0, !renamed);

        state b;
        state_open(&b);
        ck_assert_msg(stat(leftover, &sb) != 0, "step %d: the unfinished file is left", steps[k]);
        ck_assert_uint_eq(journal_count(b.app.journal), renamed ? live : total);
        char *got = state_dump(&b, NULL);
        ck_assert_msg(strcmp(got, want) == 0, "step %d: another state", steps[k]);
        free(got);
        state_close(&b);
    }
    free(want);
}
END_TEST

/* ---- a large journal: read on a second thread, applied in order ---------------- */

#define BIG_N 60000 /* about 5 MB of lines: above the size replayed on one thread */

typedef struct seen {
    uint64_t n, ahead;
    bool in_order;
    uint64_t stop_at; /* 0: never */
} seen;

static int seen_cb(const journal_record *r, void *ud)
{
    seen *sn = ud;
    if (r->type != JREC_OBS || r->obs.value != (double)sn->n + 0.25)
        sn->in_order = false;
    sn->n++;
    return sn->stop_at != 0 && sn->n == sn->stop_at ? 5 : 0;
}

static void seen_ahead(const journal_record *r, int stage, void *ud)
{
    seen *sn = ud;
    ck_assert_int_ge(stage, 0);
    ck_assert_int_le(stage, 2);
    ck_assert_int_eq(r->type, JREC_OBS);
    sn->ahead++;
}

START_TEST(test_replay_two_threads)
{
    char jdir[PATH_MAX + 16];
    journal *j;
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    ck_assert_int_eq(journal_open(jdir, &j), 0);
    pp_obs *o = calloc(BIG_N, sizeof *o);
    ck_assert_ptr_nonnull(o);
    for (int i = 0; i < BIG_N; i++) {
        o[i] = obs("pa", "fai", 2000 + i / 12 % 100, i % 12 + 1, i + 0.25, 'A',
                   "spool/a-file-with-a-long-name.csv", T0 + i).obs;
        snprintf(o[i].indicator, sizeof o[i].indicator, "ind%d", i / 1200);
    }
    ck_assert_int_eq(journal_append_figures(j, o, BIG_N, NULL, 0), 0);
    free(o);
    journal_close(j);

    seen sn = { .in_order = true };
    ck_assert_int_eq(journal_open_replay(jdir, seen_cb, seen_ahead, &sn, &j), 0);
    ck_assert_uint_eq(sn.n, BIG_N);
    ck_assert(sn.in_order);
    ck_assert_uint_gt(sn.ahead, 0);
    ck_assert_uint_eq(journal_count(j), BIG_N);
    /* journal_replay the same way */
    seen again = { .in_order = true };
    ck_assert_int_eq(journal_replay(j, seen_cb, &again), 0);
    ck_assert_uint_eq(again.n, BIG_N);
    ck_assert(again.in_order);
    /* a callback that stops: journal_replay returns its value, nothing hangs */
    seen stop = { .in_order = true, .stop_at = 12345 };
    ck_assert_int_eq(journal_replay(j, seen_cb, &stop), 5);
    ck_assert_uint_eq(stop.n, 12345);
    journal_close(j);
    seen stop2 = { .in_order = true, .stop_at = 777 };
    ck_assert_int_eq(journal_open_replay(jdir, seen_cb, NULL, &stop2, &j), -ECANCELED);
    ck_assert_ptr_null(j);
}
END_TEST

static Suite *compact_suite(void)
{
    Suite *s = suite_create("compact");
    TCase *tc = check_tcase(s, "compact", setup, teardown, 60);
    tcase_add_loop_test(tc, test_compact_same_state, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_compact_threshold);
    tcase_add_test(tc, test_compact_due);
    tcase_add_test(tc, test_compact_scattered);
    tcase_add_test(tc, test_compact_corrupt_line);
    tcase_add_test(tc, test_compact_crash);
    tcase_add_test(tc, test_replay_two_threads);
    tcase_add_test(tc, test_compact_alert_engine);
    return s;
}

CHECK_MAIN(compact_suite)
