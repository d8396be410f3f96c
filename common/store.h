/*
 * store: the Redis session store (hiredis).
 *
 * Keys (P is the configured prefix, default "chatmem:"):
 *   P{u:c}:msgs     list of stored message entries (codec.h), oldest first
 *   P{u:c}:meta     hash: total, last_seq, tokens, off:<partition>
 *   P{u:c}:eids     zset event_id -> seq, the last dedupe_window ids
 *   P{u:c}:summary  hash: text, upto (summarizer)
 *   P{u}:profile    hash: name, role, interests (JSON array)
 *   P{u}:convs      set of the user's conversation ids
 * All keys of one session share the hash tag {u:c}, so the scripts run
 * unchanged on Redis Cluster (slot-local). Session keys expire after
 * session_ttl seconds without a write (0 = never).
 *
 * Exactly-once append. Every event of a session comes from one partition,
 * in offset order. The append script stores, atomically with the append,
 * the offset it applied in the session's meta hash under off:<partition>
 * (the applied-offset watermark). A redelivered event (offset <= watermark,
 * after a crash, a rebalance or a replay) is skipped, and so is an event
 * whose event_id is among the session's recent ids (a producer retry).
 * Because the watermark is written in the same script as the append, there
 * is no moment at which one is visible without the other, whatever process
 * dies when. A new partition (the topic was repartitioned) starts its own
 * watermark.
 *
 * Failure: any I/O error frees the connection; the next call reconnects
 * (a failed connection is rebuilt, never reused).
 */
#ifndef CM_STORE_H
#define CM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"

typedef struct cm_store cm_store_t;

/* Parses cfg->redis_url (redis://[[user]:password@]host[:port][/db]) and
 * prepares a store; does not connect. On error (bad URL) returns NULL and
 * writes the reason to errstr. Destroy with cm_store_destroy(). */
cm_store_t *cm_store_new(const cm_config_t *cfg, char *errstr,
                         size_t errstr_size);
void cm_store_destroy(cm_store_t *st);

/* The URL without its password, for logs. */
const char *cm_store_url(const cm_store_t *st);

/* Connects (AUTH, SELECT, script load) unless connected. Returns 0, or -1
 * with the reason in errstr. */
int cm_store_connect(cm_store_t *st, char *errstr, size_t errstr_size);

/* 1 when a connection is up (it may still fail on next use). */
int cm_store_connected(const cm_store_t *st);

typedef enum cm_append_result {
        CM_APPEND_APPLIED = 1,
        CM_APPEND_DUP_OFFSET = 0, /* offset at or below the watermark */
        CM_APPEND_DUP_EVENT = -1, /* event_id seen recently */
} cm_append_result_t;

typedef struct cm_append {
        /* in */
        const cm_event_t *ev; /* a CM_EVENT_MESSAGE event */
        int32_t partition;
        int64_t offset;
        int tokens; /* tokens of the message's context line */
        /* out */
        cm_append_result_t result;
        int64_t seq;     /* its sequence number when applied */
        int64_t pending; /* messages in the list after it */
} cm_append_t;

/*
 * Appends items[0..cnt) in order with one pipeline (one round trip).
 * Returns 0 when Redis acknowledged every item (each result set), or -1
 * with the reason in errstr; then some prefix may have been applied, and
 * calling again with the same items is safe (the watermark skips them).
 */
int cm_store_append_batch(cm_store_t *st, cm_append_t *items, size_t cnt,
                          char *errstr, size_t errstr_size);

typedef struct cm_session {
        int exists;    /* 1 if any key of the session was found */
        int64_t total; /* messages ever appended */
        int64_t last_seq;
        int64_t tokens;     /* sum of the stored tokens of every message
                               ever appended (folded ones included) */
        int64_t stored_cnt; /* messages in the list now */
        cm_message_t *msgs; /* the last `recent` messages, oldest first */
        size_t msg_cnt;
        char *summary; /* "" when none */
        cm_profile_t profile;
} cm_session_t;

/*
 * Loads the session of user/conv with its last `recent` messages (recent
 * < 0: all) and the user's profile, in one round trip. A session that does
 * not exist gives exists=0 and empty fields. On error returns -1 with the
 * reason in errstr; out is then empty.
 */
int cm_store_load(cm_store_t *st, const char *user, const char *conv,
                  int recent, cm_session_t *out, char *errstr,
                  size_t errstr_size);
void cm_session_release(cm_session_t *s);

/* Deletes every key of one session (operator use). Idempotent. Returns the
 * number of keys removed, or -1 with the reason in errstr. */
long long cm_store_delete_session(cm_store_t *st, const char *user,
                                  const char *conv, char *errstr,
                                  size_t errstr_size);

/* Counts sessions with SCAN over P{*}:meta (never KEYS). Returns 0, or -1
 * with the reason in errstr. */
int cm_store_count_sessions(cm_store_t *st, long long *count, char *errstr,
                            size_t errstr_size);

/* Writes the key name of a session key ("msgs", "meta"…) to out. Returns
 * the length (truncated to out_size - 1 at most). */
size_t cm_store_key(const cm_store_t *st, char *out, size_t out_size,
                    const char *user, const char *conv, const char *kind);

#endif
