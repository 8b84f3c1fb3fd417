/*
 * hash.h — the one hash function of parkpulse: FNV-1a, 64 bits.
 *
 * Offset basis 14695981039346656037 (0xcbf29ce484222325), prime
 * 1099511628211 (0x100000001b3). Used for the hash tables of db.c, alert.c,
 * model.c, store.c, ingest.c, http.c, api.c, log.c and graph.c, for the
 * journal's D records (the file content's hash, journal.c) and for the API's
 * ETags. Start with PP_FNV_OFFSET (or pp_hash_str()) and feed bytes with
 * pp_hash_bytes()/pp_hash_more()/pp_hash_byte(); each returns the new state.
 * Nothing here allocates or does I/O.
 */
#ifndef PP_HASH_H
#define PP_HASH_H

#include <stddef.h>
#include <stdint.h>

#define PP_FNV_OFFSET 14695981039346656037ULL
#define PP_FNV_PRIME 1099511628211ULL

/* h with one more byte c. */
static inline uint64_t pp_hash_byte(uint64_t h, unsigned char c) { return (h ^ c) * PP_FNV_PRIME; }

/* h with len more bytes of data. */
static inline uint64_t pp_hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++)
        h = pp_hash_byte(h, p[i]);
    return h;
}

/* h with the bytes of the string s (not its NUL). */
static inline uint64_t pp_hash_more(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = pp_hash_byte(h, (unsigned char)*s);
    return h;
}

/* The hash of the string s. */
static inline uint64_t pp_hash_str(const char *s) { return pp_hash_more(PP_FNV_OFFSET, s); }

/* The hash of the pair "a<sep>b", without building it. sep is a byte neither
 * string holds, so that "ab"+"c" and "a"+"bc" differ. */
static inline uint64_t pp_hash_pair(const char *a, unsigned char sep, const char *b)
{
    return pp_hash_more(pp_hash_byte(pp_hash_str(a), sep), b);
}

#endif
