"""Issue: `parkpulse subscribe` — snapshot, live alerts, gap filling."""
import json
import os
import subprocess
import time

from harness import CLIENT, DaemonTest, wait_for


class SubscribeTest(DaemonTest):
    def start_sub(self, d, *args):
        out = open(os.path.join(d.dir, "sub.out"), "w+b")
        err = open(os.path.join(d.dir, "sub.err"), "w+b")
        p = subprocess.Popen([CLIENT, "--url", d.url, "subscribe", "--endpoint", d.bus] + list(args),
                             stdout=out, stderr=err)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(), out.close(), err.close()))
        return p, out, err

    def lines(self, f):
        f.seek(0)
        return [l for l in f.read().decode("utf-8").splitlines() if l]

    def test_live_alerts_json_and_text(self):
        d = self.daemon().start()
        p, out, err = self.start_sub(d, "--json", "--count", "2")
        wait_for(lambda: os.path.getsize(err.name) >= 0 and p.poll() is None, 5, "subscriber")
        time.sleep(1.5)  # subscribed (the bus heartbeat is 1 s)
        # figures before targets: a target alone is no_data and overdue, with
        # alerts of its own (issue 13) that --count 2 would stop at
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(p.wait(15), 0)
        alerts = [json.loads(l) for l in self.lines(out)]
        self.assertEqual(sorted(a["seq"] for a in alerts), [1, 2])
        self.assertEqual({a["indicator"] for a in alerts}, {"fiscal_revenue", "fdi_actual"})
        # text mode with a park filter, after the fact: nothing new, then a recovery
        p, out, err = self.start_sub(d, "--park", "xiangtan-etdz", "--count", "1")
        time.sleep(1.5)
        body = "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,28.5\n".encode()
        self.assertEqual(d.drop("rev.csv", body), "done")
        self.assertEqual(p.wait(15), 0)
        lines = self.lines(out)
        self.assertEqual(len(lines), 3, lines)  # the two active alerts of the snapshot, then #3
        line = lines[-1]
        self.assertIn("#3", line)
        self.assertIn("恢复正常", line)
        self.assertIn("湘潭经开区 财税收入", line)

    def test_gap_is_filled_from_http(self):
        d = self.daemon().start()
        # the figures first (quiet: no target yet), the targets after the restart
        # below: a target alone would be no_data and overdue, with alerts of its
        # own (issue 13) that the seqs below do not count
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        # the subscriber starts after seq 0; the daemon is restarted on another bus port
        # while the subscriber still listens on the old one, so alerts 1-2 are missed
        p, out, err = self.start_sub(d, "--json", "--count", "3")
        time.sleep(1.0)
        self.assertEqual(d.stop(), 0)
        d.start()  # same ports: the subscriber reconnects
        d.proc.send_signal(0)
        # raise alerts while the subscriber may not have reconnected yet
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        body = "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,28.5\n".encode()
        self.assertEqual(d.drop("rev.csv", body), "done")
        self.assertEqual(p.wait(20), 0)
        seqs = [json.loads(l)["seq"] for l in self.lines(out)]
        self.assertEqual(sorted(seqs), [1, 2, 3])
