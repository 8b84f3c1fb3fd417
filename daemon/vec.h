/*
 * vec.h — the one growable array of parkpulse: an array is a pointer, a count
 * the caller keeps and a capacity (size_t) that pp_vec_reserve() doubles.
 *
 *     if (PP_VEC_RESERVE(r->obs, ps->cap_obs, r->n_obs + 1, 64) != 0)
 *         return -ENOMEM;
 *     r->obs[r->n_obs++] = *o;
 *
 * Header only (static inline), so that the collectors' shared objects, which
 * link nothing of the daemon, use it too. Nothing is logged here: the caller
 * knows what the memory was for.
 */
#ifndef PP_VEC_H
#define PP_VEC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Makes the array whose pointer is at arrp (*cap elements of elem bytes)
 * hold at least need elements: the capacity doubles from first (or from
 * *cap). Returns 0, or -ENOMEM with the array and *cap unchanged. */
static inline int pp_vec_reserve(void *arrp, size_t *cap, size_t need, size_t elem, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : (first ? first : 1);
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return -ENOMEM;
        n *= 2;
    }
    if (n > SIZE_MAX / elem)
        return -ENOMEM;
    void *old, *grown;
    memcpy(&old, arrp, sizeof old);
    grown = realloc(old, n * elem);
    if (grown == NULL)
        return -ENOMEM;
    memcpy(arrp, &grown, sizeof grown);
    *cap = n;
    return 0;
}

/* pp_vec_reserve() for the array pointer arr (an lvalue) and its capacity cap. */
#define PP_VEC_RESERVE(arr, cap, need, first) \
    pp_vec_reserve(&(arr), &(cap), (need), sizeof *(arr), (first))

#endif
