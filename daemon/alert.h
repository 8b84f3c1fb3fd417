/*
 * alert.h — the alert state machine of SPEC §7, between the pace engine's
 * statuses and the bus.
 *
 * For each series it remembers the last status and period it has seen. An
 * alert is raised when the status changes (ok → warning, warning → ok, … → stale;
 * a change between ok and no_target is quiet), and once for each new period
 * while a series stays warning or critical (the monthly reminder). A series
 * whose first status is ok or no_target raises nothing. Alert ids
 * (park/indicator/period/status) are raised at most once, ever.
 *
 * Durability: every decision is journaled (fsync) before it is published, as
 * an event record "alert <seq> <park> <indicator> <period> <status> <json>" or
 * "state <park> <indicator> <period> <status>"; replaying them restores seq,
 * the per-series state, the set of ids and the history, so nothing is repeated
 * after a restart, and whatever changed while the daemon was down is raised
 * at start.
 */
#ifndef PP_ALERT_H
#define PP_ALERT_H

#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "bus.h"
#include "json.h"

#define ALERT_HISTORY 16384 /* alerts kept in memory for ?since= (SPEC: at least 10,000) */

typedef struct alert_engine alert_engine;

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
 * series when all is true — journals the decisions and publishes the alerts.
 * The caller holds app->ingest_lock (the journal's writer lock). Returns the
 * number of alerts raised, or -1 when the journal could not be written (then
 * nothing was published). */
int alert_evaluate(alert_engine *e, const char *const *parks, const char *const *indicators,
                   size_t n, bool all);

/* Retries the decisions that could not be journaled. */
int alert_retry_pending(alert_engine *e);

/* The last seq raised (0 before the first alert). */
uint64_t alert_seq(alert_engine *e);

/* {"seq":N,"alerts":[…]} — the active alerts (series whose last alert is
 * warning, critical or stale), ordered by seq. */
void alert_active_json(alert_engine *e, jbuf *b);

/* {"seq":N,"alerts":[…],"complete":true|false} — every alert with seq > since
 * still in memory; complete is false when some were already forgotten. */
void alert_since_json(alert_engine *e, uint64_t since, jbuf *b);

/* The first alert with seq > after: a malloc'd JSON string (caller frees) and
 * its seq, or NULL when there is none. */
char *alert_next(alert_engine *e, uint64_t after, uint64_t *seq);

#endif
