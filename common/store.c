#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "log.h"
#include "util.h"

/*
 * KEYS: msgs, meta, eids
 * ARGV: partition, offset, event_id, tail (stored entry after "seq":N),
 *       tokens, ttl, dedupe window
 * Returns {result, seq, list length}: result 1 applied, 0 offset at or
 * below the watermark, -1 event_id seen recently. The watermark moves in
 * the same script as the append (see store.h).
 */
static const char append_lua[] =
    "local f = 'off:' .. ARGV[1]\n"
    "local off = tonumber(ARGV[2])\n"
    "local wm = redis.call('HGET', KEYS[2], f)\n"
    "if wm and tonumber(wm) >= off then return {0, 0, 0} end\n"
    "redis.call('HSET', KEYS[2], f, ARGV[2])\n"
    "local ttl = tonumber(ARGV[6])\n"
    "if redis.call('ZSCORE', KEYS[3], ARGV[3]) then\n"
    "  if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end\n"
    "  return {-1, 0, redis.call('LLEN', KEYS[1])}\n"
    "end\n"
    "local seq = redis.call('HINCRBY', KEYS[2], 'last_seq', 1)\n"
    "redis.call('HINCRBY', KEYS[2], 'total', 1)\n"
    "redis.call('HINCRBY', KEYS[2], 'tokens', ARGV[5])\n"
    "local n = redis.call('RPUSH', KEYS[1], '{\"seq\":' .. seq .. "
    "ARGV[4])\n"
    "redis.call('ZADD', KEYS[3], seq, ARGV[3])\n"
    "local w = tonumber(ARGV[7])\n"
    "if redis.call('ZCARD', KEYS[3]) > w then\n"
    "  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -w - 1)\n"
    "end\n"
    "if ttl > 0 then\n"
    "  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end\n"
    "end\n"
    "return {1, seq, n}\n";

struct cm_store {
        redisContext *rc;
        char *host;
        int port;
        char *user;     /* NULL: AUTH with password only */
        char *password; /* NULL: no AUTH */
        int db;
        char *url_safe; /* URL without the password, for logs */
        char *prefix;
        int session_ttl;
        int profile_ttl;
        int dedupe_window;
        char append_sha[41];
};

static int parse_url(cm_store_t *st, const char *url, char *errstr,
                     size_t errstr_size)
{
        const char *p = url, *at, *slash, *colon, *hostend;
        long long v;
        char num[32];

        if (!strncmp(p, "redis://", 8)) {
                p += 8;
        } else if (strstr(p, "://")) {
                snprintf(errstr, errstr_size,
                         "redis url '%.64s': only redis:// is supported", url);
                return -1;
        }
        slash = strchr(p, '/');
        at = strchr(p, '@');
        if (at && (!slash || at < slash)) {
                const char *sep = memchr(p, ':', (size_t)(at - p));

                if (sep) {
                        if (sep > p)
                                st->user = cm_strndup(p, (size_t)(sep - p));
                        st->password =
                            cm_strndup(sep + 1, (size_t)(at - sep - 1));
                } else {
                        st->password = cm_strndup(p, (size_t)(at - p));
                }
                p = at + 1;
        }
        hostend = slash ? slash : p + strlen(p);
        colon = memchr(p, ':', (size_t)(hostend - p));
        st->host = cm_strndup(p, (size_t)((colon ? colon : hostend) - p));
        if (!*st->host) {
                free(st->host);
                st->host = cm_strdup("127.0.0.1");
        }
        st->port = 6379;
        if (colon) {
                size_t n = (size_t)(hostend - colon - 1);

                if (n == 0 || n >= sizeof(num))
                        goto bad_port;
                memcpy(num, colon + 1, n);
                num[n] = '\0';
                if (cm_parse_int(num, 1, 65535, &v) == -1)
                        goto bad_port;
                st->port = (int)v;
        }
        st->db = 0;
        if (slash && slash[1]) {
                if (cm_parse_int(slash + 1, 0, 100000, &v) == -1) {
                        snprintf(errstr, errstr_size,
                                 "redis url: bad database number '%.32s'",
                                 slash + 1);
                        return -1;
                }
                st->db = (int)v;
        }
        {
                cm_buf_t b;

                cm_buf_init(&b);
                cm_buf_addf(
                    &b, "redis://%s%s%s:%d/%d", st->user ? st->user : "",
                    st->password ? ":***@" : "", st->host, st->port, st->db);
                st->url_safe = cm_buf_detach(&b, NULL);
        }
        return 0;
bad_port:
        snprintf(errstr, errstr_size, "redis url: bad port in '%.*s'",
                 (int)(hostend - p), p);
        return -1;
}

cm_store_t *cm_store_new(const cm_config_t *cfg, char *errstr,
                         size_t errstr_size)
{
        cm_store_t *st = cm_calloc(1, sizeof(*st));

        if (parse_url(st, cfg->redis_url, errstr, errstr_size) == -1) {
                cm_store_destroy(st);
                return NULL;
        }
        st->prefix = cm_strdup(cfg->key_prefix);
        st->session_ttl = cfg->session_ttl;
        st->profile_ttl = cfg->profile_ttl;
        st->dedupe_window = cfg->dedupe_window;
        return st;
}

static void drop_connection(cm_store_t *st)
{
        if (st->rc) {
                redisFree(st->rc);
                st->rc = NULL;
        }
}

void cm_store_destroy(cm_store_t *st)
{
        if (!st)
                return;
        drop_connection(st);
        free(st->host);
        free(st->user);
        free(st->password);
        free(st->url_safe);
        free(st->prefix);
        free(st);
}

const char *cm_store_url(const cm_store_t *st)
{
        return st->url_safe;
}

int cm_store_connected(const cm_store_t *st)
{
        return st->rc != NULL;
}

/* Runs one command; returns the reply or NULL with the reason in errstr
 * (the connection is dropped on I/O errors). Error replies are returned
 * as NULL too. */
static redisReply *command(cm_store_t *st, int argc, const char **argv,
                           const size_t *argvlen, char *errstr,
                           size_t errstr_size)
{
        redisReply *r = redisCommandArgv(st->rc, argc, argv, argvlen);

        if (!r) {
                snprintf(errstr, errstr_size, "redis '%s': %s", st->url_safe,
                         st->rc->errstr);
                drop_connection(st);
                return NULL;
        }
        if (r->type == REDIS_REPLY_ERROR) {
                snprintf(errstr, errstr_size, "redis '%s' %s: %s", st->url_safe,
                         argv[0], r->str);
                freeReplyObject(r);
                return NULL;
        }
        return r;
}

static int load_scripts(cm_store_t *st, char *errstr, size_t errstr_size)
{
        const char *argv[] = {"SCRIPT", "LOAD", append_lua};
        redisReply *r = command(st, 3, argv, NULL, errstr, errstr_size);

        if (!r)
                return -1;
        if (r->type != REDIS_REPLY_STRING || r->len != 40) {
                snprintf(errstr, errstr_size, "redis: bad SCRIPT LOAD reply");
                freeReplyObject(r);
                return -1;
        }
        memcpy(st->append_sha, r->str, 40);
        st->append_sha[40] = '\0';
        freeReplyObject(r);
        return 0;
}

int cm_store_connect(cm_store_t *st, char *errstr, size_t errstr_size)
{
        struct timeval connect_tv = {2, 0}, io_tv = {5, 0};
        redisReply *r;
        char dbstr[16];

        if (st->rc)
                return 0;
        st->rc = redisConnectWithTimeout(st->host, st->port, connect_tv);
        if (!st->rc || st->rc->err) {
                snprintf(errstr, errstr_size,
                         "cannot connect to redis '%s': %s", st->url_safe,
                         st->rc ? st->rc->errstr : "out of memory");
                drop_connection(st);
                return -1;
        }
        redisSetTimeout(st->rc, io_tv);
        if (st->password) {
                const char *argv[3] = {"AUTH", st->user, st->password};

                if (st->user)
                        r = command(st, 3, argv, NULL, errstr, errstr_size);
                else {
                        argv[1] = st->password;
                        r = command(st, 2, argv, NULL, errstr, errstr_size);
                }
                if (!r)
                        goto fail;
                freeReplyObject(r);
        }
        if (st->db) {
                const char *argv[] = {"SELECT", dbstr};

                snprintf(dbstr, sizeof(dbstr), "%d", st->db);
                r = command(st, 2, argv, NULL, errstr, errstr_size);
                if (!r)
                        goto fail;
                freeReplyObject(r);
        }
        if (load_scripts(st, errstr, errstr_size) == -1)
                goto fail;
        cm_info("connected to redis '%s'", st->url_safe);
        return 0;
fail:
        drop_connection(st);
        return -1;
}

size_t cm_store_key(const cm_store_t *st, char *out, size_t out_size,
                    const char *user, const char *conv, const char *kind)
{
        int n;

        if (conv)
                n = snprintf(out, out_size, "%s{%s:%s}:%s", st->prefix, user,
                             conv, kind);
        else
                n = snprintf(out, out_size, "%s{%s}:%s", st->prefix, user,
                             kind);
        if (n < 0)
                return 0;
        return (size_t)n < out_size ? (size_t)n : out_size - 1;
}

#define KEY_MAX 512

int cm_store_append_batch(cm_store_t *st, cm_append_t *items, size_t cnt,
                          char *errstr, size_t errstr_size)
{
        size_t i, got = 0;
        int ret = -1;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;

        for (i = 0; i < cnt; i++) {
                const cm_event_t *ev = items[i].ev;
                char k_msgs[KEY_MAX], k_meta[KEY_MAX], k_eids[KEY_MAX];
                char part[16], off[32], tok[16], ttl[16], win[16];
                char *tail;
                const char *argv[14];
                size_t argvlen[14];
                int a = 0;

                cm_store_key(st, k_msgs, sizeof(k_msgs), ev->user_id,
                             ev->conversation_id, "msgs");
                cm_store_key(st, k_meta, sizeof(k_meta), ev->user_id,
                             ev->conversation_id, "meta");
                cm_store_key(st, k_eids, sizeof(k_eids), ev->user_id,
                             ev->conversation_id, "eids");
                snprintf(part, sizeof(part), "%d", (int)items[i].partition);
                snprintf(off, sizeof(off), "%lld", (long long)items[i].offset);
                snprintf(tok, sizeof(tok), "%d", items[i].tokens);
                snprintf(ttl, sizeof(ttl), "%d", st->session_ttl);
                snprintf(win, sizeof(win), "%d", st->dedupe_window);
                {
                        cm_message_t m = ev->msg;

                        m.tokens = items[i].tokens;
                        tail = cm_stored_tail_encode(&m, ev->event_id);
                }
                argv[a++] = "EVALSHA";
                argv[a++] = st->append_sha;
                argv[a++] = "3";
                argv[a++] = k_msgs;
                argv[a++] = k_meta;
                argv[a++] = k_eids;
                argv[a++] = part;
                argv[a++] = off;
                argv[a++] = ev->event_id;
                argv[a++] = tail;
                argv[a++] = tok;
                argv[a++] = ttl;
                argv[a++] = win;
                for (int j = 0; j < a; j++)
                        argvlen[j] = strlen(argv[j]);
                redisAppendCommandArgv(st->rc, a, argv, argvlen);
                free(tail);
        }

        /* Read every reply, even after an error, so that the connection
         * stays in step; a failed read drops the connection. */
        for (i = 0; i < cnt; i++) {
                redisReply *r = NULL;

                if (redisGetReply(st->rc, (void **)&r) != REDIS_OK || !r) {
                        snprintf(errstr, errstr_size, "redis '%s': %s",
                                 st->url_safe, st->rc->errstr);
                        drop_connection(st);
                        goto out;
                }
                if (r->type == REDIS_REPLY_ERROR) {
                        if (got == i)
                                snprintf(errstr, errstr_size,
                                         "redis '%s' append: %s", st->url_safe,
                                         r->str);
                        if (!strncmp(r->str, "NOSCRIPT", 8))
                                st->append_sha[0] = '\0';
                } else if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                           got == i) {
                        items[i].result =
                            (cm_append_result_t)r->element[0]->integer;
                        items[i].seq = r->element[1]->integer;
                        items[i].pending = r->element[2]->integer;
                        got++;
                }
                freeReplyObject(r);
        }
        if (got == cnt)
                ret = 0;
        else if (!st->append_sha[0])
                drop_connection(st); /* scripts flushed: reload on connect */
out:
        return ret;
}

static void session_clear(cm_session_t *s)
{
        memset(s, 0, sizeof(*s));
}

void cm_session_release(cm_session_t *s)
{
        size_t i;

        if (!s)
                return;
        for (i = 0; i < s->msg_cnt; i++)
                cm_message_release(&s->msgs[i]);
        free(s->msgs);
        free(s->summary);
        cm_profile_release(&s->profile);
        session_clear(s);
}

static int64_t reply_int(const redisReply *r)
{
        long long v;

        if (!r || r->type != REDIS_REPLY_STRING)
                return 0;
        if (cm_parse_int(r->str, 0, INT64_MAX, &v) == -1)
                return 0;
        return v;
}

static void profile_from_reply(const redisReply *r, cm_profile_t *p)
{
        struct json_object *arr;
        size_t i, n;

        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3)
                return;
        if (r->element[0]->type == REDIS_REPLY_STRING)
                p->name = cm_strndup(r->element[0]->str, r->element[0]->len);
        if (r->element[1]->type == REDIS_REPLY_STRING)
                p->role = cm_strndup(r->element[1]->str, r->element[1]->len);
        if (r->element[2]->type != REDIS_REPLY_STRING)
                return;
        arr = json_tokener_parse(r->element[2]->str);
        if (!arr)
                return;
        if (json_object_is_type(arr, json_type_array)) {
                n = json_object_array_length(arr);
                p->interests = cm_calloc(n ? n : 1, sizeof(char *));
                for (i = 0; i < n; i++) {
                        struct json_object *it =
                            json_object_array_get_idx(arr, i);

                        if (json_object_is_type(it, json_type_string))
                                p->interests[p->interest_cnt++] =
                                    cm_strdup(json_object_get_string(it));
                }
        }
        json_object_put(arr);
}

int cm_store_load(cm_store_t *st, const char *user, const char *conv,
                  int recent, cm_session_t *out, char *errstr,
                  size_t errstr_size)
{
        char k_msgs[KEY_MAX], k_meta[KEY_MAX], k_sum[KEY_MAX], k_prof[KEY_MAX];
        char start[16];
        redisReply *r[5] = {NULL};
        int i, ret = -1;

        session_clear(out);
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        cm_store_key(st, k_msgs, sizeof(k_msgs), user, conv, "msgs");
        cm_store_key(st, k_meta, sizeof(k_meta), user, conv, "meta");
        cm_store_key(st, k_sum, sizeof(k_sum), user, conv, "summary");
        cm_store_key(st, k_prof, sizeof(k_prof), user, NULL, "profile");
        snprintf(start, sizeof(start), "%d", recent < 0 ? 0 : -recent);

        redisAppendCommand(st->rc, "HMGET %s total last_seq tokens", k_meta);
        if (recent == 0)
                redisAppendCommand(st->rc, "LRANGE %s 1 0", k_msgs);
        else
                redisAppendCommand(st->rc, "LRANGE %s %s -1", k_msgs, start);
        redisAppendCommand(st->rc, "LLEN %s", k_msgs);
        redisAppendCommand(st->rc, "HGET %s text", k_sum);
        redisAppendCommand(st->rc, "HMGET %s name role interests", k_prof);
        for (i = 0; i < 5; i++) {
                if (redisGetReply(st->rc, (void **)&r[i]) != REDIS_OK ||
                    !r[i]) {
                        snprintf(errstr, errstr_size, "redis '%s': %s",
                                 st->url_safe, st->rc->errstr);
                        drop_connection(st);
                        goto out;
                }
        }
        for (i = 0; i < 5; i++) {
                if (r[i]->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "redis '%s' load: %s",
                                 st->url_safe, r[i]->str);
                        goto out;
                }
        }
        if (r[0]->type == REDIS_REPLY_ARRAY && r[0]->elements == 3) {
                out->total = reply_int(r[0]->element[0]);
                out->last_seq = reply_int(r[0]->element[1]);
                out->tokens = reply_int(r[0]->element[2]);
                out->exists = r[0]->element[1]->type == REDIS_REPLY_STRING;
        }
        if (r[1]->type == REDIS_REPLY_ARRAY && r[1]->elements > 0) {
                out->msgs = cm_calloc(r[1]->elements, sizeof(cm_message_t));
                for (size_t j = 0; j < r[1]->elements; j++) {
                        const redisReply *e = r[1]->element[j];
                        char why[256];

                        if (e->type != REDIS_REPLY_STRING ||
                            cm_stored_decode(e->str, e->len,
                                             &out->msgs[out->msg_cnt], why,
                                             sizeof(why)) == -1) {
                                cm_warn("session '%s:%s': skipping a stored "
                                        "entry that does not decode",
                                        user, conv);
                                continue;
                        }
                        out->msg_cnt++;
                }
        }
        out->stored_cnt = r[2]->type == REDIS_REPLY_INTEGER ? r[2]->integer : 0;
        out->summary = r[3]->type == REDIS_REPLY_STRING
                           ? cm_strndup(r[3]->str, r[3]->len)
                           : cm_strdup("");
        if (*out->summary)
                out->exists = 1;
        profile_from_reply(r[4], &out->profile);
        ret = 0;
out:
        for (i = 0; i < 5; i++)
                if (r[i])
                        freeReplyObject(r[i]);
        if (ret == -1)
                cm_session_release(out);
        return ret;
}

long long cm_store_delete_session(cm_store_t *st, const char *user,
                                  const char *conv, char *errstr,
                                  size_t errstr_size)
{
        static const char *const kinds[] = {"msgs", "meta", "eids", "summary"};
        char keys[4][KEY_MAX];
        const char *argv[5];
        redisReply *r;
        long long n;
        int i;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        argv[0] = "DEL";
        for (i = 0; i < 4; i++) {
                cm_store_key(st, keys[i], sizeof(keys[i]), user, conv,
                             kinds[i]);
                argv[i + 1] = keys[i];
        }
        r = command(st, 5, argv, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        n = r->integer;
        freeReplyObject(r);
        {
                char k_convs[KEY_MAX];
                const char *sargv[] = {"SREM", k_convs, conv};

                cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
                r = command(st, 3, sargv, NULL, errstr, errstr_size);
                if (!r)
                        return -1;
                freeReplyObject(r);
        }
        return n;
}

int cm_store_count_sessions(cm_store_t *st, long long *count, char *errstr,
                            size_t errstr_size)
{
        char cursor[32] = "0", match[KEY_MAX];
        long long n = 0;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(match, sizeof(match), "%s{*}:meta", st->prefix);
        do {
                const char *argv[] = {"SCAN", cursor,  "MATCH",
                                      match,  "COUNT", "1000"};
                redisReply *r = command(st, 6, argv, NULL, errstr, errstr_size);

                if (!r)
                        return -1;
                if (r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
                        snprintf(errstr, errstr_size, "redis: bad SCAN reply");
                        freeReplyObject(r);
                        return -1;
                }
                snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
                n += (long long)r->element[1]->elements;
                freeReplyObject(r);
        } while (strcmp(cursor, "0"));
        *count = n;
        return 0;
}
