/* parkpulse 园区经济运行监测 — shared code of the browser pages.
 *
 * Vanilla ES2020, no libraries, nothing loaded from outside the server: the
 * pages run on intranet machines with no internet access. This file defines
 * the global PP: DOM building (text only, never innerHTML: every string comes
 * from data sent by the daemon and is shown with textContent), number and
 * period formatting in zh-CN, the JSON fetch wrapper with visible errors, the
 * page frame (header bar, wall-screen mode ?tv=1), the alert feed (Server-Sent
 * Events at /api/v1/events, falling back to polling /api/v1/alerts every 30 s),
 * and the widgets the pages and dashboard panels are made of: summary tiles,
 * the parks × indicators matrix, the ranking table, the alert list, indicator
 * cards and graphs. The per-page scripts (index.js, park.js, indicator.js,
 * dashboard.js) only fetch their data and arrange these widgets.
 */
"use strict";

const PP = (() => {
  const STATUS = {
    ok: "正常",
    warning: "预警",
    critical: "严重",
    no_target: "未设目标",
    no_data: "未报送",
    overdue: "逾期",      // a flag beside the status (series.overdue), and an alert's status
    received: "已补报",   // an alert: the overdue figure arrived
    stale: "逾期",        // alerts journaled before overdue became a flag
  };
  // the tiles: a count per status, and 逾期 counting the overdue flags beside them
  const STATUS_ORDER = ["ok", "warning", "critical", "no_target", "no_data", "overdue"];
  const LEVEL = { national: "国家级", provincial: "省级", other: "其他" };
  const TYPE = { etdz: "经济技术开发区", hitech: "高新技术产业开发区", industrial: "产业园区", other: "其他园区" };
  const TYPE_SHORT = { etdz: "经开区", hitech: "高新区", industrial: "产业园区", other: "其他" };
  const KIND = { cumulative: "累计值（1-N月）", rate: "增速/比率", completion: "完成全年目标比例", rank: "排名" };
  const ID_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
  const PERIOD_RE = /^(\d{4})-(0[1-9]|1[0-2])$/;
  const DASH = "—";
  const POLL_MS = 30000;
  // The event stream is opened a few seconds after the page has rendered: a
  // never-ending request keeps headless browsers (screenshots, --dump-dom with
  // --virtual-time-budget) from ever deciding the page is loaded. Alerts of
  // those seconds are not lost: on every (re)connection the feed asks for the
  // alerts after the last seq it has (/api/v1/alerts?since=N).
  const EVENTS_DELAY_MS = 8000;

  const params = new URLSearchParams(location.search);
  const tv = params.get("tv") === "1";

  /* ---------- DOM ---------- */

  /** Builds an element. attrs: class, text, title, href (site paths only),
   *  src, any other attribute by name, on<Event> handlers. Children: nodes,
   *  strings (as text), arrays, null/undefined/false (skipped). */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === null || v === undefined || v === false) continue;
        if (k === "class") el.className = v;
        else if (k === "text") el.textContent = String(v);
        else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
        else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
        else if (k === "href" || k === "src") el.setAttribute(k, safeUrl(v));
        else el.setAttribute(k, v === true ? "" : String(v));
      }
    }
    append(el, children);
    return el;
  }

  function append(el, children) {
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      if (Array.isArray(c)) append(el, c);
      else if (c instanceof Node) el.appendChild(c);
      else el.appendChild(document.createTextNode(String(c)));
    }
    return el;
  }

  /** Only same-site paths and query strings become links or image sources. */
  function safeUrl(u) {
    const s = String(u);
    if (s.startsWith("/") && !s.startsWith("//")) return s;
    if (s.startsWith("?") || s.startsWith("#")) return s;
    return "#";
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    return el;
  }

  function replace(el, ...children) {
    return append(clear(el), children);
  }

  /* ---------- formatting ---------- */

  function isNum(v) {
    return typeof v === "number" && Number.isFinite(v);
  }

  /* Number formats, made once: toLocaleString builds a new Intl.NumberFormat at
   * every call, which cost a third of the overview's rendering (1,400 cells). */
  const formats = new Map();
  function numberFormat(minFrac, maxFrac) {
    const key = minFrac + "/" + maxFrac;
    let f = formats.get(key);
    if (!f) {
      f = new Intl.NumberFormat("zh-CN", { minimumFractionDigits: minFrac, maximumFractionDigits: maxFrac });
      formats.set(key, f);
    }
    return f;
  }

  /** A value as the daemon sent it, grouped in thousands, at most 2 decimals. */
  function num(v, maxFrac = 2) {
    if (!isNum(v)) return DASH;
    return numberFormat(0, maxFrac).format(v);
  }

  /** A percentage with exactly 2 decimals: 64.07%. */
  function pct(v) {
    if (!isNum(v)) return DASH;
    return numberFormat(2, 2).format(v) + "%";
  }

  /** A gap with its sign: +2.10 / -2.60 (percentage points; places for rank). */
  function signed(v, frac = 2) {
    if (!isNum(v)) return DASH;
    const s = numberFormat(frac, frac).format(Math.abs(v));
    if (v > 0) return "+" + s;
    if (v < 0 && s.replace(/[0.,]/g, "") !== "") return "-" + s;
    return s;
  }

  function gapUnit(kind) {
    return kind === "rank" ? "位" : "个百分点";
  }

  function gapText(s) {
    if (!s || !isNum(s.gap_pp)) return DASH;
    return signed(s.gap_pp, s.kind === "rank" ? 0 : 2) + " " + gapUnit(s.kind);
  }

  function gapShort(s) {
    if (!s || !isNum(s.gap_pp)) return DASH;
    return s.kind === "rank" ? signed(s.gap_pp, 0) + "位" : signed(s.gap_pp) + "pp";
  }

  function gapClass(v) {
    if (!isNum(v) || v === 0) return "";
    return v < 0 ? "gap-neg" : "gap-pos";
  }

  /** 同比 as published ("+12.5%"), a dash when the figure came without one. */
  function yoyText(v) {
    return isNum(v) ? (v > 0 ? "+" : "") + String(v) + "%" : DASH;
  }

  function valueText(v, unit) {
    if (!isNum(v)) return DASH;
    if (!unit) return num(v);
    return unit === "%" ? num(v) + "%" : num(v) + " " + unit;
  }

  /** "2021-08" → "2021年1-8月" (year to date), "2021-01" → "2021年1月". */
  function period(p) {
    const m = typeof p === "string" ? PERIOD_RE.exec(p) : null;
    if (!m) return DASH;
    const month = Number(m[2]);
    return m[1] + "年" + (month === 1 ? "1月" : "1-" + month + "月");
  }

  /** An ISO time as the daemon wrote it (local time with offset) → "2021-09-15 10:00". */
  function time(iso, withSeconds) {
    const m = typeof iso === "string" ? /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d)(:\d\d)?/.exec(iso) : null;
    if (!m) return DASH;
    return m[1] + " " + m[2] + (withSeconds && m[3] ? m[3] : "");
  }

  function shortTime(iso) {
    const m = typeof iso === "string" ? /^\d{4}-(\d\d-\d\d)[T ](\d\d:\d\d)/.exec(iso) : null;
    return m ? m[1] + " " + m[2] : DASH;
  }

  function statusName(st) {
    return Object.prototype.hasOwnProperty.call(STATUS, st) ? st : "none";
  }

  function statusLabel(st) {
    return Object.prototype.hasOwnProperty.call(STATUS, st) ? STATUS[st] : st ? String(st) : DASH;
  }

  function badge(st) {
    return h("span", { class: "badge status-" + statusName(st), text: statusLabel(st) });
  }

  function dot(st) {
    return h("span", { class: "dot status-" + statusName(st) });
  }

  function text(v) {
    return typeof v === "string" && v !== "" ? v : DASH;
  }

  function parkFacts(p, short) {
    const facts = [];
    if (p.level) facts.push(LEVEL[p.level] || p.level);
    if (p.type) facts.push((short ? TYPE_SHORT[p.type] : TYPE[p.type]) || p.type);
    if (p.region) facts.push(p.region);
    return facts;
  }

  /* ---------- ids from the URL ---------- */

  /** The id after prefix in location.pathname, e.g. pathId("/park/") → "xiangtan-etdz";
   *  null when absent or not a valid id. */
  function pathId(prefix, re = ID_RE) {
    const path = location.pathname;
    if (!path.startsWith(prefix)) return null;
    let seg = path.slice(prefix.length).replace(/\/+$/, "");
    try {
      seg = decodeURIComponent(seg);
    } catch (e) {
      return null;
    }
    return re.test(seg) ? seg : null;
  }

  function parkUrl(id) {
    return "/park/" + encodeURIComponent(id) + (tv ? "?tv=1" : "");
  }

  function indicatorUrl(id, per) {
    const q = new URLSearchParams();
    if (per) q.set("period", per);
    if (tv) q.set("tv", "1");
    const qs = q.toString();
    return "/indicator/" + encodeURIComponent(id) + (qs ? "?" + qs : "");
  }

  /* ---------- HTTP ---------- */

  class ApiError extends Error {
    constructor(message, path, status, detail) {
      super(message);
      this.path = path;
      this.status = status || 0;
      this.detail = detail || "";
    }
  }

  const HTTP_TEXT = {
    400: "请求有误",
    401: "需要登录",
    403: "没有权限",
    404: "未找到",
    405: "不支持的请求",
    413: "请求过大",
    500: "服务器内部错误",
    503: "服务暂不可用",
  };

  /** GETs JSON. Throws ApiError with a Chinese message on network errors,
   *  timeouts, non-2xx answers (with the server's {"error"} as detail) and
   *  bodies that are not JSON. */
  async function getJSON(path, timeoutMs = 15000) {
    const ctl = typeof AbortController === "function" ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), timeoutMs) : 0;
    let r;
    try {
      r = await fetch(path, {
        headers: { Accept: "application/json" },
        cache: "no-cache",
        signal: ctl ? ctl.signal : undefined,
      });
    } catch (e) {
      clearTimeout(timer);
      if (e && e.name === "AbortError") throw new ApiError("请求超时", path);
      throw new ApiError("无法连接到监测服务", path, 0, "请确认 parkpulsed 正在运行、网络可达");
    }
    let body = null;
    let raw = "";
    try {
      raw = await r.text();
      body = raw ? JSON.parse(raw) : null;
    } catch (e) {
      body = null;
    } finally {
      clearTimeout(timer);
    }
    if (!r.ok) {
      const why = body && typeof body.error === "string" ? body.error : "";
      throw new ApiError((HTTP_TEXT[r.status] || "请求失败") + "（HTTP " + r.status + "）", path, r.status, why);
    }
    if (body === null || typeof body !== "object") throw new ApiError("服务器返回的数据格式不正确", path, r.status);
    return body;
  }

  /** A visible notice. kind: "error" (default), "warn", "info". */
  function notice(title, detail, kind = "error") {
    return h("div", { class: "notice" + (kind === "error" ? "" : " " + kind), role: kind === "error" ? "alert" : "status" },
      h("b", { text: title }),
      detail ? h("div", { class: "detail", text: detail }) : null);
  }

  function errorNotice(err, what) {
    const title = (what ? what + "：" : "") + (err && err.message ? err.message : "未知错误");
    const bits = [];
    if (err && err.detail) bits.push(err.detail);
    if (err && err.path) bits.push("接口 " + err.path);
    return notice(title, bits.join(" · "));
  }

  /* ---------- the page frame ---------- */

  /** Switches the page to wall-screen mode (dark, larger type, no buttons). */
  function setTv() {
    document.documentElement.classList.add("tv");
    document.body.classList.add("tv");
    startClock();
  }

  let clockEl = null;
  let clockTimer = 0;
  /** The clock of wall-screen mode (every tv page and "tv": true dashboard). */
  function startClock() {
    if (clockTimer || !clockEl) return;
    clockEl.parentNode.hidden = false;
    const tick = () => {
      clockEl.textContent = new Date().toLocaleTimeString("zh-CN", { hour12: false });
    };
    tick();
    clockTimer = setInterval(tick, 1000);
  }

  let metaPeriod = null;
  let metaTime = null;

  /** Fills <header id="topbar"> and sets up wall-screen mode. active: "overview",
   *  "dashboard", or null. */
  function frame(active) {
    const top = document.getElementById("topbar") || document.body.insertBefore(h("header", { id: "topbar" }), document.body.firstChild);
    top.className = "topbar";
    metaPeriod = h("b", { text: DASH });
    metaTime = h("b", { text: DASH });
    const dashLinks = h("span", { class: "topnav" });
    clockEl = h("b", { class: "num clock", text: "" });
    replace(top, h("div", { class: "topbar-inner" },
      h("a", { class: "brand", href: tv ? "/?tv=1" : "/" },
        h("span", { class: "brand-mark" }),
        h("span", { class: "brand-en", text: "parkpulse" }),
        h("span", { class: "brand-zh", text: "园区经济运行监测" })),
      h("nav", { class: "topnav", "aria-label": "导航" },
        h("a", { href: tv ? "/?tv=1" : "/", class: active === "overview" ? "active" : null, text: "总览" }),
        dashLinks),
      h("div", { class: "topmeta" },
        h("span", null, "数据期 ", metaPeriod),
        h("span", null, "更新于 ", metaTime),
        h("span", { class: "clock-box", hidden: true }, "当前 ", clockEl))));
    if (tv) setTv();
    // The dashboard list is a convenience: when it cannot be read the nav just lacks it.
    getJSON("/api/v1/dashboards").then((list) => {
      const items = Array.isArray(list.dashboards) ? list.dashboards : [];
      for (const d of items.slice(0, 8)) {
        if (!d || typeof d.name !== "string" || !ID_RE.test(d.name)) continue;
        const here = location.pathname === "/dashboard/" + d.name;
        dashLinks.appendChild(h("a", {
          href: "/dashboard/" + encodeURIComponent(d.name) + (tv ? "?tv=1" : ""),
          class: here ? "active" : null,
          text: typeof d.title === "string" && d.title ? d.title : d.name,
        }));
      }
    }).catch(() => {});
  }

  function setMeta(per, generated) {
    if (metaPeriod) metaPeriod.textContent = period(per);
    if (metaTime) metaTime.textContent = time(generated);
  }

  function footer() {
    return h("footer", { class: "foot", text: "parkpulse 园区经济运行监测 · 数据来自各园区月度报送，状态按序时进度计算" });
  }

  /* ---------- data helpers ---------- */

  function allSeries(status) {
    const out = [];
    for (const p of (status && Array.isArray(status.parks)) ? status.parks : []) {
      for (const s of Array.isArray(p.indicators) ? p.indicators : []) out.push(s);
    }
    return out;
  }

  function latestPeriod(series) {
    let best = null;
    for (const s of series) {
      if (s && typeof s.period === "string" && PERIOD_RE.test(s.period) && (best === null || s.period > best)) best = s.period;
    }
    return best;
  }

  /** Indicators that have data, in the order the daemon lists them. */
  function indicatorColumns(series) {
    const seen = new Map();
    for (const s of series) {
      if (!s || typeof s.indicator !== "string" || seen.has(s.indicator)) continue;
      seen.set(s.indicator, { id: s.indicator, label: s.label || s.indicator, unit: s.unit || "", kind: s.kind });
    }
    return [...seen.values()];
  }

  /** A string that changes when any figure or status changes (for refreshing pages with graphs). */
  function fingerprint(series) {
    return series.map((s) => [s.park, s.indicator, s.period, s.value, s.revision, s.status, s.target].join("|")).join(";");
  }

  /* ---------- widgets ---------- */

  /** Six tiles: counts of 正常/预警/严重/未设目标/未报送 among the series' statuses, and
   * 逾期 counting the overdue flags (a series is both 严重 and 逾期). */
  function tiles(series) {
    const n = { ok: 0, warning: 0, critical: 0, no_target: 0, no_data: 0, overdue: 0 };
    for (const s of series) {
      if (s && s.status !== "overdue" && Object.prototype.hasOwnProperty.call(n, s.status)) n[s.status]++;
      if (s && s.overdue === true) n.overdue++;
    }
    return h("div", { class: "tiles" }, STATUS_ORDER.map((st) =>
      h("div", { class: "tile status-" + st, "data-status": st },
        h("div", { class: "tile-label" }, dot(st), STATUS[st]),
        h("div", { class: "tile-value" }, String(n[st]), h("span", { class: "tile-unit", text: "项" })))));
  }

  function legend() {
    return h("div", { class: "legend" }, STATUS_ORDER.map((st) => h("span", null, dot(st), STATUS[st])));
  }

  /** One matrix cell for a series (or a dash when the park lacks it); per is the
   * overview's month: a cell whose figure is of another month says which. */
  function cell(s, per) {
    if (!s) return h("div", { class: "cellbox missing", text: DASH });
    const st = statusName(s.status);
    const lines = [];
    if (isNum(s.completion_pct)) lines.push(h("div", { class: "m" }, h("span", { text: "完成" }), h("span", { class: "num", text: pct(s.completion_pct) })));
    if (isNum(s.gap_pp)) {
      const ref = s.kind === "rate" || s.kind === "rank" ? "较目标" : "较序时";
      lines.push(h("div", { class: "m" }, h("span", { text: ref }),
        h("span", { class: "num " + gapClass(s.gap_pp), text: signed(s.gap_pp, s.kind === "rank" ? 0 : 2) + (s.kind === "rank" ? "位" : "pp") })));
    } else if (st === "no_target") {
      lines.push(h("div", { class: "m" }, h("span", { text: "未设目标" })));
    }
    if (per && typeof s.period === "string" && s.period !== per)
      lines.push(h("div", { class: "m own-period" }, h("span", { text: "数据期" }), h("span", { text: period(s.period) })));
    if (st !== "ok" || s.overdue === true)
      lines.push(h("div", { class: "m tags" }, badge(s.status), s.overdue === true ? badge("overdue") : null));
    if (s.overdue === true && typeof s.overdue_period === "string")
      lines.push(h("div", { class: "m overdue" }, h("span", { text: "逾期未报" }), h("span", { text: period(s.overdue_period) })));
    const tip = [s.message, s.period ? "数据期：" + period(s.period) : "", "状态：" + statusLabel(s.status),
      s.overdue === true ? "逾期未报：" + period(s.overdue_period) : "", s.note || "", "点击查看历次报送"].filter(Boolean).join("\n");
    const open = (ev) => {
      if (ev.type === "keydown" && ev.key !== "Enter" && ev.key !== " ") return;
      ev.preventDefault();
      showHistory(s);
    };
    return h("div", { class: "cellbox status-" + st, title: tip, "data-park": s.park, "data-indicator": s.indicator,
      role: "button", tabindex: "0", onclick: open, onkeydown: open },
      h("div", { class: "v num" }, num(s.value), s.unit && isNum(s.value) ? h("span", { class: "u", text: s.unit }) : null),
      lines);
  }

  /** 逾期 beside a status when the daemon flags the series overdue (the
   *  field appears with the truth issue; absent or false: nothing). */
  function overdueMark(s) {
    if (!s || s.overdue !== true) return null;
    const when = typeof s.overdue_period === "string" && PERIOD_RE.test(s.overdue_period) ? period(s.overdue_period) + "数据" : "本期数据";
    return h("span", { class: "overdue-mark", title: when + "逾期未报", text: "逾期" });
  }

  /** A status badge and, when flagged, the 逾期 mark beside it. */
  function statusMarks(s) {
    return h("span", { class: "marks" }, badge(s.status), overdueMark(s));
  }

  /* ---------- a figure's history (vintages) ---------- */

  const VINTAGE = { A: "正式数", P: "初步数", E: "估算数", R: "修订数" };

  /** Opens a dialog with every vintage of s's figure: value, 同比, status,
   *  source, received time (GET /api/v1/history/<park>/<indicator>/<period>). */
  async function showHistory(s) {
    if (!s || typeof s.park !== "string" || typeof s.indicator !== "string" || !PERIOD_RE.test(s.period || "")) return;
    let dlg = document.getElementById("pp-history");
    if (!dlg) {
      dlg = h("dialog", { id: "pp-history", class: "history", "aria-labelledby": "pp-history-title" });
      document.body.appendChild(dlg);
      dlg.addEventListener("click", (ev) => { if (ev.target === dlg) dlg.close(); });
    }
    const body = h("div", { class: "history-body" }, h("div", { class: "loading", text: "正在读取历次报送…" }));
    replace(dlg,
      h("div", { class: "card-head" },
        h("h2", { id: "pp-history-title", text: (s.park_name || s.name || s.park) + " · " + (s.label || s.indicator) + " · " + period(s.period) }),
        h("button", { type: "button", class: "btn secondary", text: "关闭", onclick: () => dlg.close() })),
      body);
    if (typeof dlg.showModal === "function" && !dlg.open) dlg.showModal();
    else dlg.setAttribute("open", "");
    const path = "/api/v1/history/" + encodeURIComponent(s.park) + "/" + encodeURIComponent(s.indicator) + "/" + encodeURIComponent(s.period);
    try {
      const r = await getJSON(path);
      const vs = Array.isArray(r.vintages) ? r.vintages : [];
      const unit = r.unit || s.unit || "";
      replace(body, vs.length
        ? h("div", { class: "table-wrap" }, h("table", { class: "data vintages" },
          h("thead", null, h("tr", null, h("th", { text: "#" }), h("th", { class: "r", text: "数值" + (unit ? "（" + unit + "）" : "") }),
            h("th", { class: "r", text: "同比" }), h("th", { text: "性质" }), h("th", { text: "来源" }), h("th", { text: "接收时间" }))),
          h("tbody", null, vs.map((v, i) => h("tr", { class: v.retracted || v.status === "X" ? "retracted" : null },
            h("td", { text: String(i + 1) + (i === vs.length - 1 ? "（现行）" : "") }),
            h("td", { class: "r num", text: v.retracted ? "已撤回" : num(v.value, 6) }),
            h("td", { class: "r num", text: yoyText(v.yoy) }),
            h("td", { text: VINTAGE[v.status] || text(v.status) }),
            h("td", { text: text(v.source) }),
            h("td", { class: "num", text: time(v.received_at, true) }))))))
        : h("div", { class: "empty", text: "没有该期的报送记录" }),
        h("p", { class: "hint", text: "从早到晚排列；最后一行是现行数值。数据接口：" + path }));
    } catch (e) {
      replace(body, errorNotice(e, "历次报送读取失败"));
    }
  }

  /* ---------- the period picker ---------- */

  /** The period asked for with ?period=YYYY-MM, or null. */
  function wantedPeriod() {
    const p = params.get("period");
    return p && PERIOD_RE.test(p) ? p : null;
  }

  function addMonths(p, n) {
    const m = PERIOD_RE.exec(p);
    const t = Number(m[1]) * 12 + Number(m[2]) - 1 + n;
    return Math.floor(t / 12) + "-" + String(t % 12 + 1).padStart(2, "0");
  }

  /** A <select> of the 24 months up to latest; choosing one reloads the page
   *  with ?period= (the latest drops it). */
  function periodPicker(latest, current) {
    if (!latest || !PERIOD_RE.test(latest)) return null;
    const cur = current && PERIOD_RE.test(current) ? current : latest;
    const opts = [];
    for (let i = 0; i < 24; i++) opts.push(addMonths(latest, -i));
    if (!opts.includes(cur)) opts.push(cur);
    const sel = h("select", { class: "period-picker", "aria-label": "选择数据期" },
      opts.map((p) => h("option", { value: p, selected: p === cur, text: period(p) + (p === latest ? "（最新）" : "") })));
    sel.addEventListener("change", () => {
      const q = new URLSearchParams(location.search);
      if (sel.value === latest) q.delete("period");
      else q.set("period", sel.value);
      const qs = q.toString();
      location.assign(location.pathname + (qs ? "?" + qs : ""));
    });
    return h("label", { class: "period-pick tv-hide" }, h("span", { text: "数据期" }), sel);
  }

  /** /api/v1/status as of period p: the parks and their facts from the status,
   *  each park's figures of that month from the 通报 (/api/v1/report?format=json). */
  async function statusAt(p) {
    const status = await getJSON("/api/v1/status");
    if (!p) return status;
    const rep = await getJSON("/api/v1/report?period=" + encodeURIComponent(p) + "&format=json");
    const byPark = new Map();
    for (const r of Array.isArray(rep.rows) ? rep.rows : []) {
      if (!r || typeof r.park !== "string") continue;
      if (!byPark.has(r.park)) byPark.set(r.park, []);
      byPark.get(r.park).push(r);
    }
    const order = new Map();
    for (const s of allSeries(status)) if (!order.has(s.indicator)) order.set(s.indicator, order.size);
    for (const park of Array.isArray(status.parks) ? status.parks : []) {
      const rows = byPark.get(park.id) || [];
      rows.sort((a, b) => (order.has(a.indicator) ? order.get(a.indicator) : 999) - (order.has(b.indicator) ? order.get(b.indicator) : 999));
      park.indicators = rows;
    }
    status.period = p;
    return status;
  }

  const STATUS_RANK = { critical: 0, warning: 1, stale: 2, ok: 3, no_target: 4 };

  /** The parks × indicators matrix as a card. state (kept by the caller across
   *  refreshes): {transposed, sortKey, sortDir}. opts: {parks, indicators, title}
   *  restrict rows/columns to those ids. */
  function matrixCard(status, state, opts = {}) {
    const parksAll = (status && Array.isArray(status.parks)) ? status.parks : [];
    const parks = opts.parks ? opts.parks.map((id) => parksAll.find((p) => p.id === id)).filter(Boolean) : parksAll;
    let cols = indicatorColumns(allSeries({ parks }));
    if (opts.indicators) cols = opts.indicators.map((id) => cols.find((c) => c.id === id)).filter(Boolean);
    const byKey = new Map();
    for (const p of parks) for (const s of Array.isArray(p.indicators) ? p.indicators : []) byKey.set(p.id + "\u0000" + s.indicator, s);
    const get = (pid, iid) => byKey.get(pid + "\u0000" + iid) || null;

    const body = h("div", { class: "card-body flush" });
    const toggle = h("div", { class: "toggle tv-hide", role: "group", "aria-label": "排列方式" });
    const card = h("section", { class: "card matrix-card" },
      h("div", { class: "card-head" },
        h("h2", { text: opts.title || "各园区指标完成情况" }),
        h("div", { class: "actions" }, legend(), toggle)),
      body);

    function renderToggle() {
      replace(toggle,
        h("button", { type: "button", class: state.transposed ? null : "on", text: "园区为行", onclick: () => { if (state.transposed) { state.transposed = false; state.sortKey = null; render(); } } }),
        h("button", { type: "button", class: state.transposed ? "on" : null, text: "指标为行", onclick: () => { if (!state.transposed) { state.transposed = true; state.sortKey = null; render(); } } }));
    }

    let render = function () {
      renderToggle();
      if (!parks.length) {
        replace(body, h("div", { class: "empty", text: "没有可显示的园区" }));
        return;
      }
      if (!cols.length) {
        replace(body, h("div", { class: "empty", text: "暂无指标数据：各园区尚未报送本期数据" }));
        return;
      }
      // rows and columns as {id, head(), cell(rowId, colId)}
      const parkRows = parks.map((p) => ({ id: p.id, name: p.name || p.id, p }));
      const rows = state.transposed ? cols.map((c) => ({ id: c.id, name: c.label, c })) : parkRows;
      const columns = state.transposed ? parkRows.map((r) => ({ id: r.id, p: r.p })) : cols;
      const seriesAt = (rowId, colId) => (state.transposed ? get(colId, rowId) : get(rowId, colId));

      let order = rows.slice();
      if (state.sortKey === "_name") {
        order.sort((a, b) => a.name.localeCompare(b.name, "zh-CN") * state.sortDir);
      } else if (state.sortKey) {
        const key = state.sortKey;
        const gapOf = (r) => {
          const s = seriesAt(r.id, key);
          return s && isNum(s.gap_pp) ? s.gap_pp : null;
        };
        order.sort((a, b) => {
          const ga = gapOf(a), gb = gapOf(b);
          if (ga === null && gb === null) return 0;
          if (ga === null) return 1; // no figure: always last
          if (gb === null) return -1;
          return (ga - gb) * state.sortDir;
        });
      }

      const mark = (key) => h("span", { class: "sort-mark", text: state.sortKey === key ? (state.sortDir > 0 ? "▲" : "▼") : "↕" });
      const sortBy = (key) => (ev) => {
        if (ev.target.closest("a")) return;
        if (ev.type === "keydown" && ev.key !== "Enter" && ev.key !== " ") return;
        if (ev.type === "keydown") ev.preventDefault();
        if (state.sortKey === key) state.sortDir = -state.sortDir;
        else { state.sortKey = key; state.sortDir = 1; }
        render();
      };
      const headRow = h("tr", null,
        h("th", { class: "rowhead sortable" + (state.sortKey === "_name" ? " sorted" : ""), scope: "col", title: "按名称排序", tabindex: "0", onclick: sortBy("_name"), onkeydown: sortBy("_name") },
          state.transposed ? "指标 \\ 园区" : "园区 \\ 指标", mark("_name")),
        columns.map((c) => h("th", {
          class: "sortable" + (state.sortKey === c.id ? " sorted" : ""),
          scope: "col",
          title: "点击按差距排序（先差后好，再点反向）",
          "aria-sort": state.sortKey === c.id ? (state.sortDir > 0 ? "ascending" : "descending") : null,
          tabindex: "0",
          onclick: sortBy(c.id),
          onkeydown: sortBy(c.id),
        },
        state.transposed
          ? [h("a", { href: parkUrl(c.id), text: c.p.name || c.id }), mark(c.id)]
          : [h("a", { href: indicatorUrl(c.id), text: c.label }), mark(c.id), h("span", { class: "col-unit", text: c.unit ? "单位：" + c.unit : "" })])));
      const bodyRows = order.map((r) => h("tr", { "data-row": r.id },
        h("th", { class: "rowhead", scope: "row" },
          state.transposed
            ? [h("a", { class: "park-name", href: indicatorUrl(r.id), text: r.name }), h("span", { class: "park-meta", text: r.c.unit ? "单位：" + r.c.unit : "" })]
            : [h("a", { class: "park-name", href: parkUrl(r.id), text: r.name }), h("span", { class: "park-meta", text: parkFacts(r.p, true).slice(0, 2).join(" · ") })]),
        !state.transposed && !(Array.isArray(r.p.indicators) && r.p.indicators.length)
          ? h("td", { class: "cell nodata", colspan: String(columns.length), text: "本期暂无报送数据" })
          : columns.map((c) => h("td", { class: "cell" }, cell(seriesAt(r.id, c.id), status && status.due_period)))));
      replace(body, scrollCue(h("div", { class: "table-wrap" },
        h("table", { class: "data matrix" }, h("thead", null, headRow), h("tbody", null, bodyRows)))));
    }

    /** Phones: one block per park, the parks with the worst statuses first,
     *  in each park its figures worst first (严重, 预警, 逾期, 正常, 未设目标). */
    function renderList() {
      replace(toggle);
      const rank = (s) => (s && Object.prototype.hasOwnProperty.call(STATUS_RANK, s.status) ? STATUS_RANK[s.status] : 9);
      const rows = parks.map((p) => {
        const ss = cols.map((c) => get(p.id, c.id)).filter(Boolean);
        ss.sort((a, b) => rank(a) - rank(b) || (isNum(a.gap_pp) ? a.gap_pp : 1e9) - (isNum(b.gap_pp) ? b.gap_pp : 1e9));
        return { p, ss, worst: ss.length ? rank(ss[0]) : 10, bad: ss.filter((s) => rank(s) <= 1).length };
      });
      rows.sort((a, b) => a.worst - b.worst || b.bad - a.bad || (a.p.name || a.p.id).localeCompare(b.p.name || b.p.id, "zh-CN"));
      replace(body, h("ul", { class: "park-list" }, rows.map((r) => h("li", { "data-row": r.p.id },
        h("div", { class: "pl-head" },
          h("a", { class: "park-name", href: parkUrl(r.p.id), text: r.p.name || r.p.id }),
          h("span", { class: "pl-count" }, STATUS_ORDER.filter((st) => r.ss.some((s) => s.status === st)).map((st) =>
            h("span", { class: "badge status-" + st, text: STATUS[st] + " " + r.ss.filter((s) => s.status === st).length })))),
        r.ss.length
          ? h("div", { class: "pl-items" }, r.ss.map((s) => {
            const st = statusName(s.status);
            const open = () => showHistory(Object.assign({ park_name: r.p.name }, s));
            return h("div", { class: "pl-item status-" + st, role: "button", tabindex: "0", onclick: open, "data-indicator": s.indicator },
              h("span", { class: "dot status-" + st }),
              h("span", { class: "pl-label", text: s.label || s.indicator }),
              h("span", { class: "pl-val num" }, num(s.value), s.unit ? h("small", { text: " " + s.unit }) : null),
              h("span", { class: "pl-gap num " + gapClass(s.gap_pp), text: isNum(s.gap_pp) ? gapShort(s) : statusLabel(s.status) }),
              overdueMark(s));
          }))
          : h("div", { class: "pl-none", text: "本期暂无报送数据" })))));
    }

    const phone = typeof matchMedia === "function" ? matchMedia("(max-width: 700px)") : null;
    const draw = () => (phone && phone.matches && parks.length && cols.length ? renderList() : render());
    if (phone && phone.addEventListener) phone.addEventListener("change", draw);
    const render0 = render;
    render = () => (phone && phone.matches && parks.length && cols.length ? renderList() : render0());
    render();
    return card;
  }

  /** Marks a horizontally scrolling box: a shadow at the edge and a hint line
   *  ("左右滑动查看更多") while there is more to see. */
  function scrollCue(wrap) {
    const box = h("div", { class: "scroll-box" }, wrap, h("div", { class: "scroll-hint", text: "← 左右滑动查看更多 →" }));
    const update = () => {
      const more = wrap.scrollWidth > wrap.clientWidth + 2;
      box.classList.toggle("scrolls", more);
      box.classList.toggle("at-end", wrap.scrollLeft + wrap.clientWidth >= wrap.scrollWidth - 2);
    };
    wrap.addEventListener("scroll", update, { passive: true });
    if (typeof ResizeObserver === "function") new ResizeObserver(update).observe(wrap);
    requestAnimationFrame(update);
    return box;
  }

  /** The ranking table of /api/v1/ranking/<indicator>. limit: show the first N. */
  function rankingTable(ranking, limit, compact) {
    const rows = Array.isArray(ranking.parks) ? ranking.parks : [];
    if (!rows.length) return h("div", { class: "empty", text: "暂无园区报送该指标数据" });
    const shown = isNum(limit) && limit > 0 ? rows.slice(0, limit) : rows;
    const unit = ranking.unit || (rows[0] && rows[0].unit) || "";
    return scrollCue(h("div", { class: "table-wrap" }, h("table", { class: "data ranking" + (compact ? " compact" : "") },
      h("thead", null, h("tr", null,
        h("th", { class: "c", text: "排名" }),
        h("th", { text: "园区" }),
        h("th", { class: "r" }, "数值", unit ? h("span", { class: "sub-label", text: unit }) : null),
        compact ? null : h("th", { class: "r opt", text: "目标" }),
        compact ? null : h("th", { class: "r opt", text: "同比" }),
        h("th", { class: "r", text: "完成率" }),
        compact ? null : h("th", { class: "r opt", text: "序时进度" }),
        h("th", { class: "r", text: "差距", title: compact ? "pp：百分点" : null }),
        h("th", { class: "c", text: "状态" }))),
      h("tbody", null, shown.map((s) => {
        const rank = isNum(s.rank) ? s.rank : null;
        const medal = rank && rank <= 3 && isNum(s.gap_pp) && s.gap_pp >= 0 && s.status !== "critical" && s.status !== "warning";
        return h("tr", { class: medal ? "top" + rank : null, title: typeof s.message === "string" ? s.message : null },
          h("td", { class: "c" }, h("span", { class: "rank", text: rank === null ? DASH : String(rank) })),
          h("td", { class: "nowrap" }, h("a", { href: parkUrl(s.park), text: s.name || s.park })),
          h("td", { class: "r num" }, h("a", { class: "hist-link", href: "#", title: "历次报送", text: num(s.value),
            onclick: (ev) => { ev.preventDefault(); showHistory(Object.assign({ park_name: s.name }, s)); } })),
          compact ? null : h("td", { class: "r num opt", text: num(s.target) }),
          compact ? null : h("td", { class: "r num opt", text: yoyText(s.yoy) }),
          h("td", { class: "r num", text: pct(s.completion_pct) }),
          compact ? null : h("td", { class: "r num opt", text: pct(s.pace_pct) }),
          h("td", { class: "r num " + gapClass(s.gap_pp) },
            compact ? gapShort(s) : [h("span", { class: "g-long", text: gapText(s) }), h("span", { class: "g-short", text: gapShort(s) })]),
          h("td", { class: "c" }, statusMarks(s)));
      })))));
  }

  /** A graph image from the daemon; a notice in its place when it cannot be drawn. */
  function graph(park, indicator, o = {}) {
    const q = new URLSearchParams();
    q.set("width", String(o.width || 560));
    q.set("height", String(o.height || 200));
    if (o.from && PERIOD_RE.test(o.from)) q.set("from", o.from);
    if (o.to && PERIOD_RE.test(o.to)) q.set("to", o.to);
    const src = "/graph/" + encodeURIComponent(park) + "/" + encodeURIComponent(indicator) + ".png?" + q.toString();
    const box = h("div", { class: "graph", "data-src": src });
    const img = h("img", { src, alt: o.alt || "趋势图", loading: o.lazy ? "lazy" : null, decoding: "async" });
    img.addEventListener("error", () => replace(box, h("div", { class: "graph-missing", text: "图表暂不可用" })));
    box.appendChild(img);
    return box;
  }

  /** A park page card for one series. */
  function indicatorCard(s, showPark) {
    const st = statusName(s.status);
    const metrics = [
      ["目标", isNum(s.target) ? valueText(s.target, s.unit) : "未设"],
      ["同比增长", yoyText(s.yoy)],
      ["完成率", pct(s.completion_pct)],
      ["序时进度", pct(s.pace_pct)],
      [s.kind === "rate" || s.kind === "rank" ? "较目标" : "较序时进度", gapText(s), gapClass(s.gap_pp)],
      ["预计全年完成", pct(s.projected_pct)],
      ["剩余月均需完成", valueText(s.needed_per_month, s.unit)],
    ];
    let bar = null;
    if (isNum(s.completion_pct)) {
      bar = h("div", { class: "progress", title: "完成 " + pct(s.completion_pct) + "，序时进度 " + pct(s.pace_pct) },
        h("div", { class: "bar status-" + st, style: { width: Math.max(0, Math.min(100, s.completion_pct)) + "%" } }),
        isNum(s.pace_pct) ? h("div", { class: "pace", style: { left: Math.max(0, Math.min(100, s.pace_pct)) + "%" } }) : null);
    }
    return h("section", { class: "card ind-card status-" + st, "data-indicator": s.indicator },
      h("div", { class: "card-head" },
        h("h3", null, h("a", { href: indicatorUrl(s.indicator), text: (showPark ? (s.park_name || s.park) + " · " : "") + (s.label || s.indicator) })),
        statusMarks(s)),
      h("div", { class: "card-body" },
        h("div", { class: "bigline" },
          h("span", { class: "big", text: num(s.value) }),
          h("span", { class: "unit", text: s.unit || "" }),
          h("span", { class: "period", text: period(s.period) + (isNum(s.revision) && s.revision > 0 ? " · 修订" + s.revision + "次" : "") })),
        bar,
        h("dl", { class: "metrics" }, metrics.filter((m, i) => i === 0 || m[1] !== DASH).map(([k, v, cls]) => h("div", null, h("dt", { text: k }), h("dd", { class: cls || null, text: v })))),
        typeof s.message === "string" && s.message ? h("div", { class: "message", text: s.message }) : null,
        PP.chart ? PP.chart({ park: s.park, indicator: s.indicator, unit: s.unit, kind: s.kind, label: s.label, status: s, lazy: true })
          : graph(s.park, s.indicator, { alt: (s.label || s.indicator) + "趋势图", lazy: true }),
        h("div", { class: "card-foot" },
          h("a", { href: "#", class: "hint hist-link", text: "历次报送", onclick: (ev) => { ev.preventDefault(); showHistory(s); } }),
          PP.chartPng ? PP.chartPng(s.park, s.indicator, s.period ? Number(s.period.slice(0, 4)) : 0) : null)));
  }

  /* ---------- alerts: one feed per page, SSE with polling fallback ---------- */

  const feed = {
    started: false,
    seq: 0,
    items: [], // newest first
    ids: new Set(),
    mode: "init", // init | live | poll | down
    error: null,
    listeners: [],
    pollTimer: 0,
    polls: 0,
    es: null,
  };

  function validAlert(a) {
    return a && typeof a === "object" && isNum(a.seq) && typeof a.park === "string";
  }

  function addAlerts(list, fresh) {
    const added = [];
    for (const a of list) {
      if (!validAlert(a)) continue;
      const key = typeof a.id === "string" && a.id ? a.id + "#" + a.seq : "#" + a.seq;
      if (feed.ids.has(key)) continue;
      feed.ids.add(key);
      feed.items.push(a);
      if (fresh) added.push(a);
      if (a.seq > feed.seq) feed.seq = a.seq;
    }
    feed.items.sort((x, y) => y.seq - x.seq);
    if (feed.items.length > 200) feed.items.length = 200;
    return added;
  }

  function notify(added) {
    for (const fn of feed.listeners) {
      try {
        fn(feed, added);
      } catch (e) {
        console.error(e);
      }
    }
  }

  async function snapshot() {
    const snap = await getJSON("/api/v1/alerts");
    if (isNum(snap.seq) && snap.seq > feed.seq) feed.seq = snap.seq;
    addAlerts(Array.isArray(snap.alerts) ? snap.alerts : [], false);
  }

  /** Fetches the alerts after the last seq seen and adds them as new. */
  async function catchUp() {
    const r = await getJSON("/api/v1/alerts?since=" + encodeURIComponent(String(feed.seq)));
    const added = addAlerts(Array.isArray(r.alerts) ? r.alerts : [], true);
    if (isNum(r.seq) && r.seq > feed.seq) feed.seq = r.seq;
    notify(added);
  }

  function startPolling() {
    if (feed.pollTimer) return;
    feed.mode = "poll";
    feed.polls = 0;
    feed.pollTimer = setInterval(async () => {
      feed.polls++;
      try {
        if (!feed.started || feed.error) {
          await snapshot();
          feed.started = true;
          feed.error = null;
          notify([]);
          return;
        }
        await catchUp();
        feed.error = null;
      } catch (e) {
        feed.error = e;
        notify([]);
      }
      // every ten polls (5 min) try the event stream again
      if (feed.polls % 10 === 0 && typeof EventSource === "function") {
        clearInterval(feed.pollTimer);
        feed.pollTimer = 0;
        connectEvents();
      }
    }, POLL_MS);
    notify([]);
  }

  function connectEvents() {
    if (typeof EventSource !== "function") {
      startPolling();
      return;
    }
    let es;
    try {
      es = new EventSource("/api/v1/events");
    } catch (e) {
      startPolling();
      return;
    }
    feed.es = es;
    es.addEventListener("open", async () => {
      feed.mode = "live";
      notify([]);
      try {
        await catchUp();
      } catch (e) {
        /* the stream works; a failed catch-up only means a possible gap */
      }
    });
    es.addEventListener("alert", (ev) => {
      let a = null;
      try {
        a = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      notify(addAlerts([a], true));
    });
    es.addEventListener("error", () => {
      // the stream is missing or broke: fall back to polling (SPEC: poll every 30 s)
      es.close();
      if (feed.es === es) feed.es = null;
      startPolling();
    });
  }

  /** Subscribes fn(feed, addedAlerts) to the page's alert feed and starts it
   *  on first use: snapshot of the active alerts, then the event stream. */
  function onAlerts(fn) {
    feed.listeners.push(fn);
    if (feed.listeners.length > 1) {
      fn(feed, []);
      return;
    }
    (async () => {
      try {
        await snapshot();
        feed.started = true;
        setTimeout(connectEvents, EVENTS_DELAY_MS);
      } catch (e) {
        feed.error = e;
        startPolling();
      }
      notify([]);
    })();
  }

  function alertItem(a, isFresh) {
    const st = statusName(a.status);
    let change = statusLabel(a.status);
    if (a.previous && a.previous !== "none" && a.previous !== a.status) change = statusLabel(a.previous) + " → " + statusLabel(a.status);
    else if (a.previous === a.status) change = statusLabel(a.status) + "（持续）";
    if (a.status === "ok" && a.previous && a.previous !== "none") change = "恢复正常";
    return h("li", { class: "status-" + st + (isFresh ? " fresh" : ""), "data-seq": String(a.seq) },
      h("div", { class: "a-head" },
        h("span", { class: "num", text: shortTime(a.time) }),
        h("span", { class: "badge status-" + st, text: change }),
        h("span", { text: period(a.period) })),
      h("div", { class: "a-title" },
        h("a", { href: parkUrl(a.park), text: a.park_name || a.park }), " · ",
        h("a", { href: indicatorUrl(a.indicator), text: a.label || a.indicator || "" })),
      h("div", { class: "a-msg", text: text(a.message) }));
  }

  function feedStatus() {
    if (feed.mode === "live") return h("span", { class: "feed-status" }, h("span", { class: "live" }), "实时推送");
    if (feed.mode === "poll") return h("span", { class: "feed-status" }, h("span", { class: "poll" }), "每30秒刷新");
    return h("span", { class: "feed-status", text: feed.started ? "已同步" : "连接中…" });
  }

  /** The alert list as a card, updating itself. o: {limit, title}. */
  function alertsCard(o = {}) {
    const limit = isNum(o.limit) && o.limit > 0 ? o.limit : 30;
    const stat = h("span", null);
    const body = h("div", { class: "card-body flush" }, h("div", { class: "loading", text: "正在读取预警…" }));
    const card = h("section", { class: "card alerts-card" },
      h("div", { class: "card-head" }, h("h2", { text: o.title || "预警动态" }), stat),
      body);
    onAlerts((f, added) => {
      replace(stat, feedStatus());
      const fresh = new Set(added.map((a) => a.seq));
      const parts = [];
      if (f.error) parts.push(h("div", { style: { padding: "0.6rem 1rem 0" } }, errorNotice(f.error, "预警读取失败")));
      if (!f.items.length) {
        if (f.started) parts.push(h("div", { class: "empty", text: "当前无预警，各项指标运行正常" }));
      } else {
        parts.push(h("ul", { class: "alerts" }, f.items.slice(0, limit).map((a) => alertItem(a, fresh.has(a.seq)))));
      }
      if (parts.length) replace(body, parts);
    });
    return card;
  }

  /* ---------- page start ---------- */

  /** Runs render(main) after building the frame; an exception becomes a notice. */
  function boot(active, render) {
    const start = () => {
      frame(active);
      const main = document.getElementById("app") || document.body.appendChild(h("main", { id: "app" }));
      Promise.resolve().then(() => render(main)).catch((e) => {
        console.error(e);
        replace(main, e instanceof ApiError ? errorNotice(e, "数据读取失败") : notice("页面出错", String(e && e.message ? e.message : e)), footer());
      });
    };
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
    else start();
  }

  return {
    STATUS, STATUS_ORDER, LEVEL, TYPE, KIND, ID_RE, PERIOD_RE, DASH, tv, params,
    h, append, clear, replace,
    isNum, num, pct, signed, gapText, gapClass, valueText, yoyText, period, time, shortTime,
    statusLabel, statusName, badge, dot, text, parkFacts,
    pathId, parkUrl, indicatorUrl,
    ApiError, getJSON, notice, errorNotice,
    frame, setTv, setMeta, footer, boot,
    allSeries, latestPeriod, indicatorColumns, fingerprint,
    tiles, legend, cell, matrixCard, rankingTable, graph, indicatorCard, scrollCue,
    overdueMark, statusMarks, showHistory, wantedPeriod, periodPicker, statusAt, addMonths,
    onAlerts, alertsCard, alertItem,
  };
})();
