"""Issue: SIGHUP reloads the configuration — a broken file is refused with
its line number and the running configuration stays; a good one is applied,
collectors added by it start and those removed stop."""
import os
import signal
import time

from harness import DaemonTest, wait_for


class ReloadTest(DaemonTest):
    def test_broken_then_good_reload(self):
        d = self.daemon().start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        with open(d.conf, encoding="utf-8") as f:
            original = f.read()
        # 1. a broken file: refused, with its line; the old configuration stays
        with open(d.conf, "a", encoding="utf-8") as f:
            f.write('park "new-park" { name = "新园区" colour = "red" }\n')
        bad_line = original.count("\n") + 1
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reload refused" in d.logtext(), 10, "the refusal in the log")
        self.assertIn("%s:%d:" % (d.conf, bad_line), d.logtext())
        self.assertEqual(len(d.get_json("/api/v1/status")["parks"]), 3)
        self.assertEqual(d.drop("a.csv", b"park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,25.6\n"), "done")
        # 2. a good file: a new park and a second spool collector; the first spool removed
        spool2 = os.path.join(d.dir, "spool2")
        good = original.replace('collector "spool"', 'collector "spool2"').replace('path = "%s"' % d.spool, 'path = "%s"' % spool2)
        good += 'park "new-park" { name = "新园区" }\n'
        with open(d.conf, "w", encoding="utf-8") as f:
            f.write(good)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "configuration reloaded" in d.logtext(), 10, "the reload in the log")
        parks = d.get_json("/api/v1/status")["parks"]
        self.assertEqual([p["id"] for p in parks][-1], "new-park")
        d.spool = spool2
        self.assertEqual(d.drop("n.csv", "park,indicator,period,value\nnew-park,fixed_asset_investment,2021-08,5\n".encode()), "done")
        self.assertEqual(d.series("new-park", "fixed_asset_investment")["value"], 5)
        # the removed collector no longer takes files
        old_spool = os.path.join(d.dir, "spool")
        with open(os.path.join(old_spool, "late.csv"), "wb") as f:
            f.write(b"park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,1\n")
        time.sleep(1.5)
        self.assertTrue(os.path.exists(os.path.join(old_spool, "late.csv")))
        self.assertEqual(d.stop(), 0)
