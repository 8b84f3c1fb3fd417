/* parkpulse — a dashboard defined in dashboards/<name>.json (GET /dashboard/<name>),
 * or the list of dashboards (GET /dashboard/). The definition (format in
 * dashboards/README.md) is read from /api/v1/dashboards/<name>; each panel is
 * rendered on its own, so one bad panel shows a notice and the rest still work.
 * Panels: summary, status, graph (an interactive chart, assets/chart.js),
 * ranking, alerts, note. ?period=YYYY-MM (the period picker) shows a past
 * month in the status, summary and ranking panels (a panel's own period wins).
 * A "tv": true definition opens in wall-screen mode, with the clock.
 */
"use strict";

PP.boot("dashboard", async (main) => {
  const { h, replace, isNum } = PP;
  const path = location.pathname.replace(/\/+$/, "");
  if (path === "/dashboard") {
    await renderList(main);
    return;
  }
  const name = PP.pathId("/dashboard/");
  if (!name) {
    replace(main, PP.notice("看板名称无效", "地址应为 /dashboard/<看板名称>，名称由小写字母、数字、-、_ 组成。"), PP.footer());
    return;
  }
  let def;
  try {
    def = await PP.getJSON("/api/v1/dashboards/" + encodeURIComponent(name));
  } catch (e) {
    replace(main, PP.errorNotice(e, e.status === 404 ? "没有名为“" + name + "”的看板" : "无法读取看板定义"), PP.footer());
    return;
  }
  if (!def || typeof def !== "object" || !Array.isArray(def.panels)) {
    replace(main, PP.notice("看板定义格式不正确", "dashboards/" + name + ".json 应包含 title 和 panels 数组，见 dashboards/README.md。"), PP.footer());
    return;
  }
  if (def.tv === true && PP.params.get("tv") !== "0") PP.setTv();
  const title = typeof def.title === "string" && def.title ? def.title : name;
  document.title = title + " · parkpulse 园区经济运行监测";
  const cols = isNum(def.columns) ? Math.max(1, Math.min(4, Math.round(def.columns))) : 2;
  const refreshS = isNum(def.refresh) ? Math.max(30, def.refresh) : 60;
  const wanted = PP.wantedPeriod();
  const picker = h("span");

  const grid = h("div", { class: "panels" });
  grid.style.setProperty("--cols", String(cols));
  const problems = h("div");
  replace(main,
    h("div", { class: "page-head" },
      h("div", null,
        h("h1", { text: title }),
        typeof def.description === "string" && def.description ? h("div", { class: "sub", text: def.description }) : null),
      h("div", { class: "actions tv-hide" },
        picker,
        h("a", { class: "btn secondary", href: "/dashboard/" + encodeURIComponent(name) + "?tv=1", text: "大屏模式" }))),
    problems, grid, PP.footer());

  // one status read shared by the panels that need it
  const needsStatus = def.panels.some((p) => p && (p.type === "status" || p.type === "summary" || p.type === "graph"));
  let status = null;
  let statusError = null;
  async function readStatus() {
    if (!needsStatus) return;
    try {
      status = await PP.statusAt(wanted);
      statusError = null;
      const series = PP.allSeries(status);
      for (const p of Array.isArray(status.parks) ? status.parks : []) {
        for (const s of Array.isArray(p.indicators) ? p.indicators : []) s.park_name = p.name;
      }
      PP.setMeta(wanted || PP.latestPeriod(series), status.generated_at);
    } catch (e) {
      statusError = e;
    }
  }
  await readStatus();
  // the picker lists the months up to the latest of any figure
  PP.getJSON("/api/v1/status").then((st) => {
    const latest = PP.latestPeriod(PP.allSeries(st));
    replace(picker, PP.periodPicker(latest, wanted || latest));
  }).catch(() => {});

  const matrixStates = new Map();
  const slots = def.panels.slice(0, 40).map((p, i) => {
    const slot = h("div", { class: "panel" + spanClass(p) });
    grid.appendChild(slot);
    return { p, i, slot, card: null };
  });

  function spanClass(p) {
    if (!p || typeof p !== "object") return "";
    if (p.span === "full") return " span-full";
    if (p.span === 2 || p.span === 3) return " span-" + p.span;
    return "";
  }

  function panelCard(titleText, body, extra) {
    return h("section", { class: "card" },
      h("div", { class: "card-head" }, h("h2", { text: titleText }), extra || null),
      body);
  }

  const str = (v) => (typeof v === "string" && v !== "" ? v : null);
  const ids = (v) => (Array.isArray(v) ? v.filter((x) => typeof x === "string" && PP.ID_RE.test(x)) : null);

  function latestYear() {
    const per = status ? PP.latestPeriod(PP.allSeries(status)) : null;
    return per ? Number(per.slice(0, 4)) : 0;
  }

  function parkName(id) {
    const p = status && Array.isArray(status.parks) ? status.parks.find((x) => x.id === id) : null;
    return p && p.name ? p.name : id;
  }

  /** Renders panel p; returns a card element (throws on a bad definition). */
  async function renderPanel(p, i) {
    if (!p || typeof p !== "object") throw new Error("第 " + (i + 1) + " 个面板不是对象");
    switch (p.type) {
      case "summary": {
        if (statusError) throw statusError;
        const parks = ids(p.parks);
        const series = PP.allSeries({ parks: (status.parks || []).filter((x) => !parks || parks.includes(x.id)) });
        return panelCard(str(p.title) || "指标状态汇总", PP.tiles(series));
      }
      case "status": {
        if (statusError) throw statusError;
        if (!matrixStates.has(i)) matrixStates.set(i, { transposed: p.transpose === true, sortKey: null, sortDir: 1 });
        return PP.matrixCard(status, matrixStates.get(i), {
          parks: ids(p.parks),
          indicators: ids(p.indicators),
          title: str(p.title) || "各园区指标完成情况",
        });
      }
      case "graph": {
        if (!str(p.park) || !PP.ID_RE.test(p.park) || !str(p.indicator) || !PP.ID_RE.test(p.indicator)) {
          throw new Error("graph 面板需要有效的 park 和 indicator");
        }
        const hh = isNum(p.height) ? Math.max(80, Math.min(800, Math.round(p.height))) : 220;
        const to = str(p.to) && PP.PERIOD_RE.test(p.to) ? p.to : wanted;
        const pk = status && Array.isArray(status.parks) ? status.parks.find((x) => x.id === p.park) : null;
        const s = pk && Array.isArray(pk.indicators) ? pk.indicators.find((x) => x.indicator === p.indicator) : null;
        return panelCard(str(p.title) || parkName(p.park) + " · " + (s && s.label ? s.label : "趋势"),
          h("div", { class: "card-body" }, PP.chart({
            park: p.park, indicator: p.indicator, height: hh, status: s || null,
            unit: s ? s.unit : "", kind: s ? s.kind : "cumulative", label: s ? s.label : p.indicator,
            year: to ? Number(to.slice(0, 4)) : s && s.period ? Number(s.period.slice(0, 4)) : latestYear(),
          }), h("div", { class: "card-foot" }, h("span"), PP.chartPng(p.park, p.indicator, to ? Number(to.slice(0, 4)) : 0))),
          h("a", { class: "hint", href: PP.parkUrl(p.park), text: "园区详情 →" }));
      }
      case "ranking": {
        if (!str(p.indicator) || !PP.ID_RE.test(p.indicator)) throw new Error("ranking 面板需要有效的 indicator");
        const per = str(p.period) && PP.PERIOD_RE.test(p.period) ? p.period : wanted;
        const r = await PP.getJSON("/api/v1/ranking/" + encodeURIComponent(p.indicator) + (per ? "?period=" + encodeURIComponent(per) : ""));
        const label = r.label || (Array.isArray(r.parks) && r.parks[0] && r.parks[0].label) || p.indicator;
        return panelCard(str(p.title) || label + " · 排名",
          h("div", { class: "card-body flush" }, PP.rankingTable(r, isNum(p.limit) ? p.limit : 0, p.compact === true)),
          h("a", { class: "hint", href: PP.indicatorUrl(p.indicator, per), text: (r.period ? PP.period(r.period) + " · " : "") + "详情 →" }));
      }
      case "alerts":
        return PP.alertsCard({ title: str(p.title) || "预警动态", limit: isNum(p.limit) ? p.limit : 20 });
      case "note":
        return panelCard(str(p.title) || "说明", h("div", { class: "card-body", style: { whiteSpace: "pre-line" }, text: str(p.text) || "" }));
      default:
        throw new Error("未知的面板类型“" + String(p.type) + "”（可用：summary、status、graph、ranking、alerts、note）");
    }
  }

  async function renderAll(first) {
    for (const s of slots) {
      // alerts and graphs keep themselves current; re-render only the data panels
      if (!first && (s.p && (s.p.type === "alerts" || s.p.type === "graph" || s.p.type === "note"))) continue;
      try {
        const card = await renderPanel(s.p, s.i);
        replace(s.slot, card);
      } catch (e) {
        const what = "面板 " + (s.i + 1) + (s.p && s.p.type ? "（" + s.p.type + "）" : "");
        if (first || !s.slot.firstChild) {
          replace(s.slot, h("section", { class: "card" }, h("div", { class: "card-body" },
            e instanceof PP.ApiError ? PP.errorNotice(e, what + "数据读取失败") : PP.notice(what + "无法显示", e && e.message ? e.message : String(e)))));
        }
      }
    }
  }

  await renderAll(true);
  if (!def.panels.length) replace(grid, PP.notice("此看板没有面板", "在 dashboards/" + name + ".json 的 panels 中添加面板。", "info"));

  setInterval(async () => {
    await readStatus();
    replace(problems, statusError && status ? PP.errorNotice(statusError, "数据刷新失败，显示的是上次读取的数据") : null);
    await renderAll(false);
  }, refreshS * 1000);
});

async function renderList(main) {
  const { h, replace } = PP;
  let list;
  try {
    list = await PP.getJSON("/api/v1/dashboards");
  } catch (e) {
    replace(main, PP.errorNotice(e, "无法读取看板列表"), PP.footer());
    return;
  }
  const items = Array.isArray(list.dashboards) ? list.dashboards.filter((d) => d && typeof d.name === "string" && PP.ID_RE.test(d.name)) : [];
  replace(main,
    h("div", { class: "page-head" }, h("div", null, h("h1", { text: "看板" }), h("div", { class: "sub", text: "dashboards/ 目录中定义的看板" }))),
    h("section", { class: "card" }, h("div", { class: "card-body flush" },
      items.length
        ? h("ul", { class: "dash-list" }, items.map((d) => h("li", null,
          h("a", { href: "/dashboard/" + encodeURIComponent(d.name), text: typeof d.title === "string" && d.title ? d.title : d.name }),
          " ", h("span", { class: "sub-label", style: { display: "inline" }, text: d.name }),
          " ", h("a", { class: "sub-label", style: { display: "inline" }, href: "/dashboard/" + encodeURIComponent(d.name) + "?tv=1", text: "大屏" }))))
        : h("div", { class: "empty", text: "还没有定义看板" }))),
    PP.footer());
}
