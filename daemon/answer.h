/*
 * answer.h — the HTTP answers' validators and their cache: the ETag of a
 * body, the one 304 (If-None-Match, RFC 9110 13.1.2), and the answer cache
 * of the cacheable routes (api.c's route table says which) and of the
 * graphs (api.c route_graph, keyed by path and query). api.c builds the
 * answers; this file decides whether one must be built at all.
 *
 * The cache keeps a 200 answer keyed by its path and by everything it is
 * built from: the db (one daemon's answers are never another's), the db's
 * generation (a figure, a target or a retraction changes it), the
 * configuration's generation and the read view's `now`, to the second. A
 * change of any of these is a miss: nothing has to be invalidated by hand.
 * Bodies are shared by reference (api_blob of api.h): a hit costs no copy,
 * and takes only its slot's lock.
 */
#ifndef PP_ANSWER_H
#define PP_ANSWER_H

#include <stdbool.h>
#include <stdint.h>

#include "api.h"

/* Longer keys are never cached. A key is a path, or for a graph its path
 * and the query parameters that shape the image (api.c route_graph). */
#define ANSWER_PATH_MAX (2 * PP_ID_MAX + 128)
/* Bigger answers (the status of thousands of series: ~470 bytes each) are
 * rebuilt per request rather than held, and the bodies held together stay
 * under ANSWER_BYTES_MAX (a put past it is answered uncached; concurrent puts
 * may pass it by at most one body per thread): typically one status, a few
 * parks and the graphs of the pages being looked at. */
#define ANSWER_BODY_MAX (1u << 20)
#define ANSWER_BYTES_MAX (64u << 20)

/* What a cached answer was built from. */
typedef struct answer_key {
    const db *db;                 /* the view's: one daemon's answers are never another's */
    char path[ANSWER_PATH_MAX];
    uint64_t db_gen, cfg_gen;
    int64_t now;
} answer_key;

/* The key of the answer to path built from the read view v. */
void answer_key_of(const pp_view *v, const char *path, answer_key *k);

/* Answers req from the cache: 200 with the shared body, or 304 when
 * If-None-Match holds its ETag. false (resp untouched) on a miss. */
bool answer_cache_get(const api_request *req, api_response *resp, const answer_key *key);

/* Keeps a fresh 200 answer (at most ANSWER_BODY_MAX bytes) under key, in
 * place of whatever its slot held: resp's body moves into a shared blob that
 * resp then holds. Anything else is left as it is (answered uncached). */
void answer_cache_put(api_response *resp, const answer_key *key);

/* Drops every cached answer (api_cache_clear of api.h is this). */
void answer_cache_clear(void);

/* A strong ETag from the body bytes (FNV-1a 64): "\"%016llx\"". */
void answer_set_etag(api_response *resp);

/* The one 304: a 200 answer whose ETag the client sent in If-None-Match
 * loses its body (the headers stay). true when it did. */
bool answer_not_modified(const api_request *req, api_response *resp);

#endif
