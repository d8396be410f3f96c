#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <curl/curl.h>

#include "deadline.h"
#include "log.h"
#include "util.h"

#define REDIS_PORT_DEFAULT 6379
#define REDIS_DB_MAX       100000

/* ------------------------------------------------------------------ */
/* URLs                                                                 */

/* Part p of cu, percent-decoded when decode, as a heap string in *out
 * (NULL when the URL has no such part). Returns 0, or -1 when the part is
 * there but cannot be read (e.g. it decodes to a NUL byte). */
static int url_part(CURLU *cu, CURLUPart p, int decode, char **out)
{
        char *v = NULL;
        CURLUcode uc = curl_url_get(cu, p, &v, decode ? CURLU_URLDECODE : 0);

        *out = NULL;
        switch (uc) {
        case CURLUE_OK:
                *out = cm_strdup(v);
                curl_free(v);
                return 0;
        case CURLUE_NO_USER:
        case CURLUE_NO_PASSWORD:
        case CURLUE_NO_PORT:
        case CURLUE_NO_QUERY:
        case CURLUE_NO_FRAGMENT:
        case CURLUE_NO_ZONEID:
                return 0;
        default:
                return -1;
        }
}

/* The URL of u for logs, from cu: the user (not the password) kept, the
 * password shown as "***", port and db spelt out. Changes cu. */
static char *url_safe(CURLU *cu, const cm_redis_url_t *u)
{
        char num[32], *v = NULL, *safe;

        curl_url_set(cu, CURLUPART_USER, u->user, CURLU_URLENCODE);
        curl_url_set(cu, CURLUPART_PASSWORD, u->password ? "***" : NULL, 0);
        snprintf(num, sizeof(num), "%d", u->port);
        curl_url_set(cu, CURLUPART_PORT, num, 0);
        snprintf(num, sizeof(num), "/%d", u->db);
        curl_url_set(cu, CURLUPART_PATH, num, 0);
        if (curl_url_get(cu, CURLUPART_URL, &v, 0) == CURLUE_OK)
                safe = cm_strdup(v);
        else
                safe = cm_strdup("redis://(unprintable)");
        curl_free(v);
        return safe;
}

int cm_redis_url_parse(const char *url, cm_redis_url_t *out, char *errstr,
                       size_t errstr_size)
{
        CURLU *cu = NULL;
        CURLUcode uc;
        cm_buf_t full;
        char *scheme = NULL, *host = NULL, *zone = NULL, *port = NULL;
        char *path = NULL, *query = NULL, *frag = NULL;
        long long v = 0;
        int ret = -1;

        memset(out, 0, sizeof(*out));
        cm_buf_init(&full);
        if (!strstr(url, "://"))
                cm_buf_adds(&full, "redis://");
        cm_buf_adds(&full, url);
        cu = curl_url();
        if (!cu) {
                snprintf(errstr, errstr_size, "redis url: out of memory");
                goto out;
        }
        /* Errors below quote no part of the URL but the port and the
         * path: anything else may hold the password. */
        uc =
            curl_url_set(cu, CURLUPART_URL, full.buf, CURLU_NON_SUPPORT_SCHEME);
        if (uc == CURLUE_BAD_PORT_NUMBER) {
                snprintf(errstr, errstr_size, "redis url: bad port");
                goto out;
        }
        if (uc != CURLUE_OK) {
                snprintf(errstr, errstr_size, "redis url: %s",
                         curl_url_strerror(uc));
                goto out;
        }
        if (url_part(cu, CURLUPART_SCHEME, 0, &scheme) == -1 || !scheme ||
            strcmp(scheme, "redis")) {
                snprintf(errstr, errstr_size,
                         "redis url: only redis:// is supported");
                goto out;
        }
        if (url_part(cu, CURLUPART_USER, 1, &out->user) == -1 ||
            url_part(cu, CURLUPART_PASSWORD, 1, &out->password) == -1) {
                snprintf(errstr, errstr_size,
                         "redis url: user or password does not decode");
                goto out;
        }
        if (out->password && !*out->password) {
                free(out->password); /* ":@": no password */
                out->password = NULL;
        }
        if (out->user && !out->password) {
                /* "secret@host": the password, as redis-cli reads it */
                out->password = out->user;
                out->user = NULL;
        }
        if (out->user && !*out->user) {
                free(out->user); /* ":password@": AUTH with it alone */
                out->user = NULL;
        }
        if (url_part(cu, CURLUPART_HOST, 0, &host) == -1 ||
            url_part(cu, CURLUPART_ZONEID, 0, &zone) == -1 || !host || !*host) {
                snprintf(errstr, errstr_size, "redis url: no host");
                goto out;
        }
        if (url_part(cu, CURLUPART_QUERY, 0, &query) == -1 || query ||
            url_part(cu, CURLUPART_FRAGMENT, 0, &frag) == -1 || frag) {
                snprintf(errstr, errstr_size,
                         "redis url: a query or fragment is not supported");
                goto out;
        }
        out->port = REDIS_PORT_DEFAULT;
        if (url_part(cu, CURLUPART_PORT, 0, &port) == -1 ||
            (port && cm_parse_int(port, 1, 65535, &v) == -1)) {
                snprintf(errstr, errstr_size, "redis url: bad port '%.16s'",
                         port ? port : "");
                goto out;
        }
        if (port)
                out->port = (int)v;
        if (url_part(cu, CURLUPART_PATH, 1, &path) == -1) {
                snprintf(errstr, errstr_size, "redis url: bad path");
                goto out;
        }
        if (path && path[0] == '/' && path[1]) {
                if (cm_parse_int(path + 1, 0, REDIS_DB_MAX, &v) == -1) {
                        snprintf(errstr, errstr_size,
                                 "redis url: bad database number '%.32s'",
                                 path + 1);
                        goto out;
                }
                out->db = (int)v;
        }
        /* curl keeps an IPv6 address in brackets; connect() wants it
         * bare, with its zone. */
        if (host[0] == '[') {
                size_t n = strlen(host);
                cm_buf_t h;

                cm_buf_init(&h);
                cm_buf_add(&h, host + 1, n > 2 ? n - 2 : 0);
                if (zone)
                        cm_buf_addf(&h, "%%%s", zone);
                out->host = cm_buf_detach(&h, NULL);
        } else {
                out->host = host;
                host = NULL; /* now owned by out */
        }
        out->safe = url_safe(cu, out);
        ret = 0;
out:
        if (ret == -1)
                cm_redis_url_release(out);
        free(scheme);
        free(host);
        free(zone);
        free(port);
        free(path);
        free(query);
        free(frag);
        curl_url_cleanup(cu);
        cm_buf_release(&full);
        return ret;
}

void cm_redis_url_release(cm_redis_url_t *u)
{
        if (!u)
                return;
        free(u->host);
        free(u->user);
        if (u->password)
                explicit_bzero(u->password, strlen(u->password));
        free(u->password);
        free(u->safe);
        memset(u, 0, sizeof(*u));
}

char *cm_url_redact(const char *url)
{
        static const CURLUPart drop[] = {CURLUPART_USER, CURLUPART_PASSWORD,
                                         CURLUPART_OPTIONS, CURLUPART_QUERY,
                                         CURLUPART_FRAGMENT};
        CURLU *cu = curl_url();
        char *v = NULL, *safe = NULL;
        size_t i;

        if (cu && curl_url_set(cu, CURLUPART_URL, url,
                               CURLU_NON_SUPPORT_SCHEME | CURLU_GUESS_SCHEME) ==
                      CURLUE_OK) {
                for (i = 0; i < sizeof(drop) / sizeof(drop[0]); i++)
                        curl_url_set(cu, drop[i], NULL, 0);
                if (curl_url_get(cu, CURLUPART_URL, &v, 0) == CURLUE_OK)
                        safe = cm_strdup(v);
                curl_free(v);
        }
        curl_url_cleanup(cu);
        return safe ? safe : cm_strdup("(invalid url)");
}

/* ------------------------------------------------------------------ */
/* Connection                                                           */

static struct timeval ms_tv(int ms)
{
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

        return tv;
}

/* Runs one command whose reply must not be an error. Returns 0, or -1
 * with the reason (I/O errors set rc->err). */
static int simple_command(redisContext *rc, const cm_redis_url_t *u, int argc,
                          const char **argv, char *errstr, size_t errstr_size)
{
        redisReply *r = redisCommandArgv(rc, argc, argv, NULL);
        int ret = -1;

        if (!r)
                snprintf(errstr, errstr_size, "redis '%s' %s: %s", u->safe,
                         argv[0], rc->errstr);
        else if (r->type == REDIS_REPLY_ERROR)
                snprintf(errstr, errstr_size, "redis '%s' %s: %s", u->safe,
                         argv[0], r->str);
        else
                ret = 0;
        freeReplyObject(r);
        return ret;
}

redisContext *cm_redis_connect(const cm_redis_url_t *u, int connect_ms,
                               int io_ms, char *errstr, size_t errstr_size)
{
        redisContext *rc = NULL;
        char dbstr[16];

        if (connect_ms > 0)
                rc = redisConnectWithTimeout(u->host, u->port,
                                             ms_tv(connect_ms));
        else
                rc = redisConnect(u->host, u->port);
        if (!rc || rc->err) {
                snprintf(errstr, errstr_size,
                         "cannot connect to redis '%s': %s", u->safe,
                         rc ? rc->errstr : "out of memory");
                goto fail;
        }
        if (io_ms > 0 && redisSetTimeout(rc, ms_tv(io_ms)) != REDIS_OK) {
                snprintf(errstr, errstr_size,
                         "redis '%s': cannot set the timeout: %s", u->safe,
                         rc->errstr);
                goto fail;
        }
        if (u->password) {
                const char *argv[] = {"AUTH", u->user, u->password};

                if (!u->user)
                        argv[1] = u->password;
                if (simple_command(rc, u, u->user ? 3 : 2, argv, errstr,
                                   errstr_size) == -1)
                        goto fail;
        }
        if (u->db) {
                const char *argv[] = {"SELECT", dbstr};

                snprintf(dbstr, sizeof(dbstr), "%d", u->db);
                if (simple_command(rc, u, 2, argv, errstr, errstr_size) == -1)
                        goto fail;
        }
        return rc;
fail:
        redisFree(rc);
        return NULL;
}

int cm_redis_set_deadline(redisContext *rc, int io_ms, int64_t deadline_us,
                          char *errstr, size_t errstr_size)
{
        int ms = cm_deadline_step_ms(io_ms, deadline_us, cm_mono_us());

        /* Past the deadline: 1 ms, so that replies already received are
         * still read, and the first wait fails. */
        if (redisSetTimeout(rc, ms_tv(ms == -1 ? 1 : ms)) != REDIS_OK) {
                snprintf(errstr, errstr_size, "cannot set the timeout: %s",
                         rc->errstr);
                return -1;
        }
        return 0;
}

/* ------------------------------------------------------------------ */
/* Scripts                                                              */

static int is_noscript(const redisReply *r)
{
        return r && r->type == REDIS_REPLY_ERROR &&
               !strncmp(r->str, "NOSCRIPT", 8);
}

/* Fills argv[0..3), the head of a call of s with nkeys keys: EVALSHA, or
 * EVAL with the source when whole or when s has no sha. numkeys is where
 * nkeys is written in decimal. */
static void script_head(const cm_redis_script_t *s, int whole,
                        const char **argv, char numkeys[24], size_t nkeys)
{
        whole = whole || !s->sha;
        snprintf(numkeys, 24, "%zu", nkeys);
        argv[0] = whole ? "EVAL" : "EVALSHA";
        argv[1] = whole ? s->src : s->sha;
        argv[2] = numkeys;
}

int cm_redis_script_load(redisContext *rc,
                         const cm_redis_script_t *const *scripts, size_t cnt,
                         char *errstr, size_t errstr_size)
{
        size_t i;
        int ret = 0;

        for (i = 0; i < cnt; i++) {
                const char *argv[] = {"SCRIPT", "LOAD", scripts[i]->src};

                if (redisAppendCommandArgv(rc, 3, argv, NULL) != REDIS_OK) {
                        snprintf(errstr, errstr_size, "SCRIPT LOAD: %s",
                                 rc->errstr);
                        return -1;
                }
        }
        /* Every reply is read, even after a bad one, to stay in step. */
        for (i = 0; i < cnt; i++) {
                const cm_redis_script_t *s = scripts[i];
                redisReply *r = NULL;

                if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
                        snprintf(errstr, errstr_size, "SCRIPT LOAD: %s",
                                 rc->errstr);
                        return -1;
                }
                if (ret == 0 && r->type == REDIS_REPLY_ERROR) {
                        snprintf(errstr, errstr_size, "script '%s': %s",
                                 s->name, r->str);
                        ret = -1;
                } else if (ret == 0 &&
                           (r->type != REDIS_REPLY_STRING || r->len != 40 ||
                            (s->sha && memcmp(r->str, s->sha, 40)))) {
                        snprintf(errstr, errstr_size,
                                 "script '%s': SCRIPT LOAD gave '%.40s', not "
                                 "its SHA1 %s",
                                 s->name,
                                 r->type == REDIS_REPLY_STRING ? r->str : "",
                                 s->sha ? s->sha : "");
                        ret = -1;
                }
                freeReplyObject(r);
        }
        return ret;
}

redisReply *cm_redis_script_run(redisContext *rc, const cm_redis_script_t *s,
                                const char *const *keys, size_t nkeys,
                                const char *const *args, const size_t *arglens,
                                size_t nargs, char *errstr, size_t errstr_size)
{
        size_t argc = 3 + nkeys + nargs, i;
        const char **argv = cm_calloc(argc, sizeof(*argv));
        size_t *argvlen = cm_calloc(argc, sizeof(*argvlen));
        char numkeys[24];
        redisReply *r;

        for (i = 0; i < nkeys; i++)
                argv[3 + i] = keys[i];
        for (i = 0; i < nargs; i++)
                argv[3 + nkeys + i] = args[i];
        script_head(s, 0, argv, numkeys, nkeys);
        for (i = 0; i < argc; i++)
                argvlen[i] = i >= 3 + nkeys && arglens ? arglens[i - 3 - nkeys]
                                                       : strlen(argv[i]);
        r = redisCommandArgv(rc, (int)argc, argv, argvlen);
        if (is_noscript(r)) {
                freeReplyObject(r);
                script_head(s, 1, argv, numkeys, nkeys);
                for (i = 0; i < 3; i++)
                        argvlen[i] = strlen(argv[i]);
                r = redisCommandArgv(rc, (int)argc, argv, argvlen);
        }
        free(argv);
        free(argvlen);
        if (!r) {
                snprintf(errstr, errstr_size, "script '%s': %s", s->name,
                         rc->errstr);
                return NULL;
        }
        if (r->type == REDIS_REPLY_ERROR) {
                snprintf(errstr, errstr_size, "script '%s': %s", s->name,
                         r->str);
                freeReplyObject(r);
                return NULL;
        }
        return r;
}

typedef struct batch_call {
        const cm_redis_script_t *s;
        size_t nkeys, nargs;
        size_t first; /* index in offs of its first key */
} batch_call_t;

struct cm_redis_batch {
        batch_call_t *calls;
        size_t cnt, cap;
        cm_buf_t text; /* every key and arg, each NUL-terminated */
        size_t *offs;  /* where each one starts in text */
        size_t offs_cnt, offs_cap;
        redisReply **reply; /* [cnt] after a successful run */
        const char **argv;  /* scratch, for the longest call */
        size_t argv_cap;
};

cm_redis_batch_t *cm_redis_batch_new(void)
{
        cm_redis_batch_t *b = cm_calloc(1, sizeof(*b));

        cm_buf_init(&b->text);
        return b;
}

static void batch_free_replies(cm_redis_batch_t *b)
{
        size_t i;

        for (i = 0; b->reply && i < b->cnt; i++)
                freeReplyObject(b->reply[i]);
        free(b->reply);
        b->reply = NULL;
}

void cm_redis_batch_destroy(cm_redis_batch_t *b)
{
        if (!b)
                return;
        batch_free_replies(b);
        free(b->calls);
        free(b->offs);
        free(b->argv);
        cm_buf_release(&b->text);
        free(b);
}

static void batch_add_str(cm_redis_batch_t *b, const char *s)
{
        if (b->offs_cnt == b->offs_cap) {
                b->offs_cap = b->offs_cap ? 2 * b->offs_cap : 64;
                b->offs = cm_realloc(b->offs, b->offs_cap * sizeof(*b->offs));
        }
        b->offs[b->offs_cnt++] = b->text.len;
        cm_buf_add(&b->text, s, strlen(s) + 1);
}

size_t cm_redis_batch_add(cm_redis_batch_t *b, const cm_redis_script_t *s,
                          const char *const *keys, size_t nkeys,
                          const char *const *args, size_t nargs)
{
        batch_call_t *c;
        size_t i;

        if (b->cnt == b->cap) {
                b->cap = b->cap ? 2 * b->cap : 16;
                b->calls = cm_realloc(b->calls, b->cap * sizeof(*b->calls));
        }
        c = &b->calls[b->cnt];
        c->s = s;
        c->nkeys = nkeys;
        c->nargs = nargs;
        c->first = b->offs_cnt;
        for (i = 0; i < nkeys; i++)
                batch_add_str(b, keys[i]);
        for (i = 0; i < nargs; i++)
                batch_add_str(b, args[i]);
        if (3 + nkeys + nargs > b->argv_cap) {
                b->argv_cap = 3 + nkeys + nargs;
                b->argv = cm_realloc(b->argv, b->argv_cap * sizeof(*b->argv));
        }
        return b->cnt++;
}

size_t cm_redis_batch_count(const cm_redis_batch_t *b)
{
        return b->cnt;
}

/* Queues call i (EVALSHA, or EVAL when whole). Returns 0, or -1 when
 * hiredis is out of memory (rc->err set). */
static int batch_append(redisContext *rc, cm_redis_batch_t *b, size_t i,
                        int whole)
{
        const batch_call_t *c = &b->calls[i];
        size_t j, argc = 3 + c->nkeys + c->nargs;
        char numkeys[24];

        for (j = 0; j < c->nkeys + c->nargs; j++)
                b->argv[3 + j] = b->text.buf + b->offs[c->first + j];
        script_head(c->s, whole, b->argv, numkeys, c->nkeys);
        if (redisAppendCommandArgv(rc, (int)argc, b->argv, NULL) != REDIS_OK)
                return -1;
        return 0;
}

/* Reads the reply of call i into b->reply[i]. Returns 0, or -1 on an I/O
 * error (rc->err set). */
static int batch_read(redisContext *rc, cm_redis_batch_t *b, size_t i)
{
        redisReply *r = NULL;

        if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r)
                return -1;
        b->reply[i] = r;
        return 0;
}

int cm_redis_batch_run(redisContext *rc, cm_redis_batch_t *b, char *errstr,
                       size_t errstr_size)
{
        size_t i, redo = 0, first_redo = 0;
        int overtaken = 0;

        batch_free_replies(b);
        b->reply = cm_calloc(b->cnt + 1, sizeof(*b->reply));
        for (i = 0; i < b->cnt; i++)
                if (batch_append(rc, b, i, 0) == -1)
                        goto io_error;
        for (i = 0; i < b->cnt; i++) {
                if (batch_read(rc, b, i) == -1)
                        goto io_error;
                if (is_noscript(b->reply[i])) {
                        if (!redo++)
                                first_redo = i;
                } else if (redo) {
                        overtaken = 1;
                }
        }
        if (!redo)
                return 0;
        /* The script cache was flushed (or Redis restarted) during or
         * before the pipeline: Redis ran none of these calls. Sent again
         * whole, in order; the first EVAL caches the script again. */
        if (overtaken)
                cm_error("script '%s': reloaded by another client in the "
                         "middle of a pipeline: calls after call %zu ran "
                         "before it",
                         b->calls[first_redo].s->name, first_redo);
        for (i = first_redo; i < b->cnt; i++) {
                if (!is_noscript(b->reply[i]))
                        continue;
                if (batch_append(rc, b, i, 1) == -1)
                        goto io_error;
        }
        for (i = first_redo; i < b->cnt; i++) {
                if (!is_noscript(b->reply[i]))
                        continue;
                freeReplyObject(b->reply[i]);
                b->reply[i] = NULL;
                if (batch_read(rc, b, i) == -1)
                        goto io_error;
        }
        return 0;
io_error:
        snprintf(errstr, errstr_size, "script '%s': %s",
                 b->cnt ? b->calls[0].s->name : "?", rc->errstr);
        batch_free_replies(b);
        return -1;
}

const redisReply *cm_redis_batch_reply(const cm_redis_batch_t *b, size_t i)
{
        return b->reply && i < b->cnt ? b->reply[i] : NULL;
}

/* ------------------------------------------------------------------ */
/* Reply checks                                                         */

/* Describes what r is, for an error message. */
static void reply_describe(const redisReply *r, char *out, size_t out_size)
{
        if (!r) {
                snprintf(out, out_size, "no reply");
                return;
        }
        switch (r->type) {
        case REDIS_REPLY_ERROR:
                snprintf(out, out_size, "error '%.200s'", r->str);
                break;
        case REDIS_REPLY_STRING:
                snprintf(out, out_size, "a string");
                break;
        case REDIS_REPLY_STATUS:
                snprintf(out, out_size, "status '%.32s'", r->str);
                break;
        case REDIS_REPLY_INTEGER:
                snprintf(out, out_size, "integer %lld", r->integer);
                break;
        case REDIS_REPLY_NIL:
                snprintf(out, out_size, "nil");
                break;
        case REDIS_REPLY_ARRAY:
                snprintf(out, out_size, "an array of %zu", r->elements);
                break;
        default:
                snprintf(out, out_size, "reply type %d", r->type);
                break;
        }
}

int cm_redis_reply_ints(const redisReply *r, size_t cnt, long long *out,
                        const char *what, char *errstr, size_t errstr_size)
{
        char got[256];
        size_t i;

        if (r && r->type == REDIS_REPLY_ARRAY && r->elements == cnt) {
                for (i = 0; i < cnt; i++) {
                        if (r->element[i]->type != REDIS_REPLY_INTEGER)
                                break;
                        out[i] = r->element[i]->integer;
                }
                if (i == cnt)
                        return 0;
                reply_describe(r->element[i], got, sizeof(got));
                snprintf(errstr, errstr_size,
                         "%s: element %zu is %s, not an integer", what, i, got);
                return -1;
        }
        reply_describe(r, got, sizeof(got));
        snprintf(errstr, errstr_size,
                 "%s: expected an array of %zu integers, got %s", what, cnt,
                 got);
        return -1;
}

int cm_redis_reply_strings(const redisReply *r, const char *what, char *errstr,
                           size_t errstr_size)
{
        char got[256];
        size_t i;

        if (!r || r->type != REDIS_REPLY_ARRAY) {
                reply_describe(r, got, sizeof(got));
                snprintf(errstr, errstr_size,
                         "%s: expected an array of strings, got %s", what, got);
                return -1;
        }
        for (i = 0; i < r->elements; i++) {
                if (r->element[i]->type != REDIS_REPLY_STRING) {
                        reply_describe(r->element[i], got, sizeof(got));
                        snprintf(errstr, errstr_size,
                                 "%s: element %zu is %s, not a string", what, i,
                                 got);
                        return -1;
                }
        }
        return 0;
}

int cm_redis_reply_int(const redisReply *r, long long *out, const char *what,
                       char *errstr, size_t errstr_size)
{
        char got[256];

        if (r && r->type == REDIS_REPLY_INTEGER) {
                *out = r->integer;
                return 0;
        }
        reply_describe(r, got, sizeof(got));
        snprintf(errstr, errstr_size, "%s: expected an integer, got %s", what,
                 got);
        return -1;
}
