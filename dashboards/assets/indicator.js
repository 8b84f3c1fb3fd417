/* parkpulse — an indicator's page (GET /indicator/<indicator>[?period=YYYY-MM]):
 * every park ranked on the indicator (rank, park, value, target, 同比, completion,
 * pace, gap, status; medals only for parks at or above pace) and an
 * interactive chart per park (drawn as they scroll into view). Data:
 * /api/v1/ranking/<indicator>?period= (the period picker), /api/v1/series.
 */
"use strict";

PP.boot(null, async (main) => {
  const { h, replace } = PP;
  const id = PP.pathId("/indicator/");
  const back = h("div", { class: "crumbs" }, h("a", { href: PP.tv ? "/?tv=1" : "/", text: "← 返回总览" }));
  if (!id) {
    replace(main, back, PP.notice("指标编号无效", "地址应为 /indicator/<指标编号>，编号由小写字母、数字、-、_ 组成。"), PP.footer());
    return;
  }
  const per = PP.wantedPeriod();
  let ranking;
  try {
    ranking = await PP.getJSON("/api/v1/ranking/" + encodeURIComponent(id) + (per ? "?period=" + encodeURIComponent(per) : ""));
  } catch (e) {
    const title = e.status === 404 ? "没有编号为“" + id + "”的指标" : "无法读取指标排名";
    replace(main, back, PP.errorNotice(e, title), PP.footer());
    return;
  }
  const rows = Array.isArray(ranking.parks) ? ranking.parks : [];
  const first = rows[0] || {};
  const label = ranking.label || first.label || id;
  const unit = ranking.unit || first.unit || "";
  const kind = first.kind;
  const period = ranking.period || PP.latestPeriod(rows);
  let latest = per ? null : period;
  if (per) {
    try {
      latest = (await PP.getJSON("/api/v1/ranking/" + encodeURIComponent(id))).period || null;
    } catch (e) {
      latest = null;
    }
  }
  PP.setMeta(period, first.updated_at);
  document.title = label + " · parkpulse 园区经济运行监测";

  const sub = [
    unit ? "单位：" + unit : null,
    kind && PP.KIND[kind] ? "类型：" + PP.KIND[kind] : null,
    period ? "数据期：" + PP.period(period) : null,
    "按差距排序，先好后差",
  ].filter(Boolean).join(" · ");

  const graphs = rows.length
    ? h("div", { class: "graph-grid" }, rows.map((s) => h("section", { class: "card" },
      h("div", { class: "card-head" },
        h("h3", null, h("a", { href: PP.parkUrl(s.park), text: s.name || s.park })),
        h("span", { class: "hint num", text: PP.valueText(s.value, s.unit || unit) + (PP.isNum(s.completion_pct) ? " · " + PP.pct(s.completion_pct) : "") }),
        PP.badge(s.status)),
      h("div", { class: "card-body" },
        PP.chart({ park: s.park, indicator: id, unit: s.unit || unit, kind: s.kind || kind, label, status: s, height: 170, lazy: true }),
        h("div", { class: "card-foot" }, h("span"), PP.chartPng(s.park, id, period ? Number(period.slice(0, 4)) : 0))))))
    : null;

  replace(main,
    h("div", { class: "page-head" },
      h("div", null, back, h("h1", { text: label + " · 园区排名" }), h("div", { class: "sub", text: sub })),
      h("div", { class: "actions" }, PP.periodPicker(latest || period, period))),
    h("section", { class: "card", style: { marginBottom: "1rem" } },
      h("div", { class: "card-head" }, h("h2", { text: "排名表" }), PP.legend()),
      h("div", { class: "card-body flush" }, PP.rankingTable(Object.assign({}, ranking, { unit })))),
    graphs ? h("h2", { class: "section-title", text: "各园区趋势" }) : null,
    graphs,
    PP.footer());
});
