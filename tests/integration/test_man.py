"""The manual pages of man/ (parkpulsed(8) SEE ALSO: parkpulsed.8, parkpulse.1,
parkpulse.conf.5): they format without a warning from groff (`man
--warnings`) or mandoc (`mandoc -T lint -W warning`, when installed), and
they describe what the code has: every option of the configuration schema
(daemon/config.c) and of the shipped collectors (the "Options" block at the
top of collectors/*.c), every command of the client's command table
(tools/parkpulse.c) and every long option of the daemon (daemon/main.c)."""
import os
import re
import shutil
import subprocess
import unittest

from harness import ROOT

MAN = os.path.join(ROOT, "man")
PAGES = ("parkpulsed.8", "parkpulse.1", "parkpulse.conf.5")
ENV = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8", MANWIDTH="80")


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as f:
        return f.read()


def bold_words(page):
    """Words set in bold in a page: .B/.BI/.BR arguments and \\fB...\\fR runs."""
    text = read("man", page).replace("\\-", "-")
    words = set()
    for line in text.splitlines():
        m = re.match(r"\.(B|BI|BR|IB|RB)\s+(.*)", line)
        if m:
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_.-]*", m.group(2)))
    for run in re.findall(r"\\fB(.*?)\\f[RPI]", text):
        words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_.-]*", run))
    return words


class ManFormatTest(unittest.TestCase):
    def test_pages_exist(self):
        for p in PAGES:
            self.assertTrue(os.path.isfile(os.path.join(MAN, p)), p)

    @unittest.skipIf(shutil.which("man") is None, "man (Debian package man-db) is not installed")
    def test_groff_no_warnings(self):
        for p in PAGES:
            r = subprocess.run(["man", "--warnings", "-l", "-Tutf8", os.path.join(MAN, p)],
                               capture_output=True, env=ENV, timeout=60)
            self.assertEqual(r.returncode, 0, p)
            self.assertEqual(r.stderr.decode("utf-8", "replace"), "", p)
            self.assertGreater(len(r.stdout), 1000, p)

    @unittest.skipIf(shutil.which("mandoc") is None, "mandoc (Debian package mandoc) is not installed")
    def test_mandoc_lint(self):
        for p in PAGES:
            r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", os.path.join(MAN, p)],
                               capture_output=True, text=True, env=ENV, timeout=60)
            self.assertEqual(r.stdout + r.stderr, "", p)
            self.assertEqual(r.returncode, 0, p)


class ManContentTest(unittest.TestCase):
    def test_conf_page_has_every_option(self):
        schema = set(re.findall(r'CFG_(?:STR|INT|FLOAT|BOOL|FLOAT_LIST|STR_LIST|INT_LIST|FUNC|SEC)'
                                r'\(\s*"([a-z_]+)"', read("daemon", "config.c")))
        self.assertIn("token_file", schema)
        self.assertIn("curve_clients", schema)
        plugin_opts = set()
        for name in sorted(os.listdir(os.path.join(ROOT, "collectors"))):
            if not name.endswith(".c"):
                continue
            text = read("collectors", name)
            m = re.search(r"Options \(collector section of parkpulse\.conf\):\n(.*?)\n \*\n", text, re.S)
            self.assertIsNotNone(m, "collectors/%s: no 'Options (collector section of "
                                    "parkpulse.conf):' block in its top comment" % name)
            plugin_opts.update(re.findall(r"^ \*     ([a-z_]+)\s", m.group(1), re.M))
        self.assertIn("path", plugin_opts)
        self.assertIn("command", plugin_opts)
        words = bold_words("parkpulse.conf.5")
        missing = sorted((schema | plugin_opts) - words)
        self.assertEqual(missing, [], "options not described in man/parkpulse.conf.5")

    def test_client_page_has_every_command(self):
        commands = re.findall(r'\{\s*"([a-z-]+)",\s*cl_cmd_', read("tools", "parkpulse.c"))
        self.assertIn("status", commands)
        page = read("man", "parkpulse.1").replace("\\-", "-")
        for c in commands + ["subscribe"]:
            self.assertRegex(page, r'\.SS "?%s\b' % re.escape(c), "command %s has no section" % c)
        for opt in re.findall(r'\{\s*"([a-z-]+)",\s*(?:required|no)_argument', read("tools", "parkpulse.c")):
            self.assertIn("--" + opt, page, "option --%s is not in man/parkpulse.1" % opt)

    def test_daemon_page_has_every_option(self):
        opts = re.findall(r'\{\s*"([a-z-]+)",\s*(?:required|no)_argument', read("daemon", "main.c"))
        self.assertIn("rebuild", opts)
        page = read("man", "parkpulsed.8").replace("\\-", "-")
        for o in opts:
            self.assertIn("--" + o, page, "option --%s is not in man/parkpulsed.8" % o)
        for sig in ("SIGTERM", "SIGINT", "SIGHUP"):
            self.assertIn(sig, page)


if __name__ == "__main__":
    unittest.main()
