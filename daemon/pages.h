/*
 * pages.h — the browser pages and their assets, served from the configured
 * dashboard_dir through a fixed table: a URL never names a file. Page routes
 * map to one of four HTML files; /assets/<name> serves a file of the flat
 * assets/ folder whose name is [A-Za-z0-9._-]+ (no leading dot); dashboard
 * definitions are <name>.json files with an id-shaped name.
 */
#ifndef PP_PAGES_H
#define PP_PAGES_H

#include <stddef.h>

typedef struct pages_file {
    char *data;               /* malloc'd (caller frees) */
    size_t len;
    const char *content_type; /* static */
    long long mtime;
} pages_file;

/* Reads dir/<page> for one of "index.html", "park.html", "indicator.html",
 * "dashboard.html". Returns 0, -1 (missing) or -2 (too large / unreadable). */
int pages_read_page(const char *dir, const char *page, pages_file *out);

/* Reads dir/assets/<name>; returns -3 when the name is not acceptable. */
int pages_read_asset(const char *dir, const char *name, pages_file *out);

/* Reads dir/<name>.json for an id-shaped name; -3 when the name is not acceptable. */
int pages_read_dashboard(const char *dir, const char *name, pages_file *out);

/* {"dashboards":[{"name","title"}]}: every <id>.json in dir, sorted (malloc'd). */
char *pages_list_dashboards(const char *dir, size_t *len);

#endif
