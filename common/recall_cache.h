/*
 * recall_cache: the context worker's cache of recall indexes, one per
 * session, so that a request pays only for the messages that joined the
 * session's earlier messages since the last one (cm_recall_index_extend),
 * not for indexing the whole history again.
 *
 * A direct-mapped table of a fixed number of slots, as session_cache.h:
 * a session key hashes to one slot, and another session put there
 * replaces it. A slot holds its own copies of the candidates (the
 * session's earlier messages, oldest first) and the index over them.
 *
 * Validity: the cache never trusts a key alone. A lookup gives the
 * candidates of this request; the slot is reused only when the messages
 * it holds are, one for one, the first of them (role, seq, ts and the
 * content bytes compared), and the rest are appended and indexed. Any
 * other change (a delete, eviction of old archive chunks, a session that
 * expired and started again) rebuilds the slot. So a cached index is
 * never stale, only sometimes rebuilt.
 */
#ifndef CM_RECALL_CACHE_H
#define CM_RECALL_CACHE_H

#include <stddef.h>

#include "message.h"
#include "recall.h"

typedef struct cm_recall_cache cm_recall_cache_t;

/* A cache of slots entries (0: a cache that keeps nothing). Slots whose
 * candidates hold more than max_bytes of content are not kept. Cannot fail
 * (out of memory aborts). Destroy with cm_recall_cache_destroy(). */
cm_recall_cache_t *cm_recall_cache_new(size_t slots, size_t max_bytes);
/* Frees the cache and every slot. c may be NULL. */
void cm_recall_cache_destroy(cm_recall_cache_t *c);

/* What a lookup gives: an index over msgs[0..cnt), both borrowed from the
 * cache until its next lookup; or, when own is 1 (nothing kept), msgs is
 * the caller's array and the index is the caller's, to free with
 * cm_recall_cache_release(). */
typedef struct cm_recall_cached {
        const cm_message_t *msgs;
        size_t cnt;
        cm_recall_index_t *index;
        int own;
        int hit; /* 1: the slot was reused (extended or as it was) */
} cm_recall_cached_t;

/*
 * The index of session key ("<user>:<conv>") over the candidates
 * msgs[0..cnt) of this request (oldest first; borrowed only during the
 * call). From the slot of key when it holds a prefix of them, else built
 * anew. With cnt 0 or a cache of no slots, an index is still given (owned
 * by the caller when not kept). Cannot fail.
 */
void cm_recall_cache_get(cm_recall_cache_t *c, const char *key,
                         const cm_message_t *msgs, size_t cnt,
                         cm_recall_cached_t *out);

/* Releases what a lookup gave with own set; does nothing otherwise. */
void cm_recall_cache_release(cm_recall_cached_t *got);

/* Lookups that reused a slot, and that built one anew. */
void cm_recall_cache_stats(const cm_recall_cache_t *c, unsigned long long *hits,
                           unsigned long long *builds);

#endif
