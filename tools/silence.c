/*
 * silence.c — `parkpulse silence`: silences over the daemon's HTTP API
 * (/api/v1/silences; parkpulse(1), README "Notifications").
 *
 *   parkpulse silence add PARK[/INDICATOR] --until YYYY-MM-DD --reason TEXT [--by NAME]
 *   parkpulse silence list [--json]
 *   parkpulse silence rm ID
 *
 * add and rm need the bearer token (--token-file or http.token_file); --by
 * defaults to the login name. An alert of a silenced park or indicator is
 * still published (with "silenced":true) but parkpulse-notify does not
 * deliver it; a silence ends with its --until day, at most 90 days ahead.
 */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client.h"
#include "model.h"

#define SIL_TOKEN_MAX 512

static const char silence_help[] =
    "usage: parkpulse silence add PARK[/INDICATOR] --until YYYY-MM-DD --reason TEXT [--by NAME]\n"
    "       parkpulse silence list [--json]\n"
    "       parkpulse silence rm ID\n"
    "  add     silence the alerts of a park (or of one of its indicators) until the end\n"
    "          of a day, at most 90 days ahead: they are published with \"silenced\":true\n"
    "          and parkpulse-notify does not deliver them\n"
    "  list    the active silences\n"
    "  rm      end a silence now\n"
    "  --token-file F   the bearer token (default: http.token_file) for add and rm\n";

static const char *jstr(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void print_one(const json_t *s)
{
    const char *ind = jstr(s, "indicator");
    printf("%-4s %s%s%s  至 %s  %s  (%s)\n", jstr(s, "id") ? jstr(s, "id") : "?",
           jstr(s, "park") ? jstr(s, "park") : "?", ind ? "/" : "", ind ? ind : "",
           jstr(s, "until") ? jstr(s, "until") : "?", jstr(s, "reason") ? jstr(s, "reason") : "",
           jstr(s, "by") ? jstr(s, "by") : "");
}

static int cmd_add(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "until", required_argument, NULL, 'u' },
                                          { "reason", required_argument, NULL, 'r' },
                                          { "by", required_argument, NULL, 'b' },
                                          { "token-file", required_argument, NULL, 't' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    const char *until = NULL, *reason = NULL, *by = NULL;
    int c;
    optind = 0; /* glibc: a full restart (the main parser stops at the command) */
    while ((c = getopt_long(argc, argv, "u:r:b:t:h", opts, NULL)) != -1) {
        switch (c) {
        case 'u': until = optarg; break;
        case 'r': reason = optarg; break;
        case 'b': by = optarg; break;
        case 't': ctx->token_opt = optarg; break;
        case 'h': fputs(silence_help, stdout); return 0;
        default: fputs(silence_help, stderr); return EX_USAGE;
        }
    }
    if (optind != argc - 1 || until == NULL || reason == NULL) {
        cl_err("silence", "add needs PARK[/INDICATOR], --until YYYY-MM-DD and --reason TEXT");
        return EX_USAGE;
    }
    char park[PP_ID_MAX + 1] = "", ind[PP_ID_MAX + 1] = "";
    const char *what = argv[optind], *slash = strchr(what, '/');
    size_t pl = slash ? (size_t)(slash - what) : strlen(what);
    if (pl == 0 || pl > PP_ID_MAX || (slash && strlen(slash + 1) > PP_ID_MAX)) {
        cl_err("silence", "'%s' is not PARK or PARK/INDICATOR", what);
        return EX_USAGE;
    }
    memcpy(park, what, pl);
    if (slash)
        snprintf(ind, sizeof ind, "%s", slash + 1);
    if (!pp_id_valid(park) || (slash && !pp_id_valid(ind))) {
        cl_err("silence", "'%s' is not PARK or PARK/INDICATOR", what);
        return EX_USAGE;
    }
    if (by == NULL) {
        struct passwd *pw = getpwuid(getuid());
        by = getenv("SUDO_USER") ? getenv("SUDO_USER") : pw ? pw->pw_name : "parkpulse";
    }
    json_t *body = json_pack("{s:s, s:s?, s:s, s:s, s:s}", "park", park, "indicator",
                             slash ? ind : NULL, "until", until, "reason", reason, "by", by);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (text == NULL) {
        cl_err("silence", "the reason or the name is not UTF-8 text");
        return EX_DATAERR;
    }
    char tok[SIL_TOKEN_MAX];
    int rc = cl_read_token(ctx, "silence", tok, sizeof tok);
    cl_answer ans = { 0 };
    if (rc == 0)
        rc = cl_http(ctx, "silence", "POST", "/api/v1/silences", "application/json", text,
                     strlen(text), tok, &ans);
    explicit_bzero(tok, sizeof tok);
    free(text);
    if (rc != 0)
        return rc;
    if (ans.status == 201) {
        json_t *j = cl_json("silence", &ans);
        if (j == NULL) {
            rc = EX_PROTOCOL;
        } else {
            printf("已静默 silenced: ");
            print_one(j);
            json_decref(j);
        }
    } else {
        rc = cl_http_failure("silence", "add", &ans);
    }
    cl_answer_free(&ans);
    return rc;
}

static int cmd_list(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "json", no_argument, NULL, 'j' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    bool as_json = false;
    int c;
    optind = 0; /* glibc: a full restart (the main parser stops at the command) */
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': as_json = true; break;
        case 'h': fputs(silence_help, stdout); return 0;
        default: fputs(silence_help, stderr); return EX_USAGE;
        }
    }
    if (optind != argc) {
        fputs(silence_help, stderr);
        return EX_USAGE;
    }
    cl_answer ans = { 0 };
    int rc = cl_http(ctx, "silence", "GET", "/api/v1/silences", NULL, NULL, 0, NULL, &ans);
    if (rc != 0)
        return rc;
    if (ans.status != 200) {
        rc = cl_http_failure("silence", "list", &ans);
        cl_answer_free(&ans);
        return rc;
    }
    json_t *j = cl_json("silence", &ans);
    json_t *list = json_object_get(j, "silences");
    if (!json_is_array(list)) {
        cl_err("silence", "the daemon's answer has no 'silences' list");
        rc = EX_PROTOCOL;
    } else if (as_json) {
        printf("%s\n", ans.body);
    } else {
        size_t i;
        json_t *s;
        if (json_array_size(list) == 0)
            printf("没有生效的静默 (no active silence)\n");
        json_array_foreach(list, i, s)
            print_one(s);
    }
    json_decref(j);
    cl_answer_free(&ans);
    if (rc == 0 && fflush(stdout) != 0)
        rc = EX_IOERR;
    return rc;
}

static int cmd_rm(cl_ctx *ctx, int argc, char **argv)
{
    static const struct option opts[] = { { "token-file", required_argument, NULL, 't' },
                                          { "help", no_argument, NULL, 'h' },
                                          { NULL, 0, NULL, 0 } };
    int c;
    optind = 0; /* glibc: a full restart (the main parser stops at the command) */
    while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
        switch (c) {
        case 't': ctx->token_opt = optarg; break;
        case 'h': fputs(silence_help, stdout); return 0;
        default: fputs(silence_help, stderr); return EX_USAGE;
        }
    }
    const char *id = optind == argc - 1 ? argv[optind] : NULL;
    if (id == NULL || !*id || strspn(id, "0123456789") != strlen(id) || strlen(id) > 19) {
        cl_err("silence", "rm needs the number of a silence (see `parkpulse silence list`)");
        return EX_USAGE;
    }
    char path[64], tok[SIL_TOKEN_MAX];
    snprintf(path, sizeof path, "/api/v1/silences/%s", id);
    int rc = cl_read_token(ctx, "silence", tok, sizeof tok);
    cl_answer ans = { 0 };
    if (rc == 0)
        rc = cl_http(ctx, "silence", "DELETE", path, NULL, NULL, 0, tok, &ans);
    explicit_bzero(tok, sizeof tok);
    if (rc != 0)
        return rc;
    if (ans.status == 200) {
        json_t *j = cl_json("silence", &ans);
        if (j == NULL) {
            rc = EX_PROTOCOL;
        } else {
            printf("已解除 removed: ");
            print_one(j);
            json_decref(j);
        }
    } else {
        rc = cl_http_failure("silence", id, &ans);
    }
    cl_answer_free(&ans);
    return rc;
}

int cl_cmd_silence(cl_ctx *ctx, int argc, char **argv)
{
    if (argc < 2) {
        fputs(silence_help, stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(silence_help, stdout);
        return 0;
    }
    if (strcmp(argv[1], "add") == 0)
        return cmd_add(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "list") == 0 || strcmp(argv[1], "ls") == 0)
        return cmd_list(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "rm") == 0)
        return cmd_rm(ctx, argc - 1, argv + 1);
    cl_err("silence", "unknown subcommand '%s': add, list or rm", argv[1]);
    return EX_USAGE;
}
