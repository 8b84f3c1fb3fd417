/*
 * pngout.c — the PNG writer under librrd's graphs (README, HTTP API graphs).
 *
 * librrd 1.7 draws a PNG graph on a cairo image surface and hands it to
 * cairo_surface_write_to_png_stream, which encodes it with libpng's
 * defaults: every filter tried on every row, zlib level 6. For an 800×300
 * graph (an 890×415 image, nine tenths white) that was over half of a
 * render's time, measured with perf: libz 31%, libpng 24%.
 *
 * This file defines cairo_surface_write_to_png_stream itself. The daemon's
 * executable is linked against librrd, which calls that function through its
 * PLT, so the dynamic linker binds librrd's calls to this definition (the
 * executable comes first in symbol lookup; ld exports it because a shared
 * library refers to it). It writes an opaque 8-bit RGB PNG — the same
 * pixels as cairo's writer, which also writes RGB for an opaque surface —
 * with one filter per row: "Up" when the row repeats the one above (it
 * becomes all zeros), none otherwise, and zlib at level PNGOUT_LEVEL: about
 * a fifth of libpng's time and a smaller file. The bytes depend only on the
 * pixels, so the same graph gives the same PNG each time (graph.c's ETags).
 *
 * Anything else — not an image surface, a format other than ARGB32/RGB24,
 * a pixel that is not opaque, cairo's accessors not found, or the writer
 * turned off with pngout_enable(false) (tests compare both) — goes to
 * cairo's own function, found with dlsym(RTLD_NEXT). The cairo accessors
 * are looked up at run time (dlsym in the already-loaded libcairo), so
 * there is no link or header dependency on cairo. Errors: cairo's status
 * values (0 success, 1 no memory, 11 write error).
 */
#include "pngout.h"

#include "log.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define PNGOUT_LEVEL 3 /* zlib level: measured 1..6, 3 was as fast as 1 and smaller */

/* The few cairo types and values used (cairo.h, stable ABI since 1.0). */
typedef struct _cairo_surface cairo_surface_t;
typedef int cairo_status_t;
typedef cairo_status_t (*cairo_write_func_t)(void *closure, const unsigned char *data,
                                             unsigned int length);
enum { CAIRO_OK = 0, CAIRO_NO_MEMORY = 1, CAIRO_WRITE_ERROR = 11 };
enum { CAIRO_ARGB32 = 0, CAIRO_RGB24 = 1 };
enum { CAIRO_TYPE_IMAGE = 0 };

cairo_status_t cairo_surface_write_to_png_stream(cairo_surface_t *surface,
                                                 cairo_write_func_t write_func, void *closure);

static struct {
    cairo_status_t (*next)(cairo_surface_t *, cairo_write_func_t, void *);
    int (*status)(cairo_surface_t *);
    int (*type)(cairo_surface_t *);
    void (*flush)(cairo_surface_t *);
    int (*format)(cairo_surface_t *);
    int (*width)(cairo_surface_t *);
    int (*height)(cairo_surface_t *);
    int (*stride)(cairo_surface_t *);
    unsigned char *(*data)(cairo_surface_t *);
    bool ours;               /* every accessor found */
} cairo;

static pthread_once_t pngout_once = PTHREAD_ONCE_INIT;
static atomic_bool pngout_off;

#define PNGOUT_SYM(field, name) (*(void **)&cairo.field = dlsym(RTLD_DEFAULT, name))

static void pngout_resolve(void)
{
    *(void **)&cairo.next = dlsym(RTLD_NEXT, "cairo_surface_write_to_png_stream");
    PNGOUT_SYM(status, "cairo_surface_status");
    PNGOUT_SYM(type, "cairo_surface_get_type");
    PNGOUT_SYM(flush, "cairo_surface_flush");
    PNGOUT_SYM(format, "cairo_image_surface_get_format");
    PNGOUT_SYM(width, "cairo_image_surface_get_width");
    PNGOUT_SYM(height, "cairo_image_surface_get_height");
    PNGOUT_SYM(stride, "cairo_image_surface_get_stride");
    PNGOUT_SYM(data, "cairo_image_surface_get_data");
    cairo.ours = cairo.status && cairo.type && cairo.flush && cairo.format && cairo.width &&
                 cairo.height && cairo.stride && cairo.data;
    if (cairo.next == NULL)
        log_err("graph", "cairo_surface_write_to_png_stream: cairo's own not found: %s",
                dlerror());
    else if (!cairo.ours)
        log_warn("graph", "cairo's image accessors not found: PNG graphs encoded by cairo");
}

void pngout_arm(void) { pthread_once(&pngout_once, pngout_resolve); }

void pngout_enable(bool on) { atomic_store(&pngout_off, !on); }

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* Completes the chunk of n data bytes whose length field is at c: its
 * length and CRC (over type and data). Returns the bytes it spans. */
static size_t chunk_close(unsigned char *c, size_t n)
{
    put32(c, (uint32_t)n);
    uLong crc = crc32(crc32(0L, Z_NULL, 0), c + 4, (uInt)(n + 4));
    put32(c + 8 + n, (uint32_t)crc);
    return 12 + n;
}

/* Encodes w x h native-endian 0xAARRGGBB pixels (opaque) as a PNG into a
 * malloc'd *out. Returns 0, or -1 (out of memory; zlib failed). */
static int pngout_encode(const unsigned char *pix, int w, int h, int stride, unsigned char **out,
                         size_t *out_len)
{
    size_t row_len = (size_t)w * 3 + 1;
    unsigned char *row = malloc(row_len);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (row == NULL)
        return -1;
    if (deflateInit2(&z, PNGOUT_LEVEL, Z_DEFLATED, 15, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
        free(row);
        return -1;
    }
    size_t bound = deflateBound(&z, (uLong)(row_len * (size_t)h));
    size_t cap = 8 + 25 + 12 + bound + 12;
    unsigned char *png = malloc(cap);
    if (png == NULL) {
        deflateEnd(&z);
        free(row);
        return -1;
    }
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    unsigned char *ihdr = png + 8;
    memcpy(ihdr + 4, "IHDR", 4);
    put32(ihdr + 8, (uint32_t)w);
    put32(ihdr + 12, (uint32_t)h);
    memcpy(ihdr + 16, "\x08\x02\x00\x00\x00", 5); /* 8 bits, RGB, deflate, adaptive, no interlace */
    size_t at = 8 + chunk_close(ihdr, 13);
    unsigned char *idat = png + at;
    memcpy(idat + 4, "IDAT", 4);
    z.next_out = idat + 8;
    z.avail_out = (uInt)bound;
    int zrc = Z_OK;
    for (int y = 0; y < h && zrc == Z_OK; y++) {
        const uint32_t *src = (const uint32_t *)(const void *)(pix + (size_t)y * stride);
        if (y > 0 && memcmp(src, pix + (size_t)(y - 1) * stride, (size_t)w * 4) == 0) {
            row[0] = 2; /* Up: the same row again, all zeros */
            memset(row + 1, 0, row_len - 1);
        } else {
            row[0] = 0;
            unsigned char *d = row + 1;
            for (int x = 0; x < w; x++, d += 3) {
                uint32_t p = src[x];
                d[0] = (unsigned char)(p >> 16);
                d[1] = (unsigned char)(p >> 8);
                d[2] = (unsigned char)p;
            }
        }
        z.next_in = row;
        z.avail_in = (uInt)row_len;
        zrc = deflate(&z, y == h - 1 ? Z_FINISH : Z_NO_FLUSH);
    }
    size_t zlen = z.total_out;
    deflateEnd(&z);
    free(row);
    if (zrc != Z_STREAM_END) {
        free(png);
        return -1;
    }
    at += chunk_close(idat, zlen);
    memcpy(png + at + 4, "IEND", 4);
    at += chunk_close(png + at, 0);
    *out = png;
    *out_len = at;
    return 0;
}

/* True when every pixel of an ARGB32 surface has alpha 0xFF. */
static bool pngout_opaque(const unsigned char *pix, int w, int h, int stride)
{
    for (int y = 0; y < h; y++) {
        const uint32_t *src = (const uint32_t *)(const void *)(pix + (size_t)y * stride);
        uint32_t all = 0xff000000u;
        for (int x = 0; x < w; x++)
            all &= src[x];
        if (all != 0xff000000u)
            return false;
    }
    return true;
}

cairo_status_t cairo_surface_write_to_png_stream(cairo_surface_t *surface,
                                                 cairo_write_func_t write_func, void *closure)
{
    pngout_arm();
    if (cairo.ours && !atomic_load(&pngout_off) && cairo.status(surface) == CAIRO_OK &&
        cairo.type(surface) == CAIRO_TYPE_IMAGE) {
        cairo.flush(surface);
        int fmt = cairo.format(surface), w = cairo.width(surface), h = cairo.height(surface);
        int stride = cairo.stride(surface);
        const unsigned char *pix = cairo.data(surface);
        if (pix != NULL && w > 0 && h > 0 && stride >= w * 4 &&
            (fmt == CAIRO_RGB24 || (fmt == CAIRO_ARGB32 && pngout_opaque(pix, w, h, stride)))) {
            unsigned char *png = NULL;
            size_t len = 0;
            if (pngout_encode(pix, w, h, stride, &png, &len) != 0)
                return CAIRO_NO_MEMORY;
            cairo_status_t rc = len <= UINT32_MAX && write_func(closure, png, (unsigned)len) == CAIRO_OK
                                    ? CAIRO_OK
                                    : CAIRO_WRITE_ERROR;
            free(png);
            return rc;
        }
    }
    if (cairo.next == NULL)
        return CAIRO_WRITE_ERROR;
    return cairo.next(surface, write_func, closure);
}
