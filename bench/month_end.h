/*
 * month_end.h — the RRD timestamp of a month for the bench's C programs
 * (rrd_loop.c, gen_journal.c): 00:00 UTC of the first day of the month after
 * (y, m), as the daemon stamps month M (README, Storage). Header only.
 */
#ifndef PP_BENCH_MONTH_END_H
#define PP_BENCH_MONTH_END_H

#include <time.h>

static long month_end(int y, int m)
{
    if (++m > 12) {
        m = 1;
        y++;
    }
    struct tm tm = { .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = 1 };
    return (long)timegm(&tm);
}

#endif
