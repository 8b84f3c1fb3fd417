/*
 * test_catalog.h — the parks of tests/fixtures/parks.conf as a hand-built
 * catalogue, and IND() for an indicator row, for the suites that drive the
 * CSV and workbook readers without a configuration file. Each suite lists
 * the indicators it needs.
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

#endif
