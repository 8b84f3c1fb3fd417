"""torture.py — `make torture`: kill -9 rounds with concurrent feeders, and full disks.

Starts the real parkpulsed through tests/integration/harness.py (ephemeral
loopback ports, a temporary state directory and spool) and checks the promise
of README "Feeding figures" and "Storage": an acknowledged figure is never
lost or reverted, RRD files agree with the journal, no alert id is published
twice and seq never goes backwards, nothing is left waiting in the spool.

Kill rounds (--rounds N, default 20). Each round: two feeders run at once for
a random short time, then the daemon gets SIGKILL at a random moment, is
started again and, once /healthz answers 200 and the spool is empty of *.csv,
verified. The feeders own disjoint keys (park, indicator, period) — the spool
feeder the even indicators of CUMULATIVE, the POST feeder the odd ones — and
each feeds its keys one at a time, so "the latest acknowledged value" of a key
is well defined:
  - the spool feeder writes name.csv.tmp and renames it to name.csv, sometimes
    the same name twice in quick succession (the second file replaces the first
    before or while it is read), sometimes a name already in done/; a file is
    acknowledged once it shows in done/ (recognised by its content: every file
    carries its own delivery id in the `source` column); it writes a key again
    only after the previous file holding it left the spool;
  - the POST feeder sends POST /api/v1/observations with the bearer token; a
    202 acknowledges, an answer lost to the kill (or a 5xx) leaves the figure
    "maybe applied".
Every value fed for a key is new for that key. A key's latest value must be
its last acknowledged value or one of the maybe-applied values fed after it;
otherwise it is "lost" (the acknowledged value is in no vintage) or "reverted"
(it is, but a later vintage shows something else). A figure that nobody fed
(or a refused file's) is "unexpected". For a sample of series, `rrdtool fetch`
at noon UTC on the 15th of each month must print the value the API gives for
the month (README "Storage": month M is stamped at 00:00 UTC on the first of
month M+1). A python3-zmq subscriber (topic `alert.`) runs across all rounds;
after each restart GET /api/v1/alerts?since=0 is read too: every seq names one
id and every id one seq, the bus never goes backwards, a restarted daemon's seq
is not below one already seen, and every seq up to the highest is seen.

Disk-full cases: state_dir on a 2 MB tmpfs filled with a filler file while
figures arrive; the spool on its own small tmpfs, filled while files wait in
it. Each checks that nothing acknowledged is lost, frees the space, checks that
the waiting files are taken, stops the daemon with SIGTERM, starts it again and
verifies again (RRD files too). Skipped (and said so) where mount is refused.

--twice P sets how often the spool feeder writes one name twice in quick
succession (default 0.15; 0 leaves that race out). --no-disk-full runs only
the kill rounds. PP_KEEP=1 keeps a failed run's temporary directories.

Randomness comes from one seeded RNG (the seed is printed; --seed or SEED=
replays the same choices and timings — thread interleaving is the machine's).
Every loop is bounded in count and time. The last line is `N passed, N failed`
(N counts rounds and disk-full cases); the exit status is 1 on any failure.
"""
import argparse
import errno
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
import harness  # noqa: E402
from harness import Daemon  # noqa: E402

import zmq  # noqa: E402  (python3-zmq, installed by make deps)

TOKEN = "torture-token"
PARKS = ["xiangtan-etdz", "xiangtan-hitech", "liuyang-etdz"]
CUMULATIVE = ["industrial_output", "above_scale_output", "fixed_asset_investment",
              "industrial_investment", "tax_revenue", "fiscal_revenue", "fdi_actual",
              "domestic_capital", "trade_total", "high_tech_revenue"]
SPOOL_INDICATORS = CUMULATIVE[0::2]
POST_INDICATORS = CUMULATIVE[1::2]
PERIODS = ["2021-%02d" % m for m in range(1, 9)]   # harness clock: 2021-09-15, 2021-08 is due
TARGET = 120.0
HEADER = "park,indicator,period,value,status,source\n"


def near(a, b):
    return a is not None and b is not None and abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def keys_of(parks, indicators):
    return [(p, i, per) for p in parks for i in indicators for per in PERIODS]


def csv_rows(rows, source):
    return HEADER + "".join("%s,%s,%s,%.2f,A,%s\n" % (k[0], k[1], k[2], v, source) for k, v in rows)


class Ledger:
    """Every value fed, per key, in the order fed: [value, state], state one of
    'sent' (maybe applied), 'acked' (must be there), 'refused' (must not be)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log = {}
        self.used = {}
        self.acked = 0

    def new_value(self, rng, key):
        base = TARGET * int(key[2][5:]) / 12.0
        used = self.used.setdefault(key, set())
        for _ in range(1000):
            v = round(base * rng.uniform(0.5, 1.3), 2)
            if v not in used:
                used.add(v)
                return v
        raise RuntimeError("no fresh value for %s" % (key,))

    def add(self, key, value, tag=""):
        entry = [value, "sent", tag]
        with self.lock:
            self.log.setdefault(key, []).append(entry)
        return entry

    def settle(self, entries, state):
        with self.lock:
            for e in entries:
                if e[1] == "sent":
                    e[1] = state
                    if state == "acked":
                        self.acked += 1

    def expectation(self, key):
        """(last acknowledged value or None, values allowed as latest, values ever maybe-applied)."""
        with self.lock:
            entries = list(self.log.get(key, ()))
        maybe = {e[0] for e in entries if e[1] in ("sent", "acked")}
        last = max((n for n, e in enumerate(entries) if e[1] == "acked"), default=None)
        if last is None:
            return None, None, maybe
        allowed = {entries[last][0]} | {e[0] for e in entries[last + 1:] if e[1] == "sent"}
        return entries[last][0], allowed, maybe


class Findings:
    """Failures of the current case, and the counts over the whole run."""

    def __init__(self):
        self.current = []
        self.lost, self.reverted, self.unexpected = set(), set(), set()
        self.dup_ids, self.seq_regressions, self.rrd_mismatches = 0, 0, 0
        self.left_waiting = 0
        self.acked = 0

    def fail(self, text, quiet=False):
        self.current.append(text)
        if not quiet:
            print("  FAIL " + text, flush=True)

    def take(self):
        f, self.current = self.current, []
        return f


def http(d, path, method="GET", body=None, timeout=5):
    """(status, body) or (None, exception text) when no answer came."""
    headers = {}
    if method == "POST":
        headers = {"Authorization": "Bearer " + TOKEN, "Content-Type": "text/csv"}
    req = urllib.request.Request(d.url + path, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except Exception as e:  # reset, refused, torn answer: the outcome is unknown
        return None, repr(e)


def post_rows(d, ledger, rows, source, findings):
    """POSTs rows [(key, value)]; returns the HTTP status (None: no answer)."""
    entries = [ledger.add(k, v, source) for k, v in rows]
    status, body = http(d, "/api/v1/observations", "POST", csv_rows(rows, source).encode())
    if status == 202:
        ledger.settle(entries, "acked")
    elif status is not None and 400 <= status < 500:
        ledger.settle(entries, "refused")
        findings.fail("POST %s refused %s: %s" % (source, status, body[:200]))
    return status


class Feeder:
    """A thread that feeds the daemon (its run()) until stopped."""

    def __init__(self, what):
        self.what = what
        self.stop = threading.Event()
        self.thread = None

    def start(self):
        self.stop.clear()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def join(self):
        self.stop.set()
        self.thread.join(30)
        if self.thread.is_alive():
            raise RuntimeError("%s feeder did not stop" % self.what)


class SpoolFeeder(Feeder):
    """Writes files into the spool the safe way and learns from done/ and
    failed/ which of them were acknowledged."""

    def __init__(self, d, ledger, findings, rng, keys, prefix="f", twice=0.15):
        self.d, self.ledger, self.findings, self.rng = d, ledger, findings, rng
        self.keys, self.prefix, self.twice = keys, prefix, twice
        self.n = 0
        self.deliveries = {}   # id -> (entries, expect_refused)
        self.locked = {}       # key -> id of the delivery that must leave the spool first
        self.names = []        # every name used, in order
        self.name_of = {}      # delivery id -> its name
        self.busy = {}         # name -> the last delivery written under it, until it left the spool
        self.seen = set()      # done/ and failed/ entries already read
        self.busy_seen = set()
        Feeder.__init__(self, "spool")

    def write(self, name, rows, expect_refused=False, raw=None):
        self.n += 1
        did = "%s%d" % (self.prefix, self.n)
        entries = [self.ledger.add(k, v, "%s %s" % (did, name)) for k, v in rows]
        self.deliveries[did] = (entries, expect_refused)
        tmp = os.path.join(self.d.spool, name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(raw(did) if raw else csv_rows(rows, did))
        os.rename(tmp, os.path.join(self.d.spool, name))
        self.name_of[did] = name
        self.busy[name] = did
        if name not in self.busy_seen:
            self.busy_seen.add(name)
            self.names.append(name)
        return did

    def resolve(self):
        """Reads what newly arrived in done/ and failed/; returns how many."""
        got = 0
        for sub in ("done", "failed"):
            path = os.path.join(self.d.spool, sub)
            try:
                names = os.listdir(path)
            except FileNotFoundError:
                continue
            for name in names:
                # reports beside the deliveries: failed/NAME.errors, and
                # done/NAME.warnings for a file accepted with warnings
                if (sub, name) in self.seen or name.endswith(".tmp") or name.endswith(".errors") \
                        or ".errors." in name or name.endswith(".warnings"):
                    continue
                try:
                    with open(os.path.join(path, name), encoding="utf-8") as f:
                        lines = f.read().splitlines()
                except OSError:
                    continue
                self.seen.add((sub, name))
                did = lines[1].split(",")[5] if len(lines) > 1 and lines[1].count(",") >= 5 else None
                if did not in self.deliveries:
                    self.findings.fail("%s/%s holds no delivery of ours: %r" % (sub, name, lines[:2]))
                    continue
                got += 1
                entries, expect_refused = self.deliveries[did]
                if sub == "done":
                    if expect_refused:
                        self.findings.fail("done/%s (%s) should have been refused" % (name, did))
                    self.ledger.settle(entries, "acked")
                else:
                    self.ledger.settle(entries, "refused")
                    if not expect_refused:
                        self.findings.fail("failed/%s (%s) was refused" % (name, did))
                    elif not os.path.exists(os.path.join(path, name + ".errors")):
                        self.findings.fail("spool: failed/%s has no %s.errors beside it" % (name, name))
                for k in [k for k, v in self.locked.items() if v == did]:
                    del self.locked[k]
                if self.busy.get(self.name_of[did]) == did:
                    del self.busy[self.name_of[did]]
        return got

    def deliver_random(self):
        free = [k for k in self.keys if k not in self.locked]
        if not free:
            return False
        keys = self.rng.sample(free, min(len(free), self.rng.randint(1, 4)))
        rows = [(k, self.ledger.new_value(self.rng, k)) for k in keys]
        name = "%s%05d.csv" % (self.prefix, self.n + 1)
        if self.names and self.rng.random() < 0.1:
            old = self.rng.choice(self.names)      # a name already in done/: done/name.csv.N
            if old not in self.busy:
                name = old
        if self.rng.random() < self.twice:
            # the same name twice in quick succession; the second file revises the first's keys
            self.write(name, rows)
            rows = [(k, self.ledger.new_value(self.rng, k)) for k in keys]
        did = self.write(name, rows)
        for k in keys:
            self.locked[k] = did
        return True

    def run(self, limit=100000):
        for _ in range(limit):
            if self.stop.is_set():
                return
            self.resolve()
            if not self.deliver_random():
                time.sleep(0.02)
            time.sleep(self.rng.uniform(0, 0.03))


class PostFeeder(Feeder):
    """POSTs 1-4 figures at a time, one request after the other."""

    def __init__(self, d, ledger, findings, rng, keys):
        self.d, self.ledger, self.findings, self.rng, self.keys = d, ledger, findings, rng, keys
        self.n = 0
        self.answers = {}
        Feeder.__init__(self, "POST")

    def post_random(self):
        keys = self.rng.sample(self.keys, self.rng.randint(1, 4))
        rows = [(k, self.ledger.new_value(self.rng, k)) for k in keys]
        self.n += 1
        status = post_rows(self.d, self.ledger, rows, "p%d" % self.n, self.findings)
        self.answers[status] = self.answers.get(status, 0) + 1
        return status

    def run(self, limit=100000):
        for _ in range(limit):
            if self.stop.is_set():
                return
            if self.post_random() is None:
                time.sleep(0.05)   # the daemon is gone; do not spin
            time.sleep(self.rng.uniform(0, 0.02))


class AlertWatch:
    """A python3-zmq subscriber on `alert.`, across restarts, plus ?since=0 reads."""

    def __init__(self, endpoint, findings):
        self.endpoint, self.findings = endpoint, findings
        self.lock = threading.Lock()
        self.pending = []       # (seq, id) from the bus, not yet checked
        self.by_seq, self.by_id = {}, {}
        self.bus_seen = set()
        self.last_bus_seq = 0
        self.high = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        ctx = zmq.Context()
        s = ctx.socket(zmq.SUB)
        s.setsockopt(zmq.SUBSCRIBE, b"alert.")
        s.setsockopt(zmq.RCVHWM, 1000000)
        s.connect(self.endpoint)
        try:
            while not self.stop.is_set():
                if s.poll(100) == 0:
                    continue
                frames = s.recv_multipart()
                body = json.loads(frames[-1].decode("utf-8"))
                with self.lock:
                    self.pending.append((body["seq"], body["id"]))
        finally:
            s.close(0)
            ctx.term()

    def record(self, seq, aid, where):
        if seq in self.by_seq and self.by_seq[seq] != aid:
            self.findings.seq_regressions += 1
            self.findings.fail("%s: seq %d names %s, earlier %s" % (where, seq, aid, self.by_seq[seq]))
        if aid in self.by_id and self.by_id[aid] != seq:
            self.findings.dup_ids += 1
            self.findings.fail("%s: id %s published as seq %d and as seq %d" % (where, aid, self.by_id[aid], seq))
        self.by_seq.setdefault(seq, aid)
        self.by_id.setdefault(aid, seq)
        self.high = max(self.high, seq)

    def drain_bus(self):
        with self.lock:
            got, self.pending = self.pending, []
        for seq, aid in got:
            if (seq, aid) in self.bus_seen:
                self.findings.dup_ids += 1
                self.findings.fail("bus: %s (seq %d) published twice" % (aid, seq))
            elif seq <= self.last_bus_seq:
                self.findings.seq_regressions += 1
                self.findings.fail("bus: seq %d (%s) after seq %d" % (seq, aid, self.last_bus_seq))
            self.bus_seen.add((seq, aid))
            self.last_bus_seq = max(self.last_bus_seq, seq)
            self.record(seq, aid, "bus")

    def check_snapshot(self, d, after_restart):
        """Reads ?since=0 (and the current seq) from a daemon that just started."""
        self.drain_bus()
        status, body = http(d, "/api/v1/alerts")
        if status != 200:
            self.findings.fail("GET /api/v1/alerts: %s %s" % (status, body[:200]))
            return
        cur = json.loads(body)["seq"]
        if after_restart and cur < self.high:
            self.findings.seq_regressions += 1
            self.findings.fail("restarted daemon's seq is %d, but seq %d was already seen" % (cur, self.high))
        status, body = http(d, "/api/v1/alerts?since=0")
        if status != 200:
            self.findings.fail("GET /api/v1/alerts?since=0: %s %s" % (status, body[:200]))
            return
        since = json.loads(body)
        prev = 0
        for a in since["alerts"]:
            if a["seq"] <= prev:
                self.findings.seq_regressions += 1
                self.findings.fail("since=0: seq %d after %d" % (a["seq"], prev))
            prev = a["seq"]
            self.record(a["seq"], a["id"], "since=0")
        if since.get("complete", True):
            ids = [a["id"] for a in since["alerts"]]
            if len(set(ids)) != len(ids):
                self.findings.dup_ids += len(ids) - len(set(ids))
                self.findings.fail("since=0 lists an id twice")

    def check_gaps(self):
        missing = [s for s in range(1, self.high + 1) if s not in self.by_seq]
        if missing:
            self.findings.seq_regressions += 1
            self.findings.fail("seq never seen on the bus nor in since=0: %s" % missing[:20])

    def close(self):
        self.stop.set()
        self.thread.join(10)


def wait_spool_empty(d, seconds=20.0):
    """Waits (bounded) until the spool holds no *.csv; returns what is left."""
    deadline = time.time() + seconds
    while True:
        left = sorted(n for n in os.listdir(d.spool) if n.endswith(".csv"))
        if not left or time.time() > deadline:
            return left
        time.sleep(0.05)


def series_points(d, park, ind):
    status, body = http(d, "/api/v1/series/%s/%s" % (park, ind), timeout=10)
    if status == 404:
        return {}
    if status != 200:
        raise AssertionError("GET series %s/%s: %s %s" % (park, ind, status, body[:200]))
    return {p["period"]: p["value"] for p in json.loads(body)["points"]}


def verify_figures(d, ledger, keys, findings, where):
    checked = again = 0
    series = sorted({(k[0], k[1]) for k in keys})
    for park, ind in series:
        have = series_points(d, park, ind)
        for per in PERIODS:
            key = (park, ind, per)
            acked, allowed, maybe = ledger.expectation(key)
            actual = have.get(per)
            if acked is None:
                if actual is not None and not any(near(actual, v) for v in maybe):
                    findings.unexpected.add((key, actual))
                    findings.fail("%s: %s shows %s, never acknowledged nor sent" % (where, "/".join(key), actual))
                continue
            checked += 1
            if any(near(actual, v) for v in allowed):
                continue
            status, body = http(d, "/api/v1/history/%s/%s/%s" % key)
            vintages = [v["value"] for v in json.loads(body)["vintages"]] if status == 200 else []
            what, found = ("reverted", findings.reverted) if any(near(v, acked) for v in vintages) \
                else ("lost", findings.lost)
            if (key, acked) in found:   # found in an earlier round: counted once, printed once
                again += 1
                findings.fail("%s: %s still %s" % (where, "/".join(key), what), quiet=True)
                continue
            found.add((key, acked))
            with ledger.lock:
                fed = ["%s %s (%s)" % (e[0], e[1], e[2]) for e in ledger.log[key]]
            findings.fail("%s: %s %s: acknowledged %s, latest %s, vintages %s; fed (oldest first): %s"
                          % (where, "/".join(key), what, acked, actual, vintages, ", ".join(fed)))
    if again:
        print("  FAIL %s: %d figure(s) found lost or reverted earlier still are" % (where, again))
    return checked


def verify_rrd(d, series, findings, where):
    """`rrdtool fetch` at noon UTC of the 15th of each month against the API."""
    for park, ind in series:
        have = series_points(d, park, ind)
        if not os.path.exists(d.rrd(park, ind)):
            if have:
                findings.rrd_mismatches += 1
                findings.fail("%s: %s/%s has figures but no RRD file" % (where, park, ind))
            continue
        bad = []
        for per in PERIODS:
            try:
                got = d.fetch_day(park, ind, per + "-15")[0]
            except (subprocess.CalledProcessError, AssertionError) as e:
                findings.rrd_mismatches += 1
                findings.fail("%s: rrdtool fetch %s/%s %s: %s" % (where, park, ind, per, e))
                break
            want = have.get(per)
            ok = math.isnan(got) if want is None else near(got, want)
            if not ok:
                bad.append("%s: RRD %s, API %s" % (per, got, want))
        if bad:
            findings.rrd_mismatches += 1
            findings.fail("%s: RRD %s/%s disagrees with the API in %d month(s): %s"
                          % (where, park, ind, len(bad), "; ".join(bad)))


def check_log(d, findings, where):
    """A sanitizer report in the daemon's log (BUILD=build/asan) is a failure."""
    try:
        with open(d.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return
    for mark in harness.DaemonTest.SANITIZER_MARKS:
        if mark in text:
            at = text.index(mark)
            findings.fail("%s: sanitizer report in the daemon's log:\n%s" % (where, text[max(0, at - 200):at + 3000]))
            return


def kill9(d):
    d.stop(signal.SIGKILL)


def post_targets(d, ledger, findings, parks, indicators):
    body = "park,indicator,year,target\n" + "".join(
        "%s,%s,2021,%g\n" % (p, i, TARGET) for p in parks for i in indicators)
    status, text = http(d, "/api/v1/observations", "POST", body.encode())
    if status != 202:
        raise AssertionError("targets: %s %s" % (status, text[:300]))


# ---------------------------------------------------------------- kill rounds

def kill_rounds(rounds, rng, findings, results, twice):
    d = Daemon(token=TOKEN)
    ledger = Ledger()
    spool_keys = keys_of(PARKS, SPOOL_INDICATORS)
    post_keys = keys_of(PARKS, POST_INDICATORS)
    spool = SpoolFeeder(d, ledger, findings, random.Random(rng.random()), spool_keys, twice=twice)
    poster = PostFeeder(d, ledger, findings, random.Random(rng.random()), post_keys)
    watch = AlertWatch(d.bus, findings)
    all_series = sorted({(k[0], k[1]) for k in spool_keys + post_keys})
    times = []
    try:
        d.start()
        post_targets(d, ledger, findings, PARKS, CUMULATIVE)
        for r in range(1, rounds + 1):
            t0 = time.time()
            feed = rng.uniform(0.2, 1.5)
            spool.start()
            poster.start()
            time.sleep(feed)
            kill9(d)
            spool.join()
            poster.join()
            d.start()                       # waits for /healthz 200
            left = wait_spool_empty(d)
            spool.resolve()
            where = "round %d" % r
            if left:
                findings.left_waiting += len(left)
                findings.fail("%s: still in the spool after 20 s: %s" % (where, left[:10]))
            checked = verify_figures(d, ledger, spool_keys + post_keys, findings, where)
            verify_rrd(d, rng.sample(all_series, 4), findings, where)
            watch.check_snapshot(d, after_restart=True)
            if r == rounds:
                watch.check_gaps()
            fails = findings.take()
            times.append(time.time() - t0)
            print("round %d: fed %.2f s, %d figures acknowledged so far, %d keys checked, "
                  "alert seq %d, %.1f s: %s" % (r, feed, ledger.acked, checked, watch.high, times[-1],
                                               "FAILED" if fails else "ok"), flush=True)
            results.append((where, fails))
        d.stop()
    except Exception as e:   # a broken round is a failure, with what happened
        findings.fail("round %d stopped: %r (log %s)" % (len(results) + 1, e, d.log_path))
        results.append(("round %d" % (len(results) + 1), findings.take()))
        for r in range(len(results) + 1, rounds + 1):
            results.append(("round %d" % r, ["not run"]))
    finally:
        for feeder in (spool, poster):
            feeder.stop.set()
            if feeder.thread is not None:
                feeder.thread.join(30)
        watch.close()
        check_log(d, findings, "kill rounds")
        if findings.current:     # counted against the last round
            if results:
                results[-1][1].extend(findings.take())
            else:
                results.append(("round 1", findings.take()))
        keep = os.environ.get("PP_KEEP") and any(f for _, f in results)
        if keep:
            print("kept", d.dir)
            if d.proc is not None:
                d.proc.kill()
                d.proc.wait()
        else:
            d.cleanup()
    print("POST answers: %s" % ", ".join("%s×%d" % (k, v) for k, v in sorted(poster.answers.items(), key=str)))
    if times:
        print("a round took %.1f s on average (%.1f–%.1f)" % (sum(times) / len(times), min(times), max(times)))
    findings.acked += ledger.acked


# ---------------------------------------------------------------- disk full

def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size, "tmpfs", path],
                       capture_output=True, text=True)
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def umount(path):
    subprocess.run(["umount", path], capture_output=True)


def fill(path, limit=8 << 20):
    """Writes path until the file system says ENOSPC (at most limit bytes)."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for chunk in (65536, 4096, 512):
            buf = b"\0" * chunk
            while written < limit:
                try:
                    written += f.write(buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    return written


def wait_acked(spool, dids, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        spool.resolve()
        if all(spool.deliveries[i][0][0][1] != "sent" for i in dids):
            return True
        time.sleep(0.05)
    return False


def deliver_some(spool, d, n):
    """n spool files, each taken (the spool empty again) before the next."""
    for _ in range(n):
        spool.deliver_random()
        wait_spool_empty(d, 10)
        spool.resolve()


def wait_space_back(d, spool, findings, where):
    """Once the filler is gone: every waiting file taken within 20 s."""
    left = wait_spool_empty(d, 20)
    spool.resolve()
    if left:
        findings.left_waiting += len(left)
        findings.fail("%s: still in the spool 20 s after space returned: %s" % (where, left))


def restart_and_verify(d, ledger, keys, series, findings, where):
    """A clean stop (exit status 0), a start, and the figures and RRD files kept."""
    rc = d.stop()
    if rc != 0:
        findings.fail("%s: SIGTERM exit status %s" % (where, rc))
    d.start()
    verify_figures(d, ledger, keys, findings, "%s: restarted" % where)
    verify_rrd(d, series, findings, "%s: restarted" % where)
    d.stop()


def end_full_case(d, ledger, findings, where, mount):
    """The end of a full-disk case, however it went: the daemon gone, its log
    checked, the tmpfs at mount unmounted, the directory removed (kept with
    PP_KEEP when the case failed)."""
    if d.proc is not None:
        d.proc.kill()
        d.proc.wait()
        d.log.close()
        d.proc = None
    findings.acked += ledger.acked
    check_log(d, findings, where)
    umount(mount)
    if os.environ.get("PP_KEEP") and findings.current:
        print("kept", d.dir)
    else:
        d.cleanup()


def full_disk_case(findings, where, mountpoint, size, body):
    """Runs body(d, ledger) against a daemon whose directory mountpoint(d) is a
    tmpfs of size; a failure says where; the end is end_full_case()."""
    d = Daemon(token=TOKEN)
    ok, why = mount_tmpfs(mountpoint(d), size)
    if not ok:
        d.cleanup()
        return "skipped (mount -t tmpfs refused: %s)" % why
    ledger = Ledger()
    try:
        body(d, ledger)
    except Exception as e:
        findings.fail("%s: stopped: %r (log %s)" % (where, e, d.log_path))
    finally:
        end_full_case(d, ledger, findings, where, mountpoint(d))
    return None


def case_state_full(rng, findings):
    """state_dir on a 2 MB tmpfs: fill it while figures arrive, then free it."""
    return full_disk_case(findings, "state full", lambda d: d.state, "2m",
                          lambda d, ledger: state_full(rng, findings, d, ledger))


def state_full(rng, findings, d, ledger):
    """The steps of case_state_full, on its daemon d."""
    parks = PARKS[:2]
    spool_keys = keys_of(parks, SPOOL_INDICATORS[:1])
    post_keys = keys_of(parks, POST_INDICATORS[:1])
    # fed only once space is back, so that the series POSTed to while the disk
    # was full are not rewritten (and their RRD files healed) by a later figure
    later_keys = keys_of(PARKS[2:], POST_INDICATORS[:1])
    keys = spool_keys + post_keys + later_keys
    spool = SpoolFeeder(d, ledger, findings, random.Random(rng.random()), spool_keys, prefix="s", twice=0)
    poster = PostFeeder(d, ledger, findings, random.Random(rng.random()), post_keys)
    later = PostFeeder(d, ledger, findings, random.Random(rng.random()), later_keys)
    series = sorted({(k[0], k[1]) for k in keys})
    d.start()
    post_targets(d, ledger, findings, PARKS, SPOOL_INDICATORS[:1] + POST_INDICATORS[:1])
    # with room: everything is acknowledged
    for _ in range(6):
        if poster.post_random() != 202:
            findings.fail("disk not full yet, but a POST was not acknowledged")
    deliver_some(spool, d, 3)
    verify_figures(d, ledger, keys, findings, "state full: before")
    # full: the filler takes every free block, then feed until writes fail
    filler = os.path.join(d.state, "torture-filler")
    size = fill(filler)
    refused = acked_full = 0
    for _ in range(40):
        status = poster.post_random()
        if status == 202:
            acked_full += 1
        else:
            refused += 1
            if refused >= 3:
                break
    waiting = 0
    for _ in range(3):
        if spool.deliver_random():
            waiting += 1
    time.sleep(3)
    spool.resolve()
    left = sorted(n for n in os.listdir(d.spool) if n.endswith(".csv"))
    print("state full: filler %d KiB; then %d POST(s) acknowledged, %d not; %d of %d spool files waiting"
          % (size >> 10, acked_full, refused, len(left), waiting), flush=True)
    if not refused and not left:   # not a failure by itself: what was acknowledged is checked below
        print("state full: note: no write was refused on the full file system")
    if not d.healthy():
        findings.fail("state full: /healthz is not 200 on a full disk")
    verify_figures(d, ledger, keys, findings, "state full: while full")
    # room again: the waiting files are taken, POST works
    os.unlink(filler)
    wait_space_back(d, spool, findings, "state full")
    if later.post_random() != 202:
        findings.fail("state full: POST not acknowledged after space returned")
    verify_figures(d, ledger, keys, findings, "state full: space back")
    restart_and_verify(d, ledger, keys, series, findings, "state full")


def case_spool_full(rng, findings):
    """The spool on its own small tmpfs, full while files wait in it (done/ and
    failed/ are on that file system)."""
    return full_disk_case(findings, "spool full", lambda d: d.spool, "256k",
                          lambda d, ledger: spool_full(rng, findings, d, ledger))


def spool_full(rng, findings, d, ledger):
    """The steps of case_spool_full, on its daemon d."""
    keys = keys_of(PARKS[:2], SPOOL_INDICATORS[:2])
    spool = SpoolFeeder(d, ledger, findings, random.Random(rng.random()), keys, prefix="q", twice=0)
    series = sorted({(k[0], k[1]) for k in keys})
    d.start()
    post_targets(d, ledger, findings, PARKS[:2], SPOOL_INDICATORS[:2])
    deliver_some(spool, d, 3)
    d.stop()
    # while the daemon is down: good files (one under a name done/ has), one
    # refused file, then the file system filled
    # (files found together are read in name order, not in the order written:
    # they hold disjoint keys, so that the latest value stays well defined)
    names = list(spool.names)
    fresh = spool.rng.sample(keys, 13)
    good = []
    for n in range(4):
        rows = [(k, ledger.new_value(spool.rng, k)) for k in fresh[3 * n:3 * n + 3]]
        name = names[0] if n == 0 else "q-wait%d.csv" % n
        good.append(spool.write(name, rows))
    bad_key = fresh[12]
    bad_rows = [(bad_key, ledger.new_value(spool.rng, bad_key))]
    spool.write("q-bad.csv", bad_rows, expect_refused=True,
                raw=lambda did: csv_rows(bad_rows, did) + "no-such-park,%s,2021-05,1.00,A,%s\n" % (bad_key[1], did))
    filler = os.path.join(d.spool, "torture-filler.tmp")   # *.tmp: never read by the spool
    size = fill(filler)
    d.start()
    wait_acked(spool, good, 10)
    left = sorted(n for n in os.listdir(d.spool) if n.endswith(".csv"))
    print("spool full: filler %d KiB; waiting after start: %s" % (size >> 10, left), flush=True)
    verify_figures(d, ledger, keys, findings, "spool full: while full")
    os.unlink(filler)
    wait_space_back(d, spool, findings, "spool full")
    for did in good:
        if spool.deliveries[did][0][0][1] != "acked":
            findings.fail("spool full: %s never reached done/" % did)
    if not os.path.exists(os.path.join(d.spool, "failed", "q-bad.csv.errors")):
        findings.fail("spool full: failed/q-bad.csv.errors missing: %s"
                      % sorted(os.listdir(os.path.join(d.spool, "failed"))))
    verify_figures(d, ledger, keys, findings, "spool full: space back")
    restart_and_verify(d, ledger, keys, series, findings, "spool full")


def main():
    ap = argparse.ArgumentParser(description="kill -9 rounds and full disks against the real daemon")
    ap.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS") or 20))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or 0) or None)
    ap.add_argument("--no-disk-full", action="store_true", help="only the kill rounds")
    ap.add_argument("--twice", type=float, default=0.15,
                    help="how often the spool feeder writes the same name twice in quick succession")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2 ** 31)
    print("torture: seed %d (SEED=%d replays it), %d rounds, daemon %s" % (seed, seed, args.rounds, harness.DAEMON),
          flush=True)
    if not os.access(harness.DAEMON, os.X_OK):
        print("torture: %s is not built" % harness.DAEMON)
        return 2
    rng = random.Random(seed)
    findings = Findings()
    results = []
    t0 = time.time()
    kill_rounds(args.rounds, rng, findings, results, args.twice)
    skipped = []
    if not args.no_disk_full:
        for name, case in (("disk full: state_dir", case_state_full), ("disk full: spool and done/", case_spool_full)):
            t = time.time()
            skip = case(random.Random(rng.random()), findings)
            if skip:
                print("%s: %s" % (name, skip))
                skipped.append(name)
                continue
            fails = findings.take()
            print("%s: %s (%.1f s)" % (name, "FAILED" if fails else "ok", time.time() - t), flush=True)
            results.append((name, fails))
    passed = sum(1 for _, f in results if not f)
    failed = len(results) - passed
    print("rounds %d, figures acknowledged %d, lost %d, reverted %d, unexpected %d, "
          "duplicated alert ids %d, seq regressions %d, RRD mismatches %d, left waiting %d, "
          "skipped %d, seed %d, %.0f s"
          % (args.rounds, findings.acked, len(findings.lost), len(findings.reverted), len(findings.unexpected),
             findings.dup_ids, findings.seq_regressions, findings.rrd_mismatches, findings.left_waiting,
             len(skipped), seed, time.time() - t0))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
