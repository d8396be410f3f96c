/*
 * session_cache: the bounded in-process cache of sessions that the context
 * worker answers from, degraded, while Redis is away (DESIGN.md,
 * guarantee 5).
 *
 * A direct-mapped table of a fixed number of slots: a session key hashes
 * to one slot, and a newer session put there replaces the older one. So
 * memory is bounded by the slot count and the sessions' own size, and a
 * lookup is one hash and one string compare. A session moves into its
 * slot without a copy (cm_session_cache_put takes it over).
 */
#ifndef CM_SESSION_CACHE_H
#define CM_SESSION_CACHE_H

#include <stddef.h>

#include "store.h"

typedef struct cm_session_cache cm_session_cache_t;

/* A cache of slots entries (0: a cache that keeps nothing). Cannot fail
 * (out of memory aborts). Destroy with cm_session_cache_destroy(). */
cm_session_cache_t *cm_session_cache_new(size_t slots);
/* Frees the cache and every session in it. c may be NULL. */
void cm_session_cache_destroy(cm_session_cache_t *c);

/* Moves *s into the slot of key ("<user>:<conv>"): s is left empty, and
 * what the slot held is released. Cannot fail. */
void cm_session_cache_put(cm_session_cache_t *c, const char *key,
                          cm_session_t *s);

/* The cached session of key, borrowed until the next put, or NULL when it
 * is not cached. Cannot fail. */
const cm_session_t *cm_session_cache_get(const cm_session_cache_t *c,
                                         const char *key);

#endif
