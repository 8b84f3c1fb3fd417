/*
 * exec_check.h — the checks of an exec collector's command that both the exec
 * collector (collectors/exec.c, at init) and the daemon's preflight
 * (daemon/preflight.c: `parkpulsed -t`, `parkpulse check-config`, start-up)
 * make, so that a configuration the daemon would refuse is refused by the
 * checker with the same words. Static inline: the collector exports nothing
 * more, and it is not part of the plugin ABI.
 */
#ifndef PP_EXEC_CHECK_H
#define PP_EXEC_CHECK_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXEC_MAX_ARGS 256

static inline void exec_free_vector(char **v)
{
    if (!v)
        return;
    for (char **p = v; *p; p++)
        free(*p);
    free(v);
}

/*
 * Splits a command line into a NULL-terminated, malloc'd argv: words are
 * separated by blanks; "…" groups blanks into a word (\" and \\ inside).
 * Returns 0, or -1 with the reason in err.
 */
static inline int exec_split_command(const char *cmd, char ***out, char *err, size_t errsz)
{
    size_t n = 0, cmdlen = strlen(cmd);
    char **argv = calloc(EXEC_MAX_ARGS + 1, sizeof *argv);
    char *word = malloc(cmdlen + 1);
    const char *p = cmd;

    if (!argv || !word) {
        snprintf(err, errsz, "out of memory");
        goto fail;
    }
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        size_t wl = 0;
        bool quoted = false;
        for (; *p && (quoted || (*p != ' ' && *p != '\t')); p++) {
            if ((unsigned char)*p < 0x20 && *p != '\t') {
                snprintf(err, errsz, "control character in the command");
                goto fail;
            }
            if (*p == '"') {
                quoted = !quoted;
            } else if (quoted && *p == '\\' && (p[1] == '"' || p[1] == '\\')) {
                word[wl++] = *++p;
            } else {
                word[wl++] = *p;
            }
        }
        if (quoted) {
            snprintf(err, errsz, "unterminated \" in the command");
            goto fail;
        }
        if (n == EXEC_MAX_ARGS) {
            snprintf(err, errsz, "more than %d arguments", EXEC_MAX_ARGS);
            goto fail;
        }
        argv[n] = strndup(word, wl);
        if (!argv[n]) {
            snprintf(err, errsz, "out of memory");
            goto fail;
        }
        n++;
    }
    if (n == 0) {
        snprintf(err, errsz, "the command is empty");
        goto fail;
    }
    free(word);
    *out = argv;
    return 0;
fail:
    free(word);
    exec_free_vector(argv);
    return -1;
}

/* Checks that path (argv[0] of command) is an absolute path to an executable
 * regular file. Returns 0 with *st filled, or -1 with the reason in why. */
static inline int exec_check_program(const char *command, const char *path, struct stat *st,
                                     char *why, size_t whysz)
{
    if (path[0] != '/') {
        snprintf(why, whysz, "command \"%s\" must start with an absolute path", command);
        return -1;
    }
    if (stat(path, st) < 0) {
        snprintf(why, whysz, "command %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st->st_mode)) {
        snprintf(why, whysz, "command %s is not a regular file", path);
        return -1;
    }
    if ((st->st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0 || access(path, X_OK) < 0) {
        snprintf(why, whysz, "command %s is not executable", path);
        return -1;
    }
    return 0;
}

#endif
