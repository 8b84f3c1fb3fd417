/*
 * json_check.c — strict JSON validation for fuzz_api.c with jansson (the
 * client's parser), in a file of its own: jansson's json_null() and the
 * daemon's json.h cannot share a translation unit.
 */
#include "json_check.h"

#include <jansson.h>
#include <stdio.h>

bool fuzz_json_valid(const char *s, size_t len, char *why, size_t whylen)
{
    json_error_t err;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (j == NULL) {
        snprintf(why, whylen, "%s at line %d column %d", err.text, err.line, err.column);
        return false;
    }
    json_decref(j);
    return true;
}
