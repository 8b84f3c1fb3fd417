/*
 * model.c — id validation, canonical periods and catalogue look-ups shared by
 * every module (see model.h). Pure functions, no I/O.
 */
#include "model.h"
#include "hash.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool pp_id_valid(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return false;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        char c = *p;
        if (n >= PP_ID_MAX)
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

char *pp_period_format(int period, char *buf, size_t len)
{
    snprintf(buf, len, "%04d-%02d", pp_period_year(period), pp_period_month(period));
    return buf;
}

#define PP_STR_(x) #x
#define PP_STR(x) PP_STR_(x)

const char *pp_period_range_why(int period)
{
    if (period < pp_period_make(PP_PERIOD_MIN_YEAR, 1))
        return "期间早于" PP_STR(PP_PERIOD_MIN_YEAR) "年1月，无法保存 / period before "
               PP_STR(PP_PERIOD_MIN_YEAR) "-01 cannot be stored";
    if (period > pp_period_make(PP_PERIOD_MAX_YEAR, 12))
        return "期间晚于" PP_STR(PP_PERIOD_MAX_YEAR) "年12月，无法保存 / period after "
               PP_STR(PP_PERIOD_MAX_YEAR) "-12 cannot be stored";
    return NULL;
}

const char *pp_year_range_why(int year)
{
    if (year < PP_PERIOD_MIN_YEAR)
        return "年份早于" PP_STR(PP_PERIOD_MIN_YEAR) "年，无法保存 / year before "
               PP_STR(PP_PERIOD_MIN_YEAR) " cannot be stored";
    if (year > PP_PERIOD_MAX_YEAR)
        return "年份晚于" PP_STR(PP_PERIOD_MAX_YEAR) "年，无法保存 / year after "
               PP_STR(PP_PERIOD_MAX_YEAR) " cannot be stored";
    return NULL;
}

/* W is a retraction (DELETE /api/v1/observations, parkpulse retract): journaled
 * and applied, never read from an input file. */
bool pp_status_valid(char c) { return c != '\0' && strchr("APERW", c) != NULL; }

const char *pp_obs_invalid(const pp_obs *o)
{
    if (!pp_id_valid(o->park) || !pp_id_valid(o->indicator))
        return "bad park or indicator id";
    return pp_obs_fields_invalid(o);
}

const char *pp_obs_fields_invalid(const pp_obs *o)
{
    const char *range = pp_period_range_why(o->period);
    if (range != NULL)
        return range;
    if (!isfinite(o->value))
        return "value not finite";
    if (o->has_yoy && !isfinite(o->yoy))
        return "yoy not finite";
    if (!pp_status_valid(o->status))
        return "status not one of A, P, E, R, W";
    if (strnlen(o->source, sizeof o->source) == sizeof o->source ||
        strnlen(o->note, sizeof o->note) == sizeof o->note)
        return "source or note not terminated";
    return NULL;
}

const char *pp_target_invalid(const pp_target *t)
{
    if (!pp_id_valid(t->park) || !pp_id_valid(t->indicator))
        return "bad park or indicator id";
    const char *range = pp_year_range_why(t->year);
    if (range != NULL)
        return range;
    if (!isfinite(t->value))
        return "value not finite";
    if (strnlen(t->source, sizeof t->source) == sizeof t->source)
        return "source not terminated";
    return NULL;
}

int pp_period_parse_canonical(const char *s, int *period)
{
    if (s == NULL || strlen(s) != 7 || s[4] != '-')
        return -1;
    int y = 0, m = 0;
    for (int i = 0; i < 7; i++) {
        if (i == 4)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (i < 4)
            y = y * 10 + (s[i] - '0');
        else
            m = m * 10 + (s[i] - '0');
    }
    if (m < 1 || m > 12 || !pp_period_valid(pp_period_make(y, m)))
        return -1;
    *period = pp_period_make(y, m);
    return 0;
}

/* ---- catalogue look-ups ----------------------------------------------------
 *
 * Four open-addressing tables (park ids, park names, indicator ids, indicator
 * labels) of slot = index + 1 (0: free), at most half full. A look-up tries
 * the id table, then the name table: the same order as the linear scans,
 * which remain for a catalogue without an index. */

typedef struct cat_table {
    uint32_t *slots;
    size_t mask;
} cat_table;

struct pp_catalog_index {
    cat_table park_id, park_name, ind_id, ind_label;
};

static uint64_t cat_hash(const char *s) { return pp_hash_str(s); }

/* The key of entry i of a table: which string of which array. */
typedef const char *(*cat_key_fn)(const pp_catalog *cat, size_t i);
static const char *key_park_id(const pp_catalog *c, size_t i) { return c->parks[i].id; }
static const char *key_park_name(const pp_catalog *c, size_t i) { return c->parks[i].name; }
static const char *key_ind_id(const pp_catalog *c, size_t i) { return c->indicators[i].id; }
static const char *key_ind_label(const pp_catalog *c, size_t i) { return c->indicators[i].label; }

static long cat_find(const pp_catalog *cat, const cat_table *t, cat_key_fn key, const char *k)
{
    for (size_t s = cat_hash(k) & t->mask;; s = (s + 1) & t->mask) {
        uint32_t v = t->slots[s];
        if (v == 0)
            return -1;
        if (strcmp(key(cat, v - 1), k) == 0)
            return (long)v - 1;
    }
}

/* Fills t with the n entries whose key is not NULL; the first of equal keys wins. */
static int cat_fill(const pp_catalog *cat, cat_table *t, cat_key_fn key, size_t n)
{
    size_t size = 8;
    while (size < 2 * n + 2)
        size *= 2;
    t->slots = calloc(size, sizeof *t->slots);
    if (t->slots == NULL)
        return -1;
    t->mask = size - 1;
    for (size_t i = 0; i < n; i++) {
        const char *k = key(cat, i);
        if (k == NULL || cat_find(cat, t, key, k) >= 0)
            continue;
        size_t s = cat_hash(k) & t->mask;
        while (t->slots[s] != 0)
            s = (s + 1) & t->mask;
        t->slots[s] = (uint32_t)(i + 1);
    }
    return 0;
}

int pp_catalog_index_build(pp_catalog *cat)
{
    pp_catalog_index_free(cat);
    if (cat->n_parks >= UINT32_MAX || cat->n_indicators >= UINT32_MAX)
        return -1;
    struct pp_catalog_index *x = calloc(1, sizeof *x);
    if (x == NULL || cat_fill(cat, &x->park_id, key_park_id, cat->n_parks) != 0 ||
        cat_fill(cat, &x->park_name, key_park_name, cat->n_parks) != 0 ||
        cat_fill(cat, &x->ind_id, key_ind_id, cat->n_indicators) != 0 ||
        cat_fill(cat, &x->ind_label, key_ind_label, cat->n_indicators) != 0) {
        cat->index = x;
        pp_catalog_index_free(cat);
        return -1;
    }
    cat->index = x;
    return 0;
}

void pp_catalog_index_free(pp_catalog *cat)
{
    struct pp_catalog_index *x = cat->index;
    if (x == NULL)
        return;
    free(x->park_id.slots);
    free(x->park_name.slots);
    free(x->ind_id.slots);
    free(x->ind_label.slots);
    free(x);
    cat->index = NULL;
}

/* The position of the park (parks) or indicator whose id, else whose name or
 * label, is key; -1 when none is. Through the index when there is one, else
 * by a scan. */
static long cat_lookup(const pp_catalog *cat, bool parks, const char *key)
{
    cat_key_fn id = parks ? key_park_id : key_ind_id;
    cat_key_fn name = parks ? key_park_name : key_ind_label;
    if (cat->index != NULL) {
        const cat_table *by_id = parks ? &cat->index->park_id : &cat->index->ind_id;
        const cat_table *by_name = parks ? &cat->index->park_name : &cat->index->ind_label;
        long i = cat_find(cat, by_id, id, key);
        return i >= 0 ? i : cat_find(cat, by_name, name, key);
    }
    size_t n = parks ? cat->n_parks : cat->n_indicators;
    for (size_t i = 0; i < n; i++)
        if (strcmp(id(cat, i), key) == 0)
            return (long)i;
    for (size_t i = 0; i < n; i++)
        if (name(cat, i) && strcmp(name(cat, i), key) == 0)
            return (long)i;
    return -1;
}

const pp_park *pp_catalog_park(const pp_catalog *cat, const char *key)
{
    if (cat == NULL || key == NULL)
        return NULL;
    long i = cat_lookup(cat, true, key);
    return i < 0 ? NULL : &cat->parks[i];
}

const pp_indicator *pp_catalog_indicator(const pp_catalog *cat, const char *key)
{
    if (cat == NULL || key == NULL)
        return NULL;
    long i = cat_lookup(cat, false, key);
    return i < 0 ? NULL : &cat->indicators[i];
}

void pp_catalog_thresholds(const pp_park *park, const pp_indicator *ind, double *warn,
                           double *crit)
{
    *warn = ind->warn;
    *crit = ind->crit;
    if (park == NULL)
        return;
    for (size_t i = 0; i < park->n_thresholds; i++) {
        if (strcmp(park->thresholds[i].indicator, ind->id) == 0) {
            *warn = park->thresholds[i].warn;
            *crit = park->thresholds[i].crit;
            return;
        }
    }
}

const char *pp_kind_name(pp_kind k)
{
    switch (k) {
    case PP_KIND_CUMULATIVE: return "cumulative";
    case PP_KIND_RATE: return "rate";
    case PP_KIND_COMPLETION: return "completion";
    case PP_KIND_RANK: return "rank";
    }
    return "unknown";
}

const char *pp_status_name(pp_status s)
{
    switch (s) {
    case PP_STATUS_OK: return "ok";
    case PP_STATUS_WARNING: return "warning";
    case PP_STATUS_CRITICAL: return "critical";
    case PP_STATUS_NO_TARGET: return "no_target";
    case PP_STATUS_STALE: return "stale";
    case PP_STATUS_NO_DATA: return "no_data";
    case PP_STATUS_OVERDUE: return "overdue";
    case PP_STATUS_RECEIVED: return "received";
    }
    return "unknown";
}
