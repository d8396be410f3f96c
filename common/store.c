#include "store.h"

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#include "archive.h"
#include "deadline.h"
#include "log.h"
#include "lua_scripts.h" /* generated from common/lua/ */
#include "redis.h"
#include "util.h"

/* Timeouts of the connection: to connect, and for each read or write. */
#define CONNECT_MS 2000
#define IO_MS      5000
/* Under a deadline the timeouts are cut again before a wait once this
 * old, so that no wait ends more than this after the deadline. */
#define BOUND_EVERY_US 1000

/* The scripts (common/lua/<name>.lua, embedded at build time as
 * cm_lua_<name>), all loaded on connect. */
static const cm_redis_script_t *const scripts[] = {
    &cm_lua_append, &cm_lua_profile, &cm_lua_delete, &cm_lua_fold,
    &cm_lua_pop_dirty};

/* Argument positions of each script, in the order its .lua file names
 * them: <SCRIPT>_K_* index KEYS (<SCRIPT>_KEYS of them), <SCRIPT>_A_*
 * index ARGV (<SCRIPT>_ARGC of them). */
enum {
        APPEND_K_MSGS,
        APPEND_K_META,
        APPEND_K_EIDS,
        APPEND_KEYS,
        APPEND_A_PARTITION = 0,
        APPEND_A_OFFSET,
        APPEND_A_EVENT_ID,
        APPEND_A_TAIL,
        APPEND_A_TOKENS,
        APPEND_A_TTL,
        APPEND_A_WINDOW,
        APPEND_A_THRESHOLD,
        APPEND_A_NOW,
        APPEND_A_STALE,
        APPEND_A_BREAK,
        APPEND_ARGC
};

enum {
        PROFILE_K_PROFILE,
        PROFILE_KEYS,
        PROFILE_A_MODE = 0,
        PROFILE_A_TS,
        PROFILE_A_SRC,
        PROFILE_A_TTL,
        PROFILE_A_NAME,
        PROFILE_A_ROLE,
        PROFILE_A_INTERESTS,
        PROFILE_ARGC
};

enum {
        DELETE_K_MSGS,
        DELETE_K_META,
        DELETE_K_EIDS,
        DELETE_K_SUMMARY,
        DELETE_K_ARCHIVE,
        DELETE_KEYS,
        DELETE_A_PARTITION = 0,
        DELETE_A_OFFSET,
        DELETE_ARGC
};

enum {
        FOLD_K_SUMMARY,
        FOLD_K_MSGS,
        FOLD_K_META,
        FOLD_K_ARCHIVE,
        FOLD_KEYS,
        FOLD_A_EXPECTED = 0,
        FOLD_A_UPTO,
        FOLD_A_TEXT,
        FOLD_A_TTL,
        FOLD_A_THRESHOLD,
        FOLD_A_ARCHIVE_TTL,
        FOLD_A_ARCHIVE_MAX,
        FOLD_A_TAIL,
        FOLD_A_MERGED,
        FOLD_ARGC /* then the new chunks */
};

enum {
        POP_DIRTY_K_DIRTY,
        POP_DIRTY_KEYS,
        POP_DIRTY_A_CUTOFF = 0,
        POP_DIRTY_A_MAX,
        POP_DIRTY_ARGC
};

struct cm_store {
        redisContext *rc;
        cm_redis_url_t url; /* url.safe: for logs */
        char *prefix;
        int session_ttl;
        int profile_ttl;
        int dedupe_window;
        int compact_threshold; /* 0: never ask for compaction */
        int compact_stale_ms;
        int archive_max;        /* messages; 0: keep no archive */
        int archive_ttl;        /* s; 0: none */
        size_t loads_pending;   /* cm_store_load_send()s not yet received */
        int64_t deadline_us;    /* cm_store_set_deadline(); 0: none */
        int bounded;            /* 1: the connection's timeouts are cut to
                                   a deadline (else they are IO_MS) */
        int64_t bounded_at;     /* mono µs they were last cut; 0: never */
        unsigned long connects; /* connections made so far */
};

cm_store_t *cm_store_new(const cm_config_t *cfg, char *errstr,
                         size_t errstr_size)
{
        cm_store_t *st = cm_calloc(1, sizeof(*st));

        if (cm_redis_url_parse(cfg->redis_url, &st->url, errstr, errstr_size) ==
            -1) {
                cm_store_destroy(st);
                return NULL;
        }
        st->prefix = cm_strdup(cfg->key_prefix);
        st->session_ttl = cfg->session_ttl;
        st->profile_ttl = cfg->profile_ttl;
        st->dedupe_window = cfg->dedupe_window;
        st->archive_max = cfg->archive_max_messages;
        st->archive_ttl =
            cfg->archive_ttl < 0 ? cfg->profile_ttl : cfg->archive_ttl;
        return st;
}

static void drop_connection(cm_store_t *st)
{
        if (st->rc) {
                redisFree(st->rc);
                st->rc = NULL;
        }
        st->loads_pending = 0; /* their replies went with the connection */
        st->bounded = 0;
}

void cm_store_destroy(cm_store_t *st)
{
        if (!st)
                return;
        drop_connection(st);
        cm_redis_url_release(&st->url);
        free(st->prefix);
        free(st);
}

const char *cm_store_url(const cm_store_t *st)
{
        return st->url.safe;
}

int cm_store_connected(const cm_store_t *st)
{
        return st->rc != NULL;
}

void cm_store_set_deadline(cm_store_t *st, int64_t deadline_us)
{
        st->deadline_us = deadline_us;
        st->bounded_at = 0; /* cut again before the next wait */
}

/* Before a wait on the connection: cuts its timeouts to what is left of
 * the deadline (again once BOUND_EVERY_US old), or gives them back IO_MS
 * when there is no deadline any more. Returns 0, or -1 with the reason
 * (the connection is then dropped). */
static int bound_io(cm_store_t *st, char *errstr, size_t errstr_size)
{
        int64_t now;
        char why[256];

        if (!st->deadline_us && !st->bounded)
                return 0;
        now = cm_mono_us();
        if (st->deadline_us && now - st->bounded_at < BOUND_EVERY_US)
                return 0;
        if (cm_redis_set_deadline(st->rc, IO_MS, st->deadline_us, why,
                                  sizeof(why)) == -1) {
                snprintf(errstr, errstr_size, "redis '%s': %s", st->url.safe,
                         why);
                drop_connection(st);
                return -1;
        }
        st->bounded = st->deadline_us != 0;
        st->bounded_at = now;
        return 0;
}

/* Runs one command; returns the reply or NULL with the reason in errstr
 * (the connection is dropped on I/O errors). Error replies are returned
 * as NULL too. */
static redisReply *command(cm_store_t *st, int argc, const char **argv,
                           const size_t *argvlen, char *errstr,
                           size_t errstr_size)
{
        redisReply *r;

        if (bound_io(st, errstr, errstr_size) == -1)
                return NULL;
        r = redisCommandArgv(st->rc, argc, argv, argvlen);
        if (!r) {
                snprintf(errstr, errstr_size, "redis '%s': %s", st->url.safe,
                         st->rc->errstr);
                drop_connection(st);
                return NULL;
        }
        if (r->type == REDIS_REPLY_ERROR) {
                snprintf(errstr, errstr_size, "redis '%s' %s: %s", st->url.safe,
                         argv[0], r->str);
                freeReplyObject(r);
                return NULL;
        }
        return r;
}

/* Writes "redis '<url>' <why>" to errstr: the store's errors name the
 * server. */
static void fail_with(cm_store_t *st, const char *why, char *errstr,
                      size_t errstr_size)
{
        snprintf(errstr, errstr_size, "redis '%s' %s", st->url.safe, why);
}

/* Runs script s (connecting first) with args of arglens bytes each (NULL:
 * NUL-terminated strings). Returns the reply (caller frees), or NULL with
 * the reason in errstr; an I/O error drops the connection. */
static redisReply *run_script(cm_store_t *st, const cm_redis_script_t *s,
                              const char *const *keys, size_t nkeys,
                              const char *const *args, const size_t *arglens,
                              size_t nargs, char *errstr, size_t errstr_size)
{
        char why[512];
        redisReply *r;

        if (cm_store_connect(st, errstr, errstr_size) == -1 ||
            bound_io(st, errstr, errstr_size) == -1)
                return NULL;
        r = cm_redis_script_run(st->rc, s, keys, nkeys, args, arglens, nargs,
                                why, sizeof(why));
        if (!r) {
                fail_with(st, why, errstr, errstr_size);
                if (st->rc->err)
                        drop_connection(st);
        }
        return r;
}

/* Runs a batch of script calls on the connection. Returns 0, or -1 with
 * the reason in errstr (the connection is then dropped). */
static int run_batch(cm_store_t *st, cm_redis_batch_t *b, char *errstr,
                     size_t errstr_size)
{
        char why[512];

        if (bound_io(st, errstr, errstr_size) == -1)
                return -1;
        if (cm_redis_batch_run(st->rc, b, why, sizeof(why)) == -1) {
                fail_with(st, why, errstr, errstr_size);
                drop_connection(st);
                return -1;
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
        char why[512];
        int64_t now;
        int connect_ms, io_ms;

        if (st->rc)
                return 0;
        now = cm_mono_us();
        connect_ms = cm_deadline_step_ms(CONNECT_MS, st->deadline_us, now);
        io_ms = cm_deadline_step_ms(IO_MS, st->deadline_us, now);
        if (connect_ms == -1) {
                snprintf(errstr, errstr_size,
                         "redis '%s': the deadline passed before connecting",
                         st->url.safe);
                return -1;
        }
        st->rc =
            cm_redis_connect(&st->url, connect_ms, io_ms, errstr, errstr_size);
        if (!st->rc)
                return -1;
        st->bounded = st->deadline_us != 0;
        st->bounded_at = now;
        if (bound_io(st, errstr, errstr_size) == -1)
                return -1;
        /* Loaded now, so that the first pipeline of EVALSHAs finds them. */
        if (cm_redis_script_load(st->rc, scripts,
                                 sizeof(scripts) / sizeof(scripts[0]), why,
                                 sizeof(why)) == -1) {
                fail_with(st, why, errstr, errstr_size);
                drop_connection(st);
                return -1;
        }
        st->connects++;
        cm_info("connected to redis '%s'", st->url.safe);
        return 0;
}

unsigned long cm_store_connects(const cm_store_t *st)
{
        return st->connects;
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
                if (bound_io(st, errstr, errstr_size) == -1)
                        return -1;
                if (redisGetReply(st->rc, (void **)&r[i]) != REDIS_OK ||
                    !r[i]) {
                        snprintf(errstr, errstr_size, "redis '%s': %s",
                                 st->url.safe, st->rc->errstr);
                        drop_connection(st);
                        return -1;
                }
        }
        return 0;
}

int cm_store_append_batch(cm_store_t *st, cm_append_t *items, size_t cnt,
                          char *errstr, size_t errstr_size)
{
        cm_redis_batch_t *b = NULL;
        size_t i, extra = 0;
        int ret = -1;
        char now[32], th[16], stale[16], ttl[16], win[16], why[512];

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(now, sizeof(now), "%lld", (long long)cm_now_ms());
        snprintf(th, sizeof(th), "%d", st->compact_threshold);
        snprintf(stale, sizeof(stale), "%d", st->compact_stale_ms);
        snprintf(ttl, sizeof(ttl), "%d", st->session_ttl);
        snprintf(win, sizeof(win), "%d", st->dedupe_window);

        b = cm_redis_batch_new();
        for (i = 0; i < cnt; i++) {
                const cm_event_t *ev = items[i].ev;
                char k_msgs[KEY_MAX], k_meta[KEY_MAX], k_eids[KEY_MAX];
                char part[16], off[32], tok[16], brk[16];
                cm_message_t m = ev->msg;
                char *tail;
                const char *keys[APPEND_KEYS] = {
                    [APPEND_K_MSGS] = k_msgs,
                    [APPEND_K_META] = k_meta,
                    [APPEND_K_EIDS] = k_eids,
                };
                const char *args[APPEND_ARGC] = {
                    [APPEND_A_PARTITION] = part,
                    [APPEND_A_OFFSET] = off,
                    [APPEND_A_EVENT_ID] = ev->event_id,
                    [APPEND_A_TAIL] = NULL, /* below */
                    [APPEND_A_TOKENS] = tok,
                    [APPEND_A_TTL] = ttl,
                    [APPEND_A_WINDOW] = win,
                    [APPEND_A_THRESHOLD] = th,
                    [APPEND_A_NOW] = now,
                    [APPEND_A_STALE] = stale,
                    [APPEND_A_BREAK] = brk,
                };

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
                args[APPEND_A_TAIL] = tail;
                cm_redis_batch_add(b, &cm_lua_append, keys, APPEND_KEYS, args,
                                   APPEND_ARGC);
                free(tail);
        }
        if (run_batch(st, b, errstr, errstr_size) == -1)
                goto out;
        for (i = 0; i < cnt; i++) {
                long long v[4];

                if (cm_redis_reply_ints(cm_redis_batch_reply(b, i), 4, v,
                                        "script 'append'", why,
                                        sizeof(why)) == -1) {
                        fail_with(st, why, errstr, errstr_size);
                        goto out;
                }
                if (v[0] < CM_APPEND_DUP_EVENT || v[0] > CM_APPEND_APPLIED) {
                        snprintf(why, sizeof(why),
                                 "script 'append': unknown result %lld", v[0]);
                        fail_with(st, why, errstr, errstr_size);
                        goto out;
                }
                items[i].result = (cm_append_result_t)v[0];
                items[i].seq = v[1];
                items[i].pending = v[2];
                items[i].compact = (int)v[3];
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
        /* Every reply is read, even after an error one, to stay in step. */
        ret = 0;
        for (i = 0; i < extra; i++) {
                redisReply *x = NULL;

                if (redisGetReply(st->rc, (void **)&x) != REDIS_OK || !x) {
                        snprintf(errstr, errstr_size, "redis '%s': %s",
                                 st->url.safe, st->rc->errstr);
                        drop_connection(st);
                        ret = -1;
                        goto out;
                }
                if (ret == 0 && x->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "redis '%s' SADD: %s",
                                 st->url.safe, x->str);
                        ret = -1;
                }
                freeReplyObject(x);
        }
out:
        cm_redis_batch_destroy(b);
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
        for (i = 0; i < s->archive_cnt; i++)
                cm_message_release(&s->archive[i]);
        free(s->archive);
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

/* The replies of one load, in the order cm_store_load_send() asks: MULTI,
 * the LOAD_TX commands queued, EXEC (an array of their replies), and the
 * profile's HMGET (in another slot, so outside the transaction). */
enum {
        LOAD_TX_META,    /* HMGET meta total last_seq tokens last_break */
        LOAD_TX_MSGS,    /* LRANGE msgs */
        LOAD_TX_LEN,     /* LLEN msgs */
        LOAD_TX_SUMMARY, /* HMGET summary text upto folded */
        LOAD_TX_ARCHIVE, /* LRANGE archive (an empty range without the
                            flag: every load has the same shape) */
        LOAD_TX
};
enum {
        LOAD_R_MULTI,
        LOAD_R_EXEC = LOAD_R_MULTI + LOAD_TX + 1,
        LOAD_R_PROFILE,
        LOAD_REPLIES
};

int cm_store_load_send(cm_store_t *st, const char *user, const char *conv,
                       int recent, unsigned flags, char *errstr,
                       size_t errstr_size)
{
        char k_msgs[KEY_MAX], k_meta[KEY_MAX], k_sum[KEY_MAX], k_prof[KEY_MAX];
        char k_arch[KEY_MAX], start[16];
        int ok;

        if (!st->rc) {
                snprintf(errstr, errstr_size, "redis '%s': not connected",
                         st->url.safe);
                return -1;
        }
        cm_store_key(st, k_msgs, sizeof(k_msgs), user, conv, "msgs");
        cm_store_key(st, k_meta, sizeof(k_meta), user, conv, "meta");
        cm_store_key(st, k_sum, sizeof(k_sum), user, conv, "summary");
        cm_store_key(st, k_arch, sizeof(k_arch), user, conv, "archive");
        cm_store_key(st, k_prof, sizeof(k_prof), user, NULL, "profile");
        snprintf(start, sizeof(start), "%d", recent < 0 ? 0 : -recent);

        ok = redisAppendCommand(st->rc, "MULTI") == REDIS_OK &&
             redisAppendCommand(st->rc,
                                "HMGET %s total last_seq tokens last_break",
                                k_meta) == REDIS_OK;
        /* LRANGE 1 0 is empty: recent 0 loads no message. */
        if (ok && recent == 0)
                ok = redisAppendCommand(st->rc, "LRANGE %s 1 0", k_msgs) ==
                     REDIS_OK;
        else if (ok)
                ok = redisAppendCommand(st->rc, "LRANGE %s %s -1", k_msgs,
                                        start) == REDIS_OK;
        ok = ok && redisAppendCommand(st->rc, "LLEN %s", k_msgs) == REDIS_OK &&
             redisAppendCommand(st->rc, "HMGET %s text upto folded", k_sum) ==
                 REDIS_OK &&
             redisAppendCommand(st->rc, "LRANGE %s %s %s", k_arch,
                                (flags & CM_LOAD_ARCHIVE) ? "0" : "1",
                                (flags & CM_LOAD_ARCHIVE) ? "-1" : "0") ==
                 REDIS_OK &&
             redisAppendCommand(st->rc, "EXEC") == REDIS_OK &&
             redisAppendCommand(st->rc, "HMGET %s name role interests",
                                k_prof) == REDIS_OK;
        if (!ok) {
                /* Part of a load is queued: the pipeline is out of step. */
                snprintf(errstr, errstr_size, "redis '%s': %s", st->url.safe,
                         st->rc->errstr);
                drop_connection(st);
                return -1;
        }
        st->loads_pending++;
        return 0;
}

/* The first error reply among the replies of one load (the EXEC's
 * elements included), or NULL. */
static const redisReply *load_error(redisReply *const r[LOAD_REPLIES])
{
        const redisReply *x = r[LOAD_R_EXEC];
        size_t i;

        for (i = 0; i < LOAD_REPLIES; i++)
                if (r[i]->type == REDIS_REPLY_ERROR)
                        return r[i];
        if (x->type == REDIS_REPLY_ARRAY)
                for (i = 0; i < x->elements; i++)
                        if (x->element[i]->type == REDIS_REPLY_ERROR)
                                return x->element[i];
        return NULL;
}

/* 1 when r[] has the shapes of the replies cm_store_load_send() asks for:
 * +OK, +QUEUED each, EXEC's array of HMGET (4), LRANGE, LLEN, HMGET (3),
 * LRANGE, and HMGET (3). */
static int load_replies_fit(redisReply *const r[LOAD_REPLIES])
{
        const redisReply *x = r[LOAD_R_EXEC], *const * e;
        int i;

        for (i = LOAD_R_MULTI; i < LOAD_R_EXEC; i++)
                if (r[i]->type != REDIS_REPLY_STATUS)
                        return 0;
        if (x->type != REDIS_REPLY_ARRAY || x->elements != LOAD_TX)
                return 0;
        e = (const redisReply *const *)x->element;
        return e[LOAD_TX_META]->type == REDIS_REPLY_ARRAY &&
               e[LOAD_TX_META]->elements == 4 &&
               e[LOAD_TX_MSGS]->type == REDIS_REPLY_ARRAY &&
               e[LOAD_TX_LEN]->type == REDIS_REPLY_INTEGER &&
               e[LOAD_TX_SUMMARY]->type == REDIS_REPLY_ARRAY &&
               e[LOAD_TX_SUMMARY]->elements == 3 &&
               e[LOAD_TX_ARCHIVE]->type == REDIS_REPLY_ARRAY &&
               r[LOAD_R_PROFILE]->type == REDIS_REPLY_ARRAY &&
               r[LOAD_R_PROFILE]->elements == 3;
}

/* Decodes the archive's chunks (an LRANGE reply) into s->archive, oldest
 * first; a chunk that does not decode is skipped with a warning. */
static void archive_from_reply(const redisReply *r, const char *user,
                               const char *conv, cm_session_t *s)
{
        cm_archive_header_t h;
        size_t i, total = 0;
        char why[256];

        for (i = 0; i < r->elements; i++) {
                const redisReply *c = r->element[i];

                if (c->type == REDIS_REPLY_STRING &&
                    cm_archive_header_read(c->str, c->len, &h, why,
                                           sizeof(why)) == 0)
                        total += h.count;
        }
        if (!total)
                return;
        s->archive = cm_calloc(total, sizeof(cm_message_t));
        for (i = 0; i < r->elements; i++) {
                const redisReply *c = r->element[i];
                long n = -1;

                if (c->type == REDIS_REPLY_STRING)
                        n = cm_archive_decode(
                            c->str, c->len, s->archive + s->archive_cnt,
                            total - s->archive_cnt, why, sizeof(why));
                else
                        snprintf(why, sizeof(why), "not a string");
                if (n < 0) {
                        cm_warn("session '%s:%s': skipping archive chunk "
                                "%zu: %s",
                                user, conv, i, why);
                        continue;
                }
                s->archive_cnt += (size_t)n;
        }
}

int cm_store_load_recv(cm_store_t *st, const char *user, const char *conv,
                       cm_session_t *out, char *errstr, size_t errstr_size)
{
        redisReply *r[LOAD_REPLIES] = {NULL};
        const redisReply *t, *err, *const *e;
        int i, ret = -1;

        session_clear(out);
        if (!st->rc || !st->loads_pending) {
                /* Dropped since the send: the replies went with it. */
                snprintf(errstr, errstr_size,
                         "redis '%s': connection lost before the reply",
                         st->url.safe);
                return -1;
        }
        st->loads_pending--;
        if (read_replies(st, r, LOAD_REPLIES, errstr, errstr_size) == -1)
                goto out;
        err = load_error(r);
        if (err) {
                snprintf(errstr, errstr_size, "redis '%s' load: %s",
                         st->url.safe, err->str);
                goto out;
        }
        if (!load_replies_fit(r)) {
                /* Not the replies of a load: the connection is out of
                 * step, and what it reads next cannot be trusted. */
                snprintf(errstr, errstr_size,
                         "redis '%s' load: unexpected reply types",
                         st->url.safe);
                drop_connection(st);
                goto out;
        }
        e = (const redisReply *const *)r[LOAD_R_EXEC]->element;
        t = e[LOAD_TX_META];
        out->total = reply_int(t->element[0]);
        out->last_seq = reply_int(t->element[1]);
        out->tokens = reply_int(t->element[2]);
        if (t->element[3]->type == REDIS_REPLY_STRING) {
                long long v;

                out->last_break_known =
                    cm_parse_int(t->element[3]->str, -1000000, 1000000, &v) ==
                    0;
                out->last_break = out->last_break_known ? v : 0;
        }
        out->exists = t->element[1]->type == REDIS_REPLY_STRING;
        t = e[LOAD_TX_MSGS];
        if (t->elements > 0) {
                out->msgs = cm_calloc(t->elements, sizeof(cm_message_t));
                for (size_t j = 0; j < t->elements; j++) {
                        const redisReply *m = t->element[j];
                        char why[256];

                        if (m->type != REDIS_REPLY_STRING ||
                            cm_stored_decode(m->str, m->len,
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
        out->stored_cnt = e[LOAD_TX_LEN]->integer;
        t = e[LOAD_TX_SUMMARY];
        out->summary = t->element[0]->type == REDIS_REPLY_STRING
                           ? cm_strndup(t->element[0]->str, t->element[0]->len)
                           : cm_strdup("");
        out->summary_upto = reply_int(t->element[1]);
        out->folded = reply_int(t->element[2]);
        if (*out->summary)
                out->exists = 1;
        t = e[LOAD_TX_ARCHIVE];
        archive_from_reply(t, user, conv, out);
        if (t->elements)
                out->exists = 1;
        profile_from_reply(r[LOAD_R_PROFILE], &out->profile);
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
                  int recent, unsigned flags, cm_session_t *out, char *errstr,
                  size_t errstr_size)
{
        session_clear(out);
        if (cm_store_connect(st, errstr, errstr_size) == -1 ||
            cm_store_load_send(st, user, conv, recent, flags, errstr,
                               errstr_size) == -1)
                return -1;
        return cm_store_load_recv(st, user, conv, out, errstr, errstr_size);
}

long long cm_store_delete_session(cm_store_t *st, const char *user,
                                  const char *conv, char *errstr,
                                  size_t errstr_size)
{
        static const char *const kinds[] = {"msgs", "meta", "eids", "summary",
                                            "archive"};
        char keys[5][KEY_MAX], k_convs[KEY_MAX], why[512];
        const char *argv[6];
        const char *srem[] = {"SREM", k_convs, conv};
        redisReply *r;
        long long n;
        int i;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        argv[0] = "DEL";
        for (i = 0; i < 5; i++) {
                cm_store_key(st, keys[i], sizeof(keys[i]), user, conv,
                             kinds[i]);
                argv[i + 1] = keys[i];
        }
        r = command(st, 6, argv, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        if (cm_redis_reply_int(r, &n, "DEL", why, sizeof(why)) == -1) {
                fail_with(st, why, errstr, errstr_size);
                freeReplyObject(r);
                return -1;
        }
        freeReplyObject(r);
        cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
        r = command(st, 3, srem, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        freeReplyObject(r);
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
                if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
                    r->element[0]->type != REDIS_REPLY_STRING ||
                    r->element[1]->type != REDIS_REPLY_ARRAY) {
                        fail_with(st, "SCAN: unexpected reply", errstr,
                                  errstr_size);
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
        cm_redis_batch_t *b = NULL;
        char ttl[16], why[512];
        size_t i;
        int ret = -1;

        if (!cnt)
                return 0;
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(ttl, sizeof(ttl), "%d", st->profile_ttl);
        b = cm_redis_batch_new();
        for (i = 0; i < cnt; i++) {
                const cm_profile_t *p = u[i].profile;
                char key[KEY_MAX], tsbuf[32];
                char *interests = interests_json(p);
                const char *keys[PROFILE_KEYS] = {[PROFILE_K_PROFILE] = key};
                const char *args[PROFILE_ARGC] = {
                    [PROFILE_A_MODE] = u[i].extracted ? "x" : "s",
                    [PROFILE_A_TS] = tsbuf,
                    [PROFILE_A_SRC] = u[i].src,
                    [PROFILE_A_TTL] = ttl,
                    [PROFILE_A_NAME] = p->name ? p->name : "",
                    [PROFILE_A_ROLE] = p->role ? p->role : "",
                    [PROFILE_A_INTERESTS] = interests,
                };

                cm_store_key(st, key, sizeof(key), u[i].user, NULL, "profile");
                snprintf(tsbuf, sizeof(tsbuf), "%lld", (long long)u[i].ts);
                cm_redis_batch_add(b, &cm_lua_profile, keys, PROFILE_KEYS, args,
                                   PROFILE_ARGC);
                free(interests);
        }
        if (run_batch(st, b, errstr, errstr_size) == -1)
                goto out;
        for (i = 0; i < cnt; i++) {
                long long v;

                if (cm_redis_reply_int(cm_redis_batch_reply(b, i), &v,
                                       "script 'profile'", why,
                                       sizeof(why)) == -1) {
                        fail_with(st, why, errstr, errstr_size);
                        goto out;
                }
                if (changed)
                        changed[i] = v == 1;
        }
        ret = 0;
out:
        cm_redis_batch_destroy(b);
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
        char k_msgs[KEY_MAX], k_meta[KEY_MAX], k_eids[KEY_MAX];
        char k_sum[KEY_MAX], k_arch[KEY_MAX], k_convs[KEY_MAX], part[16],
            off[32], why[512];
        const char *keys[DELETE_KEYS] = {
            [DELETE_K_MSGS] = k_msgs,    [DELETE_K_META] = k_meta,
            [DELETE_K_EIDS] = k_eids,    [DELETE_K_SUMMARY] = k_sum,
            [DELETE_K_ARCHIVE] = k_arch,
        };
        const char *args[DELETE_ARGC] = {
            [DELETE_A_PARTITION] = part,
            [DELETE_A_OFFSET] = off,
        };
        const char *srem[] = {"SREM", k_convs, conv};
        redisReply *r;
        long long ret;

        cm_store_key(st, k_msgs, sizeof(k_msgs), user, conv, "msgs");
        cm_store_key(st, k_meta, sizeof(k_meta), user, conv, "meta");
        cm_store_key(st, k_eids, sizeof(k_eids), user, conv, "eids");
        cm_store_key(st, k_sum, sizeof(k_sum), user, conv, "summary");
        cm_store_key(st, k_arch, sizeof(k_arch), user, conv, "archive");
        snprintf(part, sizeof(part), "%d", (int)partition);
        snprintf(off, sizeof(off), "%lld", (long long)offset);
        r = run_script(st, &cm_lua_delete, keys, DELETE_KEYS, args, NULL,
                       DELETE_ARGC, errstr, errstr_size);
        if (!r)
                return -1;
        if (cm_redis_reply_int(r, &ret, "script 'delete'", why, sizeof(why)) ==
            -1) {
                ret = -1;
        } else if (ret != 0 && ret != 1) {
                snprintf(why, sizeof(why),
                         "script 'delete': unknown result %lld", ret);
                ret = -1;
        }
        freeReplyObject(r);
        if (ret == -1) {
                fail_with(st, why, errstr, errstr_size);
                return -1;
        }
        if (ret == 1) {
                cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
                r = command(st, 3, srem, NULL, errstr, errstr_size);
                if (!r)
                        return -1;
                freeReplyObject(r);
        }
        return (int)ret;
}

/* The user's conversation ids (SMEMBERS of P{u}:convs), connecting
 * first: an array reply of strings the caller frees, or NULL with the
 * reason. */
static redisReply *user_convs(cm_store_t *st, const char *user, char *errstr,
                              size_t errstr_size)
{
        char k_convs[KEY_MAX], why[512];
        const char *argv[] = {"SMEMBERS", k_convs};
        redisReply *r;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return NULL;
        cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
        r = command(st, 2, argv, NULL, errstr, errstr_size);
        if (r &&
            cm_redis_reply_strings(r, "SMEMBERS", why, sizeof(why)) == -1) {
                fail_with(st, why, errstr, errstr_size);
                freeReplyObject(r);
                r = NULL;
        }
        return r;
}

void cm_conv_history_free(cm_conv_history_t *h, size_t cnt)
{
        size_t i, j;

        if (!h)
                return;
        for (i = 0; i < cnt; i++) {
                for (j = 0; j < h[i].msg_cnt; j++)
                        cm_message_release(&h[i].msgs[j]);
                free(h[i].msgs);
                free(h[i].conv);
        }
        free(h);
}

static int str_ptr_cmp(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Keeps the newest `keep` messages of h (releasing the older ones). */
static void history_keep_newest(cm_conv_history_t *h, size_t keep)
{
        size_t drop = h->msg_cnt - keep, i;

        for (i = 0; i < drop; i++)
                cm_message_release(&h->msgs[i]);
        memmove(h->msgs, h->msgs + drop, keep * sizeof(*h->msgs));
        h->msg_cnt = keep;
}

/* Shares CM_STORE_HISTORY_MSGS out over h[0..cnt): repeatedly, every
 * conversation with fewer messages than an equal share of what is left
 * keeps them all; the others get that share of their newest ones. */
static void history_bound(cm_conv_history_t *h, size_t cnt)
{
        size_t budget = CM_STORE_HISTORY_MSGS, open = cnt, i;
        char *capped = cm_calloc(cnt ? cnt : 1, 1);
        int changed = 1;

        while (changed && open) {
                size_t share = budget / open;

                changed = 0;
                for (i = 0; i < cnt; i++) {
                        if (capped[i] || h[i].msg_cnt > share)
                                continue;
                        capped[i] = 1;
                        budget -= h[i].msg_cnt;
                        open--;
                        changed = 1;
                }
        }
        for (i = 0; i < cnt && open; i++) {
                if (capped[i])
                        continue;
                history_keep_newest(&h[i], budget / open);
                budget -= h[i].msg_cnt;
                open--;
        }
        free(capped);
}

int cm_store_load_user_history(cm_store_t *st, const char *user,
                               const char *except_conv, cm_conv_history_t **out,
                               size_t *cnt, char *errstr, size_t errstr_size)
{
        cm_conv_history_t *h = NULL;
        const char **ids = NULL;
        redisReply *r;
        size_t i, n = 0, got = 0;
        int ret = -1;

        *out = NULL;
        *cnt = 0;
        r = user_convs(st, user, errstr, errstr_size);
        if (!r)
                return -1;
        ids = cm_calloc(r->elements ? r->elements : 1, sizeof(*ids));
        for (i = 0; i < r->elements; i++)
                if (!except_conv || strcmp(r->element[i]->str, except_conv))
                        ids[n++] = r->element[i]->str;
        qsort(ids, n, sizeof(*ids), str_ptr_cmp);
        if (n > CM_STORE_HISTORY_CONVS)
                n = CM_STORE_HISTORY_CONVS;
        h = cm_calloc(n ? n : 1, sizeof(*h));
        for (i = 0; i < n; i++)
                if (cm_store_load_send(st, user, ids[i], -1, CM_LOAD_ARCHIVE,
                                       errstr, errstr_size) == -1)
                        goto out;
        /* Every load is received, even after a failed one, to stay in
         * step; the first failure is the one reported. */
        ret = 0;
        for (i = 0; i < n; i++) {
                cm_session_t s;
                char why[512];
                cm_conv_history_t *c = &h[got];

                if (cm_store_load_recv(st, user, ids[i], &s, why,
                                       sizeof(why)) == -1) {
                        if (ret == 0)
                                snprintf(errstr, errstr_size, "%s", why);
                        ret = -1;
                        continue;
                }
                c->msg_cnt = s.archive_cnt + s.msg_cnt;
                if (c->msg_cnt) {
                        c->conv = cm_strdup(ids[i]);
                        c->msgs = cm_calloc(c->msg_cnt, sizeof(*c->msgs));
                        /* The messages move: the session keeps none. */
                        if (s.archive_cnt)
                                memcpy(c->msgs, s.archive,
                                       s.archive_cnt * sizeof(*s.archive));
                        if (s.msg_cnt)
                                memcpy(c->msgs + s.archive_cnt, s.msgs,
                                       s.msg_cnt * sizeof(*s.msgs));
                        s.archive_cnt = 0;
                        s.msg_cnt = 0;
                        got++;
                }
                cm_session_release(&s);
        }
        if (ret == 0)
                history_bound(h, got);
out:
        if (ret == -1) {
                /* Sent but not received: the connection is out of step. */
                if (st->loads_pending)
                        drop_connection(st);
                cm_conv_history_free(h, got);
        } else {
                *out = h;
                *cnt = got;
        }
        free(ids);
        freeReplyObject(r);
        return ret;
}

int cm_store_user_delete(cm_store_t *st, const char *user, int mark_dirty,
                         char *errstr, size_t errstr_size)
{
        char skey[CM_SESSION_KEY_MAX];
        const char *dirty[] = {skey};
        char k_convs[KEY_MAX], k_prof[KEY_MAX];
        const char *del[] = {"DEL", k_prof, k_convs};
        redisReply *r;
        size_t i;

        r = user_convs(st, user, errstr, errstr_size);
        if (!r)
                return -1;
        cm_store_key(st, k_convs, sizeof(k_convs), user, NULL, "convs");
        cm_store_key(st, k_prof, sizeof(k_prof), user, NULL, "profile");
        /* Sessions first, the index last: a crash in between leaves the
         * index, and the redelivered event finishes the job. */
        for (i = 0; i < r->elements; i++) {
                cm_session_key(skey, user, r->element[i]->str);
                if (cm_store_delete_session(st, user, r->element[i]->str,
                                            errstr, errstr_size) == -1 ||
                    (mark_dirty && cm_store_mark_dirty(st, dirty, 1, errstr,
                                                       errstr_size) == -1)) {
                        freeReplyObject(r);
                        return -1;
                }
        }
        freeReplyObject(r);
        r = command(st, 3, del, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        freeReplyObject(r);
        return 0;
}

/* What a fold adds to the archive (fold.lua's ARGV from FOLD_A_TAIL on):
 * the newest chunk as read and, merged into it, the first folded messages
 * (both empty when not merging), then the folded messages alone in chunks
 * of at most chunk_max. */
typedef struct fold_chunks {
        redisReply *tail; /* LINDEX archive -1, when merging; else NULL */
        char *merged;
        size_t merged_len;
        char **chunk;
        size_t *chunk_len;
        size_t cnt;
} fold_chunks_t;

static void fold_chunks_release(fold_chunks_t *fc)
{
        size_t i;

        if (fc->tail)
                freeReplyObject(fc->tail);
        free(fc->merged);
        for (i = 0; i < fc->cnt; i++)
                free(fc->chunk[i]);
        free(fc->chunk);
        free(fc->chunk_len);
        memset(fc, 0, sizeof(*fc));
}

/* Reads the archive's newest chunk; when it has room for more messages,
 * ends before first_seq (a session that expired and started again numbers
 * its messages from 1 again) and decodes, keeps it in fc->tail and its
 * messages in (*tail, *tail_cnt) (heap array, owned). Returns 0, or -1
 * with the reason in errstr. */
static int fold_read_tail(cm_store_t *st, const char *k_arch, size_t chunk_max,
                          int64_t first_seq, fold_chunks_t *fc,
                          cm_message_t **tail, size_t *tail_cnt, char *errstr,
                          size_t errstr_size)
{
        const char *argv[] = {"LINDEX", k_arch, "-1"};
        cm_archive_header_t h;
        redisReply *r;
        char why[256];
        long n;

        *tail = NULL;
        *tail_cnt = 0;
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        r = command(st, 3, argv, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        if (r->type != REDIS_REPLY_STRING ||
            cm_archive_header_read(r->str, r->len, &h, why, sizeof(why)) ==
                -1 ||
            h.count >= chunk_max || h.last_seq >= first_seq) {
                freeReplyObject(r);
                return 0; /* none, full, unreadable, of an earlier life */
        }
        *tail = cm_calloc(h.count, sizeof(**tail));
        n = cm_archive_decode(r->str, r->len, *tail, h.count, why, sizeof(why));
        if (n < 0) {
                cm_warn("archive '%s': its newest chunk does not decode (%s); "
                        "not merging into it",
                        k_arch, why);
                free(*tail);
                *tail = NULL;
                freeReplyObject(r);
                return 0;
        }
        *tail_cnt = (size_t)n;
        fc->tail = r;
        return 0;
}

/* The zstd level of a chunk of cnt messages: a full one is encoded once
 * and kept, so it gets the denser level. */
static int chunk_level(size_t cnt, size_t chunk_max)
{
        return cnt >= chunk_max ? CM_ARCHIVE_LEVEL_FULL : CM_ARCHIVE_LEVEL;
}

/* Encodes the chunks of a fold of folded[0..cnt) (see fold_chunks_t),
 * merging the first ones into tail[0..tail_cnt) when there is a tail. */
static void fold_encode(const cm_message_t *folded, size_t cnt,
                        const cm_message_t *tail, size_t tail_cnt,
                        size_t chunk_max, fold_chunks_t *fc)
{
        size_t first = chunk_max - (fc->tail ? tail_cnt : 0), i, n;

        if (first > cnt)
                first = cnt;
        if (fc->tail) {
                cm_message_t *m = cm_calloc(tail_cnt + first, sizeof(*m));

                /* Shallow copies: the chunk is encoded from them. */
                memcpy(m, tail, tail_cnt * sizeof(*m));
                memcpy(m + tail_cnt, folded, first * sizeof(*m));
                fc->merged = cm_archive_encode(
                    m, tail_cnt + first,
                    chunk_level(tail_cnt + first, chunk_max), &fc->merged_len);
                free(m);
        }
        fc->chunk = cm_calloc(1 + (cnt - first + chunk_max - 1) / chunk_max,
                              sizeof(*fc->chunk));
        fc->chunk_len = cm_calloc(1 + (cnt - first + chunk_max - 1) / chunk_max,
                                  sizeof(*fc->chunk_len));
        for (i = 0; i < cnt; i += n) {
                n = i == 0 ? first : chunk_max;
                if (n > cnt - i)
                        n = cnt - i;
                fc->chunk[fc->cnt] =
                    cm_archive_encode(folded + i, n, chunk_level(n, chunk_max),
                                      &fc->chunk_len[fc->cnt]);
                fc->cnt++;
        }
}

long long cm_store_fold_commit(cm_store_t *st, const char *user,
                               const char *conv, int64_t expected_upto,
                               const cm_message_t *folded, size_t cnt,
                               const char *text, int64_t *left, char *errstr,
                               size_t errstr_size)
{
        char k_sum[KEY_MAX], k_msgs[KEY_MAX], k_meta[KEY_MAX], k_arch[KEY_MAX];
        char exp[32], upto[32], ttl[16], th[16], attl[16], amax[16], why[512];
        const char *keys[FOLD_KEYS] = {
            [FOLD_K_SUMMARY] = k_sum,
            [FOLD_K_MSGS] = k_msgs,
            [FOLD_K_META] = k_meta,
            [FOLD_K_ARCHIVE] = k_arch,
        };
        fold_chunks_t fc = {0};
        cm_message_t *tail = NULL;
        size_t tail_cnt = 0, i, nargs;
        size_t chunk_max = CM_ARCHIVE_CHUNK_MSGS;
        const char **args = NULL;
        size_t *lens = NULL;
        redisReply *r = NULL;
        long long v[2], n = -1;

        *left = 0;
        if (cnt == 0) {
                snprintf(errstr, errstr_size, "fold of no message");
                return -1;
        }
        for (i = 1; i < cnt; i++) {
                if (folded[i].seq <= folded[i - 1].seq) {
                        snprintf(errstr, errstr_size,
                                 "fold of messages out of order (seq %lld "
                                 "after %lld)",
                                 (long long)folded[i].seq,
                                 (long long)folded[i - 1].seq);
                        return -1;
                }
        }
        cm_store_key(st, k_sum, sizeof(k_sum), user, conv, "summary");
        cm_store_key(st, k_msgs, sizeof(k_msgs), user, conv, "msgs");
        cm_store_key(st, k_meta, sizeof(k_meta), user, conv, "meta");
        cm_store_key(st, k_arch, sizeof(k_arch), user, conv, "archive");
        if (st->archive_max > 0) {
                /* A chunk never holds more than the archive may keep, so
                 * the eviction of whole chunks keeps the newest one. */
                if ((size_t)st->archive_max < chunk_max)
                        chunk_max = (size_t)st->archive_max;
                if (fold_read_tail(st, k_arch, chunk_max, folded[0].seq, &fc,
                                   &tail, &tail_cnt, errstr, errstr_size) == -1)
                        goto out;
                fold_encode(folded, cnt, tail, tail_cnt, chunk_max, &fc);
        }
        snprintf(exp, sizeof(exp), "%lld", (long long)expected_upto);
        snprintf(upto, sizeof(upto), "%lld", (long long)folded[cnt - 1].seq);
        snprintf(ttl, sizeof(ttl), "%d", st->session_ttl);
        snprintf(th, sizeof(th), "%d", st->compact_threshold);
        snprintf(attl, sizeof(attl), "%d", st->archive_ttl);
        snprintf(amax, sizeof(amax), "%d", st->archive_max);
        nargs = FOLD_ARGC + fc.cnt;
        args = cm_calloc(nargs, sizeof(*args));
        lens = cm_calloc(nargs, sizeof(*lens));
        args[FOLD_A_EXPECTED] = exp;
        args[FOLD_A_UPTO] = upto;
        args[FOLD_A_TEXT] = text;
        args[FOLD_A_TTL] = ttl;
        args[FOLD_A_THRESHOLD] = th;
        args[FOLD_A_ARCHIVE_TTL] = attl;
        args[FOLD_A_ARCHIVE_MAX] = amax;
        for (i = 0; i < FOLD_A_TAIL; i++)
                lens[i] = strlen(args[i]);
        args[FOLD_A_TAIL] = fc.tail ? fc.tail->str : "";
        lens[FOLD_A_TAIL] = fc.tail ? fc.tail->len : 0;
        args[FOLD_A_MERGED] = fc.merged ? fc.merged : "";
        lens[FOLD_A_MERGED] = fc.merged_len;
        for (i = 0; i < fc.cnt; i++) {
                args[FOLD_ARGC + i] = fc.chunk[i];
                lens[FOLD_ARGC + i] = fc.chunk_len[i];
        }
        r = run_script(st, &cm_lua_fold, keys, FOLD_KEYS, args, lens, nargs,
                       errstr, errstr_size);
        if (!r)
                goto out;
        if (r->type == REDIS_REPLY_INTEGER && r->integer == CM_FOLD_MOVED) {
                n = CM_FOLD_MOVED;
        } else if (cm_redis_reply_ints(r, 2, v, "script 'fold'", why,
                                       sizeof(why)) == -1) {
                fail_with(st, why, errstr, errstr_size);
        } else {
                n = v[0];
                *left = v[1];
        }
out:
        if (r)
                freeReplyObject(r);
        for (i = 0; i < tail_cnt; i++)
                cm_message_release(&tail[i]);
        free(tail);
        fold_chunks_release(&fc);
        free(args);
        free(lens);
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
                                 st->url.safe, st->rc->errstr);
                        drop_connection(st);
                        return -1;
                }
                if (r->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "redis '%s' HINCRBY: %s",
                                 st->url.safe, r->str);
                        ret = -1;
                }
                freeReplyObject(r);
        }
        return ret;
}

/* The key of topic's applied-offset record. */
static void applied_key(const cm_store_t *st, const char *topic,
                        char key[KEY_MAX])
{
        snprintf(key, KEY_MAX, "%sapplied:%s", st->prefix, topic);
}

/* The record's field names of partition p: "p", "b<p>", "r<p>". */
typedef char applied_field_t[24];
static void applied_fields(int32_t p, applied_field_t f[3])
{
        snprintf(f[0], sizeof(f[0]), "%d", (int)p);
        snprintf(f[1], sizeof(f[1]), "b%d", (int)p);
        snprintf(f[2], sizeof(f[2]), "r%d", (int)p);
}

/* A field of an HMGET reply as a number, or dflt when absent. */
static int64_t reply_i64(const redisReply *r, int64_t dflt)
{
        return r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : dflt;
}

int cm_store_applied_get(cm_store_t *st, const char *topic, cm_applied_t *a,
                         size_t cnt, char *errstr, size_t errstr_size)
{
        char key[KEY_MAX];
        applied_field_t *fields = NULL;
        const char **argv = NULL;
        redisReply *r = NULL;
        size_t i;
        int ret = -1;

        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        applied_key(st, topic, key);
        argv = cm_calloc(2 + 3 * cnt, sizeof(*argv));
        fields = cm_calloc(3 * cnt + 1, sizeof(*fields));
        argv[0] = "HMGET";
        argv[1] = key;
        for (i = 0; i < 3 * cnt; i++) {
                if (i % 3 == 0)
                        applied_fields(a[i / 3].partition, fields + i);
                argv[2 + i] = fields[i];
        }
        r = command(st, (int)(2 + 3 * cnt), argv, NULL, errstr, errstr_size);
        if (!r)
                goto out;
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 * cnt) {
                fail_with(st, "HMGET: not an array of the fields asked for",
                          errstr, errstr_size);
                goto out;
        }
        for (i = 0; i < cnt; i++) {
                a[i].next = reply_i64(r->element[3 * i], -1);
                a[i].base = reply_i64(r->element[3 * i + 1], 0);
                a[i].reset = reply_i64(r->element[3 * i + 2], -1);
        }
        ret = 0;
out:
        freeReplyObject(r);
        free(argv);
        free(fields);
        return ret;
}

int cm_store_applied_set(cm_store_t *st, const char *topic,
                         const cm_applied_t *a, size_t cnt, char *errstr,
                         size_t errstr_size)
{
        char key[KEY_MAX];
        applied_field_t *args = NULL;
        const char **argv = NULL;
        redisReply *r = NULL;
        size_t i;
        int ret;

        if (!cnt)
                return 0;
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        applied_key(st, topic, key);
        argv = cm_calloc(2 + 6 * cnt, sizeof(*argv));
        args = cm_calloc(6 * cnt, sizeof(*args));
        argv[0] = "HSET";
        argv[1] = key;
        for (i = 0; i < cnt; i++) {
                applied_field_t *f = args + 6 * i, names[3];

                applied_fields(a[i].partition, names);
                memcpy(f[0], names[0], sizeof(names[0]));
                snprintf(f[1], sizeof(f[1]), "%lld", (long long)a[i].next);
                memcpy(f[2], names[1], sizeof(names[1]));
                snprintf(f[3], sizeof(f[3]), "%lld", (long long)a[i].base);
                memcpy(f[4], names[2], sizeof(names[2]));
                snprintf(f[5], sizeof(f[5]), "%lld", (long long)a[i].reset);
        }
        for (i = 0; i < 6 * cnt; i++)
                argv[2 + i] = args[i];
        r = command(st, (int)(2 + 6 * cnt), argv, NULL, errstr, errstr_size);
        ret = r ? 0 : -1;
        freeReplyObject(r);
        free(argv);
        free(args);
        return ret;
}

int cm_store_stats_get(cm_store_t *st, char ***out, char *errstr,
                       size_t errstr_size)
{
        char key[KEY_MAX], why[512];
        const char *argv[] = {"HGETALL", key};
        redisReply *r;
        size_t i;
        int n = -1;

        *out = NULL;
        if (cm_store_connect(st, errstr, errstr_size) == -1)
                return -1;
        snprintf(key, sizeof(key), "%sstats", st->prefix);
        r = command(st, 2, argv, NULL, errstr, errstr_size);
        if (!r)
                return -1;
        if (cm_redis_reply_strings(r, "HGETALL", why, sizeof(why)) == -1) {
                fail_with(st, why, errstr, errstr_size);
                goto out;
        }
        if (r->elements % 2) {
                fail_with(st, "HGETALL: an odd number of elements", errstr,
                          errstr_size);
                goto out;
        }
        *out = cm_calloc(r->elements / 2 + 1, sizeof(char *));
        for (i = 0, n = 0; i < r->elements; i += 2) {
                cm_buf_t b;

                cm_buf_init(&b);
                cm_buf_addf(&b, "%s=%s", r->element[i]->str,
                            r->element[i + 1]->str);
                (*out)[n++] = cm_buf_detach(&b, NULL);
        }
out:
        freeReplyObject(r);
        return n;
}

int cm_store_mark_user_dirty(cm_store_t *st, const char *user, char *errstr,
                             size_t errstr_size)
{
        const char **keys = NULL;
        char(*bufs)[CM_SESSION_KEY_MAX] = NULL;
        redisReply *r;
        size_t i;
        int ret;

        r = user_convs(st, user, errstr, errstr_size);
        if (!r)
                return -1;
        keys = cm_calloc(r->elements, sizeof(*keys));
        bufs = cm_calloc(r->elements, sizeof(*bufs));
        for (i = 0; i < r->elements; i++) {
                cm_session_key(bufs[i], user, r->element[i]->str);
                keys[i] = bufs[i];
        }
        ret = cm_store_mark_dirty(st, keys, r->elements, errstr, errstr_size);
        freeReplyObject(r);
        free(keys);
        free(bufs);
        return ret;
}

int cm_store_pop_dirty(cm_store_t *st, char **out, int max, int64_t cutoff_ms,
                       char *errstr, size_t errstr_size)
{
        char key[KEY_MAX], cnt[16], cutoff[32], why[512];
        const char *keys[POP_DIRTY_KEYS] = {[POP_DIRTY_K_DIRTY] = key};
        const char *args[POP_DIRTY_ARGC] = {
            [POP_DIRTY_A_CUTOFF] = cutoff,
            [POP_DIRTY_A_MAX] = cnt,
        };
        redisReply *r;
        int n = 0;
        size_t i;

        snprintf(key, sizeof(key), "%sdirty", st->prefix);
        snprintf(cnt, sizeof(cnt), "%d", max);
        snprintf(cutoff, sizeof(cutoff), "%lld", (long long)cutoff_ms);
        r = run_script(st, &cm_lua_pop_dirty, keys, POP_DIRTY_KEYS, args, NULL,
                       POP_DIRTY_ARGC, errstr, errstr_size);
        if (!r)
                return -1;
        if (cm_redis_reply_strings(r, "script 'pop_dirty'", why, sizeof(why)) ==
            -1) {
                fail_with(st, why, errstr, errstr_size);
                freeReplyObject(r);
                return -1;
        }
        for (i = 0; i < r->elements && n < max; i++)
                out[n++] = cm_strndup(r->element[i]->str, r->element[i]->len);
        freeReplyObject(r);
        return n;
}
