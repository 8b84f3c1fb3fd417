/* parkpulse — a park's page (GET /park/<park>): name, level/type/region, the
 * status counts, and one card per indicator with its graph, latest value,
 * 同比 (yoy, as published), completion, pace, gap, status, 通报 message, projection and the amount
 * needed per month, and its interactive chart (assets/chart.js: this year,
 * last year, pace and target; hover for values; a link to the daemon's PNG).
 * Data: /api/v1/parks/<park>; with ?period=YYYY-MM (the period picker) the
 * figures of that month from the 通报 (/api/v1/report?format=json).
 * The page reloads itself when the figures change (checked every 5 minutes).
 */
"use strict";

PP.boot(null, async (main) => {
  const { h, replace } = PP;
  const id = PP.pathId("/park/");
  const back = h("div", { class: "crumbs" }, h("a", { href: PP.tv ? "/?tv=1" : "/", text: "← 返回总览" }));
  if (!id) {
    replace(main, back, PP.notice("园区编号无效", "地址应为 /park/<园区编号>，编号由小写字母、数字、-、_ 组成。"), PP.footer());
    return;
  }
  let park;
  try {
    park = await PP.getJSON("/api/v1/parks/" + encodeURIComponent(id));
  } catch (e) {
    const title = e.status === 404 ? "没有编号为“" + id + "”的园区" : "无法读取园区数据";
    replace(main, back, PP.errorNotice(e, title), PP.footer());
    return;
  }
  const wanted = PP.wantedPeriod();
  const latest = PP.latestPeriod(Array.isArray(park.indicators) ? park.indicators : []);
  if (wanted) {
    try {
      const rep = await PP.getJSON("/api/v1/report?period=" + encodeURIComponent(wanted) + "&format=json");
      park.indicators = (Array.isArray(rep.rows) ? rep.rows : []).filter((r) => r && r.park === id);
    } catch (e) {
      replace(main, back, PP.errorNotice(e, "无法读取" + PP.period(wanted) + "的数据"), PP.footer());
      return;
    }
  }
  const series = Array.isArray(park.indicators) ? park.indicators : [];
  for (const s of series) s.park_name = park.name;
  const per = wanted || latest;
  PP.setMeta(per, park.generated_at || (series[0] && series[0].updated_at));
  document.title = (park.name || id) + " · parkpulse 园区经济运行监测";

  const facts = PP.parkFacts(park);
  const cards = series.length
    ? h("div", { class: "cards" }, series.map((s) => PP.indicatorCard(s)))
    : PP.notice("该园区暂无指标数据", "尚未收到该园区的月度报送；数据到达后本页将自动显示。", "info");
  replace(main,
    h("div", { class: "page-head" },
      h("div", null,
        back,
        h("h1", { text: park.name || id }),
        h("div", { class: "park-facts" },
          h("span", { class: "chip", text: "编号 " + id }),
          facts.map((f) => h("span", { class: "chip", text: f })),
          per ? h("span", { class: "chip", text: "数据期 " + PP.period(per) }) : null)),
      h("div", { class: "actions" }, PP.periodPicker(latest || per, per))),
    series.length ? PP.tiles(series) : null,
    cards,
    PP.footer());

  if (wanted) return; // a past month does not change
  const print = PP.fingerprint(series);
  setInterval(async () => {
    try {
      const now = await PP.getJSON("/api/v1/parks/" + encodeURIComponent(id));
      if (PP.fingerprint(Array.isArray(now.indicators) ? now.indicators : []) !== print) location.reload();
    } catch (e) {
      /* keep the page as it is; the next check may succeed */
    }
  }, 300000);
});
