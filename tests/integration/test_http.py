"""Issue: the HTTP surface — ranking, history, the 通报 report, metrics,
POST with a bearer token, and a probe list of hostile paths."""
import csv
import io
import json
import re
import socket

from harness import DaemonTest

TOKEN = "s3cret-token-for-tests"


class HttpTest(DaemonTest):
    def fed(self, **kw):
        d = self.daemon(token=TOKEN, **kw).start()
        # figures before targets: a target alone is no_data and overdue, with alerts
        # of its own (issue 13) that the seq counts below do not expect
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        return d

    def post(self, d, body, token=TOKEN):
        headers = {"Content-Type": "text/csv"}
        if token is not None:
            headers["Authorization"] = "Bearer " + token
        return d.request("/api/v1/observations", method="POST", body=body, headers=headers)

    def test_post_observations_status_codes(self):
        d = self.fed()
        ok = "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-09,230\n".encode()
        status, _, body = self.post(d, ok, token=None)
        self.assertEqual(status, 401)
        self.assertIn("error", json.loads(body))
        self.assertEqual(self.post(d, ok, token="wrong")[0], 401)
        status, _, body = self.post(d, "park,indicator,period,value\nxiangtan-etd,fixed_asset_investment,2021-09,1\nxiangtan-etdz,fixed_asset_investment,2021-09,x\n".encode())
        self.assertEqual(status, 400)
        errors = json.loads(body)["errors"]
        self.assertEqual(len(errors), 2)
        self.assertIn(":2:", errors[0])
        self.assertIn("did you mean", errors[0])
        status, _, body = self.post(d, ok)
        self.assertEqual(status, 202)
        self.assertEqual(json.loads(body)["accepted"], 1)
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["period"], "2021-09")
        status, _, _ = self.post(d, b"park,indicator,period,value\n" + b"x" * (9 << 20))
        self.assertEqual(status, 413)
        self.assertEqual(d.request("/api/v1/observations")[0], 405)
        self.assertTrue(d.healthy())

    def test_post_refused_without_token_file(self):
        d = self.daemon().start()  # no token file
        status, _, _ = self.post(d, b"park,indicator,period,value\n", token="anything")
        self.assertEqual(status, 403)

    def test_ranking_history_report(self):
        d = self.fed()
        # a second park on fixed_asset_investment, ahead of pace
        body = ("园区,指标,年度,目标\nxiangtan-hitech,固定资产投资,2021,100\nliuyang-etdz,固定资产投资,2021,200\n").encode()
        self.assertEqual(d.drop("t2.csv", body), "done")
        body = ("park,indicator,period,value\nxiangtan-hitech,fixed_asset_investment,2021-08,70\n"
                "liuyang-etdz,fixed_asset_investment,2021-08,100\n").encode()
        self.assertEqual(d.drop("o2.csv", body), "done")
        r = d.get_json("/api/v1/ranking/fixed_asset_investment?period=2021-08")
        self.assertEqual(r["period"], "2021-08")
        self.assertEqual([p["park"] for p in r["parks"]], ["xiangtan-hitech", "xiangtan-etdz", "liuyang-etdz"])
        self.assertEqual([p["rank"] for p in r["parks"]], [1, 2, 3])
        self.assertEqual(r["parks"][0]["name"], "湘潭高新区")
        self.assertEqual(r["parks"][2]["status"], "critical")  # 50% vs 66.67
        self.assertEqual(d.get_json("/api/v1/ranking/fixed_asset_investment")["period"], "2021-08")
        d.get_json("/api/v1/ranking/nothing", expect=404)
        # history: vintages oldest first
        self.assertEqual(d.drop("rev.csv", "park,indicator,period,value,status,source\nxiangtan-etdz,fiscal_revenue,2021-08,28.5,R,统计局修订\n".encode()), "done")
        h = d.get_json("/api/v1/history/xiangtan-etdz/fiscal_revenue/2021-08")
        self.assertEqual([v["value"] for v in h["vintages"]], [25.6, 28.5])
        self.assertEqual([v["status"] for v in h["vintages"]], ["A", "R"])
        self.assertEqual(h["vintages"][1]["source"], "统计局修订")
        d.get_json("/api/v1/history/xiangtan-etdz/fiscal_revenue/2021-13", expect=400)
        # the report, CSV in UTF-8 and GB18030, and JSON
        status, headers, body = d.get("/api/v1/report?period=2021-08&format=csv")
        self.assertEqual(status, 200)
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))  # UTF-8 with a BOM (issue 16)
        self.assertEqual(rows[0][:4], ["园区代码", "园区", "指标代码", "指标"])
        fai = [r for r in rows[1:] if r[2] == "fixed_asset_investment"]
        self.assertEqual([r[0] for r in fai], ["xiangtan-hitech", "xiangtan-etdz", "liuyang-etdz"])
        self.assertEqual(fai[1][5:11], ["192.2", "亿元", "300", "64.07", "66.67", "-2.6"])
        status, headers, gb = d.get("/api/v1/report?period=2021-08&format=csv&encoding=gb18030")
        self.assertEqual(status, 200)
        self.assertIn("gb18030", headers["Content-Type"])
        self.assertEqual(gb.decode("gb18030"), body.decode("utf-8-sig"))
        self.assertNotEqual(gb, body)
        j = d.get_json("/api/v1/report?period=2021-08&format=json")
        self.assertEqual(len(j["rows"]), len(rows) - 1)
        d.get_json("/api/v1/report?period=2021-08&format=xls", expect=400)
        d.get_json("/api/v1/report?period=2021-08&encoding=latin1", expect=400)

    def test_metrics_exposition(self):
        d = self.fed()
        status, headers, body = d.get("/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        text = body.decode("utf-8")
        line = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? -?[0-9.eE+-]+$')
        for l in text.splitlines():
            if l.startswith("#"):
                self.assertTrue(l.startswith("# HELP ") or l.startswith("# TYPE "), l)
            else:
                self.assertRegex(l, line)
        self.assertIn('parkpulse_value{park="xiangtan-etdz",indicator="fixed_asset_investment",unit="亿元"} 192.2', text)
        self.assertIn('parkpulse_status{park="xiangtan-etdz",indicator="fdi_actual",status="critical"} 1', text)
        self.assertIn('parkpulse_files_total{result="ok"} 2', text)
        self.assertIn("parkpulse_alert_seq 2", text)

    def test_hostile_paths_answer_400_or_404(self):
        d = self.fed()
        probes = [
            "/../../etc/passwd", "/assets/../../../etc/passwd", "/assets/..%2f..%2fetc%2fpasswd",
            "/assets/%2e%2e/%2e%2e/etc/passwd", "/park/..%2F..%2Fetc", "/park/xiangtan-etdz%00",
            "/api/v1/parks/%2e%2e", "/api/v1/parks/xiangtan-etdz/../../x", "/api/v1/series/x/y/z",
            "/graph/..%2F..%2Fetc/passwd.png", "/graph/xiangtan-etdz/fixed_asset_investment:x.png",
            "/api/v1/series/xiangtan-etdz/fixed_asset_investment%3ADEF", "/assets/.hidden",
            "/api/v1/history/xiangtan-etdz/fiscal_revenue/..", "/dashboard/..%2Fetc", "//etc/passwd",
            "/api/v1/parks/XIANGTAN-ETDZ", "/api/v1/parks/" + "a" * 300, "/assets/%5C..%5Cetc",
            "/park/xiangtan-etdz/", "/api/v1/dashboards/..%2F..%2Fetc%2Fpasswd",
        ]
        for p in probes:
            status, _, body = d.get(p)
            self.assertIn(status, (400, 404), p)
            self.assertNotIn(b"root:", body, p)
            if status != 404 or body:
                self.assertIn("error", json.loads(body), p)
        # raw request lines: a bogus method, a path that is not absolute
        for raw in (b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n", b"GET ../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n"):
            s = socket.create_connection(("127.0.0.1", d.port), timeout=5)
            s.sendall(raw)
            first = s.recv(200)
            s.close()
            self.assertTrue(first.startswith(b"HTTP/1.1 4"), first)
        self.assertTrue(d.healthy())


class GraphTest(DaemonTest):
    def test_png_svg_etag_and_concurrency(self):
        import struct
        import threading
        d = self.daemon().start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        path = "/graph/xiangtan-etdz/fixed_asset_investment"

        def png_size(body):
            self.assertEqual(body[:8], b"\x89PNG\r\n\x1a\n")
            return struct.unpack(">II", body[16:24])

        status, headers, body = d.get(path + ".png?width=800&height=300")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "image/png")
        w800, h300 = png_size(body)
        self.assertGreater(w800, 800)
        status, _, body4 = d.get(path + ".png?width=400&height=300")
        self.assertEqual(png_size(body4), (w800 - 400, h300))
        status, _, _ = d.get(path + ".png?width=800&height=300", headers={"If-None-Match": headers["ETag"]})
        self.assertEqual(status, 304)
        status, headers, svg = d.get(path + ".svg?from=2021-02&to=2021-08")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "image/svg+xml")
        self.assertIn(b"<svg", svg[:400])
        for bad in ("?width=5", "?width=99999", "?height=abc", "?from=2021-13", "?from=2021-08&to=2021-02"):
            self.assertEqual(d.get(path + ".png" + bad)[0], 400, bad)
        self.assertEqual(d.get("/graph/xiangtan-etdz/fixed_asset_investment.gif")[0], 404)
        self.assertEqual(d.get("/graph/xiangtan-hitech/fixed_asset_investment.png")[0], 404)
        # a revision changes the image (the cache is invalidated)
        self.assertEqual(d.drop("rev.csv", b"park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-08,260\n"), "done")
        self.assertNotEqual(d.get(path + ".png?width=800&height=300")[2], body)
        # 8 concurrent clients, distinct sizes so that most are rendered, not cached
        results, errors = [], []

        def client(i):
            try:
                for k in range(4):
                    st, _, b = d.get(path + ".png?width=%d&height=%d" % (300 + 10 * i, 150 + 10 * k))
                    results.append((st, png_size(b)[0] - (300 + 10 * i)))
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertEqual(errors, [])
        self.assertEqual(len(results), 32)
        self.assertEqual({st for st, _ in results}, {200})
        self.assertEqual(len({extra for _, extra in results}), 1)  # the same margins every time
        self.assertTrue(d.healthy())
        self.assertEqual(d.stop(), 0)

    def test_cached_graph_follows_its_series_only(self):
        """A graph served from the cache (the same ETag, 304 on it) changes
        when its own series gets a figure or a target, and stays the same
        image when another series gets figures."""
        d = self.daemon().start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        path = "/graph/xiangtan-etdz/fixed_asset_investment.png?width=600&height=200"
        status, headers, body = d.get(path)
        self.assertEqual(status, 200)
        etag = headers["ETag"]
        for _ in range(3):  # cached: the same bytes, and 304 on their ETag
            status, h, again = d.get(path)
            self.assertEqual((status, h["ETag"], again), (200, etag, body))
            self.assertEqual(d.get(path, headers={"If-None-Match": etag})[0], 304)
        # the same query in another order is the same image
        status, h, _ = d.get("/graph/xiangtan-etdz/fixed_asset_investment.png?height=200&width=600")
        self.assertEqual((status, h["ETag"]), (200, etag))
        # another series' figures: the same image, still 304 on its ETag
        self.assertEqual(d.drop("other.csv", b"park,indicator,period,value\n"
                                b"xiangtan-etdz,fiscal_revenue,2021-08,12.5\n"
                                b"xiangtan-hitech,fixed_asset_investment,2021-08,99\n"), "done")
        status, h, again = d.get(path)
        self.assertEqual((status, h["ETag"], again), (200, etag, body))
        self.assertEqual(d.get(path, headers={"If-None-Match": etag})[0], 304)
        # its own series' next figure: a new image, the old ETag no longer 304
        self.assertEqual(d.drop("next.csv", b"park,indicator,period,value\n"
                                b"xiangtan-etdz,fixed_asset_investment,2021-09,300\n"), "done")
        status, h, newer = d.get(path)
        self.assertEqual(status, 200)
        self.assertNotEqual(newer, body)
        self.assertNotEqual(h["ETag"], etag)
        self.assertEqual(d.get(path, headers={"If-None-Match": etag})[0], 200)
        self.assertEqual(d.get(path, headers={"If-None-Match": h["ETag"]})[0], 304)
        # its target changes the target line: a new image again
        etag = h["ETag"]
        self.assertEqual(d.drop("target.csv", b"park,indicator,year,target\n"
                                b"xiangtan-etdz,fixed_asset_investment,2021,450\n"), "done")
        status, h, third = d.get(path)
        self.assertEqual(status, 200)
        self.assertNotIn(third, (body, newer))
        self.assertNotEqual(h["ETag"], etag)
        self.assertEqual(d.stop(), 0)

    def test_stop_while_graphs_are_drawn(self):
        """SIGTERM while graphs are being drawn (their connections suspended,
        daemon/http.c): the daemon stops cleanly, and every request answered
        got a whole PNG."""
        import http.client
        import threading
        d = self.daemon().start()
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        first = threading.Event()
        answers, errors = [], []

        def client(i):
            try:
                c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
                for k in range(6):  # distinct sizes: drawn, not cached
                    c.request("GET", "/graph/xiangtan-etdz/fixed_asset_investment.png?width=%d&height=%d"
                              % (300 + 10 * i, 150 + 10 * k))
                    r = c.getresponse()
                    answers.append((r.status, r.read()))
                    first.set()
                c.close()
            except (OSError, http.client.HTTPException) as e:
                errors.append(e)  # the daemon stopped under it: allowed
                first.set()

        threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        self.assertTrue(first.wait(30))
        self.assertEqual(d.stop(), 0)
        for t in threads:
            t.join(40)
            self.assertFalse(t.is_alive(), "a client still waits for its graph")
        self.assertGreater(len(answers), 0)
        for status, body in answers:
            self.assertEqual(status, 200)
            self.assertEqual(body[:8], b"\x89PNG\r\n\x1a\n")
            self.assertTrue(body.endswith(b"IEND\xaeB`\x82"), "a truncated PNG")

    def test_last_year_only_with_its_figures(self):
        """去年同期 (last year's months, dashed, with a key in the legend, both
        #8A96A8) is drawn only when last year's months hold a figure."""
        colour = b"rgb(54.117647%,58.823529%,65.882353%)"  # #8A96A8 in cairo's SVG
        d = self.daemon().start()
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        path = "/graph/xiangtan-etdz/fixed_asset_investment.svg"
        status, _, svg = d.get(path)  # 2021, the year of the latest figure
        self.assertEqual(status, 200)
        self.assertIn(b"<svg", svg[:400])
        self.assertFalse(colour in svg, "去年同期 drawn without a figure of 2020")
        self.assertEqual(d.drop("last.csv", b"park,indicator,period,value\n"
                                b"xiangtan-etdz,fixed_asset_investment,2020-05,30\n"), "done")
        status, _, svg = d.get(path)
        self.assertEqual(status, 200)
        self.assertTrue(colour in svg and b"dasharray:5,3" in svg, "no 去年同期 with a figure of 2020-05")
        # months whose last year has no figure: none again
        status, _, svg = d.get(path + "?from=2021-06&to=2021-08")
        self.assertEqual(status, 200)
        self.assertFalse(colour in svg, "去年同期 drawn for 2021-06..08 without a figure of 2020-06..08")
        self.assertEqual(d.stop(), 0)
