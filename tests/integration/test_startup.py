"""Start-up readiness (README, HTTP API: /healthz; parkpulsed(8); docs/ARCHITECTURE.md "Locks and
threads"): /healthz answers 200 — and systemd hears READY=1 — only once the
journal is replayed, the statuses are evaluated and every collector watches
its input; before that every route answers 503 {"error":"starting"}.

The catalog has 2,000 parks, so evaluating every series at start takes a
moment in which the daemon already listens: a client polling /healthz from the
moment the port answers sees 503 there. What is asserted does not depend on
timing: at the first 200 the log already says the spool collector started,
and a file written just then and renamed into the spool (modified less than
2 s before any scan, and `rescan = 3600`, so only the inotify watch can find
it) is ingested."""
import json
import os
import shutil
import socket
import tempfile
import time
import unittest

from harness import DaemonTest, wait_for

N_PARKS = 2000
STARTED = "collector spool (spool) started"


def write_parks(path, n):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write('park "p%05d" { name = "园区%d" }\n' % (i, i))
    return path


class ReadinessTest(DaemonTest):
    def big_daemon(self):
        tmp = tempfile.mkdtemp(prefix="pp-parks-")
        self.addCleanup(shutil.rmtree, tmp, True)
        parks = write_parks(os.path.join(tmp, "parks.conf"), N_PARKS)
        return self.daemon(rescan=3600, parks_conf=parks)

    def poll_until_ready(self, d, timeout=60.0):
        """Polls /healthz from the moment the port answers; returns the answers
        seen before the first 200 and the log as it was at that 200."""
        before = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            if d.proc.poll() is not None:
                self.fail("daemon exited with %s:\n%s" % (d.proc.returncode, d.logtext()))
            try:
                status, headers, body = d.request("/healthz")
            except OSError:
                time.sleep(0.001)
                continue
            if status == 200:
                return before, body
            before.append((status, headers, body))
        self.fail("no 200 from /healthz within %.0f s; log:\n%s" % (timeout, d.logtext()))

    def test_healthz_is_503_until_the_collectors_watch(self):
        d = self.big_daemon()
        d.start(wait=False)
        before, body = self.poll_until_ready(d)
        # straight away: a file written now, renamed in; only the watch can see it
        d.drop("fresh.csv", "park,indicator,period,value,unit\n"
               "p01999,fixed_asset_investment,2021-08,123.5,亿元\n".encode("utf-8"), wait=False)
        log = d.logtext()
        self.assertIn(STARTED, log, "/healthz said 200 before the collectors were started; log:\n" + log)
        self.assertIn("journal replayed", log)
        self.assertEqual(body, b"ok\n")
        for status, headers, b in before:
            self.assertEqual(status, 503, b)
            self.assertTrue(headers.get("Content-Type", "").startswith("application/json"), headers)
            self.assertEqual(json.loads(b.decode("utf-8")), {"error": "starting"})
        print("\n  /healthz: %d answer(s) 503 starting, then 200" % len(before), end=" ")
        where = lambda: (os.path.exists(os.path.join(d.spool, "done", "fresh.csv")) or
                         os.path.exists(os.path.join(d.spool, "failed", "fresh.csv")))
        wait_for(where, 15, "fresh.csv, renamed in at the first 200, to be ingested (rescan = 3600: "
                 "only the inotify watch can find it); log: " + d.log_path)
        self.assertTrue(os.path.exists(os.path.join(d.spool, "done", "fresh.csv")), d.logtext())
        self.assertEqual(d.series("p01999", "fixed_asset_investment")["value"], 123.5)
        self.assertEqual(d.stop(), 0)

    def test_ready_notification_comes_with_readiness(self):
        d = self.big_daemon()
        path = os.path.join(d.dir, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        saved = os.environ.get("NOTIFY_SOCKET")
        try:
            os.environ["NOTIFY_SOCKET"] = path
            d.start(wait=False)
        finally:
            if saved is None:
                os.environ.pop("NOTIFY_SOCKET", None)
            else:
                os.environ["NOTIFY_SOCKET"] = saved
        try:
            sock.settimeout(60)
            while True:
                lines = sock.recv(4096).decode("utf-8", "replace").split("\n")
                if "READY=1" in lines:
                    break
            # at READY=1 the daemon is ready: collectors started, /healthz 200
            self.assertIn(STARTED, d.logtext())
            self.assertEqual(d.get("/healthz")[0], 200)
        finally:
            sock.close()
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    unittest.main()
