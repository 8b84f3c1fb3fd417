"""Excel workbooks end to end (README, Feeding figures; issue 15): .xlsx and .xls written
by LibreOffice Calc (tests/fixtures/workbooks/, see tests/fixtures/README)
through the spool, `parkpulse push` and POST /api/v1/observations; a file type
the spool does not read goes to failed/ with a report; hostile workbooks — a
zip bomb, "../" entry names, billion laughs, an external entity, 1,048,576
rows, a corrupt zip — are each refused with a clear reason while the daemon
goes on serving and ingesting.

The hostile workbooks are written here with the standard library's zipfile.
"""
import datetime
import io
import json
import os
import subprocess
import urllib.error
import urllib.request
import zipfile

from harness import CLIENT, FIXTURES, DaemonTest, wait_for

BOOKS = os.path.join(FIXTURES, "workbooks")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOKEN = "s3cret-token"

RELS = ('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
        '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
        'officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        '</Relationships>')
WORKBOOK = ('<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
            'spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/'
            '2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets>'
            '</workbook>')
WB_RELS = ('<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
           '2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
           'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
           '</Relationships>')
SHEET_HEAD = ('<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
              'spreadsheetml/2006/main"><sheetData>')
SHEET_TAIL = '</sheetData></worksheet>'


def book_bytes(sheet=None, extra=(), sheet_chunks=None):
    """An .xlsx with one sheet: its XML, or an iterable of chunks streamed in."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WB_RELS)
        if sheet_chunks is not None:
            with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as f:
                for c in sheet_chunks:
                    f.write(c)
        else:
            z.writestr("xl/worksheets/sheet1.xml", sheet)
        for name, data in extra:
            z.writestr(name, data)
    return buf.getvalue()


def zeros(n, chunk=1 << 20):
    for _ in range(n // chunk):
        yield bytes(chunk)


def million_rows():
    yield SHEET_HEAD.encode()
    row = "<row>" + "<c><v>1</v></c>" * 5 + "</row>"
    block = (row * 8192).encode()
    for _ in range(1048576 // 8192):
        yield block
    yield SHEET_TAIL.encode()


def entity_sheet(doctype, ref):
    return ('<?xml version="1.0"?>' + doctype + SHEET_HEAD[len('<?xml version="1.0"?>'):] +
            '<row r="1"><c r="A1" t="inlineStr"><is><t>%s</t></is></c></row>' % ref + SHEET_TAIL)


LAUGHS = ('<!DOCTYPE worksheet [<!ENTITY a "aaaaaaaaaa">'
          + "".join('<!ENTITY %s "%s">' % (chr(98 + i), ("&%s;" % chr(97 + i)) * 10)
                    for i in range(9)) + ']>')
XXE = '<!DOCTYPE worksheet [<!ENTITY x SYSTEM "file:///etc/passwd">]>'


def hostile():
    """(file name, bytes, a piece of the reason) of each hostile workbook."""
    with open(os.path.join(BOOKS, "lo-xiangtan-etdz-2021.xlsx"), "rb") as f:
        good = f.read()
    return [
        ("bomb.xlsx", book_bytes(sheet_chunks=zeros(300 << 20)), "未解压即拒绝"),
        ("dotdot.xlsx", book_bytes(SHEET_HEAD + SHEET_TAIL, extra=[("../../etc/cron.d/x", "x")]),
         "zip 条目名不安全"),
        ("laughs.xlsx", book_bytes(entity_sheet(LAUGHS, "&j;")), "DOCTYPE"),
        ("xxe.xlsx", book_bytes(entity_sheet(XXE, "&x;")), "DOCTYPE"),
        ("million.xlsx", book_bytes(sheet_chunks=million_rows()), "单元格过多"),
        ("corrupt.xlsx", good[: len(good) // 2], "zip 已损坏"),
    ]


class WorkbookTest(DaemonTest):
    def started(self, **kw):
        d = self.daemon(token=TOKEN, **kw)
        d.start()
        return d

    def post(self, d, body, ctype, timeout=10):
        # a bounded wait: 1,048,576 rows take seconds to refuse (more under ASan)
        req = urllib.request.Request(d.url + "/api/v1/observations", data=body, method="POST",
                                     headers={"Authorization": "Bearer " + TOKEN,
                                              "Content-Type": ctype})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def read(self, name):
        with open(os.path.join(BOOKS, name), "rb") as f:
            return f.read()

    def test_spool_reads_xlsx_and_xls(self):
        d = self.started()
        self.assertEqual(d.drop("lo-xiangtan-etdz-2021.xlsx", self.read("lo-xiangtan-etdz-2021.xlsx")), "done")
        s = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertEqual(s["period"], "2021-08")
        self.assertEqual(s["value"], 192.2)  # as typed, not 192.19999999999999
        self.assertEqual(d.drop("lo-targets-2021.xls", self.read("lo-targets-2021.xls")), "done")
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["target"], 300)
        self.assertIn("lo-xiangtan-etdz-2021.xlsx: ", d.logtext())
        self.assertIn("(xlsx)", d.logtext())

    def test_spool_refused_workbook_names_sheet_and_row(self):
        d = self.started()
        self.assertEqual(d.drop("bad.xlsx", self.read("lo-bad-rows.xlsx")), "failed")
        with open(os.path.join(d.spool, "failed", "bad.xlsx.errors"), encoding="utf-8") as f:
            rep = f.read().splitlines()
        self.assertEqual([l.split(": ")[0] for l in rep],
                         ["bad.xlsx:bad-rows!%d" % n for n in (3, 4, 5, 6, 7)], rep)
        self.assertIn("xiangtan-etd", rep[0])

    def test_notes_sheet_skipped_excel_habits_read(self):
        """A workbook as an office sends it: a notes sheet first (skipped, not
        refused), then a sheet with units in the header, a 同比 column, a date
        cell for the period, a Chinese park name and a 合计 row."""
        import openpyxl
        wb = openpyxl.Workbook()
        notes = wb.active
        notes.title = "说明"
        notes["A1"] = "本表为各园区1-8月主要指标"
        notes["A2"] = "数据来源：统计局"
        data = wb.create_sheet("数据")
        data.append(["园区", "期间", "固定资产投资（亿元）", "固定资产投资同比"])
        data.append(["湘潭经开区", datetime.date(2021, 8, 1), 192.2, 12.5])
        data.append(["合计", datetime.date(2021, 8, 1), 192.2, None])
        buf = io.BytesIO()
        wb.save(buf)
        d = self.started()
        self.assertEqual(d.drop("notes.xlsx", buf.getvalue()), "done")
        s = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertEqual((s["period"], s["value"], s["yoy"]), ("2021-08", 192.2, 12.5))
        self.assertIn("notes.xlsx:说明: 跳过", d.logtext())

    def test_spool_other_types_to_failed(self):
        d = self.started()
        self.assertEqual(d.drop("figures.ods", b"PK\x03\x04 not read"), "failed")
        with open(os.path.join(d.spool, "failed", "figures.ods.errors"), encoding="utf-8") as f:
            rep = f.read()
        self.assertTrue(rep.startswith("figures.ods: 不支持的文件类型"), rep)
        self.assertIn("*.csv, *.xlsx and *.xls", rep)
        self.assertEqual(d.logtext().count("refused figures.ods"), 1)

    def test_push_workbook(self):
        d = self.started()
        book = os.path.join(BOOKS, "lo-xiangtan-etdz-2021.xlsx")
        r = subprocess.run([CLIENT, "--url", d.url, "push", "--token-file", d.token_file, book],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("lo-xiangtan-etdz-2021.xlsx: ", r.stdout)
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["value"], 192.2)
        r = subprocess.run([CLIENT, "--url", d.url, "push", "--token-file", d.token_file,
                            os.path.join(BOOKS, "lo-bad-rows.xls")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 65, r.stdout + r.stderr)
        self.assertIn("lo-bad-rows.xls:bad-rows!3: ", r.stderr)

    def test_post_content_types(self):
        # the clock after the 2024 workbook's months (a later month is refused since issue 13)
        d = self.started(now="2025-01-15T10:00:00+08:00")
        body = self.read("lo-xiangtan-etdz-2021.xlsx")
        st, _, ans = self.post(d, body, XLSX_TYPE)
        self.assertEqual(st, 202, ans)
        self.assertGreater(json.loads(ans)["accepted"], 20)
        st, _, ans = self.post(d, self.read("lo-targets-2021.xls"), "application/vnd.ms-excel")
        self.assertEqual(st, 202, ans)
        # the first bytes decide: a workbook sent as text/csv is a workbook
        st, _, ans = self.post(d, self.read("lo-wide-2024.xlsx"), "text/csv")
        self.assertEqual(st, 202, ans)
        # declared a workbook, but CSV
        st, _, ans = self.post(d, b"park,indicator,period,value\n", XLSX_TYPE)
        self.assertEqual(st, 400, ans)
        self.assertIn("Excel", json.loads(ans)["error"])

    def test_hostile_workbooks(self):
        d = self.started()
        cases = hostile()
        for name, data, why in cases:
            with self.subTest(name=name):
                st, _, ans = self.post(d, data, XLSX_TYPE, timeout=300)
                self.assertEqual(st, 400, ans[:300])
                errors = json.loads(ans)["errors"]
                self.assertTrue(any(why in e for e in errors), errors)
        for name, data, why in cases:
            with self.subTest(spool=name):
                tmp = os.path.join(d.spool, name + ".tmp")
                with open(tmp, "wb") as f:
                    f.write(data)
                os.rename(tmp, os.path.join(d.spool, name))
                rep = os.path.join(d.spool, "failed", name + ".errors")
                wait_for(lambda: os.path.exists(rep), 120, rep)
                with open(rep, encoding="utf-8") as f:
                    text = f.read()
                self.assertIn(why, text)
                self.assertTrue(text.startswith(name + ":"), text)
        # the daemon is unaffected: healthy, and reads the next good file
        self.assertTrue(d.healthy())
        self.assertEqual(d.drop("after.xlsx", self.read("lo-xiangtan-etdz-2021.xlsx")), "done")
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["value"], 192.2)
        self.assertIsNotNone(d.proc)
        self.assertIsNone(d.proc.poll())
