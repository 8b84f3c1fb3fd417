/*
 * model.h — the plain data types every part of parkpulse speaks (README, Feeding figures).
 *
 * A park and an indicator are named by ids of the form [a-z0-9][a-z0-9_-]{0,63};
 * an id that passed pp_id_valid() is safe to use in a file name, a ZeroMQ topic
 * and a URL. Periods ("through month M of year Y") are ints counted in months
 * (pp_period_make), so that month arithmetic is subtraction. Nothing here does
 * I/O or touches a library: these types cross every module boundary.
 */
#ifndef PP_MODEL_H
#define PP_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PP_ID_MAX 64          /* longest id, in bytes, not counting the NUL */
#define PP_SOURCE_MAX 63      /* longest observation source kept, in bytes */
#define PP_NOTE_MAX 255       /* longest note kept, in bytes */

typedef enum {
    PP_KIND_CUMULATIVE = 0, /* year-to-date amount, judged by pace against an annual amount */
    PP_KIND_RATE,           /* percentage or level judged directly against a target rate */
    PP_KIND_COMPLETION,     /* reported percentage of the annual target, judged by pace */
    PP_KIND_RANK            /* position among peers, lower is better */
} pp_kind;

typedef enum { PP_DIR_HIGHER = 0, PP_DIR_LOWER } pp_direction;

typedef enum {
    PP_STATUS_OK = 0,
    PP_STATUS_WARNING,
    PP_STATUS_CRITICAL,
    PP_STATUS_NO_TARGET,
    PP_STATUS_STALE,        /* no series has it any more: only read back from old journals */
    PP_STATUS_NO_DATA,      /* a target for the current year, no figure yet */
    PP_STATUS_OVERDUE,      /* alerts only: the figure of a month is overdue */
    PP_STATUS_RECEIVED      /* alerts only: the overdue figure arrived */
} pp_status;

typedef struct pp_indicator {
    char id[PP_ID_MAX + 1];
    char *label;            /* e.g. 固定资产投资 (owned by the catalogue) */
    char *unit;             /* e.g. 亿元, 万美元, %, 个, 位 */
    pp_kind kind;
    pp_direction direction; /* for PP_KIND_RATE */
    double warn, crit;      /* thresholds in percentage points (places for rank) */
    bool has_pace;          /* false: linear 100*M/12 */
    double pace[12];        /* cumulative percentages, non-decreasing, pace[11] == 100 */
    int escalate;           /* N > 0: N consecutive periods in warning are critical; 0 off */
    bool relative;          /* rule = "relative": warn/crit judge the shortfall relative to
                               pace, 100*(pace - completion)/pace (cumulative, completion) */
} pp_indicator;

/* A park's own warn/crit for one indicator (overrides the indicator's). */
typedef struct pp_threshold {
    char indicator[PP_ID_MAX + 1];
    double warn, crit;
} pp_threshold;

typedef struct pp_park {
    char id[PP_ID_MAX + 1];
    char *name;             /* e.g. 湘潭经开区 */
    char *level;            /* national | provincial | other, or NULL */
    char *type;             /* etdz | hitech | industrial | other, or NULL */
    char *region;           /* free text or NULL */
    pp_threshold *thresholds;
    size_t n_thresholds;
} pp_park;

/* The parks and indicators the configuration declares, in declaration order. */
typedef struct pp_catalog {
    pp_park *parks;
    size_t n_parks;
    pp_indicator *indicators;
    size_t n_indicators;
    struct pp_catalog_index *index; /* hash look-ups, or NULL: linear search */
} pp_catalog;

/* One figure as read from outside (a CSV row, a POST), before it is journaled. */
typedef struct pp_obs {
    char park[PP_ID_MAX + 1];
    char indicator[PP_ID_MAX + 1];
    int period;                   /* pp_period_make(year, month) */
    double value;                 /* in the indicator's unit */
    char status;                  /* SDMX OBS_STATUS: 'A', 'P', 'E', 'R' */
    char source[PP_SOURCE_MAX + 1];
    char note[PP_NOTE_MAX + 1];
    int64_t received_at;          /* unix seconds, set when accepted */
    bool has_yoy;                 /* false: no 同比 given (a zeroed pp_obs has none) */
    double yoy;                   /* 同比增长 %, as published (README); never computed */
} pp_obs;

/* An annual target. */
typedef struct pp_target {
    char park[PP_ID_MAX + 1];
    char indicator[PP_ID_MAX + 1];
    int year;
    double value;
    char source[PP_SOURCE_MAX + 1];
    int64_t received_at;
} pp_target;

/* ---- ids ---------------------------------------------------------------- */

/* true when s matches [a-z0-9][a-z0-9_-]{0,63}. */
bool pp_id_valid(const char *s);

/* ---- periods ------------------------------------------------------------ */

/* The months parkpulse takes, 1980-01 .. 2199-12: one rule for every input
 * (the CSV reader, the db, the journal's replay) and for the RRD files. An RRD
 * file holds no month before 1970 (librrd misreads negative times) and
 * rrdtool's own `fetch` and `graph` refuse any time before 1980, so a month
 * before 1980 could be stored but never read back with rrdtool. */
#define PP_PERIOD_MIN_YEAR 1980
#define PP_PERIOD_MAX_YEAR 2199

static inline int pp_period_make(int year, int month) { return year * 12 + (month - 1); }
static inline int pp_period_year(int period) { return period / 12; }
static inline int pp_period_month(int period) { return period % 12 + 1; }

/* true when `period` (a pp_period_make value) or `year` is in the range. */
static inline bool pp_period_valid(int period)
{
    return period >= pp_period_make(PP_PERIOD_MIN_YEAR, 1) &&
           period <= pp_period_make(PP_PERIOD_MAX_YEAR, 12);
}
static inline bool pp_year_valid(int year)
{
    return year >= PP_PERIOD_MIN_YEAR && year <= PP_PERIOD_MAX_YEAR;
}

/* Why a period or a year is outside the range, for the people who send
 * figures, Chinese first ("期间早于1980年1月，无法保存 / period before 1980-01
 * cannot be stored"); NULL when it is inside. Static strings. */
const char *pp_period_range_why(int period);
const char *pp_year_range_why(int year);

/* ---- validation -------------------------------------------------------- */

/* The one check of an observation and of a target, made by the CSV reader
 * before it hands a record over, by the db before it stores one and by the
 * journal before it writes or replays one: ids of pp_id_valid(), the period
 * or year in range, finite numbers, an OBS_STATUS of A, P, E or R, strings
 * terminated. NULL when valid, else why not (a static string; the range's
 * reason is pp_period_range_why()'s, Chinese first). */
const char *pp_obs_invalid(const pp_obs *o);
const char *pp_target_invalid(const pp_target *t);
/* pp_obs_invalid without the ids: for a caller that knows them valid (the db,
 * adding to the series it added to last). */
const char *pp_obs_fields_invalid(const pp_obs *o);

/* true for an SDMX OBS_STATUS parkpulse keeps: 'A', 'P', 'E' or 'R'. */
bool pp_status_valid(char c);

/* An observation without a status (an empty CSV cell, a collector's 0) is
 * 'A', normal: the one place that says so. */
#define PP_OBS_STATUS_DEFAULT 'A'
static inline char pp_obs_status_or_default(char c) { return c ? c : PP_OBS_STATUS_DEFAULT; }

/* Writes "YYYY-MM" into buf (at least 8 bytes). Returns buf. */
char *pp_period_format(int period, char *buf, size_t len);

/* Parses exactly "YYYY-MM" (the canonical form used by the API and the journal).
 * Returns 0 and sets *period, or -1. */
int pp_period_parse_canonical(const char *s, int *period);

/* ---- catalogue look-ups -------------------------------------------------- */

/* Returns the park with this id (or, failing that, this exact name), or NULL. */
const pp_park *pp_catalog_park(const pp_catalog *cat, const char *id_or_name);

/* Returns the indicator with this id (or, failing that, this exact label), or NULL. */
const pp_indicator *pp_catalog_indicator(const pp_catalog *cat, const char *id_or_label);

/* Builds cat->index so that the two look-ups above hash instead of scanning
 * (every CSV row looks up its park: 1,000 parks made that most of the parse).
 * Call it once the parks and indicators are final; 0, or -1 on ENOMEM (the
 * look-ups then stay linear, with the same answers). Freed by
 * pp_catalog_index_free. */
int pp_catalog_index_build(pp_catalog *cat);
void pp_catalog_index_free(pp_catalog *cat);

/* warn/crit for a park and indicator: the park's override or the indicator's own. */
void pp_catalog_thresholds(const pp_park *park, const pp_indicator *ind, double *warn,
                           double *crit);

const char *pp_kind_name(pp_kind k);
const char *pp_status_name(pp_status s);

#endif
