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

/* The catalogue of these parks and the suite's own indicators[] (declared
 * before): static const pp_catalog cat = TEST_CATALOG; */
#define TEST_CATALOG                                                            \
    {                                                                           \
        .parks = parks, .n_parks = sizeof parks / sizeof parks[0],              \
        .indicators = indicators, .n_indicators = sizeof indicators / sizeof indicators[0], \
    }

#endif
