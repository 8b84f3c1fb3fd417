/*
 * ingest.h — the one road every figure takes into parkpulse (STYLE.md's data
 * flow): CSV or parsed figures → validation against the configuration (csv.c)
 * → journal (fsync) → db → RRD files. Spool files, exec output and HTTP POSTs
 * all come through here, so they are refused and acknowledged the same way.
 * It is the daemon's one writer path (app.h): a commit journals the figures,
 * applies them to the db, writes the RRD files, then has the alert engine
 * decide for the series it touched (alert_evaluate, under the ingest lock, in
 * the thread that ingested).
 */
#ifndef PP_INGEST_H
#define PP_INGEST_H

#include <stdint.h>

#include "app.h"
#include "csv.h"

typedef enum { INGEST_OK = 0, INGEST_REFUSED = 1, INGEST_ERROR = -1 } ingest_status;

typedef struct ingest_result {
    size_t n_obs;        /* observations accepted (new or revised) */
    size_t n_unchanged;  /* observations identical to the value already in force */
    size_t n_targets;    /* targets accepted (new or changed) */
    char *report;        /* REFUSED/ERROR: malloc'd "source:line: reason\n" lines (caller frees) */
    char *warnings;      /* OK: malloc'd lines about accepted figures that look wrong — a
                            cumulative figure below the same year's previous month
                            (README "Feeding figures") — or NULL (caller frees, whatever the status) */
} ingest_result;

/* Reads, validates and stores a CSV input. source names it in reports and is
 * the default `source` of its observations. INGEST_OK: everything is on disk
 * (journal fsync'd) — acknowledge now. INGEST_REFUSED: a bad row; nothing was
 * taken. INGEST_ERROR: could not store (I/O), or the daemon is stopping
 * (app->stopping); nothing acknowledged, retry (after the next start). A
 * large input is given up between chunks of work when app->stopping is set
 * (see the top of ingest.c). Not a delivery: the same input twice is applied
 * twice, as two requests of a client. It is ingest_csv_batch() of one input,
 * so that there is one pipeline. */
ingest_status ingest_csv(pp_app *app, const char *source, const char *data, size_t len,
                         ingest_result *res);

/* Bounds of one commit of ingest_csv_batch: inputs, bytes of CSV, and figures
 * (observations and targets; what the commit holds in memory at once, about
 * 0.5 KB each). An input above a bound on its own is committed alone. A
 * spool batch (256 files) of 10 years of monthly figures is one commit: one
 * journal append, one fdatasync. */
#define INGEST_BATCH_FILES   256
#define INGEST_BATCH_BYTES   (64u << 20)
#define INGEST_BATCH_RECORDS 32768

/* One CSV input of ingest_csv_batch; the caller owns the strings. */
typedef struct ingest_input {
    const char *source;  /* as ingest_csv's source */
    const char *data;
    size_t len;
    /* NULL, or the name of a delivery, e.g. "spool/x.csv": a file that a
     * collector names. Its identity (this name, its size and a hash of its
     * bytes) is journaled with its figures, and a delivery already journaled
     * is not applied again: INGEST_OK with nothing counted, logged as
     * "already ingested … (journaled at <time>)". Also when it changed
     * nothing, so that reading it again after a newer value came in is a
     * no-op too. */
    const char *delivery;
} ingest_input;

/* Reads, validates and stores n CSV inputs with the outcome of n ingest_csv
 * calls in that order: st[i] and res[i] receive input i's status and result
 * exactly as ingest_csv would give them (the caller frees each res[i].report).
 * The accepted inputs are committed together, in as few commits as the bounds
 * above allow — each one journal append (one fsync), one db update, each
 * touched series' RRD file written once; an input that touches a figure or
 * target an earlier input of the commit touched starts a new one. Returns the
 * worst status: INGEST_ERROR if any, else INGEST_REFUSED if any, else
 * INGEST_OK (also for n == 0). */
ingest_status ingest_csv_batch(pp_app *app, size_t n, const ingest_input *in, ingest_status *st,
                               ingest_result *res);

/* Stores figures that are already validated pp_obs/pp_target (received_at 0 is
 * stamped with the clock). Same results as ingest_csv. obs and tg are scratch
 * afterwards (what was new is moved to their front).  */
ingest_status ingest_records(pp_app *app, pp_obs *obs, size_t n_obs, pp_target *tg,
                             size_t n_tg, ingest_result *res);

/* Retracts the figure of (park, indicator, period) — README: journaled as
 * a W vintage with its reason (source: who asked, e.g. "http 127.0.0.1"),
 * then the db, the series' RRD file and its alerts follow, as for any commit.
 * INGEST_OK (res->n_obs 1), INGEST_REFUSED when that period has no figure
 * (res->report says so), INGEST_ERROR when it could not be stored. The ids
 * are the caller's to check against the configuration. */
ingest_status ingest_retract(pp_app *app, const char *park, const char *indicator, int period,
                             const char *source, const char *reason, ingest_result *res);

/* Re-evaluates the alerts of every configured series (a new day may make a
 * figure overdue; a reload may change thresholds): takes the ingest lock, as
 * a commit evaluates the series it touched under it. Nothing without
 * app->alerts. */
void ingest_evaluate_all(pp_app *app);

/* Replays the journal into the db, and its alert events into app->alerts
 * when there is one (at start-up, before anything is served). */
int ingest_replay(pp_app *app);

/* What a replay found superseded: bit i of bits (bits[i / 8] >> (i % 8) & 1)
 * is set when the i-th intact record of the journal changed nothing that
 * replay rebuilds — a figure repeating the vintage in force (same value,
 * status, yoy and source: the db keeps the first), a retraction with no
 * figure to withdraw, a target equal to the one in force or replaced by a
 * later one. Everything else is live: every vintage (the db keeps revision
 * history), the target in force, every "alert" E line (the alerts' ids and
 * history), silence lines, and the last alert-engine line of each series for
 * its status and for its overdue flag: an earlier quiet "state" line of the
 * same series and kind is superseded (alert.c replays the lines in order, the
 * last one of each kind is what it keeps). D lines: journal.c keeps the first
 * of each identity. */
typedef struct ingest_superseded {
    uint8_t *bits;
    uint64_t n_records;     /* intact records replayed */
    uint64_t n_superseded;  /* bits set */
    uint64_t n_switches;    /* figures and targets of another series than the previous one's */
    size_t cap;             /* bytes of bits */
} ingest_superseded;

/* Compaction at start-up (README, Storage) when at least this many records
 * are superseded and they are at least as many as the live ones (the journal
 * is twice its live size or more) ... */
#define INGEST_COMPACT_MIN 100000
/* ... or when at least this many figures and targets are out of series order
 * (ingest_scattered: appended since the last compaction, as figures arrive,
 * a month of every series after another) and they are at least a
 * 1/INGEST_COMPACT_SCATTERED_PART of the records: compaction puts the journal
 * in series order, which replays faster (each series' figures one after
 * another, its memory in the cache). */
#define INGEST_COMPACT_SCATTERED_MIN 1000000
#define INGEST_COMPACT_SCATTERED_PART 10

/* The figures and targets out of series order in what *sup noted, with
 * n_series series in the db: the changes of series beyond one per series
 * (0 for a journal in series order). */
uint64_t ingest_scattered(const ingest_superseded *sup, size_t n_series);

/* Whether start-up compacts the journal *sup describes (the rules above). */
bool ingest_compact_due(const ingest_superseded *sup, size_t n_series);

/* Opens the journal in dir (journal_open_replay: one reading) into
 * app->journal, replaying it into app->db and its events into app->alerts
 * and app->silences (made before), and notes in *sup (zeroed by the caller;
 * ingest_superseded_free releases it) what is superseded. Returns 0, or a
 * negative errno (logged). */
int ingest_open_replay(pp_app *app, const char *dir, ingest_superseded *sup);

/* Compacts the journal (journal_compact: without what is superseded, in
 * series order) by what *sup found, when force or ingest_compact_due();
 * takes the ingest lock. Nothing must have
 * been appended since the replay (app_open calls it before anything can
 * ingest). *dropped (may be NULL) receives the records dropped (0 when it
 * did not compact). Returns 0 or a negative errno (logged; the journal is
 * then unchanged). */
int ingest_compact(pp_app *app, const ingest_superseded *sup, bool force, uint64_t *dropped);

void ingest_superseded_free(ingest_superseded *sup);

/* Rewrites every series' RRD file from the db (parkpulsed --rebuild, or after
 * an unclean stop), on as many threads as ingest_writers_default(), each
 * taking one park's series at a time. Returns the number of files that
 * failed (each left dirty). */
int ingest_rebuild_all(pp_app *app);

/* Rewrites one series' RRD file; changed_from as in store_series. */
int ingest_write_series(pp_app *app, const char *park, const char *indicator, int changed_from);

/* Rebuilds the RRD files of the dirty series (store.h: their last write
 * failed) from the db. A commit does it itself after its own files were
 * written; main's loop calls it with force false — nothing happens while no
 * series is dirty, and the retries are spaced 1 s, 2 s, … up to 60 s apart
 * while they keep failing — and with force true before the clean-stop marker
 * (then, the daemon stopping, for at most 2 s). Takes the ingest lock. Returns the number of series still dirty. */
size_t ingest_retry_dirty(pp_app *app, bool force);

/*
 * The RRD writers (README, Storage). Without them (tools, tests) a commit
 * writes its series' RRD files before it returns. Once ingest_writer_start
 * has run, a commit hands the series it touched to the writer threads and
 * returns as soon as they are journaled and in the db: the caller
 * acknowledges then, and the files follow. Each series belongs to one thread
 * (by a hash of its park), so its writes keep the order of its commits and
 * never overlap, while other parks' files are written side by side. A
 * series queued again before its write started is written once, from the db
 * as it is at that write (the newest figures). Readers see the old file or
 * the new one (store.h). A write that fails marks its series dirty, as a
 * commit's own write does. The clean-stop marker stays honest:
 * ingest_writer_stop waits up to budget_ms for every queue, then marks every
 * series still queued dirty (so no marker is written and the next start
 * rebuilds them); a crash with writes queued leaves no marker at all (it is
 * removed at start before any write), so the next start rebuilds every file.
 */
#define INGEST_WRITERS_MAX 8

/* The threads ingest_writer_start starts: one per online CPU, at least 2
 * (one writes while another waits for the disk), at most INGEST_WRITERS_MAX. */
unsigned ingest_writers_default(void);
int ingest_writer_start(pp_app *app);
/* The same with n threads (1 .. INGEST_WRITERS_MAX; tests). */
int ingest_writer_start_n(pp_app *app, unsigned n);
void ingest_writer_stop(pp_app *app, int budget_ms);

/* Series queued or being written, every thread together (0 without
 * writers): the parkpulse_rrd_pending gauge of /metrics and X-RRD-Pending. */
size_t ingest_rrd_pending(const pp_app *app);

/* Waits up to timeout_ms until the series is neither queued nor being
 * written: its RRD file then holds every figure acknowledged so far (readers
 * of the file, e.g. the graph route, whose cache is keyed by the db's version
 * of the series). true when so (at once without a writer), false on timeout. */
bool ingest_rrd_wait_series(pp_app *app, const char *park, const char *indicator, int timeout_ms);

/* RRD files the writer threads have written since they started (tests). */
uint64_t ingest_rrd_written(const pp_app *app);

/* The writer threads running (0 without), and which of them (0 ..) writes
 * the series (-1 without). */
unsigned ingest_rrd_writers(const pp_app *app);
int ingest_rrd_writer_of(const pp_app *app, const char *park, const char *indicator);

/* Holds (hold true) or releases every writer thread, or only thread `which`,
 * between two writes: their queued series wait meanwhile (tests). */
void ingest_writer_hold(pp_app *app, bool hold);
void ingest_writer_hold_one(pp_app *app, int which, bool hold);

#endif
