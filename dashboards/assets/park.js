/* parkpulse — a park's page (GET /park/<park>): name, level/type/region, the
 * status counts, and one card per indicator with its graph, latest value,
 * 同比 (yoy, as published), completion, pace, gap, status, 通报 message, projection and the amount
 * needed per month. Data: /api/v1/parks/<park>; graphs /graph/<park>/<ind>.png.
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
  const series = Array.isArray(park.indicators) ? park.indicators : [];
  const per = PP.latestPeriod(series);
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
          per ? h("span", { class: "chip", text: "数据期 " + PP.period(per) }) : null))),
    series.length ? PP.tiles(series) : null,
    cards,
    PP.footer());

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
