/*
 * journal.h — the append-only journal under state_dir/journal/ (SPEC §5), the
 * source of truth from which the in-memory state and every RRD file are rebuilt.
 *
 * journal_append() writes a batch of records and fsyncs before it returns: a
 * caller acknowledges (moves a file to done/, answers 202) only after it
 * returned 0, so an acknowledged record survives kill -9 at any moment. A torn
 * last line (a crash in the middle of a write) is detected by its checksum and
 * ignored on replay, and cut off before the next append. The on-disk format is
 * described at the top of journal.c.
 *
 * A journal has no lock of its own: the caller serialises every call on one
 * journal (ingest holds its ingest lock). Only one process at a time can hold
 * the journal open (flock); a second journal_open() returns -EWOULDBLOCK.
 */
#ifndef PP_JOURNAL_H
#define PP_JOURNAL_H

#include "model.h"

typedef enum {
    JREC_OBS = 'O',     /* an accepted observation (every vintage is kept) */
    JREC_TARGET = 'T',  /* an accepted target */
    JREC_EVENT = 'E'    /* an opaque one-line payload of another module (alerts, seq) */
} journal_type;

#define JOURNAL_EVENT_MAX 4096  /* bytes of an event payload */

typedef struct journal_record {
    journal_type type;
    pp_obs obs;          /* JREC_OBS */
    pp_target target;    /* JREC_TARGET */
    char event[JOURNAL_EVENT_MAX]; /* JREC_EVENT: any bytes but NUL; escaped on disk */
} journal_record;

typedef struct journal journal;

/* Opens (creating) the journal in dir (and dir itself, mode 0750, if missing),
 * and cuts off a torn last line. Returns 0 or a negative errno (logged): -EINVAL
 * when the file is not a journal of this format version. Free with journal_close. */
int journal_open(const char *dir, journal **out);

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

/* The same for n event payloads (each shorter than JOURNAL_EVENT_MAX). */
int journal_append_events(journal *j, const char *const *events, size_t n);

/* Number of intact records in the journal (after replay/appends). */
uint64_t journal_count(const journal *j);

void journal_close(journal *j);

#endif
