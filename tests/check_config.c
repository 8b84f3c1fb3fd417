/*
 * check_config.c — Check suite for the configuration reader (daemon/config.c,
 * parkpulse.conf(5)): the shipped example config/parkpulse.conf with its catalogue, the
 * defaults of an empty file, include() paths relative to the including file
 * (tests/fixtures/conf/nested), collector options, and a table of broken
 * configurations, each of which must be refused with an error that names the
 * right file and line. Run from the project root (make unit does). Broken
 * configurations are written into a mkdtemp() directory under $TMPDIR, made
 * once per test case in the parent process and removed afterwards.
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "tmpdir.h"
#include "check_main.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static char tmpdir[4096];

static void make_tmpdir(void) { tmpdir_make_or_exit(tmpdir, sizeof tmpdir, "check_config"); }

static void remove_tmpdir(void) { tmpdir_remove(tmpdir); }

/* Writes text to <dir>/<name>, making <dir>. */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[8192];
    ck_assert(mkdir(dir, 0700) == 0 || errno == EEXIST);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *fp = fopen(path, "w");
    ck_assert_msg(fp != NULL, "cannot write %s", path);
    ck_assert(fputs(text, fp) >= 0);
    ck_assert(fclose(fp) == 0);
}

/* Writes text as <tmpdir>/<sub>/main.conf and loads it. */
static pp_config *load_text(const char *sub, const char *text, char *err, size_t errlen,
                            char *path, size_t pathlen)
{
    char dir[6000];
    snprintf(dir, sizeof(dir), "%s/%s", tmpdir, sub);
    write_file(dir, "main.conf", text);
    snprintf(path, pathlen, "%s/main.conf", dir);
    return conf_load(path, err, errlen);
}

/* Loads file; it must be taken. */
static pp_config *load_ok(const char *file)
{
    char err[4096];
    pp_config *c = conf_load(file, err, sizeof(err));
    ck_assert_msg(c != NULL, "%s refused:\n%s", file, err);
    return c;
}

/* load_text that must be taken; the file's path in path (8192 bytes) when not NULL. */
static pp_config *load_text_ok(const char *sub, const char *text, char *path)
{
    char err[4096], buf[8192];
    pp_config *c = load_text(sub, text, err, sizeof(err), path ? path : buf, sizeof(buf));
    ck_assert_msg(c != NULL, "%s refused:\n%s", sub, err);
    return c;
}

/* What the shipped example sets as the defaults are (README, parkpulse.conf(5)). */
static void check_default_settings(const pp_config *c)
{
    ck_assert_str_eq(c->timezone, "Asia/Shanghai");
    ck_assert_str_eq(c->state_dir, "/var/lib/parkpulse");
    ck_assert_str_eq(c->dashboard_dir, PP_DASHBOARD_DIR);
    ck_assert_int_eq(c->due_day, 20);
    ck_assert_str_eq(c->http_listen, "127.0.0.1:8080");
    ck_assert_int_eq(c->http_threads, 4);
    ck_assert_int_eq(c->http_max_connections, 256);
    ck_assert_int_eq(c->http_max_per_ip, 32);
    ck_assert_int_eq(c->http_timeout, 30);
    ck_assert_int_eq(c->http_max_body, 8 * 1024 * 1024);
    ck_assert_str_eq(c->bus_publish, "tcp://127.0.0.1:5556");
    ck_assert_int_eq(c->bus_heartbeat, 5);
    ck_assert_int_eq(c->bus_hwm, 1000);
}

static const conf_collector *collector(const pp_config *c, const char *name)
{
    for (size_t i = 0; i < c->n_collectors; i++)
        if (strcmp(c->collectors[i].name, name) == 0)
            return &c->collectors[i];
    return NULL;
}

/* ---- the shipped example -------------------------------------------------- */

START_TEST(test_example_config)
{
    pp_config *c = load_ok("config/parkpulse.conf");

    ck_assert_str_eq(c->file, "config/parkpulse.conf");
    ck_assert_str_eq(c->plugin_dir, "/usr/lib/parkpulse/collectors");
    /* the pages are built in: the shipped file leaves dashboard_dir commented */
    ck_assert(!c->dashboard_dir_set);
    ck_assert_str_eq(c->http_token_file, "/etc/parkpulse/token");
    check_default_settings(c);
    ck_assert_ptr_null(c->bus_curve_secret_key);
    ck_assert_ptr_null(c->bus_curve_clients);

    /* the catalogue comes from indicators.conf, included relative to the file */
    ck_assert_uint_eq(c->catalog.n_indicators, 14);
    static const struct {
        const char *id, *label, *unit;
        pp_kind kind;
        double warn, crit;
    } cat[] = {
        {"industrial_output", "工业总产值", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"above_scale_output", "规模以上工业总产值", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"value_added_growth", "规模以上工业增加值增速", "%", PP_KIND_RATE, 5, 15},
        {"fixed_asset_investment", "固定资产投资", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"industrial_investment", "工业投资", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"tax_revenue", "税收收入", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"fiscal_revenue", "财税收入", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"fdi_actual", "实际利用外资", "万美元", PP_KIND_CUMULATIVE, 5, 15},
        {"domestic_capital", "实际到位内资", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"trade_total", "进出口总额", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"high_tech_revenue", "高新技术产业营业收入", "亿元", PP_KIND_CUMULATIVE, 5, 15},
        {"key_project_completion", "重点项目完成率", "%", PP_KIND_COMPLETION, 5, 15},
        {"projects_signed", "新签约项目数", "个", PP_KIND_CUMULATIVE, 5, 15},
        {"rank_province", "全省排名", "位", PP_KIND_RANK, 1, 3},
    };
    for (size_t i = 0; i < N(cat); i++) {
        const pp_indicator *ind = &c->catalog.indicators[i];
        ck_assert_str_eq(ind->id, cat[i].id);
        ck_assert_str_eq(ind->label, cat[i].label);
        ck_assert_str_eq(ind->unit, cat[i].unit);
        ck_assert_int_eq(ind->kind, cat[i].kind);
        ck_assert_int_eq(ind->direction, PP_DIR_HIGHER);
        ck_assert_double_eq(ind->warn, cat[i].warn);
        ck_assert_double_eq(ind->crit, cat[i].crit);
        ck_assert(!ind->has_pace);
    }
    ck_assert_ptr_eq(pp_catalog_indicator(&c->catalog, "固定资产投资"),
                     &c->catalog.indicators[3]);

    /* as installed: no park and no exec collector (issue 14); the examples
     * are commented out, and must be right once the "# " is removed */
    ck_assert_uint_eq(c->catalog.n_parks, 0);
    ck_assert_uint_eq(c->n_collectors, 1);
    ck_assert_str_eq(c->collectors[0].name, "spool");
    conf_free(c);
    char *text = NULL, cwd[4096];
    size_t len = 0;
    FILE *in = fopen("config/parkpulse.conf", "r"), *out = open_memstream(&text, &len);
    ck_assert(in && out && getcwd(cwd, sizeof cwd));
    char line[1024];
    static const char *const examples[] = { "# park \"", "# collector \"bureau\"",
                                            "#                      interval", "#   # ", "# }" };
    while (fgets(line, sizeof line, in)) {
        const char *l = line;
        for (size_t i = 0; i < N(examples); i++)
            if (strncmp(line, examples[i], strlen(examples[i])) == 0)
                l = line + 2;
        if (strcmp(l, "include(\"indicators.conf\")\n") == 0)
            fprintf(out, "include(\"%s/config/indicators.conf\")\n", cwd);
        else
            fputs(l, out);
    }
    fclose(in);
    fclose(out);
    c = load_text_ok("example", text, NULL);
    free(text);

    ck_assert_uint_eq(c->catalog.n_parks, 3);
    static const struct {
        const char *id, *name, *type, *region;
    } parks[] = {
        {"xiangtan-etdz", "湘潭经开区", "etdz", "湖南省湘潭市"},
        {"xiangtan-hitech", "湘潭高新区", "hitech", "湖南省湘潭市"},
        {"liuyang-etdz", "浏阳经开区", "etdz", "湖南省长沙市"},
    };
    for (size_t i = 0; i < N(parks); i++) {
        const pp_park *p = &c->catalog.parks[i];
        ck_assert_str_eq(p->id, parks[i].id);
        ck_assert_str_eq(p->name, parks[i].name);
        ck_assert_str_eq(p->level, "national");
        ck_assert_str_eq(p->type, parks[i].type);
        ck_assert_str_eq(p->region, parks[i].region);
        ck_assert_uint_eq(p->n_thresholds, 0);
    }

    ck_assert_uint_eq(c->n_collectors, 2);
    const conf_collector *spool = collector(c, "spool"), *bureau = collector(c, "bureau");
    ck_assert_ptr_nonnull(spool);
    ck_assert_ptr_nonnull(bureau);
    ck_assert_str_eq(spool->plugin, "spool");
    ck_assert_ptr_null(spool->user);
    ck_assert_int_eq(spool->interval, 3600);
    ck_assert_int_eq(spool->timeout, 60);
    ck_assert_uint_eq(spool->n_options, 1);
    ck_assert_str_eq(conf_collector_option(spool, "path"), "/var/spool/parkpulse");
    ck_assert_ptr_null(conf_collector_option(spool, "command"));
    ck_assert_str_eq(bureau->plugin, "exec");
    ck_assert_str_eq(conf_collector_option(bureau, "command"), "/usr/local/bin/bureau-export");
    ck_assert_ptr_null(conf_collector_option(bureau, "interval")); /* a common key, not an option */
    ck_assert_int_eq(bureau->interval, 3600);
    ck_assert_int_eq(bureau->timeout, 60);
    ck_assert_int_gt(bureau->line, spool->line);
    conf_free(c);
}
END_TEST

START_TEST(test_defaults_of_empty_file)
{
    char err[1024], path[8192];
    pp_config *c = load_text("empty", "# nothing but a comment\n", err, sizeof(err), path,
                             sizeof(path));
    ck_assert_msg(c != NULL, "%s", err);
    ck_assert_str_eq(err, "");
    ck_assert_str_eq(c->file, path);
    check_default_settings(c);
    ck_assert_str_eq(c->plugin_dir, PP_PLUGIN_DIR); /* set from PREFIX by the Makefile */
    ck_assert_ptr_null(c->http_token_file);
    ck_assert_int_eq(c->http_header_timeout, 5);
    ck_assert_int_eq(c->http_max_streams, 512);
    ck_assert_int_eq(c->http_max_streams_per_ip, 16);
    ck_assert_int_eq(c->http_max_buffered, 64L << 20);
    ck_assert_int_eq(c->bus_max_connections, 256);
    ck_assert_uint_eq(c->catalog.n_indicators, 0);
    ck_assert_uint_eq(c->catalog.n_parks, 0);
    ck_assert_uint_eq(c->n_collectors, 0);
    conf_free(c);

    /* a file of zero bytes too */
    c = load_text_ok("zero", "", NULL);
    ck_assert_int_eq(c->due_day, 20);
    conf_free(c);
}
END_TEST

/* ---- include() and the other features --------------------------------------- */

START_TEST(test_include_relative_to_file)
{
    pp_config *c = load_ok("tests/fixtures/conf/nested/main.conf");
    ck_assert_int_eq(c->due_day, 15);
    ck_assert_uint_eq(c->catalog.n_indicators, 2);
    ck_assert_uint_eq(c->catalog.n_parks, 1);

    const pp_indicator *fai = pp_catalog_indicator(&c->catalog, "fixed_asset_investment");
    ck_assert_ptr_nonnull(fai);
    ck_assert(fai->has_pace); /* comments inside the list are fine */
    static const double pace[12] = {5, 12, 20, 30, 40, 50, 58, 66, 75, 83, 91, 100};
    for (int m = 0; m < 12; m++)
        ck_assert_double_eq(fai->pace[m], pace[m]);

    const pp_indicator *growth = pp_catalog_indicator(&c->catalog, "value_added_growth");
    ck_assert_ptr_nonnull(growth);
    ck_assert_int_eq(growth->kind, PP_KIND_RATE);
    ck_assert_int_eq(growth->direction, PP_DIR_LOWER);
    ck_assert_double_eq(growth->warn, 1);
    ck_assert_double_eq(growth->crit, 2.5);

    /* a park's threshold: warn given, crit taken from the indicator */
    const pp_park *park = pp_catalog_park(&c->catalog, "xiangtan-etdz");
    ck_assert_ptr_nonnull(park);
    ck_assert_uint_eq(park->n_thresholds, 1);
    ck_assert_str_eq(park->thresholds[0].indicator, "fixed_asset_investment");
    double warn, crit;
    pp_catalog_thresholds(park, fai, &warn, &crit);
    ck_assert_double_eq(warn, 3);
    ck_assert_double_eq(crit, 15);
    pp_catalog_thresholds(park, growth, &warn, &crit);
    ck_assert_double_eq(warn, 1);
    ck_assert_double_eq(crit, 2.5);
    conf_free(c);
}
END_TEST

START_TEST(test_include_absolute_path)
{
    char text[8192], cwd[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
    snprintf(text, sizeof(text), "include(\"%s/config/indicators.conf\")\n", cwd);
    pp_config *c = load_text_ok("absolute", text, NULL);
    ck_assert_uint_eq(c->catalog.n_indicators, 14);
    conf_free(c);
}
END_TEST

START_TEST(test_collector_options)
{
    pp_config *c = load_text_ok("collectors",
                             "collector \"spool\" {\n"
                             "  plugin = \"spool\"  path = \"/srv/in\"  rescan = 10\n"
                             "  user = \"parkpulse\"\n"
                             "}\n"
                             "collector \"nightly\" { plugin = \"exec\" command = '/bin/echo a,b'\n"
                             "  interval = 86400 timeout = 5 format = wide }\n",
                             NULL);
    ck_assert_uint_eq(c->n_collectors, 2);
    const conf_collector *s = &c->collectors[0], *e = &c->collectors[1];
    ck_assert_str_eq(s->name, "spool");
    ck_assert_int_eq(s->line, 1);
    ck_assert_str_eq(s->user, "parkpulse");
    ck_assert_uint_eq(s->n_options, 2);
    ck_assert_str_eq(s->options[0].key, "path"); /* in the order written */
    ck_assert_str_eq(s->options[0].value, "/srv/in");
    ck_assert_str_eq(s->options[1].key, "rescan");
    ck_assert_str_eq(s->options[1].value, "10"); /* numbers as decimal text */
    ck_assert_str_eq(e->name, "nightly");
    ck_assert_int_eq(e->line, 5);
    ck_assert_int_eq(e->interval, 86400);
    ck_assert_int_eq(e->timeout, 5);
    ck_assert_str_eq(conf_collector_option(e, "command"), "/bin/echo a,b");
    ck_assert_str_eq(conf_collector_option(e, "format"), "wide");
    ck_assert_ptr_null(conf_collector_option(e, "path"));
    ck_assert_ptr_null(conf_collector_option(NULL, "path"));
    conf_free(c);
}
END_TEST

START_TEST(test_other_valid_values)
{
    pp_config *c = load_text_ok("valid",
                             "timezone = \"UTC\"\n"
                             "due_day = 28\n"
                             "http { listen = \"[::1]:0\" threads = 64 max_body = 1024 }\n"
                             "bus { publish = \"ipc:///run/parkpulse/bus\" heartbeat = 3600 hwm = 0 }\n"
                             "indicator \"x\" { label = \"X\" unit = \"个\" kind = completion "
                             "warn = 0 crit = 0 pace = {0,0,0,0,0,0,0,0,0,0,0,100} }\n"
                             "group \"nat\" { label = \"省内国家级经开区\" }\n"
                             "group \"east\" { label = \"东部\" }\n"
                             "park \"a\" { name = \"A\" groups = {\"east\", \"nat\", \"east\"} }\n"
                             "park \"b\" { name = \"B\" groups = {\"all\"} }\n"
                             "park \"c\" { name = \"C\" groups = {\"nat\"} }\n",
                             NULL);
    /* peer groups: in declaration order, their parks too, each once; "all" implied */
    ck_assert_int_eq(c->n_groups, 2);
    const conf_group *nat = conf_group_find(c, "nat"), *east = conf_group_find(c, "east");
    ck_assert_ptr_eq(nat, &c->groups[0]);
    ck_assert_str_eq(nat->label, "省内国家级经开区");
    ck_assert_int_eq(nat->n_parks, 2);
    ck_assert_int_eq(nat->parks[0], 0);
    ck_assert_int_eq(nat->parks[1], 2);
    ck_assert_int_eq(east->n_parks, 1);
    ck_assert(conf_group_has(east, 0) && !conf_group_has(east, 1));
    ck_assert_ptr_null(conf_group_find(c, "all"));
    ck_assert(conf_group_has(NULL, 1));
    ck_assert_str_eq(c->timezone, "UTC");
    ck_assert_int_eq(c->due_day, 28);
    ck_assert_str_eq(c->http_listen, "[::1]:0");
    ck_assert_int_eq(c->http_threads, 64);
    ck_assert_int_eq(c->http_max_body, 1024);
    ck_assert_str_eq(c->bus_publish, "ipc:///run/parkpulse/bus");
    ck_assert_int_eq(c->bus_heartbeat, 3600);
    ck_assert_int_eq(c->bus_hwm, 0);
    ck_assert_int_eq(c->catalog.indicators[0].kind, PP_KIND_COMPLETION);
    ck_assert(c->catalog.indicators[0].has_pace);
    ck_assert_double_eq(c->catalog.indicators[0].pace[10], 0);
    conf_free(c);
}
END_TEST

/* ---- broken configurations ---------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    const char *main;     /* written as main.conf */
    const char *inc;      /* written as inc.conf beside it, or NULL */
    const char *file;     /* the file the error must name */
    int line;             /* and the line */
    const char *message;  /* a part of the message */
} bad_case;

#define IND(id) "indicator \"" id "\" { label = \"" id "\" unit = \"亿元\" kind = \"cumulative\" }\n"

static const bad_case bad_cases[] = {
    {"unknown top-level key", "due_day = 20\ncolour = \"red\"\n", NULL, "main.conf", 2,
     "no such option 'colour'"},
    {"unknown key in indicator",
     "indicator \"a\" {\n  label = \"A\"  unit = \"亿元\"\n  colour = \"red\"\n  kind = rate\n}\n",
     NULL, "main.conf", 3, "indicator \"a\": no such option 'colour'"},
    {"unknown key in park", "\npark \"p\" { name = \"P\" size = 3 }\n", NULL, "main.conf", 2,
     "no such option 'size'"},
    {"unknown key in http", "http {\n  listen = \"127.0.0.1:1\"\n  port = 80\n}\n", NULL,
     "main.conf", 3, "http: no such option 'port'"},
    {"unknown key in threshold",
     IND("a") "park \"p\" {\n name = \"P\"\n threshold \"a\" { warn = 1 alarm = 2 }\n}\n", NULL,
     "main.conf", 4, "no such option 'alarm'"},
    {"bad indicator id", "\n\nindicator \"Fixed Asset\" { label = \"x\" unit = \"y\" kind = rate }\n",
     NULL, "main.conf", 3, "indicator id \"Fixed Asset\" is not valid"},
    {"bad park id", "park \"-x\" { name = \"X\" }\n", NULL, "main.conf", 1,
     "park id \"-x\" is not valid"},
    {"bad kind", "indicator \"a\" {\n  label = \"A\"\n  unit = \"亿元\"\n  kind = \"speed\"\n}\n",
     NULL, "main.conf", 4, "kind \"speed\" is not"},
    {"missing kind", "\nindicator \"a\" {\n  label = \"A\"\n  unit = \"亿元\"\n}\n", NULL,
     "main.conf", 2, "kind is missing"},
    {"missing label", "indicator \"a\" { unit = \"亿元\" kind = rate }\n", NULL, "main.conf", 1,
     "label is missing"},
    {"bad direction", "indicator \"a\" { label = \"A\" unit = \"%\" kind = rate\n direction = up }\n",
     NULL, "main.conf", 2, "direction \"up\""},
    {"pace with 11 values",
     "indicator \"a\" {\n label = \"A\" unit = \"亿元\" kind = cumulative\n"
     " pace = {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100}\n}\n",
     NULL, "main.conf", 3, "pace must have 12 values, one per month (got 11)"},
    {"pace decreasing",
     "indicator \"a\" {\n label = \"A\" unit = \"亿元\" kind = cumulative\n\n"
     " pace = {10, 20, 30, 40, 50, 45, 70, 80, 90, 95, 98, 100}\n}\n",
     NULL, "main.conf", 4, "pace must not decrease: month 5 is 50, month 6 45"},
    {"pace not ending at 100",
     "indicator \"a\" { label = \"A\" unit = \"亿元\" kind = cumulative\n"
     " pace = {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 98, 99} }\n",
     NULL, "main.conf", 2, "pace must end at 100 (got 99)"},
    {"pace above 100",
     "indicator \"a\" { label = \"A\" unit = \"亿元\" kind = cumulative\n"
     " pace = {10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 120, 100} }\n",
     NULL, "main.conf", 2, "pace value 11 (120) is not between 0 and 100"},
    {"warn greater than crit",
     "indicator \"a\" {\n label = \"A\" unit = \"亿元\" kind = cumulative\n warn = 20\n crit = 10\n}\n",
     NULL, "main.conf", 3, "warn (20) must not be greater than crit (10)"},
    {"warn above default crit", "indicator \"a\" { label = \"A\" unit = \"亿元\" kind = rate\n"
     "  warn = 16 }\n", NULL, "main.conf", 2, "warn (16) must not be greater than crit (15)"},
    {"negative crit", "indicator \"a\" { label = \"A\" unit = \"亿元\" kind = rate\n crit = -1 }\n",
     NULL, "main.conf", 2, "crit must be a number >= 0"},
    {"duplicate park",
     "park \"p\" {\n name = \"P\"\n}\n\npark \"p\" { name = \"Q\" }\n", NULL, "main.conf", 5,
     "duplicate park \"p\" (first defined at "},
    {"duplicate indicator across an include", "include(\"inc.conf\")\n\n" IND("a"), IND("a"),
     "main.conf", 3, "duplicate indicator \"a\" (first defined at "},
    {"duplicate collector",
     "collector \"c\" { plugin = spool }\ncollector \"c\" { plugin = exec }\n", NULL,
     "main.conf", 2, "duplicate collector \"c\""},
    {"duplicate park name", "park \"p\" { name = \"P\" }\npark \"q\" {\n name = \"P\" }\n", NULL,
     "main.conf", 3, "park \"q\": name \"P\" is already the name of \"p\" ("},
    {"bad route name", "notify {\n route \"Bad Route\" { url = \"http://127.0.0.1:1/\" }\n}\n", NULL,
     "main.conf", 2, "notify: route name \"Bad Route\" is not valid"},
    {"duplicate label", IND("a") "indicator \"b\" {\n label = \"a\" unit = \"亿元\" kind = rate }\n",
     NULL, "main.conf", 3, "label \"a\" is already the label of \"a\""},
    {"threshold for an unknown indicator",
     IND("a") "park \"p\" {\n  name = \"P\"\n  threshold \"b\" { warn = 1 }\n}\n", NULL,
     "main.conf", 4, "threshold \"b\": no indicator \"b\" is defined"},
    {"threshold warn greater than crit",
     IND("a") "park \"p\" {\n  name = \"P\"\n  threshold \"a\" {\n warn = 9\n crit = 8 }\n}\n",
     NULL, "main.conf", 5, "warn (9) must not be greater than crit (8)"},
    {"empty threshold", IND("a") "park \"p\" { name = \"P\"\n threshold \"a\" { } }\n", NULL,
     "main.conf", 3, "give warn, crit or both"},
    {"bad level", "park \"p\" { name = \"P\"\n level = county }\n", NULL, "main.conf", 2,
     "level \"county\""},
    {"missing park name", "\n\npark \"p\" { level = national }\n", NULL, "main.conf", 3,
     "name is missing"},
    {"due_day 0", "due_day = 0\n", NULL, "main.conf", 1, "due_day must be between 1 and 28"},
    {"due_day 29", "\n\ndue_day = 29\n", NULL, "main.conf", 3, "due_day must be between 1 and 28"},
    {"due_day not a number", "due_day = soon\n", NULL, "main.conf", 1,
     "invalid integer value for option 'due_day'"},
    {"listen without port", "http {\n  listen = \"localhost\"\n}\n", NULL, "main.conf", 2,
     "listen \"localhost\" is not host:port"},
    {"listen port too big", "http { listen = \"127.0.0.1:65536\" }\n", NULL, "main.conf", 1,
     "is not host:port"},
    {"listen ipv6 without brackets", "http { listen = \"::1:8080\" }\n", NULL, "main.conf", 1,
     "is not host:port"},
    {"second http section", "http { threads = 2 }\n\nhttp { timeout = 5 }\n", NULL,
     "main.conf", 3, "second http section (the first is at "},
    {"threads 0", "http { threads = 0 }\n", NULL, "main.conf", 1,
     "http: threads must be between 1 and 64 (got 0)"},
    {"publish not an endpoint", "bus {\n publish = \"127.0.0.1:5556\"\n}\n", NULL, "main.conf",
     2, "is not a ZeroMQ endpoint"},
    {"heartbeat 0", "bus { heartbeat = 0 }\n", NULL, "main.conf", 1,
     "bus: heartbeat must be between 1 and 3600"},
    {"timezone unknown", "timezone = \"Mars/Olympus_Mons\"\n", NULL, "main.conf", 1,
     "timezone \"Mars/Olympus_Mons\""},
    {"timezone escaping zoneinfo", "timezone = \"../../etc/passwd\"\n", NULL, "main.conf", 1,
     "timezone \"../../etc/passwd\""},
    {"collector without plugin", "collector \"c\" {\n path = \"/x\"\n}\n", NULL, "main.conf", 1,
     "plugin is missing"},
    {"collector plugin not an id", "collector \"c\" { plugin = \"../evil\" }\n", NULL,
     "main.conf", 1, "plugin \"../evil\" is not a plugin name"},
    {"collector bad name", "collector \"My Spool\" { plugin = spool }\n", NULL, "main.conf", 1,
     "collector name \"My Spool\" is not valid"},
    {"collector interval 0", "collector \"c\" { plugin = exec\n interval = 0 }\n", NULL,
     "main.conf", 2, "interval must be between 1"},
    {"collector bad option key", "collector \"c\" { plugin = exec \"Bad Key\" = 1 }\n", NULL,
     "main.conf", 1, "\"Bad Key\" is not an option name"},
    {"syntax error: missing value", "park \"p\" {\n  name = \"P\"\n  level = }\n", NULL,
     "main.conf", 3, "unexpected token '}'"},
    {"syntax error in a collector", "collector \"c\" { plugin = exec\n command = }\n", NULL,
     "main.conf", 2, "unexpected token '}'"},
    {"syntax error: unclosed section", "due_day = 20\npark \"p\" {\n  name = \"P\"\n", NULL,
     "main.conf", 2, "this '{' is never closed"},
    {"syntax error: unclosed list", "indicator \"a\" { label = \"A\" unit = \"%\" kind = rate\n"
     "  pace = {1, 2 }\n", NULL, "main.conf", 1, "this '{' is never closed"},
    {"syntax error: unclosed call", "include(i", NULL, "main.conf", 1,
     "this '(' is never closed"},
    {"syntax error: unclosed call after a section", "http { threads = 2 }\n\ninclude(\"x.conf\"\n",
     NULL, "main.conf", 3, "this '(' is never closed"},
    {"syntax error: unclosed call in an included file", "include(\"inc.conf\")\n", "\ninclude(i\n",
     "inc.conf", 2, "this '(' is never closed"},
    {"http header_timeout 0", "http { header_timeout = 0 }\n", NULL, "main.conf", 1,
     "header_timeout must be between 1 and 3600"},
    {"http max_streams_per_ip 0", "http {\n max_streams_per_ip = 0 }\n", NULL, "main.conf", 2,
     "max_streams_per_ip must be between 1"},
    {"bus max_connections 0", "bus { max_connections = 0 }\n", NULL, "main.conf", 1,
     "max_connections must be between 1 and 65536"},
    {"syntax error: stray closing brace", "due_day = 20\n}\n", NULL, "main.conf", 2,
     "unexpected closing brace"},
    {"syntax error: unterminated string", "\nstate_dir = 'abc\n\n", NULL, "main.conf", 2,
     "this string is never closed"},
    {"syntax error: unterminated comment", "due_day = 3\n/* the end\n\n", NULL, "main.conf", 2,
     "this comment is never closed"},
    {"error in an included file", "due_day = 20\ninclude(\"inc.conf\")\n",
     "# catalogue\n\nindicator \"a\" {\n  label = \"A\" unit = \"%\"\n  kind = ratio\n}\n",
     "inc.conf", 5, "kind \"ratio\""},
    {"syntax error in an included file", "include(\"inc.conf\")\n", "\n\ndue_day = = 3\n",
     "inc.conf", 3, "unexpected token '='"},
    {"missing include file", "\ninclude(\"nope.conf\")\n", NULL, "main.conf", 2,
     "cannot open"},
    {"include loop", "include(\"main.conf\")\n", NULL, "main.conf", 1, "nested more than"},
    {"line numbers after comments",
     "# one\n// two\n/* three\n   four */\n# five\n\ncolour = red # seven\n", NULL, "main.conf", 7,
     "no such option 'colour'"},
    {"comments inside a list",
     "indicator \"a\" { label = \"A\" unit = \"亿元\" kind = cumulative\n"
     " pace = {10, 20, # q1\n  30, 40 /* q2 */, 50}\n}\n",
     NULL, "main.conf", 2, "pace must have 12 values, one per month (got 5)"},
    {"park in an unknown group", "group \"g\" { label = \"甲组\" }\n"
     "park \"p\" {\n  name = \"P\"\n  groups = {\"g\", \"nope\"}\n}\n", NULL, "main.conf", 4,
     "park \"p\": groups: no group \"nope\" is defined"},
    {"group id not an id", "\ngroup \"A B\" { label = \"x\" }\n", NULL, "main.conf", 2,
     "group id \"A B\" is not valid"},
    {"group all is implicit", "group \"all\" { label = \"全部\" }\n", NULL, "main.conf", 1,
     "group \"all\" is implicit"},
    {"group without label", "\n\ngroup \"g\" { }\n", NULL, "main.conf", 3,
     "group \"g\": label is missing"},
    {"duplicate group", "group \"g\" { label = \"x\" }\ngroup \"g\" { label = \"y\" }\n", NULL,
     "main.conf", 2, "duplicate group \"g\""},
    {"label not UTF-8", "indicator \"a\" { label = \"\\xff\\xfe\" unit = \"%\" kind = rate }\n",
     NULL, "main.conf", 1, "label is not printable UTF-8 text"},
    /* issue 13, point 7 */
    {"bad rule", "indicator \"a\" {\n  label = \"A\" unit = \"亿元\" kind = \"cumulative\"\n"
     "  rule = \"percent\"\n}\n", NULL, "main.conf", 3, "rule \"percent\" is not points or relative"},
    {"relative rule on a rate", "indicator \"a\" {\n  label = \"A\" unit = \"%\" kind = \"rate\"\n"
     "  rule = \"relative\"\n}\n", NULL, "main.conf", 3, "applies to cumulative and completion"},
    {"negative escalate", "indicator \"a\" {\n  label = \"A\" unit = \"亿元\" kind = \"cumulative\"\n"
     "  escalate = -1\n}\n", NULL, "main.conf", 3, "escalate must be 0 (off) or"},
};

/* escalate and rule are read (issue 13, point 7); the defaults are off and points. */
START_TEST(test_escalate_and_rule)
{
    pp_config *c = load_text_ok("esc", "indicator \"a\" { label = \"A\" unit = \"亿元\" kind = \"cumulative\"\n"
                             "  escalate = 3 rule = \"relative\" }\n"
                             "indicator \"b\" { label = \"B\" unit = \"%\" kind = \"completion\" }\n",
                             NULL);
    ck_assert_int_eq(c->catalog.indicators[0].escalate, 3);
    ck_assert(c->catalog.indicators[0].relative);
    ck_assert_int_eq(c->catalog.indicators[1].escalate, 0);
    ck_assert(!c->catalog.indicators[1].relative);
    conf_free(c);
}
END_TEST

START_TEST(test_bad_config)
{
    const bad_case *t = &bad_cases[_i];
    char sub[32], dir[6000], err[4096], path[8192], want[8192];

    snprintf(sub, sizeof(sub), "bad%02d", _i);
    snprintf(dir, sizeof(dir), "%s/%s", tmpdir, sub);
    if (t->inc)
        write_file(dir, "inc.conf", t->inc);
    memset(err, 'x', sizeof(err));
    pp_config *c = load_text(sub, t->main, err, sizeof(err), path, sizeof(path));
    ck_assert_msg(c == NULL, "%s: accepted", t->name);
    ck_assert_msg(memchr(err, '\0', sizeof(err)) != NULL, "%s: err not terminated", t->name);
    snprintf(want, sizeof(want), "%s/%s:%d: ", dir, t->file, t->line);
    ck_assert_msg(strstr(err, want) != NULL, "%s: want \"%s\" in:\n%s", t->name, want, err);
    ck_assert_msg(strstr(strstr(err, want), t->message) != NULL, "%s: want \"%s\" in:\n%s",
                  t->name, t->message, err);
}
END_TEST

START_TEST(test_many_errors_reported_at_once)
{
    static const struct {
        int line;
        const char *message;
    } want[] = {
        {2, "due_day must be between 1 and 28 (got 31)"},
        {5, "indicator \"fixed_asset_investment\": kind \"amount\""},
        {9, "indicator \"tax_revenue\": warn (20) must not be greater than crit (10)"},
        {11, "park \"xiangtan-etdz\": level \"county\""},
        {14, "park \"liuyang-etdz\": threshold \"no_such_indicator\": no indicator"},
    };
    const char *file = "tests/fixtures/conf/many-errors.conf";
    char err[8192], line[512];

    ck_assert_ptr_null(conf_load(file, err, sizeof(err)));
    size_t lines = 0;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    ck_assert_msg(lines == N(want), "want %zu errors, got:\n%s", N(want), err);
    for (size_t i = 0; i < N(want); i++) {
        snprintf(line, sizeof(line), "%s:%d: %s", file, want[i].line, want[i].message);
        ck_assert_msg(strstr(err, line) != NULL, "want \"%s\" in:\n%s", line, err);
    }
}
END_TEST

START_TEST(test_missing_file_and_small_buffer)
{
    char err[256];
    ck_assert_ptr_null(conf_load("tests/fixtures/conf/no-such.conf", err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "tests/fixtures/conf/no-such.conf"));
    ck_assert_ptr_nonnull(strstr(err, "No such file or directory"));

    ck_assert_ptr_null(conf_load(NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "no configuration file"));
    ck_assert_ptr_null(conf_load("", NULL, 0)); /* no buffer: still refused, no crash */

    /* errors are cut to the buffer, always terminated */
    char tiny[24];
    memset(tiny, 'x', sizeof(tiny));
    ck_assert_ptr_null(conf_load("tests/fixtures/conf/many-errors.conf", tiny, sizeof(tiny)));
    ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
    ck_assert_int_eq(strncmp(tiny, "tests/fixtures/conf/man", 23), 0);

    ck_assert_ptr_null(conf_load("tests/fixtures/conf", err, sizeof(err))); /* a directory */
    ck_assert_ptr_nonnull(strstr(err, "not a regular file"));
    conf_free(NULL);
}
END_TEST

START_TEST(test_reload_gives_independent_configs)
{
    pp_config *a = load_ok("config/parkpulse.conf");
    pp_config *b = load_ok("tests/fixtures/conf/nested/main.conf");
    ck_assert_uint_eq(a->catalog.n_indicators, 14);
    ck_assert_uint_eq(b->catalog.n_indicators, 2);
    conf_free(a);
    ck_assert_str_eq(b->catalog.parks[0].name, "湘潭经开区");
    conf_free(b);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = check_tcase(s, "load", NULL, NULL, 0);
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, test_example_config);
    tcase_add_test(tc, test_defaults_of_empty_file);
    tcase_add_test(tc, test_include_relative_to_file);
    tcase_add_test(tc, test_include_absolute_path);
    tcase_add_test(tc, test_collector_options);
    tcase_add_test(tc, test_other_valid_values);
    tcase_add_loop_test(tc, test_bad_config, 0, (int)N(bad_cases));
    tcase_add_test(tc, test_escalate_and_rule);
    tcase_add_test(tc, test_many_errors_reported_at_once);
    tcase_add_test(tc, test_missing_file_and_small_buffer);
    tcase_add_test(tc, test_reload_gives_independent_configs);
    return s;
}

CHECK_MAIN(config_suite)
