/*
 * report_doc.h — the monthly 通报 as a document (README "The 通报"): the
 * title, a line with 数据截至, 序时进度 N/12, the parks per group and the time
 * generated, a summary sentence, a table with a row per park — grouped by
 * peer group, ordered by the group's ranking on the first indicator shown —
 * (the first indicator shown that has a target somewhere, else the first)
 * and, per indicator, 累计值, 同比%, 全年目标, 完成%, 较序时(百分点), 状态; the
 * period's alerts; footnotes. Built once under a read view and written as
 * the workbook (report_xlsx.c) and as the printable page (report_doc_html).
 *
 * Marks: `—` not applicable (no target, no pace), `…` not reported (a
 * target for the year and no figure for the month), `r` revised, `e`
 * estimated; the status is a colour and a symbol (● 正常, ▲ 预警, ■ 严重) so
 * that a black-and-white print still tells them apart.
 */
#ifndef PP_REPORT_DOC_H
#define PP_REPORT_DOC_H

#include "report.h"

typedef struct report_cell {
    bool has;                /* a figure for the period */
    series_status st;        /* when has */
    bool revised, estimated; /* the figure in force: status R or a later vintage; status E */
    bool not_reported;       /* no figure, a target for the year: … */
    bool overdue;            /* the series' next figure is overdue */
    pp_status status;        /* the judgement of the figure (when has) */
} report_cell;

typedef struct report_doc_row {
    size_t park;             /* index into catalog.parks */
    int rank;                /* in the block's group on the ordering indicator; 0: none shown */
} report_doc_row;

typedef struct report_doc_block {
    const char *id, *label;  /* "all" 全部园区, a group, or "other" 其他园区 */
    const conf_group *group; /* NULL for all and other */
    report_doc_row *rows;
    size_t n;
} report_doc_block;

typedef struct report_doc_alert {
    size_t park, col;        /* park index; column (index into inds) */
    bool is_new;             /* not in warning or worse the period before (or less severe) */
    int streak;              /* consecutive periods in warning or worse; -1: unknown */
} report_doc_alert;

typedef struct report_doc {
    const pp_view *view;
    int period;
    size_t *inds;            /* catalog indexes of the indicators shown (a figure that month) */
    size_t n_inds;
    report_cell *cells;      /* [park * n_inds + col] */
    report_doc_block *blocks;
    size_t n_blocks;
    report_doc_alert *alerts; /* red first, new first, then by gap */
    size_t n_alerts;
    int n_assessed, n_ok, n_warning, n_critical, n_new, n_no_target, n_not_reported;
    char title[160];         /* 2021年1-8月园区主要经济指标监测通报 */
    char info[1024];         /* 数据截至… · 序时进度 8/12 · … · 生成时间 … */
    char summary[512];       /* 列入本期通报的…项指标中，… */
    char generated[40];
    char colour_rule[256];
    size_t order_col;        /* the column the rows are ordered by */
    const char *order_label; /* its indicator's label, or NULL */
} report_doc;

/* Builds the 通报 of period under the read view v. 0, or -ENOMEM. */
int report_doc_build(const pp_view *v, int period, report_doc *d);
void report_doc_free(report_doc *d);

static inline const report_cell *report_doc_cell(const report_doc *d, size_t park, size_t col)
{
    return &d->cells[park * d->n_inds + col];
}

/* The footnotes, NULL-terminated (static strings, and d's colour rule). */
size_t report_doc_footnotes(const report_doc *d, const char **out, size_t max);

/* A status as the 通报 shows it: "● 正常", "▲ 预警", "■ 严重", "未设目标". */
const char *report_doc_status_text(pp_status s);

/* The sub-headers of an indicator's columns: 累计值(unit) (数值(unit) for
 * rates and ranks), 同比%, 全年目标, 完成%, 较序时(百分点), 状态. */
#define REPORT_DOC_SUBCOLS 6
void report_doc_subheader(const pp_indicator *ind, size_t k, char *buf, size_t len);

/* Writes the printable page: page is the template (dashboards/report.html)
 * whose "<!--report-->" is replaced by the document. */
void report_doc_html(const report_doc *d, const char *page, jbuf *b);

#endif
