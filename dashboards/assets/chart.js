/* parkpulse — interactive charts drawn in the browser (PP.chart), with the
 * vendored uPlot (assets/uPlot.iife.min.js, MIT, assets/uPlot-LICENSE.txt).
 *
 * A chart shows one series over one calendar year, months on the x axis
 * (1月, 1-2月, 3月 … 12月 for year-to-date figures; 1月 … 12月 otherwise):
 *   - 本年: this year's figures; a month without a figure is a gap, never a
 *     zero; every figure is also a point, so a single month reads as a point
 *     (a lone figure is drawn as a bar);
 *   - 去年同期: last year's same months, dashed;
 *   - 序时进度 (cumulative indicators): the pace line, only where a target
 *     exists; 全年目标: the annual target as a flat line; for rates and ranks
 *     the target itself is the dashed 目标 line;
 *   - hovering a month shows a tooltip: the period, the value with its unit,
 *     同比 (as published, or computed from last year's figure and marked so),
 *     last year's value, completion, pace and gap, the target.
 * Data: /api/v1/series/<park>/<indicator>?from=<Y-1>-01&to=<Y>-12 (points
 * with period, value, pace, target, yoy). The figure of the status (if given)
 * is the authority for the latest month's completion and gap.
 *
 * Each chart box carries data-chart="pending" until drawn, then "drawn" (or
 * "empty" / "error"): tests and the page-speed bench wait for that. Charts
 * far below the fold are drawn when they scroll into view (lazy: true).
 * Text reaches the page only through textContent.
 */
"use strict";

(() => {
  const { h, replace, isNum } = PP;
  const PERIOD_RE = PP.PERIOD_RE;
  const COLORS = {
    value: "#2f6eba", last: "#8a96a8", pace: "#e8684a", target: "#c8a04a",
    valueTv: "#5fa8ff", lastTv: "#8fa3bf", grid: "rgba(0,0,0,0.07)", gridTv: "rgba(255,255,255,0.10)",
    axis: "#5b6675", axisTv: "#c9d6ea",
  };

  function monthLabel(m, ytd) {
    if (!ytd || m === 1) return m + "月";
    return m === 2 ? "1-2月" : m + "月";
  }

  const fmtNum = PP.num;

  /** The year's 12 months of a series: {value[], pace[], target[], yoy[], last[]} (null gaps). */
  function shape(points, year) {
    const out = { value: [], pace: [], target: [], yoy: [], last: [], lastTarget: null };
    for (let i = 0; i < 12; i++) {
      out.value.push(null); out.pace.push(null); out.target.push(null); out.yoy.push(null); out.last.push(null);
    }
    for (const p of Array.isArray(points) ? points : []) {
      const m = p && typeof p.period === "string" ? PERIOD_RE.exec(p.period) : null;
      if (!m || !isNum(p.value)) continue;
      const y = Number(m[1]), mo = Number(m[2]) - 1;
      if (y === year) {
        out.value[mo] = p.value;
        out.pace[mo] = isNum(p.pace) ? p.pace : null;
        out.target[mo] = isNum(p.target) ? p.target : null;
        out.yoy[mo] = isNum(p.yoy) ? p.yoy : null;
      } else if (y === year - 1) {
        out.last[mo] = p.value;
      }
    }
    return out;
  }

  /** The tooltip lines for month index i. */
  function tipLines(d, i, o) {
    const unit = o.unit || "";
    const per = o.year + "-" + String(i + 1).padStart(2, "0");
    const lines = [[PP.period(per), ""]];
    const v = d.value[i];
    const vt = (x) => PP.valueText(x, unit);
    if (!isNum(v)) {
      lines.push(["本年", "未报送"]);
    } else {
      lines.push(["本年", vt(v)]);
      if (isNum(d.yoy[i])) lines.push(["同比", PP.yoyText(d.yoy[i])]);
      else if (isNum(d.last[i]) && d.last[i] > 0 && o.kind === "cumulative") {
        const g = Math.round((v / d.last[i] - 1) * 1000) / 10;
        lines.push(["同比（按去年同期推算）", (g > 0 ? "+" : "") + g + "%"]);
      }
    }
    if (isNum(d.last[i])) lines.push(["去年同期", vt(d.last[i])]);
    const s = o.status && o.status.period === per ? o.status : null;
    const target = s && isNum(s.target) ? s.target : d.target[i] !== null ? d.target[i] : o.kind === "cumulative" ? null : d.pace[i];
    if (o.kind === "cumulative" || o.kind === "completion") {
      let comp = s ? s.completion_pct : null, pace = s ? s.pace_pct : null, gap = s ? s.gap_pp : null;
      if (!s && isNum(v) && isNum(target) && target > 0 && o.kind === "cumulative") {
        comp = Math.round(v / target * 10000) / 100;
        if (isNum(d.pace[i])) {
          pace = Math.round(d.pace[i] / target * 10000) / 100;
          gap = Math.round((comp - pace) * 100) / 100;
        }
      }
      if (isNum(comp)) lines.push(["完成", PP.pct(comp)]);
      if (isNum(pace)) lines.push(["序时进度", PP.pct(pace)]);
      if (isNum(gap)) lines.push(["较序时", PP.signed(gap) + " 个百分点", gap < 0 ? "gap-neg" : "gap-pos"]);
      if (isNum(target)) lines.push(["全年目标", vt(target)]);
    } else if (isNum(d.pace[i]) || (s && isNum(s.target))) {
      const t = s && isNum(s.target) ? s.target : d.pace[i];
      lines.push(["目标", vt(t)]);
      const gap = s && isNum(s.gap_pp) ? s.gap_pp : isNum(v) && o.kind === "rate" ? Math.round((v - t) * 100) / 100 : null;
      if (isNum(gap)) lines.push(["较目标", PP.signed(gap, o.kind === "rank" ? 0 : 2) + (o.kind === "rank" ? " 位" : " 个百分点"), gap < 0 ? "gap-neg" : "gap-pos"]);
    }
    return lines;
  }

  /** Draws the chart into box (a .chart element). o: {park, indicator, year,
   *  unit, kind, label, height, status, points} — points when already read. */
  async function draw(box, o) {
    box.setAttribute("data-chart", "pending");
    let pts = o.points;
    if (!pts) {
      const q = o.year ? "?from=" + (o.year - 1) + "-01&to=" + o.year + "-12" : "";
      try {
        const r = await PP.getJSON("/api/v1/series/" + encodeURIComponent(o.park) + "/" + encodeURIComponent(o.indicator) + q);
        pts = Array.isArray(r.points) ? r.points : [];
        if (!o.unit && typeof r.unit === "string") o.unit = r.unit;
        if (!o.year) {
          // no year asked: the year of the series' latest figure
          const lastP = pts.length ? pts[pts.length - 1].period : "";
          o.year = PERIOD_RE.test(lastP || "") ? Number(lastP.slice(0, 4)) : new Date().getFullYear();
        }
      } catch (e) {
        box.setAttribute("data-chart", "error");
        replace(box, h("div", { class: "graph-missing", text: "图表暂不可用（" + e.message + "）" }));
        return;
      }
    }
    const d = shape(pts, o.year);
    const count = d.value.filter(isNum).length;
    if (!count && !d.last.some(isNum)) {
      box.setAttribute("data-chart", "empty");
      replace(box, h("div", { class: "graph-missing", text: o.year + "年暂无数据" }));
      return;
    }
    if (typeof uPlot !== "function") {
      box.setAttribute("data-chart", "error");
      replace(box, h("div", { class: "graph-missing", text: "图表组件未加载" }));
      return;
    }
    const tv = document.body.classList.contains("tv");
    const ytd = o.kind === "cumulative";
    const hasPace = d.pace.some(isNum);
    const targets = d.target.filter(isNum);
    const target = o.status && isNum(o.status.target) && ytd ? o.status.target : targets.length ? targets[targets.length - 1] : null;

    const xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
    const data = [xs, d.value, d.last];
    const series = [
      {},
      {
        label: o.year + "年",
        stroke: tv ? COLORS.valueTv : COLORS.value,
        width: 2.5,
        fill: count === 1 ? (tv ? "rgba(95,168,255,0.45)" : "rgba(47,110,186,0.35)") : (tv ? "rgba(95,168,255,0.10)" : "rgba(47,110,186,0.08)"),
        spanGaps: false,
        points: { show: true, size: 7, fill: tv ? COLORS.valueTv : COLORS.value },
        paths: count === 1 && uPlot.paths && uPlot.paths.bars ? uPlot.paths.bars({ size: [0.4, 40] }) : undefined,
      },
      {
        label: (o.year - 1) + "年同期",
        stroke: tv ? COLORS.lastTv : COLORS.last,
        width: 1.5,
        dash: [6, 4],
        spanGaps: false,
        points: { show: true, size: 4 },
      },
    ];
    if (hasPace) {
      data.push(d.pace);
      series.push({ label: ytd ? "序时进度" : "目标", stroke: COLORS.pace, width: 1.5, dash: [4, 3], spanGaps: false, points: { show: false } });
    }
    if (ytd && isNum(target)) {
      data.push(xs.map(() => target));
      series.push({ label: "全年目标", stroke: COLORS.target, width: 1.5, dash: [10, 4], points: { show: false } });
    }

    const wrap = h("div", { class: "chart-plot" });
    const tip = h("div", { class: "chart-tip", role: "tooltip", hidden: true });
    const key = h("div", { class: "chart-key" }, series.slice(1).filter((s, i) => data[i + 1].some(isNum)).map((s) =>
      h("span", { class: "k" }, h("i", { style: { borderTopColor: s.stroke, borderTopStyle: s.dash ? "dashed" : "solid" } }), s.label)));
    replace(box, key, wrap, tip);

    const width = Math.max(240, Math.floor(box.clientWidth || 480));
    const height = o.height || 200;
    const narrow = width < 420;
    const axisStroke = tv ? COLORS.axisTv : COLORS.axis;
    const grid = { stroke: tv ? COLORS.gridTv : COLORS.grid, width: 1 };
    const font = (narrow ? "11px" : "12px") + ' "PingFang SC","Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif';
    const opts = {
      width,
      height,
      legend: { show: false },
      padding: [10, 12, 0, 4],
      cursor: { drag: { x: false, y: false }, points: { size: 9 }, focus: { prox: 30 } },
      scales: {
        x: { time: false, range: [0.5, 12.5] },
        y: {
          range: (u, min, max) => {
            const lo = Math.min(0, isNum(min) ? min : 0);
            const hi = isNum(max) ? max : 1;
            return [lo, hi > lo ? hi + (hi - lo) * 0.08 : lo + 1];
          },
        },
      },
      axes: [
        {
          stroke: axisStroke, font, grid: { show: false }, ticks: { show: true, stroke: grid.stroke },
          splits: () => xs,
          values: (u, splits) => splits.map((m) => (narrow && ![1, 3, 6, 9, 12].includes(m) ? "" : monthLabel(m, ytd))),
          size: 28,
        },
        {
          stroke: axisStroke, font, grid, ticks: { show: false },
          values: (u, splits) => splits.map((v) => fmtNum(v)),
          size: (u, values) => {
            const longest = (values || []).reduce((n, s) => Math.max(n, String(s).length), 0);
            return Math.max(36, 10 + longest * 7.5);
          },
        },
      ],
      series,
      hooks: {
        setCursor: [(u) => {
          const i = u.cursor.idx;
          if (i === null || i === undefined || u.cursor.left < 0) {
            tip.hidden = true;
            return;
          }
          replace(tip, tipLines(d, i, o).map(([k, v, cls], n) => n === 0
            ? h("div", { class: "t-head", text: k })
            : h("div", { class: "t-row" }, h("span", { text: k }), h("b", { class: "num " + (cls || ""), text: v }))));
          tip.hidden = false;
          const left = u.over.offsetLeft + u.valToPos(i + 1, "x");
          const tw = tip.offsetWidth || 160;
          const bw = box.clientWidth || width;
          tip.style.left = Math.max(0, Math.min(bw - tw, left + 12 > bw - tw ? left - tw - 12 : left + 12)) + "px";
          tip.style.top = (key.offsetHeight + 6) + "px";
        }],
      },
    };
    const plot = new uPlot(opts, data, wrap);
    box.__plot = plot;
    box.setAttribute("data-chart", "drawn");
    if (typeof ResizeObserver === "function") {
      let last = width;
      new ResizeObserver(() => {
        const w = Math.max(240, Math.floor(box.clientWidth || 480));
        if (Math.abs(w - last) > 4) {
          last = w;
          plot.setSize({ width: w, height });
        }
      }).observe(box);
    }
  }

  const lazyQueue = typeof IntersectionObserver === "function"
    ? new IntersectionObserver((entries, obs) => {
      for (const e of entries) {
        if (!e.isIntersecting) continue;
        obs.unobserve(e.target);
        const job = e.target.__chartJob;
        e.target.__chartJob = null;
        if (job) draw(e.target, job);
      }
    }, { rootMargin: "300px" })
    : null;

  /** A chart box for park/indicator in year (default: the status' or this year).
   *  o: {park, indicator, year, unit, kind, label, height, status, lazy, points}.
   *  Also offers the daemon's PNG of the same series (for mail and chat). */
  function chart(o) {
    const year = o.year || (o.status && typeof o.status.period === "string" ? Number(o.status.period.slice(0, 4)) : 0);
    const job = Object.assign({}, o, { year });
    const box = h("div", { class: "chart", "data-chart": "pending", "data-park": o.park, "data-indicator": o.indicator, "aria-label": (o.label || o.indicator) + (year ? " " + year + "年" : "") + "走势" },
      h("div", { class: "chart-loading", text: "正在绘制图表…" }));
    if (PP.params.get("charts") === "0") {
      box.setAttribute("data-chart", "off");
      replace(box, h("div", { class: "graph-missing", text: "图表已关闭（charts=0）" }));
      return box;
    }
    if (o.lazy && lazyQueue) {
      box.__chartJob = job;
      lazyQueue.observe(box);
    } else {
      // after the box is in the document, so that it has a width
      requestAnimationFrame(() => draw(box, job));
    }
    return box;
  }

  /** The daemon's PNG of the series (for mail, chat and other tools), as a link. */
  function pngLink(park, indicator, year) {
    const q = "?" + (year ? "from=" + year + "-01&to=" + year + "-12&" : "") + "width=720&height=240";
    return h("a", { class: "hint png-link tv-hide", href: "/graph/" + encodeURIComponent(park) + "/" + encodeURIComponent(indicator) + ".png" + q, target: "_blank", text: "PNG 图" });
  }

  PP.chart = chart;
  PP.chartPng = pngLink;
  PP.chartMonthLabel = monthLabel;
})();
