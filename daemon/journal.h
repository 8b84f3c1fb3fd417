/*
 * journal.h — the append-only journal under state_dir/journal/ (README, Storage), the
 * source of truth from which the in-memory state and every RRD file are rebuilt.
 *
 * journal_append() writes a batch of records and fsyncs before it returns: a
 * caller acknowledges (moves a file to done/, answers 202) only after it
 * returned 0, so an acknowledged record survives kill -9 at any moment. A torn
 * last line (a crash in the middle of a write: no newline) is ignored on replay
 * and cut off before the next append; a complete last line with a bad checksum
 * is damage, and its bytes are kept in journal.log.damaged-<time> first. The
 * on-disk format is described at the top of journal.c.
 *
 * The journal also knows every delivery it holds (JREC_DELIVERY: a named input
 * such as a spool file, by name, size and content hash), so that a delivery
 * read again is recognised (journal_delivery_known) across restarts.
 *
 * A journal has no lock of its own: the caller serialises every call on one
 * journal (ingest holds its ingest lock). Only one process at a time can hold
 * the journal open (flock); a second journal_open() returns -EWOULDBLOCK.
 */
#ifndef PP_JOURNAL_H
#define PP_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "model.h"

typedef enum {
    JREC_OBS = 'O',     /* an accepted observation (every vintage is kept) */
    JREC_TARGET = 'T',  /* an accepted target */
    JREC_EVENT = 'E',   /* an opaque one-line payload of another module (alerts, seq) */
    JREC_DELIVERY = 'D' /* a delivery whose figures were journaled with it */
} journal_type;

#define JOURNAL_EVENT_MAX 4096  /* bytes of an event payload */
#define JOURNAL_NAME_MAX 1023   /* bytes of a delivery's name (longer ones are refused) */

/* The identity of a delivery: its name (e.g. "spool/x.csv"), size and hash. */
typedef struct journal_delivery {
    int64_t received_at;
    uint64_t hash;       /* journal_hash() of its bytes */
    uint64_t size;       /* bytes */
    char name[JOURNAL_NAME_MAX + 1];
} journal_delivery;

typedef struct journal_record {
    journal_type type;
    bool same_series; /* read back (replay): an O or T record of the same park and
                         indicator as the O or T record before it (a hint: the
                         series is in the cache, no prefetch needed) */
    pp_obs obs;          /* JREC_OBS */
    pp_target target;    /* JREC_TARGET */
    char event[JOURNAL_EVENT_MAX]; /* JREC_EVENT: any bytes but NUL; escaped on disk */
    journal_delivery delivery;     /* JREC_DELIVERY */
} journal_record;

typedef struct journal journal;

/* Opens (creating) the journal in dir (and dir itself, mode 0750, if missing),
 * and cuts off a torn last line (keeping a damaged one aside, see above).
 * Returns 0 or a negative errno (logged): -EINVAL when the file is not a
 * journal of this format version. An empty file (or one cut inside its header)
 * is initialised: call journal_check() first when that may be a loss. Free
 * with journal_close. */
int journal_open(const char *dir, journal **out);

/* journal_open and journal_replay in one reading of the file (start-up reads
 * the journal once, not twice): cb sees exactly what journal_replay would
 * show it. A non-zero return of cb fails the open (-ECANCELED when it was
 * positive, else that value). ahead (may be NULL) is a hint: called for an
 * O or T record that starts a series (same_series false) a few records
 * before cb is called for it, three times (stage 0, 1, 2, nearer each time),
 * so that cb finds in the cache what it will touch (it must not change
 * anything); the records of the series before it are in the cache already. A large journal is read and parsed on a
 * second thread while cb (and ahead) run on the calling thread, in order. */
int journal_open_replay(const char *dir, int (*cb)(const journal_record *rec, void *ud),
                        void (*ahead)(const journal_record *rec, int stage, void *ud), void *ud,
                        journal **out);

/* Calls cb for every intact record, oldest first; stops early when cb returns
 * non-zero (and returns that). Returns 0, or a negative errno on I/O error.
 * Corrupt lines other than a torn tail are reported and skipped. rec is valid
 * only during the call, and only its member for rec->type is filled in. */
int journal_replay(journal *j, int (*cb)(const journal_record *rec, void *ud), void *ud);

/* Appends n records and fsyncs. Returns 0, or a negative errno (nothing of the
 * batch is then to be acknowledged; a partial batch is cut off again): -EINVAL
 * when a record is invalid (bad id, period, status, non-finite value; nothing
 * written), -ENOSPC/-EFBIG/-EIO from the disk. */
int journal_append(journal *j, const journal_record *recs, size_t n);

/* The same for figures and targets as ingest holds them (no journal_record,
 * whose inline event payload makes it 4.8 KB: a batch of 4,096 figures would
 * take 20 MB to stage): the n_obs observations, then the n_tg targets, as one
 * batch with one fsync. */
int journal_append_figures(journal *j, const pp_obs *obs, size_t n_obs, const pp_target *tg,
                           size_t n_tg);

/* The same, with n_dl deliveries in the same batch (one write, one fsync): the
 * figures and the identities of the deliveries they came from are durable
 * together or not at all. */
int journal_append_batch(journal *j, const pp_obs *obs, size_t n_obs, const pp_target *tg,
                         size_t n_tg, const journal_delivery *dl, size_t n_dl);

/* The same for n event payloads (each shorter than JOURNAL_EVENT_MAX). */
int journal_append_events(journal *j, const char *const *events, size_t n);

/* FNV-1a (64 bits, offset basis 14695981039346656037) of len bytes. */
uint64_t journal_hash(const void *data, size_t len);

/* true when a delivery of this name, size and hash is in the journal (read at
 * open, or appended since); *at (may be NULL) receives its received_at. */
bool journal_delivery_known(const journal *j, const char *name, uint64_t size, uint64_t hash,
                            int64_t *at);

/* Looks at the journal in dir before it is opened. Returns 0 when it can be
 * opened: intact, or missing/empty in a state directory never used before.
 * Returns 1, with a message for the operator in why, when it is damaged so
 * that opening would lose figures: missing, empty, cut inside its header or
 * holding only its header while rrd_dir shows earlier use (an RRD file or the
 * .clean marker), or its first line is not a journal header. A negative errno
 * (logged) when it cannot be looked at. */
int journal_check(const char *dir, const char *rrd_dir, char *why, size_t whylen);

/* parkpulsed --recover, with the state directory locked: when journal_check()
 * finds the journal damaged, moves it aside as journal.log.damaged-<time>
 * (never deleted), starts a fresh journal holding every intact record found in
 * the damaged file (none when it was cut inside its header), and moves the RRD
 * files aside as <rrd_dir>.damaged-<time>/ (rrdtool still reads them), so that
 * they are rebuilt from what was saved. Returns 0 (also when nothing was
 * damaged), or a negative errno (logged). */
int journal_recover(const char *dir, const char *rrd_dir);

/* For a copy of a journal file (parkpulse backup): finds the end of its first
 * n intact records (UINT64_MAX: of all of them), reading the file at path
 * without locking or changing it. *end receives the offset just past the
 * n-th intact record's line (past the header line when n is 0), *count the
 * intact records before *end (fewer than n when the file holds fewer). A torn
 * or damaged tail, and corrupt lines after the last intact record, lie beyond
 * *end. Returns 0, -EINVAL when the file is not a journal of this format
 * version (or cut inside its header line), or a negative errno (logged). */
int journal_prefix(const char *path, uint64_t n, off_t *end, uint64_t *count);

/* Compaction (journal.c, "Compaction"): rewrites the journal without the
 * intact records whose bit is set in drop (bit i, i.e. drop[i / 8] >> (i % 8)
 * & 1, is the i-th intact record in replay order; records from n_drop_bits on
 * are kept) and without a D line whose identity an earlier D line already
 * gave. Every other line is copied byte for byte (corrupt lines too): first
 * the lines that are not O or T lines, in their order; then in series order
 * the O and T lines of each series together, in their order, the series as
 * they first appear. The new file is written beside the journal, synced,
 * renamed over it and the directory fsync'd: a crash at any moment leaves the
 * old journal or the new one, whole; a new file left over is removed by the
 * next open.
 * The caller holds off appends meanwhile (the ingest lock); the deliveries
 * known stay the same. *dropped (may be NULL) receives the records left out;
 * journal_count() is the records kept. Returns 0 or a negative errno (logged;
 * the journal is then unchanged). */
int journal_compact(journal *j, const uint8_t *drop, uint64_t n_drop_bits, uint64_t *dropped);

/* Tests only: when set, called at each step of journal_compact (a test's
 * hook may _exit() there, as a kill -9 would stop it). */
enum {
    JOURNAL_COMPACT_STEP_WRITING = 1, /* a piece of the new file written */
    JOURNAL_COMPACT_STEP_WRITTEN,     /* all of it, not synced */
    JOURNAL_COMPACT_STEP_SYNCED,      /* fdatasync'd, not renamed */
    JOURNAL_COMPACT_STEP_RENAMED,     /* renamed over the journal, directory not synced */
    JOURNAL_COMPACT_STEP_DONE         /* directory synced */
};
extern void (*journal_compact_hook)(int step);

/* Number of intact records in the journal (after replay/appends). */
uint64_t journal_count(const journal *j);

/* The fdatasync calls made by appends since journal_open, and the
 * nanoseconds spent in them (for /metrics; readable from any thread). */
void journal_sync_stats(const journal *j, uint64_t *n, uint64_t *ns);

void journal_close(journal *j);

#endif
