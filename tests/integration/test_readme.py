"""Issue 14: the README's demo commands work as written. The demo is started
the way `make run` starts it (config/demo.sh) in a scratch directory that
looks like the source tree (build/, config/, tests/ linked in), on free ports;
then every command of the README's code blocks that runs against the demo —
`export PARKPULSE_CONF=…`, `build/parkpulse …`, `curl …`, `rrdtool fetch …` —
is run with sh exactly as written (only the demo's ports 8080 and 5556
replaced by the test's), and must exit 0. Also: `make run` builds only what
runs and keeps its objects (a second run compiles nothing)."""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from harness import BUILD, ROOT, free_port, wait_for

README = os.path.join(ROOT, "README.md")


def readme_commands():
    """The demo commands of the README's indented code blocks, continuation
    lines joined."""
    with open(README, encoding="utf-8") as f:
        lines = f.read().splitlines()
    cmds, i = [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("    ") and re.match(r"(export PARKPULSE_CONF|build/parkpulse |curl |rrdtool fetch )",
                                               line[4:]):
            cmd = line[4:]
            while cmd.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd.rstrip()[:-1] + " " + lines[i].strip()
            cmds.append(cmd)
        i += 1
    return cmds


class ReadmeTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pp-readme-")
        self.proc = None
        for name, target in (("build", BUILD), ("config", os.path.join(ROOT, "config")),
                             ("tests", os.path.join(ROOT, "tests")),
                             ("dashboards", os.path.join(ROOT, "dashboards"))):
            os.symlink(target, os.path.join(self.dir, name))

    def tearDown(self):
        if self.proc is not None:
            # as Ctrl-C does: the whole process group (the shell of make run,
            # the daemon in its foreground, the notifier and the receiver)
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
            self.log.close()
        if not os.environ.get("PP_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def test_demo_commands_work_as_written(self):
        cmds = readme_commands()
        self.assertTrue(any(c.startswith("export PARKPULSE_CONF") for c in cmds), cmds)
        self.assertTrue(any(c.startswith("build/parkpulse push") for c in cmds), cmds)
        self.assertTrue(any(c.startswith("rrdtool fetch demo/state/") for c in cmds), cmds)
        port, bus = free_port(), free_port()
        env = dict(os.environ, PP_DEMO_PORT=str(port), PP_DEMO_BUS=str(bus), LANG="C.UTF-8")
        env.pop("PARKPULSE_CONF", None)
        self.log = open(os.path.join(self.dir, "demo.log"), "wb")
        self.proc = subprocess.Popen(["sh", "config/demo.sh", "build", "demo"], cwd=self.dir, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        spool = os.path.join(self.dir, "demo", "spool")

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(open(self.log.name, encoding="utf-8", errors="replace").read())
            r = subprocess.run(["curl", "-sf", "http://127.0.0.1:%d/healthz" % port], capture_output=True)
            done = os.path.isdir(os.path.join(spool, "done")) and \
                not [n for n in os.listdir(spool) if n.endswith(".csv")]
            if r.returncode != 0 or not done:
                return False
            # and the RRD files written (they follow the acknowledgement)
            m = subprocess.run(["curl", "-sf", "http://127.0.0.1:%d/metrics" % port], capture_output=True)
            return m.returncode == 0 and b"\nparkpulse_rrd_pending 0\n" in m.stdout
        wait_for(ready, 60, "the demo to start and take its spool")
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            printed = f.read()
        # make run prints the client's line
        self.assertIn("export PARKPULSE_CONF=%s/demo/parkpulse.conf" % self.dir, printed)
        self.assertNotIn("MHD_OPTION_EXTERNAL_LOGGER", printed)
        # all three seed parks have figures and targets
        status = json.loads(subprocess.run(["curl", "-sf", "http://127.0.0.1:%d/api/v1/status" % port],
                                           capture_output=True, check=True).stdout)
        for park in status["parks"]:
            with_target = [s for s in park["indicators"] if s.get("target") is not None]
            self.assertTrue(with_target, "%s has no figure with a target" % park["id"])
        self.assertEqual(len(status["parks"]), 3)
        script = "set -e\ncd %s\n" % self.dir
        for c in cmds:
            c = c.replace("127.0.0.1:8080", "127.0.0.1:%d" % port).replace(":5556", ":%d" % bus)
            script += c + "\n"
        r = subprocess.run(["sh", "-xc", script], capture_output=True, text=True, env=env, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("湘潭经开区", r.stdout)
        self.assertIn("湘潭高新区", r.stdout)
        # rrdtool fetch printed the month's value (192.2 as 1.9220000000e+02)
        self.assertIn("1.9220000000e+02", r.stdout)


class MakeRunBuildTest(unittest.TestCase):
    def test_run_builds_only_what_runs_and_keeps_objects(self):
        if os.environ.get("BUILD", "build") != "build":
            self.skipTest("checks the plain build only")
        # what `make run` builds: the daemon, the client, the collectors, in parallel
        r = subprocess.run(["make", "-n", "-C", ROOT, "run"], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, MAKEFLAGS=""))
        line = [l for l in r.stdout.splitlines() if "--no-print-directory -j" in l]
        self.assertTrue(line, r.stdout)
        self.assertNotIn("tests/check_", line[0])
        self.assertIn("parkpulsed", line[0])
        # built once, nothing is compiled again (no object was deleted as intermediate)
        subprocess.run(["make", "-s", "-C", ROOT, "-j2", "build/collectors/spool.so"], check=True,
                       capture_output=True, timeout=600)
        r = subprocess.run(["make", "-C", ROOT, "-n", "build/collectors/spool.so"], capture_output=True,
                           text=True, timeout=120)
        self.assertNotIn("cc ", r.stdout)
