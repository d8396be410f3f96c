/*
 * codec: see codec.h for the contract.
 *
 * Decoding: cm_json_parse_object() (json.c) turns the bytes into a json-c
 * tree only when they are one strict JSON object; the field readers below
 * then take each field with its type and limits. Every string taken out of
 * the tree is checked again: valid UTF-8, no NUL character (our structures
 * hold NUL-terminated strings), and its length limit.
 *
 * Encoders build a json-c tree and serialize it plain, without escaping
 * '/'. Numbers are always int64. A string that is not valid UTF-8 (a
 * caller's bug) is encoded repaired as text.h says (each maximal subpart of
 * an ill-formed sequence becomes one U+FFFD), so that the output is always
 * valid UTF-8 JSON.
 */
#include "codec.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "text.h"
#include "util.h"

#define PROFILE_STR_MAX       256
#define PROFILE_INTERESTS_MAX 64
#define HISTORY_MAX           10000
#define MAX_TOKENS_MAX        1000000
#define RECENT_MAX            1000
#define TOPIC_MAX             249
#define DEFAULT_CONVERSATION  "default"

static const int json_flags =
    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE;

static const char *const type_names[] = {"message", "profile.set",
                                         "session.delete", "user.delete"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *cm_event_type_str(cm_event_type_t type)
{
        if ((size_t)type >= COUNT(type_names))
                return "unknown";
        return type_names[type];
}

int cm_id_check(const char *s, size_t len, int allow_colon, char *errstr,
                size_t errstr_size)
{
        const char *set = allow_colon ? "[A-Za-z0-9._@:-]" : "[A-Za-z0-9._@-]";
        size_t i;

        if (!s || len < 1 || len > CM_ID_MAX)
                return cm_errf(errstr, errstr_size,
                               "must be 1..%d bytes of %s, got %zu bytes",
                               CM_ID_MAX, set, s ? len : 0);
        for (i = 0; i < len; i++) {
                unsigned char c = (unsigned char)s[i];
                char what[CM_TEXT_BYTE_NAME_MAX];

                if (cm_isalnum(c) || c == '.' || c == '_' || c == '@' ||
                    c == '-' || (allow_colon && c == ':'))
                        continue;
                cm_text_byte_name(c, what);
                return cm_errf(
                    errstr, errstr_size,
                    "forbidden character %s at byte %zu (allowed: %s)", what, i,
                    set);
        }
        return 0;
}

/*
 * Field readers. Each takes the value (NULL is JSON null) and the field's
 * name for errors, and returns 0 or -1 with "field 'name': ..." in errstr.
 */

typedef struct dec {
        char *errstr;
        size_t errstr_size;
} dec_t;

/* Returns 1 and sets *val when obj has key (*val NULL for null), else 0. */
static int member(json_object *obj, const char *key, json_object **val)
{
        *val = NULL;
        return json_object_object_get_ex(obj, key, val) ? 1 : 0;
}

static int missing(dec_t *d, const char *field)
{
        return cm_errf(d->errstr, d->errstr_size, "missing field '%s'", field);
}

static int want_type(dec_t *d, json_object *v, json_type type,
                     const char *field, const char *what)
{
        if (json_object_is_type(v, type))
                return 0;
        return cm_errf(d->errstr, d->errstr_size,
                       "field '%s': must be %s, got %s", field, what,
                       cm_json_type_name(v));
}

/* A string of at most max bytes (and at least one when nonempty). *out
 * borrows from v. */
static int str_value(dec_t *d, json_object *v, const char *field, size_t max,
                     int nonempty, const char **out, size_t *out_len)
{
        const char *s;
        size_t len;

        if (want_type(d, v, json_type_string, field, "a string") == -1)
                return -1;
        s = json_object_get_string(v);
        len = (size_t)json_object_get_string_len(v);
        if (!cm_utf8_valid(s, len))
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': invalid UTF-8", field);
        if (memchr(s, '\0', len))
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': must not contain NUL (\\u0000)",
                               field);
        if (len > max)
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': %zu bytes is over the limit of %zu",
                               field, len, max);
        if (nonempty && len == 0)
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': must not be empty", field);
        *out = s;
        if (out_len)
                *out_len = len;
        return 0;
}

/* Like str_value, but returns a heap copy in *out. */
static int str_dup(dec_t *d, json_object *v, const char *field, size_t max,
                   int nonempty, char **out, size_t *out_len)
{
        const char *s;
        size_t len;

        if (str_value(d, v, field, max, nonempty, &s, &len) == -1)
                return -1;
        *out = cm_strndup(s, len);
        if (out_len)
                *out_len = len;
        return 0;
}

static int int_value(dec_t *d, json_object *v, const char *field, int64_t min,
                     int64_t max, int64_t *out)
{
        int64_t n;

        if (want_type(d, v, json_type_int, field, "an integer") == -1)
                return -1;
        n = json_object_get_int64(v);
        /* json-c keeps 2^63..2^64-1 as uint64 and clamps beyond that. */
        if (n == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': integer out of range", field);
        if (n < min || n > max) {
                if (min == 0 && max == INT64_MAX)
                        return cm_errf(d->errstr, d->errstr_size,
                                       "field '%s': must be a non-negative "
                                       "integer, got %lld",
                                       field, (long long)n);
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': must be an integer in %lld..%lld, "
                               "got %lld",
                               field, (long long)min, (long long)max,
                               (long long)n);
        }
        *out = n;
        return 0;
}

static int bool_value(dec_t *d, json_object *v, const char *field, int *out)
{
        if (want_type(d, v, json_type_boolean, field, "a boolean") == -1)
                return -1;
        *out = json_object_get_boolean(v) ? 1 : 0;
        return 0;
}

static int id_value(dec_t *d, json_object *v, const char *field,
                    int allow_colon, char out[CM_ID_MAX + 1])
{
        char why[192];
        const char *s;
        size_t len;

        if (str_value(d, v, field, SIZE_MAX, 0, &s, &len) == -1)
                return -1;
        if (cm_id_check(s, len, allow_colon, why, sizeof(why)) == -1)
                return cm_errf(d->errstr, d->errstr_size, "field '%s': %s",
                               field, why);
        memcpy(out, s, len);
        out[len] = '\0';
        return 0;
}

/* A required field of obj read as an id. */
static int id_field(dec_t *d, json_object *obj, const char *field,
                    int allow_colon, char out[CM_ID_MAX + 1])
{
        json_object *v;

        if (!member(obj, field, &v))
                return missing(d, field);
        return id_value(d, v, field, allow_colon, out);
}

static int role_value(dec_t *d, json_object *v, const char *field,
                      cm_role_t *out)
{
        const char *s;

        if (str_value(d, v, field, SIZE_MAX, 0, &s, NULL) == -1)
                return -1;
        if (cm_role_parse(s, out) == -1)
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': must be one of user, assistant, "
                               "system",
                               field);
        return 0;
}

/* {role, content} into msg (released by the caller on error). */
static int pair_value(dec_t *d, json_object *v, const char *field,
                      size_t max_content, int nonempty, cm_message_t *msg)
{
        char name[64];
        json_object *f;

        msg->tokens = -1;
        if (want_type(d, v, json_type_object, field, "an object") == -1)
                return -1;
        snprintf(name, sizeof(name), "%s.role", field);
        if (!member(v, "role", &f))
                return missing(d, name);
        if (role_value(d, f, name, &msg->role) == -1)
                return -1;
        snprintf(name, sizeof(name), "%s.content", field);
        if (!member(v, "content", &f))
                return missing(d, name);
        return str_dup(d, f, name, max_content, nonempty, &msg->content,
                       &msg->content_len);
}

/* An array of {role, content} into a new array *out of *cnt entries. */
static int pairs_value(dec_t *d, json_object *v, const char *field,
                       size_t max_cnt, size_t max_content, cm_message_t **out,
                       size_t *cnt)
{
        size_t i, n;

        if (want_type(d, v, json_type_array, field, "an array") == -1)
                return -1;
        n = json_object_array_length(v);
        if (n > max_cnt)
                return cm_errf(
                    d->errstr, d->errstr_size,
                    "field '%s': %zu entries is over the limit of %zu", field,
                    n, max_cnt);
        if (n == 0)
                return 0;
        *out = cm_calloc(n, sizeof(**out));
        for (i = 0; i < n; i++) {
                char name[48];

                snprintf(name, sizeof(name), "%s[%zu]", field, i);
                (*cnt)++; /* counted first so that a release frees it */
                if (pair_value(d, json_object_array_get_idx(v, i), name,
                               max_content, 0, &(*out)[i]) == -1)
                        return -1;
        }
        return 0;
}

/* A profile object. limited: the limits of a profile.set event (strings of
 * 1..256 bytes, at most 64 interests); otherwise anything goes. */
static int profile_value(dec_t *d, json_object *v, const char *field,
                         int limited, cm_profile_t *p)
{
        size_t max = limited ? PROFILE_STR_MAX : SIZE_MAX;
        size_t i, n;
        char name[64];
        json_object *f;

        if (want_type(d, v, json_type_object, field, "an object") == -1)
                return -1;
        snprintf(name, sizeof(name), "%s.name", field);
        if (member(v, "name", &f) &&
            str_dup(d, f, name, max, limited, &p->name, NULL) == -1)
                return -1;
        snprintf(name, sizeof(name), "%s.role", field);
        if (member(v, "role", &f) &&
            str_dup(d, f, name, max, limited, &p->role, NULL) == -1)
                return -1;
        snprintf(name, sizeof(name), "%s.interests", field);
        if (!member(v, "interests", &f))
                return 0;
        if (want_type(d, f, json_type_array, name, "an array") == -1)
                return -1;
        n = json_object_array_length(f);
        if (limited && n > PROFILE_INTERESTS_MAX)
                return cm_errf(
                    d->errstr, d->errstr_size,
                    "field '%s': %zu entries is over the limit of %d", name, n,
                    PROFILE_INTERESTS_MAX);
        if (n == 0)
                return 0;
        p->interests = cm_calloc(n, sizeof(*p->interests));
        for (i = 0; i < n; i++) {
                char item[96];

                snprintf(item, sizeof(item), "%s[%zu]", name, i);
                if (str_dup(d, json_object_array_get_idx(f, i), item, max,
                            limited, &p->interests[i], NULL) == -1)
                        return -1;
                p->interest_cnt++;
        }
        return 0;
}

/*
 * Release functions
 */

static void messages_free(cm_message_t *msgs, size_t cnt)
{
        size_t i;

        for (i = 0; msgs && i < cnt; i++)
                cm_message_release(&msgs[i]);
        free(msgs);
}

void cm_event_release(cm_event_t *ev)
{
        if (!ev)
                return;
        cm_message_release(&ev->msg);
        cm_profile_release(&ev->profile);
        memset(ev, 0, sizeof(*ev));
}

void cm_request_release(cm_request_t *req)
{
        if (!req)
                return;
        free(req->reply_to);
        free(req->query);
        messages_free(req->history, req->history_cnt);
        cm_profile_release(&req->profile);
        memset(req, 0, sizeof(*req));
}

void cm_reply_doc_release(cm_reply_doc_t *doc)
{
        if (!doc)
                return;
        free(doc->request_id);
        free(doc->error_code);
        free(doc->error_message);
        free(doc->user_id);
        free(doc->conversation_id);
        free(doc->context);
        cm_profile_release(&doc->profile);
        free(doc->summary);
        messages_free(doc->recent, doc->recent_cnt);
        memset(doc, 0, sizeof(*doc));
}

/*
 * Decoders
 */

static int event_type_value(dec_t *d, json_object *v, cm_event_type_t *out)
{
        const char *s;
        size_t i;

        if (str_value(d, v, "type", SIZE_MAX, 0, &s, NULL) == -1)
                return -1;
        for (i = 0; i < COUNT(type_names); i++) {
                if (!strcmp(s, type_names[i])) {
                        *out = (cm_event_type_t)i;
                        return 0;
                }
        }
        return cm_errf(d->errstr, d->errstr_size,
                       "field 'type': must be one of message, profile.set, "
                       "session.delete, user.delete");
}

int cm_event_decode(const char *buf, size_t len, size_t max_content_bytes,
                    cm_event_t *ev, char *errstr, size_t errstr_size)
{
        dec_t d = {errstr, errstr_size};
        json_object *root = NULL;
        json_object *v;
        int64_t ts;
        int ret = -1;

        memset(ev, 0, sizeof(*ev));
        ev->msg.tokens = -1;
        root = cm_json_parse_object(buf, len, errstr, errstr_size);
        if (!root)
                goto out;
        ev->type = CM_EVENT_MESSAGE;
        if (member(root, "type", &v) &&
            event_type_value(&d, v, &ev->type) == -1)
                goto out;
        if (id_field(&d, root, "event_id", 1, ev->event_id) == -1)
                goto out;
        if (id_field(&d, root, "user_id", 0, ev->user_id) == -1)
                goto out;
        if (!member(root, "conversation_id", &v))
                memcpy(ev->conversation_id, DEFAULT_CONVERSATION,
                       sizeof(DEFAULT_CONVERSATION));
        else if (id_value(&d, v, "conversation_id", 0, ev->conversation_id) ==
                 -1)
                goto out;

        switch (ev->type) {
        case CM_EVENT_MESSAGE:
                if (!member(root, "role", &v)) {
                        missing(&d, "role");
                        goto out;
                }
                if (role_value(&d, v, "role", &ev->msg.role) == -1)
                        goto out;
                if (!member(root, "content", &v)) {
                        missing(&d, "content");
                        goto out;
                }
                if (str_dup(&d, v, "content", max_content_bytes, 1,
                            &ev->msg.content, &ev->msg.content_len) == -1)
                        goto out;
                if (member(root, "ts", &v)) {
                        if (int_value(&d, v, "ts", 0, INT64_MAX, &ts) == -1)
                                goto out;
                        ev->msg.ts = ts;
                }
                break;
        case CM_EVENT_PROFILE_SET:
                if (!member(root, "profile", &v)) {
                        missing(&d, "profile");
                        goto out;
                }
                if (profile_value(&d, v, "profile", 1, &ev->profile) == -1)
                        goto out;
                break;
        case CM_EVENT_SESSION_DELETE:
        case CM_EVENT_USER_DELETE:
                break;
        }
        ret = 0;
out:
        json_object_put(root);
        if (ret == -1)
                cm_event_release(ev);
        return ret;
}

/* reply_to: a Kafka topic name. */
/* A topic name s[0..len) of field, copied to *out. */
static int topic_check(dec_t *d, const char *s, size_t len, const char *field,
                       char **out)
{
        size_t i;

        if (len < 1 || len > TOPIC_MAX || !strcmp(s, ".") || !strcmp(s, ".."))
                return cm_errf(
                    d->errstr, d->errstr_size,
                    "field '%s': must be a topic name of 1..%d bytes "
                    "of [A-Za-z0-9._-], got %zu bytes",
                    field, TOPIC_MAX, len);
        for (i = 0; i < len; i++) {
                char c = s[i];
                char what[CM_TEXT_BYTE_NAME_MAX];

                if (cm_isalnum(c) || c == '.' || c == '_' || c == '-')
                        continue;
                cm_text_byte_name(c, what);
                return cm_errf(d->errstr, d->errstr_size,
                               "field '%s': forbidden character %s at byte %zu "
                               "(allowed: [A-Za-z0-9._-])",
                               field, what, i);
        }
        *out = cm_strndup(s, len);
        return 0;
}

static int topic_value(dec_t *d, json_object *v, const char *field, char **out)
{
        const char *s;
        size_t len;

        if (str_value(d, v, field, SIZE_MAX, 0, &s, &len) == -1)
                return -1;
        return topic_check(d, s, len, field, out);
}

/* After a failed parse: reads request_id and reply_to with json-c alone
 * (cm_json_parse_loose), which is lenient about UTF-8 and the lexical
 * details the strict parse refuses, so that a request whose fault lies
 * elsewhere still gets its error reply where it listens. Each value must
 * pass its own check (request_id: cm_id_check(), ASCII only; reply_to: a
 * topic name). Leaves out and *reply_to untouched when it cannot. */
static void salvage_request(const char *buf, size_t len,
                            char out[CM_ID_MAX + 1], char **reply_to)
{
        dec_t quiet = {NULL, 0};
        json_object *root = NULL;
        json_object *v;
        const char *s;
        size_t n;

        root = cm_json_parse_loose(buf, len);
        if (!root)
                goto out;
        if (member(root, "reply_to", &v))
                topic_value(&quiet, v, "reply_to", reply_to);
        if (!member(root, "request_id", &v) ||
            !json_object_is_type(v, json_type_string))
                goto out;
        s = json_object_get_string(v);
        n = (size_t)json_object_get_string_len(v);
        if (cm_id_check(s, n, 1, NULL, 0) == -1)
                goto out;
        memcpy(out, s, n);
        out[n] = '\0';
out:
        json_object_put(root);
}

/* Fills what the body did not give from the route: a request_id still
 * "", a reply_to still NULL (a header's topic that is no topic name is
 * left out). */
static void route_request(const cm_request_route_t *route, cm_request_t *req)
{
        dec_t quiet = {NULL, 0};

        if (!route)
                return;
        if (!req->request_id[0] && route->request_id)
                snprintf(req->request_id, sizeof(req->request_id), "%s",
                         route->request_id);
        if (!req->reply_to && route->reply_to)
                topic_check(&quiet, route->reply_to, strlen(route->reply_to),
                            "reply_to", &req->reply_to);
}

int cm_request_id_from_bytes(const void *bytes, size_t len,
                             char out[CM_ID_MAX + 1])
{
        static const char hex[] = "0123456789abcdef";
        const unsigned char *b = bytes;
        size_t i;

        if (len == 0)
                return -1;
        if (len <= CM_ID_MAX && cm_id_check(bytes, len, 1, NULL, 0) == 0) {
                memcpy(out, bytes, len);
                out[len] = '\0';
                return 0;
        }
        if (len * 2 > CM_ID_MAX)
                return -1;
        for (i = 0; i < len; i++) {
                out[2 * i] = hex[b[i] >> 4];
                out[2 * i + 1] = hex[b[i] & 15];
        }
        out[2 * len] = '\0';
        return 0;
}

int cm_request_decode(const char *buf, size_t len, size_t max_content_bytes,
                      cm_request_t *req, char *errstr, size_t errstr_size)
{
        return cm_request_decode_routed(buf, len, max_content_bytes, NULL, req,
                                        errstr, errstr_size);
}

int cm_request_decode_routed(const char *buf, size_t len,
                             size_t max_content_bytes,
                             const cm_request_route_t *route, cm_request_t *req,
                             char *errstr, size_t errstr_size)
{
        dec_t d = {errstr, errstr_size};
        dec_t quiet = {NULL, 0};
        char request_id[CM_ID_MAX + 1], *reply_to;
        json_object *root = NULL;
        json_object *v;
        int64_t n;
        int id_bad, ret = -1;

        memset(req, 0, sizeof(*req));
        req->recent = -1;
        root = cm_json_parse_object(buf, len, errstr, errstr_size);
        if (!root) {
                salvage_request(buf, len, req->request_id, &req->reply_to);
                goto out;
        }
        /* request_id and reply_to first, each read whatever the other
         * holds: an error in any field is answered with the request_id, on
         * the reply_to. The first error found is the one reported. The
         * route (Kafka headers) stands for a field the body lacks. */
        if (route && route->request_id && !member(root, "request_id", &v))
                id_bad = 0;
        else
                id_bad =
                    id_field(&d, root, "request_id", 1, req->request_id) == -1;
        if (member(root, "reply_to", &v) &&
            topic_value(id_bad ? &quiet : &d, v, "reply_to", &req->reply_to) ==
                -1)
                goto out;
        if (id_bad)
                goto out;
        if (id_field(&d, root, "user_id", 0, req->user_id) == -1)
                goto out;
        if (!member(root, "conversation_id", &v))
                memcpy(req->conversation_id, DEFAULT_CONVERSATION,
                       sizeof(DEFAULT_CONVERSATION));
        else if (id_value(&d, v, "conversation_id", 0, req->conversation_id) ==
                 -1)
                goto out;
        if (member(root, "max_tokens", &v)) {
                if (int_value(&d, v, "max_tokens", 1, MAX_TOKENS_MAX, &n) == -1)
                        goto out;
                req->max_tokens = (int)n;
        }
        if (member(root, "recent", &v)) {
                if (int_value(&d, v, "recent", 0, RECENT_MAX, &n) == -1)
                        goto out;
                req->recent = (int)n;
        }
        if (member(root, "query", &v) &&
            str_dup(&d, v, "query", max_content_bytes, 0, &req->query, NULL) ==
                -1)
                goto out;
        if (req->query && !*req->query) {
                /* An empty query asks for nothing: same as none. */
                free(req->query);
                req->query = NULL;
        }
        if (member(root, "scope", &v)) {
                const char *scope;

                if (str_value(&d, v, "scope", 16, 1, &scope, NULL) == -1)
                        goto out;
                if (strcmp(scope, "user") == 0) {
                        req->scope_user = 1;
                } else if (strcmp(scope, "session") != 0) {
                        cm_errf(errstr, errstr_size,
                                "field 'scope': must be \"session\" or "
                                "\"user\", got \"%s\"",
                                scope);
                        goto out;
                }
        }
        if (member(root, "history", &v)) {
                req->has_history = 1;
                if (pairs_value(&d, v, "history", HISTORY_MAX,
                                max_content_bytes, &req->history,
                                &req->history_cnt) == -1)
                        goto out;
        }
        if (member(root, "profile", &v) &&
            profile_value(&d, v, "profile", 1, &req->profile) == -1)
                goto out;
        if (member(root, "stored", &v)) {
                int stored;

                if (bool_value(&d, v, "stored", &stored) == -1)
                        goto out;
                req->stateless = !stored;
        }
        ret = 0;
out:
        /* What the body did not give, from the route (headers), before
         * the error path keeps request_id and reply_to. */
        route_request(route, req);
        json_object_put(root);
        if (ret == -1) {
                /* Keep the request_id (valid or "") and the reply_to (valid
                 * or NULL) for the error reply. */
                memcpy(request_id, req->request_id, sizeof(request_id));
                reply_to = req->reply_to;
                req->reply_to = NULL;
                cm_request_release(req);
                memcpy(req->request_id, request_id, sizeof(request_id));
                req->reply_to = reply_to;
                req->recent = -1;
        }
        return ret;
}

static int meta_value(dec_t *d, json_object *v, cm_reply_meta_t *meta)
{
        static const char *const keys[] = {
            "total_messages",      "summarized", "cached",  "tokens",
            "full_history_tokens", "degraded",   "build_us"};
        json_object *f[COUNT(keys)];
        char name[64];
        int64_t n;
        size_t i;

        if (want_type(d, v, json_type_object, "metadata", "an object") == -1)
                return -1;
        for (i = 0; i < COUNT(keys); i++) {
                if (!member(v, keys[i], &f[i])) {
                        snprintf(name, sizeof(name), "metadata.%s", keys[i]);
                        return missing(d, name);
                }
        }
        if (int_value(d, f[0], "metadata.total_messages", 0, INT64_MAX,
                      &meta->total_messages) == -1 ||
            bool_value(d, f[1], "metadata.summarized", &meta->summarized) ==
                -1 ||
            bool_value(d, f[2], "metadata.cached", &meta->cached) == -1)
                return -1;
        if (int_value(d, f[3], "metadata.tokens", 0, INT_MAX, &n) == -1)
                return -1;
        meta->tokens = (int)n;
        if (int_value(d, f[4], "metadata.full_history_tokens", 0, INT_MAX,
                      &n) == -1)
                return -1;
        meta->full_history_tokens = (int)n;
        if (bool_value(d, f[5], "metadata.degraded", &meta->degraded) == -1 ||
            int_value(d, f[6], "metadata.build_us", 0, INT64_MAX,
                      &meta->build_us) == -1)
                return -1;
        /* Optional: replies of older versions lack them. */
        if (member(v, "recalled", &f[0])) {
                if (int_value(d, f[0], "metadata.recalled", 0, INT_MAX, &n) ==
                    -1)
                        return -1;
                meta->recalled = (int)n;
        }
        if (member(v, "recall_us", &f[0]) &&
            int_value(d, f[0], "metadata.recall_us", 0, INT64_MAX,
                      &meta->recall_us) == -1)
                return -1;
        return 0;
}

/* A required string field of obj, copied. */
static int str_field(dec_t *d, json_object *obj, const char *field, char **out)
{
        json_object *v;

        if (!member(obj, field, &v))
                return missing(d, field);
        return str_dup(d, v, field, SIZE_MAX, 0, out, NULL);
}

int cm_reply_decode(const char *buf, size_t len, cm_reply_doc_t *doc,
                    char *errstr, size_t errstr_size)
{
        dec_t d = {errstr, errstr_size};
        json_object *root = NULL;
        json_object *v, *f;
        char id[CM_ID_MAX + 1];
        int ret = -1;

        memset(doc, 0, sizeof(*doc));
        root = cm_json_parse_object(buf, len, errstr, errstr_size);
        if (!root)
                goto out;
        if (member(root, "request_id", &v)) {
                if (id_value(&d, v, "request_id", 1, id) == -1)
                        goto out;
                doc->request_id = cm_strdup(id);
        }
        if (member(root, "error", &v)) {
                doc->is_error = 1;
                if (want_type(&d, v, json_type_object, "error", "an object") ==
                    -1)
                        goto out;
                if (!member(v, "code", &f)) {
                        missing(&d, "error.code");
                        goto out;
                }
                if (str_dup(&d, f, "error.code", SIZE_MAX, 1, &doc->error_code,
                            NULL) == -1)
                        goto out;
                if (!member(v, "message", &f)) {
                        missing(&d, "error.message");
                        goto out;
                }
                if (str_dup(&d, f, "error.message", SIZE_MAX, 0,
                            &doc->error_message, NULL) == -1)
                        goto out;
                ret = 0;
                goto out;
        }
        if (str_field(&d, root, "user_id", &doc->user_id) == -1 ||
            str_field(&d, root, "conversation_id", &doc->conversation_id) ==
                -1 ||
            str_field(&d, root, "context", &doc->context) == -1)
                goto out;
        if (!member(root, "profile", &v)) {
                missing(&d, "profile");
                goto out;
        }
        if (profile_value(&d, v, "profile", 0, &doc->profile) == -1)
                goto out;
        if (str_field(&d, root, "summary", &doc->summary) == -1)
                goto out;
        if (!member(root, "recent", &v)) {
                missing(&d, "recent");
                goto out;
        }
        if (pairs_value(&d, v, "recent", SIZE_MAX, SIZE_MAX, &doc->recent,
                        &doc->recent_cnt) == -1)
                goto out;
        if (!member(root, "metadata", &v)) {
                missing(&d, "metadata");
                goto out;
        }
        if (meta_value(&d, v, &doc->meta) == -1)
                goto out;
        ret = 0;
out:
        json_object_put(root);
        if (ret == -1)
                cm_reply_doc_release(doc);
        return ret;
}

int cm_stored_decode(const char *buf, size_t len, cm_message_t *msg,
                     char *errstr, size_t errstr_size)
{
        dec_t d = {errstr, errstr_size};
        char id[CM_ID_MAX + 1];
        json_object *root = NULL;
        json_object *v;
        int64_t n;
        int ret = -1;

        memset(msg, 0, sizeof(*msg));
        msg->tokens = -1;
        root = cm_json_parse_object(buf, len, errstr, errstr_size);
        if (!root)
                goto out;
        if (!member(root, "seq", &v)) {
                missing(&d, "seq");
                goto out;
        }
        if (int_value(&d, v, "seq", 0, INT64_MAX, &msg->seq) == -1)
                goto out;
        if (member(root, "event_id", &v)) {
                if (id_value(&d, v, "event_id", 1, id) == -1)
                        goto out;
                msg->event_id = cm_strdup(id);
        }
        if (!member(root, "role", &v)) {
                missing(&d, "role");
                goto out;
        }
        if (role_value(&d, v, "role", &msg->role) == -1)
                goto out;
        if (!member(root, "content", &v)) {
                missing(&d, "content");
                goto out;
        }
        if (str_dup(&d, v, "content", SIZE_MAX, 0, &msg->content,
                    &msg->content_len) == -1)
                goto out;
        if (member(root, "ts", &v) &&
            int_value(&d, v, "ts", 0, INT64_MAX, &msg->ts) == -1)
                goto out;
        if (member(root, "tokens", &v)) {
                if (int_value(&d, v, "tokens", -1, INT_MAX, &n) == -1)
                        goto out;
                msg->tokens = (int)n;
        }
        ret = 0;
out:
        json_object_put(root);
        if (ret == -1)
                cm_message_release(msg);
        return ret;
}

/*
 * Encoders
 */

static json_object *jcheck(json_object *obj)
{
        if (!obj)
                cm_json_oom();
        return obj;
}

/* A string value from s[0..len), repaired if it is not UTF-8 (text.h). */
static json_object *jstr_len(const char *s, size_t len)
{
        json_object *obj;
        cm_buf_t b;

        if (!s) {
                s = "";
                len = 0;
        }
        if (len > INT_MAX)
                len = INT_MAX; /* cannot happen with our limits */
        if (cm_utf8_valid(s, len))
                return jcheck(json_object_new_string_len(s, (int)len));
        cm_buf_init(&b);
        cm_utf8_repair(&b, s, len);
        obj = jcheck(json_object_new_string_len(b.buf, (int)b.len));
        cm_buf_release(&b);
        return obj;
}

static json_object *jstr(const char *s)
{
        return jstr_len(s, s ? strlen(s) : 0);
}

static json_object *jint(int64_t n)
{
        return jcheck(json_object_new_int64(n));
}

static json_object *jbool(int b)
{
        return jcheck(json_object_new_boolean(b ? 1 : 0));
}

static json_object *jobj(void)
{
        return jcheck(json_object_new_object());
}

static json_object *jarr(void)
{
        return jcheck(json_object_new_array());
}

/* Adds val under key (a literal) to obj; val is now owned by obj. */
static void jadd(json_object *obj, const char *key, json_object *val)
{
        if (json_object_object_add_ex(obj, key, val,
                                      JSON_C_OBJECT_ADD_KEY_IS_NEW |
                                          JSON_C_OBJECT_KEY_IS_CONSTANT))
                cm_json_oom();
}

static void jpush(json_object *arr, json_object *val)
{
        if (json_object_array_add(arr, val))
                cm_json_oom();
}

/* Serializes obj into a heap string and puts obj. */
static char *jfinish(json_object *obj)
{
        const char *s;
        size_t len;
        char *out;

        s = json_object_to_json_string_length(obj, json_flags, &len);
        if (!s)
                cm_json_oom();
        out = cm_strndup(s, len);
        json_object_put(obj);
        return out;
}

/* The length of msg's content: content_len, or strlen when left 0. */
static size_t content_len(const cm_message_t *msg)
{
        if (!msg->content)
                return 0;
        return msg->content_len ? msg->content_len : strlen(msg->content);
}

static json_object *pair_json(const cm_message_t *msg)
{
        json_object *obj = jobj();

        jadd(obj, "role", jstr(cm_role_str(msg->role)));
        jadd(obj, "content", jstr_len(msg->content, content_len(msg)));
        return obj;
}

static json_object *pairs_json(const cm_message_t *msgs, size_t cnt)
{
        json_object *arr = jarr();
        size_t i;

        for (i = 0; msgs && i < cnt; i++)
                jpush(arr, pair_json(&msgs[i]));
        return arr;
}

/* {name?, role?, interests[]}; interests only when some or always. */
static json_object *profile_json(const cm_profile_t *p, int interests_always)
{
        json_object *obj = jobj();
        json_object *arr;
        size_t i;

        if (p && p->name)
                jadd(obj, "name", jstr(p->name));
        if (p && p->role)
                jadd(obj, "role", jstr(p->role));
        if (!interests_always && (!p || !p->interest_cnt))
                return obj;
        arr = jarr();
        for (i = 0; p && p->interests && i < p->interest_cnt; i++)
                jpush(arr, jstr(p->interests[i]));
        jadd(obj, "interests", arr);
        return obj;
}

char *cm_event_encode(const cm_event_t *ev)
{
        json_object *obj = jobj();

        jadd(obj, "type", jstr(cm_event_type_str(ev->type)));
        jadd(obj, "event_id", jstr(ev->event_id));
        jadd(obj, "user_id", jstr(ev->user_id));
        jadd(obj, "conversation_id",
             jstr(ev->conversation_id[0] ? ev->conversation_id
                                         : DEFAULT_CONVERSATION));
        switch (ev->type) {
        case CM_EVENT_MESSAGE:
                jadd(obj, "role", jstr(cm_role_str(ev->msg.role)));
                jadd(obj, "content",
                     jstr_len(ev->msg.content, content_len(&ev->msg)));
                if (ev->msg.ts)
                        jadd(obj, "ts", jint(ev->msg.ts));
                break;
        case CM_EVENT_PROFILE_SET:
                jadd(obj, "profile", profile_json(&ev->profile, 0));
                break;
        case CM_EVENT_SESSION_DELETE:
        case CM_EVENT_USER_DELETE:
                break;
        }
        return jfinish(obj);
}

char *cm_request_encode(const cm_request_t *req)
{
        json_object *obj = jobj();

        jadd(obj, "request_id", jstr(req->request_id));
        jadd(obj, "user_id", jstr(req->user_id));
        jadd(obj, "conversation_id",
             jstr(req->conversation_id[0] ? req->conversation_id
                                          : DEFAULT_CONVERSATION));
        if (req->reply_to)
                jadd(obj, "reply_to", jstr(req->reply_to));
        if (req->max_tokens > 0)
                jadd(obj, "max_tokens", jint(req->max_tokens));
        if (req->recent >= 0)
                jadd(obj, "recent", jint(req->recent));
        if (req->query)
                jadd(obj, "query", jstr(req->query));
        if (req->scope_user)
                jadd(obj, "scope", jstr("user"));
        if (req->has_history || req->history_cnt)
                jadd(obj, "history",
                     pairs_json(req->history, req->history_cnt));
        if (!cm_profile_empty(&req->profile))
                jadd(obj, "profile", profile_json(&req->profile, 0));
        if (req->stateless)
                jadd(obj, "stored", jbool(0));
        return jfinish(obj);
}

char *cm_reply_encode(const cm_reply_t *reply)
{
        json_object *obj = jobj();
        json_object *meta = jobj();

        if (reply->request_id)
                jadd(obj, "request_id", jstr(reply->request_id));
        jadd(obj, "user_id", jstr(reply->user_id));
        jadd(obj, "conversation_id", jstr(reply->conversation_id));
        jadd(obj, "context", jstr(reply->context));
        jadd(obj, "profile", profile_json(reply->profile, 1));
        jadd(obj, "summary", jstr(reply->summary));
        jadd(obj, "recent", pairs_json(reply->recent, reply->recent_cnt));
        jadd(meta, "total_messages", jint(reply->meta.total_messages));
        jadd(meta, "summarized", jbool(reply->meta.summarized));
        jadd(meta, "cached", jbool(reply->meta.cached));
        jadd(meta, "tokens", jint(reply->meta.tokens));
        jadd(meta, "full_history_tokens",
             jint(reply->meta.full_history_tokens));
        jadd(meta, "degraded", jbool(reply->meta.degraded));
        jadd(meta, "build_us", jint(reply->meta.build_us));
        jadd(meta, "recalled", jint(reply->meta.recalled));
        jadd(meta, "recall_us", jint(reply->meta.recall_us));
        jadd(obj, "metadata", meta);
        meta = NULL; /* now owned by obj */
        return jfinish(obj);
}

char *cm_error_reply_encode(const char *request_id, const char *code,
                            const char *message)
{
        json_object *obj = jobj();
        json_object *err = jobj();

        if (request_id && *request_id)
                jadd(obj, "request_id", jstr(request_id));
        jadd(err, "code", jstr(code && *code ? code : "internal"));
        jadd(err, "message", jstr(message));
        jadd(obj, "error", err);
        err = NULL; /* now owned by obj */
        return jfinish(obj);
}

static json_object *jbase64(const void *data, size_t len)
{
        static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "abcdefghijklmnopqrstuvwxyz0123456789+/";
        const unsigned char *in = data;
        json_object *obj;
        char *out;
        size_t i, o = 0;

        out = cm_malloc((len + 2) / 3 * 4 + 1);
        for (i = 0; i + 2 < len; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
                             in[i + 2];

                out[o++] = abc[v >> 18 & 63];
                out[o++] = abc[v >> 12 & 63];
                out[o++] = abc[v >> 6 & 63];
                out[o++] = abc[v & 63];
        }
        if (i < len) {
                uint32_t v = (uint32_t)in[i] << 16;

                if (i + 1 < len)
                        v |= (uint32_t)in[i + 1] << 8;
                out[o++] = abc[v >> 18 & 63];
                out[o++] = abc[v >> 12 & 63];
                out[o++] = i + 1 < len ? abc[v >> 6 & 63] : '=';
                out[o++] = '=';
        }
        out[o] = '\0';
        obj = jstr_len(out, o);
        free(out);
        return obj;
}

/* The member names of a field of raw bytes in a DLQ entry (jadd() keeps
 * the pointers): the text, its base64 form, and the marks of a cut. */
typedef struct bytes_names {
        const char *text, *base64, *truncated, *bytes;
} bytes_names_t;

static const bytes_names_t key_names = {"key", "key_base64", "key_truncated",
                                        "key_bytes"};
static const bytes_names_t payload_names = {
    "payload", "payload_base64", "payload_truncated", "payload_bytes"};

/* Adds data[0..len) as text when it is UTF-8, else as base64, cut to at
 * most max bytes (text on a character boundary); a cut one also gets its
 * truncated mark and its whole length. */
static void jadd_bytes(json_object *obj, const bytes_names_t *names,
                       const void *data, size_t len, size_t max)
{
        const char *s = data;
        size_t keep = len < max ? len : max;
        /* A character that the cut splits is well-formed when its bytes
         * (at most 3 more) are. */
        size_t look = len - keep > 3 ? keep + 3 : len;

        if (cm_utf8_valid_prefix(s, look) >= keep) {
                keep = cm_utf8_floor(s, keep);
                jadd(obj, names->text, jstr_len(s, keep));
        } else {
                jadd(obj, names->base64, jbase64(s, keep));
        }
        if (keep == len)
                return;
        jadd(obj, names->truncated, jbool(1));
        jadd(obj, names->bytes, jint((int64_t)len));
}

char *cm_dlq_encode(const char *topic, int32_t partition, int64_t offset,
                    const void *key, size_t key_len, const void *payload,
                    size_t payload_len, const char *error)
{
        json_object *obj = jobj();

        jadd(obj, "topic", jstr(topic));
        jadd(obj, "partition", jint(partition));
        jadd(obj, "offset", jint(offset));
        if (!key)
                jadd(obj, "key", NULL);
        else
                jadd_bytes(obj, &key_names, key, key_len, CM_DLQ_KEY_MAX);
        jadd_bytes(obj, &payload_names, payload ? payload : "",
                   payload ? payload_len : 0, CM_DLQ_PAYLOAD_MAX);
        jadd(obj, "error", jstr(error));
        return jfinish(obj);
}

char *cm_stored_tail_encode(const cm_message_t *msg, const char *event_id)
{
        json_object *obj = jobj();
        char *out;

        /* The argument wins; msg->event_id is the fallback. */
        if (!event_id)
                event_id = msg->event_id;
        if (event_id)
                jadd(obj, "event_id", jstr(event_id));
        jadd(obj, "role", jstr(cm_role_str(msg->role)));
        jadd(obj, "content", jstr_len(msg->content, content_len(msg)));
        if (msg->ts)
                jadd(obj, "ts", jint(msg->ts));
        jadd(obj, "tokens", jint(msg->tokens));
        out = jfinish(obj);
        out[0] = ','; /* "{..." becomes ",..." to follow "seq":N */
        return out;
}

char *cm_compaction_job_encode(const char *user_id, const char *conversation_id,
                               int64_t requested_at)
{
        json_object *obj = jobj();

        jadd(obj, "user_id", jstr(user_id));
        jadd(obj, "conversation_id", jstr(conversation_id));
        jadd(obj, "requested_at", jint(requested_at));
        return jfinish(obj);
}

int cm_compaction_job_decode(const char *buf, size_t len,
                             cm_compaction_job_t *job, char *errstr,
                             size_t errstr_size)
{
        dec_t d = {errstr, errstr_size};
        json_object *root = NULL;
        json_object *v;
        int ret = -1;

        memset(job, 0, sizeof(*job));
        root = cm_json_parse_object(buf, len, errstr, errstr_size);
        if (!root)
                goto out;
        if (id_field(&d, root, "user_id", 0, job->user_id) == -1)
                goto out;
        if (!member(root, "conversation_id", &v))
                memcpy(job->conversation_id, DEFAULT_CONVERSATION,
                       sizeof(DEFAULT_CONVERSATION));
        else if (id_value(&d, v, "conversation_id", 0, job->conversation_id) ==
                 -1)
                goto out;
        if (member(root, "requested_at", &v) &&
            int_value(&d, v, "requested_at", 0, INT64_MAX,
                      &job->requested_at) == -1)
                goto out;
        ret = 0;
out:
        json_object_put(root);
        if (ret == -1)
                memset(job, 0, sizeof(*job));
        return ret;
}

size_t cm_session_key(char out[CM_SESSION_KEY_MAX], const char *user_id,
                      const char *conversation_id)
{
        int n = snprintf(out, CM_SESSION_KEY_MAX, "%s:%s", user_id,
                         conversation_id);

        if (n < 0)
                return 0;
        return (size_t)n < CM_SESSION_KEY_MAX ? (size_t)n
                                              : CM_SESSION_KEY_MAX - 1;
}

int cm_session_key_split(const char *key, char user_id[CM_ID_MAX + 1],
                         char conversation_id[CM_ID_MAX + 1], char *errstr,
                         size_t errstr_size)
{
        const char *colon = key ? strchr(key, ':') : NULL;
        char why[192];
        size_t ulen, clen;

        user_id[0] = conversation_id[0] = '\0';
        if (!colon)
                return cm_errf(
                    errstr, errstr_size,
                    "session key must be '<user_id>:<conversation_id>'");
        ulen = (size_t)(colon - key);
        clen = strlen(colon + 1);
        if (cm_id_check(key, ulen, 0, why, sizeof(why)) == -1)
                return cm_errf(errstr, errstr_size, "session key user_id: %s",
                               why);
        if (cm_id_check(colon + 1, clen, 0, why, sizeof(why)) == -1)
                return cm_errf(errstr, errstr_size,
                               "session key conversation_id: %s", why);
        memcpy(user_id, key, ulen);
        user_id[ulen] = '\0';
        memcpy(conversation_id, colon + 1, clen);
        conversation_id[clen] = '\0';
        return 0;
}

/*
 * Decoders for producers that hold a message in parts (the CLI): an event
 * with fields to fill in, a profile or a history on its own. Each applies
 * the checks, and gives the error messages, of the same field inside a
 * message, so that what a worker would refuse is refused up front.
 */

/* Adds field = value to root unless value is NULL or root has field.
 * Returns 1 if it added it, else 0. */
static int add_default(json_object *root, const char *field, const char *value)
{
        json_object *v;

        if (!value || member(root, field, &v))
                return 0;
        jadd(root, field, jstr(value));
        return 1;
}

int cm_event_decode_defaults(const char *buf, size_t len,
                             size_t max_content_bytes,
                             const cm_event_defaults_t *defaults, int *filled,
                             cm_event_t *ev, char *errstr, size_t errstr_size)
{
        json_object *root, *type;
        char *text = NULL;
        int ret, message;

        *filled = 0;
        root = cm_json_parse_object(buf, len, NULL, 0);
        if (!root) /* the plain decoder gives the reason */
                return cm_event_decode(buf, len, max_content_bytes, ev, errstr,
                                       errstr_size);
        message = !member(root, "type", &type) ||
                  (json_object_is_type(type, json_type_string) &&
                   !strcmp(json_object_get_string(type), "message"));
        *filled |= add_default(root, "event_id", defaults->event_id);
        *filled |= add_default(root, "user_id", defaults->user_id);
        *filled |=
            add_default(root, "conversation_id", defaults->conversation_id);
        if (message)
                *filled |= add_default(root, "role", defaults->role);
        if (*filled)
                text = jfinish(root); /* puts root */
        else
                json_object_put(root);
        ret = cm_event_decode(text ? text : buf, text ? strlen(text) : len,
                              max_content_bytes, ev, errstr, errstr_size);
        free(text);
        return ret;
}

int cm_profile_decode(const char *buf, size_t len, cm_profile_t *profile,
                      char *errstr, size_t errstr_size)
{
        dec_t d = {errstr, errstr_size};
        json_object *root;
        int ret;

        memset(profile, 0, sizeof(*profile));
        root = cm_json_parse_object(buf, len, errstr, errstr_size);
        if (!root)
                return -1;
        ret = profile_value(&d, root, "profile", 1, profile);
        json_object_put(root);
        if (ret == -1)
                cm_profile_release(profile);
        return ret;
}

int cm_history_decode(const char *buf, size_t len, size_t max_content_bytes,
                      cm_message_t **msgs, size_t *cnt, char *errstr,
                      size_t errstr_size)
{
        dec_t d = {errstr, errstr_size};
        json_object *root;
        int ret;

        *msgs = NULL;
        *cnt = 0;
        root = cm_json_parse_array(buf, len, errstr, errstr_size);
        if (!root)
                return -1;
        /* The same checks as the history of a request. */
        ret = pairs_value(&d, root, "history", HISTORY_MAX, max_content_bytes,
                          msgs, cnt);
        json_object_put(root);
        if (ret == -1) {
                messages_free(*msgs, *cnt);
                *msgs = NULL;
                *cnt = 0;
        }
        return ret;
}

int cm_reply_is_error(const char *buf, size_t len)
{
        /* The encoders write the member as "error":{ and nothing else of a
         * reply can hold that text: inside a string its quotes would be
         * escaped, and no other object of a reply has a member "error". */
        return buf && memmem(buf, len, "\"error\":{", 9) != NULL;
}
