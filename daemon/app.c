/*
 * app.c — the read view (app.h: view_begin takes cfg_lock, then the db
 * lock), the daemon's clock and local-time formatting. The configured
 * timezone is put into TZ once at start-up (before any thread starts), so
 * localtime_r is safe from every thread afterwards.
 */
#include "app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void view_begin(pp_app *app, pp_view *v)
{
    pthread_rwlock_rdlock(&app->cfg_lock);
    db_rdlock(app->db);
    v->cfg = app->cfg;
    v->cfg_generation = app->cfg_generation;
    v->db = app->db;
    v->alerts = app->alerts;
    v->now = app_now(app);
    v->held.cfg_lock = &app->cfg_lock;
    v->held.db = app->db;
}

void view_end(pp_view *v)
{
    db_unlock(v->held.db);
    pthread_rwlock_unlock(v->held.cfg_lock);
    v->held.cfg_lock = NULL;
    v->held.db = NULL;
}

int64_t app_now(const pp_app *app)
{
    if (app && app->fixed_now)
        return app->fixed_now;
    return (int64_t)time(NULL);
}

void app_local_date(int64_t t, int *year, int *month, int *day)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    *year = tm.tm_year + 1900;
    *month = tm.tm_mon + 1;
    *day = tm.tm_mday;
}

char *app_format_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02ld:%02ld", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, off / 3600,
             (off % 3600) / 60);
    return buf;
}

int app_parse_time(const char *s, int64_t *t)
{
    if (s == NULL || *s == '\0')
        return -1;
    if (s[0] == '@') {
        char *end;
        long long v = strtoll(s + 1, &end, 10);
        if (*end != '\0' || v < 0)
            return -1;
        *t = v;
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3)
        return -1;
    const char *p = s + n;
    if (*p == 'T' || *p == ' ') {
        int n2 = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &se, &n2) != 3)
            return -1;
        p += 1 + n2;
    }
    if (y < 1970 || y > 2199 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    if (*p == '\0') {
        tm.tm_isdst = -1;
        time_t r = mktime(&tm);
        if (r == (time_t)-1)
            return -1;
        *t = r;
        return 0;
    }
    long off = 0;
    if (*p == 'Z' && p[1] == '\0') {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2 || oh > 14 || om > 59)
            return -1;
        off = (oh * 3600L + om * 60L) * (*p == '-' ? -1 : 1);
    } else {
        return -1;
    }
    time_t r = timegm(&tm);
    if (r == (time_t)-1)
        return -1;
    *t = (int64_t)r - off;
    return 0;
}
