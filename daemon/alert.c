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

/* One alert as published: a single copy shared by the history ring and the
 * series' last alert, freed when neither holds it any more. Only the writer
 * (replay, or alert_evaluate under the ingest lock) takes and drops
 * references, always under e->lock once readers exist. */
typedef struct alert_msg {
    uint64_t seq;
    uint32_t refs;
    uint32_t len;                  /* strlen(json) */
    char json[];
} alert_msg;

/* There is one state per series ever decided (10,000 or more), so it is kept
 * small and fixed-size: the park and indicator ids are interned once in
 * e->names, the states are carved out of blocks, and the alert ids a series
 * raised live in e->raised, keyed by the state's index. */
typedef struct series_state {
    const char *park, *ind;        /* interned in e->names */
    alert_msg *last;               /* last alert raised for the series (a reference), or NULL */
    struct series_state *next;     /* hash chain */
    int period;
    uint32_t index;                /* 1, 2, …: names the series in e->raised */
    pp_status status;
} series_state;

#define STATE_BLOCK 256

typedef struct state_block {
    struct state_block *next;
    size_t used;
    series_state s[STATE_BLOCK];
} state_block;

typedef struct name {
    struct name *next;
    char s[];
} name;

struct alert_engine {
    pp_app *app;
    bus *bus;
    void (*listener)(void *);
    void *listener_ud;
    pthread_mutex_t lock;
    uint64_t seq;
    series_state **states;         /* hash of "park\tindicator" → state */
    size_t n_state_buckets, n_states;
    state_block *blocks;           /* where the states live; newest first */
    name **names;                  /* interned park and indicator ids */
    size_t n_name_buckets, n_names;
    uint64_t *raised;              /* open addressing set of raised_key()s; 0: empty */
    size_t raised_cap, n_raised;   /* cap: a power of two, or 0 */
    alert_msg **hist;              /* ring of up to ALERT_HISTORY, grown on demand */
    size_t hist_cap, hist_len, hist_head; /* head: index of the oldest */
};

static uint64_t hash_more(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

static uint64_t hash_str(const char *s) { return hash_more(1469598103934665603ULL, s); }

/* The hash of the key "park\tindicator" (FNV-1a), without building it. */
static uint64_t hash_series(const char *park, const char *ind)
{
    uint64_t h = hash_more(1469598103934665603ULL, park);
    h ^= '\t';
    h *= 1099511628211ULL;
    return hash_more(h, ind);
}

static alert_msg *msg_new(uint64_t seq, const char *json, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    alert_msg *m = malloc(sizeof *m + len + 1);
    if (m == NULL)
        return NULL;
    m->seq = seq;
    m->refs = 1;
    m->len = (uint32_t)len;
    memcpy(m->json, json, len);
    m->json[len] = '\0';
    return m;
}

static alert_msg *msg_ref(alert_msg *m)
{
    if (m)
        m->refs++;
    return m;
}

static void msg_unref(alert_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

alert_engine *alert_new(pp_app *app)
{
    alert_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    pthread_mutex_init(&e->lock, NULL);
    e->app = app;
    e->n_state_buckets = 1024;
    e->n_name_buckets = 256;
    e->states = calloc(e->n_state_buckets, sizeof *e->states);
    e->names = calloc(e->n_name_buckets, sizeof *e->names);
    if (e->states == NULL || e->names == NULL) {
        alert_free(e);
        return NULL;
    }
    return e;
}

void alert_free(alert_engine *e)
{
    if (e == NULL)
        return;
    for (state_block *k = e->blocks, *n; k; k = n) {
        n = k->next;
        for (size_t i = 0; i < k->used; i++)
            msg_unref(k->s[i].last);
        free(k);
    }
    for (size_t i = 0; e->names && i < e->n_name_buckets; i++) {
        for (name *d = e->names[i], *n; d; d = n) {
            n = d->next;
            free(d);
        }
    }
    for (size_t i = 0; i < e->hist_len; i++)
        msg_unref(e->hist[(e->hist_head + i) % ALERT_HISTORY]);
    free(e->states);
    free(e->names);
    free(e->raised);
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

/* Doubles a chained table when it holds more than two entries a bucket; a
 * failure only leaves the chains longer. */
static void states_grow(alert_engine *e)
{
    if (e->n_states <= 2 * e->n_state_buckets)
        return;
    size_t nb = 2 * e->n_state_buckets;
    series_state **t = calloc(nb, sizeof *t);
    if (t == NULL)
        return;
    for (size_t i = 0; i < e->n_state_buckets; i++) {
        for (series_state *s = e->states[i], *n; s; s = n) {
            n = s->next;
            size_t b = hash_series(s->park, s->ind) % nb;
            s->next = t[b];
            t[b] = s;
        }
    }
    free(e->states);
    e->states = t;
    e->n_state_buckets = nb;
}

static void names_grow(alert_engine *e)
{
    if (e->n_names <= 2 * e->n_name_buckets)
        return;
    size_t nb = 2 * e->n_name_buckets;
    name **t = calloc(nb, sizeof *t);
    if (t == NULL)
        return;
    for (size_t i = 0; i < e->n_name_buckets; i++) {
        for (name *d = e->names[i], *n; d; d = n) {
            n = d->next;
            size_t b = hash_str(d->s) % nb;
            d->next = t[b];
            t[b] = d;
        }
    }
    free(e->names);
    e->names = t;
    e->n_name_buckets = nb;
}

/* The engine's own copy of an id (one per distinct park and indicator), or
 * NULL on ENOMEM. */
static const char *intern(alert_engine *e, const char *s)
{
    size_t b = hash_str(s) % e->n_name_buckets;
    for (name *d = e->names[b]; d; d = d->next)
        if (strcmp(d->s, s) == 0)
            return d->s;
    size_t n = strlen(s);
    name *d = malloc(sizeof *d + n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d->s, s, n + 1);
    d->next = e->names[b];
    e->names[b] = d;
    e->n_names++;
    names_grow(e);
    return d->s;
}

static series_state *state_get(alert_engine *e, const char *park, const char *ind, bool create)
{
    uint64_t h = hash_series(park, ind);
    for (series_state *s = e->states[h % e->n_state_buckets]; s; s = s->next)
        if (strcmp(s->park, park) == 0 && strcmp(s->ind, ind) == 0)
            return s;
    if (!create || e->n_states >= UINT32_MAX)
        return NULL;
    const char *ip = intern(e, park), *ii = intern(e, ind);
    if (ip == NULL || ii == NULL)
        return NULL;
    if (e->blocks == NULL || e->blocks->used == STATE_BLOCK) {
        state_block *k = malloc(sizeof *k);
        if (k == NULL)
            return NULL;
        k->used = 0;
        k->next = e->blocks;
        e->blocks = k;
    }
    series_state *s = &e->blocks->s[e->blocks->used++];
    memset(s, 0, sizeof *s);
    s->park = ip;
    s->ind = ii;
    s->period = -1;
    s->index = (uint32_t)++e->n_states;
    size_t b = h % e->n_state_buckets;
    s->next = e->states[b];
    e->states[b] = s;
    states_grow(e);
    return s;
}

/* An alert id of a series as a number: the series' index (never 0), the
 * period and the status. Ids are park/indicator/period/status and park and
 * indicator name the series, so this is the id, without its text. */
static uint64_t raised_key(const series_state *s, int period, pp_status st)
{
    return (uint64_t)s->index << 36 | (uint64_t)(uint32_t)period << 4 | ((uint64_t)st & 15);
}

static size_t raised_slot(const alert_engine *e, uint64_t key)
{
    key ^= key >> 31; /* the splitmix64 finaliser: every bit of the key moves the slot */
    key *= 0xbf58476d1ce4e5b9ULL;
    key ^= key >> 27;
    key *= 0x94d049bb133111ebULL;
    key ^= key >> 31;
    return (size_t)key & (e->raised_cap - 1);
}

static bool id_seen(const alert_engine *e, const series_state *s, int period, pp_status st)
{
    if (s == NULL || e->raised_cap == 0)
        return false;
    uint64_t key = raised_key(s, period, st);
    for (size_t i = raised_slot(e, key); e->raised[i]; i = (i + 1) & (e->raised_cap - 1))
        if (e->raised[i] == key)
            return true;
    return false;
}

static void raised_put(alert_engine *e, uint64_t key)
{
    size_t i = raised_slot(e, key);
    while (e->raised[i] && e->raised[i] != key)
        i = (i + 1) & (e->raised_cap - 1);
    if (e->raised[i] == 0) {
        e->raised[i] = key;
        e->n_raised++;
    }
}

static void id_add(alert_engine *e, const series_state *s, int period, pp_status st)
{
    if (4 * (e->n_raised + 1) > 3 * e->raised_cap) { /* keep probes short: at most 3/4 full */
        size_t old_cap = e->raised_cap, cap = old_cap ? 2 * old_cap : 1024;
        uint64_t *old = e->raised, *t = calloc(cap, sizeof *t);
        if (t == NULL) {
            log_err("alert", "out of memory remembering alert ids");
            return;
        }
        e->raised = t;
        e->raised_cap = cap;
        e->n_raised = 0;
        for (size_t i = 0; i < old_cap; i++)
            if (old[i])
                raised_put(e, old[i]);
        free(old);
    }
    raised_put(e, raised_key(s, period, st));
}

/* Takes a reference to m (NULL: the alert could not be kept in memory). */
static void hist_add(alert_engine *e, alert_msg *m)
{
    if (m == NULL)
        return;
    if (e->hist_len < ALERT_HISTORY) {
        /* not wrapped yet, so head is 0 and the entries are hist[0..len) */
        if (e->hist_len == e->hist_cap) {
            size_t cap = e->hist_cap ? 2 * e->hist_cap : 256;
            if (cap > ALERT_HISTORY)
                cap = ALERT_HISTORY;
            alert_msg **t = realloc(e->hist, cap * sizeof *t);
            if (t == NULL) {
                log_err("alert", "out of memory keeping alert %llu for ?since=",
                        (unsigned long long)m->seq);
                return;
            }
            e->hist = t;
            e->hist_cap = cap;
        }
        e->hist[e->hist_len++] = msg_ref(m);
    } else {
        msg_unref(e->hist[e->hist_head]);
        e->hist[e->hist_head] = msg_ref(m);
        e->hist_head = (e->hist_head + 1) % ALERT_HISTORY;
    }
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

/* Applies a decision to memory: an alert when is_alert (m: its message, of
 * which the series and the ring take references; NULL when it could not be
 * kept), else a quiet state change. */
static void apply(alert_engine *e, uint64_t seq, const char *park, const char *ind, int period,
                  pp_status st, bool is_alert, alert_msg *m)
{
    series_state *s = state_get(e, park, ind, true);
    if (s == NULL) {
        log_err("alert", "out of memory keeping the state of %s/%s", park, ind);
        return;
    }
    s->status = st;
    s->period = period;
    if (is_alert) {
        id_add(e, s, period, st);
        msg_unref(s->last);
        s->last = msg_ref(m);
        hist_add(e, m);
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
    alert_msg *m = NULL;
    if (n) {
        m = msg_new(seq, payload + n, strlen(payload + n));
        if (m == NULL)
            log_err("alert", "out of memory replaying alert %llu: left out of the history", seq);
    }
    apply(e, seq, park, ind, period, status, n != 0, m);
    msg_unref(m); /* the series and the ring hold their own references */
    return 0;
bad:
    log_warn("alert", "ignoring a malformed alert event in the journal: %.80s", payload);
    return -1;
}

/* ---- evaluation ---- */

typedef struct decision {
    const char *park, *ind; /* interned in e->names */
    int period;
    pp_status status;
    uint64_t seq;           /* 0: a quiet state change */
    alert_msg *msg;         /* the alert (a reference), for seq != 0 */
} decision;

/* The decisions of one evaluation: grown as series change, so a start-up
 * evaluation of every series that finds nothing new allocates nothing. */
typedef struct decisions {
    decision *d;
    size_t n, cap;
    bool failed;            /* out of memory: nothing is to be journaled */
} decisions;

static bool is_quiet(pp_status s) { return s == PP_STATUS_OK || s == PP_STATUS_NO_TARGET; }

/* The alert's JSON (SPEC §7) in a message of its own size, or NULL on ENOMEM. */
static alert_msg *alert_json(const series_state *prev, const series_status *st, uint64_t seq,
                             int64_t now)
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
    alert_msg *m = b.failed ? NULL : msg_new(seq, b.data, b.len);
    jbuf_free(&b);
    return m;
}

/* Decides for one series; appends to ds. */
static void decide(alert_engine *e, const pp_park *park, const pp_indicator *ind, int64_t now,
                   decisions *ds)
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
    if (publish && id_seen(e, prev, st.period, cur))
        publish = false; /* raised once already, e.g. before a revision and back */
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? 2 * ds->cap : 16;
        decision *t = realloc(ds->d, cap * sizeof *t);
        if (t == NULL) {
            ds->failed = true;
            log_err("alert", "out of memory deciding for %s/%s", park->id, ind->id);
            return;
        }
        ds->d = t;
        ds->cap = cap;
    }
    decision *x = &ds->d[ds->n];
    memset(x, 0, sizeof *x);
    x->park = prev ? prev->park : intern(e, park->id);
    x->ind = prev ? prev->ind : intern(e, ind->id);
    if (x->park == NULL || x->ind == NULL) {
        ds->failed = true;
        log_err("alert", "out of memory deciding for %s/%s", park->id, ind->id);
        return;
    }
    x->period = st.period;
    x->status = cur;
    if (publish) {
        x->seq = e->seq + 1;
        for (size_t i = 0; i < ds->n; i++)
            if (ds->d[i].seq >= x->seq)
                x->seq = ds->d[i].seq + 1;
        x->msg = alert_json(prev, &st, x->seq, now);
        if (x->msg == NULL) {
            log_err("alert", "out of memory formatting an alert for %s/%s", park->id, ind->id);
            return;
        }
    }
    ds->n++;
}

static void free_events(char **ev, size_t n)
{
    if (ev == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

int alert_evaluate(alert_engine *e, const char *const *parks, const char *const *indicators,
                   size_t n, bool all)
{
    pp_app *app = e->app;
    decisions ds = { 0 };
    decision *d;
    char **recs = NULL; /* the journal lines' payloads */
    size_t nd = 0;
    int raised = 0, rc = -1;
    int64_t now = app_now(app);

    pthread_rwlock_rdlock(&app->cfg_lock);
    db_rdlock(app->db);
    const pp_catalog *cat = &app->cfg->catalog;
    pthread_mutex_lock(&e->lock);
    if (all) {
        for (size_t i = 0; i < cat->n_parks && !ds.failed; i++)
            for (size_t j = 0; j < cat->n_indicators && !ds.failed; j++)
                decide(e, &cat->parks[i], &cat->indicators[j], now, &ds);
    } else {
        for (size_t i = 0; i < n && !ds.failed; i++) {
            const pp_park *park = pp_catalog_park(cat, parks[i]);
            const pp_indicator *ind = pp_catalog_indicator(cat, indicators[i]);
            if (park && ind && strcmp(park->id, parks[i]) == 0 && strcmp(ind->id, indicators[i]) == 0)
                decide(e, park, ind, now, &ds);
        }
    }
    pthread_mutex_unlock(&e->lock);
    db_unlock(app->db);
    pthread_rwlock_unlock(&app->cfg_lock);
    d = ds.d;
    nd = ds.n;
    if (ds.failed || nd == 0) {
        rc = ds.failed ? -1 : 0;
        goto out;
    }

    /* journal first (fsync), then memory, then the bus */
    recs = calloc(nd, sizeof *recs);
    if (recs == NULL)
        goto out;
    for (size_t i = 0; i < nd; i++) {
        char pbuf[16];
        pp_period_format(d[i].period, pbuf, sizeof pbuf);
        int w;
        if (d[i].seq)
            w = asprintf(&recs[i], "alert %llu %s %s %s %s %s", (unsigned long long)d[i].seq,
                         d[i].park, d[i].ind, pbuf, pp_status_name(d[i].status), d[i].msg->json);
        else
            w = asprintf(&recs[i], "state %s %s %s %s", d[i].park, d[i].ind, pbuf,
                         pp_status_name(d[i].status));
        if (w < 0) {
            recs[i] = NULL;
            log_err("alert", "out of memory journaling an alert for %s/%s", d[i].park, d[i].ind);
            goto out;
        }
        if ((size_t)w >= JOURNAL_EVENT_MAX) {
            log_err("alert", "alert for %s/%s too long for the journal", d[i].park, d[i].ind);
            goto out;
        }
    }
    int jr = journal_append_events(app->journal, (const char *const *)recs, nd);
    if (jr < 0) {
        log_err("alert", "cannot journal %zu alert decision(s): %s; not published", nd, strerror(-jr));
        goto out;
    }
    free_events(recs, nd); /* gone before the bus copies the alerts */
    recs = NULL;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < nd; i++)
        apply(e, d[i].seq, d[i].park, d[i].ind, d[i].period, d[i].status, d[i].seq != 0, d[i].msg);
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < nd; i++) {
        if (!d[i].seq)
            continue;
        raised++;
        char topic[2 * PP_ID_MAX + 16];
        snprintf(topic, sizeof topic, "alert.%s.%s", d[i].park, d[i].ind);
        if (e->bus && bus_publish_alert(e->bus, topic, d[i].msg->json, d[i].msg->len, d[i].seq) != 0)
            log_warn("alert", "bus queue full: alert %llu not sent (subscribers will see the gap)",
                     (unsigned long long)d[i].seq);
        log_info("alert", "#%llu %s/%s %s", (unsigned long long)d[i].seq, d[i].park, d[i].ind,
                 pp_status_name(d[i].status));
    }
    if (raised && e->listener)
        e->listener(e->listener_ud);
    rc = raised;
out:
    /* the series and the ring hold their own references to what was applied */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < nd; i++)
        msg_unref(d[i].msg);
    pthread_mutex_unlock(&e->lock);
    free(ds.d);
    free_events(recs, nd);
    return rc;
}

int alert_retry_pending(alert_engine *e)
{
    (void)e;
    return 0;
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
    uint64_t x = (*(series_state *const *)a)->last->seq, y = (*(series_state *const *)b)->last->seq;
    return x < y ? -1 : x > y;
}

void alert_active_json(alert_engine *e, jbuf *b)
{
    pthread_mutex_lock(&e->lock);
    series_state **act = calloc(e->n_states ? e->n_states : 1, sizeof *act);
    size_t n = 0;
    for (size_t i = 0; act && i < e->n_state_buckets; i++)
        for (series_state *s = e->states[i]; s; s = s->next)
            if (s->last && !is_quiet(s->status) && s->last->seq)
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
        jbuf_raw(b, act[i]->last->json, act[i]->last->len);
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
    uint64_t oldest = e->hist_len ? e->hist[e->hist_head]->seq : e->seq + 1;
    for (size_t i = 0; i < e->hist_len; i++) {
        const alert_msg *h = e->hist[(e->hist_head + i) % ALERT_HISTORY];
        if (h->seq <= since)
            continue;
        if (!first)
            jbuf_puts(b, ",");
        first = false;
        jbuf_raw(b, h->json, h->len);
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
        const alert_msg *h = e->hist[(e->hist_head + i) % ALERT_HISTORY];
        if (h->seq > after) {
            r = strdup(h->json);
            *seq = h->seq;
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    return r;
}
