/*
 * model.c — id validation, canonical periods and catalogue look-ups shared by
 * every module (see model.h). Pure functions, no I/O.
 */
#include "model.h"

#include <stdio.h>
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
    if (y < PP_PERIOD_MIN_YEAR || y > PP_PERIOD_MAX_YEAR || m < 1 || m > 12)
        return -1;
    *period = pp_period_make(y, m);
    return 0;
}

const pp_park *pp_catalog_park(const pp_catalog *cat, const char *key)
{
    if (cat == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < cat->n_parks; i++)
        if (strcmp(cat->parks[i].id, key) == 0)
            return &cat->parks[i];
    for (size_t i = 0; i < cat->n_parks; i++)
        if (cat->parks[i].name && strcmp(cat->parks[i].name, key) == 0)
            return &cat->parks[i];
    return NULL;
}

const pp_indicator *pp_catalog_indicator(const pp_catalog *cat, const char *key)
{
    if (cat == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < cat->n_indicators; i++)
        if (strcmp(cat->indicators[i].id, key) == 0)
            return &cat->indicators[i];
    for (size_t i = 0; i < cat->n_indicators; i++)
        if (cat->indicators[i].label && strcmp(cat->indicators[i].label, key) == 0)
            return &cat->indicators[i];
    return NULL;
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
    }
    return "unknown";
}
