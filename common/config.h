/*
 * config: chatmem settings from a libconfig file plus environment overrides.
 *
 * Order of precedence, lowest first: built-in defaults (those of the seed),
 * the file, then the environment. Every setting has an environment name:
 * CHATMEM_ followed by its path upper-cased with '.' as '_' (for example
 * context.max_tokens is CHATMEM_CONTEXT_MAX_TOKENS); redis_url also reads
 * plain REDIS_URL, below CHATMEM_REDIS_URL.
 *
 * The group kafka = { ... } is passed through to librdkafka: libconfig names
 * cannot hold '.', so a '_' in a name there stands for '.'
 * (sasl_mechanisms = "PLAIN" sets sasl.mechanisms). Environment variables
 * CHATMEM_KAFKA_PROP_<NAME> do the same (CHATMEM_KAFKA_PROP_SASL_PASSWORD).
 *
 * An unknown key, a value of the wrong type or out of range, or a file that
 * does not parse is an error at start-up that names the key (or the line).
 */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stddef.h>

typedef struct cm_kafka_prop {
        char *name; /* librdkafka property name, with dots */
        char *value;
} cm_kafka_prop_t;

typedef struct cm_config {
        /* where */
        char *kafka_brokers;  /* "127.0.0.1:9092" */
        char *redis_url;      /* "redis://127.0.0.1:6379/0" */
        char *key_prefix;     /* "chatmem:" */
        char *log_level;      /* "info" */
        char *log_format;     /* "text" | "json" (one object per line) */
        char *metrics_listen; /* "": no HTTP endpoints; "127.0.0.1:9464",
                                 ":9464" (every address) */

        /* lifetimes, seconds; 0 = never expire */
        int session_ttl; /* 3600 */
        int profile_ttl; /* 2592000 (30 days) */

        /* topics */
        char *topic_events;     /* "chat.events" */
        char *topic_compaction; /* "chat.compaction" */
        char *topic_dlq;        /* "chat.dlq" */
        char *topic_requests;   /* "context.requests" */
        char *topic_replies;    /* "context.replies" */
        char *topic_prebuilt;   /* "context.prebuilt" */

        /* limits */
        int max_content_bytes; /* 65536 */

        /* ingest */
        char *ingest_group;       /* "chatmem-ingest" */
        int ingest_batch_size;    /* 1000 events per Redis pipeline */
        int dedupe_window;        /* 1000 recent event_ids kept per session */
        char *ingest_topic_reset; /* "stop" | "replay": a partition whose
                                     applied-offset record is past its end */

        /* context */
        char *context_group;      /* "chatmem-context" */
        int recent_verbatim;      /* 3 */
        int summarize_after;      /* 5 */
        int max_tokens;           /* 2000 */
        int cache_sessions;       /* 10000 entries of the degraded-mode cache */
        char *tokenizer;          /* "cl100k_base"; "o200k_base", "estimate" */
        int prebuilt;             /* 1: publish changed sessions' contexts */
        int prebuilt_interval_ms; /* 1000: at most one per session per */
        char *reply_topics;       /* "context.replies*": allowed reply_to,
                                     names and prefix* patterns, comma
                                     separated */
        int deadline_ms;          /* 200: every request is answered within this
                                     of being taken from Kafka, degraded if Redis
                                     has not answered by then */

        /* summarizer */
        char *summarizer_group; /* "chatmem-summarizer" */
        char *summarizer_kind;  /* "extractive" | "llm" */
        int summary_max_tokens; /* 300 */

        /* archive: folded messages kept for recall */
        int archive_max_messages; /* 10000 per session; 0 = no archive */
        int archive_ttl;          /* -1: that of the profile; 0 = never */

        /* recall: earlier messages relevant to the request's query */
        int recall_implicit; /* 1: without query, the newest user message */
        int recall_summary_share;   /* 25: % of max_tokens the summary may
                                       keep when messages are recalled */
        int recall_min_score_share; /* 20: hits below this % of the best
                                       hit's score are not recalled */
        int recall_cache_sessions;  /* 4096 sessions' indexes kept */

        /* llm (summarizer.kind = "llm") */
        char *llm_base_url;    /* "http://127.0.0.1:8080" (OpenAI-compatible) */
        char *llm_model;       /* "llama-3.1-8b-instant" */
        char *llm_api_key_env; /* "CHATMEM_LLM_API_KEY": env var of the key */
        char *llm_temperature; /* "0.2", a decimal number 0..2 */
        int llm_timeout_ms;    /* 15000 */
        int llm_max_retries;   /* 3 */
        int llm_breaker_failures;    /* 5 consecutive failed calls */
        int llm_breaker_cooldown_ms; /* 30000 */

        /* librdkafka pass-through, in file order, then environment */
        cm_kafka_prop_t *kafka_props;
        size_t kafka_prop_cnt;
} cm_config_t;

/* Fills cfg with the built-in defaults. Cannot fail. Release with
 * cm_config_release(). */
void cm_config_init(cm_config_t *cfg);

/*
 * Reads the file at path (NULL: $CHATMEM_CONFIG if set, otherwise no file)
 * over the values already in cfg, then applies the environment.
 * On error returns -1 and writes the reason to errstr; cfg then holds a
 * mix of old and new values and must only be released.
 */
int cm_config_load(cm_config_t *cfg, const char *path, char *errstr,
                   size_t errstr_size);

/* Sets one setting by its path ("context.max_tokens", "kafka.linger_ms"
 * goes to the pass-through) from a string, as the environment does.
 * On error returns -1 and writes the reason to errstr. */
int cm_config_set(cm_config_t *cfg, const char *path, const char *value,
                  char *errstr, size_t errstr_size);

/* 1 when a request may name topic as its reply_to: it is the default
 * reply topic (topics.replies), or matches one entry of
 * context.reply_topics (a name, or a prefix ending in '*'). Else 0.
 * Cannot fail. */
int cm_config_reply_topic_allowed(const cm_config_t *cfg, const char *topic);

/* Frees everything cfg owns; cfg may be NULL. */
void cm_config_release(cm_config_t *cfg);

#endif
