/*
 * kafka: librdkafka handles configured the chatmem way, and the orderly
 * shutdown of a worker.
 *
 * Consumers store offsets by hand (enable.auto.offset.store=false): a
 * worker stores the offset of a message only once the side effect it
 * stands for is acknowledged (Redis reply, delivered reply or DLQ entry),
 * and librdkafka's auto-commit commits what was stored. Producers are
 * idempotent, so a retried produce never duplicates or reorders.
 *
 * Every property of the config's kafka = { … } group is applied after
 * chatmem's own defaults, so an operator can override any of them.
 *
 * A low-level module: it never reads or writes the daemon's stop flag.
 * Waits are bounded by a deadline the caller gives; a fatal error is
 * logged and left for the caller to see with rd_kafka_fatal_error().
 */
#ifndef CM_KAFKA_H
#define CM_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "codec.h"
#include "config.h"

/*
 * Creates a high-level consumer in group (NULL: no group, for assign-only
 * use) with manual offset store and auto.offset.reset=earliest. rebalance
 * may be NULL (librdkafka's default assign/unassign); opaque is given to it.
 * On error returns NULL and writes the reason to errstr.
 */
rd_kafka_t *cm_kafka_consumer_new(
    const cm_config_t *cfg, const char *group,
    void (*rebalance)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque),
    void *opaque, char *errstr, size_t errstr_size);

/*
 * The same, with librdkafka's statistics every stats_interval_ms (unless
 * the kafka = { } settings say otherwise) handed to stats, on the thread
 * that polls the consumer; stats returns 0 (librdkafka frees json).
 */
rd_kafka_t *cm_kafka_consumer_new_stats(
    const cm_config_t *cfg, const char *group,
    void (*rebalance)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque),
    int (*stats)(rd_kafka_t *rk, char *json, size_t json_len, void *opaque),
    int stats_interval_ms, void *opaque, char *errstr, size_t errstr_size);

/* Subscribes rk to one topic. On error returns -1 with the reason. */
int cm_kafka_subscribe(rd_kafka_t *rk, const char *topic, char *errstr,
                       size_t errstr_size);

/*
 * Creates an idempotent producer (acks=all, linger.ms=2 unless overridden).
 * dr may be NULL; it is called from rd_kafka_poll/flush for every message.
 * On error returns NULL and writes the reason to errstr.
 */
rd_kafka_t *cm_kafka_producer_new(
    const cm_config_t *cfg,
    void (*dr)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque),
    void *opaque, char *errstr, size_t errstr_size);

/*
 * The same for the request/reply path (context requests and replies), with
 * linger.ms=0 unless overridden: every millisecond of linger is a
 * millisecond of reply latency, and under load librdkafka still batches
 * what queues up while a request is in flight (make bench measures it).
 */
rd_kafka_t *cm_kafka_rpc_producer_new(
    const cm_config_t *cfg,
    void (*dr)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque),
    void *opaque, char *errstr, size_t errstr_size);

/*
 * The default rebalance handler for eager and cooperative protocols: on
 * revoke it commits the stored offsets synchronously first, so that the
 * next owner starts exactly after what this process acknowledged.
 */
void cm_kafka_rebalance_default(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts,
                                void *opaque);

/*
 * Queues payload[0..strlen) to topic with key[0..key_len) (key NULL: no
 * key; payload NULL: a tombstone, a null value), the headers hdrs (NULL:
 * none) and the per-message opaque msg_opaque, which the producer's dr
 * callback finds in its message's _private. While the local queue is full
 * it serves the producer and tries again until deadline_us (cm_mono_us();
 * 0: try once). Returns 0 once queued: payload and hdrs are then owned by
 * librdkafka (freed after delivery). Otherwise returns the error
 * (RD_KAFKA_RESP_ERR__QUEUE_FULL when the deadline passed) and payload and
 * hdrs are still the caller's.
 */
rd_kafka_resp_err_t cm_kafka_produce(rd_kafka_t *producer, const char *topic,
                                     const void *key, size_t key_len,
                                     char *payload, rd_kafka_headers_t *hdrs,
                                     void *msg_opaque, int64_t deadline_us);

/* Room a message needs beside its value: key, headers and framing. */
#define CM_KAFKA_MESSAGE_OVERHEAD 4096

/*
 * The largest value the producer rk takes in one message: its
 * message.max.bytes less CM_KAFKA_MESSAGE_OVERHEAD. A larger one would be
 * refused as too large and never delivered. (The broker has a limit of its
 * own: the producer's must not be higher.) Cannot fail.
 */
size_t cm_kafka_value_max(rd_kafka_t *rk);

/*
 * For a dr callback: 1 when a message that failed delivery with err may
 * succeed if produced again (timeouts, broker or transport trouble), 0 when
 * it never will (too large, invalid, topic unknown or not authorized,
 * purged, fatal). Cannot fail.
 */
int cm_kafka_delivery_retriable(rd_kafka_resp_err_t err);

/*
 * For a dr callback: produces a copy of the undelivered message m again
 * (same topic, key, payload and per-message opaque; the payload is copied,
 * as librdkafka frees m's after the callback). Returns 0, or -1 when it
 * could not be queued (logged); then no dr callback will come for it.
 */
int cm_kafka_produce_again(rd_kafka_t *producer, const rd_kafka_message_t *m);

/* Bytes of a kafka_correlationId that cm_kafka_request_route() reads. */
#define CM_KAFKA_CORR_MAX 256

/*
 * Reads the routing headers of a context request from hdrs (NULL: none)
 * into route (codec.h): the last kafka_correlationId of
 * 1..CM_KAFKA_CORR_MAX bytes, as a request_id through
 * cm_request_id_from_bytes() into rid, and the last kafka_replyTopic of
 * 1..topic_size - 1 bytes without NUL, copied to topic. route's fields
 * point into rid and topic, or are NULL for a header absent or unusable.
 * *corr and *corr_len are set to the correlation bytes as sent (inside
 * hdrs), for the reply's header, or NULL and 0. Cannot fail.
 */
void cm_kafka_request_route(const rd_kafka_headers_t *hdrs,
                            cm_request_route_t *route, char rid[CM_ID_MAX + 1],
                            char *topic, size_t topic_size, const void **corr,
                            size_t *corr_len);

/* Stores the offset of m (a consumed message) for the next commit. A
 * partition revoked meanwhile is not an error (its new owner redoes the
 * message, harmlessly). Cannot fail (other errors are logged). */
void cm_kafka_offset_store(const rd_kafka_message_t *m);

/* Pauses (pause=1) or resumes every partition currently assigned to rk,
 * but those in except (NULL: none). Returns 0, or -1 with the reason in
 * errstr (assignment unreadable, or the pause/resume refused). */
int cm_kafka_pause_all(rd_kafka_t *rk, int pause,
                       const rd_kafka_topic_partition_list_t *except,
                       char *errstr, size_t errstr_size);

/* Commits the offsets stored so far, synchronously. Returns 0 (also when
 * there was nothing to commit), or -1 with the reason in errstr. */
int cm_kafka_commit(rd_kafka_t *rk, char *errstr, size_t errstr_size);

/* Commits the stored offsets synchronously, closes the consumer and
 * destroys it. rk may be NULL. Bounded by librdkafka's own timeouts. */
void cm_kafka_consumer_close(rd_kafka_t *rk);

/* Flushes at most timeout_ms, reports what is left unsent, destroys.
 * rk may be NULL. Returns the number of messages that were not delivered. */
int cm_kafka_producer_close(rd_kafka_t *rk, int timeout_ms);

/* Sleeps ms milliseconds, serving rk (may be NULL) with rd_kafka_poll.
 * Callers that must notice a stop request keep ms at 100 or less. */
void cm_kafka_sleep(rd_kafka_t *rk, int ms);

#endif
