/*
 * pages.h — the browser pages and their assets, compiled into the binary
 * (the files of dashboards/, embedded at build time by daemon/embed_pages.sh)
 * and, when dashboard_dir is set, read from there first: a file there
 * overrides the built-in one of the same name or adds one. A fixed table
 * maps URLs to names: a URL never names a file. Page routes map to one of
 * five HTML files (404.html: unknown parks and indicators); /assets/<name>
 * serves a file of the flat assets/ folder whose name is [A-Za-z0-9._-]+ (no
 * leading dot); dashboard definitions are <name>.json files with an
 * id-shaped name. dir may be NULL or "": the built-in files only.
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

/* One built-in file (the generated table ends with a { NULL } entry). */
typedef struct pages_embedded {
    const char *name;             /* "index.html", "assets/app.js", "wall.json" */
    const unsigned char *data;    /* followed by a NUL */
    size_t len;
} pages_embedded;

extern const pages_embedded pages_embedded_files[];
extern const unsigned pages_embedded_count;

/*
 * The readers below return 0 (out filled; the caller frees out->data) or a
 * -errno, out->data then NULL:
 *   -ENOENT   neither dir nor the built-in files have it (a 404)
 *   -EINVAL   the page or name is not one that may be served (a 404)
 *   -EFBIG    the file of dir is over 4 MiB
 *   -EISDIR, -EPERM  the name in dir is a directory, or not a regular file
 *   -ELOOP    the name in dir is a symbolic link (opened with O_NOFOLLOW)
 *   -ENOMEM   out of memory
 *   -EACCES, -EIO, …  open(2), fstat(2) or read(2) failed (-EIO also: the
 *             file shrank while read)
 * Anything but -ENOENT from dir is final: the built-in file is not served
 * in place of a file of dir that cannot be read.
 */

/* Reads dir/<page> (or the built-in page) for one of "index.html",
 * "park.html", "indicator.html", "dashboard.html", "404.html", "report.html". */
int pages_read_page(const char *dir, const char *page, pages_file *out);

/* Reads dir/assets/<name>; -EINVAL when the name is not acceptable. */
int pages_read_asset(const char *dir, const char *name, pages_file *out);

/* Reads dir/<name>.json for an id-shaped name; -EINVAL when the name is not acceptable. */
int pages_read_dashboard(const char *dir, const char *name, pages_file *out);

/* {"dashboards":[{"name","title"}]}: every <id>.json in dir, sorted (malloc'd). */
char *pages_list_dashboards(const char *dir, size_t *len);

#endif
