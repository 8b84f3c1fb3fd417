/*
 * alert.h — the alert state machine of README, Alerts, between the pace engine's
 * statuses and the bus.
 *
 * For each series it remembers the last status and period it has seen. An
 * alert is raised when the status changes (ok → warning, warning → ok, …; a
 * change among ok, no_target and no_data is quiet), and once for each new
 * period while a series stays warning or critical (the monthly reminder). A
 * series whose first status is ok, no_target or no_data raises nothing.
 * Beside the status it remembers the overdue flag: a series becoming overdue
 * for a month raises "overdue" (id park/indicator/<missing month>/overdue),
 * the late figure arriving raises "received". Alert ids
 * (park/indicator/period/status) are raised at most once, ever: a series that
 * enters the same (period, status) again — a revision back and forth — gets
 * the id with a fifth segment /2, /3, …, so no transition is silent.
 *
 * Durability: every decision is journaled (fsync) before it is published, as
 * an event record "alert <seq> <park> <indicator> <period> <status> <json>" or
 * "state <park> <indicator> <period> <status>"; replaying them restores seq,
 * the per-series state, the set of ids and the history, so nothing is repeated
 * after a restart, and whatever changed while the daemon was down is raised
 * at start. Each alert's seq and id are also written to a second file,
 * <state_dir>/journal/alert-ids.log (format at the top of alert.c), read by
 * alert_new before the replay: a damaged line in either copy neither sends seq
 * back nor lets an id be published again. A decision the journal refuses (a
 * full disk) is not published and takes no seq; it is decided again at the
 * next evaluation or alert_retry_pending().
 *
 * What is listed follows the configuration in force: the alerts of a park or
 * indicator that is not configured (removed by a reload) are served by none of
 * the queries below, as every other route answers "unknown park"; "seq" stays
 * the last seq raised, and they are listed again when the park comes back.
 */
#ifndef PP_ALERT_H
#define PP_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "bus.h"
#include "json.h"

#define ALERT_HISTORY 16384 /* alerts kept in memory for ?since= (at least 10,000; README, Alerts) */

typedef struct alert_engine alert_engine;

/* An engine for app (NULL: replay and queries only, no id file, nothing
 * filtered). With app->cfg->state_dir it opens (creating) the id file in
 * <state_dir>/journal/, which must exist, and reads it. NULL on ENOMEM, or
 * when the id file cannot be read or is not one (logged). */
alert_engine *alert_new(pp_app *app);
void alert_free(alert_engine *e);

/* The bus to publish on (NULL: none). Set before the first evaluation. */
void alert_set_bus(alert_engine *e, bus *b);

/* Called after new alerts were published (for the SSE streams). */
void alert_set_listener(alert_engine *e, void (*fn)(void *ud), void *ud);

/* Applies one journal event payload during replay. Returns 0, or -1 when the
 * payload is not an alert event (ignored by the caller) or malformed (logged). */
int alert_replay_event(alert_engine *e, const char *payload);

/* Evaluates the n series (parks[i], indicators[i]) — or every configured
 * series when all is true — under one read view it takes itself (app.h),
 * journals the decisions and publishes the alerts.
 * The series whose decisions an earlier call could not journal are decided
 * too. The caller holds app->ingest_lock (the journal's writer lock). Returns
 * the number of alerts raised, or -1 when the journal could not be written
 * (then nothing was published, and the series are kept for the next call). */
int alert_evaluate(alert_engine *e, const char *const *parks, const char *const *indicators,
                   size_t n, bool all);

/* An evaluation of every series, when there are at least this many, first
 * judges them on several threads (start-up: alert.c, judge_all); the
 * decisions are the same either way. 4096; the tests set it lower. */
extern size_t alert_judge_parallel_min;

/* Decides again, without a new figure, the series whose decisions could not
 * be journaled, and writes the ids the id file could not take. Takes
 * app->ingest_lock itself, but only when it is free (an ingest in progress
 * evaluates them anyway). Cheap when nothing waits: the daemon calls it every
 * second. Returns the number of alerts raised (0 also when nothing waited or
 * the lock was busy), or -1 when the journal still fails. */
int alert_retry_pending(alert_engine *e);

/* The last seq raised (0 before the first alert). */
uint64_t alert_seq(alert_engine *e);

/* {"seq":N,"alerts":[…]} — the active alerts of configured series, ordered
 * by seq: a series' alert when it is the alert of its current status and that
 * status is warning or critical (or no_data after one), and its overdue alert
 * while it is overdue. The
 * caller holds a read view (app.h; the API does), as for alert_since_json. */
void alert_active_json(alert_engine *e, jbuf *b);

/* {"seq":N,"alerts":[…],"complete":true|false} — every alert of a configured
 * series with seq > since still in memory; complete is false when some were
 * already forgotten (not when some were left out as unconfigured). */
void alert_since_json(alert_engine *e, uint64_t since, jbuf *b);

/* The first alert of a configured series with seq > after: a malloc'd JSON
 * string (caller frees) and its seq, or NULL when there is none. Only tries
 * app->cfg_lock (it is called under the http server's SSE lock). */
char *alert_next(alert_engine *e, uint64_t after, uint64_t *seq);

#endif
