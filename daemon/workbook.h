/*
 * workbook.h — Excel workbooks (README, Feeding figures: Excel workbooks) read as CSV: an `.xlsx`
 * (Office Open XML: libzip for the container, libxml2's streaming
 * xmlTextReader for the parts) or an `.xls` (BIFF8: libfreexl) becomes one
 * CSV text per sheet, which csv.c then reads with the rules of every CSV.
 *
 * The CSV text of a sheet (RFC 4180, UTF-8) has exactly one line per sheet
 * row, so that a line number is the Excel row number: rows missing from the
 * sheet are empty lines, and a line break inside a cell becomes a space. The
 * value of a merged range is copied into every cell of the range (.xlsx; the
 * .xls reader, libfreexl, does not report merged ranges). Numbers come out as
 * the shortest decimal that reads back as the stored double (192.2, not
 * 192.19999999999999), without an exponent; shared and inline strings as
 * their text; booleans as TRUE/FALSE; error cells (#DIV/0!) as their text,
 * which csv.c refuses as a bad value; a formula as its cached value (a
 * formula saved without one as "=" and its text, refused the same way). A
 * number in a date format — built-in formats 14–17 and 22, the East Asian
 * date formats 27–36 and 50–58, and custom formats with y, m or d that are
 * not only a time of day (h, m, s) — is an Excel serial date and comes out as
 * YYYY-MM-DD, in the 1900 date system (with its phantom 1900-02-29) or the
 * 1904 one that workbook.xml declares.
 *
 * The input is untrusted. Before an entry is inflated its declared size and
 * the total of the entries read are checked against max_inflated, and the
 * bytes are counted while inflating (a zip bomb is refused without being
 * inflated whole); entry names with "..", absolute paths or backslashes are
 * refused; XML is read with no network, no DTD loading, no entity
 * substitution, and a part with a DOCTYPE is refused outright; nesting is
 * bounded; sheets are streamed (no DOM), and the cells of the workbook are
 * capped at max_cells. Every refusal has a reason, Chinese first.
 */
#ifndef PP_WORKBOOK_H
#define PP_WORKBOOK_H

#include <stdbool.h>
#include <stddef.h>

#include "csv.h"

#define WB_MAX_INFLATED (256u << 20) /* bytes inflated from one .xlsx, in all */
#define WB_MAX_CELLS    5000000u     /* cells of one workbook (also the cells a merge fills) */
#define WB_MAX_SHEETS   256
#define WB_MAX_ENTRIES  10000        /* zip entries */
#define WB_MAX_DEPTH    64           /* XML nesting */
#define WB_MAX_ROW      1048576      /* Excel's bounds */
#define WB_MAX_COL      16384

typedef enum { WB_NONE = 0, WB_XLSX, WB_XLS } wb_format;

/* The format of an input by its first bytes: a zip (PK\3\4) is an .xlsx, an
 * OLE2 compound file (D0 CF 11 E0 A1 B1 1A E1) an .xls, anything else not a
 * workbook (CSV). */
wb_format workbook_format(const void *data, size_t len);

/* "xlsx", "xls" or "csv" (static strings). */
const char *workbook_format_name(wb_format f);

typedef struct wb_limits {
    size_t max_inflated; /* 0: WB_MAX_INFLATED */
    size_t max_cells;    /* 0: WB_MAX_CELLS */
} wb_limits;

typedef struct wb_sheet {
    char *name;          /* UTF-8; control characters replaced by '?' */
    char *csv;           /* NUL-terminated CSV text, len bytes; NULL when not a worksheet */
    size_t len;
    size_t rows;         /* lines of csv (the last row that has a cell) */
    const char *skip;    /* NULL, or why the sheet has no text (a chart sheet, …); static */
} wb_sheet;

typedef struct workbook {
    wb_format format;
    wb_sheet *sheets;
    size_t n_sheets;
    bool date1904;
    char error[512];     /* when workbook_read failed: Chinese first, then English */
    char error_sheet[128]; /* the sheet the error is in, or "" for the whole workbook */
} workbook;

/* Reads a workbook of either format into one CSV text per sheet. Returns 0,
 * or -1 with wb->error set (and wb->error_sheet when a sheet is at fault);
 * wb is filled either way (free it with workbook_free). lim may be NULL. */
int workbook_read(const char *data, size_t len, const wb_limits *lim, workbook *wb);

void workbook_free(workbook *wb);

/*
 * The whole road of a workbook input: workbook_read, then csv_parse of each
 * sheet. A sheet whose header csv.c recognises (layout != CSV_LAYOUT_NONE) is
 * read; the others are skipped and named in *notes. The figures of the sheets
 * read are merged into *out (the layout of the first sheet read); a figure
 * given in two sheets is an error. Returns 0 when the workbook is wholly
 * good; -1 when it is refused — a bad row in any sheet read, no sheet
 * recognised, or a workbook that cannot be read —, then out->n_errors_total
 * > 0 and *report holds the report, each error placed as
 * "<name>:<sheet>!<row>: reason" or "<name>: reason". When stop(ud) said stop
 * (csv_parse_stoppable), out->stopped is set and -1 returned with no report.
 * *notes (may be NULL) receives, also on success, one line per skipped sheet
 * (malloc'd, or NULL when none). out->encoding is "xlsx" or "xls".
 */
int workbook_parse(const char *data, size_t len, const char *name, const pp_catalog *cat,
                   const wb_limits *lim, csv_result *out, char **report, char **notes,
                   bool (*stop)(void *ud), void *ud);

/* Formats v as the shortest decimal (15, 16 or 17 significant digits) that
 * reads back as v, without an exponent: 192.2, 0.000001, 100000000000000000000.
 * Returns the length written (buf of at least WB_NUM_MAX bytes). */
#define WB_NUM_MAX 352
size_t workbook_format_number(double v, char *buf, size_t len);

/* An Excel serial date as YYYY-MM-DD (date1904: the 1904 system). Returns 0,
 * or -1 when the serial is outside 1900-01-01 (1904-01-01) .. 9999-12-31. */
int workbook_serial_date(double serial, bool date1904, char *buf, size_t len);

/* true when an Excel number format code is a date (see the top of the file). */
bool workbook_format_is_date(const char *code);

#endif
