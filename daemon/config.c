/*
 * config.c — reads parkpulse.conf (parkpulse.conf(5)) with libconfuse into a pp_config.
 *
 * The schema is declared once (conf_schema) and libconfuse does the parsing:
 * sections, titles, types, unknown keys, syntax errors. Everything else is
 * checked after the parse, in build_*(), so that one run reports as many
 * problems as it can, each as "file:line: message". The messages are kept
 * and written out at the end sorted by file (the main file first) and line,
 * so that they read top-down whatever check found them.
 *
 * Where things are in the files. libconfuse's own section line (cfg_t->line)
 * is the line of the closing brace once a section has been parsed, so instead
 * a validation callback on every option (on_option) and on every section
 * (on_section_end) records, while the parse runs, the file and line where each
 * section starts and where each of its options was set ("records", one per
 * parsed section). The checks after the parse look those up.
 *
 * Two libconfuse 3.3 quirks are worked around here:
 *  - its lexer counts every '#' or '//' comment line three times and a C
 *    comment twice, and it refuses a comment inside a list; so each file is
 *    read by us, its comments are blanked out (newlines kept, quoted strings
 *    respected) and the text is handed to cfg_parse_fp() with cfg->filename
 *    set to the real name: line numbers are then exact;
 *    The same pass finds a '{', string or comment that is never closed
 *    (libconfuse takes the end of a file as the end of an open section);
 *  - cfg_include() opens paths relative to the working directory; our
 *    include() resolves a relative path against the directory of the file
 *    that contains the include() and parses it in place with the same
 *    reader (nested cfg_parse_fp(), as libconfuse itself does for defaults).
 * collector sections carry CFGF_KEYSTRVAL: besides plugin, user, interval and
 * timeout they accept any key = value, which becomes one of the collector's
 * options[] (README, Adding a collector: collectors define their own keys). libconfuse reports
 * such a key as "no such option" although it accepts it; those messages are
 * held back and only shown if the parse then fails in that section.
 *
 * libconfuse's lexer is one global state, so conf_load() is serialised with a
 * mutex, and the callbacks find the load in progress through conf_current.
 */
#include "config.h"
#include "vec.h"

#include <confuse.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CONF_MAX_FILE_BYTES (1024 * 1024) /* a configuration file larger than this is refused */
#define CONF_MAX_INCLUDE_DEPTH 8
#define CONF_TEXT_MAX 255                /* label, unit, name, region: bytes */
#define CONF_VALUE_MAX 4096              /* a collector option's value: bytes */
#define CONF_OPTNAME_MAX 31              /* a collector option's key: bytes */
#define CONF_ZONEINFO "/usr/share/zoneinfo"
#define CONF_MSG_MAX 1024

/* ---- records: where each parsed section and option is ------------------ */

enum sec_kind { K_ROOT, K_HTTP, K_BUS, K_COLLECTOR, K_INDICATOR, K_PARK, K_THRESHOLD, K_NOTIFY,
                K_ROUTE, K_GROUP };

static const char *const kind_names[] = {"root",      "http", "bus",       "collector", "indicator",
                                         "park",      "threshold", "notify", "route",
                                         "group"};

#define REC_MAX_OPTS 24

struct optline {
    char name[24];
    int file; /* index into loader.files */
    int line;
};

struct rec {
    enum sec_kind kind;
    char *title;       /* the section title, or NULL */
    int parent;        /* for a threshold: the park's record; else -1 */
    int file, line;    /* where the section starts */
    const cfg_t *sec;  /* the section while it is being parsed, else NULL */
    struct optline opts[REC_MAX_OPTS];
    size_t n_opts;
};

struct loader {
    cfg_t *root;
    const char *main_file;
    char *err; /* caller's buffer */
    size_t errlen, errpos;
    int n_errors;
    bool oom;
    char **files; /* every file name seen, for records */
    size_t n_files;
    struct rec *recs; /* recs[0] is the top level */
    size_t n_recs, cap_recs;
    int open_top, open_nested; /* records of the sections being parsed, or -1 */
    int include_depth;
    bool has_pending; /* a held-back message from a collector section */
    char pending[CONF_MSG_MAX + 256];
    char pending_file[1024]; /* where the held-back message is, for its order */
    int pending_line;
    struct errmsg *msgs; /* every message, written into err in file order at the end */
    size_t n_msgs, cap_msgs;
};

/* One message, kept until the load ends: the checks after the parse go
 * section kind by section kind, and people read a file top-down. */
struct errmsg {
    char *file;
    int line;
    size_t seq;
    char *text; /* "file:line: message\n" */
};

static pthread_mutex_t conf_lock = PTHREAD_MUTEX_INITIALIZER;
static struct loader *conf_current; /* the load in progress, for libconfuse's callbacks */

typedef struct where {
    const char *file;
    int line;
} where;

static void add_error(struct loader *L, where w, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void append_text(struct loader *L, const char *text)
{
    if (!L->err || L->errlen == 0)
        return;
    size_t room = L->errlen - L->errpos;
    if (room <= 1)
        return;
    size_t n = strlen(text);
    if (n >= room)
        n = room - 1;
    memcpy(L->err + L->errpos, text, n);
    L->errpos += n;
    L->err[L->errpos] = '\0';
}

/* Keeps a formatted message for flush_errors(); written at once when memory
 * runs out, so that nothing is lost. */
static void keep_error(struct loader *L, where w, const char *text)
{
    if (PP_VEC_RESERVE(L->msgs, L->cap_msgs, L->n_msgs + 1, 16) != 0) {
        append_text(L, text);
        return;
    }
    struct errmsg *m = &L->msgs[L->n_msgs];
    m->file = strdup(w.file ? w.file : "");
    m->text = strdup(text);
    if (!m->file || !m->text) {
        free(m->file);
        free(m->text);
        append_text(L, text);
        return;
    }
    m->line = w.line;
    m->seq = L->n_msgs++;
}

static const struct loader *sort_loader; /* under conf_lock */

/* Rank of a file: the order in which the load met it (the main file first). */
static size_t file_rank(const char *file)
{
    for (size_t i = 0; i < sort_loader->n_files; i++)
        if (strcmp(sort_loader->files[i], file) == 0)
            return i;
    return sort_loader->n_files;
}

static int errmsg_cmp(const void *a, const void *b)
{
    const struct errmsg *x = a, *y = b;
    size_t fx = file_rank(x->file), fy = file_rank(y->file);
    if (fx != fy)
        return fx < fy ? -1 : 1;
    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Writes the kept messages into the caller's buffer, by file, then line, then
 * the order they were found in. */
static void flush_errors(struct loader *L)
{
    sort_loader = L;
    if (L->n_msgs > 1)
        qsort(L->msgs, L->n_msgs, sizeof(*L->msgs), errmsg_cmp);
    sort_loader = NULL;
    for (size_t i = 0; i < L->n_msgs; i++) {
        append_text(L, L->msgs[i].text);
        free(L->msgs[i].text);
        free(L->msgs[i].file);
    }
    free(L->msgs);
    L->msgs = NULL;
    L->n_msgs = L->cap_msgs = 0;
}

static void format_error(char *out, size_t outlen, where w, const char *msg)
{
    if (w.line > 0)
        snprintf(out, outlen, "%s:%d: %s\n", w.file ? w.file : "?", w.line, msg);
    else
        snprintf(out, outlen, "%s: %s\n", w.file ? w.file : "?", msg);
}

static void add_error(struct loader *L, where w, const char *fmt, ...)
{
    char msg[CONF_MSG_MAX], text[CONF_MSG_MAX + 256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    format_error(text, sizeof(text), w, msg);
    L->n_errors++;
    keep_error(L, w, text);
}

static void out_of_memory(struct loader *L)
{
    if (!L->oom)
        add_error(L, (where){L->main_file, 0}, "out of memory");
    L->oom = true;
}

static char *xstrdup(struct loader *L, const char *s)
{
    char *d = strdup(s);
    if (!d)
        out_of_memory(L);
    return d;
}

/* Index of file name in L->files (added if new), or -1 when out of memory. */
static int intern_file(struct loader *L, const char *name)
{
    if (!name)
        name = L->main_file;
    for (size_t i = 0; i < L->n_files; i++)
        if (strcmp(L->files[i], name) == 0)
            return (int)i;
    char **grown = realloc(L->files, (L->n_files + 1) * sizeof(*grown));
    if (!grown) {
        out_of_memory(L);
        return -1;
    }
    L->files = grown;
    if (!(L->files[L->n_files] = xstrdup(L, name)))
        return -1;
    return (int)L->n_files++;
}

static const char *file_name(const struct loader *L, int file)
{
    return file >= 0 && (size_t)file < L->n_files ? L->files[file] : L->main_file;
}

static int rec_new(struct loader *L, enum sec_kind kind, const char *title, int parent, int file,
                   int line)
{
    if (PP_VEC_RESERVE(L->recs, L->cap_recs, L->n_recs + 1, 32) != 0) {
        out_of_memory(L);
        return -1;
    }
    struct rec *r = &L->recs[L->n_recs];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->parent = parent;
    r->file = file;
    r->line = line;
    if (title && !(r->title = xstrdup(L, title)))
        return -1;
    return (int)L->n_recs++;
}

static void rec_set_opt(struct loader *L, int r, const char *name, int file, int line)
{
    struct rec *rec = &L->recs[r];
    for (size_t i = 0; i < rec->n_opts; i++)
        if (strcmp(rec->opts[i].name, name) == 0)
            return; /* keep the first line: a list reports once per element */
    if (rec->n_opts == REC_MAX_OPTS)
        return;
    struct optline *o = &rec->opts[rec->n_opts++];
    snprintf(o->name, sizeof(o->name), "%s", name);
    o->file = file;
    o->line = line;
}

static bool same_title(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The last closed record of this kind, title and parent, or -1. */
static int rec_find(const struct loader *L, enum sec_kind kind, const char *title, int parent)
{
    for (size_t i = L->n_recs; i-- > 0;) {
        const struct rec *r = &L->recs[i];
        if (r->kind == kind && !r->sec && r->parent == parent && same_title(r->title, title))
            return (int)i;
    }
    return -1;
}

/* Where option opt of record r was set, or where the section starts. */
static where rec_where(const struct loader *L, int r, const char *opt)
{
    if (r < 0)
        return (where){L->main_file, 0};
    const struct rec *rec = &L->recs[r];
    if (opt)
        for (size_t i = 0; i < rec->n_opts; i++)
            if (strcmp(rec->opts[i].name, opt) == 0)
                return (where){file_name(L, rec->opts[i].file), rec->opts[i].line};
    return (where){file_name(L, rec->file), rec->line};
}

/* w's line when it is in the main file, else 0. */
static int main_line(const struct loader *L, where w)
{
    return w.file && strcmp(w.file, L->main_file) == 0 ? w.line : 0;
}

static enum sec_kind kind_of(const char *name)
{
    for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
        if (name && strcmp(name, kind_names[i]) == 0)
            return (enum sec_kind)i;
    return K_ROOT;
}

/* ---- libconfuse callbacks ----------------------------------------------- */

/* The park section that holds threshold section t, or NULL. */
static cfg_t *park_of_threshold(cfg_t *root, const cfg_t *t)
{
    unsigned n = cfg_size(root, "park");
    for (unsigned i = 0; i < n; i++) {
        cfg_t *park = cfg_getnsec(root, "park", i);
        unsigned m = park ? cfg_size(park, "threshold") : 0;
        for (unsigned j = 0; j < m; j++)
            if (cfg_getnsec(park, "threshold", j) == t)
                return park;
    }
    return NULL;
}

/* The record of section sec, which is being parsed: opened on first sight.
 * A top-level section starts on the line the top level is at while the
 * section is parsed; a threshold on the line its park is at. */
static int current_rec(struct loader *L, cfg_t *sec)
{
    cfg_t *root = L->root;

    if (sec == root)
        return 0;
    enum sec_kind kind = kind_of(sec->name);
    int file = intern_file(L, root->filename);
    if (file < 0)
        return -1;
    if (kind == K_THRESHOLD || kind == K_ROUTE) { /* nested: in a park, in notify */
        if (L->open_nested >= 0 && L->recs[L->open_nested].sec == sec)
            return L->open_nested;
        cfg_t *park = kind == K_THRESHOLD ? park_of_threshold(root, sec) : cfg_getsec(root, "notify");
        int parent = park ? current_rec(L, park) : -1;
        if (parent < 0)
            return -1;
        int r = rec_new(L, kind, sec->title, parent, file, park->line);
        if (r < 0)
            return -1;
        L->recs[r].sec = sec;
        L->open_nested = r;
        return r;
    }
    if (L->open_top >= 0 && L->recs[L->open_top].sec == sec)
        return L->open_top;
    int r = rec_new(L, kind, sec->title, -1, file, root->line);
    if (r < 0)
        return -1;
    L->recs[r].sec = sec;
    L->open_top = r;
    return r;
}

/* Validation callback of every option: remembers where it was set. */
static int on_option(cfg_t *sec, cfg_opt_t *opt)
{
    struct loader *L = conf_current;
    if (!L)
        return 0;
    L->has_pending = false; /* parsing went on: a held-back message was spurious */
    int r = current_rec(L, sec);
    int file = intern_file(L, L->root->filename);
    if (r < 0 || file < 0)
        return L->oom ? -1 : 0;
    rec_set_opt(L, r, cfg_opt_name(opt), file, sec->line);
    return 0;
}

/* The section of option opt in parent that was parsed last: the one whose
 * line (its closing brace) is the parent's current line. */
static cfg_t *just_parsed(cfg_t *parent, cfg_opt_t *opt)
{
    unsigned n = cfg_opt_size(opt);
    for (unsigned i = n; i-- > 0;) {
        cfg_t *s = cfg_opt_getnsec(opt, i);
        if (s && s->line == parent->line)
            return s;
    }
    return n ? cfg_opt_getnsec(opt, n - 1) : NULL;
}

/* Validation callback of every section, called when its closing brace has
 * been read: closes its record and reports a second section of one name. */
static int on_section_end(cfg_t *parent, cfg_opt_t *opt)
{
    struct loader *L = conf_current;
    if (!L)
        return 0;
    L->has_pending = false;
    enum sec_kind kind = kind_of(cfg_opt_name(opt));
    int file = intern_file(L, L->root->filename);
    if (file < 0)
        return -1;

    int r, parent_rec = -1;
    if (kind == K_THRESHOLD || kind == K_ROUTE) {
        parent_rec = current_rec(L, parent);
        if (parent_rec < 0)
            return -1;
        r = L->open_nested;
        L->open_nested = -1;
    } else {
        r = L->open_top;
        L->open_top = -1;
    }
    if (r < 0) { /* an empty section: it starts no later than it ends */
        cfg_t *s = just_parsed(parent, opt);
        r = rec_new(L, kind, s ? s->title : NULL, parent_rec, file, parent->line);
        if (r < 0)
            return -1;
    }
    L->recs[r].sec = NULL;

    for (int i = 0; i < r; i++) {
        const struct rec *o = &L->recs[i];
        if (o->kind != kind || o->sec || o->parent != L->recs[r].parent ||
            !same_title(o->title, L->recs[r].title))
            continue;
        where first = rec_where(L, i, NULL);
        if (!L->recs[r].title)
            add_error(L, rec_where(L, r, NULL), "second %s section (the first is at %s:%d)",
                      kind_names[kind], first.file, first.line);
        else if (kind == K_THRESHOLD)
            add_error(L, rec_where(L, r, NULL),
                      "park \"%s\": duplicate threshold \"%s\" (first defined at %s:%d)",
                      L->recs[parent_rec].title ? L->recs[parent_rec].title : "",
                      L->recs[r].title, first.file, first.line);
        else
            add_error(L, rec_where(L, r, NULL), "duplicate %s \"%s\" (first defined at %s:%d)",
                      kind_names[kind], L->recs[r].title, first.file, first.line);
        break;
    }
    return 0;
}

/* libconfuse's error function: "file:line: [section "title": ]message". */
static void on_error(cfg_t *cfg, const char *fmt, va_list ap)
{
    struct loader *L = conf_current;
    char msg[CONF_MSG_MAX], full[CONF_MSG_MAX + 128];

    if (!L)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    const char *file = cfg && cfg->filename ? cfg->filename : NULL;
    if (!file && L->root && L->root->filename)
        file = L->root->filename;
    if (!file)
        file = L->main_file;
    where w = {file, cfg ? cfg->line : 0};
    if (cfg && cfg->name && strcmp(cfg->name, "root") != 0) {
        if (cfg->title)
            snprintf(full, sizeof(full), "%s \"%s\": %s", cfg->name, cfg->title, msg);
        else
            snprintf(full, sizeof(full), "%s: %s", cfg->name, msg);
    } else {
        snprintf(full, sizeof(full), "%s", msg);
    }
    if (cfg && (cfg->flags & CFGF_KEYSTRVAL)) {
        /* collector sections: "no such option" for a collector's own key is
         * not an error; a real one stops the parse and is shown then. It may
         * be the first sign of the section: open its record here. */
        if (current_rec(L, cfg) < 0 && L->oom)
            return;
        format_error(L->pending, sizeof(L->pending), w, full);
        snprintf(L->pending_file, sizeof(L->pending_file), "%s", w.file);
        L->pending_line = w.line;
        L->has_pending = true;
        return;
    }
    add_error(L, w, "%s", full);
}

/* ---- reading files -------------------------------------------------------- */

/* What strip_comments() found left open at the end of a file. */
typedef struct unclosed {
    int line;         /* where it was opened, 0: nothing */
    const char *what; /* "'{'", "'('", "string", "comment" */
} unclosed;

/* Blanks out '#', '//' and C comments (newlines stay) outside quoted strings,
 * and reports a brace, parenthesis, string or comment that the file never
 * closes: libconfuse would take the end of the file as the end of an open
 * section, and leaks the arguments of an unclosed function call such as
 * `include(i`. */
static unclosed strip_comments(char *s, size_t len)
{
    enum { CODE, DQ, SQ, LINE, BLOCK } st = CODE;
    int first_brace = 0, depth = 0, line = 1, opened = 0;
    int first_paren = 0, parens = 0;

    for (size_t i = 0; i < len; i++) {
        char c = s[i], next = i + 1 < len ? s[i + 1] : '\0';
        if (c == '\n')
            line++;
        switch (st) {
        case CODE:
            if (c == '{') {
                if (depth++ == 0)
                    first_brace = line;
            } else if (c == '}' && depth > 0) {
                depth--;
            } else if (c == '(') {
                if (parens++ == 0)
                    first_paren = line;
            } else if (c == ')' && parens > 0) {
                parens--;
            } else if (c == '"' || c == '\'') {
                st = c == '"' ? DQ : SQ;
                opened = line;
            } else if (c == '#' || (c == '/' && next == '/')) {
                st = LINE;
                s[i] = ' ';
            } else if (c == '/' && next == '*') {
                st = BLOCK;
                opened = line;
                s[i] = s[i + 1] = ' ';
                i++;
            }
            break;
        case DQ:
        case SQ:
            if (c == '\\' && next != '\0') {
                line += next == '\n';
                i++;
            } else if ((st == DQ && c == '"') || (st == SQ && c == '\'')) {
                st = CODE;
            }
            break;
        case LINE:
            if (c == '\n')
                st = CODE;
            else
                s[i] = ' ';
            break;
        case BLOCK:
            if (c == '*' && next == '/') {
                s[i] = s[i + 1] = ' ';
                i++;
                st = CODE;
            } else if (c != '\n') {
                s[i] = ' ';
            }
            break;
        }
    }
    if (st == DQ || st == SQ)
        return (unclosed){opened, "string"};
    if (st == BLOCK)
        return (unclosed){opened, "comment"};
    if (parens > 0 && (depth == 0 || first_paren < first_brace))
        return (unclosed){first_paren, "'('"};
    if (depth > 0)
        return (unclosed){first_brace, "'{'"};
    return (unclosed){0, NULL};
}

/* Reads path whole. Returns 0 and a malloc'd buffer, or -1 (error reported at w). */
static int read_file(struct loader *L, const char *path, where w, char **out, size_t *outlen)
{
    FILE *fp = NULL;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int rc = -1;

    if (!(fp = fopen(path, "r"))) {
        add_error(L, w, "cannot open %s: %s", path, strerror(errno));
        goto out;
    }
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        add_error(L, w, "%s is not a regular file", path);
        goto out;
    }
    if (st.st_size > CONF_MAX_FILE_BYTES) {
        add_error(L, w, "%s is larger than %d bytes", path, CONF_MAX_FILE_BYTES);
        goto out;
    }
    if (!(buf = malloc((size_t)st.st_size + 1))) {
        out_of_memory(L);
        goto out;
    }
    len = fread(buf, 1, (size_t)st.st_size, fp);
    if (ferror(fp)) {
        add_error(L, w, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        add_error(L, w, "%s contains a NUL byte: not a configuration file", path);
        goto out;
    }
    *out = buf;
    *outlen = len;
    buf = NULL;
    rc = 0;
out:
    free(buf);
    if (fp)
        fclose(fp);
    return rc;
}

/* Parses path into cfg (the top level), with comments stripped and with
 * cfg->filename naming the real file. w is where a read error is reported. */
static int parse_file(struct loader *L, cfg_t *cfg, const char *path, where w)
{
    char *text = NULL, *saved_name = cfg->filename, *name = NULL;
    int saved_line = cfg->line, rc = -1;
    size_t len = 0;
    FILE *fp = NULL;

    if (read_file(L, path, w, &text, &len) != 0)
        return -1;
    unclosed open = strip_comments(text, len);
    if (open.line > 0) {
        add_error(L, (where){path, open.line}, "this %s is never closed", open.what);
        free(text);
        return -1;
    }
    if (len == 0) { /* nothing to parse; fmemopen() may refuse a 0-byte buffer */
        free(text);
        return 0;
    }
    if (!(name = xstrdup(L, path)))
        goto out;
    if (!(fp = fmemopen(text, len, "r"))) {
        add_error(L, w, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    cfg->filename = name;
    name = NULL;
    rc = cfg_parse_fp(cfg, fp) == CFG_SUCCESS ? 0 : -1;
    free(cfg->filename);
    cfg->filename = saved_name;
    cfg->line = saved_line;
out:
    if (fp)
        fclose(fp);
    free(name);
    free(text);
    return rc;
}

/* include("file"): a relative path is relative to the including file. */
static int on_include(cfg_t *cfg, cfg_opt_t *opt, int argc, const char **argv)
{
    struct loader *L = conf_current;
    char *path = NULL;
    int rc = 1;

    if (!L)
        return 1;
    L->has_pending = false;
    where w = {cfg->filename ? cfg->filename : L->main_file, cfg->line};
    if (argc != 1 || !argv[0][0]) {
        add_error(L, w, "include() takes one file name");
        return 1;
    }
    if (L->include_depth >= CONF_MAX_INCLUDE_DEPTH) {
        add_error(L, w, "include(\"%s\"): nested more than %d deep (does a file include itself?)",
                  argv[0], CONF_MAX_INCLUDE_DEPTH);
        return 1;
    }
    const char *slash = strrchr(w.file, '/');
    if (argv[0][0] == '/' || !slash) {
        path = xstrdup(L, argv[0]);
    } else if (asprintf(&path, "%.*s/%s", (int)(slash - w.file), w.file, argv[0]) < 0) {
        path = NULL;
        out_of_memory(L);
    }
    if (!path)
        return 1;
    L->include_depth++;
    rc = parse_file(L, cfg, path, w) == 0 ? 0 : 1;
    L->include_depth--;
    free(path);
    return rc;
}

/* ---- the schema ----------------------------------------------------------- */

/* Options whose line is recorded, as libconfuse paths. */
static const char *const recorded_options[] = {
    "timezone", "state_dir", "plugin_dir", "dashboard_dir", "due_day",
    "http|listen", "http|token_file", "http|threads", "http|max_connections",
    "http|max_per_ip", "http|timeout", "http|max_body", "http|header_timeout",
    "http|max_streams", "http|max_streams_per_ip", "http|max_buffered",
    "bus|publish", "bus|heartbeat", "bus|hwm", "bus|max_connections", "bus|curve_secret_key", "bus|curve_clients",
    "collector|plugin", "collector|user", "collector|interval", "collector|timeout",
    "indicator|label", "indicator|unit", "indicator|kind", "indicator|direction",
    "indicator|warn", "indicator|crit", "indicator|pace", "indicator|escalate",
    "indicator|rule",
    "park|name", "park|level", "park|type", "park|region", "park|groups", "group|label",
    "park|threshold|warn", "park|threshold|crit",
    "notify|state_dir", "notify|base_url", "notify|api_url", "notify|retry_max",
    "notify|route|url", "notify|route|url_file", "notify|route|format", "notify|route|parks",
    "notify|route|indicators", "notify|route|min_status", "notify|route|smtp_url",
    "notify|route|smtp_url_file", "notify|route|to", "notify|route|from", "notify|route|timeout",
};

static const char *const recorded_sections[] = {"http", "bus", "collector", "indicator", "park",
                                                "park|threshold", "notify", "notify|route", "group"};

/* The keys of a collector section that are not options[]. */
static const char *const collector_keys[] = {"plugin", "user", "interval", "timeout"};

static cfg_t *conf_schema(void)
{
    cfg_opt_t http_opts[] = {
        CFG_STR("listen", "127.0.0.1:8080", CFGF_NONE),
        CFG_STR("token_file", NULL, CFGF_NODEFAULT),
        CFG_INT("threads", 4, CFGF_NONE),
        CFG_INT("max_connections", 256, CFGF_NONE),
        CFG_INT("max_per_ip", 32, CFGF_NONE),
        CFG_INT("timeout", 30, CFGF_NONE),
        CFG_INT("max_body", 8388608, CFGF_NONE),
        CFG_INT("header_timeout", 5, CFGF_NONE),
        CFG_INT("max_streams", 512, CFGF_NONE),
        CFG_INT("max_streams_per_ip", 16, CFGF_NONE),
        CFG_INT("max_buffered", 67108864, CFGF_NONE),
        CFG_END(),
    };
    cfg_opt_t bus_opts[] = {
        CFG_STR("publish", "tcp://127.0.0.1:5556", CFGF_NONE),
        CFG_INT("heartbeat", 5, CFGF_NONE),
        CFG_INT("hwm", 1000, CFGF_NONE),
        CFG_INT("max_connections", 256, CFGF_NONE),
        CFG_STR("curve_secret_key", NULL, CFGF_NODEFAULT),
        CFG_STR("curve_clients", NULL, CFGF_NODEFAULT),
        CFG_END(),
    };
    cfg_opt_t collector_opts[] = {
        CFG_STR("plugin", NULL, CFGF_NODEFAULT),
        CFG_STR("user", NULL, CFGF_NODEFAULT),
        CFG_INT("interval", 3600, CFGF_NONE),
        CFG_INT("timeout", 60, CFGF_NONE),
        CFG_END(),
    };
    cfg_opt_t indicator_opts[] = {
        CFG_STR("label", NULL, CFGF_NODEFAULT),
        CFG_STR("unit", NULL, CFGF_NODEFAULT),
        CFG_STR("kind", NULL, CFGF_NODEFAULT),
        CFG_STR("direction", "higher", CFGF_NONE),
        CFG_FLOAT("warn", 5, CFGF_NONE),
        CFG_FLOAT("crit", 15, CFGF_NONE),
        CFG_FLOAT_LIST("pace", NULL, CFGF_NODEFAULT),
        CFG_INT("escalate", 0, CFGF_NONE),
        CFG_STR("rule", "points", CFGF_NONE),
        CFG_END(),
    };
    cfg_opt_t threshold_opts[] = {
        CFG_FLOAT("warn", 0, CFGF_NODEFAULT),
        CFG_FLOAT("crit", 0, CFGF_NODEFAULT),
        CFG_END(),
    };
    cfg_opt_t park_opts[] = {
        CFG_STR("name", NULL, CFGF_NODEFAULT),
        CFG_STR("level", NULL, CFGF_NODEFAULT),
        CFG_STR("type", NULL, CFGF_NODEFAULT),
        CFG_STR("region", NULL, CFGF_NODEFAULT),
        CFG_STR_LIST("groups", NULL, CFGF_NODEFAULT),
        CFG_SEC("threshold", threshold_opts, CFGF_MULTI | CFGF_TITLE),
        CFG_END(),
    };
    cfg_opt_t group_opts[] = {
        CFG_STR("label", NULL, CFGF_NODEFAULT),
        CFG_END(),
    };
    cfg_opt_t route_opts[] = {
        CFG_STR("url", NULL, CFGF_NODEFAULT),
        CFG_STR("url_file", NULL, CFGF_NODEFAULT),
        CFG_STR("format", "json", CFGF_NONE),
        CFG_STR_LIST("parks", NULL, CFGF_NODEFAULT),
        CFG_STR_LIST("indicators", NULL, CFGF_NODEFAULT),
        CFG_STR("min_status", NULL, CFGF_NODEFAULT),
        CFG_STR("smtp_url", NULL, CFGF_NODEFAULT),
        CFG_STR("smtp_url_file", NULL, CFGF_NODEFAULT),
        CFG_STR_LIST("to", NULL, CFGF_NODEFAULT),
        CFG_STR("from", NULL, CFGF_NODEFAULT),
        CFG_INT("timeout", 10, CFGF_NONE),
        CFG_END(),
    };
    cfg_opt_t notify_opts[] = {
        CFG_STR("state_dir", "/var/lib/parkpulse-notify", CFGF_NONE),
        CFG_STR("base_url", NULL, CFGF_NODEFAULT),
        CFG_STR("api_url", NULL, CFGF_NODEFAULT),
        CFG_INT("retry_max", 300, CFGF_NONE),
        CFG_SEC("route", route_opts, CFGF_MULTI | CFGF_TITLE),
        CFG_END(),
    };
    cfg_opt_t opts[] = {
        CFG_STR("timezone", "Asia/Shanghai", CFGF_NONE),
        CFG_STR("state_dir", "/var/lib/parkpulse", CFGF_NONE),
        CFG_STR("plugin_dir", PP_PLUGIN_DIR, CFGF_NONE),
        CFG_STR("dashboard_dir", PP_DASHBOARD_DIR, CFGF_NONE),
        CFG_INT("due_day", 20, CFGF_NONE),
        CFG_FUNC("include", on_include),
        CFG_SEC("http", http_opts, CFGF_NONE),
        CFG_SEC("bus", bus_opts, CFGF_NONE),
        CFG_SEC("collector", collector_opts, CFGF_MULTI | CFGF_TITLE | CFGF_KEYSTRVAL),
        CFG_SEC("indicator", indicator_opts, CFGF_MULTI | CFGF_TITLE),
        CFG_SEC("park", park_opts, CFGF_MULTI | CFGF_TITLE),
        CFG_SEC("group", group_opts, CFGF_MULTI | CFGF_TITLE),
        CFG_SEC("notify", notify_opts, CFGF_NONE),
        CFG_END(),
    };

    cfg_t *root = cfg_init(opts, CFGF_NONE);
    if (!root)
        return NULL;
    for (size_t i = 0; i < sizeof(recorded_options) / sizeof(recorded_options[0]); i++)
        cfg_set_validate_func(root, recorded_options[i], on_option);
    for (size_t i = 0; i < sizeof(recorded_sections) / sizeof(recorded_sections[0]); i++)
        cfg_set_validate_func(root, recorded_sections[i], on_section_end);
    cfg_set_error_function(root, on_error);
    return root;
}

/* ---- value checks ----------------------------------------------------------- */

/* Valid UTF-8 without control characters. */
static bool utf8_text(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        unsigned c = *p;
        size_t n;
        unsigned cp;
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return false;
        p += n + 1;
    }
    return true;
}

/* A non-empty, bounded, printable UTF-8 string; reports what is wrong. */
static bool check_text(struct loader *L, where w, const char *ctx, const char *key, const char *s,
                       size_t max)
{
    if (!s || !*s) {
        add_error(L, w, "%s%s must not be empty", ctx, key);
        return false;
    }
    if (strlen(s) > max) {
        add_error(L, w, "%s%s is longer than %zu bytes", ctx, key, max);
        return false;
    }
    if (!utf8_text(s)) {
        add_error(L, w, "%s%s is not printable UTF-8 text", ctx, key);
        return false;
    }
    return true;
}

static bool check_path(struct loader *L, where w, const char *ctx, const char *key, const char *s)
{
    return check_text(L, w, ctx, key, s, PATH_MAX - 1);
}

static bool check_range(struct loader *L, where w, const char *ctx, const char *key, long v,
                        long lo, long hi)
{
    if (v >= lo && v <= hi)
        return true;
    add_error(L, w, "%s%s must be between %ld and %ld (got %ld)", ctx, key, lo, hi, v);
    return false;
}

/* timezone: "UTC", or a name under /usr/share/zoneinfo such as "Asia/Shanghai". */
static bool timezone_valid(const char *tz)
{
    char path[sizeof(CONF_ZONEINFO) + 130];
    struct stat st;

    if (strcmp(tz, "UTC") == 0)
        return true;
    if (!*tz || tz[0] == '/' || strlen(tz) > 128 || strstr(tz, ".."))
        return false;
    for (const char *p = tz; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p))
            return false;
    snprintf(path, sizeof(path), "%s/%s", CONF_ZONEINFO, tz);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool port_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 5 || strspn(p, "0123456789") != n)
        return false;
    return atol(p) <= 65535;
}

/* http.listen: "host:port" or "[ipv6]:port". */
#define LISTEN_FORM "host:port or [ipv6]:port with a port 0..65535"
static bool listen_valid(const char *s)
{
    const char *port;

    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close == s + 1 || close[1] != ':')
            return false;
        for (const char *p = s + 1; p < close; p++)
            if (!isxdigit((unsigned char)*p) && *p != ':' && *p != '.')
                return false;
        port = close + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s)
            return false;
        for (const char *p = s; p < colon; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-')
                return false;
        port = colon + 1;
    }
    return port_valid(port);
}

/* bus.publish: a ZeroMQ endpoint; tcp needs host:port (port may be '*'). */
#define ENDPOINT_FORM "a ZeroMQ endpoint such as tcp://127.0.0.1:5556"
static bool endpoint_valid(const char *s)
{
    static const char *const schemes[] = {"tcp://", "ipc://", "inproc://", "pgm://", "epgm://"};
    const char *rest = NULL;

    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strncmp(s, schemes[i], strlen(schemes[i])) == 0)
            rest = s + strlen(schemes[i]);
    if (!rest || !*rest || strlen(s) > 255)
        return false;
    for (const char *p = rest; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    if (strncmp(s, "tcp://", 6) == 0) {
        const char *colon = strrchr(rest, ':');
        if (!colon || colon == rest)
            return false;
        return strcmp(colon + 1, "*") == 0 || port_valid(colon + 1);
    }
    return true;
}

/* A user name as useradd accepts it. */
static bool user_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32 || s[0] == '-')
        return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p))
            return false;
    return true;
}

/* A collector option key: [a-z][a-z0-9_]{0,30}. */
static bool option_key_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CONF_OPTNAME_MAX || !islower((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

/* Index of s in names (NULL-terminated), or -1. */
static int one_of(const char *s, const char *const *names)
{
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

static char *copy_opt_str(struct loader *L, cfg_t *sec, const char *key)
{
    const char *s = cfg_getstr(sec, key);
    return s ? xstrdup(L, s) : NULL;
}

/* ---- building pp_config ------------------------------------------------------- */

static void build_global(struct loader *L, cfg_t *root, pp_config *c)
{
    const char *tz = cfg_getstr(root, "timezone");
    if (!timezone_valid(tz))
        add_error(L, rec_where(L, 0, "timezone"),
                  "timezone \"%s\" is not UTC nor a zone under %s", tz, CONF_ZONEINFO);
    static const char *const dirs[] = {"state_dir", "plugin_dir", "dashboard_dir"};
    for (size_t i = 0; i < 3; i++)
        check_path(L, rec_where(L, 0, dirs[i]), "", dirs[i], cfg_getstr(root, dirs[i]));
    long due = cfg_getint(root, "due_day");
    check_range(L, rec_where(L, 0, "due_day"), "", "due_day", due, 1, 28);

    c->timezone = copy_opt_str(L, root, "timezone");
    c->state_dir = copy_opt_str(L, root, "state_dir");
    c->line_state_dir = main_line(L, rec_where(L, 0, "state_dir"));
    c->line_plugin_dir = main_line(L, rec_where(L, 0, "plugin_dir"));
    c->plugin_dir = copy_opt_str(L, root, "plugin_dir");
    c->dashboard_dir = copy_opt_str(L, root, "dashboard_dir");
    c->dashboard_dir_set = (cfg_getopt(root, "dashboard_dir")->flags & CFGF_MODIFIED) != 0;
    c->due_day = (int)(due >= 1 && due <= 28 ? due : 20);
}

/* The address of a top-level section sec (http's listen, bus's publish): key,
 * which valid() must accept, else "<ctx><key> \"…\" is not <what>"; a copy
 * into *out and its line in the main file into *line. Returns the section's
 * record (of kind). */
static int build_address(struct loader *L, cfg_t *sec, enum sec_kind kind, const char *ctx,
                         const char *key, bool (*valid)(const char *), const char *what,
                         char **out, int *line)
{
    int r = rec_find(L, kind, NULL, -1);
    const char *v = cfg_getstr(sec, key);
    if (!valid(v))
        add_error(L, rec_where(L, r, key), "%s%s \"%s\" is not %s", ctx, key, v, what);
    *out = copy_opt_str(L, sec, key);
    *line = main_line(L, rec_where(L, r, key));
    return r;
}

static void build_http(struct loader *L, cfg_t *root, pp_config *c)
{
    cfg_t *h = cfg_getsec(root, "http");
    const char *ctx = "http: ";
    int r = build_address(L, h, K_HTTP, ctx, "listen", listen_valid, LISTEN_FORM,
                          &c->http_listen, &c->line_http_listen);
    const char *token = cfg_getstr(h, "token_file");
    if (token)
        check_path(L, rec_where(L, r, "token_file"), ctx, "token_file", token);

    struct {
        const char *key;
        long lo, hi;
    } ints[] = {
        {"threads", 1, 64},       {"max_connections", 1, 65536}, {"max_per_ip", 1, 65536},
        {"timeout", 1, 3600},     {"max_body", 1, 1L << 30},
        {"header_timeout", 1, 3600}, {"max_streams", 0, 65536}, {"max_streams_per_ip", 1, 65536},
        {"max_buffered", 1, 1L << 34},
    };
    long v[9];
    bool ok = true;
    for (size_t i = 0; i < 9; i++) {
        v[i] = cfg_getint(h, ints[i].key);
        ok &= check_range(L, rec_where(L, r, ints[i].key), ctx, ints[i].key, v[i], ints[i].lo,
                          ints[i].hi);
    }
    if (ok && v[2] > v[1])
        add_error(L, rec_where(L, r, "max_per_ip"),
                  "http: max_per_ip (%ld) must not exceed max_connections (%ld)", v[2], v[1]);

    c->http_token_file = copy_opt_str(L, h, "token_file");
    c->http_threads = (int)v[0];
    c->http_max_connections = (int)v[1];
    c->http_max_per_ip = (int)v[2];
    c->http_timeout = (int)v[3];
    c->http_max_body = v[4];
    c->http_header_timeout = (int)v[5];
    c->http_max_streams = (int)v[6];
    c->http_max_streams_per_ip = (int)v[7];
    c->http_max_buffered = v[8];
}

static void build_bus(struct loader *L, cfg_t *root, pp_config *c)
{
    cfg_t *b = cfg_getsec(root, "bus");
    const char *ctx = "bus: ";
    int r = build_address(L, b, K_BUS, ctx, "publish", endpoint_valid, ENDPOINT_FORM,
                          &c->bus_publish, &c->line_bus_publish);
    long hb = cfg_getint(b, "heartbeat"), hwm = cfg_getint(b, "hwm");
    long maxc = cfg_getint(b, "max_connections");
    check_range(L, rec_where(L, r, "heartbeat"), ctx, "heartbeat", hb, 1, 3600);
    check_range(L, rec_where(L, r, "max_connections"), ctx, "max_connections", maxc, 1, 65536);
    check_range(L, rec_where(L, r, "hwm"), ctx, "hwm", hwm, 0, 10000000);
    const char *key = cfg_getstr(b, "curve_secret_key");
    const char *clients = cfg_getstr(b, "curve_clients");
    if (key)
        check_path(L, rec_where(L, r, "curve_secret_key"), ctx, "curve_secret_key", key);
    if (clients)
        check_path(L, rec_where(L, r, "curve_clients"), ctx, "curve_clients", clients);
    if (clients && !key)
        add_error(L, rec_where(L, r, "curve_clients"),
                  "bus: curve_clients needs curve_secret_key");

    c->bus_heartbeat = (int)(hb >= 1 && hb <= 3600 ? hb : 5);
    c->bus_hwm = (int)(hwm >= 0 && hwm <= 10000000 ? hwm : 1000);
    c->bus_max_connections = (int)(maxc >= 1 && maxc <= 65536 ? maxc : 256);
    c->bus_curve_secret_key = copy_opt_str(L, b, "curve_secret_key");
    c->bus_curve_clients = copy_opt_str(L, b, "curve_clients");
}

static void build_pace(struct loader *L, cfg_t *sec, int r, const char *ctx, pp_indicator *ind)
{
    unsigned n = cfg_size(sec, "pace");
    where w = rec_where(L, r, "pace");

    if (n == 0)
        return;
    if (n != 12) {
        add_error(L, w, "%space must have 12 values, one per month (got %u)", ctx, n);
        return;
    }
    for (unsigned m = 0; m < 12; m++) {
        double p = cfg_getnfloat(sec, "pace", m);
        if (!isfinite(p) || p < 0 || p > 100) {
            add_error(L, w, "%space value %u (%g) is not between 0 and 100", ctx, m + 1, p);
            return;
        }
        if (m > 0 && p < ind->pace[m - 1]) {
            add_error(L, w, "%space must not decrease: month %u is %g, month %u %g", ctx, m,
                      ind->pace[m - 1], m + 1, p);
            return;
        }
        ind->pace[m] = p;
    }
    if (ind->pace[11] != 100) {
        add_error(L, w, "%space must end at 100 (got %g)", ctx, ind->pace[11]);
        return;
    }
    ind->has_pace = true;
}

/* warn and crit: finite, >= 0, warn <= crit. */
static void check_thresholds(struct loader *L, int r, const char *ctx, double warn, double crit)
{
    bool ok = true;
    if (!isfinite(warn) || warn < 0) {
        add_error(L, rec_where(L, r, "warn"), "%swarn must be a number >= 0 (got %g)", ctx, warn);
        ok = false;
    }
    if (!isfinite(crit) || crit < 0) {
        add_error(L, rec_where(L, r, "crit"), "%scrit must be a number >= 0 (got %g)", ctx, crit);
        ok = false;
    }
    if (ok && warn > crit) {
        const struct rec *rec = &L->recs[r];
        bool has_warn = false;
        for (size_t i = 0; i < rec->n_opts; i++)
            has_warn |= strcmp(rec->opts[i].name, "warn") == 0;
        add_error(L, rec_where(L, r, has_warn ? "warn" : "crit"),
                  "%swarn (%g) must not be greater than crit (%g)", ctx, warn, crit);
    }
}

/* The section sec titled with an id or a name (noun) of the id syntax, a
 * record of kind under parent: its record, the context "<what> \"<id>\": " of
 * its messages in ctx, and the title in dst (PP_ID_MAX + 1 bytes) when
 * valid, else the error. */
static int section_begin(struct loader *L, cfg_t *sec, enum sec_kind kind, int parent,
                         const char *what, const char *noun, char *dst, char ctx[PP_ID_MAX + 32])
{
    const char *id = cfg_title(sec);
    int r = rec_find(L, kind, id, parent);
    snprintf(ctx, PP_ID_MAX + 32, "%s \"%.*s\": ", what, PP_ID_MAX, id);
    if (!pp_id_valid(id))
        add_error(L, rec_where(L, r, NULL),
                  "%s %s \"%s\" is not valid: use [a-z0-9][a-z0-9_-]{0,63}", what, noun, id);
    else
        snprintf(dst, PP_ID_MAX + 1, "%s", id);
    return r;
}

/* A text key a section must have: a checked copy, or NULL (the error added). */
static char *required_text(struct loader *L, int r, const char *ctx, const char *key,
                           const char *val)
{
    if (!val)
        add_error(L, rec_where(L, r, NULL), "%s%s is missing", ctx, key);
    else if (check_text(L, rec_where(L, r, key), ctx, key, val, CONF_TEXT_MAX))
        return xstrdup(L, val);
    return NULL;
}

static void build_indicator(struct loader *L, cfg_t *sec, pp_indicator *ind)
{
    static const char *const kinds[] = {"cumulative", "rate", "completion", "rank", NULL};
    static const char *const dirs[] = {"higher", "lower", NULL};
    static const pp_kind kind_values[] = {PP_KIND_CUMULATIVE, PP_KIND_RATE, PP_KIND_COMPLETION,
                                          PP_KIND_RANK};
    char ctx[PP_ID_MAX + 32];
    int r = section_begin(L, sec, K_INDICATOR, -1, "indicator", "id", ind->id, ctx);

    const char *label = cfg_getstr(sec, "label"), *unit = cfg_getstr(sec, "unit");
    const char *kind = cfg_getstr(sec, "kind"), *dir = cfg_getstr(sec, "direction");
    ind->label = required_text(L, r, ctx, "label", label);
    ind->unit = required_text(L, r, ctx, "unit", unit);
    if (!kind) {
        add_error(L, rec_where(L, r, NULL),
                  "%skind is missing (cumulative, rate, completion or rank)", ctx);
    } else {
        int k = one_of(kind, kinds);
        if (k < 0)
            add_error(L, rec_where(L, r, "kind"),
                      "%skind \"%s\" is not cumulative, rate, completion or rank", ctx, kind);
        else
            ind->kind = kind_values[k];
    }
    int d = one_of(dir, dirs);
    if (d < 0)
        add_error(L, rec_where(L, r, "direction"), "%sdirection \"%s\" is not higher or lower",
                  ctx, dir);
    else
        ind->direction = d == 0 ? PP_DIR_HIGHER : PP_DIR_LOWER;

    ind->warn = cfg_getfloat(sec, "warn");
    ind->crit = cfg_getfloat(sec, "crit");
    check_thresholds(L, r, ctx, ind->warn, ind->crit);
    build_pace(L, sec, r, ctx, ind);

    long esc = cfg_getint(sec, "escalate");
    if (esc < 0 || esc > 120)
        add_error(L, rec_where(L, r, "escalate"),
                  "%sescalate must be 0 (off) or a number of periods 1..120 (got %ld)", ctx, esc);
    else
        ind->escalate = (int)esc;
    const char *rule = cfg_getstr(sec, "rule");
    if (rule && strcmp(rule, "relative") == 0) {
        if (ind->kind != PP_KIND_CUMULATIVE && ind->kind != PP_KIND_COMPLETION)
            add_error(L, rec_where(L, r, "rule"),
                      "%srule \"relative\" applies to cumulative and completion kinds only", ctx);
        else
            ind->relative = true;
    } else if (rule && strcmp(rule, "points") != 0) {
        add_error(L, rec_where(L, r, "rule"), "%srule \"%s\" is not points or relative", ctx, rule);
    }
}

static const pp_indicator *find_indicator(const pp_catalog *cat, const char *id)
{
    for (size_t i = 0; i < cat->n_indicators; i++)
        if (strcmp(cat->indicators[i].id, id) == 0)
            return &cat->indicators[i];
    return NULL;
}

static void build_threshold(struct loader *L, cfg_t *t, int park_rec, const char *park_id,
                            const pp_catalog *cat, pp_threshold *th)
{
    const char *id = cfg_title(t);
    int r = rec_find(L, K_THRESHOLD, id, park_rec);
    char ctx[2 * PP_ID_MAX + 48];

    snprintf(ctx, sizeof(ctx), "park \"%.*s\": threshold \"%.*s\": ", PP_ID_MAX, park_id,
             PP_ID_MAX, id);
    const pp_indicator *ind = pp_id_valid(id) ? find_indicator(cat, id) : NULL;
    if (!ind) {
        add_error(L, rec_where(L, r, NULL), "%sno indicator \"%s\" is defined", ctx, id);
        return;
    }
    snprintf(th->indicator, sizeof(th->indicator), "%s", id);
    bool has_warn = cfg_size(t, "warn") > 0, has_crit = cfg_size(t, "crit") > 0;
    if (!has_warn && !has_crit) {
        add_error(L, rec_where(L, r, NULL), "%sgive warn, crit or both", ctx);
        return;
    }
    th->warn = has_warn ? cfg_getfloat(t, "warn") : ind->warn;
    th->crit = has_crit ? cfg_getfloat(t, "crit") : ind->crit;
    check_thresholds(L, r, ctx, th->warn, th->crit);
}

static void build_park(struct loader *L, cfg_t *sec, const pp_catalog *cat, pp_park *park)
{
    static const char *const levels[] = {"national", "provincial", "other", NULL};
    static const char *const types[] = {"etdz", "hitech", "industrial", "other", NULL};
    const char *id = cfg_title(sec);
    char ctx[PP_ID_MAX + 32];
    int r = section_begin(L, sec, K_PARK, -1, "park", "id", park->id, ctx);

    const char *name = cfg_getstr(sec, "name"), *level = cfg_getstr(sec, "level");
    const char *type = cfg_getstr(sec, "type"), *region = cfg_getstr(sec, "region");
    park->name = required_text(L, r, ctx, "name", name);
    if (level && one_of(level, levels) < 0)
        add_error(L, rec_where(L, r, "level"),
                  "%slevel \"%s\" is not national, provincial or other", ctx, level);
    else if (level)
        park->level = xstrdup(L, level);
    if (type && one_of(type, types) < 0)
        add_error(L, rec_where(L, r, "type"),
                  "%stype \"%s\" is not etdz, hitech, industrial or other", ctx, type);
    else if (type)
        park->type = xstrdup(L, type);
    if (region && check_text(L, rec_where(L, r, "region"), ctx, "region", region, CONF_TEXT_MAX))
        park->region = xstrdup(L, region);

    unsigned n = cfg_size(sec, "threshold");
    if (n == 0)
        return;
    if (!(park->thresholds = calloc(n, sizeof(*park->thresholds)))) {
        out_of_memory(L);
        return;
    }
    park->n_thresholds = n;
    for (unsigned i = 0; i < n; i++)
        build_threshold(L, cfg_getnsec(sec, "threshold", i), r, id, cat, &park->thresholds[i]);
}

static void build_collector(struct loader *L, cfg_t *sec, conf_collector *col)
{
    char ctx[PP_ID_MAX + 32];
    int r = section_begin(L, sec, K_COLLECTOR, -1, "collector", "name", col->name, ctx);
    col->line = rec_where(L, r, NULL).line;

    const char *plugin = cfg_getstr(sec, "plugin"), *user = cfg_getstr(sec, "user");
    if (!plugin)
        add_error(L, rec_where(L, r, NULL), "%splugin is missing (e.g. spool or exec)", ctx);
    else if (!pp_id_valid(plugin))
        add_error(L, rec_where(L, r, "plugin"),
                  "%splugin \"%s\" is not a plugin name ([a-z0-9][a-z0-9_-]*)", ctx, plugin);
    else
        col->plugin = xstrdup(L, plugin);
    if (user && !user_valid(user))
        add_error(L, rec_where(L, r, "user"), "%suser \"%s\" is not a user name", ctx, user);
    else if (user)
        col->user = xstrdup(L, user);
    long interval = cfg_getint(sec, "interval"), timeout = cfg_getint(sec, "timeout");
    check_range(L, rec_where(L, r, "interval"), ctx, "interval", interval, 1, 31536000);
    check_range(L, rec_where(L, r, "timeout"), ctx, "timeout", timeout, 1, 86400);
    col->interval = (int)(interval >= 1 && interval <= 31536000 ? interval : 3600);
    col->timeout = (int)(timeout >= 1 && timeout <= 86400 ? timeout : 60);

    /* Every other key = value of the section (CFGF_KEYSTRVAL) is an option. */
    unsigned n = cfg_num(sec);
    if (!(col->options = calloc(CONF_MAX_OPTIONS, sizeof(*col->options)))) {
        out_of_memory(L);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        cfg_opt_t *o = cfg_getnopt(sec, i);
        const char *key = cfg_opt_name(o);
        bool common = false;
        for (size_t k = 0; k < sizeof(collector_keys) / sizeof(collector_keys[0]); k++)
            common |= strcmp(key, collector_keys[k]) == 0;
        if (common || cfg_opt_size(o) == 0)
            continue;
        const char *value = cfg_opt_getnstr(o, 0);
        if (!option_key_valid(key)) {
            add_error(L, rec_where(L, r, NULL), "%s\"%s\" is not an option name ([a-z][a-z0-9_]*)",
                      ctx, key);
            continue;
        }
        if (!value || strlen(value) > CONF_VALUE_MAX || !utf8_text(value)) {
            add_error(L, rec_where(L, r, NULL),
                      "%s%s must be printable UTF-8 text of at most %d bytes", ctx, key,
                      CONF_VALUE_MAX);
            continue;
        }
        if (col->n_options == CONF_MAX_OPTIONS) {
            add_error(L, rec_where(L, r, NULL), "%smore than %d options", ctx, CONF_MAX_OPTIONS);
            break;
        }
        conf_option *opt = &col->options[col->n_options++];
        opt->key = xstrdup(L, key);
        opt->value = xstrdup(L, value);
    }
}

/* ---- notify: parkpulse-notify's routes (README "Notifications") ------------ */

/* http(s):// or smtp(s)://, printable, no blank: the value itself is never
 * shown, it may hold a token or a password. */
static bool url_valid(const char *s, const char *const *schemes)
{
    bool scheme = false;
    for (size_t i = 0; schemes[i]; i++)
        scheme |= strncmp(s, schemes[i], strlen(schemes[i])) == 0 && s[strlen(schemes[i])];
    if (!scheme || strlen(s) > CONF_VALUE_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return false;
    return true;
}

/* A mail address for an SMTP envelope: local@domain, printable, no blank or <>. */
static bool mail_valid(const char *s)
{
    const char *at = strchr(s, '@');
    if (!at || at == s || !at[1] || strchr(at + 1, '@') || strlen(s) > 254)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f || strchr("<>()[],;:\\\"", *p))
            return false;
    return true;
}

/* A list option of ids: copied into *out (NULL when absent); each one must be
 * a configured park (parks) or indicator. */
static void build_id_list(struct loader *L, cfg_t *sec, int r, const char *ctx, const char *key,
                          const pp_catalog *cat, bool parks, char ***out, size_t *n_out)
{
    unsigned n = cfg_size(sec, key);
    if (n == 0)
        return;
    if (!(*out = calloc(n, sizeof(**out)))) {
        out_of_memory(L);
        return;
    }
    for (unsigned i = 0; i < n; i++) {
        const char *id = cfg_getnstr(sec, key, i);
        bool known = id && pp_id_valid(id) &&
                     (parks ? pp_catalog_park(cat, id) != NULL : find_indicator(cat, id) != NULL);
        if (!known) {
            add_error(L, rec_where(L, r, key), "%s%s: no %s \"%s\" is defined", ctx, key,
                      parks ? "park" : "indicator", id ? id : "");
            continue;
        }
        (*out)[(*n_out)++] = xstrdup(L, id);
    }
}

static void build_route(struct loader *L, cfg_t *sec, int notify_rec, const pp_catalog *cat,
                        conf_route *rt)
{
    static const char *const formats[] = {"json", "alertmanager", "dingtalk", "wecom", NULL};
    static const char *const statuses[] = {"warning", "critical", "stale", NULL};
    static const char *const web[] = {"http://", "https://", NULL};
    static const char *const smtp[] = {"smtp://", "smtps://", NULL};
    char ctx[PP_ID_MAX + 32];
    int r = section_begin(L, sec, K_ROUTE, notify_rec, "notify: route", "name", rt->name, ctx);
    rt->line = rec_where(L, r, NULL).line;

    const char *url = cfg_getstr(sec, "url"), *url_file = cfg_getstr(sec, "url_file");
    const char *smtp_url = cfg_getstr(sec, "smtp_url");
    const char *smtp_file = cfg_getstr(sec, "smtp_url_file");
    bool is_web = url || url_file, is_mail = smtp_url || smtp_file;
    if (is_web == is_mail)
        add_error(L, rec_where(L, r, NULL),
                  "%sgive url (or url_file) for a web hook, or smtp_url (or smtp_url_file) for "
                  "mail: one of them", ctx);
    if ((url && url_file) || (smtp_url && smtp_file))
        add_error(L, rec_where(L, r, url && url_file ? "url_file" : "smtp_url_file"),
                  "%s%s and %s exclude each other", ctx, url && url_file ? "url" : "smtp_url",
                  url && url_file ? "url_file" : "smtp_url_file");
    if (url && !url_valid(url, web))
        add_error(L, rec_where(L, r, "url"), "%surl is not an http:// or https:// URL", ctx);
    if (smtp_url && !url_valid(smtp_url, smtp))
        add_error(L, rec_where(L, r, "smtp_url"), "%ssmtp_url is not an smtp:// or smtps:// URL", ctx);
    if (url_file)
        check_path(L, rec_where(L, r, "url_file"), ctx, "url_file", url_file);
    if (smtp_file)
        check_path(L, rec_where(L, r, "smtp_url_file"), ctx, "smtp_url_file", smtp_file);
    rt->url = url ? xstrdup(L, url) : NULL;
    rt->url_file = url_file ? xstrdup(L, url_file) : NULL;
    rt->smtp_url = smtp_url ? xstrdup(L, smtp_url) : NULL;
    rt->smtp_url_file = smtp_file ? xstrdup(L, smtp_file) : NULL;

    const char *format = cfg_getstr(sec, "format");
    int f = one_of(format, formats);
    if (f < 0)
        add_error(L, rec_where(L, r, "format"),
                  "%sformat \"%s\" is not json, alertmanager, dingtalk or wecom", ctx, format);
    rt->format = is_mail ? CONF_FMT_MAIL : f < 0 ? CONF_FMT_JSON : (conf_format)f;
    if (is_mail && strcmp(format, "json") != 0)
        add_error(L, rec_where(L, r, "format"), "%sformat is for web hooks, not for mail", ctx);

    unsigned n = cfg_size(sec, "to");
    if (is_mail && n == 0)
        add_error(L, rec_where(L, r, NULL), "%sto is missing: the mail recipients", ctx);
    if (!is_mail && n)
        add_error(L, rec_where(L, r, "to"), "%sto is for mail (with smtp_url)", ctx);
    if (n && (rt->to = calloc(n, sizeof(*rt->to))) == NULL)
        out_of_memory(L);
    for (unsigned i = 0; rt->to && i < n; i++) {
        const char *a = cfg_getnstr(sec, "to", i);
        if (!a || !mail_valid(a))
            add_error(L, rec_where(L, r, "to"), "%sto: \"%s\" is not a mail address", ctx,
                      a ? a : "");
        else
            rt->to[rt->n_to++] = xstrdup(L, a);
    }
    const char *from = cfg_getstr(sec, "from");
    if (from && !mail_valid(from))
        add_error(L, rec_where(L, r, "from"), "%sfrom: \"%s\" is not a mail address", ctx, from);
    else if (from)
        rt->from = xstrdup(L, from);

    build_id_list(L, sec, r, ctx, "parks", cat, true, &rt->parks, &rt->n_parks);
    build_id_list(L, sec, r, ctx, "indicators", cat, false, &rt->indicators, &rt->n_indicators);
    const char *min = cfg_getstr(sec, "min_status");
    if (min && one_of(min, statuses) < 0)
        add_error(L, rec_where(L, r, "min_status"),
                  "%smin_status \"%s\" is not warning, critical or stale", ctx, min);
    else if (min)
        rt->min_status = xstrdup(L, min);
    long timeout = cfg_getint(sec, "timeout");
    check_range(L, rec_where(L, r, "timeout"), ctx, "timeout", timeout, 1, 300);
    rt->timeout = (int)(timeout >= 1 && timeout <= 300 ? timeout : 10);
}

static void build_notify(struct loader *L, cfg_t *root, pp_config *c)
{
    static const char *const web[] = {"http://", "https://", NULL};
    cfg_t *sec = cfg_getsec(root, "notify");
    int r = rec_find(L, K_NOTIFY, NULL, -1);
    const char *ctx = "notify: ";
    conf_notify *nt = &c->notify;

    const char *dir = cfg_getstr(sec, "state_dir");
    check_path(L, rec_where(L, r, "state_dir"), ctx, "state_dir", dir);
    nt->state_dir = copy_opt_str(L, sec, "state_dir");
    static const char *const urls[] = {"base_url", "api_url"};
    for (size_t i = 0; i < 2; i++) {
        const char *u = cfg_getstr(sec, urls[i]);
        if (u && !url_valid(u, web))
            add_error(L, rec_where(L, r, urls[i]), "notify: %s \"%s\" is not an http:// or "
                      "https:// URL", urls[i], u);
    }
    nt->base_url = copy_opt_str(L, sec, "base_url");
    nt->api_url = copy_opt_str(L, sec, "api_url");
    long retry = cfg_getint(sec, "retry_max");
    check_range(L, rec_where(L, r, "retry_max"), ctx, "retry_max", retry, 1, 86400);
    nt->retry_max = (int)(retry >= 1 && retry <= 86400 ? retry : 300);

    unsigned n = cfg_size(sec, "route");
    if (n && !(nt->routes = calloc(n, sizeof(*nt->routes)))) {
        out_of_memory(L);
        return;
    }
    nt->n_routes = n;
    for (unsigned i = 0; i < n; i++)
        build_route(L, cfg_getnsec(sec, "route", i), r, &c->catalog, &nt->routes[i]);
}

/* ---- peer groups (README "Peer groups and rankings") ----------------------- */

/* group "ID" { label = "…" }: an id of the park id syntax, not "all" (the
 * implicit group of every park), with a label. */
static void build_group(struct loader *L, cfg_t *sec, conf_group *g)
{
    char ctx[PP_ID_MAX + 32];
    int r = section_begin(L, sec, K_GROUP, -1, "group", "id", g->id, ctx);
    g->line = rec_where(L, r, NULL).line;
    if (strcmp(g->id, "all") == 0) {
        add_error(L, rec_where(L, r, NULL),
                  "group \"all\" is implicit (every park is in it): choose another id");
        g->id[0] = '\0';
    }
    const char *label = cfg_getstr(sec, "label");
    if (!label)
        add_error(L, rec_where(L, r, NULL), "%slabel is missing (e.g. 省内国家级经开区)", ctx);
    else if (check_text(L, rec_where(L, r, "label"), ctx, "label", label, CONF_TEXT_MAX))
        g->label = xstrdup(L, label);
}

/* groups = {…} of each park: every id a defined group ("all" is implied and
 * may be written); each group gets its parks in declaration order. */
static void build_memberships(struct loader *L, cfg_t *root, pp_config *c)
{
    unsigned np = cfg_size(root, "park");
    for (size_t k = 0; k < c->n_groups; k++)
        if (np && !(c->groups[k].parks = calloc(np, sizeof(*c->groups[k].parks)))) {
            out_of_memory(L);
            return;
        }
    for (unsigned i = 0; i < np; i++) {
        cfg_t *sec = cfg_getnsec(root, "park", i);
        const char *pid = cfg_title(sec);
        int r = rec_find(L, K_PARK, pid, -1);
        unsigned n = cfg_size(sec, "groups");
        for (unsigned j = 0; j < n; j++) {
            const char *gid = cfg_getnstr(sec, "groups", j);
            if (gid && strcmp(gid, "all") == 0)
                continue;
            conf_group *g = NULL;
            for (size_t k = 0; gid && k < c->n_groups; k++)
                if (strcmp(c->groups[k].id, gid) == 0)
                    g = &c->groups[k];
            if (!g) {
                add_error(L, rec_where(L, r, "groups"),
                          "park \"%.*s\": groups: no group \"%s\" is defined "
                          "(define it: group \"%s\" { label = \"…\" })",
                          PP_ID_MAX, pid, gid ? gid : "", gid ? gid : "");
                continue;
            }
            if (g->n_parks == 0 || g->parks[g->n_parks - 1] != i) /* once, however often written */
                g->parks[g->n_parks++] = i;
        }
    }
}

const conf_group *conf_group_find(const pp_config *c, const char *id)
{
    for (size_t k = 0; c && id && k < c->n_groups; k++)
        if (strcmp(c->groups[k].id, id) == 0)
            return &c->groups[k];
    return NULL;
}

bool conf_group_has(const conf_group *g, size_t park)
{
    if (g == NULL)
        return true;
    for (size_t i = 0; i < g->n_parks; i++)
        if (g->parks[i] == park)
            return true;
    return false;
}

/* Whether section b (of kind, called what) repeats the text of key (its
 * label or name) of an earlier section a: then the error, naming both. */
static bool repeated_text(struct loader *L, enum sec_kind kind, const char *what, const char *key,
                          const char *a_id, const char *a_text, const char *b_id,
                          const char *b_text)
{
    if (!a_text || !b_text || strcmp(a_text, b_text) != 0)
        return false;
    where first = rec_where(L, rec_find(L, kind, a_id, -1), key);
    add_error(L, rec_where(L, rec_find(L, kind, b_id, -1), key),
              "%s \"%s\": %s \"%s\" is already the %s of \"%s\" (%s:%d)", what, b_id, key,
              b_text, key, a_id, first.file, first.line);
    return true;
}

static pp_config *build(struct loader *L, cfg_t *root)
{
    pp_config *c = calloc(1, sizeof(*c));
    if (!c) {
        out_of_memory(L);
        return NULL;
    }
    c->file = xstrdup(L, L->main_file);
    build_global(L, root, c);
    build_http(L, root, c);
    build_bus(L, root, c);

    pp_catalog *cat = &c->catalog;
    unsigned n = cfg_size(root, "indicator");
    if (n && !(cat->indicators = calloc(n, sizeof(*cat->indicators))))
        goto oom;
    cat->n_indicators = n;
    for (unsigned i = 0; i < n; i++)
        build_indicator(L, cfg_getnsec(root, "indicator", i), &cat->indicators[i]);
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < i; j++) {
            const pp_indicator *a = &cat->indicators[j], *b = &cat->indicators[i];
            if (repeated_text(L, K_INDICATOR, "indicator", "label", a->id, a->label, b->id,
                              b->label))
                break;
        }

    n = cfg_size(root, "park");
    if (n && !(cat->parks = calloc(n, sizeof(*cat->parks))))
        goto oom;
    cat->n_parks = n;
    for (unsigned i = 0; i < n; i++)
        build_park(L, cfg_getnsec(root, "park", i), cat, &cat->parks[i]);
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < i; j++) {
            const pp_park *a = &cat->parks[j], *b = &cat->parks[i];
            if (repeated_text(L, K_PARK, "park", "name", a->id, a->name, b->id, b->name))
                break;
        }

    n = cfg_size(root, "group");
    if (n && !(c->groups = calloc(n, sizeof(*c->groups))))
        goto oom;
    c->n_groups = n;
    for (unsigned i = 0; i < n; i++)
        build_group(L, cfg_getnsec(root, "group", i), &c->groups[i]);
    build_memberships(L, root, c);

    if (pp_catalog_index_build(cat) != 0)
        goto oom;

    n = cfg_size(root, "collector");
    if (n && !(c->collectors = calloc(n, sizeof(*c->collectors))))
        goto oom;
    c->n_collectors = n;
    for (unsigned i = 0; i < n; i++)
        build_collector(L, cfg_getnsec(root, "collector", i), &c->collectors[i]);
    build_notify(L, root, c);

    if (L->n_errors == 0 && !L->oom)
        return c;
    conf_free(c);
    return NULL;
oom:
    out_of_memory(L);
    conf_free(c);
    return NULL;
}

/* ---- public --------------------------------------------------------------- */

static void loader_free(struct loader *L)
{
    for (size_t i = 0; i < L->n_files; i++)
        free(L->files[i]);
    free(L->files);
    for (size_t i = 0; i < L->n_recs; i++)
        free(L->recs[i].title);
    free(L->recs);
}

pp_config *conf_load(const char *file, char *err, size_t errlen)
{
    struct loader L;
    cfg_t *root = NULL;
    pp_config *c = NULL;

    memset(&L, 0, sizeof(L));
    L.err = err;
    L.errlen = errlen;
    L.open_top = L.open_nested = -1;
    L.main_file = file && *file ? file : "(none)";
    if (err && errlen)
        err[0] = '\0';
    if (!file || !*file) {
        add_error(&L, (where){L.main_file, 0}, "no configuration file given");
        flush_errors(&L);
        return NULL;
    }

    pthread_mutex_lock(&conf_lock);
    conf_current = &L;
    if (rec_new(&L, K_ROOT, NULL, -1, intern_file(&L, file), 0) != 0)
        goto out;
    if (!(root = conf_schema())) {
        out_of_memory(&L);
        goto out;
    }
    L.root = root;
    if (parse_file(&L, root, file, (where){file, 0}) != 0) {
        if (L.has_pending) {
            L.n_errors++;
            keep_error(&L, (where){L.pending_file, L.pending_line}, L.pending);
        }
        if (L.n_errors == 0)
            add_error(&L, (where){file, 0}, "cannot be parsed");
        goto out;
    }
    c = build(&L, root);
out:
    if (root)
        cfg_free(root);
    flush_errors(&L);
    conf_current = NULL;
    pthread_mutex_unlock(&conf_lock);
    loader_free(&L);
    return c;
}

void conf_free(pp_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->file);
    free(cfg->timezone);
    free(cfg->state_dir);
    free(cfg->plugin_dir);
    free(cfg->dashboard_dir);
    free(cfg->http_listen);
    free(cfg->http_token_file);
    free(cfg->bus_publish);
    free(cfg->bus_curve_secret_key);
    free(cfg->bus_curve_clients);
    for (size_t i = 0; i < cfg->n_collectors; i++) {
        conf_collector *c = &cfg->collectors[i];
        free(c->plugin);
        free(c->user);
        for (size_t j = 0; j < c->n_options; j++) {
            free(c->options[j].key);
            free(c->options[j].value);
        }
        free(c->options);
    }
    free(cfg->collectors);
    free(cfg->notify.state_dir);
    free(cfg->notify.base_url);
    free(cfg->notify.api_url);
    for (size_t i = 0; i < cfg->notify.n_routes; i++) {
        conf_route *rt = &cfg->notify.routes[i];
        free(rt->url);
        free(rt->url_file);
        free(rt->smtp_url);
        free(rt->smtp_url_file);
        free(rt->from);
        free(rt->min_status);
        for (size_t j = 0; j < rt->n_parks; j++)
            free(rt->parks[j]);
        for (size_t j = 0; j < rt->n_indicators; j++)
            free(rt->indicators[j]);
        for (size_t j = 0; j < rt->n_to; j++)
            free(rt->to[j]);
        free(rt->parks);
        free(rt->indicators);
        free(rt->to);
    }
    free(cfg->notify.routes);
    for (size_t i = 0; i < cfg->catalog.n_indicators; i++) {
        free(cfg->catalog.indicators[i].label);
        free(cfg->catalog.indicators[i].unit);
    }
    pp_catalog_index_free(&cfg->catalog);
    free(cfg->catalog.indicators);
    for (size_t i = 0; i < cfg->catalog.n_parks; i++) {
        pp_park *p = &cfg->catalog.parks[i];
        free(p->name);
        free(p->level);
        free(p->type);
        free(p->region);
        free(p->thresholds);
    }
    free(cfg->catalog.parks);
    for (size_t i = 0; i < cfg->n_groups; i++) {
        free(cfg->groups[i].label);
        free(cfg->groups[i].parks);
    }
    free(cfg->groups);
    free(cfg);
}

const char *conf_collector_option(const conf_collector *c, const char *key)
{
    if (!c || !key)
        return NULL;
    for (size_t i = 0; i < c->n_options; i++)
        if (c->options[i].key && strcmp(c->options[i].key, key) == 0)
            return c->options[i].value;
    return NULL;
}

/* ---- the settings only a restart changes (config.h) ---- */

static const struct {
    const char *name;
    size_t offset;            /* of a char * member of pp_config */
} restart_only[] = {
    { "state_dir", offsetof(pp_config, state_dir) },
    { "timezone", offsetof(pp_config, timezone) },
    { "http.listen", offsetof(pp_config, http_listen) },
    { "bus.publish", offsetof(pp_config, bus_publish) },
};

static char **restart_only_at(pp_config *c, size_t i)
{
    return (char **)((char *)c + restart_only[i].offset);
}

static const char *restart_only_value(const pp_config *c, size_t i)
{
    return *(char *const *)((const char *)c + restart_only[i].offset);
}

size_t conf_restart_only_diff(const pp_config *a, const pp_config *b,
                              void (*changed)(const char *name, void *ud), void *ud)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof restart_only / sizeof restart_only[0]; i++) {
        const char *x = restart_only_value(a, i), *y = restart_only_value(b, i);
        if ((x == NULL) != (y == NULL) || (x && strcmp(x, y) != 0)) {
            n++;
            if (changed)
                changed(restart_only[i].name, ud);
        }
    }
    return n;
}

void conf_restart_only_swap(pp_config *a, pp_config *b)
{
    for (size_t i = 0; i < sizeof restart_only / sizeof restart_only[0]; i++) {
        char **x = restart_only_at(a, i), **y = restart_only_at(b, i);
        char *t = *x;
        *x = *y;
        *y = t;
    }
}
