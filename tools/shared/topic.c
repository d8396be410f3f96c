/*
 * topic: see topic.h for the contract.
 */
#include "topic.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "util.h"

#define RETRY_MS 100

/* Milliseconds left until deadline_us, at least 1 (one more try). */
static int left_ms(int64_t deadline_us)
{
        int64_t left = (deadline_us - cm_mono_us()) / 1000;

        if (left < 1)
                return 1;
        return left > 0x7fffffff ? 0x7fffffff : (int)left;
}

static void pause_ms(int ms)
{
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

        nanosleep(&ts, NULL);
}

int tool_topic_partitions(rd_kafka_t *rk, const char *topic,
                          int64_t deadline_us, int32_t **ids, char *errstr,
                          size_t errstr_size)
{
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_topic_t *rkt;
        rd_kafka_resp_err_t err;
        int i, cnt = -1;

        rkt = rd_kafka_topic_new(rk, topic, NULL);
        if (!rkt) {
                snprintf(errstr, errstr_size, "cannot use topic '%s': %s",
                         topic, rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
        }
        for (;;) {
                err = rd_kafka_metadata(rk, 0, rkt, &md, left_ms(deadline_us));
                if (!err && md->topic_cnt == 1 && !md->topics[0].err &&
                    md->topics[0].partition_cnt > 0)
                        break;
                if (!err && md->topic_cnt == 1 &&
                    md->topics[0].err ==
                        RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                        snprintf(errstr, errstr_size,
                                 "topic '%s' does not exist", topic);
                        goto out;
                }
                if (!err)
                        err = md->topic_cnt == 1
                                  ? md->topics[0].err
                                  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
                if (md)
                        rd_kafka_metadata_destroy(md);
                md = NULL;
                if (cm_mono_us() >= deadline_us) {
                        snprintf(errstr, errstr_size,
                                 "cannot read the partitions of '%s': %s",
                                 topic, rd_kafka_err2str(err));
                        goto out;
                }
                pause_ms(RETRY_MS);
        }
        cnt = md->topics[0].partition_cnt;
        if (ids) {
                *ids = cm_calloc((size_t)cnt, sizeof(**ids));
                for (i = 0; i < cnt; i++)
                        (*ids)[i] = md->topics[0].partitions[i].id;
        }
out:
        if (md)
                rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
        return cnt;
}

int tool_topic_assign_at_end(rd_kafka_t *rk, const char *topic,
                             int64_t deadline_us, char *errstr,
                             size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err;
        int32_t *ids = NULL;
        int i, cnt, ret = -1;

        cnt = tool_topic_partitions(rk, topic, deadline_us, &ids, errstr,
                                    errstr_size);
        if (cnt < 0)
                return -1;
        parts = rd_kafka_topic_partition_list_new(cnt);
        for (i = 0; i < cnt; i++) {
                int64_t lo = 0, hi = 0;

                err = rd_kafka_query_watermark_offsets(
                    rk, topic, ids[i], &lo, &hi, left_ms(deadline_us));
                if (err) {
                        snprintf(errstr, errstr_size,
                                 "cannot read the end of '%s' [%d]: %s", topic,
                                 (int)ids[i], rd_kafka_err2str(err));
                        goto out;
                }
                rd_kafka_topic_partition_list_add(parts, topic, ids[i])
                    ->offset = hi;
        }
        err = rd_kafka_assign(rk, parts);
        if (err) {
                snprintf(errstr, errstr_size, "cannot assign '%s': %s", topic,
                         rd_kafka_err2str(err));
                goto out;
        }
        ret = 0;
out:
        rd_kafka_topic_partition_list_destroy(parts);
        free(ids);
        return ret;
}
