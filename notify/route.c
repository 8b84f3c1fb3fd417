/*
 * route.c — one route of parkpulse-notify: its queue, its thread, its state
 * file and the delivery itself (see nt.h).
 *
 * Each route has a thread of its own and a curl handle of its own, so a
 * receiver that hangs or fails holds up nothing but its own route: every
 * attempt ends at the route's timeout, a failed one is tried again after 1,
 * 2, 4, … seconds, at most notify.retry_max apart, until it succeeds (at
 * least once: an alert is never given up). The first failure is logged, then
 * at most one line a minute while the route keeps failing, and one when it
 * delivers again; the URL appears in a log line only as scheme://host:port/…
 * (robots carry their token in the path or query, mail URLs a password).
 *
 * The state file <state_dir>/route-<name>.state holds the last seq handled
 * (delivered, or not wanted by the route's filters or silenced) and the ids of
 * the last NT_IDS_KEPT alerts delivered:
 *
 *   #parkpulse-notify-route 1
 *   seq 42
 *   id xiangtan-etdz/fiscal_revenue/2021-08/warning
 *
 * It is written to a temporary file, fsync'd and renamed over the old one
 * (and the directory fsync'd) after each delivery, so after a kill -9 an alert
 * is at worst delivered once more (the receiver saw it, the rename did not
 * happen), never lost. An alert whose id is among the remembered ones is not
 * delivered again.
 *
 * A route's queue holds at most NT_QUEUE_MAX alerts; past that the route
 * notes the overflow and, once its queue is empty, reads what it missed from
 * the daemon (GET /api/v1/alerts?since=N) itself.
 */
#include "nt.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define NT_LOG_EVERY_S 60 /* a failing route logs at most once a minute */

void nt_mask_url(const char *url, char *out, size_t outlen)
{
    const char *p = strstr(url, "://");
    if (p == NULL) {
        snprintf(out, outlen, "(not a URL)");
        return;
    }
    const char *host = p + 3;
    const char *end = host + strcspn(host, "/?#");
    const char *at = memchr(host, '@', (size_t)(end - host));
    if (at)
        host = at + 1; /* user and password are left out */
    snprintf(out, outlen, "%.*s%.*s%s", (int)(p + 3 - url), url, (int)(end - host), host,
             *end ? "/…" : "");
}

/* Reads a secret URL from file: one line, the file not readable by others. */
static char *read_secret(const char *route, const char *key, const char *file)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        nt_say_errno(errno, "route \"%s\": %s %s", route, key, file);
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 0007)) {
        nt_say("route \"%s\": %s %s: %s", route, key, file,
               S_ISREG(st.st_mode) ? "others may read or write it (it holds a secret): "
                                     "chmod o-rwx it" : "not a regular file");
        close(fd);
        return NULL;
    }
    char buf[4097];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0 || n == (ssize_t)sizeof buf - 1) {
        if (n < 0)
            nt_say_errno(errno, "route \"%s\": %s %s", route, key, file);
        else
            nt_say("route \"%s\": %s %s: longer than 4096 bytes", route, key, file);
        return NULL;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                     buf[n - 1] == '\t'))
        buf[--n] = '\0';
    const char *const *schemes = strcmp(key, "url_file") == 0
                                     ? (const char *const[]){ "http://", "https://", NULL }
                                     : (const char *const[]){ "smtp://", "smtps://", NULL };
    bool ok = false;
    for (size_t i = 0; schemes[i]; i++)
        ok |= strncmp(buf, schemes[i], strlen(schemes[i])) == 0;
    for (const char *p = buf; ok && *p; p++)
        ok = (unsigned char)*p > ' ' && *p != 0x7f;
    if (!ok) {
        nt_say("route \"%s\": %s %s does not hold one %s URL", route, key, file, schemes[0]);
        explicit_bzero(buf, sizeof buf);
        return NULL;
    }
    char *s = strdup(buf);
    explicit_bzero(buf, sizeof buf);
    return s;
}

static void state_path(const nt_route *r, char *buf, size_t len, const char *suffix)
{
    snprintf(buf, len, "%s/route-%s.state%s", r->state_dir, r->cfg->name, suffix);
}

static void ids_add(nt_route *r, const char *id)
{
    size_t n = strnlen(id, NT_ID_MAX - 1);
    memcpy(r->ids[r->ids_pos], id, n);
    r->ids[r->ids_pos][n] = '\0';
    r->ids_pos = (r->ids_pos + 1) % NT_IDS_KEPT;
    if (r->n_ids < NT_IDS_KEPT)
        r->n_ids++;
}

static bool ids_seen(const nt_route *r, const char *id)
{
    for (size_t i = 0; i < r->n_ids; i++)
        if (strcmp(r->ids[i], id) == 0)
            return true;
    return false;
}

/* Reads the state file; 1 when there is none, 0 when read, -1 when damaged. */
static int state_read(nt_route *r)
{
    char path[4200], line[NT_ID_MAX + 16];
    state_path(r, path, sizeof path, "");
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? 1 : -1;
    int rc = -1;
    if (fgets(line, sizeof line, f) && strcmp(line, "#parkpulse-notify-route 1\n") == 0) {
        rc = 0;
        bool have_seq = false;
        while (fgets(line, sizeof line, f)) {
            size_t n = strlen(line);
            if (n == 0 || line[n - 1] != '\n') {
                rc = -1;
                break;
            }
            line[n - 1] = '\0';
            if (strncmp(line, "seq ", 4) == 0) {
                char *end;
                errno = 0;
                unsigned long long v = strtoull(line + 4, &end, 10);
                if (errno || *end || end == line + 4) {
                    rc = -1;
                    break;
                }
                r->delivered = v;
                have_seq = true;
            } else if (strncmp(line, "id ", 3) == 0) {
                ids_add(r, line + 3);
            }
        }
        if (!have_seq)
            rc = -1;
    }
    fclose(f);
    if (rc < 0)
        nt_say("route \"%s\": %s is damaged: move it aside to start this route afresh",
               r->cfg->name, path);
    return rc;
}

/* Writes the state file durably (temporary file, fsync, rename, directory fsync). */
static int state_write(nt_route *r)
{
    char path[4200], tmp[4200];
    state_path(r, path, sizeof path, "");
    state_path(r, tmp, sizeof tmp, ".tmp");
    FILE *f = fopen(tmp, "we");
    if (f == NULL) {
        int e = errno;
        log_err_rc("notify", e, "route %s: cannot write %s", r->cfg->name, tmp);
        return -e;
    }
    fprintf(f, "#parkpulse-notify-route 1\nseq %llu\n", (unsigned long long)r->delivered);
    for (size_t i = 0; i < r->n_ids; i++) /* oldest first */
        fprintf(f, "id %s\n", r->ids[(r->ids_pos + NT_IDS_KEPT - r->n_ids + i) % NT_IDS_KEPT]);
    int rc = 0;
    if (fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = -errno;
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0) {
        log_err_rc("notify", rc, "route %s: cannot write %s", r->cfg->name, path);
        unlink(tmp);
        return rc;
    }
    int dfd = open(r->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    atomic_store(&r->shown_delivered, r->delivered);
    return 0;
}

int nt_route_init(nt_route *r, const conf_route *cfg, const char *state_dir, const char *base_url,
                  const char *api_url, int retry_max)
{
    memset(r, 0, sizeof *r);
    r->cfg = cfg;
    r->state_dir = state_dir;
    r->base_url = base_url;
    r->api_url = api_url;
    r->retry_max = retry_max;
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (cfg->url)
        r->url = strdup(cfg->url);
    else if (cfg->smtp_url)
        r->url = strdup(cfg->smtp_url);
    else if (cfg->url_file)
        r->url = read_secret(cfg->name, "url_file", cfg->url_file);
    else if (cfg->smtp_url_file)
        r->url = read_secret(cfg->name, "smtp_url_file", cfg->smtp_url_file);
    if (r->url == NULL)
        return -1;
    nt_mask_url(r->url, r->shown, sizeof r->shown);
    int rc = state_read(r);
    if (rc < 0)
        return -1;
    r->queued_seq = r->delivered;
    atomic_store(&r->shown_delivered, r->delivered);
    return 0;
}

bool nt_route_has_state(const nt_route *r)
{
    char path[4200];
    state_path(r, path, sizeof path, "");
    return access(path, F_OK) == 0;
}

int nt_route_start_at(nt_route *r, uint64_t seq)
{
    r->delivered = r->queued_seq = seq;
    return state_write(r);
}

/* Under r->lock: appends an item. */
static void queue_put(nt_route *r, uint64_t seq, const char *id, const char *json)
{
    size_t n = strlen(json);
    nt_item *it = malloc(sizeof *it + n + 1);
    if (it == NULL) {
        r->overflow = true; /* fetched again once the queue is empty */
        return;
    }
    it->next = NULL;
    it->seq = seq;
    snprintf(it->id, sizeof it->id, "%s", id);
    memcpy(it->json, json, n + 1);
    if (r->tail)
        r->tail->next = it;
    else
        r->head = it;
    r->tail = it;
    r->queued++;
    r->queued_seq = seq;
}

void nt_route_push(nt_route *r, uint64_t seq, const char *id, const char *json)
{
    pthread_mutex_lock(&r->lock);
    if (seq > r->queued_seq && !r->overflow) {
        if (r->queued >= NT_QUEUE_MAX) {
            r->overflow = true;
            log_warn("notify", "route %s: %zu alerts wait already; the rest is read from the "
                     "daemon later", r->cfg->name, r->queued);
        } else {
            queue_put(r, seq, id, json);
            pthread_cond_signal(&r->cond);
        }
    }
    pthread_mutex_unlock(&r->lock);
}

static void refill_one(void *ud, uint64_t seq, const char *id, const char *json)
{
    nt_route *r = ud;
    pthread_mutex_lock(&r->lock);
    if (seq > r->queued_seq && r->queued < NT_QUEUE_MAX)
        queue_put(r, seq, id, json);
    pthread_mutex_unlock(&r->lock);
}

/* The route's queue overflowed and is empty now: reads what it missed. */
static void refill(nt_route *r)
{
    uint64_t seq = 0;
    bool complete = true;
    char err[256];
    if (nt_fetch(r->api_url, r->delivered, &seq, &complete, refill_one, r, err, sizeof err) != 0) {
        log_warn("notify", "route %s: cannot read the alerts it missed: %s", r->cfg->name, err);
        return;
    }
    pthread_mutex_lock(&r->lock);
    if (r->queued < NT_QUEUE_MAX && r->queued_seq >= seq)
        r->overflow = false; /* caught up with the daemon: the bus feeds it again */
    pthread_mutex_unlock(&r->lock);
}

typedef struct answer {
    char buf[NT_MAX_ANSWER + 1];
    size_t len;
} answer;

static size_t on_answer(char *data, size_t size, size_t nmemb, void *ud)
{
    answer *a = ud;
    size_t n = size * nmemb, room = NT_MAX_ANSWER - a->len;
    memcpy(a->buf + a->len, data, n < room ? n : room);
    a->len += n < room ? n : room;
    a->buf[a->len] = '\0';
    return n;
}

typedef struct upload {
    const char *data;
    size_t len, pos;
} upload;

static size_t on_read(char *buf, size_t size, size_t nmemb, void *ud)
{
    upload *u = ud;
    size_t n = size * nmemb;
    if (n > u->len - u->pos)
        n = u->len - u->pos;
    memcpy(buf, u->data + u->pos, n);
    u->pos += n;
    return n;
}

/* One attempt. Returns 0, or -1 with the reason in err. */
static int attempt(nt_route *r, CURL *h, json_t *alert, const char *raw, char *err, size_t errlen)
{
    answer *ans = calloc(1, sizeof *ans);
    char cerr[CURL_ERROR_SIZE] = "";
    char *body = NULL;
    struct curl_slist *hdr = NULL;
    int rc = -1;
    if (ans == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, r->url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)r->cfg->timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, (long)(r->cfg->timeout < 5 ? r->cfg->timeout : 5));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "localhost,127.0.0.1,::1");
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_answer);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, ans);
    upload up = { 0 };
    if (r->cfg->format == CONF_FMT_MAIL) {
        char from[300];
        if (r->cfg->from) {
            snprintf(from, sizeof from, "%s", r->cfg->from);
        } else {
            char host[256] = "localhost";
            gethostname(host, sizeof host - 1);
            snprintf(from, sizeof from, "parkpulse@%s", host);
        }
        body = nt_mail(r, alert, from);
        char env_from[310];
        snprintf(env_from, sizeof env_from, "<%s>", from);
        for (size_t i = 0; i < r->cfg->n_to; i++) {
            char to[310];
            snprintf(to, sizeof to, "<%s>", r->cfg->to[i]);
            hdr = curl_slist_append(hdr, to);
        }
        if (body == NULL || hdr == NULL) {
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        up = (upload){ body, strlen(body), 0 };
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
        curl_easy_setopt(h, CURLOPT_MAIL_FROM, env_from);
        curl_easy_setopt(h, CURLOPT_MAIL_RCPT, hdr);
        curl_easy_setopt(h, CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, &up);
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)up.len);
    } else {
        body = nt_format(r, alert, raw);
        hdr = curl_slist_append(hdr, "Content-Type: application/json; charset=utf-8");
        if (body == NULL || hdr == NULL) {
            snprintf(err, errlen, "out of memory formatting the alert");
            goto out;
        }
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_USERAGENT, "parkpulse-notify/" PARKPULSE_VERSION);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s", cerr[0] ? cerr : curl_easy_strerror(cc));
        goto out;
    }
    if (r->cfg->format != CONF_FMT_MAIL) {
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
            snprintf(err, errlen, "HTTP status %ld", status);
            goto out;
        }
        if (r->cfg->format == CONF_FMT_DINGTALK || r->cfg->format == CONF_FMT_WECOM) {
            /* the robots answer 200 with {"errcode":…,"errmsg":…} */
            json_t *j = json_loadb(ans->buf, ans->len, 0, NULL);
            json_t *code = json_object_get(j, "errcode");
            if (json_is_integer(code) && json_integer_value(code) != 0) {
                snprintf(err, errlen, "errcode %lld: %.100s", (long long)json_integer_value(code),
                         json_string_value(json_object_get(j, "errmsg"))
                             ? json_string_value(json_object_get(j, "errmsg")) : "");
                json_decref(j);
                goto out;
            }
            json_decref(j);
        }
    }
    rc = 0;
out:
    curl_slist_free_all(hdr);
    free(body);
    free(ans);
    return rc;
}

/* Waits up to ms on the route's condition; true when asked to stop. */
static bool wait_ms(nt_route *r, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &ts) == 0)
        ;
    bool stop = r->stop;
    pthread_mutex_unlock(&r->lock);
    return stop;
}

static void *route_main(void *arg)
{
    nt_route *r = arg;
    CURL *h = curl_easy_init();
    long backoff = 1;
    time_t last_log = 0;
    uint64_t fails = 0;
    bool dirty = false; /* delivered moved past alerts not wanted, not yet written */
    if (h == NULL) {
        log_err("notify", "route %s: cannot start libcurl", r->cfg->name);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&r->lock);
        while (!r->stop && r->head == NULL && !r->overflow) {
            if (dirty) {
                pthread_mutex_unlock(&r->lock);
                state_write(r);
                dirty = false;
                pthread_mutex_lock(&r->lock);
                continue;
            }
            pthread_cond_wait(&r->cond, &r->lock);
        }
        if (r->stop) {
            pthread_mutex_unlock(&r->lock);
            break;
        }
        nt_item *it = r->head;
        bool overflow = r->overflow;
        pthread_mutex_unlock(&r->lock);
        if (it == NULL && overflow) {
            refill(r);
            pthread_mutex_lock(&r->lock);
            bool still = r->head == NULL && r->overflow;
            pthread_mutex_unlock(&r->lock);
            if (still && wait_ms(r, 2000))
                break;
            continue;
        }
        /* the item stays at the head (the dispatcher only appends) until handled */
        bool done = false;
        if (it->seq <= r->delivered || ids_seen(r, it->id)) {
            done = true; /* handled before (a refill or a restart) */
        } else {
            json_t *a = json_loads(it->json, 0, NULL);
            if (a == NULL || !nt_wanted(r->cfg, a)) {
                if (a == NULL)
                    log_warn("notify", "route %s: alert %llu is not JSON: skipped", r->cfg->name,
                             (unsigned long long)it->seq);
                atomic_fetch_add(&r->n_skipped, 1);
                r->delivered = it->seq;
                dirty = true;
                done = true;
            } else {
                char err[512];
                atomic_fetch_add(&r->n_attempts, 1);
                if (attempt(r, h, a, it->json, err, sizeof err) == 0) {
                    if (fails)
                        log_info("notify", "route %s (%s): delivers again, after %llu failed "
                                 "attempt(s)", r->cfg->name, r->shown, (unsigned long long)fails);
                    fails = 0;
                    backoff = 1;
                    atomic_store(&r->failing, false);
                    atomic_fetch_add(&r->n_delivered, 1);
                    r->delivered = it->seq;
                    ids_add(r, it->id);
                    state_write(r);
                    dirty = false;
                    done = true;
                } else {
                    fails++;
                    atomic_fetch_add(&r->n_failed, 1);
                    atomic_store(&r->failing, true);
                    time_t now = time(NULL);
                    if (fails == 1 || now - last_log >= NT_LOG_EVERY_S) {
                        last_log = now;
                        log_warn("notify", "route %s (%s): alert %llu not delivered (%s); "
                                 "%llu failed attempt(s), next in %lds", r->cfg->name, r->shown,
                                 (unsigned long long)it->seq, err, (unsigned long long)fails,
                                 backoff);
                    }
                }
            }
            json_decref(a);
        }
        if (done) {
            pthread_mutex_lock(&r->lock);
            r->head = it->next;
            if (r->head == NULL)
                r->tail = NULL;
            r->queued--;
            pthread_mutex_unlock(&r->lock);
            free(it);
            continue;
        }
        if (wait_ms(r, backoff * 1000))
            break;
        backoff = backoff * 2 > r->retry_max ? r->retry_max : backoff * 2;
    }
    if (dirty)
        state_write(r);
    curl_easy_cleanup(h);
    return NULL;
}

int nt_route_start(nt_route *r)
{
    int rc = pthread_create(&r->thread, NULL, route_main, r);
    if (rc != 0) {
        log_err_rc("notify", rc, "route %s: cannot start its thread", r->cfg->name);
        return -rc;
    }
    r->started = true;
    return 0;
}

void nt_route_stop(nt_route *r)
{
    pthread_mutex_lock(&r->lock);
    r->stop = true;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

void nt_route_free(nt_route *r)
{
    if (r->started)
        pthread_join(r->thread, NULL);
    r->started = false;
    for (nt_item *it = r->head, *next; it; it = next) {
        next = it->next;
        free(it);
    }
    r->head = r->tail = NULL;
    if (r->url) {
        explicit_bzero(r->url, strlen(r->url));
        free(r->url);
        r->url = NULL;
    }
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}
