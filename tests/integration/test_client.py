"""The command-line client `parkpulse` (parkpulse(1)) against a real daemon:
status as a table (CJK columns aligned, colours only on a terminal and never
with NO_COLOR), push with the bearer token (accepted, wrong token, refused
rows with file:line, exit 65), check-config (OK / file:line errors, exit 78),
a daemon that is not running (exit 69), report, rebuild, --help everywhere,
and the sysexits codes."""
import json
import os
import pty
import shutil
import subprocess
import unicodedata

from harness import BUILD, CLIENT, ROOT, DaemonTest, FIXTURES, free_port

TOKEN = "secret-Token-0123456789"
EX_USAGE, EX_DATAERR, EX_NOINPUT, EX_UNAVAILABLE, EX_TEMPFAIL, EX_NOPERM, EX_CONFIG = \
    64, 65, 66, 69, 75, 77, 78
COMMANDS = ("status", "push", "check-config", "rebuild", "report", "token")


def run(*args, env=None, **kw):
    e = dict(os.environ, LANG="C.UTF-8")
    e.pop("NO_COLOR", None)
    if env:
        e.update(env)
    return subprocess.run([CLIENT] + list(args), capture_output=True, text=True, env=e,
                          timeout=60, **kw)


def width(s):
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


class ClientTest(DaemonTest):
    def started(self, feed=True, **kw):
        d = self.daemon(token=TOKEN, **kw).start()
        if feed:
            self.assertEqual(d.drop("targets-2021.csv"), "done")
            self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        return d

    def rows(self, out):
        """{(park name, indicator label): [cells]} of a status table."""
        table = {}
        for line in out.splitlines()[1:]:
            cells = line.split()
            table[(cells[0], cells[1])] = cells
        return table

    # ---- status ----
    def test_status_table(self):
        d = self.started()
        r = run("--url", d.url, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("\x1b[", r.stdout)  # not a terminal: no colours
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0].split(), ["园区", "指标", "期间", "数值", "完成率",
                                            "较序时(百分点)", "状态"])  # issue 14: Chinese
        t = self.rows(r.stdout)
        fai = t[("湘潭经开区", "固定资产投资")]
        self.assertEqual(fai[2:], ["2021-08", "192.2", "亿元", "64.07%", "-2.60", "正常"])
        self.assertEqual(t[("湘潭经开区", "财税收入")][-3:], ["60.95%", "-5.71", "预警"])
        self.assertEqual(t[("湘潭经开区", "实际利用外资")][-4:], ["万美元", "44.83%", "-21.83", "严重"])
        self.assertEqual(t[("湘潭经开区", "规模以上工业增加值增速")][-3:], ["-", "+2.10", "正常"])
        self.assertEqual(t[("湘潭经开区", "工业总产值")][-1], "未设目标")
        # every fixture park is listed, also those without figures
        parks = [l.split()[0] for l in lines[1:]]
        for name in ("湘潭经开区", "湘潭高新区", "浏阳经开区"):
            self.assertIn(name, parks)
        # columns line up in display columns (Chinese characters are 2 wide)
        starts = {width(l[:l.rindex(" ") + 1]) for l in lines}
        self.assertEqual(len(starts), 1, "STATUS column not aligned:\n" + r.stdout)
        value_ends = {width(l[:l.index("%") + 1]) for l in lines if "%" in l.split()[-3]}
        self.assertEqual(len(value_ends), 1, "COMPLETION column not aligned:\n" + r.stdout)

    def test_status_one_park_and_unknown_park(self):
        d = self.started()
        r = run("--url", d.url, "status", "--park", "xiangtan-etdz")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual({l.split()[0] for l in r.stdout.splitlines()[1:]}, {"湘潭经开区"})
        r = run("--url", d.url, "status", "--park", "no-such-park")
        self.assertEqual(r.returncode, EX_DATAERR)
        self.assertIn("404", r.stderr)
        r = run("--url", d.url, "status", "--park", "../etc")
        self.assertEqual(r.returncode, EX_USAGE)

    def test_status_url_from_config(self):
        d = self.started(feed=False)
        r = run("--config", d.conf, "status")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("湘潭经开区", r.stdout)

    def status_on_tty(self, d, extra_env):
        master, slave = pty.openpty()
        try:
            e = dict(os.environ, LANG="C.UTF-8", TERM="xterm")
            e.pop("NO_COLOR", None)
            e.update(extra_env)
            p = subprocess.run([CLIENT, "--url", d.url, "status"], stdout=slave,
                               stderr=subprocess.PIPE, env=e, timeout=60)
            os.close(slave)
            slave = -1
            out = b""
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            self.assertEqual(p.returncode, 0, p.stderr)
            return out.decode("utf-8")
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)

    def test_status_colours_on_tty_only_without_no_color(self):
        d = self.started()
        out = self.status_on_tty(d, {})
        self.assertIn("\x1b[1;31m严重", out)
        self.assertIn("\x1b[33m预警", out)
        out = self.status_on_tty(d, {"NO_COLOR": "1"})
        self.assertNotIn("\x1b[", out)
        self.assertIn("严重", out)

    def test_not_running(self):
        url = "http://127.0.0.1:%d" % free_port()
        r = run("--url", url, "status")
        self.assertEqual(r.returncode, EX_UNAVAILABLE)
        self.assertIn("parkpulsed is not running at %s: connection refused" % url, r.stderr)
        r = run("--url", url, "report", "--period", "2021-08")
        self.assertEqual(r.returncode, EX_UNAVAILABLE)

    # ---- push ----
    def write(self, d, name, text):
        path = os.path.join(d.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_push_accepted_and_visible(self):
        d = self.started()
        csv = self.write(d, "new.csv", "park,indicator,period,value\n"
                                       "xiangtan-hitech,fixed_asset_investment,2021-08,150.5\n"
                                       "xiangtan-hitech,tax_revenue,2021-08,12.25\n")
        r = run("--url", d.url, "push", "--token-file", d.token_file, csv)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("new.csv: 2 observation(s) accepted", r.stdout)
        self.assertAlmostEqual(d.series("xiangtan-hitech", "fixed_asset_investment")["value"], 150.5)
        t = self.rows(run("--url", d.url, "status").stdout)
        self.assertEqual(t[("湘潭高新区", "固定资产投资")][2:5], ["2021-08", "150.5", "亿元"])
        # the token of the configuration's http.token_file, the URL from http.listen
        csv2 = self.write(d, "more.csv", "园区,指标,期间,数值\nliuyang-etdz,税收收入,2021年1-8月,30\n")
        r = run("--config", d.conf, "push", csv2)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("1 observation(s) accepted", r.stdout)
        self.assertEqual(d.series("liuyang-etdz", "tax_revenue")["value"], 30)

    def test_push_wrong_token(self):
        d = self.started(feed=False)
        wrong = self.write(d, "wrong-token", "not-the-token\n")
        csv = self.write(d, "new.csv", "park,indicator,period,value\n"
                                       "xiangtan-hitech,fixed_asset_investment,2021-08,150.5\n")
        r = run("--url", d.url, "push", "--token-file", wrong, csv)
        self.assertEqual(r.returncode, EX_NOPERM, r.stdout + r.stderr)
        self.assertIn("401", r.stderr)
        self.assertIn("token", r.stderr)
        self.assertIsNone(d.series("xiangtan-hitech", "fixed_asset_investment"))
        # a token file that does not exist
        r = run("--url", d.url, "push", "--token-file", os.path.join(d.dir, "nope"), csv)
        self.assertEqual(r.returncode, EX_NOINPUT)
        self.assertIn("token file", r.stderr)

    def test_push_bad_rows(self):
        d = self.started()
        r = run("--url", d.url, "push", "--token-file", d.token_file,
                os.path.join(FIXTURES, "bad-rows.csv"))
        self.assertEqual(r.returncode, EX_DATAERR, r.stdout + r.stderr)
        errs = [l for l in r.stderr.splitlines() if l.startswith("bad-rows.csv:")]
        self.assertEqual([l.split(":")[1] for l in errs], ["3", "4", "5", "6", "7"], r.stderr)
        self.assertIn("did you mean 'xiangtan-etdz'", errs[0])
        self.assertIn("2021-13", errs[2])
        # nothing of the file was taken
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["revision"], 0)

    def test_push_usage_and_missing_file(self):
        d = self.started(feed=False)
        r = run("--url", d.url, "push", "--token-file", d.token_file, os.path.join(d.dir, "none.csv"))
        self.assertEqual(r.returncode, EX_NOINPUT)
        self.assertIn("none.csv", r.stderr)
        self.assertEqual(run("--url", d.url, "push").returncode, EX_USAGE)

    # ---- check-config ----
    def test_check_config(self):
        d = self.daemon()
        # the shipped file, with this build's plugins and a state_dir of the test
        with open(os.path.join(ROOT, "config", "parkpulse.conf"), encoding="utf-8") as f:
            shipped = (f.read().replace("/usr/lib/parkpulse/collectors", os.path.join(BUILD, "collectors"))
                       .replace("/var/lib/parkpulse", d.state).replace("/var/spool/parkpulse", d.spool)
                       .replace('"127.0.0.1:8080"', '"127.0.0.1:%d"' % d.port)
                       .replace('"tcp://127.0.0.1:5556"', '"tcp://127.0.0.1:%d"' % d.bus_port))
        with open(os.path.join(d.dir, "shipped.conf"), "w", encoding="utf-8") as f:
            f.write(shipped)
        shutil.copy(os.path.join(ROOT, "config", "indicators.conf"), d.dir)
        r = run("check-config", os.path.join(d.dir, "shipped.conf"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("OK", r.stdout)
        self.assertIn("0 parks", r.stdout)  # production starts with no park (issue 14)
        bad = os.path.join(d.dir, "broken.conf")
        with open(bad, "w", encoding="utf-8") as f:
            f.write('timezone = "Asia/Shanghai"\n'
                    '# a comment\n'
                    'due_day = 40\n'
                    'http { listen = "nohost" }\n')
        r = run("check-config", bad)
        self.assertEqual(r.returncode, EX_CONFIG, r.stdout + r.stderr)
        self.assertIn("%s:3: " % bad, r.stderr)
        self.assertIn("%s:4: " % bad, r.stderr)
        self.assertEqual(run("check-config", os.path.join(d.dir, "absent.conf")).returncode, EX_NOINPUT)
        # the global --config is the default file to check
        self.assertEqual(run("--config", bad, "check-config").returncode, EX_CONFIG)
        # a broken --config is reported by the commands that need it
        r = run("--config", bad, "status")
        self.assertEqual(r.returncode, EX_CONFIG)
        self.assertIn("%s:3: " % bad, r.stderr)

    # ---- report ----
    def test_report(self):
        d = self.started()
        r = run("--url", d.url, "report", "--period", "2021-08")
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = [l for l in r.stdout.splitlines() if l.strip()]
        self.assertGreater(len(lines), 1, r.stdout)
        self.assertIn(",", lines[0])
        self.assertIn("湘潭经开区", r.stdout)
        self.assertIn("192.2", r.stdout)
        r = run("--url", d.url, "report", "--period", "2021-08", "--format", "json")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("湘潭经开区", json.dumps(json.loads(r.stdout), ensure_ascii=False))
        e = dict(os.environ, LANG="C.UTF-8")
        p = subprocess.run([CLIENT, "--url", d.url, "report", "--period", "2021-08",
                            "--encoding", "gb18030"], capture_output=True, env=e, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("湘潭经开区", p.stdout.decode("gb18030"))
        self.assertNotIn("湘潭经开区".encode("utf-8"), p.stdout)

    def test_report_usage(self):
        for args in ((), ("--period", "2021-8x"), ("--period", "2021-08", "--format", "xls"),
                     ("--period", "2021-08", "--encoding", "big5")):
            r = run("--url", "http://127.0.0.1:1", "report", *args)
            self.assertEqual(r.returncode, EX_USAGE, args)

    # ---- rebuild ----
    def test_rebuild(self):
        d = self.started()
        r = run("--config", d.conf, "rebuild")
        self.assertEqual(r.returncode, EX_TEMPFAIL, r.stdout + r.stderr)
        self.assertIn("parkpulsed is running", r.stderr)
        self.assertEqual(d.stop(), 0)
        rrd = d.rrd("xiangtan-etdz", "fixed_asset_investment")
        os.unlink(rrd)
        r = run("--config", d.conf, "rebuild")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertTrue(os.path.exists(rrd))
        value, _ = d.fetch_day("xiangtan-etdz", "fixed_asset_investment", "2021-08-15")
        self.assertAlmostEqual(value, 192.2, places=6)

    # ---- token ----
    def test_token_create(self):
        d = self.daemon()
        path = os.path.join(d.dir, "new-token")
        r = run("token", "--create", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), path)
        st = os.stat(path)
        self.assertEqual(st.st_mode & 0o777, 0o640)
        try:
            import grp
            self.assertEqual(st.st_gid, grp.getgrnam("parkpulse").gr_gid)
        except KeyError:
            pass  # no group parkpulse on this machine: the file keeps the user's group
        with open(path) as f:
            first = f.read()
        self.assertRegex(first, r"^[0-9a-f]{64}\n$")
        # never overwritten without --force
        r = run("token", "--create", path)
        self.assertEqual(r.returncode, 73, r.stderr)
        self.assertIn("exists", r.stderr)
        with open(path) as f:
            self.assertEqual(f.read(), first)
        r = run("token", "--create", "--force", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(path) as f:
            second = f.read()
        self.assertRegex(second, r"^[0-9a-f]{64}\n$")
        self.assertNotEqual(first, second)
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o640)
        self.assertEqual(sorted(os.listdir(d.dir)).count("new-token"), 1)
        self.assertEqual([n for n in os.listdir(d.dir) if ".tmp." in n], [])
        # the default file is http.token_file of the configuration, and it works for push
        r = run("--config", d.conf, "token", "--create")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), d.token_file)
        d.start()
        r = run("--config", d.conf, "push", os.path.join(FIXTURES, "targets-2021.csv"))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(run("token").returncode, EX_USAGE)

    # ---- help, version, usage ----
    def test_help(self):
        r = run("--help")
        self.assertEqual(r.returncode, 0)
        for c in COMMANDS:
            self.assertRegex(r.stdout, r"(?m)^  %s( |$)" % c)
        # issue 14: no line of any --help runs past 80 columns
        self.assertEqual([l for l in r.stdout.splitlines() if width(l) > 80], [])
        for c in COMMANDS + ("subscribe",):
            r = run(c, "--help")
            self.assertEqual(r.returncode, 0, c)
            self.assertTrue(r.stdout.startswith("usage: parkpulse " + c), r.stdout)
            self.assertEqual(r.stderr, "")
            self.assertEqual([l for l in r.stdout.splitlines() if width(l) > 80], [], c)
        from harness import DAEMON
        r = subprocess.run([DAEMON, "--help"], capture_output=True, text=True, timeout=60)
        self.assertEqual([l for l in r.stdout.splitlines() if width(l) > 80], [])
        r = run("--version")
        self.assertEqual(r.returncode, 0)
        self.assertTrue(r.stdout.startswith("parkpulse "))
        self.assertEqual(run().returncode, EX_USAGE)
        r = run("frobnicate")
        self.assertEqual(r.returncode, EX_USAGE)
        self.assertIn("unknown command 'frobnicate'", r.stderr)
        self.assertEqual(run("status", "--bogus").returncode, EX_USAGE)
