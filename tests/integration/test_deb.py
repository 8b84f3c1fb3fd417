"""The Debian package (README, "The Debian package"): build/deb/parkpulse_*.deb,
made by `make deb`, installed on this machine with `apt-get install -y ./…deb`,
run from the installed files with the installed configuration, fed, read,
stopped and purged; then what is left is checked.

systemd is not PID 1 here, so the daemon is started directly, as the
installed service would run it: /usr/sbin/parkpulsed -c
/etc/parkpulse/parkpulse.conf as user parkpulse (setpriv, which execs, so
that SIGTERM reaches the daemon itself). First with the installed
configuration as it is (no park configured: a file for a park is refused
into failed/), then with a configuration of our own in a temporary
directory that include()s the installed one and adds one park — installed
files are never edited. Should the installed configuration's port (8080) or
bus (5556) be in use, both configurations are copies with ephemeral ports
instead (include paths made absolute).

It changes the machine (a package, a system user), so it runs only as root,
only when `make deb-test` (or `make check`, which runs that once) sets
PP_DEB_TEST, and never when anything of parkpulse is installed already (a
package or a `make install PREFIX=/usr`): it would overwrite or purge it.
Whatever happens, the cleanup stops the daemon, purges the package and
removes the user parkpulse if this test created it. Runs of it exclude
each other with a lock in /run/lock.
"""
import fcntl
import glob
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from harness import FIXTURES, NOW_2021_09, ROOT, free_port, serving, wait_for

DEB_GLOB = os.path.join(ROOT, "build", "deb", "parkpulse_*.deb")
LOCK = "/run/lock/parkpulse-deb-test.lock"
CONF = "/etc/parkpulse/parkpulse.conf"
# what the package puts on the machine or makes at run time
PACKAGE_PATHS = ["/usr/sbin/parkpulsed", "/usr/bin/parkpulse", "/usr/lib/parkpulse",
                 "/usr/share/parkpulse", "/etc/parkpulse", "/lib/systemd/system/parkpulsed.service",
                 "/usr/lib/sysusers.d/parkpulse.conf", "/usr/lib/tmpfiles.d/parkpulse.conf",
                 "/var/lib/parkpulse", "/var/spool/parkpulse"]
WANTS = "/etc/systemd/system/multi-user.target.wants/parkpulsed.service"
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
APT_OPTS = ["-o", "DPkg::Lock::Timeout=120"]


def run(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)


def port_busy(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return False
    except OSError:
        return True
    finally:
        s.close()


def installed():
    r = run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}", "parkpulse"])
    return r.returncode == 0 and r.stdout.strip() not in ("", "un")


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@unittest.skipUnless(os.environ.get("PP_DEB_TEST"), "runs in `make deb-test` (make check runs it once)")
@unittest.skipUnless(os.geteuid() == 0, "installs a package: root only")
class DebPackageTest(unittest.TestCase):
    def setUp(self):
        debs = sorted(glob.glob(DEB_GLOB))
        if len(debs) != 1:
            self.fail("expected one package %s (run `make deb`), found %r" % (DEB_GLOB, debs))
        self.deb = debs[0]
        os.makedirs(os.path.dirname(LOCK), exist_ok=True)
        self.lock = open(LOCK, "w")
        self.addCleanup(self.lock.close)
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        if installed():
            self.skipTest("the package parkpulse is installed already: purge it first")
        present = [p for p in PACKAGE_PATHS if os.path.lexists(p)]
        if present:
            self.skipTest("parkpulse files are on this machine already (%s): the test would "
                          "overwrite or remove them" % ", ".join(present))
        self.user_before = user_exists("parkpulse")
        self.tmp = tempfile.mkdtemp(prefix="pp-deb-")
        os.chmod(self.tmp, 0o755)  # the daemon (user parkpulse) reads our configuration
        self.proc = None
        self.log = None
        self.addCleanup(self.cleanup)

    def cleanup(self):
        self.stop_daemon(check=False)
        if installed():
            r = run(["apt-get", "purge", "-y"] + APT_OPTS + ["parkpulse"], env=APT_ENV)
            if r.returncode != 0:
                run(["dpkg", "--purge", "parkpulse"])
        if not self.user_before and user_exists("parkpulse"):
            run(["userdel", "parkpulse"])
            try:
                grp.getgrnam("parkpulse")
                run(["groupdel", "parkpulse"])
            except KeyError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    # ---- the daemon, from the installed files ----
    def start_daemon(self, conf, port):
        self.log_path = os.path.join(self.tmp, "daemon-%d.log" % port)
        self.log = open(self.log_path, "wb")
        cmd = ["setpriv", "--reuid=parkpulse", "--regid=parkpulse", "--init-groups", "--",
               "/usr/sbin/parkpulsed", "-c", conf, "-f", "--now", NOW_2021_09]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd="/",
                                     env=dict(os.environ, LANG="C.UTF-8"))
        self.url = "http://127.0.0.1:%d" % port

        wait_for(lambda: serving(self, "parkpulsed"), 30, "the installed parkpulsed to serve /healthz")

    def stop_daemon(self, check=True):
        if self.proc is None:
            return
        proc, self.proc = self.proc, None
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        self.log.close()
        if check:
            self.assertEqual(rc, 0, "parkpulsed stopped with %s:\n%s" % (rc, self.logtext()))

    def logtext(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get_json(self, path):
        status, body = self.get(path)
        self.assertEqual(status, 200, "GET %s: %s" % (path, body[:300]))
        return json.loads(body.decode("utf-8"))

    def drop(self, name):
        """Delivers a fixture into the installed spool (x.csv.tmp, then rename);
        returns where it went: 'done' or 'failed'."""
        spool = "/var/spool/parkpulse"
        tmp = os.path.join(spool, name + ".tmp")
        shutil.copyfile(os.path.join(FIXTURES, name), tmp)
        os.chmod(tmp, 0o640)
        os.chown(tmp, pwd.getpwnam("parkpulse").pw_uid, grp.getgrnam("parkpulse").gr_gid)
        os.rename(tmp, os.path.join(spool, name))

        def where():
            for d in ("done", "failed"):
                if os.path.exists(os.path.join(spool, d, name)):
                    return d
            return None
        return wait_for(where, 20, "%s to leave the spool (log: %s)" % (name, self.log_path))

    def config(self, name, extra=""):
        """A configuration of ours: the installed one include()d (with extra
        lines after it), or, when its ports are in use, a copy of it on
        ephemeral ports. Returns (file, http port)."""
        path = os.path.join(self.tmp, name)
        if not (port_busy(8080) or port_busy(5556)):
            text, port = 'include("%s")\n' % CONF, 8080
        else:
            port = free_port()
            with open(CONF, encoding="utf-8") as f:
                text = f.read()
            text = text.replace('include("indicators.conf")', 'include("/etc/parkpulse/indicators.conf")')
            text = text.replace('"127.0.0.1:8080"', '"127.0.0.1:%d"' % port)
            text = text.replace('"tcp://127.0.0.1:5556"', '"tcp://127.0.0.1:%d"' % free_port())
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + extra)
        os.chmod(path, 0o644)
        return path, port

    # ---- the test ----
    def test_install_run_purge(self):
        t0 = time.monotonic()
        r = run(["apt-get", "install", "-y"] + APT_OPTS + ["./" + os.path.relpath(self.deb, ROOT)],
                cwd=ROOT, env=APT_ENV)
        self.assertEqual(r.returncode, 0, "apt-get install:\n" + r.stdout + r.stderr)
        t_install = time.monotonic() - t0

        # what the maintainer scripts made
        pw = pwd.getpwnam("parkpulse")
        self.assertEqual(pw.pw_dir, "/var/lib/parkpulse")
        gid = grp.getgrnam("parkpulse").gr_gid
        st = os.stat("/etc/parkpulse/token")
        self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o640, 0, gid))
        with open("/etc/parkpulse/token") as f:
            self.assertRegex(f.read(), r"^[0-9a-f]{64}\n$")
        for d, mode in (("/var/lib/parkpulse", 0o750), ("/var/spool/parkpulse", 0o2770)):
            st = os.stat(d)
            self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (mode, pw.pw_uid, gid), d)
        self.assertEqual(os.readlink(WANTS), "/lib/systemd/system/parkpulsed.service")
        r = run(["dpkg-query", "-W", "-f=${Conffiles}", "parkpulse"])
        conffiles = sorted(l.split()[0] for l in r.stdout.splitlines() if l.strip())
        self.assertEqual(conffiles, ["/etc/parkpulse/indicators.conf", CONF])
        busy = port_busy(8080) or port_busy(5556)
        r = run(["/usr/bin/parkpulse", "check-config"])
        if busy:  # what start-up would refuse, check-config says
            self.assertEqual(r.returncode, 78, r.stdout + r.stderr)
            self.assertIn("already in use", r.stdout + r.stderr)
        else:
            self.assertEqual(r.returncode, 0, "installed check-config:\n" + r.stdout + r.stderr)

        # 1. the installed configuration, unedited: it starts; no park is configured yet
        conf, port = (CONF, 8080) if not busy else self.config("as-installed.conf")
        self.start_daemon(conf, port)
        self.assertEqual(self.drop("xiangtan-etdz-2021.csv"), "failed")
        self.assertEqual(self.get_json("/api/v1/status")["parks"], [])
        self.stop_daemon()

        # 2. with one park added in a configuration of our own
        park = '\npark "xiangtan-etdz" { name = "湘潭经开区" level = "national" type = "etdz" }\n'
        conf, port = self.config("with-park.conf", park)
        self.start_daemon(conf, port)
        os.unlink("/var/spool/parkpulse/failed/xiangtan-etdz-2021.csv")
        self.assertEqual(self.drop("xiangtan-etdz-2021.csv"), "done")
        # the installed client, with the token the package made (read through conf)
        r = run(["/usr/bin/parkpulse", "-c", conf, "push", os.path.join(FIXTURES, "targets-2021.csv")])
        self.assertEqual(r.returncode, 0, "parkpulse push:\n" + r.stdout + r.stderr)
        fai = [s for s in self.get_json("/api/v1/parks/xiangtan-etdz")["indicators"]
               if s["indicator"] == "fixed_asset_investment"][0]
        self.assertEqual(fai["period"], "2021-08")
        self.assertIsNotNone(fai.get("target"), fai)
        r = run(["/usr/bin/parkpulse", "-c", conf, "status"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("湘潭经开区", r.stdout)
        # a backup of the running service (README, "Backup and restore")
        r = run(["/usr/bin/parkpulse", "-c", conf, "backup", os.path.join(self.tmp, "backup")])
        self.assertEqual(r.returncode, 0, "parkpulse backup:\n" + r.stdout + r.stderr)
        r = run(["sha256sum", "-c", "SHA256SUMS"], cwd=r.stdout.strip())
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("journal.log: OK", r.stdout)
        self.stop_daemon()
        self.assertTrue(os.path.isfile("/var/lib/parkpulse/journal/journal.log"))

        # 3. purge: nothing of the package is left; the user stays (README)
        t1 = time.monotonic()
        r = run(["apt-get", "purge", "-y"] + APT_OPTS + ["parkpulse"], env=APT_ENV)
        self.assertEqual(r.returncode, 0, "apt-get purge:\n" + r.stdout + r.stderr)
        t_purge = time.monotonic() - t1
        self.assertFalse(installed())
        left = [p for p in PACKAGE_PATHS + [WANTS] if os.path.lexists(p)]
        self.assertEqual(left, [])
        self.assertTrue(user_exists("parkpulse"), "purge keeps the system user parkpulse")
        print("\n  deb test: install %.1fs, purge %.1fs, in all %.1fs"
              % (t_install, t_purge, time.monotonic() - t0))


if __name__ == "__main__":
    unittest.main()
