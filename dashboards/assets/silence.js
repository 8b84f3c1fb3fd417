/* silence.js — 已静默 on the pages (README "Notifications"): reads
 * GET /api/v1/silences and marks every element that carries data-park (and
 * data-indicator) of a silenced park or indicator with a badge "已静默" whose
 * title gives the reason and the end date; on a park's page (/park/<id>) a
 * line above the content lists that park's silences. Self-contained (its own
 * styles), so that a page only needs <script src="/assets/silence.js" defer>;
 * it follows the page's re-renders and reads the silences again every minute. */
(function () {
  "use strict";
  var silences = [];

  function covering(park, ind) {
    for (var i = 0; i < silences.length; i++) {
      var s = silences[i];
      if (s.park === park && (!s.indicator || s.indicator === ind)) return s;
    }
    return null;
  }

  function text(s) {
    return "已静默至 " + s.until + "（" + s.reason + "，" + s.by + "）";
  }

  function mark() {
    var els = document.querySelectorAll("[data-park]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i], s = covering(el.getAttribute("data-park"), el.getAttribute("data-indicator"));
      var badge = el.querySelector(":scope > .pp-silenced");
      if (!s) {
        if (badge) badge.remove();
        continue;
      }
      if (!badge) {
        badge = document.createElement("span");
        badge.className = "pp-silenced";
        badge.style.cssText = "display:inline-block;margin-left:.3em;padding:0 .3em;border-radius:3px;" +
          "font-size:.75em;background:#6b7280;color:#fff;white-space:nowrap";
        el.appendChild(badge);
      }
      if (badge.textContent !== "已静默") badge.textContent = "已静默";
      if (badge.title !== text(s)) badge.title = text(s); /* no change, no mutation: no loop */
    }
    var m = /^\/park\/([a-z0-9][a-z0-9_-]*)$/.exec(location.pathname);
    var line = document.getElementById("pp-silence-line");
    var mine = m ? silences.filter(function (s) { return s.park === m[1]; }) : [];
    if (!mine.length) {
      if (line) line.remove();
      return;
    }
    if (!line) {
      line = document.createElement("p");
      line.id = "pp-silence-line";
      line.style.cssText = "margin:.5em 0;padding:.4em .6em;border-left:4px solid #6b7280;background:#f3f4f6;color:#111";
      var main = document.querySelector("main") || document.body;
      main.insertBefore(line, main.firstChild);
    }
    var t = mine.map(function (s) {
      return (s.indicator ? s.indicator + " " : "全部指标 ") + text(s);
    }).join("；");
    if (line.textContent !== t) line.textContent = t;
  }

  function load() {
    fetch("/api/v1/silences", { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { silences: [] }; })
      .then(function (j) { silences = j.silences || []; mark(); })
      .catch(function () {});
  }

  var pending = false;
  new MutationObserver(function () {
    if (pending || !silences.length) return;
    pending = true;
    setTimeout(function () { pending = false; mark(); }, 100);
  }).observe(document.documentElement, { childList: true, subtree: true });
  load();
  setInterval(load, 60000);
})();
