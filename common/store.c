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
 *       tokens, ttl, dedupe window, compaction threshold (0: never),
 *       now (ms), stale (ms), break tokens
 * Returns {result, seq, list length, compact}: result 1 applied, 0 offset
 * at or below the watermark, -1 event_id seen recently (seq is then the
 * earlier one's, when still in the window). The watermark moves in the
 * same script as the append (see store.h). It runs for every event, so it
 * keeps to 8 Redis calls: one HMGET and one HSET for the meta, and the
 * id set is trimmed every 16th append, to the newest dedupe-window ids.
 */
static const char append_lua[] =
    "local f = 'off:' .. ARGV[1]\n"
    "local h = redis.call('HMGET', KEYS[2], f, 'last_seq', 'total', "
    "'tokens', 'cjob')\n"
    "if h[1] and tonumber(h[1]) >= tonumber(ARGV[2]) then\n"
    "  local s = redis.call('ZSCORE', KEYS[3], ARGV[3])\n"
    "  return {0, tonumber(s or 0), redis.call('LLEN', KEYS[1]), 0}\n"
    "end\n"
    "local ttl = tonumber(ARGV[6])\n"
    "local dup = redis.call('ZSCORE', KEYS[3], ARGV[3])\n"
    "if dup then\n"
    "  redis.call('HSET', KEYS[2], f, ARGV[2])\n"
    "  if ttl > 0 then redis.call('EXPIRE', KEYS[2], ttl) end\n"
    "  return {-1, tonumber(dup), redis.call('LLEN', KEYS[1]), 0}\n"
    "end\n"
    "local seq = (tonumber(h[2]) or 0) + 1\n"
    "local n = redis.call('RPUSH', KEYS[1], '{\"seq\":' .. seq .. "
    "ARGV[4])\n"
    "redis.call('ZADD', KEYS[3], seq, ARGV[3])\n"
    "local w = tonumber(ARGV[7])\n"
    "if seq > w and seq % 16 == 0 then\n"
    "  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', seq - w)\n"
    "end\n"
    "local compact, now = 0, tonumber(ARGV[9])\n"
    "local th = tonumber(ARGV[8])\n"
    "if th > 0 and n > th and (not h[5] or\n"
    "    now - tonumber(h[5]) > tonumber(ARGV[10])) then\n"
    "  compact = 1\n"
    "end\n"
    "local set = {f, ARGV[2], 'last_seq', seq, 'total',\n"
    "  (tonumber(h[3]) or 0) + 1, 'tokens',\n"
    "  (tonumber(h[4]) or 0) + tonumber(ARGV[5]), 'last_break', ARGV[11]}\n"
    "if compact == 1 then\n"
    "  set[#set + 1] = 'cjob'; set[#set + 1] = ARGV[9]\n"
    "end\n"
    "redis.call('HSET', KEYS[2], unpack(set))\n"
    "if ttl > 0 then\n"
    "  for i = 1, 3 do redis.call('EXPIRE', KEYS[i], ttl) end\n"
    "end\n"
    "return {1, seq, n, compact}\n";

/*
 * KEYS: profile
 * ARGV: mode ('x' extracted, 's' profile.set), ts, src, ttl, name, role,
 *       interests (JSON array); '' = not given
 * Returns 1 if the profile changed, else 0.
 */
static const char profile_lua[] =
    "local mode, ts, src = ARGV[1], tonumber(ARGV[2]), ARGV[3]\n"
    "local changed = 0\n"
    "local function allowed(f)\n"
    "  if mode == 's' then return true end\n"
    "  if redis.call('HEXISTS', KEYS[1], f .. '_set') == 1 then\n"
    "    return false end\n"
    "  local old = redis.call('HGET', KEYS[1], f .. '_ts')\n"
    "  return not old or tonumber(old) <= ts\n"
    "end\n"
    "local function put(f, v)\n"
    "  if redis.call('HGET', KEYS[1], f) ~= v then changed = 1 end\n"
    "  redis.call('HSET', KEYS[1], f, v, f .. '_ts', ARGV[2],\n"
    "             f .. '_src', src)\n"
    "  if mode == 's' then redis.call('HSET', KEYS[1], f .. '_set', 1) "
    "end\n"
    "end\n"
    "if ARGV[5] ~= '' and allowed('name') then put('name', ARGV[5]) end\n"
    "if ARGV[6] ~= '' and allowed('role') then put('role', ARGV[6]) end\n"
    "if ARGV[7] ~= '' and allowed('interests') then\n"
    "  if mode == 's' then put('interests', ARGV[7]) else\n"
    "    local cur = redis.call('HGET', KEYS[1], 'interests')\n"
    "    local list = cur and cjson.decode(cur) or {}\n"
    "    local seen = {}\n"
    "    for _, v in ipairs(list) do seen[string.lower(v)] = true end\n"
    "    for _, v in ipairs(cjson.decode(ARGV[7])) do\n"
    "      if not seen[string.lower(v)] then\n"
    "        table.insert(list, v); seen[string.lower(v)] = true end\n"
    "    end\n"
    "    while #list > 16 do table.remove(list, 1) end\n"
    "    if #list > 0 then put('interests', cjson.encode(list)) end\n"
    "  end\n"
    "end\n"
    "if tonumber(ARGV[4]) > 0 then redis.call('EXPIRE', KEYS[1], "
    "ARGV[4]) end\n"
    "return changed\n";

/*
 * KEYS: msgs, meta, eids, summary
 * ARGV: partition, offset
 * Returns 1 deleted, 0 skipped (redelivered: the session was re-created
 * after this delete).
 */
static const char delete_lua[] =
    "local wm = redis.call('HGET', KEYS[2], 'off:' .. ARGV[1])\n"
    "if wm and tonumber(wm) >= tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4])\n"
    "return 1\n";

/*
 * KEYS: summary, msgs, meta
 * ARGV: expected upto, new upto, text, ttl, compaction threshold
 * Returns {removed, left in the list}, or -2 when the cursor moved or the
 * session is gone. The pending job mark (cjob) is cleared only when what
 * is left is within the threshold: appends that landed during the fold
 * and saw the mark did not ask for another job, so the caller folds
 * again instead.
 */
static const char fold_lua[] =
    "if redis.call('EXISTS', KEYS[3]) == 0 then return -2 end\n"
    "local cur = redis.call('HGET', KEYS[1], 'upto') or '0'\n"
    "if cur ~= ARGV[1] then return -2 end\n"
    "local upto = tonumber(ARGV[2])\n"
    "local removed = 0\n"
    "while true do\n"
    "  local head = redis.call('LINDEX', KEYS[2], 0)\n"
    "  if not head then break end\n"
    "  local seq = tonumber(string.match(head, '^{\"seq\":(%d+)'))\n"
    "  if not seq or seq > upto then break end\n"
    "  redis.call('LPOP', KEYS[2])\n"
    "  removed = removed + 1\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'text', ARGV[3], 'upto', ARGV[2])\n"
    "redis.call('HINCRBY', KEYS[1], 'folded', removed)\n"
    "local left = redis.call('LLEN', KEYS[2])\n"
    "if left <= tonumber(ARGV[5]) then\n"
    "  redis.call('HDEL', KEYS[3], 'cjob')\n"
    "end\n"
    "local ttl = tonumber(ARGV[4])\n"
    "if ttl > 0 then redis.call('EXPIRE', KEYS[1], ttl) end\n"
    "return {removed, left}\n";

/*
 * KEYS: dirty
 * ARGV: cutoff (ms), max
 * Pops the sessions whose first change since their last publication is
 * at or before the cutoff.
 */
static const char pop_dirty_lua[] =
    "local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1],\n"
    "                       'LIMIT', 0, ARGV[2])\n"
    "if #ids > 0 then redis.call('ZREM', KEYS[1], unpack(ids)) end\n"
    "return ids\n";

enum {
        SCRIPT_APPEND,
        SCRIPT_PROFILE,
        SCRIPT_DELETE,
        SCRIPT_FOLD,
        SCRIPT_POP_DIRTY,
        SCRIPT_CNT
};

static const char *const script_src[SCRIPT_CNT] = {
    append_lua, profile_lua, delete_lua, fold_lua, pop_dirty_lua};

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
        char sha[SCRIPT_CNT][41];
        int compact_threshold; /* 0: never ask for compaction */
        int compact_stale_ms;
        size_t loads_pending; /* cm_store_load_send()s not yet received */
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
        st->loads_pending = 0; /* their replies went with the connection */
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
        int i;

        for (i = 0; i < SCRIPT_CNT; i++) {
                const char *argv[] = {"SCRIPT", "LOAD", script_src[i]};
                redisReply *r = command(st, 3, argv, NULL, errstr, errstr_size);

                if (!r)
                        return -1;
                if (r->type != REDIS_REPLY_STRING || r->len != 40) {
                        snprintf(errstr, errstr_size,
                                 "redis: bad SCRIPT LOAD reply");
                        freeReplyObject(r);
                        return -1;
                }
                memcpy(st->sha[i], r->str, 40);
                st->sha[i][40] = '\0';
                freeReplyObject(r);
        }
        return 0;
}

void cm_store_set_compaction(cm_store_t *st, int threshold, int stale_ms)
{
        st->compact_threshold = threshold;
        st->compact_stale_ms = stale_ms;
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

/* Reads n pipelined replies into r[] (NULL-initialised by the caller).
 * Returns 0, or -1 with the reason when the connection failed (dropped). */
static int read_replies(cm_store_t *st, redisReply **r, size_t n, char *errstr,
                        size_t errstr_size)
{
        size_t i;

        for (i = 0; i < n; i++) {
                if (redisGetReply(st->rc, (void **)&r[i]) != REDIS_OK ||
                    !r[i]) {
                        snprintf(errstr, errstr_size, "redis '%s': %s",
                                 st->url_safe, st->rc->errstr);
                        drop_connection(st);
                        return -1;
                }
        }
        return 0;
}

int cm_store_append_batch(cm_store_t *st, cm_append_t *items, size_t cnt,
                          char *errstr, size_t errstr_size)
{
        redisReply **r = NULL;
        size_t i, extra = 0;
        int ret = -1, noscript = 0;
        char now[32], th[16], stale[16], ttl[16], win[16];

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(now, sizeof(now), "%lld", (long long)cm_now_ms());
        snprintf(th, sizeof(th), "%d", st->compact_threshold);
        snprintf(stale, sizeof(stale), "%d", st->compact_stale_ms);
        snprintf(ttl, sizeof(ttl), "%d", st->session_ttl);
        snprintf(win, sizeof(win), "%d", st->dedupe_window);

        for (i = 0; i < cnt; i++) {
                const cm_event_t *ev = items[i].ev;
                char k_msgs[KEY_MAX], k_meta[KEY_MAX], k_eids[KEY_MAX];
                char part[16], off[32], tok[16], brk[16];
                cm_message_t m = ev->msg;
                char *tail;
                const char *argv[] = {"EVALSHA",    st->sha[SCRIPT_APPEND],
                                      "3",          k_msgs,
                                      k_meta,       k_eids,
                                      part,         off,
                                      ev->event_id, NULL,
                                      tok,          ttl,
                                      win,          th,
                                      now,          stale,
                                      brk};

                cm_store_key(st, k_msgs, sizeof(k_msgs), ev->user_id,
                             ev->conversation_id, "msgs");
                cm_store_key(st, k_meta, sizeof(k_meta), ev->user_id,
                             ev->conversation_id, "meta");
                cm_store_key(st, k_eids, sizeof(k_eids), ev->user_id,
                             ev->conversation_id, "eids");
                snprintf(part, sizeof(part), "%d", (int)items[i].partition);
                snprintf(off, sizeof(off), "%lld", (long long)items[i].offset);
                snprintf(tok, sizeof(tok), "%d", items[i].tokens);
                snprintf(brk, sizeof(brk), "%d", items[i].break_tokens);
                m.tokens = items[i].tokens;
                tail = cm_stored_tail_encode(&m, ev->event_id);
                argv[9] = tail;
                redisAppendCommandArgv(st->rc, 17, argv, NULL);
                free(tail);
        }

        /* Read every reply, even after an error, so that the connection
         * stays in step. */
        r = cm_calloc(cnt + 1, sizeof(*r));
        if (read_replies(st, r, cnt, errstr, errstr_size) == -1)
                goto out;
        for (i = 0; i < cnt; i++) {
                if (r[i]->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "redis '%s' append: %s",
                                 st->url_safe, r[i]->str);
                        if (!strncmp(r[i]->str, "NOSCRIPT", 8))
                                noscript = 1;
                        goto out;
                }
                if (r[i]->type != REDIS_REPLY_ARRAY || r[i]->elements != 4) {
                        snprintf(errstr, errstr_size,
                                 "redis '%s' append: unexpected reply",
                                 st->url_safe);
                        goto out;
                }
                items[i].result = (cm_append_result_t)r[i]->element[0]->integer;
                items[i].seq = r[i]->element[1]->integer;
                items[i].pending = r[i]->element[2]->integer;
                items[i].compact = (int)r[i]->element[3]->integer;
        }

        /* A session's first message registers the conversation with its
         * user, for user.delete (a separate key: it lives in the user's
         * slot, not the session's). Redone on redelivery, as seq is known
         * then too. */
        for (i = 0; i < cnt; i++) {
                const cm_event_t *ev = items[i].ev;
                char k_convs[KEY_MAX];

                if (items[i].seq != 1)
                        continue;
                cm_store_key(st, k_convs, sizeof(k_convs), ev->user_id, NULL,
                             "convs");
                redisAppendCommand(st->rc, "SADD %s %s", k_convs,
                                   ev->conversation_id);
                extra++;
        }
        for (i = 0; i < extra; i++) {
                redisReply *x = NULL;

                if (redisGetReply(st->rc, (void **)&x) != REDIS_OK || !x) {
                        snprintf(errstr, errstr_size, "redis '%s': %s",
                                 st->url_safe, st->rc->errstr);
                        drop_connection(st);
                        goto out;
                }
                freeReplyObject(x);
        }
        ret = 0;
out:
        for (i = 0; r && i < cnt; i++)
                if (r[i])
                        freeReplyObject(r[i]);
        free(r);
        if (noscript)
                drop_connection(st); /* scripts flushed: reload on connect */
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

/* The replies of one load, in the order cm_store_load_send() asks. */
#define LOAD_REPLIES 5

int cm_store_load_send(cm_store_t *st, const char *user, const char *conv,
                       int recent, char *errstr, size_t errstr_size)
{
        char k_msgs[KEY_MAX], k_meta[KEY_MAX], k_sum[KEY_MAX], k_prof[KEY_MAX];
        char start[16];

        if (!st->rc) {
                snprintf(errstr, errstr_size, "redis '%s': not connected",
                         st->url_safe);
                return -1;
        }
        cm_store_key(st, k_msgs, sizeof(k_msgs), user, conv, "msgs");
        cm_store_key(st, k_meta, sizeof(k_meta), user, conv, "meta");
        cm_store_key(st, k_sum, sizeof(k_sum), user, conv, "summary");
        cm_store_key(st, k_prof, sizeof(k_prof), user, NULL, "profile");
        snprintf(start, sizeof(start), "%d", recent < 0 ? 0 : -recent);

        if (redisAppendCommand(st->rc,
                               "HMGET %s total last_seq tokens last_break",
                               k_meta) != REDIS_OK)
                goto fail;
        if (recent == 0) {
                if (redisAppendCommand(st->rc, "LRANGE %s 1 0", k_msgs) !=
                    REDIS_OK)
                        goto fail;
        } else if (redisAppendCommand(st->rc, "LRANGE %s %s -1", k_msgs,
                                      start) != REDIS_OK) {
                goto fail;
        }
        if (redisAppendCommand(st->rc, "LLEN %s", k_msgs) != REDIS_OK ||
            redisAppendCommand(st->rc, "HMGET %s text upto folded", k_sum) !=
                REDIS_OK ||
            redisAppendCommand(st->rc, "HMGET %s name role interests",
                               k_prof) != REDIS_OK)
                goto fail;
        st->loads_pending++;
        return 0;
fail:
        /* Part of a load is queued: the pipeline is out of step. */
        snprintf(errstr, errstr_size, "redis '%s': %s", st->url_safe,
                 st->rc->errstr);
        drop_connection(st);
        return -1;
}

int cm_store_load_recv(cm_store_t *st, const char *user, const char *conv,
                       cm_session_t *out, char *errstr, size_t errstr_size)
{
        redisReply *r[LOAD_REPLIES] = {NULL};
        int i, ret = -1;

        session_clear(out);
        if (!st->rc || !st->loads_pending) {
                /* Dropped since the send: the replies went with it. */
                snprintf(errstr, errstr_size,
                         "redis '%s': connection lost before the reply",
                         st->url_safe);
                return -1;
        }
        st->loads_pending--;
        if (read_replies(st, r, LOAD_REPLIES, errstr, errstr_size) == -1)
                goto out;
        for (i = 0; i < LOAD_REPLIES; i++) {
                if (r[i]->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "redis '%s' load: %s",
                                 st->url_safe, r[i]->str);
                        goto out;
                }
        }
        if (r[0]->type == REDIS_REPLY_ARRAY && r[0]->elements == 4) {
                out->total = reply_int(r[0]->element[0]);
                out->last_seq = reply_int(r[0]->element[1]);
                out->tokens = reply_int(r[0]->element[2]);
                if (r[0]->element[3]->type == REDIS_REPLY_STRING) {
                        long long v;

                        out->last_break_known =
                            cm_parse_int(r[0]->element[3]->str, -1000000,
                                         1000000, &v) == 0;
                        out->last_break = out->last_break_known ? v : 0;
                }
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
        if (r[3]->type == REDIS_REPLY_ARRAY && r[3]->elements == 3) {
                const redisReply *t = r[3]->element[0];

                out->summary = t->type == REDIS_REPLY_STRING
                                   ? cm_strndup(t->str, t->len)
                                   : NULL;
                out->summary_upto = reply_int(r[3]->element[1]);
                out->folded = reply_int(r[3]->element[2]);
        }
        if (!out->summary)
                out->summary = cm_strdup("");
        if (*out->summary)
                out->exists = 1;
        profile_from_reply(r[4], &out->profile);
        ret = 0;
out:
        for (i = 0; i < LOAD_REPLIES; i++)
                if (r[i])
                        freeReplyObject(r[i]);
        if (ret == -1)
                cm_session_release(out);
        return ret;
}

int cm_store_load(cm_store_t *st, const char *user, const char *conv,
                  int recent, cm_session_t *out, char *errstr,
                  size_t errstr_size)
{
        session_clear(out);
        if (cm_store_connect(st, errstr, errstr_size) == -1 ||
            cm_store_load_send(st, user, conv, recent, errstr, errstr_size) ==
                -1)
                return -1;
        return cm_store_load_recv(st, user, conv, out, errstr, errstr_size);
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

/* Runs a loaded script. A NOSCRIPT error (the script cache was flushed)
 * drops the connection so that the next call reloads. Returns the reply
 * (caller frees) or NULL with the reason in errstr. */
static redisReply *eval(cm_store_t *st, int script, int argc, const char **argv,
                        char *errstr, size_t errstr_size)
{
        const char *full[20];
        redisReply *r;
        int i;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return NULL;
        full[0] = "EVALSHA";
        full[1] = st->sha[script];
        for (i = 0; i < argc && i < 18; i++)
                full[i + 2] = argv[i];
        r = command(st, argc + 2, full, NULL, errstr, errstr_size);
        if (!r && strstr(errstr, "NOSCRIPT"))
                drop_connection(st);
        return r;
}

static char *interests_json(const cm_profile_t *p)
{
        cm_buf_t b;
        size_t i;

        cm_buf_init(&b);
        if (!p->interest_cnt)
                return cm_buf_detach(&b, NULL);
        /* Interests come out of the codec or the extractor: valid UTF-8
         * without control characters; only quotes and backslashes need
         * escaping. */
        cm_buf_adds(&b, "[");
        for (i = 0; i < p->interest_cnt; i++) {
                const char *c;

                cm_buf_adds(&b, i ? ",\"" : "\"");
                for (c = p->interests[i]; *c; c++) {
                        if (*c == '"' || *c == '\\')
                                cm_buf_add(&b, "\\", 1);
                        if ((unsigned char)*c < 0x20)
                                continue;
                        cm_buf_add(&b, c, 1);
                }
                cm_buf_adds(&b, "\"");
        }
        cm_buf_adds(&b, "]");
        return cm_buf_detach(&b, NULL);
}

int cm_store_profile_update_batch(cm_store_t *st, const cm_profile_update_t *u,
                                  size_t cnt, int *changed, char *errstr,
                                  size_t errstr_size)
{
        char ttl[16];
        redisReply **r = NULL;
        size_t i;
        int ret = -1, noscript = 0;

        if (!cnt)
                return 0;
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(ttl, sizeof(ttl), "%d", st->profile_ttl);
        for (i = 0; i < cnt; i++) {
                const cm_profile_t *p = u[i].profile;
                char key[KEY_MAX], tsbuf[32];
                char *interests = interests_json(p);
                const char *argv[] = {"EVALSHA",
                                      st->sha[SCRIPT_PROFILE],
                                      "1",
                                      key,
                                      u[i].extracted ? "x" : "s",
                                      tsbuf,
                                      u[i].src,
                                      ttl,
                                      p->name ? p->name : "",
                                      p->role ? p->role : "",
                                      interests};

                cm_store_key(st, key, sizeof(key), u[i].user, NULL, "profile");
                snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)u[i].ts);
                redisAppendCommandArgv(st->rc, 11, argv, NULL);
                free(interests);
        }
        r = cm_calloc(cnt + 1, sizeof(*r));
        if (read_replies(st, r, cnt, errstr, errstr_size) == -1)
                goto out;
        for (i = 0; i < cnt; i++) {
                if (r[i]->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "redis '%s' profile: %s",
                                 st->url_safe, r[i]->str);
                        if (!strncmp(r[i]->str, "NOSCRIPT", 8))
                                noscript = 1;
                        goto out;
                }
                if (changed)
                        changed[i] = r[i]->type == REDIS_REPLY_INTEGER &&
                                     r[i]->integer == 1;
        }
        ret = 0;
out:
        for (i = 0; r && i < cnt; i++)
                if (r[i])
                        freeReplyObject(r[i]);
        free(r);
        if (noscript)
                drop_connection(st); /* scripts flushed: reload on connect */
        return ret;
}

int cm_store_profile_update(cm_store_t *st, const char *user,
                            const cm_profile_t *p, int extracted, int64_t ts,
                            const char *src, char *errstr, size_t errstr_size)
{
        cm_profile_update_t u = {user, p, extracted, ts, src};
        int changed = 0;

        if (cm_store_profile_update_batch(st, &u, 1, &changed, errstr,
                                          errstr_size) == -1)
                return -1;
        return changed;
}

int cm_store_session_delete_event(cm_store_t *st, const char *user,
                                  const char *conv, int32_t partition,
                                  int64_t offset, char *errstr,
                                  size_t errstr_size)
{
        char k[4][KEY_MAX], part[16], off[32], k_convs[KEY_MAX];
        const char *argv[] = {"4", k[0], k[1], k[2], k[3], part, off};
        const char *srem[] = {"SREM", k_convs, conv};
        redisReply *r;
        int ret;

        cm_store_key(st, k[0], sizeof(k[0]), user, conv, "msgs");
        cm_store_key(st, k[1], sizeof(k[1]), user, conv, "meta");
        cm_store_key(st, k[2], sizeof(k[2]), user, conv, "eids");
        cm_store_key(st, k[3], sizeof(k[3]), user, conv, "summary");
        snprintf(part, sizeof(part), "%d", (int)partition);
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        r = eval(st, SCRIPT_DELETE, 7, argv, errstr, errstr_size);
        if (!r)
                return -1;
        ret = (int)r->integer;
        freeReplyObject(r);
        if (ret == 1) {
                cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
                r = command(st, 3, srem, NULL, errstr, errstr_size);
                if (!r)
                        return -1;
                freeReplyObject(r);
        }
        return ret;
}

int cm_store_user_delete(cm_store_t *st, const char *user, char *errstr,
                         size_t errstr_size)
{
        char k_convs[KEY_MAX], k_prof[KEY_MAX];
        const char *members[] = {"SMEMBERS", k_convs};
        redisReply *r;
        size_t i;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
        cm_store_key(st, k_prof, sizeof(k_prof), user, NULL, "profile");
        r = command(st, 2, members, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        /* Sessions first, the index last: a crash in between leaves the
         * index, and the redelivered event finishes the job. */
        for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
                const redisReply *c = r->element[i];

                if (c->type != REDIS_REPLY_STRING ||
                    cm_store_delete_session(st, user, c->str, errstr,
                                            errstr_size) == -1) {
                        freeReplyObject(r);
                        return -1;
                }
        }
        freeReplyObject(r);
        {
                const char *del[] = {"DEL", k_prof, k_convs};

                r = command(st, 3, del, NULL, errstr, errstr_size);
                if (!r)
                        return -1;
                freeReplyObject(r);
        }
        return 0;
}

long long cm_store_fold_commit(cm_store_t *st, const char *user,
                               const char *conv, int64_t expected_upto,
                               int64_t new_upto, const char *text,
                               int64_t *left, char *errstr, size_t errstr_size)
{
        char k_sum[KEY_MAX], k_msgs[KEY_MAX], k_meta[KEY_MAX];
        char exp[32], upto[32], ttl[16], th[16];
        const char *argv[] = {"3",  k_sum, k_msgs, k_meta, exp,
                              upto, text,  ttl,    th};
        redisReply *r;
        long long n = CM_FOLD_MOVED;

        cm_store_key(st, k_sum, sizeof(k_sum), user, conv, "summary");
        cm_store_key(st, k_msgs, sizeof(k_msgs), user, conv, "msgs");
        cm_store_key(st, k_meta, sizeof(k_meta), user, conv, "meta");
        snprintf(exp, sizeof(exp), "%lld", (long long)expected_upto);
        snprintf(upto, sizeof(upto), "%lld", (long long)new_upto);
        snprintf(ttl, sizeof(ttl), "%d", st->session_ttl);
        snprintf(th, sizeof(th), "%d", st->compact_threshold);
        r = eval(st, SCRIPT_FOLD, 9, argv, errstr, errstr_size);
        if (!r)
                return -1;
        *left = 0;
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 2) {
                n = r->element[0]->integer;
                *left = r->element[1]->integer;
        }
        freeReplyObject(r);
        return n;
}

int cm_store_compaction_done(cm_store_t *st, const char *user, const char *conv,
                             char *errstr, size_t errstr_size)
{
        char k_meta[KEY_MAX];
        const char *argv[] = {"HDEL", k_meta, "cjob"};
        redisReply *r;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        cm_store_key(st, k_meta, sizeof(k_meta), user, conv, "meta");
        r = command(st, 3, argv, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        freeReplyObject(r);
        return 0;
}

int cm_store_mark_dirty(cm_store_t *st, const char *const *sessions, size_t cnt,
                        char *errstr, size_t errstr_size)
{
        char key[KEY_MAX], now[32];
        const char **argv;
        redisReply *r;
        size_t i;

        if (!cnt)
                return 0;
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(key, sizeof(key), "%sdirty", st->prefix);
        snprintf(now, sizeof(now), "%lld", (long long)cm_now_ms());
        /* One ZADD NX for the whole batch: the first change of each
         * session keeps its time. */
        argv = cm_calloc(3 + 2 * cnt, sizeof(*argv));
        argv[0] = "ZADD";
        argv[1] = key;
        argv[2] = "NX";
        for (i = 0; i < cnt; i++) {
                argv[3 + 2 * i] = now;
                argv[4 + 2 * i] = sessions[i];
        }
        r = command(st, (int)(3 + 2 * cnt), argv, NULL, errstr, errstr_size);
        free(argv);
        if (!r)
                return -1;
        freeReplyObject(r);
        return 0;
}

int cm_store_stats_add(cm_store_t *st, const char *const *names,
                       const long long *values, size_t cnt, char *errstr,
                       size_t errstr_size)
{
        char key[KEY_MAX];
        size_t i, sent = 0;
        int ret = 0;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(key, sizeof(key), "%sstats", st->prefix);
        for (i = 0; i < cnt; i++) {
                if (!values[i])
                        continue;
                redisAppendCommand(st->rc, "HINCRBY %s %s %lld", key, names[i],
                                   values[i]);
                sent++;
        }
        for (i = 0; i < sent; i++) {
                redisReply *r = NULL;

                if (redisGetReply(st->rc, (void **)&r) != REDIS_OK || !r) {
                        snprintf(errstr, errstr_size, "redis '%s': %s",
                                 st->url_safe, st->rc->errstr);
                        drop_connection(st);
                        return -1;
                }
                if (r->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "redis '%s' HINCRBY: %s",
                                 st->url_safe, r->str);
                        ret = -1;
                }
                freeReplyObject(r);
        }
        return ret;
}

int cm_store_stats_get(cm_store_t *st, char ***out, char *errstr,
                       size_t errstr_size)
{
        char key[KEY_MAX];
        const char *argv[] = {"HGETALL", key};
        redisReply *r;
        size_t i, n = 0;

        *out = NULL;
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(key, sizeof(key), "%sstats", st->prefix);
        r = command(st, 2, argv, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        *out = cm_calloc(r->elements / 2 + 1, sizeof(char *));
        for (i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
             i += 2) {
                cm_buf_t b;

                cm_buf_init(&b);
                cm_buf_addf(&b, "%s=%s", r->element[i]->str,
                            r->element[i + 1]->str);
                (*out)[n++] = cm_buf_detach(&b, NULL);
        }
        freeReplyObject(r);
        return (int)n;
}

int cm_store_mark_user_dirty(cm_store_t *st, const char *user, char *errstr,
                             size_t errstr_size)
{
        char k_convs[KEY_MAX];
        const char *argv[] = {"SMEMBERS", k_convs};
        const char **keys = NULL;
        char(*bufs)[2 * CM_ID_MAX + 2] = NULL;
        redisReply *r;
        size_t i, n = 0;
        int ret;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
        r = command(st, 2, argv, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 0) {
                keys = cm_calloc(r->elements, sizeof(*keys));
                bufs = cm_calloc(r->elements, sizeof(*bufs));
                for (i = 0; i < r->elements; i++) {
                        if (r->element[i]->type != REDIS_REPLY_STRING)
                                continue;
                        snprintf(bufs[n], sizeof(bufs[n]), "%s:%s", user,
                                 r->element[i]->str);
                        keys[n] = bufs[n];
                        n++;
                }
        }
        freeReplyObject(r);
        ret = cm_store_mark_dirty(st, keys, n, errstr, errstr_size);
        free(keys);
        free(bufs);
        return ret;
}

int cm_store_pop_dirty(cm_store_t *st, char **out, int max, int64_t cutoff_ms,
                       char *errstr, size_t errstr_size)
{
        char key[KEY_MAX], cnt[16], cutoff[32];
        const char *argv[] = {"1", key, cutoff, cnt};
        redisReply *r;
        int n = 0;
        size_t i;

        snprintf(key, sizeof(key), "%sdirty", st->prefix);
        snprintf(cnt, sizeof(cnt), "%d", max);
        snprintf(cutoff, sizeof(cutoff), "%lld", (long long)cutoff_ms);
        r = eval(st, SCRIPT_POP_DIRTY, 4, argv, errstr, errstr_size);
        if (!r)
                return -1;
        for (i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && n < max;
             i++)
                out[n++] = cm_strndup(r->element[i]->str, r->element[i]->len);
        freeReplyObject(r);
        return n;
}
