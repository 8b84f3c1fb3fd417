/*
 * report_doc.c — the 通报 as a document, and its printable HTML (see
 * report_doc.h).
 */
#include "report_doc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- merge points: what the series will carry ------------------------------
 * The status of a figure, whether its series is overdue, and its streak of
 * periods in warning or worse are the pace engine's (pace_result); these
 * three helpers are the only places this file reads them. */

static pp_status cell_status(const series_status *st) { return st->pace.status; }

static bool cell_overdue(const series_status *st) { return st->pace.overdue; }

static int cell_streak(const series_status *st) { return st->pace.streak; }

/* ---- building --------------------------------------------------------------- */

const char *report_doc_status_text(pp_status s)
{
    switch (s) {
    case PP_STATUS_OK: return "● 正常";
    case PP_STATUS_WARNING: return "▲ 预警";
    case PP_STATUS_CRITICAL: return "■ 严重";
    case PP_STATUS_NO_TARGET: return "未设目标";
    case PP_STATUS_NO_DATA: return "未报送";
    case PP_STATUS_STALE:
    case PP_STATUS_OVERDUE: return "逾期未报";
    case PP_STATUS_RECEIVED: return "已补报";
    }
    return "";
}

void report_doc_subheader(const pp_indicator *ind, size_t k, char *buf, size_t len)
{
    switch (k) {
    case 0:
        snprintf(buf, len, "%s(%s)", ind->kind == PP_KIND_CUMULATIVE ? "累计值" : "数值", ind->unit);
        break;
    case 1: snprintf(buf, len, "同比%%"); break;
    case 2: snprintf(buf, len, "全年目标"); break;
    case 3: snprintf(buf, len, "完成%%"); break;
    case 4: snprintf(buf, len, "较序时(百分点)"); break;
    default: snprintf(buf, len, "状态"); break;
    }
}

static int severity(pp_status s)
{
    return s == PP_STATUS_CRITICAL ? 2 : s == PP_STATUS_WARNING ? 1 : 0;
}

static int cmp_alert(const void *pa, const void *pb, void *ctx)
{
    const report_doc *d = ctx;
    const report_doc_alert *a = pa, *b = pb;
    const report_cell *x = report_doc_cell(d, a->park, a->col), *y = report_doc_cell(d, b->park, b->col);
    if (severity(x->status) != severity(y->status))
        return severity(y->status) - severity(x->status);
    if (a->is_new != b->is_new)
        return a->is_new ? -1 : 1;
    if (x->st.pace.has_gap && y->st.pace.has_gap && x->st.pace.gap != y->st.pace.gap)
        return x->st.pace.gap < y->st.pace.gap ? -1 : 1;
    if (a->park != b->park)
        return a->park < b->park ? -1 : 1;
    return a->col < b->col ? -1 : a->col > b->col;
}

/* The rows of one block: ordered by the group's ranking on the ordering
 * indicator (order_col); the parks it does not rank follow in declaration order. */
static int block_rows(const report_doc *d, report_doc_block *blk, const bool *member)
{
    const pp_catalog *cat = &d->view->cfg->catalog;
    blk->rows = calloc(cat->n_parks ? cat->n_parks : 1, sizeof *blk->rows);
    if (blk->rows == NULL)
        return -ENOMEM;
    bool *taken = calloc(cat->n_parks ? cat->n_parks : 1, sizeof *taken);
    if (taken == NULL)
        return -ENOMEM;
    if (d->n_inds > 0) {
        size_t n;
        report_rank *r = report_ranking(d->view, &cat->indicators[d->inds[d->order_col]], d->period,
                                        blk->group, REPORT_BY_GAP, &n);
        if (r == NULL) {
            free(taken);
            return -ENOMEM;
        }
        size_t ranked = 0;
        for (size_t i = 0; i < n; i++)
            ranked += member[r[i].park] && r[i].rank > 0;
        for (size_t i = 0; i < n; i++) {
            if (!member[r[i].park])
                continue;
            blk->rows[blk->n].park = r[i].park;
            /* "first of one" says nothing: a rank needs two parks ranked */
            blk->rows[blk->n].rank = blk->group || !strcmp(blk->id, "all") ? (ranked >= 2 ? r[i].rank : 0) : 0;
            blk->n++;
            taken[r[i].park] = true;
        }
        free(r);
    }
    for (size_t i = 0; i < cat->n_parks; i++)
        if (member[i] && !taken[i])
            blk->rows[blk->n++].park = i;
    free(taken);
    return 0;
}

static int build_blocks(report_doc *d)
{
    const pp_config *cfg = d->view->cfg;
    size_t np = cfg->catalog.n_parks;
    d->blocks = calloc(cfg->n_groups + 1, sizeof *d->blocks);
    bool *member = calloc(np ? np : 1, sizeof *member), *grouped = calloc(np ? np : 1, sizeof *grouped);
    int rc = 0;
    if (d->blocks == NULL || member == NULL || grouped == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (cfg->n_groups == 0) {
        report_doc_block *b = &d->blocks[d->n_blocks++];
        b->id = "all";
        b->label = "全部园区";
        for (size_t i = 0; i < np; i++)
            member[i] = true;
        rc = block_rows(d, b, member);
        goto out;
    }
    for (size_t g = 0; g < cfg->n_groups && rc == 0; g++) {
        report_doc_block *b = &d->blocks[d->n_blocks++];
        b->id = cfg->groups[g].id;
        b->label = cfg->groups[g].label;
        b->group = &cfg->groups[g];
        for (size_t i = 0; i < np; i++) {
            member[i] = conf_group_has(b->group, i);
            grouped[i] |= member[i];
        }
        rc = block_rows(d, b, member);
    }
    bool others = false;
    for (size_t i = 0; i < np; i++)
        others |= member[i] = !grouped[i];
    if (rc == 0 && others) {
        report_doc_block *b = &d->blocks[d->n_blocks++];
        b->id = "other";
        b->label = "其他园区";
        rc = block_rows(d, b, member);
    }
out:
    free(member);
    free(grouped);
    return rc;
}

static void fill_cell(const report_doc *d, size_t park, size_t col, report_cell *c)
{
    const pp_view *v = d->view;
    const pp_park *pk = &v->cfg->catalog.parks[park];
    const pp_indicator *ind = &v->cfg->catalog.indicators[d->inds[col]];
    const db_series *s = db_series_get(v->db, pk->id, ind->id);
    double target;
    memset(c, 0, sizeof *c);
    if (status_eval(v, pk, ind, s, d->period, &c->st)) {
        db_vintage vin;
        c->has = true;
        c->status = cell_status(&c->st);
        c->overdue = cell_overdue(&c->st);
        if (db_series_latest(s, d->period, &vin)) {
            c->revised = vin.status == 'R' || c->st.revision > 0;
            c->estimated = vin.status == 'E';
        }
    } else {
        c->not_reported = db_target(v->db, pk->id, ind->id, pp_period_year(d->period), &target);
    }
}

static void build_texts(report_doc *d)
{
    const pp_config *cfg = d->view->cfg;
    int y = pp_period_year(d->period), m = pp_period_month(d->period);
    if (m == 1)
        snprintf(d->title, sizeof d->title, "%d年1月园区主要经济指标监测通报", y);
    else
        snprintf(d->title, sizeof d->title, "%d年1-%d月园区主要经济指标监测通报", y, m);
    app_format_time(d->view->now, d->generated, sizeof d->generated);
    int n = snprintf(d->info, sizeof d->info, "数据截至%d年%d月 · 序时进度 %d/12 · ", y, m, m);
    for (size_t i = 0; i < d->n_blocks && n > 0 && (size_t)n < sizeof d->info; i++)
        n += snprintf(d->info + n, sizeof d->info - (size_t)n, "%s%s %zu家", i ? "、" : "",
                      d->blocks[i].label, d->blocks[i].n);
    if (n > 0 && (size_t)n < sizeof d->info)
        snprintf(d->info + n, sizeof d->info - (size_t)n, " · 生成时间 %.19s", d->generated);
    snprintf(d->summary, sizeof d->summary,
             "列入本期通报的%d项指标中，达到序时进度%d项，落后%d项；严重%d项、预警%d项，新增%d项。"
             "未设目标%d项，未报送%d项。",
             d->n_assessed, d->n_ok, d->n_warning + d->n_critical, d->n_critical, d->n_warning, d->n_new,
             d->n_no_target, d->n_not_reported);
    /* the colour rule: one sentence when every indicator shown has the same thresholds */
    double warn = -1, crit = -1;
    bool same = true;
    for (size_t k = 0; k < d->n_inds; k++) {
        const pp_indicator *ind = &cfg->catalog.indicators[d->inds[k]];
        if (k == 0) {
            warn = ind->warn;
            crit = ind->crit;
        } else if (ind->warn != warn || ind->crit != crit) {
            same = false;
        }
    }
    if (same && d->n_inds > 0)
        snprintf(d->colour_rule, sizeof d->colour_rule,
                 "颜色：■红色为严重（低于序时进度或目标%g个百分点及以上），▲黄色为预警（%g个百分点及以上），"
                 "●绿色为正常。", crit, warn);
    else
        snprintf(d->colour_rule, sizeof d->colour_rule,
                 "颜色：■红色为严重，▲黄色为预警，●绿色为正常；各指标的预警、严重阈值见配置。");
}

int report_doc_build(const pp_view *v, int period, report_doc *d)
{
    const pp_catalog *cat = &v->cfg->catalog;
    memset(d, 0, sizeof *d);
    d->view = v;
    d->period = period;
    d->inds = calloc(cat->n_indicators ? cat->n_indicators : 1, sizeof *d->inds);
    if (d->inds == NULL)
        return -ENOMEM;
    for (size_t j = 0; j < cat->n_indicators; j++)
        for (size_t i = 0; i < cat->n_parks; i++) {
            db_vintage vin;
            if (db_series_latest(db_series_get(v->db, cat->parks[i].id, cat->indicators[j].id), period,
                                 &vin)) {
                d->inds[d->n_inds++] = j;
                break;
            }
        }
    size_t ncell = cat->n_parks * d->n_inds;
    d->cells = calloc(ncell ? ncell : 1, sizeof *d->cells);
    d->alerts = calloc(ncell ? ncell : 1, sizeof *d->alerts);
    if (d->cells == NULL || d->alerts == NULL)
        goto oom;
    for (size_t i = 0; i < cat->n_parks; i++)
        for (size_t k = 0; k < d->n_inds; k++) {
            report_cell *c = &d->cells[i * d->n_inds + k];
            fill_cell(d, i, k, c);
            if (!c->has) {
                d->n_not_reported += c->not_reported;
                continue;
            }
            if (c->status == PP_STATUS_NO_TARGET) {
                d->n_no_target++;
                continue;
            }
            d->n_assessed++;
            d->n_ok += c->status == PP_STATUS_OK;
            d->n_warning += c->status == PP_STATUS_WARNING;
            d->n_critical += c->status == PP_STATUS_CRITICAL;
            if (severity(c->status) == 0)
                continue;
            /* new: the period before was less severe, or had no figure */
            series_status prev;
            const pp_indicator *ind = &cat->indicators[d->inds[k]];
            bool had = status_eval(v, &cat->parks[i], ind, c->st.series, report_prev_period(period), &prev);
            report_doc_alert *a = &d->alerts[d->n_alerts++];
            a->park = i;
            a->col = k;
            a->is_new = !had || severity(cell_status(&prev)) < severity(c->status);
            a->streak = cell_streak(&c->st);
            d->n_new += a->is_new;
        }
    qsort_r(d->alerts, d->n_alerts, sizeof *d->alerts, cmp_alert, d);
    /* the rows follow the first indicator shown that is judged against a target somewhere */
    for (size_t k = d->n_inds; k-- > 0;)
        for (size_t i = 0; i < cat->n_parks; i++)
            if (d->cells[i * d->n_inds + k].has && d->cells[i * d->n_inds + k].st.pace.has_gap)
                d->order_col = k;
    if (build_blocks(d) != 0)
        goto oom;
    if (d->n_inds > 0)
        d->order_label = cat->indicators[d->inds[d->order_col]].label;
    build_texts(d);
    return 0;
oom:
    report_doc_free(d);
    return -ENOMEM;
}

void report_doc_free(report_doc *d)
{
    for (size_t i = 0; i < d->n_blocks; i++)
        free(d->blocks[i].rows);
    free(d->blocks);
    free(d->cells);
    free(d->alerts);
    free(d->inds);
    memset(d, 0, sizeof *d);
}

size_t report_doc_footnotes(const report_doc *d, const char **out, size_t max)
{
    static const char pace_note[] =
        "序时进度 = 月份/12（1-2月合并为一期，1月不单独通报）；较序时 = 完成% − 序时进度%，"
        "比率类指标为数值与目标之差。";
    static const char *const fixed[] = {
        pace_note,
        "同比为统计部门按可比口径公布的增速，非本系统测算。",
        "标记：— 不适用（未设目标等）；… 未报送；r 修订数；e 估计数。",
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && n < max; i++)
        out[n++] = fixed[i];
    if (n < max)
        out[n++] = d->colour_rule;
    return n;
}

/* ---- the printable page ------------------------------------------------------ */

static void html_text(jbuf *b, const char *s)
{
    for (const char *p = s ? s : ""; *p; p++) {
        switch (*p) {
        case '<': jbuf_puts(b, "&lt;"); break;
        case '>': jbuf_puts(b, "&gt;"); break;
        case '&': jbuf_puts(b, "&amp;"); break;
        case '"': jbuf_puts(b, "&quot;"); break;
        default: jbuf_raw(b, p, 1);
        }
    }
}

static const char *status_class(pp_status s)
{
    switch (s) {
    case PP_STATUS_OK: return "ok";
    case PP_STATUS_WARNING: return "warning";
    case PP_STATUS_CRITICAL: return "critical";
    default: return "none";
    }
}

static void html_num(jbuf *b, bool has, double v, int decimals, const char *mark)
{
    if (!has || !isfinite(v)) {
        jbuf_puts(b, "<td class=\"na\">—</td>");
        return;
    }
    jbuf_puts(b, "<td class=\"n\">");
    if (decimals < 0)
        json_num(b, v); /* as published */
    else
        jbuf_printf(b, "%.*f", decimals, v);
    if (mark)
        jbuf_printf(b, "<sup>%s</sup>", mark);
    jbuf_puts(b, "</td>");
}

static void html_table(const report_doc *d, jbuf *b)
{
    const pp_catalog *cat = &d->view->cfg->catalog;
    jbuf_puts(b, "<table class=\"tb\"><thead><tr><th rowspan=\"2\">排名</th><th rowspan=\"2\">园区</th>");
    for (size_t k = 0; k < d->n_inds; k++) {
        const pp_indicator *ind = &cat->indicators[d->inds[k]];
        jbuf_printf(b, "<th colspan=\"%d\" class=\"ind\">", REPORT_DOC_SUBCOLS);
        html_text(b, ind->label);
        jbuf_puts(b, "</th>");
    }
    jbuf_puts(b, "</tr><tr>");
    for (size_t k = 0; k < d->n_inds; k++)
        for (size_t s = 0; s < REPORT_DOC_SUBCOLS; s++) {
            char h[128];
            report_doc_subheader(&cat->indicators[d->inds[k]], s, h, sizeof h);
            jbuf_puts(b, "<th>");
            html_text(b, h);
            jbuf_puts(b, "</th>");
        }
    jbuf_puts(b, "</tr></thead>");
    for (size_t g = 0; g < d->n_blocks; g++) {
        const report_doc_block *blk = &d->blocks[g];
        jbuf_printf(b, "<tbody><tr class=\"grp\"><td colspan=\"%zu\">", 2 + REPORT_DOC_SUBCOLS * d->n_inds);
        html_text(b, blk->label);
        jbuf_printf(b, "（%zu家）</td></tr>", blk->n);
        for (size_t r = 0; r < blk->n; r++) {
            const pp_park *pk = &cat->parks[blk->rows[r].park];
            if (blk->rows[r].rank > 0)
                jbuf_printf(b, "<tr><td class=\"rk\">%d</td><td class=\"pk\">", blk->rows[r].rank);
            else
                jbuf_puts(b, "<tr><td class=\"rk\">—</td><td class=\"pk\">");
            html_text(b, pk->name);
            jbuf_puts(b, "</td>");
            for (size_t k = 0; k < d->n_inds; k++) {
                const report_cell *c = report_doc_cell(d, blk->rows[r].park, k);
                if (!c->has) {
                    const char *m = c->not_reported ? "…" : "—";
                    for (size_t s = 0; s < REPORT_DOC_SUBCOLS; s++)
                        jbuf_printf(b, "<td class=\"na\">%s</td>", s == 0 || s == 5 ? m : "—");
                    continue;
                }
                const series_status *st = &c->st;
                const pace_result *p = &st->pace;
                html_num(b, true, st->value, -1, c->estimated ? "e" : c->revised ? "r" : NULL);
                html_num(b, st->has_yoy, st->yoy, 1, NULL);
                html_num(b, st->has_target, st->target, -1, NULL);
                html_num(b, p->has_completion, p->completion_pct, 1, NULL);
                html_num(b, p->has_gap, p->gap, 2, NULL);
                jbuf_printf(b, "<td class=\"st %s\">%s%s</td>", status_class(c->status),
                            report_doc_status_text(c->status), c->overdue ? " …" : "");
            }
            jbuf_puts(b, "</tr>");
        }
        jbuf_puts(b, "</tbody>");
    }
    jbuf_puts(b, "</table>");
}

static void html_alerts(const report_doc *d, jbuf *b)
{
    const pp_catalog *cat = &d->view->cfg->catalog;
    if (d->n_alerts == 0)
        return;
    jbuf_puts(b, "<h2>本期预警</h2><table class=\"al\"><thead><tr><th>序号</th><th>园区</th><th>指标</th>"
                 "<th>状态</th><th>新增</th><th>连续期数</th><th>说明</th></tr></thead><tbody>");
    for (size_t i = 0; i < d->n_alerts; i++) {
        const report_doc_alert *a = &d->alerts[i];
        const report_cell *c = report_doc_cell(d, a->park, a->col);
        jbuf_printf(b, "<tr><td class=\"rk\">%zu</td><td>", i + 1);
        html_text(b, cat->parks[a->park].name);
        jbuf_puts(b, "</td><td>");
        html_text(b, cat->indicators[d->inds[a->col]].label);
        jbuf_printf(b, "</td><td class=\"st %s\">%s</td><td>%s</td>", status_class(c->status),
                    report_doc_status_text(c->status), a->is_new ? "新增" : "");
        if (a->streak > 0)
            jbuf_printf(b, "<td class=\"n\">%d</td><td>", a->streak);
        else
            jbuf_puts(b, "<td class=\"na\">—</td><td>");
        html_text(b, c->st.pace.message);
        jbuf_puts(b, "</td></tr>");
    }
    jbuf_puts(b, "</tbody></table>");
}

void report_doc_html(const report_doc *d, const char *page, jbuf *b)
{
    static const char marker[] = "<!--report-->";
    const char *at = page ? strstr(page, marker) : NULL;
    if (at == NULL) {
        b->failed = true;
        return;
    }
    /* the page's own <title> is replaced by the document's */
    const char *t0 = strstr(page, "<title>"), *t1 = t0 ? strstr(t0, "</title>") : NULL;
    if (t0 && t1 && t1 < at) {
        jbuf_raw(b, page, (size_t)(t0 - page));
        jbuf_puts(b, "<title>");
        html_text(b, d->title);
        jbuf_raw(b, t1, (size_t)(at - t1));
    } else {
        jbuf_raw(b, page, (size_t)(at - page));
    }
    jbuf_puts(b, "<h1>");
    html_text(b, d->title);
    jbuf_puts(b, "</h1><p class=\"info\">");
    html_text(b, d->info);
    jbuf_puts(b, "</p><p class=\"summary\">");
    html_text(b, d->summary);
    jbuf_puts(b, "</p>");
    if (d->order_label) {
        jbuf_puts(b, "<p class=\"order\">各组内按");
        html_text(b, d->order_label);
        jbuf_puts(b, "较序时进度排序。</p>");
    }
    html_table(d, b);
    const char *notes[8];
    size_t nn = report_doc_footnotes(d, notes, 8);
    jbuf_puts(b, "<ol class=\"notes\">");
    for (size_t i = 0; i < nn; i++) {
        jbuf_puts(b, "<li>");
        html_text(b, notes[i]);
        jbuf_puts(b, "</li>");
    }
    jbuf_puts(b, "</ol>");
    html_alerts(d, b);
    jbuf_puts(b, at + sizeof marker - 1);
}
