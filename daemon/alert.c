/*
 * alert.c — the alert state machine and its history (see alert.h).
 *
 * Journal events written here (one line each, in the journal's event record):
 *
 *   alert 42 xiangtan-etdz fiscal_revenue 2021-08 warning {"seq":42,"id":…}
 *   state xiangtan-etdz fixed_asset_investment 2021-08 ok
 *
 * Readers (HTTP threads) and the writer (the thread holding the ingest lock)
 * meet under one mutex; the status evaluation itself runs under the cfg and db
 * read locks, and the bus is handed copies.
 */
#include "alert.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal.h"
#include "log.h"
#include "status.h"

typedef struct series_state {
    char key[2 * PP_ID_MAX + 2];   /* "park\tindicator" */
    pp_status status;
    int period;
    char *last_json;               /* last alert raised for the series, or NULL */
    uint64_t last_seq;
    struct series_state *next;
} series_state;

typedef struct id_entry {
    struct id_entry *next;
    char id[];
} id_entry;

typedef struct hist_entry {
    uint64_t seq;
    char *json;
} hist_entry;

struct alert_engine {
    pp_app *app;
    bus *bus;
    void (*listener)(void *);
    void *listener_ud;
    pthread_mutex_t lock;
    uint64_t seq;
    series_state **states;
    size_t n_state_buckets, n_states;
    id_entry **ids;
    size_t n_id_buckets, n_ids;
    hist_entry *hist;              /* ring of ALERT_HISTORY */
    size_t hist_len, hist_head;    /* head: index of the oldest */
};

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

alert_engine *alert_new(pp_app *app)
{
    alert_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    pthread_mutex_init(&e->lock, NULL);
    e->app = app;
    e->n_state_buckets = 4096;
    e->n_id_buckets = 16384;
    e->states = calloc(e->n_state_buckets, sizeof *e->states);
    e->ids = calloc(e->n_id_buckets, sizeof *e->ids);
    e->hist = calloc(ALERT_HISTORY, sizeof *e->hist);
    if (e->states == NULL || e->ids == NULL || e->hist == NULL) {
        alert_free(e);
        return NULL;
    }
    return e;
}

void alert_free(alert_engine *e)
{
    if (e == NULL)
        return;
    for (size_t i = 0; e->states && i < e->n_state_buckets; i++) {
        for (series_state *s = e->states[i], *n; s; s = n) {
            n = s->next;
            free(s->last_json);
            free(s);
        }
    }
    for (size_t i = 0; e->ids && i < e->n_id_buckets; i++) {
        for (id_entry *d = e->ids[i], *n; d; d = n) {
            n = d->next;
            free(d);
        }
    }
    for (size_t i = 0; e->hist && i < ALERT_HISTORY; i++)
        free(e->hist[i].json);
    free(e->states);
    free(e->ids);
    free(e->hist);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

void alert_set_bus(alert_engine *e, bus *b) { e->bus = b; }

void alert_set_listener(alert_engine *e, void (*fn)(void *ud), void *ud)
{
    e->listener = fn;
    e->listener_ud = ud;
}

#define ALERT_ID_MAX (2 * PP_ID_MAX + 32)

/* The alert id of SPEC §7: park/indicator/period/status. */
static char *alert_id(char *buf, size_t len, const char *park, const char *ind, int period,
                      pp_status st)
{
    char pbuf[16];
    snprintf(buf, len, "%s/%s/%s/%s", park, ind, pp_period_format(period, pbuf, sizeof pbuf),
             pp_status_name(st));
    return buf;
}

/* ---- tables (called with e->lock held, or during single-threaded replay) ---- */

static series_state *state_get(alert_engine *e, const char *park, const char *ind, bool create)
{
    char key[sizeof ((series_state *)0)->key];
    snprintf(key, sizeof key, "%s\t%s", park, ind);
    size_t b = hash_str(key) % e->n_state_buckets;
    for (series_state *s = e->states[b]; s; s = s->next)
        if (strcmp(s->key, key) == 0)
            return s;
    if (!create)
        return NULL;
    series_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    memcpy(s->key, key, sizeof key);
    s->period = -1;
    s->next = e->states[b];
    e->states[b] = s;
    e->n_states++;
    return s;
}

static bool id_seen(const alert_engine *e, const char *id)
{
    for (const id_entry *d = e->ids[hash_str(id) % e->n_id_buckets]; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return true;
    return false;
}

static void id_add(alert_engine *e, const char *id)
{
    if (id_seen(e, id))
        return;
    size_t n = strlen(id);
    id_entry *d = malloc(sizeof *d + n + 1);
    if (d == NULL)
        return;
    memcpy(d->id, id, n + 1);
    size_t b = hash_str(id) % e->n_id_buckets;
    d->next = e->ids[b];
    e->ids[b] = d;
    e->n_ids++;
}

static void hist_add(alert_engine *e, uint64_t seq, const char *json)
{
    size_t idx;
    if (e->hist_len < ALERT_HISTORY) {
        idx = (e->hist_head + e->hist_len) % ALERT_HISTORY;
        e->hist_len++;
    } else {
        idx = e->hist_head;
        free(e->hist[idx].json);
        e->hist_head = (e->hist_head + 1) % ALERT_HISTORY;
    }
    e->hist[idx].seq = seq;
    e->hist[idx].json = strdup(json);
}

static pp_status status_from_name(const char *s, bool *ok)
{
    static const pp_status all[] = { PP_STATUS_OK, PP_STATUS_WARNING, PP_STATUS_CRITICAL,
                                     PP_STATUS_NO_TARGET, PP_STATUS_STALE };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(pp_status_name(all[i]), s) == 0) {
            *ok = true;
            return all[i];
        }
    *ok = false;
    return PP_STATUS_OK;
}

/* Applies an alert or state decision to memory. json is NULL for a state. */
static void apply(alert_engine *e, uint64_t seq, const char *park, const char *ind, int period,
                  pp_status st, const char *json)
{
    series_state *s = state_get(e, park, ind, true);
    if (s == NULL)
        return;
    s->status = st;
    s->period = period;
    if (json) {
        char id[ALERT_ID_MAX];
        id_add(e, alert_id(id, sizeof id, park, ind, period, st));
        free(s->last_json);
        s->last_json = strdup(json);
        s->last_seq = seq;
        hist_add(e, seq, json);
        if (seq > e->seq)
            e->seq = seq;
    }
}

int alert_replay_event(alert_engine *e, const char *payload)
{
    char kind[8], park[PP_ID_MAX + 1], ind[PP_ID_MAX + 1], per[16], st[16];
    unsigned long long seq = 0;
    int n = 0, period;
    bool ok;
    if (strncmp(payload, "alert ", 6) == 0) {
        if (sscanf(payload, "%7s %llu %64s %64s %15s %15s %n", kind, &seq, park, ind, per, st, &n) != 6 ||
            n == 0 || payload[n] != '{')
            goto bad;
    } else if (strncmp(payload, "state ", 6) == 0) {
        if (sscanf(payload, "%7s %64s %64s %15s %15s", kind, park, ind, per, st) != 5)
            goto bad;
    } else {
        return -1;
    }
    if (!pp_id_valid(park) || !pp_id_valid(ind) || pp_period_parse_canonical(per, &period) != 0)
        goto bad;
    pp_status status = status_from_name(st, &ok);
    if (!ok)
        goto bad;
    apply(e, seq, park, ind, period, status, n ? payload + n : NULL);
    return 0;
bad:
    log_warn("alert", "ignoring a malformed alert event in the journal: %.80s", payload);
    return -1;
}

/* ---- evaluation ---- */

typedef struct decision {
    char park[PP_ID_MAX + 1], ind[PP_ID_MAX + 1];
    int period;
    pp_status status;
    uint64_t seq;      /* 0: a quiet state change */
    char *json;        /* the alert, for seq != 0 */
} decision;

static bool is_quiet(pp_status s) { return s == PP_STATUS_OK || s == PP_STATUS_NO_TARGET; }

static char *alert_json(const alert_engine *e, const series_state *prev, const series_status *st,
                        uint64_t seq, int64_t now)
{
    char id[ALERT_ID_MAX], pbuf[16], tbuf[40];
    const pace_result *r = &st->pace;
    pp_period_format(st->period, pbuf, sizeof pbuf);
    alert_id(id, sizeof id, st->park->id, st->ind->id, st->period, r->status);
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{");
    json_key(&b, "seq", true);
    json_int(&b, (int64_t)seq);
    json_key(&b, "id", false);
    json_str(&b, id);
    json_key(&b, "time", false);
    json_str(&b, app_format_time(now, tbuf, sizeof tbuf));
    json_key(&b, "park", false);
    json_str(&b, st->park->id);
    json_key(&b, "park_name", false);
    json_str(&b, st->park->name);
    json_key(&b, "indicator", false);
    json_str(&b, st->ind->id);
    json_key(&b, "label", false);
    json_str(&b, st->ind->label);
    json_key(&b, "unit", false);
    json_str(&b, st->ind->unit);
    json_key(&b, "kind", false);
    json_str(&b, pp_kind_name(st->ind->kind));
    json_key(&b, "period", false);
    json_str(&b, pbuf);
    json_key(&b, "status", false);
    json_str(&b, pp_status_name(r->status));
    json_key(&b, "previous", false);
    json_str(&b, prev && prev->period >= 0 ? pp_status_name(prev->status) : "none");
    status_figures_json(&b, st);
    json_key(&b, "message", false);
    json_str(&b, r->message);
    jbuf_puts(&b, "}");
    (void)e;
    return jbuf_take(&b, NULL);
}

/* Decides for one series; appends to d (capacity checked by the caller). */
static void decide(alert_engine *e, const pp_park *park, const pp_indicator *ind, int64_t now,
                   decision *d, size_t *nd)
{
    const db_series *s = db_series_get(e->app->db, park->id, ind->id);
    series_status st;
    if (!status_eval(e->app, park, ind, s, -1, now, &st))
        return;
    pp_status cur = st.pace.status;
    const series_state *prev = state_get(e, park->id, ind->id, false);
    bool publish;
    if (prev == NULL || prev->period < 0) {
        publish = !is_quiet(cur);
    } else if (cur != prev->status) {
        publish = !(is_quiet(cur) && is_quiet(prev->status));
    } else if (st.period != prev->period) {
        publish = cur == PP_STATUS_WARNING || cur == PP_STATUS_CRITICAL;
    } else {
        return; /* nothing new */
    }
    if (publish) {
        char id[ALERT_ID_MAX];
        if (id_seen(e, alert_id(id, sizeof id, park->id, ind->id, st.period, cur)))
            publish = false; /* raised once already, e.g. before a revision and back */
    }
    decision *x = &d[(*nd)++];
    memset(x, 0, sizeof *x);
    snprintf(x->park, sizeof x->park, "%s", park->id);
    snprintf(x->ind, sizeof x->ind, "%s", ind->id);
    x->period = st.period;
    x->status = cur;
    if (publish) {
        x->seq = e->seq + 1;
        for (size_t i = 0; i + 1 < *nd; i++)
            if (d[i].seq >= x->seq)
                x->seq = d[i].seq + 1;
        x->json = alert_json(e, prev, &st, x->seq, now);
        if (x->json == NULL) {
            (*nd)--;
            log_err("alert", "out of memory formatting an alert for %s/%s", park->id, ind->id);
        }
    }
}

int alert_evaluate(alert_engine *e, const char *const *parks, const char *const *indicators,
                   size_t n, bool all)
{
    pp_app *app = e->app;
    decision *d = NULL;
    journal_record *recs = NULL;
    size_t nd = 0, cap;
    int raised = 0, rc = -1;
    int64_t now = app_now(app);

    pthread_rwlock_rdlock(&app->cfg_lock);
    db_rdlock(app->db);
    const pp_catalog *cat = &app->cfg->catalog;
    cap = all ? cat->n_parks * cat->n_indicators : n;
    d = calloc(cap ? cap : 1, sizeof *d);
    if (d == NULL)
        goto unlock;
    pthread_mutex_lock(&e->lock);
    if (all) {
        for (size_t i = 0; i < cat->n_parks; i++)
            for (size_t j = 0; j < cat->n_indicators; j++)
                decide(e, &cat->parks[i], &cat->indicators[j], now, d, &nd);
    } else {
        for (size_t i = 0; i < n; i++) {
            const pp_park *park = pp_catalog_park(cat, parks[i]);
            const pp_indicator *ind = pp_catalog_indicator(cat, indicators[i]);
            if (park && ind && strcmp(park->id, parks[i]) == 0 && strcmp(ind->id, indicators[i]) == 0)
                decide(e, park, ind, now, d, &nd);
        }
    }
    pthread_mutex_unlock(&e->lock);
    rc = 0;
unlock:
    db_unlock(app->db);
    pthread_rwlock_unlock(&app->cfg_lock);
    if (rc != 0 || nd == 0)
        goto out;

    /* journal first (fsync), then memory, then the bus */
    recs = calloc(nd, sizeof *recs);
    if (recs == NULL) {
        rc = -1;
        goto out;
    }
    for (size_t i = 0; i < nd; i++) {
        char pbuf[16];
        recs[i].type = JREC_EVENT;
        pp_period_format(d[i].period, pbuf, sizeof pbuf);
        int w;
        if (d[i].seq)
            w = snprintf(recs[i].event, sizeof recs[i].event, "alert %llu %s %s %s %s %s",
                         (unsigned long long)d[i].seq, d[i].park, d[i].ind, pbuf,
                         pp_status_name(d[i].status), d[i].json);
        else
            w = snprintf(recs[i].event, sizeof recs[i].event, "state %s %s %s %s", d[i].park,
                         d[i].ind, pbuf, pp_status_name(d[i].status));
        if (w < 0 || (size_t)w >= sizeof recs[i].event) {
            log_err("alert", "alert for %s/%s too long for the journal", d[i].park, d[i].ind);
            rc = -1;
            goto out;
        }
    }
    int jr = journal_append(app->journal, recs, nd);
    if (jr < 0) {
        log_err("alert", "cannot journal %zu alert decision(s): %s; not published", nd, strerror(-jr));
        rc = -1;
        goto out;
    }
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < nd; i++)
        apply(e, d[i].seq, d[i].park, d[i].ind, d[i].period, d[i].status, d[i].json);
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < nd; i++) {
        if (!d[i].seq)
            continue;
        raised++;
        char topic[2 * PP_ID_MAX + 16];
        snprintf(topic, sizeof topic, "alert.%s.%s", d[i].park, d[i].ind);
        if (e->bus && bus_publish_alert(e->bus, topic, d[i].json, strlen(d[i].json), d[i].seq) != 0)
            log_warn("alert", "bus queue full: alert %llu not sent (subscribers will see the gap)",
                     (unsigned long long)d[i].seq);
        log_info("alert", "#%llu %s/%s %s", (unsigned long long)d[i].seq, d[i].park, d[i].ind,
                 pp_status_name(d[i].status));
    }
    if (raised && e->listener)
        e->listener(e->listener_ud);
    rc = raised;
out:
    for (size_t i = 0; i < nd; i++)
        free(d[i].json);
    free(d);
    free(recs);
    return rc;
}

uint64_t alert_seq(alert_engine *e)
{
    pthread_mutex_lock(&e->lock);
    uint64_t s = e->seq;
    pthread_mutex_unlock(&e->lock);
    return s;
}

static int cmp_state_seq(const void *a, const void *b)
{
    uint64_t x = (*(series_state *const *)a)->last_seq, y = (*(series_state *const *)b)->last_seq;
    return x < y ? -1 : x > y;
}

void alert_active_json(alert_engine *e, jbuf *b)
{
    pthread_mutex_lock(&e->lock);
    series_state **act = calloc(e->n_states ? e->n_states : 1, sizeof *act);
    size_t n = 0;
    for (size_t i = 0; act && i < e->n_state_buckets; i++)
        for (series_state *s = e->states[i]; s; s = s->next)
            if (s->last_json && !is_quiet(s->status) && s->last_seq)
                act[n++] = s;
    if (act)
        qsort(act, n, sizeof *act, cmp_state_seq);
    jbuf_puts(b, "{");
    json_key(b, "seq", true);
    json_int(b, (int64_t)e->seq);
    json_key(b, "alerts", false);
    jbuf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_puts(b, ",");
        jbuf_puts(b, act[i]->last_json);
    }
    jbuf_puts(b, "]}");
    if (act == NULL)
        b->failed = true;
    free(act);
    pthread_mutex_unlock(&e->lock);
}

void alert_since_json(alert_engine *e, uint64_t since, jbuf *b)
{
    pthread_mutex_lock(&e->lock);
    jbuf_puts(b, "{");
    json_key(b, "seq", true);
    json_int(b, (int64_t)e->seq);
    json_key(b, "alerts", false);
    jbuf_puts(b, "[");
    bool first = true;
    uint64_t oldest = e->hist_len ? e->hist[e->hist_head].seq : e->seq + 1;
    for (size_t i = 0; i < e->hist_len; i++) {
        const hist_entry *h = &e->hist[(e->hist_head + i) % ALERT_HISTORY];
        if (h->seq <= since || h->json == NULL)
            continue;
        if (!first)
            jbuf_puts(b, ",");
        first = false;
        jbuf_puts(b, h->json);
    }
    jbuf_puts(b, "]");
    json_key(b, "complete", false);
    json_bool(b, since + 1 >= oldest || since >= e->seq);
    jbuf_puts(b, "}");
    pthread_mutex_unlock(&e->lock);
}

char *alert_next(alert_engine *e, uint64_t after, uint64_t *seq)
{
    char *r = NULL;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < e->hist_len; i++) {
        const hist_entry *h = &e->hist[(e->hist_head + i) % ALERT_HISTORY];
        if (h->seq > after && h->json) {
            r = strdup(h->json);
            *seq = h->seq;
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return r;
}
