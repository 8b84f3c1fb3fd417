/*
 * nt.h — parkpulse-notify, the delivery of alerts to people (README
 * "Notifications", parkpulse-notify(8)): the pieces its files share.
 *
 *   main.c    the bus subscriber, the gap filler (GET /api/v1/alerts?since=N),
 *             the state directory, the metrics file, start and stop
 *   route.c   one thread per route: its queue, its durable seq, the delivery
 *             with libcurl (HTTP POST or SMTP), retries with back-off
 *   format.c  what a route sends: the alert as on the bus, Alertmanager's
 *             webhook payload (version 4), DingTalk and WeCom robot markdown
 *             messages, a mail; and the route's filters
 *
 * The daemon never links any of this: libcurl stays out of parkpulsed.
 */
#ifndef PP_NOTIFY_NT_H
#define PP_NOTIFY_NT_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

#define NT_QUEUE_MAX 20000    /* alerts waiting in one route's queue; more are fetched again later */
#define NT_IDS_KEPT 256       /* delivered ids a route remembers (duplicates are dropped by id) */
#define NT_ID_MAX 300         /* bytes of an alert id */
#define NT_MAX_ANSWER (1 << 16) /* bytes of a receiver's answer that are read */

/* One alert waiting in a route's queue. */
typedef struct nt_item {
    struct nt_item *next;
    uint64_t seq;
    char id[NT_ID_MAX];
    char json[];             /* the alert as published, NUL-terminated */
} nt_item;

typedef struct nt_route {
    const conf_route *cfg;
    char *url;               /* url, or read from url_file; smtp_url for mail (secret) */
    char shown[160];         /* the URL as it may be logged: scheme://host[:port]/… */
    const char *base_url;    /* links in messages, without a trailing '/' */
    const char *api_url;     /* the daemon, for refills */
    const char *state_dir;
    int retry_max;           /* seconds */
    pthread_t thread;
    bool started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    nt_item *head, *tail;
    size_t queued;
    uint64_t queued_seq;     /* highest seq handed to this route (under lock) */
    bool overflow;           /* alerts past queued_seq were not queued: refill from the API */
    bool stop;
    /* the durable state (route thread only, besides the start) */
    uint64_t delivered;      /* every alert up to this seq is handled (delivered or not wanted) */
    char ids[NT_IDS_KEPT][NT_ID_MAX]; /* ring of delivered ids */
    size_t n_ids, ids_pos;
    /* counters for the metrics file */
    _Atomic uint64_t n_delivered, n_failed, n_skipped, n_attempts;
    _Atomic uint64_t shown_delivered; /* delivered seq, for the metrics file */
    atomic_bool failing;
} nt_route;

/* ---- main.c ---- */

/* GET <api_url>/api/v1/alerts?since=N (or without since when since is
 * UINT64_MAX: the snapshot); calls fn for every alert with its seq, in seq
 * order, and sets *seq to the answer's "seq" and *complete. Returns 0, or -1
 * (logged at most once a minute per caller by the caller). */
int nt_fetch(const char *api_url, uint64_t since, uint64_t *seq, bool *complete,
             void (*fn)(void *ud, uint64_t seq, const char *id, const char *json), void *ud,
             char *err, size_t errlen);

/* ---- route.c ---- */

/* Reads the route's secret URL (url_file, smtp_url_file) and its state file.
 * Returns 0, or -1 after a message on stderr. */
int nt_route_init(nt_route *r, const conf_route *cfg, const char *state_dir,
                  const char *base_url, const char *api_url, int retry_max);
/* true when the route has a state file of its own (it is not new). */
bool nt_route_has_state(const nt_route *r);
/* Sets a new route's starting point and writes its state file. */
int nt_route_start_at(nt_route *r, uint64_t seq);
int nt_route_start(nt_route *r);
/* Queues an alert (copies json) unless seq ≤ what the route was handed. */
void nt_route_push(nt_route *r, uint64_t seq, const char *id, const char *json);
void nt_route_stop(nt_route *r);
void nt_route_free(nt_route *r);

/* "scheme://host[:port]/…": what of a URL may be logged (no user, password,
 * path or query: robots carry their token there). */
void nt_mask_url(const char *url, char *out, size_t outlen);

/* Start-up refusals, for the person starting parkpulse-notify (the log is not
 * of use yet): "parkpulse-notify: <text>" on stderr. nt_say_errno appends
 * ": <strerror(e)>" (e: errno, or -errno), as log_errno does for a log line. */
void nt_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void nt_say_errno(int e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- format.c ---- */

/* true when the route wants the alert: not silenced, its park and indicator
 * in the route's lists, its status (or, for a recovery, the status it
 * recovers from) at least min_status. */
bool nt_wanted(const conf_route *rt, json_t *alert);

/* The body a web hook route POSTs for alert (raw: as published), malloc'd. */
char *nt_format(const nt_route *r, json_t *alert, const char *raw);

/* A whole mail (headers and body, CRLF line ends), malloc'd. */
char *nt_mail(const nt_route *r, json_t *alert, const char *from);

/* The status in Chinese (预警, 严重滞后, 恢复正常, …). */
const char *nt_status_zh(const char *status);

#endif
