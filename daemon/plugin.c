/*
 * plugin.c — collector host (see plugin.h and collectors/collector.h).
 *
 * Each collector instance gets its own host structure carrying a copy of its
 * configuration section, so the configuration can be swapped on reload while
 * it runs. What a collector submits goes through ingest_csv() (or, for a
 * batch, ingest_csv_batch()), the same road as every other input; parsed
 * figures are written as CSV first, so that they are validated by the same
 * reader. Collectors built for ABI 1 and 2 are loaded (collector.h, Versions).
 *
 * Deliveries: what a `spool` collector submits (with submit_csv or
 * submit_csv_batch) is a file it names, so each input goes to ingest as a
 * delivery named "<collector>/<file>" (ingest.h): the same file read again —
 * it could not be moved to done/, or the daemon died between the journal's
 * fsync and the rename — is answered PP_SUBMIT_OK without being applied
 * again. Other collectors are not deduplicated: an `exec` command that prints
 * the same output again is a new reading of its source (a command re-asserting
 * a figure is taken again, as a POST is), and submit_obs carries no file.
 */
#include "plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../collectors/collector.h"
#include "ingest.h"
#include "json.h"
#include "log.h"

/* The oldest collector ABI still loaded: ABI 2 only appended to the host. */
#define PP_COLLECTOR_ABI_MIN 1

typedef struct plugin_inst {
    pp_collector_host host;       /* first: the collector sees only this */
    pp_app *app;
    char name[PP_ID_MAX + 1];
    char **keys, **values;        /* copied options, incl. plugin/user/interval/timeout */
    size_t n_opts;
    void *dl;
    const pp_collector_def *def;
    void *state;
    pthread_t thread;
    bool started;
    bool deliveries;              /* what it submits are named files (see the top) */
} plugin_inst;

struct plugin_set {
    plugin_inst **inst;
    size_t n;
};

static const char *host_option(const pp_collector_host *host, const char *key)
{
    const plugin_inst *pi = (const plugin_inst *)host;
    for (size_t i = 0; i < pi->n_opts; i++)
        if (strcmp(pi->keys[i], key) == 0)
            return pi->values[i];
    return NULL;
}

static int to_submit_code(ingest_status st)
{
    return st == INGEST_OK ? PP_SUBMIT_OK : st == INGEST_REFUSED ? PP_SUBMIT_REFUSED : PP_SUBMIT_ERROR;
}

/* The delivery name of an input of pi: "<collector>/<source>" (malloc'd), or
 * NULL when pi's inputs are not deliveries or out of memory (then the input is
 * taken as it would be without). */
static char *delivery_name(const plugin_inst *pi, const char *source)
{
    char *name = NULL;
    if (pi->deliveries && asprintf(&name, "%s/%s", pi->name, source) < 0)
        return NULL;
    return name;
}

static int host_submit_csv(const pp_collector_host *host, const char *source, const char *data,
                           size_t len, char **report)
{
    const plugin_inst *pi = (const plugin_inst *)host;
    ingest_result res;
    ingest_status st;
    const char *src = source && *source ? source : pi->name;
    char *dname = delivery_name(pi, src);
    if (dname != NULL) {
        ingest_input in = { .source = src, .data = data ? data : "", .len = data ? len : 0,
                            .delivery = dname };
        ingest_csv_batch(pi->app, 1, &in, &st, &res);
        free(dname);
    } else {
        st = ingest_csv(pi->app, src, data, len, &res);
    }
    /* on OK the report is the warnings about accepted figures (collector.h) */
    if (st == INGEST_OK) {
        free(res.report);
        res.report = res.warnings;
    } else {
        free(res.warnings);
    }
    if (report)
        *report = res.report;
    else
        free(res.report);
    return to_submit_code(st);
}

/* ABI 2: n inputs through ingest_csv_batch, so that they share one fsync. */
static int host_submit_csv_batch(const pp_collector_host *host, size_t n,
                                 const pp_collector_input *in, int *results, char **reports)
{
    const plugin_inst *pi = (const plugin_inst *)host;
    ingest_input *inputs = NULL;
    ingest_status *st = NULL;
    ingest_result *res = NULL;
    int worst = PP_SUBMIT_OK;

    if (reports)
        for (size_t i = 0; i < n; i++)
            reports[i] = NULL;
    if (n == 0)
        return PP_SUBMIT_OK;
    if (in == NULL || results == NULL) {
        log_err("plugin", "collector %s: submit_csv_batch without inputs or results", pi->name);
        if (results)
            for (size_t i = 0; i < n; i++)
                results[i] = PP_SUBMIT_ERROR;
        return PP_SUBMIT_ERROR;
    }
    inputs = calloc(n, sizeof *inputs);
    st = calloc(n, sizeof *st);
    res = calloc(n, sizeof *res);
    if (inputs == NULL || st == NULL || res == NULL) {
        log_err("plugin", "collector %s: out of memory for a batch of %zu input(s)", pi->name, n);
        for (size_t i = 0; i < n; i++) {
            results[i] = PP_SUBMIT_ERROR;
            if (reports)
                reports[i] = strdup("out of memory\n");
        }
        worst = PP_SUBMIT_ERROR;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        inputs[i].source = in[i].source && *in[i].source ? in[i].source : pi->name;
        inputs[i].data = in[i].data ? in[i].data : "";
        inputs[i].len = in[i].data ? in[i].len : 0;
        inputs[i].delivery = delivery_name(pi, inputs[i].source);
    }
    ingest_csv_batch(pi->app, n, inputs, st, res);
    for (size_t i = 0; i < n; i++)
        free((char *)inputs[i].delivery);
    for (size_t i = 0; i < n; i++) {
        results[i] = to_submit_code(st[i]);
        if (st[i] == INGEST_OK) { /* the warnings about accepted figures (collector.h) */
            free(res[i].report);
            res[i].report = res[i].warnings;
        } else {
            free(res[i].warnings);
        }
        if (reports)
            reports[i] = res[i].report;
        else
            free(res[i].report);
        if (results[i] == PP_SUBMIT_ERROR ||
            (results[i] == PP_SUBMIT_REFUSED && worst == PP_SUBMIT_OK))
            worst = results[i];
    }
out:
    free(inputs);
    free(st);
    free(res);
    return worst;
}

static int host_submit_obs(const pp_collector_host *host, const char *source,
                           const pp_collector_obs *obs, size_t n, char **report)
{
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "park,indicator,period,value,unit,status,source\n");
    for (size_t i = 0; i < n; i++) {
        char st[2] = { pp_obs_status_or_default(obs[i].status), 0 };
        csv_put_field(&b, obs[i].park);
        jbuf_puts(&b, ",");
        csv_put_field(&b, obs[i].indicator);
        jbuf_puts(&b, ",");
        csv_put_field(&b, obs[i].period);
        jbuf_printf(&b, ",%.17g,", obs[i].value);
        csv_put_field(&b, obs[i].unit);
        jbuf_puts(&b, ",");
        csv_put_field(&b, st);
        jbuf_puts(&b, ",");
        csv_put_field(&b, obs[i].source);
        jbuf_puts(&b, "\n");
    }
    size_t len;
    char *csv = jbuf_take(&b, &len);
    if (csv == NULL) {
        if (report)
            *report = strdup("out of memory\n");
        return PP_SUBMIT_ERROR;
    }
    int rc = host_submit_csv(host, source, csv, len, report);
    free(csv);
    return rc;
}

static void host_log(const pp_collector_host *host, int level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_msg(level, host->name, "%s", msg);
}

static int add_opt(plugin_inst *pi, const char *k, const char *v)
{
    char **nk = realloc(pi->keys, (pi->n_opts + 1) * sizeof *nk);
    if (nk == NULL)
        return -1;
    pi->keys = nk;
    char **nv = realloc(pi->values, (pi->n_opts + 1) * sizeof *nv);
    if (nv == NULL)
        return -1;
    pi->values = nv;
    pi->keys[pi->n_opts] = strdup(k);
    pi->values[pi->n_opts] = strdup(v);
    pi->n_opts++;
    return pi->keys[pi->n_opts - 1] && pi->values[pi->n_opts - 1] ? 0 : -1;
}

static void inst_free(plugin_inst *pi)
{
    if (pi == NULL)
        return;
    if (pi->state && pi->def && pi->def->destroy)
        pi->def->destroy(pi->state);
    if (pi->dl)
        dlclose(pi->dl);
    for (size_t i = 0; i < pi->n_opts; i++) {
        free(pi->keys[i]);
        free(pi->values[i]);
    }
    free(pi->keys);
    free(pi->values);
    free(pi);
}

int plugin_open(const char *plugin_dir, const char *plugin, void **dl,
                const pp_collector_def **def, char *why, size_t whylen)
{
    char path[PATH_MAX];
    *dl = NULL;
    *def = NULL;
    if (!pp_id_valid(plugin)) {
        snprintf(why, whylen, "bad plugin name '%s'", plugin);
        return -1;
    }
    if ((size_t)snprintf(path, sizeof path, "%s/%s.so", plugin_dir, plugin) >= sizeof path) {
        snprintf(why, whylen, "plugin path too long");
        return -1;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(why, whylen, "cannot load %s", dlerror());
        return -1;
    }
    const pp_collector_def *d = dlsym(h, PP_COLLECTOR_SYMBOL);
    if (d == NULL) {
        snprintf(why, whylen, "%s exports no '%s'", path, PP_COLLECTOR_SYMBOL);
        dlclose(h);
        return -1;
    }
    if (d->abi_version < PP_COLLECTOR_ABI_MIN || d->abi_version > PP_COLLECTOR_ABI_VERSION ||
        !d->init || !d->run || !d->shutdown) {
        snprintf(why, whylen, "%s speaks ABI %d, the daemon %d to %d (or lacks a function)", path,
                 d->abi_version, PP_COLLECTOR_ABI_MIN, PP_COLLECTOR_ABI_VERSION);
        dlclose(h);
        return -1;
    }
    *dl = h;
    *def = d;
    return 0;
}

static plugin_inst *inst_load(pp_app *app, const pp_config *cfg, const conf_collector *c)
{
    char num[32];
    plugin_inst *pi = calloc(1, sizeof *pi);
    if (pi == NULL)
        return NULL;
    pi->app = app;
    pi->deliveries = strcmp(c->plugin, "spool") == 0;
    snprintf(pi->name, sizeof pi->name, "%s", c->name);
    pi->host.abi_version = PP_COLLECTOR_ABI_VERSION;
    pi->host.name = pi->name;
    pi->host.option = host_option;
    pi->host.submit_csv = host_submit_csv;
    pi->host.submit_obs = host_submit_obs;
    pi->host.log = host_log;
    pi->host.daemon_data = app;
    pi->host.submit_csv_batch = host_submit_csv_batch;

    int bad = add_opt(pi, "plugin", c->plugin);
    if (c->user)
        bad |= add_opt(pi, "user", c->user);
    snprintf(num, sizeof num, "%d", c->interval);
    bad |= add_opt(pi, "interval", num);
    snprintf(num, sizeof num, "%d", c->timeout);
    bad |= add_opt(pi, "timeout", num);
    for (size_t i = 0; i < c->n_options; i++)
        bad |= add_opt(pi, c->options[i].key, c->options[i].value);
    if (bad) {
        log_err("plugin", "collector %s: out of memory", c->name);
        goto fail;
    }
    char why[PATH_MAX + 256];
    if (plugin_open(cfg->plugin_dir, c->plugin, &pi->dl, &pi->def, why, sizeof why) != 0) {
        log_err("plugin", "collector %s: %s", c->name, why);
        goto fail;
    }
    /* An older collector sees the host of its own ABI: its checks of
     * host->abi_version pass, and it never learns of the fields appended since. */
    pi->host.abi_version = pi->def->abi_version;
    if (pi->def->init(&pi->host, &pi->state) != 0) {
        log_err("plugin", "collector %s: initialisation failed", c->name);
        pi->state = NULL;
        goto fail;
    }
    return pi;
fail:
    inst_free(pi);
    return NULL;
}

static void *inst_thread(void *arg)
{
    plugin_inst *pi = arg;
    if (pi->def->run(pi->state) != 0)
        log_err("plugin", "collector %s stopped with an error", pi->name);
    return NULL;
}

plugin_set *plugin_start_all(pp_app *app, const pp_config *cfg)
{
    plugin_set *set = calloc(1, sizeof *set);
    if (set == NULL)
        return NULL;
    if (cfg->n_collectors > 0) {
        set->inst = calloc(cfg->n_collectors, sizeof *set->inst);
        if (set->inst == NULL) {
            free(set);
            return NULL;
        }
    }
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        plugin_inst *pi = inst_load(app, cfg, &cfg->collectors[i]);
        if (pi == NULL) {
            plugin_stop_all(set);
            return NULL;
        }
        set->inst[set->n++] = pi;
    }
    for (size_t i = 0; i < set->n; i++) {
        plugin_inst *pi = set->inst[i];
        if (pthread_create(&pi->thread, NULL, inst_thread, pi) != 0) {
            log_err("plugin", "collector %s: cannot start a thread", pi->name);
            plugin_stop_all(set);
            return NULL;
        }
        pi->started = true;
        log_info("plugin", "collector %s (%s) started", pi->name, pi->def->name);
    }
    return set;
}

void plugin_stop_all(plugin_set *set)
{
    if (set == NULL)
        return;
    for (size_t i = 0; i < set->n; i++)
        if (set->inst[i]->started)
            set->inst[i]->def->shutdown(set->inst[i]->state);
    for (size_t i = 0; i < set->n; i++) {
        if (set->inst[i]->started)
            pthread_join(set->inst[i]->thread, NULL);
        inst_free(set->inst[i]);
    }
    free(set->inst);
    free(set);
}

size_t plugin_count(const plugin_set *set) { return set ? set->n : 0; }
