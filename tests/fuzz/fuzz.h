/*
 * fuzz.h — what the fuzz harnesses of tests/fuzz/ share: the libFuzzer entry
 * points (also driven by replay_main.c, without libFuzzer), an assertion that
 * aborts with a message (so that libFuzzer keeps the input as a crash), an
 * independent UTF-8 validator written from the byte table of RFC 3629 §4, and
 * the configuration every harness reads: config/indicators.conf and the parks
 * of tests/fixtures/parks.conf, loaded once through conf_load().
 *
 * The harnesses run from the project root, or from $PP_FUZZ_ROOT.
 * Header-only: each harness is one file.
 */
#ifndef PP_FUZZ_H
#define PP_FUZZ_H

#include <ftw.h>
#include <sys/stat.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define FUZZ_ASSERT(cond, ...)                                                         \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                              \
            fputc('\n', stderr);                                                       \
            abort();                                                                   \
        }                                                                              \
    } while (0)

/* true when s[0..n) is well-formed UTF-8 (RFC 3629 §4 table; NUL allowed);
 * on false *bad (if not NULL) is the offset where the bad sequence starts. */
static inline bool fuzz_utf8(const void *p, size_t n, size_t *bad)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c == 0xE0)
            need = 2, lo = 0xA0;
        else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
            need = 2;
        else if (c == 0xED)
            need = 2, hi = 0x9F;
        else if (c == 0xF0)
            need = 3, lo = 0x90;
        else if (c >= 0xF1 && c <= 0xF3)
            need = 3;
        else if (c == 0xF4)
            need = 3, hi = 0x8F;
        else
            goto bad;
        if (n - i <= need || s[i + 1] < lo || s[i + 1] > hi)
            goto bad;
        for (size_t k = 2; k <= need; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                goto bad;
        i += need + 1;
    }
    return true;
bad:
    if (bad)
        *bad = i;
    return false;
}

static inline bool fuzz_utf8_str(const char *s) { return fuzz_utf8(s, strlen(s), NULL); }

/* A NUL-terminated copy of the input (the harness frees it). */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static char fuzz_dir[PATH_MAX];

static inline int fuzz_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void fuzz_rm_dir(void)
{
    if (fuzz_dir[0] != '\0')
        nftw(fuzz_dir, fuzz_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The project root: $PP_FUZZ_ROOT or the working directory. */
static inline const char *fuzz_root(char *buf, size_t len)
{
    const char *r = getenv("PP_FUZZ_ROOT");
    if (r != NULL && r[0] != '\0')
        return r;
    if (getcwd(buf, len) == NULL) {
        perror("fuzz: getcwd");
        exit(1);
    }
    return buf;
}

/* Loads the harnesses' configuration from a temporary directory (removed at
 * exit), which is also its state_dir; extra is appended to the file. Exits
 * when anything fails: a harness without its configuration tests nothing. */
static inline pp_config *fuzz_config(const char *extra)
{
    char rootbuf[PATH_MAX], conf[PATH_MAX + 32], err[4096];
    const char *root = fuzz_root(rootbuf, sizeof rootbuf);
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/pp-fuzz.XXXXXX", base);
    if (mkdtemp(fuzz_dir) == NULL) {
        perror("fuzz: mkdtemp");
        exit(1);
    }
    atexit(fuzz_rm_dir);
    snprintf(conf, sizeof conf, "%s/parkpulse.conf", fuzz_dir);
    FILE *f = fopen(conf, "w");
    if (f == NULL) {
        perror(conf);
        exit(1);
    }
    fprintf(f,
            "timezone = \"Asia/Shanghai\"\n"
            "state_dir = \"%s\"\n"
            "dashboard_dir = \"%s/dashboards\"\n"
            "include(\"%s/config/indicators.conf\")\n"
            "include(\"%s/tests/fixtures/parks.conf\")\n%s",
            fuzz_dir, root, root, root, extra ? extra : "");
    if (fclose(f) != 0) {
        perror(conf);
        exit(1);
    }
    pp_config *cfg = conf_load(conf, err, sizeof err);
    if (cfg == NULL) {
        fprintf(stderr, "fuzz: cannot load the configuration (run from the project root "
                        "or set PP_FUZZ_ROOT):\n%s\n", err);
        exit(1);
    }
    return cfg;
}

#endif
