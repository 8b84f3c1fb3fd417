/*
 * pages.c — static pages, assets and dashboard definitions (see pages.h).
 * Files of dashboard_dir are opened with O_NOFOLLOW relative to fixed names;
 * a symlink, a directory or a file over PAGES_MAX_FILE is refused. A name
 * missing there (or no dashboard_dir) is looked up among the built-in files,
 * which are copied out (callers free what they get) with the binary's start
 * time as their Last-Modified.
 */
#include "pages.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "model.h"

#define PAGES_MAX_FILE (4u << 20)

static const char *type_of(const char *name)
{
    static const struct { const char *ext, *type; } types[] = {
        { ".html", "text/html; charset=utf-8" },  { ".css", "text/css; charset=utf-8" },
        { ".js", "text/javascript; charset=utf-8" }, { ".json", "application/json; charset=utf-8" },
        { ".svg", "image/svg+xml" },             { ".png", "image/png" },
        { ".ico", "image/x-icon" },              { ".txt", "text/plain; charset=utf-8" },
        { ".woff2", "font/woff2" },
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

static int read_file(const char *path, pages_file *out)
{
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -errno; /* -ENOENT: missing; -ELOOP: a symlink; -EACCES … */
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    else if (!S_ISREG(st.st_mode))
        rc = -EPERM;
    else if (st.st_size > PAGES_MAX_FILE)
        rc = -EFBIG;
    if (rc != 0) {
        close(fd);
        return rc;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        close(fd);
        return -ENOMEM;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    if (got != (size_t)st.st_size) {
        free(buf);
        return rc != 0 ? rc : -EIO; /* -EIO: it shrank while read */
    }
    buf[got] = '\0';
    out->data = buf;
    out->len = got;
    out->content_type = type_of(path);
    out->mtime = (long long)st.st_mtime;
    return 0;
}

static long long pages_start_time(void)
{
    static long long t;
    if (t == 0)
        t = (long long)time(NULL);
    return t;
}

/* The built-in file called name ("assets/app.js"), copied into out. */
static int read_builtin(const char *name, pages_file *out)
{
    memset(out, 0, sizeof *out);
    for (unsigned i = 0; i < pages_embedded_count; i++) {
        const pages_embedded *e = &pages_embedded_files[i];
        if (strcmp(e->name, name) != 0)
            continue;
        out->data = malloc(e->len + 1);
        if (out->data == NULL)
            return -ENOMEM;
        memcpy(out->data, e->data, e->len + 1);
        out->len = e->len;
        out->content_type = type_of(name);
        out->mtime = pages_start_time();
        return 0;
    }
    return -ENOENT;
}

/* dir/name when dir is set and has it, else the built-in name. */
static int read_named(const char *dir, const char *name, pages_file *out)
{
    char path[4200];
    if (dir != NULL && dir[0] != '\0') {
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int rc = read_file(path, out);
        if (rc != -ENOENT)
            return rc;
    }
    return read_builtin(name, out);
}

int pages_read_page(const char *dir, const char *page, pages_file *out)
{
    static const char *pages[] = { "index.html", "park.html", "indicator.html", "dashboard.html",
                                   "404.html", "report.html" };
    (void)pages_start_time();
    for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
        if (strcmp(page, pages[i]) == 0)
            return read_named(dir, pages[i], out);
    }
    return -EINVAL;
}

static bool asset_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100 || s[0] == '.')
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

int pages_read_asset(const char *dir, const char *name, pages_file *out)
{
    char path[200];
    if (!asset_name_ok(name))
        return -EINVAL;
    snprintf(path, sizeof path, "assets/%s", name);
    return read_named(dir, path, out);
}

int pages_read_dashboard(const char *dir, const char *name, pages_file *out)
{
    char path[PP_ID_MAX + 8];
    if (!pp_id_valid(name))
        return -EINVAL;
    snprintf(path, sizeof path, "%s.json", name);
    return read_named(dir, path, out);
}

/* Adds base (an id) to names unless it is there. */
static void add_name(char **names, size_t *n, size_t max, const char *base)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(names[i], base) == 0)
            return;
    if (*n < max && (names[*n] = strdup(base)) != NULL)
        (*n)++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The "title" of a definition, read with a plain search (the file is ours to serve, not to parse). */
static void title_of(const char *json, char *title, size_t len)
{
    title[0] = '\0';
    const char *p = strstr(json, "\"title\"");
    if (p == NULL || (p = strchr(p + 7, '"')) == NULL)
        return;
    p++;
    size_t i = 0;
    while (*p && *p != '"' && i + 1 < len) {
        if (*p == '\\' && p[1])
            p++;
        title[i++] = *p++;
    }
    title[i] = '\0';
}

char *pages_list_dashboards(const char *dir, size_t *len)
{
    char *names[256];
    size_t n = 0;
    DIR *d = dir != NULL && dir[0] != '\0' ? opendir(dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL && n < 256) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
            char base[PP_ID_MAX + 2];
            if (l - 5 > PP_ID_MAX)
                continue;
            memcpy(base, e->d_name, l - 5);
            base[l - 5] = '\0';
            if (pp_id_valid(base))
                add_name(names, &n, 256, base);
        }
    }
    if (d)
        closedir(d);
    for (unsigned i = 0; i < pages_embedded_count; i++) { /* the built-in definitions */
        const char *nm = pages_embedded_files[i].name;
        size_t l = strlen(nm);
        char base[PP_ID_MAX + 2];
        if (l > 5 && l - 5 <= PP_ID_MAX && strchr(nm, '/') == NULL &&
            strcmp(nm + l - 5, ".json") == 0) {
            memcpy(base, nm, l - 5);
            base[l - 5] = '\0';
            if (pp_id_valid(base))
                add_name(names, &n, 256, base);
        }
    }
    qsort(names, n, sizeof *names, cmp_str);
    jbuf b;
    jbuf_init(&b);
    jbuf_puts(&b, "{\"dashboards\":[");
    for (size_t i = 0; i < n; i++) {
        pages_file f;
        char title[256] = "";
        if (pages_read_dashboard(dir, names[i], &f) == 0) {
            title_of(f.data, title, sizeof title);
            free(f.data);
        }
        if (i)
            jbuf_puts(&b, ",");
        jbuf_puts(&b, "{");
        json_key(&b, "name", true);
        json_str(&b, names[i]);
        json_key(&b, "title", false);
        json_str(&b, title[0] ? title : names[i]);
        jbuf_puts(&b, "}");
        free(names[i]);
    }
    jbuf_puts(&b, "]}\n");
    return jbuf_take(&b, len);
}
