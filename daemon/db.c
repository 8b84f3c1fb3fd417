/*
 * db.c — the in-memory state (see db.h): every series with all the vintages of
 * its figures, and every target, rebuilt from the journal at start and extended
 * by ingest.
 *
 * Memory is the point of the layout: a deployment of 10^4 series of ten years
 * holds 1.2 * 10^6 figures, and each costs 8 bytes. A series keeps its months
 * densely from its first figure to its last (months are consecutive; a month
 * without a figure is an empty cell), in one allocation: cap values, then cap
 * metas. A meta packs whether the cell holds a figure, its status, whether
 * older vintages of it exist, the decimal exponent of its value, and the index
 * of its delivery: the (source, received_at) pair every figure of one file
 * shares, interned in a table so that a figure does not carry 16 bytes of it (a
 * one-entry cache makes the consecutive records of one file, as replay sees
 * them, O(1)). The cell always holds the vintage in force.
 *
 * Published figures are decimals with few digits (192.2, 1234.5, 6000), so a
 * value is kept as an int32_t mantissa m with the exponent k (0..7) in its
 * meta, meaning the double m / 10^k. That division of two exactly
 * representable numbers is correctly rounded, so it is the double strtod gives
 * for the decimal m * 10^-k: a value is stored so only when that division gives
 * it back bit for bit (-0.0 never does: it would come back as +0.0). The first
 * value of a series that does not fit (0.30000000000000004, 1e300,
 * 123456789.12, -0.0) makes the series wide for good: its values become
 * doubles, 12 bytes a figure, and every one already there converts exactly.
 *
 * A 同比 % (yoy) comes with few series, so a series has no room for it until
 * its first figure with one: then an array of cap doubles beside the cells
 * (NaN for a month without), which follows the cells as they grow or shift.
 * A series without any yoy costs one NULL pointer.
 *
 * Revisions are rare, so the vintages they replace go to a per-series array
 * in the order they were replaced, which is oldest first within each period:
 * adding stays O(1) whatever the order of the journal, and only a cell marked
 * as having older vintages makes a reader scan that array. Cell arrays grow a
 * year at a time, not by doubling, so that the slack stays small; a figure
 * before the first month shifts them (rare).
 *
 * A retraction (status W, README) withdraws a period's figure: the figure in
 * force moves to the older vintages like a revised one, and the cell keeps the
 * retraction itself — META_HAS clear, META_OLDER set (a cell that never held a
 * figure has neither), its delivery the retraction's source and time — so the
 * period has no figure while its history keeps everything. A figure sent
 * after it moves the retraction to the older vintages in turn, marked there
 * with OLD_RETRACTED. Retractions are rare: their reasons sit in a small list
 * of their own (series, period, received_at, reason), searched when a
 * history is read.
 *
 * Series live in an arena (so a db_series pointer stays put; nothing is freed
 * before db_free) and are found by an open-addressing hash table on (park,
 * indicator) whose slots keep the hash (a probe reads only the series it
 * looks for); a second array keeps them sorted by park id, then indicator id,
 * for db_series_at (a new series is put in place by binary search: series are
 * few and rarely created). Ids and sources are interned in one hash set (a few
 * hundred parks, indicators and files), their bytes also in the arena. Targets
 * sit in a hash table keyed by (series, year).
 *
 * Locking is the caller's: writers hold db_wrlock, readers db_rdlock (see db.h);
 * the rwlock prefers writers so that a stream of HTTP readers cannot starve
 * ingest. The generation counter is atomic so that it may be polled unlocked
 * (written only under the write lock: a plain store, see changed()).
 */
#include "db.h"

#include "hash.h"
#include "log.h"
#include "vec.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DB_ARENA_CHUNK (256 * 1024) /* bytes per arena chunk */
#define DB_ARENA_ALIGN 16
#define DB_MIN_SLOTS 64
#define DB_DLV_RECENT 8192          /* deliveries remembered by received_at (a power of two;
                                       few of a park's 120 monthly files share a slot) */
#define DB_CELL_STEP 12             /* cell arrays grow by a year of months */

/* A cell's meta. */
#define META_HAS 0x80000000u        /* the cell holds a figure */
#define META_OLDER 0x40000000u      /* older vintages of it are in the series' db_older */
#define META_STATUS_SHIFT 28        /* 2 bits: the status's index in db_statuses */
#define META_EXP_SHIFT 25           /* 3 bits: k of a mantissa's m / 10^k (0 when wide) */
#define META_EXP (7u << META_EXP_SHIFT)
#define META_DELIVERY 0x01ffffffu   /* index in d->deliveries */
/* 2^25 - 1 = 33,554,431 deliveries (the exponent took 3 bits of 2^28 - 1): one a
 * minute for 63 years. Each is a distinct (file, received_at) pair: a thousand
 * parks delivering a file a day each take over 90 years to reach it. Reaching it
 * refuses figures (logged), it corrupts none. */
#define DB_DELIVERIES_MAX META_DELIVERY
/* In a db_old's meta (which keeps no META_HAS): the vintage is a retraction. */
#define OLD_RETRACTED META_HAS

/* 10^k for a mantissa's exponent k: every one exact in a double. */
static const double db_pow10[8] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7 };
/* A double of smaller magnitude rounds half away from zero into an int32_t. */
#define DB_MANTISSA_LIMIT 2147483647.5

/* Months from PP_PERIOD_MIN_YEAR-01 to PP_PERIOD_MAX_YEAR-12: the longest series. */
#define DB_MONTHS_MAX ((PP_PERIOD_MAX_YEAR - PP_PERIOD_MIN_YEAR + 1) * 12)
static_assert((DB_MONTHS_MAX + DB_CELL_STEP - 1) / DB_CELL_STEP * DB_CELL_STEP <= UINT16_MAX,
              "db_series.n and .cap are uint16_t");

static const char db_statuses[] = "APER";

typedef struct db_chunk {
    struct db_chunk *next;
} db_chunk;

typedef struct db_delivery {
    const char *source;       /* interned */
    int64_t received_at;
} db_delivery;

/* A replaced vintage (a double whatever the series: revisions are rare). */
typedef struct db_old {
    double value;
    double yoy;               /* NaN: none */
    int32_t period;
    uint32_t meta;            /* status and delivery bits of a cell's meta */
} db_old;

struct db_older {
    uint32_t n, cap;
    db_old v[];               /* in the order they were replaced */
};

/* A series in the hash table, with its hash: a probe compares the hashes
 * first, so that only the series looked for is read (one cache miss per
 * look-up in a table of 10^5 series, not one per slot probed). */
typedef struct db_sslot {
    uint64_t h;
    db_series *s;
} db_sslot;

typedef struct db_tslot {
    const db_series *series; /* NULL: free slot */
    int year;
    double value;
} db_tslot;

struct db {
    pthread_rwlock_t lock;
    _Atomic uint64_t generation;

    db_series **sorted;       /* every series, by (park, indicator) */
    size_t n_series, cap_sorted;
    db_sslot *slots;          /* hash table of the same series; s NULL: free */
    size_t n_slots;           /* 0 or a power of two, at most half full */
    db_series *last;          /* the series last added to (a replay in series order adds
                                 each series' figures one after another): no hashing */

    const char **str_slots;   /* interned ids and sources; NULL: free */
    size_t n_str_slots, n_str;

    db_delivery *deliveries;  /* interned (source, received_at) pairs */
    size_t n_deliveries, cap_deliveries;
    uint32_t *dlv_slots;      /* hash table of delivery index + 1; 0: free */
    size_t n_dlv_slots;
    uint32_t last_dlv;        /* the delivery used last, when n_deliveries > 0 */
    uint32_t dlv_recent[DB_DLV_RECENT]; /* delivery index + 1 (0: none) by received_at:
                                 a replay in series order goes through the same
                                 deliveries (a park's monthly files) for each of a
                                 park's series, one figure each */

    db_tslot *t_slots;        /* targets */
    size_t n_t_slots, n_targets;

    struct db_retraction {
        const db_series *series;
        int period;
        int64_t received_at;
        const char *reason;   /* interned */
    } *retr;                  /* every retraction, in the order applied */
    size_t n_retr, cap_retr;

    db_chunk *chunks;         /* arena: every chunk, newest first */
    char *bump;               /* free space in the newest chunk */
    size_t bump_left;
};

/* ---- hashing -------------------------------------------------------------- */

/* 0xff is never in an id: it separates "ab"+"c" from "a"+"bc". */
static uint64_t hash_key(const char *park, const char *indicator)
{
    return pp_hash_pair(park, 0xff, indicator);
}

static uint64_t hash_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    return x ^ (x >> 31);
}

static uint64_t hash_target(const db_series *s, int year)
{
    return hash_mix((uint64_t)(uintptr_t)s ^ ((uint64_t)(uint32_t)year << 48));
}

/* source is interned, so its address stands for its bytes. */
static uint64_t hash_delivery(const char *source, int64_t received_at)
{
    return hash_mix((uint64_t)(uintptr_t)source ^ ((uint64_t)received_at * 0x9e3779b97f4a7c15u));
}

/* ---- arena -------------------------------------------------------------------- */

static void *arena_alloc(db *d, size_t size, size_t align)
{
    size_t pad = (align - ((uintptr_t)d->bump & (align - 1))) & (align - 1);
    if (d->bump == NULL || pad + size > d->bump_left) {
        size_t want = size + DB_ARENA_ALIGN > DB_ARENA_CHUNK ? size + DB_ARENA_ALIGN
                                                             : DB_ARENA_CHUNK;
        db_chunk *c = malloc(want);
        if (c == NULL)
            return NULL;
        c->next = d->chunks;
        d->chunks = c;
        d->bump = (char *)c + DB_ARENA_ALIGN;
        d->bump_left = want - DB_ARENA_ALIGN;
        pad = 0;
    }
    void *p = d->bump + pad;
    d->bump += pad + size;
    d->bump_left -= pad + size;
    return p;
}

/* ---- interned strings ------------------------------------------------------------ */

static const char **str_slot(const char **slots, size_t n_slots, const char *s, uint64_t h)
{
    size_t mask = n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask)
        if (slots[i] == NULL || strcmp(slots[i], s) == 0)
            return &slots[i];
}

/* Returns the db's copy of s, or NULL on ENOMEM. */
static const char *str_intern(db *d, const char *s)
{
    uint64_t h = pp_hash_str(s);
    if (d->n_str_slots > 0) {
        const char *have = *str_slot(d->str_slots, d->n_str_slots, s, h);
        if (have != NULL)
            return have;
    }
    if ((d->n_str + 1) * 2 > d->n_str_slots) {
        size_t n = d->n_str_slots ? d->n_str_slots * 2 : DB_MIN_SLOTS;
        const char **ns = calloc(n, sizeof *ns);
        if (ns == NULL)
            return NULL;
        for (size_t i = 0; i < d->n_str_slots; i++)
            if (d->str_slots[i] != NULL)
                *str_slot(ns, n, d->str_slots[i], pp_hash_str(d->str_slots[i])) = d->str_slots[i];
        free(d->str_slots);
        d->str_slots = ns;
        d->n_str_slots = n;
    }
    size_t len = strlen(s);
    char *copy = arena_alloc(d, len + 1, 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len + 1);
    *str_slot(d->str_slots, d->n_str_slots, s, h) = copy;
    d->n_str++;
    return copy;
}

/* ---- deliveries ------------------------------------------------------------------ */

static uint32_t *dlv_slot(const db *d, uint32_t *slots, size_t n_slots, const char *source,
                          int64_t received_at)
{
    size_t mask = n_slots - 1;
    for (size_t i = (size_t)hash_delivery(source, received_at) & mask;; i = (i + 1) & mask) {
        if (slots[i] == 0)
            return &slots[i];
        const db_delivery *e = &d->deliveries[slots[i] - 1];
        if (e->source == source && e->received_at == received_at)
            return &slots[i];
    }
}

/* Makes room for one more delivery. Returns 0, or -1 on ENOMEM. */
static int dlv_reserve(db *d)
{
    if (PP_VEC_RESERVE(d->deliveries, d->cap_deliveries, d->n_deliveries + 1, DB_MIN_SLOTS) != 0)
        return -1;
    if ((d->n_deliveries + 1) * 2 > d->n_dlv_slots) {
        size_t n = d->n_dlv_slots ? d->n_dlv_slots * 2 : DB_MIN_SLOTS;
        uint32_t *ns = calloc(n, sizeof *ns);
        if (ns == NULL)
            return -1;
        for (size_t i = 0; i < d->n_deliveries; i++)
            *dlv_slot(d, ns, n, d->deliveries[i].source, d->deliveries[i].received_at) =
                (uint32_t)i + 1;
        free(d->dlv_slots);
        d->dlv_slots = ns;
        d->n_dlv_slots = n;
    }
    return 0;
}

/* Sets *index to the delivery (source, received_at), interned on first use.
 * Returns 0, or -1 on ENOMEM or when the index space of a meta is full (logged). */
static int dlv_intern(db *d, const char *source, int64_t received_at, uint32_t *index)
{
    if (d->n_deliveries > 0) {
        const db_delivery *last = &d->deliveries[d->last_dlv];
        if (last->received_at == received_at && strcmp(last->source, source) == 0) {
            *index = d->last_dlv;
            return 0;
        }
    }
    uint32_t *recent = &d->dlv_recent[hash_mix((uint64_t)received_at) & (DB_DLV_RECENT - 1)];
    if (*recent != 0) {
        const db_delivery *dl = &d->deliveries[*recent - 1];
        if (dl->received_at == received_at && strcmp(dl->source, source) == 0) {
            d->last_dlv = *recent - 1;
            *index = d->last_dlv;
            return 0;
        }
    }
    const char *src = str_intern(d, source);
    if (src == NULL)
        goto nomem;
    uint32_t *slot = d->n_dlv_slots > 0 ? dlv_slot(d, d->dlv_slots, d->n_dlv_slots, src, received_at)
                                        : NULL;
    if (slot == NULL || *slot == 0) {
        if (d->n_deliveries >= DB_DELIVERIES_MAX) {
            log_err("db", "%zu deliveries (source, received_at) already: refusing one more from %s",
                    d->n_deliveries, source);
            return -1;
        }
        if (dlv_reserve(d) < 0)
            goto nomem;
        slot = dlv_slot(d, d->dlv_slots, d->n_dlv_slots, src, received_at);
        d->deliveries[d->n_deliveries] = (db_delivery){ .source = src, .received_at = received_at };
        *slot = (uint32_t)++d->n_deliveries;
    }
    d->last_dlv = *slot - 1;
    *recent = *slot;
    *index = d->last_dlv;
    return 0;
nomem:
    log_err("db", "out of memory adding a figure from %s", source);
    return -1;
}

/* ---- cells ----------------------------------------------------------------------- */

static size_t cell_width(const db_series *s) { return s->wide ? sizeof(double) : sizeof(int32_t); }

static uint32_t *cell_meta(const db_series *s)
{
    return (uint32_t *)((char *)s->cells + s->cap * cell_width(s));
}

/* The value of cell i, whose meta is meta (it holds a figure). */
static double cell_value(const db_series *s, int i, uint32_t meta)
{
    if (s->wide)
        return ((const double *)s->cells)[i];
    return ((const int32_t *)s->cells)[i] / db_pow10[(meta & META_EXP) >> META_EXP_SHIFT];
}

/* Finds the smallest k for which v is m / 10^k, bit for bit, with m an int32_t.
 * Returns false when there is none: v wants a wide series. */
static bool value_pack(double v, int32_t *m, uint32_t *k)
{
    if (v == 0 && signbit(v))
        return false; /* 0 / 10^k is +0.0 */
    for (uint32_t e = 0; e < 8; e++) {
        double x = v * db_pow10[e];
        if (!(fabs(x) < DB_MANTISSA_LIMIT))
            return false; /* and so for every larger e */
        /* When some m fits, x is m within |m| * 2^-52 (two roundings), so r is m.
         * Two equal doubles other than zeros have the same bits. */
        int32_t r = (int32_t)(x < 0 ? x - 0.5 : x + 0.5);
        if ((double)r / db_pow10[e] == v) {
            *m = r;
            *k = e;
            return true;
        }
    }
    return false;
}

/* Index of period's cell when it holds a figure, else -1. */
static int cell_find(const db_series *s, int period)
{
    if (s == NULL || s->n == 0 || period < s->first || period - s->first >= s->n)
        return -1;
    int i = period - s->first;
    return cell_meta(s)[i] & META_HAS ? i : -1;
}

static char meta_status(uint32_t meta) { return db_statuses[(meta >> META_STATUS_SHIFT) & 3]; }

static void vintage_fill(const db_series *s, double value, double yoy, uint32_t meta,
                         db_vintage *out)
{
    const db_delivery *dl = &s->owner->deliveries[meta & META_DELIVERY];
    *out = (db_vintage){ .value = value, .received_at = dl->received_at,
                         .status = meta_status(meta), .source = dl->source,
                         .has_yoy = !isnan(yoy), .yoy = isnan(yoy) ? 0 : yoy };
}

/* A retraction's vintage: status W, no value, its reason. */
static void retraction_fill(const db_series *s, int period, uint32_t meta, db_vintage *out)
{
    const db *d = s->owner;
    const db_delivery *dl = &d->deliveries[meta & META_DELIVERY];
    *out = (db_vintage){ .value = NAN, .received_at = dl->received_at, .status = 'W',
                         .source = dl->source, .reason = "" };
    for (size_t k = d->n_retr; k-- > 0;)
        if (d->retr[k].series == s && d->retr[k].period == period &&
            d->retr[k].received_at == dl->received_at) {
            out->reason = d->retr[k].reason;
            break;
        }
}

/* Index of period's cell when it holds a retraction, else -1. */
static int cell_retracted(const db_series *s, int period)
{
    if (s == NULL || s->n == 0 || period < s->first || period - s->first >= s->n)
        return -1;
    int i = period - s->first;
    uint32_t m = cell_meta(s)[i];
    return !(m & META_HAS) && (m & META_OLDER) ? i : -1;
}

/* The yoy of cell i, NaN when it has none. */
static double cell_yoy(const db_series *s, int i) { return s->yoy != NULL ? s->yoy[i] : NAN; }

static double obs_yoy(const pp_obs *o) { return o->has_yoy ? o->yoy : NAN; }

/* Two yoys (NaN: none) are the same. */
static bool yoy_same(double a, double b) { return isnan(a) ? isnan(b) : a == b; }

/* A yoy array of n doubles, all NaN, or NULL on ENOMEM. */
static double *yoy_alloc(size_t n)
{
    double *y = malloc((n ? n : 1) * sizeof *y);
    if (y != NULL)
        for (size_t k = 0; k < n; k++)
            y[k] = NAN;
    return y;
}

/* Makes s's cells reach period (a valid one), the months added empty; with
 * want_yoy, s also gets its yoy array if it had none. Returns the index of
 * period's cell, or -1 on ENOMEM (nothing changed). */
static int cells_reach(db_series *s, int period, bool want_yoy)
{
    if (s->n > 0 && period >= s->first && period - s->first < s->n) {
        if (want_yoy && s->yoy == NULL && (s->yoy = yoy_alloc(s->cap)) == NULL)
            return -1;
        return period - s->first;
    }
    int last = s->first + s->n - 1;
    int lo = s->n == 0 || period < s->first ? period : s->first;
    int hi = s->n == 0 || period > last ? period : last;
    size_t n = (size_t)(hi - lo) + 1, shift = s->n == 0 ? 0 : (size_t)(s->first - lo);
    size_t w = cell_width(s);
    uint32_t *meta;
    double *ny = NULL; /* a new yoy array, when s needs one */

    if (n > s->cap) {
        /* to the next whole year of months: appending a month a time reallocates yearly */
        size_t cap = (n + DB_CELL_STEP - 1) / DB_CELL_STEP * DB_CELL_STEP;
        char *c;
        if (s->yoy != NULL || want_yoy) {
            if ((ny = yoy_alloc(cap)) == NULL)
                return -1;
            if (s->yoy != NULL)
                memcpy(ny + shift, s->yoy, s->n * sizeof *ny);
        }
        if (shift == 0) {
            c = realloc(s->cells, cap * (w + sizeof *meta));
            if (c == NULL) {
                free(ny);
                return -1;
            }
            /* the metas follow the values */
            memmove(c + cap * w, c + s->cap * w, s->n * sizeof *meta);
        } else {
            c = malloc(cap * (w + sizeof *meta));
            if (c == NULL) {
                free(ny);
                return -1;
            }
            memcpy(c + shift * w, s->cells, s->n * w);
            memcpy(c + cap * w + shift * sizeof *meta, cell_meta(s), s->n * sizeof *meta);
            free(s->cells);
        }
        s->cells = c;
        s->cap = (uint16_t)cap;
        if (ny != NULL) {
            free(s->yoy);
            s->yoy = ny;
        }
    } else {
        if (want_yoy && s->yoy == NULL && (ny = yoy_alloc(s->cap)) == NULL)
            return -1;
        if (ny != NULL)
            s->yoy = ny; /* all NaN: the shift below moves nothing that matters */
        if (shift > 0) {
            memmove(cell_meta(s) + shift, cell_meta(s), s->n * sizeof *meta);
            memmove((char *)s->cells + shift * w, s->cells, s->n * w);
            if (s->yoy != NULL)
                memmove(s->yoy + shift, s->yoy, s->n * sizeof *s->yoy);
        }
    }
    meta = cell_meta(s);
    memset(meta, 0, shift * sizeof *meta);
    memset(meta + shift + s->n, 0, (n - shift - s->n) * sizeof *meta);
    if (s->yoy != NULL) {
        for (size_t k = 0; k < shift; k++)
            s->yoy[k] = NAN;
        for (size_t k = shift + s->n; k < n; k++)
            s->yoy[k] = NAN;
    }
    s->first = lo;
    s->n = (uint16_t)n;
    return period - lo;
}

/* Makes s's values doubles, for good: each one converts exactly. Returns 0, or
 * -1 on ENOMEM (nothing changed). */
static int cells_widen(db_series *s)
{
    if (s->cap > 0) {
        char *c = malloc(s->cap * (sizeof(double) + sizeof(uint32_t)));
        if (c == NULL)
            return -1;
        const uint32_t *meta = cell_meta(s);
        double *value = (double *)c;
        uint32_t *wmeta = (uint32_t *)(value + s->cap);
        for (int i = 0; i < s->n; i++) {
            /* an empty cell's value was never written: leave nothing undefined */
            value[i] = meta[i] & META_HAS ? cell_value(s, i, meta[i]) : 0;
            wmeta[i] = meta[i] & ~META_EXP;
        }
        free(s->cells);
        s->cells = c;
    }
    s->wide = true;
    return 0;
}

/* Makes room in s->older for one more vintage. Returns 0 or -1 (ENOMEM). */
static int older_reserve(db_series *s)
{
    db_older *o = s->older;
    if (o != NULL && o->n < o->cap)
        return 0;
    if (o != NULL && o->cap > UINT32_MAX / 2)
        return -1;
    /* revisions are rare: start small, grow by half */
    uint32_t cap = o != NULL ? o->cap + o->cap / 2 : 4;
    db_older *no = realloc(o, sizeof *no + (size_t)cap * sizeof no->v[0]);
    if (no == NULL)
        return -1;
    if (o == NULL)
        no->n = 0;
    no->cap = cap;
    s->older = no;
    return 0;
}

/* ---- series ------------------------------------------------------------------------ */

static int series_cmp(const db_series *s, const char *park, const char *indicator)
{
    int c = strcmp(s->park, park);
    return c != 0 ? c : strcmp(s->indicator, indicator);
}

static db_series *series_find(const db *d, const char *park, const char *indicator, uint64_t h)
{
    if (d->n_slots == 0)
        return NULL;
    size_t mask = d->n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        const db_sslot *sl = &d->slots[i];
        if (sl->s == NULL)
            return NULL;
        if (sl->h == h && strcmp(sl->s->park, park) == 0 &&
            strcmp(sl->s->indicator, indicator) == 0)
            return sl->s;
    }
}

static bool is_last(const db *d, const char *park, const char *indicator)
{
    return d->last != NULL && strcmp(d->last->park, park) == 0 &&
           strcmp(d->last->indicator, indicator) == 0;
}

/* The series (park, indicator) to add to, or NULL with *h its hash (for
 * series_create). */
static db_series *series_lookup(db *d, const char *park, const char *indicator, uint64_t *h)
{
    if (is_last(d, park, indicator))
        return d->last;
    *h = hash_key(park, indicator);
    db_series *s = series_find(d, park, indicator, *h);
    if (s != NULL)
        d->last = s;
    return s;
}

static void slot_put(db_sslot *slots, size_t n_slots, db_series *s, uint64_t h)
{
    size_t mask = n_slots - 1;
    size_t i = (size_t)h & mask;
    while (slots[i].s != NULL)
        i = (i + 1) & mask;
    slots[i] = (db_sslot){ .h = h, .s = s };
}

/* Makes room for one more series in both indexes. Returns 0 or -1 (ENOMEM). */
static int series_reserve(db *d)
{
    if (PP_VEC_RESERVE(d->sorted, d->cap_sorted, d->n_series + 1, 64) != 0)
        return -1;
    if ((d->n_series + 1) * 2 > d->n_slots) {
        size_t n = d->n_slots ? d->n_slots * 2 : DB_MIN_SLOTS;
        db_sslot *ns = calloc(n, sizeof *ns);
        if (ns == NULL)
            return -1;
        for (size_t i = 0; i < d->n_slots; i++)
            if (d->slots[i].s != NULL)
                slot_put(ns, n, d->slots[i].s, d->slots[i].h);
        free(d->slots);
        d->slots = ns;
        d->n_slots = n;
    }
    return 0;
}

/* Puts s into both indexes, which series_reserve made room in. */
static void series_link(db *d, db_series *s, uint64_t h)
{
    slot_put(d->slots, d->n_slots, s, h);
    size_t lo = 0, hi = d->n_series;
    if (hi > 0 && series_cmp(d->sorted[hi - 1], s->park, s->indicator) < 0) {
        lo = hi;
    } else {
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (series_cmp(d->sorted[mid], s->park, s->indicator) < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    memmove(&d->sorted[lo + 1], &d->sorted[lo], (d->n_series - lo) * sizeof *d->sorted);
    d->sorted[lo] = s;
    d->n_series++;
}

/* A new series, linked, its cells (wide or not) reaching period unless period < 0.
 * Returns it, or NULL on ENOMEM (nothing visible changed). */
static db_series *series_create(db *d, const char *park, const char *indicator, uint64_t h,
                                int period, bool wide, bool want_yoy)
{
    db_series tmp = { .owner = d, .wide = wide };
    if (series_reserve(d) < 0 || (tmp.park = str_intern(d, park)) == NULL ||
        (tmp.indicator = str_intern(d, indicator)) == NULL ||
        (period >= 0 && cells_reach(&tmp, period, want_yoy) < 0))
        return NULL;
    db_series *s = arena_alloc(d, sizeof *s, _Alignof(db_series));
    if (s == NULL) {
        free(tmp.cells);
        free(tmp.yoy);
        return NULL;
    }
    *s = tmp;
    series_link(d, s, h);
    return s;
}

/* Only the holder of the write lock changes the generation, so a load and a
 * store suffice: no increment can be lost, and readers polling it unlocked
 * see one value or the next. Not a locked read-modify-write: that one waits
 * for every store before it (a figure's cell, often a cache miss while
 * replaying) and was most of the cost of adding a figure. */
static void changed(db *d, db_series *s)
{
    s->version++;
    atomic_store_explicit(&d->generation,
                          atomic_load_explicit(&d->generation, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

/* ---- public ---------------------------------------------------------------------- */

db *db_new(void)
{
    pthread_rwlockattr_t attr;
    db *d = calloc(1, sizeof *d);
    if (d == NULL) {
        log_err("db", "out of memory");
        return NULL;
    }
    if (pthread_rwlockattr_init(&attr) != 0) {
        log_err("db", "cannot initialise a lock");
        free(d);
        return NULL;
    }
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    int rc = pthread_rwlock_init(&d->lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    if (rc != 0) {
        log_err("db", "cannot initialise a lock");
        free(d);
        return NULL;
    }
    atomic_init(&d->generation, 0);
    return d;
}

void db_free(db *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n_series; i++) {
        free(d->sorted[i]->cells);
        free(d->sorted[i]->older);
        free(d->sorted[i]->yoy);
    }
    free(d->sorted);
    free(d->slots);
    free(d->str_slots);
    free(d->deliveries);
    free(d->dlv_slots);
    free(d->t_slots);
    free(d->retr);
    while (d->chunks != NULL) {
        db_chunk *next = d->chunks->next;
        free(d->chunks);
        d->chunks = next;
    }
    pthread_rwlock_destroy(&d->lock);
    free(d);
}

static void lock_check(int rc, const char *what)
{
    if (rc != 0) {
        log_err("db", "%s failed (error %d): cannot go on", what, rc);
        abort();
    }
}

void db_rdlock(db *d) { lock_check(pthread_rwlock_rdlock(&d->lock), "read lock"); }
void db_wrlock(db *d) { lock_check(pthread_rwlock_wrlock(&d->lock), "write lock"); }
void db_unlock(db *d) { lock_check(pthread_rwlock_unlock(&d->lock), "unlock"); }

/* Withdraws the figure in force for o->period (o->status 'W', o->note the
 * reason): see db_add_obs. */
static int db_retract(db *d, const pp_obs *o)
{
    uint64_t h = 0;
    db_series *s = series_lookup(d, o->park, o->indicator, &h);
    int i = cell_find(s, o->period);
    uint32_t dlv;
    if (i < 0)
        return 0; /* no figure: nothing to withdraw */
    uint32_t old = cell_meta(s)[i];
    const char *reason = str_intern(d, o->note);
    if (reason == NULL || dlv_intern(d, o->source, o->received_at, &dlv) < 0 ||
        older_reserve(s) < 0)
        goto nomem;
    if (d->n_retr == d->cap_retr) {
        size_t nc = d->cap_retr ? 2 * d->cap_retr : 16;
        struct db_retraction *t = realloc(d->retr, nc * sizeof *t);
        if (t == NULL)
            goto nomem;
        d->retr = t;
        d->cap_retr = nc;
    }
    d->retr[d->n_retr++] = (struct db_retraction){ s, o->period, o->received_at, reason };
    s->older->v[s->older->n++] =
        (db_old){ .value = cell_value(s, i, old), .yoy = cell_yoy(s, i), .period = o->period,
                  .meta = old & ~(META_HAS | META_OLDER | META_EXP) };
    if (s->yoy != NULL)
        s->yoy[i] = NAN;
    cell_meta(s)[i] = META_OLDER | dlv;
    if (o->received_at > s->updated_at)
        s->updated_at = o->received_at;
    changed(d, s);
    return 1;
nomem:
    log_err("db", "out of memory retracting %s/%s", o->park, o->indicator);
    return -1;
}

int db_add_obs(db *d, const pp_obs *o)
{
    /* a retraction (status W) withdraws the period's figure */
    if (d != NULL && o != NULL && o->status == 'W' && pp_obs_invalid(o) == NULL)
        return db_retract(d, o);
    /* the series added to last (replay in series order: nearly every figure)
     * exists, so its ids are valid: only the other fields are checked */
    bool last = d != NULL && o != NULL && is_last(d, o->park, o->indicator);
    const char *why = d == NULL || o == NULL ? "none given"
                      : last ? pp_obs_fields_invalid(o) : pp_obs_invalid(o);
    if (why != NULL) {
        char per[16];
        log_err("db", "refusing the observation %.64s/%.64s %s: %s", o ? o->park : "-",
                o ? o->indicator : "-", o ? pp_period_format(o->period, per, sizeof per) : "-", why);
        return -1;
    }
    uint64_t h = 0;
    db_series *s = last ? d->last : series_lookup(d, o->park, o->indicator, &h);
    int i = cell_find(s, o->period);
    uint32_t old = i >= 0 ? cell_meta(s)[i] : 0, dlv, k = 0;
    int32_t m = 0;

    if (i >= 0 && cell_value(s, i, old) == o->value && meta_status(old) == o->status &&
        yoy_same(cell_yoy(s, i), obs_yoy(o)) &&
        strcmp(d->deliveries[old & META_DELIVERY].source, o->source) == 0)
        return 0;
    bool wide = (s != NULL && s->wide) || !value_pack(o->value, &m, &k);

    /* Everything that can fail first, so that a failure changes nothing visible:
     * an interned delivery or string nobody refers to yet is invisible, and so
     * are values turned into doubles. */
    if (dlv_intern(d, o->source, o->received_at, &dlv) < 0)
        return -1;
    if (s == NULL) {
        if ((s = series_create(d, o->park, o->indicator, h, o->period, wide, o->has_yoy)) == NULL)
            goto nomem;
        d->last = s;
        i = 0;
    } else {
        if (wide && !s->wide && cells_widen(s) < 0)
            goto nomem;
        int ri = i < 0 ? cell_retracted(s, o->period) : -1;
        if (ri >= 0) {
            /* a figure after a retraction: the retraction joins the older vintages */
            if (cells_reach(s, o->period, o->has_yoy) < 0 || older_reserve(s) < 0)
                goto nomem;
            i = ri;
            s->older->v[s->older->n++] =
                (db_old){ .value = NAN, .yoy = NAN, .period = o->period,
                          .meta = OLD_RETRACTED | (cell_meta(s)[i] & META_DELIVERY) };
            old = META_HAS; /* so that the new cell says it has older vintages */
        } else if (i < 0) {
            if ((i = cells_reach(s, o->period, o->has_yoy)) < 0)
                goto nomem;
        } else {
            /* an existing cell: only the yoy array may be missing */
            if (cells_reach(s, o->period, o->has_yoy) < 0 || older_reserve(s) < 0)
                goto nomem;
            s->older->v[s->older->n++] =
                (db_old){ .value = cell_value(s, i, old), .yoy = cell_yoy(s, i),
                          .period = o->period,
                          .meta = old & ~(META_HAS | META_OLDER | META_EXP) };
        }
    }
    if (s->wide)
        ((double *)s->cells)[i] = o->value;
    else
        ((int32_t *)s->cells)[i] = m;
    if (s->yoy != NULL)
        s->yoy[i] = obs_yoy(o);
    cell_meta(s)[i] = META_HAS | (old & META_HAS ? META_OLDER : 0) |
                      (uint32_t)(strchr(db_statuses, o->status) - db_statuses) << META_STATUS_SHIFT |
                      k << META_EXP_SHIFT | dlv;
    if (o->received_at > s->updated_at)
        s->updated_at = o->received_at;
    changed(d, s);
    return 1;
nomem:
    log_err("db", "out of memory adding %s/%s", o->park, o->indicator);
    return -1;
}

static db_tslot *tslot(db_tslot *slots, size_t n_slots, const db_series *s, int year)
{
    size_t mask = n_slots - 1;
    for (size_t i = (size_t)hash_target(s, year) & mask;; i = (i + 1) & mask)
        if (slots[i].series == NULL || (slots[i].series == s && slots[i].year == year))
            return &slots[i];
}

static const db_tslot *tslot_find(const db *d, const db_series *s, int year)
{
    if (d->n_t_slots == 0 || s == NULL)
        return NULL;
    const db_tslot *t = tslot(d->t_slots, d->n_t_slots, s, year);
    return t->series != NULL ? t : NULL;
}

static int tslot_reserve(db *d)
{
    if ((d->n_targets + 1) * 2 <= d->n_t_slots)
        return 0;
    size_t n = d->n_t_slots ? d->n_t_slots * 2 : DB_MIN_SLOTS;
    db_tslot *ns = calloc(n, sizeof *ns);
    if (ns == NULL)
        return -1;
    for (size_t i = 0; i < d->n_t_slots; i++)
        if (d->t_slots[i].series != NULL)
            *tslot(ns, n, d->t_slots[i].series, d->t_slots[i].year) = d->t_slots[i];
    free(d->t_slots);
    d->t_slots = ns;
    d->n_t_slots = n;
    return 0;
}

int db_add_target(db *d, const pp_target *t)
{
    const char *why = d == NULL || t == NULL ? "none given" : pp_target_invalid(t);
    if (why != NULL) {
        log_err("db", "refusing the target %.64s/%.64s %d: %s", t ? t->park : "-",
                t ? t->indicator : "-", t ? t->year : 0, why);
        return -1;
    }
    uint64_t h = 0;
    db_series *s = series_lookup(d, t->park, t->indicator, &h);
    db_tslot *slot = (db_tslot *)tslot_find(d, s, t->year);

    if (slot != NULL) {
        if (slot->value == t->value)
            return 0;
        slot->value = t->value;
        changed(d, s);
        return 1;
    }
    if (tslot_reserve(d) < 0)
        goto nomem;
    if (s == NULL && (s = series_create(d, t->park, t->indicator, h, -1, false, false)) == NULL)
        goto nomem;
    d->last = s;
    *tslot(d->t_slots, d->n_t_slots, s, t->year) =
        (db_tslot){ .series = s, .year = t->year, .value = t->value };
    d->n_targets++;
    changed(d, s);
    return 1;
nomem:
    log_err("db", "out of memory adding a target for %s/%s", t->park, t->indicator);
    return -1;
}

void db_prefetch(const db *d, const char *park, const char *indicator, int period, int stage)
{
    if (d->n_slots == 0 || is_last(d, park, indicator))
        return; /* the series being added to: in the cache already */
    const db_sslot *sl = &d->slots[(size_t)hash_key(park, indicator) & (d->n_slots - 1)];
    if (stage == 0) {
        __builtin_prefetch(sl);
        return;
    }
    const db_series *s = sl->s;
    if (s == NULL)
        return;
    if (stage == 1) {
        __builtin_prefetch(s);
        return;
    }
    if (s->n > 0 && period >= s->first && period - s->first < s->n) {
        int i = period - s->first;
        __builtin_prefetch((const char *)s->cells + (size_t)i * cell_width(s));
        __builtin_prefetch(cell_meta(s) + i);
    }
}

const db_series *db_series_get(const db *d, const char *park, const char *indicator)
{
    if (d == NULL || park == NULL || indicator == NULL)
        return NULL;
    return series_find(d, park, indicator, hash_key(park, indicator));
}

/* The first and last cells hold a figure, unless it was retracted. */
int db_series_first(const db_series *s)
{
    if (s == NULL)
        return -1;
    const uint32_t *meta = s->n ? cell_meta(s) : NULL;
    for (int i = 0; i < s->n; i++)
        if (meta[i] & META_HAS)
            return s->first + i;
    return -1;
}

int db_series_last(const db_series *s)
{
    if (s == NULL)
        return -1;
    const uint32_t *meta = s->n ? cell_meta(s) : NULL;
    for (int i = s->n; i-- > 0;)
        if (meta[i] & META_HAS)
            return s->first + i;
    return -1;
}

bool db_series_latest(const db_series *s, int period, db_vintage *out)
{
    int i = cell_find(s, period);
    if (i < 0)
        return false;
    uint32_t meta = cell_meta(s)[i];
    vintage_fill(s, cell_value(s, i, meta), cell_yoy(s, i), meta, out);
    return true;
}

int db_series_next(const db_series *s, int after, db_vintage *out)
{
    if (s == NULL || s->n == 0 || after >= db_series_last(s))
        return -1;
    const uint32_t *meta = cell_meta(s);
    for (int i = after < s->first ? 0 : after - s->first + 1; i < s->n; i++) {
        if (meta[i] & META_HAS) {
            if (out != NULL)
                vintage_fill(s, cell_value(s, i, meta[i]), cell_yoy(s, i), meta[i], out);
            return s->first + i;
        }
    }
    return -1;
}

/* Copies the vintages of period numbered skip .. skip + max - 1, oldest first,
 * to out; returns how many there are in all. */
static size_t vintages_copy(const db_series *s, int period, size_t skip, db_vintage *out,
                            size_t max)
{
    int i = cell_find(s, period);
    bool retracted = false;
    if (i < 0 && (i = cell_retracted(s, period)) >= 0)
        retracted = true;
    if (i < 0)
        return 0;
    uint32_t meta = cell_meta(s)[i];
    size_t k = 0;
    if ((meta & META_OLDER) && s->older != NULL) {
        for (uint32_t j = 0; j < s->older->n; j++) {
            const db_old *v = &s->older->v[j];
            if (v->period != period)
                continue;
            if (k >= skip && k - skip < max) {
                if (v->meta & OLD_RETRACTED)
                    retraction_fill(s, period, v->meta, &out[k - skip]);
                else
                    vintage_fill(s, v->value, v->yoy, v->meta, &out[k - skip]);
            }
            k++;
        }
    }
    if (k >= skip && k - skip < max) {
        if (retracted)
            retraction_fill(s, period, meta, &out[k - skip]);
        else
            vintage_fill(s, cell_value(s, i, meta), cell_yoy(s, i), meta, &out[k - skip]);
    }
    return k + 1;
}

size_t db_series_vintages(const db_series *s, int period, db_vintage *out, size_t max)
{
    return vintages_copy(s, period, 0, out, out != NULL ? max : 0);
}

bool db_series_vintage(const db_series *s, int period, size_t i, db_vintage *out)
{
    return vintages_copy(s, period, i, out, 1) > i;
}

bool db_target(const db *d, const char *park, const char *indicator, int year, double *value)
{
    if (d == NULL)
        return false;
    const db_tslot *t = tslot_find(d, db_series_get(d, park, indicator), year);
    if (t == NULL)
        return false;
    if (value != NULL)
        *value = t->value;
    return true;
}

size_t db_series_count(const db *d) { return d ? d->n_series : 0; }

const db_series *db_series_at(const db *d, size_t i)
{
    return d != NULL && i < d->n_series ? d->sorted[i] : NULL;
}

uint64_t db_generation(const db *d)
{
    return d ? atomic_load_explicit(&((db *)d)->generation, memory_order_relaxed) : 0;
}
