#!/usr/bin/python3
"""bench.py — `make bench`: parkpulse measured against rrdtool, librrd and
libmicrohttpd in the same run, on the same machine.

Every figure is a ratio against a baseline measured a moment earlier or later
by this script, so that a shared, noisy machine still gives comparable
numbers. Each measurement runs PP_BENCH_REPEAT times (default 3); the table
shows the median and, in brackets, the spread (lowest–highest).

It starts the real daemon (BUILD, default build/bench, built with -O2 and no
sanitizers; ready when it says READY=1 on our NOTIFY_SOCKET) on loopback
ports with a temporary state directory under BUILD,
generates synthetic parks and series, feeds them through the real spool
collector, and reads back through HTTP and a ZeroMQ SUB socket. Baselines:
  - `rrdtool update`, one process per file (on files created beforehand);
  - bench/rrd_loop.c: rrd_update_r once per file, in one process;
  - `rrdtool graph` as a process with the daemon's graph definition;
  - bench/mhd_ceiling.c: libmicrohttpd serving the same bytes from memory;
  - a bare PUB→SUB round trip with python3-zmq;
  - for the scale part, journals written by bench/gen_journal.c (15 million
    records in seconds) and rrd_loop's create+update rate against
    `parkpulsed --rebuild`;
  - a bare 4 KB append + os.fdatasync (the ingest latency part);
  - the ingest again under a concurrent `dd oflag=direct` writer;
  - the overview page of 100 parks × 14 indicators in headless Chromium
    (tests/integration/cdp.py), with its charts against ?charts=0.
The table goes to stdout and to bench/results.md. Nothing here asserts a time:
a missed target is printed as such, and the script exits 0 unless something
failed to work (a wrong answer is an error, a slow one is a result).
"""
import calendar
import http.client
import json
import os
import platform
import random
import resource
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "integration"))
from harness import free_port  # noqa: E402  (one ephemeral-port helper for tests and bench)

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build/bench"))
DAEMON = os.path.join(BUILD, "parkpulsed")
RRD_LOOP = os.path.join(BUILD, "bench", "rrd_loop")
CEILING = os.path.join(BUILD, "bench", "mhd_ceiling")
REPEAT = max(1, int(os.environ.get("PP_BENCH_REPEAT", "3")))
RESULTS = os.environ.get("PP_BENCH_RESULTS", os.path.join(ROOT, "bench", "results.md"))
NOW = "2022-01-15T10:00:00+08:00"   # 2021-12 is the latest month due
YEARS = range(2012, 2022)            # 10 years = 120 months
INDICATORS = [  # (id, label, unit) of config/indicators.conf, all cumulative
    ("industrial_output", "工业总产值", "亿元"),
    ("above_scale_output", "规模以上工业总产值", "亿元"),
    ("fixed_asset_investment", "固定资产投资", "亿元"),
    ("industrial_investment", "工业投资", "亿元"),
    ("tax_revenue", "税收收入", "亿元"),
    ("fiscal_revenue", "财税收入", "亿元"),
    ("fdi_actual", "实际利用外资", "万美元"),
    ("domestic_capital", "实际到位内资", "亿元"),
    ("trade_total", "进出口总额", "亿元"),
    ("high_tech_revenue", "高新技术产业营业收入", "亿元"),
]
WRK_SECONDS = int(os.environ.get("PP_BENCH_WRK_SECONDS", "3"))
RND = random.Random(20211215)


class BenchError(Exception):
    pass


# ---- small helpers ----------------------------------------------------------

def wait_for(pred, timeout, what, interval=0.002):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise BenchError("timed out after %.0fs waiting for %s" % (timeout, what))


def spread(xs):
    """(median, lowest, highest)."""
    return statistics.median(xs), min(xs), max(xs)


def fmt(xs, unit="", digits=2):
    m, lo, hi = spread(xs)
    f = "%%.%df" % digits
    return (f % m) + unit + " (" + (f % lo) + "–" + (f % hi) + ")"


def month_end(y, m):
    """00:00 UTC of the 1st of the month after (y, m): where parkpulse stamps month m."""
    y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return calendar.timegm((y, m, 1, 0, 0, 0))


def park_id(i):
    return "p%04d" % i


def series_rows(park, ind):
    """120 cumulative monthly figures (year to date) of one series."""
    rows = []
    for y in YEARS:
        acc = 0.0
        for m in range(1, 13):
            acc += RND.uniform(1, 10)
            rows.append((park, ind, y, m, round(acc, 1)))
    return rows


def csv_bytes(rows):
    out = ["park,indicator,period,value"]
    out += ["%s,%s,%d-%02d,%.1f" % r for r in rows]
    return ("\n".join(out) + "\n").encode()


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError("no VmRSS for pid %d" % pid)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise BenchError("%s failed (%d): %s" % (" ".join(cmd[:3]), r.returncode, r.stderr[-500:]))
    return r.stdout


def wrk(url, seconds=WRK_SECONDS):
    """Requests per second of `wrk -t2 -c32` on url; refuses a run with errors."""
    out = run(["wrk", "-t2", "-c32", "-d%ds" % seconds, url])
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m is None:
        raise BenchError("no Requests/sec in wrk output:\n" + out)
    if "Non-2xx" in out or re.search(r"Socket errors: connect [1-9]", out):
        raise BenchError("wrk saw errors against %s:\n%s" % (url, out))
    return float(m.group(1))


# ---- the daemon under test --------------------------------------------------

class Daemon:
    """One parkpulsed with its own state directory, spool and ports."""

    def __init__(self, work, n_parks, name, indicators=None):
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.state = os.path.join(self.dir, "state")
        self.spool = os.path.join(self.dir, "spool")
        self.stage = os.path.join(self.dir, "stage")   # same file system as the spool
        os.makedirs(self.spool)
        os.makedirs(self.stage)
        self.port, self.bus_port = free_port(), free_port()
        self.token = "bench-token-%d" % RND.randrange(1 << 30)
        token_file = os.path.join(self.dir, "token")
        with open(token_file, "w") as f:
            f.write(self.token + "\n")
        parks = os.path.join(self.dir, "parks.conf")
        with open(parks, "w", encoding="utf-8") as f:
            for i in range(n_parks):
                f.write('park "%s" { name = "园区%d" }\n' % (park_id(i), i))
        self.conf = os.path.join(self.dir, "parkpulse.conf")
        with open(self.conf, "w", encoding="utf-8") as f:
            f.write('timezone = "Asia/Shanghai"\n'
                    'state_dir = "%s"\nplugin_dir = "%s"\ndashboard_dir = "%s"\n'
                    'include("%s")\ninclude("%s")\n'
                    'http { listen = "127.0.0.1:%d" token_file = "%s" }\n'
                    'bus { publish = "tcp://127.0.0.1:%d" heartbeat = 1 }\n'
                    'collector "spool" { plugin = "spool" path = "%s" }\n'
                    % (self.state, os.path.join(BUILD, "collectors"), os.path.join(ROOT, "dashboards"),
                       indicators or os.path.join(ROOT, "config", "indicators.conf"), parks, self.port, token_file,
                       self.bus_port, self.spool))
        self.url = "http://127.0.0.1:%d" % self.port
        self.bus = "tcp://127.0.0.1:%d" % self.bus_port
        self.proc = None
        self.log = None

    def logtext(self):
        with open(os.path.join(self.dir, "daemon.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def start(self, timeout=60):
        """Starts the daemon; returns the seconds until it said READY=1 on
        $NOTIFY_SOCKET (a datagram socket of ours, sd_notify's protocol), which
        it does only once it is ready: journal replayed, statuses evaluated,
        the spool watched. Files renamed into the spool after that are seen by
        its inotify watch at once. /healthz must then answer 200."""
        import socket
        self.log = open(os.path.join(self.dir, "daemon.log"), "ab")
        path = os.path.join(self.dir, "notify.sock")
        if os.path.exists(path):
            os.unlink(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        sock.settimeout(0.05)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([DAEMON, "-c", self.conf, "-f", "--now", NOW],
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.notify = sock   # kept open until stop: the daemon also says STOPPING=1
        self.notify_path = path
        try:
            deadline = t0 + timeout
            while True:
                if self.proc.poll() is not None:
                    raise BenchError("parkpulsed exited with %s; log: %s" % (self.proc.returncode, self.log.name))
                if time.monotonic() > deadline:
                    raise BenchError("parkpulsed sent no READY=1 within %d s; log: %s" % (timeout, self.log.name))
                try:
                    msg = sock.recv(4096)
                except socket.timeout:
                    continue
                if b"READY=1" in msg.split(b"\n"):
                    break
        except BaseException:
            self.close_notify()
            raise
        elapsed = time.monotonic() - t0
        status, _ = self.get("/healthz")
        if status != 200:
            raise BenchError("READY=1 sent, but /healthz answered %d" % status)
        return elapsed

    def close_notify(self):
        if getattr(self, "notify", None) is not None:
            self.notify.close()
            os.unlink(self.notify_path)
            self.notify = None

    def metric(self, name):
        """The value of an unlabelled sample of /metrics."""
        _, body = self.get("/metrics")
        m = re.search(r"^%s (\S+)$" % re.escape(name), body.decode("utf-8"), re.M)
        if m is None:
            raise BenchError("no %s in /metrics" % name)
        return float(m.group(1))

    def syncs(self):
        """(fdatasync calls of the journal, seconds in them) so far."""
        return (self.metric("parkpulse_journal_syncs_total"),
                self.metric("parkpulse_journal_sync_seconds_total"))

    def rrd_settled(self):
        """true when no acknowledged figure waits for its RRD file (the
        X-RRD-Pending header of /healthz: /metrics would evaluate every series
        at each poll, taking CPU from the writer being waited for)."""
        with urllib.request.urlopen(self.url + "/healthz", timeout=30) as r:
            n = r.headers.get("X-RRD-Pending")
        if n is None or not n.isdigit():
            raise BenchError("no X-RRD-Pending header in /healthz")
        return int(n) == 0

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise BenchError("parkpulsed did not stop within 60 s")
        finally:
            self.log.close()
            self.proc = None
            self.close_notify()
        if rc != 0:
            raise BenchError("parkpulsed exited with %d at SIGTERM" % rc)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.log.close()
            self.proc = None
            self.close_notify()

    def get(self, path):
        with urllib.request.urlopen(self.url + path, timeout=30) as r:
            return r.status, r.read()

    def deliver(self, files):
        """Renames staged files into the spool and waits until every one is in
        done/ (moved there only after its figures are journaled with fsync) and
        the daemon has written every RRD file they touched (X-RRD-Pending 0:
        the files are written just after the acknowledgement). Returns the
        seconds from the first rename. The arrivals in done/ are counted with
        an inotify watch (DirWatch): listing done/ every 2 ms took about a
        fifth of a core from the daemon being timed on a two-core machine, and
        each listing holds done/'s lock against the spool's renames into it."""
        done = os.path.join(self.spool, "done")
        failed = os.path.join(self.spool, "failed")
        before = len(os.listdir(done)) if os.path.isdir(done) else 0
        watch = DirWatch(done, failed) if os.path.isdir(done) and os.path.isdir(failed) else None
        try:
            t0 = time.monotonic()
            for name in files:
                os.rename(os.path.join(self.stage, name), os.path.join(self.spool, name))

            def all_done():
                if os.path.isdir(failed) and os.listdir(failed):
                    raise BenchError("files refused: %s" % os.listdir(failed)[:5])
                return os.path.isdir(done) and len(os.listdir(done)) >= before + len(files)
            if watch is not None:
                watch.wait(len(files), 600, all_done)
            else:
                wait_for(all_done, 600, "%d files to reach done/" % len(files), 0.002)
            wait_for(self.rrd_settled, 600, "the RRD writes of %d files" % len(files), 0.005)
            return time.monotonic() - t0
        finally:
            if watch is not None:
                watch.close()

    def journal_records(self):
        n = 0
        jdir = os.path.join(self.state)
        for root, _, names in os.walk(jdir):
            for name in names:
                if name.startswith("journal"):
                    with open(os.path.join(root, name), "rb") as f:
                        n += sum(1 for line in f if line[:1] in (b"O", b"T"))
        return n


class DirWatch:
    """An inotify watch (libc through ctypes) on done/ and failed/ of a spool:
    wait() sleeps until the files given have arrived in done/, reading the
    events as they come, instead of listing the directory again and again."""
    IN_MOVED_TO, IN_CREATE = 0x80, 0x100

    def __init__(self, done, failed):
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        self.fd = libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if self.fd < 0:
            raise BenchError("inotify_init1: %s" % os.strerror(ctypes.get_errno()))
        self.wd = {}
        for tag, path in (("done", done), ("failed", failed)):
            wd = libc.inotify_add_watch(self.fd, path.encode(), self.IN_MOVED_TO | self.IN_CREATE)
            if wd < 0:
                err = ctypes.get_errno()
                os.close(self.fd)
                raise BenchError("inotify_add_watch %s: %s" % (path, os.strerror(err)))
            self.wd[wd] = tag

    def wait(self, n, timeout, check):
        """Until n files have arrived in done/ (a name taken there gets a
        suffix; the .warnings notes and .tmp files beside them are not
        counted), then check() must be true (it raises on a refused file); a
        file in failed/ is an error."""
        import select
        left = n
        deadline = time.monotonic() + timeout
        while left > 0:
            rest = deadline - time.monotonic()
            if rest <= 0:
                raise BenchError("timed out after %.0fs waiting for %d files to reach done/" % (timeout, left))
            r, _, _ = select.select([self.fd], [], [], rest)
            if not r:
                continue
            try:
                buf = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                continue
            off = 0
            while off < len(buf):
                wd, _, _, n = struct.unpack_from("iIII", buf, off)
                name = buf[off + 16:off + 16 + n].split(b"\0", 1)[0].decode("utf-8", "replace")
                off += 16 + n
                if self.wd.get(wd) == "failed":
                    check()  # raises with the refused files' names
                    raise BenchError("a file was refused: %s" % name)
                if not name.endswith((".warnings", ".tmp")):
                    left -= 1
        if not check():
            raise BenchError("every file's arrival was seen, but done/ holds fewer")

    def close(self):
        os.close(self.fd)


def rrd_fetch(path, y, m):
    """The value the RRD holds for month (y, m), via the rrdtool command."""
    t = calendar.timegm((y, m, 15, 12, 0, 0))
    out = run(["rrdtool", "fetch", path, "LAST", "-s", str(t), "-e", str(t)])
    for line in out.splitlines():
        head, _, vals = line.partition(":")
        if head.strip().isdigit():
            return float(vals.split()[0])
    raise BenchError("no row in rrdtool fetch of %s" % path)


def rrd_months(path, first, last):
    """{(y, m): value} for every month from first to last (y, m) held by the
    RRD, via one `rrdtool fetch` (the row of the 15th of each month)."""
    s = calendar.timegm((first[0], first[1], 1, 0, 0, 0))
    e = calendar.timegm((last[0], last[1], 28, 0, 0, 0))
    out = run(["rrdtool", "fetch", path, "LAST", "-s", str(s), "-e", str(e)])
    got = {}
    for line in out.splitlines():
        head, _, vals = line.partition(":")
        if not head.strip().isdigit():
            continue
        day = time.gmtime(int(head) - 43200)   # a row ends at 00:00 UTC after its day
        if day.tm_mday == 15:
            got[(day.tm_year, day.tm_mon)] = float(vals.split()[0])
    return got


def check_stored(daemon, names, rows_of, n_values, k=10):
    """What was stored is what was sent: an RRD file per series, the journal's
    figures, and every month of k sampled files read back with rrdtool."""
    rrd_files = [f for _, _, fs in os.walk(os.path.join(daemon.state, "rrd")) for f in fs if f.endswith(".rrd")]
    if len(rrd_files) != len(names):
        raise BenchError("%d RRD files after ingest, want %d" % (len(rrd_files), len(names)))
    if daemon.journal_records() < n_values:
        raise BenchError("journal holds fewer than %d figures" % n_values)
    for name in RND.sample(names, k):
        rows = rows_of[name]
        park, ind = rows[0][0], rows[0][1]
        got = rrd_months(os.path.join(daemon.state, "rrd", park, ind + ".rrd"),
                         (rows[0][2], rows[0][3]), (rows[-1][2], rows[-1][3]))
        for _, _, y, m, v in rows:
            if (y, m) not in got or abs(got[(y, m)] - v) > 1e-9:
                raise BenchError("%s/%s %d-%02d: RRD holds %r, sent %r" % (park, ind, y, m, got.get((y, m)), v))


class DiskWriter:
    """A concurrent writer on the bench's disk: dd with O_DIRECT, 256 MiB at a
    time into one file of the work directory, over and over until stopped."""

    def __init__(self, work):
        self.path = os.path.join(work, "dd.bin")
        self.proc = None

    def supported(self):
        r = subprocess.run(["dd", "if=/dev/zero", "of=" + self.path, "bs=1M", "count=1", "oflag=direct"],
                           capture_output=True)
        return r.returncode == 0

    def __enter__(self):
        self.proc = subprocess.Popen(
            ["sh", "-c", "while :; do dd if=/dev/zero of='%s' bs=1M count=256 oflag=direct 2>/dev/null; done"
             % self.path], start_new_session=True)
        time.sleep(0.5)  # under way
        return self

    def __exit__(self, *exc):
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait()
        if os.path.exists(self.path):
            os.unlink(self.path)


# ---- 1. ingest --------------------------------------------------------------

def bench_ingest(work, results):
    n_parks = 100
    series = [(park_id(p), ind[0]) for p in range(n_parks) for ind in INDICATORS]
    src = os.path.join(work, "ingest-src")
    os.makedirs(src)
    names, rows_of = [], {}
    for park, ind in series:
        rows = series_rows(park, ind)
        name = "%s-%s.csv" % (park, ind)
        with open(os.path.join(src, name), "wb") as f:
            f.write(csv_bytes(rows))
        names.append(name)
        rows_of[name] = rows
    n_values = sum(len(r) for r in rows_of.values())
    # baseline (a): one `rrdtool update` process per file, all 120 values in it
    script = os.path.join(work, "rrdtool-update.sh")
    updates = {name: " ".join("%d:%.1f:U" % (month_end(y, m), v) for _, _, y, m, v in rows_of[name])
               for name in names}
    listing = os.path.join(work, "files.txt")
    with open(listing, "w") as f:
        f.write("".join(os.path.join(src, n) + "\n" for n in names))

    def prepared(d):
        os.makedirs(d)
        with open(listing) as lf:
            run([RRD_LOOP, d, "prepare"], stdin=lf)

    def loop(d, mode):
        with open(listing) as lf:
            return float(run([RRD_LOOP, d, mode], stdin=lf).split()[0])

    # Nothing is deleted until the end of the part: ext4 without a journal
    # (these machines) skips inodes freed in the last few seconds when it
    # allocates, and a deletion of 1,000 files just before a timed run made
    # creating files several times slower for whichever side came next.
    t_daemon, t_update, t_create_update, t_loop, t_loop_create = [], [], [], [], []
    syncs, sync_s = [], []
    daemon = None

    def ingest_once(tag):
        """One daemon run: (seconds, fdatasync calls, seconds in them), checked."""
        d = Daemon(work, n_parks, "ingest-%s" % tag)
        for name in names:
            shutil.copyfile(os.path.join(src, name), os.path.join(d.stage, name))
        d.start()
        s0 = d.syncs()
        t = d.deliver(names)
        s1 = d.syncs()
        check_stored(d, names, rows_of, n_values)
        return d, t, s1[0] - s0[0], s1[1] - s0[1]

    for rep in range(REPEAT):
        if daemon is not None:
            daemon.stop()
        daemon, t, n_s, s_s = ingest_once(rep)
        t_daemon.append(t)
        syncs.append(n_s * 1000 / len(names))
        sync_s.append(s_s)

        pre = os.path.join(work, "pre-%d-a" % rep)
        prepared(pre)
        with open(script, "w") as f:
            for name in names:
                f.write("rrdtool update %s/%s.rrd %s\n" % (pre, name, updates[name]))
        t0 = time.monotonic()
        run(["sh", script])
        t_update.append(time.monotonic() - t0)
        pre = os.path.join(work, "pre-%d-a2" % rep)
        os.makedirs(pre)
        with open(script, "w") as f:
            for name in names:
                f.write("rrdtool create %s/%s.rrd --start 1322697600 --step 86400 "
                        "DS:value:GAUGE:3456000:U:U DS:pace:GAUGE:3456000:U:U RRA:LAST:0.5:1:7400\n"
                        "rrdtool update %s/%s.rrd %s\n" % (pre, name, pre, name, updates[name]))
        t0 = time.monotonic()
        run(["sh", script])
        t_create_update.append(time.monotonic() - t0)
        pre = os.path.join(work, "pre-%d-b" % rep)
        prepared(pre)
        t_loop.append(loop(pre, "update"))
        pre = os.path.join(work, "pre-%d-c" % rep)
        os.makedirs(pre)
        t_loop_create.append(loop(pre, "create"))

    # the same under a concurrent writer (dd oflag=direct), against the loop
    # under the same writer
    dd = DiskWriter(work)
    t_dd, syncs_dd, sync_s_dd, t_loop_dd = [], [], [], []
    if os.environ.get("PP_BENCH_DD", "1") != "0" and dd.supported():
        for rep in range(REPEAT):
            with dd:
                d, t, n_s, s_s = ingest_once("dd-%d" % rep)
                pre = os.path.join(work, "pre-%d-dd" % rep)
                os.makedirs(pre)
                t_loop_dd.append(loop(pre, "create"))
            d.stop()
            t_dd.append(t)
            syncs_dd.append(n_s * 1000 / len(names))
            sync_s_dd.append(s_s)

    per_file = [t / len(names) * 1000 for t in t_daemon]
    results.append(("Ingest %d files × 120 months → journal (fsync) → RRD written, done/ (end to end)" % len(names),
                    fmt(t_daemon, " s"), "%s ms/file, %.0fk values/s" % (
                        fmt(per_file, "", 3), n_values / statistics.median(t_daemon) / 1000), "", ""))
    results.append(("  journal fdatasync per 1,000 files; seconds blocked in them (quiet disk)",
                    fmt(syncs, "", 1), fmt(sync_s, " s", 3), "", ""))
    ra = [u / d for u, d in zip(t_update, t_daemon)]
    ra2 = [u / d for u, d in zip(t_create_update, t_daemon)]
    rb = [b / d for b, d in zip(t_loop, t_daemon)]
    rc = [d / b for b, d in zip(t_loop_create, t_daemon)]
    results.append(("  vs (a) `rrdtool update` process per file (files created beforehand, untimed)",
                    fmt(t_update, " s"), fmt(ra, "×", 1) + " faster", "≥ 25×", statistics.median(ra) >= 25))
    results.append(("  vs (a') `rrdtool create` + `rrdtool update` per file (the daemon's work minus the journal)",
                    fmt(t_create_update, " s"), fmt(ra2, "×", 1) + " faster", "", ""))
    results.append(("  vs (b) rrd_update_r loop, in-process (files created beforehand, no journal)",
                    fmt(t_loop, " s", 3), fmt(rb, "×", 2), "≥ 0.3×", statistics.median(rb) >= 0.3))
    results.append(("  vs (b') rrd_create_r2 + rrd_update_r loop (the daemon's work minus the journal)",
                    fmt(t_loop_create, " s", 3), fmt(rc, "×", 2) + " its time", "≤ 1.2×",
                    statistics.median(rc) <= 1.2))
    if t_dd:
        rdd = [d / b for b, d in zip(t_loop_dd, t_dd)]
        results.append(("  under a concurrent writer (dd oflag=direct): end to end; vs (b') under the same writer",
                        fmt(t_dd, " s"), fmt(rdd, "×", 2) + " its time (%s)" % fmt(t_loop_dd, " s", 3), "", ""))
        results.append(("  journal fdatasync per 1,000 files; seconds blocked in them (concurrent writer)",
                        fmt(syncs_dd, "", 1), fmt(sync_s_dd, " s", 3), "", ""))
    else:
        results.append(("  under a concurrent writer", "not measured (PP_BENCH_DD=0, or no O_DIRECT here)", "", "", ""))
    return daemon, series


# ---- 1b. a workbook against the same figures as CSV ------------------------

WIDE_INDICATORS = [i[0] for i in INDICATORS] + [
    "value_added_growth", "key_project_completion", "projects_signed", "rank_province"]


def wide_rows(n_parks, months):
    """(park, period, 14 values) rows of a wide table, one per park and month."""
    rows = []
    for p in range(n_parks):
        acc = [0.0] * len(INDICATORS)
        for m in range(1, months + 1):
            acc = [round(a + RND.uniform(1, 10), 1) for a in acc]
            rows.append([park_id(p), "2021-%02d" % m] + acc +
                        [round(RND.uniform(-5, 15), 1), round(RND.uniform(0, 100), 1),
                         RND.randrange(0, 50), RND.randrange(1, 101)])
    return rows


def bench_workbook(work, results):
    """1,000 rows × 14 indicators as an .xlsx (written by python3-openpyxl)
    and as CSV, each into a fresh daemon's spool, end to end to done/."""
    try:
        import openpyxl
    except ImportError:
        raise BenchError("python3-openpyxl is missing: `make bench` installs it")
    n_parks, months = 100, 10
    rows = wide_rows(n_parks, months)
    header = ["park", "period"] + WIDE_INDICATORS
    src = os.path.join(work, "workbook-src")
    os.makedirs(src)
    with open(os.path.join(src, "wide.csv"), "wb") as f:
        f.write(("\n".join(",".join(str(c) for c in r) for r in [header] + rows) + "\n").encode())
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "通报"
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(os.path.join(src, "wide.xlsx"))
    n_values = len(rows) * len(WIDE_INDICATORS)
    times = {"csv": [], "xlsx": []}
    for rep in range(REPEAT):
        for kind in ("csv", "xlsx") if rep % 2 == 0 else ("xlsx", "csv"):
            d = Daemon(work, n_parks, "workbook-%s-%d" % (kind, rep))
            shutil.copyfile(os.path.join(src, "wide." + kind), os.path.join(d.stage, "wide." + kind))
            d.start()
            try:
                times[kind].append(d.deliver(["wide." + kind]))
                # what was stored is what was sent
                for p, period, *vals in RND.sample(rows, 3):
                    st, body = d.get("/api/v1/series/%s/%s" % (p, WIDE_INDICATORS[0]))
                    pts = {x["period"]: x["value"] for x in json.loads(body)["points"]}
                    if pts.get(period) != vals[0]:
                        raise BenchError("%s %s %s: %r stored, %r sent (%s)" % (
                            p, WIDE_INDICATORS[0], period, pts.get(period), vals[0], kind))
                if d.journal_records() < n_values:
                    raise BenchError("%s: journal holds fewer than %d figures" % (kind, n_values))
            finally:
                d.stop()
    ratio = [x / c for x, c in zip(times["xlsx"], times["csv"])]
    results.append(("Ingest a workbook: %d rows × %d indicators (.xlsx, openpyxl) → journal + RRD"
                    % (len(rows), len(WIDE_INDICATORS)), fmt(times["xlsx"], " s"),
                    "%.0fk values/s" % (n_values / statistics.median(times["xlsx"]) / 1000), "", ""))
    results.append(("  vs the same figures as CSV, same run", fmt(times["csv"], " s"),
                    fmt(ratio, "×", 2) + " the CSV time", "≤ 3×", statistics.median(ratio) <= 3))
    print("bench: workbook/CSV time ratio %.2f (median of %d)" % (statistics.median(ratio), REPEAT),
          flush=True)


# ---- 2. graphs ---------------------------------------------------------------

def targets_csv(series, year=2021):
    out = ["park,indicator,year,target"]
    for park, ind in series:
        out.append("%s,%s,%d,%d" % (park, ind, year, RND.choice([60, 70, 80])))
    return ("\n".join(out) + "\n").encode()


def graph_path(park, ind):
    return "/graph/%s/%s.png?width=800&height=300" % (park, ind)


GRAPH_GAP = re.compile(r"[高低]于序时进度\([0-9.]+%\)[0-9.]+个百分点|与序时进度持平")


def graph_text(daemon, parks):
    """What the daemon prints on each series' graph (daemon/api.c graph_assemble):
    {(park, indicator): (latest, target, comment)} from /api/v1/parks/<park>."""
    out = {}
    for park in parks:
        status, body = daemon.get("/api/v1/parks/%s" % park)
        if status != 200:
            raise BenchError("GET /api/v1/parks/%s: %d" % (park, status))
        for i in json.loads(body)["indicators"]:
            m = GRAPH_GAP.search(i["message"] or "")
            out[(park, i["indicator"])] = (
                "%.15g" % i["value"], "%.15g" % i["target"] if i["target"] is not None else "",
                "%s %s" % (i["period"], m.group(0)) if m else "")
    return out


def rrdtool_graph_cmd(rrd, out, park_no, ind, text):
    """The daemon's graph of a series as an `rrdtool graph` command: the argument
    vector of daemon/store.c store_graph for GET /graph/<park>/<ind>.png?width=800
    &height=300 (daemon/graph.c, daemon/api.c): the calendar year of the latest
    figure (2021), last year dashed, the pace, the target line, the latest figure
    and the pace comment under the legend."""
    _, label, unit = [i for i in INDICATORS if i[0] == ind][0]
    latest, target, comment = text
    start, end = month_end(2020, 12), month_end(2021, 12)
    last_start, last_end = month_end(2019, 12), month_end(2020, 12)
    cmd = ["rrdtool", "graph", out, "--imgformat=PNG", "--width=800", "--height=300",
           "--start=%d" % start, "--end=%d" % end,
           "--title=园区%d · %s (%s)" % (park_no, label, unit), "--vertical-label=%s" % unit,
           "--font=DEFAULT:9:WenQuanYi Zen Hei", "--font=TITLE:11:WenQuanYi Zen Hei",
           "--units-exponent=0", "--lower-limit=0"]
    if target:
        cmd.append("--upper-limit=%s" % target)
    cmd += ["--color=BACK#FFFFFF", "--color=SHADEA#FFFFFF", "--color=SHADEB#FFFFFF",
            "--disable-rrdtool-tag", "--x-grid=MONTH:1:MONTH:1:MONTH:1:%d:%%-m月" % (30 * 86400),
            "DEF:v=%s:value:LAST" % rrd, "LINE3:v#2F6EBA:%s" % label,
            "DEF:l=%s:value:LAST:start=%d:end=%d" % (rrd, last_start, last_end),
            "SHIFT:l:%d" % (start - last_start), "LINE1:l#8A96A8:去年同期:dashes=5,3"]
    if target:
        cmd += ["DEF:p=%s:pace:LAST" % rrd, "LINE1:p#E8684A:序时进度:dashes=6,3",
                "HRULE:%s#C8A04A:全年目标 %s %s:dashes=10,4" % (target, target, unit)]
    cmd += ["COMMENT:\\l", "COMMENT:最新 %s %s\\l" % (latest, unit)]
    if comment:
        cmd.append("COMMENT:%s\\l" % comment)
    return cmd


def png_check(body, what):
    """Checks that body is a whole, valid PNG (signature, every chunk's CRC,
    IHDR, IDAT inflating to exactly its rows with valid filter bytes, IEND
    last); returns its (width, height). A broken image is an error."""
    if body[:8] != b"\x89PNG\r\n\x1a\n":
        raise BenchError("%s: not a PNG: %r" % (what, body[:16]))
    at, chunks = 8, []
    while at < len(body):
        if at + 12 > len(body):
            raise BenchError("%s: truncated chunk at %d" % (what, at))
        n, kind = struct.unpack(">I4s", body[at:at + 8])
        data = body[at + 8:at + 8 + n]
        if len(data) != n or struct.unpack(">I", body[at + 8 + n:at + 12 + n])[0] != zlib.crc32(kind + data):
            raise BenchError("%s: chunk %r at %d: bad length or CRC" % (what, kind, at))
        chunks.append((kind, data))
        at += 12 + n
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise BenchError("%s: chunks %s" % (what, [c[0] for c in chunks]))
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    bpp = {2: 3, 6: 4}.get(color)
    if depth != 8 or bpp is None or interlace != 0:
        raise BenchError("%s: IHDR depth %d colour type %d interlace %d" % (what, depth, color, interlace))
    raw = zlib.decompress(b"".join(d for k, d in chunks if k == b"IDAT"))
    row = 1 + w * bpp
    if len(raw) != h * row or any(raw[y * row] > 4 for y in range(h)):
        raise BenchError("%s: image data of %d bytes for %d×%d" % (what, len(raw), w, h))
    return w, h


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def children_cpu(pid):
    """CPU seconds (user + system) used so far by the processes whose parent
    is pid (the daemon's graph workers)."""
    total = 0.0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children_sched(pid):
    """(seconds on a CPU, seconds runnable but waiting for one) so far of the
    processes whose parent is pid (/proc/PID/schedstat), and how many."""
    run = wait = 0
    n = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                if int(f.read().rsplit(")", 1)[1].split()[1]) != pid:
                    continue
            with open("/proc/%s/schedstat" % name) as f:
                a, b = f.read().split()[:2]
        except OSError:
            continue
        run += int(a)
        wait += int(b)
        n += 1
    return run / 1e9, wait / 1e9, n


def process_cpu(pid):
    """CPU seconds (user + system) used so far by process pid itself (all its
    threads, not its children)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy():
    """CPU seconds every core of the machine spent busy so far (/proc/stat:
    all but idle and iowait)."""
    with open("/proc/stat") as f:
        t = [int(x) for x in f.readline().split()[1:]]
    return (sum(t[:8]) - t[3] - t[4]) / os.sysconf("SC_CLK_TCK")


class CpuShare:
    """Where the CPU went while cold graphs were drawn, in cores (CPU seconds
    per second): the daemon's graph workers, the daemon itself (HTTP threads,
    assembling the requests), this bench's client, and everything else on
    the machine (other processes: a busy machine caps the workers); and how
    the workers spent the time (schedstat): drawing, waiting for a CPU
    (the machine is the limit), or idle (no request for them: the daemon or
    the client is)."""

    def __init__(self, daemon_pid):
        self.pid = daemon_pid

    def _now(self):
        r = resource.getrusage(resource.RUSAGE_SELF)
        run, wait, n = children_sched(self.pid)
        self.n_workers = n
        return (time.monotonic(), children_cpu(self.pid), process_cpu(self.pid),
                r.ru_utime + r.ru_stime, machine_busy(), run, wait)

    def __enter__(self):
        self.t0 = self._now()
        return self

    def __exit__(self, *exc):
        t1 = self._now()
        d = [b - a for a, b in zip(self.t0, t1)]
        el = max(d[0], 1e-9)
        self.elapsed = d[0]
        self.workers, self.daemon, self.client = d[1] / el, d[2] / el, d[3] / el
        self.others = max(0.0, d[4] / el - self.workers - self.daemon - self.client)
        self.waiting = d[6] / el
        self.idle = max(0.0, self.n_workers - (d[5] + d[6]) / el)

    def text(self):
        return ("workers %.2f (waiting for a CPU %.2f, idle %.2f of %d), daemon %.2f, client %.2f, "
                "rest of the machine %.2f cores" % (self.workers, self.waiting, self.idle, self.n_workers,
                                                    self.daemon, self.client, self.others))


def graphs_daemon(work):
    """A daemon holding the bench's 1,000 series and their targets, for
    `bench.py graphs` (or `status`) run without the ingest part: the figures
    go in as one file, untimed."""
    n_parks = 100
    series = [(park_id(p), ind[0]) for p in range(n_parks) for ind in INDICATORS]
    d = Daemon(work, n_parks, "graphs")
    rows = [r for park, ind in series for r in series_rows(park, ind)]
    with open(os.path.join(d.stage, "all.csv"), "wb") as f:
        f.write(csv_bytes(rows))
    d.start()
    d.deliver(["all.csv"])
    return d, series


def fetch_png(conn, path):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    if r.status != 200 or r.getheader("Content-Type") != "image/png":
        raise BenchError("GET %s: %d %s %r" % (path, r.status, r.getheader("Content-Type"), body[:80]))
    return body


def bench_graphs(work, daemon, series, results):
    """Cold graphs (a series not graphed before: not in the daemon's image
    cache) over HTTP against `rrdtool graph` as a process with the same
    definition; 8 clients against one; the cached image against libmicrohttpd
    serving the same bytes. The daemon's graph workers warm themselves up
    at start (one throwaway render each, README "Graphs"), so "cold" means
    "not cached", not "first render in a fresh process". Every image answered
    is checked afterwards (untimed): a valid PNG of the size rrdtool draws."""
    # series not graphed before are cold: the cache is keyed by the series
    fresh = list(series)
    RND.shuffle(fresh)
    def take(n):
        out = fresh[:n]
        del fresh[:n]
        if len(out) < n:
            raise BenchError("not enough series left for cold graphs")
        return out
    answered = []  # (series, body): checked after the timed parts
    text = graph_text(daemon, sorted({p for p, _ in series}))
    n_serial, n_conc, n_cmd = 32, 128, 16  # 5 repeats fit in the 1,000 series
    serial, cmd, conc_rate, serial_rate, loads = [], [], [], [], []
    out_png = os.path.join(work, "graph.png")
    sizes = set()
    cores = []  # (1 client, 8 clients): CpuShare of each
    def one_client(n):
        """Seconds and where the CPU went (CpuShare) for n cold graphs, one
        after the other on one connection."""
        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
        batch = take(n)
        with CpuShare(daemon.proc.pid) as share:
            for s in batch:
                answered.append((s, fetch_png(conn, graph_path(*s))))
        conn.close()
        return share.elapsed, share
    for rep in range(REPEAT):
        # cold, one client: mean latency over n_serial distinct series, half
        # of them before the 8 clients and half after (the baseline of the
        # throughput ratio, so that a load that changes meanwhile weighs on both)
        el_serial, share1 = one_client(n_serial // 2)
        # baseline: `rrdtool graph` of the same definition, one process each
        script = os.path.join(work, "rrdtool-graph.sh")
        outs = []
        with open(script, "w") as f:
            for i, (park, ind) in enumerate(take(n_cmd)):
                outs.append(os.path.join(work, "graph-%d.png" % i))
                f.write(" ".join("'%s'" % a for a in rrdtool_graph_cmd(
                    os.path.join(daemon.state, "rrd", park, ind + ".rrd"), outs[-1], int(park[1:]), ind,
                    text[(park, ind)])) + " >/dev/null\n")
        t0 = time.monotonic()
        run(["sh", script])
        cmd.append((time.monotonic() - t0) / n_cmd * 1000)
        for o in outs:
            with open(o, "rb") as f:
                sizes.add(png_check(f.read(), "rrdtool graph " + o))
        # cold, 8 concurrent clients
        batch = take(n_conc)
        parts = [batch[i::8] for i in range(8)]
        errors = []
        def client(part):
            try:
                c = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
                for s in part:
                    answered.append((s, fetch_png(c, graph_path(*s))))
                c.close()
            except Exception as e:  # reported below
                errors.append(e)
        ts = [threading.Thread(target=client, args=(p,)) for p in parts]
        load0 = loadavg()
        with CpuShare(daemon.proc.pid) as share8:
            [t.start() for t in ts]
            [t.join() for t in ts]
        el = share8.elapsed
        load1 = loadavg()
        if errors:
            raise BenchError("concurrent graphs: %s" % errors[0])
        conc_rate.append(n_conc / el)
        el2, share2 = one_client(n_serial - n_serial // 2)
        # the two halves of one client as one: cores weighted by their time
        for k in ("workers", "daemon", "client", "others", "waiting", "idle"):
            setattr(share1, k, (getattr(share1, k) * el_serial + getattr(share2, k) * el2) / (el_serial + el2))
        el_serial += el2
        loads.append((load0, load1))
        cores.append((share1, share8))
        serial.append(el_serial / n_serial * 1000)
        serial_rate.append(n_serial / el_serial)
        print("bench: graphs: 8 clients %.1f/s, 1 client %.1f/s; load average %.2f before, %.2f after; "
              "8 clients: %s; 1 client: %s"
              % (conc_rate[-1], serial_rate[-1], load0, load1, share8.text(), share1.text()), flush=True)
    # every image answered: a valid PNG, as wide as rrdtool draws the same
    # definition, as high as it draws one of them (the pace comment is one
    # line under the legend, or none)
    widths, heights = {w for w, _ in sizes}, {h for _, h in sizes}
    if len(answered) != REPEAT * (n_serial + n_conc):
        raise BenchError("%d graphs answered, want %d" % (len(answered), REPEAT * (n_serial + n_conc)))
    for s, body in answered:
        w, h = png_check(body, "GET " + graph_path(*s))
        if w not in widths or not min(heights) - 20 <= h <= max(heights) + 20:
            raise BenchError("GET %s: a %d×%d image; rrdtool draws %s×%s" % (
                graph_path(*s), w, h, sorted(widths), sorted(heights)))
    # cached: one graph, warmed, under wrk; ceiling: the same bytes from memory
    park, ind = series[0]
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    png = fetch_png(conn, graph_path(park, ind))
    if fetch_png(conn, graph_path(park, ind)) != png:
        raise BenchError("GET %s: a different image the second time" % graph_path(park, ind))
    conn.close()
    png_check(png, "GET " + graph_path(park, ind))
    cached, ceil = [], []
    png_file = os.path.join(work, "cached.png")
    with open(png_file, "wb") as f:
        f.write(png)
    with Ceiling(png_file, "image/png") as c:
        for rep in range(REPEAT):
            cached.append(wrk(daemon.url + graph_path(park, ind)))
            ceil.append(wrk(c.url))
    # what wrk was served: still the same image, byte for byte
    conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=60)
    if fetch_png(conn, graph_path(park, ind)) != png:
        raise BenchError("GET %s: a different image after the cached runs" % graph_path(park, ind))
    conn.close()
    r_cold = [s / c for s, c in zip(serial, cmd)]
    r_conc = [c / s for c, s in zip(conc_rate, serial_rate)]
    results.append(("Graph 800×300 PNG, Chinese text, cold (not cached; workers warmed at start), "
                    "over HTTP (1 client)", fmt(serial, " ms", 1), "", "", ""))
    results.append(("  vs `rrdtool graph` as a process, same definition", fmt(cmd, " ms", 1),
                    fmt(r_cold, "×", 2) + " the time", "≤ 0.5×", statistics.median(r_cold) <= 0.5))
    results.append(("Graph cold throughput, 8 concurrent clients (load average before→after: %s; "
                    "cores used with 8 clients / 1 client by the graph workers: %s (waiting for a CPU: %s; "
                    "idle, no request for them: %s); the daemon: %s; "
                    "the bench's client: %s; the rest of the machine: %s)"
                    % (", ".join("%.2f→%.2f" % l for l in loads),
                       ", ".join("%.2f / %.2f" % (c8.workers, c1.workers) for c1, c8 in cores),
                       ", ".join("%.2f / %.2f" % (c8.waiting, c1.waiting) for c1, c8 in cores),
                       ", ".join("%.2f / %.2f" % (c8.idle, c1.idle) for c1, c8 in cores),
                       ", ".join("%.2f / %.2f" % (c8.daemon, c1.daemon) for c1, c8 in cores),
                       ", ".join("%.2f / %.2f" % (c8.client, c1.client) for c1, c8 in cores),
                       ", ".join("%.2f / %.2f" % (c8.others, c1.others) for c1, c8 in cores)),
                    fmt(conc_rate, " /s", 1),
                    fmt(r_conc, "×", 2) + " one client's serial rate (%s); graphs per CPU second of the "
                    "workers: %s with 8 clients, %s with 1" % (
                        fmt(serial_rate, " /s", 1),
                        fmt([r / max(c8.workers, 1e-9) for r, (_, c8) in zip(conc_rate, cores)], "", 1),
                        fmt([r / max(c1.workers, 1e-9) for r, (c1, _) in zip(serial_rate, cores)], "", 1)),
                    "≥ 1.7× (quiet machine)", statistics.median(r_conc) >= 1.7))
    rc = [a / b for a, b in zip(cached, ceil)]
    results.append(("Graph cached (wrk -t2 -c32), %d-byte PNG" % len(png), fmt(cached, " req/s", 0),
                    fmt(rc, "×", 2) + " of MHD from memory (%s)" % fmt(ceil, " req/s", 0), "≥ 0.8×",
                    statistics.median(rc) >= 0.8))


# ---- 3. status ---------------------------------------------------------------

class Ceiling:
    """bench/mhd_ceiling serving one file's bytes."""

    def __init__(self, path, ctype):
        self.port = free_port()
        self.proc = subprocess.Popen([CEILING, str(self.port), "4", ctype, path],
                                     stdout=subprocess.PIPE, text=True)
        if not self.proc.stdout.readline().startswith("ready"):
            raise BenchError("mhd_ceiling did not start")
        self.url = "http://127.0.0.1:%d/" % self.port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        self.proc.stdout.close()


def bench_status(work, daemon, series, results):
    for path, what in (("/api/v1/status", "/api/v1/status (%d series)" % len(series)),
                       ("/api/v1/parks/p0001", "/api/v1/parks/<park> (%d series)" % len(INDICATORS))):
        status, body = daemon.get(path)
        if status != 200:
            raise BenchError("GET %s: %d" % (path, status))
        doc = json.loads(body)
        n = sum(len(p["indicators"]) for p in doc["parks"]) if "parks" in doc else len(doc["indicators"])
        if n != (len(series) if path.endswith("status") else len(INDICATORS)):
            raise BenchError("%s lists %d series" % (path, n))
        f = os.path.join(work, "body.json")
        with open(f, "wb") as out:
            out.write(body)
        ours, ceil = [], []
        with Ceiling(f, "application/json") as c:
            for rep in range(REPEAT):
                ours.append(wrk(daemon.url + path))
                ceil.append(wrk(c.url))
        r = [a / b for a, b in zip(ours, ceil)]
        results.append(("%s, %d-byte JSON (wrk -t2 -c32)" % (what, len(body)), fmt(ours, " req/s", 0),
                        fmt(r, "×", 2) + " of MHD from memory (%s)" % fmt(ceil, " req/s", 0),
                        "≥ 0.5×", statistics.median(r) >= 0.5))


# ---- page speed ---------------------------------------------------------------

PAGE_INDICATORS = [  # all 14 of config/indicators.conf: (id, kind)
    ("industrial_output", "c"), ("above_scale_output", "c"), ("value_added_growth", "rate"),
    ("fixed_asset_investment", "c"), ("industrial_investment", "c"), ("tax_revenue", "c"),
    ("fiscal_revenue", "c"), ("fdi_actual", "c"), ("domestic_capital", "c"), ("trade_total", "c"),
    ("high_tech_revenue", "c"), ("key_project_completion", "pct"), ("projects_signed", "c"),
    ("rank_province", "rank")]

# True once the overview has rendered: DOMContentLoaded passed, the matrix is
# there and no chart is still pending; the value is performance.now() (ms
# since the navigation started), so the poll's own interval does not count.
PAGE_READY_JS = ("(document.readyState !== 'loading' && document.querySelector('table.matrix') && "
                 "document.querySelectorAll('table.matrix tbody tr').length >= 100 && "
                 "!document.querySelector('[data-chart=pending]')) ? performance.now() : 0")


def bench_pages(work, results):
    """The overview (/) of 100 parks × 14 indicators with 2021's twelve months
    and targets, fully rendered in headless Chromium: with its charts (the 重点关注
    charts drawn from /api/v1/series) and with ?charts=0, alternately."""
    try:
        from cdp import Browser, CHROMIUM
    except ImportError as e:
        raise BenchError("tests/integration/cdp.py: %s" % e)
    if not os.access(CHROMIUM, os.X_OK):
        results.append(("overview page, 100 parks × 14 indicators", "skipped: no %s" % CHROMIUM, "", "≤ 1 s", ""))
        return
    d = Daemon(work, 100, "pages")
    d.start()
    try:
        rows, targets = [], ["park,indicator,year,target"]
        for i in range(100):
            park = park_id(i)
            for ind, kind in PAGE_INDICATORS:
                acc = 0.0
                for m in range(1, 13):
                    if kind == "c":
                        acc += RND.uniform(1, 10)
                        v = round(acc, 1)
                    elif kind == "rate":
                        v = round(RND.uniform(2, 15), 1)
                    elif kind == "pct":
                        v = round(min(100, m * RND.uniform(5, 12)), 1)
                    else:
                        v = RND.randint(1, 40)
                    rows.append((park, ind, 2021, m, v))
                if kind == "c":
                    targets.append("%s,%s,2021,%.1f" % (park, ind, acc * RND.uniform(0.9, 1.3)))
                elif kind == "rate":
                    targets.append("%s,%s,2021,8" % (park, ind))
                elif kind == "rank":
                    targets.append("%s,%s,2021,10" % (park, ind))
        with open(os.path.join(d.stage, "pages.csv"), "wb") as f:
            f.write(csv_bytes(rows))
        with open(os.path.join(d.stage, "targets.csv"), "wb") as f:
            f.write(("\n".join(targets) + "\n").encode())
        d.deliver(["pages.csv"])
        d.deliver(["targets.csv"])
        status, body = d.get("/")
        html_bytes = len(body)
        weight = 0
        for asset in ("app.css", "uPlot.min.css", "uPlot.iife.min.js", "app.js", "chart.js", "index.js"):
            weight += len(d.get("/assets/" + asset)[1])
        times = {"on": [], "off": []}
        charts = 0
        with Browser(timeout=60) as b:
            page = b.page()
            page.viewport(1400, 1000)
            for rep in range(REPEAT + 1):  # the first pair warms the browser's caches up, not counted
                for mode in ("on", "off"):
                    page.goto(d.url + ("/" if mode == "on" else "/?charts=0"))
                    deadline = time.monotonic() + 60
                    ms = 0
                    while not ms:
                        if time.monotonic() > deadline:
                            raise BenchError("the overview did not render within 60 s (%s)" % mode)
                        try:
                            ms = page.eval(PAGE_READY_JS)
                        except Exception:
                            ms = 0
                        if not ms:
                            time.sleep(0.005)
                    if mode == "on":
                        charts = page.eval("document.querySelectorAll('[data-chart=drawn]').length")
                    if rep:
                        times[mode].append(ms / 1000.0)
        if not charts:
            raise BenchError("the overview drew no chart")
        on, off = times["on"], times["off"]
        results.append(("overview page, 100 parks × 14 indicators, %d charts drawn (headless Chromium 1400×1000; "
                        "HTML %d B + scripts and styles %d B)" % (charts, html_bytes, weight),
                        fmt(on, " s", 3), fmt([a / b for a, b in zip(on, off)], "×", 2) +
                        " of the same page with ?charts=0 (%s)" % fmt(off, " s", 3),
                        "≤ 1 s", statistics.median(on) <= 1.0))
    finally:
        d.stop()


# ---- 4. alert latency --------------------------------------------------------

def bench_alerts(work, results):
    """Each timed delivery is the first figure of a series with a target, far
    behind its pace: one new alert each (an alert id is published only once,
    so flipping one series back and forth would go quiet)."""
    import zmq
    n = int(os.environ.get("PP_BENCH_ALERTS", "200"))
    need = 2 * REPEAT * n + 1
    n_parks = (need + len(INDICATORS) - 1) // len(INDICATORS)
    fresh = [(park_id(p), ind[0]) for p in range(n_parks) for ind in INDICATORS]
    daemon = Daemon(work, n_parks, "alerts")
    try:
        with open(os.path.join(daemon.stage, "targets.csv"), "wb") as f:
            f.write(b"park,indicator,year,target\n" +
                    b"".join(b"%s,%s,2021,300\n" % (p.encode(), i.encode()) for p, i in fresh))
        daemon.start()
        daemon.deliver(["targets.csv"])
        ctx = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.SUBSCRIBE, b"alert.")
        sub.setsockopt(zmq.SUBSCRIBE, b"hb")
        sub.setsockopt(zmq.RCVTIMEO, 10000)
        sub.connect(daemon.bus)
        sub.recv_multipart()  # a heartbeat: the subscription is in place (slow joiner)
        want = [None]

        def row():
            park, ind = fresh.pop()
            want[0] = ("alert.%s.%s" % (park, ind)).encode()
            # 10 of 300 by 2021-12: critical
            return b"park,indicator,period,value\n%s,%s,2021-12,10\n" % (park.encode(), ind.encode())

        def expect(t0):
            # A series with a target and no figure is overdue; its first
            # figure raises the alert timed here and then clears the overdue
            # flag with a "received" notice, which is passed over.
            topic = b"hb"
            while True:
                topic, payload = sub.recv_multipart()[:2]
                if topic == b"hb":
                    continue
                if json.loads(payload).get("status") == "received":
                    continue
                break
            t1 = time.monotonic()
            if topic != want[0]:
                raise BenchError("unexpected topic %r, want %r" % (topic, want[0]))
            if json.loads(payload)["status"] != "critical":
                raise BenchError("unexpected alert %r" % payload[:200])
            return (t1 - t0) * 1000

        def by_spool(i):
            name = "a%05d.csv" % i
            tmp = os.path.join(daemon.spool, name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(row())
            t0 = time.monotonic()
            os.rename(tmp, os.path.join(daemon.spool, name))
            return expect(t0)

        conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)

        def by_post(i):
            body = row()
            t0 = time.monotonic()
            conn.request("POST", "/api/v1/observations", body=body,
                         headers={"Authorization": "Bearer " + daemon.token, "Content-Type": "text/csv"})
            ms = expect(t0)
            r = conn.getresponse()
            r.read()
            if r.status not in (200, 202):
                raise BenchError("POST: %d" % r.status)
            return ms

        by_spool(0)  # not counted: the first ingest of a run loads what it needs
        spool = [[by_spool(1 + rep * n + i) for i in range(n)] for rep in range(REPEAT)]
        post = [[by_post(i) for i in range(n)] for rep in range(REPEAT)]
        conn.close()
        sub.close()
        # baseline: a bare PUB→SUB round trip with the same payload size
        pub, bsub = ctx.socket(zmq.PUB), ctx.socket(zmq.SUB)
        port = free_port()
        pub.bind("tcp://127.0.0.1:%d" % port)
        bsub.setsockopt(zmq.SUBSCRIBE, b"alert.")
        bsub.setsockopt(zmq.RCVTIMEO, 10000)
        bsub.connect("tcp://127.0.0.1:%d" % port)
        payload = b"x" * 700
        def rt():
            t0 = time.monotonic()
            pub.send_multipart([b"alert.p0000.x", payload])
            bsub.recv_multipart()
            return (time.monotonic() - t0) * 1000
        def bjoined():
            try:
                rt()
                return True
            except zmq.Again:
                return False
        wait_for(bjoined, 30, "the bare SUB socket", 0.05)
        bare = [[rt() for i in range(n)] for rep in range(REPEAT)]
        pub.close()
        bsub.close()
        ctx.term()
    finally:
        daemon.kill()

    def pct(xs, p):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]
    bare_med = [statistics.median(b) for b in bare]
    for what, runs, target in (("spool (one-row CSV renamed in)", spool, 20), ("POST /api/v1/observations", post, 5)):
        med = [statistics.median(r) for r in runs]
        p99 = [pct(r, 99) for r in runs]
        ratio = [m / b for m, b in zip(med, bare_med)]
        results.append(("Alert latency from %s to SUB, %d alerts: median" % (what, n), fmt(med, " ms", 2),
                        fmt(ratio, "×", 0) + " the bare round trip", "≤ %d ms" % target,
                        statistics.median(med) <= target))
        results.append(("  p99", fmt(p99, " ms", 2), "", "", ""))
    results.append(("  baseline: bare PUB→SUB round trip (python3-zmq), median", fmt(bare_med, " ms", 3),
                    "p99 %s" % fmt([pct(b, 99) for b in bare], " ms", 3), "", ""))


# ---- 4b. ingest latency -------------------------------------------------------

def fdatasync_append_ms(path, n):
    """The baseline: n appends of 4 KB to one file, each followed by
    fdatasync, as the journal does (milliseconds each)."""
    block = b"x" * 4095 + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, block)
        os.fdatasync(fd)
        out = []
        for _ in range(n):
            t0 = time.monotonic()
            os.write(fd, block)
            os.fdatasync(fd)
            out.append((time.monotonic() - t0) * 1000)
        return out
    finally:
        os.close(fd)
        os.unlink(path)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def bench_latency(work, results):
    """One small file renamed into the spool until it is acknowledged (in
    done/), and one POST until its 202, against a bare 4 KB append +
    fdatasync in the same directory. Every figure is read back through the
    API afterwards."""
    n = int(os.environ.get("PP_BENCH_LATENCY", "200"))
    daemon = Daemon(work, 10, "latency")
    spool, post, bare = [], [], []
    try:
        daemon.start()
        done = os.path.join(daemon.spool, "done")
        conn = None   # one connection per series of POSTs: the daemon closes idle ones
        sent = {}
        seq = [0]

        def body():
            seq[0] += 1
            park, ind = park_id(seq[0] % 10), INDICATORS[seq[0] % len(INDICATORS)][0]
            v = 1000.0 + seq[0]
            sent[(park, ind)] = v
            return b"park,indicator,period,value\n%s,%s,2021-12,%.1f\n" % (park.encode(), ind.encode(), v)

        def by_spool(i):
            name = "l%05d.csv" % i
            tmp = os.path.join(daemon.spool, name + ".tmp")
            with open(tmp, "wb") as f:
                f.write(body())
            target = os.path.join(done, name)
            t0 = time.monotonic()
            os.rename(tmp, os.path.join(daemon.spool, name))
            deadline = t0 + 30
            while not os.path.exists(target):
                if time.monotonic() > deadline:
                    raise BenchError("%s not acknowledged within 30 s" % name)
                time.sleep(0.0001)
            return (time.monotonic() - t0) * 1000

        def by_post(i):
            b = body()
            if i == 0:   # the connection is made outside the timing
                conn.connect()
            t0 = time.monotonic()
            conn.request("POST", "/api/v1/observations", body=b,
                         headers={"Authorization": "Bearer " + daemon.token, "Content-Type": "text/csv"})
            r = conn.getresponse()
            r.read()
            ms = (time.monotonic() - t0) * 1000
            if r.status != 202:
                raise BenchError("POST: %d" % r.status)
            return ms

        by_spool(0)   # not counted: the first ingest of a run loads what it needs
        for rep in range(REPEAT):
            spool.append([by_spool(1 + rep * n + i) for i in range(n)])
            conn = http.client.HTTPConnection("127.0.0.1", daemon.port, timeout=30)
            post.append([by_post(i) for i in range(n)])
            conn.close()
            bare.append(fdatasync_append_ms(os.path.join(daemon.dir, "fdatasync.bin"), n))
        # what was stored: the latest figure of every series touched
        for (park, ind), v in sent.items():
            _, raw = daemon.get("/api/v1/parks/" + park)
            got = [x for x in json.loads(raw)["indicators"] if x["indicator"] == ind]
            if not got or got[0]["value"] != v:
                raise BenchError("%s/%s: API says %r, sent %r" % (park, ind, got[0]["value"] if got else None, v))
        wait_for(daemon.rrd_settled, 60, "the RRD writes", 0.005)
        daemon.stop()
    finally:
        daemon.kill()
    bare_med = [statistics.median(b) for b in bare]
    for what, runs in (("one-row file renamed into the spool → in done/", spool),
                       ("POST /api/v1/observations → 202", post)):
        med = [statistics.median(r) for r in runs]
        p99 = [pct(r, 99) for r in runs]
        results.append(("Ingest latency, %s, %d each: median" % (what, n), fmt(med, " ms", 2),
                        fmt([m / b for m, b in zip(med, bare_med)], "×", 1) + " a bare fdatasync", "", ""))
        results.append(("  p99", fmt(p99, " ms", 2),
                        fmt([p / pct(b, 99) for p, b in zip(p99, bare)], "×", 1) + " the bare p99", "", ""))
    results.append(("  baseline: 4 KB append + fdatasync (python os.fdatasync), median", fmt(bare_med, " ms", 3),
                    "p99 %s" % fmt([pct(b, 99) for b in bare], " ms", 3), "", ""))


# ---- 5. memory and start-up -----------------------------------------------------

GEN_JOURNAL = os.path.join(BUILD, "bench", "gen_journal")
SCALE_INDICATORS = 50


def scale_value(p, i, y, m):
    """The figure bench/gen_journal.c writes for park p, indicator i, month (y, m)."""
    per = y * 12 + m - 1
    return ((p * 7919 + i * 104729 + per * 31) % 99991 + 10) / 10


def scale_indicators(work):
    path = os.path.join(work, "scale-indicators.conf")
    with open(path, "w", encoding="utf-8") as f:
        for i in range(SCALE_INDICATORS):
            f.write('indicator "i%02d" { label = "指标%02d" unit = "亿元" kind = "cumulative" }\n' % (i, i))
    return path


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        st = f.read().rsplit(")", 1)[1].split()
    return (int(st[11]) + int(st[12])) / os.sysconf("SC_CLK_TCK")


def timed_get(d, path):
    t0 = time.monotonic()
    st, body = d.get(path)
    if st != 200:
        raise BenchError("GET %s: %d" % (path, st))
    return time.monotonic() - t0, body


def scale_check(d, n_parks, rrd, samples=12):
    """Figures read back through the API (and the RRD files with rrdtool fetch
    when rrd) equal to the generated ones: a wrong answer is an error."""
    rnd = random.Random(n_parks)
    for _ in range(samples):
        p, i = rnd.randrange(n_parks), rnd.randrange(SCALE_INDICATORS)
        y, m = rnd.choice(list(YEARS)), rnd.randrange(1, 13)
        want = scale_value(p, i, y, m)
        per = "%d-%02d" % (y, m)
        st, body = d.get("/api/v1/history/p%04d/i%02d/%s" % (p, i, per))
        got = json.loads(body)
        vals = [v.get("value") for v in got.get("vintages", got if isinstance(got, list) else [])]
        if st != 200 or not vals or vals[-1] != want:
            raise BenchError("p%04d/i%02d %s: the API says %r, generated %r" % (p, i, per, vals, want))
        if rrd:
            v = rrd_fetch(os.path.join(d.state, "rrd", "p%04d" % p, "i%02d.rrd" % i), y, m)
            if abs(v - want) > 1e-9 * max(1, abs(want)):
                raise BenchError("p%04d/i%02d %s: rrdtool fetch says %r, generated %r" % (p, i, per, v, want))


def rrd_loop_rate(work, n_files):
    """Files per second of bench/rrd_loop.c create (rrd_create_r2 + rrd_update_r
    per file, 120 monthly values, in one process) on n_files files."""
    src = os.path.join(work, "loop-src")
    out = os.path.join(work, "loop-rrd")
    os.makedirs(src)
    os.makedirs(out)
    names = []
    for k in range(n_files):
        name = os.path.join(src, "s%06d.csv" % k)
        with open(name, "w") as f:
            f.write("park,indicator,period,value\n")
            for y in YEARS:
                for m in range(1, 13):
                    f.write("p%04d,i%02d,%d-%02d,%.1f\n" % (k // 50, k % 50, y, m, scale_value(k // 50, k % 50, y, m)))
        names.append(name)
    lst = os.path.join(work, "loop-list")
    with open(lst, "w") as f:
        f.write("\n".join(names) + "\n")
    with open(lst) as lf:
        secs = float(run([RRD_LOOP, out, "create"], stdin=lf).split()[0])
    shutil.rmtree(src, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    os.unlink(lst)
    return n_files / secs


def bench_scale(work, results):
    """National scale: PP_BENCH_SCALE_SIZES series (default 1,000, 10,000 and
    125,000: 2,500 parks × 50 indicators) × 120 months, each journal written
    by bench/gen_journal.c. Start-up (to readiness), RSS after it and one
    /api/v1/status, the status and the overview's other JSON (/api/v1/alerts)
    per series, `parkpulsed --rebuild` in files/s against rrd_loop, and a
    journal that compaction shrinks (bench_compaction)."""
    sizes = [int(s) for s in os.environ.get("PP_BENCH_SCALE_SIZES", "1000,10000,125000").split(",")]
    # --rebuild writes every RRD file (~120 KB each: 125,000 are ~15 GB); above
    # this many series the start-up is measured on a clean-stop marker instead
    rebuild_max = int(os.environ.get("PP_BENCH_SCALE_REBUILD_MAX", "125000"))
    ind = scale_indicators(work)
    rows = []
    base = Daemon(work, 1, "scale-empty", indicators=ind)
    starts, rss = [], []
    try:
        for rep in range(REPEAT):
            starts.append(base.start())
            base.get("/api/v1/status")
            rss.append(rss_kb(base.proc.pid) / 1024)
            base.stop()
    finally:
        base.kill()
    s0, r0 = statistics.median(starts), statistics.median(rss)
    results.append(("Scale: empty daemon (baseline): start-up; RSS", fmt(starts, " s", 3), fmt(rss, " MB", 1), "", ""))
    loop_files = min(max(sizes), 10000)
    loop_rate = rrd_loop_rate(work, loop_files)
    flat_status = {}
    for n_series in sizes:
        n_parks = max(1, n_series // SCALE_INDICATORS)
        n_series = n_parks * SCALE_INDICATORS
        d = Daemon(work, n_parks, "scale-%d" % n_series, indicators=ind)
        try:
            jdir = os.path.join(d.state, "journal")
            os.makedirs(jdir)
            os.makedirs(os.path.join(d.state, "rrd"))
            t0 = time.monotonic()
            records, size = map(int, run([GEN_JOURNAL, os.path.join(jdir, "journal.log"), str(n_parks),
                                          str(SCALE_INDICATORS), "flat"]).split())
            gen_s = time.monotonic() - t0
            rebuilt = n_series <= rebuild_max
            # the journal is in arrival order (a month of every series after
            # another): the first start compacts it into series order (when it
            # is large enough, README Storage) and journals every series'
            # alert state (ingest would have); the marker says the (absent)
            # RRD files are clean, so that this start does not rebuild them
            with open(os.path.join(d.state, "rrd", ".clean"), "w") as f:
                f.write("%d\n" % records)
            first_start = d.start(timeout=600)
            first_log = d.logtext().split("http: listening on")[-1]
            d.stop()
            compacted = "journal compacted" in first_log
            m = re.search(r"journal replayed: .* in ([0-9.]+) s", first_log)
            first_replay = float(m.group(1)) if m else float("nan")
            m = re.search(r"journal compacted: .* in ([0-9.]+) s", first_log)
            first_compact = float(m.group(1)) if m else 0.0
            with open(os.path.join(jdir, "journal.log"), "rb") as f:
                after_bytes = os.fstat(f.fileno()).st_size
            if rebuilt:
                t0 = time.monotonic()
                run([DAEMON, "-c", d.conf, "--rebuild", "--now", NOW])
                rb = time.monotonic() - t0
                n_rrd = sum(len(fs) for _, _, fs in os.walk(os.path.join(d.state, "rrd")) if fs)
                if n_rrd < n_series:
                    raise BenchError("--rebuild wrote %d RRD files for %d series" % (n_rrd, n_series))
                one = os.path.getsize(os.path.join(d.state, "rrd", "p0000", "i00.rrd"))
                results.append(("Scale %d series: `parkpulsed --rebuild` of every RRD file (%d B each, %.1f GB)"
                                % (n_series, one, one * n_series / 1e9), "%.1f s, %.0f files/s" % (rb, n_series / rb),
                                "%.2f× the rrd_loop create+update rate (%.0f files/s on %d files)"
                                % (n_series / rb / loop_rate, loop_rate, loop_files), "", ""))
            starts, rss, cpus, st_t, st_cached, al_t = [], [], [], [], [], []
            for rep in range(REPEAT):
                starts.append(d.start())
                cpus.append(cpu_s(d.proc.pid))
                t, body = timed_get(d, "/api/v1/status")
                st_t.append(t)
                if len(json.loads(body)["parks"]) != n_parks:
                    raise BenchError("status after start-up is wrong")
                rss.append(rss_kb(d.proc.pid) / 1024)
                st_cached.append(timed_get(d, "/api/v1/status")[0])
                al_t.append(timed_get(d, "/api/v1/alerts")[0])
                if rep == 0:
                    scale_check(d, n_parks, rebuilt)
                    flat_status[n_series] = body
                d.stop()
            rows.append((n_series, records, size, gen_s, starts, rss, cpus, st_t, st_cached, al_t))
            results.append(("Scale %d series: first start on the journal in arrival order (%d records, %.0f MB)"
                            % (n_series, records, size / 1e6),
                            "%.3f s" % first_start,
                            ("replay %.3f s, then compaction into series order %.3f s (%.0f MB after)"
                             % (first_replay, first_compact, after_bytes / 1e6)) if compacted
                            else "replay %.3f s, not compacted (below the threshold)" % first_replay, "", ""))
        finally:
            d.kill()
            shutil.rmtree(d.dir, ignore_errors=True)
    first = None
    for n_series, records, size, gen_s, starts, rss, cpus, st_t, st_cached, al_t in rows:
        med_s, med_r = statistics.median(starts), statistics.median(rss)
        per_rec = (med_s - s0) / records * 1e6
        per_ser = (med_r - r0) * 1024 * 1024 / n_series
        st_ps = statistics.median(st_t) / n_series * 1e6
        ov_ps = (statistics.median(st_t) + statistics.median(al_t)) / n_series * 1e6
        growth = ""
        if first:
            growth = "; ×%.0f series → ×%.1f start-up, ×%.1f RSS above empty" % (
                n_series / first[0], (med_s - s0) / max(first[1] - s0, 1e-9), (med_r - r0) / max(first[2] - r0, 1e-9))
        big = n_series >= 125000
        results.append(("Scale %d series: RSS after start-up and one /api/v1/status" % n_series, fmt(rss, " MB", 1),
                        "%.0f bytes/series above empty (%.1f B/figure)" % (per_ser, per_ser / 120),
                        "≤ 256 MB" if big else "", med_r <= 256 if big else ""))
        results.append(("Scale %d series: start-up to ready, %d journal records (%.0f MB; generated in %.1f s; compacted by the first start when large enough)"
                        % (n_series, records, size / 1e6, gen_s), fmt(starts, " s", 3),
                        "%.2f µs/record above empty, CPU %s%s" % (per_rec, fmt(cpus, " s", 1), growth),
                        "≤ 5 s" if big else "", med_s <= 5 if big else ""))
        target = ""
        met = ""
        if first and n_series > first[0]:
            target = "≤ 2× the %d-series cost per series" % first[0]
            met = st_ps <= 2 * first[3] and ov_ps <= 2 * first[4]
        results.append(("Scale %d series: /api/v1/status (first, built) and the overview (+ /api/v1/alerts)" % n_series,
                        "%s; overview %.3f s; status cached %s" % (fmt(st_t, " s", 3), statistics.median(st_t) + statistics.median(al_t), fmt(st_cached, " s", 3)),
                        "%.2f µs/series status, %.2f µs/series overview%s" % (
                            st_ps, ov_ps, "" if not first else " (×%.2f, ×%.2f the %d-series cost)" % (
                                st_ps / first[3], ov_ps / first[4], first[0])), target, met))
        if first is None:
            first = (n_series, med_s, med_r, st_ps, ov_ps)
    bench_compaction(work, ind, flat_status, results)


def bench_compaction(work, ind, flat_status, results):
    """A journal with history (gen_journal history: after each monthly file the
    alert engine's state lines of its series, each replaced by the next
    month's: about twice the live records superseded): the first start
    compacts it; the next starts replay the live records only, and give the
    same figures (checked) as before."""
    n_series = int(os.environ.get("PP_BENCH_COMPACT_SERIES", "1000"))
    n_parks = n_series // SCALE_INDICATORS
    n_series = n_parks * SCALE_INDICATORS
    d = Daemon(work, n_parks, "compact-%d" % n_series, indicators=ind)
    try:
        jdir = os.path.join(d.state, "journal")
        os.makedirs(jdir)
        jpath = os.path.join(jdir, "journal.log")
        records, size = map(int, run([GEN_JOURNAL, jpath, str(n_parks), str(SCALE_INDICATORS), "history"]).split())
        run([DAEMON, "-c", d.conf, "--rebuild", "--now", NOW])  # RRD files, and the first compaction
        after = os.path.getsize(jpath)
        with open(jpath, "rb") as f:
            kept = sum(1 for _ in f) - 1
        if kept >= records:
            raise BenchError("the journal was not compacted (%d records)" % kept)
        d.start()
        d.stop()
        starts = []
        for rep in range(REPEAT):
            starts.append(d.start())
            if rep == 0:
                scale_check(d, n_parks, True)
                st, body = d.get("/api/v1/status")
                if n_series in flat_status and body != flat_status[n_series]:
                    raise BenchError("the compacted journal answers /api/v1/status unlike the same figures without repeats")
            d.stop()
        # the uncompacted journal's start-up, for comparison: generated again, compaction at start
        shutil.rmtree(jdir)
        os.makedirs(jdir)
        run([GEN_JOURNAL, jpath, str(n_parks), str(SCALE_INDICATORS), "history"])
        with open(os.path.join(d.state, "rrd", ".clean"), "w") as f:
            f.write("%d\n" % records)
        first = d.start()
        d.stop()
        results.append(("Compaction: %d series with monthly alert states: %d records (%.0f MB) → %d (%.0f MB)"
                        % (n_series, records, size / 1e6, kept, after / 1e6),
                        "start-up compacted %s" % fmt(starts, " s", 3),
                        "first start (replay of all, then compaction) %.3f s; status equal to the journal without repeats: %s"
                        % (first, "yes" if n_series in flat_status else "not compared (size not in PP_BENCH_SCALE_SIZES)"), "", ""))
    finally:
        d.kill()
        shutil.rmtree(d.dir, ignore_errors=True)


# ---- the table ------------------------------------------------------------------

def versions():
    def pkg(p):
        r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", p], capture_output=True, text=True)
        return r.stdout.strip() or "?"
    return "librrd %s, libmicrohttpd %s, libzmq %s, wrk %s, libzip %s, libxml2 %s" % (
        pkg("librrd8"), pkg("libmicrohttpd12"), pkg("libzmq5"), pkg("wrk"), pkg("libzip4"),
        pkg("libxml2"))


def table(results, elapsed):
    out = ["# parkpulse benchmark", "",
           "`make bench` on %s, %d cores, kernel %s; %s. Each figure: median (lowest–highest) of %d runs; "
           "every ratio is against a baseline measured in the same run. Total time %.0f s." % (
               time.strftime("%Y-%m-%d"), os.cpu_count(), platform.release(), versions(), REPEAT, elapsed),
           "",
           "| measurement | parkpulse / baseline | ratio | target | met |",
           "|---|---|---|---|---|"]
    for what, val, ratio, target, met in results:
        m = "" if met == "" else ("yes" if met else "**no**")
        out.append("| %s | %s | %s | %s | %s |" % (what, val, ratio, target, m))
    return "\n".join(out) + "\n"


def main():
    for exe in (DAEMON, RRD_LOOP, CEILING, GEN_JOURNAL):
        if not os.access(exe, os.X_OK):
            sys.exit("bench: %s is missing: run `make bench`, which builds it" % exe)
    for tool in ("wrk", "rrdtool"):
        if shutil.which(tool) is None:
            sys.exit("bench: %s is not installed: `make bench` installs it (as root)" % tool)
    only = set(sys.argv[1:])  # e.g. `bench.py ingest graphs` to run a part
    work = tempfile.mkdtemp(prefix="pp-bench-", dir=BUILD)
    free_gb = shutil.disk_usage(work).free / 1e9
    if free_gb < 4:
        print("bench: warning: %.1f GB free where it writes (%s); it needs about 3 GB" % (free_gb, work),
              file=sys.stderr)
    results = []
    t0 = time.monotonic()
    daemon = None
    try:
        if not only or only & {"ingest", "graphs", "status"}:
            if not only or "ingest" in only:
                print("bench: ingest ...", flush=True)
                daemon, series = bench_ingest(work, results)
            else:
                daemon, series = graphs_daemon(work)
            with open(os.path.join(daemon.stage, "targets.csv"), "wb") as f:
                f.write(targets_csv(series))
            daemon.deliver(["targets.csv"])
            if not only or "graphs" in only:
                print("bench: graphs ...", flush=True)
                bench_graphs(work, daemon, series, results)
            if not only or "status" in only:
                print("bench: status ...", flush=True)
                bench_status(work, daemon, series, results)
            daemon.stop()
        if not only or "workbook" in only:
            print("bench: workbook ...", flush=True)
            bench_workbook(work, results)
        if not only or "latency" in only:
            print("bench: latency ...", flush=True)
            bench_latency(work, results)
        if not only or "alerts" in only:
            print("bench: alerts ...", flush=True)
            bench_alerts(work, results)
        if not only or "pages" in only:
            print("bench: pages ...", flush=True)
            bench_pages(work, results)
        if not only or "scale" in only:
            print("bench: memory and start-up ...", flush=True)
            bench_scale(work, results)
    except BenchError as e:
        print("bench: FAILED: %s" % e, file=sys.stderr)
        print("bench: work directory kept: %s" % work, file=sys.stderr)
        if daemon:
            daemon.kill()
        return 1
    text = table(results, time.monotonic() - t0)
    print(text)
    if not only:
        with open(RESULTS, "w", encoding="utf-8") as f:
            f.write(text)
        print("bench: written to %s" % os.path.relpath(RESULTS, ROOT))
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
