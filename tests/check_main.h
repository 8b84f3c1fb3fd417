/*
 * check_main.h — the main() of every Check suite, and skips.
 *
 * CHECK_MAIN(suite_fn) runs the suite (CK_NORMAL; CK_FORK as the environment
 * says) and exits 1 when a check failed. Check has no skip: a check that
 * cannot run here (e.g. it needs root) is not added to its test case;
 * check_skip() says so on a line of its own, "SKIP: <suite>: <check>: <why>",
 * and the count of skipped checks closes the run ("N check(s) skipped"), so a
 * check that did not run never passes silently.
 */
#ifndef PP_TEST_CHECK_MAIN_H
#define PP_TEST_CHECK_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static int check_skipped;

/* Records that check name of suite is not run here, and why. */
static inline void check_skip(const char *suite, const char *name, const char *why)
{
    printf("SKIP: %s: %s: %s\n", suite, name, why);
    fflush(stdout);
    check_skipped++;
}

/* Runs s; 0 when every check passed, else 1. */
static inline int check_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (check_skipped > 0)
        printf("%d check(s) skipped\n", check_skipped);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* Adds a test case called name to s and returns it: each check between
 * setup and teardown (checked fixtures; NULL for none), timeout in seconds
 * (0 keeps Check's default). */
static inline TCase *check_tcase(Suite *s, const char *name, SFun setup, SFun teardown,
                                 double timeout)
{
    TCase *tc = tcase_create(name);
    if (setup || teardown)
        tcase_add_checked_fixture(tc, setup, teardown);
    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

#define CHECK_MAIN(suite_fn) \
    int main(void) { return check_run(suite_fn()); }

#endif
