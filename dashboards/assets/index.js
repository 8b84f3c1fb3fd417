/* parkpulse — the overview page (GET /): summary tiles, the parks × indicators
 * matrix (sortable by a column's gap, transposable), the live alert feed and
 * the download links of the 通报 report, and 重点关注: interactive charts of
 * the worst figures (严重 first, then 预警; at most 6). Data: /api/v1/status,
 * re-read every 60 s and whenever a new alert arrives; alerts via
 * PP.alertsCard. ?period=YYYY-MM (the period picker) shows a past month: the
 * figures of that month come from the 通报 (/api/v1/report?format=json) and
 * are not refreshed. ?charts=0 leaves the charts out (the page-speed bench
 * compares both).
 */
"use strict";

PP.boot("overview", async (main) => {
  const { h, replace } = PP;
  const REFRESH_MS = 60000;
  const matrixState = { transposed: PP.params.get("by") === "indicator", sortKey: null, sortDir: 1 };

  const head = h("div", { class: "page-head" });
  const tilesBox = h("div");
  const ticker = h("div");
  const matrixBox = h("div");
  const problems = h("div");
  const focusBox = h("div");
  const wanted = PP.wantedPeriod();
  const alerts = PP.alertsCard({ title: "预警动态", limit: 40 });
  PP.replace(main,
    head, problems, tilesBox, ticker,
    h("div", { class: "layout-main" }, matrixBox, alerts),
    focusBox,
    PP.footer());

  let latest = null;
  function renderHead(status, series, per) {
    const q = (extra) => "/api/v1/report?period=" + encodeURIComponent(per) + "&format=csv" + extra;
    const parks = Array.isArray(status.parks) ? status.parks.length : 0;
    const inds = PP.indicatorColumns(series).length;
    replace(head,
      h("div", null,
        h("h1", { text: "园区经济运行总览" + (wanted ? "（历史数据期）" : "") }),
        h("div", { class: "sub" },
          per ? "数据期 " + PP.period(per) : "暂无数据",
          " · 共 " + parks + " 个园区、" + inds + " 项指标 · 更新于 " + PP.time(status.generated_at))),
      h("div", { class: "actions tv-hide" },
        PP.periodPicker(latest || per, per),
        per ? h("a", { class: "btn", href: q(""), download: "通报-" + per + ".csv", title: "UTF-8 编码的 CSV 表格", text: "下载" + PP.period(per) + "通报（CSV）" }) : null,
        per ? h("a", { class: "btn secondary", href: q("&encoding=gb18030"), download: "通报-" + per + "-GB18030.csv", title: "GB18030 编码，可直接用 Excel 打开", text: "GB18030 编码（Excel 用）" }) : null,
        h("a", { class: "btn secondary", href: "/?tv=1", text: "大屏模式" })));
  }

  function renderTicker(feed) {
    const a = feed.items[0];
    if (!a) {
      replace(ticker);
      return;
    }
    replace(ticker, h("div", { class: "card ticker", role: "status" },
      h("div", { class: "card-body" },
        h("b", { text: "最新预警" }),
        h("span", { class: "num when", text: PP.shortTime(a.time) }),
        PP.badge(a.status),
        h("span", { text: PP.text(a.message) }))));
  }

  const STATUS_RANK = { critical: 0, warning: 1 };
  let focusKey = null;
  function renderFocus(series) {
    const worst = series.filter((s) => s && (s.status === "critical" || s.status === "warning"))
      .sort((a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status] || (PP.isNum(a.gap_pp) ? a.gap_pp : 0) - (PP.isNum(b.gap_pp) ? b.gap_pp : 0))
      .slice(0, 6);
    const key = worst.map((s) => s.park + "/" + s.indicator + "/" + s.period + "/" + s.revision).join(";");
    if (key === focusKey) return;
    focusKey = key;
    if (!worst.length) {
      replace(focusBox);
      return;
    }
    replace(focusBox,
      h("h2", { class: "section-title", text: "重点关注 · 严重与预警指标走势" }),
      h("div", { class: "graph-grid focus" }, worst.map((s) => h("section", { class: "card status-" + PP.statusName(s.status) },
        h("div", { class: "card-head" },
          h("h3", null, h("a", { href: PP.parkUrl(s.park), text: (s.park_name || s.park) }), " · ", h("a", { href: PP.indicatorUrl(s.indicator), text: s.label || s.indicator })),
          PP.statusMarks(s)),
        h("div", { class: "card-body" }, PP.chart({ park: s.park, indicator: s.indicator, unit: s.unit, kind: s.kind, label: s.label, status: s, height: 180 }))))));
  }

  let lastGood = null;
  async function load() {
    let status;
    try {
      if (!latest && wanted) latest = PP.latestPeriod(PP.allSeries(await PP.getJSON("/api/v1/status")));
      status = await PP.statusAt(wanted);
    } catch (e) {
      // keep showing the last figures, say they could not be refreshed
      replace(problems, PP.errorNotice(e, lastGood ? "数据刷新失败，以下为上次读取的数据" : "无法读取园区状态"));
      if (!lastGood) replace(matrixBox);
      return;
    }
    replace(problems);
    lastGood = status;
    const series = PP.allSeries(status);
    // the latest month that is due, not the latest figure seen (a mistyped year must not take over)
    const per = wanted || status.due_period || PP.latestPeriod(series);
    if (!wanted) latest = per;
    for (const p of Array.isArray(status.parks) ? status.parks : []) {
      for (const s of Array.isArray(p.indicators) ? p.indicators : []) s.park_name = p.name;
    }
    PP.setMeta(per, status.generated_at);
    renderHead(status, series, per);
    replace(tilesBox, PP.tiles(series));
    replace(matrixBox, PP.matrixCard(status, matrixState));
    renderFocus(series);
  }

  let pending = 0;
  PP.onAlerts((feed, added) => {
    renderTicker(feed);
    if (added.length && !pending) pending = setTimeout(() => { pending = 0; load(); }, 1500);
  });

  await load();
  if (!wanted) setInterval(load, REFRESH_MS);
});
