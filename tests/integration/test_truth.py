"""Issue 13: statuses and alerts that tell the truth — every transition
publishes, overdue beside the status, parks that never report, future periods
refused, retraction, warnings about implausible figures. The real daemon, a
fixed clock (--now), loopback only."""
import json
import os
import subprocess
import urllib.parse

from harness import CLIENT, DaemonTest, wait_for

TOKEN = "truth-token-0123456789"
NOW_OCT_25 = "2021-10-25T10:00:00+08:00"  # past the due day: September is due


class TruthTest(DaemonTest):
    def post(self, d, body):
        st, _, ans = d.request("/api/v1/observations", "POST", body.encode(),
                               {"Content-Type": "text/csv", "Authorization": "Bearer " + TOKEN})
        return st, json.loads(ans.decode("utf-8"))

    def fiscal(self, d, value):
        st, ans = self.post(d, "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,%s\n"
                            % value)
        self.assertEqual(st, 202, ans)

    def alerts_of(self, d, indicator):
        """The status alerts of a series (not its overdue/received ones)."""
        return [a for a in d.get_json("/api/v1/alerts?since=0")["alerts"]
                if a["park"] == "xiangtan-etdz" and a["indicator"] == indicator
                and a["status"] not in ("overdue", "received")]

    # 1. a revision back and forth publishes every transition, with distinct ids
    def test_revision_back_and_forth_publishes_three_alerts(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.fiscal(d, "25.6")   # warning (60.95% against 66.67%)
        self.fiscal(d, "28.5")   # ok: a recovery
        self.fiscal(d, "24.0")   # warning again
        self.assertEqual(d.series("xiangtan-etdz", "fiscal_revenue")["status"], "warning")
        alerts = self.alerts_of(d, "fiscal_revenue")
        ids = [a["id"] for a in alerts]
        self.assertEqual(ids, ["xiangtan-etdz/fiscal_revenue/2021-08/warning",
                               "xiangtan-etdz/fiscal_revenue/2021-08/ok",
                               "xiangtan-etdz/fiscal_revenue/2021-08/warning/2"], alerts)
        self.assertEqual([a["previous"] for a in alerts], ["none", "warning", "ok"])
        # the snapshot shows the current state, not the stale recovery
        active = [a for a in d.get_json("/api/v1/alerts")["alerts"] if a["indicator"] == "fiscal_revenue"]
        self.assertEqual([a["id"] for a in active], ["xiangtan-etdz/fiscal_revenue/2021-08/warning/2"])
        # ids stay published at most once, also across a restart
        self.assertEqual(d.stop(), 0)
        d.start()
        self.fiscal(d, "28.5")
        self.fiscal(d, "24.0")
        ids = [a["id"] for a in self.alerts_of(d, "fiscal_revenue")]
        self.assertEqual(ids[3:], ["xiangtan-etdz/fiscal_revenue/2021-08/ok/2",
                                   "xiangtan-etdz/fiscal_revenue/2021-08/warning/3"])
        self.assertEqual(len(ids), len(set(ids)))

    # 2. overdue is beside the status, never instead of it
    def test_past_due_day_keeps_critical_and_adds_overdue(self):
        d = self.daemon(now=NOW_OCT_25).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        fdi = d.series("xiangtan-etdz", "fdi_actual")
        self.assertEqual(fdi["status"], "critical")
        self.assertEqual(fdi["gap_pp"], -21.83)
        self.assertIs(fdi["overdue"], True)
        self.assertEqual(fdi["overdue_period"], "2021-09")
        st = d.get_json("/api/v1/status")
        self.assertEqual(st["due_period"], "2021-09")
        statuses = [s["status"] for p in st["parks"] for s in p["indicators"]]
        self.assertNotIn("stale", statuses)
        self.assertIn("critical", statuses)
        # the client's table shows both
        r = subprocess.run([CLIENT, "--url", d.url, "status", "--park", "xiangtan-etdz"],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        row = [l for l in r.stdout.splitlines() if "实际利用外资" in l][0]
        self.assertTrue(row.endswith("严重/逾期"), row)
        alerts = d.get_json("/api/v1/alerts")["alerts"]
        self.assertIn("xiangtan-etdz/fdi_actual/2021-09/overdue", [a["id"] for a in alerts])
        self.assertIn("xiangtan-etdz/fdi_actual/2021-08/critical", [a["id"] for a in alerts])
        # the late figure arrives: "received", and overdue ends
        self.assertEqual(d.drop("late.csv", "park,indicator,period,value\n"
                                "xiangtan-etdz,fdi_actual,2021-09,3000\n".encode()), "done")
        fdi = d.series("xiangtan-etdz", "fdi_actual")
        self.assertIs(fdi["overdue"], False)
        since = d.get_json("/api/v1/alerts?since=0")["alerts"]
        self.assertIn("xiangtan-etdz/fdi_actual/2021-09/received", [a["id"] for a in since])

    # 3. a park that never reports is in the status, the ranking and the 通报
    def test_never_reporting_park_is_no_data_and_overdue(self):
        d = self.daemon().start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("demo-targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        s = d.series("xiangtan-hitech", "fixed_asset_investment")
        self.assertIsNotNone(s, "a park with a target and no figure is listed")
        self.assertEqual(s["status"], "no_data")
        self.assertIs(s["overdue"], True)
        self.assertEqual(s["overdue_period"], "2021-07")
        self.assertIsNone(s["value"])
        rk = d.get_json("/api/v1/ranking/fixed_asset_investment?period=2021-07")
        hitech = [p for p in rk["parks"] if p["park"] == "xiangtan-hitech"]
        self.assertEqual(len(hitech), 1, rk)
        self.assertIsNone(hitech[0]["rank"])
        self.assertEqual(hitech[0]["status"], "no_data")
        self.assertIs(hitech[0]["overdue"], True)
        self.assertEqual(rk["parks"][0]["park"], "xiangtan-etdz")
        self.assertEqual(rk["parks"][0]["rank"], 1)
        st, _, body = d.get("/api/v1/report?period=2021-07&bom=0")
        self.assertEqual(st, 200)
        text = body.decode("utf-8")
        self.assertIn("xiangtan-hitech,湘潭高新区,fixed_asset_investment,固定资产投资,2021-07,,亿元,260,", text)
        self.assertIn("未报送", text)

    # 4. a period after the current month is a bad row
    def test_future_period_is_refused(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        st, ans = self.post(d, "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2102-08,3\n")
        self.assertEqual(st, 400, ans)
        self.assertIn("期间2102-08晚于当前月份（2021-09）", ans["errors"][0])
        self.assertTrue(ans["errors"][0].startswith("http:2: "), ans)
        self.assertEqual(d.drop("future.csv", "park,indicator,period,value\n"
                                "xiangtan-etdz,fiscal_revenue,2021-08,25.6\n"
                                "xiangtan-etdz,fiscal_revenue,2102-08,3\n".encode()), "failed")
        with open(os.path.join(d.spool, "failed", "future.csv.errors"), encoding="utf-8") as f:
            self.assertIn("future.csv:3: ", f.read())
        self.assertEqual(d.series("xiangtan-etdz", "fiscal_revenue")["period"], "2021-08")

    # 5. retraction: status, alerts, RRD and history follow, and survive a restart
    def test_retraction(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        path = "/api/v1/observations/xiangtan-etdz/fiscal_revenue/2021-08?reason=" + \
            urllib.parse.quote("录入错误，待统计局核实")
        self.assertEqual(d.request(path, "DELETE")[0], 401)
        st, _, body = d.request(path.replace("2021-08", "2021-09"), "DELETE",
                                headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(st, 404, body)
        st, _, body = d.request(path, "DELETE", headers={"Authorization": "Bearer " + TOKEN})
        self.assertEqual(st, 200, body)
        ans = json.loads(body)
        self.assertEqual(ans["retraction"]["status"], "W")
        self.assertEqual(ans["retraction"]["reason"], "录入错误，待统计局核实")
        self.assertEqual(ans["retraction"]["source"], "http 127.0.0.1")

        def check():
            s = d.series("xiangtan-etdz", "fiscal_revenue")
            self.assertEqual(s["period"], "2021-07")  # the latest figure is July's now
            self.assertEqual(s["value"], 22.4)
            hist = d.get_json("/api/v1/history/xiangtan-etdz/fiscal_revenue/2021-08")["vintages"]
            self.assertEqual([v["status"] for v in hist], ["A", "W"])
            self.assertEqual(hist[0]["value"], 25.6)
            self.assertIsNone(hist[1]["value"])
            self.assertEqual(hist[1]["reason"], "录入错误，待统计局核实")
            self.assertEqual(hist[1]["source"], "http 127.0.0.1")
            self.assertIn("received_at", hist[1])
            value, _ = d.fetch_day("xiangtan-etdz", "fiscal_revenue", "2021-08-15")
            self.assertNotEqual(value, value, "the RRD month is unknown (NaN) after the retraction")
            self.assertEqual(d.fetch_day("xiangtan-etdz", "fiscal_revenue", "2021-07-15")[0], 22.4)
        check()
        # the series is judged on July now (53.33% vs 58.33%: -5.0, a warning):
        # a new alert, and the snapshot no longer lists the withdrawn August
        alerts = self.alerts_of(d, "fiscal_revenue")
        self.assertEqual(alerts[-1]["id"], "xiangtan-etdz/fiscal_revenue/2021-07/warning", alerts)
        active = [a["id"] for a in d.get_json("/api/v1/alerts")["alerts"] if a["indicator"] == "fiscal_revenue"]
        self.assertEqual(active, ["xiangtan-etdz/fiscal_revenue/2021-07/warning"])
        self.assertEqual(d.stop(), 0)
        d.start()
        check()
        # parkpulse retract, and retracting again is 65 (no figure)
        cmd = [CLIENT, "--url", d.url, "--token-file", d.token_file, "retract", "xiangtan-etdz",
               "fiscal_revenue", "2021-07", "--reason", "重复报送"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("retracted", r.stdout)
        self.assertEqual(d.series("xiangtan-etdz", "fiscal_revenue")["period"], "2021-06")
        r = subprocess.run(cmd, capture_output=True, text=True)
        self.assertEqual(r.returncode, 65, r.stderr)
        # a new figure after a retraction is a vintage of its own
        self.fiscal(d, "26.0")
        hist = d.get_json("/api/v1/history/xiangtan-etdz/fiscal_revenue/2021-08")["vintages"]
        self.assertEqual([v["status"] for v in hist], ["A", "W", "A"])

    # 6. a year-to-date figure below the month before: accepted, with a warning
    def test_cumulative_below_previous_month_warns(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        st, ans = self.post(d, "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-07,166.5\n")
        self.assertEqual((st, ans["warnings"]), (202, []))
        st, ans = self.post(d, "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-08,150\n")
        self.assertEqual(st, 202, ans)
        self.assertEqual(ans["accepted"], 1)
        self.assertEqual(len(ans["warnings"]), 1, ans)
        self.assertIn("累计值150亿元低于2021-07的166.5亿元", ans["warnings"][0])
        s = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertEqual(s["value"], 150)
        self.assertIn("低于7月的166.5亿元", s["note"])
        # the spool: done/NAME.warnings beside the file
        self.assertEqual(d.drop("down.csv", "park,indicator,period,value\n"
                                "xiangtan-etdz,fiscal_revenue,2021-07,22.4\n"
                                "xiangtan-etdz,fiscal_revenue,2021-08,20\n".encode()), "done")
        warn = os.path.join(d.spool, "done", "down.csv.warnings")
        wait_for(lambda: os.path.exists(warn), 10, "done/down.csv.warnings")  # written after the move
        with open(warn, encoding="utf-8") as f:
            self.assertIn("累计值20亿元低于2021-07的22.4亿元", f.read())
        self.assertFalse(os.path.exists(os.path.join(d.spool, "done", "xiangtan-etdz-2021.csv.warnings")))

    # the subscribe client: wording, --json untouched, unknown park
    def test_subscribe_fixes(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.fiscal(d, "25.6")
        self.fiscal(d, "28.5")
        self.fiscal(d, "24.0")
        base = [CLIENT, "--url", d.url, "subscribe", "--endpoint", d.bus]
        r = subprocess.run(base + ["--park", "nosuchpark", "--count", "1"], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 65, r.stderr)
        # the snapshot printed, then interrupted: --count 1 waits for a live one
        p = subprocess.Popen(base + ["--json", "--count", "1"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        import time
        time.sleep(1.5)
        self.fiscal(d, "28.5")
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn('"value":24,', out)
        self.assertNotIn("000000000", out)
        self.assertIn('"value":28.5,', out)
        p = subprocess.Popen(base + ["--count", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
        time.sleep(1.5)
        self.fiscal(d, "24.0")
        out, err = p.communicate(timeout=20)
        self.assertEqual(p.returncode, 0, err)
        last = out.splitlines()[-1]
        self.assertIn("[预警]", last)
        self.assertIn("（此前：正常）", last)
        self.assertNotIn("（此前：恢复正常）", out)
