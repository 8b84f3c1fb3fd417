"""Integration-test harness: starts the real parkpulsed on an ephemeral port
with a temporary state directory and spool, feeds files through the real
spool collector, and reads back over HTTP and with the `rrdtool` command.

Only the Python standard library (and python3-zmq for bus tests) is used, so
the tests run on a fresh Debian 12 machine after `make deps`.
"""
import calendar
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
DAEMON = os.path.join(BUILD, "parkpulsed")
CLIENT = os.path.join(BUILD, "parkpulse")
# Fixed clock for the fixtures: 2021-09-15, so 2021-08 is the latest month due.
NOW_2021_09 = "2021-09-15T10:00:00+08:00"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))


def serving(d, name):
    """Whether the started daemon d (its proc, get and logtext) answers
    /healthz; an AssertionError with its log when it exited."""
    if d.proc.poll() is not None:
        raise AssertionError("%s exited with %s:\n%s" % (name, d.proc.returncode, d.logtext()))
    try:
        return d.get("/healthz")[0] == 200
    except OSError:
        return False


def sse_events(r, n):
    """The next n events of an open text/event-stream response r, as dicts of
    their fields (comment lines skipped)."""
    events, cur = [], {}
    while len(events) < n:
        line = r.fp.readline().decode("utf-8").rstrip("\n")
        if line == "":
            if "data" in cur:
                events.append(cur)
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(": ")
            cur[k] = v
    return events


class Daemon:
    """One parkpulsed with its own state directory, spool and port."""

    def __init__(self, now=NOW_2021_09, extra_conf="", token=None, parks_conf=None, rescan=1):
        self.dir = tempfile.mkdtemp(prefix="pp-it-")
        self.state = os.path.join(self.dir, "state")
        self.spool = os.path.join(self.dir, "spool")
        os.makedirs(self.spool)
        self.port = free_port()
        self.bus_port = free_port()
        self.now = now
        self.token_file = os.path.join(self.dir, "token")
        if token:
            with open(self.token_file, "w") as f:
                f.write(token + "\n")
        self.conf = os.path.join(self.dir, "parkpulse.conf")
        with open(parks_conf or os.path.join(FIXTURES, "parks.conf"), encoding="utf-8") as f:
            parks = f.read()
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write(
                'timezone = "Asia/Shanghai"\n'
                'state_dir = "%s"\n'
                'plugin_dir = "%s"\n'
                'dashboard_dir = "%s"\n'
                'include("%s")\n'
                'http { listen = "127.0.0.1:%d" token_file = "%s" }\n'
                'bus { publish = "tcp://127.0.0.1:%d" heartbeat = 1 }\n'
                'collector "spool" { plugin = "spool" path = "%s" rescan = %d }\n'
                "%s\n%s\n"
                % (self.state, os.path.join(BUILD, "collectors"), os.path.join(ROOT, "dashboards"),
                   os.path.join(ROOT, "config", "indicators.conf"), self.port, self.token_file,
                   self.bus_port, self.spool, rescan, parks, extra_conf))
        self.proc = None
        self.log_path = os.path.join(self.dir, "daemon.log")
        self.url = "http://127.0.0.1:%d" % self.port
        self.bus = "tcp://127.0.0.1:%d" % self.bus_port

    def start(self, wait=True, args=()):
        """Starts the daemon; with wait, returns only once /healthz answers 200,
        which the daemon does only when it is ready: journal replayed, statuses
        evaluated and every collector watching (503 "starting" before). So a
        test may feed the spool or POST as soon as this returns."""
        self.log = open(self.log_path, "ab")
        cmd = [DAEMON, "-c", self.conf, "-f"]
        if self.now:
            cmd += ["--now", self.now]
        cmd += list(args)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        if wait:
            wait_for(self.healthy, 20, "daemon to serve /healthz (log: %s)" % self.log_path)
        return self

    def healthy(self):
        return serving(self, "daemon")

    def stop(self, sig=signal.SIGTERM, timeout=10):
        """Stops the daemon; returns its exit status."""
        if self.proc is None:
            return None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise AssertionError("daemon did not stop within %ss" % timeout)
        finally:
            self.log.close()
            self.proc = None
        return rc

    def cleanup(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    # ---- HTTP ----
    def request(self, path, method="GET", body=None, headers=None):
        req = urllib.request.Request(self.url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def get(self, path, headers=None):
        return self.request(path, headers=headers)

    def get_json(self, path, expect=200):
        status, _, body = self.get(path)
        if status != expect:
            raise AssertionError("GET %s: %s %s" % (path, status, body[:300]))
        return json.loads(body.decode("utf-8"))

    def series(self, park, indicator):
        st = self.get_json("/api/v1/parks/" + park)
        for s in st["indicators"]:
            if s["indicator"] == indicator:
                return s
        return None

    # ---- spool ----
    def drop(self, name, data=None, wait=True):
        """Delivers a file the safe way (x.csv.tmp, then rename); waits until it
        reached done/ or failed/. Returns 'done' or 'failed'."""
        if data is None:
            with open(os.path.join(FIXTURES, name), "rb") as f:
                data = f.read()
        tmp = os.path.join(self.spool, name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.rename(tmp, os.path.join(self.spool, name))
        if not wait:
            return None
        def where():
            if os.path.exists(os.path.join(self.spool, name)):
                return None
            for d in ("done", "failed"):
                if os.path.exists(os.path.join(self.spool, d, name)):
                    return d
            return None
        return wait_for(where, 15, "%s to leave the spool" % name)

    # ---- rrdtool ----
    def rrd_pending(self):
        """The X-RRD-Pending header of /healthz (parkpulse_rrd_pending of
        /metrics): series acknowledged whose RRD file the writer thread has not
        written yet."""
        status, headers, body = self.get("/healthz")
        if status != 200 or body != b"ok\n":
            raise AssertionError("GET /healthz: %s %r" % (status, body))
        n = headers.get("X-RRD-Pending")
        if n is None or not n.isdigit():
            raise AssertionError("no X-RRD-Pending in /healthz: %r" % headers)
        return int(n)

    def wait_rrd(self, timeout=30):
        """Waits until every acknowledged figure is in its RRD file (the files
        are written just after the acknowledgement); nothing to wait for when
        the daemon is not running."""
        if self.proc is None or self.proc.poll() is not None:
            return
        wait_for(lambda: self.rrd_pending() == 0, timeout, "the RRD writes (parkpulse_rrd_pending 0)")

    def rrd(self, park, indicator):
        """The series' RRD file, once every acknowledged write reached it."""
        self.wait_rrd()
        return os.path.join(self.state, "rrd", park, indicator + ".rrd")

    def fetch_day(self, park, indicator, day):
        """(value, pace) of the RRD row holding noon UTC of day 'YYYY-MM-DD', via `rrdtool fetch`."""
        t = calendar.timegm(time.strptime(day, "%Y-%m-%d")) + 43200
        out = subprocess.run(["rrdtool", "fetch", self.rrd(park, indicator), "LAST", "-s", str(t), "-e", str(t)],
                             capture_output=True, text=True, check=True).stdout
        rows = [l for l in out.splitlines() if ":" in l and l.split(":")[0].strip().isdigit()]
        if not rows:
            raise AssertionError("no row in rrdtool fetch output:\n" + out)
        vals = rows[0].split(":", 1)[1].split()
        return tuple(float(v) for v in vals)


class DaemonTest(unittest.TestCase):
    """A test case that cleans up its daemons."""

    def setUp(self):
        self.daemons = []

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def tearDown(self):
        for d in self.daemons:
            if d.proc is not None:
                d.proc.kill()
                d.proc.wait()
                d.log.close()
                d.proc = None
            text = d.logtext() if os.path.exists(d.log_path) else ""
            for mark in self.SANITIZER_MARKS:
                if mark in text:
                    d.cleanup()
                    self.fail("sanitizer report in the daemon's log:\n" + text[text.index(mark) - 200:][:3000])
        for d in self.daemons:
            failed = self._outcome.result.failures or self._outcome.result.errors if hasattr(self, "_outcome") else None
            if failed and os.environ.get("PP_KEEP"):
                print("kept", d.dir)
                continue
            d.cleanup()

    def daemon(self, **kw):
        d = Daemon(**kw)
        self.daemons.append(d)
        return d
