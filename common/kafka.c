#include "kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errstr, size_t errstr_size)
{
        char why[512];

        if (rd_kafka_conf_set(conf, name, value, why, sizeof(why)) !=
            RD_KAFKA_CONF_OK) {
                snprintf(errstr, errstr_size, "kafka property '%s': %s", name,
                         why);
                return -1;
        }
        return 0;
}

/* Applies chatmem's defaults (pairs, NULL-terminated), then the operator's
 * pass-through properties, which win. */
static int conf_apply(rd_kafka_conf_t *conf, const cm_config_t *cfg,
                      const char *const *defaults, char *errstr,
                      size_t errstr_size)
{
        size_t i;

        if (conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, errstr,
                     errstr_size) == -1)
                return -1;
        for (i = 0; defaults[i]; i += 2) {
                if (conf_set(conf, defaults[i], defaults[i + 1], errstr,
                             errstr_size) == -1)
                        return -1;
        }
        for (i = 0; i < cfg->kafka_prop_cnt; i++) {
                if (conf_set(conf, cfg->kafka_props[i].name,
                             cfg->kafka_props[i].value, errstr,
                             errstr_size) == -1)
                        return -1;
        }
        return 0;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
        (void)rk;
        /* The kafka = {...} settings go to producers and consumers alike:
         * that one of them ignores a property of the other kind is
         * expected. */
        if (!strcmp(fac, "CONFWARN") &&
            (strstr(buf, "is a producer property") ||
             strstr(buf, "is a consumer property")))
                level = 7;
        if (level <= 3)
                cm_error("kafka %s: %s", fac, buf);
        else if (level <= 4)
                cm_warn("kafka %s: %s", fac, buf);
        else
                cm_debug("kafka %s: %s", fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
        (void)opaque;
        if (err == RD_KAFKA_RESP_ERR__FATAL) {
                char fatal[512];

                rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
                cm_error("kafka fatal error: %s", fatal);
                return;
        }
        /* Broker-down and transport errors are retried by librdkafka; say
         * so once per event at warn level. */
        cm_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                reason);
}

/* Creates a client of type from conf (always consumed), with chatmem's log
 * and error callbacks. On error returns NULL with the reason. */
static rd_kafka_t *handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf,
                              void *opaque, char *errstr, size_t errstr_size)
{
        rd_kafka_t *rk;
        char why[512];

        rd_kafka_conf_set_log_cb(conf, log_cb);
        rd_kafka_conf_set_error_cb(conf, error_cb);
        rd_kafka_conf_set_opaque(conf, opaque);
        rk = rd_kafka_new(type, conf, why, sizeof(why));
        if (!rk) {
                snprintf(errstr, errstr_size, "cannot create %s: %s",
                         type == RD_KAFKA_CONSUMER ? "consumer" : "producer",
                         why);
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        return rk; /* conf is now owned by rk */
}

rd_kafka_t *cm_kafka_consumer_new(
    const cm_config_t *cfg, const char *group,
    void (*rebalance)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque),
    void *opaque, char *errstr, size_t errstr_size)
{
        return cm_kafka_consumer_new_stats(cfg, group, rebalance, NULL, 0,
                                           opaque, errstr, errstr_size);
}

rd_kafka_t *cm_kafka_consumer_new_stats(
    const cm_config_t *cfg, const char *group,
    void (*rebalance)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *parts, void *opaque),
    int (*stats)(rd_kafka_t *rk, char *json, size_t json_len, void *opaque),
    int stats_interval_ms, void *opaque, char *errstr, size_t errstr_size)
{
        static const char *const defaults[] = {
            "enable.auto.offset.store",
            "false",
            "enable.auto.commit",
            "true",
            "auto.commit.interval.ms",
            "1000",
            "auto.offset.reset",
            "earliest",
            "enable.partition.eof",
            "false",
            "fetch.wait.max.ms",
            "10",
            "session.timeout.ms",
            "10000",
            "heartbeat.interval.ms",
            "1000",
            NULL,
        };
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_t *rk;
        char interval[16];

        snprintf(interval, sizeof(interval), "%d", stats_interval_ms);
        if (stats && conf_set(conf, "statistics.interval.ms", interval, errstr,
                              errstr_size) == -1) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if ((group &&
             conf_set(conf, "group.id", group, errstr, errstr_size) == -1) ||
            conf_apply(conf, cfg, defaults, errstr, errstr_size) == -1) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (rebalance)
                rd_kafka_conf_set_rebalance_cb(conf, rebalance);
        if (stats)
                rd_kafka_conf_set_stats_cb(conf, stats);
        rk = handle_new(RD_KAFKA_CONSUMER, conf, opaque, errstr, errstr_size);
        if (rk)
                rd_kafka_poll_set_consumer(rk);
        return rk;
}

int cm_kafka_subscribe(rd_kafka_t *rk, const char *topic, char *errstr,
                       size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *topics;
        rd_kafka_resp_err_t err;

        topics = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
        err = rd_kafka_subscribe(rk, topics);
        rd_kafka_topic_partition_list_destroy(topics);
        if (err) {
                snprintf(errstr, errstr_size, "cannot subscribe to '%s': %s",
                         topic, rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

static rd_kafka_t *producer_new(const cm_config_t *cfg, const char *linger_ms,
                                void (*dr)(rd_kafka_t *rk,
                                           const rd_kafka_message_t *m,
                                           void *opaque),
                                void *opaque, char *errstr, size_t errstr_size)
{
        const char *const defaults[] = {
            "enable.idempotence", "true",    "acks", "all",
            "linger.ms",          linger_ms, NULL,
        };
        rd_kafka_conf_t *conf = rd_kafka_conf_new();

        if (conf_apply(conf, cfg, defaults, errstr, errstr_size) == -1) {
                rd_kafka_conf_destroy(conf);
                return NULL;
        }
        if (dr)
                rd_kafka_conf_set_dr_msg_cb(conf, dr);
        return handle_new(RD_KAFKA_PRODUCER, conf, opaque, errstr, errstr_size);
}

rd_kafka_t *cm_kafka_producer_new(
    const cm_config_t *cfg,
    void (*dr)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque),
    void *opaque, char *errstr, size_t errstr_size)
{
        return producer_new(cfg, "2", dr, opaque, errstr, errstr_size);
}

rd_kafka_t *cm_kafka_rpc_producer_new(
    const cm_config_t *cfg,
    void (*dr)(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque),
    void *opaque, char *errstr, size_t errstr_size)
{
        return producer_new(cfg, "0", dr, opaque, errstr, errstr_size);
}

void cm_kafka_rebalance_default(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts,
                                void *opaque)
{
        int cooperative =
            !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
        rd_kafka_error_t *error = NULL;
        rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;

        (void)opaque;
        switch (err) {
        case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
                cm_info("assigned %d partition(s)", parts->cnt);
                if (cooperative)
                        error = rd_kafka_incremental_assign(rk, parts);
                else
                        ret = rd_kafka_assign(rk, parts);
                break;
        case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
                cm_info("revoking %d partition(s)", parts->cnt);
                /* Hand over exactly what we acknowledged. */
                ret = rd_kafka_commit(rk, NULL, 0);
                if (ret && ret != RD_KAFKA_RESP_ERR__NO_OFFSET)
                        cm_warn("commit on revoke failed: %s",
                                rd_kafka_err2str(ret));
                ret = RD_KAFKA_RESP_ERR_NO_ERROR;
                if (cooperative)
                        error = rd_kafka_incremental_unassign(rk, parts);
                else
                        ret = rd_kafka_assign(rk, NULL);
                break;
        default:
                cm_error("rebalance failed: %s", rd_kafka_err2str(err));
                ret = rd_kafka_assign(rk, NULL);
                break;
        }
        if (error) {
                cm_error("incremental rebalance failed: %s",
                         rd_kafka_error_string(error));
                rd_kafka_error_destroy(error);
        } else if (ret) {
                cm_error("rebalance assign failed: %s", rd_kafka_err2str(ret));
        }
}

rd_kafka_resp_err_t cm_kafka_produce(rd_kafka_t *producer, const char *topic,
                                     const void *key, size_t key_len,
                                     char *payload, rd_kafka_headers_t *hdrs,
                                     void *msg_opaque, int64_t deadline_us)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                /* producev takes hdrs over only when it succeeds. */
                err = rd_kafka_producev(
                    producer, RD_KAFKA_V_TOPIC(topic),
                    RD_KAFKA_V_KEY(key, key ? key_len : 0),
                    RD_KAFKA_V_VALUE(payload, payload ? strlen(payload) : 0),
                    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(msg_opaque),
                    RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL ||
                    cm_mono_us() >= deadline_us)
                        return err;
                rd_kafka_poll(producer, 10);
        }
}

size_t cm_kafka_value_max(rd_kafka_t *rk)
{
        char val[32];
        size_t len = sizeof(val);
        long long max = 1000000; /* librdkafka's default */

        if (rd_kafka_conf_get(rd_kafka_conf(rk), "message.max.bytes", val,
                              &len) == RD_KAFKA_CONF_OK)
                cm_parse_int(val, 0, 1000000000, &max);
        return max > CM_KAFKA_MESSAGE_OVERHEAD
                   ? (size_t)(max - CM_KAFKA_MESSAGE_OVERHEAD)
                   : 0;
}

int cm_kafka_delivery_retriable(rd_kafka_resp_err_t err)
{
        switch (err) {
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_INVALID_MSG:
        case RD_KAFKA_RESP_ERR_INVALID_RECORD:
        case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
        case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
        case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
        case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
        case RD_KAFKA_RESP_ERR__INVALID_ARG:
        case RD_KAFKA_RESP_ERR__FATAL:
        case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
        case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
                return 0;
        default:
                return 1;
        }
}

int cm_kafka_produce_again(rd_kafka_t *producer, const rd_kafka_message_t *m)
{
        rd_kafka_resp_err_t err;

        err = rd_kafka_producev(producer, RD_KAFKA_V_RKT(m->rkt),
                                RD_KAFKA_V_KEY(m->key, m->key_len),
                                RD_KAFKA_V_VALUE(m->payload, m->len),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(m->_private), RD_KAFKA_V_END);
        if (err) {
                cm_error("cannot produce to '%s' again: %s",
                         rd_kafka_topic_name(m->rkt), rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

void cm_kafka_request_route(const rd_kafka_headers_t *hdrs,
                            cm_request_route_t *route, char rid[CM_ID_MAX + 1],
                            char *topic, size_t topic_size, const void **corr,
                            size_t *corr_len)
{
        const void *v;
        size_t len;

        memset(route, 0, sizeof(*route));
        *corr = NULL;
        *corr_len = 0;
        if (!hdrs)
                return;
        if (rd_kafka_header_get_last(hdrs, "kafka_correlationId", &v, &len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            v && len > 0 && len <= CM_KAFKA_CORR_MAX) {
                *corr = v;
                *corr_len = len;
                if (cm_request_id_from_bytes(v, len, rid) == 0)
                        route->request_id = rid;
        }
        if (rd_kafka_header_get_last(hdrs, "kafka_replyTopic", &v, &len) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            v && len > 0 && len < topic_size && !memchr(v, '\0', len)) {
                memcpy(topic, v, len);
                topic[len] = '\0';
                route->reply_to = topic;
        }
}

void cm_kafka_offset_store(const rd_kafka_message_t *m)
{
        rd_kafka_resp_err_t err;

        err = rd_kafka_offset_store(m->rkt, m->partition, m->offset);
        if (err && err != RD_KAFKA_RESP_ERR__STATE)
                cm_error("cannot store offset %lld of '%s' [%d]: %s",
                         (long long)m->offset, rd_kafka_topic_name(m->rkt),
                         (int)m->partition, rd_kafka_err2str(err));
}

int cm_kafka_pause_all(rd_kafka_t *rk, int pause,
                       const rd_kafka_topic_partition_list_t *except,
                       char *errstr, size_t errstr_size)
{
        rd_kafka_topic_partition_list_t *parts = NULL;
        rd_kafka_resp_err_t err;
        int i;

        err = rd_kafka_assignment(rk, &parts);
        if (err) {
                snprintf(errstr, errstr_size, "cannot read assignment: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        for (i = 0; except && i < except->cnt; i++)
                rd_kafka_topic_partition_list_del(parts, except->elems[i].topic,
                                                  except->elems[i].partition);
        if (parts->cnt > 0) {
                if (pause)
                        err = rd_kafka_pause_partitions(rk, parts);
                else
                        err = rd_kafka_resume_partitions(rk, parts);
        }
        rd_kafka_topic_partition_list_destroy(parts);
        if (err) {
                snprintf(errstr, errstr_size, "cannot %s partitions: %s",
                         pause ? "pause" : "resume", rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

int cm_kafka_commit(rd_kafka_t *rk, char *errstr, size_t errstr_size)
{
        rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);

        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
                snprintf(errstr, errstr_size, "commit failed: %s",
                         rd_kafka_err2str(err));
                return -1;
        }
        return 0;
}

void cm_kafka_consumer_close(rd_kafka_t *rk)
{
        rd_kafka_resp_err_t err;

        if (!rk)
                return;
        err = rd_kafka_commit(rk, NULL, 0);
        if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
                cm_warn("final commit failed: %s", rd_kafka_err2str(err));
        err = rd_kafka_consumer_close(rk);
        if (err)
                cm_warn("consumer close: %s", rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
}

int cm_kafka_producer_close(rd_kafka_t *rk, int timeout_ms)
{
        int left;

        if (!rk)
                return 0;
        rd_kafka_flush(rk, timeout_ms);
        left = rd_kafka_outq_len(rk);
        if (left > 0)
                cm_error("%d message(s) not delivered at shutdown", left);
        rd_kafka_destroy(rk);
        return left;
}

void cm_kafka_sleep(rd_kafka_t *rk, int ms)
{
        while (ms > 0) {
                int step = ms < 100 ? ms : 100;

                if (rk)
                        rd_kafka_poll(rk, step);
                else
                        usleep((useconds_t)step * 1000);
                ms -= step;
        }
}
