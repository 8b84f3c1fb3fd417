/*
 * replay_main.c — runs a fuzz harness without libFuzzer: every file in the
 * given directories (or the given files) goes once through
 * LLVMFuzzerTestOneInput, after LLVMFuzzerInitialize. `make check` builds each
 * harness with it (gcc, the normal or the ASan/UBSan flags) and replays the
 * committed inputs of tests/fuzz/{seeds,corpus,crashes}/<harness>/ (replay.sh),
 * so that every input that once crashed stays a regression test.
 *
 * A harness reports a broken invariant by aborting, and a sanitizer ends the
 * process, so the first failing file ends the run: its name is then printed
 * (from a signal handler, or from the sanitizers' death callback). Otherwise
 * it prints "fuzz-replay: <harness>: N passed, 0 failed". An empty run (no
 * file found) fails.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

/* in the sanitizer runtime when the harness is built with one */
void __sanitizer_set_death_callback(void (*callback)(void)) __attribute__((weak));

static char current[PATH_MAX + 64] = "(none)";

static void say_current(void)
{
    static const char pre[] = "fuzz-replay: FAILED at ";
    static volatile sig_atomic_t said;
    if (said)
        return; /* a sanitizer's death callback, then its abort() */
    said = 1;
    ssize_t r = write(2, pre, sizeof pre - 1);
    r = write(2, current, strlen(current));
    r = write(2, "\n", 1);
    (void)r;
}

static void on_fatal_signal(int sig)
{
    say_current();
    signal(sig, SIG_DFL);
    raise(sig);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0, n;
    do {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 8192;
            uint8_t *nb = realloc(buf, cap);
            if (nb == NULL) {
                fclose(f);
                free(buf);
                fprintf(stderr, "fuzz-replay: %s: out of memory\n", path);
                return -1;
            }
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(buf);
        fprintf(stderr, "fuzz-replay: %s: read error\n", path);
        return -1;
    }
    /* an exact-size copy, so that ASan sees a read past the input's end */
    uint8_t *exact = malloc(len ? len : 1);
    if (exact == NULL) {
        free(buf);
        return -1;
    }
    memcpy(exact, buf, len);
    free(buf);
    snprintf(current, sizeof current, "%s", path);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

/* Replays path (a file, or every regular file of a directory, sorted);
 * adds to *passed and *failed. */
static void replay(const char *path, unsigned *passed, unsigned *failed)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
        (*failed)++;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (replay_file(path) == 0)
            (*passed)++;
        else
            (*failed)++;
        return;
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "fuzz-replay: %s: %s\n", path, strerror(errno));
        (*failed)++;
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (nn == NULL)
                abort();
            names = nn;
        }
        size_t len = strlen(path) + strlen(e->d_name) + 2;
        names[n] = malloc(len);
        if (names[n] == NULL)
            abort();
        snprintf(names[n], len, "%s/%s", path, e->d_name);
        n++;
    }
    closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(names[i]) == 0)
                (*passed)++;
            else
                (*failed)++;
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    unsigned passed = 0, failed = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    signal(SIGABRT, on_fatal_signal); /* a broken invariant */
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(say_current); /* the sanitizers keep their handlers */
    } else {
        signal(SIGSEGV, on_fatal_signal);
        signal(SIGBUS, on_fatal_signal);
        signal(SIGFPE, on_fatal_signal);
    }
    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++)
        replay(argv[i], &passed, &failed);
    snprintf(current, sizeof current, "the end, after the last input (a leak?)");
    printf("fuzz-replay: %s: %u passed, %u failed\n", argv[0], passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
