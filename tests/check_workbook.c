/*
 * check_workbook.c — Check suite for daemon/workbook.c (README, Feeding figures).
 *
 * Workbooks written by real office software are the main fixtures
 * (tests/fixtures/workbooks/, made by LibreOffice Calc and python3-openpyxl:
 * see tests/fixtures/README): a CSV fixture converted to .xlsx and .xls must
 * read back as exactly that CSV, line for line; the openpyxl book checks
 * numbers, dates (1900 and 1904 systems), formulas with and without cached
 * values, booleans, error cells, line breaks in cells, merged ranges and
 * several sheets. Hostile workbooks are built here with libzip (and patched
 * by hand where a library will not write them): a zip bomb, an entry that
 * lies about its size, "../" and absolute entry names, DOCTYPEs (billion
 * laughs, an external entity), deep nesting, too many cells, a merge over the
 * whole sheet, a corrupt zip — each must be refused with its reason.
 */
#include "csv.h"
#include "workbook.h"
#include "check_main.h"
#include "test_file.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zip.h>

/* ---- the catalogue (the parks of tests/fixtures/parks.conf) -------------- */

#include "test_catalog.h"

static const pp_catalog cat = TEST_CATALOG;

/* ---- helpers ---------------------------------------------------------------- */

/* Reads the workbook b (len bytes) into *wb; it must be read. */
static void read_ok(const char *b, size_t len, workbook *wb)
{
    ck_assert_msg(workbook_read(b, len, NULL, wb) == 0, "%s", wb->error);
}

/* The fixture name (*len bytes, caller frees), read into *wb. */
static char *read_fixture(const char *name, size_t *len, workbook *wb)
{
    char *b = test_fixture(name, len);
    read_ok(b, *len, wb);
    return b;
}

static const wb_sheet *sheet_named(const workbook *wb, const char *name)
{
    for (size_t i = 0; i < wb->n_sheets; i++)
        if (strcmp(wb->sheets[i].name, name) == 0)
            return &wb->sheets[i];
    ck_abort_msg("no sheet '%s'", name);
    return NULL;
}

/* Line n (1-based) of a sheet's CSV text, in a static buffer. */
static const char *line_of(const wb_sheet *s, int n)
{
    static char buf[4096];
    const char *p = s->csv;
    ck_assert_ptr_nonnull(p);
    for (int i = 1; i < n; i++) {
        p = strchr(p, '\n');
        ck_assert_msg(p != NULL, "sheet %s has no line %d", s->name, n);
        p++;
    }
    size_t l = strcspn(p, "\n");
    ck_assert_uint_lt(l, sizeof buf);
    memcpy(buf, p, l);
    buf[l] = '\0';
    return buf;
}

/* A zip of n entries (names[i], data[i] of lens[i] bytes, or strlen when 0),
 * written by libzip; returns its bytes (caller frees). */
static char *make_zip(size_t n, const char *const *names, const char *const *data,
                      const size_t *lens, size_t *outlen)
{
    char path[] = "/tmp/check_workbook.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    int err = 0;
    zip_t *z = zip_open(path, ZIP_TRUNCATE, &err);
    ck_assert_msg(z != NULL, "zip_open %d", err);
    for (size_t i = 0; i < n; i++) {
        size_t l = lens && lens[i] ? lens[i] : strlen(data[i]);
        zip_source_t *src = zip_source_buffer(z, data[i], l, 0);
        ck_assert_ptr_nonnull(src);
        ck_assert_int_ge(zip_file_add(z, names[i], src, ZIP_FL_ENC_UTF_8), 0);
    }
    ck_assert_int_eq(zip_close(z), 0);
    char *bytes = test_read_file(path, outlen);
    unlink(path);
    return bytes;
}

static const char RELS[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">"
    "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/"
    "relationships/officeDocument\" Target=\"xl/workbook.xml\"/></Relationships>";

/* A workbook of up to 4 sheets named names[i] with sheet XML bodies[i]
 * (the <sheetData>… inside <worksheet>). */
static char *make_xlsx(size_t n, const char *const *sheet_names, const char *const *bodies,
                       size_t *outlen)
{
    char wbx[4096], rels[4096], sheets[4][1 << 16], names[4][64];
    const char *en[8], *ed[8];
    size_t k = 0, o = 0, r = 0;
    ck_assert_uint_le(n, 4);
    o += (size_t)snprintf(wbx + o, sizeof wbx - o,
                          "<?xml version=\"1.0\"?><workbook xmlns=\"http://schemas.openxmlformats"
                          ".org/spreadsheetml/2006/main\" xmlns:r=\"http://schemas.openxmlformats"
                          ".org/officeDocument/2006/relationships\"><sheets>");
    r += (size_t)snprintf(rels + r, sizeof rels - r,
                          "<?xml version=\"1.0\"?><Relationships xmlns=\"http://schemas."
                          "openxmlformats.org/package/2006/relationships\">");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(wbx + o, sizeof wbx - o,
                              "<sheet name=\"%s\" sheetId=\"%zu\" r:id=\"rId%zu\"/>",
                              sheet_names[i], i + 1, i + 1);
        r += (size_t)snprintf(rels + r, sizeof rels - r,
                              "<Relationship Id=\"rId%zu\" Type=\"http://schemas.openxmlformats."
                              "org/officeDocument/2006/relationships/worksheet\" "
                              "Target=\"worksheets/sheet%zu.xml\"/>", i + 1, i + 1);
        snprintf(sheets[i], sizeof sheets[i],
                 "<?xml version=\"1.0\"?><worksheet xmlns=\"http://schemas.openxmlformats.org/"
                 "spreadsheetml/2006/main\">%s</worksheet>", bodies[i]);
        snprintf(names[i], sizeof names[i], "xl/worksheets/sheet%zu.xml", i + 1);
    }
    snprintf(wbx + o, sizeof wbx - o, "</sheets></workbook>");
    snprintf(rels + r, sizeof rels - r, "</Relationships>");
    en[k] = "_rels/.rels", ed[k++] = RELS;
    en[k] = "xl/workbook.xml", ed[k++] = wbx;
    en[k] = "xl/_rels/workbook.xml.rels", ed[k++] = rels;
    for (size_t i = 0; i < n; i++)
        en[k] = names[i], ed[k++] = sheets[i];
    return make_zip(k, en, ed, NULL, outlen);
}

static char *one_sheet(const char *body, size_t *len)
{
    const char *names[] = {"Sheet1"};
    return make_xlsx(1, names, &body, len);
}

/* A workbook of one sheet with body, read into *wb (it must be read). */
static char *read_one_sheet(const char *body, workbook *wb)
{
    size_t len;
    char *b = one_sheet(body, &len);
    read_ok(b, len, wb);
    return b;
}

/* workbook_read must refuse data with a reason containing want. */
static void assert_refused(const char *data, size_t len, const wb_limits *lim, const char *want)
{
    workbook wb;
    int rc = workbook_read(data, len, lim, &wb);
    ck_assert_msg(rc == -1, "accepted; wanted a refusal with '%s'", want);
    ck_assert_msg(strstr(wb.error, want) != NULL, "reason '%s' lacks '%s'", wb.error, want);
    workbook_free(&wb);
}

/* ---- numbers, dates, formats -------------------------------------------- */

START_TEST(test_magic)
{
    ck_assert_int_eq(workbook_format("PK\x03\x04rest", 8), WB_XLSX);
    ck_assert_int_eq(workbook_format("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8), WB_XLS);
    ck_assert_int_eq(workbook_format("park,indicator\n", 15), WB_NONE);
    ck_assert_int_eq(workbook_format("PK", 2), WB_NONE);
    ck_assert_int_eq(workbook_format(NULL, 0), WB_NONE);
    ck_assert_str_eq(workbook_format_name(WB_XLSX), "xlsx");
    ck_assert_str_eq(workbook_format_name(WB_XLS), "xls");
}
END_TEST

START_TEST(test_numbers)
{
    static const struct { double v; const char *want; } cases[] = {
        {192.2, "192.2"},
        {192.19999999999999, "192.2"},      /* the same double, as Excel stores it */
        {0.1 + 0.2, "0.30000000000000004"}, /* a different double: all its digits */
        {-3.1, "-3.1"},
        {12, "12"},
        {0, "0"},
        {1e20, "100000000000000000000"},
        {1.5e-7, "0.00000015"},
        {123456789.123, "123456789.123"},
        {1.0 / 3, "0.3333333333333333"},
    };
    char buf[WB_NUM_MAX];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        workbook_format_number(cases[i].v, buf, sizeof buf);
        ck_assert_msg(strcmp(buf, cases[i].want) == 0, "%.17g gave %s, not %s", cases[i].v, buf,
                      cases[i].want);
        ck_assert(strtod(buf, NULL) == cases[i].v);
    }
}
END_TEST

START_TEST(test_serial_dates)
{
    static const struct { double s; bool d1904; const char *want; } cases[] = {
        {1, false, "1900-01-01"},   {59, false, "1900-02-28"},  {60, false, "1900-02-29"},
        {61, false, "1900-03-01"},  {44409, false, "2021-08-01"}, {44439.75, false, "2021-08-31"},
        {2958465, false, "9999-12-31"}, {0, true, "1904-01-01"}, {42947, true, "2021-08-01"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(workbook_serial_date(cases[i].s, cases[i].d1904, buf, sizeof buf), 0);
        ck_assert_msg(strcmp(buf, cases[i].want) == 0, "%g gave %s", cases[i].s, buf);
    }
    ck_assert_int_eq(workbook_serial_date(0, false, buf, sizeof buf), -1);
    ck_assert_int_eq(workbook_serial_date(-5, false, buf, sizeof buf), -1);
    ck_assert_int_eq(workbook_serial_date(2958466, false, buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_date_formats)
{
    static const struct { const char *code; bool date; } cases[] = {
        {"yyyy-mm-dd", true}, {"yyyy\"年\"m\"月\"", true}, {"[$-804]yyyy\"年\"m\"月\"d\"日\"", true},
        {"m/d/yy h:mm", true}, {"mmm-yy", true}, {"d-mmm", true},
        {"h:mm", false}, {"[h]:mm:ss", false}, {"mm:ss", false}, {"h:mm:ss AM/PM", false},
        {"General", false}, {"0.00", false}, {"0.0%", false}, {"#,##0.00\"亿元\"", false},
        {"\"day\"0", false}, {"[Red]0.00", false}, {"0.00E+00", false}, {"@", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(workbook_format_is_date(cases[i].code) == cases[i].date, "%s", cases[i].code);
}
END_TEST

/* ---- workbooks written by LibreOffice and openpyxl ------------------------ */

/* A CSV fixture converted by LibreOffice reads back as that CSV, line for line. */
/* Fields equal as text, or as numbers ("143.0" typed in the CSV is the number 143). */
static void assert_same_fields(const char *got, const char *want, const char *book)
{
    int line = 1;
    while (*got || *want) {
        size_t gl = strcspn(got, ",\n"), wl = strcspn(want, ",\n");
        char g[256], w[256], *ge, *we;
        ck_assert_uint_lt(gl, sizeof g);
        ck_assert_uint_lt(wl, sizeof w);
        memcpy(g, got, gl), g[gl] = '\0';
        memcpy(w, want, wl), w[wl] = '\0';
        double gv = strtod(g, &ge), wv = strtod(w, &we);
        bool same = strcmp(g, w) == 0 || (gl && wl && !*ge && !*we && gv == wv);
        ck_assert_msg(same && got[gl] == want[wl], "%s line %d: '%s' is not '%s'", book, line, g, w);
        if (got[gl] == '\n')
            line++;
        got += gl + (got[gl] != '\0');
        want += wl + (want[wl] != '\0');
    }
}

static void assert_same_as_csv(const char *book, const char *csvname)
{
    size_t blen, clen;
    char *b = test_fixture(book, &blen);
    char *csv = test_fixture(csvname, &clen);
    workbook wb;
    ck_assert_msg(workbook_read(b, blen, NULL, &wb) == 0, "%s: %s", book, wb.error);
    ck_assert_uint_eq(wb.n_sheets, 1);
    assert_same_fields(wb.sheets[0].csv, csv, book);
    workbook_free(&wb);
    free(b);
    free(csv);
}

START_TEST(test_libreoffice_round_trip)
{
    assert_same_as_csv("workbooks/lo-xiangtan-etdz-2021.xlsx", "xiangtan-etdz-2021.csv");
    assert_same_as_csv("workbooks/lo-xiangtan-etdz-2021.xls", "xiangtan-etdz-2021.csv");
    assert_same_as_csv("workbooks/lo-targets-2021.xlsx", "targets-2021.csv");
    assert_same_as_csv("workbooks/lo-targets-2021.xls", "targets-2021.csv");
    assert_same_as_csv("workbooks/lo-bad-rows.xlsx", "bad-rows.csv");
    /* rows shorter than the header, as the CSV has them: padded, not cut */
    assert_same_as_csv("workbooks/lo-wide-2024.xlsx", "wide-2024.csv");
    assert_same_as_csv("workbooks/lo-wide-2024.xls", "wide-2024.csv");
}
END_TEST

/* The figures of a workbook are those of its CSV. */
START_TEST(test_parse_like_csv)
{
    size_t blen, clen;
    char *b = test_fixture("workbooks/lo-xiangtan-etdz-2021.xlsx", &blen);
    char *c = test_fixture("xiangtan-etdz-2021.csv", &clen);
    csv_result wr, cr;
    char *report = NULL, *notes = NULL;
    ck_assert_msg(workbook_parse(b, blen, "x.xlsx", &cat, NULL, &wr, &report, &notes, NULL,
                                 NULL) == 0, "%s", report ? report : "?");
    ck_assert_ptr_null(report);
    ck_assert_ptr_null(notes);
    ck_assert_int_eq(csv_parse(c, clen, &cat, &cr), 0);
    ck_assert_str_eq(wr.encoding, "xlsx");
    ck_assert_uint_gt(cr.n_obs, 20);
    ck_assert_uint_eq(wr.n_obs, cr.n_obs);
    for (size_t i = 0; i < cr.n_obs; i++) {
        ck_assert_str_eq(wr.obs[i].park, cr.obs[i].park);
        ck_assert_str_eq(wr.obs[i].indicator, cr.obs[i].indicator);
        ck_assert_int_eq(wr.obs[i].period, cr.obs[i].period);
        ck_assert(wr.obs[i].value == cr.obs[i].value);
    }
    csv_result_free(&wr);
    csv_result_free(&cr);
    free(b);
    free(c);
}
END_TEST

/* Bad rows are placed as file:sheet!row, the row of the sheet. */
START_TEST(test_errors_name_sheet_and_row)
{
    size_t blen;
    char *b = test_fixture("workbooks/lo-bad-rows.xlsx", &blen);
    csv_result r;
    char *report = NULL;
    ck_assert_int_eq(workbook_parse(b, blen, "bad-rows.xlsx", &cat, NULL, &r, &report, NULL,
                                    NULL, NULL), -1);
    ck_assert_uint_ge(r.n_errors_total, 4);
    ck_assert_uint_eq(r.n_obs, 0);
    ck_assert_ptr_nonnull(report);
    ck_assert_msg(strstr(report, "bad-rows.xlsx:bad-rows!3: ") == report, "%s", report);
    ck_assert_ptr_nonnull(strstr(report, "\nbad-rows.xlsx:bad-rows!4: "));
    ck_assert_ptr_nonnull(strstr(report, "\nbad-rows.xlsx:bad-rows!5: "));
    ck_assert_ptr_nonnull(strstr(report, "xiangtan-etd'"));
    free(report);
    csv_result_free(&r);
    free(b);
}
END_TEST

START_TEST(test_openpyxl_book)
{
    size_t len;
    workbook wb;
    char *b = read_fixture("workbooks/lo-book.xlsx", &len, &wb);
    ck_assert_uint_eq(wb.n_sheets, 5);
    ck_assert(!wb.date1904);
    const wb_sheet *s = sheet_named(&wb, "观测");
    ck_assert_uint_eq(s->rows, 5);
    ck_assert_str_eq(line_of(s, 1), "park,indicator,period,value,unit,,date,text");
    /* 192.2 as typed; a line break as a space; a date in yyyy-mm-dd */
    ck_assert_str_eq(line_of(s, 2),
                     "xiangtan-etdz,fixed_asset_investment,2021-07,192.2,亿元,,2021-08-01,两行 文字");
    /* formulas: LibreOffice's cached values; a custom 年月 date format; TRUE */
    ck_assert_str_eq(line_of(s, 3), "xiangtan-etdz,tax_revenue,2021-07,30.75,亿元,,2021-08-31,TRUE");
    /* a datetime is its day; a formula's error value is its text */
    ck_assert_str_eq(line_of(s, 4),
                     "xiangtan-etdz,fiscal_revenue,2021-07,27.5,亿元,,2021-08-15,#DIV/0!");
    /* a time of day is not a date */
    ck_assert_str_eq(line_of(s, 5), "xiangtan-etdz,projects_signed,2021-07,12,个,,0.5625,0.1");
    /* merged ranges: the value in every cell (title row, the two-row header) */
    const wb_sheet *w = sheet_named(&wb, "宽表");
    ck_assert_str_eq(line_of(w, 1), "2021年1-8月园区主要指标,2021年1-8月园区主要指标,"
                                    "2021年1-8月园区主要指标,2021年1-8月园区主要指标,"
                                    "2021年1-8月园区主要指标,2021年1-8月园区主要指标");
    ck_assert_str_eq(line_of(w, 2), "园区,期间,固定资产投资（亿元）,固定资产投资（亿元）,"
                                    "税收收入（亿元）,税收收入（亿元）");
    ck_assert_str_eq(line_of(w, 3), "园区,期间,累计,同比,累计,同比");
    ck_assert_str_eq(line_of(w, 4), "湘潭经开区,2021年1-8月,210.5,12.3,30.25,-3.1");
    const wb_sheet *t = sheet_named(&wb, "目标");
    ck_assert_str_eq(line_of(t, 3), "xiangtan-etdz,税收收入,2021,42");
    ck_assert_str_eq(sheet_named(&wb, "说明")->csv, "数据来源：湘潭市统计局\n");
    ck_assert_str_eq(sheet_named(&wb, "空白")->csv, "");
    workbook_free(&wb);
    free(b);
}
END_TEST

/* openpyxl stores no cached values: a formula is its text (refused by csv.c
 * as a value, never read as an empty cell); the 1904 date system. */
START_TEST(test_openpyxl_raw_and_1904)
{
    size_t len;
    workbook wb;
    char *b = read_fixture("workbooks/opx-book.xlsx", &len, &wb);
    const wb_sheet *s = sheet_named(&wb, "观测");
    ck_assert_str_eq(line_of(s, 3), "xiangtan-etdz,tax_revenue,2021-07,=10.5+20.25,亿元,,"
                                    "2021-08-31,TRUE");
    ck_assert_str_eq(line_of(s, 4), "xiangtan-etdz,fiscal_revenue,2021-07,\"=ROUND(D2/7,1)\","
                                    "亿元,,2021-08-15,=1/0");
    workbook_free(&wb);
    free(b);

    b = read_fixture("workbooks/opx-book-1904.xlsx", &len, &wb);
    ck_assert(wb.date1904);
    s = sheet_named(&wb, "观测");
    ck_assert_str_eq(line_of(s, 2),
                     "xiangtan-etdz,fixed_asset_investment,2021-07,192.2,亿元,,2021-08-01,两行 文字");
    workbook_free(&wb);
    free(b);

    /* an uncached formula in a value column is a bad value, not a missing one */
    b = test_fixture("workbooks/opx-book.xlsx", &len);
    csv_result r;
    char *report = NULL;
    ck_assert_int_eq(workbook_parse(b, len, "opx.xlsx", &cat, NULL, &r, &report, NULL, NULL,
                                    NULL), -1);
    ck_assert_ptr_nonnull(report);
    ck_assert_msg(strstr(report, "opx.xlsx:目标!3: ") != NULL && strstr(report, "=40+2") != NULL,
                  "%s", report);
    free(report);
    csv_result_free(&r);
    free(b);
}
END_TEST

START_TEST(test_xls_book)
{
    size_t len;
    workbook wb;
    char *b = read_fixture("workbooks/lo-book.xls", &len, &wb);
    ck_assert_int_eq(wb.format, WB_XLS);
    ck_assert_uint_eq(wb.n_sheets, 5);
    const wb_sheet *s = sheet_named(&wb, "观测");
    ck_assert_str_eq(line_of(s, 2),
                     "xiangtan-etdz,fixed_asset_investment,2021-07,192.2,亿元,,2021-08-01,两行 文字");
    ck_assert_str_eq(line_of(sheet_named(&wb, "宽表"), 4),
                     "湘潭经开区,2021年1-8月,210.5,12.3,30.25,-3.1");
    workbook_free(&wb);
    free(b);
}
END_TEST

/* ---- cells written by hand: what office software may write -------------- */

START_TEST(test_cell_kinds)
{
    const char *body =
        "<sheetData>"
        "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>park</t></is></c>"
        "<c r=\"B1\" t=\"inlineStr\"><is><r><t>indi</t></r><r><t>cator</t></r>"
        "<rPh><t>ignored</t></rPh></is></c></row>"
        "<row r=\"3\"><c r=\"A3\"><v>192.19999999999999</v></c>"
        "<c r=\"C3\" t=\"str\"><f>A1</f><v>a,\"b\"</v></c>"
        "<c r=\"D3\" t=\"e\"><v>#N/A</v></c><c r=\"E3\" t=\"b\"><v>0</v></c>"
        "<c r=\"F3\" t=\"d\"><v>2021-08-01T00:00:00</v></c>"
        "<c r=\"G3\" t=\"inlineStr\"><is><t>line_x000D_\nbreak</t></is></c></row>"
        "<row><c><v>1</v></c><c><v>2</v></c></row>"
        "</sheetData>";
    workbook wb;
    char *b = read_one_sheet(body, &wb);
    ck_assert_str_eq(wb.sheets[0].csv,
                     "park,indicator,,,,,\n"
                     "\n"
                     "192.2,,\"a,\"\"b\"\"\",#N/A,FALSE,2021-08-01,line break\n"
                     "1,2,,,,,\n");
    ck_assert_uint_eq(wb.sheets[0].rows, 4);
    workbook_free(&wb);
    free(b);
}
END_TEST

START_TEST(test_cells_out_of_order_and_merged)
{
    const char *body =
        "<sheetData>"
        "<row r=\"2\"><c r=\"B2\"><v>22</v></c><c r=\"A2\"><v>21</v></c></row>"
        "<row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>top</t></is></c>"
        "<c r=\"C1\" t=\"inlineStr\"><is><t>hidden</t></is></c></row>"
        "</sheetData><mergeCells count=\"1\"><mergeCell ref=\"A1:C1\"/></mergeCells>";
    workbook wb;
    char *b = read_one_sheet(body, &wb);
    ck_assert_str_eq(wb.sheets[0].csv, "top,top,top\n21,22,\n");
    workbook_free(&wb);
    free(b);
}
END_TEST

/* Two sheets read and merged; a sheet with no recognised header is skipped
 * and named; the same figure in two sheets is refused. */
START_TEST(test_sheets_merged)
{
    const char *names[] = {"A", "空", "B"};
    const char *bodies[] = {
        "<sheetData><row r=\"1\"><c r=\"A1\" t=\"inlineStr\"><is><t>park,indicator,period,value</t>"
        "</is></c></row></sheetData>", /* one cell with commas: quoted, so not a header */
        "<sheetData/>",
        "<sheetData/>",
    };
    char hdr[] =
        "<sheetData><row r=\"1\">"
        "<c r=\"A1\" t=\"inlineStr\"><is><t>park</t></is></c>"
        "<c r=\"B1\" t=\"inlineStr\"><is><t>indicator</t></is></c>"
        "<c r=\"C1\" t=\"inlineStr\"><is><t>period</t></is></c>"
        "<c r=\"D1\" t=\"inlineStr\"><is><t>value</t></is></c></row>"
        "<row r=\"2\"><c r=\"A2\" t=\"inlineStr\"><is><t>xiangtan-etdz</t></is></c>"
        "<c r=\"B2\" t=\"inlineStr\"><is><t>tax_revenue</t></is></c>"
        "<c r=\"C2\" t=\"inlineStr\"><is><t>%s</t></is></c><c r=\"D2\"><v>%s</v></c></row>"
        "</sheetData>";
    char a[2048], bb[2048];
    snprintf(a, sizeof a, hdr, "2021-07", "30.75");
    snprintf(bb, sizeof bb, hdr, "2021-08", "35.5");
    bodies[0] = a;
    bodies[2] = bb;
    size_t len;
    char *b = make_xlsx(3, names, bodies, &len);
    csv_result r;
    char *report = NULL, *notes = NULL;
    ck_assert_int_eq(workbook_parse(b, len, "two.xlsx", &cat, NULL, &r, &report, &notes, NULL,
                                    NULL), 0);
    ck_assert_uint_eq(r.n_obs, 2);
    ck_assert(r.obs[0].value == 30.75 && r.obs[1].value == 35.5);
    ck_assert_ptr_nonnull(notes);
    ck_assert_msg(strstr(notes, "two.xlsx:空: 跳过") != NULL, "%s", notes);
    free(notes);
    csv_result_free(&r);
    free(b);

    snprintf(bb, sizeof bb, hdr, "2021-07", "30.75");
    b = make_xlsx(3, names, bodies, &len);
    ck_assert_int_eq(workbook_parse(b, len, "two.xlsx", &cat, NULL, &r, &report, NULL, NULL,
                                    NULL), -1);
    ck_assert_ptr_nonnull(report);
    ck_assert_msg(strstr(report, "two.xlsx:B: xiangtan-etdz tax_revenue 2021-07 在工作表 'A' 和 'B' "
                                 "中都有") == report, "%s", report);
    ck_assert_uint_eq(r.n_obs, 0);
    free(report);
    csv_result_free(&r);
    free(b);
}
END_TEST

START_TEST(test_no_sheet_recognised)
{
    const char *names[] = {"Sheet1", "Sheet2"};
    const char *bodies[] = {"<sheetData/>", "<sheetData/>"};
    size_t len;
    char *b = make_xlsx(2, names, bodies, &len);
    csv_result r;
    char *report = NULL;
    ck_assert_int_eq(workbook_parse(b, len, "empty.xlsx", &cat, NULL, &r, &report, NULL, NULL,
                                    NULL), -1);
    ck_assert_uint_gt(r.n_errors_total, 0);
    ck_assert_ptr_nonnull(report);
    ck_assert_msg(strstr(report, "empty.xlsx: 工作簿中没有可识别表头的工作表") == report, "%s",
                  report);
    ck_assert_ptr_nonnull(strstr(report, "no sheet of the workbook has a recognised header"));
    ck_assert_msg(strstr(report, "\nempty.xlsx:Sheet2: ") != NULL, "%s", report);
    free(report);
    csv_result_free(&r);
    free(b);
}
END_TEST

/* ---- hostile workbooks ----------------------------------------------------- */

START_TEST(test_zip_bomb)
{
    /* 4 MiB of zeros in one entry, with a limit of 1 MiB: refused by the
     * declared size, before a byte is inflated */
    size_t big = 4u << 20, len;
    char *zeros = calloc(1, big);
    ck_assert_ptr_nonnull(zeros);
    const char *names[] = {"_rels/.rels", "xl/worksheets/sheet1.xml"};
    const char *data[] = {RELS, zeros};
    size_t lens[] = {0, big};
    char *b = make_zip(2, names, data, lens, &len);
    ck_assert_uint_lt(len, 64u << 10);
    wb_limits lim = {.max_inflated = 1u << 20};
    assert_refused(b, len, &lim, "未解压即拒绝");
    assert_refused(b, len, &lim, "inflates to 4194304 bytes, more than the limit of 1048576");

    /* the same entry in a workbook, claiming 100 bytes (both headers
     * patched): stopped while inflating, as soon as it passes its size */
    free(b);
    const char *wnames[] = {"_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                            "xl/worksheets/sheet1.xml"};
    const char *wdata[] = {
        RELS,
        "<workbook xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\">"
        "<sheets><sheet name=\"S\" r:id=\"rId1\"/></sheets></workbook>",
        "<Relationships><Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/"
        "officeDocument/2006/relationships/worksheet\" Target=\"worksheets/sheet1.xml\"/>"
        "</Relationships>",
        zeros};
    size_t wlens[] = {0, 0, 0, big};
    b = make_zip(4, wnames, wdata, wlens, &len);
    for (size_t i = 0; i + 46 < len; i++) {
        if (memcmp(b + i, "PK\x03\x04", 4) == 0 && memcmp(b + i + 30, "xl/", 3) == 0)
            memcpy(b + i + 22, "\x64\0\0\0", 4);
        if (memcmp(b + i, "PK\x01\x02", 4) == 0 && memcmp(b + i + 46, "xl/", 3) == 0)
            memcpy(b + i + 24, "\x64\0\0\0", 4);
    }
    workbook wb;
    ck_assert_int_eq(workbook_read(b, len, NULL, &wb), -1);
    ck_assert_msg(strstr(wb.error, "xl/") != NULL && (strstr(wb.error, "超过声明的大小") != NULL ||
                                                      strstr(wb.error, "损坏") != NULL),
                  "%s", wb.error);
    workbook_free(&wb);
    free(b);
    free(zeros);
}
END_TEST

START_TEST(test_unsafe_names)
{
    static const char *const bad[] = {"../evil.xml", "xl/../../evil.xml", "/etc/passwd",
                                      "xl\\worksheets\\sheet1.xml", "C:/evil.xml", ".."};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *names[] = {"_rels/.rels", bad[i]};
        const char *data[] = {RELS, "<x/>"};
        size_t len;
        char *b = make_zip(2, names, data, NULL, &len);
        assert_refused(b, len, NULL, "zip 条目名不安全");
        free(b);
    }
}
END_TEST

START_TEST(test_doctype_refused)
{
    static const char *const docs[] = {
        /* billion laughs */
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
        "<worksheet><sheetData><row><c t=\"inlineStr\"><is><t>&lol3;</t></is></c></row>"
        "</sheetData></worksheet>",
        /* an external entity */
        "<?xml version=\"1.0\"?><!DOCTYPE w [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
        "<worksheet><sheetData><row><c t=\"inlineStr\"><is><t>&xxe;</t></is></c></row>"
        "</sheetData></worksheet>",
        /* an external DTD */
        "<?xml version=\"1.0\"?><!DOCTYPE worksheet SYSTEM \"http://127.0.0.1:1/x.dtd\">"
        "<worksheet/>",
    };
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        char wbx[] = "<workbook xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/"
                     "relationships\"><sheets><sheet name=\"S\" r:id=\"rId1\"/></sheets></workbook>";
        char rels[] = "<Relationships><Relationship Id=\"rId1\" Type=\"http://schemas."
                      "openxmlformats.org/officeDocument/2006/relationships/worksheet\" "
                      "Target=\"worksheets/sheet1.xml\"/></Relationships>";
        const char *names[] = {"_rels/.rels", "xl/workbook.xml", "xl/_rels/workbook.xml.rels",
                               "xl/worksheets/sheet1.xml"};
        const char *data[] = {RELS, wbx, rels, docs[i]};
        size_t len;
        char *b = make_zip(4, names, data, NULL, &len);
        assert_refused(b, len, NULL, "含有 DOCTYPE");
        workbook wb;
        workbook_read(b, len, NULL, &wb);
        ck_assert_str_eq(wb.error_sheet, "S");
        workbook_free(&wb);
        /* in workbook.xml too */
        data[1] = docs[i];
        free(b);
        b = make_zip(4, names, data, NULL, &len);
        assert_refused(b, len, NULL, "DOCTYPE");
        free(b);
    }
}
END_TEST

START_TEST(test_deep_nesting)
{
    char body[8192] = "<sheetData>";
    size_t o = strlen(body);
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(body + o, sizeof body - o, "<x>");
    for (int i = 0; i < 200; i++)
        o += (size_t)snprintf(body + o, sizeof body - o, "</x>");
    snprintf(body + o, sizeof body - o, "</sheetData>");
    size_t len;
    char *b = one_sheet(body, &len);
    assert_refused(b, len, NULL, "嵌套超过");
    free(b);
}
END_TEST

START_TEST(test_too_many_cells)
{
    size_t cap = 1500 * 40 + 64, o = 0;
    char *body = malloc(cap);
    ck_assert_ptr_nonnull(body);
    o += (size_t)snprintf(body, cap, "<sheetData>");
    for (int i = 1; i <= 1500; i++)
        o += (size_t)snprintf(body + o, cap - o, "<row r=\"%d\"><c><v>%d</v></c></row>", i, i);
    snprintf(body + o, cap - o, "</sheetData>");
    size_t len;
    char *b = one_sheet(body, &len);
    wb_limits lim = {.max_cells = 1000};
    assert_refused(b, len, &lim, "单元格过多");
    assert_refused(b, len, &lim, "more than 1000 cells");
    workbook wb; /* within the default bound: read, one line per row */
    read_ok(b, len, &wb);
    ck_assert_uint_eq(wb.sheets[0].rows, 1500);
    workbook_free(&wb);
    free(b);
    free(body);

    /* one merge over the whole sheet: refused by its area, not filled */
    b = one_sheet("<sheetData><row r=\"1\"><c r=\"A1\"><v>1</v></c></row></sheetData>"
                  "<mergeCells><mergeCell ref=\"A1:XFD1048576\"/></mergeCells>", &len);
    assert_refused(b, len, NULL, "单元格过多");
    free(b);

    /* a row past Excel's last */
    b = one_sheet("<sheetData><row r=\"1048577\"><c><v>1</v></c></row></sheetData>", &len);
    assert_refused(b, len, NULL, "行号无效");
    free(b);
}
END_TEST

START_TEST(test_corrupt)
{
    size_t len;
    char *b = test_fixture("workbooks/lo-xiangtan-etdz-2021.xlsx", &len);
    assert_refused(b, len / 2, NULL, "zip 已损坏");
    /* a flipped byte inside the compressed sheet: a CRC or inflate error */
    char *c = malloc(len);
    memcpy(c, b, len);
    for (size_t i = 0; i + 30 < len; i++) {
        if (memcmp(c + i, "PK\x03\x04", 4) == 0 && memcmp(c + i + 30, "xl/worksheets/", 14) == 0) {
            size_t nl = (unsigned char)c[i + 26] | (size_t)(unsigned char)c[i + 27] << 8;
            size_t data = i + 30 + nl + ((unsigned char)c[i + 28] | (size_t)(unsigned char)c[i + 29] << 8);
            for (size_t k = 0; k < 64 && data + 40 + k < len; k++)
                c[data + 40 + k] ^= 0x5A;
            break;
        }
    }
    workbook wb;
    ck_assert_int_eq(workbook_read(c, len, NULL, &wb), -1);
    ck_assert_msg(strstr(wb.error, "xl/worksheets/") != NULL, "%s", wb.error);
    workbook_free(&wb);
    assert_refused("PK\x03\x04garbage", 11, NULL, "不是有效的 .xlsx 文件");
    /* a crafted .xls on which libfreexl 1.0.6 reads out of bounds (found by
     * fuzz_xlsx): read in a child process, refused, this process unharmed */
    free(b);
    b = test_fixture("../fuzz/crashes/xlsx/freexl-sheet-name-overread.xls", &len);
    assert_refused(b, len, NULL, ".xls");
    assert_refused("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1garbage", 15, NULL, "不是有效的 .xls 工作簿");
    free(c);
    free(b);
}
END_TEST

/* libxml2's message for bad bytes spans two lines; a report line is one
 * line (found by fuzz_xlsx: crashes/xlsx/xml-error-with-newline.xml). */
START_TEST(test_reason_is_one_line)
{
    size_t len;
    char *b = one_sheet("<sheetData><row><c t=\"inlineStr\"><is><t>\x8D\x53\xDB\x72</t></is></c>"
                        "</row></sheetData>", &len);
    csv_result r;
    char *report = NULL;
    ck_assert_int_eq(workbook_parse(b, len, "bad.xlsx", &cat, NULL, &r, &report, NULL, NULL,
                                    NULL), -1);
    ck_assert_ptr_nonnull(report);
    ck_assert_msg(strncmp(report, "bad.xlsx:Sheet1: XML 部件", strlen("bad.xlsx:Sheet1: XML 部件")) == 0,
                  "%s", report);
    ck_assert_msg(strchr(report, '\n') == report + strlen(report) - 1, "more than one line: %s",
                  report);
    free(report);
    csv_result_free(&r);
    free(b);
}
END_TEST

static Suite *workbook_suite(void)
{
    Suite *s = suite_create("workbook");
    TCase *tc = check_tcase(s, "core", NULL, NULL, 60);
    tcase_add_test(tc, test_magic);
    tcase_add_test(tc, test_numbers);
    tcase_add_test(tc, test_serial_dates);
    tcase_add_test(tc, test_date_formats);
    tcase_add_test(tc, test_libreoffice_round_trip);
    tcase_add_test(tc, test_parse_like_csv);
    tcase_add_test(tc, test_errors_name_sheet_and_row);
    tcase_add_test(tc, test_openpyxl_book);
    tcase_add_test(tc, test_openpyxl_raw_and_1904);
    tcase_add_test(tc, test_xls_book);
    tcase_add_test(tc, test_cell_kinds);
    tcase_add_test(tc, test_cells_out_of_order_and_merged);
    tcase_add_test(tc, test_sheets_merged);
    tcase_add_test(tc, test_no_sheet_recognised);
    tc = check_tcase(s, "hostile", NULL, NULL, 60);
    tcase_add_test(tc, test_zip_bomb);
    tcase_add_test(tc, test_unsafe_names);
    tcase_add_test(tc, test_doctype_refused);
    tcase_add_test(tc, test_deep_nesting);
    tcase_add_test(tc, test_too_many_cells);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_reason_is_one_line);
    return s;
}

CHECK_MAIN(workbook_suite)
