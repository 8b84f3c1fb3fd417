/*
 * test_obs.h — a figure (pp_obs) and a target (pp_target) built from their
 * fields in one call, for the suites that feed the db or the journal by hand.
 * Header only.
 */
#ifndef PP_TEST_OBS_H
#define PP_TEST_OBS_H

#include "model.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* park's ind for y-m: value v, status st ('A', 'P', 'E', 'R'), source src,
 * received at (unix seconds); no yoy, no note. */
static inline pp_obs test_obs(const char *park, const char *ind, int y, int m, double v, char st,
                              const char *src, int64_t at)
{
    pp_obs o;
    memset(&o, 0, sizeof o);
    snprintf(o.park, sizeof o.park, "%s", park);
    snprintf(o.indicator, sizeof o.indicator, "%s", ind);
    o.period = pp_period_make(y, m);
    o.value = v;
    o.status = st;
    snprintf(o.source, sizeof o.source, "%s", src);
    o.received_at = at;
    return o;
}

/* park's annual target of ind for year: v, from src, received at. */
static inline pp_target test_target(const char *park, const char *ind, int year, double v,
                                    const char *src, int64_t at)
{
    pp_target t;
    memset(&t, 0, sizeof t);
    snprintf(t.park, sizeof t.park, "%s", park);
    snprintf(t.indicator, sizeof t.indicator, "%s", ind);
    t.year = year;
    t.value = v;
    snprintf(t.source, sizeof t.source, "%s", src);
    t.received_at = at;
    return t;
}

#endif
