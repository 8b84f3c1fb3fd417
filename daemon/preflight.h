/*
 * preflight.h — what start-up would refuse, checked before anything starts:
 * the state directory can be written, every collector's plugin loads, an exec
 * collector's command is an executable file (and, as root, has a user to run
 * as), and the HTTP and bus ports are free. parkpulsed runs these checks at
 * start-up and for `parkpulsed -t`; `parkpulse check-config` runs the same
 * function, so a file that passes the check also starts.
 */
#ifndef PP_PREFLIGHT_H
#define PP_PREFLIGHT_H

#include <stddef.h>

#include "config.h"

/* Checks cfg against the machine as the calling user. Each problem is
 * written into err as "file:line: message\n" (the line where the option or
 * collector section is, 0 when unknown), sorted by line. The ports are not
 * checked when a running parkpulsed holds cfg's state directory (it holds
 * them, too); *note (may be NULL) then says so in one line, else "".
 * Returns the number of problems (0: it would start). */
int preflight_check(const pp_config *cfg, char *err, size_t errlen, char *note, size_t notelen);

#endif
