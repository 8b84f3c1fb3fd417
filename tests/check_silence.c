/*
 * check_silence.c — silences (daemon/silence.c): the POST body parser, the
 * 90-day cap, dates in the past, matching by park and indicator, expiry with
 * the clock, removal, and the journal replay that restores them (ids never
 * handed out twice).
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check_main.h"
#include "silence.h"
#include "test_app.h"

/* 2021-09-15 10:00 +08:00 */
#define NOW 1631671200

static char dir[PATH_MAX];
static pp_app app;

static void add_ok(silence_set *s, const char *json, uint64_t want_id)
{
    pp_silence sil;
    char err[256] = "";
    ck_assert_msg(silence_parse(json, strlen(json), &sil, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(silence_add(&app, s, &sil, err, sizeof err) == 0, "%s", err);
    ck_assert_uint_eq(sil.id, want_id);
}

static int add_rc(silence_set *s, const char *json, char *err, size_t errlen)
{
    pp_silence sil;
    if (silence_parse(json, strlen(json), &sil, err, errlen) != 0)
        return 1;
    return silence_add(&app, s, &sil, err, errlen);
}

static int replay_cb(const journal_record *rec, void *ud)
{
    if (rec->type == JREC_EVENT)
        silence_replay_event(ud, rec->event);
    return 0;
}

START_TEST(test_parse)
{
    pp_silence sil;
    char err[256];
    const char *ok = " {\"park\":\"pa\", \"indicator\":null, \"until\":\"2021-10-31\","
                     " \"reason\":\"\\u8c03\\u6574 \\\"x\\\"\", \"by\":\"wang\", \"other\":\"y\"} ";
    ck_assert_int_eq(silence_parse(ok, strlen(ok), &sil, err, sizeof err), 0);
    ck_assert_str_eq(sil.park, "pa");
    ck_assert_str_eq(sil.indicator, "");
    ck_assert_int_eq(sil.until, 20211031);
    ck_assert_str_eq(sil.reason, "调整 \"x\"");
    ck_assert_str_eq(sil.by, "wang");
    const char *bad[] = {
        "", "[]", "{\"park\":\"pa\"}", "{\"park\":\"pa\",\"until\":\"2021-02-29\"}",
        "{\"park\":\"PA!\",\"until\":\"2021-10-01\"}", "{\"park\":\"pa\",\"until\":\"2021-10-01\"",
        "{\"park\":\"pa\",\"until\":\"2021-10-01\"} x", "{\"park\":\"pa\",\"reason\":\"a\nb\"}",
        "{\"park\":\"pa\",\"until\":\"2021-10-01\",\"reason\":\"\\u0001\"}",
        "{\"park\":\"pa\",\"until\":\"2021-10-01\",\"reason\":\"\\ud800\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(silence_parse(bad[i], strlen(bad[i]), &sil, err, sizeof err) != 0,
                      "accepted: %s", bad[i]);
}
END_TEST

START_TEST(test_add_cap_match_expire_remove_replay)
{
    test_app_open(&app, dir, "check_silence", NOW);
    silence_set *s = silence_new();
    char err[256];
    add_ok(s, "{\"park\":\"pa\",\"indicator\":\"fiscal_revenue\",\"until\":\"2021-10-31\","
              "\"reason\":\"r1\",\"by\":\"wang\"}", 1);
    add_ok(s, "{\"park\":\"pb\",\"until\":\"2021-12-14\",\"reason\":\"r2\"}", 2); /* 90 days */
    ck_assert_int_eq(add_rc(s, "{\"park\":\"pb\",\"until\":\"2021-12-15\",\"reason\":\"x\"}", err,
                            sizeof err), -EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "90"));
    ck_assert_int_eq(add_rc(s, "{\"park\":\"pb\",\"until\":\"2021-09-14\",\"reason\":\"x\"}", err,
                            sizeof err), -EINVAL);
    ck_assert_int_eq(add_rc(s, "{\"park\":\"pb\",\"until\":\"2021-09-30\"}", err, sizeof err),
                     -EINVAL);
    ck_assert_int_eq(add_rc(s, "{\"park\":\"zz\",\"until\":\"2021-09-30\",\"reason\":\"x\"}", err,
                            sizeof err), -ENOENT);
    ck_assert_int_eq(add_rc(s, "{\"park\":\"pa\",\"indicator\":\"nope\",\"until\":\"2021-09-30\","
                               "\"reason\":\"x\"}", err, sizeof err), -ENOENT);
    add_ok(s, "{\"park\":\"pa\",\"until\":\"2021-09-20\",\"reason\":\"r3\"}", 3);

    ck_assert(silence_match(s, "pa", "fiscal_revenue", NOW));
    ck_assert(silence_match(s, "pa", "fdi_actual", NOW));       /* #3 covers the park */
    ck_assert(silence_match(s, "pb", "fdi_actual", NOW));
    /* 2021-09-21: #3 is over, #1 only covers fiscal_revenue */
    int64_t later = NOW + 6 * 86400;
    ck_assert(silence_match(s, "pa", "fiscal_revenue", later));
    ck_assert(!silence_match(s, "pa", "fdi_actual", later));
    /* the last day counts to its end (local time), the next does not */
    ck_assert(silence_match(s, "pa", "fdi_actual", 1632153599)); /* 2021-09-20 23:59:59 +08 */
    ck_assert(!silence_match(s, "pa", "fdi_actual", 1632153600));
    jbuf b;
    jbuf_init(&b);
    silence_list_json(s, later, &b);
    ck_assert_str_eq(b.data, "{\"silences\":[{\"id\":\"1\",\"park\":\"pa\",\"indicator\":"
                             "\"fiscal_revenue\",\"until\":\"2021-10-31\",\"reason\":\"r1\","
                             "\"by\":\"wang\"},{\"id\":\"2\",\"park\":\"pb\",\"indicator\":null,"
                             "\"until\":\"2021-12-14\",\"reason\":\"r2\",\"by\":\"api\"}]}\n");
    jbuf_free(&b);

    pp_silence gone;
    ck_assert_int_eq(silence_remove(&app, s, 2, &gone), 0);
    ck_assert_str_eq(gone.reason, "r2");
    ck_assert_int_eq(silence_remove(&app, s, 2, NULL), -ENOENT);
    ck_assert(!silence_match(s, "pb", "fdi_actual", NOW));
    silence_free(s);

    /* the journal restores #1 and #3, not #2, and the next id is 4 */
    char jdir[PATH_MAX + 16];
    snprintf(jdir, sizeof jdir, "%s/journal", dir);
    journal_close(app.journal);
    ck_assert_int_eq(journal_open(jdir, &app.journal), 0);
    s = silence_new();
    ck_assert_int_eq(journal_replay(app.journal, replay_cb, s), 0);
    ck_assert(silence_match(s, "pa", "fiscal_revenue", NOW));
    ck_assert(silence_match(s, "pa", "fdi_actual", NOW));
    ck_assert(!silence_match(s, "pb", "fdi_actual", NOW));
    add_ok(s, "{\"park\":\"pb\",\"until\":\"2021-09-30\",\"reason\":\"r4\"}", 4);
    silence_free(s);
    test_app_close(&app, dir);
}
END_TEST

static Suite *silence_suite(void)
{
    Suite *su = suite_create("silence");
    TCase *tc = check_tcase(su, "core", NULL, NULL, 0);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_add_cap_match_expire_remove_replay);
    return su;
}

int main(void)
{
    setenv("TZ", "Asia/Shanghai", 1);
    return check_run(silence_suite());
}
