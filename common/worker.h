/*
 * worker: the one skeleton of every chatmem daemon (ingest, summarizer,
 * context). A worker's main.c is then its loop and what makes it
 * different:
 *
 *      cm_worker_t w;
 *
 *      if (cm_worker_init(&w, argc, argv, &spec))
 *              return w.status;                        (-h, bad usage)
 *      if (cm_worker_start(&w, group, topic) == 0)
 *              while (cm_worker_running(&w))
 *                      ... cm_worker_poll() and handle ...
 *      return cm_worker_finish(&w);
 *
 * Start-up, in this order: command line and config (with the log level and
 * the signal handlers), tokenizer, Redis store (a failed first connect is
 * only a warning: every store call reconnects), producer, consumer,
 * subscription.
 *
 * Teardown (cm_worker_finish), in the fixed order of STYLE.md: the caller
 * has stopped consuming and finished its batch; commit the stored
 * offsets, flush the producer (bounded), close the consumer, free Redis,
 * curl global cleanup, config.
 *
 * Operations: from cm_worker_start() on, w->mx holds the process's metrics,
 * named chatmem_<worker>_... (the spec's name with '_' for '-'); with
 * metrics.listen set, an HTTP server (httpd.h) serves them with /healthz
 * and /readyz. Ready means: the last Redis call succeeded (and no outage
 * pause is on), partitions are assigned (the group coordinator answered),
 * a broker was up in librdkafka's last statistics (every 2 s, which also
 * give the consumer lag per partition), and no fatal Kafka error. The skeleton
 * itself counts Redis errors, seconds paused for a Redis outage and messages
 * given up.
 *
 * It also holds the three policies every worker shares:
 *   - one backoff (cm_backoff_t): 100 ms doubling to 5 s;
 *   - one Redis-outage pause for consumers (cm_worker_redis_wait): every
 *     assigned partition is paused (partitions assigned meanwhile too), the
 *     consumer is served so that the group membership stays, a message
 *     fetched before the pause took effect is kept and handed out again by
 *     cm_worker_poll() once Redis is back, in order;
 *   - one delivery-retry policy (the producer's delivery callback): a
 *     message that failed for a reason that may pass (timeouts, broker
 *     down) is produced again; one that never will (too large, topic
 *     unknown or not authorized, fatal) is given up and logged. Either way
 *     its cm_delivery_t, if it was produced with one, counts it down once,
 *     when its fate is final.
 */
#ifndef CM_WORKER_H
#define CM_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "config.h"
#include "httpd.h"
#include "metrics.h"
#include "store.h"
#include "tokens.h"

/* Backoff after failures: 100 ms, doubling, at most 5 s. Zeroed = no
 * failure. The clock is the caller's (now_us, cm_mono_us()), so that it
 * can be tested without waiting. */
typedef struct cm_backoff {
        int ms;           /* the last wait; 0 when not failing */
        int64_t until_us; /* no new attempt before this */
} cm_backoff_t;

#define CM_BACKOFF_FIRST_MS 100
#define CM_BACKOFF_MAX_MS   5000

/* A failure at now_us: returns the wait before the next attempt (ms), and
 * sets until_us. Cannot fail. */
int cm_backoff_fail(cm_backoff_t *b, int64_t now_us);
/* 1 when no wait is running at now_us. Cannot fail. */
int cm_backoff_ready(const cm_backoff_t *b, int64_t now_us);
/* A success: returns 1 when it ends a run of failures, else 0. */
int cm_backoff_ok(cm_backoff_t *b);

/* Messages produced whose delivery is not final yet (pass it as the
 * msg_opaque of a produce); the delivery callback counts them down. */
typedef struct cm_delivery {
        long pending; /* produced, fate not final */
        long failed;  /* given up (never delivered) */
} cm_delivery_t;

typedef struct cm_worker cm_worker_t;

typedef struct cm_worker_spec {
        const char *name;    /* "chatmem-ingest": logs and -h */
        const char *summary; /* one line for -h */
        int rpc;             /* 1: request/reply producer (linger.ms=0) */
        /* Called on a revoke before the stored offsets are committed, so
         * that the worker stores what it answered. May be NULL. */
        void (*revoke)(cm_worker_t *w);
        void *opaque; /* the worker's own state, for its callbacks */
        /* 1: each partition assigned is held (paused, its messages not
         * handed out) until the worker releases it at the offset it
         * chose (cm_worker_release). */
        int hold;
} cm_worker_spec_t;

struct cm_worker {
        cm_config_t cfg;
        const cm_tokenizer_t *tk;
        cm_store_t *st;
        rd_kafka_t *producer;
        rd_kafka_t *consumer;
        const cm_worker_spec_t *spec;
        int status; /* exit status when cm_worker_init() returns 1 */

        int redis_paused;     /* partitions paused for a Redis outage */
        cm_backoff_t backoff; /* of the Redis outage */
        /* messages fetched while paused, handed out first */
        rd_kafka_message_t **carry;
        size_t carry_cnt, carry_cap;
        /* with spec->hold: partitions assigned and not yet released */
        rd_kafka_topic_partition_list_t *held;

        int64_t dr_warned_at;        /* mono µs of the last retry warning */
        unsigned long long given_up; /* messages never delivered */

        cm_metrics_t *mx;  /* from cm_worker_start(); NULL before */
        cm_httpd_t *httpd; /* NULL: metrics.listen is "" */
        struct {
                cm_metric_t *redis_errors;   /* failed Redis calls */
                cm_metric_t *paused_seconds; /* partitions paused */
                cm_metric_t *given_up;       /* messages never delivered */
        } m;
        int64_t paused_acct_us; /* mono µs the pause was counted up to */
        /* What /readyz reads from the HTTP thread; written by the worker's
         * thread in cm_worker_running() and the rebalance callback. */
        atomic_int ready_redis;    /* 1: the last Redis call succeeded */
        atomic_int ready_assigned; /* partitions assigned */
        atomic_int ready_fatal;    /* 1: a fatal Kafka error */
        atomic_int ready_kafka;    /* 1: a broker was up at the last
                                      statistics (with metrics.listen) */
};

/*
 * Parses the command line ([-c FILE] [-h]), loads the config, sets the log
 * level and installs the signal handlers. Returns 0 when the worker is to
 * run, or 1 when it is to exit at once with w->status (having said why);
 * either way cm_worker_finish() releases w. spec must outlive w.
 */
int cm_worker_init(cm_worker_t *w, int argc, char **argv,
                   const cm_worker_spec_t *spec);

/*
 * Creates the metrics and, with metrics.listen set, starts the HTTP server
 * (a port that cannot be had fails the start); loads the tokenizer,
 * prepares the store (connecting once; a failure is a
 * warning), creates the producer and the consumer of group, subscribes to
 * topic. Returns 0, or -1 having logged why.
 */
int cm_worker_start(cm_worker_t *w, const char *group, const char *topic);

/* 1 while neither a stop was asked (SIGTERM/SIGINT) nor a client met a
 * fatal error. Also publishes the readiness /readyz reads. Cannot fail. */
int cm_worker_running(cm_worker_t *w);

/*
 * The next message: one carried over from a Redis outage first, else from
 * the consumer, waiting at most timeout_ms. Error events are logged (not
 * partition EOF) and not returned. Returns NULL when there is none. The
 * caller destroys the message.
 */
rd_kafka_message_t *cm_worker_poll(cm_worker_t *w, int timeout_ms);

/* Fills batch with up to max messages, waiting at most timeout_ms for the
 * first. Returns the count. */
size_t cm_worker_poll_batch(cm_worker_t *w, rd_kafka_message_t **batch,
                            size_t max, int timeout_ms);

/*
 * Redis failed with errstr: the first time, pauses every assigned partition
 * and warns; then serves the consumer for one backoff step. Returns 0 to
 * try again, or -1 when the worker is stopping. Counts the error in
 * w->m.redis_errors (a worker that does not use this, context, counts its
 * own there) and the time paused in w->m.paused_seconds.
 */
int cm_worker_redis_wait(cm_worker_t *w, const char *errstr);

/* Redis answered: resumes the partitions if they were paused (but the held
 * ones), and says so. Cannot fail (a failed resume is logged). */
void cm_worker_redis_ok(cm_worker_t *w);

/*
 * Holding partitions (spec->hold): a partition is held from its assignment
 * until the worker decides where to start it. A held partition is paused
 * and its messages are dropped, never handed out (those fetched before the
 * pause included): the release seeks it, so they come again.
 *
 * cm_worker_hold_all() holds every assigned partition again, as if just
 * assigned (after a failed Redis write, ingest must decide anew where to
 * resume). Cannot fail (a failed pause is logged).
 *
 * cm_worker_release() seeks each partition of starts that is held to its
 * offset (a logical one, such as RD_KAFKA_OFFSET_BEGINNING, included) and
 * resumes it (unless a Redis pause is on: then with the others). The
 * partitions of starts that are no longer held (revoked meanwhile) are
 * left alone. Returns 0, or -1 with the reason: those not sought stay
 * held.
 */
void cm_worker_hold_all(cm_worker_t *w);
int cm_worker_release(cm_worker_t *w,
                      const rd_kafka_topic_partition_list_t *starts,
                      char *errstr, size_t errstr_size);

/*
 * Produces payload (a heap string, owned from here on; NULL: a tombstone)
 * to topic, keyed by key (NULL: none), counted in d (NULL: not tracked) until
 * its delivery is final. Waits while the producer's queue is full, as long as
 * the worker runs. Returns 0, or -1 when it could not be queued (logged;
 * payload freed; d unchanged).
 */
int cm_worker_produce(cm_worker_t *w, const char *topic, const char *key,
                      char *payload, cm_delivery_t *d);

/* cm_worker_produce() with the headers hdrs (owned from here on, as
 * payload). */
int cm_worker_produce_headers(cm_worker_t *w, const char *topic,
                              const char *key, char *payload,
                              rd_kafka_headers_t *hdrs, cm_delivery_t *d);

/* Sends message m to the dead-letter topic with the reason why (a DLQ
 * entry of DESIGN.md keyed by m's key, both cut as cm_dlq_encode() says),
 * counted in d. Returns as cm_worker_produce(). */
int cm_worker_to_dlq(cm_worker_t *w, const rd_kafka_message_t *m,
                     const char *why, cm_delivery_t *d);

/* Serves the producer until d has nothing pending. Returns 0, or -1 when
 * the worker is stopping first (then what is pending is not known to be
 * delivered: its offsets must not be stored). */
int cm_worker_wait_delivered(cm_worker_t *w, const cm_delivery_t *d);

/* Requests a fold of the session (a compaction job on the compaction
 * topic, keyed by session). Not tracked: a job lost is asked for again
 * once its mark in Redis is stale. */
void cm_worker_ask_compaction(cm_worker_t *w, const char *user_id,
                              const char *conversation_id);

/* Tears down in the order above and releases w. Returns the exit status:
 * 0 after a clean run, else 1 (start-up failed, or messages were left
 * undelivered), or w->status when cm_worker_init() returned 1. */
int cm_worker_finish(cm_worker_t *w);

#endif
