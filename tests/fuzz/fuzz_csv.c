/*
 * fuzz_csv.c — libFuzzer harness for the CSV reader (daemon/csv.c): any bytes
 * as one input (a spool file, an exec collector's output, a POST body), read
 * against the catalogue of tests/fixtures/parks.conf and config/indicators.conf.
 *
 * Invariants checked, beyond "no crash, no leak, no undefined behaviour":
 *   - csv_parse returns 0 exactly when no error was counted; at most
 *     CSV_MAX_ERRORS are kept; every reason is NUL-terminated valid UTF-8, and
 *     so is csv_errors_report; every error's line exists in the input;
 *   - the encoding is UTF-8 for every valid UTF-8 input;
 *   - every observation and target names a configured park and indicator by
 *     its id, has a period or year in the accepted range, a finite value, an
 *     OBS_STATUS of A/P/E/R, valid UTF-8 source and note; no two share a key;
 *   - what was accepted is accepted again, unchanged, when written back as a
 *     canonical file (park,indicator,YYYY-MM,value,status);
 *   - a valid UTF-8 input re-encoded as GB18030 reads the same (same errors,
 *     same figures).
 */
#include "fuzz.h"

#include <math.h>

#include "csv.h"
#include "model.h"
#include "text.h"

static pp_config *cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cfg = fuzz_config(NULL);
    return 0;
}

static void check_id(const char *id, bool park)
{
    const pp_catalog *cat = &cfg->catalog;
    if (park) {
        const pp_park *p = pp_catalog_park(cat, id);
        FUZZ_ASSERT(p != NULL && strcmp(p->id, id) == 0, "park '%s' is not a configured id", id);
    } else {
        const pp_indicator *i = pp_catalog_indicator(cat, id);
        FUZZ_ASSERT(i != NULL && strcmp(i->id, id) == 0, "indicator '%s' is not a configured id",
                    id);
    }
}

static bool same_key(const char *pa, const char *ia, int a, const char *pb, const char *ib, int b)
{
    return a == b && strcmp(pa, pb) == 0 && strcmp(ia, ib) == 0;
}

static bool obs_equal(const pp_obs *a, const pp_obs *b)
{
    return same_key(a->park, a->indicator, a->period, b->park, b->indicator, b->period) &&
           a->value == b->value && a->status == b->status && strcmp(a->source, b->source) == 0 &&
           strcmp(a->note, b->note) == 0;
}

/* Physical lines as the reader counts them: LF, CRLF or a lone CR ends one.
 * The same in GB18030, whose trail bytes are never CR or LF. */
static int count_lines(const char *s, size_t len)
{
    int n = 1;
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\n' || (s[i] == '\r' && (i + 1 == len || s[i + 1] != '\n')))
            n++;
    return n;
}

static void check_result(const csv_result *r, int rc, bool utf8_in, int lines)
{
    FUZZ_ASSERT((rc == 0) == (r->n_errors_total == 0), "rc %d with %zu errors", rc,
                r->n_errors_total);
    FUZZ_ASSERT(rc == 0 || rc == -1, "rc %d", rc);
    FUZZ_ASSERT(r->n_errors <= r->n_errors_total && r->n_errors <= CSV_MAX_ERRORS,
                "%zu kept of %zu", r->n_errors, r->n_errors_total);
    FUZZ_ASSERT(r->encoding != NULL && (strcmp(r->encoding, "UTF-8") == 0 ||
                                        strcmp(r->encoding, "GB18030") == 0), "encoding");
    FUZZ_ASSERT(!utf8_in || strcmp(r->encoding, "UTF-8") == 0, "valid UTF-8 read as %s",
                r->encoding);
    for (size_t i = 0; i < r->n_errors; i++) {
        const csv_error *e = &r->errors[i];
        FUZZ_ASSERT(memchr(e->reason, '\0', sizeof e->reason) != NULL, "reason not terminated");
        FUZZ_ASSERT(e->reason[0] != '\0', "empty reason on line %d", e->line);
        FUZZ_ASSERT(fuzz_utf8_str(e->reason), "reason not UTF-8: %s", e->reason);
        FUZZ_ASSERT(e->line >= 0 && e->line <= lines, "line %d of %d", e->line, lines);
    }
    FUZZ_ASSERT(r->n_obs == 0 || r->layout == CSV_LAYOUT_OBSERVATIONS ||
                r->layout == CSV_LAYOUT_WIDE, "observations in layout %d", (int)r->layout);
    FUZZ_ASSERT(r->n_targets == 0 || r->layout == CSV_LAYOUT_TARGETS,
                "targets in layout %d", (int)r->layout);
    for (size_t i = 0; i < r->n_obs; i++) {
        const pp_obs *o = &r->obs[i];
        check_id(o->park, true);
        check_id(o->indicator, false);
        int y = pp_period_year(o->period);
        FUZZ_ASSERT(o->period >= 0 && y >= PP_PERIOD_MIN_YEAR && y <= PP_PERIOD_MAX_YEAR,
                    "period %d", o->period);
        FUZZ_ASSERT(isfinite(o->value), "value %g", o->value);
        FUZZ_ASSERT(o->status && strchr("APER", o->status), "status %d", o->status);
        FUZZ_ASSERT(memchr(o->source, '\0', sizeof o->source) && fuzz_utf8_str(o->source),
                    "source");
        FUZZ_ASSERT(memchr(o->note, '\0', sizeof o->note) && fuzz_utf8_str(o->note), "note");
        FUZZ_ASSERT(o->received_at == 0, "received_at set");
        for (size_t j = 0; j < i; j++)
            FUZZ_ASSERT(!same_key(o->park, o->indicator, o->period, r->obs[j].park,
                                  r->obs[j].indicator, r->obs[j].period),
                        "observations %zu and %zu share a key", j, i);
    }
    for (size_t i = 0; i < r->n_targets; i++) {
        const pp_target *t = &r->targets[i];
        check_id(t->park, true);
        check_id(t->indicator, false);
        FUZZ_ASSERT(t->year >= PP_PERIOD_MIN_YEAR && t->year <= PP_PERIOD_MAX_YEAR, "year %d",
                    t->year);
        FUZZ_ASSERT(isfinite(t->value), "target %g", t->value);
        FUZZ_ASSERT(memchr(t->source, '\0', sizeof t->source) && fuzz_utf8_str(t->source),
                    "source");
        for (size_t j = 0; j < i; j++)
            FUZZ_ASSERT(!same_key(t->park, t->indicator, t->year, r->targets[j].park,
                                  r->targets[j].indicator, r->targets[j].year),
                        "targets %zu and %zu share a key", j, i);
    }
    char *rep = csv_errors_report(r, "fuzz.csv");
    FUZZ_ASSERT(rep != NULL, "no report");
    FUZZ_ASSERT(fuzz_utf8_str(rep), "report not UTF-8");
    FUZZ_ASSERT((r->n_errors_total == 0) == (rep[0] == '\0'), "report vs error count");
    free(rep);
}

/* A value as the canonical files of the round trip write it: false when
 * %.17g would use an exponent (the reader takes plain decimals only). */
static bool plain_number(double v, char *buf, size_t len)
{
    snprintf(buf, len, "%.17g", v);
    return strpbrk(buf, "eEni") == NULL;
}

/* Writes what r accepted back as a canonical CSV and reads it again. */
static void round_trip(const csv_result *r)
{
    char *buf = NULL, num[64], per[16];
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    FUZZ_ASSERT(f != NULL, "open_memstream");
    if (r->layout == CSV_LAYOUT_TARGETS) {
        fputs("park,indicator,year,target\n", f);
        for (size_t i = 0; i < r->n_targets; i++) {
            if (!plain_number(r->targets[i].value, num, sizeof num))
                goto skip;
            fprintf(f, "%s,%s,%d,%s\n", r->targets[i].park, r->targets[i].indicator,
                    r->targets[i].year, num);
        }
    } else {
        fputs("park,indicator,period,value,status\n", f);
        for (size_t i = 0; i < r->n_obs; i++) {
            if (!plain_number(r->obs[i].value, num, sizeof num))
                goto skip;
            fprintf(f, "%s,%s,%s,%s,%c\n", r->obs[i].park, r->obs[i].indicator,
                    pp_period_format(r->obs[i].period, per, sizeof per), num, r->obs[i].status);
        }
    }
    FUZZ_ASSERT(fclose(f) == 0, "fclose");
    csv_result again;
    int rc = csv_parse(buf, size, &cfg->catalog, &again);
    check_result(&again, rc, true, count_lines(buf, size));
    FUZZ_ASSERT(rc == 0, "canonical form refused: %s\n%s",
                again.n_errors ? again.errors[0].reason : "?", buf);
    FUZZ_ASSERT(again.n_obs == r->n_obs && again.n_targets == r->n_targets, "counts differ");
    for (size_t i = 0; i < r->n_obs; i++) {
        const pp_obs *a = &r->obs[i], *b = &again.obs[i];
        FUZZ_ASSERT(same_key(a->park, a->indicator, a->period, b->park, b->indicator, b->period) &&
                        a->value == b->value && a->status == b->status,
                    "observation %zu: %.17g read back as %.17g", i, a->value, b->value);
    }
    for (size_t i = 0; i < r->n_targets; i++) {
        const pp_target *a = &r->targets[i], *b = &again.targets[i];
        FUZZ_ASSERT(same_key(a->park, a->indicator, a->year, b->park, b->indicator, b->year) &&
                        a->value == b->value,
                    "target %zu: %.17g read back as %.17g", i, a->value, b->value);
    }
    csv_result_free(&again);
    free(buf);
    return;
skip:
    fclose(f);
    free(buf);
}

/* The same text in GB18030 must read the same. */
static void gb18030_twin(const uint8_t *data, size_t size, const csv_result *r, int rc)
{
    char *gb;
    size_t gblen;
    if (text_convert("GB18030", "UTF-8", (const char *)data, size, &gb, &gblen) != 0)
        return; /* a character GB18030 lacks */
    if (fuzz_utf8(gb, gblen, NULL)) { /* plain ASCII: not a twin */
        free(gb);
        return;
    }
    csv_result g;
    int grc = csv_parse(gb, gblen, &cfg->catalog, &g);
    check_result(&g, grc, false, count_lines(gb, gblen));
    FUZZ_ASSERT(strcmp(g.encoding, "GB18030") == 0, "GB18030 twin read as %s", g.encoding);
    FUZZ_ASSERT(grc == rc && g.n_obs == r->n_obs && g.n_targets == r->n_targets &&
                    g.n_errors_total == r->n_errors_total && g.n_rows == r->n_rows &&
                    g.layout == r->layout,
                "GB18030 twin differs: rc %d/%d obs %zu/%zu errors %zu/%zu", rc, grc, r->n_obs,
                g.n_obs, r->n_errors_total, g.n_errors_total);
    for (size_t i = 0; i < r->n_errors; i++)
        FUZZ_ASSERT(r->errors[i].line == g.errors[i].line &&
                        strcmp(r->errors[i].reason, g.errors[i].reason) == 0,
                    "error %zu: '%s' vs '%s'", i, r->errors[i].reason, g.errors[i].reason);
    for (size_t i = 0; i < r->n_obs; i++)
        FUZZ_ASSERT(obs_equal(&r->obs[i], &g.obs[i]), "observation %zu", i);
    for (size_t i = 0; i < r->n_targets; i++) {
        const pp_target *a = &r->targets[i], *b = &g.targets[i];
        FUZZ_ASSERT(same_key(a->park, a->indicator, a->year, b->park, b->indicator, b->year) &&
                        a->value == b->value && strcmp(a->source, b->source) == 0,
                    "target %zu", i);
    }
    csv_result_free(&g);
    free(gb);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) /* bounds are tested by the Check suite; keep runs fast */
        return 0;
    csv_result r;
    int rc = csv_parse((const char *)data, size, &cfg->catalog, &r);
    bool utf8 = fuzz_utf8(data, size, NULL);
    check_result(&r, rc, utf8, count_lines((const char *)data, size));
    if (rc == 0)
        round_trip(&r);
    bool bom = size >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0;
    if (utf8 && !bom && memchr(data, '\0', size) == NULL)
        gb18030_twin(data, size, &r, rc);
    csv_result_free(&r);
    return 0;
}
