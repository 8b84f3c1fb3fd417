"""Issue: the spine — spool → journal → RRD → pace status over HTTP.

Feeds the shared fixtures through the real spool collector of a real daemon
and checks the status JSON against the table of tests/fixtures (README of
shared/fixtures), the refused bad-rows.csv and its report, and the RRD files
with the `rrdtool` command."""
import math
import os
import signal

from harness import DaemonTest, FIXTURES

EXPECTED_2021_08 = {
    # indicator: (value, target, completion_pct, gap_pp, status)
    "fixed_asset_investment": (192.2, 300, 64.07, -2.60, "ok"),
    "fiscal_revenue": (25.6, 42, 60.95, -5.71, "warning"),
    "fdi_actual": (2690, 6000, 44.83, -21.83, "critical"),
    "domestic_capital": (89, 140, 63.57, -3.10, "ok"),
    "value_added_growth": (12.1, 10, None, 2.10, "ok"),
}


class CoreTest(DaemonTest):
    def feed_2021(self, d):
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")

    def test_status_matches_fixture_table(self):
        d = self.daemon().start()
        self.feed_2021(d)
        st = d.get_json("/api/v1/status")
        self.assertIn("generated_at", st)
        self.assertEqual([p["id"] for p in st["parks"]], ["xiangtan-etdz", "xiangtan-hitech", "liuyang-etdz"])
        park = st["parks"][0]
        self.assertEqual(park["name"], "湘潭经开区")
        by_id = {s["indicator"]: s for s in park["indicators"]}
        for ind, (value, target, comp, gap, status) in EXPECTED_2021_08.items():
            s = by_id[ind]
            self.assertEqual(s["period"], "2021-08", ind)
            self.assertAlmostEqual(s["value"], value, places=6, msg=ind)
            self.assertEqual(s["target"], target, ind)
            if comp is None:
                self.assertIsNone(s["completion_pct"], ind)
            else:
                self.assertAlmostEqual(s["completion_pct"], comp, places=2, msg=ind)
                self.assertAlmostEqual(s["pace_pct"], 66.67, places=2, msg=ind)
            self.assertAlmostEqual(s["gap_pp"], gap, places=2, msg=ind)
            self.assertEqual(s["status"], status, ind)
            self.assertEqual(s["revision"], 0)
        fai = by_id["fixed_asset_investment"]
        self.assertEqual(fai["message"],
                         "湘潭经开区 固定资产投资 1-8月完成192.2亿元，为全年目标的64.1%，低于序时进度(66.7%)2.6个百分点。")
        self.assertEqual(fai["label"], "固定资产投资")
        self.assertEqual(fai["unit"], "亿元")
        self.assertEqual(fai["kind"], "cumulative")
        self.assertAlmostEqual(fai["needed_per_month"], (300 - 192.2) / 4, places=6)
        # a computed amount is written as a person would: 26.95, not the
        # 26.950000000000003 that (300 - 192.2) / 4 is in binary
        _, _, raw = d.get("/api/v1/status")
        self.assertIn(b'"needed_per_month":26.95,', raw)
        self.assertTrue(fai["updated_at"].endswith("+08:00"))
        for key in ("park", "indicator", "label", "unit", "kind", "period", "value", "target",
                    "completion_pct", "pace_pct", "gap_pp", "status", "projected_pct",
                    "needed_per_month", "message", "updated_at", "revision"):
            self.assertIn(key, fai)
        self.assertEqual(by_id["industrial_output"]["status"], "no_target")
        # one park, same shape
        one = d.get_json("/api/v1/parks/xiangtan-etdz")
        self.assertEqual(one["id"], "xiangtan-etdz")
        self.assertEqual(len(one["indicators"]), len(park["indicators"]))

    def test_bad_rows_refused_whole_with_report(self):
        d = self.daemon().start()
        self.feed_2021(d)
        self.assertEqual(d.drop("bad-rows.csv"), "failed")
        report = open(os.path.join(d.spool, "failed", "bad-rows.csv.errors"), encoding="utf-8").read()
        lines = [l for l in report.splitlines() if l.strip()]
        self.assertEqual(len(lines), 5, report)
        for n, l in zip((3, 4, 5, 6, 7), lines):
            self.assertTrue(l.startswith("bad-rows.csv:%d:" % n), l)
        self.assertIn("did you mean 'xiangtan-etdz'", lines[0])
        self.assertIn("did you mean 'fixed_asset_investment'", lines[1])
        self.assertIn("2021-13", lines[2])
        self.assertIn("abc", lines[3])
        self.assertIn("万美元", lines[4])
        # the good row of the refused file (2021-09, 210.5) was not loaded
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["period"], "2021-08")
        pts = d.get_json("/api/v1/series/xiangtan-etdz/fixed_asset_investment")["points"]
        self.assertNotIn("2021-09", [p["period"] for p in pts])
        # the original file is kept, nothing deleted
        self.assertTrue(os.path.exists(os.path.join(d.spool, "failed", "bad-rows.csv")))

    def test_rrd_files_hold_each_month(self):
        d = self.daemon().start()
        self.feed_2021(d)
        # a day inside each month holds that month's value, first and last day too
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-02-01")[0], 41.3)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-02-28")[0], 41.3)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-03-01")[0], 66.8)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-31")[0], 192.2)
        value, pace = d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-15")
        self.assertAlmostEqual(pace, 300 * 8 / 12, places=6)
        # fdi_actual has no 2021-03 figure: NaN, not a neighbour's value
        self.assertTrue(math.isnan(d.fetch_day("xiangtan-etdz", "fdi_actual", "2021-03-15")[0]))
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fdi_actual", "2021-04-15")[0], 1130)
        # no target: the pace DS is unknown
        self.assertTrue(math.isnan(d.fetch_day("xiangtan-etdz", "industrial_output", "2021-08-15")[1]))
        # a late month rebuilds the file (a new inode) and fills the gap
        rrd = d.rrd("xiangtan-etdz", "fdi_actual")
        ino = os.stat(rrd).st_ino
        self.assertEqual(d.drop("late.csv", "park,indicator,period,value\nxiangtan-etdz,fdi_actual,2021-03,700\n".encode()), "done")
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fdi_actual", "2021-03-15")[0], 700)
        self.assertNotEqual(os.stat(rrd).st_ino, ino)
        self.assertFalse(os.path.exists(rrd + ".tmp"))
        # a new month after the last one is appended in place
        ino = os.stat(rrd).st_ino
        self.assertEqual(d.drop("sep.csv", "park,indicator,period,value\nxiangtan-etdz,fdi_actual,2021年1-9月,3000\n".encode()), "done")
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fdi_actual", "2021-09-10")[0], 3000)
        self.assertEqual(os.stat(rrd).st_ino, ino)

    def test_revision_replaces_value_and_keeps_vintages(self):
        d = self.daemon().start()
        self.feed_2021(d)
        body = "park,indicator,period,value,status\nxiangtan-etdz,fiscal_revenue,2021-08,28.5,R\n".encode()
        self.assertEqual(d.drop("rev.csv", body), "done")
        s = d.series("xiangtan-etdz", "fiscal_revenue")
        self.assertEqual(s["value"], 28.5)
        self.assertEqual(s["revision"], 1)
        self.assertEqual(s["status"], "ok")  # 67.86% of 42 against 66.67%
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fiscal_revenue", "2021-08-20")[0], 28.5)
        # the same file again changes nothing
        self.assertEqual(d.drop("rev.csv", body), "done")
        self.assertEqual(d.series("xiangtan-etdz", "fiscal_revenue")["revision"], 1)
        self.assertTrue(os.path.exists(os.path.join(d.spool, "done", "rev.csv.1")))

    def test_series_endpoint_and_errors(self):
        d = self.daemon().start()
        self.feed_2021(d)
        s = d.get_json("/api/v1/series/xiangtan-etdz/fixed_asset_investment")
        self.assertEqual(s["park"], "xiangtan-etdz")
        self.assertEqual(s["indicator"], "fixed_asset_investment")
        self.assertEqual(s["unit"], "亿元")
        self.assertEqual([p["period"] for p in s["points"]],
                         ["2021-%02d" % m for m in range(2, 9)])
        self.assertAlmostEqual(s["points"][-1]["pace"], 200.0)
        s = d.get_json("/api/v1/series/xiangtan-etdz/fixed_asset_investment?from=2021-04&to=2021-06")
        self.assertEqual([p["period"] for p in s["points"]], ["2021-04", "2021-05", "2021-06"])
        self.assertIsNone(d.get_json("/api/v1/series/xiangtan-etdz/industrial_output")["points"][0]["pace"])
        d.get_json("/api/v1/series/xiangtan-etdz/fixed_asset_investment?from=2021-13", expect=400)
        d.get_json("/api/v1/parks/nowhere", expect=404)
        d.get_json("/api/v1/parks/Bad..Id", expect=400)
        d.get_json("/api/v1/series/xiangtan-etdz/nothing", expect=404)
        d.get_json("/api/v1/nothing", expect=404)
        status, headers, _ = d.request("/api/v1/status", method="DELETE")
        self.assertEqual(status, 405)
        # ETag and 304
        status, headers, body = d.get("/api/v1/status")
        etag = headers.get("ETag")
        self.assertTrue(etag)
        status, _, _ = d.get("/api/v1/status", headers={"If-None-Match": etag})
        self.assertEqual(status, 304)

    def test_wide_table_and_chinese_layouts(self):
        d = self.daemon(now="2024-12-25T10:00:00+08:00").start()
        self.assertEqual(d.drop("wide-2024.csv"), "done")
        s = d.series("xiangtan-etdz", "value_added_growth")
        self.assertEqual((s["period"], s["value"]), ("2024-11", 33.6))
        s = d.series("xiangtan-etdz", "key_project_completion")
        self.assertEqual((s["period"], s["value"], s["status"]), ("2024-12", 118.85, "ok"))
        self.assertAlmostEqual(s["gap_pp"], 18.85)
        s = d.series("xiangtan-hitech", "projects_signed")
        self.assertEqual((s["period"], s["value"]), ("2024-11", 26))
        s = d.series("liuyang-etdz", "projects_signed")
        self.assertEqual((s["period"], s["value"]), ("2023-12", 66))

    def test_gb18030_file_is_read(self):
        d = self.daemon().start()
        text = "园区,指标,期间,数值,单位\nxiangtan-etdz,固定资产投资,2021年1-8月,\"1,922,000\",万元\n"
        self.assertEqual(d.drop("gbk.csv", text.encode("gb18030")), "done")
        s = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertAlmostEqual(s["value"], 192.2)
        self.assertEqual(s["period"], "2021-08")

    def test_garbage_never_crashes_or_half_loads(self):
        d = self.daemon().start()
        self.feed_2021(d)
        cases = {
            "binary.csv": bytes(range(256)) * 64,
            "empty.csv": b"",
            "header-only.csv": b"park,indicator,period,value\n",
            "long.csv": b"park,indicator,period,value\n" + b"x" * 200000 + b"\n",
            "quotes.csv": b'park,indicator,period,value\n"xiangtan-etdz,fixed_asset_investment,2021-09,1\n',
            "mixed.csv": "park,indicator,period,value\nxiangtan-etdz,fixed_asset_investment,2021-09,250\nxiangtan-etdz,fixed_asset_investment,2021-10,oops\n".encode(),
        }
        for name, data in cases.items():
            where = d.drop(name, data)
            self.assertIn(where, ("done", "failed"), name)
            self.assertTrue(d.healthy())
        self.assertEqual(d.drop("mixed.csv", cases["mixed.csv"]), "failed")
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["period"], "2021-08")


class DurabilityTest(DaemonTest):
    def test_sigkill_after_done_loses_nothing(self):
        d = self.daemon().start()
        d.drop("targets-2021.csv")
        d.drop("xiangtan-etdz-2021.csv")
        before = d.get_json("/api/v1/status")
        d.stop(signal.SIGKILL)
        # the RRD files go missing too: the restart rebuilds them from the journal
        os.remove(d.rrd("xiangtan-etdz", "fiscal_revenue"))
        d.start()
        after = d.get_json("/api/v1/status")
        strip = lambda st: [[{k: v for k, v in s.items()} for s in p["indicators"]] for p in st["parks"]]
        self.assertEqual(strip(before), strip(after))
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fiscal_revenue", "2021-05-15")[0], 16.2)
        self.assertEqual(d.stop(), 0)

    def test_clean_restart_and_rebuild(self):
        d = self.daemon().start()
        d.drop("targets-2021.csv")
        d.drop("xiangtan-etdz-2021.csv")
        self.assertEqual(d.stop(), 0)
        os.remove(d.rrd("xiangtan-etdz", "fixed_asset_investment"))
        import subprocess
        from harness import DAEMON
        r = subprocess.run([DAEMON, "-c", d.conf, "--rebuild"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-07-15")[0], 166.5)
        d.start()
        self.assertEqual(d.series("xiangtan-etdz", "domestic_capital")["value"], 89)
        self.assertEqual(d.stop(), 0)


class RrdFullDiskTest(DaemonTest):
    """Issue 10, defects 3 and 11: state_dir/rrd on a small tmpfs that fills up.
    Figures are still accepted (the journal is elsewhere); an RRD file that
    cannot be written is written again later, and the clean-stop marker is
    written only when every file is, so a restart never trusts a stale RRD."""

    def small_rrd_fs(self, d, size="2m"):
        import subprocess
        import shutil
        rrd = os.path.join(d.state, "rrd")
        os.makedirs(rrd)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size + ",mode=0755", "tmpfs", rrd],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs on state_dir/rrd (%s)" % r.stderr.strip())

        def unmount():
            subprocess.run(["umount", "-l", rrd], capture_output=True)
            shutil.rmtree(d.dir, ignore_errors=True)
        self.addCleanup(unmount)
        return rrd

    def fill(self, rrd):
        """Fills the file system; returns the filler's path."""
        path = os.path.join(rrd, "filler")
        with open(path, "wb", buffering=0) as f:
            chunk = b"\0" * 4096
            try:
                while True:
                    f.write(chunk)
            except OSError:
                pass
        return path

    def started_with_full_rrd(self):
        """A started daemon whose rrd/ file system is full: (daemon, rrd/, the filler's path)."""
        d = self.daemon()
        rrd = self.small_rrd_fs(d)
        d.start()
        return d, rrd, self.fill(rrd)

    def test_failed_rrd_writes_are_retried_before_the_marker(self):
        d, rrd, filler = self.started_with_full_rrd()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")   # journaled all the same
        self.assertFalse(os.path.exists(d.rrd("xiangtan-etdz", "fixed_asset_investment")))

        # space comes back; a clean stop writes the files before its marker
        os.remove(filler)
        self.assertEqual(d.stop(), 0)
        self.assertTrue(os.path.exists(os.path.join(rrd, ".clean")))
        d.start()
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-02-15")[0], 41.3)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-15")[0], 192.2)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fiscal_revenue", "2021-05-15")[0], 16.2)

        # full again: a revision's rebuild fails, the stop writes no marker ...
        filler = self.fill(rrd)
        body = "park,indicator,period,value,status\nxiangtan-etdz,fixed_asset_investment,2021-08,200.5,R\n"
        self.assertEqual(d.drop("rev.csv", body.encode()), "done")
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["value"], 200.5)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-15")[0], 192.2)
        self.assertEqual(d.stop(), 0)
        self.assertFalse(os.path.exists(os.path.join(rrd, ".clean")))
        self.assertIn("no clean-stop marker", d.logtext())
        # ... so the next start rebuilds the files from the journal
        os.remove(filler)
        d.start()
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-15")[0], 200.5)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-02-15")[0], 41.3)
        self.assertEqual(d.stop(), 0)

    def test_full_disk_error_names_errno(self):
        # defect 11: the system's reason, not "unknown librrd error"
        d = self.started_with_full_rrd()[0]
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        d.wait_rrd()  # the writes follow the acknowledgement
        log = d.logtext()
        self.assertIn("fiscal_revenue.rrd.tmp: rrd_create: ", log)
        self.assertIn("No space left on device", log)
        self.assertNotIn("unknown librrd error", log)
        d.stop()

    def test_dirty_file_written_again_while_running(self):
        d, rrd, filler = self.started_with_full_rrd()
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertFalse(os.path.exists(d.rrd("xiangtan-etdz", "fiscal_revenue")))
        os.remove(filler)
        # written again by the main loop's retry, with no new figure and no stop
        from harness import wait_for
        wait_for(lambda: os.path.exists(d.rrd("xiangtan-etdz", "fiscal_revenue")), 20,
                 "the failed RRD file to be written again")
        wait_for(lambda: "written now" in d.logtext(), 20, "the retry to finish")
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fiscal_revenue", "2021-05-15")[0], 16.2)
        self.assertEqual(d.stop(), 0)
