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

    # ---- the workbook ----

    def workbook(self, d):
        status, headers, body = d.get("/api/v1/report?period=2021-08&format=xlsx")
        self.assertEqual(status, 200, body[:200])
        self.assertEqual(headers.get("Content-Type"),
                         "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        self.assertIn("parkpulse-report-2021-08.xlsx", headers.get("Content-Disposition", ""))
        path = os.path.join(self.tmp, "report.xlsx")
        with open(path, "wb") as f:
            f.write(body)
        # no temporary workbook left behind in the state directory
        self.assertEqual([n for n in os.listdir(d.state) if "report" in n], [])
        return path

    @unittest.skipUnless(openpyxl, "python3-openpyxl not installed")
    def test_workbook_read_with_openpyxl(self):
        d = self.fed()
        wb = openpyxl.load_workbook(self.workbook(d))
        self.assertEqual(wb.sheetnames, ["通报", "预警", "排名"])
        ws = wb["通报"]
        self.assertEqual(ws["A1"].value, "2021年1-8月园区主要经济指标监测通报")
        info = ws["A2"].value
        for part in ("数据截至2021年8月", "序时进度 8/12", "湘潭市园区 2家", "国家级经开区 2家",
                     "其他园区 1家", "生成时间 2021-09-15T10:00:00"):
            self.assertIn(part, info)
        self.assertTrue(ws["A3"].value.startswith("列入本期通报的"), ws["A3"].value)
        merged = {str(r) for r in ws.merged_cells.ranges}
        self.assertIn("A4:A5", merged)
        self.assertIn("B4:B5", merged)
        # the indicator headers: merged over six columns, the sub-headers below
        heads = {ws.cell(row=4, column=c).value: c for c in range(3, ws.max_column + 1)
                 if ws.cell(row=4, column=c).value}
        self.assertIn("固定资产投资", heads)
        c0 = heads["固定资产投资"]
        self.assertIn("%s4:%s4" % (col(c0), col(c0 + 5)), merged)
        self.assertEqual([ws.cell(row=5, column=c0 + k).value for k in range(6)],
                         ["累计值(亿元)", "同比%", "全年目标", "完成%", "较序时(百分点)", "状态"])
        # rows: group rows and park rows
        rows = {}
        group_rows = []
        for r in range(6, ws.max_row + 1):
            a, b = ws.cell(row=r, column=1).value, ws.cell(row=r, column=2).value
            if isinstance(a, str) and "家）" in a:
                group_rows.append(a)
            elif b:
                rows.setdefault(b, r)
        self.assertEqual(group_rows, ["湘潭市园区（2家）", "国家级经开区（2家）", "其他园区（1家）"])
        # values equal to /api/v1/status, formats and fills
        status = d.get_json("/api/v1/status")
        for park in status["parks"]:
            if park["name"] not in rows:
                continue
            for s in park["indicators"]:
                if s["indicator"] != "fixed_asset_investment" or s["period"] != "2021-08":
                    continue
                r = rows[park["name"]]
                self.assertEqual(ws.cell(row=r, column=c0).value, s["value"])
                self.assertEqual(ws.cell(row=r, column=c0 + 2).value, s["target"])
                if s["completion_pct"] is not None:
                    self.assertAlmostEqual(ws.cell(row=r, column=c0 + 3).value, s["completion_pct"], places=2)
                    self.assertEqual(ws.cell(row=r, column=c0 + 3).number_format, "0.0")
                    self.assertAlmostEqual(ws.cell(row=r, column=c0 + 4).value, s["gap_pp"], places=2)
                    self.assertEqual(ws.cell(row=r, column=c0 + 4).number_format, "0.00")
                st = ws.cell(row=r, column=c0 + 5)
                sym = {"ok": "● 正常", "warning": "▲ 预警", "critical": "■ 严重"}.get(s["status"])
                if sym:
                    self.assertTrue(st.value.startswith(sym), (st.value, s["status"]))
                    want = {"ok": "C6EFCE", "warning": "FFEB9C", "critical": "FFC7CE"}[s["status"]]
                    self.assertEqual(st.fill.fgColor.rgb[-6:], want)
        # lone-park reported July only: … for August's figure
        self.assertEqual(ws.cell(row=rows["独立园区"], column=c0).value, "…")
        # frozen panes, print setup
        self.assertEqual(ws.freeze_panes, "C6")
        self.assertEqual(ws.page_setup.orientation, "landscape")
        self.assertEqual(int(ws.page_setup.paperSize), 9)  # A4
        self.assertTrue(ws.sheet_properties.pageSetUpPr.fitToPage)
        self.assertIn(ws.page_setup.fitToWidth, (None, 1))  # 1 is the default, left out
        self.assertEqual(ws.page_setup.fitToHeight, 0)
        self.assertEqual(ws.print_title_rows, "$4:$5")
        # footnotes
        notes = [str(ws.cell(row=r, column=1).value or "") for r in range(1, ws.max_row + 1)]
        self.assertTrue(any("序时进度 = 月份/12（1-2月合并" in n for n in notes))
        self.assertTrue(any("同比为统计部门按可比口径公布的增速" in n for n in notes))
        self.assertTrue(any("… 未报送" in n and "r 修订数" in n for n in notes))
        # alerts: red first
        al = wb["预警"]
        states = [al.cell(row=r, column=8).value for r in range(3, al.max_row + 1)]
        self.assertTrue(states)
        order = [0 if s == "■ 严重" else 1 for s in states]
        self.assertEqual(order, sorted(order))
        # rankings
        rk = wb["排名"]
        titles = [rk.cell(row=r, column=1).value for r in range(1, rk.max_row + 1)]
        self.assertIn("固定资产投资（亿元）— 湘潭市园区", titles)

    @unittest.skipUnless(shutil.which("libreoffice") and shutil.which("pdfinfo"),
                         "libreoffice or poppler-utils not installed")
    def test_workbook_in_libreoffice(self):
        d = self.fed()
        pdf = libreoffice_convert(self.workbook(d), "pdf", self.tmp)
        info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, check=True).stdout
        size = [l for l in info.splitlines() if l.startswith("Page size")][0]
        w, h = [float(x) for x in size.split(":")[1].split("pts")[0].split("x")]
        self.assertGreater(w, h)  # landscape
        self.assertAlmostEqual(w, 841.89, delta=2)  # A4
        if os.environ.get("PP_KEEP_REPORT"):
            shutil.copy(pdf, os.environ["PP_KEEP_REPORT"])

    def test_client_xlsx(self):
        d = self.fed()
        out = os.path.join(self.tmp, "通报.xlsx")
        r = subprocess.run([CLIENT, "--url", d.url, "report", "--period", "2021-08", "--xlsx", out],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(out, "rb") as f:
            self.assertEqual(f.read(2), b"PK")  # a zip container
        self.assertFalse(os.path.exists(out + ".tmp"))
        if openpyxl:
            self.assertEqual(openpyxl.load_workbook(out)["通报"]["A1"].value,
                             "2021年1-8月园区主要经济指标监测通报")

    # ---- the printed page ----

    def test_report_page(self):
        d = self.fed()
        status, headers, body = d.get("/report/2021-08")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("Content-Type").startswith("text/html"))
        page = body.decode("utf-8")
        self.assertIn("<title>2021年1-8月园区主要经济指标监测通报", page)
        self.assertIn("<h1>2021年1-8月园区主要经济指标监测通报</h1>", page)
        self.assertIn("序时进度 8/12", page)
        self.assertIn("<thead>", page)
        self.assertIn("湘潭市园区（2家）", page)
        self.assertIn("/assets/report.css", page)
        self.assertNotIn("<nav", page)
        self.assertIn("size: A4 landscape", d.get("/assets/report.css")[2].decode())
        self.assertEqual(d.get("/report/2021-13")[0], 404)
        self.assertEqual(d.get("/report/latest")[0], 404)

    @unittest.skipUnless(shutil.which("chromium") and shutil.which("pdfinfo"),
                         "chromium or poppler-utils not installed")
    def test_report_page_prints_one_page_wide(self):
        d = self.fed()
        pdf = os.path.join(self.tmp, "page.pdf")
        profile = tempfile.mkdtemp(prefix="pp-chr-")
        self.addCleanup(shutil.rmtree, profile, True)
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-pdf-header-footer",
                        "--user-data-dir=" + profile, "--print-to-pdf=" + pdf, d.url + "/report/2021-08"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        info = subprocess.run(["pdfinfo", pdf], capture_output=True, text=True, check=True).stdout
        size = [l for l in info.splitlines() if l.startswith("Page size")][0]
        w, h = [float(x) for x in size.split(":")[1].split("pts")[0].split("x")]
        self.assertGreater(w, h)  # A4 landscape
        self.assertAlmostEqual(w, 841.89, delta=2)
        # one page wide: the text of the last indicator column is on the first page
        text = subprocess.run(["pdftotext", "-f", "1", "-l", "1", "-layout", pdf, "-"],
                              capture_output=True, text=True, check=True).stdout
        self.assertIn("2021年1-8月园区主要经济指标监测通报", text)
        last = d.get_json("/api/v1/report?period=2021-08&format=json")["rows"][-1]["label"]
        self.assertIn(last, text)
        if os.environ.get("PP_KEEP_REPORT"):
            shutil.copy(pdf, os.environ["PP_KEEP_REPORT"] + ".page.pdf")


def col(n):
    """Spreadsheet column letters of 1-based n."""
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


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
