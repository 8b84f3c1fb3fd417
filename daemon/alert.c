/*
 * alert.c — the alert state machine and its history (see alert.h).
 *
 * Journal events written here (one line each, in the journal's event record):
 *
 *   alert 42 xiangtan-etdz fiscal_revenue 2021-08 warning {"seq":42,"id":…}
 *   alert 44 xiangtan-etdz fiscal_revenue 2021-08 warning/2 {"seq":44,"id":…}
 *   alert 45 xiangtan-hitech tax_revenue 2021-09 overdue {"seq":45,"id":…}
 *   state xiangtan-etdz fixed_asset_investment 2021-08 ok
 *   state xiangtan-hitech tax_revenue 2021-09 received
 *
 * The status word may carry the occurrence ("warning/2": the series entered
 * the same period and status a second time; none means the first). overdue and
 * received are the overdue flag's own state (a quiet "received" ends it
 * without a figure, e.g. a target removed). Journals written before these
 * hold "stale" states, read back as a status of their own (any new status
 * differs from it, so the first evaluation says what the series is now).
 *
 * The id file. A damaged journal line is skipped at replay; were it the only
 * copy of an alert, its seq would be handed out again and its id published
 * again. So every alert's seq and id are also kept apart from the journal, in
 * <state_dir>/journal/alert-ids.log, appended and fdatasync'd after the
 * journal's fsync and before the alert is published:
 *
 *   #parkpulse-alert-ids 1
 *   41 xiangtan-etdz/fixed_asset_investment/2021-08/critical 5c1d0e0f6a7b8c9d
 *   42 xiangtan-etdz/fiscal_revenue/2021-08/warning 0123456789abcdef
 *
 * one line per alert: seq, id (park/indicator/period/status, or
 * park/indicator/period/status/N for the N-th occurrence), and 16 lower-case
 * hex digits of the 64-bit FNV-1a hash of the bytes before that last space. At
 * start the file is read first (alert_new), then the journal is replayed on
 * top: seq = the highest of both, the set of ids = the union of both, so a
 * damaged line in either copy loses nothing. A line of the id file that does
 * not verify is skipped and left in place (logged at every start); a last line
 * without its newline (a crash amid a write) counts if it verifies and is then
 * ended with a newline, so the next append starts a line of its own. Alerts the
 * journal holds past the id file's last seq (a crash between the two writes, or
 * a failed write of the id file) are written to it again at the next
 * evaluation. What a damaged journal line loses for good is the alert's body:
 * it is missing from ?since= and the snapshot, and the series' state is taken
 * up from its last intact line: while that state is older than the series'
 * last alert (in either copy), an id raised already stays quiet rather than
 * being raised again as a new occurrence.
 *
 * Decisions that could not be journaled (a full disk) are not published and
 * keep no seq: their series are remembered (up to ALERT_PENDING_MAX, beyond
 * that every series) and decided again at the next evaluation and at
 * alert_retry_pending(), which the daemon calls every second.
 *
 * The configuration in force decides what is listed: an alert of a park or
 * indicator a reload removed is served by no query (snapshot, ?since=, SSE
 * cursor) — every other route answers "unknown park" — and is listed again if
 * the park comes back. Nothing is renumbered: "seq" is still the last seq
 * raised. Each series carries a hidden flag, recomputed under the cfg read
 * lock when the configuration's generation changed.
 *
 * Readers (HTTP threads) and the writer (the thread holding the ingest lock)
 * meet under one mutex; the status evaluation itself runs under a read view
 * (app.h: cfg and db read locks), and the bus is handed copies. Lock order: ingest_lock, cfg_lock,
 * db lock, e->lock; the SSE cursor (under the http server's sse_lock) only
 * tries the cfg lock.
 */
#include "alert.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "journal.h"
#include "log.h"
#include "silence.h"
#include "status.h"

/* One alert as published: a single copy shared by the history ring and the
 * series' last alert, freed when neither holds it any more. Only the writer
 * (replay, or alert_evaluate under the ingest lock) takes and drops
 * references, always under e->lock once readers exist. */
struct series_state;

typedef struct alert_msg {
    uint64_t seq;
    struct series_state *series;   /* the series it was raised for (set by apply), or NULL */
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
    bool last_current;             /* last is the alert of the current (status, period) */
    uint64_t max_seq;              /* the highest seq of an id raised for it (both copies) */
    uint64_t state_seq;            /* the last seq raised when its state was last decided */
    int od_period;                 /* the month it is overdue for (an overdue alert), or -1 */
    alert_msg *od_last;            /* that overdue alert (a reference), or NULL */
    bool hidden;                   /* park or indicator not in the configuration in force */
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
    /* the id file (see the top): only the writer touches these, but the
     * backlog's length, read by alert_retry_pending, under lock */
    int ids_fd;                    /* -1: none (no state directory) */
    char *ids_path;
    off_t ids_size;                /* end of the last complete line: where appends go */
    bool ids_dirty;                /* a failed append may have left bytes past ids_size */
    bool ids_failing;              /* the last write failed (logged once) */
    uint64_t ids_hw;               /* the highest seq the id file held at start */
    uint64_t journal_seq;          /* the highest seq applied from the journal or decided */
    char **backlog;                /* ring of ALERT_IDS_BACKLOG lines not yet written */
    size_t backlog_head, backlog_len;
    size_t backlog_dropped;        /* older lines than the ring holds: in the journal only */
    /* series whose decisions could not be journaled (under lock) */
    struct pending { const char *park, *ind; } *pend;
    size_t n_pend;
    bool pend_all;                 /* too many, or out of memory: decide every series */
    bool journal_failing;          /* the last journal append failed (logged once) */
    /* the hidden flags are those of this configuration generation */
    uint64_t hidden_gen;
    bool hidden_dirty;             /* states were made since: compute them all again */
};

#define ALERT_PENDING_MAX 1024
#define ALERT_IDS_BACKLOG 4096
#define ALERT_IDS_FILE "alert-ids.log"
#define ALERT_IDS_HEADER "#parkpulse-alert-ids 1\n"

/* The check of a line of the id file: FNV-1a 64 started from this basis, one
 * digit short of FNV's (hash.h). Version 1 id files on disk carry it, so it
 * stays, under its own name, for the id file only. */
#define ALERT_IDS_CHECK_BASIS 1469598103934665603ULL

static uint64_t ids_check(const char *s) { return pp_hash_more(ALERT_IDS_CHECK_BASIS, s); }

/* The hash of the key "park\tindicator", without building it. */
static uint64_t hash_series(const char *park, const char *ind) { return pp_hash_pair(park, '\t', ind); }

static alert_msg *msg_new(uint64_t seq, const char *json, size_t len)
{
    if (len > UINT32_MAX)
        return NULL;
    alert_msg *m = malloc(sizeof *m + len + 1);
    if (m == NULL)
        return NULL;
    m->seq = seq;
    m->series = NULL;
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

static int ids_open(alert_engine *e, const char *state_dir);

alert_engine *alert_new(pp_app *app)
{
    alert_engine *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    pthread_mutex_init(&e->lock, NULL);
    e->app = app;
    e->ids_fd = -1;
    e->hidden_dirty = true;
    e->n_state_buckets = 1024;
    e->n_name_buckets = 256;
    e->states = calloc(e->n_state_buckets, sizeof *e->states);
    e->names = calloc(e->n_name_buckets, sizeof *e->names);
    if (e->states == NULL || e->names == NULL ||
        (app && app->cfg && app->cfg->state_dir && ids_open(e, app->cfg->state_dir) != 0)) {
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
        for (size_t i = 0; i < k->used; i++) {
            msg_unref(k->s[i].last);
            msg_unref(k->s[i].od_last);
        }
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
    for (size_t i = 0; i < e->backlog_len; i++)
        free(e->backlog[(e->backlog_head + i) % ALERT_IDS_BACKLOG]);
    free(e->backlog);
    free(e->pend);
    if (e->ids_fd >= 0)
        close(e->ids_fd);
    free(e->ids_path);
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

/* The alert id of README, Alerts: park/indicator/period/status, and /occ when
 * the series enters the same (period, status) again (occ 2, 3, …). */
static char *alert_id(char *buf, size_t len, const char *park, const char *ind, int period,
                      pp_status st, unsigned occ)
{
    char pbuf[16];
    int n = snprintf(buf, len, "%s/%s/%s/%s", park, ind, pp_period_format(period, pbuf, sizeof pbuf),
                     pp_status_name(st));
    if (occ > 1 && n > 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "/%u", occ);
    return buf;
}

/* "warning" or "warning/2": a status and its occurrence (1 without a suffix). */
static char *status_token(char *buf, size_t len, pp_status st, unsigned occ)
{
    if (occ > 1)
        snprintf(buf, len, "%s/%u", pp_status_name(st), occ);
    else
        snprintf(buf, len, "%s", pp_status_name(st));
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
            size_t b = pp_hash_str(d->s) % nb;
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
    size_t b = pp_hash_str(s) % e->n_name_buckets;
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
    s->od_period = -1;
    s->index = (uint32_t)++e->n_states;
    size_t b = h % e->n_state_buckets;
    s->next = e->states[b];
    e->states[b] = s;
    states_grow(e);
    return s;
}

/* An alert id of a series as a number: the series' index (never 0), the
 * occurrence (16 bits), the period (16 bits: months up to 2199-12 are below
 * 2^15) and the status. Ids are park/indicator/period/status[/occ] and park
 * and indicator name the series, so this is the id, without its text. */
#define ALERT_OCC_MAX 65535u
static uint64_t raised_key(const series_state *s, int period, pp_status st, unsigned occ)
{
    return (uint64_t)s->index << 36 | (uint64_t)(occ & 0xffff) << 20 |
           (uint64_t)((uint32_t)period & 0xffff) << 4 | ((uint64_t)st & 15);
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

static bool id_seen(const alert_engine *e, const series_state *s, int period, pp_status st,
                    unsigned occ)
{
    if (s == NULL || e->raised_cap == 0)
        return false;
    uint64_t key = raised_key(s, period, st, occ);
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

/* The first occurrence of (period, status) not raised yet for the series:
 * 1 for a first time, 2 after a revision back and forth, … */
static unsigned next_occurrence(const alert_engine *e, const series_state *s, int period,
                                pp_status st)
{
    unsigned occ = 1;
    while (occ < ALERT_OCC_MAX && id_seen(e, s, period, st, occ))
        occ++;
    return occ;
}

static void id_add(alert_engine *e, const series_state *s, int period, pp_status st, unsigned occ)
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
    raised_put(e, raised_key(s, period, st, occ));
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
                                     PP_STATUS_NO_TARGET, PP_STATUS_STALE, PP_STATUS_NO_DATA,
                                     PP_STATUS_OVERDUE, PP_STATUS_RECEIVED };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (strcmp(pp_status_name(all[i]), s) == 0) {
            *ok = true;
            return all[i];
        }
    *ok = false;
    return PP_STATUS_OK;
}

/* Cuts "/N" (N >= 2) off a status token into *occ; true when there is none
 * (occ stays 1) or it is well formed. */
static bool parse_occurrence(char *tok, unsigned *occ)
{
    char *slash = strchr(tok, '/'), *end;
    if (slash == NULL)
        return true;
    *slash++ = '\0';
    if (*slash < '1' || *slash > '9')
        return false;
    errno = 0;
    unsigned long n = strtoul(slash, &end, 10);
    if (errno != 0 || *end != '\0' || n < 2 || n > ALERT_OCC_MAX)
        return false;
    *occ = (unsigned)n;
    return true;
}

/* ---- the id file (see the top) ---- */

/* "seq id check\n" of an alert into buf (ALERT_IDS_LINE_MAX bytes); its length. */
#define ALERT_IDS_LINE_MAX (ALERT_ID_MAX + 48)

static size_t ids_line(char *buf, uint64_t seq, const char *park, const char *ind, int period,
                       pp_status st, unsigned occ)
{
    char id[ALERT_ID_MAX];
    int n = snprintf(buf, ALERT_IDS_LINE_MAX, "%llu %s", (unsigned long long)seq,
                     alert_id(id, sizeof id, park, ind, period, st, occ));
    n += snprintf(buf + n, ALERT_IDS_LINE_MAX - (size_t)n, " %016llx\n",
                  (unsigned long long)ids_check(buf));
    return (size_t)n;
}

/* Applies one line of the id file (without its newline): its id is raised,
 * seq is at least its seq. false when it does not verify. */
static bool ids_apply(alert_engine *e, const char *line, size_t len)
{
    char buf[ALERT_IDS_LINE_MAX], *sp, *end;
    if (len < 20 || len >= sizeof buf)
        return false;
    memcpy(buf, line, len);
    buf[len] = '\0';
    sp = strrchr(buf, ' ');
    if (sp == NULL || strlen(sp + 1) != 16 || strspn(sp + 1, "0123456789abcdef") != 16)
        return false;
    *sp = '\0';
    if (strtoull(sp + 1, NULL, 16) != ids_check(buf))
        return false;
    /* seq park/indicator/period/status */
    if (buf[0] < '0' || buf[0] > '9')
        return false;
    errno = 0;
    unsigned long long seq = strtoull(buf, &end, 10);
    if (errno != 0 || seq == 0 || *end != ' ')
        return false;
    char *park = end + 1, *ind = strchr(park, '/'), *per = NULL, *st = NULL;
    if (ind) {
        *ind++ = '\0';
        per = strchr(ind, '/');
    }
    if (per) {
        *per++ = '\0';
        st = strchr(per, '/');
    }
    if (st == NULL)
        return false;
    *st++ = '\0';
    int period;
    bool ok;
    unsigned occ = 1;
    if (!parse_occurrence(st, &occ))
        return false;
    pp_status status = status_from_name(st, &ok);
    if (!ok || !pp_id_valid(park) || !pp_id_valid(ind) || pp_period_parse_canonical(per, &period) != 0)
        return false;
    series_state *s = state_get(e, park, ind, true);
    if (s == NULL) {
        log_err("alert", "out of memory reading %s", e->ids_path);
        return true;
    }
    id_add(e, s, period, status, occ);
    if (seq > s->max_seq)
        s->max_seq = seq;
    if (seq > e->seq)
        e->seq = seq;
    if (seq > e->ids_hw)
        e->ids_hw = seq;
    return true;
}

static int write_all_at(int fd, const char *buf, size_t len, off_t off)
{
    while (len > 0) {
        ssize_t w = pwrite(fd, buf, len, off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? -errno : -EIO;
        buf += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

static void fsync_dir_of(const char *path)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        return;
    *slash = '\0';
    int fd = open(dir[0] ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* Opens (creating) the id file and applies its lines. 0, or a negative errno
 * (logged): the daemon does not start without the second copy of its seq. */
static int ids_open(alert_engine *e, const char *state_dir)
{
    char *buf = NULL;
    int rc;
    if (asprintf(&e->ids_path, "%s/journal/" ALERT_IDS_FILE, state_dir) < 0) {
        e->ids_path = NULL;
        log_err("alert", "out of memory opening the alert id file");
        return -ENOMEM;
    }
    e->ids_fd = open(e->ids_path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    struct stat st;
    if (e->ids_fd < 0 || fstat(e->ids_fd, &st) != 0) {
        rc = -errno;
        log_errno("alert", "cannot open %s", e->ids_path);
        return rc;
    }
    const size_t hlen = strlen(ALERT_IDS_HEADER);
    if (st.st_size == 0) {
        if ((rc = write_all_at(e->ids_fd, ALERT_IDS_HEADER, hlen, 0)) != 0 ||
            (rc = fdatasync(e->ids_fd) != 0 ? -errno : 0) != 0) {
            log_err_rc("alert", rc, "cannot write %s", e->ids_path);
            return rc;
        }
        fsync_dir_of(e->ids_path);
        e->ids_size = (off_t)hlen;
        return 0;
    }
    size_t size = (size_t)st.st_size, got = 0;
    buf = malloc(size + 1);
    if (buf == NULL) {
        log_err("alert", "out of memory reading %s", e->ids_path);
        return -ENOMEM;
    }
    while (got < size) {
        ssize_t r = pread(e->ids_fd, buf + got, size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            if (r < 0)
                log_err_rc("alert", rc, "cannot read %s", e->ids_path);
            else
                log_err("alert", "cannot read %s: file shrank", e->ids_path);
            goto out;
        }
        got += (size_t)r;
    }
    buf[size] = '\0';
    if (size < hlen || memcmp(buf, ALERT_IDS_HEADER, hlen) != 0) {
        log_err("alert", "%s is not an alert id file of this version (first line: %.40s)", e->ids_path, buf);
        rc = -EINVAL;
        goto out;
    }
    size_t bad = 0, lineno = 1;
    for (size_t off = hlen; off < size;) {
        lineno++;
        char *nl = memchr(buf + off, '\n', size - off);
        size_t len = nl ? (size_t)(nl - (buf + off)) : size - off;
        if (!ids_apply(e, buf + off, len) && bad++ < 20)
            log_warn("alert", "%s line %zu: damaged, skipped (kept in the file)", e->ids_path, lineno);
        off += len + (nl ? 1 : 0);
    }
    e->ids_size = (off_t)size;
    if (buf[size - 1] != '\n') {
        /* the last line lost its end: end it, so that appends start a line */
        if ((rc = write_all_at(e->ids_fd, "\n", 1, (off_t)size)) != 0 ||
            (rc = fdatasync(e->ids_fd) != 0 ? -errno : 0) != 0) {
            log_err_rc("alert", rc, "cannot write %s", e->ids_path);
            goto out;
        }
        log_warn("alert", "%s line %zu had no end of line: ended", e->ids_path, lineno);
        e->ids_size++;
    }
    if (bad)
        log_warn("alert", "%s: %zu damaged line(s) skipped; the journal holds the same alerts", e->ids_path, bad);
    rc = 0;
out:
    free(buf);
    return rc;
}

/* Queues a line (malloc'd, taken over) for the id file; the oldest is dropped
 * when ALERT_IDS_BACKLOG are waiting (its alert stays in the journal; the
 * newest carry the highest seq, which matters most). */
static void ids_queue(alert_engine *e, char *line)
{
    if (line == NULL) {
        log_err("alert", "out of memory queueing an alert id for %s", e->ids_path);
        return;
    }
    pthread_mutex_lock(&e->lock);
    if (e->backlog == NULL && (e->backlog = calloc(ALERT_IDS_BACKLOG, sizeof *e->backlog)) == NULL) {
        pthread_mutex_unlock(&e->lock);
        log_err("alert", "out of memory queueing an alert id for %s", e->ids_path);
        free(line);
        return;
    }
    if (e->backlog_len == ALERT_IDS_BACKLOG) {
        e->backlog_dropped++;
        free(e->backlog[e->backlog_head]);
        e->backlog_head = (e->backlog_head + 1) % ALERT_IDS_BACKLOG;
        e->backlog_len--;
    }
    e->backlog[(e->backlog_head + e->backlog_len++) % ALERT_IDS_BACKLOG] = line;
    pthread_mutex_unlock(&e->lock);
}

/* Writes what is queued to the id file, fdatasync'd; on failure it stays
 * queued for the next evaluation (logged once until a write succeeds). Only
 * the writer calls it. Returns 0 or a negative errno. */
static int ids_flush(alert_engine *e)
{
    pthread_mutex_lock(&e->lock);
    size_t n = e->backlog_len, len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(e->backlog[(e->backlog_head + i) % ALERT_IDS_BACKLOG]);
    char *buf = n ? malloc(len) : NULL;
    for (size_t i = 0, off = 0; buf && i < n; i++) {
        const char *l = e->backlog[(e->backlog_head + i) % ALERT_IDS_BACKLOG];
        size_t k = strlen(l);
        memcpy(buf + off, l, k);
        off += k;
    }
    pthread_mutex_unlock(&e->lock);
    if (n == 0)
        return 0;
    int rc = buf ? 0 : -ENOMEM;
    if (rc == 0 && e->ids_dirty && ftruncate(e->ids_fd, e->ids_size) != 0)
        rc = -errno;
    if (rc == 0)
        e->ids_dirty = false;
    if (rc == 0)
        rc = write_all_at(e->ids_fd, buf, len, e->ids_size);
    if (rc == 0 && fdatasync(e->ids_fd) != 0)
        rc = -errno;
    free(buf);
    if (rc != 0) {
        if (rc != -ENOMEM && ftruncate(e->ids_fd, e->ids_size) != 0)
            e->ids_dirty = true;
        if (!e->ids_failing)
            log_err_rc("alert", rc, "cannot write %zu alert id(s) to %s (the journal holds them, "
                       "retried with the next evaluation)", n, e->ids_path);
        e->ids_failing = true;
        return rc;
    }
    e->ids_size += (off_t)len;
    if (e->backlog_dropped) {
        log_warn("alert", "%s: %zu older alert id(s) are in the journal only (more than %d were "
                 "waiting)", e->ids_path, e->backlog_dropped, ALERT_IDS_BACKLOG);
        e->backlog_dropped = 0;
    }
    if (e->ids_failing)
        log_info("alert", "%s written again", e->ids_path);
    e->ids_failing = false;
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < n; i++) {
        free(e->backlog[e->backlog_head]);
        e->backlog_head = (e->backlog_head + 1) % ALERT_IDS_BACKLOG;
    }
    e->backlog_len -= n;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

/* ---- what the configuration in force lists (e->lock held, cfg read-locked) ---- */

static void hidden_refresh(alert_engine *e)
{
    const pp_app *app = e->app;
    if (app == NULL || app->cfg == NULL || (!e->hidden_dirty && e->hidden_gen == app->cfg_generation))
        return;
    const pp_catalog *cat = &app->cfg->catalog;
    for (state_block *k = e->blocks; k; k = k->next) {
        for (size_t i = 0; i < k->used; i++) {
            series_state *s = &k->s[i];
            const pp_park *p = pp_catalog_park(cat, s->park);
            const pp_indicator *ind = pp_catalog_indicator(cat, s->ind);
            s->hidden = !(p && strcmp(p->id, s->park) == 0 && ind && strcmp(ind->id, s->ind) == 0);
        }
    }
    e->hidden_gen = app->cfg_generation;
    e->hidden_dirty = false;
}

static bool shown(const alert_msg *m) { return m->series == NULL || !m->series->hidden; }

/* ---- pending decisions ---- */

/* The series of the n decisions are pending (none when n is 0); under lock. */
static void pending_set(alert_engine *e, const struct pending *p, size_t n, bool all)
{
    pthread_mutex_lock(&e->lock);
    e->n_pend = 0;
    e->pend_all = all;
    if (n > 0 && e->pend == NULL)
        e->pend = malloc(ALERT_PENDING_MAX * sizeof *e->pend);
    for (size_t i = 0; i < n && !e->pend_all; i++) {
        if (e->pend == NULL || e->n_pend == ALERT_PENDING_MAX)
            e->pend_all = true;
        else
            e->pend[e->n_pend++] = p[i];
    }
    pthread_mutex_unlock(&e->lock);
}

/* Applies a decision to memory: an alert when is_alert (m: its message, of
 * which the series and the ring take references; NULL when it could not be
 * kept), else a quiet state change. */
static void apply(alert_engine *e, uint64_t seq, const char *park, const char *ind, int period,
                  pp_status st, unsigned occ, bool is_alert, alert_msg *m)
{
    series_state *s = state_get(e, park, ind, true);
    if (s == NULL) {
        log_err("alert", "out of memory keeping the state of %s/%s", park, ind);
        return;
    }
    bool od = st == PP_STATUS_OVERDUE || st == PP_STATUS_RECEIVED;
    if (od) {
        /* the overdue flag: its own state beside the status */
        s->od_period = st == PP_STATUS_OVERDUE ? period : -1;
        msg_unref(s->od_last);
        s->od_last = st == PP_STATUS_OVERDUE && is_alert ? msg_ref(m) : NULL;
    } else {
        s->status = st;
        s->period = period;
        s->last_current = is_alert;
    }
    if (is_alert && seq > e->journal_seq)
        e->journal_seq = seq;
    if (is_alert && seq > s->max_seq)
        s->max_seq = seq;
    s->state_seq = e->journal_seq;
    if (is_alert) {
        id_add(e, s, period, st, occ);
        if (m)
            m->series = s;
        if (!od) {
            msg_unref(s->last);
            s->last = msg_ref(m);
        }
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
    unsigned occ = 1;
    if (!pp_id_valid(park) || !pp_id_valid(ind) || pp_period_parse_canonical(per, &period) != 0 ||
        !parse_occurrence(st, &occ))
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
    apply(e, seq, park, ind, period, status, occ, n != 0, m);
    msg_unref(m); /* the series and the ring hold their own references */
    e->hidden_dirty = true;
    if (n && e->ids_fd >= 0 && seq > e->ids_hw) {
        /* journaled, but not in the id file: a crash between the two writes */
        char line[ALERT_IDS_LINE_MAX];
        ids_line(line, seq, park, ind, period, status, occ);
        ids_queue(e, strdup(line));
    }
    return 0;
bad:
    log_warn("alert", "ignoring a malformed alert event in the journal: %.80s", payload);
    return -1;
}

/* ---- evaluation ---- */

typedef struct decision {
    const char *park, *ind; /* interned in e->names */
    int period;
    pp_status status;       /* overdue and received: the overdue flag's own state */
    unsigned occ;           /* 1, or 2, 3, … when (period, status) is entered again */
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

static bool is_quiet(pp_status s)
{
    return s == PP_STATUS_OK || s == PP_STATUS_NO_TARGET || s == PP_STATUS_NO_DATA;
}

/* The alert's JSON (README, Alerts) in a message of its own size, or NULL on
 * ENOMEM. status, period and occ are the decision's; previous its previous
 * state's name ("none" for a first one); silenced when a silence matches. */
static alert_msg *alert_json(const series_status *st, pp_status status, int period, unsigned occ,
                             const char *previous, uint64_t seq, int64_t now, bool silenced)
{
    char id[ALERT_ID_MAX], pbuf[16], tbuf[40];
    const pace_result *r = &st->pace;
    pp_period_format(period, pbuf, sizeof pbuf);
    alert_id(id, sizeof id, st->park->id, st->ind->id, period, status, occ);
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
    json_str(&b, pp_status_name(status));
    json_key(&b, "previous", false);
    json_str(&b, previous);
    status_figures_json(&b, st);
    status_flags_json(&b, st);
    json_key(&b, "message", false);
    if (status == PP_STATUS_OVERDUE || status == PP_STATUS_RECEIVED) {
        char msg[640];
        int m = pp_period_month(period);
        snprintf(msg, sizeof msg, "%s %s %d年%s%d月数据%s。", st->park->name, st->ind->label,
                 pp_period_year(period), m == 1 ? "" : "1-", m,
                 status == PP_STATUS_OVERDUE ? "逾期未报" : "已补报");
        json_str(&b, msg);
    } else {
        json_str(&b, r->message);
    }
    if (silenced) { /* silence.h: published, not delivered by parkpulse-notify */
        json_key(&b, "silenced", false);
        json_bool(&b, true);
    }
    jbuf_puts(&b, "}");
    alert_msg *m = b.failed ? NULL : msg_new(seq, b.data, b.len);
    jbuf_free(&b);
    return m;
}

/* Appends a decision to ds (publishing it when publish); false on ENOMEM. */
static bool add_decision(alert_engine *e, decisions *ds, const series_state *prev,
                         const series_status *st, pp_status status, int period, bool publish,
                         const char *previous, int64_t now)
{
    const pp_park *park = st->park;
    const pp_indicator *ind = st->ind;
    if (ds->n == ds->cap) {
        size_t cap = ds->cap ? 2 * ds->cap : 16;
        decision *t = realloc(ds->d, cap * sizeof *t);
        if (t == NULL) {
            ds->failed = true;
            log_err("alert", "out of memory deciding for %s/%s", park->id, ind->id);
            return false;
        }
        ds->d = t;
        ds->cap = cap;
    }
    /* The series' state is made now (a state of period -1 is no state), so
     * that applying the decision after the journal took it cannot fail. */
    if (prev == NULL)
        prev = state_get(e, park->id, ind->id, true);
    decision *x = &ds->d[ds->n];
    memset(x, 0, sizeof *x);
    x->park = prev ? prev->park : NULL;
    x->ind = prev ? prev->ind : NULL;
    if (x->park == NULL || x->ind == NULL) {
        ds->failed = true;
        log_err("alert", "out of memory deciding for %s/%s", park->id, ind->id);
        return false;
    }
    x->period = period;
    x->status = status;
    x->occ = 1;
    if (publish && prev != NULL && prev->state_seq < prev->max_seq &&
        id_seen(e, prev, period, status, 1))
        /* the state is older than the series' last alert: a damaged journal
         * line lost a decision; an id raised already stays quiet */
        publish = false;
    if (publish) {
        /* entering the same (period, status) again is a new alert: /2, /3, … */
        x->occ = next_occurrence(e, prev, period, status);
        for (size_t i = 0; i < ds->n; i++) /* twice in one batch (cannot happen today) */
            if (ds->d[i].seq && ds->d[i].park == x->park && ds->d[i].ind == x->ind &&
                ds->d[i].period == period && ds->d[i].status == status && ds->d[i].occ >= x->occ)
                x->occ = ds->d[i].occ + 1;
        x->seq = e->seq + 1;
        for (size_t i = 0; i < ds->n; i++)
            if (ds->d[i].seq >= x->seq)
                x->seq = ds->d[i].seq + 1;
        x->msg = alert_json(st, status, period, x->occ, previous, x->seq, now,
                            silence_match(e->app->silences, park->id, ind->id, now));
        if (x->msg == NULL) {
            ds->failed = true;
            log_err("alert", "out of memory formatting an alert for %s/%s", park->id, ind->id);
            return false;
        }
    }
    ds->n++;
    return true;
}

/* What decide() adds for one series, judged without changing anything (so
 * that every series can be judged on several threads at once): the status
 * decision (change) and the overdue flag's (od). */
typedef struct verdict {
    const series_state *prev;   /* the series' state, or NULL */
    pp_status cur;
    int period;
    bool change, publish;       /* a status decision; published */
    enum { OD_NONE, OD_OVERDUE, OD_ENDED } od; /* an overdue flag decision */
    int od_prev;                /* the overdue month before, or -1 */
    bool received;              /* OD_ENDED: published as received */
} verdict;

/* Judges one series into *vd (st: its status). Returns false when the
 * series has no status (nothing to decide). Reads only: e->lock and a read
 * view held by the caller. Two things are decided apart: the status of the
 * latest figure (a change publishes, as does a new period while warning or
 * critical), and the overdue flag (overdue for a month publishes "overdue",
 * its figure arriving publishes "received"). */
static bool judge(alert_engine *e, const pp_view *v, const pp_park *park, const pp_indicator *ind,
                  series_status *st, verdict *vd)
{
    const db_series *s = db_series_get(v->db, park->id, ind->id);
    if (!status_eval(v, park, ind, s, -1, st))
        return false;
    memset(vd, 0, sizeof *vd);
    pp_status cur = st->pace.status;
    const series_state *prev = state_get(e, park->id, ind->id, false);
    bool had = prev != NULL && prev->period >= 0;
    /* a series without a figure keeps the period of its last state */
    int period = st->has_figure ? st->period : (had ? prev->period : -1);
    bool publish = false, change = true;
    if (period < 0) {
        change = false; /* no figure and nothing before: nothing to say */
    } else if (!had) {
        publish = !is_quiet(cur);
    } else if (cur != prev->status) {
        publish = !(is_quiet(cur) && is_quiet(prev->status));
    } else if (period != prev->period) {
        publish = cur == PP_STATUS_WARNING || cur == PP_STATUS_CRITICAL;
    } else {
        change = false; /* nothing new */
    }
    vd->prev = prev;
    vd->cur = cur;
    vd->period = period;
    vd->change = change;
    vd->publish = publish;

    /* the overdue flag */
    vd->od_prev = prev ? prev->od_period : -1;
    if (st->pace.overdue && st->pace.overdue_period != vd->od_prev) {
        vd->od = OD_OVERDUE;
    } else if (!st->pace.overdue && vd->od_prev >= 0) {
        /* received when a figure for that month (or a later one) came; a target
         * removed or a reload ends it quietly */
        vd->od = OD_ENDED;
        vd->received = st->has_figure && st->period >= vd->od_prev;
    }
    return true;
}

/* Decides for one series (judge); appends to ds. */
static void decide(alert_engine *e, const pp_view *v, const pp_park *park, const pp_indicator *ind,
                   decisions *ds)
{
    const int64_t now = v->now;
    series_status st;
    verdict vd;
    if (!judge(e, v, park, ind, &st, &vd))
        return;
    const series_state *prev = vd.prev;
    bool had = prev != NULL && prev->period >= 0;
    if (vd.change && !add_decision(e, ds, prev, &st, vd.cur, vd.period, vd.publish,
                                   had ? pp_status_name(prev->status) : "none", now))
        return;
    if (vd.od == OD_OVERDUE)
        add_decision(e, ds, prev, &st, PP_STATUS_OVERDUE, st.pace.overdue_period, true,
                     vd.od_prev >= 0 ? "overdue" : "none", now);
    else if (vd.od == OD_ENDED)
        add_decision(e, ds, prev, &st, PP_STATUS_RECEIVED, vd.od_prev, vd.received, "overdue",
                     now);
}

/* Every series judged on up to JUDGE_THREADS threads: an evaluation of all of
 * them (start-up: 125,000 series take seconds on one core) first marks, in
 * parallel and changing nothing, the series judge() has a decision for; then
 * decide() runs, on this thread and in the catalogue's order as before, for
 * the marked ones only. judge() reads only what the caller holds locked
 * (the read view, e->lock), so the decisions are the same as one thread's. */
#define JUDGE_THREADS 4

size_t alert_judge_parallel_min = 4096; /* fewer series are judged on this thread alone */

typedef struct judge_part {
    alert_engine *e;
    const pp_view *v;
    const pp_catalog *cat;
    size_t from, to;            /* series k: park k / n_indicators, indicator k % n_indicators */
    uint8_t *mark;
} judge_part;

static void *judge_range(void *arg)
{
    judge_part *jp = arg;
    size_t n_ind = jp->cat->n_indicators;
    for (size_t k = jp->from; k < jp->to; k++) {
        series_status st;
        verdict vd;
        jp->mark[k] = judge(jp->e, jp->v, &jp->cat->parks[k / n_ind],
                            &jp->cat->indicators[k % n_ind], &st, &vd) &&
                      (vd.change || vd.od != OD_NONE);
    }
    return NULL;
}

/* Marks the series with a decision into mark (one byte per series). */
static void judge_all(alert_engine *e, const pp_view *v, const pp_catalog *cat, uint8_t *mark)
{
    size_t total = cat->n_parks * cat->n_indicators;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int nt = ncpu < 1 ? 1 : ncpu > JUDGE_THREADS ? JUDGE_THREADS : (int)ncpu;
    judge_part part[JUDGE_THREADS];
    pthread_t th[JUDGE_THREADS];
    bool started[JUDGE_THREADS] = { false };
    for (int t = 0; t < nt; t++)
        part[t] = (judge_part){ .e = e, .v = v, .cat = cat, .mark = mark,
                                .from = total * (size_t)t / (size_t)nt,
                                .to = total * (size_t)(t + 1) / (size_t)nt };
    for (int t = 1; t < nt; t++)
        started[t] = pthread_create(&th[t], NULL, judge_range, &part[t]) == 0;
    judge_range(&part[0]);
    for (int t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            judge_range(&part[t]); /* no thread: this one judges its part too */
    }
}

static void free_events(char **ev, size_t n)
{
    if (ev == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(ev[i]);
    free(ev);
}

/* true when one of the first n decisions of ds is for the series. */
static bool decided(const decisions *ds, size_t n, const char *park, const char *ind)
{
    for (size_t i = 0; i < n && i < ds->n; i++)
        if (strcmp(ds->d[i].park, park) == 0 && strcmp(ds->d[i].ind, ind) == 0)
            return true;
    return false;
}

/* Decides, under one read view and e->lock, every series (all, or a full
 * evaluation pending) or the series that wait in e->pend and then the n
 * requested ones, each once. Fills ds; returns the configuration generation
 * the decisions were made under. */
static uint64_t decide_series(alert_engine *e, const char *const *parks,
                              const char *const *indicators, size_t n, bool all, decisions *ds)
{
    pp_view v;

    view_begin(e->app, &v);
    const pp_catalog *cat = &v.cfg->catalog;
    const uint64_t gen = v.cfg_generation;
    pthread_mutex_lock(&e->lock);
    hidden_refresh(e);
    if (all || e->pend_all) {
        size_t total = cat->n_parks * cat->n_indicators;
        uint8_t *mark = total >= alert_judge_parallel_min ? malloc(total ? total : 1) : NULL;
        if (mark != NULL) {
            judge_all(e, &v, cat, mark);
            for (size_t k = 0; k < total && !ds->failed; k++)
                if (mark[k])
                    decide(e, &v, &cat->parks[k / cat->n_indicators],
                           &cat->indicators[k % cat->n_indicators], ds);
        } else {
            for (size_t i = 0; i < cat->n_parks && !ds->failed; i++)
                for (size_t j = 0; j < cat->n_indicators && !ds->failed; j++)
                    decide(e, &v, &cat->parks[i], &cat->indicators[j], ds);
        }
        free(mark);
    } else {
        /* first the series whose decisions could not be journaled before */
        for (size_t i = 0; i < e->n_pend && !ds->failed; i++) {
            const char *pid = e->pend[i].park, *iid = e->pend[i].ind;
            const pp_park *park = pp_catalog_park(cat, pid);
            const pp_indicator *ind = pp_catalog_indicator(cat, iid);
            if (park && ind && strcmp(park->id, pid) == 0 && strcmp(ind->id, iid) == 0 &&
                !decided(ds, ds->n, pid, iid))
                decide(e, &v, park, ind, ds);
        }
        const size_t n_from_pending = ds->n; /* what the requested series may repeat */
        for (size_t i = 0; i < n && !ds->failed; i++) {
            const pp_park *park = pp_catalog_park(cat, parks[i]);
            const pp_indicator *ind = pp_catalog_indicator(cat, indicators[i]);
            if (park && ind && strcmp(park->id, parks[i]) == 0 && strcmp(ind->id, indicators[i]) == 0 &&
                !decided(ds, n_from_pending, park->id, ind->id))
                decide(e, &v, park, ind, ds);
        }
    }
    pthread_mutex_unlock(&e->lock);
    view_end(&v);
    return gen;
}

/* Writes the nd decisions to the journal as one batch (fsync'd): "alert"
 * lines for those with a seq, "state" lines for the others. Returns 0 or
 * -errno (-ENOMEM, -EMSGSIZE, or the journal's); nothing is logged. */
static int journal_decisions(alert_engine *e, const decision *d, size_t nd)
{
    char **recs = calloc(nd, sizeof *recs); /* the journal lines' payloads */
    int jr = -ENOMEM;

    if (recs == NULL)
        return jr;
    for (size_t i = 0; i < nd; i++) {
        char pbuf[16], tok[32];
        pp_period_format(d[i].period, pbuf, sizeof pbuf);
        status_token(tok, sizeof tok, d[i].status, d[i].occ);
        int w;
        if (d[i].seq)
            w = asprintf(&recs[i], "alert %llu %s %s %s %s %s", (unsigned long long)d[i].seq,
                         d[i].park, d[i].ind, pbuf, tok, d[i].msg->json);
        else
            w = asprintf(&recs[i], "state %s %s %s %s", d[i].park, d[i].ind, pbuf, tok);
        if (w < 0) {
            recs[i] = NULL;
            goto out;
        }
        if ((size_t)w >= JOURNAL_EVENT_MAX) {
            jr = -EMSGSIZE;
            goto out;
        }
    }
    jr = journal_append_events(e->app->journal, (const char *const *)recs, nd);
out:
    free_events(recs, nd); /* gone before the bus copies the alerts */
    return jr < 0 ? jr : 0;
}

/* After the journal took them: the id file, then the series' states in
 * memory (under e->lock) judged under configuration generation gen. */
static void apply_decisions(alert_engine *e, const decision *d, size_t nd, uint64_t gen)
{
    pending_set(e, NULL, 0, false);
    if (e->journal_failing)
        log_info("alert", "the journal takes alert decisions again: %zu journaled", nd);
    e->journal_failing = false;
    for (size_t i = 0; i < nd && e->ids_fd >= 0; i++) {
        if (d[i].seq) {
            char line[ALERT_IDS_LINE_MAX];
            ids_line(line, d[i].seq, d[i].park, d[i].ind, d[i].period, d[i].status, d[i].occ);
            ids_queue(e, strdup(line));
        }
    }
    ids_flush(e); /* on failure, the journal's copy is the one; retried later */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < nd; i++)
        apply(e, d[i].seq, d[i].park, d[i].ind, d[i].period, d[i].status, d[i].occ, d[i].seq != 0,
              d[i].msg);
    if (gen != e->hidden_gen)
        e->hidden_dirty = true; /* new states were judged under another configuration */
    pthread_mutex_unlock(&e->lock);
}

/* Publishes the alerts (decisions with a seq) on the bus, logs them and
 * wakes the listener. Returns how many were raised. */
static int publish_decisions(alert_engine *e, const decision *d, size_t nd)
{
    int raised = 0;

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
    return raised;
}

/* The journal refused the batch (jr): nothing of it is journaled, applied
 * or published, and no seq is taken; the series wait in e->pend and are
 * decided again at the next evaluation or retry. Logged once per outage. */
static void retry_decisions_later(alert_engine *e, const decision *d, size_t nd, int jr)
{
    struct pending *p = malloc(nd * sizeof *p);
    for (size_t i = 0; p && i < nd; i++)
        p[i] = (struct pending){ d[i].park, d[i].ind };
    pending_set(e, p, p ? nd : 0, p == NULL);
    free(p);
    if (!e->journal_failing)
        log_err_rc("alert", jr, "cannot journal %zu alert decision(s) (not published, retried "
                   "every second and at the next evaluation)", nd);
    e->journal_failing = true;
}

int alert_evaluate(alert_engine *e, const char *const *parks, const char *const *indicators,
                   size_t n, bool all)
{
    decisions ds = { 0 };
    int rc = -1;
    const uint64_t gen = decide_series(e, parks, indicators, n, all, &ds);

    /* journal first (fsync), then the id file, then memory, then the bus */
    if (ds.failed) {
        pending_set(e, NULL, 0, true); /* out of memory: decide everything again */
    } else if (ds.n == 0) {
        pending_set(e, NULL, 0, false); /* what waited has nothing to say any more */
        e->journal_failing = false;
        ids_flush(e);
        rc = 0;
    } else {
        int jr = journal_decisions(e, ds.d, ds.n);
        if (jr < 0) {
            retry_decisions_later(e, ds.d, ds.n, jr);
        } else {
            apply_decisions(e, ds.d, ds.n, gen);
            rc = publish_decisions(e, ds.d, ds.n);
        }
    }
    /* the series and the ring hold their own references to what was applied */
    pthread_mutex_lock(&e->lock);
    for (size_t i = 0; i < ds.n; i++)
        msg_unref(ds.d[i].msg);
    pthread_mutex_unlock(&e->lock);
    free(ds.d);
    return rc;
}

int alert_retry_pending(alert_engine *e)
{
    if (e == NULL || e->app == NULL)
        return 0;
    pthread_mutex_lock(&e->lock);
    bool work = e->n_pend > 0 || e->pend_all || e->backlog_len > 0;
    pthread_mutex_unlock(&e->lock);
    if (!work)
        return 0;
    /* an ingest in progress evaluates them itself (or the next tick does) */
    if (pthread_mutex_trylock(&e->app->ingest_lock) != 0)
        return 0;
    int rc = alert_evaluate(e, NULL, NULL, 0, false);
    pthread_mutex_unlock(&e->app->ingest_lock);
    return rc;
}

uint64_t alert_seq(alert_engine *e)
{
    pthread_mutex_lock(&e->lock);
    uint64_t s = e->seq;
    pthread_mutex_unlock(&e->lock);
    return s;
}

static int cmp_msg_seq(const void *a, const void *b)
{
    uint64_t x = (*(alert_msg *const *)a)->seq, y = (*(alert_msg *const *)b)->seq;
    return x < y ? -1 : x > y;
}

void alert_active_json(alert_engine *e, jbuf *b)
{
    pthread_mutex_lock(&e->lock);
    hidden_refresh(e);
    alert_msg **act = calloc(e->n_states ? 2 * e->n_states : 1, sizeof *act);
    size_t n = 0;
    for (size_t i = 0; act && i < e->n_state_buckets; i++)
        for (series_state *s = e->states[i]; s; s = s->next) {
            if (s->hidden)
                continue;
            /* the status's alert only when it is the current one (not a recovery
             * followed by a quiet change) */
            if (s->last && !is_quiet(s->status) && s->last->seq && s->last_current)
                act[n++] = s->last;
            if (s->od_last && s->od_period >= 0)
                act[n++] = s->od_last;
        }
    if (act)
        qsort(act, n, sizeof *act, cmp_msg_seq);
    jbuf_puts(b, "{");
    json_key(b, "seq", true);
    json_int(b, (int64_t)e->seq);
    json_key(b, "alerts", false);
    jbuf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            jbuf_puts(b, ",");
        jbuf_raw(b, act[i]->json, act[i]->len);
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
    hidden_refresh(e);
    jbuf_puts(b, "{");
    json_key(b, "seq", true);
    json_int(b, (int64_t)e->seq);
    json_key(b, "alerts", false);
    jbuf_puts(b, "[");
    bool first = true;
    uint64_t oldest = e->hist_len ? e->hist[e->hist_head]->seq : e->seq + 1;
    for (size_t i = 0; i < e->hist_len; i++) {
        const alert_msg *h = e->hist[(e->hist_head + i) % ALERT_HISTORY];
        if (h->seq <= since || !shown(h))
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
    /* called under the http server's sse_lock, which the alert path takes
     * after the cfg lock: only try it; without it, the flags of the last
     * refresh hold (a reload ends with an evaluation, which refreshes them) */
    bool cfg = e->app && pthread_rwlock_tryrdlock(&e->app->cfg_lock) == 0;
    pthread_mutex_lock(&e->lock);
    if (cfg)
        hidden_refresh(e);
    for (size_t i = 0; i < e->hist_len; i++) {
        const alert_msg *h = e->hist[(e->hist_head + i) % ALERT_HISTORY];
        if (h->seq > after && shown(h)) {
            r = strdup(h->json);
            *seq = h->seq;
            break;
        }
    }
    pthread_mutex_unlock(&e->lock);
    if (cfg)
        pthread_rwlock_unlock(&e->app->cfg_lock);
    return r;
}
