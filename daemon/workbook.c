/*
 * workbook.c — Excel workbooks read as CSV (see workbook.h for the text each
 * sheet becomes and the limits on untrusted input).
 *
 * .xlsx: the zip is opened from memory with libzip; every entry's name and
 * declared size are checked before anything is inflated. The parts are found
 * the way Office finds them — _rels/.rels names the workbook part, its .rels
 * names the sheets, the shared strings and the styles — and each is streamed
 * through libxml2's xmlTextReader, fed by a callback that inflates 64 KiB at a
 * time, counts the bytes and refuses a DOCTYPE before libxml2 sees it. The
 * cells of a sheet are kept as (row, column, text) until the sheet ends,
 * because its merged ranges (<mergeCells>) come after its cells; then the
 * merged values are copied, and the cells are written out as CSV, one line per
 * row. .xls: libfreexl reads a file, not memory, so the bytes go to a memfd
 * (or an unlinked temporary file) first; its cells go through the same store,
 * in a child process (read_xls_isolated: libfreexl is not safe on hostile
 * files).
 *
 * Nothing here logs: every failure is a reason in workbook.error (Chinese
 * first), and the caller (ingest.c) reports it.
 */
#include "workbook.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <freexl.h>
#include <libxml/parser.h>
#include <libxml/xmlreader.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zip.h>

#include "text.h"
#include "vec.h"

#define XML_CHUNK (64u << 10)        /* bytes inflated per read callback */
#define SHEET_TEXT_MAX CSV_MAX_BYTES /* text of one sheet's cells */

/* ======================================================================
 * The reading context and its errors
 * ====================================================================== */

typedef struct wbctx {
    workbook *wb;
    size_t max_inflated, max_cells;
    size_t inflated;     /* bytes inflated so far, all parts */
    size_t cells;        /* cells seen so far, all sheets (merged fills included) */
    bool failed;
} wbctx;

static void fail(wbctx *c, const char *sheet, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the first failure (later ones are consequences). */
static void fail(wbctx *c, const char *sheet, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = true;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->wb->error, sizeof c->wb->error, fmt, ap);
    va_end(ap);
    if (n < 0)
        c->wb->error[0] = '\0';
    else if ((size_t)n >= sizeof c->wb->error)
        text_copy_utf8(c->wb->error, sizeof c->wb->error, c->wb->error);
    /* a reason is one line of a report (libxml2's messages hold line breaks) */
    for (char *p = c->wb->error; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    if (sheet)
        text_copy_utf8(c->wb->error_sheet, sizeof c->wb->error_sheet, sheet);
}

/* libzip's text for an error, copied: zip_error_strerror frees the text of
 * its previous call on the same error. */
static const char *zip_why(zip_error_t *ze, char *buf, size_t len)
{
    snprintf(buf, len, "%s", zip_error_strerror(ze));
    return buf;
}

/* A copy of s for a message or a sheet name: control characters as '?', at
 * most max bytes (cut at a character boundary). */
static char *clean_name(const char *s, size_t max)
{
    if (s == NULL)
        s = "";
    size_t n = strlen(s);
    if (n > max)
        n = max;
    char *d = malloc(n + 1);
    if (d == NULL)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    text_copy_utf8(d, n + 1, d);
    for (char *p = d; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return d;
}

/* ======================================================================
 * Formats, numbers and dates
 * ====================================================================== */

wb_format workbook_format(const void *data, size_t len)
{
    static const unsigned char ole2[8] = {0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1};
    if (data == NULL)
        return WB_NONE;
    if (len >= 4 && memcmp(data, "PK\x03\x04", 4) == 0)
        return WB_XLSX;
    if (len >= 8 && memcmp(data, ole2, 8) == 0)
        return WB_XLS;
    return WB_NONE;
}

const char *workbook_format_name(wb_format f)
{
    return f == WB_XLSX ? "xlsx" : f == WB_XLS ? "xls" : "csv";
}

size_t workbook_format_number(double v, char *buf, size_t len)
{
    char e[40];
    int prec = 15;
    if (len < WB_NUM_MAX) {
        if (len)
            buf[0] = '\0';
        return 0;
    }
    if (!isfinite(v))
        return (size_t)snprintf(buf, len, "#NUM!");
    if (v == 0)
        return (size_t)snprintf(buf, len, "0");
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v)
            break;
    }
    /* e is [-]d.ddddde[+-]XX: place the point ourselves, without an exponent */
    char digits[24];
    size_t nd = 0;
    const char *p = e;
    bool neg = *p == '-';
    if (neg)
        p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9')
            digits[nd++] = *p;
    int exp10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    size_t o = 0;
    if (neg)
        buf[o++] = '-';
    int point = exp10 + 1; /* digits before the decimal point */
    if (point <= 0) {
        buf[o++] = '0';
        buf[o++] = '.';
        for (int i = 0; i < -point; i++)
            buf[o++] = '0';
        memcpy(buf + o, digits, nd);
        o += nd;
    } else if ((size_t)point >= nd) {
        memcpy(buf + o, digits, nd);
        o += nd;
        for (size_t i = nd; i < (size_t)point; i++)
            buf[o++] = '0';
    } else {
        memcpy(buf + o, digits, (size_t)point);
        o += (size_t)point;
        buf[o++] = '.';
        memcpy(buf + o, digits + point, nd - (size_t)point);
        o += nd - (size_t)point;
    }
    buf[o] = '\0';
    return o;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's algorithm). */
static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long yy = (long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

int workbook_serial_date(double serial, bool date1904, char *buf, size_t len)
{
    if (!isfinite(serial) || serial < (date1904 ? 0 : 1) || serial >= 2958466)
        return -1;
    long s = (long)floor(serial);
    long days;
    if (date1904) {
        days = days_from_civil(1904, 1, 1) + s;
    } else if (s == 60) {
        snprintf(buf, len, "1900-02-29"); /* Lotus 1-2-3's leap day, kept by Excel */
        return 0;
    } else {
        /* serial 1 is 1900-01-01; from 61 on, one day less for the phantom 29th */
        days = days_from_civil(1899, 12, 31) + s - (s > 60);
    }
    long y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    if (y > 9999)
        return -1;
    snprintf(buf, len, "%04ld-%02u-%02u", y, m, d);
    return 0;
}

bool workbook_format_is_date(const char *code)
{
    bool ymd = false, m = false, hs = false;
    if (code == NULL)
        return false;
    for (const char *p = code; *p; p++) {
        switch (*p) {
        case '"': /* a literal: skipped */
            p++;
            while (*p && *p != '"')
                p++;
            if (!*p)
                return ymd || (m && !hs);
            break;
        case '\\': /* an escaped character */
        case '_':  /* a space as wide as the next character */
        case '*':  /* fill with the next character */
            if (p[1])
                p++;
            break;
        case '[': /* [Red], [$-804], [DBNum1], [h] (elapsed hours: a time) */
            if (p[1] == 'h' || p[1] == 'H' || p[1] == 's' || p[1] == 'S')
                hs = true;
            while (*p && *p != ']')
                p++;
            if (!*p)
                return ymd || (m && !hs);
            break;
        case 'y': case 'Y': case 'd': case 'D':
            ymd = true;
            break;
        case 'm': case 'M':
            m = true;
            break;
        case 'h': case 'H': case 's': case 'S':
            hs = true;
            break;
        case 'e': case 'E': /* 'e' is a year in some locales' formats, but also 0.0E+00 */
            break;
        default:
            break;
        }
    }
    return ymd || (m && !hs);
}

/* The built-in number formats (ECMA-376 Part 1, 18.8.30) that show a date. */
static bool builtin_is_date(long id)
{
    return (id >= 14 && id <= 17) || id == 22 || (id >= 27 && id <= 36) ||
           (id >= 50 && id <= 58);
}

/* ======================================================================
 * The cells of one sheet, and its CSV text
 * ====================================================================== */

typedef struct cellv {
    uint32_t row, col;   /* 1-based */
    uint32_t off, len;   /* the text in the store's arena */
    uint32_t seq;        /* order of arrival: a later cell at the same place wins */
} cellv;

typedef struct merge {
    uint32_t r1, c1, r2, c2;
} merge;

typedef struct store {
    cellv *c;
    size_t n, cap;
    char *arena;
    size_t alen, acap;
    merge *m;
    size_t nm, capm;
    uint32_t seq;
    bool sorted;
    uint32_t last_row, last_col;
} store;

static void store_free(store *s)
{
    free(s->c);
    free(s->arena);
    free(s->m);
    memset(s, 0, sizeof *s);
}

static int grow(void **p, size_t *cap, size_t need, size_t sz)
{
    return pp_vec_reserve(p, cap, need, sz, 64);
    return 0;
}

/* Counts one cell against the workbook's bound. */
static int count_cells(wbctx *c, const char *sheet, size_t n)
{
    if (n > c->max_cells || c->cells > c->max_cells - n) {
        fail(c, sheet, "单元格过多：工作簿超过 %zu 个单元格，拒绝读取（too many cells: the "
             "workbook has more than %zu cells）", c->max_cells, c->max_cells);
        return -1;
    }
    c->cells += n;
    return 0;
}

/* Appends the text of a cell (len bytes at t, cleaned: a line break becomes a
 * space) to the arena; returns its offset, or -1. */
static long store_text(wbctx *c, store *s, const char *sheet, const char *t, size_t len)
{
    if (len > SHEET_TEXT_MAX || s->alen > SHEET_TEXT_MAX - len) {
        fail(c, sheet, "工作表的文字超过 %u 字节（the text of the sheet is larger than %u "
             "bytes）", SHEET_TEXT_MAX, SHEET_TEXT_MAX);
        return -1;
    }
    if (grow((void **)&s->arena, &s->acap, s->alen + len + 1, 1) != 0) {
        fail(c, sheet, "内存不足（out of memory）");
        return -1;
    }
    size_t off = s->alen;
    char *d = s->arena + off;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (t[i] == '\r') {
            d[o++] = ' ';
            if (i + 1 < len && t[i + 1] == '\n')
                i++;
        } else if (t[i] == '\n') {
            d[o++] = ' ';
        } else {
            d[o++] = t[i];
        }
    }
    s->alen += o;
    return (long)off;
}

/* Adds a cell (row, col 1-based) with len bytes of text; an empty text only counts. */
static int store_cell(wbctx *c, store *s, const char *sheet, uint32_t row, uint32_t col,
                      const char *t, size_t len)
{
    if (count_cells(c, sheet, 1) != 0)
        return -1;
    if (len == 0)
        return 0;
    long off = store_text(c, s, sheet, t, len);
    if (off < 0)
        return -1;
    size_t stored = s->alen - (size_t)off;
    if (grow((void **)&s->c, &s->cap, s->n + 1, sizeof *s->c) != 0) {
        fail(c, sheet, "内存不足（out of memory）");
        return -1;
    }
    if (s->n > 0 && (row < s->last_row || (row == s->last_row && col <= s->last_col)))
        s->sorted = false;
    else if (s->n == 0)
        s->sorted = true;
    s->last_row = row;
    s->last_col = col;
    s->c[s->n++] = (cellv){row, col, (uint32_t)off, (uint32_t)stored, s->seq++};
    return 0;
}

static int cell_cmp(const void *a, const void *b)
{
    const cellv *x = a, *y = b;
    if (x->row != y->row)
        return x->row < y->row ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sorts the cells by place and keeps the last one of each place. */
static void store_settle(store *s)
{
    if (s->sorted || s->n < 2) {
        s->sorted = true;
        return;
    }
    qsort(s->c, s->n, sizeof *s->c, cell_cmp);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (k > 0 && s->c[k - 1].row == s->c[i].row && s->c[k - 1].col == s->c[i].col)
            s->c[k - 1] = s->c[i];
        else
            s->c[k++] = s->c[i];
    }
    s->n = k;
    s->sorted = true;
}

static const cellv *store_find(const store *s, uint32_t row, uint32_t col)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const cellv *m = &s->c[mid];
        if (m->row < row || (m->row == row && m->col < col))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->n && s->c[lo].row == row && s->c[lo].col == col ? &s->c[lo] : NULL;
}

/* Copies the value of each merged range's top-left cell into its other cells. */
static int store_merge(wbctx *c, store *s, const char *sheet)
{
    if (s->nm == 0)
        return 0;
    store_settle(s);
    size_t base = s->n;
    for (size_t i = 0; i < s->nm; i++) {
        const merge *m = &s->m[i];
        /* the top-left cell of the original cells (base): fills never chain */
        store tmp = *s;
        tmp.n = base;
        const cellv *tl = store_find(&tmp, m->r1, m->c1);
        if (tl == NULL)
            continue;
        cellv v = *tl;
        uint64_t area = (uint64_t)(m->r2 - m->r1 + 1) * (m->c2 - m->c1 + 1) - 1;
        if (area > SIZE_MAX || count_cells(c, sheet, (size_t)area) != 0)
            return -1;
        if (grow((void **)&s->c, &s->cap, s->n + (size_t)area, sizeof *s->c) != 0) {
            fail(c, sheet, "内存不足（out of memory）");
            return -1;
        }
        for (uint32_t r = m->r1; r <= m->r2; r++)
            for (uint32_t col = m->c1; col <= m->c2; col++)
                if (r != m->r1 || col != m->c1)
                    s->c[s->n++] = (cellv){r, col, v.off, v.len, s->seq++};
    }
    if (s->n > base) {
        s->sorted = false;
        store_settle(s);
    }
    return 0;
}

/* Writes the cells as CSV, one line per row (rows 1 .. the last with a cell). */
static int store_csv(wbctx *c, store *s, const char *sheet, wb_sheet *out)
{
    store_settle(s);
    size_t cap = 0;
    for (size_t i = 0; i < s->n; i++)
        cap += 2 * (size_t)s->c[i].len + 3;
    uint32_t rows = s->n ? s->c[s->n - 1].row : 0;
    /* the separators: a comma per column skipped, a newline per row */
    uint64_t seps = rows, full = 0, width = 0;
    for (size_t i = 0; i < s->n; i++) {
        seps += s->c[i].col; /* at most the commas before each cell */
        if (s->c[i].col > width)
            width = s->c[i].col;
        full += i == 0 || s->c[i].row != s->c[i - 1].row;
    }
    if (width > CSV_MAX_COLUMNS)
        width = CSV_MAX_COLUMNS;
    seps += full * width; /* and the padding of each row with cells */
    if (seps + cap > (uint64_t)CSV_MAX_BYTES * 2) {
        fail(c, sheet, "工作表转为 CSV 后超过 %u 字节（the sheet as CSV is larger than %u "
             "bytes）", CSV_MAX_BYTES, CSV_MAX_BYTES);
        return -1;
    }
    cap += (size_t)seps + 1;
    char *t = malloc(cap);
    if (t == NULL) {
        fail(c, sheet, "内存不足（out of memory）");
        return -1;
    }
    /* a row with cells has as many fields as the widest row (up to
     * CSV_MAX_COLUMNS), as office software writes CSV: csv.c wants every
     * record as wide as the header, and a sheet leaves trailing cells out */
    size_t o = 0;
    uint32_t row = 1, col = 1;
    bool has = false; /* the current row has a cell */
    for (size_t i = 0; i < s->n; i++) {
        const cellv *v = &s->c[i];
        while (row < v->row) {
            for (; has && col < width; col++)
                t[o++] = ',';
            t[o++] = '\n';
            row++;
            col = 1;
            has = false;
        }
        has = true;
        while (col < v->col) {
            t[o++] = ',';
            col++;
        }
        const char *x = s->arena + v->off;
        bool q = memchr(x, ',', v->len) != NULL || memchr(x, '"', v->len) != NULL;
        if (q) {
            t[o++] = '"';
            for (uint32_t k = 0; k < v->len; k++) {
                if (x[k] == '"')
                    t[o++] = '"';
                t[o++] = x[k];
            }
            t[o++] = '"';
        } else {
            memcpy(t + o, x, v->len);
            o += v->len;
        }
    }
    for (; has && col < width; col++)
        t[o++] = ',';
    if (rows > 0)
        t[o++] = '\n';
    t[o] = '\0';
    out->csv = t;
    out->len = o;
    out->rows = rows;
    return 0;
}

/* ======================================================================
 * .xlsx: the zip
 * ====================================================================== */

typedef struct xlsx {
    wbctx *c;
    zip_t *za;
    /* shared strings: (offset, length) into sst_text */
    char *sst_text;
    size_t sst_len, sst_cap;
    uint32_t (*sst)[2];
    size_t n_sst, cap_sst;
    /* cellXfs: whether each style is a date */
    bool *xf_date;
    size_t n_xf, cap_xf;
} xlsx;

/* true when a zip entry name could leave a directory when extracted. */
static bool unsafe_entry(const char *n)
{
    if (n[0] == '/' || n[0] == '\\' || strchr(n, '\\') != NULL)
        return true;
    if (((n[0] >= 'A' && n[0] <= 'Z') || (n[0] >= 'a' && n[0] <= 'z')) && n[1] == ':')
        return true;
    for (const char *p = n; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 2 && p[0] == '.' && p[1] == '.')
            return true;
        if (!e)
            break;
        p = e + 1;
    }
    return false;
}

/* Opens the zip and checks every entry before anything is inflated. */
static int zip_check_open(xlsx *x, const char *data, size_t len)
{
    wbctx *c = x->c;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, len, 0, &ze);
    if (src == NULL) {
        char why[160];
        zip_why(&ze, why, sizeof why);
        fail(c, NULL, "无法读取 .xlsx 文件：%s（cannot read the .xlsx: %s）", why, why);
        zip_error_fini(&ze);
        return -1;
    }
    x->za = zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &ze);
    if (x->za == NULL) {
        char whyb[160];
        const char *why = zip_why(&ze, whyb, sizeof whyb);
        fail(c, NULL, "不是有效的 .xlsx 文件：zip 已损坏（%s）（not a valid .xlsx workbook: a "
             "corrupt zip: %s）", why, why);
        zip_source_free(src);
        zip_error_fini(&ze);
        return -1;
    }
    zip_error_fini(&ze);
    zip_int64_t n = zip_get_num_entries(x->za, 0);
    if (n < 0 || n > WB_MAX_ENTRIES) {
        fail(c, NULL, "zip 中的条目过多（%lld 个，上限 %d）（the zip has too many entries: %lld, "
             "at most %d）", (long long)n, WB_MAX_ENTRIES, (long long)n, WB_MAX_ENTRIES);
        return -1;
    }
    uint64_t total = 0;
    for (zip_int64_t i = 0; i < n; i++) {
        zip_stat_t st;
        zip_stat_init(&st);
        if (zip_stat_index(x->za, (zip_uint64_t)i, ZIP_FL_ENC_RAW, &st) != 0 ||
            !(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE)) {
            fail(c, NULL, "不是有效的 .xlsx 文件：zip 条目 %lld 无法读取（not a valid .xlsx "
                 "workbook: zip entry %lld cannot be read）", (long long)i, (long long)i);
            return -1;
        }
        char *shown = clean_name(st.name, 120);
        if (unsafe_entry(st.name)) {
            fail(c, NULL, "zip 条目名不安全：'%s'，拒绝读取（an unsafe entry name in the zip: "
                 "'%s' (a '..' or an absolute path)）", shown ? shown : "", shown ? shown : "");
            free(shown);
            return -1;
        }
        if (st.size > c->max_inflated) {
            fail(c, NULL, "zip 条目 '%s' 解压后为 %llu 字节，超过上限 %zu 字节，未解压即拒绝"
                 "（zip entry '%s' inflates to %llu bytes, more than the limit of %zu: refused "
                 "without inflating it）", shown ? shown : "", (unsigned long long)st.size,
                 c->max_inflated, shown ? shown : "", (unsigned long long)st.size,
                 c->max_inflated);
            free(shown);
            return -1;
        }
        free(shown);
        total += st.size;
        if (total > c->max_inflated) {
            fail(c, NULL, "zip 条目解压后共超过 %zu 字节，未解压即拒绝（the zip's entries "
                 "inflate to more than %zu bytes in all: refused without inflating them）",
                 c->max_inflated, c->max_inflated);
            return -1;
        }
    }
    return 0;
}

/* ---- XML parts, streamed ------------------------------------------------- */

typedef struct xin {
    xlsx *x;
    zip_file_t *zf;
    const char *part;
    uint64_t declared, got;
    char tail[8];
    size_t ntail;
    bool doctype, too_big, zerr;
    char xml_error[200];
} xin;

static const char DOCTYPE[] = "<!DOCTYPE";
#define DOCTYPE_LEN (sizeof DOCTYPE - 1)

static int xin_read(void *ctx, char *buf, int len)
{
    xin *in = ctx;
    wbctx *c = in->x->c;
    if (in->doctype || in->too_big || in->zerr)
        return -1;
    zip_int64_t n = zip_fread(in->zf, buf, (zip_uint64_t)len);
    if (n < 0) {
        in->zerr = true;
        return -1;
    }
    in->got += (uint64_t)n;
    c->inflated += (size_t)n;
    if (in->got > in->declared || c->inflated > c->max_inflated) {
        in->too_big = true;
        return -1;
    }
    /* a DOCTYPE is refused before libxml2 reads it: no DTD, no entity at all */
    char edge[2 * DOCTYPE_LEN];
    size_t k = n < (zip_int64_t)DOCTYPE_LEN ? (size_t)n : DOCTYPE_LEN;
    memcpy(edge, in->tail, in->ntail);
    memcpy(edge + in->ntail, buf, k);
    if (memmem(edge, in->ntail + k, DOCTYPE, DOCTYPE_LEN) != NULL ||
        memmem(buf, (size_t)n, DOCTYPE, DOCTYPE_LEN) != NULL) {
        in->doctype = true;
        return -1;
    }
    size_t keep = DOCTYPE_LEN - 1;
    if ((size_t)n >= keep) {
        memcpy(in->tail, buf + n - keep, keep);
        in->ntail = keep;
    } else {
        size_t total = in->ntail + (size_t)n;
        size_t drop = total > keep ? total - keep : 0;
        memmove(in->tail, in->tail + drop, in->ntail - drop);
        memcpy(in->tail + in->ntail - drop, buf, (size_t)n);
        in->ntail = total - drop;
    }
    return (int)n;
}

static void xin_error(void *ctx, xmlErrorPtr err)
{
    xin *in = ctx;
    if (in->xml_error[0] != '\0' || err == NULL || err->level < XML_ERR_ERROR)
        return;
    char msg[160];
    snprintf(msg, sizeof msg, "%s", err->message ? err->message : "error");
    size_t l = strlen(msg);
    while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
        msg[--l] = '\0';
    snprintf(in->xml_error, sizeof in->xml_error, "line %d: %s", err->line, msg);
}

static xmlParserInputPtr no_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    (void)url, (void)id, (void)ctxt;
    return NULL;
}

static void silent(void *ctx, const char *msg, ...)
{
    (void)ctx, (void)msg;
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
    xmlInitParser();
    /* nothing outside the zip is ever loaded, whatever a part says */
    xmlSetExternalEntityLoader(no_entity_loader);
}

typedef struct xrd {
    xin in;
    xmlTextReaderPtr r;
    const char *sheet; /* for errors */
} xrd;

/* Opens a part of the zip for streaming; 1 opened, 0 no such part, -1 failed. */
static int xrd_open(xlsx *x, xrd *d, const char *part, const char *sheet)
{
    wbctx *c = x->c;
    memset(d, 0, sizeof *d);
    d->sheet = sheet;
    zip_int64_t idx = zip_name_locate(x->za, part, ZIP_FL_ENC_RAW);
    if (idx < 0)
        idx = zip_name_locate(x->za, part, ZIP_FL_ENC_RAW | ZIP_FL_NOCASE);
    if (idx < 0)
        return 0;
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(x->za, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE)) {
        fail(c, sheet, "zip 条目 '%s' 无法读取（zip entry '%s' cannot be read）", part, part);
        return -1;
    }
    if (st.size > c->max_inflated - (c->inflated < c->max_inflated ? c->inflated : c->max_inflated)) {
        fail(c, sheet, "zip 条目解压后共超过 %zu 字节，拒绝读取（the zip's entries inflate to "
             "more than %zu bytes in all）", c->max_inflated, c->max_inflated);
        return -1;
    }
    d->in.x = x;
    d->in.part = part;
    d->in.declared = st.size;
    d->in.zf = zip_fopen_index(x->za, (zip_uint64_t)idx, 0);
    if (d->in.zf == NULL) {
        zip_error_t *ze = zip_get_error(x->za);
        int code = zip_error_code_zip(ze);
        if (code == ZIP_ER_NOPASSWD || code == ZIP_ER_WRONGPASSWD || code == ZIP_ER_ENCRNOTSUPP) {
            fail(c, sheet, "工作簿已加密，无法读取（the workbook is encrypted: '%s'）", part);
        } else {
            char why[160];
            zip_why(ze, why, sizeof why);
            fail(c, sheet, "zip 条目 '%s' 无法解压：%s（zip entry '%s' cannot be inflated: %s）",
                 part, why, part, why);
        }
        return -1;
    }
    pthread_once(&xml_once, xml_init);
    xmlSetGenericErrorFunc(NULL, silent);
    d->r = xmlReaderForIO(xin_read, NULL, &d->in, part, NULL,
                          XML_PARSE_NONET | XML_PARSE_COMPACT | XML_PARSE_NOCDATA);
    if (d->r == NULL) {
        zip_fclose(d->in.zf);
        d->in.zf = NULL;
        fail(c, sheet, "内存不足（out of memory）");
        return -1;
    }
    xmlTextReaderSetStructuredErrorHandler(d->r, xin_error, &d->in);
    return 1;
}

static void xrd_close(xrd *d)
{
    if (d->r)
        xmlFreeTextReader(d->r);
    if (d->in.zf)
        zip_fclose(d->in.zf);
    d->r = NULL;
    d->in.zf = NULL;
}

/* The next node: 1, 0 at the end, -1 after recording why. */
static int xrd_next(wbctx *c, xrd *d)
{
    int rc = xmlTextReaderRead(d->r);
    const char *part = d->in.part;
    if (rc == 1) {
        int t = xmlTextReaderNodeType(d->r);
        if (t == XML_READER_TYPE_DOCUMENT_TYPE || t == XML_READER_TYPE_ENTITY_REFERENCE ||
            t == XML_READER_TYPE_ENTITY) {
            fail(c, d->sheet, "XML 部件 '%s' 含有 DOCTYPE 或实体，拒绝读取（XML part '%s' has a "
                 "DOCTYPE or entities: refused）", part, part);
            return -1;
        }
        if (xmlTextReaderDepth(d->r) > WB_MAX_DEPTH) {
            fail(c, d->sheet, "XML 部件 '%s' 嵌套超过 %d 层（XML part '%s' is nested deeper than "
                 "%d levels）", part, WB_MAX_DEPTH, part, WB_MAX_DEPTH);
            return -1;
        }
        return 1;
    }
    if (rc == 0 && !d->in.doctype && !d->in.too_big && !d->in.zerr)
        return 0;
    if (d->in.doctype)
        fail(c, d->sheet, "XML 部件 '%s' 含有 DOCTYPE 声明，拒绝读取（XML part '%s' has a "
             "DOCTYPE declaration: refused, a workbook has no DTD or entities）", part, part);
    else if (d->in.too_big)
        fail(c, d->sheet, "zip 条目 '%s' 解压后超过声明的大小或上限 %zu 字节，已停止解压（zip "
             "entry '%s' inflates past its declared size or the limit of %zu bytes: stopped）",
             part, c->max_inflated, part, c->max_inflated);
    else if (d->in.zerr) {
        char why[160];
        zip_why(zip_file_get_error(d->in.zf), why, sizeof why);
        fail(c, d->sheet, "zip 条目 '%s' 已损坏：%s（zip entry '%s' is corrupt: %s）", part, why,
             part, why);
    }
    else
        fail(c, d->sheet, "XML 部件 '%s' 格式错误：%s（XML part '%s' is not well-formed: %s）",
             part, d->in.xml_error[0] ? d->in.xml_error : "?", part,
             d->in.xml_error[0] ? d->in.xml_error : "?");
    return -1;
}

static const char *lname(xrd *d)
{
    const xmlChar *n = xmlTextReaderConstLocalName(d->r);
    return n ? (const char *)n : "";
}

static bool is_elem(xrd *d, const char *name)
{
    return xmlTextReaderNodeType(d->r) == XML_READER_TYPE_ELEMENT && strcmp(lname(d), name) == 0;
}

static bool is_end(xrd *d, const char *name)
{
    return xmlTextReaderNodeType(d->r) == XML_READER_TYPE_END_ELEMENT &&
           strcmp(lname(d), name) == 0;
}

/* The value of attribute local name `name` (any namespace unless ns_only),
 * as a pointer valid until the reader moves; NULL when absent. */
static const char *attr(xrd *d, const char *name, bool ns_only)
{
    const char *v = NULL;
    if (xmlTextReaderMoveToFirstAttribute(d->r) != 1)
        return NULL;
    do {
        const xmlChar *ln = xmlTextReaderConstLocalName(d->r);
        const xmlChar *ns = xmlTextReaderConstNamespaceUri(d->r);
        if (ln && strcmp((const char *)ln, name) == 0 && (!ns_only || ns != NULL)) {
            v = (const char *)xmlTextReaderConstValue(d->r);
            break;
        }
    } while (xmlTextReaderMoveToNextAttribute(d->r) == 1);
    xmlTextReaderMoveToElement(d->r);
    return v;
}

/* A growable text buffer for the text of one element. */
typedef struct tbuf {
    char *s;
    size_t n, cap;
} tbuf;

static int tbuf_add(tbuf *b, const char *s, size_t n)
{
    if (n > SHEET_TEXT_MAX || b->n > SHEET_TEXT_MAX - n)
        return -1;
    if (grow((void **)&b->s, &b->cap, b->n + n + 1, 1) != 0)
        return -1;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
    return 0;
}

static void tbuf_text(xrd *d, tbuf *b, int *bad)
{
    int t = xmlTextReaderNodeType(d->r);
    if (t == XML_READER_TYPE_TEXT || t == XML_READER_TYPE_SIGNIFICANT_WHITESPACE ||
        t == XML_READER_TYPE_WHITESPACE || t == XML_READER_TYPE_CDATA) {
        const char *v = (const char *)xmlTextReaderConstValue(d->r);
        if (v && tbuf_add(b, v, strlen(v)) != 0)
            *bad = 1;
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decodes in place OOXML's _xHHHH_ escapes (ST_Xstring: e.g. _x000D_ for a
 * carriage return) into UTF-8. */
static void decode_xstring(tbuf *b)
{
    if (b->n < 7 || memmem(b->s, b->n, "_x", 2) == NULL)
        return;
    size_t o = 0;
    for (size_t i = 0; i < b->n;) {
        if (i + 7 <= b->n && b->s[i] == '_' && b->s[i + 1] == 'x' && b->s[i + 6] == '_') {
            int h0 = hexval(b->s[i + 2]), h1 = hexval(b->s[i + 3]), h2 = hexval(b->s[i + 4]),
                h3 = hexval(b->s[i + 5]);
            if (h0 >= 0 && h1 >= 0 && h2 >= 0 && h3 >= 0) {
                unsigned cp = (unsigned)(h0 << 12 | h1 << 8 | h2 << 4 | h3);
                if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF))
                    cp = '?';
                if (cp < 0x80) {
                    b->s[o++] = (char)cp;
                } else if (cp < 0x800) {
                    b->s[o++] = (char)(0xC0 | cp >> 6);
                    b->s[o++] = (char)(0x80 | (cp & 0x3F));
                } else {
                    /* 3 bytes out of 7 in: never overtakes the input */
                    b->s[o++] = (char)(0xE0 | cp >> 12);
                    b->s[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
                    b->s[o++] = (char)(0x80 | (cp & 0x3F));
                }
                i += 7;
                continue;
            }
        }
        b->s[o++] = b->s[i++];
    }
    b->n = o;
    b->s[o] = '\0';
}

/* Reads the text of a string item (<si> or <is>) up to its end element:
 * the <t> elements, directly or in runs (<r>), not the phonetic ones (<rPh>). */
static int read_string_item(wbctx *c, xrd *d, const char *endname, tbuf *b)
{
    int rc, bad = 0, in_t = 0, in_rph = 0;
    b->n = 0;
    if (b->s)
        b->s[0] = '\0';
    if (xmlTextReaderIsEmptyElement(d->r))
        return 0;
    while ((rc = xrd_next(c, d)) == 1) {
        int t = xmlTextReaderNodeType(d->r);
        if (t == XML_READER_TYPE_ELEMENT) {
            const char *n = lname(d);
            if (strcmp(n, "rPh") == 0 && !xmlTextReaderIsEmptyElement(d->r))
                in_rph++;
            else if (strcmp(n, "t") == 0 && !xmlTextReaderIsEmptyElement(d->r))
                in_t++;
        } else if (t == XML_READER_TYPE_END_ELEMENT) {
            const char *n = lname(d);
            if (strcmp(n, "rPh") == 0 && in_rph > 0)
                in_rph--;
            else if (strcmp(n, "t") == 0 && in_t > 0)
                in_t--;
            else if (strcmp(n, endname) == 0)
                break;
        } else if (in_t > 0 && in_rph == 0) {
            tbuf_text(d, b, &bad);
        }
    }
    if (rc < 0)
        return -1;
    if (bad) {
        fail(c, d->sheet, "单元格文字过长（a cell's text is too long）");
        return -1;
    }
    decode_xstring(b);
    return 0;
}

/* ---- relationships, workbook, shared strings, styles --------------------- */

typedef struct rel {
    char *id, *type, *target;  /* target resolved to a zip entry name */
} rel;

typedef struct rels {
    rel *v;
    size_t n, cap;
} rels;

static void rels_free(rels *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].id);
        free(r->v[i].type);
        free(r->v[i].target);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* Resolves target against the directory of part (OPC part names): an
 * absolute target starts at the root; "." and ".." are applied; a target that
 * climbs above the root gives NULL. */
static char *resolve(const char *part, const char *target)
{
    char buf[1024];
    size_t n = 0;
    if (target[0] == '/') {
        target++;
    } else {
        const char *slash = strrchr(part, '/');
        n = slash ? (size_t)(slash - part + 1) : 0;
        if (n >= sizeof buf)
            return NULL;
        memcpy(buf, part, n);
    }
    for (const char *p = target; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == 1 && p[0] == '.') {
            /* nothing */
        } else if (l == 2 && p[0] == '.' && p[1] == '.') {
            if (n == 0)
                return NULL;
            n--; /* the '/' ending the last directory */
            while (n > 0 && buf[n - 1] != '/')
                n--;
        } else if (l > 0) {
            if (n + l + 2 >= sizeof buf)
                return NULL;
            memcpy(buf + n, p, l);
            n += l;
            if (e)
                buf[n++] = '/';
        }
        if (!e)
            break;
        p = e + 1;
    }
    buf[n] = '\0';
    return n ? strdup(buf) : NULL;
}

/* Reads the relationships of part (its _rels/<name>.rels); none is not an error. */
static int read_rels(xlsx *x, const char *part, rels *out)
{
    wbctx *c = x->c;
    char path[1100];
    const char *slash = strrchr(part, '/');
    if (slash)
        snprintf(path, sizeof path, "%.*s_rels/%s.rels", (int)(slash - part + 1), part, slash + 1);
    else
        snprintf(path, sizeof path, "_rels/%s.rels", part);
    xrd d;
    int rc = xrd_open(x, &d, path, NULL);
    if (rc <= 0)
        return rc;
    while ((rc = xrd_next(c, &d)) == 1) {
        if (!is_elem(&d, "Relationship"))
            continue;
        const char *mode = attr(&d, "TargetMode", false);
        if (mode && strcmp(mode, "External") == 0)
            continue;
        const char *id = attr(&d, "Id", false);
        const char *type = attr(&d, "Type", false);
        const char *target = attr(&d, "Target", false);
        if (!id || !type || !target)
            continue;
        if (out->n >= WB_MAX_ENTRIES) {
            fail(c, NULL, "关系过多（too many relationships in '%s'）", path);
            rc = -1;
            break;
        }
        if (grow((void **)&out->v, &out->cap, out->n + 1, sizeof *out->v) != 0) {
            fail(c, NULL, "内存不足（out of memory）");
            rc = -1;
            break;
        }
        char *res = resolve(part, target);
        if (res == NULL)
            continue;
        rel *r = &out->v[out->n];
        r->id = strdup(id);
        r->type = strdup(type);
        r->target = res;
        out->n++;
        if (!r->id || !r->type) {
            fail(c, NULL, "内存不足（out of memory）");
            rc = -1;
            break;
        }
    }
    xrd_close(&d);
    return rc < 0 ? -1 : 1;
}

/* true when a relationship type ends with "/<what>" (transitional and strict). */
static bool rel_is(const rel *r, const char *what)
{
    size_t lt = strlen(r->type), lw = strlen(what);
    return lt > lw && r->type[lt - lw - 1] == '/' && strcmp(r->type + lt - lw, what) == 0;
}

static const rel *rel_of_type(const rels *rs, const char *what)
{
    for (size_t i = 0; i < rs->n; i++)
        if (rel_is(&rs->v[i], what))
            return &rs->v[i];
    return NULL;
}

static const rel *rel_by_id(const rels *rs, const char *id)
{
    for (size_t i = 0; i < rs->n; i++)
        if (strcmp(rs->v[i].id, id) == 0)
            return &rs->v[i];
    return NULL;
}

static int read_shared_strings(xlsx *x, const char *part)
{
    wbctx *c = x->c;
    xrd d;
    tbuf b = {0};
    int rc = xrd_open(x, &d, part, NULL);
    if (rc <= 0)
        return rc;
    while ((rc = xrd_next(c, &d)) == 1) {
        if (!is_elem(&d, "si"))
            continue;
        if (read_string_item(c, &d, "si", &b) != 0) {
            rc = -1;
            break;
        }
        if (b.n > SHEET_TEXT_MAX || x->sst_len > SHEET_TEXT_MAX * 2 - b.n) {
            fail(c, NULL, "共享字符串过大（the shared strings are larger than %u bytes）",
                 SHEET_TEXT_MAX * 2);
            rc = -1;
            break;
        }
        if (grow((void **)&x->sst_text, &x->sst_cap, x->sst_len + b.n + 1, 1) != 0 ||
            grow((void **)&x->sst, &x->cap_sst, x->n_sst + 1, sizeof *x->sst) != 0) {
            fail(c, NULL, "内存不足（out of memory）");
            rc = -1;
            break;
        }
        if (b.n)
            memcpy(x->sst_text + x->sst_len, b.s, b.n);
        x->sst[x->n_sst][0] = (uint32_t)x->sst_len;
        x->sst[x->n_sst][1] = (uint32_t)b.n;
        x->n_sst++;
        x->sst_len += b.n;
    }
    free(b.s);
    xrd_close(&d);
    return rc < 0 ? -1 : 1;
}

typedef struct numfmt {
    long id;
    bool date;
} numfmt;

static int read_styles(xlsx *x, const char *part)
{
    wbctx *c = x->c;
    xrd d;
    numfmt *fmts = NULL;
    size_t n_fmts = 0, cap_fmts = 0;
    bool in_xfs = false;
    int rc = xrd_open(x, &d, part, NULL);
    if (rc <= 0)
        return rc;
    while ((rc = xrd_next(c, &d)) == 1) {
        if (is_elem(&d, "numFmt")) {
            const char *id = attr(&d, "numFmtId", false);
            const char *code = attr(&d, "formatCode", false);
            if (!id || !code)
                continue;
            if (grow((void **)&fmts, &cap_fmts, n_fmts + 1, sizeof *fmts) != 0) {
                fail(c, NULL, "内存不足（out of memory）");
                rc = -1;
                break;
            }
            fmts[n_fmts++] = (numfmt){strtol(id, NULL, 10), workbook_format_is_date(code)};
        } else if (is_elem(&d, "cellXfs")) {
            in_xfs = !xmlTextReaderIsEmptyElement(d.r);
        } else if (is_end(&d, "cellXfs")) {
            in_xfs = false;
        } else if (in_xfs && is_elem(&d, "xf")) {
            const char *id = attr(&d, "numFmtId", false);
            long fid = id ? strtol(id, NULL, 10) : 0;
            bool date = builtin_is_date(fid);
            for (size_t i = n_fmts; i-- > 0;) {
                if (fmts[i].id == fid) {
                    date = fmts[i].date;
                    break;
                }
            }
            if (x->n_xf >= 65536 * 4 ||
                grow((void **)&x->xf_date, &x->cap_xf, x->n_xf + 1, sizeof *x->xf_date) != 0) {
                fail(c, NULL, "样式过多（too many cell styles）");
                rc = -1;
                break;
            }
            x->xf_date[x->n_xf++] = date;
        }
    }
    free(fmts);
    xrd_close(&d);
    return rc < 0 ? -1 : 1;
}

typedef struct sheetref {
    char *name, *rid;
} sheetref;

/* ---- a worksheet ---------------------------------------------------------- */

/* Parses "B7" (column letters, then a row number); missing parts are 0. */
static int parse_ref(const char *s, uint32_t *row, uint32_t *col)
{
    uint32_t c = 0, r = 0;
    const char *p = s;
    while ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')) {
        c = c * 26 + (uint32_t)((*p | 0x20) - 'a' + 1);
        if (c > WB_MAX_COL)
            return -1;
        p++;
    }
    while (*p >= '0' && *p <= '9') {
        r = r * 10 + (uint32_t)(*p - '0');
        if (r > WB_MAX_ROW)
            return -1;
        p++;
    }
    if (*p != '\0')
        return -1;
    *row = r;
    *col = c;
    return 0;
}

static int parse_range(const char *s, merge *m)
{
    char a[32], b[32];
    const char *colon = strchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof a || strlen(colon + 1) >= sizeof b)
        return -1;
    memcpy(a, s, (size_t)(colon - s));
    a[colon - s] = '\0';
    strcpy(b, colon + 1);
    if (parse_ref(a, &m->r1, &m->c1) != 0 || parse_ref(b, &m->r2, &m->c2) != 0 || m->r1 == 0 ||
        m->c1 == 0 || m->r2 < m->r1 || m->c2 < m->c1)
        return -1;
    return 0;
}

typedef struct cellread {
    uint32_t row, col;
    long style;
    char type[16];
    tbuf v, f, is;
    bool has_v, has_f, has_is;
} cellread;

/* The fast road for the common number: a plain decimal ("-12.50") of at most
 * 15 significant digits is already the shortest text of its double (any 15
 * digits survive the round trip); copied without its trailing zeros. */
static bool plain_decimal(const char *v, size_t n, char *buf, size_t buflen)
{
    size_t i = 0, sig = 0, dot = 0;
    bool lead = true;
    if (n == 0 || n >= buflen || n > 40)
        return false;
    if (v[0] == '-')
        i++;
    if (i == n || v[i] == '.')
        return false;
    for (; i < n; i++) {
        if (v[i] == '.') {
            if (dot || i + 1 == n)
                return false;
            dot = i;
        } else if (v[i] >= '0' && v[i] <= '9') {
            if (v[i] != '0')
                lead = false;
            if (!lead)
                sig++;
        } else {
            return false;
        }
    }
    if (sig > 15 || (v[0] == '0' && n > 1 && v[1] != '.') ||
        (v[0] == '-' && v[1] == '0' && n > 2 && v[2] != '.'))
        return false; /* leading zeros: not how a number is written; the slow road */
    memcpy(buf, v, n);
    if (dot) {
        while (n > dot + 1 && buf[n - 1] == '0')
            n--;
        if (n == dot + 1)
            n--;
    }
    buf[n] = '\0';
    if (strcmp(buf, "-0") == 0)
        strcpy(buf, "0");
    return true;
}

/* The text of a finished cell into out (may point into cr's buffers or buf). */
static int cell_text(wbctx *c, xlsx *x, cellread *cr, const char *sheet, char *buf,
                     size_t buflen, const char **out, size_t *outlen)
{
    const char *t = cr->type;
    *out = "";
    *outlen = 0;
    if (strcmp(t, "inlineStr") == 0) {
        *out = cr->is.s ? cr->is.s : "";
        *outlen = cr->is.n;
        return 0;
    }
    if (!cr->has_v || cr->v.n == 0) {
        if (cr->has_f) { /* a formula saved without its value: its text, refused as a value */
            cr->is.n = 0;
            if (tbuf_add(&cr->is, "=", 1) != 0 ||
                (cr->f.n && tbuf_add(&cr->is, cr->f.s, cr->f.n) != 0)) {
                fail(c, sheet, "单元格文字过长（a cell's text is too long）");
                return -1;
            }
            *out = cr->is.s;
            *outlen = cr->is.n;
        }
        return 0;
    }
    const char *v = cr->v.s;
    if (strcmp(t, "s") == 0) {
        char *end;
        unsigned long i = strtoul(v, &end, 10);
        if (*end != '\0' || end == v || i >= x->n_sst) {
            char k[40];
            text_copy_utf8(k, sizeof k, v);
            fail(c, sheet, "第 %u 行：共享字符串编号 '%s' 不存在（row %u: no shared string '%s'）",
                 cr->row, k, cr->row, k);
            return -1;
        }
        *out = x->sst_text + x->sst[i][0];
        *outlen = x->sst[i][1];
    } else if (strcmp(t, "b") == 0) {
        *out = strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 ? "TRUE" : "FALSE";
        *outlen = strlen(*out);
    } else if (strcmp(t, "d") == 0) {
        /* an ISO 8601 date: its day */
        size_t n = cr->v.n;
        if (n >= 10 && v[4] == '-' && v[7] == '-')
            n = 10;
        *out = v;
        *outlen = n;
    } else if (strcmp(t, "str") == 0 || strcmp(t, "e") == 0) {
        *out = v;
        *outlen = cr->v.n;
    } else { /* "n" or none: a number */
        bool date = cr->style >= 0 && (size_t)cr->style < x->n_xf && x->xf_date[cr->style];
        if (!date && plain_decimal(v, cr->v.n, buf, buflen)) {
            *out = buf;
            *outlen = strlen(buf);
            return 0;
        }
        char *end;
        double d = strtod(v, &end);
        while (*end == ' ')
            end++;
        if (end == v || *end != '\0' || !isfinite(d)) {
            *out = v;
            *outlen = cr->v.n;
            return 0;
        }
        if (date && workbook_serial_date(d, c->wb->date1904, buf, buflen) == 0) {
            *out = buf;
            *outlen = strlen(buf);
        } else {
            *outlen = workbook_format_number(d, buf, buflen);
            *out = buf;
        }
    }
    return 0;
}

static void cellread_reset(cellread *cr)
{
    cr->v.n = cr->f.n = cr->is.n = 0;
    if (cr->v.s)
        cr->v.s[0] = '\0';
    if (cr->f.s)
        cr->f.s[0] = '\0';
    if (cr->is.s)
        cr->is.s[0] = '\0';
    cr->has_v = cr->has_f = cr->has_is = false;
    cr->type[0] = '\0';
    cr->style = -1;
}

/* A <row> of the sheet: its number (r, or the one after the last) becomes
 * *row, and the column count starts again. Returns 1, or -1 after fail(). */
static int sheet_row(wbctx *c, xrd *d, const char *sheet, uint32_t *row, uint32_t *col)
{
    const char *r = attr(d, "r", false);
    char *end;
    unsigned long rv = r ? strtoul(r, &end, 10) : *row + 1UL;
    if (r && (*end != '\0' || end == r))
        rv = 0;
    if (rv == 0 || rv > WB_MAX_ROW) {
        fail(c, sheet, "行号无效（a bad row number after row %u）", *row);
        return -1;
    }
    *row = (uint32_t)rv;
    *col = 0;
    return 1;
}

/* The attributes of a <c> cell into cr (reset first): its place (r, or
 * the next column of the current row, which *row and *col follow), its
 * style and its type. Returns 0, or -1 after fail(). */
static int cell_attributes(wbctx *c, xrd *d, const char *sheet, cellread *cr, uint32_t *row,
                           uint32_t *col)
{
    cellread_reset(cr);
    const char *r = attr(d, "r", false);
    const char *st = attr(d, "s", false);
    const char *ty = attr(d, "t", false);
    uint32_t rr = 0, cc = 0;
    if (r && parse_ref(r, &rr, &cc) != 0) {
        char k[40];
        text_copy_utf8(k, sizeof k, r);
        fail(c, sheet, "单元格引用无效 '%s'（a bad cell reference '%s'）", k, k);
        return -1;
    }
    cr->row = rr ? rr : (*row ? *row : 1);
    cr->col = cc ? cc : *col + 1;
    if (cr->col > WB_MAX_COL) {
        fail(c, sheet, "列号超过 %d（a column past %d）", WB_MAX_COL, WB_MAX_COL);
        return -1;
    }
    *row = cr->row;
    *col = cr->col;
    cr->style = st ? strtol(st, NULL, 10) : -1;
    if (ty)
        snprintf(cr->type, sizeof cr->type, "%s", ty);
    return 0;
}

/* The children of a <c> cell, up to </c>: its <v>, <f> and <is> into cr;
 * *bad is set when a text is too long. Returns 1 at </c>, 0 when the part
 * ends first, -1 on a failure. */
static int cell_children(wbctx *c, xrd *d, cellread *cr, int *bad)
{
    tbuf *into = NULL;
    int rc;
    while ((rc = xrd_next(c, d)) == 1) {
        int k = xmlTextReaderNodeType(d->r);
        if (k == XML_READER_TYPE_ELEMENT) {
            const char *cn = lname(d);
            if (strcmp(cn, "is") == 0) {
                cr->has_is = true;
                if (read_string_item(c, d, "is", &cr->is) != 0)
                    return -1;
            } else if (strcmp(cn, "v") == 0) {
                cr->has_v = true;
                into = xmlTextReaderIsEmptyElement(d->r) ? NULL : &cr->v;
            } else if (strcmp(cn, "f") == 0) {
                cr->has_f = true;
                into = xmlTextReaderIsEmptyElement(d->r) ? NULL : &cr->f;
            }
        } else if (k == XML_READER_TYPE_END_ELEMENT) {
            if (strcmp(lname(d), "c") == 0)
                return 1;
            into = NULL;
        } else if (into) {
            tbuf_text(d, into, bad);
        }
    }
    return rc;
}

/* A <c> cell of the sheet (cr: the reader's buffers), its text put in s;
 * *row and *col follow the place of the cells. Returns 1 to read on, 0 when
 * the part ends inside the cell, -1 after fail(). */
static int sheet_cell(xlsx *x, xrd *d, store *s, cellread *cr, const char *sheet, uint32_t *row,
                      uint32_t *col)
{
    wbctx *c = x->c;
    char num[WB_NUM_MAX];
    int bad = 0;
    if (cell_attributes(c, d, sheet, cr, row, col) != 0)
        return -1;
    if (xmlTextReaderIsEmptyElement(d->r))
        return count_cells(c, sheet, 1) != 0 ? -1 : 1;
    int rc = cell_children(c, d, cr, &bad);
    if (rc != 1)
        return rc;
    if (bad) {
        fail(c, sheet, "单元格文字过长（a cell's text is too long）");
        return -1;
    }
    if (cr->has_v && strcmp(cr->type, "str") == 0)
        decode_xstring(&cr->v);
    const char *text;
    size_t tl;
    if (cell_text(c, x, cr, sheet, num, sizeof num, &text, &tl) != 0 ||
        store_cell(c, s, sheet, cr->row, cr->col, text, tl) != 0)
        return -1;
    return 1;
}

/* A <mergeCell> of the sheet: its range kept in s (a single cell or
 * nonsense is nothing to copy). Returns 1, or -1 after fail(). */
static int sheet_merge(wbctx *c, xrd *d, store *s, const char *sheet)
{
    const char *ref = attr(d, "ref", false);
    merge m;
    if (ref == NULL || parse_range(ref, &m) != 0)
        return 1;
    if (s->nm >= (size_t)c->max_cells ||
        grow((void **)&s->m, &s->capm, s->nm + 1, sizeof *s->m) != 0) {
        fail(c, sheet, "合并单元格过多（too many merged ranges）");
        return -1;
    }
    s->m[s->nm++] = m;
    return 1;
}

/* Streams one worksheet into a store, then into out's CSV text. */
static int read_sheet(xlsx *x, const char *part, wb_sheet *out)
{
    wbctx *c = x->c;
    store s = {0};
    cellread cr = {0};
    xrd d;
    uint32_t row = 0, col = 0;
    bool in_data = false;
    int rc = xrd_open(x, &d, part, out->name);
    if (rc == 0) {
        fail(c, out->name, "找不到工作表的 XML 部件 '%s'（the sheet's XML part '%s' is missing）",
             part, part);
        return -1;
    }
    if (rc < 0)
        return -1;
    while ((rc = xrd_next(c, &d)) == 1) {
        int t = xmlTextReaderNodeType(d.r);
        if (t != XML_READER_TYPE_ELEMENT && t != XML_READER_TYPE_END_ELEMENT)
            continue;
        const char *n = lname(&d);
        if (t == XML_READER_TYPE_END_ELEMENT) {
            if (strcmp(n, "sheetData") == 0)
                in_data = false;
            continue;
        }
        if (strcmp(n, "sheetData") == 0)
            in_data = !xmlTextReaderIsEmptyElement(d.r);
        else if (in_data && strcmp(n, "row") == 0)
            rc = sheet_row(c, &d, out->name, &row, &col);
        else if (in_data && strcmp(n, "c") == 0)
            rc = sheet_cell(x, &d, &s, &cr, out->name, &row, &col);
        else if (strcmp(n, "mergeCell") == 0)
            rc = sheet_merge(c, &d, &s, out->name);
        if (rc != 1)
            break;
    }
    xrd_close(&d);
    free(cr.v.s);
    free(cr.f.s);
    free(cr.is.s);
    if (rc >= 0 && (store_merge(c, &s, out->name) != 0 || store_csv(c, &s, out->name, out) != 0))
        rc = -1;
    store_free(&s);
    return rc < 0 ? -1 : 0;
}

/* The sheets workbook.xml lists, in order. */
typedef struct sheetrefs {
    sheetref *v;
    size_t n, cap;
} sheetrefs;

/* Adds a <sheet> (its name and relationship id, either NULL) to refs.
 * Returns 0, or -1 after fail(). */
static int add_sheetref(wbctx *c, sheetrefs *refs, const char *name, const char *rid)
{
    if (refs->n >= WB_MAX_SHEETS) {
        fail(c, NULL, "工作表超过 %d 个（more than %d sheets）", WB_MAX_SHEETS, WB_MAX_SHEETS);
        return -1;
    }
    if (grow((void **)&refs->v, &refs->cap, refs->n + 1, sizeof *refs->v) != 0) {
        fail(c, NULL, "内存不足（out of memory）");
        return -1;
    }
    sheetref *r = &refs->v[refs->n++];
    r->name = clean_name(name ? name : "?", 100);
    r->rid = strdup(rid ? rid : "");
    if (!r->name || !r->rid) {
        fail(c, NULL, "内存不足（out of memory）");
        return -1;
    }
    return 0;
}

/* Reads the workbook part wbpart (workbook.xml): the sheets in order into
 * refs, and the date system into wb. Returns 0, or -1 after fail(). */
static int read_workbook_part(xlsx *x, workbook *wb, const char *wbpart, sheetrefs *refs)
{
    wbctx *c = x->c;
    xrd d;
    int r = xrd_open(x, &d, wbpart, NULL);
    if (r == 0)
        fail(c, NULL, "不是 Excel 工作簿：缺少 '%s'（not an Excel workbook: no '%s' in the zip）",
             wbpart, wbpart);
    if (r <= 0)
        return -1;
    while ((r = xrd_next(c, &d)) == 1) {
        if (is_elem(&d, "workbookPr")) {
            const char *v = attr(&d, "date1904", false);
            wb->date1904 = v && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0);
        } else if (is_elem(&d, "sheet")) {
            const char *name = attr(&d, "name", false);
            const char *rid = attr(&d, "id", true);
            if (add_sheetref(c, refs, name, rid) != 0) {
                r = -1;
                break;
            }
        }
    }
    xrd_close(&d);
    if (r < 0)
        return -1;
    if (refs->n == 0) {
        fail(c, NULL, "工作簿中没有工作表（the workbook has no sheets）");
        return -1;
    }
    return 0;
}

/* Reads the sheets of refs into wb->sheets, through the workbook's
 * relationships wbrels: a worksheet is read, another kind of sheet skipped.
 * Returns 0, or -1 after fail(). */
static int read_sheets(xlsx *x, workbook *wb, const rels *wbrels, sheetrefs *refs)
{
    wb->sheets = calloc(refs->n, sizeof *wb->sheets);
    if (wb->sheets == NULL) {
        fail(x->c, NULL, "内存不足（out of memory）");
        return -1;
    }
    for (size_t i = 0; i < refs->n; i++) {
        wb_sheet *sh = &wb->sheets[wb->n_sheets++];
        sh->name = refs->v[i].name;
        refs->v[i].name = NULL;
        const rel *rl = rel_by_id(wbrels, refs->v[i].rid);
        if (rl == NULL) {
            fail(x->c, sh->name, "工作表在工作簿关系中不存在（the sheet's relationship '%s' is "
                 "missing）", refs->v[i].rid);
            return -1;
        }
        if (!rel_is(rl, "worksheet")) {
            sh->skip = rel_is(rl, "chartsheet") ? "图表工作表（a chart sheet）"
                                                : "不是普通工作表（not a worksheet）";
            continue;
        }
        if (read_sheet(x, rl->target, sh) != 0)
            return -1;
    }
    return 0;
}

static int read_xlsx(workbook *wb, wbctx *c, const char *data, size_t len)
{
    xlsx x = {.c = c};
    rels root = {0}, wbrels = {0};
    sheetrefs refs = {0};
    char *wbpart = NULL;
    int rc = -1;

    if (zip_check_open(&x, data, len) != 0)
        goto out;
    if (read_rels(&x, "", &root) < 0)
        goto out;
    const rel *od = rel_of_type(&root, "officeDocument");
    wbpart = strdup(od ? od->target : "xl/workbook.xml");
    if (wbpart == NULL) {
        fail(c, NULL, "内存不足（out of memory）");
        goto out;
    }
    if (read_rels(&x, wbpart, &wbrels) < 0)
        goto out;
    /* workbook.xml: the sheets in order, and the date system */
    if (read_workbook_part(&x, wb, wbpart, &refs) != 0)
        goto out;
    const rel *ss = rel_of_type(&wbrels, "sharedStrings");
    const rel *sty = rel_of_type(&wbrels, "styles");
    if (ss && read_shared_strings(&x, ss->target) < 0)
        goto out;
    if (sty && read_styles(&x, sty->target) < 0)
        goto out;
    if (read_sheets(&x, wb, &wbrels, &refs) != 0)
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < refs.n; i++) {
        free(refs.v[i].name);
        free(refs.v[i].rid);
    }
    free(refs.v);
    free(wbpart);
    rels_free(&root);
    rels_free(&wbrels);
    free(x.sst_text);
    free(x.sst);
    free(x.xf_date);
    if (x.za)
        zip_discard(x.za);
    return rc;
}

/* ======================================================================
 * .xls: libfreexl
 * ====================================================================== */

static const char *freexl_why(int rc)
{
    switch (rc) {
    case FREEXL_INSUFFICIENT_MEMORY: return "内存不足（out of memory）";
    case FREEXL_INVALID_CFBF_HEADER:
    case FREEXL_CFBF_INVALID_SIGNATURE:
    case FREEXL_CFBF_INVALID_SECTOR_SIZE:
    case FREEXL_CFBF_EMPTY_FAT_CHAIN:
    case FREEXL_CFBF_ILLEGAL_FAT_ENTRY:
    case FREEXL_INVALID_MINI_STREAM:
    case FREEXL_CFBF_ILLEGAL_MINI_FAT_ENTRY:
    case FREEXL_CFBF_READ_ERROR:
    case FREEXL_CFBF_SEEK_ERROR:
        return "OLE2 复合文件已损坏（a corrupt OLE2 compound file）";
    case FREEXL_BIFF_WORKBOOK_NOT_FOUND:
        return "其中没有 Excel 工作簿，可能是其他 Office 文档或已加密的 .xlsx（no Excel workbook "
               "in it: another Office document, or an encrypted .xlsx）";
    case FREEXL_BIFF_INVALID_BOF:
    case FREEXL_BIFF_INVALID_SST:
    case FREEXL_BIFF_ILLEGAL_SST_INDEX:
    case FREEXL_CRAFTED_FILE:
        return "BIFF 记录已损坏（corrupt BIFF records）";
    case FREEXL_UNSUPPORTED_CHARSET:
    case FREEXL_INVALID_CHARACTER:
        return "不支持的字符集（an unsupported character set）";
    default:
        return "无法读取（unreadable）";
    }
}

/* A descriptor whose /proc/self/fd path libfreexl can open, holding the data. */
static int xls_file(const char *data, size_t len, char *path, size_t pathlen)
{
    int fd = memfd_create("parkpulse-xls", MFD_CLOEXEC);
    if (fd >= 0) {
        snprintf(path, pathlen, "/proc/self/fd/%d", fd);
        if (access(path, R_OK) != 0) {
            close(fd);
            fd = -1;
        }
    }
    if (fd < 0) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, pathlen, "%s/parkpulse-xls.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
            return -errno;
    } else {
        path[0] = '\0';
    }
    for (size_t o = 0; o < len;) {
        ssize_t w = write(fd, data + o, len - o);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            if (path[0])
                unlink(path);
            return -e;
        }
        o += (size_t)w;
    }
    if (path[0] == '\0')
        snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    /* else a temporary file: unlinked once libfreexl has it open */
    return fd;
}

/* The text of a .xls cell v: numbers as workbook_format_number writes them,
 * a date or date-time as its day; num (len bytes) may hold it. */
static const char *xls_cell_text(const FreeXL_CellValue *v, char *num, size_t len)
{
    switch (v->type) {
    case FREEXL_CELL_INT:
        snprintf(num, len, "%d", v->value.int_value);
        return num;
    case FREEXL_CELL_DOUBLE:
        workbook_format_number(v->value.double_value, num, len);
        return num;
    case FREEXL_CELL_DATE:
    case FREEXL_CELL_DATETIME:
        /* "YYYY-MM-DD[ HH:MM:SS]": the day */
        snprintf(num, len, "%.10s", v->value.text_value ? v->value.text_value : "");
        return num;
    case FREEXL_CELL_TEXT:
    case FREEXL_CELL_SST_TEXT:
    case FREEXL_CELL_TIME:
        return v->value.text_value ? v->value.text_value : "";
    default:
        return "";
    }
}

/* Opens the .xls of data (len bytes) with libfreexl into *h (to be closed
 * by freexl_close). Returns 0, or -1 after fail() (*h may be set). */
static int xls_open(wbctx *c, const char *data, size_t len, const void **h)
{
    char path[PATH_MAX];
    int fd = xls_file(data, len, path, sizeof path);
    if (fd < 0) {
        fail(c, NULL, "无法为 .xls 建立临时文件：%s（cannot make a temporary file for the .xls: "
             "%s）", strerror(-fd), strerror(-fd));
        return -1;
    }
    bool temp = strncmp(path, "/proc/", 6) != 0;
    int frc = freexl_open(path, h);
    if (temp)
        unlink(path);
    close(fd);
    if (frc != FREEXL_OK) {
        fail(c, NULL, "不是有效的 .xls 工作簿：%s（not a valid .xls workbook）", freexl_why(frc));
        return -1;
    }
    return 0;
}

/* Reads sheet i of the open .xls h into sh (its name, then its cells as
 * CSV). Returns 0, or -1 after fail(). */
static int read_xls_sheet(wbctx *c, const void *h, unsigned short i, wb_sheet *sh)
{
    const char *name = NULL;
    if (freexl_get_worksheet_name(h, i, &name) != FREEXL_OK)
        name = "?";
    sh->name = clean_name(name, 100);
    if (sh->name == NULL) {
        fail(c, NULL, "内存不足（out of memory）");
        return -1;
    }
    unsigned int rows = 0;
    unsigned short cols = 0;
    if (freexl_select_active_worksheet(h, i) != FREEXL_OK ||
        freexl_worksheet_dimensions(h, &rows, &cols) != FREEXL_OK) {
        fail(c, sh->name, "工作表无法读取（the sheet cannot be read）");
        return -1;
    }
    if (count_cells(c, sh->name, (size_t)rows * cols) != 0)
        return -1;
    c->cells -= (size_t)rows * cols; /* counted again, cell by cell, below */
    store s = {0};
    char num[WB_NUM_MAX];
    int bad = 0;
    for (unsigned int r = 0; r < rows && !bad; r++) {
        for (unsigned short col = 0; col < cols && !bad; col++) {
            FreeXL_CellValue v;
            if (freexl_get_cell_value(h, r, col, &v) != FREEXL_OK)
                continue;
            const char *t = xls_cell_text(&v, num, sizeof num);
            if (store_cell(c, &s, sh->name, r + 1, (uint32_t)col + 1, t, strlen(t)) != 0)
                bad = 1;
        }
    }
    if (bad || store_csv(c, &s, sh->name, sh) != 0)
        bad = 1;
    store_free(&s);
    return bad ? -1 : 0;
}

static int read_xls(workbook *wb, wbctx *c, const char *data, size_t len)
{
    const void *h = NULL;
    int rc = -1;
    if (xls_open(c, data, len, &h) != 0)
        goto out;
    unsigned int info = 0;
    if (freexl_get_info(h, FREEXL_BIFF_PASSWORD, &info) == FREEXL_OK &&
        info == FREEXL_BIFF_OBFUSCATED) {
        fail(c, NULL, "工作簿设有密码，无法读取（the workbook is password-protected）");
        goto out;
    }
    if (freexl_get_info(h, FREEXL_BIFF_DATEMODE, &info) == FREEXL_OK)
        wb->date1904 = info == FREEXL_BIFF_DATEMODE_1904;
    unsigned int n_sheets = 0;
    if (freexl_get_info(h, FREEXL_BIFF_SHEET_COUNT, &n_sheets) != FREEXL_OK || n_sheets == 0) {
        fail(c, NULL, "工作簿中没有工作表（the workbook has no sheets）");
        goto out;
    }
    if (n_sheets > WB_MAX_SHEETS) {
        fail(c, NULL, "工作表超过 %d 个（more than %d sheets）", WB_MAX_SHEETS, WB_MAX_SHEETS);
        goto out;
    }
    wb->sheets = calloc(n_sheets, sizeof *wb->sheets);
    if (wb->sheets == NULL) {
        fail(c, NULL, "内存不足（out of memory）");
        goto out;
    }
    for (unsigned short i = 0; i < n_sheets; i++)
        if (read_xls_sheet(c, h, i, &wb->sheets[wb->n_sheets++]) != 0)
            goto out;
    rc = 0;
out:
    if (h)
        freexl_close(h);
    return rc;
}

/*
 * libfreexl 1.0.6 (Debian 12) reads out of bounds on some crafted files
 * (found by tests/fuzz/fuzz_xlsx.c: a stack-buffer read of 26 KB in its
 * charset conversion, at freexl_open), and it allocates a sheet's whole grid
 * at once. So it runs in a child process with bounded time (and, outside
 * sanitizer builds, bounded memory); the child writes the sheets' CSV back
 * through a pipe, and whatever happens to it the caller sees a refusal.
 */
#define XLS_CHILD_SECONDS 30
#define XLS_CHILD_MEMORY  (2048ULL << 20)
#define XLS_REPLY_MAX     ((size_t)512 << 20)

#if defined(__SANITIZE_ADDRESS__)
#define XLS_NO_RLIMIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XLS_NO_RLIMIT 1
#endif
#endif

static bool put(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* The child: reads the .xls and writes the workbook to fd; never returns. */
static void xls_child(int fd, workbook *wb, wbctx *c, const char *data, size_t len)
{
#ifndef XLS_NO_RLIMIT
    struct rlimit rl = {XLS_CHILD_MEMORY, XLS_CHILD_MEMORY};
    setrlimit(RLIMIT_AS, &rl);
#endif
    alarm(XLS_CHILD_SECONDS);
    int32_t rc = read_xls(wb, c, data, len);
    uint8_t d1904 = wb->date1904;
    uint32_t n = (uint32_t)wb->n_sheets;
    bool ok = put(fd, &rc, sizeof rc) && put(fd, &d1904, 1) &&
              put(fd, wb->error, sizeof wb->error) &&
              put(fd, wb->error_sheet, sizeof wb->error_sheet) && put(fd, &n, sizeof n);
    for (uint32_t i = 0; ok && i < n; i++) {
        const wb_sheet *sh = &wb->sheets[i];
        uint64_t nl = sh->name ? strlen(sh->name) : 0, cl = sh->csv ? sh->len : 0,
                 rows = sh->rows;
        uint8_t has = sh->csv != NULL;
        ok = put(fd, &nl, sizeof nl) && put(fd, sh->name ? sh->name : "", nl) &&
             put(fd, &has, 1) && put(fd, &cl, sizeof cl) && put(fd, sh->csv ? sh->csv : "", cl) &&
             put(fd, &rows, sizeof rows);
    }
    _exit(ok ? 0 : 1);
}

typedef struct reply {
    const char *p, *end;
} reply;

static bool get(reply *r, void *out, size_t n)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    memcpy(out, r->p, n);
    r->p += n;
    return true;
}

/* A copy of the next n bytes as a string, or NULL. */
static char *get_str(reply *r, uint64_t n)
{
    if ((uint64_t)(r->end - r->p) < n)
        return NULL;
    char *s = malloc((size_t)n + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, r->p, (size_t)n);
    s[n] = '\0';
    r->p += n;
    return s;
}

/* Reads the child's whole answer from fd into *buf (*n bytes). Returns
 * false when it is larger than XLS_REPLY_MAX or memory ran out. */
static bool read_reply(int fd, char **buf, size_t *n)
{
    size_t cap = 0;
    for (;;) {
        if (*n == cap) {
            if (cap >= XLS_REPLY_MAX)
                return false;
            size_t nc = cap ? cap * 2 : 1 << 16;
            char *nb = realloc(*buf, nc);
            if (nb == NULL)
                return false;
            *buf = nb;
            cap = nc;
        }
        ssize_t r = read(fd, *buf + *n, cap - *n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return true;
        *n += (size_t)r;
    }
}

/* Takes the child's answer (buf, n bytes: see xls_child) into wb. Returns
 * the child's result (0, or -1 with its failure in wb), or -1 after fail()
 * when the answer is short. */
static int take_reply(workbook *wb, wbctx *c, const char *buf, size_t n)
{
    reply r = {buf, buf + n};
    int32_t crc;
    uint8_t d1904;
    uint32_t ns;
    bool ok = get(&r, &crc, sizeof crc) && get(&r, &d1904, 1) &&
              get(&r, wb->error, sizeof wb->error) &&
              get(&r, wb->error_sheet, sizeof wb->error_sheet) && get(&r, &ns, sizeof ns) &&
              ns <= WB_MAX_SHEETS;
    wb->error[sizeof wb->error - 1] = '\0';
    wb->error_sheet[sizeof wb->error_sheet - 1] = '\0';
    if (ok && ns > 0 && (wb->sheets = calloc(ns, sizeof *wb->sheets)) == NULL)
        ok = false;
    for (uint32_t i = 0; ok && i < ns; i++) {
        wb_sheet *sh = &wb->sheets[wb->n_sheets++];
        uint64_t nl = 0, cl = 0, rows = 0;
        uint8_t has;
        ok = get(&r, &nl, sizeof nl) && (sh->name = get_str(&r, nl)) != NULL &&
             get(&r, &has, 1) && get(&r, &cl, sizeof cl);
        if (ok && has)
            ok = (sh->csv = get_str(&r, cl)) != NULL;
        ok = ok && get(&r, &rows, sizeof rows);
        sh->len = (size_t)cl;
        sh->rows = (size_t)rows;
    }
    if (!ok) {
        c->failed = false;
        fail(c, NULL, "无法读取该 .xls（the .xls cannot be read: a short answer from the "
             "reader）");
        return -1;
    }
    wb->date1904 = d1904;
    c->failed = crc != 0;
    return crc == 0 ? 0 : -1;
}

/* The failure of a child that did not exit with 0 (its wait status). */
static void child_failed(wbctx *c, int status)
{
    char why[64];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "%s", WTERMSIG(status) == SIGALRM ? "took too long"
                                                                   : strsignal(WTERMSIG(status)));
    else
        snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
    fail(c, NULL, "无法读取该 .xls：读取库 libfreexl 出错（%s）（the .xls cannot be read: "
         "libfreexl failed on it: %s）", why, why);
}

static int read_xls_isolated(workbook *wb, wbctx *c, const char *data, size_t len)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        fail(c, NULL, "无法读取 .xls：%s（cannot read the .xls: pipe: %s）", strerror(errno),
             strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        fail(c, NULL, "无法读取 .xls：%s（cannot read the .xls: fork: %s）", strerror(e),
             strerror(e));
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        xls_child(p[1], wb, c, data, len);
    }
    close(p[1]);
    char *buf = NULL;
    size_t n = 0;
    bool big = !read_reply(p[0], &buf, &n);
    close(p[0]);
    if (big)
        kill(pid, SIGKILL);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int rc = -1;
    if (big)
        fail(c, NULL, "内存不足或 .xls 内容过大（out of memory, or the .xls is too large）");
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        child_failed(c, status);
    else
        rc = take_reply(wb, c, buf, n);
    free(buf);
    return rc;
}

/* ======================================================================
 * Entry points
 * ====================================================================== */

int workbook_read(const char *data, size_t len, const wb_limits *lim, workbook *wb)
{
    memset(wb, 0, sizeof *wb);
    wbctx c = {.wb = wb,
               .max_inflated = lim && lim->max_inflated ? lim->max_inflated : WB_MAX_INFLATED,
               .max_cells = lim && lim->max_cells ? lim->max_cells : WB_MAX_CELLS};
    wb->format = workbook_format(data, len);
    if (wb->format == WB_XLSX)
        return read_xlsx(wb, &c, data, len);
    if (wb->format == WB_XLS)
        return read_xls_isolated(wb, &c, data, len);
    fail(&c, NULL, "不是 Excel 工作簿（not an Excel workbook: neither a zip nor an OLE2 file）");
    return -1;
}

void workbook_free(workbook *wb)
{
    if (wb == NULL)
        return;
    for (size_t i = 0; i < wb->n_sheets; i++) {
        free(wb->sheets[i].name);
        free(wb->sheets[i].csv);
    }
    free(wb->sheets);
    memset(wb, 0, sizeof *wb);
}

/* ---- the whole road: sheets read as CSV, merged ------------------------- */

typedef struct keyed {
    const char *park, *indicator;
    int when;
    size_t sheet;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    int r = strcmp(x->park, y->park);
    if (r == 0)
        r = strcmp(x->indicator, y->indicator);
    if (r == 0)
        r = (x->when > y->when) - (x->when < y->when);
    if (r == 0)
        r = (x->sheet > y->sheet) - (x->sheet < y->sheet);
    return r;
}

static void add_error(csv_result *out, int line, const char *reason)
{
    out->n_errors_total++;
    if (out->n_errors >= CSV_MAX_ERRORS)
        return;
    csv_error *ne = realloc(out->errors, (out->n_errors + 1) * sizeof *ne);
    if (ne == NULL)
        return;
    out->errors = ne;
    ne[out->n_errors].line = line;
    text_copy_utf8(ne[out->n_errors].reason, sizeof ne[out->n_errors].reason, reason);
    out->n_errors++;
}

/* Figures given by two sheets: one error each (sheet_of: each figure's sheet). */
static size_t cross_sheet_duplicates(const workbook *wb, csv_result *out, const size_t *obs_sheet,
                                     const size_t *tg_sheet, const char *name, FILE *rep)
{
    size_t n = out->n_obs + out->n_targets, dups = 0;
    if (n < 2)
        return 0;
    keyed *k = malloc(n * sizeof *k);
    if (k == NULL)
        return 0;
    for (size_t i = 0; i < out->n_obs; i++)
        k[i] = (keyed){out->obs[i].park, out->obs[i].indicator, out->obs[i].period, obs_sheet[i]};
    for (size_t i = 0; i < out->n_targets; i++)
        k[out->n_obs + i] = (keyed){out->targets[i].park, out->targets[i].indicator,
                                    -out->targets[i].year - 1, tg_sheet[i]};
    qsort(k, n, sizeof *k, keyed_cmp);
    for (size_t i = 1; i < n; i++) {
        if (k[i].when != k[i - 1].when || strcmp(k[i].park, k[i - 1].park) != 0 ||
            strcmp(k[i].indicator, k[i - 1].indicator) != 0 || k[i].sheet == k[i - 1].sheet)
            continue;
        char what[32], reason[320];
        if (k[i].when >= 0)
            snprintf(what, sizeof what, "%04d-%02d", pp_period_year(k[i].when),
                     pp_period_month(k[i].when));
        else
            snprintf(what, sizeof what, "%d 年目标 (target)", -k[i].when - 1);
        const char *a = wb->sheets[k[i - 1].sheet].name, *b = wb->sheets[k[i].sheet].name;
        snprintf(reason, sizeof reason, "%s %s %s 在工作表 '%s' 和 '%s' 中都有（the same figure is "
                 "in sheets '%s' and '%s'）", k[i].park, k[i].indicator, what, a, b, a, b);
        fprintf(rep, "%s:%s: %s\n", name, b, reason);
        add_error(out, 0, reason);
        dups++;
    }
    free(k);
    return dups;
}

/* Appends the n records of size bytes at src to *arr (which holds have), and
 * n times sheet to *sheets (as long); either array may have grown when it
 * fails (-1). */
static int append_tagged(void **arr, size_t have, const void *src, size_t n, size_t size,
                         size_t **sheets, size_t sheet)
{
    if (n == 0)
        return 0;
    void *na = realloc(*arr, (have + n) * size);
    size_t *ns = realloc(*sheets, (have + n) * sizeof *ns);
    if (na)
        *arr = na;
    if (ns)
        *sheets = ns;
    if (!na || !ns)
        return -1;
    memcpy((char *)na + have * size, src, n * size);
    for (size_t i = 0; i < n; i++)
        ns[have + i] = sheet;
    return 0;
}

static int append_records(csv_result *out, const csv_result *r, size_t sheet, size_t **obs_sheet,
                          size_t **tg_sheet)
{
    void *obs = out->obs, *targets = out->targets;
    int rc = append_tagged(&obs, out->n_obs, r->obs, r->n_obs, sizeof *r->obs, obs_sheet, sheet);
    out->obs = obs;
    if (rc != 0)
        return -1;
    out->n_obs += r->n_obs;
    rc = append_tagged(&targets, out->n_targets, r->targets, r->n_targets, sizeof *r->targets,
                       tg_sheet, sheet);
    out->targets = targets;
    if (rc != 0)
        return -1;
    out->n_targets += r->n_targets;
    return 0;
}

/* Closes a memstream into a string; NULL when empty or on failure. */
static char *stream_take(FILE *f, char **buf, size_t *size)
{
    if (f == NULL)
        return NULL;
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0)
        bad = true;
    if (bad || *size == 0) {
        free(*buf);
        *buf = NULL;
    }
    return *buf;
}

/* One workbook_parse under way: the name its messages give the input, its
 * three texts being written (the report, the notes, why each skipped sheet
 * was not read) and the sheet each record taken came from. */
typedef struct {
    const char *name;
    FILE *rep, *nts, *unr;
    char *rbuf, *nbuf, *ubuf;
    size_t rsize, nsize, usize;
    size_t *obs_sheet, *tg_sheet;
    size_t n_read; /* sheets with a recognised header */
} wb_parse;

/* A sheet with no CSV text (a chart sheet, an empty one): a note. */
static void note_sheet_without_text(wb_parse *p, const wb_sheet *sh)
{
    fprintf(p->nts, "%s:%s: 跳过：%s（skipped）\n", p->name, sh->name,
            sh->skip ? sh->skip : "没有内容（no content）");
    fprintf(p->unr, "%s:%s: %s\n", p->name, sh->name, sh->skip ? sh->skip : "没有内容（empty）");
}

/* A sheet with no recognised header (notes, a cover, a chart) is skipped,
 * not refused: a note, and the reader's errors r kept for when no sheet is
 * read. */
static void note_sheet_without_header(wb_parse *p, const wb_sheet *sh, const csv_result *r)
{
    fprintf(p->nts, "%s:%s: 跳过：没有可识别的表头（skipped: no recognised header）\n", p->name,
            sh->name);
    for (size_t k = 0; k < r->n_errors; k++) {
        if (r->errors[k].line > 0)
            fprintf(p->unr, "%s:%s!%d: %s\n", p->name, sh->name, r->errors[k].line,
                    r->errors[k].reason);
        else
            fprintf(p->unr, "%s:%s: %s\n", p->name, sh->name, r->errors[k].reason);
    }
    if (r->n_errors == 0)
        fprintf(p->unr, "%s:%s: 没有可识别的表头（no recognised header）\n", p->name, sh->name);
}

/* Takes what the reader made of sheet i (sh), r, into out: its errors into
 * the report, or, while the workbook has none, its records. */
static void take_sheet(wb_parse *p, csv_result *out, size_t i, const wb_sheet *sh,
                       const csv_result *r)
{
    if (p->n_read++ == 0)
        out->layout = r->layout;
    out->n_rows += r->n_rows;
    out->out_of_memory |= r->out_of_memory;
    if (r->n_errors_total > 0) {
        char *why = csv_errors_report_at(r, p->name, sh->name);
        if (why)
            fputs(why, p->rep);
        free(why);
        for (size_t k = 0; k < r->n_errors; k++)
            add_error(out, r->errors[k].line, r->errors[k].reason);
        out->n_errors_total += r->n_errors_total - r->n_errors;
    } else if (out->n_errors_total == 0 &&
               append_records(out, r, i, &p->obs_sheet, &p->tg_sheet) != 0) {
        add_error(out, 0, "内存不足（out of memory）");
        out->out_of_memory = true;
        fprintf(p->rep, "%s: 内存不足（out of memory）\n", p->name);
    }
}

/* Reads every sheet of wb into out. Returns -1 when stop asked to stop
 * (out->stopped), else 0. */
static int parse_sheets(wb_parse *p, workbook *wb, const pp_catalog *cat, csv_result *out,
                        bool (*stop)(void *ud), void *ud)
{
    for (size_t i = 0; i < wb->n_sheets; i++) {
        wb_sheet *sh = &wb->sheets[i];
        if (sh->csv == NULL) {
            note_sheet_without_text(p, sh);
            continue;
        }
        csv_result r;
        csv_parse_stoppable(sh->csv, sh->len, cat, &r, stop, ud);
        if (r.stopped) {
            csv_result_free(&r);
            out->stopped = true;
            return -1;
        }
        if (r.layout == CSV_LAYOUT_NONE || !r.header_recognised)
            note_sheet_without_header(p, sh, &r);
        else
            take_sheet(p, out, i, sh, &r);
        csv_result_free(&r);
    }
    return 0;
}

/* After the sheets: a workbook of which no sheet was read is refused, with
 * why each was not; otherwise the same figure in two sheets is an error. */
static void check_sheets_read(wb_parse *p, workbook *wb, csv_result *out)
{
    if (p->n_read == 0) {
        fprintf(p->rep, "%s: 工作簿中没有可识别表头的工作表（园区、指标、期间、数值……），未读取任何数据"
                "（no sheet of the workbook has a recognised header: park, indicator, period, "
                "value, …; nothing was read）\n", p->name);
        add_error(out, 0, "工作簿中没有可识别表头的工作表（no sheet has a recognised header）");
        fflush(p->unr);
        if (p->ubuf && p->usize)
            fwrite(p->ubuf, 1, p->usize, p->rep);
    } else if (out->n_errors_total == 0) {
        cross_sheet_duplicates(wb, out, p->obs_sheet, p->tg_sheet, p->name, p->rep);
    }
}

/* Closes p's texts: the report goes to *report when out was refused (and
 * not stopped), the notes to *notes when asked for (notes not NULL). */
static void finish_parse(wb_parse *p, const csv_result *out, char **report, char **notes)
{
    free(p->obs_sheet);
    free(p->tg_sheet);
    if (p->rep) {
        if (out->n_errors_total > 0 && !out->stopped) {
            *report = stream_take(p->rep, &p->rbuf, &p->rsize);
        } else {
            stream_take(p->rep, &p->rbuf, &p->rsize);
            free(p->rbuf);
        }
    }
    if (p->nts) {
        char *s = stream_take(p->nts, &p->nbuf, &p->nsize);
        if (notes)
            *notes = s;
        else
            free(s);
    }
    if (p->unr) {
        stream_take(p->unr, &p->ubuf, &p->usize);
        free(p->ubuf);
    }
}

int workbook_parse(const char *data, size_t len, const char *name, const pp_catalog *cat,
                   const wb_limits *lim, csv_result *out, char **report, char **notes,
                   bool (*stop)(void *ud), void *ud)
{
    workbook wb;
    wb_parse p = {.name = name != NULL ? name : "input"};
    int rc = -1;

    memset(out, 0, sizeof *out);
    *report = NULL;
    if (notes)
        *notes = NULL;
    out->encoding = workbook_format_name(workbook_format(data, len));
    p.rep = open_memstream(&p.rbuf, &p.rsize);
    p.nts = open_memstream(&p.nbuf, &p.nsize);
    p.unr = open_memstream(&p.ubuf, &p.usize);
    if (p.rep == NULL || p.nts == NULL || p.unr == NULL) {
        add_error(out, 0, "内存不足（out of memory）");
        if (p.rep)
            fprintf(p.rep, "%s: 内存不足（out of memory）\n", p.name);
        goto done;
    }
    if (workbook_read(data, len, lim, &wb) != 0) {
        if (wb.error_sheet[0])
            fprintf(p.rep, "%s:%s: %s\n", p.name, wb.error_sheet, wb.error);
        else
            fprintf(p.rep, "%s: %s\n", p.name, wb.error);
        add_error(out, 0, wb.error);
        workbook_free(&wb);
        goto done;
    }
    if (parse_sheets(&p, &wb, cat, out, stop, ud) != 0) {
        workbook_free(&wb);
        goto done;
    }
    check_sheets_read(&p, &wb, out);
    workbook_free(&wb);
    if (out->n_errors_total > 0) {
        /* nothing is taken from a refused workbook */
        free(out->obs);
        free(out->targets);
        out->obs = NULL;
        out->targets = NULL;
        out->n_obs = out->n_targets = 0;
    } else {
        rc = 0;
    }
done:
    finish_parse(&p, out, report, notes);
    if (out->stopped)
        rc = -1;
    return rc;
}
