"""Issue: the exec collector in the real daemon — output ingested, a hanging
command killed at its timeout (with its children) while the daemon serves,
a failing command logged and retried with back-off. Tests run as root, so
the collectors are configured with user = "nobody" (the daemon refuses to run
commands as root otherwise)."""
import os
import re
import stat
import time

from harness import DaemonTest, FIXTURES, wait_for


def read(path):
    with open(path) as f:
        return f.read()


def script(d, name, body):
    os.chmod(d.dir, 0o755)
    path = os.path.join(d.dir, name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


class ExecTest(DaemonTest):
    def daemon_with(self, collectors):
        d = self.daemon(extra_conf="")
        d.pending = collectors
        return d

    def test_output_is_ingested(self):
        d = self.daemon()
        csv_path = os.path.join(d.dir, "fig.csv")
        with open(os.path.join(FIXTURES, "xiangtan-etdz-2021.csv"), "rb") as src, open(csv_path, "wb") as dst:
            dst.write(src.read())
        os.chmod(csv_path, 0o644)
        cmd = script(d, "export.sh", 'cat "%s"\necho "exported" >&2\n' % csv_path)
        with open(d.conf, "a") as f:
            f.write('collector "bureau" { plugin = "exec" command = "%s" interval = 3600 timeout = 10 user = "nobody" }\n' % cmd)
        d.start()
        wait_for(lambda: (d.series("xiangtan-etdz", "fiscal_revenue") or {}).get("value") == 25.6, 15, "the exec output")
        self.assertIn("stderr: exported", d.logtext())
        self.assertEqual(d.stop(), 0)

    def test_hang_is_killed_and_failure_backs_off(self):
        d = self.daemon()
        pidfile = os.path.join(d.dir, "hang.pid")
        with open(pidfile, "w"):
            pass
        os.chmod(pidfile, 0o666)  # the command runs as nobody
        hang = script(d, "hang.sh", 'echo $$ > "%s"\nsleep 1000 &\nsleep 1000\n' % pidfile)
        attempts = os.path.join(d.dir, "attempts")
        with open(attempts, "w"):
            pass
        os.chmod(attempts, 0o666)
        fail = script(d, "fail.sh", 'date +%%s.%%N >> "%s"\necho "no data today" >&2\nexit 3\n' % attempts)
        with open(d.conf, "a") as f:
            f.write('collector "hang" { plugin = "exec" command = "%s" interval = 3600 timeout = 1 grace = 1 user = "nobody" }\n' % hang)
            f.write('collector "fail" { plugin = "exec" command = "%s" interval = 1 timeout = 5 user = "nobody" }\n' % fail)
        d.start()
        wait_for(lambda: read(pidfile).strip(), 10, "the hanging command")
        pgid = int(read(pidfile))
        wait_for(lambda: "timed out" in d.logtext(), 10, "the timeout in the log")

        def group_gone():
            try:
                os.killpg(pgid, 0)
                return False
            except ProcessLookupError:
                return True
        wait_for(group_gone, 10, "the hanging command's process group to die")
        self.assertTrue(d.healthy())
        self.assertEqual(d.drop("targets-2021.csv"), "done")  # the daemon keeps ingesting
        # the failing command: logged with its status, retried with growing gaps
        wait_for(lambda: len(read(attempts).split()) >= 4, 20, "four attempts")
        times = [float(t) for t in read(attempts).split()]
        gaps = [b - a for a, b in zip(times, times[1:])]
        self.assertGreater(gaps[2], gaps[0] * 1.5, gaps)
        log = d.logtext()
        self.assertRegex(log, r"exited with status 3")
        self.assertIn("stderr: no data today", log)
        self.assertEqual(d.stop(), 0)

    def test_root_without_user_is_refused(self):
        if os.geteuid() != 0:
            self.skipTest("only meaningful as root")
        d = self.daemon()
        with open(d.conf, "a") as f:
            f.write('collector "bureau" { plugin = "exec" command = "/bin/true" }\n')
        d.start(wait=False)
        rc = d.proc.wait(20)
        d.log.close()
        d.proc = None
        self.assertNotEqual(rc, 0)
        self.assertIn("as root", d.logtext())
