/*
 * test_catalog.h — the parks of tests/fixtures/parks.conf as a hand-built
 * catalogue, and IND() for an indicator row, for the suites that drive the
 * CSV and workbook readers without a configuration file, with the standard
 * indicators of config/indicators.conf (their Chinese labels and units).
 */
#ifndef PP_TEST_CATALOG_H
#define PP_TEST_CATALOG_H

#include "model.h"

static pp_park parks[] = {
    {.id = "xiangtan-etdz", .name = (char *)"湘潭经开区"},
    {.id = "xiangtan-hitech", .name = (char *)"湘潭高新区"},
    {.id = "liuyang-etdz", .name = (char *)"浏阳经开区"},
};

#define IND(i, l, u, k) {.id = i, .label = (char *)l, .unit = (char *)u, .kind = k, .warn = 5, .crit = 15}

static pp_indicator indicators[] = {
    IND("industrial_output", "工业总产值", "亿元", PP_KIND_CUMULATIVE),
    IND("above_scale_output", "规模以上工业总产值", "亿元", PP_KIND_CUMULATIVE),
    IND("value_added_growth", "规模以上工业增加值增速", "%", PP_KIND_RATE),
    IND("fixed_asset_investment", "固定资产投资", "亿元", PP_KIND_CUMULATIVE),
    IND("industrial_investment", "工业投资", "亿元", PP_KIND_CUMULATIVE),
    IND("tax_revenue", "税收收入", "亿元", PP_KIND_CUMULATIVE),
    IND("fiscal_revenue", "财税收入", "亿元", PP_KIND_CUMULATIVE),
    IND("fdi_actual", "实际利用外资", "万美元", PP_KIND_CUMULATIVE),
    IND("domestic_capital", "实际到位内资", "亿元", PP_KIND_CUMULATIVE),
    IND("trade_total", "进出口总额", "亿元", PP_KIND_CUMULATIVE),
    IND("high_tech_revenue", "高新技术产业营业收入", "亿元", PP_KIND_CUMULATIVE),
    IND("key_project_completion", "重点项目完成率", "%", PP_KIND_COMPLETION),
    IND("projects_signed", "新签约项目数", "个", PP_KIND_CUMULATIVE),
    IND("rank_province", "全省排名", "位", PP_KIND_RANK),
};

/* The catalogue of these parks and indicators:
 * static const pp_catalog cat = TEST_CATALOG; */
#define TEST_CATALOG                                                            \
    {                                                                           \
        .parks = parks, .n_parks = sizeof parks / sizeof parks[0],              \
        .indicators = indicators, .n_indicators = sizeof indicators / sizeof indicators[0], \
    }

#endif
