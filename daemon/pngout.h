/*
 * pngout.h — the PNG writer under librrd's graphs (see pngout.c): it takes
 * the place of cairo_surface_write_to_png_stream in this program.
 */
#ifndef PP_PNGOUT_H
#define PP_PNGOUT_H

#include <stdbool.h>

/* Looks cairo's functions up (once; later calls return at once). store_graph
 * calls it before rendering, which also links this file into every program
 * that renders graphs. Thread-safe. */
void pngout_arm(void);

/* false: PNG graphs are encoded by cairo's own function (for tests that
 * compare the two); true (the default): by pngout.c. Thread-safe. */
void pngout_enable(bool on);

#endif
