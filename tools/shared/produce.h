/*
 * produce: the tools' way to queue one message (chatmem context,
 * chatmem-bench), on top of cm_kafka_produce().
 */
#ifndef CM_TOOL_PRODUCE_H
#define CM_TOOL_PRODUCE_H

#include <librdkafka/rdkafka.h>

/* Queues payload (a heap string, owned from here on) to topic keyed by
 * key (NULL: none), waiting while the local queue is full until a stop is
 * asked (SIGINT/SIGTERM). Returns 0, or -1 when it could not be queued
 * (said on stderr; payload freed). */
int tool_produce(rd_kafka_t *rk, const char *topic, const char *key,
                 char *payload);

#endif
