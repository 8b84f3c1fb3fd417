/*
 * routes.h — the index of the HTTP routes that GET /api/v1 answers with:
 * one entry per route (method, path template, one line of what it answers),
 * the same list as docs/openapi.yaml, which a test compares with it.
 */
#ifndef PP_ROUTES_H
#define PP_ROUTES_H

/* The JSON document {"version","openapi","routes":[{"method","path","summary"}]},
 * NUL-terminated, static. */
const char *routes_index_json(void);

#endif
