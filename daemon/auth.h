/*
 * auth.h — who may write: the bearer token of the writes (POST
 * /api/v1/observations, the silences, a retraction) checked against the one
 * line of http.token_file (README, "Feeding figures"). The file is read at
 * every check, so a new token needs no reload; without a token file writes
 * are refused with 403. The comparison takes the same time whatever the
 * presented token shares with the right one.
 *
 * api_authorize (api.h) is the entry point for http.c and the routes: it
 * takes the configuration lock and calls auth_check.
 */
#ifndef PP_AUTH_H
#define PP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "api.h"

#define AUTH_TOKEN_MAX 4096 /* bytes of a token file that are read */

/* Reads the token of file into tok (len bytes; trailing blanks and line ends
 * cut). Returns 0; -ENOENT when there is none (file NULL or "", or no such
 * file: writes are disabled); -ENODATA when the file holds no token; another
 * -errno when it cannot be read. */
int auth_read_token(const char *file, char *tok, size_t len);

/* true when got is want, compared in constant time (of want's length). */
bool auth_token_matches(const char *want, const char *got);

/* Checks an Authorization header ("Bearer <token>", may be NULL) against
 * token_file. Returns 0 when it may write; otherwise fills resp and returns
 * a -errno: -EPERM with 403 (writes are disabled: no token file), -EACCES
 * with 401 and WWW-Authenticate (a missing or wrong bearer token), the
 * token file's error with 503 (it cannot be read, or holds no token). */
int auth_check(const char *token_file, const char *authorization, api_response *resp);

#endif
