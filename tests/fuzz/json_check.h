/* json_check.h — see json_check.c. */
#ifndef PP_FUZZ_JSON_CHECK_H
#define PP_FUZZ_JSON_CHECK_H

#include <stdbool.h>
#include <stddef.h>

/* true when s[0..len) is one JSON text; else a reason in why. */
bool fuzz_json_valid(const char *s, size_t len, char *why, size_t whylen);

#endif
