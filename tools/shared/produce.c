#include "produce.h"

#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

int tool_produce(rd_kafka_t *rk, const char *topic, const char *key,
                 char *payload)
{
        rd_kafka_resp_err_t err;

        /* Steps of 100 ms, so that a stop is noticed. */
        do {
                err = cm_kafka_produce(rk, topic, key, key ? strlen(key) : 0,
                                       payload, NULL, NULL,
                                       cm_mono_us() + 100000);
        } while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !cm_stop);
        if (err) {
                cm_error("cannot produce to '%s': %s", topic,
                         rd_kafka_err2str(err));
                free(payload);
                return -1;
        }
        return 0;
}
