"""`parkpulse backup DIR` and the restore steps of README ("Backup and
restore"), followed here on a test daemon's state directory:

  stop the daemon; move the state directory away; create state_dir/journal/;
  copy journal.log and alert-ids.log of the backup into it; start.

- While the daemon runs and a feeder POSTs figures one after another (a
  bounded number), a backup holds every figure acknowledged before it began
  and none that was not acknowledged by its end; restored, the status of what
  was fed before is what it was, the RRD files are rebuilt, and the journal
  count is the MANIFEST's.
- The MANIFEST and SHA256SUMS agree with the files (`sha256sum -c`); neither
  the token nor anything else but the journal, the id file and *.conf is in it.
- With the daemon stopped, a torn last line (a crash amid a write) is not in
  the copy, and every intact record is.
"""
import os
import re
import shutil
import subprocess
import tempfile
import threading
import http.client

from harness import CLIENT, DaemonTest, wait_for

TOKEN = "backup-token"
FEEDS = 300  # POSTs of the concurrent feeder (each one figure, acknowledged or not)


def manifest(path):
    """({key: value} of the '# key value' lines, {name: (sha256, size)})."""
    meta, files = {}, {}
    with open(os.path.join(path, "MANIFEST"), encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("# "):
                k, _, v = line[2:].partition(" ")
                meta[k] = v.strip()
            elif line:
                sha, size, name = line.split(" ", 2)
                files[name] = (sha, int(size))
    return meta, files


class BackupTest(DaemonTest):
    def setUp(self):
        super().setUp()
        self.out = tempfile.mkdtemp(prefix="pp-backup-")
        self.addCleanup(shutil.rmtree, self.out, True)

    def backup(self, d):
        r = subprocess.run([CLIENT, "-c", d.conf, "backup", self.out], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(r.returncode, 0, "parkpulse backup:\n" + r.stdout + r.stderr)
        path = r.stdout.strip()
        self.assertRegex(os.path.basename(path), r"^parkpulse-backup-\d{8}T\d{6}Z$")
        self.assertEqual(os.path.dirname(path), self.out)
        return path

    def restore(self, d, path):
        """README, "Backup and restore", with d stopped."""
        shutil.move(d.state, d.state + ".before-restore")
        os.makedirs(os.path.join(d.state, "journal"), mode=0o750)
        for name in ("journal.log", "alert-ids.log"):
            if os.path.exists(os.path.join(path, name)):
                shutil.copy(os.path.join(path, name), os.path.join(d.state, "journal", name))

    def check_manifest(self, path, d):
        meta, files = manifest(path)
        self.assertEqual(sorted(files), sorted(["journal.log", "alert-ids.log", "config/parkpulse.conf"])
                         if os.path.exists(os.path.join(path, "alert-ids.log"))
                         else ["config/parkpulse.conf", "journal.log"])
        for name, (sha, size) in files.items():
            self.assertEqual(os.path.getsize(os.path.join(path, name)), size, name)
        r = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=path, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), len(files))
        for dirpath, _, names in os.walk(path):
            for n in names:
                with open(os.path.join(dirpath, n), "rb") as f:
                    self.assertNotIn(TOKEN.encode(), f.read(), "the token is not backed up: " + n)
        m = re.match(r"(\d+) record", meta["journal"])
        self.assertIsNotNone(m, meta)
        return meta, int(m.group(1))

    def park_status(self, d, park):
        st = d.get_json("/api/v1/status")
        return [p for p in st["parks"] if p["id"] == park][0]

    def journal_records(self, d):
        status, _, body = d.get("/metrics")
        self.assertEqual(status, 200)
        return int(re.search(rb"\nparkpulse_journal_records (\d+)\n", body).group(1))

    def test_backup_while_feeding_then_restore(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        before = self.park_status(d, "xiangtan-etdz")
        fai = d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-15")

        acked = []          # values acknowledged (202), in order: one connection, one at a time
        errors = []
        started = threading.Event()

        def feeder():
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
            try:
                for n in range(1, FEEDS + 1):
                    body = ("park,indicator,period,value,unit\n"
                            "xiangtan-hitech,fixed_asset_investment,2021-08,%d.5,亿元\n" % n).encode()
                    conn.request("POST", "/api/v1/observations", body,
                                 {"Authorization": "Bearer " + TOKEN, "Content-Type": "text/csv"})
                    r = conn.getresponse()
                    r.read()
                    if r.status != 202:
                        errors.append("POST %d: %d" % (n, r.status))
                        return
                    acked.append(n + 0.5)
                    if n == 20:
                        started.set()
            except OSError as e:
                errors.append("POST: %s" % e)
            finally:
                started.set()
                conn.close()

        t = threading.Thread(target=feeder)
        t.start()
        try:
            started.wait(30)
            acked_before = len(acked)
            path = self.backup(d)
            acked_after = len(acked)
        finally:
            t.join(120)
        self.assertFalse(t.is_alive(), "the feeder did not finish")
        self.assertEqual(errors, [])
        self.assertGreaterEqual(acked_before, 20)
        meta, records = self.check_manifest(path, d)
        self.assertIn("acknowledged", meta["journal"])
        with open(os.path.join(path, "journal.log"), "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(b"#parkpulse-journal 1\n") and data.endswith(b"\n"))
        self.assertEqual(data.count(b"\n") - 1, records)
        self.assertEqual(d.stop(), 0)

        self.restore(d, path)
        d.start()
        log = d.logtext()
        self.assertNotIn("corrupt", log)
        self.assertNotIn("damaged", log)
        self.assertEqual(self.journal_records(d), records)
        # what was fed before the backup is as it was, RRD files included
        self.assertEqual(self.park_status(d, "xiangtan-etdz"), before)
        self.assertEqual(d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-15"), fai)
        # the concurrent feed: at least what was acknowledged when the backup
        # began, at most what was acknowledged when it ended
        got = d.series("xiangtan-hitech", "fixed_asset_investment")["value"]
        self.assertIn(got, acked[acked_before - 1:acked_after], (acked_before, acked_after))

    def test_backup_of_a_stopped_daemon_leaves_a_torn_line_out(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        before = self.park_status(d, "xiangtan-etdz")
        records = self.journal_records(d)
        self.assertEqual(d.stop(), 0)
        jpath = os.path.join(d.state, "journal", "journal.log")
        with open(jpath, "rb") as f:
            intact = f.read()
        with open(jpath, "ab") as f:   # what a crash amid a write leaves
            f.write(b"O\t1632000000\txiangtan-etdz\tfixed_asset_investment\t2021-09\t99")

        path = self.backup(d)
        meta, n = self.check_manifest(path, d)
        self.assertEqual(n, records)
        self.assertIn("not running", meta["journal"])
        with open(os.path.join(path, "journal.log"), "rb") as f:
            self.assertEqual(f.read(), intact)

        self.restore(d, path)
        d.start()
        self.assertEqual(self.journal_records(d), records)
        self.assertEqual(self.park_status(d, "xiangtan-etdz"), before)

    def test_usage_and_missing_journal(self):
        d = self.daemon(token=TOKEN)
        r = subprocess.run([CLIENT, "-c", d.conf, "backup"], capture_output=True, text=True)
        self.assertEqual(r.returncode, 64, r.stderr)
        r = subprocess.run([CLIENT, "-c", d.conf, "backup", self.out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 66, r.stderr)   # never started: no journal
        self.assertIn("journal.log", r.stderr)
        self.assertEqual(os.listdir(self.out), [])
