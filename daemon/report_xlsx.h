/*
 * report_xlsx.h — the 通报 workbook (GET /api/v1/report?format=xlsx,
 * `parkpulse report --xlsx FILE`), written with libxlsxwriter from the
 * document of report_doc.h. Sheet 通报: title, info line, summary, a merged
 * two-row header per indicator, a row per park by peer group, status fills
 * with symbols, number formats (amounts as published, rates 1 decimal,
 * points 2), frozen panes, A4 landscape fit to one page wide with the header
 * rows repeated, footnotes. Sheet 预警: the period's alerts, red first, new
 * first. Sheet 排名: each indicator's ranking in each group.
 */
#ifndef PP_REPORT_XLSX_H
#define PP_REPORT_XLSX_H

#include <stddef.h>

#include "report_doc.h"

/* Writes the workbook of d. libxlsxwriter writes files only: the workbook
 * goes to a new temporary file in dir (mkstemps, mode 0600), is read back
 * into *data (malloc'd, *len bytes) and removed. 0, or -errno. */
int report_xlsx(const report_doc *d, const char *dir, char **data, size_t *len);

#endif
