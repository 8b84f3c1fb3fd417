"""Issue: the alert bus — ZeroMQ alerts with seq, snapshot, heartbeat, SSE.

A second, independent client (python3-zmq) subscribes to the real daemon's
PUB socket before the fixtures are fed, and decodes every frame."""
import http.client
import json
import os
import signal
import time

import zmq

from harness import DaemonTest, FIXTURES, sse_events, wait_for

ALERT_FIELDS = ("seq", "id", "time", "park", "park_name", "indicator", "label", "unit", "kind",
                "period", "status", "previous", "value", "target", "completion_pct", "pace_pct",
                "gap_pp", "message")


class Sub:
    """A SUB socket that records every frame pair it receives."""

    def __init__(self, endpoint, prefixes=("alert.", "hb"), rcvhwm=None):
        self.ctx = zmq.Context()
        self.s = self.ctx.socket(zmq.SUB)
        if rcvhwm is not None:
            self.s.setsockopt(zmq.RCVHWM, rcvhwm)
        for p in prefixes:
            self.s.setsockopt(zmq.SUBSCRIBE, p.encode())
        self.s.connect(endpoint)
        self.alerts, self.hbs = [], []

    def pump(self, seconds):
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return
            if self.s.poll(int(left * 1000)) == 0:
                return
            frames = self.s.recv_multipart()
            assert len(frames) == 2, frames
            topic = frames[0].decode("utf-8")
            body = json.loads(frames[1].decode("utf-8"))
            if topic == "hb":
                self.hbs.append(body)
            else:
                assert topic == "alert.%s.%s" % (body["park"], body["indicator"]), topic
                self.alerts.append(body)

    def wait_hb(self, timeout=10):
        n = len(self.hbs)
        wait_for(lambda: (self.pump(0.1), len(self.hbs) > n)[1], timeout, "a heartbeat")
        return self.hbs[-1]

    def wait_alerts(self, n, timeout=10):
        wait_for(lambda: (self.pump(0.1), len(self.alerts) >= n)[1], timeout, "%d alerts" % n)
        return self.alerts

    def close(self):
        self.s.close(0)
        self.ctx.term()


class BusTest(DaemonTest):
    def setUp(self):
        super().setUp()
        self.subs = []

    def tearDown(self):
        for s in self.subs:
            s.close()
        super().tearDown()

    def sub(self, d, **kw):
        s = Sub(d.bus, **kw)
        self.subs.append(s)
        s.wait_hb()  # connected: the slow-joiner window is over
        return s

    def feed(self, d):
        # figures first, then targets: a target without a figure is no_data and,
        # July being due on 2021-09-15, overdue — with alerts of its own (issue 13)
        # that would come between these two files
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.drop("targets-2021.csv"), "done")

    def test_alerts_for_exactly_the_non_ok_series(self):
        d = self.daemon().start()
        s = self.sub(d)
        self.assertEqual(s.hbs[-1]["seq"], 0)
        self.feed(d)
        s.wait_alerts(2)
        s.pump(1.5)  # nothing else arrives
        got = {(a["indicator"], a["status"]) for a in s.alerts}
        self.assertEqual(got, {("fiscal_revenue", "warning"), ("fdi_actual", "critical")})
        self.assertEqual(sorted(a["seq"] for a in s.alerts), [1, 2])
        for a in s.alerts:
            for f in ALERT_FIELDS:
                self.assertIn(f, a)
            self.assertEqual(a["previous"], "no_target")  # the figures came before the targets
            self.assertEqual(a["id"], "xiangtan-etdz/%s/2021-08/%s" % (a["indicator"], a["status"]))
            self.assertEqual(a["park_name"], "湘潭经开区")
            self.assertTrue(a["time"].endswith("+08:00"))
        fr = [a for a in s.alerts if a["indicator"] == "fiscal_revenue"][0]
        self.assertEqual((fr["value"], fr["target"], fr["completion_pct"], fr["pace_pct"], fr["gap_pp"]),
                         (25.6, 42, 60.95, 66.67, -5.71))
        self.assertEqual(fr["label"], "财税收入")
        self.assertIn("低于序时进度", fr["message"])
        self.assertEqual(s.wait_hb()["seq"], 2)
        # snapshot and gap filling over HTTP
        snap = d.get_json("/api/v1/alerts")
        self.assertEqual(snap["seq"], 2)
        self.assertEqual(sorted(a["seq"] for a in snap["alerts"]), [1, 2])
        since = d.get_json("/api/v1/alerts?since=1")
        self.assertEqual([a["seq"] for a in since["alerts"]], [2])
        self.assertEqual(since["alerts"][0], [a for a in s.alerts if a["seq"] == 2][0])
        d.get_json("/api/v1/alerts?since=abc", expect=400)

    def test_no_repeat_across_restarts_and_seq_continues(self):
        d = self.daemon().start()
        self.feed(d)
        wait_for(lambda: d.get_json("/api/v1/alerts")["seq"] == 2, 10, "two alerts")
        for sig in (signal.SIGTERM, signal.SIGKILL):
            rc = d.stop(sig)
            if sig == signal.SIGTERM:
                self.assertEqual(rc, 0)
            d.start()
            s = self.sub(d)
            s.pump(1.5)
            self.assertEqual(s.alerts, [], "alert repeated after %s" % sig)
            self.assertEqual(s.wait_hb()["seq"], 2)
            self.assertEqual(d.get_json("/api/v1/alerts")["seq"], 2)
        # the recovery after a revision continues the sequence
        s = self.sub(d)
        body = "park,indicator,period,value,status\nxiangtan-etdz,fiscal_revenue,2021-08,28.5,R\n".encode()
        self.assertEqual(d.drop("rev.csv", body), "done")
        a = s.wait_alerts(1)[0]
        self.assertEqual((a["seq"], a["indicator"], a["status"], a["previous"]), (3, "fiscal_revenue", "ok", "warning"))
        self.assertEqual(a["id"], "xiangtan-etdz/fiscal_revenue/2021-08/ok")
        active = d.get_json("/api/v1/alerts")
        self.assertEqual([x["indicator"] for x in active["alerts"]], ["fdi_actual"])
        # a new month while still critical: the monthly reminder
        self.assertEqual(d.drop("sep.csv", "park,indicator,period,value\nxiangtan-etdz,fdi_actual,2021-09,3000\n".encode()), "done")
        a = s.wait_alerts(2)[1]
        self.assertEqual((a["seq"], a["period"], a["status"], a["previous"]), (4, "2021-09", "critical", "critical"))

    def test_overdue_when_the_due_day_passed(self):
        # issue 13: the series keep their status and become overdue beside it
        # (this test asserted "stale", which replaced the status, before)
        d = self.daemon().start()
        self.feed(d)
        wait_for(lambda: d.get_json("/api/v1/alerts")["seq"] == 2, 10, "two alerts")
        self.assertEqual(d.stop(), 0)
        d.now = "2021-10-21T09:00:00+08:00"  # 2021-09 was due by 10-20
        d.start()
        snap = d.get_json("/api/v1/alerts")
        overdue = {a["indicator"]: a for a in snap["alerts"] if a["status"] == "overdue"}
        self.assertIn("fdi_actual", overdue)
        self.assertIn("fixed_asset_investment", overdue)
        self.assertEqual(overdue["fdi_actual"]["id"], "xiangtan-etdz/fdi_actual/2021-09/overdue")
        self.assertEqual(overdue["fdi_actual"]["previous"], "none")
        self.assertIn("xiangtan-etdz/fdi_actual/2021-08/critical", [a["id"] for a in snap["alerts"]])
        s = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertEqual((s["status"], s["overdue"], s["overdue_period"]), ("ok", True, "2021-09"))
        self.assertEqual(d.series("xiangtan-etdz", "fdi_actual")["status"], "critical")
        seqs = sorted(a["seq"] for a in d.get_json("/api/v1/alerts?since=0")["alerts"])
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))

    def test_stuck_subscriber_does_not_block(self):
        n = 60
        import tempfile
        conf = tempfile.NamedTemporaryFile("w", suffix=".conf", delete=False, encoding="utf-8")
        for i in range(n):
            conf.write('park "p%02d" { name = "园区%02d" }\n' % (i, i))
        conf.close()
        self.addCleanup(os.unlink, conf.name)
        # the clock after the months fed (a later month is refused since issue 13)
        # and with June due: the targets make every park overdue for June (one
        # alert each) until its June figure is received (one more each)
        d = self.daemon(parks_conf=conf.name, now="2021-08-15T10:00:00+08:00").start()
        stuck = Sub(d.bus, rcvhwm=1)  # never read
        self.subs.append(stuck)
        s = self.sub(d)
        targets = "park,indicator,year,target\n" + "".join("p%02d,fiscal_revenue,2021,100\n" % i for i in range(n))
        self.assertEqual(d.drop("t.csv", targets.encode()), "done")
        for m in range(2, 9):  # a reminder each month: 60 alerts a month while critical
            rows = "".join("p%02d,fiscal_revenue,2021-%02d,1\n" % (i, m) for i in range(n))
            self.assertEqual(d.drop("m%d.csv" % m, ("park,indicator,period,value\n" + rows).encode()), "done")
        s.wait_alerts(9 * n, timeout=20)
        self.assertEqual(sorted(a["seq"] for a in s.alerts), list(range(1, 9 * n + 1)))
        self.assertEqual(sum(a["status"] == "critical" for a in s.alerts), 7 * n)
        self.assertEqual(sum(a["status"] == "overdue" for a in s.alerts), n)
        self.assertEqual(sum(a["status"] == "received" for a in s.alerts), n)
        self.assertTrue(d.healthy())

    def test_server_sent_events(self):
        d = self.daemon().start()
        self.feed(d)
        wait_for(lambda: d.get_json("/api/v1/alerts")["seq"] == 2, 10, "two alerts")
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
        conn.request("GET", "/api/v1/events", headers={"Last-Event-ID": "0"})
        r = conn.getresponse()
        self.assertEqual(r.status, 200)
        self.assertTrue(r.getheader("Content-Type").startswith("text/event-stream"))
        events = sse_events(r, 2)
        self.assertEqual([e["id"] for e in events], ["1", "2"])
        self.assertEqual(events[0]["event"], "alert")
        self.assertEqual(json.loads(events[1]["data"])["seq"], 2)
        # a live alert arrives on the open stream
        body = "park,indicator,period,value,status\nxiangtan-etdz,fiscal_revenue,2021-08,28.5,R\n".encode()
        self.assertEqual(d.drop("rev.csv", body), "done")
        self.assertEqual(sse_events(r, 1)[0]["id"], "3")
        conn.close()
        self.assertEqual(d.stop(), 0)
