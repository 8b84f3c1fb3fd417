/*
 * fuzz_xlsx.c — libFuzzer harness for the workbook reader (daemon/workbook.c):
 * any bytes as a spool file or POST body that starts like a workbook (a zip,
 * an OLE2 file) go to workbook_read and workbook_parse as they are; any other
 * bytes become the XML of a sheet inside a small .xlsx built here with libzip
 * (stored, not deflated), so that the fuzzer reaches the XML reader without
 * having to find zip checksums. Read against the catalogue of
 * tests/fixtures/parks.conf and config/indicators.conf (fuzz.h), with small
 * limits (8 MiB inflated, 200,000 cells) to keep each run short.
 *
 * Invariants checked, beyond "no crash, no leak, no undefined behaviour":
 *   - workbook_read returns 0 or -1; on -1 the reason is non-empty,
 *     NUL-terminated valid UTF-8, and so is the sheet it names;
 *   - on 0, every sheet name is valid UTF-8 without control characters, and
 *     every sheet's CSV text is valid UTF-8 of its stated length with exactly
 *     `rows` lines (one line per row: no line break escapes from a cell);
 *   - workbook_parse returns 0 exactly when no error was counted; a refused
 *     input has a UTF-8 report whose lines start with the input's name; an
 *     accepted one names configured parks and indicators by id.
 */
#include "fuzz.h"

#include <zip.h>

#include "csv.h"
#include "model.h"
#include "workbook.h"

static pp_config *cfg;
static const wb_limits lim = {.max_inflated = 8u << 20, .max_cells = 200000};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    cfg = fuzz_config(NULL);
    return 0;
}

static const char RELS[] =
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/"
    "relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>";
static const char WORKBOOK[] =
    "<workbook xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" "
    "xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">"
    "<sheets><sheet name=\"Sheet1\" sheetId=\"1\" r:id=\"rId1\"/></sheets></workbook>";
static const char WB_RELS[] =
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/"
    "relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/>"
    "<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/"
    "relationships/sharedStrings\" Target=\"sharedStrings.xml\"/></Relationships>";
static const char SST[] =
    "<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">"
    "<si><t>park</t></si><si><t>indicator</t></si><si><t>period</t></si><si><t>value</t></si>"
    "<si><t>xiangtan-etdz</t></si><si><t>fixed_asset_investment</t></si></sst>";

/* A stored .xlsx whose sheet1.xml is the input (caller frees *out). */
static bool wrap_sheet(const uint8_t *data, size_t size, char **out, size_t *outlen)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &ze);
    FUZZ_ASSERT(src != NULL, "zip_source_buffer_create");
    zip_source_keep(src);
    zip_t *z = zip_open_from_source(src, ZIP_TRUNCATE, &ze);
    FUZZ_ASSERT(z != NULL, "zip_open_from_source");
    const char *names[] = {"_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                           "xl/sharedStrings.xml", "xl/worksheets/sheet1.xml"};
    const void *bodies[] = {RELS, WORKBOOK, WB_RELS, SST, data};
    size_t lens[] = {sizeof RELS - 1, sizeof WORKBOOK - 1, sizeof WB_RELS - 1, sizeof SST - 1,
                     size};
    for (size_t i = 0; i < 5; i++) {
        zip_source_t *s = zip_source_buffer(z, bodies[i], lens[i], 0);
        zip_int64_t idx = zip_file_add(z, names[i], s, 0);
        FUZZ_ASSERT(s != NULL && idx >= 0, "zip_file_add");
        zip_set_file_compression(z, (zip_uint64_t)idx, ZIP_CM_STORE, 0);
    }
    FUZZ_ASSERT(zip_close(z) == 0, "zip_close");
    bool ok = false;
    if (zip_source_open(src) == 0) {
        zip_source_seek(src, 0, SEEK_END);
        zip_int64_t n = zip_source_tell(src);
        zip_source_seek(src, 0, SEEK_SET);
        *out = malloc(n > 0 ? (size_t)n : 1);
        FUZZ_ASSERT(*out != NULL, "malloc");
        ok = n > 0 && zip_source_read(src, *out, (zip_uint64_t)n) == n;
        *outlen = ok ? (size_t)n : 0;
        zip_source_close(src);
        if (!ok)
            free(*out);
    }
    zip_source_free(src);
    zip_error_fini(&ze);
    return ok;
}

static void check_read(const char *data, size_t len)
{
    workbook wb;
    int rc = workbook_read(data, len, &lim, &wb);
    FUZZ_ASSERT(rc == 0 || rc == -1, "rc %d", rc);
    if (rc != 0) {
        FUZZ_ASSERT(memchr(wb.error, '\0', sizeof wb.error) && wb.error[0] != '\0', "no reason");
        FUZZ_ASSERT(fuzz_utf8_str(wb.error), "reason not UTF-8: %s", wb.error);
        FUZZ_ASSERT(fuzz_utf8_str(wb.error_sheet), "sheet not UTF-8");
    } else {
        FUZZ_ASSERT(wb.n_sheets > 0, "read with no sheet");
    }
    for (size_t i = 0; i < wb.n_sheets; i++) {
        const wb_sheet *s = &wb.sheets[i];
        if (s->name == NULL) /* a sheet not reached before a failure */
            continue;
        FUZZ_ASSERT(fuzz_utf8_str(s->name), "sheet name not UTF-8");
        for (const char *p = s->name; *p; p++)
            FUZZ_ASSERT((unsigned char)*p >= 0x20 && *p != 0x7f, "control character in a name");
        if (s->csv == NULL)
            continue;
        FUZZ_ASSERT(strlen(s->csv) == s->len, "CSV length %zu, stated %zu", strlen(s->csv),
                    s->len);
        FUZZ_ASSERT(fuzz_utf8(s->csv, s->len, NULL), "CSV not UTF-8");
        size_t lines = 0;
        for (size_t k = 0; k < s->len; k++) {
            lines += s->csv[k] == '\n';
            FUZZ_ASSERT(s->csv[k] != '\r', "a carriage return in the CSV");
        }
        FUZZ_ASSERT(lines == s->rows, "%zu lines for %zu rows", lines, s->rows);
    }
    workbook_free(&wb);
}

static void check_parse(const char *data, size_t len)
{
    csv_result r;
    char *report = NULL, *notes = NULL;
    int rc = workbook_parse(data, len, "fuzz.xlsx", &cfg->catalog, &lim, &r, &report, &notes,
                            NULL, NULL);
    FUZZ_ASSERT((rc == 0) == (r.n_errors_total == 0), "rc %d with %zu errors", rc,
                r.n_errors_total);
    FUZZ_ASSERT(!r.stopped, "stopped without a stop function");
    if (rc != 0) {
        FUZZ_ASSERT(report != NULL && report[0] != '\0', "refused without a report");
        FUZZ_ASSERT(fuzz_utf8_str(report), "report not UTF-8");
        for (const char *l = report; *l; l = strchr(l, '\n') + 1) {
            FUZZ_ASSERT(strncmp(l, "fuzz.xlsx:", 10) == 0, "report line '%.60s'", l);
            FUZZ_ASSERT(strchr(l, '\n') != NULL, "report line without its newline");
        }
        FUZZ_ASSERT(r.n_obs == 0 && r.n_targets == 0, "figures taken from a refused input");
    } else {
        FUZZ_ASSERT(report == NULL, "a report for an accepted input");
    }
    if (notes)
        FUZZ_ASSERT(fuzz_utf8_str(notes), "notes not UTF-8");
    for (size_t i = 0; i < r.n_obs; i++) {
        const pp_obs *o = &r.obs[i];
        FUZZ_ASSERT(pp_catalog_park(&cfg->catalog, o->park) != NULL, "park '%s'", o->park);
        FUZZ_ASSERT(pp_catalog_indicator(&cfg->catalog, o->indicator) != NULL, "indicator '%s'",
                    o->indicator);
    }
    for (size_t i = 0; i < r.n_targets; i++)
        FUZZ_ASSERT(pp_catalog_park(&cfg->catalog, r.targets[i].park) != NULL, "target park");
    free(report);
    free(notes);
    csv_result_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1024 * 1024) /* bounds are tested by the Check suite; keep runs fast */
        return 0;
    if (workbook_format(data, size) != WB_NONE) {
        check_read((const char *)data, size);
        check_parse((const char *)data, size);
        return 0;
    }
    char *book;
    size_t len;
    if (!wrap_sheet(data, size, &book, &len))
        return 0;
    check_read(book, len);
    check_parse(book, len);
    free(book);
    return 0;
}
