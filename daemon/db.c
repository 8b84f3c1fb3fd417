/*
 * db.c — the in-memory state (see db.h): every series with all the vintages of
 * its figures, and every target, rebuilt from the journal at start and extended
 * by ingest.
 *
 * Series live in their own allocations (so a db_series pointer stays put) and
 * are found by an open-addressing hash table on (park, indicator); a second
 * array keeps them sorted by park id, then indicator id, for db_series_at (a new
 * series is put in place by binary search: series are few and rarely created).
 * Within a series the points are an array sorted by period: appending the next
 * month, which is what replay and ingest mostly do, is O(1) amortised, anything
 * else a binary search and a move. Vintage arrays have power-of-two capacities;
 * the small ones are carved out of large arena chunks with a free list per size,
 * so a point with one vintage costs 32 bytes without malloc's header. Source
 * strings are interned in a hash set (10^6 observations from a few hundred files
 * keep a few hundred strings), also in the arena. Targets sit in a hash table
 * keyed by (series, year). Nothing is removed before db_free.
 *
 * Locking is the caller's: writers hold db_wrlock, readers db_rdlock (see db.h);
 * the rwlock prefers writers so that a stream of HTTP readers cannot starve
 * ingest. The generation counter is atomic so that it may be polled unlocked.
 */
#include "db.h"

#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DB_ARENA_CHUNK (256 * 1024) /* bytes per arena chunk */
#define DB_ARENA_ALIGN 16
#define DB_VCLASS_MAX 6             /* vintage arrays up to 1 << 6 entries come from the arena */
#define DB_MIN_SLOTS 64

typedef struct db_chunk {
    struct db_chunk *next;
} db_chunk;

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
    db_series **slots;        /* hash table of the same series; NULL: free */
    size_t n_slots;           /* 0 or a power of two, at most half full */

    const char **src_slots;   /* interned sources; NULL: free */
    size_t n_src_slots, n_src;

    db_tslot *t_slots;        /* targets */
    size_t n_t_slots, n_targets;

    db_chunk *chunks;         /* arena: every chunk, newest first */
    char *bump;               /* free space in the newest chunk */
    size_t bump_left;
    db_vintage *vfree[DB_VCLASS_MAX + 1]; /* free vintage arrays of 1 << k entries */
};

/* ---- hashing -------------------------------------------------------------- */

static uint64_t hash_bytes(uint64_t h, const char *s)
{
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211u;
    }
    return h;
}

static uint64_t hash_str(const char *s) { return hash_bytes(1469598103934665603u, s); }

static uint64_t hash_key(const char *park, const char *indicator)
{
    uint64_t h = hash_bytes(1469598103934665603u, park);
    h ^= 0xff; /* never in an id: separates "ab"+"c" from "a"+"bc" */
    h *= 1099511628211u;
    return hash_bytes(h, indicator);
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

static int vclass(uint32_t cap)
{
    int k = 0;
    while ((1u << k) < cap)
        k++;
    return k;
}

/* A vintage array of cap (a power of two) entries. */
static db_vintage *vint_alloc(db *d, uint32_t cap)
{
    int k = vclass(cap);
    if (k > DB_VCLASS_MAX)
        return malloc((size_t)cap * sizeof(db_vintage));
    db_vintage *v = d->vfree[k];
    if (v != NULL) {
        memcpy(&d->vfree[k], v, sizeof(db_vintage *));
        return v;
    }
    return arena_alloc(d, ((size_t)1 << k) * sizeof(db_vintage), _Alignof(db_vintage));
}

static void vint_free(db *d, db_vintage *v, uint32_t cap)
{
    if (v == NULL)
        return;
    int k = vclass(cap);
    if (k > DB_VCLASS_MAX) {
        free(v);
        return;
    }
    memcpy(v, &d->vfree[k], sizeof(db_vintage *));
    d->vfree[k] = v;
}

/* ---- interned sources ----------------------------------------------------------- */

static const char **src_slot(const char **slots, size_t n_slots, const char *s, uint64_t h)
{
    size_t mask = n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask)
        if (slots[i] == NULL || strcmp(slots[i], s) == 0)
            return &slots[i];
}

static const char *src_find(const db *d, const char *s)
{
    if (d->n_src_slots == 0)
        return NULL;
    return *src_slot(d->src_slots, d->n_src_slots, s, hash_str(s));
}

/* Returns the db's copy of s, or NULL on ENOMEM. */
static const char *src_intern(db *d, const char *s)
{
    const char *have = src_find(d, s);
    if (have != NULL)
        return have;
    if ((d->n_src + 1) * 2 > d->n_src_slots) {
        size_t n = d->n_src_slots ? d->n_src_slots * 2 : DB_MIN_SLOTS;
        const char **ns = calloc(n, sizeof *ns);
        if (ns == NULL)
            return NULL;
        for (size_t i = 0; i < d->n_src_slots; i++)
            if (d->src_slots[i] != NULL)
                *src_slot(ns, n, d->src_slots[i], hash_str(d->src_slots[i])) = d->src_slots[i];
        free(d->src_slots);
        d->src_slots = ns;
        d->n_src_slots = n;
    }
    size_t len = strlen(s);
    char *copy = arena_alloc(d, len + 1, 1);
    if (copy == NULL)
        return NULL;
    memcpy(copy, s, len + 1);
    *src_slot(d->src_slots, d->n_src_slots, s, hash_str(s)) = copy;
    d->n_src++;
    return copy;
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
        db_series *s = d->slots[i];
        if (s == NULL || (strcmp(s->park, park) == 0 && strcmp(s->indicator, indicator) == 0))
            return s;
    }
}

static void slot_put(db_series **slots, size_t n_slots, db_series *s, uint64_t h)
{
    size_t mask = n_slots - 1;
    size_t i = (size_t)h & mask;
    while (slots[i] != NULL)
        i = (i + 1) & mask;
    slots[i] = s;
}

/* Makes room for one more series in both indexes. Returns 0 or -1 (ENOMEM). */
static int series_reserve(db *d)
{
    if (d->n_series == d->cap_sorted) {
        size_t cap = d->cap_sorted ? d->cap_sorted * 2 : 64;
        db_series **ns = realloc(d->sorted, cap * sizeof *ns);
        if (ns == NULL)
            return -1;
        d->sorted = ns;
        d->cap_sorted = cap;
    }
    if ((d->n_series + 1) * 2 > d->n_slots) {
        size_t n = d->n_slots ? d->n_slots * 2 : DB_MIN_SLOTS;
        db_series **ns = calloc(n, sizeof *ns);
        if (ns == NULL)
            return -1;
        for (size_t i = 0; i < d->n_series; i++)
            slot_put(ns, n, d->sorted[i], hash_key(d->sorted[i]->park, d->sorted[i]->indicator));
        free(d->slots);
        d->slots = ns;
        d->n_slots = n;
    }
    return 0;
}

/* A new, unlinked series, or NULL on ENOMEM. */
static db_series *series_alloc(const char *park, const char *indicator)
{
    db_series *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    memcpy(s->park, park, strlen(park) + 1);
    memcpy(s->indicator, indicator, strlen(indicator) + 1);
    return s;
}

/* Puts s into both indexes. Returns 0 or -1 (ENOMEM; nothing changed). */
static int series_link(db *d, db_series *s, uint64_t h)
{
    if (series_reserve(d) < 0)
        return -1;
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
    return 0;
}

static void series_free(db_series *s)
{
    for (size_t i = 0; i < s->n_points; i++)
        if (vclass(s->points[i].cap) > DB_VCLASS_MAX)
            free(s->points[i].vintages);
    free(s->points);
    free(s);
}

/* Index of the point for period, or where it would go (*found false). */
static size_t point_pos(const db_series *s, int period, bool *found)
{
    size_t lo = 0, hi = s->n_points;
    *found = false;
    if (hi == 0 || s->points[hi - 1].period < period)
        return hi; /* the common case: the next month */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->points[mid].period < period)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < s->n_points && s->points[lo].period == period;
    return lo;
}

static int points_reserve(db_series *s)
{
    if (s->n_points < s->cap)
        return 0;
    size_t cap = s->cap ? s->cap * 2 : 8;
    db_point *np = realloc(s->points, cap * sizeof *np);
    if (np == NULL)
        return -1;
    s->points = np;
    s->cap = cap;
    return 0;
}

static bool id_ok(const char *id)
{
    size_t n = strnlen(id, PP_ID_MAX + 1);
    return n > 0 && n <= PP_ID_MAX;
}

static void changed(db *d, db_series *s)
{
    s->version++;
    atomic_fetch_add_explicit(&d->generation, 1, memory_order_relaxed);
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
    for (size_t i = 0; i < d->n_series; i++)
        series_free(d->sorted[i]);
    free(d->sorted);
    free(d->slots);
    free(d->src_slots);
    free(d->t_slots);
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

int db_add_obs(db *d, const pp_obs *o)
{
    if (d == NULL || o == NULL || !id_ok(o->park) || !id_ok(o->indicator) ||
        !isfinite(o->value) || strchr("APER", o->status) == NULL || o->status == '\0' ||
        strnlen(o->source, sizeof o->source) == sizeof o->source) {
        log_err("db", "refusing an invalid observation");
        return -1;
    }
    uint64_t h = hash_key(o->park, o->indicator);
    db_series *s = series_find(d, o->park, o->indicator, h), *ns = NULL;
    db_point *p = NULL;
    size_t pos = 0;
    bool found = false;

    if (s != NULL) {
        pos = point_pos(s, o->period, &found);
        if (found)
            p = &s->points[pos];
    }
    if (p != NULL && p->n_vintages > 0) {
        const db_vintage *last = &p->vintages[p->n_vintages - 1];
        if (last->value == o->value && last->status == o->status &&
            strcmp(last->source, o->source) == 0)
            return 0;
    }

    /* Everything that can fail first, so that ENOMEM changes nothing visible. */
    db_vintage *nv = NULL;
    uint32_t ncap = 0;
    const char *src = src_intern(d, o->source);
    if (src == NULL)
        goto nomem;
    if (p == NULL || p->n_vintages == p->cap) {
        if (p != NULL && p->cap > UINT32_MAX / 2)
            goto nomem;
        ncap = p != NULL && p->cap > 0 ? p->cap * 2 : 1;
        nv = vint_alloc(d, ncap);
        if (nv == NULL)
            goto nomem;
    }
    if (s == NULL) {
        ns = series_alloc(o->park, o->indicator);
        if (ns == NULL || points_reserve(ns) < 0 || series_link(d, ns, h) < 0) {
            if (ns != NULL)
                series_free(ns);
            vint_free(d, nv, ncap);
            goto nomem;
        }
        s = ns;
    } else if (p == NULL && points_reserve(s) < 0) {
        vint_free(d, nv, ncap);
        goto nomem;
    }

    if (p == NULL) {
        memmove(&s->points[pos + 1], &s->points[pos], (s->n_points - pos) * sizeof *s->points);
        p = &s->points[pos];
        p->period = o->period;
        p->n_vintages = p->cap = 0;
        p->vintages = NULL;
        s->n_points++;
    }
    if (nv != NULL) {
        if (p->n_vintages > 0)
            memcpy(nv, p->vintages, p->n_vintages * sizeof *nv);
        vint_free(d, p->vintages, p->cap);
        p->vintages = nv;
        p->cap = ncap;
    }
    p->vintages[p->n_vintages++] = (db_vintage){ .value = o->value,
                                                 .received_at = o->received_at,
                                                 .status = o->status,
                                                 .source = src };
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
    if (d == NULL || t == NULL || !id_ok(t->park) || !id_ok(t->indicator) ||
        !isfinite(t->value)) {
        log_err("db", "refusing an invalid target");
        return -1;
    }
    uint64_t h = hash_key(t->park, t->indicator);
    db_series *s = series_find(d, t->park, t->indicator, h);
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
    if (s == NULL) {
        db_series *ns = series_alloc(t->park, t->indicator);
        if (ns == NULL || series_link(d, ns, h) < 0) {
            free(ns);
            goto nomem;
        }
        s = ns;
    }
    *tslot(d->t_slots, d->n_t_slots, s, t->year) =
        (db_tslot){ .series = s, .year = t->year, .value = t->value };
    d->n_targets++;
    changed(d, s);
    return 1;
nomem:
    log_err("db", "out of memory adding a target for %s/%s", t->park, t->indicator);
    return -1;
}

const db_series *db_series_get(const db *d, const char *park, const char *indicator)
{
    if (d == NULL || park == NULL || indicator == NULL)
        return NULL;
    return series_find(d, park, indicator, hash_key(park, indicator));
}

const db_point *db_series_point(const db_series *s, int period)
{
    bool found;
    if (s == NULL)
        return NULL;
    size_t i = point_pos(s, period, &found);
    return found ? &s->points[i] : NULL;
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
