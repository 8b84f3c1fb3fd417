"""Journal compaction with the real daemon (README, Storage; parkpulsed(8) --compact).

A journal whose records are mostly superseded (here: 120,000 repeats of a
figure in force, as an old build or a re-sent export leaves them) is compacted
at start-up, before the daemon is ready: the journal shrinks, the figures read
back over HTTP and with `rrdtool fetch` are the same as before, the clean-stop
marker of the last stop is honoured (no rebuild of the RRD files), and the next
clean stop writes the new record count. `parkpulsed --compact` compacts a
journal below the start-up threshold.
"""
import os
import zlib

from harness import DaemonTest

REPEATS = 120000
SERIES = [("xiangtan-etdz", "fixed_asset_investment"), ("xiangtan-etdz", "fiscal_revenue")]
DAYS = ["2021-03-15", "2021-06-15", "2021-08-15"]


def journal_lines(d):
    with open(os.path.join(d.state, "journal", "journal.log"), "rb") as f:
        return f.read().split(b"\n")[1:-1]


def last_start(d):
    """The daemon's log since it was last started."""
    return d.logtext().split("http: listening on")[-1]


def clean_count(d):
    with open(os.path.join(d.state, "rrd", ".clean")) as f:
        return int(f.read().split()[0])


def answers(d):
    out = {}
    for park, ind in SERIES:
        out[(park, ind)] = d.get_json("/api/v1/series/%s/%s" % (park, ind))
        for day in DAYS:
            out[(park, ind, day)] = repr(d.fetch_day(park, ind, day))  # nan == nan
    out["history"] = d.get_json("/api/v1/history/xiangtan-etdz/fixed_asset_investment/2021-05")
    return out


def repeats_of(line, n):
    """n copies of the O line `line` received later: each repeats the figure in force."""
    fields = line.split(b"\t")[:-1]
    out = []
    for k in range(n):
        fields[1] = str(int(fields[1]) + 1 + k).encode()
        body = b"\t".join(fields)
        out.append(body + b"\t%08x\n" % zlib.crc32(body))
    return b"".join(out)


def arrival_order_lines(parks, inds, months, t0):
    """O lines of parks × inds series × months, as figures arrive: a month of
    every series after another (each series' figures far apart)."""
    out = []
    for m in range(months):
        period = b"%04d-%02d" % (2012 + m // 12, m % 12 + 1)
        for p in range(parks):
            src = b"spool/zz%03d-%s.csv" % (p, period)
            for i in range(inds):
                body = b"O\t%d\tzz%03d\tix%02d\t%s\t%d.5\tA\t%s\t" % (
                    t0 + m * 86400 + p, p, i, period, p * 100 + i + m, src)
                out.append(body + b"\t%08x\n" % zlib.crc32(body))
    return b"".join(out)


def series_of(line):
    f = line.split(b"\t")
    return (f[2], f[3]) if f[0] in (b"O", b"T") else None


class CompactTest(DaemonTest):
    maxDiff = None

    def restart_unchanged(self, d, before):
        """Starts d again: it compacts nothing, rebuilds nothing and answers
        as before; then stops it cleanly."""
        d.start()
        log = last_start(d)
        self.assertNotIn("journal compacted", log)
        self.assertNotIn("RRD files rebuilt", log)
        self.assertEqual(answers(d), before)
        self.assertEqual(d.stop(), 0)

    def test_startup_compacts_superseded_records(self):
        d = self.daemon().start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        before = answers(d)
        self.assertEqual(d.stop(), 0)
        lines = journal_lines(d)
        live = len(lines)
        self.assertEqual(clean_count(d), live)

        # the figure in force for fixed_asset_investment 2021-05, repeated
        o = [l for l in lines if l.startswith(b"O\t") and b"\tfixed_asset_investment\t2021-05\t" in l][-1]
        with open(os.path.join(d.state, "journal", "journal.log"), "ab") as f:
            f.write(repeats_of(o, REPEATS))
        with open(os.path.join(d.state, "rrd", ".clean"), "w") as f:
            f.write("%d\n" % (live + REPEATS))  # as a clean stop after them would leave it

        d.start()
        log = last_start(d)
        self.assertIn("journal compacted: %d records" % (live + REPEATS), log)
        self.assertNotIn("RRD files rebuilt", log)  # the clean stop is honoured
        self.assertEqual(len(journal_lines(d)), live)
        self.assertFalse(os.path.exists(os.path.join(d.state, "journal", "journal.log.compact")))
        self.assertEqual(answers(d), before)
        self.assertEqual(d.stop(), 0)
        self.assertEqual(clean_count(d), len(journal_lines(d)))

        # the next start: nothing to compact, nothing to rebuild, the same answers
        self.restart_unchanged(d, before)

    def test_startup_puts_journal_in_series_order(self):
        """Over a million figures appended in arrival order: start-up compacts
        the journal into series order (nothing superseded), the answers stay,
        the clean stop is honoured, and the next start leaves it alone."""
        d = self.daemon().start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        self.assertEqual(d.stop(), 0)
        before = answers(d.start())
        self.assertEqual(d.stop(), 0)
        lines = journal_lines(d)
        extra = arrival_order_lines(180, 50, 120, 1600000000)
        with open(os.path.join(d.state, "journal", "journal.log"), "ab") as f:
            f.write(extra)
        old = lines + extra.split(b"\n")[:-1]
        with open(os.path.join(d.state, "rrd", ".clean"), "w") as f:
            f.write("%d\n" % len(old))  # as a clean stop after them would leave it

        d.start()
        log = last_start(d)
        self.assertIn("journal compacted: %d records → %d (0 superseded dropped" % (len(old), len(old)), log)
        self.assertIn("put back in series order", log)
        self.assertNotIn("RRD files rebuilt", log)
        self.assertEqual(answers(d), before)
        self.assertEqual(d.stop(), 0)
        after = journal_lines(d)
        self.assertEqual(clean_count(d), len(after))
        # what the compacted start journaled (alert states) comes after the compacted lines
        new, appended = after[:len(old)], after[len(old):]
        self.assertTrue(all(l.startswith(b"E\t") for l in appended))
        self.assertEqual(sorted(new), sorted(old))  # the same lines, byte for byte
        # the other lines (E, D) first in their order, then each series' lines
        # together and in their order, the series as they first appeared
        keys = [series_of(l) for l in new]
        n_other = sum(1 for k in keys if k is None)
        self.assertTrue(all(k is None for k in keys[:n_other]))
        figs = keys[n_other:]
        groups = [k for n, k in enumerate(figs) if n == 0 or figs[n - 1] != k]
        self.assertEqual(len(groups), len(set(groups)))
        first_seen, seen = [], set()
        for l in old:
            k = series_of(l)
            if k is not None and k not in seen:
                seen.add(k)
                first_seen.append(k)
        self.assertEqual(groups, first_seen)
        for k in [(b"xiangtan-etdz", b"fixed_asset_investment"), (b"zz000", b"ix00"), (b"zz179", b"ix49")]:
            self.assertEqual([l for l in new if series_of(l) == k], [l for l in old if series_of(l) == k])
        self.assertEqual([l for l in new if series_of(l) is None], [l for l in old if series_of(l) is None])

        # the next start: in series order, nothing to compact or rebuild
        self.restart_unchanged(d, before)

    def test_compact_option(self):
        d = self.daemon().start()
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        before = answers(d)
        self.assertEqual(d.stop(), 0)
        lines = journal_lines(d)
        o = [l for l in lines if l.startswith(b"O\t") and b"\tfixed_asset_investment\t2021-05\t" in l][-1]
        with open(os.path.join(d.state, "journal", "journal.log"), "ab") as f:
            f.write(repeats_of(o, 10))  # below the start-up threshold

        d.start()
        self.assertNotIn("journal compacted", last_start(d))
        self.assertEqual(len(journal_lines(d)), len(lines) + 10)
        self.assertEqual(d.stop(), 0)

        d.start(wait=False, args=["--compact"])
        rc = d.proc.wait(60)
        d.log.close()
        d.proc = None
        self.assertEqual(rc, 0, d.logtext()[-2000:])
        self.assertIn("journal compacted: %d records" % (len(lines) + 10), d.logtext().split("stopping")[-1])
        self.assertEqual(len(journal_lines(d)), len(lines))
        self.assertEqual(clean_count(d), len(lines))
        d.start()
        self.assertNotIn("RRD files rebuilt", last_start(d))
        after = answers(d)
        for k in before:
            self.assertEqual(after[k], before[k], k)
        self.assertEqual(d.stop(), 0)


if __name__ == "__main__":
    import unittest
    unittest.main()
