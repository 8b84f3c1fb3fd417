/*
 * check_http.c — Check suite for the parsers the HTTP surface leans on
 * against hostile input (issue 11): the one strict number parser of query
 * values, the If-None-Match list of entity tags, and the log's summary of
 * repeated lines (a spinning library must not fill the disk). The attacks
 * themselves run against the real daemon in tests/integration/test_security.py.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "log.h"
#include "check_main.h"

START_TEST(test_parse_uint_strict)
{
    uint64_t v = 7;
    ck_assert(api_parse_uint("0", 10, &v) && v == 0);
    ck_assert(api_parse_uint("400", 4000, &v) && v == 400);
    ck_assert(api_parse_uint("18446744073709551615", UINT64_MAX, &v) && v == UINT64_MAX);
    ck_assert(api_parse_uint("0010", 10, &v) && v == 10);
    static const char *const bad[] = {
        "", " 1", "1 ", "+1", "-1", " -1", "-0", "1x", "0x10", "1e3", "1.0", "\t5",
        "18446744073709551616", "99999999999999999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 7;
        ck_assert_msg(!api_parse_uint(bad[i], UINT64_MAX, &v), "accepted \"%s\"", bad[i]);
        ck_assert_msg(v == 7, "\"%s\" wrote the result", bad[i]);
    }
    ck_assert(!api_parse_uint(NULL, 10, &v));
    ck_assert(!api_parse_uint("4001", 4000, &v));
    ck_assert(api_parse_uint("4000", 4000, &v) && v == 4000);
    ck_assert(!api_parse_uint("11", 10, &v));
}
END_TEST

START_TEST(test_if_none_match_list)
{
    const char *tag = "\"0123456789abcdef\"";
    static const struct {
        const char *header;
        bool match;
    } cases[] = {
        {"\"0123456789abcdef\"", true},
        {"W/\"0123456789abcdef\"", true},
        {"\"x\", \"0123456789abcdef\"", true},
        {"\"0123456789abcdef\",\"x\"", true},
        {" \"x\" ,\t\"0123456789abcdef\" ", true},
        {"\"x\",,W/\"0123456789abcdef\",", true},
        {"*", true},
        {" * ", true},
        {"xx\"0123456789abcdef\"yy", false},
        {"\"0123456789abcdef\"yy", false},
        {"\"0123456789abcde\"", false},
        {"\"0123456789abcdef", false},
        {"0123456789abcdef", false},
        {"\"x\" \"0123456789abcdef\"", false},
        {"\"0123456789 abcdef\"", false},
        {"*, \"0123456789abcdef\"", false},
        {"w/\"0123456789abcdef\"", false},
        {"", false},
        {"\"\"", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(api_etag_matches(cases[i].header, tag) == cases[i].match,
                      "If-None-Match: %s", cases[i].header);
    /* a weak ETag of ours compares weakly too */
    ck_assert(api_etag_matches("\"abc\"", "W/\"abc\""));
    ck_assert(api_etag_matches("W/\"abc\"", "W/\"abc\""));
    ck_assert(!api_etag_matches(NULL, tag));
    ck_assert(!api_etag_matches("*", ""));
}
END_TEST

/* Runs fn with stderr going to a file; returns the file's text (malloc'd). */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/check_http_logXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)len + 1);
    ck_assert_ptr_nonnull(text);
    ck_assert_int_eq(pread(fd, text, (size_t)len, 0), len);
    close(fd);
    unlink(path);
    return text;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void spin_then_flush(void)
{
    log_open(true);
    for (int i = 0; i < 100000; i++) {
        log_warn("http", "Error accepting connection: Too many open files");
        if (i % 2 == 0)
            log_warn("bus", "refusing new bus connections");
    }
    log_info("main", "a different line");
    struct timespec ts = { 1, 100 * 1000 * 1000 };
    nanosleep(&ts, NULL);
    log_flush();
    log_warn("http", "Error accepting connection: Too many open files"); /* a new second */
}

START_TEST(test_log_repeats_summarised)
{
    char *text = capture_stderr(spin_then_flush);
    ck_assert_msg(strlen(text) < 2000, "the log spun:\n%.2000s", text);
    ck_assert_int_eq(count(text, "Too many open files\n"), 2);
    ck_assert_int_eq(count(text, "refusing new bus connections\n"), 1);
    ck_assert_int_eq(count(text, "a different line"), 1);
    ck_assert_msg(strstr(text, "parkpulsed[warning] http: Error accepting connection: Too many open "
                               "files (repeated 99999 times)\n") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "parkpulsed[warning] bus: refusing new bus connections "
                               "(repeated 49999 times)\n") != NULL, "%s", text);
    free(text);
}
END_TEST

static Suite *http_suite(void)
{
    Suite *s = suite_create("http");
    TCase *tc = check_tcase(s, "parsers", NULL, NULL, 0);
    tcase_add_test(tc, test_parse_uint_strict);
    tcase_add_test(tc, test_if_none_match_list);
    tcase_add_test(tc, test_log_repeats_summarised);
    tcase_set_timeout(tc, 30);
    return s;
}

CHECK_MAIN(http_suite)
