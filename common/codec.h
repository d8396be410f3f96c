/*
 * codec: JSON (json-c) encoders and strict decoders for every message of
 * DESIGN.md: chat events, context requests, context replies (and the error
 * reply), DLQ entries, and the message entries stored in Redis.
 *
 * Decoders accept only well-formed UTF-8 JSON objects, as strict as json.h
 * says (no duplicate keys, no NaN, ...), and no string with a NUL. On any
 * problem they return -1 and write one line to errstr naming the field and
 * the reason, e.g. "field 'user_id': forbidden character '/' at byte 3".
 * Unknown extra fields are ignored (forward compatibility). Decoded
 * structures own their strings; release them with the matching _release(),
 * which accepts a zeroed struct.
 *
 * Encoders always produce valid UTF-8: a string that is not (a caller's
 * bug) is encoded repaired as text.h says, each maximal subpart of an
 * ill-formed sequence as one U+FFFD.
 *
 * The domain types it carries live with their owners: cm_message_t and
 * cm_role_t in message.h, cm_profile_t in profile.h (included here).
 *
 * Ids (user_id, conversation_id): 1..128 bytes of [A-Za-z0-9._@-].
 * event_id, request_id: 1..128 bytes of [A-Za-z0-9._@:-].
 */
#ifndef CM_CODEC_H
#define CM_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "message.h" /* cm_message_t, cm_role_t */
#include "profile.h" /* cm_profile_t */

#define CM_ID_MAX 128

typedef enum cm_event_type {
        CM_EVENT_MESSAGE = 0,
        CM_EVENT_PROFILE_SET,
        CM_EVENT_SESSION_DELETE,
        CM_EVENT_USER_DELETE,
} cm_event_type_t;

/* "message", "profile.set", "session.delete", "user.delete". */
const char *cm_event_type_str(cm_event_type_t type);

/* Validates an id as described above. Returns 0, or -1 with the reason in
 * errstr (the field name is the caller's to add). */
int cm_id_check(const char *s, size_t len, int allow_colon, char *errstr,
                size_t errstr_size);

typedef struct cm_event {
        cm_event_type_t type;
        char event_id[CM_ID_MAX + 1];
        char user_id[CM_ID_MAX + 1];
        char conversation_id[CM_ID_MAX + 1]; /* "default" when absent */
        cm_message_t msg;     /* CM_EVENT_MESSAGE: role, content, ts */
        cm_profile_t profile; /* CM_EVENT_PROFILE_SET */
} cm_event_t;

/*
 * Decodes a chat event from buf[0..len). Content longer than
 * max_content_bytes is refused. event_id is required for every type.
 * On error returns -1 with the reason in errstr; ev is then released.
 */
int cm_event_decode(const char *buf, size_t len, size_t max_content_bytes,
                    cm_event_t *ev, char *errstr, size_t errstr_size);
void cm_event_release(cm_event_t *ev);
/* Encodes ev as a JSON object (event_id, type, ids, and the fields of its
 * type). Returns a heap string the caller frees. Cannot fail. */
char *cm_event_encode(const cm_event_t *ev);

typedef struct cm_request {
        char request_id[CM_ID_MAX + 1];
        char user_id[CM_ID_MAX + 1];
        char conversation_id[CM_ID_MAX + 1]; /* "default" when absent */
        char *reply_to;        /* owned; NULL = the configured default */
        int max_tokens;        /* 0 = the configured default; else 1..1000000 */
        int recent;            /* -1 = the configured default; else 0..1000 */
        char *query;           /* owned; NULL when absent */
        int scope_user;        /* 1: "scope": "user" (recall from every
                                  conversation of the user); 0: "session" */
        cm_message_t *history; /* owned; NULL when absent */
        size_t history_cnt;
        int has_history;      /* 1 when the request carried "history" */
        cm_profile_t profile; /* "profile": what the application knows of
                                 the user; its fields win in the reply */
        int stateless;        /* 1: "stored": false, the context is built from
                                 the request alone (nothing stored is read) */
} cm_request_t;

/*
 * Decodes a context request. request_id and reply_to are each read
 * whatever the other field holds, so that an error reply can be sent: when
 * the request_id is readable (present and valid) it is in req->request_id
 * even when another field is bad, else req->request_id is ""; when reply_to
 * is a valid topic name it is kept in req->reply_to, else that is NULL.
 * This holds too for a document the strict parse refuses but json-c can
 * still read (invalid UTF-8 or a duplicate key elsewhere). On error returns
 * -1 with the reason in errstr (the first fault of request_id, reply_to,
 * then the other fields).
 * history entries: {role, content}; content obeys max_content_bytes.
 * profile: as in a profile.set event.
 * reply_to: 1..249 bytes of [A-Za-z0-9._-] (a Kafka topic name).
 */
int cm_request_decode(const char *buf, size_t len, size_t max_content_bytes,
                      cm_request_t *req, char *errstr, size_t errstr_size);
void cm_request_release(cm_request_t *req);

/*
 * Request routing by Kafka headers (Spring's ReplyingKafkaTemplate,
 * SmallRye): kafka_correlationId and kafka_replyTopic stand for request_id
 * and reply_to when the body lacks them. Either field may be NULL.
 */
typedef struct cm_request_route {
        const char *request_id; /* from cm_request_id_from_bytes() */
        const char *reply_to;   /* the header's topic name, as given */
} cm_request_route_t;

/* cm_request_decode() with the route's fields standing for a request_id
 * or reply_to the body lacks (route NULL: none; a reply_to that is no
 * topic name is ignored). The body wins where it has the field. */
int cm_request_decode_routed(const char *buf, size_t len,
                             size_t max_content_bytes,
                             const cm_request_route_t *route, cm_request_t *req,
                             char *errstr, size_t errstr_size);

/* The request_id that correlation bytes b[0..len) stand for: the bytes
 * themselves when they are a valid id, else their lowercase hex (at most
 * 64 bytes: Spring sends a 16-byte UUID). Returns 0, or -1 when len is 0
 * or too long for either. */
int cm_request_id_from_bytes(const void *b, size_t len,
                             char out[CM_ID_MAX + 1]);
/* Encodes a request (for the CLI). Returns a heap string. Cannot fail. */
char *cm_request_encode(const cm_request_t *req);

typedef struct cm_reply_meta {
        int64_t total_messages;
        int summarized;
        int cached;
        int tokens;
        int full_history_tokens;
        int degraded;
        int64_t build_us;
        int recalled;      /* earlier messages included for the query */
        int64_t recall_us; /* time spent recalling them */
} cm_reply_meta_t;

/* The parts of a reply; the encoder borrows every pointer. */
typedef struct cm_reply {
        const char *request_id; /* NULL: omitted (context.prebuilt) */
        const char *user_id;
        const char *conversation_id;
        const char *context;         /* the context text */
        const cm_profile_t *profile; /* encoded as {} fields present only */
        const char *summary;         /* NULL or "" gives "" */
        const cm_message_t *recent;  /* {role, content} each */
        size_t recent_cnt;
        cm_reply_meta_t meta;
} cm_reply_t;

/* Encodes a reply. Returns a heap string. Cannot fail. */
char *cm_reply_encode(const cm_reply_t *reply);

/* Encodes {"request_id", "error": {"code", "message"}}. request_id may be
 * NULL or "" only when it could not be read (then it is omitted). Returns a
 * heap string. Cannot fail. */
char *cm_error_reply_encode(const char *request_id, const char *code,
                            const char *message);

/*
 * A decoded reply, for the CLI and tests. Owns everything. On error returns
 * -1 with the reason in errstr. When the reply is an error reply, is_error
 * is 1 and error_code/error_message are set; the rest is empty.
 */
typedef struct cm_reply_doc {
        char *request_id;
        int is_error;
        char *error_code;
        char *error_message;
        char *user_id;
        char *conversation_id;
        char *context;
        cm_profile_t profile;
        char *summary;
        cm_message_t *recent;
        size_t recent_cnt;
        cm_reply_meta_t meta;
} cm_reply_doc_t;

int cm_reply_decode(const char *buf, size_t len, cm_reply_doc_t *doc,
                    char *errstr, size_t errstr_size);
void cm_reply_doc_release(cm_reply_doc_t *doc);

/* Bytes of a payload, and of a key, that a DLQ entry keeps: an entry
 * stays far below a Kafka message's 1 MB limit (at most about 6 times
 * this, were every byte escaped), so that it can always be delivered. */
#define CM_DLQ_PAYLOAD_MAX 65536
#define CM_DLQ_KEY_MAX     1024

/* Encodes a DLQ entry {"topic","partition","offset","key","payload",
 * "error"}. key and payload are raw bytes: when valid UTF-8 they are kept
 * as strings, otherwise they are stored base64-encoded in "key_base64" /
 * "payload_base64" instead. key may be NULL (then "key" is null). A
 * payload longer than CM_DLQ_PAYLOAD_MAX keeps its first bytes only (text
 * cut on a character boundary), and the entry then also has
 * "payload_truncated": true and "payload_bytes": payload_len; likewise a
 * key longer than CM_DLQ_KEY_MAX ("key_truncated", "key_bytes").
 * Returns a heap string. Cannot fail. */
char *cm_dlq_encode(const char *topic, int32_t partition, int64_t offset,
                    const void *key, size_t key_len, const void *payload,
                    size_t payload_len, const char *error);

/*
 * Stored message entry, as kept in the Redis list of a session:
 * {"seq":N,"event_id":"…","role":"user","content":"…","ts":N,"tokens":N}
 * cm_stored_tail_encode() gives everything after "seq":N, — the text from
 * ,"event_id" to the closing brace — because the sequence number is
 * assigned inside Redis. Returns a heap string. Cannot fail.
 */
char *cm_stored_tail_encode(const cm_message_t *msg, const char *event_id);
/* Decodes one stored entry. On error returns -1 with the reason. */
int cm_stored_decode(const char *buf, size_t len, cm_message_t *msg,
                     char *errstr, size_t errstr_size);

/* A compaction job (chat.compaction, internal):
 * {"user_id","conversation_id","requested_at"}. */
typedef struct cm_compaction_job {
        char user_id[CM_ID_MAX + 1];
        char conversation_id[CM_ID_MAX + 1]; /* "default" when absent */
        int64_t requested_at;                /* ms since epoch; 0 absent */
} cm_compaction_job_t;

/* Encodes a compaction job. Returns a heap string. Cannot fail. */
char *cm_compaction_job_encode(const char *user_id, const char *conversation_id,
                               int64_t requested_at);
/* Decodes a compaction job from buf[0..len). On error returns -1 with the
 * reason in errstr; job is then zeroed. */
int cm_compaction_job_decode(const char *buf, size_t len,
                             cm_compaction_job_t *job, char *errstr,
                             size_t errstr_size);

/* The session key "<user_id>:<conversation_id>" (DESIGN.md): the Kafka
 * message key of every session-scoped topic. CM_SESSION_KEY_MAX bytes hold
 * any of them with the NUL. */
#define CM_SESSION_KEY_MAX (2 * CM_ID_MAX + 2)

/* Writes the session key of user_id/conversation_id (valid ids) to out.
 * Returns its length. Cannot fail. */
size_t cm_session_key(char out[CM_SESSION_KEY_MAX], const char *user_id,
                      const char *conversation_id);

/* Splits a session key into its ids, each checked as an id. Returns 0, or
 * -1 with the reason in errstr (the outputs are then ""). */
int cm_session_key_split(const char *key, char user_id[CM_ID_MAX + 1],
                         char conversation_id[CM_ID_MAX + 1], char *errstr,
                         size_t errstr_size);

/*
 * Decoders for producers that hold a message in parts (the CLI). Each
 * applies the checks, and gives the error messages, of the same field
 * inside a message, so that what a worker would refuse is refused before
 * it is sent.
 */

/* Fields that cm_event_decode_defaults() adds to an event that lacks them;
 * NULL: no default. role applies to message events only. */
typedef struct cm_event_defaults {
        const char *event_id;
        const char *user_id;
        const char *conversation_id;
        const char *role;
} cm_event_defaults_t;

/*
 * Decodes a chat event as cm_event_decode() does, after adding to it each
 * field of defaults that buf lacks. *filled is set to 1 when a default was
 * used (then buf is not the event: send cm_event_encode(ev)), else 0. On
 * error returns -1 with the reason in errstr; ev is then released.
 */
int cm_event_decode_defaults(const char *buf, size_t len,
                             size_t max_content_bytes,
                             const cm_event_defaults_t *defaults, int *filled,
                             cm_event_t *ev, char *errstr, size_t errstr_size);

/* Decodes buf[0..len) as the profile of a profile.set event. On error
 * returns -1 with the reason in errstr (fields named "profile.<name>");
 * profile is then released. */
int cm_profile_decode(const char *buf, size_t len, cm_profile_t *profile,
                      char *errstr, size_t errstr_size);

/*
 * Decodes buf[0..len), a JSON array of {role, content}, as the history of
 * a context request (fields named "history[i].<name>"); content obeys
 * max_content_bytes. On success *msgs is a new array of *cnt messages
 * (NULL when empty): hand it to a cm_request_t, or release each and free
 * it. On error returns -1 with the reason in errstr; *msgs is NULL.
 */
int cm_history_decode(const char *buf, size_t len, size_t max_content_bytes,
                      cm_message_t **msgs, size_t *cnt, char *errstr,
                      size_t errstr_size);

/* 1 when buf[0..len), a reply written by cm_reply_encode() or
 * cm_error_reply_encode(), is an error reply, else 0: a test without
 * parsing, for a reader that only counts (the bench decoding 20k replies a
 * second would measure itself). Decode with cm_reply_decode() to read one.
 * Cannot fail. */
int cm_reply_is_error(const char *buf, size_t len);

#endif
