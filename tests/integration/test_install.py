"""Issue: `make install` with PREFIX and DESTDIR lays out the tree, and
`make uninstall` takes it away again (keeping the operator's configuration)."""
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT

EXPECTED = [
    "etc/parkpulse/indicators.conf", "etc/parkpulse/parkpulse.conf", "etc/parkpulse/parkpulse.conf.example",
    "lib/systemd/system/parkpulsed.service", "opt/pp/bin/parkpulse", "opt/pp/sbin/parkpulsed",
    "opt/pp/lib/parkpulse/collectors/spool.so", "opt/pp/lib/parkpulse/collectors/exec.so",
    "opt/pp/lib/sysusers.d/parkpulse.conf", "opt/pp/lib/tmpfiles.d/parkpulse.conf",
    "opt/pp/share/man/man1/parkpulse.1", "opt/pp/share/man/man5/parkpulse.conf.5",
    "opt/pp/share/man/man8/parkpulsed.8", "opt/pp/share/parkpulse/dashboards/index.html",
    "opt/pp/share/parkpulse/dashboards/assets/app.js",
]


class InstallTest(unittest.TestCase):
    def test_install_and_uninstall(self):
        dest = tempfile.mkdtemp(prefix="pp-install-")
        self.addCleanup(shutil.rmtree, dest, True)
        build = os.path.relpath(BUILD, ROOT)
        args = ["make", "-s", "-C", ROOT, "BUILD=" + build, "PREFIX=/opt/pp", "DESTDIR=" + dest]
        r = subprocess.run(args + ["install"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        for f in EXPECTED:
            self.assertTrue(os.path.isfile(os.path.join(dest, f)), f)
        with open(os.path.join(dest, "lib/systemd/system/parkpulsed.service")) as f:
            unit = f.read()
        self.assertIn("ExecStart=/opt/pp/sbin/parkpulsed ", unit)
        with open(os.path.join(dest, "etc/parkpulse/parkpulse.conf"), encoding="utf-8") as f:
            conf = f.read()
        self.assertIn('"/opt/pp/lib/parkpulse/collectors"', conf)
        self.assertTrue(os.access(os.path.join(dest, "opt/pp/sbin/parkpulsed"), os.X_OK))
        r = subprocess.run(args + ["uninstall"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        left = sorted(os.path.relpath(os.path.join(d, f), dest) for d, _, fs in os.walk(dest) for f in fs)
        self.assertEqual(left, ["etc/parkpulse/parkpulse.conf"])
