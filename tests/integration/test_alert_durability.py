"""Issue 10: alerts and the configuration in force. After a SIGHUP reload
removes a park, every route treats it alike: /api/v1/parks/<park> is 404, and
its alerts are listed neither as active, nor by ?since=, nor on the SSE stream;
seq is not renumbered. When the park comes back, so do its alerts.

(The durability of seq and ids against a damaged journal line and the retry of
an alert that could not be journaled are tested in tests/check_alert.c.)"""
import http.client
import signal

from harness import DaemonTest, sse_events, wait_for

PARK_B = "xiangtan-hitech"


class AlertReloadTest(DaemonTest):
    def reload(self, d, conf):
        with open(d.conf, "w", encoding="utf-8") as f:
            f.write(conf)
        n = d.logtext().count("configuration reloaded")
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: d.logtext().count("configuration reloaded") > n, 10, "the reload in the log")

    def test_reload_removing_a_park_hides_its_alerts(self):
        d = self.daemon().start()
        # figures before targets: a target alone is no_data and overdue, with
        # alerts of its own (issue 13) that the seqs below do not count
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.drop("targets-2021.csv"), "done")  # alerts 1, 2 of the first park
        wait_for(lambda: d.get_json("/api/v1/alerts")["seq"] == 2, 10, "two alerts")
        body = ("park,indicator,period,value\n%s,fixed_asset_investment,2021-08,50\n" % PARK_B).encode()
        self.assertEqual(d.drop("b.csv", body), "done")
        body = ("园区,指标,年度,目标\n%s,固定资产投资,2021,300\n" % PARK_B).encode()
        self.assertEqual(d.drop("b-targets.csv", body), "done")  # 50 of 300 by August: critical, seq 3
        wait_for(lambda: d.get_json("/api/v1/alerts")["seq"] == 3, 10, "the alert of %s" % PARK_B)
        snap = d.get_json("/api/v1/alerts")
        self.assertIn(PARK_B, [a["park"] for a in snap["alerts"]])

        with open(d.conf, encoding="utf-8") as f:
            original = f.read()
        without_b = "".join(l for l in original.splitlines(True) if not l.startswith('park "%s"' % PARK_B))
        self.assertNotEqual(without_b, original)
        self.reload(d, without_b)

        status, _, _ = d.get("/api/v1/parks/" + PARK_B)
        self.assertEqual(status, 404)
        snap = d.get_json("/api/v1/alerts")
        self.assertEqual(snap["seq"], 3)
        self.assertEqual(sorted(a["seq"] for a in snap["alerts"]), [1, 2])
        self.assertNotIn(PARK_B, [a["park"] for a in snap["alerts"]])
        since = d.get_json("/api/v1/alerts?since=0")
        self.assertEqual(since["seq"], 3)
        self.assertEqual([a["seq"] for a in since["alerts"]], [1, 2])
        self.assertEqual(d.get_json("/api/v1/alerts?since=2")["alerts"], [])

        # the SSE replay from 0: the first park's 1 and 2, then the next live
        # alert (4), never the removed park's 3
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        conn.request("GET", "/api/v1/events", headers={"Last-Event-ID": "0"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertEqual([e["id"] for e in sse_events(r, 2)], ["1", "2"])
        body = "park,indicator,period,value,status\nxiangtan-etdz,fiscal_revenue,2021-08,28.5,R\n".encode()
        self.assertEqual(d.drop("rev.csv", body), "done")  # a recovery: seq 4
        ev = sse_events(r, 1)[0]
        self.assertEqual(ev["id"], "4")
        conn.close()

        # the park comes back: its alert is listed again, nothing was renumbered
        self.reload(d, original)
        self.assertEqual(d.get("/api/v1/parks/" + PARK_B)[0], 200)
        snap = d.get_json("/api/v1/alerts")
        self.assertEqual(snap["seq"], 4)
        self.assertEqual([(a["park"], a["indicator"]) for a in snap["alerts"]],
                         [("xiangtan-etdz", "fdi_actual"), (PARK_B, "fixed_asset_investment")])
        self.assertEqual(snap["alerts"][1]["seq"], 3)
        self.assertEqual(d.stop(), 0)
