/*
 * csv.h — the CSV reader of README, Feeding figures: bytes in, validated observations and
 * targets out. Pure: no file I/O, no global state (iconv is used for GB18030).
 *
 * It accepts RFC 4180 (quoted fields, embedded commas and newlines, CRLF or
 * LF), UTF-8 with or without BOM and otherwise GB18030; English or Chinese
 * headers; the observation, target and wide layouts; every period and value
 * form of README, Feeding figures; units converted within a family (元/万元/亿元,
 * 美元/万美元/亿美元) and refused across families. It reads files as Excel
 * leaves them (README "Feeding figures"): title and note lines above the
 * header, units in the header (固定资产投资（亿元）), a two-row header (an
 * indicator over 累计 / 同比), 同比 (yoy) columns, parks by Chinese name,
 * total rows (合计, 小计, 总计, 全省, 全市: skipped and listed in `skipped`), and
 * the 通报 tables parkpulse exports (their derived columns ignored).
 *
 * Every row is checked against the catalogue; a bad row yields an error with
 * its line number and reason, Chinese first ("<中文> / <English>", with a
 * "did you mean" for a near miss of a park, indicator or column). An input
 * without any figure is an error too. The caller refuses a whole input when
 * n_errors_total > 0.
 */
#ifndef PP_CSV_H
#define PP_CSV_H

#include "model.h"

#define CSV_MAX_BYTES   (32u << 20) /* larger inputs are refused whole */
#define CSV_MAX_FIELD   4096        /* bytes in one field */
#define CSV_MAX_COLUMNS 256
#define CSV_MAX_ERRORS  1000        /* further errors are counted, not kept */

typedef enum { CSV_LAYOUT_NONE = 0, CSV_LAYOUT_OBSERVATIONS, CSV_LAYOUT_TARGETS, CSV_LAYOUT_WIDE } csv_layout;

#define CSV_REASON_MAX 640

typedef struct csv_error {
    int line;            /* 1-based physical line where the record starts; 0 for the whole input */
    /* Chinese first, then English: "未知园区“xiangtan-etd”（是否应为“xiangtan-etdz”？） /
     * unknown park 'xiangtan-etd' (did you mean 'xiangtan-etdz'?)" */
    char reason[CSV_REASON_MAX];
} csv_error;

/* A row skipped on purpose (a total row, a note line): listed, not an error. */
typedef csv_error csv_skip;

typedef struct csv_result {
    csv_layout layout;
    const char *encoding;    /* "UTF-8" or "GB18030" (static string) */
    pp_obs *obs;             /* received_at is 0: the caller stamps it */
    size_t n_obs;
    pp_target *targets;
    size_t n_targets;
    csv_error *errors;       /* at most CSV_MAX_ERRORS kept */
    size_t n_errors;         /* kept errors */
    size_t n_errors_total;   /* all errors, including those not kept */
    size_t n_rows;           /* data records read (not counting the header) */
    csv_skip *skipped;       /* rows skipped on purpose, at most CSV_MAX_ERRORS kept */
    size_t n_skipped;
    int header_line;         /* line of the header (its first row), 0 when there is none */
    bool header_recognised;  /* a record among the first ones looked like a header (园区 and a
                              * period, indicator, value, year or indicator column); when
                              * false the record with the most cells was taken instead */
    bool stopped;            /* csv_parse_stoppable: stopped before the end (take nothing) */
    bool out_of_memory;      /* reading ran out of memory (an error of the reader, not of
                              * the input: its "out of memory" error is among the errors) */
} csv_result;

/* Parses len bytes. Always fills *out (free it with csv_result_free), also on
 * error. Returns 0 when the input is wholly good, -1 when any error was found
 * (then out->n_errors_total > 0). The input need not be NUL-terminated. */
int csv_parse(const char *data, size_t len, const pp_catalog *cat, csv_result *out);

/* csv_parse that calls stop(ud) every CSV_STOP_EVERY records and gives up as
 * soon as it returns true: then out->stopped is set, the result is incomplete
 * and the call returns -1 (with n_errors_total 0). stop may be NULL. */
#define CSV_STOP_EVERY 1024
int csv_parse_stoppable(const char *data, size_t len, const pp_catalog *cat, csv_result *out,
                        bool (*stop)(void *ud), void *ud);

/* The same, and an observation whose period is after max_period (the current
 * month in the configured timezone, as ingest passes it; -1: no limit) is a
 * bad row: "期间2102-08晚于当前月份（2021-10），不能接收 / period 2102-08 is
 * after the current month (2021-10)" (README "Feeding figures"). Targets are not
 * limited. */
int csv_parse_until(const char *data, size_t len, const pp_catalog *cat, int max_period,
                    csv_result *out, bool (*stop)(void *ud), void *ud);

/* That reason, for a period found after max_period elsewhere (a workbook). */
void csv_future_why(int period, int max_period, char *why, size_t len);

void csv_result_free(csv_result *r);

/* Formats every error, for the person who sent the figures, as
 *   <name>:<line>: 文件 <name>，第<line>行：<reason>\n
 * (line 0, the whole input: "<name>:0: 文件 <name>：<reason>"), the reason
 * Chinese first, then English. The "<name>:<line>:" prefix stays first so
 * that programs can find the line. A malloc'd string (caller frees); NULL on
 * allocation failure. */
char *csv_errors_report(const csv_result *r, const char *name);

/* The same for one sheet of a workbook read as CSV (one line per row, so a
 * line number is the sheet's row number): each error is placed as
 *   <name>:<sheet>!<row>: 文件 <name>，工作表 <sheet>，第<row>行：<reason>
 * sheet NULL gives csv_errors_report's. */
char *csv_errors_report_at(const csv_result *r, const char *name, const char *sheet);

/* The skipped rows in the same form ("…第<line>行：已跳过 <reason>"); "" when
 * there are none. Malloc'd (caller frees); NULL on allocation failure. */
char *csv_skipped_report_at(const csv_result *r, const char *name, const char *sheet);

/* ---- the pieces, exposed for tests and for other inputs (HTTP query strings) ---- */

/* Parses every period form (README, Feeding figures: "2024-11", "2024年1-11月", "2024年一季度", …,
 * full-width too; a date "2021/8/1", "2021-08-01" means its month; "2021.8").
 * Returns 0 and sets *period, or -1 and a reason ("<中文> / <English>") in why. */
int csv_parse_period(const char *s, int *period, char *why, size_t whylen);

/* Parses a value ("1,234.5", "１９２．２", "12.3%", "192.2亿元") and converts it to
 * to_unit using the unit in the value or, if none, unit_col (may be NULL or "").
 * Returns 1 and sets *value; 0 when the cell means "missing" ("", "-", "—",
 * "N/A", "/"); -1 with a reason ("<中文> / <English>") in why for a bad number or a
 * unit of another family. */
int csv_parse_value(const char *s, const char *unit_col, const char *to_unit, double *value,
                    char *why, size_t whylen);

/* Levenshtein distance over bytes. ("did you mean" counts characters.) */
size_t csv_edit_distance(const char *a, const char *b);

#endif
