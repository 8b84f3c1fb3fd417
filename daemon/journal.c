/*
 * journal.c — the append-only journal (README, Storage): every accepted observation and
 * target, as one line of text each, fsynced before the caller acknowledges it.
 *
 * The file is <dir>/journal.log. Its first line names the format and version;
 * every further line is one record of tab-separated fields ending in the CRC-32
 * (IEEE 802.3, as zlib's crc32) of the bytes before that last tab, as 8
 * lower-case hex digits. Sample (→ is a TAB):
 *
 *   #parkpulse-journal 1
 *   O→1732060800→xiangtan-etdz→fai→2024-10→192.2→A→spool:fai-2024-10.csv→→aa79d1f8
 *   O→1732147200→xiangtan-etdz→fai→2024-10→193.05→R→POST→统计局修订\t二稿→69caf4ee
 *   O→1732233600→xiangtan-etdz→fai→2024-10→193.05→R→POST→→yoy=12.4→d6d515c9
 *   T→1732060800→xiangtan-etdz→fai→2024→250→targets-2024.csv→38757543
 *   E→alert xiangtan-etdz fai warning→9fc8db60
 *   D→1732060800→f19391aa56307856→60→spool/fai-2024-10.csv→971393e3
 *
 *   O  received_at park indicator period(YYYY-MM) value status(A|P|E|R|W) source note [yoy=Y] crc
 *   T  received_at park indicator year value source crc
 *   E  payload crc
 *   D  received_at hash size name crc
 *
 * received_at is unix seconds; value is the shortest of %.15g/%.16g/%.17g that
 * reads back as the same double. source, note, payload and name may hold any
 * bytes but NUL; a backslash, TAB, LF and CR in them are written as \\ \t \n \r.
 *
 * An O line carries a tenth field "yoy=<value>" (the 同比 % published with
 * the figure, same number format as value) only when the figure has one: a
 * line without it (every line written before yoy existed, and every figure
 * without one now) replays with yoy null, exactly as before. A build older
 * than yoy skips an O line with the field as corrupt (logged); such lines are
 * only written for figures that came with a 同比 column.
 *
 * An O line with status W is a retraction (README, `parkpulse retract`, the
 * DELETE route): it withdraws the period's figure; its value is 0 (unused),
 * its note the reason, its source who asked (e.g. "http 127.0.0.1"):
 *
 *   O→1732320000→xiangtan-etdz→fai→2024-10→0→W→http 127.0.0.1→录入错误→7c6b1a36
 *
 * W lines were added without changing any other line (the version stays 1);
 * a build older than them skips a W line as corrupt (logged) and keeps the
 * withdrawn figure.
 *
 * A D line is a delivery (a file a collector named, see ingest.h) whose
 * figures were journaled in the same batch, that is in the same write and
 * fsync: hash is the FNV-1a 64 (offset basis 14695981039346656037) of its
 * bytes as 16 lower-case hex digits, size its length in bytes, name e.g.
 * "<collector>/<file>". journal_open remembers every D line it reads, so that
 * the same delivery read again is recognised.
 *
 * The version stays 1: D lines were added without changing any other line,
 * and a journal without them (written before) is read as it always was. A
 * build older than D lines skips them as corrupt lines (logged) and loses only
 * the recognition of deliveries read again; the version would change for a
 * change that an older build could misread.
 *
 * Every field is validated on reading: a line whose checksum or fields are
 * wrong is corrupt and skipped (with its line number in the log). A last line
 * with no newline is what a crash in the middle of a write leaves behind, and
 * journal_open cuts it off so that the next append starts clean. A complete
 * last line (it ends in a newline) with a bad checksum is not a torn write but
 * damage: its bytes are first copied into journal.log.damaged-<UTC time>
 * (fsync'd) for inspection, and then cut off the same way.
 *
 * A journal that is empty, cut inside its header line or missing is what a
 * new state directory has; journal_check() tells it apart from a damaged one
 * by the signs of earlier use (RRD files, a clean-stop marker counting
 * records), and journal_recover() (parkpulsed --recover) moves a damaged one
 * aside, never deleting it.
 *
 * Replay. journal_open_replay reads the file once for both the open (the
 * count, the deliveries, a torn or damaged tail) and the replay. A journal of
 * some megabytes is read, checksummed and parsed on a second thread, in
 * batches of records handed to the caller's thread, which applies them in
 * the file's order (with a hint a few records ahead: the db prefetches what
 * the figure will touch). The reader marks an O or T record of the same
 * series as the O or T record before it (journal_record.same_series): in a
 * journal in series order (see Compaction) nearly all of them: no prefetch
 * hint is given for them (the series is in the cache already; the reader
 * notes per record whether the hint wants it, so the applier does not read
 * a record early to find out). Reading costs per line, not per byte, so the
 * reader takes short cuts that give the same records: the fields are split
 * eight bytes at a time (the TAB bytes found by per-byte arithmetic that no
 * carry crosses), the checksum is computed sixteen bytes at a time, the
 * park and indicator of a line equal byte for byte to those of the last
 * intact O or T line are copied without checking them again, and a text
 * field without a backslash is copied whole.
 *
 * Compaction (README, Storage). journal_compact rewrites the file without the
 * intact records its caller marks as superseded (ingest.c knows what replay
 * rebuilds: ingest.h, ingest_superseded) and without a D line whose identity
 * an earlier D line gave, and in series order: first every line kept that is
 * not an O or T line (E and D lines, and corrupt lines: compaction loses
 * nothing it cannot read) in its old order; then the O and T lines of each
 * series (park, indicator) together, the series in the order their first
 * kept line comes in the old file, each one's lines in their old order (the
 * last line stays an intact one: a corrupt line last would be taken for
 * damage by the next open). Replay gives the same state: an O
 * or T line only changes its own series (later lines of a key supersede
 * earlier ones, in order), the E lines (alert.c, silence.c) and D lines
 * depend on their order among themselves only, never on the figures. The
 * lines are copied byte for byte, so the format is unchanged and any build
 * that read the old file reads the new one. Two passes over the old file: the
 * first parses every line and notes its group and each group's size, the
 * second copies each line to its group's next place in the new file (mapped:
 * its blocks allocated first, so a full disk is an error, not a fault).
 * Steps: journal.log.compact is created beside the journal (and locked),
 * filled, synced, renamed over journal.log, and the directory fsync'd. A crash
 * before the rename leaves the old journal whole (the next open removes the
 * unfinished file), after it the new one. The running journal then goes on
 * in the new file; what is appended after it arrives in arrival order again
 * (ingest.c counts such figures at replay, and start-up compacts again when
 * they are many: ingest.h, ingest_compact_due).
 *
 * An append writes the whole batch with one write loop and fdatasync()s; on any
 * failure the file is truncated back to its previous size, so a batch is either
 * entirely in the journal or not at all. The journal has no lock of its own: the
 * caller serialises journal_append/journal_replay on one journal (ingest holds
 * its ingest lock). Another process is kept out by flock() on the file.
 */
#include "journal.h"

#include "hash.h"
#include "log.h"
#include "vec.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JOURNAL_FILE "journal.log"
#define JOURNAL_HEADER "#parkpulse-journal 1\n"
#define JOURNAL_MAGIC "#parkpulse-journal "
#define JOURNAL_LINE_MAX 16384        /* longer lines are corrupt (the longest valid is ~8.3 KiB) */
#define JOURNAL_READ_CHUNK (1u << 20) /* replay reads the file in pieces this large */
#define JOURNAL_REPORT_MAX 20         /* corrupt lines logged one by one per replay */
#define JOURNAL_MAX_FIELDS 10         /* an O line: type + 9 fields before the checksum */
#define JOURNAL_COMPACT_FILE "journal.log.compact" /* a compaction's new file until renamed */

/* A known delivery: the hash of its identity (name, size, content hash) and
 * when it was journaled. key 0 marks a free slot. */
typedef struct dl_slot {
    uint64_t key;
    int64_t at;
} dl_slot;

struct journal {
    int fd;
    char *path;
    off_t data_start; /* just past the header line */
    off_t size;       /* end of the last intact line: where the next append goes */
    _Atomic uint64_t count; /* intact records (written under ingest_lock, read by /metrics) */
    _Atomic uint64_t n_syncs, sync_ns; /* appends' fdatasync calls and the time in them (/metrics) */
    bool tail_dirty;  /* a failed append could not be cut off yet: retry first */
    dl_slot *dl;      /* the deliveries in the journal: open addressing, at most half full */
    size_t dl_cap, dl_n;
    uint64_t n_bad;   /* corrupt lines kept in the file (found at open) */
};

/* ---- CRC-32 (reflected polynomial 0xEDB88320), slicing by 16 --------------- */

static uint32_t crc_table[16][256];
static int8_t hex_digit[256]; /* a lower-case hex digit's value, else -1 */
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (int i = 0; i < 256; i++)
        hex_digit[i] = (int8_t)(i >= '0' && i <= '9' ? i - '0' : i >= 'a' && i <= 'f' ? i - 'a' + 10 : -1);
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 16; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

static inline uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t journal_crc32(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t c = 0xFFFFFFFFu;

    while (len >= 16) {
        uint32_t a = c ^ le32(p), b = le32(p + 4), d = le32(p + 8), e = le32(p + 12);
        c = crc_table[15][a & 0xff] ^ crc_table[14][(a >> 8) & 0xff] ^
            crc_table[13][(a >> 16) & 0xff] ^ crc_table[12][a >> 24] ^
            crc_table[11][b & 0xff] ^ crc_table[10][(b >> 8) & 0xff] ^
            crc_table[9][(b >> 16) & 0xff] ^ crc_table[8][b >> 24] ^
            crc_table[7][d & 0xff] ^ crc_table[6][(d >> 8) & 0xff] ^
            crc_table[5][(d >> 16) & 0xff] ^ crc_table[4][d >> 24] ^
            crc_table[3][e & 0xff] ^ crc_table[2][(e >> 8) & 0xff] ^
            crc_table[1][(e >> 16) & 0xff] ^ crc_table[0][e >> 24];
        p += 16;
        len -= 16;
    }
    if (len >= 8) {
        uint32_t a = c ^ le32(p), b = le32(p + 4);
        c = crc_table[7][a & 0xff] ^ crc_table[6][(a >> 8) & 0xff] ^
            crc_table[5][(a >> 16) & 0xff] ^ crc_table[4][a >> 24] ^
            crc_table[3][b & 0xff] ^ crc_table[2][(b >> 8) & 0xff] ^
            crc_table[1][(b >> 16) & 0xff] ^ crc_table[0][b >> 24];
        p += 8;
        len -= 8;
    }
    if (len >= 4) {
        uint32_t a = c ^ le32(p);
        c = crc_table[3][a & 0xff] ^ crc_table[2][(a >> 8) & 0xff] ^
            crc_table[1][(a >> 16) & 0xff] ^ crc_table[0][a >> 24];
        p += 4;
        len -= 4;
    }
    while (len--)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ---- deliveries ---------------------------------------------------------------- */

uint64_t journal_hash(const void *data, size_t len) { return pp_hash_bytes(PP_FNV_OFFSET, data, len); }

/* The key of a delivery in the set: never 0. */
static uint64_t delivery_key(const char *name, uint64_t size, uint64_t hash)
{
    unsigned char num[16];
    for (int i = 0; i < 8; i++) {
        num[i] = (unsigned char)(size >> (8 * i));
        num[8 + i] = (unsigned char)(hash >> (8 * i));
    }
    uint64_t h = pp_hash_bytes(PP_FNV_OFFSET, name, strlen(name) + 1); /* with the NUL */
    h = pp_hash_bytes(h, num, sizeof num);
    return h ? h : 1;
}

static dl_slot *dl_find(const journal *j, uint64_t key)
{
    if (j->dl_cap == 0)
        return NULL;
    size_t mask = j->dl_cap - 1;
    for (size_t i = (size_t)(key ^ (key >> 31)) & mask;; i = (i + 1) & mask) {
        if (j->dl[i].key == key)
            return &j->dl[i];
        if (j->dl[i].key == 0)
            return NULL;
    }
}

static void dl_put(dl_slot *tab, size_t cap, uint64_t key, int64_t at)
{
    size_t mask = cap - 1;
    size_t i = (size_t)(key ^ (key >> 31)) & mask;
    while (tab[i].key != 0 && tab[i].key != key)
        i = (i + 1) & mask;
    tab[i].key = key;
    tab[i].at = at;
}

/* Remembers a journaled delivery (a later one of the same identity keeps the
 * first time). Returns 0 or -ENOMEM (logged: the delivery is then not
 * recognised when read again). */
static int dl_add(journal *j, const journal_delivery *d)
{
    uint64_t key = delivery_key(d->name, d->size, d->hash);
    if (dl_find(j, key) != NULL)
        return 0;
    if ((j->dl_n + 1) * 2 > j->dl_cap) {
        size_t cap = j->dl_cap ? j->dl_cap * 2 : 1024;
        dl_slot *tab = calloc(cap, sizeof *tab);
        if (tab == NULL) {
            log_err("journal", "out of memory remembering delivery %s", d->name);
            return -ENOMEM;
        }
        for (size_t i = 0; i < j->dl_cap; i++)
            if (j->dl[i].key != 0)
                dl_put(tab, cap, j->dl[i].key, j->dl[i].at);
        free(j->dl);
        j->dl = tab;
        j->dl_cap = cap;
    }
    dl_put(j->dl, j->dl_cap, key, d->received_at);
    j->dl_n++;
    return 0;
}

bool journal_delivery_known(const journal *j, const char *name, uint64_t size, uint64_t hash,
                            int64_t *at)
{
    if (j == NULL || name == NULL)
        return false;
    const dl_slot *sl = dl_find(j, delivery_key(name, size, hash));
    if (sl != NULL && at != NULL)
        *at = sl->at;
    return sl != NULL;
}

/* ---- writing records -------------------------------------------------------- */

/* A growable output buffer for one batch. */
typedef struct journal_out {
    char *p;
    size_t len, cap;
} journal_out;

static int out_reserve(journal_out *o, size_t more)
{
    if (o->len + more < o->len)
        return -ENOMEM;
    return PP_VEC_RESERVE(o->p, o->cap, o->len + more, 4096);
}

/* The writers below rely on out_reserve(JOURNAL_LINE_MAX) per record: the
 * longest record (an E with 4095 escaped bytes) is well below that. */
static void out_raw(journal_out *o, const char *s, size_t n)
{
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_str(journal_out *o, const char *s) { out_raw(o, s, strlen(s)); }

static void out_tab(journal_out *o) { o->p[o->len++] = '\t'; }

static void out_escaped(journal_out *o, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '\\': out_raw(o, "\\\\", 2); break;
        case '\t': out_raw(o, "\\t", 2); break;
        case '\n': out_raw(o, "\\n", 2); break;
        case '\r': out_raw(o, "\\r", 2); break;
        default: o->p[o->len++] = *s; break;
        }
    }
}

static void out_i64(journal_out *o, int64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%" PRId64, v);
    out_raw(o, tmp, (size_t)n);
}

/*
 * The shortest %.Ng (N = 15..17) that reads back as exactly v.
 *
 * Most figures have a few decimals, so first a fast path that prints the same
 * text as %.15g without printf or strtod: when v is exactly the double
 * nearest to m / 10^k for an integer m < 10^15 and k <= 6, the text of m with
 * k decimals reads back as v (m and 10^k are exact doubles and their quotient
 * is correctly rounded, as strtod is), and it is what %.15g prints — v lies
 * within half an ulp of m / 10^k, far inside the rounding interval of the
 * 15th digit, and 1e-4 <= |v| < 1e15 keeps %g in fixed notation. The
 * smallest such k leaves no trailing zero to strip.
 */
static void out_double(journal_out *o, double v)
{
    static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6 };
    char tmp[40];
    int n = 0;
    double a = fabs(v);
    if (a == 0 || (a >= 1e-4 && a < 1e15)) {
        for (int k = 0; k < (int)(sizeof p10 / sizeof p10[0]); k++) {
            double m = nearbyint(a * p10[k]);
            if (m >= 1e15)
                break;
            if (m / p10[k] != a)
                continue;
            char digits[24];
            int nd = 0;
            for (unsigned long long u = (unsigned long long)m; u > 0 || nd <= k; u /= 10)
                digits[nd++] = (char)('0' + u % 10);
            if (signbit(v))
                tmp[n++] = '-';
            while (nd > k)
                tmp[n++] = digits[--nd];
            if (k > 0) {
                tmp[n++] = '.';
                while (nd > 0)
                    tmp[n++] = digits[--nd];
            }
            out_raw(o, tmp, (size_t)n);
            return;
        }
    }
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (prec == 17 || strtod(tmp, NULL) == v)
            break;
    }
    out_raw(o, tmp, (size_t)n);
}

static void out_end(journal_out *o, size_t line_start)
{
    char tmp[16];
    uint32_t crc = journal_crc32(o->p + line_start, o->len - line_start);
    int n = snprintf(tmp, sizeof tmp, "\t%08" PRIx32 "\n", crc);
    out_raw(o, tmp, (size_t)n);
}


static const char *delivery_invalid(const journal_delivery *d)
{
    size_t n = strnlen(d->name, sizeof d->name);
    if (n == sizeof d->name)
        return "delivery name too long";
    if (n == 0)
        return "delivery without a name";
    return NULL;
}

/* Returns NULL when r can be journaled, else why not. */
static const char *record_invalid(const journal_record *r)
{
    switch (r->type) {
    case JREC_OBS:
        return pp_obs_invalid(&r->obs);
    case JREC_TARGET:
        return pp_target_invalid(&r->target);
    case JREC_EVENT:
        if (strnlen(r->event, sizeof r->event) == sizeof r->event)
            return "event payload too long";
        return NULL;
    case JREC_DELIVERY:
        return delivery_invalid(&r->delivery);
    }
    return "unknown record type";
}

/* The fields every O and T record opens with: kind, received, park, indicator. */
static void out_head(journal_out *o, const char *kind, int64_t received_at, const char *park,
                     const char *indicator)
{
    out_str(o, kind);
    out_i64(o, received_at);
    out_tab(o);
    out_str(o, park);
    out_tab(o);
    out_str(o, indicator);
    out_tab(o);
}

static void out_obs(journal_out *o, const pp_obs *ob)
{
    char per[16];
    out_head(o, "O\t", ob->received_at, ob->park, ob->indicator);
    out_str(o, pp_period_format(ob->period, per, sizeof per));
    out_tab(o);
    out_double(o, ob->value);
    out_tab(o);
    o->p[o->len++] = ob->status;
    out_tab(o);
    out_escaped(o, ob->source);
    out_tab(o);
    out_escaped(o, ob->note);
    if (ob->has_yoy) {
        out_tab(o);
        out_str(o, "yoy=");
        out_double(o, ob->yoy);
    }
}

static void out_target(journal_out *o, const pp_target *t)
{
    out_head(o, "T\t", t->received_at, t->park, t->indicator);
    out_i64(o, t->year);
    out_tab(o);
    out_double(o, t->value);
    out_tab(o);
    out_escaped(o, t->source);
}

static void out_delivery(journal_out *o, const journal_delivery *d)
{
    char hex[24];
    out_str(o, "D\t");
    out_i64(o, d->received_at);
    out_tab(o);
    int n = snprintf(hex, sizeof hex, "%016" PRIx64, d->hash);
    out_raw(o, hex, (size_t)n);
    out_tab(o);
    n = snprintf(hex, sizeof hex, "%" PRIu64, d->size);
    out_raw(o, hex, (size_t)n);
    out_tab(o);
    out_escaped(o, d->name);
}

/* One record of any type (obs, target or delivery, or event when ev is not
 * NULL) as a line. */
static int out_line(journal_out *o, const pp_obs *ob, const pp_target *t,
                    const journal_delivery *d, const char *ev)
{
    int rc = out_reserve(o, JOURNAL_LINE_MAX);
    if (rc < 0)
        return rc;
    size_t start = o->len;
    if (ob != NULL) {
        out_obs(o, ob);
    } else if (t != NULL) {
        out_target(o, t);
    } else if (d != NULL) {
        out_delivery(o, d);
    } else {
        out_str(o, "E\t");
        out_escaped(o, ev);
    }
    out_end(o, start);
    return 0;
}

static int out_record(journal_out *o, const journal_record *r)
{
    return out_line(o, r->type == JREC_OBS ? &r->obs : NULL,
                    r->type == JREC_TARGET ? &r->target : NULL,
                    r->type == JREC_DELIVERY ? &r->delivery : NULL, r->event);
}

/* ---- reading records -------------------------------------------------------- */

typedef struct jfield {
    const char *p;
    size_t n;
} jfield;

enum { LINE_OK = 0, LINE_BAD_CRC, LINE_BAD_FIELDS };

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static bool parse_id(jfield f, char *dst)
{
    if (f.n == 0 || f.n > PP_ID_MAX)
        return false;
    memcpy(dst, f.p, f.n);
    dst[f.n] = '\0';
    return strlen(dst) == f.n && pp_id_valid(dst); /* a NUL inside is no id */
}

static bool parse_i64(jfield f, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    uint64_t v = 0;
    if (f.n > 0 && f.p[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i == f.n || f.n - i > 19)
        return false;
    for (; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(f.p[i] - '0');
    }
    if (v > (uint64_t)INT64_MAX + (neg ? 1 : 0))
        return false;
    *out = !neg ? (int64_t)v : v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    return true;
}

static bool parse_u64(jfield f, uint64_t *out)
{
    uint64_t v = 0;
    if (f.n == 0 || f.n > 20)
        return false;
    for (size_t i = 0; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9')
            return false;
        uint64_t d = (uint64_t)(f.p[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Exactly 16 lower-case hex digits. */
static bool parse_hex64(jfield f, uint64_t *out)
{
    uint64_t v = 0;
    if (f.n != 16)
        return false;
    for (size_t i = 0; i < 16; i++) {
        int h = hexval(f.p[i]);
        if (h < 0)
            return false;
        v = v << 4 | (uint64_t)h;
    }
    *out = v;
    return true;
}

/*
 * Fast path of parse_double for the common figure: [-]digits[.digits] with at
 * most 15 digits in all. The digits make an integer m < 10^15 and the
 * decimals k, both exact doubles (m < 2^53, 10^k for k <= 15), so m / 10^k is
 * the correctly rounded quotient: the double nearest the decimal, which is
 * what strtod returns. Returns false for anything else (strtod decides).
 */
static bool parse_decimal(jfield f, double *out)
{
    static const double p10[] = { 1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                  1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
    size_t i = 0, nd = 0;
    int k = -1;
    uint64_t m = 0;
    bool neg = f.n > 0 && f.p[0] == '-';
    if (neg)
        i = 1;
    if (i == f.n || f.p[i] == '.' || f.p[f.n - 1] == '.')
        return false;
    for (; i < f.n; i++) {
        char c = f.p[i];
        if (c >= '0' && c <= '9') {
            if (++nd > 15)
                return false;
            m = m * 10 + (uint64_t)(c - '0');
            if (k >= 0)
                k++;
        } else if (c == '.' && k < 0) {
            k = 0;
        } else {
            return false;
        }
    }
    double v = (double)m / p10[k < 0 ? 0 : k];
    *out = neg ? -v : v;
    return true;
}

static bool parse_double(jfield f, double *out)
{
    char tmp[40];
    if (parse_decimal(f, out))
        return true;
    if (f.n == 0 || f.n >= sizeof tmp)
        return false;
    for (size_t i = 0; i < f.n; i++) {
        char c = f.p[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e'))
            return false;
    }
    memcpy(tmp, f.p, f.n);
    tmp[f.n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + f.n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* Unescapes f into dst (cap bytes with the NUL). */
static bool parse_text(jfield f, char *dst, size_t cap)
{
    if (f.n < cap && memchr(f.p, '\\', f.n) == NULL && memchr(f.p, '\0', f.n) == NULL) {
        memcpy(dst, f.p, f.n); /* nothing escaped: the common case */
        dst[f.n] = '\0';
        return true;
    }
    size_t k = 0;
    for (size_t i = 0; i < f.n; i++) {
        char c = f.p[i];
        if (c == '\0')
            return false;
        if (c == '\\') {
            if (++i == f.n)
                return false;
            switch (f.p[i]) {
            case '\\': c = '\\'; break;
            case 't': c = '\t'; break;
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            default: return false;
            }
        }
        if (k + 1 >= cap)
            return false;
        dst[k++] = c;
    }
    dst[k] = '\0';
    return true;
}

/* Splits line[0, len) at its TABs into f (at most max fields). Returns the
 * number of fields, or max + 1 when there are more. Eight bytes at a time:
 * the bytes equal to TAB are found with exact per-byte arithmetic (no carry
 * crosses a byte), little-endian order giving the first one lowest. */
static size_t split_fields(const char *line, size_t len, jfield *f, size_t max)
{
    size_t nf = 0, start = 0, i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
    const uint64_t lo7 = 0x7f7f7f7f7f7f7f7fULL, tabs = 0x0909090909090909ULL;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, line + i, 8);
        uint64_t x = w ^ tabs; /* a zero byte where line has a TAB */
        uint64_t m = ~(((x & lo7) + lo7) | x | lo7);
        while (m != 0) {
            size_t at = i + (size_t)(__builtin_ctzll(m) >> 3);
            if (nf == max)
                return max + 1;
            f[nf++] = (jfield){ line + start, at - start };
            start = at + 1;
            m &= m - 1;
        }
    }
#endif
    for (; i < len; i++) {
        if (line[i] != '\t')
            continue;
        if (nf == max)
            return max + 1;
        f[nf++] = (jfield){ line + start, i - start };
        start = i + 1;
    }
    if (nf == max)
        return max + 1;
    f[nf++] = (jfield){ line + start, len - start };
    return nf;
}

/* A canonical period "YYYY-MM" in the stored range. */
static bool parse_period(jfield f, int *period)
{
    const char *s = f.p;
    if (f.n != 7 || s[4] != '-')
        return false;
    for (int i = 0; i < 7; i++)
        if (i != 4 && (s[i] < '0' || s[i] > '9'))
            return false;
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    if (m < 1 || m > 12 || !pp_period_valid(pp_period_make(y, m)))
        return false;
    *period = pp_period_make(y, m);
    return true;
}

/* The park and indicator of an O or T line into park and ind. When they are
 * those of the last O or T line read (lp, li: already checked, as they
 * are in a journal in series order for nearly every line), they are copied
 * and *same is set; else they are checked. */
static bool parse_series(jfield fp, jfield fi, char *park, char *ind, const char *lp, size_t lpn,
                         const char *li, size_t lin, bool *same)
{
    *same = lpn > 0 && fp.n == lpn && fi.n == lin && memcmp(fp.p, lp, lpn) == 0 &&
            memcmp(fi.p, li, lin) == 0;
    if (!*same)
        return parse_id(fp, park) && parse_id(fi, ind);
    memcpy(park, fp.p, fp.n);
    park[fp.n] = '\0';
    memcpy(ind, fi.p, fi.n);
    ind[fi.n] = '\0';
    return true;
}

/* The park and indicator of the last O or T record read, for parse_series. */
typedef struct jlast {
    char park[PP_ID_MAX + 1], ind[PP_ID_MAX + 1];
    size_t park_n, ind_n;
} jlast;

/* Parses one line (without its newline) into rec. Returns LINE_OK, or
 * LINE_BAD_CRC / LINE_BAD_FIELDS with *why set. last: the last O or T record
 * read before (rec->same_series says whether this one is of its series). */
static int parse_line(const char *line, size_t len, journal_record *rec, const char **why,
                      const jlast *last)
{
    jfield f[JOURNAL_MAX_FIELDS];
    size_t nf = 0;
    uint32_t want = 0;

    if (len > JOURNAL_LINE_MAX) {
        *why = "line too long";
        return LINE_BAD_CRC;
    }
    if (len < 11 || line[len - 9] != '\t') {
        *why = "no checksum";
        return LINE_BAD_CRC;
    }
    int bad = 0; /* without a branch a digit: they are as often letters as not */
    for (size_t i = len - 8; i < len; i++) {
        int h = hex_digit[(unsigned char)line[i]];
        bad |= h;
        want = want << 4 | (uint32_t)(h & 15);
    }
    if (bad < 0) {
        *why = "no checksum";
        return LINE_BAD_CRC;
    }
    len -= 9;
    if (journal_crc32(line, len) != want) {
        *why = "checksum mismatch";
        return LINE_BAD_CRC;
    }

    *why = "bad fields";
    rec->same_series = false;
    nf = split_fields(line, len, f, JOURNAL_MAX_FIELDS);
    if (nf > JOURNAL_MAX_FIELDS || f[0].n != 1)
        return LINE_BAD_FIELDS;

    int64_t i64;
    switch (f[0].p[0]) {
    case 'O': {
        pp_obs *o = &rec->obs;
        rec->type = JREC_OBS;
        if ((nf != 9 && nf != 10) || !parse_i64(f[1], &o->received_at) ||
            !parse_series(f[2], f[3], o->park, o->indicator, last->park, last->park_n,
                          last->ind, last->ind_n, &rec->same_series) ||
            !parse_period(f[4], &o->period) || !parse_double(f[5], &o->value) ||
            f[6].n != 1 || !pp_status_valid(f[6].p[0]) ||
            !parse_text(f[7], o->source, sizeof o->source) ||
            !parse_text(f[8], o->note, sizeof o->note))
            return LINE_BAD_FIELDS;
        o->status = f[6].p[0];
        o->has_yoy = false;
        o->yoy = 0;
        if (nf == 10) {
            jfield y = { f[9].p + 4, f[9].n - 4 };
            if (f[9].n < 5 || memcmp(f[9].p, "yoy=", 4) != 0 || !parse_double(y, &o->yoy))
                return LINE_BAD_FIELDS;
            o->has_yoy = true;
        }
        return LINE_OK;
    }
    case 'T': {
        pp_target *t = &rec->target;
        rec->type = JREC_TARGET;
        if (nf != 7 || !parse_i64(f[1], &t->received_at) ||
            !parse_series(f[2], f[3], t->park, t->indicator, last->park, last->park_n,
                          last->ind, last->ind_n, &rec->same_series) ||
            !parse_i64(f[4], &i64) ||
            i64 < PP_PERIOD_MIN_YEAR || i64 > PP_PERIOD_MAX_YEAR ||
            !parse_double(f[5], &t->value) || !parse_text(f[6], t->source, sizeof t->source))
            return LINE_BAD_FIELDS;
        t->year = (int)i64;
        return LINE_OK;
    }
    case 'E':
        rec->type = JREC_EVENT;
        if (nf != 2 || !parse_text(f[1], rec->event, sizeof rec->event))
            return LINE_BAD_FIELDS;
        return LINE_OK;
    case 'D': {
        journal_delivery *d = &rec->delivery;
        rec->type = JREC_DELIVERY;
        if (nf != 5 || !parse_i64(f[1], &d->received_at) || !parse_hex64(f[2], &d->hash) ||
            !parse_u64(f[3], &d->size) || !parse_text(f[4], d->name, sizeof d->name) ||
            d->name[0] == '\0')
            return LINE_BAD_FIELDS;
        return LINE_OK;
    }
    default:
        *why = "unknown record type";
        return LINE_BAD_FIELDS;
    }
}

/* State of one pass over the journal's lines. */
typedef struct jscan {
    int (*cb)(const journal_record *rec, void *ud); /* NULL: count only */
    void *ud;
    bool report;          /* log every corrupt line (replay), not only a summary (open) */
    bool index;           /* remember the deliveries found (open) */
    uint64_t n_ok, n_bad, first_bad, n_reported;
    uint64_t lineno;      /* of the line being looked at; the header is line 1 */
    off_t last_start;     /* the last complete line: its offset and result */
    off_t last_end;       /* just past the last complete line's newline */
    int last_res;
    uint64_t last_lineno;
    bool torn;            /* bytes after the last newline, from tail_start */
    off_t tail_start;
    struct compaction *cp; /* journal_compact: where the lines kept go */
    struct rpipe *pipe;   /* a replay on two threads: records go to the applier in batches */
    jlast last;           /* the last O or T record's series */
    void (*ahead)(const journal_record *rec, int stage, void *ud); /* see journal_open_replay */
} jscan;

/* A replay on two threads (scan_piped): this thread reads and parses
 * records into batches, the caller's thread applies them (cb). */
#define RPIPE_BATCH 128   /* records a batch */
#define RPIPE_BATCHES 8   /* batches in flight */
#define RPIPE_WAKE 4      /* a side that waits is woken once this many batches are
                             ready for it, not at each one: a wake-up is a system
                             call on each side, dearer than a batch's parsing */
#define RPIPE_MIN_BYTES (4u << 20) /* smaller journals are replayed on one thread */
#define RPIPE_AHEAD 8     /* records between two stages of the ahead hint */

typedef struct rbatch {
    journal_record *recs;
    bool *hint;   /* per record: sc->ahead wants to see it (an O or T record that
                     starts a series), so that the applier reads no record early
                     only to find it needs no hint */
    size_t n;
} rbatch;

typedef struct rpipe {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    rbatch b[RPIPE_BATCHES];
    size_t fill, take, n_full; /* the batch being filled, the next to apply, how many are full */
    bool done;                 /* the reader finished (every full batch pushed) */
    bool stop;                 /* the applier stopped (cb returned non-zero) */
    bool reader_waits, applier_waits; /* in pthread_cond_wait */
} rpipe;

/* The reader hands the batch it filled over and waits for an empty one.
 * Returns false when the applier stopped. */
static bool rpipe_push(rpipe *p)
{
    pthread_mutex_lock(&p->mu);
    p->n_full++;
    p->fill = (p->fill + 1) % RPIPE_BATCHES;
    if (p->applier_waits && p->n_full >= RPIPE_WAKE)
        pthread_cond_broadcast(&p->cv);
    if (p->n_full == RPIPE_BATCHES) {
        while (p->n_full > RPIPE_BATCHES - RPIPE_WAKE && !p->stop) {
            p->reader_waits = true;
            pthread_cond_wait(&p->cv, &p->mu);
            p->reader_waits = false;
        }
    }
    bool go = !p->stop;
    p->b[p->fill].n = 0;
    pthread_mutex_unlock(&p->mu);
    return go;
}

/* journal_compact: its first pass notes, for every line, where it goes (the
 * group of its series, the ordered lines, or nowhere) and how many bytes each
 * group takes; the second copies the lines to their places in the new file. */
#define GROUP_DROP UINT32_MAX      /* a line left out */
#define GROUP_ORDERED (UINT32_MAX - 1) /* an E or D line, or a corrupt one: kept in file order */

typedef struct cgroup_slot {
    uint64_t h;
    uint32_t g; /* group + 1; 0: free slot */
} cgroup_slot;

typedef struct compaction {
    const uint8_t *drop;  /* bit i: intact record i is superseded */
    uint64_t n_drop_bits;
    uint8_t *dl_seen;     /* per slot of journal.dl: that delivery's line was kept */
    uint32_t *line_group; /* per line: its group, GROUP_ORDERED or GROUP_DROP */
    size_t n_lines, cap_lines;
    cgroup_slot *slots;   /* the groups by the hash of "park 0xff indicator" */
    size_t n_slots;
    uint64_t *bytes;      /* per group: its lines' bytes, then where its next line goes */
    uint32_t *key;        /* per group: its key's offset in keys ("park\0indicator\0") */
    size_t n_groups, cap_groups, cap_key;
    journal_out keys;
    uint64_t ordered_bytes;
    uint64_t kept, dropped, corrupt;
    int rc;
} compaction;

static int write_all(int fd, const char *p, size_t n, off_t at);
static int compact_line(journal *j, jscan *sc, const char *line, size_t len, int res,
                        const journal_record *rec);

/* Handles one complete line. Returns the callback's non-zero value, or 0. */
static int scan_line(journal *j, jscan *sc, const char *line, size_t len, off_t at,
                     journal_record *rec)
{
    const char *why = "line too long";
    int res = len > JOURNAL_LINE_MAX ? LINE_BAD_CRC : parse_line(line, len, rec, &why, &sc->last);

    sc->last_start = at;
    sc->last_end = at + (off_t)len + 1;
    sc->last_res = res;
    sc->last_lineno = sc->lineno;
    if (sc->cp != NULL)
        return compact_line(j, sc, line, len, res, rec);
    if (res == LINE_OK) {
        sc->n_ok++;
        if (sc->index && rec->type == JREC_DELIVERY)
            dl_add(j, &rec->delivery);
        if ((rec->type == JREC_OBS || rec->type == JREC_TARGET) && !rec->same_series) {
            const char *park = rec->type == JREC_OBS ? rec->obs.park : rec->target.park;
            const char *ind = rec->type == JREC_OBS ? rec->obs.indicator : rec->target.indicator;
            sc->last.park_n = strlen(park);
            sc->last.ind_n = strlen(ind);
            memcpy(sc->last.park, park, sc->last.park_n + 1);
            memcpy(sc->last.ind, ind, sc->last.ind_n + 1);
        }
        if (sc->pipe != NULL) {
            /* rec is the next slot of the batch being filled */
            rpipe *p = sc->pipe;
            p->b[p->fill].hint[p->b[p->fill].n] =
                (rec->type == JREC_OBS || rec->type == JREC_TARGET) && !rec->same_series;
            if (++p->b[p->fill].n == RPIPE_BATCH && !rpipe_push(p))
                return 1;
            return 0;
        }
        return sc->cb ? sc->cb(rec, sc->ud) : 0;
    }
    if (sc->n_bad++ == 0)
        sc->first_bad = sc->lineno;
    if (sc->report && sc->n_reported < JOURNAL_REPORT_MAX) {
        sc->n_reported++;
        log_warn("journal", "%s line %" PRIu64 ": %s, skipped", j->path, sc->lineno, why);
    }
    return 0;
}

/* Reads the lines in [from, to). Returns 0, the callback's non-zero value, or
 * a negative errno (logged). */
static int scan(journal *j, off_t from, off_t to, jscan *sc)
{
    int rc = 0;
    char *buf = malloc(JOURNAL_READ_CHUNK);
    journal_record *rec = sc->pipe ? NULL : malloc(sizeof *rec);
    size_t have = 0;
    off_t buf_at = from;       /* file offset of buf[0] */
    off_t rd = from;           /* next offset to read */
    bool skipping = false;     /* inside a line longer than the buffer */
    off_t skip_start = 0;

    sc->lineno = 2;
    sc->last_start = -1;
    sc->torn = false;
    if (buf == NULL || (rec == NULL && sc->pipe == NULL)) {
        log_err("journal", "out of memory reading %s", j->path);
        rc = -ENOMEM;
        goto out;
    }
    while (rd < to) {
        size_t want = JOURNAL_READ_CHUNK - have;
        if ((off_t)want > to - rd)
            want = (size_t)(to - rd);
        ssize_t r = pread(j->fd, buf + have, want, rd);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            log_errno("journal", "cannot read %s", j->path);
            goto out;
        }
        if (r == 0)
            break; /* the file shrank under us: take what there is */
        rd += r;
        have += (size_t)r;

        size_t off = 0;
        for (;;) {
            char *nl = memchr(buf + off, '\n', have - off);
            if (nl == NULL)
                break;
            size_t len = (size_t)(nl - (buf + off));
            if (skipping) {
                /* the end of an over-long line: report it from its start */
                if (sc->pipe)
                    rec = &sc->pipe->b[sc->pipe->fill].recs[sc->pipe->b[sc->pipe->fill].n];
                rc = scan_line(j, sc, "", JOURNAL_LINE_MAX + 1, skip_start, rec);
                skipping = false;
            } else {
                if (sc->pipe)
                    rec = &sc->pipe->b[sc->pipe->fill].recs[sc->pipe->b[sc->pipe->fill].n];
                rc = scan_line(j, sc, buf + off, len, buf_at + (off_t)off, rec);
            }
            sc->lineno++;
            off += len + 1;
            if (rc != 0)
                goto out;
        }
        if (off == 0 && have == JOURNAL_READ_CHUNK) {
            if (!skipping) {
                skipping = true;
                skip_start = buf_at;
            }
            off = have; /* drop what we have of the over-long line */
        }
        memmove(buf, buf + off, have - off);
        buf_at += (off_t)off;
        have -= off;
    }
    if (skipping || have > 0) {
        sc->torn = true;
        sc->tail_start = skipping ? skip_start : buf_at;
    }
out:
    free(buf);
    if (sc->pipe == NULL)
        free(rec);
    return rc;
}

/* scan_piped: the reader's thread. */
typedef struct rreader {
    journal *j;
    off_t from, to;
    jscan *sc;
    int rc;
} rreader;

static void *rpipe_reader(void *arg)
{
    rreader *r = arg;
    rpipe *p = r->sc->pipe;
    r->rc = scan(r->j, r->from, r->to, r->sc);
    pthread_mutex_lock(&p->mu);
    if (p->b[p->fill].n > 0 && !p->stop) {
        p->n_full++;
        p->fill = (p->fill + 1) % RPIPE_BATCHES;
    }
    p->done = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* scan with sc->cb, on two threads when the range is large: the reading,
 * checksums and parsing on a second thread, cb (and sc->ahead) on this one,
 * in the same order. Returns what scan would. */
static int scan_piped(journal *j, off_t from, off_t to, jscan *sc)
{
    if (sc->cb == NULL || to - from < (off_t)RPIPE_MIN_BYTES)
        return scan(j, from, to, sc);
    rpipe p = { .fill = 0 };
    rreader r = { .j = j, .from = from, .to = to, .sc = sc };
    pthread_t th;
    int rc = 0, cbrc = 0;
    for (int i = 0; i < RPIPE_BATCHES; i++)
        if ((p.b[i].recs = malloc(RPIPE_BATCH * sizeof *p.b[i].recs)) == NULL ||
            (p.b[i].hint = malloc(RPIPE_BATCH * sizeof *p.b[i].hint)) == NULL)
            rc = -ENOMEM;
    if (rc == 0 && (rc = -pthread_mutex_init(&p.mu, NULL)) == 0) {
        if ((rc = -pthread_cond_init(&p.cv, NULL)) != 0)
            pthread_mutex_destroy(&p.mu);
    }
    if (rc != 0) {
        for (int i = 0; i < RPIPE_BATCHES; i++) {
            free(p.b[i].recs);
            free(p.b[i].hint);
        }
        return scan(j, from, to, sc); /* one thread then */
    }
    sc->pipe = &p;
    if ((rc = pthread_create(&th, NULL, rpipe_reader, &r)) != 0) {
        sc->pipe = NULL;
        rc = scan(j, from, to, sc);
        goto out;
    }
    pthread_mutex_lock(&p.mu);
    for (;;) {
        if (p.n_full == 0) {
            while (p.n_full < RPIPE_WAKE && !p.done) {
                p.applier_waits = true;
                pthread_cond_wait(&p.cv, &p.mu);
                p.applier_waits = false;
            }
        }
        if (p.n_full == 0)
            break;
        rbatch *b = &p.b[p.take];
        pthread_mutex_unlock(&p.mu);
        for (size_t i = 0; i < b->n && cbrc == 0; i++) {
            if (sc->ahead != NULL) {
                /* hints for the records cb takes next: stage 0 furthest */
                for (int stage = 0; stage < 3; stage++) {
                    size_t k = i + (size_t)(3 - stage) * RPIPE_AHEAD;
                    if (k < b->n && b->hint[k])
                        sc->ahead(&b->recs[k], stage, sc->ud);
                }
            }
            cbrc = sc->cb(&b->recs[i], sc->ud);
        }
        pthread_mutex_lock(&p.mu);
        p.take = (p.take + 1) % RPIPE_BATCHES;
        p.n_full--;
        if (cbrc != 0)
            p.stop = true;
        if (cbrc != 0 || (p.reader_waits && p.n_full <= RPIPE_BATCHES - RPIPE_WAKE))
            pthread_cond_broadcast(&p.cv);
        if (cbrc != 0)
            break;
    }
    pthread_mutex_unlock(&p.mu);
    pthread_join(th, NULL);
    sc->pipe = NULL;
    rc = cbrc != 0 ? cbrc : r.rc;
    if (cbrc == 0 && rc == 1)
        rc = 0; /* the reader's stop after the applier's, never alone */
out:
    pthread_cond_destroy(&p.cv);
    pthread_mutex_destroy(&p.mu);
    for (int i = 0; i < RPIPE_BATCHES; i++) {
        free(p.b[i].recs);
        free(p.b[i].hint);
    }
    return rc;
}

/* ---- files -------------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n, off_t at)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (w == 0)
            return -EIO;
        p += w;
        n -= (size_t)w;
        at += w;
    }
    return 0;
}

static int sync_fd(int fd, bool data_only)
{
    for (;;) {
        if ((data_only ? fdatasync(fd) : fsync(fd)) == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int rc = -errno;
        log_errno("journal", "cannot open directory %s", dir);
        return rc;
    }
    int rc = sync_fd(fd, false);
    if (rc < 0)
        log_err_rc("journal", rc, "cannot fsync directory %s", dir);
    close(fd);
    return rc;
}

/* Cuts the file back to size and makes that durable. */
static int cut_to(journal *j, off_t size)
{
    if (ftruncate(j->fd, size) != 0) {
        int rc = -errno;
        log_errno("journal", "cannot truncate %s to %jd bytes", j->path, (intmax_t)size);
        return rc;
    }
    int rc = sync_fd(j->fd, true);
    if (rc < 0)
        log_err_rc("journal", rc, "cannot fsync %s", j->path);
    return rc;
}

/* Writes the header into an empty (or torn-at-creation) file. */
static int write_header(journal *j, const char *dir)
{
    int rc = cut_to(j, 0);
    if (rc < 0)
        return rc;
    rc = write_all(j->fd, JOURNAL_HEADER, strlen(JOURNAL_HEADER), 0);
    if (rc == 0)
        rc = sync_fd(j->fd, false);
    if (rc < 0) {
        log_err_rc("journal", rc, "cannot write %s", j->path);
        if (ftruncate(j->fd, 0) != 0)
            log_errno("journal", "cannot truncate %s", j->path);
        return rc;
    }
    return sync_dir(dir);
}

/* Checks the header line. Returns 0, 1 when the file must be (re)initialised
 * (empty, or a header torn during creation), or a negative errno (logged). */
static int check_header(journal *j, off_t size)
{
    char head[64];
    size_t hl = strlen(JOURNAL_HEADER);
    size_t want = size < (off_t)sizeof head ? (size_t)size : sizeof head;
    size_t got = 0;

    while (got < want) {
        ssize_t r = pread(j->fd, head + got, want - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int rc = -errno;
            log_errno("journal", "cannot read %s", j->path);
            return rc;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got < hl && memcmp(head, JOURNAL_HEADER, got) == 0)
        return 1;
    if (got >= hl && memcmp(head, JOURNAL_HEADER, hl) == 0)
        return 0;
    char *nl = memchr(head, '\n', got);
    if (got > strlen(JOURNAL_MAGIC) && memcmp(head, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC)) == 0 &&
        nl != NULL) {
        *nl = '\0';
        log_err("journal", "%s: unsupported format version %s (this build reads 1)", j->path,
                head + strlen(JOURNAL_MAGIC));
    } else {
        log_err("journal", "%s: not a parkpulse journal (no \"%.*s\" line)", j->path,
                (int)strlen(JOURNAL_HEADER) - 1, JOURNAL_HEADER);
    }
    return -EINVAL;
}

/* Creates dir (mode 0750) unless it exists, and makes a new entry durable. */
static int ensure_dir(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0750) == 0) {
        char *copy = strdup(dir);
        if (copy == NULL) {
            log_err("journal", "out of memory");
            return -ENOMEM;
        }
        int rc = sync_dir(dirname(copy));
        free(copy);
        return rc;
    }
    if (errno != EEXIST) {
        int rc = -errno;
        log_errno("journal", "cannot create directory %s", dir);
        return rc;
    }
    if (stat(dir, &st) != 0) {
        int rc = -errno;
        log_errno("journal", "cannot stat %s", dir);
        return rc;
    }
    if (!S_ISDIR(st.st_mode)) {
        log_err("journal", "%s is not a directory", dir);
        return -ENOTDIR;
    }
    return 0;
}

/* A name beside base for damaged bytes: base.damaged-<UTC time>, with -N
 * added while that exists. Returns 0 or -ENAMETOOLONG/-EEXIST (logged). */
static int damaged_name(const char *base, char *buf, size_t len)
{
    char stamp[32];
    struct tm tm;
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
    for (int k = 0; k < 1000; k++) {
        int n = k == 0 ? snprintf(buf, len, "%s.damaged-%s", base, stamp)
                       : snprintf(buf, len, "%s.damaged-%s-%d", base, stamp, k);
        if (n < 0 || (size_t)n >= len) {
            log_err("journal", "%s.damaged-%s: name too long", base, stamp);
            return -ENAMETOOLONG;
        }
        struct stat st;
        if (lstat(buf, &st) != 0 && errno == ENOENT)
            return 0;
    }
    log_err("journal", "no free name for %s.damaged-%s", base, stamp);
    return -EEXIST;
}

/* Copies the journal's bytes [from, to) into a new file beside it (its name
 * into dst) and makes that durable. Returns 0 or a negative errno (logged). */
static int copy_aside(journal *j, off_t from, off_t to, char *dst, size_t dstlen)
{
    char buf[65536];
    char *copy = strdup(j->path);
    int rc = copy ? damaged_name(j->path, dst, dstlen) : -ENOMEM;
    int fd = -1;
    if (rc < 0)
        goto out;
    fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0) {
        rc = -errno;
        log_errno("journal", "cannot create %s", dst);
        goto out;
    }
    for (off_t at = from; at < to;) {
        size_t want = to - at < (off_t)sizeof buf ? (size_t)(to - at) : sizeof buf;
        ssize_t r = pread(j->fd, buf, want, at);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            log_err_rc("journal", rc, "cannot read %s", j->path);
            goto out;
        }
        rc = write_all(fd, buf, (size_t)r, at - from);
        if (rc < 0) {
            log_err_rc("journal", rc, "cannot write %s", dst);
            goto out;
        }
        at += r;
    }
    rc = sync_fd(fd, false);
    if (rc < 0) {
        log_err_rc("journal", rc, "cannot fsync %s", dst);
        goto out;
    }
    rc = sync_dir(dirname(copy));
out:
    if (fd >= 0)
        close(fd);
    if (rc < 0 && fd >= 0)
        unlink(dst);
    free(copy);
    return rc;
}

/* A compaction's new file left by a crash before its rename is incomplete or
 * unsynced: the journal beside it is whole, and the file is removed. */
static void remove_stale_compaction(const char *dir)
{
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, JOURNAL_COMPACT_FILE) >= sizeof path)
        return;
    if (unlink(path) == 0)
        log_warn("journal", "%s: removed (a compaction that did not finish; the journal is whole)",
                 path);
    else if (errno != ENOENT)
        log_warn_errno("journal", "cannot remove %s", path);
}

/* journal_open, and journal_open_replay when cb is not NULL: one pass over
 * the lines both counts them (and finds a torn or damaged tail) and replays. */
static int open_impl(const char *dir, int (*cb)(const journal_record *rec, void *ud),
                     void (*ahead)(const journal_record *rec, int stage, void *ud), void *ud,
                     journal **out)
{
    int rc;
    journal *j = NULL;
    struct stat st;
    jscan sc = { .index = true, .cb = cb, .ahead = ahead, .ud = ud, .report = cb != NULL };

    if (dir == NULL || out == NULL)
        return -EINVAL;
    *out = NULL;
    pthread_once(&crc_once, crc_init);
    rc = ensure_dir(dir);
    if (rc < 0)
        return rc;
    j = calloc(1, sizeof *j);
    if (j != NULL)
        j->fd = -1;
    if (j == NULL || asprintf(&j->path, "%s/%s", dir, JOURNAL_FILE) < 0) {
        if (j)
            j->path = NULL;
        log_err("journal", "out of memory opening the journal in %s", dir);
        rc = -ENOMEM;
        goto fail;
    }
    j->fd = open(j->path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (j->fd < 0) {
        rc = -errno;
        log_errno("journal", "cannot open %s", j->path);
        goto fail;
    }
    if (flock(j->fd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        log_err("journal", "cannot lock %s: %s%s", j->path, strerror(errno),
                errno == EWOULDBLOCK ? " (is another parkpulsed running?)" : "");
        goto fail;
    }
    if (fstat(j->fd, &st) != 0) {
        rc = -errno;
        log_errno("journal", "cannot stat %s", j->path);
        goto fail;
    }
    rc = check_header(j, st.st_size);
    if (rc < 0)
        goto fail;
    if (rc == 1) {
        rc = write_header(j, dir);
        if (rc < 0)
            goto fail;
        st.st_size = (off_t)strlen(JOURNAL_HEADER);
    }
    j->data_start = (off_t)strlen(JOURNAL_HEADER);
    j->size = st.st_size;

    remove_stale_compaction(dir);
    rc = scan_piped(j, j->data_start, j->size, &sc);
    if (rc != 0) {
        if (rc > 0)
            log_err("journal", "%s: replay stopped by its caller (error %d)", j->path, rc);
        rc = rc > 0 ? -ECANCELED : rc;
        goto fail;
    }
    off_t cut = -1;
    if (sc.torn) {
        cut = sc.tail_start;
        log_warn("journal", "%s: cutting off an incomplete last line (%jd bytes, no newline)",
                 j->path, (intmax_t)(j->size - cut));
    } else if (sc.last_start >= 0 && sc.last_res == LINE_BAD_CRC) {
        /* a complete line: not a torn write but damage; keep it for inspection */
        char aside[PATH_MAX];
        cut = sc.last_start;
        sc.n_bad--;
        rc = copy_aside(j, cut, j->size, aside, sizeof aside);
        if (rc < 0)
            goto fail;
        log_warn("journal", "%s: last line %" PRIu64 " is damaged (bad checksum): its %jd "
                 "bytes are kept in %s and cut off the journal", j->path, sc.last_lineno,
                 (intmax_t)(j->size - cut), aside);
    }
    if (cut >= 0) {
        rc = cut_to(j, cut);
        if (rc < 0)
            goto fail;
        j->size = cut;
    }
    if (sc.n_bad > 0)
        log_warn("journal", "%s: %" PRIu64 " corrupt line(s) will be skipped (the first is line %" PRIu64 ")",
                 j->path, sc.n_bad, sc.first_bad);
    j->count = sc.n_ok;
    j->n_bad = sc.n_bad;
    log_debug("journal", "%s: %" PRIu64 " record(s), %jd bytes", j->path, journal_count(j),
              (intmax_t)j->size);
    *out = j;
    return 0;
fail:
    journal_close(j);
    return rc;
}

int journal_open(const char *dir, journal **out) { return open_impl(dir, NULL, NULL, NULL, out); }

int journal_open_replay(const char *dir, int (*cb)(const journal_record *rec, void *ud),
                        void (*ahead)(const journal_record *rec, int stage, void *ud), void *ud,
                        journal **out)
{
    if (cb == NULL)
        return -EINVAL;
    return open_impl(dir, cb, ahead, ud, out);
}

/* ---- damage found before opening, and --recover ------------------------------------ */

/* Signs that the state directory was used: an RRD file under rrd_dir/<park>/,
 * or a clean-stop marker that counts records. Fills what (may be empty). */
static bool earlier_use(const char *rrd_dir, char *what, size_t len)
{
    char path[PATH_MAX];
    bool used = false;
    FILE *f;

    snprintf(path, sizeof path, "%s/.clean", rrd_dir);
    if ((f = fopen(path, "r")) != NULL) {
        char buf[64];
        unsigned long long n = 0;
        if (fgets(buf, sizeof buf, f) != NULL)
            n = strtoull(buf, NULL, 10);
        fclose(f);
        if (n > 0) {
            snprintf(what, len, "the clean-stop marker %s counts %llu record(s)", path, n);
            return true;
        }
    }
    DIR *d = opendir(rrd_dir);
    if (d == NULL)
        return false;
    for (struct dirent *e; !used && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", rrd_dir, e->d_name);
        DIR *p = opendir(path);
        if (p == NULL)
            continue;
        for (struct dirent *g; (g = readdir(p)) != NULL;) {
            size_t n = strlen(g->d_name);
            if (n > 4 && strcmp(g->d_name + n - 4, ".rrd") == 0) {
                snprintf(what, len, "RRD files are there, such as %.2000s/%.255s", path,
                         g->d_name);
                used = true;
                break;
            }
        }
        closedir(p);
    }
    closedir(d);
    return used;
}

int journal_check(const char *dir, const char *rrd_dir, char *why, size_t whylen)
{
    char path[PATH_MAX], head[64], use[PATH_MAX + 64] = "";
    const char *damage = NULL;
    char detail[64] = "";
    size_t hl = strlen(JOURNAL_HEADER);
    struct stat st;

    if (dir == NULL || rrd_dir == NULL || why == NULL || whylen == 0)
        return -EINVAL;
    why[0] = '\0';
    snprintf(path, sizeof path, "%s/%s", dir, JOURNAL_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno != ENOENT) {
        int rc = -errno;
        log_errno("journal", "cannot open %s", path);
        return rc;
    }
    if (fd < 0) {
        damage = "is missing";
    } else {
        ssize_t got = fstat(fd, &st) == 0 ? pread(fd, head, sizeof head, 0) : -1;
        int err = errno;
        close(fd);
        if (got < 0) {
            log_err_rc("journal", err, "cannot read %s", path);
            return -err;
        }
        if (got == 0) {
            damage = "is empty";
        } else if ((size_t)got < hl && memcmp(head, JOURNAL_HEADER, (size_t)got) == 0) {
            damage = "is cut inside its header";
            snprintf(detail, sizeof detail, " (%zd bytes)", got);
        } else if ((size_t)got >= hl && memcmp(head, JOURNAL_HEADER, hl) == 0) {
            if (st.st_size > (off_t)hl)
                return 0;
            damage = "holds no record";
        } else if ((size_t)got > strlen(JOURNAL_MAGIC) &&
                   memcmp(head, JOURNAL_MAGIC, strlen(JOURNAL_MAGIC)) == 0) {
            return 0; /* another format version: journal_open says which */
        } else {
            snprintf(why, whylen,
                     "the journal %s is damaged: it is not a parkpulse journal (its first line "
                     "is not \"%.*s\"). Restore it from a backup (with parkpulsed stopped), or "
                     "run `parkpulsed --recover`: it moves the file aside as "
                     "journal.log.damaged-<time> and starts a fresh journal with every intact "
                     "record found in it", path, (int)hl - 1, JOURNAL_HEADER);
            return 1;
        }
    }
    if (!earlier_use(rrd_dir, use, sizeof use))
        return 0; /* a state directory never used: start empty */
    snprintf(why, whylen,
             "the journal %s %s%s, but the state directory was used before (%s): the figures "
             "it held are gone from it. Restore journal.log from a backup (with parkpulsed "
             "stopped), or run `parkpulsed --recover`: it moves the file aside as "
             "journal.log.damaged-<time>, starts a fresh journal and moves the RRD files "
             "aside (rrdtool still reads them); figures not restored must then be delivered "
             "again (the spool keeps every ingested file in done/)",
             path, damage, detail, use);
    return 1;
}

/* Moves path aside as path.damaged-<time> (its new name into dst). */
static int move_aside(const char *path, char *dst, size_t len)
{
    int rc = damaged_name(path, dst, len);
    if (rc < 0)
        return rc;
    if (rename(path, dst) != 0) {
        rc = -errno;
        log_errno("journal", "cannot rename %s to %s", path, dst);
        return rc;
    }
    return 0;
}

/* Replay callback of journal_recover: copies intact records into the new journal. */
typedef struct salvage {
    journal *to;
    journal_record *buf;
    size_t n, cap;
    uint64_t saved;
    int rc;
} salvage;

static int salvage_flush(salvage *sv)
{
    if (sv->n > 0 && sv->rc == 0) {
        sv->rc = journal_append(sv->to, sv->buf, sv->n);
        if (sv->rc == 0)
            sv->saved += sv->n;
    }
    sv->n = 0;
    return sv->rc;
}

static int salvage_one(const journal_record *rec, void *ud)
{
    salvage *sv = ud;
    sv->buf[sv->n++] = *rec;
    if (sv->n == sv->cap && salvage_flush(sv) < 0)
        return sv->rc;
    return 0;
}

int journal_recover(const char *dir, const char *rrd_dir)
{
    char why[PATH_MAX * 2], tmpdir[PATH_MAX], tmpfile[PATH_MAX], path[PATH_MAX];
    char aside[PATH_MAX] = "", rrd_aside[PATH_MAX] = "";
    journal *nj = NULL;
    salvage sv = { 0 };
    int rc = journal_check(dir, rrd_dir, why, sizeof why);

    if (rc <= 0) {
        if (rc == 0)
            log_info("journal", "%s/%s is intact: nothing to recover", dir, JOURNAL_FILE);
        return rc;
    }
    log_warn("journal", "recovering: %s", why);
    pthread_once(&crc_once, crc_init);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, JOURNAL_FILE) >= sizeof path ||
        (size_t)snprintf(tmpdir, sizeof tmpdir, "%s/.recover-%ld", dir, (long)getpid()) >=
            sizeof tmpdir ||
        (size_t)snprintf(tmpfile, sizeof tmpfile, "%s/%s", tmpdir, JOURNAL_FILE) >=
            sizeof tmpfile) {
        log_err("journal", "%s: name too long", dir);
        return -ENAMETOOLONG;
    }
    unlink(tmpfile); /* left by a recovery that crashed */
    rmdir(tmpdir);

    /* 1. a fresh journal beside it, with every intact record of the old one */
    rc = journal_open(tmpdir, &nj);
    if (rc < 0)
        goto out;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    bool had_file = fd >= 0;
    if (had_file) {
        struct stat st;
        journal old = { .fd = fd, .path = path };
        jscan sc = { .cb = salvage_one, .ud = &sv };
        sv.to = nj;
        sv.cap = 256;
        sv.buf = malloc(sv.cap * sizeof *sv.buf);
        if (sv.buf == NULL || fstat(fd, &st) != 0) {
            rc = sv.buf == NULL ? -ENOMEM : -errno;
            log_err_rc("journal", rc, "cannot read %s", path);
            close(fd);
            goto out;
        }
        rc = scan(&old, 0, st.st_size, &sc);
        close(fd);
        if (rc == 0)
            rc = salvage_flush(&sv);
        if (rc < 0)
            goto out;
    } else if (errno != ENOENT) {
        rc = -errno;
        log_errno("journal", "cannot open %s", path);
        goto out;
    }
    journal_close(nj);
    nj = NULL;

    /* 2. the damaged file aside (never deleted), the fresh one in its place */
    if (had_file && (rc = move_aside(path, aside, sizeof aside)) < 0)
        goto out;
    if (rename(tmpfile, path) != 0) {
        rc = -errno;
        log_errno("journal", "cannot rename %s to %s", tmpfile, path);
        goto out;
    }
    rmdir(tmpdir);
    if ((rc = sync_dir(dir)) < 0)
        goto out;

    /* 3. the RRD files aside: they are rebuilt from what was saved */
    struct stat rst;
    if (stat(rrd_dir, &rst) == 0) {
        if ((rc = move_aside(rrd_dir, rrd_aside, sizeof rrd_aside)) < 0)
            goto out;
        if (mkdir(rrd_dir, 0755) != 0) {
            rc = -errno;
            log_errno("journal", "cannot create %s", rrd_dir);
            goto out;
        }
        char *copy = strdup(rrd_dir);
        rc = copy ? sync_dir(dirname(copy)) : -ENOMEM;
        free(copy);
        if (rc < 0)
            goto out;
    }
    log_warn("journal", "recovered: %s%s; a fresh journal %s holds the %" PRIu64 " intact "
             "record(s) found in it%s%s%s. Figures not saved are lost unless journal.log is "
             "restored from a backup or they are delivered again (the spool keeps every "
             "ingested file in done/)",
             had_file ? "the damaged journal is kept as " : "there was no journal",
             had_file ? aside : "", path, sv.saved,
             rrd_aside[0] ? "; the old RRD files are kept in " : "", rrd_aside,
             rrd_aside[0] ? " (read them with rrdtool fetch or rrdtool dump)" : "");
    rc = 0;
out:
    if (rc < 0)
        log_err_rc("journal", rc, "recovery of %s failed", path);
    journal_close(nj);
    free(sv.buf);
    return rc;
}

int journal_replay(journal *j, int (*cb)(const journal_record *rec, void *ud), void *ud)
{
    if (j == NULL || cb == NULL)
        return -EINVAL;
    jscan sc = { .cb = cb, .ud = ud, .report = true };
    int rc = scan_piped(j, j->data_start, j->size, &sc);
    if (sc.n_bad > sc.n_reported)
        log_warn("journal", "%s: %" PRIu64 " corrupt line(s) skipped in all", j->path, sc.n_bad);
    return rc;
}

/* journal_prefix: counts intact records and notes where the last one ends;
 * stops at the n-th. */
typedef struct prefix_scan {
    const jscan *sc;
    uint64_t want, seen;
    off_t end;
} prefix_scan;

static int prefix_cb(const journal_record *rec, void *ud)
{
    prefix_scan *ps = ud;
    (void)rec;
    ps->seen++;
    ps->end = ps->sc->last_end;
    return ps->seen >= ps->want ? 1 : 0;
}

int journal_prefix(const char *path, uint64_t n, off_t *end, uint64_t *count)
{
    journal j = { .fd = -1, .path = (char *)path };
    struct stat st;
    int rc;

    pthread_once(&crc_once, crc_init);
    j.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (j.fd < 0) {
        rc = -errno;
        log_errno("journal", "cannot open %s", path);
        return rc;
    }
    if (fstat(j.fd, &st) != 0) {
        rc = -errno;
        log_errno("journal", "cannot stat %s", path);
        goto out;
    }
    rc = check_header(&j, st.st_size);
    if (rc != 0) {
        if (rc == 1) {
            log_err("journal", "%s: cut inside its header line", path);
            rc = -EINVAL;
        }
        goto out;
    }
    prefix_scan ps = { .want = n, .end = (off_t)strlen(JOURNAL_HEADER) };
    jscan sc = { .cb = prefix_cb, .ud = &ps };
    ps.sc = &sc;
    if (n > 0 && (rc = scan(&j, ps.end, st.st_size, &sc)) < 0)
        goto out;
    rc = 0;
    *end = ps.end;
    *count = ps.seen;
out:
    close(j.fd);
    return rc;
}

/* Writes the n lines staged in o, fsyncs, and counts them; on failure cuts
 * the partial batch off (or marks the tail to be cut before the next append). */
static int append_staged(journal *j, journal_out *o, size_t n)
{
    int rc = 0;
    if (j->tail_dirty) {
        rc = cut_to(j, j->size);
        if (rc < 0)
            return rc;
        j->tail_dirty = false;
    }
    rc = write_all(j->fd, o->p, o->len, j->size);
    if (rc == 0) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        rc = sync_fd(j->fd, true);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        atomic_fetch_add_explicit(&j->n_syncs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&j->sync_ns,
                                  (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
                                             (t1.tv_nsec - t0.tv_nsec)),
                                  memory_order_relaxed);
    }
    if (rc < 0) {
        log_err_rc("journal", rc, "cannot append %zu record(s) to %s", n, j->path);
        if (cut_to(j, j->size) < 0)
            j->tail_dirty = true;
        return rc;
    }
    j->size += (off_t)o->len;
    j->count += n;
    return 0;
}

/* A batch of n records seen through two callbacks: why record i cannot be
 * journaled (NULL: it can), and staging it as a line. */
typedef const char *(*batch_check)(const void *ctx, size_t i);
typedef int (*batch_line)(journal_out *o, const void *ctx, size_t i);

/* Checks every record (refusing the batch whole), stages them, appends. */
static int append_batch(journal *j, size_t n, const void *ctx, batch_check check, batch_line line)
{
    int rc = 0;
    journal_out o = { 0 };

    for (size_t i = 0; i < n; i++) {
        const char *why = check(ctx, i);
        if (why != NULL) {
            log_err("journal", "refusing record %zu of %zu: %s", i + 1, n, why);
            return -EINVAL;
        }
    }
    for (size_t i = 0; i < n; i++) {
        rc = line(&o, ctx, i);
        if (rc < 0) {
            log_err("journal", "out of memory for a batch of %zu records", n);
            goto out;
        }
    }
    rc = append_staged(j, &o, n);
out:
    free(o.p);
    return rc;
}

static const char *check_record(const void *ctx, size_t i)
{
    return record_invalid(&((const journal_record *)ctx)[i]);
}

static int line_record(journal_out *o, const void *ctx, size_t i)
{
    return out_record(o, &((const journal_record *)ctx)[i]);
}

int journal_append(journal *j, const journal_record *recs, size_t n)
{
    if (j == NULL || (recs == NULL && n > 0))
        return -EINVAL;
    int rc = n == 0 ? 0 : append_batch(j, n, recs, check_record, line_record);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (recs[i].type == JREC_DELIVERY)
            dl_add(j, &recs[i].delivery);
    return rc;
}

/* Observations, then targets, then deliveries. */
typedef struct figures {
    const pp_obs *obs;
    size_t n_obs;
    const pp_target *tg;
    size_t n_tg;
    const journal_delivery *dl;
} figures;

static const char *check_figure(const void *ctx, size_t i)
{
    const figures *f = ctx;
    if (i < f->n_obs)
        return pp_obs_invalid(&f->obs[i]);
    if (i < f->n_obs + f->n_tg)
        return pp_target_invalid(&f->tg[i - f->n_obs]);
    return delivery_invalid(&f->dl[i - f->n_obs - f->n_tg]);
}

static int line_figure(journal_out *o, const void *ctx, size_t i)
{
    const figures *f = ctx;
    if (i < f->n_obs)
        return out_line(o, &f->obs[i], NULL, NULL, NULL);
    if (i < f->n_obs + f->n_tg)
        return out_line(o, NULL, &f->tg[i - f->n_obs], NULL, NULL);
    return out_line(o, NULL, NULL, &f->dl[i - f->n_obs - f->n_tg], NULL);
}

int journal_append_batch(journal *j, const pp_obs *obs, size_t n_obs, const pp_target *tg,
                         size_t n_tg, const journal_delivery *dl, size_t n_dl)
{
    if (j == NULL || (obs == NULL && n_obs > 0) || (tg == NULL && n_tg > 0) ||
        (dl == NULL && n_dl > 0))
        return -EINVAL;
    if (n_obs + n_tg + n_dl == 0)
        return 0;
    figures f = { .obs = obs, .n_obs = n_obs, .tg = tg, .n_tg = n_tg, .dl = dl };
    int rc = append_batch(j, n_obs + n_tg + n_dl, &f, check_figure, line_figure);
    for (size_t i = 0; rc == 0 && i < n_dl; i++)
        dl_add(j, &dl[i]);
    return rc;
}

int journal_append_figures(journal *j, const pp_obs *obs, size_t n_obs, const pp_target *tg,
                           size_t n_tg)
{
    return journal_append_batch(j, obs, n_obs, tg, n_tg, NULL, 0);
}

static const char *check_event(const void *ctx, size_t i)
{
    const char *ev = ((const char *const *)ctx)[i];
    return ev == NULL || strnlen(ev, JOURNAL_EVENT_MAX) == JOURNAL_EVENT_MAX
               ? "event payload too long" : NULL;
}

static int line_event(journal_out *o, const void *ctx, size_t i)
{
    return out_line(o, NULL, NULL, NULL, ((const char *const *)ctx)[i]);
}

int journal_append_events(journal *j, const char *const *events, size_t n)
{
    if (j == NULL || (events == NULL && n > 0))
        return -EINVAL;
    return n == 0 ? 0 : append_batch(j, n, events, check_event, line_event);
}

/* ---- compaction ------------------------------------------------------------------ */

void (*journal_compact_hook)(int step);

static void compact_step(int step)
{
    if (journal_compact_hook != NULL)
        journal_compact_hook(step);
}

/* The group of the series (park, indicator), made at its first line: the
 * groups are numbered in the order their series first appear. Returns it, or
 * GROUP_DROP on ENOMEM (cp->rc set). */
static uint32_t compact_group(compaction *cp, const char *park, const char *indicator)
{
    uint64_t h = pp_hash_pair(park, 0xff, indicator);
    if ((cp->n_groups + 1) * 2 > cp->n_slots) {
        size_t n = cp->n_slots ? cp->n_slots * 2 : 1024;
        cgroup_slot *ns = calloc(n, sizeof *ns);
        if (ns == NULL)
            goto nomem;
        for (size_t i = 0; i < cp->n_slots; i++) {
            if (cp->slots[i].g == 0)
                continue;
            size_t k = (size_t)cp->slots[i].h & (n - 1);
            while (ns[k].g != 0)
                k = (k + 1) & (n - 1);
            ns[k] = cp->slots[i];
        }
        free(cp->slots);
        cp->slots = ns;
        cp->n_slots = n;
    }
    size_t mask = cp->n_slots - 1, k = (size_t)h & mask;
    for (; cp->slots[k].g != 0; k = (k + 1) & mask) {
        if (cp->slots[k].h != h)
            continue;
        const char *key = cp->keys.p + cp->key[cp->slots[k].g - 1];
        if (strcmp(key, park) == 0 && strcmp(key + strlen(key) + 1, indicator) == 0)
            return cp->slots[k].g - 1;
    }
    if (cp->n_groups >= GROUP_ORDERED - 1 || cp->keys.len > UINT32_MAX - 2 * PP_ID_MAX - 2)
        goto nomem;
    size_t lp = strlen(park) + 1, li = strlen(indicator) + 1;
    if (PP_VEC_RESERVE(cp->bytes, cp->cap_groups, cp->n_groups + 1, 1024) != 0 ||
        PP_VEC_RESERVE(cp->key, cp->cap_key, cp->n_groups + 1, 1024) != 0 ||
        out_reserve(&cp->keys, lp + li) < 0)
        goto nomem;
    uint32_t g = (uint32_t)cp->n_groups++;
    cp->key[g] = (uint32_t)cp->keys.len;
    out_raw(&cp->keys, park, lp);
    out_raw(&cp->keys, indicator, li);
    cp->bytes[g] = 0;
    cp->slots[k] = (cgroup_slot){ .h = h, .g = g + 1 };
    return g;
nomem:
    cp->rc = -ENOMEM;
    return GROUP_DROP;
}

/* scan_line of journal_compact's first pass: where the line goes. */
static int compact_line(journal *j, jscan *sc, const char *line, size_t len, int res,
                        const journal_record *rec)
{
    (void)line;
    compaction *cp = sc->cp;
    uint32_t g = GROUP_ORDERED;
    if (len > JOURNAL_LINE_MAX) {
        log_err("journal", "%s line %" PRIu64 ": longer than any record: not compacted", j->path,
                sc->lineno);
        return cp->rc = -EINVAL;
    }
    if (res != LINE_OK) {
        cp->corrupt++; /* kept as it is: compaction loses nothing it cannot read */
    } else {
        uint64_t i = sc->n_ok++;
        if (i < cp->n_drop_bits && (cp->drop[i / 8] >> (i % 8) & 1)) {
            g = GROUP_DROP;
        } else if (rec->type == JREC_DELIVERY) {
            /* the first line of each identity: the time it answers with */
            const journal_delivery *d = &rec->delivery;
            dl_slot *sl = dl_find(j, delivery_key(d->name, d->size, d->hash));
            if (sl != NULL) {
                size_t at = (size_t)(sl - j->dl);
                if (cp->dl_seen[at])
                    g = GROUP_DROP;
                cp->dl_seen[at] = 1;
            }
        } else if (rec->type == JREC_OBS) {
            g = compact_group(cp, rec->obs.park, rec->obs.indicator);
        } else if (rec->type == JREC_TARGET) {
            g = compact_group(cp, rec->target.park, rec->target.indicator);
        }
        if (cp->rc < 0) {
            log_err("journal", "out of memory compacting %s", j->path);
            return cp->rc;
        }
    }
    if (PP_VEC_RESERVE(cp->line_group, cp->cap_lines, cp->n_lines + 1, 1u << 16) != 0) {
        log_err("journal", "out of memory compacting %s", j->path);
        return cp->rc = -ENOMEM;
    }
    cp->line_group[cp->n_lines++] = g;
    if (g == GROUP_DROP) {
        cp->dropped++;
        return 0;
    }
    if (g == GROUP_ORDERED)
        cp->ordered_bytes += len + 1;
    else
        cp->bytes[g] += len + 1;
    cp->kept += res == LINE_OK;
    return 0;
}

/* journal_compact's second pass: reads the lines again and copies each one
 * kept to the next place of its group in map (the new file, mapped). */
static int compact_place(journal *j, compaction *cp, char *map)
{
    char *buf = malloc(JOURNAL_READ_CHUNK);
    size_t have = 0, line = 0;
    off_t rd = j->data_start;
    int rc = 0;
    if (buf == NULL) {
        log_err("journal", "out of memory compacting %s", j->path);
        return -ENOMEM;
    }
    while (rd < j->size) {
        size_t want = JOURNAL_READ_CHUNK - have;
        if ((off_t)want > j->size - rd)
            want = (size_t)(j->size - rd);
        ssize_t r = pread(j->fd, buf + have, want, rd);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -errno : -EIO;
            log_err_rc("journal", -rc, "cannot read %s again", j->path);
            goto out;
        }
        rd += r;
        have += (size_t)r;
        size_t off = 0;
        char *nl;
        while ((nl = memchr(buf + off, '\n', have - off)) != NULL) {
            size_t len = (size_t)(nl - (buf + off)) + 1;
            if (line == cp->n_lines) {
                rc = -EIO;
                goto changed;
            }
            uint32_t g = cp->line_group[line++];
            if (g != GROUP_DROP) {
                uint64_t *at = &cp->bytes[g == GROUP_ORDERED ? cp->n_groups : g];
                memcpy(map + *at, buf + off, len);
                *at += len;
            }
            off += len;
        }
        memmove(buf, buf + off, have - off);
        have -= off;
        compact_step(JOURNAL_COMPACT_STEP_WRITING);
    }
    if (have != 0 || line != cp->n_lines)
        rc = -EIO;
changed:
    if (rc == -EIO)
        log_err("journal", "%s changed while it was compacted", j->path);
out:
    free(buf);
    return rc;
}

int journal_compact(journal *j, const uint8_t *drop, uint64_t n_drop_bits, uint64_t *dropped)
{
    char dir[PATH_MAX], tmp[PATH_MAX];
    compaction cp = { .drop = drop, .n_drop_bits = n_drop_bits };
    int rc, fd = -1;
    char *map = MAP_FAILED;
    off_t total = 0;

    if (j == NULL || (drop == NULL && n_drop_bits > 0))
        return -EINVAL;
    if (dropped != NULL)
        *dropped = 0;
    if (j->tail_dirty) {
        if ((rc = cut_to(j, j->size)) < 0)
            return rc;
        j->tail_dirty = false;
    }
    snprintf(dir, sizeof dir, "%s", j->path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s", dir, JOURNAL_COMPACT_FILE) >= sizeof tmp)
        return -ENAMETOOLONG;
    cp.dl_seen = calloc(j->dl_cap ? j->dl_cap : 1, 1);
    if (cp.dl_seen == NULL) {
        log_err("journal", "out of memory compacting %s", j->path);
        return -ENOMEM;
    }

    /* 1. where each line goes: the groups of the series and their sizes */
    jscan sc = { .cp = &cp };
    rc = scan(j, j->data_start, j->size, &sc);
    if (rc == 0 && sc.torn) {
        log_err("journal", "%s changed while it was compacted", j->path);
        rc = -EIO;
    }
    if (rc != 0)
        goto out;
    if (cp.kept + cp.dropped != journal_count(j)) {
        log_err("journal", "%s: %" PRIu64 " record(s) read, %" PRIu64 " expected: not compacted",
                j->path, cp.kept + cp.dropped, journal_count(j));
        rc = -EIO;
        goto out;
    }
    /* each group's first byte: the header, the ordered lines, then the
     * series in the order they first appear (so that the last line is an
     * intact one, as in the old file: a corrupt line last would be taken
     * for damage at the next open) */
    if (PP_VEC_RESERVE(cp.bytes, cp.cap_groups, cp.n_groups + 1, 1) != 0) {
        log_err("journal", "out of memory compacting %s", j->path);
        rc = -ENOMEM;
        goto out;
    }
    cp.bytes[cp.n_groups] = (uint64_t)strlen(JOURNAL_HEADER);
    total = (off_t)(strlen(JOURNAL_HEADER) + cp.ordered_bytes);
    for (size_t g = 0; g < cp.n_groups; g++) {
        uint64_t n = cp.bytes[g];
        cp.bytes[g] = (uint64_t)total;
        total += (off_t)n;
    }

    /* 2. the lines kept, grouped, into a new file beside the journal: its
     * blocks allocated first (a full disk is an error here, not a fault
     * while writing through the mapping) */
    unlink(tmp);
    fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        rc = -errno;
        log_errno("journal", "cannot create %s", tmp);
        goto out;
    }
    if ((rc = -posix_fallocate(fd, 0, total)) < 0) {
        log_err_rc("journal", -rc, "cannot make %s %jd bytes long", tmp, (intmax_t)total);
        goto out;
    }
    map = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        rc = -errno;
        log_errno("journal", "cannot map %s", tmp);
        goto out;
    }
    memcpy(map, JOURNAL_HEADER, strlen(JOURNAL_HEADER));
    if ((rc = compact_place(j, &cp, map)) < 0)
        goto out;
    compact_step(JOURNAL_COMPACT_STEP_WRITTEN);
    /* 3. durable before it takes the journal's name */
    if (msync(map, (size_t)total, MS_SYNC) != 0) {
        rc = -errno;
        log_errno("journal", "cannot write %s", tmp);
        goto out;
    }
    if ((rc = sync_fd(fd, true)) < 0) {
        log_err_rc("journal", -rc, "cannot fsync %s", tmp);
        goto out;
    }
    compact_step(JOURNAL_COMPACT_STEP_SYNCED);
    /* 4. the new file replaces the old one in one step: a crash before the
     * rename leaves the old journal, after it the new one, each whole */
    if (rename(tmp, j->path) != 0) {
        rc = -errno;
        log_errno("journal", "cannot rename %s to %s", tmp, j->path);
        goto out;
    }
    compact_step(JOURNAL_COMPACT_STEP_RENAMED);
    if ((rc = sync_dir(dir)) < 0) {
        /* the rename is done: the journal in use is the new file either way */
        log_warn("journal", "%s: the compacted journal is in place but its directory was not "
                 "synced; a power loss now may bring the old (whole) journal back", j->path);
        rc = 0;
    }
    compact_step(JOURNAL_COMPACT_STEP_DONE);
    if (close(j->fd) != 0)
        log_warn_errno("journal", "closing the old %s", j->path);
    j->fd = fd;
    fd = -1;
    log_info("journal", "%s compacted: %" PRIu64 " record(s) kept in %zu series' groups, %" PRIu64
             " superseded dropped, %jd bytes", j->path, cp.kept, cp.n_groups, cp.dropped,
             (intmax_t)total);
    j->size = total;
    j->count = cp.kept;
    if (dropped != NULL)
        *dropped = cp.dropped;
out:
    if (map != MAP_FAILED)
        munmap(map, (size_t)total);
    if (fd >= 0) {
        close(fd);
        unlink(tmp);
    }
    free(cp.dl_seen);
    free(cp.line_group);
    free(cp.slots);
    free(cp.bytes);
    free(cp.key);
    free(cp.keys.p);
    return rc < 0 ? rc : 0;
}

uint64_t journal_count(const journal *j)
{
    return j ? atomic_load_explicit(&j->count, memory_order_relaxed) : 0;
}

void journal_sync_stats(const journal *j, uint64_t *n, uint64_t *ns)
{
    *n = j ? atomic_load_explicit(&j->n_syncs, memory_order_relaxed) : 0;
    *ns = j ? atomic_load_explicit(&j->sync_ns, memory_order_relaxed) : 0;
}

void journal_close(journal *j)
{
    if (j == NULL)
        return;
    if (j->fd >= 0 && close(j->fd) != 0)
        log_warn_errno("journal", "closing %s", j->path);
    free(j->path);
    free(j->dl);
    free(j);
}
