/*
 * rrd_loop.c — baseline (b) of `make bench`: the in-process limit of putting
 * monthly figures into RRD files. For every CSV file named on stdin (one path
 * a line, rows park,indicator,YYYY-MM,value after a header) it reads the file,
 * turns its rows into "timestamp:value:U" arguments stamped like parkpulse
 * does (00:00 UTC of the 1st of the next month) and calls rrd_update_r once.
 * No journal, no validation, no fsync: only what librrd needs.
 *
 *   rrd_loop OUTDIR create   < list   time rrd_create_r2 + rrd_update_r per file
 *   rrd_loop OUTDIR prepare  < list   rrd_create_r2 only (untimed set-up)
 *   rrd_loop OUTDIR update   < list   time rrd_update_r on prepared files
 *
 * Prints "<seconds> <files> <values>" for the timed part.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <rrd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "month_end.h"

#define MAX_ROWS 4096
#define ARG_MAX_LEN 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int create(const char *path)
{
    static const char *defs[] = { "DS:value:GAUGE:3456000:U:U", "DS:pace:GAUGE:3456000:U:U",
                                  "RRA:LAST:0.5:1:7400" };
    /* start: 2011-12-01, before any bench month */
    return rrd_create_r2(path, 86400, 1322697600, 1, NULL, NULL, 3, defs);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: rrd_loop OUTDIR create|prepare|update < list\n");
        return 2;
    }
    const char *outdir = argv[1], *mode = argv[2];
    int do_create = strcmp(mode, "update") != 0, do_update = strcmp(mode, "prepare") != 0;
    static char args[MAX_ROWS][ARG_MAX_LEN];
    static const char *av[MAX_ROWS];
    char line[4096], path[4096], rrd[4096];
    long files = 0, values = 0;
    double t0 = now_s();

    while (fgets(path, sizeof path, stdin)) {
        path[strcspn(path, "\n")] = '\0';
        FILE *f = fopen(path, "r");
        if (f == NULL) {
            perror(path);
            return 1;
        }
        int n = 0;
        if (fgets(line, sizeof line, f) == NULL) { /* header */
            fclose(f);
            continue;
        }
        while (n < MAX_ROWS && fgets(line, sizeof line, f)) {
            char *park = strtok(line, ","), *ind = strtok(NULL, ","), *per = strtok(NULL, ","),
                 *val = strtok(NULL, ",\r\n");
            int y, m;
            if (!park || !ind || !per || !val || sscanf(per, "%d-%d", &y, &m) != 2)
                continue;
            snprintf(args[n], ARG_MAX_LEN, "%ld:%s:U", month_end(y, m), val);
            av[n] = args[n];
            n++;
        }
        fclose(f);
        const char *base = strrchr(path, '/');
        if (snprintf(rrd, sizeof rrd, "%s/%s.rrd", outdir, base ? base + 1 : path) >= (int)sizeof rrd) {
            fprintf(stderr, "%s: path too long\n", path);
            return 1;
        }
        if (do_create && create(rrd) != 0) {
            fprintf(stderr, "%s: %s\n", rrd, rrd_get_error());
            return 1;
        }
        if (do_update && rrd_update_r(rrd, NULL, n, av) != 0) {
            fprintf(stderr, "%s: %s\n", rrd, rrd_get_error());
            return 1;
        }
        files++;
        values += n;
    }
    printf("%.6f %ld %ld\n", now_s() - t0, files, values);
    return 0;
}
