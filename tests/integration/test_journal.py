"""Issue 10: the journal's damage and the daemon's stop, with the real daemon.

- A journal cut to 0 bytes or inside its header, in a state directory that
  was used before, is refused at start with a message naming the damage and
  `parkpulsed --recover`; --recover moves it aside and the daemon starts.
- SIGTERM while a ~20 MB spool file is being ingested: the daemon exits
  within the 5 s of parkpulsed(8), the file stays in the spool, and the next
  start ingests it whole.
- A spool file re-read after it was journaled (it could not be moved to
  done/) does not put its old value back over a newer POST.
"""
import glob
import os
import tempfile
import time

from harness import DaemonTest, wait_for

INDICATORS = ["industrial_output", "above_scale_output", "value_added_growth",
              "fixed_asset_investment", "industrial_investment", "tax_revenue",
              "fiscal_revenue", "fdi_actual", "domestic_capital", "trade_total",
              "high_tech_revenue", "key_project_completion", "projects_signed",
              "rank_province"]


def wait_exit(d, timeout=20):
    """The exit status of a daemon that stops on its own."""
    try:
        rc = d.proc.wait(timeout)
    except Exception:
        d.proc.kill()
        d.proc.wait()
        raise AssertionError("daemon did not exit:\n" + d.logtext()[-3000:])
    d.log.close()
    d.proc = None
    return rc


class JournalDamageTest(DaemonTest):
    def feed(self, d):
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")

    def check_refused_then_recovered(self, cut):
        d = self.daemon().start()
        self.feed(d)
        self.assertEqual(d.stop(), 0)
        journal = os.path.join(d.state, "journal", "journal.log")
        self.assertGreater(os.path.getsize(journal), 1000)
        os.truncate(journal, cut)

        d.start(wait=False)
        rc = wait_exit(d)
        log = d.logtext()
        self.assertEqual(rc, 65, log[-2000:])  # EX_DATAERR
        self.assertIn("journal.log", log)
        self.assertIn("parkpulsed --recover", log)
        self.assertEqual(os.path.getsize(journal), cut)  # left as it was

        d.start(wait=False, args=["--recover"])
        rc = wait_exit(d)
        log = d.logtext()
        self.assertEqual(rc, 0, log[-2000:])
        aside = glob.glob(journal + ".damaged-*")
        self.assertEqual(len(aside), 1, log[-2000:])
        self.assertEqual(os.path.getsize(aside[0]), cut)
        # the old RRD files are kept for rrdtool, out of the daemon's way
        self.assertTrue(glob.glob(os.path.join(d.state, "rrd.damaged-*", "xiangtan-etdz", "*.rrd")))

        d.start()
        self.assertIsNone((d.series("xiangtan-etdz", "fixed_asset_investment") or {}).get("value"))
        # figures can be delivered again
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["value"], 192.2)
        self.assertEqual(d.stop(), 0)

    def test_journal_cut_to_zero_is_refused(self):
        self.check_refused_then_recovered(0)

    def test_journal_cut_inside_header_is_refused(self):
        self.check_refused_then_recovered(10)

    def test_new_state_dir_starts_empty(self):
        d = self.daemon().start()
        self.assertIsNone((d.series("xiangtan-etdz", "fixed_asset_investment") or {}).get("value"))
        self.assertEqual(d.stop(), 0)
        # started once, never fed: no earlier use, an emptied journal is no loss
        os.truncate(os.path.join(d.state, "journal", "journal.log"), 0)
        d.start()
        self.assertEqual(d.stop(), 0)


class StopTest(DaemonTest):
    def test_sigterm_during_large_file(self):
        with tempfile.NamedTemporaryFile("w", suffix=".conf", encoding="utf-8",
                                         delete=False) as f:
            for i in range(10):
                f.write('park "p%02d" { name = "园区%02d" }\n' % (i, i))
        self.addCleanup(os.unlink, f.name)
        # a clock after the generated months (a later month is a bad row since issue 13)
        d2 = self.daemon(parks_conf=f.name, now="2100-01-15T10:00:00+08:00")
        lines = ["park,indicator,period,value,source,note\n"]
        for p in range(10):
            for ind in INDICATORS:
                for y in range(1990, 2100):
                    for m in range(1, 13):
                        lines.append("p%02d,%s,%d-%02d,%d.5,gen,%s\n"
                                     % (p, ind, y, m, (y * 12 + m) % 997, "n" * 70))
        data = "".join(lines).encode()
        self.assertGreater(len(data), 19 << 20)
        d2.start()
        d2.drop("big.csv", data, wait=False)
        wait_for(lambda: "big.csv: reading" in d2.logtext(), 30, "the ingest of big.csv to start")
        t0 = time.monotonic()
        rc = d2.stop(timeout=5)
        elapsed = time.monotonic() - t0
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 5)
        log = d2.logtext()
        # stopped amid the file (reading 20 MB takes far longer than a signal
        # takes to arrive): not acknowledged, nothing of it taken, still in the spool
        self.assertNotIn("big.csv: 184800 figure(s)", log)
        self.assertIn("big.csv: not taken: stopping", log)
        self.assertTrue(os.path.exists(os.path.join(d2.spool, "big.csv")), log[-2000:])
        self.assertFalse(os.path.exists(os.path.join(d2.spool, "done", "big.csv")))
        d2.start()
        wait_for(lambda: os.path.exists(os.path.join(d2.spool, "done", "big.csv")), 120,
                 "big.csv to be ingested after the restart")
        s = d2.series("p09", "rank_province")
        self.assertEqual(s["period"], "2099-12")
        self.assertEqual(d2.stop(timeout=10), 0)


class DeliveryTest(DaemonTest):
    def test_reread_file_does_not_revert_a_post(self):
        d = self.daemon(token="s3cret").start()
        # a name one byte short of NAME_MAX: done/ cannot hold it with a ".1"
        name = ("x" * 251) + ".csv"
        body = b"park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,10\n"
        os.makedirs(os.path.join(d.spool, "done"), exist_ok=True)
        with open(os.path.join(d.spool, "done", name), "wb") as f:
            f.write(b"an earlier delivery of that name\n")
        tmp = os.path.join(d.spool, "t.tmp")
        with open(tmp, "wb") as f:
            f.write(body)
        os.rename(tmp, os.path.join(d.spool, name))
        wait_for(lambda: (d.series("xiangtan-etdz", "fiscal_revenue") or {}).get("value") == 10,
                 15, "value 10")
        status, _, out = d.request(
            "/api/v1/observations", "POST",
            b"park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,20\n",
            {"Authorization": "Bearer s3cret", "Content-Type": "text/csv"})
        self.assertEqual(status, 202, out)
        # several rescans (rescan = 1 s) read the file again if it is still there
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            self.assertEqual(d.series("xiangtan-etdz", "fiscal_revenue")["value"], 20)
            time.sleep(0.2)
        self.assertEqual(d.stop(), 0)
