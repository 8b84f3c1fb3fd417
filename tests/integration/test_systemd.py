"""The systemd unit config/parkpulsed.service (parkpulsed(8)): `systemd-analyze
verify` accepts it and `systemd-analyze security --offline=yes` rates its
sandbox "OK" (an overall exposure of 2.0 or less); it is Type=notify with the
state directory, LANG and watchdog parkpulsed(8) names.

verify needs ExecStart's program to exist, so it runs on a copy of the unit
whose ExecStart points at the built daemon, and with the man pages of man/
on MANPATH so that the unit's Documentation= references are checked too.
Skipped (with the reason) when systemd-analyze is not installed.

The notification protocol is checked against the real daemon with a
datagram socket of our own as $NOTIFY_SOCKET: READY=1 only once it serves,
WATCHDOG=1 while WATCHDOG_USEC is set, RELOADING=1 then READY=1 around a
SIGHUP, STOPPING=1 on SIGTERM."""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

from harness import DAEMON, ROOT, DaemonTest

UNIT = os.path.join(ROOT, "config", "parkpulsed.service")
ANALYZE = shutil.which("systemd-analyze")


def unit_settings():
    """{key: [values]} of the unit file (continuation lines are not used)."""
    out = {}
    with open(UNIT, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("#", ";", "[")):
                continue
            k, _, v = line.partition("=")
            out.setdefault(k.strip(), []).append(v.strip())
    return out


class UnitContentTest(unittest.TestCase):
    def test_required_settings(self):
        s = unit_settings()
        self.assertEqual(s["Type"], ["notify"])
        self.assertEqual(s["ExecStart"], ["/usr/sbin/parkpulsed -c /etc/parkpulse/parkpulse.conf"])
        self.assertEqual(s["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        self.assertEqual(s["StateDirectory"], ["parkpulse"])
        self.assertIn("LANG=C.UTF-8", s["Environment"])
        self.assertIn("WatchdogSec", s)
        self.assertIn("Documentation", s)
        for page in ("parkpulsed(8)", "parkpulse.conf(5)", "parkpulse(1)"):
            self.assertIn("man:" + page, s["Documentation"][0])


@unittest.skipIf(ANALYZE is None, "systemd-analyze is not installed (Debian package systemd)")
class SystemdAnalyzeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pp-unit-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def man_tree(self):
        """A MANPATH directory holding man/*.[158] in man1/, man5/, man8/."""
        tree = os.path.join(self.dir, "man")
        for name in os.listdir(os.path.join(ROOT, "man")):
            sec = name.rsplit(".", 1)[-1]
            if sec in ("1", "5", "8"):
                os.makedirs(os.path.join(tree, "man" + sec), exist_ok=True)
                shutil.copy(os.path.join(ROOT, "man", name), os.path.join(tree, "man" + sec, name))
        return tree

    def test_verify(self):
        if not os.access(DAEMON, os.X_OK):
            self.skipTest("%s is not built" % DAEMON)
        with open(UNIT, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/sbin/parkpulsed ", text)
        unit = os.path.join(self.dir, "parkpulsed.service")
        with open(unit, "w", encoding="utf-8") as f:
            f.write(text.replace("ExecStart=/usr/sbin/parkpulsed ", "ExecStart=%s " % DAEMON))
        env = dict(os.environ, MANPATH=self.man_tree(), SYSTEMD_LOG_COLOR="0")
        r = subprocess.run([ANALYZE, "verify", unit], capture_output=True, text=True, env=env,
                           timeout=60)
        self.assertEqual(r.returncode, 0, "systemd-analyze verify:\n" + r.stdout + r.stderr)
        self.assertNotIn("parkpulsed.service:", r.stderr, r.stderr)

    def test_security_score_ok(self):
        r = subprocess.run([ANALYZE, "security", "--offline=yes", "--no-pager", UNIT],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, SYSTEMD_COLORS="0"))
        out = r.stdout + r.stderr
        m = re.search(r"Overall exposure level for parkpulsed\.service:\s*([0-9.]+)\s+(\S+)", out)
        self.assertIsNotNone(m, "no 'Overall exposure level' line in:\n" + out)
        self.assertLessEqual(float(m.group(1)), 2.0, out)
        self.assertEqual(m.group(2), "OK", out)


class NotifyTest(DaemonTest):
    def receive(self, sock, want, timeout=20.0):
        """Collects notification lines until want is among them; returns all lines seen."""
        seen = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            sock.settimeout(max(0.05, deadline - time.time()))
            try:
                data = sock.recv(4096)
            except socket.timeout:
                break
            lines = data.decode("utf-8", "replace").split("\n")
            seen += lines
            if want in lines:
                return seen
        raise AssertionError("no %s from the daemon within %.0fs; got %r" % (want, timeout, seen))

    def test_notify_protocol(self):
        d = self.daemon()
        path = os.path.join(d.dir, "notify")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        saved = {k: os.environ.get(k) for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        try:
            os.environ["NOTIFY_SOCKET"] = path
            os.environ["WATCHDOG_USEC"] = "2000000"
            os.environ.pop("WATCHDOG_PID", None)
            d.start(wait=False)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        try:
            self.receive(sock, "READY=1")
            # READY=1 comes only once the HTTP socket is bound and the journal replayed
            self.assertEqual(d.get("/healthz")[0], 200)
            self.receive(sock, "WATCHDOG=1", timeout=5)
            d.proc.send_signal(signal.SIGHUP)
            seen = self.receive(sock, "RELOADING=1", timeout=10)
            if "READY=1" not in seen[seen.index("RELOADING=1"):]:
                self.receive(sock, "READY=1", timeout=10)
            self.assertTrue(d.healthy())
            d.proc.send_signal(signal.SIGTERM)
            self.receive(sock, "STOPPING=1", timeout=10)
            self.assertEqual(d.stop(timeout=10), 0)
        finally:
            sock.close()


if __name__ == "__main__":
    unittest.main()
