/*
 * Tests of common/store.c and common/redis.c against a throwaway
 * redis-server that the test starts itself on a free port and stops at the
 * end (hiredis's test.sh is the model; nothing else need be running). Each
 * Lua script is driven through the store API, and every outcome is read
 * back from Redis with plain hiredis commands on a connection of the
 * test's own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "archive.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "redis.h"
#include "store.h"
#include "util.h"

#define PREFIX "t:"
/* The password of the second server: characters a URL must encode. */
#define PASSWORD     "p@ss:w/rd"
#define PASSWORD_ENC "p%40ss%3Aw%2Frd"

/* ------------------------------------------------------------------ */
/* A throwaway redis-server                                             */

typedef struct server {
        pid_t pid;
        int port;
        char dir[64]; /* its --dir and log */
} server_t;

static int free_port(void)
{
        struct sockaddr_in sa;
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM, 0), port;

        assert_true(fd >= 0);
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
        port = ntohs(sa.sin_port);
        close(fd);
        return port;
}

/* 1 when the server on port answers (NOAUTH counts as an answer). */
static int server_answers(int port)
{
        struct timeval tv = {0, 200000};
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        redisReply *r = NULL;
        int ok;

        if (c && !c->err)
                r = redisCommand(c, "PING");
        ok = r != NULL;
        freeReplyObject(r);
        redisFree(c);
        return ok;
}

/* Starts redis-server with extra arguments (NULL-terminated, may be NULL)
 * on a free port, and waits until it answers. */
static void server_start(server_t *sv, const char *const *extra)
{
        int attempt;

        snprintf(sv->dir, sizeof(sv->dir), "/tmp/cm_test_store.XXXXXX");
        assert_non_null(mkdtemp(sv->dir));
        for (attempt = 0; attempt < 5; attempt++) {
                const char *argv[32] = {
                    "redis-server", "--port",      NULL, "--bind",
                    "127.0.0.1",    "--save",      "",   "--appendonly",
                    "no",           "--daemonize", "no", "--dir",
                    sv->dir};
                char port[16];
                size_t n = 13, i;
                int64_t deadline;

                sv->port = free_port();
                snprintf(port, sizeof(port), "%d", sv->port);
                argv[2] = port;
                for (i = 0; extra && extra[i]; i++)
                        argv[n++] = extra[i];
                argv[n] = NULL;
                sv->pid = fork();
                assert_true(sv->pid >= 0);
                if (sv->pid == 0) {
                        char log[128];
                        int fd;

                        /* Dies with the test, whatever way it ends. */
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        snprintf(log, sizeof(log), "%s/redis.log", sv->dir);
                        fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                        if (fd >= 0) {
                                dup2(fd, 1);
                                dup2(fd, 2);
                        }
                        execvp("redis-server", (char *const *)argv);
                        _exit(127);
                }
                deadline = cm_mono_us() + 10 * 1000000;
                while (cm_mono_us() < deadline) {
                        if (waitpid(sv->pid, NULL, WNOHANG) == sv->pid)
                                break; /* port taken meanwhile: again */
                        if (server_answers(sv->port))
                                return;
                        usleep(20000);
                }
                kill(sv->pid, SIGKILL);
                waitpid(sv->pid, NULL, 0);
        }
        fail_msg("redis-server did not start (is it installed? see %s)",
                 sv->dir);
}

static void server_stop(server_t *sv)
{
        char log[128];
        int64_t deadline = cm_mono_us() + 10 * 1000000;

        if (sv->pid > 0) {
                kill(sv->pid, SIGTERM);
                while (waitpid(sv->pid, NULL, WNOHANG) != sv->pid) {
                        if (cm_mono_us() > deadline) {
                                kill(sv->pid, SIGKILL);
                                waitpid(sv->pid, NULL, 0);
                                break;
                        }
                        usleep(10000);
                }
                sv->pid = 0;
        }
        snprintf(log, sizeof(log), "%s/redis.log", sv->dir);
        unlink(log);
        rmdir(sv->dir);
}

/* ------------------------------------------------------------------ */
/* Fixtures: one server for the group, a store and a raw connection    */

static server_t srv;
static redisContext *raw; /* the test's own connection, for assertions */
static cm_config_t cfg;
static cm_store_t *st;
static char err[1024];

#define assert_ok(call)                                                        \
        do {                                                                   \
                if ((call) != 0)                                               \
                        fail_msg("%s: %s", #call, err);                        \
        } while (0)

static redisContext *raw_connect(int port)
{
        redisContext *c = redisConnect("127.0.0.1", port);

        assert_non_null(c);
        if (c->err)
                fail_msg("raw connect: %s", c->errstr);
        return c;
}

/* Runs a command on c; the reply must not be NULL (caller frees). */
static redisReply *cmd_on(redisContext *c, const char *fmt, ...)
{
        redisReply *r;
        va_list ap;

        va_start(ap, fmt);
        r = redisvCommand(c, fmt, ap);
        va_end(ap);
        if (!r)
                fail_msg("raw command '%s': %s", fmt, c->errstr);
        return r;
}

/* An integer reply of a raw command. */
static long long raw_int(const char *fmt, ...)
{
        redisReply *r;
        long long v;
        va_list ap;

        va_start(ap, fmt);
        r = redisvCommand(raw, fmt, ap);
        va_end(ap);
        if (!r || r->type != REDIS_REPLY_INTEGER)
                fail_msg("raw '%s': not an integer reply", fmt);
        v = r->integer;
        freeReplyObject(r);
        return v;
}

/* A string reply of a raw command as a heap string, NULL for nil. */
static char *raw_str(const char *fmt, ...)
{
        redisReply *r;
        char *s = NULL;
        va_list ap;

        va_start(ap, fmt);
        r = redisvCommand(raw, fmt, ap);
        va_end(ap);
        if (!r || (r->type != REDIS_REPLY_STRING &&
                   r->type != REDIS_REPLY_NIL && r->type != REDIS_REPLY_STATUS))
                fail_msg("raw '%s': not a string reply", fmt);
        if (r->type != REDIS_REPLY_NIL)
                s = cm_strndup(r->str, r->len);
        freeReplyObject(r);
        return s;
}

/* Asserts the string reply of a raw command with two %s arguments (want
 * NULL: nil). */
static void assert_raw_str(const char *want, const char *fmt, const char *a,
                           const char *b)
{
        char *got = raw_str(fmt, a, b);

        if (!want)
                assert_null(got);
        else
                assert_string_equal(got ? got : "(nil)", want);
        free(got);
}

/* The whole reply of a raw command, flattened to text (arrays as
 * "[a,b]"), to compare a key's state before and after. */
static void flatten(const redisReply *r, cm_buf_t *b)
{
        size_t i;

        switch (r->type) {
        case REDIS_REPLY_ARRAY:
                cm_buf_adds(b, "[");
                for (i = 0; i < r->elements; i++) {
                        if (i)
                                cm_buf_adds(b, ",");
                        flatten(r->element[i], b);
                }
                cm_buf_adds(b, "]");
                break;
        case REDIS_REPLY_INTEGER:
                cm_buf_addf(b, "%lld", r->integer);
                break;
        case REDIS_REPLY_NIL:
                cm_buf_adds(b, "nil");
                break;
        default:
                cm_buf_add(b, r->str, r->len);
                break;
        }
}

static int line_cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every key of the test's prefix with its type, value and whether it has
 * a TTL, one sorted line each: a snapshot of everything the store wrote. */
static char *snapshot(void)
{
        redisReply *keys = cmd_on(raw, "KEYS %s*", PREFIX);
        char **lines = cm_calloc(keys->elements + 1, sizeof(*lines));
        cm_buf_t b;
        size_t i;

        for (i = 0; i < keys->elements; i++) {
                const char *k = keys->element[i]->str;
                redisReply *t = cmd_on(raw, "TYPE %s", k), *v;

                if (!strcmp(t->str, "list"))
                        v = cmd_on(raw, "LRANGE %s 0 -1", k);
                else if (!strcmp(t->str, "hash"))
                        v = cmd_on(raw, "HGETALL %s", k);
                else if (!strcmp(t->str, "zset"))
                        v = cmd_on(raw, "ZRANGE %s 0 -1 WITHSCORES", k);
                else if (!strcmp(t->str, "set"))
                        v = cmd_on(raw, "SMEMBERS %s", k);
                else
                        v = cmd_on(raw, "GET %s", k);
                cm_buf_init(&b);
                cm_buf_addf(&b, "%s %s ", k, t->str);
                flatten(v, &b);
                cm_buf_addf(&b, " ttl=%d", raw_int("TTL %s", k) > 0);
                lines[i] = cm_buf_detach(&b, NULL);
                freeReplyObject(t);
                freeReplyObject(v);
        }
        qsort(lines, keys->elements, sizeof(*lines), line_cmp);
        cm_buf_init(&b);
        for (i = 0; i < keys->elements; i++) {
                cm_buf_addf(&b, "%s\n", lines[i]);
                free(lines[i]);
        }
        free(lines);
        freeReplyObject(keys);
        return cm_buf_detach(&b, NULL);
}

static void store_open(const char *url)
{
        cm_store_destroy(st);
        assert_int_equal(
            cm_config_set(&cfg, "redis_url", url, err, sizeof(err)), 0);
        st = cm_store_new(&cfg, err, sizeof(err));
        if (!st)
                fail_msg("cm_store_new: %s", err);
}

static int group_setup(void **state)
{
        (void)state;
        server_start(&srv, NULL);
        raw = raw_connect(srv.port);
        return 0;
}

static int group_teardown(void **state)
{
        (void)state;
        redisFree(raw);
        server_stop(&srv);
        return 0;
}

static int setup(void **state)
{
        char url[64];

        (void)state;
        freeReplyObject(cmd_on(raw, "FLUSHALL"));
        cm_config_init(&cfg);
        assert_int_equal(
            cm_config_set(&cfg, "key_prefix", PREFIX, err, sizeof(err)), 0);
        cfg.session_ttl = 3600;
        cfg.profile_ttl = 7200;
        cfg.dedupe_window = 1000;
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", srv.port);
        store_open(url);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        kill(srv.pid, SIGCONT); /* a test that failed while it was stopped */
        cm_store_destroy(st);
        st = NULL;
        cm_config_release(&cfg);
        return 0;
}

/* ------------------------------------------------------------------ */
/* Helpers on sessions                                                  */

static void event_init(cm_event_t *ev, const char *user, const char *conv,
                       const char *event_id)
{
        memset(ev, 0, sizeof(*ev));
        ev->type = CM_EVENT_MESSAGE;
        snprintf(ev->event_id, sizeof(ev->event_id), "%s", event_id);
        snprintf(ev->user_id, sizeof(ev->user_id), "%s", user);
        snprintf(ev->conversation_id, sizeof(ev->conversation_id), "%s", conv);
        ev->msg.role = CM_ROLE_USER;
        ev->msg.content = ev->event_id; /* content: its own event_id */
        ev->msg.content_len = strlen(ev->event_id);
        ev->msg.ts = 1000;
}

/* Appends one message whose content is its event_id; asserts the call
 * succeeded and returns its item. */
static cm_append_t append(const char *user, const char *conv,
                          const char *event_id, int32_t partition,
                          int64_t offset)
{
        cm_event_t ev;
        cm_append_t it;

        memset(&it, 0, sizeof(it));
        event_init(&ev, user, conv, event_id);
        it.ev = &ev;
        it.partition = partition;
        it.offset = offset;
        it.tokens = 7;
        it.break_tokens = 1;
        assert_ok(cm_store_append_batch(st, &it, 1, err, sizeof(err)));
        it.ev = NULL;
        return it;
}

static void key(char *out, size_t size, const char *user, const char *conv,
                const char *kind)
{
        cm_store_key(st, out, size, user, conv, kind);
}

/* The session's list as "seq:event_id,..." (decoded with the codec). */
static char *list_text(const char *user, const char *conv)
{
        char k[512];
        redisReply *r;
        cm_buf_t b;
        size_t i;

        key(k, sizeof(k), user, conv, "msgs");
        r = cmd_on(raw, "LRANGE %s 0 -1", k);
        cm_buf_init(&b);
        for (i = 0; i < r->elements; i++) {
                cm_message_t m;
                char why[256];

                if (cm_stored_decode(r->element[i]->str, r->element[i]->len, &m,
                                     why, sizeof(why)) == -1)
                        fail_msg("stored entry does not decode: %s", why);
                cm_buf_addf(&b, "%s%lld:%s", i ? "," : "", (long long)m.seq,
                            m.event_id ? m.event_id : "?");
                cm_message_release(&m);
        }
        freeReplyObject(r);
        return cm_buf_detach(&b, NULL);
}

static void assert_list(const char *user, const char *conv, const char *want)
{
        char *got = list_text(user, conv);

        assert_string_equal(got, want);
        free(got);
}

static long long meta_int(const char *user, const char *conv, const char *field)
{
        char k[512], *v;
        long long n = -1;

        key(k, sizeof(k), user, conv, "meta");
        v = raw_str("HGET %s %s", k, field);
        if (v)
                n = strtoll(v, NULL, 10);
        free(v);
        return n;
}

static long long key_ttl(const char *user, const char *conv, const char *kind)
{
        char k[512];

        key(k, sizeof(k), user, conv, kind);
        return raw_int("TTL %s", k);
}

/*
 * Folds the session's stored messages with seq <= upto, as a load gives
 * them, into text with the cursor expected, as the summarizer does (a
 * session without such messages folds one made-up message of seq upto).
 * Returns what cm_store_fold_commit() returns.
 */
static long long fold(const char *user, const char *conv, int64_t expected,
                      int64_t upto, const char *text, int64_t *left)
{
        cm_message_t fake = {.content = "x", .content_len = 1, .seq = upto};
        cm_session_t s;
        int64_t ignored;
        size_t n = 0;
        long long ret;

        assert_ok(cm_store_load(st, user, conv, -1, 0, &s, err, sizeof(err)));
        while (n < s.msg_cnt && s.msgs[n].seq <= upto)
                n++;
        ret = cm_store_fold_commit(st, user, conv, expected, n ? s.msgs : &fake,
                                   n ? n : 1, text, left ? left : &ignored, err,
                                   sizeof(err));
        cm_session_release(&s);
        return ret;
}

/* ------------------------------------------------------------------ */
/* append.lua                                                           */

static void test_append_applies_in_order(void **state)
{
        cm_append_t a;

        (void)state;
        a = append("u1", "c1", "e1", 0, 10);
        assert_int_equal(a.result, CM_APPEND_APPLIED);
        assert_int_equal(a.seq, 1);
        assert_int_equal(a.pending, 1);
        a = append("u1", "c1", "e2", 0, 11);
        assert_int_equal(a.result, CM_APPEND_APPLIED);
        assert_int_equal(a.seq, 2);
        assert_int_equal(a.pending, 2);
        assert_list("u1", "c1", "1:e1,2:e2");
        assert_int_equal(meta_int("u1", "c1", "off:0"), 11);
        assert_int_equal(meta_int("u1", "c1", "last_seq"), 2);
        assert_int_equal(meta_int("u1", "c1", "total"), 2);
        assert_int_equal(meta_int("u1", "c1", "tokens"), 14);
        assert_int_equal(meta_int("u1", "c1", "last_break"), 1);
        /* the first message registered the conversation with its user */
        assert_int_equal(raw_int("SISMEMBER " PREFIX "{u1}:convs c1"), 1);
}

static void test_append_watermark_skips(void **state)
{
        cm_append_t a;
        char *before, *after;

        (void)state;
        append("u1", "c1", "e1", 0, 10);
        append("u1", "c1", "e2", 0, 11);
        before = snapshot();

        /* A redelivery of e1 (offset 10 <= watermark 11). */
        a = append("u1", "c1", "e1", 0, 10);
        assert_int_equal(a.result, CM_APPEND_DUP_OFFSET);
        assert_int_equal(a.seq, 1); /* e1 is still in the window */
        assert_int_equal(a.pending, 2);
        /* A new event_id at the watermark itself: skipped too. */
        a = append("u1", "c1", "e3", 0, 11);
        assert_int_equal(a.result, CM_APPEND_DUP_OFFSET);
        assert_int_equal(a.seq, 0);
        after = snapshot();
        assert_string_equal(after, before);
        free(before);
        free(after);

        /* Another partition has its own watermark. */
        a = append("u1", "c1", "e4", 1, 0);
        assert_int_equal(a.result, CM_APPEND_APPLIED);
        assert_int_equal(a.seq, 3);
        assert_int_equal(meta_int("u1", "c1", "off:0"), 11);
        assert_int_equal(meta_int("u1", "c1", "off:1"), 0);
        assert_list("u1", "c1", "1:e1,2:e2,3:e4");
}

static void test_append_dup_event_in_window(void **state)
{
        cm_append_t a;

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c1", "e2", 0, 2);
        /* A producer retry: the same event_id at a new offset. */
        a = append("u1", "c1", "e1", 0, 3);
        assert_int_equal(a.result, CM_APPEND_DUP_EVENT);
        assert_int_equal(a.seq, 1); /* the earlier one's */
        assert_int_equal(a.pending, 2);
        assert_list("u1", "c1", "1:e1,2:e2");
        assert_int_equal(meta_int("u1", "c1", "total"), 2);
        /* its offset is applied: a redelivery of it is now skipped */
        assert_int_equal(meta_int("u1", "c1", "off:0"), 3);
        a = append("u1", "c1", "e1", 0, 3);
        assert_int_equal(a.result, CM_APPEND_DUP_OFFSET);
}

static void test_append_dup_event_outside_window(void **state)
{
        char eid[16], k[512];
        cm_append_t a;
        int i;

        (void)state;
        cm_store_destroy(st);
        cfg.dedupe_window = 4;
        st = cm_store_new(&cfg, err, sizeof(err));
        assert_non_null(st);
        /* 16 appends: the 16th trims the id set to the newest 4 ids. */
        for (i = 1; i <= 16; i++) {
                snprintf(eid, sizeof(eid), "e%d", i);
                a = append("u1", "c1", eid, 0, i);
                assert_int_equal(a.result, CM_APPEND_APPLIED);
        }
        key(k, sizeof(k), "u1", "c1", "eids");
        assert_int_equal(raw_int("ZCARD %s", k), 4);
        assert_null(raw_str("ZSCORE %s %s", k, "e12"));

        /* e13 is inside the window: a duplicate. */
        a = append("u1", "c1", "e13", 0, 17);
        assert_int_equal(a.result, CM_APPEND_DUP_EVENT);
        assert_int_equal(a.seq, 13);
        /* e1 fell out of the window: applied again, as a new message. */
        a = append("u1", "c1", "e1", 0, 18);
        assert_int_equal(a.result, CM_APPEND_APPLIED);
        assert_int_equal(a.seq, 17);
        assert_int_equal(meta_int("u1", "c1", "total"), 17);
}

static void test_append_ttl(void **state)
{
        (void)state;
        append("u1", "c1", "e1", 0, 1);
        assert_in_range(key_ttl("u1", "c1", "msgs"), 1, 3600);
        assert_in_range(key_ttl("u1", "c1", "meta"), 1, 3600);
        assert_in_range(key_ttl("u1", "c1", "eids"), 1, 3600);

        cm_store_destroy(st);
        cfg.session_ttl = 0;
        st = cm_store_new(&cfg, err, sizeof(err));
        assert_non_null(st);
        append("u2", "c1", "e1", 0, 1);
        assert_int_equal(key_ttl("u2", "c1", "msgs"), -1);
        assert_int_equal(key_ttl("u2", "c1", "meta"), -1);
        assert_int_equal(key_ttl("u2", "c1", "eids"), -1);
}

static void test_append_compaction_mark(void **state)
{
        char k[512];
        cm_append_t a;

        (void)state;
        cm_store_set_compaction(st, 3, 3600 * 1000);
        assert_int_equal(append("u1", "c1", "e1", 0, 1).compact, 0);
        assert_int_equal(append("u1", "c1", "e2", 0, 2).compact, 0);
        assert_int_equal(append("u1", "c1", "e3", 0, 3).compact, 0);
        assert_int_equal(meta_int("u1", "c1", "cjob"), -1);
        /* over the threshold: a job is asked for, once */
        a = append("u1", "c1", "e4", 0, 4);
        assert_int_equal(a.compact, 1);
        assert_int_equal(a.pending, 4);
        assert_true(meta_int("u1", "c1", "cjob") > 0);
        assert_int_equal(append("u1", "c1", "e5", 0, 5).compact, 0);
        /* done with nothing to fold: the next append asks again */
        assert_ok(cm_store_compaction_done(st, "u1", "c1", err, sizeof(err)));
        assert_int_equal(meta_int("u1", "c1", "cjob"), -1);
        assert_int_equal(append("u1", "c1", "e6", 0, 6).compact, 1);
        /* a stale job (its mark older than stale_ms) is asked for again */
        key(k, sizeof(k), "u1", "c1", "meta");
        freeReplyObject(cmd_on(raw, "HSET %s cjob 1", k));
        assert_int_equal(append("u1", "c1", "e7", 0, 7).compact, 1);
}

static void test_append_batch_mixed(void **state)
{
        cm_event_t ev[4];
        cm_append_t it[4];
        size_t i;

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        event_init(&ev[0], "u1", "c1", "e1"); /* redelivered */
        event_init(&ev[1], "u1", "c1", "e2");
        event_init(&ev[2], "u2", "c9", "e1"); /* another session */
        event_init(&ev[3], "u1", "c1", "e2"); /* producer retry */
        memset(it, 0, sizeof(it));
        for (i = 0; i < 4; i++) {
                it[i].ev = &ev[i];
                it[i].tokens = 3;
        }
        it[0].offset = 1;
        it[1].offset = 2;
        it[2].offset = 3;
        it[3].offset = 4;
        assert_ok(cm_store_append_batch(st, it, 4, err, sizeof(err)));
        assert_int_equal(it[0].result, CM_APPEND_DUP_OFFSET);
        assert_int_equal(it[1].result, CM_APPEND_APPLIED);
        assert_int_equal(it[1].seq, 2);
        assert_int_equal(it[2].result, CM_APPEND_APPLIED);
        assert_int_equal(it[2].seq, 1);
        assert_int_equal(it[3].result, CM_APPEND_DUP_EVENT);
        assert_int_equal(it[3].seq, 2);
        assert_list("u1", "c1", "1:e1,2:e2");
        assert_list("u2", "c9", "1:e1");
        assert_int_equal(raw_int("SISMEMBER " PREFIX "{u2}:convs c9"), 1);
}

/* ------------------------------------------------------------------ */
/* fold.lua                                                             */

static void test_fold_races_an_append(void **state)
{
        cm_session_t s;
        int64_t left = -1;
        long long n;
        char k[512];

        (void)state;
        cm_store_set_compaction(st, 2, 3600 * 1000);
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c1", "e2", 0, 2);
        append("u1", "c1", "e3", 0, 3);
        append("u1", "c1", "e4", 0, 4);
        assert_true(meta_int("u1", "c1", "cjob") > 0);
        assert_ok(cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)));
        assert_int_equal(s.summary_upto, 0);
        assert_int_equal(s.msg_cnt, 4);
        /* The summarizer folds the 3 oldest; meanwhile e5 and e6 land. */
        append("u1", "c1", "e5", 0, 5);
        append("u1", "c1", "e6", 0, 6);
        n = cm_store_fold_commit(st, "u1", "c1", s.summary_upto, s.msgs, 3,
                                 "sum of 1-3", &left, err, sizeof(err));
        cm_session_release(&s);
        assert_int_equal(n, 3);
        assert_int_equal(left, 3);
        /* the appended messages stay, in order, none removed */
        assert_list("u1", "c1", "4:e4,5:e5,6:e6");
        key(k, sizeof(k), "u1", "c1", "summary");
        assert_raw_str("sum of 1-3", "HGET %s %s", k, "text");
        assert_raw_str("3", "HGET %s %s", k, "upto");
        assert_raw_str("3", "HGET %s %s", k, "folded");
        assert_in_range(raw_int("TTL %s", k), 1, 3600);
        /* 3 left is over the threshold of 2: the job mark stays */
        assert_true(meta_int("u1", "c1", "cjob") > 0);

        /* The next fold, from the new cursor: within the threshold, the
         * mark goes. */
        n = fold("u1", "c1", 3, 5, "sum of 1-5", &left);
        assert_int_equal(n, 2);
        assert_int_equal(left, 1);
        assert_list("u1", "c1", "6:e6");
        assert_raw_str("5", "HGET %s %s", k, "folded");
        assert_int_equal(meta_int("u1", "c1", "cjob"), -1);
        /* the load sees the summary and what is left */
        assert_ok(cm_store_load(st, "u1", "c1", 3, 0, &s, err, sizeof(err)));
        assert_string_equal(s.summary, "sum of 1-5");
        assert_int_equal(s.summary_upto, 5);
        assert_int_equal(s.folded, 5);
        assert_int_equal(s.total, 6);
        assert_int_equal(s.stored_cnt, 1);
        assert_int_equal(s.msg_cnt, 1);
        assert_string_equal(s.msgs[0].content, "e6");
        cm_session_release(&s);
}

static void test_fold_moved_cursor(void **state)
{
        int64_t left = -1;
        char *before, *after;

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c1", "e2", 0, 2);
        append("u1", "c1", "e3", 0, 3);
        assert_int_equal(fold("u1", "c1", 0, 1, "one", &left), 1);
        before = snapshot();
        /* A second summarizer, from the old cursor 0: refused. */
        assert_int_equal(fold("u1", "c1", 0, 2, "stale", &left), CM_FOLD_MOVED);
        /* A session that is gone. */
        assert_int_equal(fold("u1", "gone", 0, 2, "x", &left), CM_FOLD_MOVED);
        after = snapshot();
        assert_string_equal(after, before);
        free(before);
        free(after);
}

/* ------------------------------------------------------------------ */
/* The archive (fold.lua, delete.lua, loads)                            */

/* Appends messages e<from>..e<to> to user/conv, at offsets from..to. */
static void append_range(const char *user, const char *conv, int from, int to)
{
        char id[32];
        int i;

        for (i = from; i <= to; i++) {
                snprintf(id, sizeof(id), "e%d", i);
                append(user, conv, id, 0, i);
        }
}

/* The session's archive read with plain commands: its messages as
 * "seq:content,..." (each chunk decoded), and in *layout (when not NULL)
 * its chunks as "first-last@base,..." (caller frees both). */
static char *archive_text(const char *user, const char *conv, char **layout)
{
        char k[512], why[256];
        redisReply *r;
        cm_buf_t b, l;
        size_t i, j;

        key(k, sizeof(k), user, conv, "archive");
        r = cmd_on(raw, "LRANGE %s 0 -1", k);
        cm_buf_init(&b);
        cm_buf_init(&l);
        for (i = 0; i < r->elements; i++) {
                const redisReply *c = r->element[i];
                cm_archive_header_t h;
                cm_message_t *m;
                long n;

                if (cm_archive_header_read(c->str, c->len, &h, why,
                                           sizeof(why)) == -1)
                        fail_msg("archive chunk %zu: %s", i, why);
                cm_buf_addf(&l, "%s%lld-%lld@%lld", i ? "," : "",
                            (long long)h.first_seq, (long long)h.last_seq,
                            (long long)h.base);
                m = cm_calloc(h.count, sizeof(*m));
                n = cm_archive_decode(c->str, c->len, m, h.count, why,
                                      sizeof(why));
                if (n < 0)
                        fail_msg("archive chunk %zu: %s", i, why);
                for (j = 0; j < (size_t)n; j++) {
                        cm_buf_addf(&b, "%s%lld:%s", b.len ? "," : "",
                                    (long long)m[j].seq, m[j].content);
                        cm_message_release(&m[j]);
                }
                free(m);
        }
        freeReplyObject(r);
        if (layout)
                *layout = cm_buf_detach(&l, NULL);
        cm_buf_release(&l);
        return cm_buf_detach(&b, NULL);
}

/* "<from>:e<from>,...,<to>:e<to>" */
static char *range_text(int from, int to)
{
        cm_buf_t b;
        int i;

        cm_buf_init(&b);
        for (i = from; i <= to; i++)
                cm_buf_addf(&b, "%s%d:e%d", i > from ? "," : "", i, i);
        return cm_buf_detach(&b, NULL);
}

static void assert_archive(const char *user, const char *conv, int from, int to,
                           const char *layout)
{
        char *got_layout, *got = archive_text(user, conv, &got_layout);
        char *want = range_text(from, to);

        assert_string_equal(got, want);
        if (layout)
                assert_string_equal(got_layout, layout);
        free(got);
        free(got_layout);
        free(want);
}

/* Reopens the store with other archive settings. */
static void store_reopen_archive(int max_messages, int ttl)
{
        char url[64];

        cfg.archive_max_messages = max_messages;
        cfg.archive_ttl = ttl;
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d", srv.port);
        store_open(url);
}

static void test_fold_moves_to_archive(void **state)
{
        cm_session_t s;
        int64_t left = -1;
        char k[512];
        size_t i;

        (void)state;
        append_range("u1", "c1", 1, 10);
        assert_int_equal(fold("u1", "c1", 0, 6, "sum", &left), 6);
        assert_int_equal(left, 4);
        assert_list("u1", "c1", "7:e7,8:e8,9:e9,10:e10");
        assert_archive("u1", "c1", 1, 6, "1-6@0");
        /* archive.ttl -1: the profile's TTL (7200), not the session's */
        assert_in_range(key_ttl("u1", "c1", "archive"), 3601, 7200);
        key(k, sizeof(k), "u1", "c1", "summary");
        assert_raw_str("6", "HGET %s %s", k, "folded");

        /* A load with the archive: archive then list is the history. */
        assert_ok(cm_store_load(st, "u1", "c1", -1, CM_LOAD_ARCHIVE, &s, err,
                                sizeof(err)));
        assert_int_equal(s.archive_cnt, 6);
        assert_int_equal(s.msg_cnt, 4);
        for (i = 0; i < 6; i++) {
                char want[16];

                snprintf(want, sizeof(want), "e%zu", i + 1);
                assert_int_equal(s.archive[i].seq, (int64_t)i + 1);
                assert_string_equal(s.archive[i].content, want);
                assert_int_equal(s.archive[i].role, CM_ROLE_USER);
                assert_int_equal(s.archive[i].ts, 1000);
                assert_int_equal(s.archive[i].tokens, 7);
                assert_null(s.archive[i].event_id);
        }
        assert_int_equal(s.msgs[0].seq, 7);
        cm_session_release(&s);
        /* without the flag, none; with recent 0, no message */
        assert_ok(cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)));
        assert_null(s.archive);
        assert_int_equal(s.archive_cnt, 0);
        cm_session_release(&s);
        assert_ok(cm_store_load(st, "u1", "c1", 0, CM_LOAD_ARCHIVE, &s, err,
                                sizeof(err)));
        assert_int_equal(s.archive_cnt, 6);
        assert_int_equal(s.msg_cnt, 0);
        assert_int_equal(s.stored_cnt, 4);
        cm_session_release(&s);

        /* A session whose other keys expired still exists by its
         * archive. */
        freeReplyObject(cmd_on(raw, "DEL " PREFIX "{u1:c1}:msgs " PREFIX
                                    "{u1:c1}:meta " PREFIX "{u1:c1}:summary"));
        assert_ok(cm_store_load(st, "u1", "c1", -1, CM_LOAD_ARCHIVE, &s, err,
                                sizeof(err)));
        assert_int_equal(s.exists, 1);
        assert_int_equal(s.archive_cnt, 6);
        cm_session_release(&s);
        /* It starts again from seq 1: its folds go after the archive's
         * chunks, never merged into them. */
        append_range("u1", "c1", 11, 20);
        assert_int_equal(fold("u1", "c1", 0, 4, "again", &left), 4);
        {
                char *layout, *text = archive_text("u1", "c1", &layout);

                assert_string_equal(layout, "1-6@0,1-4@6");
                assert_string_equal(text, "1:e1,2:e2,3:e3,4:e4,5:e5,6:e6,"
                                          "1:e11,2:e12,3:e13,4:e14");
                free(layout);
                free(text);
        }
}

static void test_fold_merges_tail(void **state)
{
        int upto;

        (void)state;
        /* Folds of 5: the newest chunk grows to 64 messages, then a new
         * one starts. */
        append_range("u1", "c1", 1, 140);
        for (upto = 5; upto <= 135; upto += 5) {
                assert_int_equal(fold("u1", "c1", upto - 5, upto, "s", NULL),
                                 5);
                if (upto == 10)
                        assert_archive("u1", "c1", 1, 10, "1-10@0");
        }
        assert_archive("u1", "c1", 1, 135, "1-64@0,65-128@64,129-135@128");
        assert_list("u1", "c1", "136:e136,137:e137,138:e138,139:e139,140:e140");

        /* One big fold after a small one: the tail fills up to 64, the
         * rest goes in chunks of 64. */
        append_range("u1", "c2", 1, 160);
        assert_int_equal(fold("u1", "c2", 0, 10, "s", NULL), 10);
        assert_int_equal(fold("u1", "c2", 10, 150, "s", NULL), 140);
        assert_archive("u1", "c2", 1, 150, "1-64@0,65-128@64,129-150@128");
}

/* fold.lua itself (read from the source tree), to drive it with
 * arguments the store would not send. */
static char *fold_src(void)
{
        const char *dir = getenv("CHATMEM_SRC");
        char path[1024];
        cm_buf_t b;
        FILE *fp;
        size_t n;
        char buf[4096];

        snprintf(path, sizeof(path), "%s/common/lua/fold.lua", dir ? dir : ".");
        fp = fopen(path, "r");
        if (!fp)
                fail_msg("cannot read %s (set CHATMEM_SRC)", path);
        cm_buf_init(&b);
        while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
                cm_buf_add(&b, buf, n);
        fclose(fp);
        return cm_buf_detach(&b, NULL);
}

/* Runs fold.lua on u1:c1 with expected upto 'expected', the new upto of
 * the last chunk, archive max 1000, and tail, merged and chunks[0..cnt)
 * (lengths in lens; tail and merged may be NULL for ''). Returns the
 * reply (caller frees). */
static redisReply *fold_script(const char *src, int64_t expected, int64_t upto,
                               const char *tail, size_t tail_len,
                               const char *merged, size_t merged_len,
                               char **chunks, size_t *lens, size_t cnt)
{
        cm_redis_script_t s = {"fold", src, NULL};
        char k[4][512], exp[32], up[32];
        const char *keys[4] = {k[0], k[1], k[2], k[3]};
        const char *args[16];
        size_t alen[16], i;
        redisReply *r;

        key(k[0], sizeof(k[0]), "u1", "c1", "summary");
        key(k[1], sizeof(k[1]), "u1", "c1", "msgs");
        key(k[2], sizeof(k[2]), "u1", "c1", "meta");
        key(k[3], sizeof(k[3]), "u1", "c1", "archive");
        snprintf(exp, sizeof(exp), "%lld", (long long)expected);
        snprintf(up, sizeof(up), "%lld", (long long)upto);
        args[0] = exp;
        args[1] = up;
        args[2] = "text";
        args[3] = "3600";
        args[4] = "2";
        args[5] = "7200";
        args[6] = "1000";
        for (i = 0; i < 7; i++)
                alen[i] = strlen(args[i]);
        args[7] = tail ? tail : "";
        alen[7] = tail ? tail_len : 0;
        args[8] = merged ? merged : "";
        alen[8] = merged ? merged_len : 0;
        for (i = 0; i < cnt; i++) {
                args[9 + i] = chunks[i];
                alen[9 + i] = lens[i];
        }
        r = cm_redis_script_run(raw, &s, keys, 4, args, alen, 9 + cnt, err,
                                sizeof(err));
        if (!r)
                fail_msg("fold.lua: %s", err);
        return r;
}

/* The stored messages of u1:c1 with seq in [from, to], as a load gives
 * them (heap array of *cnt; caller releases). */
static cm_message_t *loaded(int64_t from, int64_t to, size_t *cnt)
{
        cm_session_t s;
        cm_message_t *m;
        size_t i;

        assert_ok(cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)));
        m = cm_calloc(s.msg_cnt, sizeof(*m));
        *cnt = 0;
        for (i = 0; i < s.msg_cnt; i++) {
                if (s.msgs[i].seq < from || s.msgs[i].seq > to)
                        continue;
                m[(*cnt)++] = s.msgs[i]; /* now owned by m */
                memset(&s.msgs[i], 0, sizeof(s.msgs[i]));
        }
        cm_session_release(&s);
        return m;
}

static void release_all(cm_message_t *m, size_t cnt)
{
        size_t i;

        for (i = 0; i < cnt; i++)
                cm_message_release(&m[i]);
        free(m);
}

/* A fold whose list, archive tail or chunks do not agree: the script
 * changes nothing, or appends instead of merging. */
static void test_fold_script_checks(void **state)
{
        char *src = fold_src(), *chunk[2], *merged, *tail, *before, *after;
        size_t len[2], merged_len, tail_len, cnt, cnt2;
        cm_message_t *m, *m2, *both;
        redisReply *r;

        (void)state;
        append_range("u1", "c1", 1, 12);
        assert_int_equal(fold("u1", "c1", 0, 3, "s", NULL), 3);
        assert_archive("u1", "c1", 1, 3, "1-3@0");
        m = loaded(4, 6, &cnt);
        assert_int_equal(cnt, 3);
        chunk[0] = cm_archive_encode(m, cnt, CM_ARCHIVE_LEVEL, &len[0]);
        before = snapshot();

        /* The chunks hold 4..6 but the cursor says otherwise, the new
         * upto is not their last seq, the list's head is not 4: each
         * refused, nothing changed. */
        r = fold_script(src, 0, 6, NULL, 0, NULL, 0, chunk, len, 1);
        assert_int_equal(r->integer, CM_FOLD_MOVED);
        freeReplyObject(r);
        r = fold_script(src, 3, 7, NULL, 0, NULL, 0, chunk, len, 1);
        assert_int_equal(r->integer, CM_FOLD_MOVED);
        freeReplyObject(r);
        m2 = loaded(5, 7, &cnt2);
        chunk[1] = cm_archive_encode(m2, cnt2, CM_ARCHIVE_LEVEL, &len[1]);
        r = fold_script(src, 3, 7, NULL, 0, NULL, 0, &chunk[1], &len[1], 1);
        assert_int_equal(r->integer, CM_FOLD_MOVED);
        freeReplyObject(r);
        /* two chunks out of order */
        r = fold_script(src, 3, 6, NULL, 0, NULL, 0,
                        (char *[]){chunk[1], chunk[0]},
                        (size_t[]){len[1], len[0]}, 2);
        assert_int_equal(r->integer, CM_FOLD_MOVED);
        freeReplyObject(r);
        /* a merged chunk that is not the tail plus the first chunk */
        {
                redisReply *t =
                    cmd_on(raw, "LINDEX " PREFIX "{u1:c1}:archive -1");

                tail = cm_strndup(t->str, t->len);
                tail_len = t->len;
                freeReplyObject(t);
        }
        r = fold_script(src, 3, 6, tail, tail_len, chunk[1], len[1], chunk, len,
                        1);
        assert_int_equal(r->integer, CM_FOLD_MOVED);
        freeReplyObject(r);
        after = snapshot();
        assert_string_equal(after, before);
        free(after);

        /* The tail the fold read is no longer the archive's newest chunk
         * (another writer replaced it): the new chunk is appended, not
         * merged, and no message is lost or doubled. */
        {
                cm_message_t *t3 = cm_calloc(3, sizeof(*t3));
                size_t i;

                for (i = 0; i < 3; i++) {
                        t3[i].seq = (int64_t)i + 1;
                        t3[i].content = "other";
                        t3[i].content_len = 5;
                }
                free(tail);
                tail = cm_archive_encode(t3, 3, CM_ARCHIVE_LEVEL, &tail_len);
                both = cm_calloc(6, sizeof(*both));
                memcpy(both, t3, 3 * sizeof(*both));
                memcpy(both + 3, m, 3 * sizeof(*both));
                merged =
                    cm_archive_encode(both, 6, CM_ARCHIVE_LEVEL, &merged_len);
                free(both);
                free(t3);
        }
        r = fold_script(src, 3, 6, tail, tail_len, merged, merged_len, chunk,
                        len, 1);
        assert_int_equal(r->type, REDIS_REPLY_ARRAY);
        assert_int_equal(r->element[0]->integer, 3);
        freeReplyObject(r);
        assert_archive("u1", "c1", 1, 6, "1-3@0,4-6@3");
        assert_list("u1", "c1", "7:e7,8:e8,9:e9,10:e10,11:e11,12:e12");
        free(merged);
        free(tail);

        /* An archive chunk that cannot be read (damaged by hand) is
         * skipped by loads, and folds neither merge into it nor fail. */
        freeReplyObject(cmd_on(raw, "RPUSH " PREFIX "{u1:c1}:archive junk"));
        assert_int_equal(fold("u1", "c1", 6, 8, "s", NULL), 2);
        {
                cm_session_t s;

                assert_ok(cm_store_load(st, "u1", "c1", -1, CM_LOAD_ARCHIVE, &s,
                                        err, sizeof(err)));
                assert_int_equal(s.archive_cnt, 8);
                assert_int_equal(s.archive[6].seq, 7);
                assert_int_equal(s.archive[7].seq, 8);
                cm_session_release(&s);
        }
        free(before);
        free(chunk[0]);
        free(chunk[1]);
        release_all(m, cnt);
        release_all(m2, cnt2);
        free(src);
}

/* The list changed between the load and the commit: nothing changes. */
static void test_fold_list_changed(void **state)
{
        cm_session_t s;
        int64_t left;
        char *before, *after;

        (void)state;
        append_range("u1", "c1", 1, 8);
        assert_ok(cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)));
        /* the head message went (by hand) */
        freeReplyObject(cmd_on(raw, "LPOP " PREFIX "{u1:c1}:msgs"));
        before = snapshot();
        assert_int_equal(cm_store_fold_commit(st, "u1", "c1", 0, s.msgs, 5, "s",
                                              &left, err, sizeof(err)),
                         CM_FOLD_MOVED);
        /* a fold that leaves out the first message */
        assert_int_equal(cm_store_fold_commit(st, "u1", "c1", 0, s.msgs + 2, 3,
                                              "s", &left, err, sizeof(err)),
                         CM_FOLD_MOVED);
        after = snapshot();
        assert_string_equal(after, before);
        free(before);
        free(after);
        cm_session_release(&s);
}

static void test_archive_eviction_and_ttl(void **state)
{
        int upto;
        char k[512];

        (void)state;
        /* At most 10: chunks of at most 10, the oldest whole ones go. */
        store_reopen_archive(10, 0);
        append_range("u1", "c1", 1, 30);
        for (upto = 5; upto <= 25; upto += 5) {
                char *text, last[32];
                size_t n = 0;
                const char *p;

                assert_int_equal(fold("u1", "c1", upto - 5, upto, "s", NULL),
                                 5);
                text = archive_text("u1", "c1", NULL);
                for (p = text; *p; p++)
                        n += *p == ':';
                assert_in_range(n, 1, 10);
                /* the newest folded message is kept */
                snprintf(last, sizeof(last), "%d:e%d", upto, upto);
                assert_string_equal(text + strlen(text) - strlen(last), last);
                free(text);
        }
        assert_archive("u1", "c1", 21, 25, "21-25@20");
        /* archive.ttl 0: never expires */
        assert_int_equal(key_ttl("u1", "c1", "archive"), -1);
        assert_list("u1", "c1", "26:e26,27:e27,28:e28,29:e29,30:e30");

        /* An explicit TTL. */
        store_reopen_archive(1000, 100);
        assert_int_equal(fold("u1", "c1", 25, 27, "s", NULL), 2);
        assert_in_range(key_ttl("u1", "c1", "archive"), 1, 100);
        assert_archive("u1", "c1", 21, 27, "21-27@20");

        /* archive.max_messages 0: no archive; the fold drops the folded
         * messages and the archive left from before. */
        store_reopen_archive(0, -1);
        assert_int_equal(fold("u1", "c1", 27, 29, "s", NULL), 2);
        key(k, sizeof(k), "u1", "c1", "archive");
        assert_int_equal(raw_int("EXISTS %s", k), 0);
        assert_list("u1", "c1", "30:e30");
        key(k, sizeof(k), "u1", "c1", "summary");
        assert_raw_str("29", "HGET %s %s", k, "upto");
}

/* The keys of the prefix whose name contains what, found with SCAN. */
static long long scan_count(const char *what)
{
        char cursor[32] = "0", match[128];
        long long n = 0;

        snprintf(match, sizeof(match), PREFIX "*%s*", what);
        do {
                redisReply *r =
                    cmd_on(raw, "SCAN %s MATCH %s COUNT 1000", cursor, match);

                assert_int_equal(r->type, REDIS_REPLY_ARRAY);
                snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
                n += (long long)r->element[1]->elements;
                freeReplyObject(r);
        } while (strcmp(cursor, "0"));
        return n;
}

static void test_deletes_remove_archive(void **state)
{
        (void)state;
        append_range("u1", "c1", 1, 8);
        append_range("u1", "c2", 9, 16);
        append_range("u1", "c3", 17, 24);
        append_range("u2", "c1", 25, 32);
        assert_int_equal(fold("u1", "c1", 0, 4, "s", NULL), 4);
        assert_int_equal(fold("u1", "c2", 0, 4, "s", NULL), 4);
        assert_int_equal(fold("u1", "c3", 0, 4, "s", NULL), 4);
        assert_int_equal(fold("u2", "c1", 0, 4, "s", NULL), 4);
        assert_int_equal(scan_count(":archive"), 4);

        /* session.delete */
        assert_int_equal(cm_store_session_delete_event(st, "u1", "c1", 0, 100,
                                                       err, sizeof(err)),
                         1);
        assert_int_equal(scan_count("{u1:c1}"), 0);
        /* the operator's delete: 5 keys, the archive one of them */
        assert_int_equal(
            cm_store_delete_session(st, "u1", "c2", err, sizeof(err)), 5);
        assert_int_equal(scan_count("{u1:c2}"), 0);
        /* user.delete */
        assert_ok(cm_store_user_delete(st, "u1", 0, err, sizeof(err)));
        assert_int_equal(scan_count("{u1"), 0);
        /* another user's stays */
        assert_int_equal(scan_count(":archive"), 1);
        {
                char *text = archive_text("u2", "c1", NULL);

                assert_string_equal(text, "1:e25,2:e26,3:e27,4:e28");
                free(text);
        }
}

static void test_user_history(void **state)
{
        cm_conv_history_t *h = NULL;
        size_t cnt = 0, i;

        (void)state;
        append_range("u1", "a", 1, 10);
        assert_int_equal(fold("u1", "a", 0, 6, "s", NULL), 6);
        append_range("u1", "b", 11, 13);
        append_range("u1", "c", 14, 15);
        append_range("u2", "z", 16, 17);
        assert_ok(cm_store_load_user_history(st, "u1", "b", &h, &cnt, err,
                                             sizeof(err)));
        assert_int_equal(cnt, 2);
        assert_string_equal(h[0].conv, "a");
        assert_int_equal(h[0].msg_cnt, 10);
        for (i = 0; i < 10; i++) {
                char want[16];

                snprintf(want, sizeof(want), "e%zu", i + 1);
                assert_int_equal(h[0].msgs[i].seq, (int64_t)i + 1);
                assert_string_equal(h[0].msgs[i].content, want);
        }
        assert_string_equal(h[1].conv, "c");
        assert_int_equal(h[1].msg_cnt, 2);
        assert_string_equal(h[1].msgs[1].content, "e15");
        cm_conv_history_free(h, cnt);
        /* every conversation */
        assert_ok(cm_store_load_user_history(st, "u1", NULL, &h, &cnt, err,
                                             sizeof(err)));
        assert_int_equal(cnt, 3);
        assert_string_equal(h[1].conv, "b");
        cm_conv_history_free(h, cnt);
        /* a user with none */
        assert_ok(cm_store_load_user_history(st, "nobody", NULL, &h, &cnt, err,
                                             sizeof(err)));
        assert_int_equal(cnt, 0);
        cm_conv_history_free(h, cnt);
}

/* The bound of the user's history: a conversation under its share keeps
 * everything, the others their newest messages. */
static void test_user_history_bound(void **state)
{
        cm_append_t *it;
        cm_event_t *ev;
        cm_conv_history_t *h = NULL;
        size_t cnt = 0, i, n = CM_STORE_HISTORY_MSGS;

        (void)state;
        it = cm_calloc(n, sizeof(*it));
        ev = cm_calloc(n, sizeof(*ev));
        for (i = 0; i < n; i++) {
                char id[32];

                snprintf(id, sizeof(id), "b%zu", i + 1);
                event_init(&ev[i], "u1", "big", id);
                it[i].ev = &ev[i];
                it[i].offset = (int64_t)i + 1;
                it[i].tokens = 3;
        }
        assert_ok(cm_store_append_batch(st, it, n, err, sizeof(err)));
        append_range("u1", "small", 1, 30);
        assert_ok(cm_store_load_user_history(st, "u1", NULL, &h, &cnt, err,
                                             sizeof(err)));
        assert_int_equal(cnt, 2);
        assert_string_equal(h[0].conv, "big");
        assert_int_equal(h[0].msg_cnt, n - 30);
        assert_int_equal(h[0].msgs[0].seq, 31);
        assert_int_equal(h[0].msgs[h[0].msg_cnt - 1].seq, (int64_t)n);
        assert_int_equal(h[1].msg_cnt, 30);
        cm_conv_history_free(h, cnt);
        free(it);
        free(ev);
}

/* ------------------------------------------------------------------ */
/* delete.lua and user delete                                           */

static void test_session_delete_recreated(void **state)
{
        char k[512];

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c1", "e2", 0, 2);
        append("u1", "c2", "x1", 0, 3);
        assert_int_equal(fold("u1", "c1", 0, 1, "s", NULL), 1);
        /* session.delete at offset 4 */
        assert_int_equal(cm_store_session_delete_event(st, "u1", "c1", 0, 4,
                                                       err, sizeof(err)),
                         1);
        key(k, sizeof(k), "u1", "c1", "msgs");
        assert_int_equal(raw_int("EXISTS %s", k), 0);
        key(k, sizeof(k), "u1", "c1", "meta");
        assert_int_equal(raw_int("EXISTS %s", k), 0);
        key(k, sizeof(k), "u1", "c1", "eids");
        assert_int_equal(raw_int("EXISTS %s", k), 0);
        key(k, sizeof(k), "u1", "c1", "summary");
        assert_int_equal(raw_int("EXISTS %s", k), 0);
        assert_int_equal(raw_int("SISMEMBER " PREFIX "{u1}:convs c1"), 0);
        assert_list("u1", "c2", "1:x1");

        /* Re-created by a later event, then the delete is redelivered:
         * the watermark is newer, the new session stays. */
        append("u1", "c1", "e9", 0, 5);
        assert_int_equal(cm_store_session_delete_event(st, "u1", "c1", 0, 4,
                                                       err, sizeof(err)),
                         0);
        assert_list("u1", "c1", "1:e9");
        assert_int_equal(raw_int("SISMEMBER " PREFIX "{u1}:convs c1"), 1);
        /* A delete from another partition has no watermark to meet. */
        assert_int_equal(cm_store_session_delete_event(st, "u1", "c1", 1, 0,
                                                       err, sizeof(err)),
                         1);
        assert_list("u1", "c1", "");
}

static void test_user_delete(void **state)
{
        cm_profile_t p = {.name = "Ann"};
        char k[512];

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c2", "e2", 0, 2);
        append("u2", "c1", "e3", 0, 3);
        assert_int_equal(cm_store_profile_update(st, "u1", &p, 0, 10, "c1:1",
                                                 err, sizeof(err)),
                         1);
        assert_ok(cm_store_user_delete(st, "u1", 0, err, sizeof(err)));
        assert_int_equal(raw_int("EXISTS " PREFIX "{u1}:profile"), 0);
        assert_int_equal(raw_int("EXISTS " PREFIX "{u1}:convs"), 0);
        key(k, sizeof(k), "u1", "c1", "msgs");
        assert_int_equal(raw_int("EXISTS %s", k), 0);
        key(k, sizeof(k), "u1", "c2", "meta");
        assert_int_equal(raw_int("EXISTS %s", k), 0);
        assert_list("u2", "c1", "1:e3"); /* another user's is untouched */
        /* idempotent */
        assert_ok(cm_store_user_delete(st, "u1", 0, err, sizeof(err)));
        /* a conversation re-created after it starts afresh */
        append("u1", "c1", "e4", 0, 4);
        assert_list("u1", "c1", "1:e4");
        assert_int_equal(raw_int("SISMEMBER " PREFIX "{u1}:convs c1"), 1);
}

/* ------------------------------------------------------------------ */
/* profile.lua                                                          */

static int profile_update(const char *name, int extracted, int64_t ts)
{
        cm_profile_t p = {.name = (char *)name};
        int changed = cm_store_profile_update(st, "u1", &p, extracted, ts,
                                              "c1:1", err, sizeof(err));

        if (changed == -1)
                fail_msg("profile update: %s", err);
        return changed;
}

static void test_profile_precedence(void **state)
{
        (void)state;
        assert_int_equal(profile_update("Ann", 1, 100), 1);
        assert_raw_str("Ann", "HGET %s %s", PREFIX "{u1}:profile", "name");
        /* an older statement never wins */
        assert_int_equal(profile_update("Bob", 1, 50), 0);
        assert_raw_str("Ann", "HGET %s %s", PREFIX "{u1}:profile", "name");
        /* the same again: no change */
        assert_int_equal(profile_update("Ann", 1, 100), 0);
        assert_int_equal(profile_update("Cat", 1, 200), 1);
        assert_raw_str("200", "HGET %s %s", PREFIX "{u1}:profile", "name_ts");
        /* profile.set wins whatever its ts, and extraction then leaves the
         * field alone */
        assert_int_equal(profile_update("Dan", 0, 10), 1);
        assert_raw_str("1", "HGET %s %s", PREFIX "{u1}:profile", "name_set");
        assert_int_equal(profile_update("Eve", 1, 300), 0);
        assert_raw_str("Dan", "HGET %s %s", PREFIX "{u1}:profile", "name");
        assert_in_range(raw_int("TTL " PREFIX "{u1}:profile"), 1, 7200);
}

static void test_profile_interests_batch(void **state)
{
        char *i1[] = {"go"}, *i2[] = {"Rust", "GO"}, *i3[] = {"chess"};
        cm_profile_t p1 = {.interests = i1, .interest_cnt = 1};
        cm_profile_t p2 = {.interests = i2, .interest_cnt = 2};
        cm_profile_t p3 = {.interests = i3, .interest_cnt = 1};
        cm_profile_t p4 = {.role = "dev"};
        cm_profile_update_t u[] = {
            {"u1", &p1, 1, 10, "c1:1"},
            {"u1", &p2, 1, 20, "c1:2"},
            {"u2", &p4, 1, 30, "c1:3"},
            {"u1", &p2, 1, 40, "c1:4"}, /* nothing new */
        };
        int changed[4] = {-1, -1, -1, -1};

        (void)state;
        assert_ok(
            cm_store_profile_update_batch(st, u, 4, changed, err, sizeof(err)));
        assert_int_equal(changed[0], 1);
        assert_int_equal(changed[1], 1);
        assert_int_equal(changed[2], 1);
        assert_int_equal(changed[3], 0);
        assert_raw_str("[\"go\",\"Rust\"]", "HGET %s %s", PREFIX "{u1}:profile",
                       "interests");
        assert_raw_str("dev", "HGET %s %s", PREFIX "{u2}:profile", "role");
        /* profile.set replaces the list */
        assert_int_equal(cm_store_profile_update(st, "u1", &p3, 0, 5, "c1:5",
                                                 err, sizeof(err)),
                         1);
        assert_raw_str("[\"chess\"]", "HGET %s %s", PREFIX "{u1}:profile",
                       "interests");
}

/* ------------------------------------------------------------------ */
/* pop_dirty.lua and the dirty set                                      */

static void test_pop_dirty(void **state)
{
        const char *marks[] = {"u1:a", "u1:b"};
        char *out[8];
        int n, i;

        (void)state;
        freeReplyObject(cmd_on(raw, "ZADD " PREFIX "dirty 100 u1:a 300 u1:c"));
        /* ZADD NX: the first change of a session keeps its time */
        assert_ok(cm_store_mark_dirty(st, marks, 2, err, sizeof(err)));
        assert_raw_str("100", "ZSCORE %s %s", PREFIX "dirty", "u1:a");
        freeReplyObject(cmd_on(raw, "ZADD " PREFIX "dirty 200 u1:b"));

        n = cm_store_pop_dirty(st, out, 8, 250, err, sizeof(err));
        assert_int_equal(n, 2);
        assert_string_equal(out[0], "u1:a");
        assert_string_equal(out[1], "u1:b");
        for (i = 0; i < n; i++)
                free(out[i]);
        assert_int_equal(raw_int("ZCARD " PREFIX "dirty"), 1);
        /* at most max */
        freeReplyObject(cmd_on(raw, "ZADD " PREFIX "dirty 10 x:1 20 x:2"));
        n = cm_store_pop_dirty(st, out, 1, 1000, err, sizeof(err));
        assert_int_equal(n, 1);
        assert_string_equal(out[0], "x:1");
        free(out[0]);
        /* nothing due */
        n = cm_store_pop_dirty(st, out, 8, 5, err, sizeof(err));
        assert_int_equal(n, 0);
        assert_int_equal(raw_int("ZCARD " PREFIX "dirty"), 2);
}

static void test_mark_user_dirty(void **state)
{
        (void)state;
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c2", "e2", 0, 2);
        freeReplyObject(cmd_on(raw, "DEL " PREFIX "dirty"));
        assert_ok(cm_store_mark_user_dirty(st, "u1", err, sizeof(err)));
        assert_int_equal(raw_int("ZCARD " PREFIX "dirty"), 2);
        assert_int_equal(raw_int("ZRANK " PREFIX "dirty u1:c1") >= 0, 1);
        assert_int_equal(raw_int("ZRANK " PREFIX "dirty u1:c2") >= 0, 1);
}

/* ------------------------------------------------------------------ */
/* Stats and counting                                                   */

static void test_stats_and_count(void **state)
{
        const char *names[] = {"a", "b", "c"};
        const long long values[] = {2, 0, 5};
        char **out = NULL;
        long long count = -1;
        int n, i;

        (void)state;
        assert_ok(cm_store_stats_add(st, names, values, 3, err, sizeof(err)));
        assert_ok(cm_store_stats_add(st, names, values, 3, err, sizeof(err)));
        assert_raw_str("4", "HGET %s %s", PREFIX "stats", "a");
        assert_raw_str(NULL, "HGET %s %s", PREFIX "stats", "b");
        n = cm_store_stats_get(st, &out, err, sizeof(err));
        assert_int_equal(n, 2);
        assert_true((!strcmp(out[0], "a=4") && !strcmp(out[1], "c=10")) ||
                    (!strcmp(out[1], "a=4") && !strcmp(out[0], "c=10")));
        assert_null(out[2]);
        for (i = 0; i < n; i++)
                free(out[i]);
        free(out);

        append("u1", "c1", "e1", 0, 1);
        append("u2", "c1", "e2", 0, 2);
        assert_ok(cm_store_count_sessions(st, &count, err, sizeof(err)));
        assert_int_equal(count, 2);
        assert_int_equal(
            cm_store_delete_session(st, "u2", "c1", err, sizeof(err)), 3);
        assert_ok(cm_store_count_sessions(st, &count, err, sizeof(err)));
        assert_int_equal(count, 1);
}

/* The applied-offset record: what is written is read back per partition,
 * a partition never written reads as none, and a later write replaces the
 * earlier one (a lower offset too: after a replay it may go back). */
static void test_applied_record(void **state)
{
        cm_applied_t w[2] = {{3, 1200, 0, -1}, {0, 7, 500, 44}};
        cm_applied_t r[3] = {{0, 0, 0, 0}, {3, 0, 0, 0}, {5, 0, 0, 0}};

        (void)state;
        assert_ok(cm_store_applied_get(st, "ev", r, 3, err, sizeof(err)));
        assert_int_equal(r[1].next, -1);
        assert_int_equal(r[1].base, 0);
        assert_int_equal(r[1].reset, -1);
        assert_ok(cm_store_applied_set(st, "ev", w, 2, err, sizeof(err)));
        assert_ok(cm_store_applied_get(st, "ev", r, 3, err, sizeof(err)));
        assert_int_equal(r[0].next, 7);
        assert_int_equal(r[0].base, 500);
        assert_int_equal(r[0].reset, 44);
        assert_int_equal(r[1].next, 1200);
        assert_int_equal(r[1].base, 0);
        assert_int_equal(r[1].reset, -1);
        assert_int_equal(r[2].next, -1);
        /* another topic is another record */
        assert_ok(cm_store_applied_get(st, "ev2", r, 1, err, sizeof(err)));
        assert_int_equal(r[0].next, -1);
        w[0].next = 900;
        assert_ok(cm_store_applied_set(st, "ev", w, 1, err, sizeof(err)));
        assert_raw_str("900", "HGET %s %s", PREFIX "applied:ev", "3");
        assert_raw_str("44", "HGET %s %s", PREFIX "applied:ev", "r0");
}

/* A key of the wrong type makes the script fail: a clear error, no
 * crash, and the connection stays usable. */
static void test_wrong_types_fail_clearly(void **state)
{
        char k[512], **out = NULL, *popped[1];
        cm_message_t one = {.content = "x", .content_len = 1, .seq = 1};
        int64_t left;

        (void)state;
        key(k, sizeof(k), "u1", "c1", "meta");
        freeReplyObject(cmd_on(raw, "SET %s x", k));
        assert_int_equal(cm_store_session_delete_event(st, "u1", "c1", 0, 1,
                                                       err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "script 'delete'"));
        assert_non_null(strstr(err, "WRONGTYPE"));
        key(k, sizeof(k), "u1", "c1", "summary");
        freeReplyObject(cmd_on(raw, "SET %s x", k));
        assert_int_equal(cm_store_fold_commit(st, "u1", "c1", 0, &one, 1, "x",
                                              &left, err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "script 'fold'"));
        assert_non_null(strstr(err, "WRONGTYPE"));
        freeReplyObject(cmd_on(raw, "SET " PREFIX "stats x"));
        assert_int_equal(cm_store_stats_get(st, &out, err, sizeof(err)), -1);
        assert_null(out);
        assert_non_null(strstr(err, "WRONGTYPE"));
        freeReplyObject(cmd_on(raw, "SET " PREFIX "dirty x"));
        assert_int_equal(cm_store_pop_dirty(st, popped, 1, 0, err, sizeof(err)),
                         -1);
        assert_non_null(strstr(err, "script 'pop_dirty'"));
        /* still connected and in step */
        assert_true(cm_store_connected(st));
        assert_int_equal(append("u1", "c2", "e1", 0, 1).seq, 1);
}

/* ------------------------------------------------------------------ */
/* The script runner: NOSCRIPT, any number of arguments                 */

/* A field ("calls", …) of cmd in INFO commandstats. */
static long long cmdstat(const char *cmd, const char *field)
{
        redisReply *r = cmd_on(raw, "INFO commandstats");
        char head[64], name[64];
        const char *p, *end;
        long long v = 0;

        snprintf(head, sizeof(head), "cmdstat_%s:", cmd);
        snprintf(name, sizeof(name), "%s=", field);
        p = strstr(r->str, head);
        if (p) {
                p += strlen(head);
                end = p + strcspn(p, "\r\n");
                while (p && p < end) {
                        if (!strncmp(p, name, strlen(name))) {
                                v = strtoll(p + strlen(name), NULL, 10);
                                break;
                        }
                        p = strchr(p, ',');
                        p = p ? p + 1 : NULL;
                }
        }
        freeReplyObject(r);
        return v;
}

static void test_noscript_single_calls(void **state)
{
        int64_t left = -1;
        char *out[4];

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c1", "e2", 0, 2);
        freeReplyObject(cmd_on(raw, "ZADD " PREFIX "dirty 1 u1:c1"));
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        assert_int_equal(fold("u1", "c1", 0, 1, "s", &left), 1);
        assert_list("u1", "c1", "2:e2");
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        assert_int_equal(cm_store_pop_dirty(st, out, 4, 10, err, sizeof(err)),
                         1);
        assert_string_equal(out[0], "u1:c1");
        free(out[0]);
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        assert_int_equal(cm_store_session_delete_event(st, "u1", "c1", 0, 9,
                                                       err, sizeof(err)),
                         1);
        assert_list("u1", "c1", "");
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        assert_int_equal(profile_update("Ann", 0, 1), 1);
        assert_raw_str("Ann", "HGET %s %s", PREFIX "{u1}:profile", "name");
}

static void test_noscript_pipelined(void **state)
{
        cm_event_t ev[3];
        cm_append_t it[3];
        long long evals;
        size_t i;

        (void)state;
        append("u1", "c1", "e1", 0, 1); /* connected, scripts loaded */
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        freeReplyObject(cmd_on(raw, "CONFIG RESETSTAT"));
        memset(it, 0, sizeof(it));
        for (i = 0; i < 3; i++) {
                char eid[8];

                snprintf(eid, sizeof(eid), "e%zu", i + 2);
                event_init(&ev[i], "u1", "c1", eid);
                it[i].ev = &ev[i];
                it[i].offset = (int64_t)i + 2;
        }
        assert_ok(cm_store_append_batch(st, it, 3, err, sizeof(err)));
        for (i = 0; i < 3; i++) {
                assert_int_equal(it[i].result, CM_APPEND_APPLIED);
                assert_int_equal(it[i].seq, (int64_t)i + 2);
        }
        assert_list("u1", "c1", "1:e1,2:e2,3:e3,4:e4");
        /* every call met NOSCRIPT and was sent again once, whole */
        assert_int_equal(cmdstat("eval", "calls"), 3);
        /* and the script is cached again: the next batch is EVALSHA only,
         * one round trip */
        evals = cmdstat("eval", "calls");
        append("u1", "c1", "e5", 0, 5);
        assert_int_equal(cmdstat("eval", "calls"), evals);
        assert_list("u1", "c1", "1:e1,2:e2,3:e3,4:e4,5:e5");

        /* the profile batch the same way */
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        {
                cm_profile_t p1 = {.name = "Ann"}, p2 = {.role = "dev"};
                cm_profile_update_t u[] = {{"u1", &p1, 1, 10, "c1:1"},
                                           {"u1", &p2, 1, 10, "c1:1"}};
                int changed[2] = {0, 0};

                assert_ok(cm_store_profile_update_batch(st, u, 2, changed, err,
                                                        sizeof(err)));
                assert_int_equal(changed[0], 1);
                assert_int_equal(changed[1], 1);
                assert_raw_str("Ann", "HGET %s %s", PREFIX "{u1}:profile",
                               "name");
                assert_raw_str("dev", "HGET %s %s", PREFIX "{u1}:profile",
                               "role");
        }
}

/* A script of the test's own: {#KEYS, #ARGV, last ARGV as a number}. */
static const char count_src[] =
    "return {#KEYS, #ARGV, tonumber(ARGV[#ARGV])}\n";

/* More arguments than the old fixed 20-slot array held (checked under
 * ASan: make SANITIZE=1), single and pipelined, EVALSHA and EVAL. */
static void test_runner_many_args(void **state)
{
        char sha[41], numbuf[40][8], keybuf[3][8];
        const char *args[40], *keys[3];
        cm_redis_script_t s = {"count", count_src, sha};
        cm_redis_script_t whole = {"count", count_src, NULL};
        redisContext *c = raw_connect(srv.port);
        redisReply *r;
        cm_redis_batch_t *b;
        long long v[3];
        size_t i;

        (void)state;
        r = cmd_on(raw, "SCRIPT LOAD %s", count_src);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        snprintf(sha, sizeof(sha), "%s", r->str);
        freeReplyObject(r);
        for (i = 0; i < 40; i++) {
                snprintf(numbuf[i], sizeof(numbuf[i]), "%zu", 100 + i);
                args[i] = numbuf[i];
        }
        for (i = 0; i < 3; i++) {
                snprintf(keybuf[i], sizeof(keybuf[i]), "k%zu", i);
                keys[i] = keybuf[i];
        }
        /* EVALSHA */
        r = cm_redis_script_run(c, &s, keys, 3, args, NULL, 40, err,
                                sizeof(err));
        assert_non_null(r);
        assert_ok(cm_redis_reply_ints(r, 3, v, "count", err, sizeof(err)));
        assert_int_equal(v[0], 3);
        assert_int_equal(v[1], 40);
        assert_int_equal(v[2], 139);
        freeReplyObject(r);
        /* NOSCRIPT, then EVAL with all 43 arguments */
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        r = cm_redis_script_run(c, &s, keys, 3, args, NULL, 40, err,
                                sizeof(err));
        assert_non_null(r);
        assert_ok(cm_redis_reply_ints(r, 3, v, "count", err, sizeof(err)));
        assert_int_equal(v[1], 40);
        freeReplyObject(r);
        /* no sha: always EVAL */
        r = cm_redis_script_run(c, &whole, keys, 0, args, NULL, 25, err,
                                sizeof(err));
        assert_non_null(r);
        assert_ok(cm_redis_reply_ints(r, 3, v, "count", err, sizeof(err)));
        assert_int_equal(v[0], 0);
        assert_int_equal(v[1], 25);
        assert_int_equal(v[2], 124);
        freeReplyObject(r);

        /* a pipeline of calls of different lengths, after a flush */
        freeReplyObject(cmd_on(raw, "SCRIPT FLUSH"));
        b = cm_redis_batch_new();
        for (i = 1; i <= 40; i += 13)
                assert_int_equal(cm_redis_batch_add(b, &s, keys, 3, args, i),
                                 (i - 1) / 13);
        assert_int_equal(cm_redis_batch_count(b), 4);
        assert_ok(cm_redis_batch_run(c, b, err, sizeof(err)));
        for (i = 0; i < 4; i++) {
                assert_ok(cm_redis_reply_ints(cm_redis_batch_reply(b, i), 3, v,
                                              "count", err, sizeof(err)));
                assert_int_equal(v[1], (long long)(1 + 13 * i));
                assert_int_equal(v[2], (long long)(100 + 13 * i));
        }
        assert_null(cm_redis_batch_reply(b, 4));
        cm_redis_batch_destroy(b);

        /* a script error is an error, the connection stays usable */
        {
                cm_redis_script_t bad = {"bad", "return redis.call('NOPE')",
                                         NULL};

                assert_null(cm_redis_script_run(c, &bad, NULL, 0, NULL, NULL, 0,
                                                err, sizeof(err)));
                assert_non_null(strstr(err, "script 'bad'"));
                assert_int_equal(c->err, 0);
        }
        redisFree(c);
}

static void test_reply_checks(void **state)
{
        redisReply *r;
        long long v[2], one;

        (void)state;
        r = cmd_on(raw, "EVAL %s 0", "return {1, 'x'}");
        assert_int_equal(cm_redis_reply_ints(r, 2, v, "t", err, sizeof(err)),
                         -1);
        assert_string_equal(err, "t: element 1 is a string, not an integer");
        assert_int_equal(cm_redis_reply_ints(r, 3, v, "t", err, sizeof(err)),
                         -1);
        assert_string_equal(err,
                            "t: expected an array of 3 integers, got an array "
                            "of 2");
        assert_int_equal(cm_redis_reply_strings(r, "t", err, sizeof(err)), -1);
        assert_string_equal(err, "t: element 0 is integer 1, not a string");
        assert_int_equal(cm_redis_reply_int(r, &one, "t", err, sizeof(err)),
                         -1);
        freeReplyObject(r);
        r = cmd_on(raw, "EVAL %s 0", "return {4, 5}");
        assert_int_equal(cm_redis_reply_ints(r, 2, v, "t", err, sizeof(err)),
                         0);
        assert_int_equal(v[0], 4);
        assert_int_equal(v[1], 5);
        freeReplyObject(r);
        assert_int_equal(cm_redis_reply_int(NULL, &one, "t", err, sizeof(err)),
                         -1);
        assert_string_equal(err, "t: expected an integer, got no reply");
}

/* ------------------------------------------------------------------ */
/* Dropped connections                                                  */

static void kill_clients(void)
{
        /* every normal client but this one (SKIPME yes) */
        freeReplyObject(cmd_on(raw, "CLIENT KILL TYPE normal"));
}

static void test_load_after_dropped_connection(void **state)
{
        cm_session_t s;
        int ret;

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        append("u1", "c1", "e2", 0, 2);
        assert_true(cm_store_connected(st));
        kill_clients();
        /* The next call fails cleanly or succeeds, never half-way. */
        ret = cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err));
        if (ret == 0) {
                assert_int_equal(s.msg_cnt, 2);
                cm_session_release(&s);
        } else {
                assert_int_equal(ret, -1);
                assert_int_equal(s.msg_cnt, 0);
                assert_null(s.msgs);
                assert_false(cm_store_connected(st));
        }
        /* and the one after reconnects and reads the right session */
        assert_ok(cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)));
        assert_int_equal(s.msg_cnt, 2);
        assert_string_equal(s.msgs[0].content, "e1");
        assert_string_equal(s.msgs[1].content, "e2");
        assert_int_equal(s.last_seq, 2);
        cm_session_release(&s);

        /* An append after a drop: fails cleanly or applies, and a retry
         * never applies twice. */
        kill_clients();
        {
                cm_event_t ev;
                cm_append_t it;

                memset(&it, 0, sizeof(it));
                event_init(&ev, "u1", "c1", "e3");
                it.ev = &ev;
                it.offset = 3;
                if (cm_store_append_batch(st, &it, 1, err, sizeof(err)) == -1)
                        assert_ok(cm_store_append_batch(st, &it, 1, err,
                                                        sizeof(err)));
                assert_ok(cm_store_append_batch(st, &it, 1, err, sizeof(err)));
                assert_int_equal(it.result, CM_APPEND_DUP_OFFSET);
        }
        assert_list("u1", "c1", "1:e1,2:e2,3:e3");
}

static void test_pipelined_loads_across_a_drop(void **state)
{
        cm_session_t s;

        (void)state;
        append("u1", "a", "e1", 0, 1);
        append("u1", "b", "e2", 0, 2);
        append("u1", "c", "e3", 0, 3);
        assert_ok(cm_store_connect(st, err, sizeof(err)));
        assert_ok(cm_store_load_send(st, "u1", "a", -1, 0, err, sizeof(err)));
        assert_ok(cm_store_load_send(st, "u1", "b", -1, 0, err, sizeof(err)));
        assert_ok(cm_store_load_send(st, "u1", "c", -1, 0, err, sizeof(err)));
        kill_clients();
        /* every pending recv fails, at once */
        assert_int_equal(
            cm_store_load_recv(st, "u1", "a", &s, err, sizeof(err)), -1);
        assert_false(cm_store_connected(st));
        assert_int_equal(
            cm_store_load_recv(st, "u1", "b", &s, err, sizeof(err)), -1);
        /* even after a reconnect: never another load's replies */
        assert_ok(cm_store_connect(st, err, sizeof(err)));
        assert_int_equal(
            cm_store_load_recv(st, "u1", "c", &s, err, sizeof(err)), -1);
        assert_null(s.msgs);
        /* a new pipeline is in step */
        assert_ok(cm_store_load_send(st, "u1", "c", -1, 0, err, sizeof(err)));
        assert_ok(cm_store_load_send(st, "u1", "a", -1, 0, err, sizeof(err)));
        assert_ok(cm_store_load_recv(st, "u1", "c", &s, err, sizeof(err)));
        assert_int_equal(s.msg_cnt, 1);
        assert_string_equal(s.msgs[0].content, "e3");
        cm_session_release(&s);
        assert_ok(cm_store_load_recv(st, "u1", "a", &s, err, sizeof(err)));
        assert_int_equal(s.msg_cnt, 1);
        assert_string_equal(s.msgs[0].content, "e1");
        cm_session_release(&s);
}

/* ------------------------------------------------------------------ */
/* Deadlines                                                            */

/* A hung server (SIGSTOP): under a deadline, a load on the open
 * connection and a new connection (the kernel accepts it, the server
 * never answers) fail and leave the store disconnected; once the deadline
 * has passed nothing is tried at all. When the server answers again, the
 * store does too, under a deadline that leaves time and without one. (That
 * the waits end at the deadline, not at the store's own 5 s, is a time:
 * test_e2e_context_deadline.sh measures it in the worker.) */
static void test_deadline_on_a_hung_server(void **state)
{
        cm_session_t s;

        (void)state;
        append("u1", "c1", "e1", 0, 1);
        assert_true(cm_store_connected(st));
        assert_int_equal(kill(srv.pid, SIGSTOP), 0);

        cm_store_set_deadline(st, cm_mono_us() + 100000);
        assert_int_equal(
            cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)), -1);
        assert_false(cm_store_connected(st));
        assert_null(s.msgs);
        cm_store_set_deadline(st, cm_mono_us() + 100000);
        assert_int_equal(cm_store_connect(st, err, sizeof(err)), -1);
        assert_false(cm_store_connected(st));
        cm_store_set_deadline(st, cm_mono_us() - 1);
        assert_int_equal(cm_store_connect(st, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "deadline"));
        assert_false(cm_store_connected(st));

        assert_int_equal(kill(srv.pid, SIGCONT), 0);
        cm_store_set_deadline(st, cm_mono_us() + 30 * 1000000LL);
        assert_ok(cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)));
        assert_int_equal(s.msg_cnt, 1);
        assert_string_equal(s.msgs[0].content, "e1");
        cm_session_release(&s);
        cm_store_set_deadline(st, 0);
        append("u1", "c1", "e2", 0, 2);
        assert_ok(cm_store_load(st, "u1", "c1", -1, 0, &s, err, sizeof(err)));
        assert_int_equal(s.msg_cnt, 2);
        cm_session_release(&s);
}

/* ------------------------------------------------------------------ */
/* URLs                                                                 */

static void test_url_parse(void **state)
{
        cm_redis_url_t u;

        (void)state;
        /* percent-encoded password, no user */
        assert_ok(cm_redis_url_parse("redis://:p%40ss@127.0.0.1:6390/2", &u,
                                     err, sizeof(err)));
        assert_string_equal(u.host, "127.0.0.1");
        assert_int_equal(u.port, 6390);
        assert_null(u.user);
        assert_string_equal(u.password, "p@ss");
        assert_int_equal(u.db, 2);
        assert_string_equal(u.safe, "redis://:***@127.0.0.1:6390/2");
        cm_redis_url_release(&u);

        /* IPv6 */
        assert_ok(
            cm_redis_url_parse("redis://[::1]:6390/2", &u, err, sizeof(err)));
        assert_string_equal(u.host, "::1");
        assert_int_equal(u.port, 6390);
        assert_int_equal(u.db, 2);
        assert_null(u.password);
        assert_string_equal(u.safe, "redis://[::1]:6390/2");
        cm_redis_url_release(&u);

        /* user and password, defaults for port and db */
        assert_ok(cm_redis_url_parse("redis://alice:s3cr%3At@cache.local", &u,
                                     err, sizeof(err)));
        assert_string_equal(u.host, "cache.local");
        assert_int_equal(u.port, 6379);
        assert_string_equal(u.user, "alice");
        assert_string_equal(u.password, "s3cr:t");
        assert_int_equal(u.db, 0);
        assert_string_equal(u.safe, "redis://alice:***@cache.local:6379/0");
        assert_null(strstr(u.safe, "s3cr"));
        cm_redis_url_release(&u);

        /* user info without ':' is the password, as redis-cli reads it */
        assert_ok(
            cm_redis_url_parse("redis://secret@h/", &u, err, sizeof(err)));
        assert_null(u.user);
        assert_string_equal(u.password, "secret");
        assert_null(strstr(u.safe, "secret"));
        cm_redis_url_release(&u);

        /* no scheme */
        assert_ok(cm_redis_url_parse("127.0.0.1:7000", &u, err, sizeof(err)));
        assert_string_equal(u.host, "127.0.0.1");
        assert_int_equal(u.port, 7000);
        assert_string_equal(u.safe, "redis://127.0.0.1:7000/0");
        cm_redis_url_release(&u);

        /* errors, none of which shows the password */
        {
                static const char *const bad[][2] = {
                    {"redis://:pw1@h:99999", "port"},
                    {"redis://:pw1@h:0", "port"},
                    {"redis://:pw1@h:abc", "port"},
                    {"http://:pw1@h:6379", "only redis://"},
                    {"rediss://:pw1@h", "only redis://"},
                    {"redis://:pw1@h/abc", "database"},
                    {"redis://:pw1@h/-1", "database"},
                    {"redis://:pw1@h/1/2", "database"},
                    {"redis://:pw1@h/0?password=x", "query"},
                    {"redis://:pw1@", "redis url"},
                };
                size_t i;

                for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                        memset(&u, 0x5a, sizeof(u));
                        err[0] = '\0';
                        if (cm_redis_url_parse(bad[i][0], &u, err,
                                               sizeof(err)) != -1)
                                fail_msg("'%s' parsed", bad[i][0]);
                        if (!strstr(err, bad[i][1]))
                                fail_msg("'%s': '%s' lacks '%s'", bad[i][0],
                                         err, bad[i][1]);
                        assert_null(strstr(err, "pw1"));
                        assert_null(u.host);
                        assert_null(u.password);
                        assert_null(u.safe);
                }
        }
        /* the store keeps the password out of its URL */
        store_open("redis://:hunter2@127.0.0.1:1/3");
        assert_string_equal(cm_store_url(st), "redis://:***@127.0.0.1:1/3");
}

static void test_url_redact(void **state)
{
        static const char *const cases[][2] = {
            {"https://user:pw@api.example.com:8443/v1/chat?key=abc#frag",
             "https://api.example.com:8443/v1/chat"},
            {"http://127.0.0.1:8080/v1/chat/completions",
             "http://127.0.0.1:8080/v1/chat/completions"},
            {"https://tok@api.example.com/openai/v1",
             "https://api.example.com/openai/v1"},
            {"redis://:p%40ss@[::1]:6390/2", "redis://[::1]:6390/2"},
            {"http://[::1", "(invalid url)"},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *got = cm_url_redact(cases[i][0]);

                assert_string_equal(got, cases[i][1]);
                free(got);
        }
}

/* AUTH with a password that a URL must encode, SELECT of a db, over IPv6,
 * through the store and through cm_redis_connect() as the bench uses it. */
static void test_auth_select(void **state)
{
        static const char *const extra[] = {"--requirepass", PASSWORD, "--bind",
                                            "127.0.0.1",     "::1",    NULL};
        server_t sv2;
        redisContext *c2, *c;
        cm_redis_url_t u;
        char url[128], k[512];
        redisReply *r;

        (void)state;
        server_start(&sv2, extra);
        c2 = raw_connect(sv2.port);
        freeReplyObject(cmd_on(c2, "AUTH %s", PASSWORD));

        /* the store, over IPv6, db 3 */
        snprintf(url, sizeof(url), "redis://:%s@[::1]:%d/3", PASSWORD_ENC,
                 sv2.port);
        store_open(url);
        assert_null(strstr(cm_store_url(st), "p%40"));
        assert_null(strstr(cm_store_url(st), "p@ss"));
        append("u1", "c1", "e1", 0, 1);
        key(k, sizeof(k), "u1", "c1", "msgs");
        freeReplyObject(cmd_on(c2, "SELECT 3"));
        r = cmd_on(c2, "LLEN %s", k);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        freeReplyObject(cmd_on(c2, "SELECT 0"));
        r = cmd_on(c2, "EXISTS %s", k);
        assert_int_equal(r->integer, 0);
        freeReplyObject(r);

        /* an ACL user with its password: cm_redis_connect() */
        freeReplyObject(cmd_on(c2, "ACL SETUSER alice on >al%%ce ~* +@all"));
        snprintf(url, sizeof(url), "redis://alice:al%%25ce@127.0.0.1:%d/5",
                 sv2.port);
        assert_ok(cm_redis_url_parse(url, &u, err, sizeof(err)));
        c = cm_redis_connect(&u, 2000, 5000, err, sizeof(err));
        if (!c)
                fail_msg("cm_redis_connect: %s", err);
        r = cmd_on(c, "ACL WHOAMI");
        assert_string_equal(r->str, "alice");
        freeReplyObject(r);
        freeReplyObject(cmd_on(c, "SET onfive yes"));
        redisFree(c);
        freeReplyObject(cmd_on(c2, "SELECT 5"));
        r = cmd_on(c2, "GET onfive");
        assert_string_equal(r->str, "yes");
        freeReplyObject(r);
        cm_redis_url_release(&u);

        /* a wrong password: refused, and the error does not show it */
        snprintf(url, sizeof(url), "redis://:wrongpw@127.0.0.1:%d", sv2.port);
        assert_ok(cm_redis_url_parse(url, &u, err, sizeof(err)));
        assert_null(cm_redis_connect(&u, 2000, 5000, err, sizeof(err)));
        assert_non_null(strstr(err, "AUTH"));
        assert_null(strstr(err, "wrongpw"));
        cm_redis_url_release(&u);
        /* and through the store */
        store_open(url);
        assert_int_equal(cm_store_connect(st, err, sizeof(err)), -1);
        assert_null(strstr(err, "wrongpw"));
        assert_false(cm_store_connected(st));

        redisFree(c2);
        server_stop(&sv2);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
            T(test_append_applies_in_order),
            T(test_append_watermark_skips),
            T(test_append_dup_event_in_window),
            T(test_append_dup_event_outside_window),
            T(test_append_ttl),
            T(test_append_compaction_mark),
            T(test_append_batch_mixed),
            T(test_fold_races_an_append),
            T(test_fold_moved_cursor),
            T(test_fold_moves_to_archive),
            T(test_fold_merges_tail),
            T(test_fold_script_checks),
            T(test_fold_list_changed),
            T(test_archive_eviction_and_ttl),
            T(test_deletes_remove_archive),
            T(test_user_history),
            T(test_user_history_bound),
            T(test_session_delete_recreated),
            T(test_user_delete),
            T(test_profile_precedence),
            T(test_profile_interests_batch),
            T(test_pop_dirty),
            T(test_mark_user_dirty),
            T(test_stats_and_count),
            T(test_applied_record),
            T(test_wrong_types_fail_clearly),
            T(test_noscript_single_calls),
            T(test_noscript_pipelined),
            T(test_runner_many_args),
            T(test_reply_checks),
            T(test_load_after_dropped_connection),
            T(test_pipelined_loads_across_a_drop),
            T(test_deadline_on_a_hung_server),
            T(test_url_parse),
            T(test_url_redact),
            T(test_auth_select),
#undef T
        };

        signal(SIGPIPE, SIG_IGN); /* as the daemons do */
        cm_log_level = CM_LOG_ERROR;
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
