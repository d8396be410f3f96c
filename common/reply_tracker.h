/*
 * reply_tracker: at-least-once offsets for a request/reply worker whose
 * replies are delivered asynchronously (chatmem-context).
 *
 * Every batch of requests gets a tracker: the next offset per partition of
 * the requests it holds, and a count of its replies whose delivery is not
 * final yet (a cm_delivery_t, the msg_opaque of each reply it produces).
 * The trackers form a FIFO of at most CM_TRACKER_MAX batches.
 * cm_tracker_pop_done() hands out the offsets of the oldest batches whose
 * replies are all final, strictly in FIFO order, so an offset is stored
 * only after the replies it stands for, and all earlier ones, were
 * acknowledged. After a crash, requests whose replies were not yet
 * acknowledged are answered again (at-least-once, same request_id).
 *
 * A batch marked lost (a reply could not even be queued at shutdown)
 * never hands out its offsets, nor do the batches after it.
 */
#ifndef CM_REPLY_TRACKER_H
#define CM_REPLY_TRACKER_H

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "worker.h"

#define CM_TRACKER_MAX 64 /* batches whose replies are being delivered */

typedef struct cm_tracker {
        cm_delivery_t d; /* replies produced and not final; one more while
                            the batch is being answered */
        rd_kafka_topic_partition_list_t *offsets; /* next offset per
                                                     partition */
        int lost; /* a reply could not be queued: never store */
} cm_tracker_t;

typedef struct cm_tracker_fifo {
        cm_tracker_t slot[CM_TRACKER_MAX];
        size_t head, cnt;
} cm_tracker_fifo_t;

/* Embedded: zero it, or call cm_tracker_fifo_init(). Release with
 * cm_tracker_fifo_release(), which frees the trackers still in it. */
void cm_tracker_fifo_init(cm_tracker_fifo_t *f);
void cm_tracker_fifo_release(cm_tracker_fifo_t *f);

/* 1 when no tracker can be pushed until the head completes. */
int cm_tracker_full(const cm_tracker_fifo_t *f);

/* A new tracker at the tail, for the batch about to be answered; it counts
 * one pending delivery until cm_tracker_seal(). The FIFO must not be full.
 * Cannot fail. */
cm_tracker_t *cm_tracker_push(cm_tracker_fifo_t *f);

/* Notes that consumed message m is answered once tr's replies are. */
void cm_tracker_add(cm_tracker_t *tr, const rd_kafka_message_t *m);

/* The whole batch is queued: drops the count cm_tracker_push() added. */
void cm_tracker_seal(cm_tracker_t *tr);

/* Pops the head trackers whose replies are all final and not lost, in
 * FIFO order, calling store(opaque, offsets) for each with offsets to
 * store (borrowed for the call). Returns the number popped. */
size_t cm_tracker_pop_done(cm_tracker_fifo_t *f,
                           void (*store)(void *opaque,
                                         rd_kafka_topic_partition_list_t *o),
                           void *opaque);

#endif
