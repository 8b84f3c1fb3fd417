/*
 * silence.h — silences (README "Notifications", parkpulse(1) `silence`):
 * "park P (or only its indicator I) is known to be behind until DATE,
 * because REASON, said BY". An alert of a silenced series is still raised,
 * journaled and published, with "silenced":true; parkpulse-notify does not
 * deliver it, and the pages show 已静默 with the reason and the end date.
 *
 * A silence lasts until the end of its `until` day (local time), at most
 * SILENCE_MAX_DAYS days after the day it is set; an expired one matches
 * nothing and is no longer listed. Silences are journaled as event records
 * (format at the top of silence.c) and rebuilt by the replay, so they
 * survive restarts; ids are 1, 2, 3, … and never reused.
 *
 * A silence set has its own mutex, a leaf of app.h's lock order: alert.c
 * asks silence_match() while it holds the cfg, db and alert locks.
 */
#ifndef PP_SILENCE_H
#define PP_SILENCE_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "json.h"

#define SILENCE_MAX_DAYS 90
#define SILENCE_REASON_MAX 500 /* bytes */
#define SILENCE_BY_MAX 64      /* bytes */

typedef struct silence_set silence_set;

typedef struct pp_silence {
    uint64_t id;
    char park[PP_ID_MAX + 1];
    char indicator[PP_ID_MAX + 1];   /* "" for every indicator of the park */
    int until;                       /* YYYYMMDD, the last day silenced */
    char reason[SILENCE_REASON_MAX + 1];
    char by[SILENCE_BY_MAX + 1];
} pp_silence;

silence_set *silence_new(void);
void silence_free(silence_set *s);

/* Applies one journal event payload during replay. Returns 0, or -1 when the
 * payload is not a silence event (ignored by the caller) or malformed (logged). */
int silence_replay_event(silence_set *s, const char *payload);

/* Parses a JSON object of strings {"park","indicator","until","reason","by"}
 * (a POST body) into *out (id 0). Returns 0, or -1 with the reason in err,
 * Chinese first. */
int silence_parse(const char *body, size_t len, pp_silence *out, char *err, size_t errlen);

/* Checks sil against the configuration and the date of now (park and
 * indicator configured, until neither past nor more than SILENCE_MAX_DAYS
 * ahead, a reason), journals it and adds it; sets sil->id. Takes
 * app->ingest_lock and app->cfg_lock itself (the caller holds neither).
 * Returns 0; -EINVAL with the reason in err; -ENOENT (unknown park or
 * indicator, in err); or a negative errno when the journal refused it. */
int silence_add(pp_app *app, silence_set *s, pp_silence *sil, char *err, size_t errlen);

/* Removes silence id (journaled). *out (may be NULL) receives it. Returns 0,
 * -ENOENT when there is no active silence of that id, or a journal error.
 * Takes app->ingest_lock itself. */
int silence_remove(pp_app *app, silence_set *s, uint64_t id, pp_silence *out);

/* true when an active silence at time now covers (park, indicator). */
bool silence_match(silence_set *s, const char *park, const char *indicator, int64_t now);

/* The silence covering (park, indicator) at now, copied into *out; false when none. */
bool silence_find(silence_set *s, const char *park, const char *indicator, int64_t now,
                  pp_silence *out);

/* {"silences":[<silence>,…]}: the active ones at now, by id. */
void silence_list_json(silence_set *s, int64_t now, jbuf *b);

/* One silence as JSON: {"id","park","indicator"(null when none),"until","reason","by"}. */
void silence_json(const pp_silence *sil, jbuf *b);

struct api_request;
struct api_response;
/* The routes of /api/v1/silences (api.c dispatches them here, holding no lock):
 * GET the active silences; POST a JSON object (token needed) → 201 with the
 * silence; DELETE /api/v1/silences/<id> (or ?id=) (token needed) → 200 with
 * the silence removed, 404 when there is no active one of that id. */
void silence_route(pp_app *app, const struct api_request *req, struct api_response *resp);

#endif
