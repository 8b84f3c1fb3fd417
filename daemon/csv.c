/*
 * csv.c — the CSV reader of SPEC §3: turns the bytes of one input (a spool
 * file, an exec collector's output, a POST body) into validated observations
 * or targets, or into a list of errors with line numbers and reasons.
 *
 * The work is done in four passes over one buffer: the encoding is settled
 * (UTF-8, BOM stripped, otherwise GB18030 through iconv); an RFC 4180 record
 * reader hands out one record at a time with the physical line it starts on;
 * the header decides the layout (observations, targets or wide) and maps each
 * column to a role; every data record is then checked against the catalogue
 * and turned into pp_obs or pp_target. Bad rows do not stop the reader: it
 * collects every error so that the operator can fix a file in one go. The
 * reader is pure: no file I/O, no global state, nothing logged.
 */
#include "csv.h"

#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WHY_MAX 320 /* = sizeof(csv_error.reason) */
#define SHOW_MAX 96 /* bytes of an offending text quoted in a reason */

/* ======================================================================
 * Small helpers
 * ====================================================================== */

/* Copies s into buf for quoting in a message: at most SHOW_MAX bytes, cut at
 * a character boundary, with "…" when cut. */
static const char *show(const char *s, char *buf, size_t len)
{
    if (s == NULL)
        s = "";
    size_t n = text_copy_utf8(buf, len, s);
    if (s[n] != '\0' && len > 8) {
        n = text_copy_utf8(buf, len - 3, s);
        memcpy(buf + n, "\xE2\x80\xA6", 4);
    }
    return buf;
}

static void set_why(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t whylen, const char *fmt, ...)
{
    if (why == NULL || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    if (n < 0)
        why[0] = '\0';
    else if ((size_t)n >= whylen) /* never leave half a UTF-8 character */
        text_copy_utf8(why, whylen, why);
}

static void ascii_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Copies at most cap-1 bytes of src into dst, folds full-width characters and
 * trims. Returns -1 when src does not fit. */
static int fold_copy(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        return -1;
    memcpy(dst, src, n + 1);
    text_fold_ascii(dst);
    text_trim(dst);
    return 0;
}

static bool starts(const char *p, const char *prefix)
{
    return strncmp(p, prefix, strlen(prefix)) == 0;
}

size_t csv_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la == 0)
        return lb;
    if (lb == 0)
        return la;
    size_t *row = malloc((lb + 1) * sizeof *row);
    if (row == NULL)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}

/* The "did you mean" machinery: keeps the closest candidate seen. */
typedef struct {
    const char *key;
    char lower[CSV_MAX_FIELD + 1];
    const char *best;
    size_t dist;
} suggester;

static void suggest_init(suggester *sg, const char *key)
{
    sg->key = key;
    text_copy_utf8(sg->lower, sizeof sg->lower, key);
    ascii_lower(sg->lower);
    sg->best = NULL;
    sg->dist = SIZE_MAX;
}

static void suggest_try(suggester *sg, const char *cand)
{
    if (cand == NULL || cand[0] == '\0')
        return;
    size_t d = csv_edit_distance(sg->lower, cand);
    if (d < sg->dist) {
        sg->dist = d;
        sg->best = cand;
    }
}

/* Writes "unknown <what> '<key>'" and, when a candidate is close enough,
 * " (did you mean '<best>'?)". */
static void suggest_why(const suggester *sg, const char *what, char *why, size_t whylen)
{
    char k[SHOW_MAX + 4];
    size_t len = strlen(sg->key), limit = len / 3 > 2 ? len / 3 : 2;
    show(sg->key, k, sizeof k);
    if (sg->best != NULL && sg->dist <= limit)
        set_why(why, whylen, "unknown %s '%s' (did you mean '%s'?)", what, k, sg->best);
    else
        set_why(why, whylen, "unknown %s '%s'", what, k);
}

static const pp_park *find_park(const pp_catalog *cat, const char *key, char *why, size_t whylen)
{
    if (key[0] == '\0') {
        set_why(why, whylen, "missing park");
        return NULL;
    }
    const pp_park *pk = pp_catalog_park(cat, key);
    if (pk != NULL)
        return pk;
    suggester sg;
    suggest_init(&sg, key);
    for (size_t i = 0; i < cat->n_parks; i++) {
        suggest_try(&sg, cat->parks[i].id);
        suggest_try(&sg, cat->parks[i].name);
    }
    suggest_why(&sg, "park", why, whylen);
    return NULL;
}

static const pp_indicator *find_indicator(const pp_catalog *cat, const char *key,
                                          const char *what, char *why, size_t whylen)
{
    if (key[0] == '\0') {
        set_why(why, whylen, "missing indicator");
        return NULL;
    }
    const pp_indicator *ind = pp_catalog_indicator(cat, key);
    if (ind == NULL) {
        /* labels typed with full-width characters folded by a spreadsheet */
        char folded[CSV_MAX_FIELD + 1];
        if (fold_copy(folded, sizeof folded, key) == 0)
            ind = pp_catalog_indicator(cat, folded);
    }
    if (ind != NULL)
        return ind;
    suggester sg;
    suggest_init(&sg, key);
    for (size_t i = 0; i < cat->n_indicators; i++) {
        suggest_try(&sg, cat->indicators[i].id);
        suggest_try(&sg, cat->indicators[i].label);
    }
    suggest_why(&sg, what, why, whylen);
    return NULL;
}

/* ======================================================================
 * Periods
 * ====================================================================== */

/* A number 1..99 written in ASCII digits (up to 3 digits, so that "13" and
 * "100" reach the range check) or in Chinese numerals (一 … 十二, 两).
 * Advances *pp; returns -1 when there is no number. */
static int parse_small_number(const char **pp)
{
    const char *p = *pp;
    if (isdigit((unsigned char)*p)) {
        int v = 0, n = 0;
        while (isdigit((unsigned char)*p) && n < 3) {
            v = v * 10 + (*p - '0');
            p++, n++;
        }
        if (isdigit((unsigned char)*p))
            return -1;
        *pp = p;
        return v;
    }
    static const char *const digits[] = {"一", "二", "三", "四", "五", "六", "七", "八", "九"};
    int tens = -1, units = 0;
    for (int pass = 0; pass < 3; pass++) {
        int d = 0;
        if (starts(p, "两")) {
            d = 2;
        } else {
            for (int i = 0; i < 9; i++)
                if (starts(p, digits[i]))
                    d = i + 1;
        }
        if (d > 0 && units == 0) {
            units = d;
            p += 3;
        } else if (starts(p, "十") && tens < 0) {
            tens = units > 0 ? units : 1;
            units = 0;
            p += 3;
        } else {
            break;
        }
    }
    int v = (tens > 0 ? tens * 10 : 0) + units;
    if (v == 0)
        return -1;
    *pp = p;
    return v;
}

/* Replaces the dashes and tildes people put in ranges by '-' and drops all
 * spaces; out has room for strlen(in)+1 bytes. */
static void normalise_ranges(const char *in, char *out)
{
    static const char *const dashes[] = {"\xE2\x80\x94", /* — em dash */
                                         "\xE2\x80\x93", /* – en dash */
                                         "\xE2\x80\x95", /* ― horizontal bar */
                                         "\xE2\x88\x92", /* − minus sign */
                                         "\xE3\x80\x9C", /* 〜 wave dash */
                                         "\xE8\x87\xB3", /* 至 */
                                         "~"};
    while (*in) {
        size_t k, n = 0;
        if (*in == ' ' || *in == '\t') {
            in++;
            continue;
        }
        for (k = 0; k < sizeof dashes / sizeof dashes[0]; k++) {
            n = strlen(dashes[k]);
            if (strncmp(in, dashes[k], n) == 0)
                break;
        }
        if (k < sizeof dashes / sizeof dashes[0]) {
            *out++ = '-';
            in += n;
        } else {
            *out++ = *in++;
        }
    }
    *out = '\0';
}

int csv_parse_period(const char *s, int *period, char *why, size_t whylen)
{
    char raw[128], buf[128], k[SHOW_MAX + 4];
    int year = 0, month = -1, first = 1, quarter = -1;
    const char *p;

    if (s == NULL || fold_copy(raw, sizeof raw, s) < 0) {
        set_why(why, whylen, "bad period '%s': too long", show(s, k, sizeof k));
        return -1;
    }
    show(raw, k, sizeof k);
    if (raw[0] == '\0') {
        set_why(why, whylen, "missing period");
        return -1;
    }
    normalise_ranges(raw, buf);
    p = buf;
    for (int i = 0; i < 4; i++, p++) {
        if (!isdigit((unsigned char)*p))
            goto not_period;
        year = year * 10 + (*p - '0');
    }
    if (isdigit((unsigned char)p[0]) && isdigit((unsigned char)p[1]) && p[2] == '\0') {
        month = (p[0] - '0') * 10 + (p[1] - '0'); /* 202411 */
        p += 2;
    } else if (*p == '-' || *p == '/' || *p == 'M' || *p == 'm') {
        p++;
        if (!isdigit((unsigned char)*p) || (month = parse_small_number(&p)) < 0)
            goto not_period;
    } else if (*p == 'Q' || *p == 'q') {
        p++;
        if (!isdigit((unsigned char)*p) || (quarter = parse_small_number(&p)) < 0)
            goto not_period;
    } else if (starts(p, "年")) {
        p += strlen("年");
        if (starts(p, "全年")) {
            month = 12, p += strlen("全年");
        } else if (starts(p, "上半年")) {
            month = 6, p += strlen("上半年");
        } else if (starts(p, "前")) {
            p += strlen("前");
            int n = parse_small_number(&p);
            if (n < 0)
                goto not_period;
            if (starts(p, "季度"))
                quarter = n, p += strlen("季度");
            else if (starts(p, "个月"))
                month = n, p += strlen("个月");
            else if (starts(p, "月"))
                month = n, p += strlen("月");
            else
                goto not_period;
        } else {
            if (starts(p, "第"))
                p += strlen("第");
            int n = parse_small_number(&p);
            if (n < 0)
                goto not_period;
            if (starts(p, "季度")) {
                quarter = n, p += strlen("季度");
            } else if (*p == '-') {
                p++;
                first = n;
                if ((month = parse_small_number(&p)) < 0 || !starts(p, "月"))
                    goto not_period;
                p += strlen("月");
            } else if (starts(p, "月")) {
                month = n, p += strlen("月");
            } else {
                goto not_period;
            }
        }
        if (starts(p, "份"))
            p += strlen("份");
        if (starts(p, "累计"))
            p += strlen("累计");
    } else {
        goto not_period;
    }
    if (*p != '\0')
        goto not_period;
    if (quarter >= 0) {
        if (quarter < 1 || quarter > 4) {
            set_why(why, whylen, "bad period '%s': quarter must be 1..4", k);
            return -1;
        }
        month = quarter * 3;
    }
    if (month < 1 || month > 12) {
        set_why(why, whylen, "bad period '%s': month must be 1..12", k);
        return -1;
    }
    if (first != 1) {
        set_why(why, whylen,
                "bad period '%s': a range must start at month 1 (figures are cumulative from "
                "January)",
                k);
        return -1;
    }
    /* the range every input and the RRD files share (model.h) */
    const char *range = pp_period_range_why(pp_period_make(year, month));
    if (range != NULL) {
        set_why(why, whylen, "bad period '%s': %s", k, range);
        return -1;
    }
    *period = pp_period_make(year, month);
    return 0;
not_period:
    set_why(why, whylen, "bad period '%s': not a period (e.g. 2024-11 or 2024年1-11月)", k);
    return -1;
}

/* ======================================================================
 * Values and units
 * ====================================================================== */

typedef struct {
    const char *name;
    int family; /* 1 renminbi, 2 US dollars */
    double factor;
} money_unit;

static const money_unit money_units[] = {
    {"元", 1, 1.0},     {"千元", 1, 1e3},     {"万元", 1, 1e4},     {"亿元", 1, 1e8},
    {"美元", 2, 1.0}, {"千美元", 2, 1e3}, {"万美元", 2, 1e4}, {"亿美元", 2, 1e8},
};

/* Units that are never converted but are known, so that a typo is told apart
 * from a unit that merely differs from the indicator's. */
static const char *const plain_units[] = {"%", "‰", "个", "位", "项", "家", "人", "户",
                                          "亩", "公顷", "吨", "千瓦时", "万千瓦时", "平方米",
                                          "万平方米", "名", "次"};

static const money_unit *find_money(const char *u)
{
    for (size_t i = 0; i < sizeof money_units / sizeof money_units[0]; i++)
        if (strcmp(money_units[i].name, u) == 0)
            return &money_units[i];
    return NULL;
}

static bool known_plain(const char *u)
{
    for (size_t i = 0; i < sizeof plain_units / sizeof plain_units[0]; i++)
        if (strcmp(plain_units[i], u) == 0)
            return true;
    return false;
}

static bool is_missing_marker(const char *v)
{
    static const char *const markers[] = {"",     "-",  "--", "—", "——", "n/a", "na",
                                          "/",    "…",  "……", "...", "\xE2\x88\x92"};
    for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++)
        if (strcasecmp(v, markers[i]) == 0)
            return true;
    return false;
}

/* Reads the number at the start of v into clean (ASCII, no separators) and
 * returns a pointer past it, or NULL when v does not start with a number or
 * its thousands separators are misplaced. */
static const char *scan_number(const char *v, char *clean, size_t cap, bool *bad_grouping)
{
    const char *p = v;
    size_t n = 0, digits = 0, group = 0, groups = 0;
    bool commas = false;

    *bad_grouping = false;
    if (starts(p, "\xE2\x88\x92")) { /* − U+2212 */
        clean[n++] = '-';
        p += 3;
    } else if (*p == '-' || *p == '+') {
        clean[n++] = *p++;
    }
    while (*p == ' ')
        p++;
    for (; isdigit((unsigned char)*p) || *p == ','; p++) {
        if (*p == ',') {
            /* the first group has 1..3 digits, every later one exactly 3 */
            if (group == 0 || (groups == 0 && group > 3) || (groups > 0 && group != 3))
                *bad_grouping = true;
            commas = true;
            groups++;
            group = 0;
            continue;
        }
        if (n + 2 >= cap)
            return NULL;
        clean[n++] = *p;
        digits++;
        group++;
    }
    if (commas && group != 3)
        *bad_grouping = true;
    if (*p == '.') {
        clean[n++] = *p++;
        for (; isdigit((unsigned char)*p); p++) {
            if (n + 2 >= cap)
                return NULL;
            clean[n++] = *p;
            digits++;
        }
    }
    clean[n] = '\0';
    return digits > 0 ? p : NULL;
}

int csv_parse_value(const char *s, const char *unit_col, const char *to_unit, double *value,
                    char *why, size_t whylen)
{
    char v[256], ucol[128], uto[128], clean[128], k[SHOW_MAX + 4];
    bool bad_grouping;
    const char *rest, *unit;

    if (s == NULL)
        return 0;
    if (fold_copy(v, sizeof v, s) < 0) {
        set_why(why, whylen, "bad value '%s': too long", show(s, k, sizeof k));
        return -1;
    }
    show(v, k, sizeof k);
    if (is_missing_marker(v))
        return 0;
    rest = scan_number(v, clean, sizeof clean, &bad_grouping);
    if (rest == NULL) {
        set_why(why, whylen, "bad value '%s': not a number", k);
        return -1;
    }
    if (bad_grouping) {
        set_why(why, whylen, "bad value '%s': misplaced thousands separator", k);
        return -1;
    }
    while (*rest == ' ')
        rest++;
    for (const char *q = rest; *q; q++) {
        if (isdigit((unsigned char)*q) || *q == '.' || *q == ',' || *q == '-' || *q == '+') {
            set_why(why, whylen, "bad value '%s': not a number", k);
            return -1;
        }
    }
    char *end = NULL;
    errno = 0;
    double x = strtod(clean, &end);
    if (end == clean || *end != '\0' || !isfinite(x) || errno == ERANGE) {
        set_why(why, whylen, "bad value '%s': not a finite number", k);
        return -1;
    }

    if (unit_col == NULL)
        unit_col = "";
    if (to_unit == NULL)
        to_unit = "";
    if (fold_copy(ucol, sizeof ucol, unit_col) < 0 || fold_copy(uto, sizeof uto, to_unit) < 0) {
        set_why(why, whylen, "bad unit: too long");
        return -1;
    }
    unit = rest;
    if (unit[0] != '\0' && ucol[0] != '\0' && strcmp(unit, ucol) != 0) {
        char a[SHOW_MAX + 4], b[SHOW_MAX + 4];
        set_why(why, whylen, "unit '%s' in the value disagrees with unit column '%s'",
                show(unit, a, sizeof a), show(ucol, b, sizeof b));
        return -1;
    }
    if (unit[0] == '\0')
        unit = ucol;
    if (unit[0] != '\0' && strcmp(unit, uto) != 0) {
        const money_unit *from = find_money(unit), *to = find_money(uto);
        char a[SHOW_MAX + 4], b[SHOW_MAX + 4];
        show(unit, a, sizeof a);
        show(uto, b, sizeof b);
        if (from == NULL && !known_plain(unit)) {
            set_why(why, whylen, "unknown unit '%s'", a);
            return -1;
        }
        if (uto[0] == '\0') {
            set_why(why, whylen, "unit '%s' given but the indicator has no unit", a);
            return -1;
        }
        if (from == NULL || to == NULL) {
            set_why(why, whylen, "unit '%s' does not match the indicator's unit '%s'", a, b);
            return -1;
        }
        if (from->family != to->family) {
            set_why(why, whylen, "unit '%s' cannot be converted to '%s' (never converts currencies)",
                    a, b);
            return -1;
        }
        /* factors are exact powers of ten: multiply by an exact integer ratio
         * or divide by one, never multiply by an inexact 1e-4 */
        if (from->factor >= to->factor)
            x *= from->factor / to->factor;
        else
            x /= to->factor / from->factor;
    }
    *value = x;
    return 1;
}

/* ======================================================================
 * The RFC 4180 record reader
 * ====================================================================== */

typedef struct {
    const char *p, *end;
    int line; /* physical line of p */
} reader;

typedef struct {
    char *buf;
    size_t len, cap;
    size_t off[CSV_MAX_COLUMNS];
    bool quoted[CSV_MAX_COLUMNS];
    size_t n;            /* fields */
    int line;            /* where the record starts */
    char problem[WHY_MAX]; /* first problem of the record, "" if none */
} record;

typedef struct dup_entry {
    int a, b, c; /* park index, indicator index, period or year */
    int line;    /* 0: free slot */
} dup_entry;

typedef struct {
    const pp_catalog *cat;
    csv_result *out;
    size_t cap_obs, cap_targets, cap_errors;
    dup_entry *dups;
    size_t n_dups, cap_dups;
    bool fatal; /* stop reading: out of memory or a whole-input error */
} parser;

static void add_error(parser *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void add_error(parser *ps, int line, const char *fmt, ...)
{
    csv_result *r = ps->out;
    r->n_errors_total++;
    if (r->n_errors >= CSV_MAX_ERRORS)
        return;
    if (r->n_errors == ps->cap_errors) {
        size_t nc = ps->cap_errors ? ps->cap_errors * 2 : 16;
        if (nc > CSV_MAX_ERRORS)
            nc = CSV_MAX_ERRORS;
        csv_error *ne = realloc(r->errors, nc * sizeof *ne);
        if (ne == NULL) {
            ps->fatal = true; /* counted above, so the input is refused anyway */
            return;
        }
        r->errors = ne;
        ps->cap_errors = nc;
    }
    csv_error *e = &r->errors[r->n_errors++];
    e->line = line;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
    if (n < 0)
        snprintf(e->reason, sizeof e->reason, "unreadable row");
    else if ((size_t)n >= sizeof e->reason)
        text_copy_utf8(e->reason, sizeof e->reason, e->reason);
}

static void out_of_memory(parser *ps)
{
    if (!ps->fatal)
        add_error(ps, 0, "out of memory");
    ps->fatal = true;
}

/* Appends one byte to the record being read; a field over CSV_MAX_FIELD bytes
 * marks the record bad and is cut. Returns -1 when out of memory. */
static int rec_put(parser *ps, record *rec, size_t *flen, char ch)
{
    if (ch != '\0') {
        if (*flen >= CSV_MAX_FIELD) {
            if (rec->problem[0] == '\0')
                snprintf(rec->problem, sizeof rec->problem,
                         "field %zu is longer than %d bytes", rec->n + 1, CSV_MAX_FIELD);
            return 0;
        }
        (*flen)++;
    }
    if (rec->len == rec->cap) {
        size_t nc = rec->cap ? rec->cap * 2 : 1024;
        char *nb = realloc(rec->buf, nc);
        if (nb == NULL) {
            out_of_memory(ps);
            return -1;
        }
        rec->buf = nb;
        rec->cap = nc;
    }
    rec->buf[rec->len++] = ch;
    return 0;
}

/* Reads one record. Returns 1 with the record, 0 at the end of the input,
 * -1 when reading cannot go on (the error is recorded). */
static int read_record(parser *ps, reader *rd, record *rec)
{
    rec->len = 0;
    rec->n = 0;
    rec->problem[0] = '\0';
    if (rd->p >= rd->end)
        return 0;
    rec->line = rd->line;
    for (;;) {
        size_t flen = 0;
        if (rec->n == CSV_MAX_COLUMNS) {
            add_error(ps, 0, "line %d has more than %d columns", rec->line, CSV_MAX_COLUMNS);
            ps->fatal = true;
            return -1;
        }
        rec->off[rec->n] = rec->len;
        while (rd->p < rd->end && (*rd->p == ' ' || *rd->p == '\t'))
            rd->p++;
        rec->quoted[rec->n] = rd->p < rd->end && *rd->p == '"';
        if (rec->quoted[rec->n]) {
            rd->p++;
            for (;;) {
                if (rd->p >= rd->end) {
                    add_error(ps, rec->line,
                              "unterminated quoted field: the quote runs to the end of the input");
                    ps->fatal = true;
                    return -1;
                }
                char ch = *rd->p++;
                if (ch == '"') {
                    if (rd->p < rd->end && *rd->p == '"')
                        rd->p++;
                    else
                        break;
                } else if (ch == '\n' || (ch == '\r' && (rd->p >= rd->end || *rd->p != '\n'))) {
                    rd->line++;
                }
                if (rec_put(ps, rec, &flen, ch) < 0)
                    return -1;
            }
            while (rd->p < rd->end && (*rd->p == ' ' || *rd->p == '\t'))
                rd->p++;
            if (rd->p < rd->end && *rd->p != ',' && *rd->p != '\n' && *rd->p != '\r') {
                if (rec->problem[0] == '\0')
                    snprintf(rec->problem, sizeof rec->problem,
                             "field %zu has text after its closing quote", rec->n + 1);
                while (rd->p < rd->end && *rd->p != ',' && *rd->p != '\n' && *rd->p != '\r')
                    rd->p++;
            }
        } else {
            while (rd->p < rd->end && *rd->p != ',' && *rd->p != '\n' && *rd->p != '\r')
                if (rec_put(ps, rec, &flen, *rd->p++) < 0)
                    return -1;
        }
        if (rec_put(ps, rec, &flen, '\0') < 0)
            return -1;
        rec->n++;
        if (rd->p >= rd->end)
            return 1; /* last line without a newline */
        char ch = *rd->p++;
        if (ch == ',')
            continue;
        if (ch == '\r' && rd->p < rd->end && *rd->p == '\n')
            rd->p++;
        rd->line++;
        return 1;
    }
}

/* Field i of a complete record; unquoted fields are trimmed. */
static char *field(record *rec, size_t i)
{
    char *f = rec->buf + rec->off[i];
    return rec->quoted[i] ? f : text_trim(f);
}

static bool record_blank(record *rec)
{
    for (size_t i = 0; i < rec->n; i++)
        if (field(rec, i)[0] != '\0')
            return false;
    return true;
}

/* ======================================================================
 * Duplicates: an open-addressing table of (park, indicator, period) → line
 * ====================================================================== */

static size_t dup_hash(int a, int b, int c)
{
    uint64_t h = (uint64_t)(unsigned)a * 0x9E3779B97F4A7C15u;
    h ^= (uint64_t)(unsigned)b * 0xC2B2AE3D27D4EB4Fu;
    h ^= (uint64_t)(unsigned)c * 0x165667B19E3779F9u;
    h ^= h >> 29;
    return (size_t)h;
}

/* Returns the line of an earlier entry with this key, or 0 when there is
 * none (then, with insert, the key is entered with line), -1 when out of
 * memory. */
static int dup_check(parser *ps, int a, int b, int c, int line, bool insert)
{
    if (2 * (ps->n_dups + 1) > ps->cap_dups) {
        size_t nc = ps->cap_dups ? ps->cap_dups * 2 : 256;
        dup_entry *nt = calloc(nc, sizeof *nt);
        if (nt == NULL)
            return -1;
        for (size_t i = 0; i < ps->cap_dups; i++) {
            dup_entry *e = &ps->dups[i];
            if (e->line == 0)
                continue;
            size_t j = dup_hash(e->a, e->b, e->c) & (nc - 1);
            while (nt[j].line != 0)
                j = (j + 1) & (nc - 1);
            nt[j] = *e;
        }
        free(ps->dups);
        ps->dups = nt;
        ps->cap_dups = nc;
    }
    size_t j = dup_hash(a, b, c) & (ps->cap_dups - 1);
    while (ps->dups[j].line != 0) {
        dup_entry *e = &ps->dups[j];
        if (e->a == a && e->b == b && e->c == c)
            return e->line;
        j = (j + 1) & (ps->cap_dups - 1);
    }
    if (!insert)
        return 0;
    ps->dups[j] = (dup_entry){a, b, c, line};
    ps->n_dups++;
    return 0;
}

/* ======================================================================
 * Header
 * ====================================================================== */

typedef enum {
    COL_UNKNOWN = 0,
    COL_EMPTY, /* no name: tolerated while its cells stay empty */
    COL_PARK,
    COL_INDICATOR,
    COL_PERIOD,
    COL_VALUE,
    COL_UNIT,
    COL_STATUS,
    COL_SOURCE,
    COL_NOTE,
    COL_YEAR,
    COL_TARGET,
    COL_WIDE, /* an indicator column of a wide table */
    COL_N
} col_role;

typedef struct {
    col_role role;
    const char *english;
    const char *chinese[3];
} col_name;

static const col_name col_names[] = {
    {COL_PARK, "park", {"园区", NULL, NULL}},
    {COL_INDICATOR, "indicator", {"指标", NULL, NULL}},
    {COL_PERIOD, "period", {"期间", "时间", NULL}},
    {COL_VALUE, "value", {"数值", "值", NULL}},
    {COL_UNIT, "unit", {"单位", NULL, NULL}},
    {COL_STATUS, "status", {"状态", NULL, NULL}},
    {COL_SOURCE, "source", {"来源", NULL, NULL}},
    {COL_NOTE, "note", {"备注", NULL, NULL}},
    {COL_YEAR, "year", {"年度", "年份", NULL}},
    {COL_TARGET, "target", {"目标", NULL, NULL}},
};

static const char *role_name(col_role r)
{
    for (size_t i = 0; i < sizeof col_names / sizeof col_names[0]; i++)
        if (col_names[i].role == r)
            return col_names[i].english;
    return "?";
}

static col_role header_role(const char *raw)
{
    char name[CSV_MAX_FIELD + 1];
    if (fold_copy(name, sizeof name, raw) < 0)
        return COL_UNKNOWN;
    if (name[0] == '\0')
        return COL_EMPTY;
    for (size_t i = 0; i < sizeof col_names / sizeof col_names[0]; i++) {
        if (strcasecmp(name, col_names[i].english) == 0)
            return col_names[i].role;
        for (size_t j = 0; j < 3 && col_names[i].chinese[j]; j++)
            if (strcmp(name, col_names[i].chinese[j]) == 0)
                return col_names[i].role;
    }
    return COL_UNKNOWN;
}

typedef struct {
    size_t ncols;
    col_role role[CSV_MAX_COLUMNS];
    const pp_indicator *ind[CSV_MAX_COLUMNS]; /* for COL_WIDE */
    char name[CSV_MAX_COLUMNS][SHOW_MAX + 4]; /* for messages */
    int at[COL_N];                            /* column of each role, -1 if absent */
} header;

/* "unknown column 'X'" with a did-you-mean over the known column names,
 * written into why (WHY_MAX bytes). */
static const char *unknown_column(record *rec, size_t i, char *why)
{
    suggester sg;
    suggest_init(&sg, field(rec, i));
    for (size_t k = 0; k < sizeof col_names / sizeof col_names[0]; k++) {
        suggest_try(&sg, col_names[k].english);
        for (size_t j = 0; j < 3 && col_names[k].chinese[j]; j++)
            suggest_try(&sg, col_names[k].chinese[j]);
    }
    suggest_why(&sg, "column", why, WHY_MAX);
    return why;
}

/* Reads the header record; returns 0 when the layout is settled, -1 after
 * recording errors. */
static int read_header(parser *ps, record *rec, header *h)
{
    csv_result *r = ps->out;
    int line = rec->line, bad = 0;
    char why[WHY_MAX];

    if (rec->problem[0] != '\0') {
        add_error(ps, line, "header: %s", rec->problem);
        return -1;
    }
    h->ncols = rec->n;
    for (int i = 0; i < COL_N; i++)
        h->at[i] = -1;
    for (size_t i = 0; i < rec->n; i++) {
        const char *f = field(rec, i);
        show(f, h->name[i], sizeof h->name[i]);
        h->role[i] = header_role(f);
        h->ind[i] = NULL;
        col_role ro = h->role[i];
        if (ro == COL_UNKNOWN || ro == COL_EMPTY)
            continue;
        if (h->at[ro] >= 0) {
            add_error(ps, line, "duplicate column '%s' (columns %d and %zu are both '%s')",
                      h->name[i], h->at[ro] + 1, i + 1, role_name(ro));
            bad++;
            continue;
        }
        h->at[ro] = (int)i;
    }
    if (bad)
        return -1;

    static const col_role obs_req[] = {COL_PARK, COL_INDICATOR, COL_PERIOD, COL_VALUE};
    static const col_role tgt_req[] = {COL_PARK, COL_INDICATOR, COL_YEAR, COL_TARGET};
    const col_role *req = NULL;
    size_t nreq = 4;
    if (h->at[COL_YEAR] >= 0 || h->at[COL_TARGET] >= 0) {
        r->layout = CSV_LAYOUT_TARGETS;
        req = tgt_req;
    } else if (h->at[COL_INDICATOR] >= 0 || h->at[COL_VALUE] >= 0 || h->at[COL_PARK] < 0 ||
               h->at[COL_PERIOD] < 0) {
        r->layout = CSV_LAYOUT_OBSERVATIONS;
        req = obs_req;
    } else {
        r->layout = CSV_LAYOUT_WIDE;
        nreq = 0;
    }
    for (size_t i = 0; i < nreq; i++) {
        if (h->at[req[i]] < 0) {
            add_error(ps, line, "missing column '%s' in the header", role_name(req[i]));
            bad++;
        }
    }

    for (size_t i = 0; i < h->ncols; i++) {
        col_role ro = h->role[i];
        switch (r->layout) {
        case CSV_LAYOUT_OBSERVATIONS:
            if (ro == COL_UNKNOWN) {
                add_error(ps, line, "%s (an observations file has park, indicator, period, "
                          "value, unit, status, source, note)", unknown_column(rec, i, why));
                bad++;
            }
            break;
        case CSV_LAYOUT_TARGETS:
            if (ro == COL_UNKNOWN) {
                add_error(ps, line, "%s (a targets file has park, indicator, year, target, "
                          "unit, source, note)", unknown_column(rec, i, why));
                bad++;
            } else if (ro == COL_PERIOD || ro == COL_VALUE || ro == COL_STATUS) {
                add_error(ps, line, "column '%s' does not belong in a targets file", h->name[i]);
                bad++;
            }
            break;
        case CSV_LAYOUT_WIDE:
            if (ro == COL_UNIT) {
                add_error(ps, line,
                          "column '%s' is ambiguous in a wide table (write the unit in the "
                          "cells)",
                          h->name[i]);
                bad++;
            } else if (ro == COL_UNKNOWN) {
                const char *f = field(rec, i);
                const pp_indicator *ind =
                    find_indicator(ps->cat, f, "indicator column", why, sizeof why);
                if (ind == NULL) {
                    add_error(ps, line, "%s", why);
                    bad++;
                    continue;
                }
                for (size_t j = 0; j < i; j++) {
                    if (h->ind[j] == ind) {
                        add_error(ps, line, "duplicate column '%s': column %zu is also '%s'",
                                  h->name[i], j + 1, ind->id);
                        bad++;
                    }
                }
                h->role[i] = COL_WIDE;
                h->ind[i] = ind;
            }
            break;
        default:
            break;
        }
    }
    if (r->layout == CSV_LAYOUT_WIDE && bad == 0) {
        size_t n_ind = 0;
        for (size_t i = 0; i < h->ncols; i++)
            n_ind += h->role[i] == COL_WIDE;
        if (n_ind == 0) {
            add_error(ps, line, "a wide table (park, period, …) needs at least one indicator column");
            bad++;
        }
    }
    return bad ? -1 : 0;
}

/* ======================================================================
 * Rows
 * ====================================================================== */

static int push_obs(parser *ps, const pp_obs *o)
{
    csv_result *r = ps->out;
    if (r->n_obs == ps->cap_obs) {
        size_t nc = ps->cap_obs ? ps->cap_obs * 2 : 64;
        pp_obs *no = realloc(r->obs, nc * sizeof *no);
        if (no == NULL)
            return -1;
        r->obs = no;
        ps->cap_obs = nc;
    }
    r->obs[r->n_obs++] = *o;
    return 0;
}

static int push_target(parser *ps, const pp_target *t)
{
    csv_result *r = ps->out;
    if (r->n_targets == ps->cap_targets) {
        size_t nc = ps->cap_targets ? ps->cap_targets * 2 : 16;
        pp_target *nt = realloc(r->targets, nc * sizeof *nt);
        if (nt == NULL)
            return -1;
        r->targets = nt;
        ps->cap_targets = nc;
    }
    r->targets[r->n_targets++] = *t;
    return 0;
}

/* The cell of a role, or "" when the layout has no such column. */
static const char *cell(record *rec, const header *h, col_role ro)
{
    return h->at[ro] >= 0 ? field(rec, (size_t)h->at[ro]) : "";
}

static int parse_status(const char *s, char *status, char *why, size_t whylen)
{
    char v[16], k[SHOW_MAX + 4];
    if (fold_copy(v, sizeof v, s) < 0)
        v[0] = '?', v[1] = '\0';
    if (v[0] == '\0') {
        *status = 'A';
        return 0;
    }
    if (v[1] == '\0' && strchr("APERaper", v[0]) != NULL) {
        *status = (char)toupper((unsigned char)v[0]);
        return 0;
    }
    set_why(why, whylen, "bad status '%s': must be A, P, E or R", show(s, k, sizeof k));
    return -1;
}

static int parse_year(const char *s, int *year, char *why, size_t whylen)
{
    char v[32], k[SHOW_MAX + 4];
    int y = 0, n = 0;
    show(s, k, sizeof k);
    if (s[0] == '\0') {
        set_why(why, whylen, "missing year");
        return -1;
    }
    if (fold_copy(v, sizeof v, s) < 0)
        goto bad;
    const char *p = v;
    for (; isdigit((unsigned char)*p); p++, n++)
        if (n < 4) /* more digits are refused below; never overflow y */
            y = y * 10 + (*p - '0');
    if (starts(p, "年"))
        p += strlen("年");
    if (n != 4 || *p != '\0')
        goto bad;
    const char *range = pp_year_range_why(y);
    if (range != NULL) {
        set_why(why, whylen, "bad year '%s': %s", k, range);
        return -1;
    }
    *year = y;
    return 0;
bad:
    set_why(why, whylen, "bad year '%s': expected e.g. 2021 or 2021年", k);
    return -1;
}

/* Fields of a record against the header's columns: returns -1 with a reason
 * when the counts differ (an extra empty cell is tolerated), or a value in an
 * unnamed column. */
static int check_shape(record *rec, const header *h, char *why, size_t whylen)
{
    if (rec->problem[0] != '\0') {
        set_why(why, whylen, "%s", rec->problem);
        return -1;
    }
    size_t n = rec->n;
    while (n > h->ncols && field(rec, n - 1)[0] == '\0')
        n--;
    if (n != h->ncols) {
        set_why(why, whylen, "the row has %zu fields, the header has %zu", rec->n, h->ncols);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (h->role[i] == COL_EMPTY && field(rec, i)[0] != '\0') {
            set_why(why, whylen, "a value in column %zu, which has no name in the header", i + 1);
            return -1;
        }
    }
    return 0;
}

static int dup_or_oom(parser *ps, int a, int b, int c, int line, bool insert, char *why,
                      size_t whylen)
{
    int prev = dup_check(ps, a, b, c, line, insert);
    if (prev < 0) {
        out_of_memory(ps);
        return -1;
    }
    if (prev > 0) {
        set_why(why, whylen, "duplicate of line %d", prev);
        return -1;
    }
    return 0;
}

static void row_observation(parser *ps, record *rec, const header *h)
{
    const pp_catalog *cat = ps->cat;
    char why[WHY_MAX];
    pp_obs o;
    double v = 0;
    memset(&o, 0, sizeof o);

    if (check_shape(rec, h, why, sizeof why) < 0)
        goto bad;
    const pp_park *pk = find_park(cat, cell(rec, h, COL_PARK), why, sizeof why);
    if (pk == NULL)
        goto bad;
    const pp_indicator *ind =
        find_indicator(cat, cell(rec, h, COL_INDICATOR), "indicator", why, sizeof why);
    if (ind == NULL)
        goto bad;
    if (csv_parse_period(cell(rec, h, COL_PERIOD), &o.period, why, sizeof why) < 0)
        goto bad;
    if (parse_status(cell(rec, h, COL_STATUS), &o.status, why, sizeof why) < 0)
        goto bad;
    int rc = csv_parse_value(cell(rec, h, COL_VALUE), cell(rec, h, COL_UNIT), ind->unit, &v, why,
                             sizeof why);
    if (rc < 0)
        goto bad;
    if (rc == 0)
        return; /* missing: no observation, never zero */
    if (dup_or_oom(ps, (int)(pk - cat->parks), (int)(ind - cat->indicators), o.period, rec->line,
                   true, why, sizeof why) < 0)
        goto bad;
    snprintf(o.park, sizeof o.park, "%s", pk->id);
    snprintf(o.indicator, sizeof o.indicator, "%s", ind->id);
    o.value = v;
    text_copy_utf8(o.source, sizeof o.source, cell(rec, h, COL_SOURCE));
    text_copy_utf8(o.note, sizeof o.note, cell(rec, h, COL_NOTE));
    if (push_obs(ps, &o) < 0)
        out_of_memory(ps);
    return;
bad:
    if (!ps->fatal)
        add_error(ps, rec->line, "%s", why);
}

static void row_target(parser *ps, record *rec, const header *h)
{
    const pp_catalog *cat = ps->cat;
    char why[WHY_MAX];
    pp_target t;
    double v = 0;
    memset(&t, 0, sizeof t);

    if (check_shape(rec, h, why, sizeof why) < 0)
        goto bad;
    const pp_park *pk = find_park(cat, cell(rec, h, COL_PARK), why, sizeof why);
    if (pk == NULL)
        goto bad;
    const pp_indicator *ind =
        find_indicator(cat, cell(rec, h, COL_INDICATOR), "indicator", why, sizeof why);
    if (ind == NULL)
        goto bad;
    if (parse_year(cell(rec, h, COL_YEAR), &t.year, why, sizeof why) < 0)
        goto bad;
    int rc = csv_parse_value(cell(rec, h, COL_TARGET), cell(rec, h, COL_UNIT), ind->unit, &v, why,
                             sizeof why);
    if (rc < 0)
        goto bad;
    if (rc == 0) {
        set_why(why, sizeof why, "missing target value");
        goto bad;
    }
    if (dup_or_oom(ps, (int)(pk - cat->parks), (int)(ind - cat->indicators), t.year, rec->line,
                   true, why, sizeof why) < 0)
        goto bad;
    snprintf(t.park, sizeof t.park, "%s", pk->id);
    snprintf(t.indicator, sizeof t.indicator, "%s", ind->id);
    t.value = v;
    text_copy_utf8(t.source, sizeof t.source, cell(rec, h, COL_SOURCE));
    if (push_target(ps, &t) < 0)
        out_of_memory(ps);
    return;
bad:
    if (!ps->fatal)
        add_error(ps, rec->line, "%s", why);
}

static void row_wide(parser *ps, record *rec, const header *h)
{
    const pp_catalog *cat = ps->cat;
    char why[WHY_MAX], cwhy[WHY_MAX];
    pp_obs o;
    memset(&o, 0, sizeof o);

    if (check_shape(rec, h, why, sizeof why) < 0)
        goto bad;
    const pp_park *pk = find_park(cat, cell(rec, h, COL_PARK), why, sizeof why);
    if (pk == NULL)
        goto bad;
    if (csv_parse_period(cell(rec, h, COL_PERIOD), &o.period, why, sizeof why) < 0)
        goto bad;
    if (parse_status(cell(rec, h, COL_STATUS), &o.status, why, sizeof why) < 0)
        goto bad;
    snprintf(o.park, sizeof o.park, "%s", pk->id);
    text_copy_utf8(o.source, sizeof o.source, cell(rec, h, COL_SOURCE));
    text_copy_utf8(o.note, sizeof o.note, cell(rec, h, COL_NOTE));

    /* every cell is checked (values, then duplicates) before any is added:
     * a bad row adds nothing */
    double vals[CSV_MAX_COLUMNS];
    bool have[CSV_MAX_COLUMNS];
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < h->ncols; i++) {
            if (h->role[i] != COL_WIDE)
                continue;
            const pp_indicator *ind = h->ind[i];
            int rc = 0;
            if (pass == 0) {
                rc = csv_parse_value(field(rec, i), NULL, ind->unit, &vals[i], cwhy, sizeof cwhy);
                have[i] = rc > 0;
            } else if (have[i]) {
                rc = dup_or_oom(ps, (int)(pk - cat->parks), (int)(ind - cat->indicators),
                                o.period, rec->line, pass == 2, cwhy, sizeof cwhy);
            }
            if (rc < 0) {
                set_why(why, sizeof why, "column '%s': %s", h->name[i], cwhy);
                goto bad;
            }
            if (pass == 2 && have[i]) {
                snprintf(o.indicator, sizeof o.indicator, "%s", ind->id);
                o.value = vals[i];
                if (push_obs(ps, &o) < 0) {
                    out_of_memory(ps);
                    return;
                }
            }
        }
    }
    return;
bad:
    if (!ps->fatal)
        add_error(ps, rec->line, "%s", why);
}

/* ======================================================================
 * Entry points
 * ====================================================================== */

/* Settles the encoding: returns the UTF-8 text to read (data itself or a
 * converted copy in *owned), or NULL after recording a whole-input error. */
static const char *settle_encoding(parser *ps, const char *data, size_t len, size_t *outlen,
                                   char **owned)
{
    size_t bad_off = 0;
    *owned = NULL;
    if (memchr(data, '\0', len) != NULL) {
        add_error(ps, 0, "the input contains a NUL byte: not a text file");
        return NULL;
    }
    if (text_utf8_valid(data, len, &bad_off)) {
        if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
            data += 3, len -= 3;
        *outlen = len;
        return data;
    }
    size_t n = 0;
    int rc = text_gb18030_to_utf8(data, len, owned, &n);
    if (rc == -ENOMEM) {
        out_of_memory(ps);
        return NULL;
    }
    if (rc < 0) {
        add_error(ps, 0, "the input is neither UTF-8 (bad byte at offset %zu) nor GB18030",
                  bad_off);
        return NULL;
    }
    ps->out->encoding = "GB18030";
    const char *t = *owned;
    if (n >= 3 && memcmp(t, "\xEF\xBB\xBF", 3) == 0) /* a GB18030 BOM (84 31 95 33) */
        t += 3, n -= 3;
    *outlen = n;
    return t;
}

int csv_parse(const char *data, size_t len, const pp_catalog *cat, csv_result *out)
{
    return csv_parse_stoppable(data, len, cat, out, NULL, NULL);
}

int csv_parse_stoppable(const char *data, size_t len, const pp_catalog *cat, csv_result *out,
                        bool (*stop)(void *ud), void *ud)
{
    parser ps;
    record *rec = NULL;
    header *h = NULL;
    char *owned = NULL;
    const char *text;
    size_t tlen = 0;

    memset(out, 0, sizeof *out);
    memset(&ps, 0, sizeof ps);
    out->encoding = "UTF-8";
    ps.cat = cat;
    ps.out = out;
    if (data == NULL && len > 0) {
        add_error(&ps, 0, "no input");
        goto done;
    }
    if (len > CSV_MAX_BYTES) {
        add_error(&ps, 0, "the input is larger than %u bytes", CSV_MAX_BYTES);
        goto done;
    }
    if (cat == NULL) {
        add_error(&ps, 0, "no catalogue");
        goto done;
    }
    text = settle_encoding(&ps, data ? data : "", len, &tlen, &owned);
    if (text == NULL)
        goto done;
    rec = calloc(1, sizeof *rec);
    h = calloc(1, sizeof *h);
    if (rec == NULL || h == NULL) {
        out_of_memory(&ps);
        goto done;
    }

    reader rd = {text, text + tlen, 1};
    int rc;
    while ((rc = read_record(&ps, &rd, rec)) > 0 && record_blank(rec))
        ;
    if (rc < 0)
        goto done;
    if (rc == 0) {
        add_error(&ps, 0, "empty input: no header");
        goto done;
    }
    if (read_header(&ps, rec, h) < 0)
        goto done;
    for (size_t n_read = 0; !ps.fatal && (rc = read_record(&ps, &rd, rec)) > 0;) {
        if (stop != NULL && ++n_read % CSV_STOP_EVERY == 0 && stop(ud)) {
            out->stopped = true;
            break;
        }
        if (record_blank(rec))
            continue;
        out->n_rows++;
        switch (out->layout) {
        case CSV_LAYOUT_OBSERVATIONS: row_observation(&ps, rec, h); break;
        case CSV_LAYOUT_TARGETS: row_target(&ps, rec, h); break;
        case CSV_LAYOUT_WIDE: row_wide(&ps, rec, h); break;
        default: break;
        }
    }
done:
    if (rec)
        free(rec->buf);
    free(rec);
    free(h);
    free(owned);
    free(ps.dups);
    return out->n_errors_total > 0 || out->stopped ? -1 : 0;
}

void csv_result_free(csv_result *r)
{
    if (r == NULL)
        return;
    free(r->obs);
    free(r->targets);
    free(r->errors);
    memset(r, 0, sizeof *r);
}

char *csv_errors_report(const csv_result *r, const char *name)
{
    return csv_errors_report_at(r, name, NULL);
}

char *csv_errors_report_at(const csv_result *r, const char *name, const char *sheet)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (f == NULL)
        return NULL;
    if (name == NULL)
        name = "input";
    for (size_t i = 0; i < r->n_errors; i++) {
        if (sheet)
            fprintf(f, "%s:%s!%d: %s\n", name, sheet, r->errors[i].line, r->errors[i].reason);
        else
            fprintf(f, "%s:%d: %s\n", name, r->errors[i].line, r->errors[i].reason);
    }
    if (r->n_errors_total > r->n_errors)
        fprintf(f, "%s: %zu more errors not shown\n", name, r->n_errors_total - r->n_errors);
    if (ferror(f)) {
        fclose(f);
        free(buf);
        return NULL;
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
