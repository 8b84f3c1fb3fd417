"""Issue 14: GET /metrics follows Prometheus' conventions — `promtool check
metrics` finds nothing on a live exposition; counters end in _total; shares
are 0..1 ratios; the period is a timestamp; parkpulse_series_info carries the
names people read; parkpulse_build_info; process metrics on the real clock
(never the fixed --now one) — and a real Prometheus server (Debian's
`prometheus`, on loopback, temporary configuration and storage) scrapes it
and answers a query for one series through its HTTP API."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

from harness import DaemonTest, free_port, wait_for

PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def samples(text):
    """{(name, frozenset(labels)): value} and {name: type} of an exposition."""
    vals, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line and not line.startswith("#"):
            m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$', line)
            labels = frozenset(re.findall(r'([a-zA-Z_]\w*)="((?:\\.|[^"\\])*)"', m.group(2) or ""))
            vals[(m.group(1), labels)] = float(m.group(3))
    return vals, types


class MetricsTest(DaemonTest):
    def fed(self):
        d = self.daemon().start()
        # figures before targets: a target alone is no_data and overdue, with
        # alerts of its own (issue 13) that the counts below do not expect
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        return d

    def metrics(self, d):
        status, headers, body = d.get("/metrics")
        self.assertEqual(status, 200)
        return body.decode("utf-8")

    def test_conventions(self):
        d = self.fed()
        text = self.metrics(d)
        vals, types = samples(text)
        for name, typ in types.items():
            if typ == "counter":
                self.assertTrue(name.endswith("_total"), name)
        key = frozenset({("park", "xiangtan-etdz"), ("indicator", "fixed_asset_investment"), ("unit", "亿元")})
        self.assertAlmostEqual(vals[("parkpulse_completion_ratio", key)], 192.2 / 300, places=4)
        self.assertAlmostEqual(vals[("parkpulse_pace_ratio", key)], 8 / 12, places=4)
        self.assertAlmostEqual(vals[("parkpulse_gap_pp", key)], -2.60, places=2)  # the points gauge stays
        self.assertEqual(vals[("parkpulse_value", key)], 192.2)
        # 2021-08 starts on 2021-08-01 00:00 Asia/Shanghai
        self.assertEqual(vals[("parkpulse_period_timestamp_seconds", key)], 1627747200)
        info = frozenset({("park", "xiangtan-etdz"), ("indicator", "fixed_asset_investment"),
                          ("park_name", "湘潭经开区"), ("indicator_label", "固定资产投资"), ("unit", "亿元")})
        self.assertEqual(vals[("parkpulse_series_info", info)], 1)
        self.assertIn('parkpulse_build_info{version="', text)
        for name in ("process_resident_memory_bytes", "process_open_fds", "process_start_time_seconds",
                     "process_cpu_seconds_total"):
            self.assertIn((name, frozenset()), vals, name)
        self.assertGreater(vals[("process_resident_memory_bytes", frozenset())], 1 << 20)
        self.assertGreater(vals[("process_open_fds", frozenset())], 3)
        # the daemon's clock is fixed at 2021-09-15; its start time is the real one
        start = vals[("process_start_time_seconds", frozenset())]
        self.assertLess(abs(start - time.time()), 600, start)
        self.assertNotIn("parkpulse_start_time_seconds", text)
        self.assertEqual(vals[("parkpulse_alert_seq", frozenset())], 2)
        self.assertEqual(types["parkpulse_alert_seq"], "gauge")
        # the journal's fdatasync calls (one per append at least) and the RRD queue
        self.assertGreaterEqual(vals[("parkpulse_journal_syncs_total", frozenset())], 1)
        self.assertEqual(types["parkpulse_journal_syncs_total"], "counter")
        self.assertGreaterEqual(vals[("parkpulse_journal_sync_seconds_total", frozenset())], 0)
        self.assertEqual(types["parkpulse_journal_sync_seconds_total"], "counter")
        self.assertIn(("parkpulse_rrd_pending", frozenset()), vals)
        self.assertEqual(types["parkpulse_rrd_pending"], "gauge")

    def test_promtool_check_metrics(self):
        if PROMTOOL is None:
            self.skipTest("promtool (Debian package prometheus) is not installed")
        d = self.fed()
        text = self.metrics(d)
        r = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode("utf-8"),
                           capture_output=True, timeout=60)
        out = (r.stdout + r.stderr).decode("utf-8", "replace")
        self.assertEqual(r.returncode, 0, out)
        self.assertEqual(out.strip(), "")

    def test_scraped_by_prometheus(self):
        if PROMETHEUS is None:
            self.skipTest("prometheus (Debian package prometheus) is not installed")
        d = self.fed()
        tmp = tempfile.mkdtemp(prefix="pp-prom-")
        self.addCleanup(shutil.rmtree, tmp, True)
        conf = os.path.join(tmp, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: parkpulse\n    static_configs:\n"
                    "      - targets: ['127.0.0.1:%d']\n" % d.port)
        port = free_port()
        log = open(os.path.join(tmp, "prometheus.log"), "wb")
        self.addCleanup(log.close)
        p = subprocess.Popen([PROMETHEUS, "--config.file=" + conf, "--storage.tsdb.path=" + os.path.join(tmp, "data"),
                              "--web.listen-address=127.0.0.1:%d" % port],
                             stdout=log, stderr=subprocess.STDOUT, cwd=tmp)

        def stop():
            p.terminate()
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.addCleanup(stop)
        query = ('parkpulse_completion_ratio * on(park, indicator) group_left(park_name, indicator_label) '
                 'parkpulse_series_info{park="xiangtan-etdz",indicator="fixed_asset_investment"}')
        url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": query}))

        def answered():
            if p.poll() is not None:
                with open(log.name, encoding="utf-8", errors="replace") as f:
                    raise AssertionError("prometheus exited:\n" + f.read()[-3000:])
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    j = json.load(r)
            except OSError:
                return None
            return j if j.get("status") == "success" and j["data"]["result"] else None
        j = wait_for(answered, 90, "prometheus to scrape parkpulsed and answer the query")
        res = j["data"]["result"][0]
        self.assertEqual(res["metric"]["park_name"], "湘潭经开区")
        self.assertEqual(res["metric"]["indicator_label"], "固定资产投资")
        self.assertEqual(res["metric"]["job"], "parkpulse")
        self.assertAlmostEqual(float(res["value"][1]), 192.2 / 300, places=4)
        # the target is up: the whole exposition was accepted
        url = "http://127.0.0.1:%d/api/v1/query?query=up" % port
        with urllib.request.urlopen(url, timeout=5) as r:
            self.assertEqual(json.load(r)["data"]["result"][0]["value"][1], "1")
