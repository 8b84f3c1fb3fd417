"""Issue 15: CSVs as Excel leaves them, through the real daemon — a title
above the header, units in the header, a 合计 row (skipped and logged), 同比
(yoy) kept with the figure: in status, history, the report (CSV, JSON, wide),
the alerts, the journal across a restart; the 通报 parkpulse exports (long
and wide) pushed back in; an input without any figure refused with a Chinese
first report; a revision that changes only yoy is a revision."""
import csv
import io
import json

from harness import DaemonTest

TOKEN = "s3cret-token-for-tests"

EXCEL = ("湘潭市园区主要经济指标（2021年1-8月）\n"
         "单位：亿元、万美元\n"
         ",,,,,\n"
         "园区,期间,固定资产投资（亿元）,固定资产投资同比(%),实际利用外资(万美元),实际利用外资增速\n"
         "湘潭经开区,2021/8/1,192.2,12.5,2690,-3.2\n"
         "合  计,2021/8/1,192.2,12.5,2690,-3.2\n"
         "注：数据来源于湘潭市统计局\n")


class ExcelCsvTest(DaemonTest):
    def fed(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("xiangtan-etdz-2021.csv"), "done")
        return d

    def post(self, d, body):
        return d.request("/api/v1/observations", method="POST", body=body,
                         headers={"Content-Type": "text/csv", "Authorization": "Bearer " + TOKEN})

    def test_excel_csv_with_yoy_everywhere(self):
        d = self.daemon(token=TOKEN).start()
        self.assertEqual(d.drop("targets-2021.csv"), "done")
        self.assertEqual(d.drop("bureau.csv", EXCEL.encode("utf-8")), "done")
        log = d.logtext()
        self.assertIn("bureau.csv: 2 row(s) skipped", log)
        self.assertIn("已跳过合计行“合  计”（不是园区）", log)
        fai = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertEqual((fai["value"], fai["yoy"]), (192.2, 12.5))
        fdi = d.series("xiangtan-etdz", "fdi_actual")
        self.assertEqual((fdi["value"], fdi["yoy"]), (2690, -3.2))
        self.assertEqual(fai["revision"], 0)
        # the same again changes nothing; only yoy changed: a revision; no yoy: null
        self.assertEqual(d.drop("bureau2.csv", EXCEL.encode("utf-8")), "done")
        self.assertEqual(d.series("xiangtan-etdz", "fixed_asset_investment")["revision"], 0)
        self.assertEqual(d.drop("fr.csv", "park,indicator,period,value\nxiangtan-etdz,fiscal_revenue,2021-08,25.6\n".encode()), "done")
        self.assertIsNone(d.series("xiangtan-etdz", "fiscal_revenue")["yoy"])
        self.assertEqual(d.drop("yoy.csv", "园区,指标,期间,数值,同比\n湘潭经开区,固定资产投资,2021-08,192.2,13\n".encode()), "done")
        fai = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertEqual((fai["value"], fai["yoy"], fai["revision"]), (192.2, 13, 1))
        h = d.get_json("/api/v1/history/xiangtan-etdz/fixed_asset_investment/2021-08")
        self.assertEqual([(v["value"], v["yoy"]) for v in h["vintages"]], [(192.2, 12.5), (192.2, 13)])
        # the alert JSON carries yoy
        alerts = d.get_json("/api/v1/alerts")["alerts"]
        self.assertTrue(alerts)
        for a in alerts:
            self.assertIn("yoy", a)
        crit = [a for a in alerts if a["indicator"] == "fdi_actual"]
        self.assertEqual(crit[0]["yoy"], -3.2)
        # ranking and report JSON, report CSV with a 同比(%) column
        r = d.get_json("/api/v1/ranking/fixed_asset_investment?period=2021-08")
        self.assertEqual(r["parks"][0]["yoy"], 13)
        status, _, body = d.get("/api/v1/report?period=2021-08&format=csv")
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        col = rows[0].index("同比(%)")
        by = {r[2]: r for r in rows[1:]}
        self.assertEqual(by["fixed_asset_investment"][col], "13")
        self.assertEqual(by["fiscal_revenue"][col], "")
        # kept across a restart (the journal's O lines)
        d.stop()
        d.start()
        fai = d.series("xiangtan-etdz", "fixed_asset_investment")
        self.assertEqual((fai["value"], fai["yoy"], fai["revision"]), (192.2, 13, 1))
        self.assertEqual(d.series("xiangtan-etdz", "fdi_actual")["yoy"], -3.2)

    def test_exported_report_reads_back(self):
        d = self.fed()
        self.assertEqual(d.drop("bureau.csv", EXCEL.encode("utf-8")), "done")
        before = d.get_json("/api/v1/parks/xiangtan-etdz")
        for layout in ("", "&layout=wide"):
            status, _, body = d.get("/api/v1/report?period=2021-08&format=csv" + layout)
            self.assertEqual(status, 200)
            status, _, answer = self.post(d, body)
            self.assertEqual(status, 202, answer.decode("utf-8"))
            # the same figures again: nothing changes
            self.assertEqual(d.get_json("/api/v1/parks/xiangtan-etdz")["indicators"], before["indicators"])
        status, _, body = d.get("/api/v1/report?period=2021-08&format=csv&layout=wide")
        lines = body.decode("utf-8-sig").splitlines()
        self.assertTrue(lines[0].startswith("2021年1-8月"))
        self.assertIn("固定资产投资(亿元)", lines[1])
        self.assertIn("累计值,同比%", lines[2])
        # the GB18030 export reads back too
        status, _, gb = d.get("/api/v1/report?period=2021-08&format=csv&encoding=gb18030")
        self.assertEqual(self.post(d, gb)[0], 202)

    def test_no_figures_refused_chinese_first(self):
        d = self.fed()
        for name, data in (("header-only.csv", "park,indicator,period,value\n"),
                           ("totals-only.csv", "园区,期间,固定资产投资\n合计,2021-08,1\n")):
            self.assertEqual(d.drop(name, data.encode()), "failed")
            with open("%s/failed/%s.errors" % (d.spool, name), encoding="utf-8") as f:
                report = f.read()
            self.assertTrue(report.startswith("%s:0: 文件 %s：文件中没有任何数据" % (name, name)), report)
            self.assertIn(" / no figures in the input", report)
        status, _, body = self.post(d, b"park,indicator,period,value\n")
        self.assertEqual(status, 400)
        self.assertIn("文件中没有任何数据", json.loads(body)["errors"][0])
        # a bad row: location first, then 文件/行, Chinese reason, English reason
        status, _, body = self.post(d, "园区名称,指标,期间,数值\nxiangtan-etdz,固定资产投资,2021-08,1\n".encode())
        self.assertEqual(status, 400)
        errors = json.loads(body)["errors"]
        self.assertTrue(any("是否应为“园区”" in e and "did you mean '园区'" in e for e in errors), errors)
        self.assertTrue(all(e.split(":")[1] == "1" for e in errors), errors)
        self.assertIsNone(d.series("xiangtan-etdz", "fixed_asset_investment")["yoy"])
