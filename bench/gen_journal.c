/*
 * gen_journal.c — writes the journal of a large deployment for the scale part
 * of `make bench` directly (delivering 15 million figures through the spool
 * would take the bench many minutes), in the format of daemon/journal.c:
 * exactly the lines the daemon writes for the same deliveries.
 *
 *   gen_journal FILE PARKS INDICATORS flat|history
 *
 * Parks are p0000.., indicators i00..; ten years (2012-01..2021-12) of
 * monthly figures. Every park delivers one file a month,
 * "spool/<park>-<YYYY>-<MM>.csv", journaled as its O lines then its D line,
 * received 10 days after the month (plus the park's number in seconds):
 *   flat     the file holds that month's figure of each indicator: every
 *            record is live (PARKS × INDICATORS × 120 figures);
 *   history  the same, and after each file the alert engine's two quiet
 *            state lines of each of its series (alert.c: the status, and
 *            the overdue flag "received"), as evaluation journals them: each
 *            replaced by the next month's, so that all but the last two of a
 *            series are superseded — what journal compaction drops.
 * Then one target a series for 2021 ("spool/targets.csv").
 *
 * value(p, i, period) = ((p * 7919 + i * 104729 + period * 31) % 99991 + 10) / 10
 * (one decimal), period = year * 12 + month - 1; target(p, i) = 100 + (p + i) % 50.
 * bench.py computes the same to check what the daemon read back.
 * Prints "<records> <bytes>".
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "month_end.h"

static char *buf;
static size_t len, cap = 1 << 24;
static FILE *out;
static unsigned long long records;

static void flush_out(void)
{
    if (fwrite(buf, 1, len, out) != len) {
        perror("gen_journal: write");
        exit(1);
    }
    len = 0;
}

/* Appends the line in line[0..n) with its checksum and newline. */
static void line_end(const char *line, size_t n)
{
    if (len + n + 16 > cap)
        flush_out();
    uint32_t crc = (uint32_t)crc32(0L, (const unsigned char *)line, (uInt)n);
    memcpy(buf + len, line, n);
    len += n;
    len += (size_t)sprintf(buf + len, "\t%08x\n", crc);
    records++;
}

int main(int argc, char **argv)
{
    if (argc != 5 || (strcmp(argv[4], "flat") != 0 && strcmp(argv[4], "history") != 0)) {
        fprintf(stderr, "usage: gen_journal FILE PARKS INDICATORS flat|history\n");
        return 2;
    }
    int parks = atoi(argv[2]), inds = atoi(argv[3]);
    int history = strcmp(argv[4], "history") == 0;
    out = fopen(argv[1], "w");
    buf = malloc(cap);
    if (out == NULL || buf == NULL || parks <= 0 || inds <= 0 || inds > 100) {
        perror("gen_journal");
        return 1;
    }
    fputs("#parkpulse-journal 1\n", out);
    char line[512];
    for (int y = 2012; y <= 2021; y++) {
        for (int m = 1; m <= 12; m++) {
            for (int p = 0; p < parks; p++) {
                long at = month_end(y, m) + 10 * 86400 + p;
                char src[64];
                snprintf(src, sizeof src, "spool/p%04d-%04d-%02d.csv", p, y, m);
                for (int i = 0; i < inds; i++) {
                    {
                        int mm = m;
                        long per = (long)y * 12 + mm - 1;
                        long v = ((long)p * 7919 + (long)i * 104729 + per * 31) % 99991 + 10;
                        int n = snprintf(line, sizeof line,
                                         "O\t%ld\tp%04d\ti%02d\t%04d-%02d\t%ld.%ld\tA\t%s\t", at, p,
                                         i, y, mm, v / 10, v % 10, src);
                        /* a whole number prints without ".0", as the daemon writes it */
                        if (v % 10 == 0)
                            n = snprintf(line, sizeof line,
                                         "O\t%ld\tp%04d\ti%02d\t%04d-%02d\t%ld\tA\t%s\t", at, p, i,
                                         y, mm, v / 10, src);
                        line_end(line, (size_t)n);
                    }
                }
                uint64_t h = 14695981039346656037ull;
                for (const char *c = src; *c; c++)
                    h = (h ^ (unsigned char)*c) * 1099511628211ull;
                int n = snprintf(line, sizeof line, "D\t%ld\t%016llx\t%d\t%s", at,
                                 (unsigned long long)h, 40 + inds * 30, src);
                line_end(line, (size_t)n);
                for (int i = 0; history && i < inds; i++) {
                    n = snprintf(line, sizeof line, "E\tstate p%04d i%02d %04d-%02d %s", p, i, y, m,
                                 (p + i + m) % 3 ? "ok" : "warning");
                    line_end(line, (size_t)n);
                    n = snprintf(line, sizeof line, "E\tstate p%04d i%02d %04d-%02d received", p,
                                 i, y, m);
                    line_end(line, (size_t)n);
                }
            }
        }
    }
    long at = month_end(2022, 0);
    for (int p = 0; p < parks; p++)
        for (int i = 0; i < inds; i++) {
            int n = snprintf(line, sizeof line, "T\t%ld\tp%04d\ti%02d\t2021\t%d\tspool/targets.csv",
                             at, p, i, 100 + (p + i) % 50);
            line_end(line, (size_t)n);
        }
    flush_out();
    long bytes = ftell(out);
    if (fclose(out) != 0) {
        perror("gen_journal: close");
        return 1;
    }
    printf("%llu %ld\n", records, bytes);
    return 0;
}
