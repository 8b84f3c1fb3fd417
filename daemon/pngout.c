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
 * library refers to it). It encodes with libpng, as cairo does, an opaque
 * 8-bit RGB PNG — the same pixels as cairo's writer, which also writes RGB
 * for an opaque surface — but lets libpng try only the None and Up filters
 * (Up turns a row that repeats the one above into zeros: most rows of a
 * graph) with zlib at level PNGOUT_LEVEL, instead of every filter at level
 * 6. The bytes depend only on the pixels, so the same graph gives the same
 * PNG each time (graph.c's ETags).
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
#include <png.h>
#include <setjmp.h>

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

/* libpng's write callback: appends to the caller's cairo stream. */
typedef struct {
    cairo_write_func_t write_func;
    void *closure;
    bool failed;
} pngout_sink;

static void pngout_write(png_structp png, png_bytep data, size_t len)
{
    pngout_sink *sink = png_get_io_ptr(png);
    if (!sink->failed && (len > UINT32_MAX ||
                          sink->write_func(sink->closure, data, (unsigned)len) != CAIRO_OK))
        sink->failed = true;
}

static void pngout_flush(png_structp png) { (void)png; }

/* Encodes w x h native-endian 0xAARRGGBB pixels (opaque) with libpng as an
 * 8-bit RGB PNG: the filler byte dropped and the channels swapped by
 * libpng's own transforms (as cairo asks of it), but only the None and Up
 * filters tried and zlib at PNGOUT_LEVEL. Returns a cairo status. */
static cairo_status_t pngout_encode(const unsigned char *pix, int w, int h, int stride,
                                    cairo_write_func_t write_func, void *closure)
{
    pngout_sink sink = { write_func, closure, false };
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_bytepp rows = calloc((size_t)h, sizeof *rows);
    cairo_status_t rc = CAIRO_NO_MEMORY;
    if (png == NULL || info == NULL || rows == NULL)
        goto out;
    for (int y = 0; y < h; y++)
        rows[y] = (png_bytep)(pix + (size_t)y * (size_t)stride);
    if (setjmp(png_jmpbuf(png))) { /* libpng failed (out of memory): nothing more is written */
        rc = sink.failed ? CAIRO_WRITE_ERROR : CAIRO_NO_MEMORY;
        goto out;
    }
    png_set_write_fn(png, &sink, pngout_write, pngout_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE | PNG_FILTER_UP);
    png_set_compression_level(png, PNGOUT_LEVEL);
    png_write_info(png, info);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    png_set_bgr(png);                              /* B G R X in memory */
    png_set_filler(png, 0, PNG_FILLER_AFTER);
#else
    png_set_filler(png, 0, PNG_FILLER_BEFORE);     /* X R G B in memory */
#endif
    png_write_image(png, rows);
    png_write_end(png, info);
    rc = sink.failed ? CAIRO_WRITE_ERROR : CAIRO_OK;
out:
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    free(rows);
    return rc;
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
            return pngout_encode(pix, w, h, stride, write_func, closure);
        }
    }
    if (cairo.next == NULL)
        return CAIRO_WRITE_ERROR;
    return cairo.next(surface, write_func, closure);
}
