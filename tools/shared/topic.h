/*
 * topic: what the request/reply tools (chatmem context, chatmem-bench
 * context) need of a topic before they send: its partitions, and a
 * consumer assigned at its end, so that a reply produced from then on is
 * read however soon it comes.
 *
 * Both take a deadline on the cm_mono_us() clock: transient errors are
 * retried until then; a topic the broker does not know fails at once.
 * They neither read nor set cm_stop.
 */
#ifndef CM_TOOL_TOPIC_H
#define CM_TOOL_TOPIC_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

/*
 * Reads the partitions of topic through rk (which also makes a producer
 * learn them now rather than at librdkafka's next periodic scan). Returns
 * their count (> 0) and, when ids is not NULL, their ids in *ids (the
 * caller frees it). On error returns -1 and writes the reason to errstr.
 */
int tool_topic_partitions(rd_kafka_t *rk, const char *topic,
                          int64_t deadline_us, int32_t **ids, char *errstr,
                          size_t errstr_size);

/*
 * Assigns every partition of topic to the consumer rk at its high
 * watermark. Returns 0, or -1 with the reason in errstr (rk's assignment
 * is then unchanged).
 */
int tool_topic_assign_at_end(rd_kafka_t *rk, const char *topic,
                             int64_t deadline_us, char *errstr,
                             size_t errstr_size);

#endif
