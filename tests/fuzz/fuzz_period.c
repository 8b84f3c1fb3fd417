/*
 * fuzz_period.c — libFuzzer harness for the period and value parsers
 * (csv_parse_period, csv_parse_value in daemon/csv.c), which read CSV cells
 * and the period parameters of HTTP queries.
 *
 * Input: "text[\tunit column[\tindicator unit]]". Without a third field the
 * indicator unit is one of the catalogue's (config/indicators.conf), chosen
 * by the input's length. The text goes to both parsers.
 *
 * Invariants checked, beyond "no crash, no leak, no undefined behaviour":
 *   - a period is accepted only in PP_PERIOD_MIN_YEAR..PP_PERIOD_MAX_YEAR,
 *     months 1..12, and its written forms (2024-11, 202411, 2024/11, 2024M11,
 *     2024年1-11月, 2024年11月, full-width ２０２４－１１, padded with spaces)
 *     read back as the same period; pp_period_parse_canonical agrees;
 *   - a value is 1 (finite, set), 0 (missing, untouched) or -1 (untouched,
 *     with a reason); an accepted value written back as a plain decimal in
 *     the indicator's unit, with thousands separators, or in full-width
 *     digits reads back bit for bit;
 *   - every reason is NUL-terminated, and valid UTF-8 when the input is.
 */
#include "fuzz.h"

#include <math.h>

#include "csv.h"
#include "model.h"

static pp_config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cfg = fuzz_config(NULL);
    return 0;
}

static void check_why(const char *why, size_t len, bool utf8_in)
{
    FUZZ_ASSERT(memchr(why, '\0', len) != NULL, "reason not terminated");
    FUZZ_ASSERT(why[0] != '\0', "refused without a reason");
    FUZZ_ASSERT(!utf8_in || fuzz_utf8_str(why), "reason not UTF-8: %s", why);
}

/* ASCII digits and -./, of s as full-width characters (U+FF0C..U+FF19). */
static void full_width(const char *s, char *out, size_t len)
{
    size_t n = 0;
    for (; *s && n + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= '0' && c <= '9') || c == '-' || c == '.' || c == ',' || c == '/') {
            unsigned cp = 0xFF00u + (c - 0x20u);
            out[n++] = (char)0xEF;
            out[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            out[n++] = (char)(0x80 | (cp & 0x3F));
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
}

static void expect_period(const char *s, int want, const char *from)
{
    char why[320];
    int p = -1;
    int rc = csv_parse_period(s, &p, why, sizeof why);
    FUZZ_ASSERT(rc == 0 && p == want, "'%s' (from '%s') read as %d, rc %d (%s), want %d", s, from,
                p, rc, rc ? why : "", want);
}

static void fuzz_period(const char *s, bool utf8_in)
{
    char why[320], buf[160];
    int p = -12345;
    int rc = csv_parse_period(s, &p, why, sizeof why);
    FUZZ_ASSERT(rc == 0 || rc == -1, "rc %d", rc);
    if (rc != 0) {
        FUZZ_ASSERT(p == -12345, "period set on refusal");
        check_why(why, sizeof why, utf8_in);
        return;
    }
    int y = pp_period_year(p), m = pp_period_month(p);
    FUZZ_ASSERT(p >= 0 && y >= PP_PERIOD_MIN_YEAR && y <= PP_PERIOD_MAX_YEAR && m >= 1 && m <= 12,
                "'%s' accepted as %d", s, p);
    char canon[16];
    pp_period_format(p, canon, sizeof canon);
    int q = -1;
    FUZZ_ASSERT(pp_period_parse_canonical(canon, &q) == 0 && q == p, "canonical '%s'", canon);
    expect_period(canon, p, s);
    snprintf(buf, sizeof buf, "%04d%02d", y, m);
    expect_period(buf, p, s);
    snprintf(buf, sizeof buf, "%04d/%d", y, m);
    expect_period(buf, p, s);
    snprintf(buf, sizeof buf, "%04dM%02d", y, m);
    expect_period(buf, p, s);
    snprintf(buf, sizeof buf, "%04d年1-%d月", y, m);
    expect_period(buf, p, s);
    snprintf(buf, sizeof buf, "%04d年%d月", y, m);
    expect_period(buf, p, s);
    full_width(canon, buf, sizeof buf);
    expect_period(buf, p, s);
    if (strlen(s) < 100) {
        snprintf(buf, sizeof buf, "  %s \t", s);
        expect_period(buf, p, s);
    }
}

/* Writes v with thousands separators ("1,234,567.5"); false when %.17g of v
 * is not a plain decimal. */
static bool grouped(double v, char *out, size_t len)
{
    char plain[64];
    snprintf(plain, sizeof plain, "%.17g", v);
    if (strpbrk(plain, "eEni"))
        return false;
    const char *p = plain, *dot = strchr(plain, '.');
    size_t n = 0;
    if (*p == '-')
        out[n++] = *p++;
    size_t int_len = (size_t)((dot ? dot : plain + strlen(plain)) - p);
    for (size_t i = 0; i < int_len && n + 2 < len; i++) {
        if (i > 0 && (int_len - i) % 3 == 0)
            out[n++] = ',';
        out[n++] = p[i];
    }
    snprintf(out + n, len - n, "%s", dot ? dot : "");
    return true;
}

static void expect_value(const char *s, const char *unit_col, const char *unit, double want,
                         const char *from)
{
    char why[320];
    double v = NAN;
    int rc = csv_parse_value(s, unit_col, unit, &v, why, sizeof why);
    FUZZ_ASSERT(rc == 1 && v == want && signbit(v) == signbit(want),
                "'%s' (from '%s', unit '%s') read as %.17g, rc %d (%s), want %.17g", s, from, unit,
                v, rc, rc < 0 ? why : "", want);
}

static bool catalogue_unit(const char *unit)
{
    for (size_t i = 0; i < cfg->catalog.n_indicators; i++)
        if (strcmp(cfg->catalog.indicators[i].unit, unit) == 0)
            return true;
    return false;
}

static void fuzz_value(const char *s, const char *unit_col, const char *unit, bool utf8_in)
{
    char why[320], buf[256];
    double v = 12345.5;
    int rc = csv_parse_value(s, unit_col, unit, &v, why, sizeof why);
    FUZZ_ASSERT(rc >= -1 && rc <= 1, "rc %d", rc);
    if (rc < 0)
        check_why(why, sizeof why, utf8_in);
    if (rc <= 0) {
        FUZZ_ASSERT(v == 12345.5, "value set to %g with rc %d", v, rc);
        return;
    }
    FUZZ_ASSERT(isfinite(v), "'%s' read as %g", s, v);
    char plain[64];
    snprintf(plain, sizeof plain, "%.17g", v);
    if (strpbrk(plain, "eEni"))
        return; /* the reader takes plain decimals only */
    expect_value(plain, NULL, unit, v, s);
    if (catalogue_unit(unit)) { /* a unit the fuzzer made up may hold digits */
        expect_value(plain, unit, unit, v, s);
        snprintf(buf, sizeof buf, "%s%s", plain, unit);
        expect_value(buf, "", unit, v, s);
    }
    if (grouped(v, buf, sizeof buf))
        expect_value(buf, NULL, unit, v, s);
    char fw[256];
    full_width(plain, fw, sizeof fw);
    expect_value(fw, NULL, unit, v, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *s = fuzz_strndup(data, size);
    char *unit_col = NULL, *unit = NULL;
    char *tab = strchr(s, '\t');
    if (tab) {
        *tab = '\0';
        unit_col = tab + 1;
        if ((tab = strchr(unit_col, '\t')) != NULL) {
            *tab = '\0';
            unit = tab + 1;
        }
    }
    if (unit == NULL) {
        const pp_catalog *cat = &cfg->catalog;
        unit = cat->indicators[size % cat->n_indicators].unit;
    }
    bool utf8 = fuzz_utf8_str(s) && (unit_col == NULL || fuzz_utf8_str(unit_col)) &&
                fuzz_utf8_str(unit);
    fuzz_period(s, fuzz_utf8_str(s));
    fuzz_value(s, unit_col, unit, utf8);
    free(s);
    return 0;
}
