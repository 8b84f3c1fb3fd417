"""Issue: the browser pages (README, HTTP API) — a real headless Chromium against the
real daemon.

Feeds the 2021 fixtures to a daemon, then loads the pages in headless
Chromium (the Debian package `chromium`) with a virtual-time budget, so the
page's JavaScript runs to completion: --dump-dom must show the data rendered
by the scripts (park and indicator names, status classes, the completion
64.07 of the fixture table), and screenshots of the pages are saved under
$BUILD/screenshots/ for people to look at. No network beyond 127.0.0.1.

Skipped when /usr/bin/chromium is not installed.
"""
import os
import re
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, DaemonTest

CHROMIUM = "/usr/bin/chromium"
SHOTS = os.path.join(BUILD, "screenshots")


def chromium(args, url, size="1400,1000", timeout=120):
    """Runs headless Chromium once on url; returns its stdout (bytes)."""
    profile = tempfile.mkdtemp(prefix="pp-chromium-")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--user-data-dir=" + profile, "--window-size=" + size, "--virtual-time-budget=5000"]
    try:
        r = subprocess.run(cmd + list(args) + [url], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("chromium did not finish within %ss on %s" % (timeout, url))
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    if r.returncode != 0:
        raise AssertionError("chromium exited with %d on %s:\n%s" % (r.returncode, url, r.stderr.decode("utf-8", "replace")[-2000:]))
    return r.stdout


@unittest.skipUnless(os.access(CHROMIUM, os.X_OK),
                     "headless browser test needs the Debian package 'chromium' (/usr/bin/chromium)")
class BrowserTest(DaemonTest):
    def setUp(self):
        super().setUp()
        try:
            self.d = self.daemon().start()
            self.assertEqual(self.d.drop("targets-2021.csv"), "done")
            self.assertEqual(self.d.drop("xiangtan-etdz-2021.csv"), "done")
            os.makedirs(SHOTS, exist_ok=True)
        except BaseException:
            self.tearDown()  # unittest skips tearDown when setUp fails: stop the daemon here
            raise

    def served(self, path, ctype):
        status, headers, body = self.d.get(path)
        self.assertEqual(status, 200, "GET %s: %s %s" % (path, status, body[:200]))
        got = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        self.assertIn(ctype, got, "GET %s: Content-Type %r" % (path, got))
        return body

    def dom(self, path, size="1400,1000"):
        html = chromium(["--dump-dom"], self.d.url + path, size).decode("utf-8", "replace")
        self.assertIn("</main>", html, "no page rendered for " + path)
        # a notice with role=alert means an API call of the page failed
        at = html.find('role="alert"')
        if at >= 0:
            self.fail("page %s shows an error notice: %s" % (path, re.sub("<[^>]+>", " ", html[at:at + 400])))
        return html

    def graphs_loaded(self, html, park, indicator):
        """The page shows the graph of park/indicator and no graph failed to load."""
        url = "/graph/%s/%s.png?" % (park, indicator)
        self.assertIn(url, html)
        m = re.search(r'/graph/%s/%s\.png\?[^"]*' % (park, indicator), html)
        src = m.group(0).replace("&amp;", "&")
        status, headers, body = self.d.get(src)
        self.assertEqual(status, 200, "GET %s: %s %s" % (src, status, body[:200]))
        self.assertEqual(body[:8], b"\x89PNG\r\n\x1a\n", src)
        self.assertNotIn("图表暂不可用", html, "a graph image failed to load in the browser")

    def screenshot(self, path, name, size="1400,1000"):
        out = os.path.join(SHOTS, name)
        if os.path.exists(out):
            os.unlink(out)
        chromium(["--screenshot=" + out], self.d.url + path, size)
        self.assertTrue(os.path.exists(out), "no screenshot written for " + path)
        with open(out, "rb") as f:
            data = f.read()
        self.assertEqual(data[:8], b"\x89PNG\r\n\x1a\n", name)
        self.assertGreater(len(data), 20000, "%s is suspiciously small (blank page?)" % name)

    def test_overview_renders_status_matrix(self):
        self.served("/", "text/html")
        self.served("/assets/app.js", "javascript")
        self.served("/assets/app.css", "text/css")
        html = self.dom("/")
        self.assertIn("湘潭经开区", html)
        self.assertIn("固定资产投资", html)
        self.assertIn("64.07", html)             # completion of fixed_asset_investment, 2 decimals
        self.assertIn("60.95", html)             # fiscal_revenue
        self.assertIn("status-warning", html)    # fiscal_revenue
        self.assertIn("status-critical", html)   # fdi_actual
        self.assertIn("status-no_target", html)  # industrial_output has no target
        self.assertIn('href="/park/xiangtan-etdz"', html)
        self.assertIn('href="/indicator/fixed_asset_investment"', html)
        self.assertIn("2021年1-8月", html)        # the latest period in the header
        self.assertIn("/api/v1/report?period=2021-08&amp;format=csv", html)
        self.assertIn("encoding=gb18030", html)
        # the alert panel shows the active alerts with their 通报 sentence
        self.assertIn("财税收入 1-8月完成25.6亿元", html)
        self.screenshot("/", "index.png")
        self.screenshot("/?tv=1", "index-tv.png", "1920,1080")

    def test_park_page(self):
        self.served("/park/xiangtan-etdz", "text/html")
        html = self.dom("/park/xiangtan-etdz")
        self.assertIn("湘潭经开区", html)
        self.assertIn("湖南省湘潭市", html)
        self.assertIn("国家级", html)
        self.assertIn("固定资产投资", html)
        self.assertIn("64.07%", html)
        self.assertIn("66.67%", html)  # pace
        self.assertIn("-2.60 个百分点", html)
        self.graphs_loaded(html, "xiangtan-etdz", "fixed_asset_investment")
        self.assertIn("低于序时进度(66.7%)2.6个百分点", html)
        self.screenshot("/park/xiangtan-etdz", "park-xiangtan-etdz.png")
        # an unknown park is a visible notice, not a blank page (or a plain 404
        # when the server itself checks the id)
        if self.d.get("/park/no-such-park")[0] == 200:
            html = chromium(["--dump-dom"], self.d.url + "/park/no-such-park").decode("utf-8", "replace")
            self.assertIn("no-such-park", html)
            self.assertIn('role="alert"', html)

    def test_indicator_page(self):
        html = self.dom("/indicator/fixed_asset_investment")
        self.assertIn("固定资产投资", html)
        self.assertIn("湘潭经开区", html)
        self.assertIn("64.07%", html)
        self.assertIn('class="rank"', html)
        self.graphs_loaded(html, "xiangtan-etdz", "fixed_asset_investment")
        self.screenshot("/indicator/fixed_asset_investment", "indicator-fixed_asset_investment.png")

    def test_dashboards(self):
        listing = self.d.get_json("/api/v1/dashboards")
        names = {x["name"] for x in listing["dashboards"]}
        self.assertLessEqual({"overview-xiangtan", "wall"}, names)
        html = self.dom("/dashboard/overview-xiangtan")
        self.assertIn("湘潭园区概览", html)
        self.assertIn("64.07", html)
        self.assertIn("status-critical", html)
        self.assertIn("/graph/xiangtan-hitech/fixed_asset_investment.png?", html)  # a park without data
        self.assertIn("固定资产投资 · 全部园区排名", html)
        self.screenshot("/dashboard/overview-xiangtan", "dashboard-overview-xiangtan.png")
        self.screenshot("/dashboard/wall", "dashboard-wall.png", "1920,1080")


if __name__ == "__main__":
    unittest.main()
