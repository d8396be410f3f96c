/*
 * The context-request decoder with its Kafka headers
 * (cm_request_decode_routed). An input is "<headers>\xff<body>", split at
 * its first 0xff (none: all body, no headers); <headers> is lines
 * "name=value", or "name" for a header without a value. The route is read
 * from them as the context worker reads it (cm_kafka_request_route()).
 *
 * Invariants: a decoded request has a valid request_id, and encodes
 * (cm_request_encode) to a document that decodes, without a route, to the
 * same request; a refused one keeps only a request_id ("" or valid) and a
 * reply_to, with a reason.
 */
#include "codec.h"
#include "fuzz.h"
#include "kafka.h"

/* Adds the header lines of buf[0..len) to hdrs. */
static void headers_add(rd_kafka_headers_t *hdrs, const char *buf, size_t len)
{
        const char *p = buf, *end = buf + len, *nl, *eq;

        while (p < end) {
                nl = memchr(p, '\n', (size_t)(end - p));
                if (!nl)
                        nl = end;
                eq = memchr(p, '=', (size_t)(nl - p));
                if (eq)
                        rd_kafka_header_add(hdrs, p, eq - p, eq + 1,
                                            nl - eq - 1);
                else
                        rd_kafka_header_add(hdrs, p, nl - p, NULL, 0);
                p = nl + 1;
        }
}

static int requests_equal(const cm_request_t *a, const cm_request_t *b)
{
        size_t i;

        if (strcmp(a->request_id, b->request_id) ||
            strcmp(a->user_id, b->user_id) ||
            strcmp(a->conversation_id, b->conversation_id) ||
            !fuzz_str_eq(a->reply_to, b->reply_to) ||
            a->max_tokens != b->max_tokens || a->recent != b->recent ||
            !fuzz_str_eq(a->query, b->query) ||
            a->scope_user != b->scope_user ||
            a->has_history != b->has_history ||
            a->history_cnt != b->history_cnt)
                return 0;
        for (i = 0; i < a->history_cnt; i++)
                if (a->history[i].role != b->history[i].role ||
                    a->history[i].content_len != b->history[i].content_len ||
                    memcmp(a->history[i].content, b->history[i].content,
                           a->history[i].content_len))
                        return 0;
        return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        rd_kafka_headers_t *hdrs = rd_kafka_headers_new(4);
        cm_request_route_t route;
        cm_request_t req, again;
        char rid[CM_ID_MAX + 1], topic[256], errstr[512] = "";
        const void *corr;
        size_t corr_len;
        const char *body = (const char *)data;
        const uint8_t *sep = size ? memchr(data, FUZZ_SEP, size) : NULL;
        size_t body_len = size;
        char *json;

        if (sep) {
                headers_add(hdrs, body, (size_t)(sep - data));
                body = (const char *)sep + 1;
                body_len = size - (size_t)(sep - data) - 1;
        }
        cm_kafka_request_route(hdrs, &route, rid, topic, sizeof(topic), &corr,
                               &corr_len);
        FUZZ_CHECK(corr_len <= CM_KAFKA_CORR_MAX && !corr == !corr_len);
        FUZZ_CHECK(!route.request_id ||
                   cm_id_check(route.request_id, strlen(route.request_id), 1,
                               NULL, 0) == 0);
        if (cm_request_decode_routed(body, body_len, FUZZ_MAX_CONTENT, &route,
                                     &req, errstr, sizeof(errstr)) == -1) {
                FUZZ_CHECK(errstr[0] != '\0');
                FUZZ_CHECK(!req.request_id[0] ||
                           cm_id_check(req.request_id, strlen(req.request_id),
                                       1, NULL, 0) == 0);
                FUZZ_CHECK(!req.user_id[0] && !req.query && !req.history &&
                           !req.history_cnt);
                cm_request_release(&req);
                goto out;
        }
        FUZZ_CHECK(cm_id_check(req.request_id, strlen(req.request_id), 1, NULL,
                               0) == 0);
        json = cm_request_encode(&req);
        FUZZ_CHECK(cm_request_decode(json, strlen(json), FUZZ_MAX_CONTENT,
                                     &again, errstr, sizeof(errstr)) == 0);
        FUZZ_CHECK(requests_equal(&req, &again));
        free(json);
        cm_request_release(&again);
        cm_request_release(&req);
out:
        rd_kafka_headers_destroy(hdrs);
        return 0;
}
