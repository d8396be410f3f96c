/*
 * store: the Redis session store (hiredis).
 *
 * Keys (P is the configured prefix, default "chatmem:"):
 *   P{u:c}:msgs     list of stored message entries (codec.h), oldest first
 *   P{u:c}:meta     hash: total, last_seq, tokens, off:<partition>
 *   P{u:c}:eids     zset event_id -> seq, the last dedupe_window ids (up
 *                   to 15 more between trims)
 *   P{u:c}:summary  hash: text, upto (last folded seq), folded (count)
 *   P{u:c}:archive  list of chunks (archive.h) of the messages that folds
 *                   moved out of msgs, oldest first: at most
 *                   archive_max_messages of them (the oldest whole chunks
 *                   go first), expiring archive_ttl seconds after the
 *                   last fold (-1: the profile's TTL; 0: never). It
 *                   outlives the session's other keys by default; a
 *                   session that expired and starts again numbers its
 *                   messages from 1 again, so seqs in the archive
 *                   increase within each life of the session only.
 *   P{u}:profile    hash: name, role, interests (JSON array), and per
 *                   field <f>_ts, <f>_src ("<conv>:<seq>" it came from),
 *                   <f>_set (1 when set by profile.set: extraction then
 *                   leaves it alone)
 *   P{u}:convs      set of the user's conversation ids (for user.delete)
 *   P:dirty         zset of session keys changed since the last prebuilt
 *                   publication (score: ms of the change)
 *   P:applied:<topic>  hash: ingest's applied-offset record, per
 *                   partition p: "p" the next offset to apply, "b<p>" the
 *                   partition's offset base, "r<p>" a recreation found
 *                   (cm_applied_t); no TTL
 *   P:stats         hash of fleet counters, e.g. ingest_applied,
 *                   ingest_duplicates, ingest_dead (HINCRBY per batch;
 *                   for operators and the benchmark, never for decisions)
 * All keys of one session share the hash tag {u:c}, so the scripts run
 * unchanged on Redis Cluster (slot-local). Session keys expire after
 * session_ttl seconds without a write (0 = never), the archive after
 * its own TTL.
 *
 * The archive. A fold moves the folded messages from msgs to the archive
 * in the same script that stores the summary (fold.lua), so a crash can
 * neither lose nor duplicate a message between the two. Chunks grow: the
 * fold merges the archive's newest chunk with the folded messages up to
 * CM_ARCHIVE_CHUNK_MSGS messages, and the script replaces that chunk
 * only if it is still byte for byte the one the fold read.
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
 * Scripts: the Lua of each atomic step is in common/lua/<name>.lua
 * (append, profile, delete, fold, pop_dirty; each names its KEYS and ARGV
 * first), embedded at build time and run through common/redis.h: loaded
 * on connect, called by EVALSHA, and sent whole (EVAL) when the server
 * lost them (SCRIPT FLUSH, a restart), so NOSCRIPT never reaches a caller.
 *
 * Failure: any I/O error frees the connection; the next call reconnects
 * (a failed connection is rebuilt, never reused). A reply of the wrong
 * type is an error that names what came instead.
 */
#ifndef CM_STORE_H
#define CM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "config.h"

typedef struct cm_store cm_store_t;

/* Parses cfg->redis_url (redis://[[user]:password@]host[:port][/db],
 * percent-encoded, an IPv6 host in brackets: cm_redis_url_parse()) and
 * prepares a store; does not connect. On error (bad URL) returns NULL and
 * writes the reason to errstr. Destroy with cm_store_destroy(). */
cm_store_t *cm_store_new(const cm_config_t *cfg, char *errstr,
                         size_t errstr_size);
void cm_store_destroy(cm_store_t *st);

/* The URL without its password ("redis://user:***@host:port/db"), for
 * logs. */
const char *cm_store_url(const cm_store_t *st);

/* Connects (AUTH, SELECT, script load) unless connected. Returns 0, or -1
 * with the reason in errstr. */
int cm_store_connect(cm_store_t *st, char *errstr, size_t errstr_size);

/* 1 when a connection is up (it may still fail on next use). */
int cm_store_connected(const cm_store_t *st);

/* How many connections were made so far: when it moved, the server may
 * be another one, or the same restarted without its last writes. Cannot
 * fail. */
unsigned long cm_store_connects(const cm_store_t *st);

/*
 * Every later call ends its Redis waits by deadline_us (mono µs,
 * deadline.h; 0: none, the default, and each wait has the store's own
 * limits only): a connect is not tried once the deadline has passed, and
 * each read or write waits at most what is left (at least 1 ms, so that
 * replies already received are read). A wait that runs out fails as an
 * I/O error does: the connection is dropped and the call returns -1.
 * Cannot fail.
 */
void cm_store_set_deadline(cm_store_t *st, int64_t deadline_us);

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
        int break_tokens; /* what its line break adds to tokens: the
                             newest line of a history has none */
        int tokens;       /* tokens of the message's context line,
                                     with its line break */
        /* out */
        cm_append_result_t result;
        int64_t seq;     /* its sequence number (also of a duplicate,
                            while its event_id is in the window; else 0) */
        int64_t pending; /* messages in the list after it */
        int compact;     /* 1: publish a compaction job for the session */
} cm_append_t;

/* Compaction trigger: when a session holds more than threshold messages
 * after an append, the append script marks a job pending (meta field
 * cjob = now) and sets item.compact; while a job is pending (younger than
 * stale_ms) later appends do not ask again. The fold clears it. Cannot
 * fail. */
void cm_store_set_compaction(cm_store_t *st, int threshold, int stale_ms);

/*
 * Appends items[0..cnt) in order with one pipeline (one round trip).
 * Returns 0 when Redis acknowledged every item (each result set), or -1
 * with the reason in errstr; then some prefix may have been applied, and
 * calling again with the same items is safe (the watermark skips them).
 */
int cm_store_append_batch(cm_store_t *st, cm_append_t *items, size_t cnt,
                          char *errstr, size_t errstr_size);

typedef struct cm_session {
        int exists;           /* 1 if any key of the session was found */
        int64_t summary_upto; /* last folded seq; 0 when none */
        int64_t folded;       /* messages folded into the summary */
        int64_t total;        /* messages ever appended */
        int64_t last_seq;
        int64_t last_break;   /* break_tokens of the newest message */
        int last_break_known; /* 0: stored by an older version */
        int64_t tokens;       /* sum of the stored tokens of every message
                                 ever appended (folded ones included) */
        int64_t stored_cnt;   /* messages in the list now */
        cm_message_t *msgs;   /* the last `recent` messages, oldest first */
        size_t msg_cnt;
        cm_message_t *archive; /* with CM_LOAD_ARCHIVE: every archived
                                  message, decoded, oldest first (event_id
                                  NULL); else NULL */
        size_t archive_cnt;
        char *summary; /* "" when none */
        cm_profile_t profile;
} cm_session_t;

/* Flags of a load. */
#define CM_LOAD_ARCHIVE 0x1 /* also the archive (cm_session_t.archive) */

/*
 * Loads the session of user/conv with its last `recent` messages (recent
 * < 0: all), with CM_LOAD_ARCHIVE in flags its archive, and the user's
 * profile, in one round trip. The session's keys are read as one snapshot
 * (MULTI/EXEC), so a fold never shows a message both in msgs and in the
 * archive, or in neither: with recent < 0 and CM_LOAD_ARCHIVE, archive
 * then msgs is the whole kept history of the session. A stored entry or
 * an archive chunk that does not decode is skipped with a warning. A
 * session that does not exist gives exists=0 and empty fields. On error
 * returns -1 with the reason in errstr; out is then empty.
 */
int cm_store_load(cm_store_t *st, const char *user, const char *conv,
                  int recent, unsigned flags, cm_session_t *out, char *errstr,
                  size_t errstr_size);

/*
 * cm_store_load() in two halves, to pipeline many loads in one round trip:
 * call cm_store_connect() once, then cm_store_load_send() for each session,
 * then cm_store_load_recv() for each, in the same order and with the same
 * user and conv. No other store call may come in between (it would read
 * the pending replies).
 *
 * cm_store_load_send() only queues the commands (nothing is written until
 * the first recv). It does not connect: when not connected it returns -1
 * with the reason in errstr.
 *
 * cm_store_load_recv() reads and parses the replies of the oldest pending
 * send, as cm_store_load() does. On an I/O error the connection is dropped
 * with every pending load, and every later recv of the same pipeline
 * fails at once (never blocks, never reads another session's replies,
 * even after a reconnect). An error reply from Redis fails only its own
 * load; the connection stays in step. Replies of other types than a load
 * asks for mean the connection is out of step: the load fails and the
 * connection is dropped. On error returns -1 with the reason in errstr;
 * out is then empty.
 */
int cm_store_load_send(cm_store_t *st, const char *user, const char *conv,
                       int recent, unsigned flags, char *errstr,
                       size_t errstr_size);
int cm_store_load_recv(cm_store_t *st, const char *user, const char *conv,
                       cm_session_t *out, char *errstr, size_t errstr_size);

void cm_session_release(cm_session_t *s);

/* The bounds of cm_store_load_user_history(). */
#define CM_STORE_HISTORY_CONVS 64    /* conversations */
#define CM_STORE_HISTORY_MSGS  20000 /* messages, in all */

/* The history of one conversation (cm_store_load_user_history()). */
typedef struct cm_conv_history {
        char *conv;         /* the conversation id, owned */
        cm_message_t *msgs; /* archive then stored messages, oldest
                               first, owned */
        size_t msg_cnt;
} cm_conv_history_t;

/*
 * Loads the history of every conversation of the user (P{u}:convs) but
 * except_conv (NULL: none): the archive and the stored messages of each,
 * as cm_store_load() with recent -1 and CM_LOAD_ARCHIVE reads them, in
 * two round trips. Bounded: the first CM_STORE_HISTORY_CONVS conversation
 * ids in byte order, and at most CM_STORE_HISTORY_MSGS messages in all,
 * shared out so that every conversation keeps its newest ones (a
 * conversation with fewer than its share keeps them all and leaves the
 * rest to the others). Conversations with no message are left out.
 * Returns 0 and sets *out to a heap array of *cnt conversations, in byte
 * order of their ids (free with cm_conv_history_free()), or -1 with the
 * reason in errstr (*out NULL, *cnt 0).
 */
int cm_store_load_user_history(cm_store_t *st, const char *user,
                               const char *except_conv, cm_conv_history_t **out,
                               size_t *cnt, char *errstr, size_t errstr_size);

/* Frees h[0..cnt) and h; h may be NULL. */
void cm_conv_history_free(cm_conv_history_t *h, size_t cnt);

/*
 * Updates the user's profile from one message (extracted=1: facts found in
 * a user message; a field set by profile.set is left alone, and an older
 * statement (ts) never replaces a newer one) or from a profile.set event
 * (extracted=0: the given fields win). src is "<conv>:<seq>". Interests
 * found by extraction are merged (newest kept, at most 16); profile.set
 * replaces them. Idempotent. Returns 1 if the profile changed, 0 if not,
 * -1 with the reason in errstr.
 */
int cm_store_profile_update(cm_store_t *st, const char *user,
                            const cm_profile_t *p, int extracted, int64_t ts,
                            const char *src, char *errstr, size_t errstr_size);

/* One profile update of cm_store_profile_update_batch(). */
typedef struct cm_profile_update {
        const char *user;
        const cm_profile_t *profile;
        int extracted;
        int64_t ts;
        const char *src;
} cm_profile_update_t;

/* Applies cnt profile updates in one round trip, in order; changed[i]
 * (when changed is not NULL) says whether update i changed the profile.
 * Returns 0, or -1 with the reason (applying them again is safe). */
int cm_store_profile_update_batch(cm_store_t *st, const cm_profile_update_t *u,
                                  size_t cnt, int *changed, char *errstr,
                                  size_t errstr_size);

/*
 * session.delete as applied by ingest: deletes the session's keys, the
 * archive too, unless the event at (partition, offset) was already applied
 * (the watermark of a session that was re-created after the delete is
 * newer). Returns 1 if deleted, 0 if skipped as a redelivery, -1 with the
 * reason.
 */
int cm_store_session_delete_event(cm_store_t *st, const char *user,
                                  const char *conv, int32_t partition,
                                  int64_t offset, char *errstr,
                                  size_t errstr_size);

/* Deletes every conversation of the user (archives included) and the
 * profile (user.delete). With mark_dirty, each deleted conversation is
 * marked changed right after its delete (cm_store_mark_dirty), so that
 * the prebuilt publisher writes its tombstone. Idempotent. Returns 0, or
 * -1 with the reason. */
int cm_store_user_delete(cm_store_t *st, const char *user, int mark_dirty,
                         char *errstr, size_t errstr_size);

/*
 * The atomic fold of folded[0..cnt) (cnt >= 1), the oldest messages of the
 * list as a load gave them, into the summary text. If the summary's upto
 * is still expected_upto (the compare-and-set on the summary cursor) and
 * the head of the list holds exactly those messages (their count and seq
 * range), one script removes them from the list, adds them to the archive
 * (unless archive_max_messages is 0: then they are dropped, and an
 * archive left from before is deleted), evicts the archive's oldest
 * chunks while it holds more than archive_max_messages, stores text as
 * the summary with upto = the last folded seq, and clears the pending
 * compaction job. Messages appended meanwhile are never touched. *left is
 * set to the messages left in the list; the pending job mark stays while
 * that is over the compaction threshold (cm_store_set_compaction), and the
 * caller is to fold again. Reads the archive's newest chunk first, to
 * merge the folded messages into it (a second round trip).
 * Returns the number of messages moved (>= 1), CM_FOLD_MOVED when the
 * cursor moved, the session is gone or the list is not what the fold was
 * made from (nothing changed), or -1 with the reason in errstr (nothing
 * changed or everything did: Redis ran the script whole or not at all).
 */
#define CM_FOLD_MOVED (-2)
long long cm_store_fold_commit(cm_store_t *st, const char *user,
                               const char *conv, int64_t expected_upto,
                               const cm_message_t *folded, size_t cnt,
                               const char *text, int64_t *left, char *errstr,
                               size_t errstr_size);

/* Clears the pending compaction job of a session with nothing to fold.
 * Returns 0, or -1 with the reason. */
int cm_store_compaction_done(cm_store_t *st, const char *user, const char *conv,
                             char *errstr, size_t errstr_size);

/*
 * The applied-offset record (DESIGN.md, guarantee 1; the Kafka Connect
 * sink pattern). After each batch, ingest records per partition the offset
 * it applied up to; on assignment, and after any failed Redis write, it
 * resumes from the lower of that record and the committed offset. Redis
 * executes and persists (AOF, RDB, replication) a connection's writes in
 * order, so a Redis that restarts having lost its last writes has lost
 * the record's newest values with them, never the other way round: the
 * replay from the record re-applies exactly what was lost, and the
 * sessions' watermarks skip the rest.
 *
 * Offsets as the sessions' watermarks and this record hold them are the
 * partition's Kafka offsets plus the partition's base. The base is 0
 * until the topic is recreated (its offsets start again below the
 * record) and ingest is told to replay it (ingest.topic_reset =
 * "replay"): the base then moves past every offset used before, so that
 * the new topic's events are not taken for ones already applied.
 */
typedef struct cm_applied {
        int32_t partition;
        int64_t next;  /* the next offset to apply, base included; -1: none
                          recorded */
        int64_t base;  /* 0 when none recorded */
        int64_t reset; /* >= 0: the partition was found recreated, and
                          ended there then (kept until replayed, so that
                          a topic that grows past the record meanwhile is
                          still known for one); -1: not */
} cm_applied_t;

/* Reads the record of each a[i].partition of topic into a[i].next,
 * a[i].base and a[i].reset, in one round trip. Returns 0, or -1 with the
 * reason. */
int cm_store_applied_get(cm_store_t *st, const char *topic, cm_applied_t *a,
                         size_t cnt, char *errstr, size_t errstr_size);

/* Writes next, base and reset of each a[i] into the record of topic, in
 * one command. Returns 0, or -1 with the reason. */
int cm_store_applied_set(cm_store_t *st, const char *topic,
                         const cm_applied_t *a, size_t cnt, char *errstr,
                         size_t errstr_size);

/* Adds values[i] to the fleet counter names[i] in P:stats, for i in
 * [0, cnt), in one round trip (zero values are skipped). Returns 0, or -1
 * with the reason. */
int cm_store_stats_add(cm_store_t *st, const char *const *names,
                       const long long *values, size_t cnt, char *errstr,
                       size_t errstr_size);

/* Reads the fleet counters of P:stats into a heap array of heap strings
 * "name=value" (NULL-terminated; the caller frees each and the array).
 * Returns the count, or -1 with the reason. */
int cm_store_stats_get(cm_store_t *st, char ***out, char *errstr,
                       size_t errstr_size);

/* Marks sessions changed ("<user>:<conv>" each) for prebuilt publication.
 * Returns 0, or -1 with the reason. */
int cm_store_mark_dirty(cm_store_t *st, const char *const *sessions, size_t cnt,
                        char *errstr, size_t errstr_size);

/* Marks every conversation of the user changed (after a profile change).
 * Returns 0, or -1 with the reason. */
int cm_store_mark_user_dirty(cm_store_t *st, const char *user, char *errstr,
                             size_t errstr_size);

/* Pops at most max changed sessions whose first change since their last
 * publication is at or before cutoff_ms (so that one session is published
 * at most once per interval, and its last change always is) into out
 * (heap strings "<user>:<conv>", caller frees each). Returns the count, or
 * -1 with the reason. */
int cm_store_pop_dirty(cm_store_t *st, char **out, int max, int64_t cutoff_ms,
                       char *errstr, size_t errstr_size);

/* Deletes every key of one session, its archive included (operator use).
 * Idempotent. Returns the number of keys removed, or -1 with the reason in
 * errstr. */
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
