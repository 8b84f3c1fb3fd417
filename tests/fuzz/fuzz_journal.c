/*
 * fuzz_journal.c — libFuzzer harness for the journal's reader (daemon/journal.c:
 * journal_open_replay, the replay at start-up, with its short cuts: fields
 * split eight bytes at a time, the checksum sixteen at a time, ids taken over
 * from the line before, unescaped text copied whole).
 *
 * Input: the bytes after the header line of a journal.log ("#parkpulse-journal 1").
 * An input that starts with '!' is lines without their checksums: each
 * complete line gets its TAB and checksum here (so that mutations reach the
 * fields, not only the checksum's rejection).
 *
 * Invariants checked, beyond "no crash, no leak, no undefined behaviour":
 *   - the records replayed are exactly those a plain reference reading of the
 *     format (this file: one byte at a time, zlib's crc32, strtod) finds intact,
 *     in order, field for field (values bit for bit), with same_series true
 *     exactly when an O or T record has the park and indicator of the intact
 *     O or T record before it;
 *   - journal_count() is their number, and every record passes the checks the
 *     journal makes before writing one (pp_obs_invalid, pp_target_invalid).
 * The reference skips what the open cuts off: bytes after the last newline
 * (a torn write) and a complete last line with a bad checksum (kept aside).
 */
#include "fuzz.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <zlib.h>

#include "journal.h"
#include "log.h"
#include "model.h"

static char dir[PATH_MAX], jdir[PATH_MAX + 16], jpath[PATH_MAX + 32];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_dir(void) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/pp-fuzz-journal.XXXXXX", base && base[0] ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("fuzz_journal: mkdtemp");
        exit(1);
    }
    atexit(rm_dir);
    snprintf(jdir, sizeof jdir, "%s/j", dir);
    snprintf(jpath, sizeof jpath, "%s/journal.log", jdir);
    log_set_level(0);
    return 0;
}

/* ---- the reference reading ---- */

typedef struct field {
    const char *p;
    size_t n;
} field;

static bool ref_id(field f, char *out)
{
    if (f.n == 0 || f.n > PP_ID_MAX)
        return false;
    if (!((f.p[0] >= 'a' && f.p[0] <= 'z') || (f.p[0] >= '0' && f.p[0] <= '9')))
        return false;
    for (size_t i = 0; i < f.n; i++) {
        char c = f.p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    memcpy(out, f.p, f.n);
    out[f.n] = '\0';
    return true;
}

static bool ref_int(field f, bool neg_ok, long double *out)
{
    size_t i = neg_ok && f.n > 0 && f.p[0] == '-' ? 1 : 0;
    if (i == f.n || f.n - i > 19)
        return false;
    long double v = 0;
    for (; i < f.n; i++) {
        if (f.p[i] < '0' || f.p[i] > '9')
            return false;
        v = v * 10 + (f.p[i] - '0');
    }
    *out = f.p[0] == '-' ? -v : v;
    return true;
}

static bool ref_double(field f, double *out)
{
    char tmp[64];
    if (f.n == 0 || f.n >= 40)
        return false;
    for (size_t i = 0; i < f.n; i++)
        if (!strchr("0123456789-+.e", f.p[i]) || f.p[i] == '\0')
            return false;
    memcpy(tmp, f.p, f.n);
    tmp[f.n] = '\0';
    char *end;
    double v = strtod(tmp, &end);
    if (end != tmp + f.n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool ref_text(field f, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < f.n; i++) {
        char c = f.p[i];
        if (c == '\0')
            return false;
        if (c == '\\') {
            if (++i == f.n)
                return false;
            c = f.p[i] == '\\' ? '\\' : f.p[i] == 't' ? '\t' : f.p[i] == 'n' ? '\n'
                : f.p[i] == 'r' ? '\r' : 0;
            if (c == 0)
                return false;
        }
        if (k + 1 >= cap)
            return false;
        out[k++] = c;
    }
    out[k] = '\0';
    return true;
}

/* 1: line [p, p + n) is an intact record (into r), 0: corrupt with a good
 * checksum, -1: a bad checksum. */
static int ref_line(const char *p, size_t n, journal_record *r)
{
    if (n > 16384 || n < 11 || p[n - 9] != '\t')
        return -1;
    uint32_t want = 0;
    for (size_t i = n - 8; i < n; i++) {
        char c = p[i];
        int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (h < 0)
            return -1;
        want = want << 4 | (uint32_t)h;
    }
    n -= 9;
    if ((uint32_t)crc32(0, (const Bytef *)p, (uInt)n) != want)
        return -1;
    field f[12];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == '\t') {
            if (nf == 11)
                return 0;
            f[nf++] = (field){ p + start, i - start };
            start = i + 1;
        }
    }
    if (nf > 10 || f[0].n != 1)
        return 0;
    memset(r, 0, sizeof *r);
    long double x;
    switch (p[0]) {
    case 'O': {
        pp_obs *o = &r->obs;
        r->type = JREC_OBS;
        if ((nf != 9 && nf != 10) || !ref_int(f[1], true, &x) || x > 9223372036854775807.0L ||
            x < -9223372036854775808.0L || !ref_id(f[2], o->park) || !ref_id(f[3], o->indicator) ||
            f[4].n != 7 || f[4].p[4] != '-' || !ref_double(f[5], &o->value) || f[6].n != 1 ||
            !strchr("APERW", f[6].p[0]) || f[6].p[0] == '\0' ||
            !ref_text(f[7], o->source, sizeof o->source) || !ref_text(f[8], o->note, sizeof o->note))
            return 0;
        o->received_at = (int64_t)x;
        long double y, m;
        if (!ref_int((field){ f[4].p, 4 }, false, &y) || !ref_int((field){ f[4].p + 5, 2 }, false, &m) ||
            m < 1 || m > 12 || y < PP_PERIOD_MIN_YEAR || y > PP_PERIOD_MAX_YEAR)
            return 0;
        o->period = pp_period_make((int)y, (int)m);
        o->status = f[6].p[0];
        if (nf == 10) {
            if (f[9].n < 5 || memcmp(f[9].p, "yoy=", 4) != 0 ||
                !ref_double((field){ f[9].p + 4, f[9].n - 4 }, &o->yoy))
                return 0;
            o->has_yoy = true;
        }
        return 1;
    }
    case 'T': {
        pp_target *t = &r->target;
        r->type = JREC_TARGET;
        if (nf != 7 || !ref_int(f[1], true, &x) || x > 9223372036854775807.0L ||
            x < -9223372036854775808.0L || !ref_id(f[2], t->park) || !ref_id(f[3], t->indicator))
            return 0;
        t->received_at = (int64_t)x;
        if (!ref_int(f[4], true, &x) || x < PP_PERIOD_MIN_YEAR || x > PP_PERIOD_MAX_YEAR ||
            !ref_double(f[5], &t->value) || !ref_text(f[6], t->source, sizeof t->source))
            return 0;
        t->year = (int)x;
        return 1;
    }
    case 'E':
        r->type = JREC_EVENT;
        return nf == 2 && ref_text(f[1], r->event, sizeof r->event) ? 1 : 0;
    case 'D': {
        journal_delivery *d = &r->delivery;
        r->type = JREC_DELIVERY;
        if (nf != 5 || !ref_int(f[1], true, &x) || x > 9223372036854775807.0L ||
            x < -9223372036854775808.0L || f[2].n != 16 || f[3].n == 0 || f[3].n > 20 ||
            !ref_text(f[4], d->name, sizeof d->name) || d->name[0] == '\0')
            return 0;
        d->received_at = (int64_t)x;
        for (size_t i = 0; i < 16; i++) {
            char c = f[2].p[i];
            int h = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (h < 0)
                return 0;
            d->hash = d->hash << 4 | (uint64_t)h;
        }
        for (size_t i = 0; i < f[3].n; i++) {
            if (f[3].p[i] < '0' || f[3].p[i] > '9')
                return 0;
            uint64_t dg = (uint64_t)(f[3].p[i] - '0');
            if (d->size > (UINT64_MAX - dg) / 10)
                return 0;
            d->size = d->size * 10 + dg;
        }
        return 1;
    }
    }
    return 0;
}

/* ---- the replay against it ---- */

typedef struct replayed {
    journal_record *recs;
    size_t n, cap;
} replayed;

static int collect(const journal_record *rec, void *ud)
{
    replayed *c = ud;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 16;
        c->recs = realloc(c->recs, c->cap * sizeof *c->recs);
        FUZZ_ASSERT(c->recs != NULL, "out of memory");
    }
    c->recs[c->n++] = *rec;
    return 0;
}

static void same_record(const journal_record *a, const journal_record *b, size_t k)
{
    FUZZ_ASSERT(a->type == b->type, "record %zu: type %c, reference %c", k, a->type, b->type);
    switch (a->type) {
    case JREC_OBS:
        FUZZ_ASSERT(strcmp(a->obs.park, b->obs.park) == 0 &&
                        strcmp(a->obs.indicator, b->obs.indicator) == 0 &&
                        a->obs.period == b->obs.period && a->obs.status == b->obs.status &&
                        a->obs.received_at == b->obs.received_at &&
                        memcmp(&a->obs.value, &b->obs.value, sizeof(double)) == 0 &&
                        a->obs.has_yoy == b->obs.has_yoy &&
                        (!a->obs.has_yoy || memcmp(&a->obs.yoy, &b->obs.yoy, sizeof(double)) == 0) &&
                        strcmp(a->obs.source, b->obs.source) == 0 &&
                        strcmp(a->obs.note, b->obs.note) == 0,
                    "record %zu: O differs from the reference", k);
        FUZZ_ASSERT(pp_obs_invalid(&a->obs) == NULL, "record %zu: %s", k, pp_obs_invalid(&a->obs));
        break;
    case JREC_TARGET:
        FUZZ_ASSERT(strcmp(a->target.park, b->target.park) == 0 &&
                        strcmp(a->target.indicator, b->target.indicator) == 0 &&
                        a->target.year == b->target.year &&
                        a->target.received_at == b->target.received_at &&
                        memcmp(&a->target.value, &b->target.value, sizeof(double)) == 0 &&
                        strcmp(a->target.source, b->target.source) == 0,
                    "record %zu: T differs from the reference", k);
        FUZZ_ASSERT(pp_target_invalid(&a->target) == NULL, "record %zu: %s", k,
                    pp_target_invalid(&a->target));
        break;
    case JREC_EVENT:
        FUZZ_ASSERT(strcmp(a->event, b->event) == 0, "record %zu: E differs", k);
        break;
    case JREC_DELIVERY:
        FUZZ_ASSERT(a->delivery.received_at == b->delivery.received_at &&
                        a->delivery.hash == b->delivery.hash && a->delivery.size == b->delivery.size &&
                        strcmp(a->delivery.name, b->delivery.name) == 0,
                    "record %zu: D differs", k);
        break;
    }
}

/* The lines of in[0, n) each ended with TAB and its checksum (a malloc'd
 * copy, its length in *out_n); a last line without a newline is kept as is. */
static uint8_t *with_checksums(const uint8_t *in, size_t n, size_t *out_n)
{
    uint8_t *out = malloc(n + (n + 1) * 9 + 1);
    FUZZ_ASSERT(out != NULL, "out of memory");
    size_t k = 0, at = 0;
    while (at < n) {
        const uint8_t *nl = memchr(in + at, '\n', n - at);
        size_t len = nl ? (size_t)(nl - (in + at)) : n - at;
        memcpy(out + k, in + at, len);
        k += len;
        if (nl != NULL) {
            k += (size_t)sprintf((char *)out + k, "\t%08lx\n",
                                 (unsigned long)crc32(0, in + at, (uInt)len));
            len++;
        }
        at += len;
    }
    *out_n = k;
    return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char header[] = "#parkpulse-journal 1\n";
    if (size > (1u << 20))
        return 0;
    uint8_t *fixed = NULL;
    if (size > 0 && data[0] == '!') {
        fixed = with_checksums(data + 1, size - 1, &size);
        data = fixed;
    }
    nftw(jdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    FUZZ_ASSERT(mkdir(jdir, 0750) == 0, "mkdir %s: %s", jdir, strerror(errno));
    int fd = open(jpath, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    FUZZ_ASSERT(fd >= 0, "open %s", jpath);
    FUZZ_ASSERT(write(fd, header, sizeof header - 1) == (ssize_t)(sizeof header - 1) &&
                    (size == 0 || write(fd, data, size) == (ssize_t)size),
                "write %s", jpath);
    close(fd);

    /* the reference: complete lines only; a last one with a bad checksum is cut */
    journal_record *want = calloc(size / 11 + 1, sizeof *want);
    FUZZ_ASSERT(want != NULL, "out of memory");
    size_t n_want = 0, at = 0;
    const char *text = (const char *)data;
    journal_record prev = { .type = JREC_EVENT };
    bool have_prev = false;
    while (at < size) {
        const char *nl = memchr(text + at, '\n', size - at);
        if (nl == NULL)
            break; /* torn: cut off */
        size_t len = (size_t)(nl - (text + at));
        journal_record *r = &want[n_want];
        if (ref_line(text + at, len, r) == 1) {
            if (r->type == JREC_OBS || r->type == JREC_TARGET) {
                const char *pk = r->type == JREC_OBS ? r->obs.park : r->target.park;
                const char *in = r->type == JREC_OBS ? r->obs.indicator : r->target.indicator;
                const char *ppk = prev.type == JREC_OBS ? prev.obs.park : prev.target.park;
                const char *pin = prev.type == JREC_OBS ? prev.obs.indicator : prev.target.indicator;
                r->same_series = have_prev && strcmp(pk, ppk) == 0 && strcmp(in, pin) == 0;
                prev = *r;
                have_prev = true;
            }
            n_want++;
        }
        at += len + 1;
    }

    replayed got = { 0 };
    journal *j = NULL;
    int rc = journal_open_replay(jdir, collect, NULL, &got, &j);
    FUZZ_ASSERT(rc == 0, "journal_open_replay: %d", rc);
    FUZZ_ASSERT(got.n == n_want, "%zu records replayed, the reference finds %zu", got.n, n_want);
    FUZZ_ASSERT(journal_count(j) == n_want, "count %llu, the reference finds %zu",
                (unsigned long long)journal_count(j), n_want);
    for (size_t k = 0; k < got.n; k++) {
        same_record(&got.recs[k], &want[k], k);
        FUZZ_ASSERT(got.recs[k].same_series == want[k].same_series, "record %zu: same_series %d",
                    k, got.recs[k].same_series);
    }
    journal_close(j);
    free(got.recs);
    free(want);
    free(fixed);
    return 0;
}
