/*
 * check_util.c — Check suite for the small shared containers: hash.h (FNV-1a
 * 64, against the published test vectors) and vec.h (the growable array).
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "vec.h"

static const struct {
    const char *s;
    uint64_t h;
} fnv_cases[] = {
    { "", 0xcbf29ce484222325ULL },
    { "a", 0xaf63dc4c8601ec8cULL },
    { "foobar", 0x85944171f73967e8ULL },
};

START_TEST(test_fnv1a_64_vectors)
{
    const char *s = fnv_cases[_i].s;
    ck_assert_uint_eq(pp_hash_str(s), fnv_cases[_i].h);
    ck_assert_uint_eq(pp_hash_bytes(PP_FNV_OFFSET, s, strlen(s)), fnv_cases[_i].h);
}
END_TEST

/* pp_hash_pair(a, sep, b) is the hash of the bytes a, sep, b. */
START_TEST(test_hash_pair)
{
    ck_assert_uint_eq(pp_hash_pair("ab", '\t', "c"), pp_hash_str("ab\tc"));
    ck_assert_uint_ne(pp_hash_pair("ab", 0xff, "c"), pp_hash_pair("a", 0xff, "bc"));
}
END_TEST

START_TEST(test_vec_grows_by_doubling)
{
    int *v = NULL;
    size_t n = 0, cap = 0;
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(PP_VEC_RESERVE(v, cap, n + 1, 4), 0);
        ck_assert_uint_ge(cap, n + 1);
        v[n++] = i;
    }
    ck_assert_uint_eq(cap, 1024); /* 4, 8, ..., 1024 */
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(v[i], i);
    ck_assert_int_eq(PP_VEC_RESERVE(v, cap, 10, 4), 0); /* room already: unchanged */
    ck_assert_uint_eq(cap, 1024);
    free(v);
}
END_TEST

/* A size that cannot be allocated: -ENOMEM, the array and its capacity unchanged. */
START_TEST(test_vec_too_large)
{
    char *v = malloc(8);
    ck_assert_ptr_nonnull(v);
    char *before = v;
    size_t cap = 8;
    ck_assert_int_eq(PP_VEC_RESERVE(v, cap, SIZE_MAX, 8), -ENOMEM);
    ck_assert_ptr_eq(v, before);
    ck_assert_uint_eq(cap, 8);
    double *d = NULL;
    size_t dcap = 0;
    ck_assert_int_eq(PP_VEC_RESERVE(d, dcap, SIZE_MAX / 4, 1), -ENOMEM);
    ck_assert_ptr_null(d);
    ck_assert_uint_eq(dcap, 0);
    free(v);
}
END_TEST

static Suite *util_suite(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("hash");
    tcase_add_loop_test(tc, test_fnv1a_64_vectors, 0, sizeof fnv_cases / sizeof fnv_cases[0]);
    tcase_add_test(tc, test_hash_pair);
    suite_add_tcase(s, tc);
    tc = tcase_create("vec");
    tcase_add_test(tc, test_vec_grows_by_doubling);
    tcase_add_test(tc, test_vec_too_large);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(util_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
