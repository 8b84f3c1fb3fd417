/*
 * format.c — what parkpulse-notify sends, and to whom (see nt.h).
 *
 * Formats of a web hook route (parkpulse.conf(5), "notify"):
 *   json          the alert exactly as published on the bus;
 *   alertmanager  Alertmanager's webhook payload, version 4: version,
 *                 groupKey, truncatedAlerts, status (firing | resolved),
 *                 receiver (the route's name), groupLabels, commonLabels,
 *                 commonAnnotations, externalURL (base_url) and one alert
 *                 with status, labels, annotations, startsAt, endsAt,
 *                 generatorURL and fingerprint. A recovery (status ok) and a
 *                 late figure (received) are "resolved"; labels are
 *                 alertname (ParkBehindPace, or ParkFigureOverdue for stale,
 *                 overdue and received), park, indicator, period and
 *                 severity (the status); the fingerprint (16 hex digits of
 *                 FNV-1a over alertname, park and indicator) is the same for
 *                 an alert and its recovery, so bridges pair them;
 *   dingtalk      {"msgtype":"markdown","markdown":{"title":…,"text":…}}
 *   wecom         {"msgtype":"markdown","markdown":{"content":…}}
 * The robots' text and the mail carry the park, the indicator, the figure,
 * the completion against the pace, the gap, the streak when there is one,
 * the daemon's message, and links to the park's page and to the graph.
 */
#include "nt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


const char *nt_status_zh(const char *s)
{
    static const char *const map[][2] = {
        { "ok", "恢复正常" },        { "warning", "预警" },     { "critical", "严重滞后" },
        { "stale", "逾期未报" },     { "overdue", "逾期未报" }, { "received", "已补报" },
        { "no_target", "未设目标" }, { "no_data", "无数据" },   { "none", "无" },
    };
    for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i][0]) == 0)
            return map[i][1];
    return s ? s : "?";
}

/* 0 for what is quiet, 1 warning, 2 critical, 3 stale/overdue. */
static int severity(const char *s)
{
    if (s == NULL)
        return 0;
    if (strcmp(s, "warning") == 0)
        return 1;
    if (strcmp(s, "critical") == 0)
        return 2;
    if (strcmp(s, "stale") == 0 || strcmp(s, "overdue") == 0)
        return 3;
    return 0;
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static bool in_list(char *const *list, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], s) == 0)
            return true;
    return false;
}

bool nt_wanted(const conf_route *rt, json_t *a)
{
    if (json_is_true(json_object_get(a, "silenced")))
        return false;
    if (rt->n_parks && !in_list(rt->parks, rt->n_parks, str(a, "park")))
        return false;
    if (rt->n_indicators && !in_list(rt->indicators, rt->n_indicators, str(a, "indicator")))
        return false;
    if (rt->min_status) {
        int want = severity(rt->min_status);
        int cur = severity(str(a, "status")), prev = severity(str(a, "previous"));
        const char *st = str(a, "status");
        /* a recovery or a late figure reaches those who heard of the trouble */
        if (strcmp(st, "ok") == 0 || strcmp(st, "received") == 0)
            cur = prev > cur ? prev : cur;
        if (strcmp(st, "received") == 0 && cur < 3)
            cur = 3;
        if (cur < want)
            return false;
    }
    return true;
}

/* A number as people write it: at most 2 decimals, no trailing zeros. */
static void put_num(char *buf, size_t len, json_t *v)
{
    if (!json_is_number(v)) {
        snprintf(buf, len, "—");
        return;
    }
    double d = json_number_value(v);
    snprintf(buf, len, "%.2f", d);
    char *dot = strchr(buf, '.');
    if (dot) {
        char *e = buf + strlen(buf) - 1;
        while (e > dot && *e == '0')
            *e-- = '\0';
        if (e == dot)
            *e = '\0';
    }
    if (strcmp(buf, "-0") == 0)
        snprintf(buf, len, "0");
}

/* "湘潭经开区 固定资产投资 2024-08 预警" */
static void title_of(json_t *a, char *buf, size_t len)
{
    snprintf(buf, len, "【%s】%s %s %s", nt_status_zh(str(a, "status")), str(a, "park_name"),
             str(a, "label"), str(a, "period"));
}

/* The lines of the message (markdown when md, plain text otherwise). */
static char *body_text(const nt_route *r, json_t *a, bool md)
{
    char *out = NULL;
    size_t outlen = 0;
    char title[512], v[64], t[64], c[64], p[64], g[64];
    title_of(a, title, sizeof title);
    const char *unit = str(a, "unit");
    const char *status = str(a, "status"), *prev = str(a, "previous");
    FILE *b = open_memstream(&out, &outlen);
    if (b == NULL)
        return NULL;
    const char *li = md ? "- " : "";
    if (md)
        fprintf(b, "### %s\n\n", title);
    else
        fprintf(b, "%s\n\n", title);
    fprintf(b, "%s园区: %s (%s)\n", li, str(a, "park_name"), str(a, "park"));
    fprintf(b, "%s指标: %s, %s\n", li, str(a, "label"), str(a, "period"));
    fprintf(b, "%s状态: %s%s%s (%s, 此前 %s)\n", li, md ? "**" : "", nt_status_zh(status),
                md ? "**" : "", status, nt_status_zh(prev));
    put_num(v, sizeof v, json_object_get(a, "value"));
    put_num(t, sizeof t, json_object_get(a, "target"));
    if (json_is_number(json_object_get(a, "value")))
        fprintf(b, "%s数值: %s %s, 目标 %s %s\n", li, v, unit, t, unit);
    put_num(c, sizeof c, json_object_get(a, "completion_pct"));
    put_num(p, sizeof p, json_object_get(a, "pace_pct"));
    if (json_is_number(json_object_get(a, "completion_pct")))
        fprintf(b, "%s完成: %s%% (序时进度 %s%%)\n", li, c, p);
    put_num(g, sizeof g, json_object_get(a, "gap_pp"));
    if (json_is_number(json_object_get(a, "gap_pp")))
        fprintf(b, "%s较序时: %s 个百分点\n", li, g);
    json_t *streak = json_object_get(a, "streak");
    if (json_is_integer(streak) && json_integer_value(streak) > 1)
        fprintf(b, "%s连续: %lld 个月\n", li, (long long)json_integer_value(streak));
    if (*str(a, "message"))
        fprintf(b, "%s说明: %s\n", li, str(a, "message"));
    fprintf(b, "%s时间: %s (#%lld)\n", li, str(a, "time"),
                (long long)json_integer_value(json_object_get(a, "seq")));
    char park_url[1024], graph_url[1024];
    snprintf(park_url, sizeof park_url, "%s/park/%s", r->base_url, str(a, "park"));
    snprintf(graph_url, sizeof graph_url, "%s/graph/%s/%s.png", r->base_url, str(a, "park"),
             str(a, "indicator"));
    if (md)
        fprintf(b, "\n[园区页面](%s) · [图表](%s)\n", park_url, graph_url);
    else
        fprintf(b, "\n园区页面: %s\n图表: %s\n", park_url, graph_url);
    if (fclose(b) != 0) {
        free(out);
        return NULL;
    }
    return out;
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static char *alertmanager(const nt_route *r, json_t *a)
{
    const char *status = str(a, "status");
    bool resolved = strcmp(status, "ok") == 0 || strcmp(status, "received") == 0;
    bool overdue = strcmp(status, "stale") == 0 || strcmp(status, "overdue") == 0 ||
                   strcmp(status, "received") == 0;
    const char *alertname = overdue ? "ParkFigureOverdue" : "ParkBehindPace";
    char title[512], fp[17], gen[1024], key[1024];
    title_of(a, title, sizeof title);
    uint64_t h = fnv1a(14695981039346656037ULL, alertname);
    h = fnv1a(fnv1a(h, "\x1f"), str(a, "park"));
    h = fnv1a(fnv1a(h, "\x1f"), str(a, "indicator"));
    snprintf(fp, sizeof fp, "%016llx", (unsigned long long)h);
    snprintf(gen, sizeof gen, "%s/park/%s", r->base_url, str(a, "park"));
    snprintf(key, sizeof key, "{}:{alertname=\"%s\", indicator=\"%s\", park=\"%s\"}", alertname,
             str(a, "indicator"), str(a, "park"));

    json_t *labels = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "alertname", alertname,
                               "park", str(a, "park"), "park_name", str(a, "park_name"),
                               "indicator", str(a, "indicator"), "label", str(a, "label"),
                               "period", str(a, "period"), "severity", status);
    char *text = body_text(r, a, false);
    json_t *ann = json_pack("{s:s, s:s, s:s}", "summary", title, "description", text ? text : "",
                            "message", str(a, "message"));
    free(text);
    json_t *group = json_pack("{s:s, s:s, s:s}", "alertname", alertname, "park", str(a, "park"),
                              "indicator", str(a, "indicator"));
    if (labels == NULL || ann == NULL || group == NULL) {
        json_decref(labels);
        json_decref(ann);
        json_decref(group);
        return NULL;
    }
    json_t *one = json_pack("{s:s, s:O, s:O, s:s, s:s, s:s, s:s}", "status",
                            resolved ? "resolved" : "firing", "labels", labels, "annotations", ann,
                            "startsAt", str(a, "time"), "endsAt",
                            resolved ? str(a, "time") : "0001-01-01T00:00:00Z", "generatorURL",
                            gen, "fingerprint", fp);
    json_t *root = one ? json_pack("{s:s, s:s, s:i, s:s, s:s, s:o, s:o, s:o, s:s, s:[o]}",
                                   "version", "4", "groupKey", key, "truncatedAlerts", 0,
                                   "status", resolved ? "resolved" : "firing", "receiver",
                                   r->cfg->name, "groupLabels", group, "commonLabels", labels,
                                   "commonAnnotations", ann, "externalURL", r->base_url, "alerts",
                                   one)
                       : NULL;
    if (root == NULL) {
        if (one == NULL) {
            json_decref(labels);
            json_decref(ann);
            json_decref(group);
        }
        return NULL;
    }
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out;
}

char *nt_format(const nt_route *r, json_t *a, const char *raw)
{
    json_t *root = NULL;
    char title[512];
    switch (r->cfg->format) {
    case CONF_FMT_JSON:
        return strdup(raw);
    case CONF_FMT_ALERTMANAGER:
        return alertmanager(r, a);
    case CONF_FMT_DINGTALK: {
        char *text = body_text(r, a, true);
        title_of(a, title, sizeof title);
        if (text)
            root = json_pack("{s:s, s:{s:s, s:s}}", "msgtype", "markdown", "markdown", "title",
                             title, "text", text);
        free(text);
        break;
    }
    case CONF_FMT_WECOM: {
        char *text = body_text(r, a, true);
        if (text)
            root = json_pack("{s:s, s:{s:s}}", "msgtype", "markdown", "markdown", "content", text);
        free(text);
        break;
    }
    case CONF_FMT_MAIL:
        return NULL;
    }
    if (root == NULL)
        return NULL;
    char *out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    return out;
}

/* RFC 2047 encoded-word (base64, UTF-8) of s. */
static void put_encoded(FILE *b, const char *s)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    /* encoded-words of at most 45 input bytes, cut on UTF-8 character boundaries */
    size_t i = 0;
    bool first = true;
    while (i < n) {
        size_t end = i + 45 < n ? i + 45 : n;
        while (end < n && end > i && ((unsigned char)s[end] & 0xC0) == 0x80)
            end--;
        fputs(first ? "=?UTF-8?B?" : "\r\n =?UTF-8?B?", b);
        first = false;
        for (size_t j = i; j < end; j += 3) {
            unsigned v = (unsigned char)s[j] << 16;
            if (j + 1 < end)
                v |= (unsigned char)s[j + 1] << 8;
            if (j + 2 < end)
                v |= (unsigned char)s[j + 2];
            char q[5] = { tbl[(v >> 18) & 63], tbl[(v >> 12) & 63],
                          j + 1 < end ? tbl[(v >> 6) & 63] : '=', j + 2 < end ? tbl[v & 63] : '=',
                          0 };
            fputs(q, b);
        }
        fputs("?=", b);
        i = end;
    }
}

char *nt_mail(const nt_route *r, json_t *a, const char *from)
{
    char title[512], date[64];
    title_of(a, title, sizeof title);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    char *text = body_text(r, a, false), *out = NULL;
    size_t outlen = 0;
    FILE *b = text ? open_memstream(&out, &outlen) : NULL;
    if (b == NULL) {
        free(text);
        return NULL;
    }
    fprintf(b, "Date: %s\r\nFrom: %s\r\nTo: ", date, from);
    for (size_t i = 0; i < r->cfg->n_to; i++)
        fprintf(b, "%s%s", i ? ", " : "", r->cfg->to[i]);
    fprintf(b, "\r\nMessage-ID: <parkpulse-%s-%lld-%s>\r\nSubject: ", r->cfg->name,
                (long long)json_integer_value(json_object_get(a, "seq")),
                strchr(from, '@') ? strchr(from, '@') + 1 : "localhost");
    put_encoded(b, title);
    fputs("\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
          "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n", b);
    /* CRLF line ends; a line holding only "." cannot occur (curl dot-stuffs anyway) */
    for (const char *p = text; *p; p++) {
        if (*p == '\n')
            fputs("\r\n", b);
        else if (*p != '\r')
            fputc(*p, b);
    }
    free(text);
    if (fclose(b) != 0) {
        free(out);
        return NULL;
    }
    return out;
}
