/*
 * client.h — what the commands of `parkpulse`, the command-line client
 * (parkpulse(1)), share: the global options, the daemon's URL and configuration,
 * one HTTP request with libcurl, JSON answers read with jansson, the
 * sysexits-style exit codes and the display width of UTF-8 text.
 *
 * A command is a function cl_cmd_fn in tools/<something>.c, declared here and
 * listed in the command table of tools/parkpulse.c (one line). It parses its
 * own arguments (argv[0] is the command's name, as for getopt), answers
 * --help on stdout with exit 0, prints its problems on stderr prefixed with
 * "parkpulse <command>: " and returns an exit status.
 */
#ifndef PP_CLIENT_H
#define PP_CLIENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sysexits.h>

#include "config.h"

#ifndef PARKPULSE_VERSION
#define PARKPULSE_VERSION "0.1"
#endif

#define CL_DEFAULT_CONFIG "/etc/parkpulse/parkpulse.conf"
#define CL_DEFAULT_URL "http://127.0.0.1:8080"
#define CL_CONNECT_TIMEOUT 3L   /* seconds to reach the daemon */
#define CL_TOTAL_TIMEOUT 30L    /* seconds for a whole request */
#define CL_MAX_ANSWER (64L << 20) /* largest answer body read, bytes */

/* The global options and what was derived from them. */
typedef struct cl_ctx {
    const char *prog;        /* "parkpulse" */
    const char *url_opt;     /* --url, or NULL */
    const char *config_opt;  /* --config, or NULL */
    const char *token_opt;   /* --token-file, or NULL */
    pp_config *cfg;          /* loaded by cl_config(), freed by cl_ctx_free() */
    bool cfg_tried;          /* cl_config() ran */
    bool cfg_missing;        /* no --config and the default file is not readable */
    char *url;               /* base URL without a trailing '/', from cl_base_url() */
} cl_ctx;

typedef int (*cl_cmd_fn)(cl_ctx *ctx, int argc, char **argv);

/* One line of the command table in parkpulse.c. */
typedef struct cl_command {
    const char *name;    /* "status" */
    cl_cmd_fn fn;
    const char *args;    /* synopsis after the name: "[--park P]" */
    const char *summary; /* one line for `parkpulse --help` */
} cl_command;

/* The commands (tools/parkpulse.c unless noted). */
int cl_cmd_status(cl_ctx *ctx, int argc, char **argv);
int cl_cmd_push(cl_ctx *ctx, int argc, char **argv);
int cl_cmd_retract(cl_ctx *ctx, int argc, char **argv);
int cl_cmd_check_config(cl_ctx *ctx, int argc, char **argv);
int cl_cmd_rebuild(cl_ctx *ctx, int argc, char **argv);
int cl_cmd_report(cl_ctx *ctx, int argc, char **argv);
int cl_cmd_token(cl_ctx *ctx, int argc, char **argv);
int cl_cmd_subscribe(cl_ctx *ctx, int argc, char **argv); /* tools/subscribe.c */
int cl_cmd_backup(cl_ctx *ctx, int argc, char **argv);    /* tools/backup.c */
int cl_cmd_silence(cl_ctx *ctx, int argc, char **argv);   /* tools/silence.c */

void cl_ctx_free(cl_ctx *ctx);

/* The configuration file in use: --config, else $PARKPULSE_CONF when set and
 * not empty, else the default file. */
const char *cl_config_file(const cl_ctx *ctx);

/* Loads the configuration once (--config, else the default file when it is
 * readable). Returns 0 with *cfg set (owned by ctx), 0 with *cfg NULL when
 * there is no --config and the default file is not readable, or EX_CONFIG
 * after printing the file:line errors. */
int cl_config(cl_ctx *ctx, const char *cmd, const pp_config **cfg);

/* The daemon's base URL: --url, else http:// + the configuration's
 * http.listen (a wildcard address becomes loopback), else CL_DEFAULT_URL.
 * Returns 0 with *url (owned by ctx) or an exit status after a message. */
int cl_base_url(cl_ctx *ctx, const char *cmd, const char **url);

/* Reads the bearer token: --token-file, else the configuration's
 * http.token_file. Returns 0 with a NUL-terminated token in tok, or an exit
 * status (EX_CONFIG, EX_NOINPUT, EX_NOPERM, EX_DATAERR) after a message. */
int cl_read_token(cl_ctx *ctx, const char *cmd, char *tok, size_t toklen);

/* An HTTP answer: status and the whole body, NUL-terminated (owned; free
 * with cl_answer_free). */
typedef struct cl_answer {
    long status;
    char *body;
    size_t len;
    char content_type[128];
} cl_answer;

/* One request to <base URL><path> with the timeouts above. body may be NULL
 * (GET); token, when not NULL, is sent as "Authorization: Bearer". Returns 0
 * when an answer came (of any HTTP status), else prints a message ("parkpulsed
 * is not running at URL: connection refused", a timeout, …) and returns
 * EX_UNAVAILABLE (or EX_SOFTWARE/EX_DATAERR for local problems). */
int cl_http(cl_ctx *ctx, const char *cmd, const char *method, const char *path,
            const char *content_type, const char *body, size_t body_len, const char *token,
            cl_answer *ans);

void cl_answer_free(cl_answer *ans);

/* For an answer that is not 2xx: prints the daemon's {"error":…} (and each
 * line of an "errors" array) and returns the exit status that fits the HTTP
 * status: 400/404/413 EX_DATAERR, 401/403 EX_NOPERM, 503 EX_TEMPFAIL, other
 * 5xx EX_UNAVAILABLE, anything else EX_PROTOCOL. */
int cl_http_failure(const char *cmd, const char *what, const cl_answer *ans);

/* Parses a JSON answer body. Returns a new reference (json_decref it) or NULL
 * after printing why (the caller then returns EX_PROTOCOL). */
json_t *cl_json(const char *cmd, const cl_answer *ans);

/* Terminal columns the UTF-8 string s takes: wcwidth() per code point, with
 * East Asian wide characters counted as 2 also in a non-UTF-8 locale;
 * control bytes (printed as '?') and bytes that are not UTF-8 count 1 each. */
size_t cl_display_width(const char *s);

/* Writes s to f with control characters replaced by '?', padded with spaces
 * to width display columns (left-aligned, or right-aligned when right). */
void cl_put_padded(FILE *f, const char *s, size_t width, bool right);

/* Prints "prog cmd: message" on stderr. */
void cl_err(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
