/*
 * report_xlsx.c — the 通报 workbook with libxlsxwriter (see report_xlsx.h).
 *
 * Layout of the sheet 通报 (rows from 0): 0 the title, 1 the info line, 2 the
 * summary, 3–4 the header (排名 and 园区 merged over both rows; per indicator
 * its label over six sub-columns), then per peer group a group row and its
 * parks, a blank row and the footnotes. Panes are frozen below the header
 * and right of the park names; rows 3–4 repeat on each printed page.
 */
#include "report_xlsx.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xlsxwriter.h>

#include "log.h"

#define PAPER_A4 9
#define COL_FIRST 2 /* the first indicator column, after 排名 and 园区 */

typedef struct fmts {
    lxw_format *title, *info, *head, *group, *text, *rank, *na;
    lxw_format *amount[3];   /* as published; with r; with e */
    lxw_format *rate, *points, *note;
    lxw_format *status[4];   /* none, ok, warning, critical */
    lxw_format *alert_text;
} fmts;

static lxw_format *bordered(lxw_workbook *wb)
{
    lxw_format *f = workbook_add_format(wb);
    format_set_border(f, LXW_BORDER_THIN);
    format_set_font_size(f, 10);
    format_set_align(f, LXW_ALIGN_VERTICAL_CENTER);
    return f;
}

static void make_formats(lxw_workbook *wb, fmts *f)
{
    static const char *const amount[] = { "General", "General\" r\"", "General\" e\"" };
    static const lxw_color_t bg[] = { 0, 0xC6EFCE, 0xFFEB9C, 0xFFC7CE };
    static const lxw_color_t fg[] = { 0, 0x006100, 0x9C5700, 0x9C0006 };
    f->title = workbook_add_format(wb);
    format_set_bold(f->title);
    format_set_font_size(f->title, 16);
    format_set_align(f->title, LXW_ALIGN_CENTER);
    f->info = workbook_add_format(wb);
    format_set_font_size(f->info, 10);
    format_set_align(f->info, LXW_ALIGN_CENTER);
    f->note = workbook_add_format(wb);
    format_set_font_size(f->note, 9);
    f->head = bordered(wb);
    format_set_bold(f->head);
    format_set_align(f->head, LXW_ALIGN_CENTER);
    format_set_text_wrap(f->head);
    format_set_pattern(f->head, LXW_PATTERN_SOLID);
    format_set_bg_color(f->head, 0xD9E1F2);
    f->group = bordered(wb);
    format_set_bold(f->group);
    format_set_pattern(f->group, LXW_PATTERN_SOLID);
    format_set_bg_color(f->group, 0xEDEDED);
    f->text = bordered(wb);
    f->alert_text = bordered(wb);
    format_set_text_wrap(f->alert_text);
    f->rank = bordered(wb);
    format_set_align(f->rank, LXW_ALIGN_CENTER);
    f->na = bordered(wb);
    format_set_align(f->na, LXW_ALIGN_CENTER);
    for (size_t i = 0; i < 3; i++) {
        f->amount[i] = bordered(wb);
        format_set_num_format(f->amount[i], amount[i]);
    }
    f->rate = bordered(wb);
    format_set_num_format(f->rate, "0.0");
    f->points = bordered(wb);
    format_set_num_format(f->points, "0.00");
    for (size_t i = 0; i < 4; i++) {
        f->status[i] = bordered(wb);
        format_set_align(f->status[i], LXW_ALIGN_CENTER);
        if (i > 0) {
            format_set_pattern(f->status[i], LXW_PATTERN_SOLID);
            format_set_bg_color(f->status[i], bg[i]);
            format_set_font_color(f->status[i], fg[i]);
        }
    }
}

static lxw_format *status_fmt(const fmts *f, pp_status s)
{
    switch (s) {
    case PP_STATUS_OK: return f->status[1];
    case PP_STATUS_WARNING: return f->status[2];
    case PP_STATUS_CRITICAL: return f->status[3];
    default: return f->status[0];
    }
}

static void num_or_dash(lxw_worksheet *ws, lxw_row_t r, lxw_col_t c, bool has, double v, lxw_format *fmt,
                        const fmts *f)
{
    if (has && isfinite(v))
        worksheet_write_number(ws, r, c, v, fmt);
    else
        worksheet_write_string(ws, r, c, "—", f->na);
}

static void print_setup(lxw_worksheet *ws, lxw_row_t head_first, lxw_row_t head_last)
{
    worksheet_set_landscape(ws);
    worksheet_set_paper(ws, PAPER_A4);
    worksheet_fit_to_pages(ws, 1, 0); /* one page wide, as many pages tall as needed */
    worksheet_set_margins(ws, 0.4, 0.4, 0.5, 0.5);
    worksheet_center_horizontally(ws);
    worksheet_repeat_rows(ws, head_first, head_last);
    worksheet_set_footer(ws, "&C第 &P 页，共 &N 页");
}

static void sheet_report(lxw_workbook *wb, const report_doc *d, const fmts *f)
{
    const pp_catalog *cat = &d->view->cfg->catalog;
    lxw_worksheet *ws = workbook_add_worksheet(wb, "通报");
    lxw_col_t last = (lxw_col_t)(COL_FIRST + REPORT_DOC_SUBCOLS * d->n_inds - 1);
    if (last < COL_FIRST + 5)
        last = COL_FIRST + 5;
    worksheet_set_row(ws, 0, 26, NULL);
    worksheet_merge_range(ws, 0, 0, 0, last, d->title, f->title);
    worksheet_merge_range(ws, 1, 0, 1, last, d->info, f->info);
    worksheet_merge_range(ws, 2, 0, 2, last, d->summary, f->info);
    worksheet_merge_range(ws, 3, 0, 4, 0, "排名", f->head);
    worksheet_merge_range(ws, 3, 1, 4, 1, "园区", f->head);
    worksheet_set_column(ws, 0, 0, 5, NULL);
    worksheet_set_column(ws, 1, 1, 14, NULL);
    worksheet_set_row(ws, 4, 30, NULL);
    for (size_t k = 0; k < d->n_inds; k++) {
        const pp_indicator *ind = &cat->indicators[d->inds[k]];
        lxw_col_t c0 = (lxw_col_t)(COL_FIRST + REPORT_DOC_SUBCOLS * k);
        worksheet_merge_range(ws, 3, c0, 3, c0 + REPORT_DOC_SUBCOLS - 1, ind->label, f->head);
        for (size_t s = 0; s < REPORT_DOC_SUBCOLS; s++) {
            char h[128];
            report_doc_subheader(ind, s, h, sizeof h);
            worksheet_write_string(ws, 4, (lxw_col_t)(c0 + s), h, f->head);
        }
        worksheet_set_column(ws, c0, c0 + 4, 8.5, NULL);
        worksheet_set_column(ws, c0 + 5, c0 + 5, 9, NULL);
    }
    lxw_row_t row = 5;
    for (size_t g = 0; g < d->n_blocks; g++) {
        const report_doc_block *blk = &d->blocks[g];
        char label[320];
        snprintf(label, sizeof label, "%s（%zu家）", blk->label, blk->n);
        worksheet_merge_range(ws, row, 0, row, last, label, f->group);
        row++;
        for (size_t r = 0; r < blk->n; r++, row++) {
            const pp_park *pk = &cat->parks[blk->rows[r].park];
            if (blk->rows[r].rank > 0)
                worksheet_write_number(ws, row, 0, blk->rows[r].rank, f->rank);
            else
                worksheet_write_string(ws, row, 0, "—", f->na);
            worksheet_write_string(ws, row, 1, pk->name, f->text);
            for (size_t k = 0; k < d->n_inds; k++) {
                const report_cell *c = report_doc_cell(d, blk->rows[r].park, k);
                lxw_col_t c0 = (lxw_col_t)(COL_FIRST + REPORT_DOC_SUBCOLS * k);
                if (!c->has) {
                    const char *m = c->not_reported ? "…" : "—";
                    for (size_t s = 0; s < REPORT_DOC_SUBCOLS; s++)
                        worksheet_write_string(ws, row, (lxw_col_t)(c0 + s), s == 0 || s == 5 ? m : "—",
                                               f->na);
                    continue;
                }
                const series_status *st = &c->st;
                const pace_result *p = &st->pace;
                worksheet_write_number(ws, row, c0, st->value,
                                       f->amount[c->estimated ? 2 : c->revised ? 1 : 0]);
                num_or_dash(ws, row, c0 + 1, st->has_yoy, st->yoy, f->rate, f);
                num_or_dash(ws, row, c0 + 2, st->has_target, st->target, f->amount[0], f);
                num_or_dash(ws, row, c0 + 3, p->has_completion, p->completion_pct, f->rate, f);
                num_or_dash(ws, row, c0 + 4, p->has_gap, p->gap, f->points, f);
                char text[64];
                snprintf(text, sizeof text, "%s%s", report_doc_status_text(c->status),
                         c->overdue ? " …" : "");
                worksheet_write_string(ws, row, c0 + 5, text, status_fmt(f, c->status));
            }
        }
    }
    row++;
    const char *notes[8];
    size_t nn = report_doc_footnotes(d, notes, 8);
    worksheet_write_string(ws, row++, 0, "注：", f->note);
    for (size_t i = 0; i < nn; i++, row++) {
        char line[600];
        snprintf(line, sizeof line, "%zu. %s", i + 1, notes[i]);
        worksheet_merge_range(ws, row, 0, row, last, line, f->note);
    }
    worksheet_freeze_panes(ws, 5, COL_FIRST);
    print_setup(ws, 3, 4);
}

static void sheet_alerts(lxw_workbook *wb, const report_doc *d, const fmts *f)
{
    static const char *const head[] = { "序号", "园区", "指标", "期间", "数值", "完成%", "较序时(百分点)",
                                        "状态", "新增", "连续期数", "说明" };
    static const double width[] = { 5, 14, 16, 9, 10, 8, 10, 9, 6, 8, 70 };
    const pp_catalog *cat = &d->view->cfg->catalog;
    lxw_worksheet *ws = workbook_add_worksheet(wb, "预警");
    char title[300], pbuf[16];
    snprintf(title, sizeof title, "%s — 本期预警（严重在前，新增在前）", d->title);
    worksheet_merge_range(ws, 0, 0, 0, 10, title, f->title);
    for (lxw_col_t c = 0; c < 11; c++) {
        worksheet_write_string(ws, 1, c, head[c], f->head);
        worksheet_set_column(ws, c, c, width[c], NULL);
    }
    pp_period_format(d->period, pbuf, sizeof pbuf);
    for (size_t i = 0; i < d->n_alerts; i++) {
        const report_doc_alert *a = &d->alerts[i];
        const report_cell *c = report_doc_cell(d, a->park, a->col);
        lxw_row_t r = (lxw_row_t)(2 + i);
        worksheet_write_number(ws, r, 0, (double)(i + 1), f->rank);
        worksheet_write_string(ws, r, 1, cat->parks[a->park].name, f->text);
        worksheet_write_string(ws, r, 2, cat->indicators[d->inds[a->col]].label, f->text);
        worksheet_write_string(ws, r, 3, pbuf, f->rank);
        worksheet_write_number(ws, r, 4, c->st.value, f->amount[0]);
        num_or_dash(ws, r, 5, c->st.pace.has_completion, c->st.pace.completion_pct, f->rate, f);
        num_or_dash(ws, r, 6, c->st.pace.has_gap, c->st.pace.gap, f->points, f);
        worksheet_write_string(ws, r, 7, report_doc_status_text(c->status), status_fmt(f, c->status));
        worksheet_write_string(ws, r, 8, a->is_new ? "新增" : "", f->rank);
        if (a->streak > 0)
            worksheet_write_number(ws, r, 9, a->streak, f->rank);
        else
            worksheet_write_string(ws, r, 9, "—", f->na);
        worksheet_write_string(ws, r, 10, c->st.pace.message, f->alert_text);
    }
    if (d->n_alerts == 0)
        worksheet_merge_range(ws, 2, 0, 2, 10, "本期无预警。", f->text);
    worksheet_freeze_panes(ws, 2, 0);
    print_setup(ws, 1, 1);
}

static void sheet_rankings(lxw_workbook *wb, const report_doc *d, const fmts *f)
{
    static const char *const head[] = { "排名", "园区", "数值", "同比%", "完成%", "较序时(百分点)",
                                        "较上期", "连续第一(期)" };
    static const double width[] = { 6, 16, 10, 8, 8, 10, 8, 10 };
    const pp_catalog *cat = &d->view->cfg->catalog;
    lxw_worksheet *ws = workbook_add_worksheet(wb, "排名");
    char title[300];
    snprintf(title, sizeof title, "%s — 各指标排名（按较序时进度，并列同名次）", d->title);
    worksheet_merge_range(ws, 0, 0, 0, 7, title, f->title);
    for (lxw_col_t c = 0; c < 8; c++)
        worksheet_set_column(ws, c, c, width[c], NULL);
    lxw_row_t row = 2;
    for (size_t k = 0; k < d->n_inds; k++) {
        const pp_indicator *ind = &cat->indicators[d->inds[k]];
        for (size_t g = 0; g < d->n_blocks; g++) {
            const report_doc_block *blk = &d->blocks[g];
            if (strcmp(blk->id, "other") == 0)
                continue; /* not a peer group: no ranking of its own */
            size_t n;
            report_rank *v = report_ranking(d->view, ind, d->period, blk->group, REPORT_BY_GAP, &n);
            if (v == NULL)
                continue;
            char label[400];
            snprintf(label, sizeof label, "%s（%s）— %s", ind->label, ind->unit, blk->label);
            worksheet_merge_range(ws, row, 0, row, 7, label, f->group);
            row++;
            for (lxw_col_t c = 0; c < 8; c++)
                worksheet_write_string(ws, row, c, head[c], f->head);
            row++;
            for (size_t i = 0; i < n; i++, row++) {
                const series_status *st = &v[i].st;
                if (v[i].rank > 0)
                    worksheet_write_number(ws, row, 0, v[i].rank, f->rank);
                else
                    worksheet_write_string(ws, row, 0, "—", f->na);
                worksheet_write_string(ws, row, 1, st->park->name, f->text);
                worksheet_write_number(ws, row, 2, st->value, f->amount[0]);
                num_or_dash(ws, row, 3, st->has_yoy, st->yoy, f->rate, f);
                num_or_dash(ws, row, 4, st->pace.has_completion, st->pace.completion_pct, f->rate, f);
                num_or_dash(ws, row, 5, st->pace.has_gap, st->pace.gap, f->points, f);
                char ch[32];
                if (!v[i].has_change)
                    snprintf(ch, sizeof ch, "—");
                else if (v[i].change > 0)
                    snprintf(ch, sizeof ch, "↑%d", v[i].change);
                else if (v[i].change < 0)
                    snprintf(ch, sizeof ch, "↓%d", -v[i].change);
                else
                    snprintf(ch, sizeof ch, "持平");
                worksheet_write_string(ws, row, 6, ch, f->rank);
                if (v[i].streak_first > 0)
                    worksheet_write_number(ws, row, 7, v[i].streak_first, f->rank);
                else
                    worksheet_write_string(ws, row, 7, "—", f->na);
            }
            free(v);
            row++;
        }
    }
    print_setup(ws, 0, 0);
}

/* Reads the whole file fd into a malloc'd buffer. */
static int slurp(int fd, char **data, size_t *len)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0)
        return -errno;
    char *buf = malloc((size_t)sb.st_size + 1);
    if (buf == NULL)
        return -ENOMEM;
    size_t got = 0;
    while (got < (size_t)sb.st_size) {
        ssize_t n = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? -errno : -EIO;
            free(buf);
            return e;
        }
        got += (size_t)n;
    }
    *data = buf;
    *len = got;
    return 0;
}

int report_xlsx(const report_doc *d, const char *dir, char **data, size_t *len)
{
    char path[4096];
    *data = NULL;
    *len = 0;
    if (snprintf(path, sizeof path, "%s/.report-XXXXXX.xlsx", dir && *dir ? dir : "/tmp") >=
        (int)sizeof path)
        return -ENAMETOOLONG;
    int fd = mkstemps(path, 5);
    if (fd < 0) {
        int e = errno;
        log_err_rc("report", e, "cannot create a temporary workbook in %s", dir);
        return -e;
    }
    lxw_workbook_options opt = { .tmpdir = (char *)(dir && *dir ? dir : "/tmp") };
    lxw_workbook *wb = workbook_new_opt(path, &opt);
    int rc = 0;
    if (wb == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    fmts f;
    make_formats(wb, &f);
    sheet_report(wb, d, &f);
    sheet_alerts(wb, d, &f);
    sheet_rankings(wb, d, &f);
    workbook_set_properties(wb, &(lxw_doc_properties){ .title = (char *)d->title,
                                                        .author = (char *)"parkpulse" });
    lxw_error err = workbook_close(wb);
    if (err != LXW_NO_ERROR) {
        log_err("report", "libxlsxwriter could not write %s: %s", path, lxw_strerror(err));
        rc = -EIO;
        goto out;
    }
    rc = slurp(fd, data, len);
out:
    close(fd);
    unlink(path);
    return rc;
}
