"""parkpulse-notify (README "Notifications", parkpulse-notify(8)) against the
real daemon and real peers on loopback: one HTTP receiver per format (the
payloads asserted; Alertmanager's against the webhook payload version 4), an
SMTP sink written here (python3's smtpd is gone since 3.12), a receiver that
answers 500 for a while, one that hangs, a kill -9 of the notifier
mid-stream and a restart of the daemon. Secrets never reach the log or the
metrics file."""
import json
import os
import re
import shutil
import tempfile
import signal
import socketserver
import subprocess
import threading
import time
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import BUILD, DaemonTest, wait_for

NOTIFIER = os.path.join(BUILD, "parkpulse-notify")
RECOVERY = "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,28.5\n"


class Receiver:
    """An HTTP receiver on loopback. It records the JSON bodies it answered
    200 to; fail_first: that many requests get 500 first; hang: requests are
    never answered; hold_at: the n-th request (1-based) waits for release()
    and is then dropped unanswered (its client is gone)."""

    def __init__(self, fail_first=0, hang=False, hold_at=0, robot=False, delay=0.0):
        self.got, self.requests, self.paths = [], 0, []
        self.lock = threading.Lock()
        self.fail_first, self.hang, self.hold_at, self.robot, self.delay = \
            fail_first, hang, hold_at, robot, delay
        self.held, self.release_ev, self.stop_ev = threading.Event(), threading.Event(), threading.Event()
        rec = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                with rec.lock:
                    rec.requests += 1
                    k = rec.requests
                    rec.paths.append(self.path)
                if rec.hang:
                    rec.stop_ev.wait(30)
                    return
                if rec.hold_at and k == rec.hold_at:
                    rec.held.set()
                    rec.release_ev.wait(30)
                    self.close_connection = True
                    return
                if k <= rec.fail_first:
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if rec.delay:
                    time.sleep(rec.delay)
                out = b'{"errcode":0,"errmsg":"ok"}' if rec.robot else b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)
                self.wfile.flush()
                with rec.lock:
                    rec.got.append((self.headers.get("Content-Type"), json.loads(body)))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self):
        with self.lock:
            return [b for _, b in self.got]

    def close(self):
        self.stop_ev.set()
        self.release_ev.set()
        self.server.shutdown()
        self.server.server_close()


class SmtpSink:
    """A minimal SMTP server (RFC 5321's commands a client needs) that keeps
    each message: (mail from, [rcpt to], data)."""

    def __init__(self):
        self.messages = []
        sink = self

        class H(socketserver.StreamRequestHandler):
            def reply(self, line):
                self.wfile.write((line + "\r\n").encode())
                self.wfile.flush()

            def handle(self):
                self.reply("220 sink ESMTP")
                frm, rcpt = None, []
                while True:
                    line = self.rfile.readline()
                    if not line:
                        return
                    cmd = line.decode("utf-8", "replace").strip()
                    up = cmd.upper()
                    if up.startswith("EHLO"):
                        self.wfile.write(b"250-sink\r\n250 8BITMIME\r\n")
                        self.wfile.flush()
                    elif up.startswith("HELO"):
                        self.reply("250 sink")
                    elif up.startswith("MAIL FROM:"):
                        frm, rcpt = cmd[10:].strip(), []
                        self.reply("250 ok")
                    elif up.startswith("RCPT TO:"):
                        rcpt.append(cmd[8:].strip())
                        self.reply("250 ok")
                    elif up == "DATA":
                        self.reply("354 go on")
                        data = b""
                        while True:
                            l = self.rfile.readline()
                            if not l or l == b".\r\n":
                                break
                            data += l[1:] if l.startswith(b"..") else l
                        sink.messages.append((frm, rcpt, data.decode("utf-8")))
                        self.reply("250 queued")
                    elif up == "QUIT":
                        self.reply("221 bye")
                        return
                    else:
                        self.reply("250 ok")

        class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = S(("127.0.0.1", 0), H)
        self.url = "smtp://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@unittest.skipUnless(os.access(NOTIFIER, os.X_OK), "parkpulse-notify is not built")
class NotifyTest(DaemonTest):
    def setUp(self):
        super().setUp()
        self.procs = []

    def tearDown(self):
        for p, log in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
            log.close()
            with open(log.name, "rb") as f:
                text = f.read().decode("utf-8", "replace")
            for mark in self.SANITIZER_MARKS:
                if mark in text:
                    self.fail("sanitizer report in the notifier's log:\n" + text[:3000])
        super().tearDown()

    def receiver(self, **kw):
        r = Receiver(**kw)
        self.addCleanup(r.close)
        return r

    def setup_daemon(self, routes, retry_max=1):
        self.nstate = None
        d = self.daemon(extra_conf="")
        self.nstate = os.path.join(d.dir, "notify-state")
        with open(d.conf, "a", encoding="utf-8") as f:
            f.write('notify {\n  state_dir = "%s"\n  base_url = "http://pp.example:8080/"\n'
                    '  retry_max = %d\n%s\n}\n' % (self.nstate, retry_max, routes))
        return d

    def start_notifier(self, d, wait=True):
        log = open(os.path.join(d.dir, "notify.log"), "ab")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        p = subprocess.Popen([NOTIFIER, "-c", d.conf, "-f"], stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append((p, log))
        if wait:
            wait_for(lambda: self.metric(d, "parkpulse_notify_up") == 1 or p.poll() is not None, 20,
                     "the notifier to start")
            self.assertIsNone(p.poll(), self.notify_log(d))
            time.sleep(1.2)  # subscribed: the bus heartbeat is 1 s
        return p

    def notify_log(self, d):
        with open(os.path.join(d.dir, "notify.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def metrics(self, d):
        try:
            with open(os.path.join(self.nstate, "metrics"), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def metric(self, d, name):
        for line in self.metrics(d).splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                if line.split(" ")[0] == name or name.endswith("}"):
                    return int(line.split()[-1])
        return None

    def raise_three(self, d):
        """#1, #2 (fiscal_revenue, fdi_actual behind pace), then #3 a recovery.
        Figures before targets: a target without a figure is no_data, and
        overdue, which raises alerts of its own."""
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("rev.csv", RECOVERY.encode()), "done")
        self.assertEqual(d.get_json("/api/v1/alerts")["seq"], 3)

    def test_formats_filters_and_mail(self):
        js, am = self.receiver(), self.receiver()
        ding, wecom = self.receiver(robot=True), self.receiver(robot=True)
        other, crit = self.receiver(), self.receiver()
        smtp = SmtpSink()
        self.addCleanup(smtp.close)
        d = self.setup_daemon(
            'route "js" { url = "%s" format = "json" }\n'
            'route "am" { url = "%s" format = "alertmanager" }\n'
            'route "ding" { url = "%s?access_token=DINGSECRET" format = "dingtalk" }\n'
            'route "wecom" { url = "%s?key=WECOMSECRET" format = "wecom" }\n'
            'route "other-park" { url = "%s" parks = {"liuyang-etdz"} }\n'
            'route "crit" { url = "%s" min_status = "critical" indicators = {"fiscal_revenue"} }\n'
            'route "mail" { smtp_url = "%s" to = {"officer@park.example", "head@park.example"}'
            ' from = "parkpulse@park.example" }\n'
            % (js.url, am.url, ding.url, wecom.url, other.url, crit.url, smtp.url)).start()
        self.start_notifier(d)
        self.raise_three(d)
        wait_for(lambda: len(js.bodies()) == 3 and len(am.bodies()) == 3 and len(ding.bodies()) == 3
                 and len(wecom.bodies()) == 3 and len(smtp.messages) == 3, 20, "every route")
        # json: the alerts exactly as published, in seq order
        bus = d.get_json("/api/v1/alerts?since=0")["alerts"]
        self.assertEqual(js.bodies(), bus)
        self.assertEqual([a["seq"] for a in js.bodies()], [1, 2, 3])
        self.assertTrue(all(ct.startswith("application/json") for ct, _ in js.got))
        # alertmanager: webhook payload version 4
        for a, p in zip(bus, am.bodies()):
            self.assertEqual(set(p), {"version", "groupKey", "truncatedAlerts", "status", "receiver",
                                      "groupLabels", "commonLabels", "commonAnnotations",
                                      "externalURL", "alerts"})
            self.assertEqual(p["version"], "4")
            self.assertEqual(p["receiver"], "am")
            self.assertEqual(p["truncatedAlerts"], 0)
            self.assertEqual(p["externalURL"], "http://pp.example:8080")
            self.assertEqual(len(p["alerts"]), 1)
            x = p["alerts"][0]
            self.assertEqual(set(x), {"status", "labels", "annotations", "startsAt", "endsAt",
                                      "generatorURL", "fingerprint"})
            resolved = a["status"] == "ok"
            self.assertEqual(p["status"], "resolved" if resolved else "firing")
            self.assertEqual(x["status"], p["status"])
            self.assertEqual(x["labels"]["park"], "xiangtan-etdz")
            self.assertEqual(x["labels"]["indicator"], a["indicator"])
            self.assertEqual(x["labels"]["severity"], a["status"])
            self.assertEqual(p["commonLabels"], x["labels"])
            self.assertEqual(p["commonAnnotations"], x["annotations"])
            self.assertIn(x["labels"]["alertname"], p["groupKey"])
            self.assertTrue(all(isinstance(v, str) for v in x["labels"].values()))
            self.assertTrue(all(isinstance(v, str) for v in x["annotations"].values()))
            self.assertEqual(x["startsAt"], a["time"])
            self.assertEqual(x["endsAt"], a["time"] if resolved else "0001-01-01T00:00:00Z")
            self.assertEqual(x["generatorURL"], "http://pp.example:8080/park/xiangtan-etdz")
            self.assertRegex(x["fingerprint"], "^[0-9a-f]{16}$")
            self.assertIn(a["message"], x["annotations"]["description"])
        # the recovery pairs with its alert: the same fingerprint
        fp = {p["alerts"][0]["labels"]["indicator"] + p["status"]: p["alerts"][0]["fingerprint"]
              for p in am.bodies()}
        self.assertEqual(fp["fiscal_revenuefiring"], fp["fiscal_revenueresolved"])
        # dingtalk and wecom: the robots' markdown messages
        for a, p, q in zip(bus, ding.bodies(), wecom.bodies()):
            self.assertEqual(p["msgtype"], "markdown")
            self.assertEqual(set(p["markdown"]), {"title", "text"})
            self.assertEqual(q["msgtype"], "markdown")
            self.assertEqual(set(q["markdown"]), {"content"})
            for text in (p["markdown"]["text"], q["markdown"]["content"]):
                self.assertIn("湘潭经开区", text)
                self.assertIn(a["label"], text)
                self.assertIn(a["period"], text)
                self.assertIn(a["message"], text)  # recoveries too: the full text
                self.assertIn("http://pp.example:8080/park/xiangtan-etdz", text)
                self.assertIn("http://pp.example:8080/graph/xiangtan-etdz/%s.png" % a["indicator"], text)
                if a.get("completion_pct") is not None:
                    self.assertIn("完成", text)
                if a.get("gap_pp") is not None:
                    self.assertIn("个百分点", text)
            self.assertIn(a["park_name"], p["markdown"]["title"])
        self.assertIn("恢复正常", ding.bodies()[2]["markdown"]["text"])
        self.assertEqual(ding.paths[0], "/hook?access_token=DINGSECRET")
        # mail: three messages to both recipients, a UTF-8 subject, the text
        for (frm, rcpt, data), a in zip(smtp.messages, bus):
            self.assertEqual(frm, "<parkpulse@park.example>")
            self.assertEqual(rcpt, ["<officer@park.example>", "<head@park.example>"])
            self.assertIn("Subject: =?UTF-8?B?", data)
            self.assertIn("Content-Type: text/plain; charset=UTF-8", data)
            self.assertIn(a["message"], data)
            self.assertIn("湘潭经开区", data)
        # filters: another park gets nothing; min_status critical gets the critical ones
        # of fiscal_revenue and their recovery
        want = [a["seq"] for a in bus if a["indicator"] == "fiscal_revenue" and
                ("critical" in (a["status"], a["previous"]))]
        wait_for(lambda: self.metric(d, 'parkpulse_notify_delivered_seq{route="crit"}') == 3, 10,
                 "the crit route to handle #3")
        self.assertEqual([b["seq"] for b in crit.bodies()], want)
        wait_for(lambda: self.metric(d, 'parkpulse_notify_delivered_seq{route="other-park"}') == 3, 10,
                 "the other route to handle #3")
        self.assertEqual(other.bodies(), [])
        self.assertEqual(other.requests, 0)
        self.assertEqual(self.metric(d, 'parkpulse_notify_skipped_total{route="other-park"}'), 3)
        # no secret in the log or the metrics
        for text in (self.notify_log(d), self.metrics(d)):
            self.assertNotIn("DINGSECRET", text)
            self.assertNotIn("WECOMSECRET", text)

    def test_retries_timeouts_secret_file(self):
        flaky, hang, good = self.receiver(fail_first=3), self.receiver(hang=True), self.receiver()
        d = self.setup_daemon('')
        secret = os.path.join(d.dir, "good.url")
        with open(secret, "w") as f:
            f.write(good.url + "?token=GOODSECRET\n")
        os.chmod(secret, 0o600)
        # the routes, now that the secret file exists
        with open(d.conf, encoding="utf-8") as f:
            text = f.read().rstrip()
        assert text.endswith("}")
        text = text[:-1] + ('route "flaky" { url = "%s" }\n'
                            'route "hang" { url = "%s?key=HANGSECRET" timeout = 1 }\n'
                            'route "good" { url_file = "%s" }\n}\n' % (flaky.url, hang.url, secret))
        with open(d.conf, "w", encoding="utf-8") as f:
            f.write(text)
        d.start()
        self.start_notifier(d)
        self.raise_three(d)
        # the good route is not held up by the hanging one
        wait_for(lambda: len(good.bodies()) == 3, 15, "the good route")
        self.assertLess(hang.requests, 4)
        wait_for(lambda: len(flaky.bodies()) == 3, 20, "the flaky route to recover")
        self.assertEqual([b["seq"] for b in flaky.bodies()], [1, 2, 3])  # each once, in order
        self.assertEqual(flaky.requests, 6)
        self.assertEqual(good.paths[0], "/hook?token=GOODSECRET")
        wait_for(lambda: self.metric(d, 'parkpulse_notify_failing{route="hang"}') == 1, 10,
                 "the hanging route to count as failing")
        self.assertGreaterEqual(self.metric(d, 'parkpulse_notify_failed_attempts_total{route="hang"}'), 1)
        self.assertEqual(self.metric(d, 'parkpulse_notify_failed_attempts_total{route="flaky"}'), 3)
        wait_for(lambda: self.metric(d, 'parkpulse_notify_failing{route="flaky"}') == 0, 10,
                 "the flaky route to count as delivering")
        self.assertEqual(self.metric(d, 'parkpulse_notify_delivered_total{route="good"}'), 3)
        log = self.notify_log(d)
        self.assertIn("route hang (http://127.0.0.1:%s/…)" % hang.url.split(":")[2].split("/")[0], log)
        self.assertIn("delivers again", log)
        for text in (log, self.metrics(d)):
            self.assertNotIn("GOODSECRET", text)
            self.assertNotIn("HANGSECRET", text)
        # SIGTERM stops within the hanging route's timeout
        p = self.procs[0][0]
        p.send_signal(signal.SIGTERM)
        self.assertEqual(p.wait(10), 0)
        # a secret file others may read is refused
        os.chmod(secret, 0o644)
        p = self.start_notifier(d, wait=False)
        self.assertEqual(p.wait(10), 78)
        self.assertIn("chmod o-rwx", self.notify_log(d))

    SERIES = [(p, i) for p in ("xiangtan-hitech", "liuyang-etdz")
              for i in ("fiscal_revenue", "fixed_asset_investment", "domestic_capital")]
    LABEL = {"fiscal_revenue": "财税收入", "fixed_asset_investment": "固定资产投资",
             "domestic_capital": "实际到位内资"}

    def stream_targets(self, d):
        rows = "".join("%s,%s,2021,100\n" % (p, self.LABEL[i]) for p, i in self.SERIES)
        self.assertEqual(d.drop("stream-targets.csv", ("园区,指标,年度,目标\n" + rows).encode()), "done")

    def stream(self, d, k, spool_only=False):
        """Alert k of a stream (0-based): series k//2 falls far behind, then recovers."""
        p, i = self.SERIES[k // 2]
        body = "park,indicator,period,value\n%s,%s,2021-08,%s\n" % (p, i, "10" if k % 2 == 0 else "90")
        name = "s%d.csv" % k
        if spool_only:
            with open(os.path.join(d.spool, name), "w") as f:
                f.write(body)
            return
        self.assertEqual(d.drop(name, body.encode()), "done")

    def test_kill9_mid_stream_and_daemon_restart(self):
        rec = self.receiver(hold_at=4)
        d = self.setup_daemon('route "r" { url = "%s" }\n' % rec.url).start()
        p = self.start_notifier(d)
        self.raise_three(d)
        self.stream_targets(d)
        # the stream's targets come before its figures: each series is also
        # overdue (no_data) first and received later, so the seqs are counted
        for k in range(6):
            self.stream(d, k)  # #4 … : critical, recovery (and overdue, received)
        last = d.get_json("/api/v1/alerts")["seq"]
        self.assertGreaterEqual(last, 9)
        self.assertTrue(rec.held.wait(15), "request 4 never came")
        p.kill()  # kill -9 with #4 in flight and the rest queued
        p.wait()
        rec.release_ev.set()
        for k in range(6, 8):
            self.stream(d, k)  # more while the notifier is down
        total = d.get_json("/api/v1/alerts")["seq"]
        self.assertGreater(total, last)
        self.start_notifier(d, wait=False)
        wait_for(lambda: len(rec.bodies()) == total, 20, "all alerts after the restart")
        # nothing lost, nothing twice
        self.assertEqual([b["seq"] for b in rec.bodies()], list(range(1, total + 1)))
        # the daemon restarts; alerts raised at its start (files left in the spool
        # while it was down) reach the notifier through the heartbeat's seq
        self.assertEqual(d.stop(), 0)
        for k in range(8, 12):
            self.stream(d, k, spool_only=True)
        d.start()
        wait_for(lambda: d.get_json("/api/v1/alerts")["seq"] > total, 15, "the daemon's new alerts")
        wait_for(lambda: len(rec.bodies()) == d.get_json("/api/v1/alerts")["seq"], 20, "the gap filled")
        seqs = [b["seq"] for b in rec.bodies()]
        self.assertEqual(seqs, list(range(1, len(seqs) + 1)))


@unittest.skipUnless(os.access(NOTIFIER, os.X_OK), "parkpulse-notify is not built")
class SilenceTest(NotifyTest):
    # the helpers of NotifyTest, not its tests
    test_formats_filters_and_mail = test_retries_timeouts_secret_file = None
    test_kill9_mid_stream_and_daemon_restart = None

    def cli(self, d, *args):
        return subprocess.run([os.path.join(BUILD, "parkpulse"), "--url", d.url, "--token-file",
                               d.token_file] + list(args), capture_output=True, text=True)

    def test_silences(self):
        rec = self.receiver()
        d = self.daemon(token="s3cr3t-token")
        self.nstate = os.path.join(d.dir, "notify-state")
        with open(d.conf, "a", encoding="utf-8") as f:
            f.write('notify { state_dir = "%s" retry_max = 1\n route "r" { url = "%s" } }\n'
                    % (self.nstate, rec.url))
        d.start()
        # add (the clock is 2021-09-15), list, the API's shape
        out = self.cli(d, "silence", "add", "xiangtan-etdz/fiscal_revenue", "--until", "2021-10-31",
                       "--reason", "年中调整口径", "--by", "wang")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("已静默", out.stdout)
        sil = d.get_json("/api/v1/silences")["silences"]
        self.assertEqual(sil, [{"id": "1", "park": "xiangtan-etdz", "indicator": "fiscal_revenue",
                                "until": "2021-10-31", "reason": "年中调整口径", "by": "wang"}])
        out = self.cli(d, "silence", "list")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("xiangtan-etdz/fiscal_revenue", out.stdout)
        self.assertIn("2021-10-31", out.stdout)
        # at most 90 days; not in the past; a configured park; a reason; the token
        out = self.cli(d, "silence", "add", "xiangtan-etdz", "--until", "2021-12-15", "--reason", "x")
        self.assertEqual(out.returncode, 65, out.stderr)
        self.assertIn("90", out.stderr)
        self.assertEqual(self.cli(d, "silence", "add", "xiangtan-etdz", "--until", "2021-12-14",
                                  "--reason", "x").returncode, 0)  # 90 days exactly
        out = self.cli(d, "silence", "add", "xiangtan-etdz", "--until", "2021-09-14", "--reason", "x")
        self.assertEqual(out.returncode, 65, out.stderr)
        out = self.cli(d, "silence", "add", "nowhere", "--until", "2021-09-30", "--reason", "x")
        self.assertEqual(out.returncode, 65, out.stderr)
        self.assertIn("unknown park", out.stderr)
        st, _, body = d.request("/api/v1/silences", "POST",
                                json.dumps({"park": "xiangtan-etdz", "until": "2021-09-30",
                                            "reason": "x"}).encode(),
                                {"Content-Type": "application/json"})
        self.assertEqual(st, 401)
        st, _, body = d.request("/api/v1/silences", "POST", b'{"park":"xiangtan-etdz","until":"2021-09-30"}',
                                {"Authorization": "Bearer s3cr3t-token"})
        self.assertEqual(st, 400, body)
        self.assertIn("reason", json.loads(body)["error"])
        self.assertEqual(self.cli(d, "silence", "rm", "2").returncode, 0)
        self.assertEqual(self.cli(d, "silence", "rm", "2").returncode, 65)  # gone: 404
        # alerts of the silenced series are published with "silenced":true and not delivered
        self.start_notifier(d)
        self.raise_three(d)
        alerts = d.get_json("/api/v1/alerts?since=0")["alerts"]
        by_ind = {a["seq"]: a for a in alerts}
        for a in alerts:
            if a["indicator"] == "fiscal_revenue":
                self.assertIs(a["silenced"], True)
            else:
                self.assertNotIn("silenced", a)
        wait_for(lambda: self.metric(d, 'parkpulse_notify_delivered_seq{route="r"}') == 3, 15,
                 "the route to handle #3")
        self.assertEqual([b["seq"] for b in rec.bodies()],
                         [s for s, a in sorted(by_ind.items()) if a["indicator"] != "fiscal_revenue"])
        self.assertEqual(self.metric(d, 'parkpulse_notify_skipped_total{route="r"}'), 2)
        # journaled: still there after a restart, and the removed one still gone
        self.assertEqual(d.stop(), 0)
        d.start()
        self.assertEqual([s["id"] for s in d.get_json("/api/v1/silences")["silences"]], ["1"])
        # expiry: on 2021-11-01 the silence is over
        self.assertEqual(d.stop(), 0)
        d.now = "2021-11-01T09:00:00+08:00"
        d.start()
        self.assertEqual(d.get_json("/api/v1/silences")["silences"], [])
        out = self.cli(d, "silence", "list")
        self.assertIn("no active silence", out.stdout)
        self.assertEqual(self.cli(d, "silence", "rm", "1").returncode, 65)


ANALYZE = shutil.which("systemd-analyze")


@unittest.skipIf(ANALYZE is None, "systemd-analyze is not installed (Debian package systemd)")
class NotifyUnitTest(unittest.TestCase):
    """config/parkpulse-notify.service: verify clean, exposure "OK" (≤ 2.0)."""
    ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

    def unit(self):
        return os.path.join(self.ROOT, "config", "parkpulse-notify.service")

    def test_security_score_ok(self):
        r = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager", self.unit()],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SYSTEMD_COLORS="0"))
        out = r.stdout + r.stderr
        m = re.search(r"Overall exposure level for parkpulse-notify\.service:\s*([0-9.]+)\s+(\S+)", out)
        self.assertIsNotNone(m, out)
        self.assertLessEqual(float(m.group(1)), 2.0, out)
        self.assertEqual(m.group(2), "OK", out)

    def test_verify(self):
        if not os.access(NOTIFIER, os.X_OK):
            self.skipTest("parkpulse-notify is not built")
        tmp = tempfile.mkdtemp(prefix="pp-nunit-")
        self.addCleanup(shutil.rmtree, tmp, True)
        for name in os.listdir(os.path.join(self.ROOT, "man")):
            sec = name.rsplit(".", 1)[-1]
            if sec in ("1", "5", "8"):
                os.makedirs(os.path.join(tmp, "man", "man" + sec), exist_ok=True)
                shutil.copy(os.path.join(self.ROOT, "man", name), os.path.join(tmp, "man", "man" + sec))
        with open(self.unit(), encoding="utf-8") as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/bin/parkpulse-notify ", text)
        unit = os.path.join(tmp, "parkpulse-notify.service")
        with open(unit, "w", encoding="utf-8") as f:
            f.write(text.replace("ExecStart=/usr/bin/parkpulse-notify ", "ExecStart=%s " % NOTIFIER))
        r = subprocess.run([ANALYZE, "verify", unit], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, MANPATH=os.path.join(tmp, "man"), SYSTEMD_LOG_COLOR="0"))
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotIn("parkpulse-notify.service:", r.stderr, r.stderr)


class NotifyConfigTest(DaemonTest):
    def test_daemon_checks_the_notify_section(self):
        d = self.daemon()
        with open(d.conf, "a", encoding="utf-8") as f:
            f.write('notify {\n route "a" { url = "ftp://x/?key=S3CRET" format = "teams" }\n'
                    ' route "b" { smtp_url = "smtp://127.0.0.1:25" }\n'
                    ' route "c" { url = "http://127.0.0.1:1/" parks = {"nowhere"} min_status = "ok" }\n}\n')
        out = subprocess.run([os.path.join(BUILD, "parkpulse"), "check-config", d.conf],
                             capture_output=True, text=True)
        self.assertNotEqual(out.returncode, 0)
        err = out.stderr
        self.assertIn('notify: route "a": url is not an http:// or https:// URL', err)
        self.assertIn('format "teams" is not json, alertmanager, dingtalk or wecom', err)
        self.assertIn('notify: route "b": to is missing', err)
        self.assertIn('parks: no park "nowhere" is defined', err)
        self.assertIn('min_status "ok" is not warning, critical or stale', err)
        self.assertNotIn("S3CRET", err)
        self.assertRegex(err, r"parkpulse.conf:\d+: notify: route")


if __name__ == "__main__":
    unittest.main()
