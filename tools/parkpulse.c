/*
 * parkpulse.c — `parkpulse`, the command-line client of parkpulsed (parkpulse(1)):
 * the global options, the command table, and the commands status, push,
 * check-config, rebuild, report and token (backup: tools/backup.c).
 *
 *     parkpulse [--url URL] [--config FILE] [--token-file FILE] COMMAND [ARGS]
 *
 * Commands talk to the daemon over its HTTP API (tools/client.c), except
 * check-config, which reads a configuration with the daemon's own loader
 * (daemon/config.c), and rebuild, which runs `parkpulsed --rebuild`. Exit
 * statuses follow sysexits(3): 64 usage, 65 data refused, 66 no input,
 * 69 daemon not running, 74 I/O error, 77 permission, 78 configuration.
 * Adding a command is one line in the table below plus its function.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "preflight.h"
#include "workbook.h"
#include "vec.h"

#define PUSH_MAX_FILE (256L << 20) /* bytes of CSV read for one push */
#define TOKEN_MAX 4096

static const cl_command commands[] = {
    { "status", cl_cmd_status, "[--park P]", "a table of every park's latest figures and status" },
    { "retract", cl_cmd_retract, "PARK INDICATOR PERIOD --reason TEXT [--token-file F]",
      "withdraw a period's figure (journaled with its reason)" },
    { "push", cl_cmd_push, "[--token-file F] FILE.csv|.xlsx|.xls", "send a CSV file or an Excel workbook of observations or targets" },
    { "check-config", cl_cmd_check_config, "[FILE]", "check a configuration file and exit" },
    { "rebuild", cl_cmd_rebuild, "", "regenerate every RRD file from the journal" },
    { "subscribe", cl_cmd_subscribe, "[--park P] [--json] [--endpoint E] [--http URL] [--count N]",
      "print alerts as they come (filling gaps from the HTTP API)" },
    { "report", cl_cmd_report, "--period YYYY-MM [--format F] [--encoding E] [--xlsx FILE]",
      "the monthly report table (CSV or JSON), or the 通报 workbook" },
    { "token", cl_cmd_token, "--create [--force] [FILE]", "create the bearer token file" },
    { "backup", cl_cmd_backup, "DIR", "a consistent copy of the journal, also while parkpulsed runs" },
    { "silence", cl_cmd_silence, "add PARK[/INDICATOR] --until YYYY-MM-DD --reason TEXT | list | rm ID",
      "silence a park's alerts for a while (not delivered by parkpulse-notify)" },
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: parkpulse [--url URL] [--config FILE] [--token-file FILE] COMMAND [ARGS]\n"
            "\n"
            "  -u, --url URL          the daemon (default: http:// + http.listen of the\n"
            "                         configuration, else " CL_DEFAULT_URL ")\n"
            "  -c, --config FILE      configuration (default: $PARKPULSE_CONF, else\n"
            "                         " CL_DEFAULT_CONFIG ")\n"
            "  -t, --token-file FILE  bearer token for writes (default: http.token_file)\n"
            "  -h, --help             this text;  -V, --version  the version\n"
            "\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        /* two lines each, so that no line runs past 80 columns */
        fprintf(f, "  %s%s%s\n        %s\n", commands[i].name, commands[i].args[0] ? " " : "",
                commands[i].args, commands[i].summary);
    }
    fprintf(f, "\n'parkpulse COMMAND --help' describes a command; see parkpulse(1).\n");
}

/* Parses a command's options: only --help (and the given extra ones) exist.
 * Returns the option character, -1 at the end, or sets *rc and returns 0
 * when the command must stop (help printed: rc 0; bad option: rc 64). */
static int next_opt(int argc, char **argv, const char *shortopts, const struct option *longopts,
                    const char *help, int *rc)
{
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == 'h') {
        fputs(help, stdout);
        *rc = 0;
        return 0;
    }
    if (c == '?' || c == ':') {
        fputs(help, stderr);
        *rc = EX_USAGE;
        return 0;
    }
    return c;
}

/* ---- status ------------------------------------------------------------ */

static const char status_help[] =
    "usage: parkpulse status [--park P]\n"
    "Prints every park's latest figure of each indicator, with Chinese headers:\n"
    "园区 (park), 指标 (indicator), 期间 (period), 数值 (value), 完成率 (completion\n"
    "of the annual target), 较序时(百分点) (gap to the target pace in percentage\n"
    "points) and 状态, the status: 正常 (ok), 预警 (warning), 严重 (critical),\n"
    "未设目标 (no_target), 未报送 (no_data: a target, no figure yet), and \"/逾期\"\n"
    "after it when the month due has not arrived (overdue, beside the status).\n"
    "Colours only on a terminal, and never when NO_COLOR is set.\n"
    "  -p, --park P   one park only\n"
    "  -h, --help     this text\n";

enum { COL_PARK, COL_IND, COL_PERIOD, COL_VALUE, COL_DONE, COL_GAP, COL_STATUS, N_COLS };

static const char *const col_head[N_COLS] = { "园区",   "指标",           "期间", "数值",
                                              "完成率", "较序时(百分点)", "状态" };
static const bool col_right[N_COLS] = { false, false, false, true, true, true, false };

typedef struct row {
    char *cell[N_COLS];
} row;

typedef struct table {
    row *rows;
    size_t n, cap;
} table;

static void table_free(table *t)
{
    for (size_t i = 0; i < t->n; i++)
        for (int c = 0; c < N_COLS; c++)
            free(t->rows[i].cell[c]);
    free(t->rows);
    memset(t, 0, sizeof *t);
}

/* Appends a row of copies of cells; returns 0 or -1 (out of memory). */
static int table_add(table *t, char *const cells[N_COLS])
{
    if (PP_VEC_RESERVE(t->rows, t->cap, t->n + 1, 32) != 0)
        return -1;
    row *r = &t->rows[t->n];
    for (int c = 0; c < N_COLS; c++) {
        r->cell[c] = strdup(cells[c] ? cells[c] : "-");
        if (r->cell[c] == NULL) {
            for (int k = 0; k < c; k++)
                free(r->cell[k]);
            return -1;
        }
    }
    t->n++;
    return 0;
}

/* A number as a person writes it: no exponent for ordinary figures, no
 * trailing zeros. */
static void format_number(double v, char *buf, size_t len)
{
    if (!isfinite(v)) {
        snprintf(buf, len, "-");
        return;
    }
    snprintf(buf, len, "%.12g", v);
}

static const char *jstr(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

/* Fills buf from a numeric field with fmt ("%.2f%%"), or "-" when null/absent. */
static const char *jnum(const json_t *obj, const char *key, const char *fmt, char *buf, size_t len)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return "-";
    double d = json_number_value(v);
    if (fmt == NULL)
        format_number(d, buf, len);
    else
        snprintf(buf, len, fmt, d);
    return buf;
}

/* The statuses as the pages name them (dashboards/assets/app.js), with
 * their colours; an unknown status is shown as sent. */
static const struct { const char *id, *zh, *colour; } statuses[] = {
    { "ok", "正常", "\033[32m" },          { "warning", "预警", "\033[33m" },
    { "critical", "严重", "\033[1;31m" },  { "no_target", "未设目标", "\033[2m" },
    { "no_data", "未报送", "\033[35m" },    { "stale", "逾期", "\033[35m" },
};

static const char *status_zh(const char *status)
{
    for (size_t i = 0; status && i < sizeof statuses / sizeof statuses[0]; i++)
        if (strcmp(status, statuses[i].id) == 0)
            return statuses[i].zh;
    return status;
}

/* The colour of a shown (Chinese) status, or NULL; "严重/逾期" is coloured
 * by its status. */
static const char *status_colour(const char *shown)
{
    for (size_t i = 0; shown && i < sizeof statuses / sizeof statuses[0]; i++)
        if (strncmp(shown, statuses[i].zh, strlen(statuses[i].zh)) == 0)
            return statuses[i].colour;
    return NULL;
}

/* Adds the rows of one park object of the status JSON. */
static int add_park_rows(table *t, const json_t *park)
{
    const char *name = jstr(park, "name");
    if (name == NULL || *name == '\0')
        name = jstr(park, "id");
    if (name == NULL)
        return 1; /* not a park object */
    const json_t *inds = json_object_get(park, "indicators");
    if (!json_is_array(inds))
        return 1;
    if (json_array_size(inds) == 0) {
        char *cells[N_COLS] = { (char *)name, "(尚无数据)", NULL, NULL, NULL, NULL, NULL };
        return table_add(t, cells);
    }
    size_t i;
    const json_t *s;
    json_array_foreach(inds, i, s) {
        char value[160], num[64], done[64], gap[64], st[64];
        if (!json_is_object(s))
            return 1;
        const char *label = jstr(s, "label");
        const char *unit = jstr(s, "unit");
        const char *v = jnum(s, "value", NULL, num, sizeof num);
        snprintf(value, sizeof value, "%s%s%s", v, unit && *unit && strcmp(v, "-") ? " " : "",
                 unit && strcmp(v, "-") ? unit : "");
        char *cells[N_COLS] = {
            (char *)name,
            (char *)(label ? label : jstr(s, "indicator")),
            (char *)jstr(s, "period"),
            value,
            (char *)jnum(s, "completion_pct", "%.2f%%", done, sizeof done),
            (char *)jnum(s, "gap_pp", "%+.2f", gap, sizeof gap),
            st,
        };
        /* overdue is beside the status, never instead of it */
        snprintf(st, sizeof st, "%s%s", status_zh(jstr(s, "status")) ? status_zh(jstr(s, "status")) : "-",
                 json_is_true(json_object_get(s, "overdue")) ? "/逾期" : "");
        if (table_add(t, cells) != 0)
            return -1;
    }
    return 0;
}

static int print_table(const table *t, bool colour)
{
    size_t width[N_COLS];
    for (int c = 0; c < N_COLS; c++) {
        width[c] = cl_display_width(col_head[c]);
        for (size_t i = 0; i < t->n; i++) {
            size_t w = cl_display_width(t->rows[i].cell[c]);
            if (w > width[c])
                width[c] = w;
        }
    }
    for (int c = 0; c < N_COLS; c++) {
        cl_put_padded(stdout, col_head[c], c == N_COLS - 1 ? 0 : width[c], col_right[c]);
        fputs(c == N_COLS - 1 ? "\n" : "  ", stdout);
    }
    for (size_t i = 0; i < t->n; i++) {
        const char *col = colour ? status_colour(t->rows[i].cell[COL_STATUS]) : NULL;
        for (int c = 0; c < N_COLS; c++) {
            bool paint = col && (c == COL_STATUS || c == COL_GAP);
            if (paint)
                fputs(col, stdout);
            cl_put_padded(stdout, t->rows[i].cell[c], c == N_COLS - 1 ? 0 : width[c], col_right[c]);
            if (paint)
                fputs("\033[0m", stdout);
            fputs(c == N_COLS - 1 ? "\n" : "  ", stdout);
        }
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cl_err("status", "cannot write the table: %s", strerror(errno));
        return EX_IOERR;
    }
    return 0;
}

static bool want_colour(void)
{
    const char *no = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && (no == NULL || *no == '\0') &&
           !(term && strcmp(term, "dumb") == 0);
}

int cl_cmd_status(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "park", required_argument, NULL, 'p' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *park = NULL;
    int c, rc = 0;
    while ((c = next_opt(argc, argv, "p:h", opts, status_help, &rc)) != -1) {
        if (c == 0)
            return rc;
        if (c == 'p')
            park = optarg;
    }
    if (optind != argc) {
        fputs(status_help, stderr);
        return EX_USAGE;
    }
    if (park && !pp_id_valid(park)) {
        cl_err("status", "'%s' is not a park id ([a-z0-9][a-z0-9_-]*)", park);
        return EX_USAGE;
    }

    char path[128];
    snprintf(path, sizeof path, park ? "/api/v1/parks/%s" : "/api/v1/status", park ? park : "");
    cl_answer ans;
    table t = { 0 };
    json_t *j = NULL;
    rc = cl_http(ctx, "status", "GET", path, NULL, NULL, 0, NULL, &ans);
    if (rc != 0)
        return rc;
    if (ans.status != 200) {
        rc = cl_http_failure("status", path, &ans);
        goto out;
    }
    if ((j = cl_json("status", &ans)) == NULL) {
        rc = EX_PROTOCOL;
        goto out;
    }
    int bad = 0;
    if (park) {
        bad = add_park_rows(&t, j);
    } else {
        const json_t *parks = json_object_get(j, "parks");
        size_t i;
        const json_t *p;
        if (!json_is_array(parks))
            bad = 1;
        json_array_foreach(parks, i, p) {
            if ((bad = add_park_rows(&t, p)) != 0)
                break;
        }
    }
    if (bad < 0) {
        cl_err("status", "out of memory");
        rc = EX_OSERR;
        goto out;
    }
    if (bad > 0) {
        cl_err("status", "the daemon's status JSON has an unexpected shape");
        rc = EX_PROTOCOL;
        goto out;
    }
    rc = print_table(&t, want_colour());
out:
    table_free(&t);
    json_decref(j);
    cl_answer_free(&ans);
    return rc;
}

/* ---- push -------------------------------------------------------------- */

static const char push_help[] =
    "usage: parkpulse push [--token-file FILE] FILE.csv|FILE.xlsx|FILE.xls\n"
    "Sends a CSV file (observations, targets or a wide table; UTF-8 or GB18030)\n"
    "or an Excel workbook (.xlsx, .xls: every sheet with a recognised header)\n"
    "to POST /api/v1/observations with the bearer token. The daemon takes the\n"
    "whole file or, when any row is bad, nothing: each bad row is printed with\n"
    "its line number (FILE:SHEET!ROW in a workbook) and the exit status is 65.\n"
    "FILE '-' reads standard input.\n"
    "  -t, --token-file FILE  the token (default: http.token_file of the\n"
    "                         configuration)\n"
    "  -h, --help             this text\n";

#define PUSH_TYPE_XLSX "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#define PUSH_TYPE_XLS  "application/vnd.ms-excel"

/* Reads all of fd (at most max bytes); returns 0, or -errno / -EFBIG. */
static int read_all(int fd, char **out, size_t *outlen, size_t max)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap >= max) {
                free(buf);
                return -EFBIG;
            }
            cap = cap * 2 > max ? max : cap * 2;
            char *grown = realloc(buf, cap);
            if (grown == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = grown;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            return -e;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

/* The file name shown in messages: its last path component. */
static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash && slash[1] ? slash + 1 : path;
}

/* Prints the rows the daemon refused, naming the file instead of "http". */
static void print_refused_rows(const char *file, const json_t *j)
{
    const json_t *errors = json_object_get(j, "errors");
    size_t i;
    const json_t *e;
    json_array_foreach(errors, i, e) {
        const char *line = json_string_value(e);
        if (line == NULL)
            continue;
        if (strncmp(line, "http:", 5) == 0) {
            line += 5;
            fprintf(stderr, "%s:", file);
        }
        for (const unsigned char *p = (const unsigned char *)line; *p; p++)
            fputc(*p < 0x20 || *p == 0x7F ? '?' : *p, stderr);
        fputc('\n', stderr);
    }
}

int cl_cmd_push(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "token-file", required_argument, NULL, 't' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c, rc = 0, fd = -1;
    char *data = NULL;
    size_t len = 0;
    char tok[TOKEN_MAX];
    cl_answer ans = { 0 };
    json_t *j = NULL;

    while ((c = next_opt(argc, argv, "t:h", opts, push_help, &rc)) != -1) {
        if (c == 0)
            return rc;
        if (c == 't')
            ctx->token_opt = optarg;
    }
    if (optind != argc - 1) {
        fputs(push_help, stderr);
        return EX_USAGE;
    }
    const char *file = argv[optind];
    const char *shown = strcmp(file, "-") == 0 ? "(stdin)" : base_name(file);
    fd = strcmp(file, "-") == 0 ? STDIN_FILENO : open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        cl_err("push", "cannot open %s: %s", file, strerror(errno));
        return errno == EACCES ? EX_NOPERM : EX_NOINPUT;
    }
    int r = read_all(fd, &data, &len, PUSH_MAX_FILE);
    if (fd != STDIN_FILENO)
        close(fd);
    if (r < 0) {
        cl_err("push", "cannot read %s: %s", file,
               r == -EFBIG ? "larger than 256 MiB" : strerror(-r));
        return r == -EFBIG ? EX_DATAERR : EX_IOERR;
    }
    if (len == 0) {
        cl_err("push", "%s is empty", file);
        rc = EX_DATAERR;
        goto out;
    }
    if ((rc = cl_read_token(ctx, "push", tok, sizeof tok)) != 0)
        goto out;
    /* the type by the file's first bytes, as the daemon reads it */
    wb_format fmt = workbook_format(data, len);
    const char *type = fmt == WB_XLSX ? PUSH_TYPE_XLSX : fmt == WB_XLS ? PUSH_TYPE_XLS : "text/csv";
    rc = cl_http(ctx, "push", "POST", "/api/v1/observations", type, data, len, tok, &ans);
    explicit_bzero(tok, sizeof tok);
    if (rc != 0)
        goto out;
    if (ans.status == 202 || ans.status == 200) {
        if ((j = cl_json("push", &ans)) == NULL) {
            rc = EX_PROTOCOL;
            goto out;
        }
        const json_t *acc = json_object_get(j, "accepted");
        if (!json_is_integer(acc)) {
            cl_err("push", "the daemon's answer has no 'accepted' count");
            rc = EX_PROTOCOL;
            goto out;
        }
        printf("%s: %lld observation(s) accepted", shown, (long long)json_integer_value(acc));
        const json_t *unch = json_object_get(j, "unchanged");
        const json_t *targ = json_object_get(j, "targets");
        if (json_is_integer(unch) && json_integer_value(unch) > 0)
            printf(", %lld unchanged", (long long)json_integer_value(unch));
        if (json_is_integer(targ) && json_integer_value(targ) > 0)
            printf(", %lld target(s)", (long long)json_integer_value(targ));
        printf("\n");
        /* figures accepted but worth a look (a year-to-date figure below the month before) */
        const json_t *warn = json_object_get(j, "warnings");
        size_t wi;
        const json_t *w;
        json_array_foreach(warn, wi, w) {
            if (json_string_value(w))
                fprintf(stderr, "%s: warning: %s\n", shown, json_string_value(w));
        }
        if (fflush(stdout) != 0)
            rc = EX_IOERR;
        goto out;
    }
    if (ans.status == 400 && (j = json_loadb(ans.body, ans.len, 0, NULL)) != NULL &&
        json_is_array(json_object_get(j, "errors"))) {
        const char *msg = jstr(j, "error");
        cl_err("push", "%s refused: %s", shown, msg ? msg : "bad rows");
        print_refused_rows(shown, j);
        rc = EX_DATAERR;
        goto out;
    }
    rc = cl_http_failure("push", shown, &ans);
    if (ans.status == 401)
        cl_err("push", "the token was refused: check --token-file or http.token_file");
out:
    json_decref(j);
    cl_answer_free(&ans);
    free(data);
    return rc;
}

/* ---- retract ------------------------------------------------------------ */

static const char retract_help[] =
    "usage: parkpulse retract [--token-file FILE] PARK INDICATOR PERIOD --reason TEXT\n"
    "Withdraws the figure of PERIOD (YYYY-MM) with DELETE\n"
    "/api/v1/observations/PARK/INDICATOR/PERIOD?reason=TEXT: the daemon journals\n"
    "the retraction (a W vintage with the reason), the period then has no figure,\n"
    "and status, alerts, graphs and the history follow. The history keeps the\n"
    "withdrawn figure. Exit status 65 when that period has no figure (or a bad\n"
    "argument), 77 when the token is refused.\n"
    "  -r, --reason TEXT      why (required; shown in the history)\n"
    "  -t, --token-file FILE  the token (default: http.token_file of the\n"
    "                         configuration)\n"
    "  -h, --help             this text\n";

/* Appends s to b percent-encoded for a URL query value (RFC 3986 unreserved kept). */
static int url_encode(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                     (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~';
        if (k + 4 > cap)
            return -1;
        if (plain) {
            out[k++] = (char)*p;
        } else {
            out[k++] = '%';
            out[k++] = hex[*p >> 4];
            out[k++] = hex[*p & 15];
        }
    }
    out[k] = '\0';
    return 0;
}

int cl_cmd_retract(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "token-file", required_argument, NULL, 't' },
                                          { "reason", required_argument, NULL, 'r' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c, rc = 0;
    const char *reason = NULL;
    char tok[TOKEN_MAX];
    cl_answer ans = { 0 };
    json_t *j = NULL;

    while ((c = next_opt(argc, argv, "t:r:h", opts, retract_help, &rc)) != -1) {
        if (c == 0)
            return rc;
        if (c == 't')
            ctx->token_opt = optarg;
        else if (c == 'r')
            reason = optarg;
    }
    if (optind != argc - 3 || reason == NULL || *reason == '\0') {
        fputs(retract_help, stderr);
        return EX_USAGE;
    }
    const char *park = argv[optind], *ind = argv[optind + 1], *per = argv[optind + 2];
    int period;
    if (!pp_id_valid(park) || !pp_id_valid(ind) || pp_period_parse_canonical(per, &period) != 0) {
        cl_err("retract", "bad argument: PARK and INDICATOR are ids, PERIOD is YYYY-MM");
        return EX_DATAERR;
    }
    char enc[3 * 1024 + 1], path[4096];
    if (strlen(reason) > 1024 || url_encode(enc, sizeof enc, reason) != 0) {
        cl_err("retract", "the reason is too long (at most 1024 bytes)");
        return EX_DATAERR;
    }
    snprintf(path, sizeof path, "/api/v1/observations/%s/%s/%s?reason=%s", park, ind, per, enc);
    if ((rc = cl_read_token(ctx, "retract", tok, sizeof tok)) != 0)
        return rc;
    rc = cl_http(ctx, "retract", "DELETE", path, NULL, NULL, 0, tok, &ans);
    explicit_bzero(tok, sizeof tok);
    if (rc != 0)
        goto out;
    if (ans.status == 200) {
        if ((j = cl_json("retract", &ans)) == NULL) {
            rc = EX_PROTOCOL;
            goto out;
        }
        const json_t *r = json_object_get(j, "retraction");
        const char *at = r ? jstr(r, "received_at") : NULL;
        printf("%s %s %s: retracted%s%s\n", park, ind, per, at ? " at " : "", at ? at : "");
        if (fflush(stdout) != 0)
            rc = EX_IOERR;
        goto out;
    }
    rc = cl_http_failure("retract", per, &ans);
    if (ans.status == 401)
        cl_err("retract", "the token was refused: check --token-file or http.token_file");
out:
    json_decref(j);
    cl_answer_free(&ans);
    return rc;
}

/* ---- check-config ------------------------------------------------------ */

static const char check_config_help[] =
    "usage: parkpulse check-config [FILE]\n"
    "Reads a configuration (default: --config, else " CL_DEFAULT_CONFIG ")\n"
    "with the daemon's own checks and prints 'OK' with what it declares, or each\n"
    "problem as file:line: message, top-down (exit status 78). Like parkpulsed\n"
    "at start-up it also checks, as the user running it: state_dir writable,\n"
    "each collector's plugin loads, an exec command exists and is executable\n"
    "(and, as root, has a user), the HTTP and bus ports are free.\n"
    "  -h, --help   this text\n";

int cl_cmd_check_config(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c, rc = 0;
    while ((c = next_opt(argc, argv, "h", opts, check_config_help, &rc)) != -1)
        if (c == 0)
            return rc;
    if (optind < argc - 1) {
        fputs(check_config_help, stderr);
        return EX_USAGE;
    }
    const char *file = optind < argc ? argv[optind] : cl_config_file(ctx);
    if (access(file, R_OK) != 0) {
        int e = errno;
        cl_err("check-config", "cannot read %s: %s", file, strerror(e));
        return e == EACCES ? EX_NOPERM : EX_NOINPUT;
    }
    size_t errlen = 65536;
    char *err = malloc(errlen);
    if (err == NULL) {
        cl_err("check-config", "out of memory");
        return EX_OSERR;
    }
    err[0] = '\0';
    pp_config *cfg = conf_load(file, err, errlen);
    if (cfg == NULL) {
        fputs(err, stderr);
        if (err[0] == '\0' || err[strlen(err) - 1] != '\n')
            fputc('\n', stderr);
        cl_err("check-config", "%s has errors", file);
        free(err);
        return EX_CONFIG;
    }
    /* what start-up would refuse besides the file itself: the daemon's own checks */
    char note[512];
    if (preflight_check(cfg, err, errlen, note, sizeof note) > 0) {
        fputs(err, stderr);
        cl_err("check-config", "parkpulsed would not start with %s", file);
        free(err);
        conf_free(cfg);
        return EX_CONFIG;
    }
    free(err);
    printf("%s: OK (%zu parks, %zu indicators, %zu collectors)\n", file, cfg->catalog.n_parks,
           cfg->catalog.n_indicators, cfg->n_collectors);
    if (note[0])
        printf("%s\n", note);
    conf_free(cfg);
    return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* ---- rebuild ----------------------------------------------------------- */

static const char rebuild_help[] =
    "usage: parkpulse rebuild\n"
    "Regenerates every RRD file from the journal by running\n"
    "'parkpulsed -c FILE --rebuild'\n"
    "(FILE: --config, else " CL_DEFAULT_CONFIG ").\n"
    "The daemon must be stopped first (it holds the state directory), and this\n"
    "must run as the user that owns the state directory.\n"
    "  -h, --help   this text\n";

/* Finds parkpulsed: beside this program, in ../sbin from it, in $PATH, then
 * in the system's sbin directories. Returns 0 with the path in out, or -1. */
static int find_daemon(char *out, size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            const char *rel[] = { "/parkpulsed", "/../sbin/parkpulsed" };
            for (size_t i = 0; i < 2; i++) {
                if (snprintf(out, len, "%s%s", self, rel[i]) < (int)len && access(out, X_OK) == 0)
                    return 0;
            }
        }
    }
    const char *env = getenv("PATH");
    char *path = NULL;
    if (asprintf(&path, "%s:/usr/sbin:/usr/local/sbin:/sbin", env ? env : "/usr/bin:/bin") < 0)
        return -1;
    int rc = -1;
    for (char *save = NULL, *dir = strtok_r(path, ":", &save); dir;
         dir = strtok_r(NULL, ":", &save)) {
        if (*dir == '\0')
            continue;
        if (snprintf(out, len, "%s/parkpulsed", dir) < (int)len && access(out, X_OK) == 0) {
            rc = 0;
            break;
        }
    }
    free(path);
    return rc;
}

/* 1 when a running parkpulsed holds the state directory's lock, else 0. */
static int daemon_holds(const char *state_dir)
{
    char lock[PATH_MAX];
    if (snprintf(lock, sizeof lock, "%s/parkpulsed.lock", state_dir) >= (int)sizeof lock)
        return 0;
    int fd = open(lock, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return 0;
    int held = flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd); /* releases the lock if we took it */
    return held;
}

int cl_cmd_rebuild(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c, rc = 0;
    while ((c = next_opt(argc, argv, "h", opts, rebuild_help, &rc)) != -1)
        if (c == 0)
            return rc;
    if (optind != argc) {
        fputs(rebuild_help, stderr);
        return EX_USAGE;
    }
    const pp_config *cfg;
    if ((rc = cl_config(ctx, "rebuild", &cfg)) != 0)
        return rc;
    if (cfg == NULL) {
        cl_err("rebuild", "cannot read the configuration %s (give --config FILE)",
               cl_config_file(ctx));
        return EX_CONFIG;
    }
    if (daemon_holds(cfg->state_dir)) {
        cl_err("rebuild",
               "parkpulsed is running on %s; stop it first (systemctl stop parkpulsed), "
               "rebuild, then start it again",
               cfg->state_dir);
        return EX_TEMPFAIL;
    }
    if (access(cfg->state_dir, F_OK) == 0 && access(cfg->state_dir, W_OK) != 0) {
        cl_err("rebuild", "cannot write %s: %s (run as the daemon's user, e.g. sudo -u parkpulse)",
               cfg->state_dir, strerror(errno));
        return EX_NOPERM;
    }
    char daemon[PATH_MAX];
    if (find_daemon(daemon, sizeof daemon) != 0) {
        cl_err("rebuild", "cannot find parkpulsed beside parkpulse, in PATH or in /usr/sbin");
        return EX_UNAVAILABLE;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        cl_err("rebuild", "fork: %s", strerror(errno));
        return EX_OSERR;
    }
    if (pid == 0) {
        char *args[] = { daemon, "-c", (char *)cl_config_file(ctx), "--rebuild", NULL };
        execv(daemon, args);
        fprintf(stderr, "parkpulse rebuild: cannot run %s: %s\n", daemon, strerror(errno));
        _exit(EX_UNAVAILABLE);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            cl_err("rebuild", "waitpid: %s", strerror(errno));
            return EX_OSERR;
        }
    }
    if (WIFSIGNALED(st)) {
        cl_err("rebuild", "%s was killed by signal %d", daemon, WTERMSIG(st));
        return EX_SOFTWARE;
    }
    rc = WEXITSTATUS(st);
    if (rc == 0) {
        printf("RRD files under %s/rrd rebuilt from the journal\n", cfg->state_dir);
        return fflush(stdout) == 0 ? 0 : EX_IOERR;
    }
    if (rc == EX_CANTCREAT)
        cl_err("rebuild", "%s is in use by a running parkpulsed or not writable; stop the "
               "daemon (systemctl stop parkpulsed) and run as its user", cfg->state_dir);
    else
        cl_err("rebuild", "%s --rebuild failed with exit status %d", daemon, rc);
    return rc;
}

/* ---- report ------------------------------------------------------------ */

static const char report_help[] =
    "usage: parkpulse report --period YYYY-MM [--format csv|json]\n"
    "                        [--encoding utf-8|gb18030]\n"
    "       parkpulse report --period YYYY-MM --xlsx FILE\n"
    "Writes the monthly report table (通报) of every park to standard output,\n"
    "or the 通报 workbook (.xlsx: title, groups, colours, print setup) to FILE.\n"
    "  -p, --period YYYY-MM    the month (required)\n"
    "  -f, --format csv|json   default csv\n"
    "  -x, --xlsx FILE         write the workbook to FILE (replaced whole)\n"
    "  -e, --encoding utf-8|gb18030\n"
    "                          gb18030 for spreadsheet programs that expect it\n"
    "                          (default utf-8)\n"
    "  -h, --help              this text\n";

/* GET the workbook of period and put it at file: written beside it, then
 * renamed over it, so that a reader never sees half a workbook. */
static int report_xlsx_to(cl_ctx *ctx, const char *period, const char *file)
{
    char path[128], tmp[4096];
    snprintf(path, sizeof path, "/api/v1/report?period=%s&format=xlsx", period);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", file) >= (int)sizeof tmp) {
        cl_err("report", "--xlsx '%s': name too long", file);
        return EX_USAGE;
    }
    cl_answer ans;
    int rc = cl_http(ctx, "report", "GET", path, NULL, NULL, 0, NULL, &ans);
    if (rc != 0)
        return rc;
    if (ans.status != 200) {
        rc = cl_http_failure("report", period, &ans);
        cl_answer_free(&ans);
        return rc;
    }
    FILE *f = fopen(tmp, "wb");
    if (f == NULL || fwrite(ans.body, 1, ans.len, f) != ans.len || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        cl_err("report", "cannot write %s: %s", tmp, strerror(errno));
        rc = EX_CANTCREAT;
    }
    if (f != NULL && fclose(f) != 0 && rc == 0) {
        cl_err("report", "cannot write %s: %s", tmp, strerror(errno));
        rc = EX_CANTCREAT;
    }
    if (rc == 0 && rename(tmp, file) != 0) {
        cl_err("report", "cannot rename %s to %s: %s", tmp, file, strerror(errno));
        rc = EX_CANTCREAT;
    }
    if (rc != 0)
        unlink(tmp);
    cl_answer_free(&ans);
    return rc;
}

int cl_cmd_report(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "period", required_argument, NULL, 'p' },
                                          { "format", required_argument, NULL, 'f' },
                                          { "encoding", required_argument, NULL, 'e' },
                                          { "xlsx", required_argument, NULL, 'x' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *period = NULL, *format = "csv", *encoding = NULL, *xlsx = NULL;
    int c, rc = 0, p;
    while ((c = next_opt(argc, argv, "p:f:e:x:h", opts, report_help, &rc)) != -1) {
        if (c == 0)
            return rc;
        if (c == 'p')
            period = optarg;
        else if (c == 'f')
            format = optarg;
        else if (c == 'e')
            encoding = optarg;
        else if (c == 'x')
            xlsx = optarg;
    }
    if (optind != argc || period == NULL || (xlsx && *xlsx == '\0')) {
        if (period == NULL)
            cl_err("report", "--period YYYY-MM is required");
        fputs(report_help, stderr);
        return EX_USAGE;
    }
    if (pp_period_parse_canonical(period, &p) != 0) {
        cl_err("report", "--period '%s': expected YYYY-MM", period);
        return EX_USAGE;
    }
    if (strcmp(format, "csv") != 0 && strcmp(format, "json") != 0) {
        cl_err("report", "--format '%s': expected csv or json", format);
        return EX_USAGE;
    }
    if (encoding && strcasecmp(encoding, "utf-8") != 0 && strcasecmp(encoding, "utf8") != 0 &&
        strcasecmp(encoding, "gb18030") != 0) {
        cl_err("report", "--encoding '%s': expected utf-8 or gb18030", encoding);
        return EX_USAGE;
    }
    if (xlsx)
        return report_xlsx_to(ctx, period, xlsx);
    bool gb = encoding && strcasecmp(encoding, "gb18030") == 0;
    char path[128];
    /* UTF-8 CSV carries a BOM for spreadsheets, not for a terminal */
    snprintf(path, sizeof path, "/api/v1/report?period=%s&format=%s%s%s", period, format,
             gb ? "&encoding=gb18030" : "", isatty(STDOUT_FILENO) ? "&bom=0" : "");
    cl_answer ans;
    if ((rc = cl_http(ctx, "report", "GET", path, NULL, NULL, 0, NULL, &ans)) != 0)
        return rc;
    if (ans.status != 200) {
        rc = cl_http_failure("report", period, &ans);
    } else if (fwrite(ans.body, 1, ans.len, stdout) != ans.len || fflush(stdout) != 0) {
        cl_err("report", "cannot write the report: %s", strerror(errno));
        rc = EX_IOERR;
    }
    cl_answer_free(&ans);
    return rc;
}

/* ---- token ------------------------------------------------------------- */

static const char token_help[] =
    "usage: parkpulse token --create [--force] [FILE]\n"
    "Creates the bearer token that writes need (POST /api/v1/observations):\n"
    "32 random bytes from getrandom(), written as 64 hex digits and a newline to\n"
    "FILE (default: http.token_file of the configuration, else /etc/parkpulse/token),\n"
    "mode 0640, group parkpulse when that group exists. An existing file is kept\n"
    "(exit status 73) unless --force replaces it. Prints the file's name.\n"
    "  --create     create the file (the only action)\n"
    "  -f, --force  replace an existing token\n"
    "  -h, --help   this text\n";

#define TOKEN_BYTES 32
#define TOKEN_DEFAULT_FILE "/etc/parkpulse/token"

/* Writes the whole buffer; returns 0 or -errno. */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

int cl_cmd_token(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "create", no_argument, NULL, 'C' },
                                          { "force", no_argument, NULL, 'f' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    bool create = false, force = false;
    int c, rc = 0;
    while ((c = next_opt(argc, argv, "fh", opts, token_help, &rc)) != -1) {
        if (c == 0)
            return rc;
        if (c == 'C')
            create = true;
        else if (c == 'f')
            force = true;
    }
    if (!create || optind < argc - 1) {
        fputs(token_help, stderr);
        return EX_USAGE;
    }
    const char *file = optind < argc ? argv[optind] : NULL;
    if (file == NULL) {
        const pp_config *cfg;
        if ((rc = cl_config(ctx, "token", &cfg)) != 0)
            return rc;
        if (cfg && cfg->http_token_file == NULL) {
            cl_err("token", "%s sets no http.token_file: give FILE", cl_config_file(ctx));
            return EX_CONFIG;
        }
        file = cfg ? cfg->http_token_file : TOKEN_DEFAULT_FILE;
    }

    unsigned char raw[TOKEN_BYTES];
    char hex[TOKEN_BYTES * 2 + 2];
    for (size_t got = 0; got < sizeof raw;) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cl_err("token", "getrandom: %s", strerror(errno));
            return EX_OSERR;
        }
        got += (size_t)n;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[TOKEN_BYTES * 2] = '\n';
    hex[TOKEN_BYTES * 2 + 1] = '\0';
    explicit_bzero(raw, sizeof raw);

    /* written beside the target and renamed over it: never a half token */
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", file, (long)getpid()) >= (int)sizeof tmp) {
        cl_err("token", "%s: name too long", file);
        return EX_USAGE;
    }
    if (!force && access(file, F_OK) == 0) {
        cl_err("token", "%s exists; keeping it (--force replaces it)", file);
        explicit_bzero(hex, sizeof hex);
        return EX_CANTCREAT;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int e = errno;
        cl_err("token", "cannot create %s: %s", tmp, strerror(e));
        explicit_bzero(hex, sizeof hex);
        return e == EACCES || e == EPERM ? EX_NOPERM : EX_CANTCREAT;
    }
    struct group *gr = getgrnam("parkpulse");
    int r = write_all(fd, hex, strlen(hex));
    explicit_bzero(hex, sizeof hex);
    if (r == 0 && gr && fchown(fd, (uid_t)-1, gr->gr_gid) != 0)
        r = -errno;
    if (r == 0 && fchmod(fd, 0640) != 0)
        r = -errno;
    if (r == 0 && fsync(fd) != 0)
        r = -errno;
    if (close(fd) != 0 && r == 0)
        r = -errno;
    /* without --force a file that appeared meanwhile is kept: link() fails on it */
    if (r == 0 && (force ? rename(tmp, file) : link(tmp, file)) != 0)
        r = -errno;
    int saved = r;
    if (saved != 0 || !force)
        unlink(tmp);
    if (saved == -EEXIST) {
        cl_err("token", "%s exists; keeping it (--force replaces it)", file);
        return EX_CANTCREAT;
    }
    if (saved != 0) {
        cl_err("token", "cannot write %s: %s", file, strerror(-saved));
        return saved == -EACCES || saved == -EPERM ? EX_NOPERM : EX_IOERR;
    }
    printf("%s\n", file);
    return fflush(stdout) == 0 ? 0 : EX_IOERR;
}

/* ---- main -------------------------------------------------------------- */

int main(int argc, char **argv)
{
    static const struct option opts[] = { { "url", required_argument, NULL, 'u' },
                                          { "config", required_argument, NULL, 'c' },
                                          { "token-file", required_argument, NULL, 't' },
                                          { "help", no_argument, NULL, 'h' },
                                          { "version", no_argument, NULL, 'V' },
                                          { NULL, 0, NULL, 0 } };
    cl_ctx ctx = { .prog = "parkpulse" };
    int c;

    setlocale(LC_ALL, "");
    /* '+': stop at the command, whose own options follow it */
    while ((c = getopt_long(argc, argv, "+u:c:t:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'u': ctx.url_opt = optarg; break;
        case 'c': ctx.config_opt = optarg; break;
        case 't': ctx.token_opt = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("parkpulse %s\n", PARKPULSE_VERSION); return 0;
        default: usage(stderr); return EX_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EX_USAGE;
    }
    const char *name = argv[optind];
    const cl_command *cmd = NULL;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0)
            cmd = &commands[i];
    if (cmd == NULL) {
        cl_err(NULL, "unknown command '%s' (see parkpulse --help)", name);
        return EX_USAGE;
    }
    int cargc = argc - optind;
    char **cargv = argv + optind;
    optind = 0; /* GNU getopt: start afresh on the command's arguments */
    int rc = cmd->fn(&ctx, cargc, cargv);
    cl_ctx_free(&ctx);
    return rc;
}
