/*
 * plugin.h — the collector host: loads each configured collector's shared
 * object from plugin_dir with dlopen, gives it the pp_collector_host of
 * collectors/collector.h (options, submit, log), and runs it in a thread.
 */
#ifndef PP_PLUGIN_H
#define PP_PLUGIN_H

#include "app.h"

typedef struct plugin_set plugin_set;

/* Loads, initialises and starts every collector of cfg (which must stay alive
 * until plugin_stop_all: options are copied, but names are checked against it).
 * Each collector's init() runs here, in the caller's thread, before any run()
 * thread starts: when this returns, every collector watches its input (the
 * spool's inotify watch is added by its init), which is what makes the daemon
 * ready (app_start, app.c). Returns the running set (possibly empty), or NULL when any
 * collector failed to load or initialise (each reason logged; none is left
 * running). Called with no lock held. */
plugin_set *plugin_start_all(pp_app *app, const pp_config *cfg);

/* Loads <plugin_dir>/<plugin>.so and checks that it exports a collector of
 * an ABI this daemon speaks, without initialising it: what start-up and the
 * configuration check (preflight.c) both do. Returns 0 with the handle and
 * the definition (dlclose *dl when done), or -1 with the reason in why. */
struct pp_collector_def;
int plugin_open(const char *plugin_dir, const char *plugin, void **dl,
                const struct pp_collector_def **def, char *why, size_t whylen);

/* Asks every collector to stop, joins its thread and unloads it. NULL is fine. */
void plugin_stop_all(plugin_set *set);

/* Number of collectors running in the set. */
size_t plugin_count(const plugin_set *set);

#endif
