/*
 * test_jrec.h — journal records (journal.h) built from their fields in one
 * call, for the suites that write or compare journals by hand (check_journal,
 * check_compact). Header only; the figure and the target come from
 * test_obs.h.
 */
#ifndef PP_TEST_JREC_H
#define PP_TEST_JREC_H

#include "journal.h"
#include "test_obs.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* An O record: park's ind for y-m, value v, status st, source src, note. */
static inline journal_record jrec_obs(const char *park, const char *ind, int y, int m, double v,
                                      char st, const char *src, const char *note, int64_t at)
{
    journal_record r;
    memset(&r, 0, sizeof r);
    r.type = JREC_OBS;
    r.obs = test_obs(park, ind, y, m, v, st, src, at);
    snprintf(r.obs.note, sizeof r.obs.note, "%s", note);
    return r;
}

/* A T record: park's target of ind for year, from src. */
static inline journal_record jrec_target(const char *park, const char *ind, int year, double v,
                                         const char *src, int64_t at)
{
    journal_record r;
    memset(&r, 0, sizeof r);
    r.type = JREC_TARGET;
    r.target = test_target(park, ind, year, v, src, at);
    return r;
}

/* An E record (an alert engine line). */
static inline journal_record jrec_event(const char *payload)
{
    journal_record r;
    memset(&r, 0, sizeof r);
    r.type = JREC_EVENT;
    snprintf(r.event, sizeof r.event, "%s", payload);
    return r;
}

#endif
