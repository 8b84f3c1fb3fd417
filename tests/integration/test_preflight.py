"""Issue 14: the shipped configuration starts as installed, and what start-up
would refuse is caught before: `parkpulse check-config` and `parkpulsed -t`
report a missing exec command, a missing plugin, an unwritable state_dir and
a port in use — the same checks the daemon makes when it starts (it refuses
with the same file:line lines) —, each error once, top-down in file order."""
import os
import re
import shutil
import socket
import subprocess

from harness import BUILD, CLIENT, DAEMON, ROOT, DaemonTest, free_port

EX_CONFIG = 78


def run(prog, *args):
    return subprocess.run([prog] + list(args), capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, LANG="C.UTF-8"))


class PreflightTest(DaemonTest):
    def shipped(self, d):
        """The shipped configuration, with the paths of this build and a temp state."""
        with open(os.path.join(ROOT, "config", "parkpulse.conf"), encoding="utf-8") as f:
            text = f.read()
        text = (text.replace("/usr/lib/parkpulse/collectors", os.path.join(BUILD, "collectors"))
                .replace("/var/lib/parkpulse", d.state)
                .replace("/var/spool/parkpulse", d.spool)
                .replace("/usr/share/parkpulse/dashboards", os.path.join(ROOT, "dashboards"))
                .replace('"127.0.0.1:8080"', '"127.0.0.1:%d"' % d.port)
                .replace('"tcp://127.0.0.1:5556"', '"tcp://127.0.0.1:%d"' % d.bus_port))
        path = os.path.join(d.dir, "shipped.conf")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        shutil.copy(os.path.join(ROOT, "config", "indicators.conf"), d.dir)
        return path

    def test_shipped_configuration_starts(self):
        d = self.daemon()
        conf = self.shipped(d)
        with open(conf, encoding="utf-8") as f:
            text = f.read()
        # no demo parks, no exec collector, the standard catalogue
        self.assertIsNone(re.search(r'^\s*park\s', text, re.M), "a park is configured")
        self.assertIsNone(re.search(r'^\s*collector\s+"\w+"\s*{\s*plugin\s*=\s*"exec"', text, re.M))
        self.assertIn('include("indicators.conf")', text)
        r = run(CLIENT, "check-config", conf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("OK (0 parks, 14 indicators, 1 collectors)", r.stdout)
        d.conf = conf
        d.start()
        self.assertTrue(d.healthy())

    def append(self, d, text):
        with open(d.conf, "a", encoding="utf-8") as f:
            f.write(text)
        with open(d.conf, encoding="utf-8") as f:
            return len(f.read().splitlines())

    def assert_refused(self, d, expect):
        """check-config, -t and the start itself all refuse with the lines in expect."""
        for args in ((CLIENT, "check-config", d.conf), (DAEMON, "-t", "-c", d.conf)):
            r = run(*args)
            self.assertEqual(r.returncode, EX_CONFIG, r.stdout + r.stderr)
            for e in expect:
                self.assertEqual(r.stderr.count(e), 1, "%s\n%s" % (e, r.stderr))
        r = subprocess.run([DAEMON, "-f", "-c", d.conf, "--now", d.now], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
        for e in expect:
            self.assertIn(e, r.stderr)
        return r

    def test_missing_exec_command(self):
        d = self.daemon()
        line = self.append(d, 'collector "bureau" { plugin = "exec" command = "/nonexistent/bureau-export" '
                              'user = "nobody" }\n')
        self.assert_refused(d, ["%s:%d: collector \"bureau\": command /nonexistent/bureau-export: "
                                "No such file or directory" % (d.conf, line)])

    def test_missing_plugin(self):
        d = self.daemon()
        line = self.append(d, 'collector "feed" { plugin = "myfeed" }\n')
        self.assert_refused(d, ["%s:%d: collector \"feed\": cannot load " % (d.conf, line),
                                "myfeed.so: cannot open shared object file"])

    def test_state_dir_not_a_directory(self):
        d = self.daemon()
        blocker = os.path.join(d.dir, "file")
        open(blocker, "w").close()
        with open(d.conf, encoding="utf-8") as f:
            text = f.read()
        with open(d.conf, "w", encoding="utf-8") as f:
            f.write(text.replace('state_dir = "%s"' % d.state, 'state_dir = "%s/state"' % blocker))
        self.assert_refused(d, ["%s:2: state_dir \"%s/state\": %s is not a directory"
                                % (d.conf, blocker, blocker)])

    def test_state_dir_unwritable(self):
        if os.geteuid() != 0 or shutil.which("setpriv") is None:
            self.skipTest("needs root (to check as another user) and setpriv")
        d = self.daemon()
        os.chmod(d.dir, 0o755)
        os.chmod(d.conf, 0o644)
        r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            CLIENT, "check-config", d.conf], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout + r.stderr)
        self.assertIn("%s:2: state_dir \"%s\": %s is not writable by uid" % (d.conf, d.state, d.dir),
                      r.stderr)

    def test_port_in_use(self):
        d = self.daemon()
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", d.port))
        s.listen(1)
        self.addCleanup(s.close)
        self.assert_refused(d, ["%s:6: http: listen \"127.0.0.1:%d\": port %d is already in use"
                                % (d.conf, d.port, d.port)])
        # a running parkpulsed holds its own ports: they are not reported then
        s.close()
        d.start()
        r = run(CLIENT, "check-config", d.conf)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("ports were not checked", r.stdout)

    def test_errors_top_down_once(self):
        d = self.daemon()
        conf = os.path.join(d.dir, "bad.conf")
        with open(conf, "w", encoding="utf-8") as f:
            f.write('park "b" { name = "B" level = "x" }\n'
                    'indicator "a" { label = "A" unit = "x" kind = "bogus" }\n'
                    'collector "y" { }\n'
                    'http { listen = "nonsense" }\n'
                    'due_day = 99\n'
                    'timezone = "Mars/Base"\n')
        for args in ((CLIENT, "check-config", conf), (DAEMON, "-t", "-c", conf)):
            r = run(*args)
            self.assertEqual(r.returncode, EX_CONFIG, r.stderr)
            lines = [int(m.group(1)) for m in re.finditer(r"^%s:(\d+): " % re.escape(conf),
                                                          r.stderr, re.M)]
            self.assertEqual(lines, [1, 2, 3, 4, 5, 6], "%s\n%s" % (args[0], r.stderr))
