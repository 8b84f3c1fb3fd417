/*
 * config.h — parkpulse.conf (parkpulse.conf(5)), read with libconfuse into plain structs.
 *
 * Only config.c includes confuse.h. conf_load() validates strictly — unknown
 * keys, bad ids, bad kinds, a pace profile that is not 12 non-decreasing
 * percentages ending at 100, warn > crit, duplicate ids — and every message
 * names the file and line. A loaded pp_config is immutable; a reload builds a
 * new one and swaps it in only when it is valid.
 */
#ifndef PP_CONFIG_H
#define PP_CONFIG_H

#include "model.h"

#define CONF_MAX_OPTIONS 32

/* Where `make install` puts collectors and dashboards (set from PREFIX by the Makefile). */
#ifndef PP_PLUGIN_DIR
#define PP_PLUGIN_DIR "/usr/lib/parkpulse/collectors"
#endif
#ifndef PP_DASHBOARD_DIR
#define PP_DASHBOARD_DIR "/usr/share/parkpulse/dashboards"
#endif


typedef struct conf_option {     /* a collector's own key = value settings */
    char *key;
    char *value;
} conf_option;

typedef struct conf_collector {
    char name[PP_ID_MAX + 1];    /* the section title: collector "name" { … } */
    char *plugin;                /* shared object name, e.g. "spool" → <plugin_dir>/spool.so */
    char *user;                  /* run as this user when the daemon is root, or NULL */
    int interval;                /* seconds (exec), default 3600 */
    int timeout;                 /* seconds (exec), default 60 */
    conf_option *options;        /* every other key of the section: path, command, rescan, … */
    size_t n_options;
    int line;                    /* where the section starts */
} conf_collector;

/* One route of the notify section: where parkpulse-notify delivers alerts
 * (README "Notifications", parkpulse.conf(5)). Either a web hook (url or
 * url_file, with format) or mail (smtp_url or smtp_url_file, with to). url
 * and smtp_url may carry secrets (a robot's token, a mail password): they are
 * never written into a message of the loader. */
typedef enum { CONF_FMT_JSON, CONF_FMT_ALERTMANAGER, CONF_FMT_DINGTALK, CONF_FMT_WECOM,
               CONF_FMT_MAIL } conf_format;

typedef struct conf_route {
    char name[PP_ID_MAX + 1];    /* the section title: route "name" { … } */
    char *url, *url_file;        /* a web hook: one of them */
    char *smtp_url, *smtp_url_file; /* mail: one of them, with to */
    conf_format format;          /* json (default), alertmanager, dingtalk, wecom; mail for smtp */
    char **parks, **indicators;  /* filters (NULL: every one) */
    size_t n_parks, n_indicators;
    char **to;                   /* mail recipients */
    size_t n_to;
    char *from;                  /* mail sender, or NULL (parkpulse@<host>) */
    char *min_status;            /* warning, critical, stale; NULL: every alert */
    int timeout;                 /* seconds per delivery attempt, default 10 */
    int line;                    /* where the section starts */
} conf_route;

typedef struct conf_notify {
    char *state_dir;             /* the notifier's own, default /var/lib/parkpulse-notify */
    char *base_url;              /* links in messages; NULL: http://<http.listen> */
    char *api_url;               /* where /api/v1/alerts is read; NULL: http://<http.listen> */
    int retry_max;               /* seconds: the longest back-off between two attempts, default 300 */
    conf_route *routes;
    size_t n_routes;
} conf_notify;

/* A peer group (group "ID" { label = "…" }): parks are ranked within it. Every
 * park is also in the implicit group "all", which has no conf_group (NULL). */
typedef struct conf_group {
    char id[PP_ID_MAX + 1];
    char *label;                 /* e.g. 省内国家级经开区 */
    size_t *parks;               /* indexes into catalog.parks, in declaration order */
    size_t n_parks;
    int line;                    /* where the section starts */
} conf_group;

typedef struct pp_config {
    char *file;                  /* the main file, as given */
    char *timezone;              /* default "Asia/Shanghai" */
    char *state_dir;             /* default "/var/lib/parkpulse" */
    char *plugin_dir;            /* default "/usr/lib/parkpulse/collectors" */
    char *dashboard_dir;         /* default "/usr/share/parkpulse/dashboards" */
    bool dashboard_dir_set;      /* dashboard_dir was written in the file (must exist) */
    int due_day;                 /* 1..28, default 20 */

    char *http_listen;           /* "127.0.0.1:8080" */
    char *http_token_file;       /* NULL: writes refused with 403 */
    int http_threads;            /* default 4 */
    int http_max_connections;    /* default 256 */
    int http_max_per_ip;         /* default 32 */
    int http_timeout;            /* seconds, default 30 */
    long http_max_body;          /* bytes, default 8 MiB */
    int http_header_timeout;     /* seconds to send a request's headers, default 5 */
    int http_max_streams;        /* event streams in total, default 512 */
    int http_max_streams_per_ip; /* event streams from one address, default 16 */
    long http_max_buffered;      /* request bodies held at once, bytes, default 64 MiB */

    char *bus_publish;           /* "tcp://127.0.0.1:5556" */
    int bus_heartbeat;           /* seconds, default 5 */
    int bus_hwm;                 /* messages per subscriber, default 1000 */
    int bus_max_connections;     /* bus TCP connections at once, default 256 */
    char *bus_curve_secret_key;  /* NULL: no CURVE */
    char *bus_curve_clients;     /* directory of client public keys, or NULL */

    conf_collector *collectors;
    size_t n_collectors;
    conf_notify notify;          /* read by parkpulse-notify only; the daemon checks it */
    /* lines of the main file where these were set (0: default, or set in an
     * included file), for the messages of preflight.c */
    int line_state_dir, line_plugin_dir, line_http_listen, line_bus_publish;
    pp_catalog catalog;          /* parks and indicators */
    conf_group *groups;          /* peer groups, in declaration order (not "all") */
    size_t n_groups;
} pp_config;

/* Reads and validates file. Returns a new config (free with conf_free) or NULL;
 * on failure each problem is written as "file:line: message" lines into err
 * (NUL-terminated, truncated to errlen). */
pp_config *conf_load(const char *file, char *err, size_t errlen);

void conf_free(pp_config *cfg);

/* The settings only a restart changes — state_dir, timezone, http.listen,
 * bus.publish: the state directory is locked, TZ is set and the sockets are
 * bound at start. Their one table is in config.c. */

/* Calls changed(name, ud) for each restart-only setting whose value differs
 * between a and b; returns how many differ. changed may be NULL. */
size_t conf_restart_only_diff(const pp_config *a, const pp_config *b,
                              void (*changed)(const char *name, void *ud), void *ud);

/* Swaps the values of the restart-only settings of a and b (a reload's new
 * configuration takes the running ones; swapping again undoes it). */
void conf_restart_only_swap(pp_config *a, pp_config *b);

/* The peer group id, or NULL (also for "all": every park). */
const conf_group *conf_group_find(const pp_config *c, const char *id);

/* true when park (an index into catalog.parks) is in g; g NULL is "all". */
bool conf_group_has(const conf_group *g, size_t park);

/* A collector's option by key, or NULL. */
const char *conf_collector_option(const conf_collector *c, const char *key);

#endif
