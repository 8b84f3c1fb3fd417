/*
 * answer.c — ETags, the one 304 and the answer cache (see answer.h).
 *
 * /api/v1/status for 1,000 series is ~470 KB of JSON that takes milliseconds
 * to build and to hash for its ETag, while it changes only when a figure, a
 * target, the configuration or the clock's second does. Answers of the
 * whole-status routes are therefore kept, keyed by the path and by everything
 * they are built from (db generation, configuration generation, the `now`
 * they were evaluated at, to the second), and served by reference: the body
 * goes to libmicrohttpd without a copy and is freed by the last response that
 * holds it. A graph's answer is kept the same way under its path and query
 * (api.c route_graph), so that a cached image costs no evaluation of its
 * series and no copy. A direct-mapped table with a lock per slot: a
 * collision only costs a rebuild.
 */
#include "answer.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct api_blob {
    _Atomic unsigned refs;
    size_t len;
    char data[];
};

const char *api_blob_data(const api_blob *b) { return b->data; }

void api_blob_release(void *p)
{
    api_blob *b = p;
    if (b != NULL && atomic_fetch_sub(&b->refs, 1) == 1)
        free(b);
}

static api_blob *blob_ref(api_blob *b)
{
    atomic_fetch_add(&b->refs, 1);
    return b;
}

#define ANSWER_SLOTS 256

/* Each slot has its own lock: a hit locks one slot for a few loads and a
 * reference count, so that threads serving different answers never wait for
 * each other. */
typedef struct answer_slot {
    pthread_mutex_t lock;
    answer_key key;
    const char *content_type;     /* static, as in api_response */
    int64_t last_modified;
    char etag[48];
    api_blob *blob;               /* NULL: empty slot */
} answer_slot;

#define SLOT_INIT { .lock = PTHREAD_MUTEX_INITIALIZER }
#define SLOTS_4 SLOT_INIT, SLOT_INIT, SLOT_INIT, SLOT_INIT
#define SLOTS_16 SLOTS_4, SLOTS_4, SLOTS_4, SLOTS_4
#define SLOTS_64 SLOTS_16, SLOTS_16, SLOTS_16, SLOTS_16
static answer_slot answer_slots[ANSWER_SLOTS] = { SLOTS_64, SLOTS_64, SLOTS_64, SLOTS_64 };
_Static_assert(ANSWER_SLOTS == 256, "the initializer above names 256 slots");

/* Bytes of the bodies the slots hold, against ANSWER_BYTES_MAX. */
static _Atomic size_t answer_bytes;

static answer_slot *slot_of(const char *path)
{
    return &answer_slots[pp_hash_str(path) % ANSWER_SLOTS];
}

void answer_key_of(const pp_view *v, const char *path, answer_key *k)
{
    size_t n = strlen(path);
    if (n > sizeof k->path - 1)
        n = sizeof k->path - 1; /* cut: too long to be kept (answer_cache_put) */
    memcpy(k->path, path, n);
    k->path[n] = '\0';
    k->db = v->db;
    k->db_gen = db_generation(v->db);
    k->cfg_gen = v->cfg_generation;
    k->now = v->now;
}

static bool slot_holds(const answer_slot *s, const answer_key *k)
{
    return s->blob != NULL && s->key.db == k->db && s->key.db_gen == k->db_gen &&
           s->key.cfg_gen == k->cfg_gen && s->key.now == k->now &&
           strcmp(s->key.path, k->path) == 0;
}

/* Skips the optional white space of RFC 9110 (OWS). */
static const char *skip_ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool api_etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL || etag == NULL || etag[0] == '\0')
        return false;
    if (etag[0] == 'W' && etag[1] == '/')
        etag += 2;
    size_t elen = strlen(etag);
    const char *p = skip_ows(inm);
    if (*p == '*')
        return *skip_ows(p + 1) == '\0';
    bool match = false;
    for (;;) {
        /* #entity-tag: empty list elements are allowed */
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            return match;
        if (p[0] == 'W' && p[1] == '/')
            p += 2;
        if (*p != '"')
            return false;
        const char *end = p + 1;
        while (*end && *end != '"') {
            unsigned char c = (unsigned char)*end;
            if (c < 0x21 || c == 0x7f) /* etagc: no blanks or controls */
                return false;
            end++;
        }
        if (*end != '"')
            return false;
        end++;
        if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0)
            match = true;
        p = skip_ows(end);
        if (*p != ',' && *p != '\0')
            return false;
    }
}

bool answer_cache_get(const api_request *req, api_response *resp, const answer_key *key)
{
    if (strlen(key->path) >= ANSWER_PATH_MAX - 1) /* cut: never kept (answer_cache_put) */
        return false;
    answer_slot *s = slot_of(key->path);
    pthread_mutex_lock(&s->lock);
    bool hit = slot_holds(s, key);
    if (hit) {
        resp->status = 200;
        resp->content_type = s->content_type;
        memcpy(resp->etag, s->etag, sizeof resp->etag);
        resp->last_modified = s->last_modified;
        if (api_etag_matches(req->if_none_match, s->etag)) {
            resp->status = 304;
        } else {
            resp->shared = blob_ref(s->blob);
            resp->len = s->blob->len;
        }
    }
    pthread_mutex_unlock(&s->lock);
    return hit;
}

void answer_cache_put(api_response *resp, const answer_key *key)
{
    if (resp->status != 200 || resp->body == NULL || resp->len > ANSWER_BODY_MAX ||
        strlen(key->path) >= ANSWER_PATH_MAX - 1)
        return;
    api_blob *b = malloc(sizeof *b + resp->len);
    if (b == NULL)
        return; /* answered uncached */
    atomic_init(&b->refs, 2); /* the cache's and resp's */
    b->len = resp->len;
    memcpy(b->data, resp->body, resp->len);
    free(resp->body);
    resp->body = NULL;
    resp->shared = b;
    answer_slot *s = slot_of(key->path);
    pthread_mutex_lock(&s->lock);
    size_t old = s->blob ? s->blob->len : 0;
    if (atomic_load(&answer_bytes) - old + b->len > ANSWER_BYTES_MAX) {
        pthread_mutex_unlock(&s->lock);
        api_blob_release(b); /* the cache's reference: answered uncached */
        return;
    }
    atomic_fetch_add(&answer_bytes, b->len);
    atomic_fetch_sub(&answer_bytes, old);
    api_blob_release(s->blob);
    s->key = *key;
    s->blob = b;
    s->content_type = resp->content_type;
    s->last_modified = resp->last_modified;
    memcpy(s->etag, resp->etag, sizeof s->etag);
    pthread_mutex_unlock(&s->lock);
}

void answer_cache_clear(void)
{
    for (size_t i = 0; i < ANSWER_SLOTS; i++) {
        answer_slot *s = &answer_slots[i];
        pthread_mutex_lock(&s->lock);
        if (s->blob != NULL)
            atomic_fetch_sub(&answer_bytes, s->blob->len);
        api_blob_release(s->blob);
        s->blob = NULL;
        pthread_mutex_unlock(&s->lock);
    }
}

void api_cache_clear(void) { answer_cache_clear(); }

void answer_set_etag(api_response *resp)
{
    uint64_t h = pp_hash_bytes(PP_FNV_OFFSET, resp->body, resp->len);
    snprintf(resp->etag, sizeof resp->etag, "\"%016llx\"", (unsigned long long)h);
}

bool answer_not_modified(const api_request *req, api_response *resp)
{
    if (resp->status != 200 || !api_etag_matches(req->if_none_match, resp->etag))
        return false;
    api_response_free(resp);
    resp->len = 0;
    resp->status = 304;
    return true;
}
