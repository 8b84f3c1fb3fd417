/*
 * check_answer.c — Check suite for daemon/answer.c (the answer cache, the
 * one 304) and daemon/auth.c (the token check of the writes), alone: no
 * daemon, no socket. The answers through api_handle are check_api.c's.
 *
 * The cache is driven by hand-made keys: each case puts one answer, changes
 * one thing of the key it asks with (the db's generation, the
 * configuration's, the clock's second, the path, the db) or sends an
 * If-None-Match, and says whether the cache must answer, and with what. The
 * token check writes a token file per case into a temporary directory.
 */
#include "answer.h"
#include "auth.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tmpdir.h"
#include "check_main.h"

#define JSON "application/json; charset=utf-8"
#define BODY "{\"parks\":[]}\n"

/* A fresh 200 answer with BODY, its ETag and a Last-Modified. */
static void make_answer(api_response *r, const char *body)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    r->content_type = JSON;
    r->body = strdup(body);
    ck_assert_ptr_nonnull(r->body);
    r->len = strlen(body);
    r->last_modified = 1631671200;
    answer_set_etag(r);
}

static void make_key(answer_key *k, const db *d, const char *path)
{
    memset(k, 0, sizeof *k);
    k->db = d;
    snprintf(k->path, sizeof k->path, "%s", path);
    k->db_gen = 7;
    k->cfg_gen = 3;
    k->now = 1631671200;
}

/* two daemons' dbs: only their addresses are compared, never read */
static char fake_dbs[2];
#define DB_A ((const db *)&fake_dbs[0])
#define DB_B ((const db *)&fake_dbs[1])

/* ---- the cache: hit, miss, 304 ---------------------------------------------- */

enum change { SAME, DB_GEN, CFG_GEN, NOW, PATH, OTHER_DB, CLEARED };

static const struct {
    const char *name;
    enum change change;     /* what differs between the answer kept and the request */
    const char *inm;        /* If-None-Match: NULL, "=" for the answer's ETag, or a text */
    bool hit;
    int status;             /* of a hit */
} cache_cases[] = {
    { "same key: the kept answer", SAME, NULL, true, 200 },
    { "its ETag: 304", SAME, "=", true, 304 },
    { "its ETag, weak: 304", SAME, "W/=", true, 304 },
    { "its ETag in a list: 304", SAME, "\"x\", =", true, 304 },
    { "*: 304", SAME, "*", true, 304 },
    { "another ETag: the answer", SAME, "\"0000000000000000\"", true, 200 },
    { "a malformed If-None-Match: the answer", SAME, "nonsense", true, 200 },
    { "a figure changed (db generation)", DB_GEN, NULL, false, 0 },
    { "a figure changed, old ETag sent", DB_GEN, "=", false, 0 },
    { "the configuration changed", CFG_GEN, NULL, false, 0 },
    { "the clock's second moved", NOW, NULL, false, 0 },
    { "another path", PATH, NULL, false, 0 },
    { "another daemon's db", OTHER_DB, NULL, false, 0 },
    { "after api_cache_clear", CLEARED, NULL, false, 0 },
};

START_TEST(test_cache)
{
    const __typeof__(cache_cases[0]) *c = &cache_cases[_i];
    answer_cache_clear();
    answer_key kept, asked;
    make_key(&kept, DB_A, "/api/v1/status");
    api_response a;
    make_answer(&a, BODY);
    char etag[48];
    memcpy(etag, a.etag, sizeof etag);
    answer_cache_put(&a, &kept);
    /* the answer now shares the kept body */
    ck_assert_ptr_null(a.body);
    ck_assert_ptr_nonnull(a.shared);
    ck_assert_uint_eq(a.len, strlen(BODY));
    ck_assert_mem_eq(api_blob_data(a.shared), BODY, a.len);
    api_response_free(&a);

    asked = kept;
    switch (c->change) {
    case SAME: break;
    case DB_GEN: asked.db_gen++; break;
    case CFG_GEN: asked.cfg_gen++; break;
    case NOW: asked.now++; break;
    case PATH: snprintf(asked.path, sizeof asked.path, "/api/v1/parks/pa"); break;
    case OTHER_DB: asked.db = DB_B; break;
    case CLEARED: answer_cache_clear(); break;
    }
    char inm[128] = "";
    if (c->inm && strcmp(c->inm, "=") == 0)
        snprintf(inm, sizeof inm, "%s", etag);
    else if (c->inm && strcmp(c->inm, "W/=") == 0)
        snprintf(inm, sizeof inm, "W/%s", etag);
    else if (c->inm && strcmp(c->inm, "\"x\", =") == 0)
        snprintf(inm, sizeof inm, "\"x\", %s", etag);
    else if (c->inm)
        snprintf(inm, sizeof inm, "%s", c->inm);
    api_request req = { .method = "GET", .path = asked.path, .if_none_match = c->inm ? inm : NULL };
    api_response r;
    memset(&r, 0, sizeof r);
    bool hit = answer_cache_get(&req, &r, &asked);
    ck_assert_msg(hit == c->hit, "%s: hit %d", c->name, hit);
    if (!hit) {
        ck_assert_msg(r.status == 0 && r.shared == NULL && r.body == NULL,
                      "%s: a miss must leave the response alone", c->name);
        answer_cache_clear();
        return;
    }
    ck_assert_msg(r.status == c->status, "%s: status %d", c->name, r.status);
    ck_assert_str_eq(r.etag, etag);
    ck_assert_str_eq(r.content_type, JSON);
    ck_assert_int_eq(r.last_modified, 1631671200);
    ck_assert_ptr_null(r.body);
    if (c->status == 304) {
        ck_assert_ptr_null(r.shared);
        ck_assert_uint_eq(r.len, 0);
    } else {
        ck_assert_ptr_nonnull(r.shared);
        ck_assert_uint_eq(r.len, strlen(BODY));
        ck_assert_mem_eq(api_blob_data(r.shared), BODY, r.len);
    }
    api_response_free(&r);
    answer_cache_clear();
}
END_TEST

/* What is not kept: only a 200 with a body, at most ANSWER_BODY_MAX bytes,
 * for a path that fits. */
static const struct {
    const char *name;
    int status;
    size_t len;              /* 0: BODY */
    bool long_path;
    bool kept;
} put_cases[] = {
    { "a 200", 200, 0, false, true },
    { "a 200 of ANSWER_BODY_MAX bytes", 200, ANSWER_BODY_MAX, false, true },
    { "a 200 over ANSWER_BODY_MAX", 200, ANSWER_BODY_MAX + 1, false, false },
    { "a 404", 404, 0, false, false },
    { "a 503", 503, 0, false, false },
    { "a path too long to key", 200, 0, true, false },
};

START_TEST(test_cache_put)
{
    const __typeof__(put_cases[0]) *c = &put_cases[_i];
    answer_cache_clear();
    char *body;
    if (c->len) {
        body = malloc(c->len + 1);
        ck_assert_ptr_nonnull(body);
        memset(body, 'x', c->len);
        body[c->len] = '\0';
    } else {
        body = strdup(BODY);
    }
    char path[ANSWER_PATH_MAX + 8];
    if (c->long_path) {
        memset(path, 'p', sizeof path - 1);
        path[0] = '/';
        path[sizeof path - 1] = '\0';
    } else {
        snprintf(path, sizeof path, "/api/v1/status");
    }
    answer_key k;
    make_key(&k, DB_A, "");
    /* cut when too long, as answer_key_of does */
    snprintf(k.path, sizeof k.path, "%.*s", (int)sizeof k.path - 1, path);
    api_response a;
    make_answer(&a, body);
    a.status = c->status;
    answer_cache_put(&a, &k);
    ck_assert_msg((a.shared != NULL) == c->kept, "%s: shared %p", c->name, (void *)a.shared);
    ck_assert_msg((a.body != NULL) == !c->kept, "%s: body %p", c->name, (void *)a.body);
    api_response_free(&a);

    api_request req = { .method = "GET", .path = path };
    api_response r;
    memset(&r, 0, sizeof r);
    ck_assert_msg(answer_cache_get(&req, &r, &k) == c->kept, "%s", c->name);
    api_response_free(&r);
    free(body);
    answer_cache_clear();
}
END_TEST

/* A new answer for a path takes the place of the older one: the old key
 * misses, the new one hits with the new body; a response that still holds
 * the old body keeps it (it is freed by its last holder). */
START_TEST(test_cache_replaced)
{
    answer_cache_clear();
    answer_key old_key, new_key;
    make_key(&old_key, DB_A, "/api/v1/status");
    new_key = old_key;
    new_key.db_gen++;
    api_response a, b;
    make_answer(&a, BODY);
    answer_cache_put(&a, &old_key);
    make_answer(&b, "{\"parks\":[1]}\n");
    answer_cache_put(&b, &new_key);
    ck_assert_str_ne(a.etag, b.etag);

    api_request req = { .method = "GET", .path = "/api/v1/status" };
    api_response r;
    memset(&r, 0, sizeof r);
    ck_assert(!answer_cache_get(&req, &r, &old_key));
    ck_assert(answer_cache_get(&req, &r, &new_key));
    ck_assert_str_eq(r.etag, b.etag);
    ck_assert_mem_eq(api_blob_data(r.shared), "{\"parks\":[1]}\n", r.len);
    ck_assert_mem_eq(api_blob_data(a.shared), BODY, a.len); /* still readable */
    api_response_free(&r);
    api_response_free(&a);
    api_response_free(&b);
    answer_cache_clear();
}
END_TEST

/* The bodies held stay under ANSWER_BYTES_MAX: answers of ANSWER_BODY_MAX
 * bytes under more paths than fit are kept only up to the bound (the rest
 * are answered uncached, with their body), and at least half the bound's
 * worth is kept (two paths may share a slot). A graph's key (a
 * path with its query) is kept like any other. */
START_TEST(test_cache_bounded)
{
    answer_cache_clear();
    enum { N = ANSWER_BYTES_MAX / ANSWER_BODY_MAX + 16 };
    char *body = malloc(ANSWER_BODY_MAX + 1);
    ck_assert_ptr_nonnull(body);
    memset(body, 'x', ANSWER_BODY_MAX);
    body[ANSWER_BODY_MAX] = '\0';
    int shared = 0, hits = 0;
    for (int i = 0; i < N; i++) {
        answer_key k;
        char path[96];
        snprintf(path, sizeof path, "/graph/p%d/i.png?-;-;3:800;3:300;", i);
        make_key(&k, DB_A, path);
        api_response a;
        make_answer(&a, body);
        answer_cache_put(&a, &k);
        shared += a.shared != NULL;
        api_response_free(&a);
    }
    for (int i = 0; i < N; i++) {
        answer_key k;
        char path[96];
        snprintf(path, sizeof path, "/graph/p%d/i.png?-;-;3:800;3:300;", i);
        make_key(&k, DB_A, path);
        api_request req = { .method = "GET", .path = "/graph/x/i.png" };
        api_response r;
        memset(&r, 0, sizeof r);
        if (answer_cache_get(&req, &r, &k)) {
            hits++;
            ck_assert_uint_eq(r.len, ANSWER_BODY_MAX);
        }
        api_response_free(&r);
    }
    ck_assert_int_eq(shared, N); /* each answer holds its body, kept or not */
    ck_assert_int_le(hits, ANSWER_BYTES_MAX / ANSWER_BODY_MAX);
    ck_assert_int_ge(hits, ANSWER_BYTES_MAX / ANSWER_BODY_MAX / 2); /* slots shared by two paths */
    /* cleared: room again */
    answer_cache_clear();
    answer_key k;
    make_key(&k, DB_A, "/api/v1/status");
    api_response a;
    make_answer(&a, body);
    answer_cache_put(&a, &k);
    ck_assert_ptr_nonnull(a.shared);
    api_response_free(&a);
    answer_cache_clear();
    free(body);
}
END_TEST

/* ---- the one 304, outside the cache -------------------------------------- */

static const struct {
    int status;
    const char *inm;         /* "=" for the answer's ETag */
    bool not_modified;
} nm_cases[] = {
    { 200, "=", true },
    { 200, NULL, false },
    { 200, "\"other\"", false },
    { 404, "=", false },     /* only a 200 turns into a 304 */
    { 503, "*", false },
};

START_TEST(test_not_modified)
{
    api_response a;
    make_answer(&a, BODY);
    a.status = nm_cases[_i].status;
    const char *inm = nm_cases[_i].inm;
    api_request req = { .method = "GET", .path = "/x",
                        .if_none_match = inm && strcmp(inm, "=") == 0 ? a.etag : inm };
    char etag[48];
    memcpy(etag, a.etag, sizeof etag);
    bool nm = answer_not_modified(&req, &a);
    ck_assert_int_eq(nm, nm_cases[_i].not_modified);
    if (nm) {
        ck_assert_int_eq(a.status, 304);
        ck_assert_ptr_null(a.body);
        ck_assert_uint_eq(a.len, 0);
        ck_assert_str_eq(a.etag, etag); /* the headers stay */
    } else {
        ck_assert_int_eq(a.status, nm_cases[_i].status);
        ck_assert_ptr_nonnull(a.body);
        ck_assert_uint_eq(a.len, strlen(BODY));
    }
    api_response_free(&a);
}
END_TEST

/* ---- the token check ----------------------------------------------------- */

static char tok_dir[PATH_MAX];

static void tok_setup(void) { tmpdir_make(tok_dir, sizeof tok_dir, "check_answer"); }
static void tok_teardown(void) { tmpdir_remove(tok_dir); }

#define NO_FILE ((const char *)1)   /* token_file set, but no such file */
#define A_DIR ((const char *)2)     /* token_file names a directory */

static const struct {
    const char *name;
    const char *file;        /* the token file's content; NULL: no token_file; "" is empty */
    const char *auth;        /* the Authorization header */
    int rc, status;
} auth_cases[] = {
    { "no token_file: writes disabled", NULL, "Bearer s3cret", -EPERM, 403 },
    { "token_file missing: writes disabled", NO_FILE, "Bearer s3cret", -EPERM, 403 },
    { "empty token file", "", "Bearer ", -ENODATA, 503 },
    { "token file of blanks", " \r\n\n", "Bearer s3cret", -ENODATA, 503 },
    { "token file is a directory", A_DIR, "Bearer s3cret", -EISDIR, 503 },
    { "the token", "s3cret\n", "Bearer s3cret", 0, 200 },
    { "the token, CRLF file", "s3cret\r\n", "Bearer s3cret", 0, 200 },
    { "no header", "s3cret\n", NULL, -EACCES, 401 },
    { "empty header", "s3cret\n", "", -EACCES, 401 },
    { "a prefix of the token", "s3cret\n", "Bearer s3cre", -EACCES, 401 },
    { "the token and more", "s3cret\n", "Bearer s3cret2", -EACCES, 401 },
    { "no token after Bearer", "s3cret\n", "Bearer ", -EACCES, 401 },
    { "another scheme", "s3cret\n", "Basic s3cret", -EACCES, 401 },
    { "lower-case scheme", "s3cret\n", "bearer s3cret", -EACCES, 401 },
    { "two blanks", "s3cret\n", "Bearer  s3cret", -EACCES, 401 },
};

START_TEST(test_auth_check)
{
    const __typeof__(auth_cases[0]) *c = &auth_cases[_i];
    char path[PATH_MAX + 16];
    const char *token_file = NULL;
    if (c->file == NO_FILE) {
        snprintf(path, sizeof path, "%s/none", tok_dir);
        token_file = path;
    } else if (c->file == A_DIR) {
        token_file = tok_dir;
    } else if (c->file != NULL) {
        snprintf(path, sizeof path, "%s/token", tok_dir);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(c->file, f);
        ck_assert_int_eq(fclose(f), 0);
        token_file = path;
    }
    api_response r;
    memset(&r, 0, sizeof r);
    int rc = auth_check(token_file, c->auth, &r);
    ck_assert_msg(rc == c->rc, "%s: rc %d, not %d", c->name, rc, c->rc);
    if (c->rc == 0) {
        ck_assert_msg(r.status == 0 && r.body == NULL, "%s: an answer was filled", c->name);
        return;
    }
    ck_assert_msg(r.status == c->status, "%s: status %d", c->name, r.status);
    ck_assert_ptr_nonnull(r.body);
    ck_assert_msg(strstr(r.body, "\"error\":") != NULL, "%s: %s", c->name, r.body);
    if (c->status == 401)
        ck_assert_str_eq(r.www_authenticate, "Bearer realm=\"parkpulse\"");
    else
        ck_assert_ptr_null(r.www_authenticate);
    api_response_free(&r);
}
END_TEST

/* auth_token_matches: equal texts only (the comparison runs over the whole
 * configured token whatever the presented one is). */
static const struct {
    const char *want, *got;
    bool match;
} match_cases[] = {
    { "s3cret", "s3cret", true },  { "s3cret", "s3cre", false }, { "s3cret", "s3cret2", false },
    { "s3cret", "S3cret", false }, { "s3cret", "", false },      { "s3cret", "s3creT", false },
    { "", "", true },
};

START_TEST(test_token_matches)
{
    ck_assert_int_eq(auth_token_matches(match_cases[_i].want, match_cases[_i].got),
                     match_cases[_i].match);
}
END_TEST

/* auth_read_token cuts the line end and trailing blanks, and no more. */
START_TEST(test_read_token)
{
    char path[PATH_MAX + 16], tok[AUTH_TOKEN_MAX];
    snprintf(path, sizeof path, "%s/token", tok_dir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("  a b \r\n", f);
    ck_assert_int_eq(fclose(f), 0);
    ck_assert_int_eq(auth_read_token(path, tok, sizeof tok), 0);
    ck_assert_str_eq(tok, "  a b");
    ck_assert_int_eq(auth_read_token(NULL, tok, sizeof tok), -ENOENT);
    ck_assert_int_eq(auth_read_token("", tok, sizeof tok), -ENOENT);
}
END_TEST

static Suite *answer_suite(void)
{
    Suite *s = suite_create("answer");
    TCase *tc = check_tcase(s, "cache", NULL, NULL, 0);
    tcase_add_loop_test(tc, test_cache, 0, sizeof cache_cases / sizeof cache_cases[0]);
    tcase_add_loop_test(tc, test_cache_put, 0, sizeof put_cases / sizeof put_cases[0]);
    tcase_add_test(tc, test_cache_replaced);
    tcase_add_test(tc, test_cache_bounded);
    tcase_add_loop_test(tc, test_not_modified, 0, sizeof nm_cases / sizeof nm_cases[0]);
    tc = check_tcase(s, "auth", tok_setup, tok_teardown, 0);
    tcase_add_loop_test(tc, test_auth_check, 0, sizeof auth_cases / sizeof auth_cases[0]);
    tcase_add_loop_test(tc, test_token_matches, 0, sizeof match_cases / sizeof match_cases[0]);
    tcase_add_test(tc, test_read_token);
    return s;
}

CHECK_MAIN(answer_suite)
