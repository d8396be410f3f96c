/*
 * Unit tests for common/llm.c against a real HTTP/1.1 endpoint that each
 * test starts on 127.0.0.1 (an ephemeral port): a thread that accepts
 * connections one at a time, reads each request (kept-alive connections
 * carry several), records its head and body, and answers from the test's
 * script of canned replies (the last one repeats), optionally after a
 * delay. Tests assert what the caller sees (a good summary, or -1 with a
 * reason and no text), what the server received, and how many requests
 * and connections it took.
 *
 * Time: every client runs on a fake clock (cm_llm_conf_t.clock). Its
 * sleeps only move the fake time on and are recorded, and a canned reply
 * can move it on as if the request had taken that long. So the tests
 * assert the client's timing decisions exactly (which waits, how long,
 * when the breaker half-opens) and never sleep or measure real time. Only
 * libcurl's own per-attempt timeout is real (test_timeout), and nothing
 * about its duration is asserted.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "llm.h"
#include "log.h"
#include "util.h"

#define API_KEY "sk-test-secret-123"
#define REQ_MAX 32

/* A chat completions reply whose choices[0].message.content is text (a
 * JSON string body, escapes included). */
#define OK_BODY(text)                                                          \
        "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{"         \
        "\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"" text  \
        "\"},\"finish_reason\":\"stop\"}]}"

#define SUMMARY "The user, Sumit Pandya, is a full stack developer."

typedef struct canned {
        int status;
        const char *headers; /* extra header lines, each ending "\r\n" */
        const char *body;
        int delay_ms;   /* real time before answering */
        int no_length;  /* no Content-Length: the body ends at close */
        int advance_ms; /* fake time the request takes */
        /* > 0: after the head, one byte of body every trickle_ms, never
         * ending (with no_length: a reply that never closes) */
        int trickle_ms;
} canned_t;

/* The fake clock of every client (conf_for() resets it). The server
 * thread moves it on too, hence atomic. */
#define FAKE_SLEEPS_MAX 16
#define FAKE_START_US   1000000000LL

typedef struct fake_clock {
        atomic_llong now_us;
        int sleeps;
        int64_t slept_us[FAKE_SLEEPS_MAX];
} fake_clock_t;

static fake_clock_t fake;

static int64_t fake_now_us(void *opaque)
{
        fake_clock_t *fc = opaque;

        return (int64_t)atomic_load(&fc->now_us);
}

static void fake_sleep_us(void *opaque, int64_t us)
{
        fake_clock_t *fc = opaque;

        if (fc->sleeps < FAKE_SLEEPS_MAX)
                fc->slept_us[fc->sleeps] = us;
        fc->sleeps++;
        atomic_fetch_add(&fc->now_us, (long long)us);
}

static const cm_llm_clock_t fake_clock = {fake_now_us, fake_sleep_us, &fake};

static void fake_reset(void)
{
        memset(fake.slept_us, 0, sizeof(fake.slept_us));
        fake.sleeps = 0;
        atomic_store(&fake.now_us, FAKE_START_US);
}

/* Moves the fake time on by ms. */
static void fake_advance_ms(long ms)
{
        atomic_fetch_add(&fake.now_us, (long long)ms * 1000);
}

typedef struct server {
        int lfd;
        int port;
        char url[64];
        pthread_t thr;
        atomic_int stop;
        const canned_t *script;
        size_t script_cnt;
        pthread_mutex_t lock;
        int requests;
        int conns;
        char *heads[REQ_MAX]; /* request line and headers */
        char *bodies[REQ_MAX];
} server_t;

/* ---- the endpoint ---- */

/* Sleeps ms, in slices, unless the server stops. Returns 0 if stopped. */
static int srv_pause(server_t *srv, int ms)
{
        struct timespec ts = {0, 5 * 1000000L};
        int64_t until = cm_mono_us() + (int64_t)ms * 1000;

        while (cm_mono_us() < until) {
                if (atomic_load(&srv->stop))
                        return 0;
                nanosleep(&ts, NULL);
        }
        return 1;
}

/* Reads more bytes into in. Returns 1, or 0 on EOF, error or stop. */
static int srv_recv(server_t *srv, int fd, cm_buf_t *in)
{
        char tmp[65536];
        struct pollfd p;
        ssize_t n;

        for (;;) {
                if (atomic_load(&srv->stop))
                        return 0;
                p.fd = fd;
                p.events = POLLIN;
                p.revents = 0;
                if (poll(&p, 1, 20) <= 0)
                        continue;
                n = recv(fd, tmp, sizeof(tmp), 0);
                if (n <= 0)
                        return 0;
                cm_buf_add(in, tmp, (size_t)n);
                return 1;
        }
}

static size_t content_length(const char *head, size_t head_len)
{
        char *h = cm_strndup(head, head_len);
        const char *p = strcasestr(h, "\r\ncontent-length:");
        size_t len = 0;

        if (p)
                len = strtoul(p + strlen("\r\ncontent-length:"), NULL, 10);
        free(h);
        return len;
}

/* Records a request; returns its index (0 for the first). */
static int srv_record(server_t *srv, const char *head, size_t head_len,
                      const char *body, size_t body_len)
{
        int idx;

        pthread_mutex_lock(&srv->lock);
        idx = srv->requests++;
        if (idx < REQ_MAX) {
                srv->heads[idx] = cm_strndup(head, head_len);
                srv->bodies[idx] = cm_strndup(body, body_len);
        }
        pthread_mutex_unlock(&srv->lock);
        return idx;
}

static int send_all(int fd, const char *buf, size_t len)
{
        ssize_t n;

        while (len) {
                n = send(fd, buf, len, MSG_NOSIGNAL);
                if (n <= 0)
                        return -1;
                buf += n;
                len -= (size_t)n;
        }
        return 0;
}

static void srv_conn(server_t *srv, int fd)
{
        const canned_t *c;
        const char *end;
        size_t head_len, body_len, used, idx;
        cm_buf_t in, resp;

        cm_buf_init(&in);
        cm_buf_init(&resp);
        for (;;) {
                end = in.len ? memmem(in.buf, in.len, "\r\n\r\n", 4) : NULL;
                if (!end) {
                        if (!srv_recv(srv, fd, &in))
                                break;
                        continue;
                }
                head_len = (size_t)(end - in.buf) + 4;
                body_len = content_length(in.buf, head_len);
                if (in.len < head_len + body_len) {
                        if (!srv_recv(srv, fd, &in))
                                break;
                        continue;
                }
                idx = (size_t)srv_record(srv, in.buf, head_len,
                                         in.buf + head_len, body_len);
                c = &srv->script[idx < srv->script_cnt ? idx
                                                       : srv->script_cnt - 1];
                used = head_len + body_len;
                memmove(in.buf, in.buf + used, in.len - used);
                in.len -= used;
                in.buf[in.len] = '\0';
                if (c->advance_ms)
                        fake_advance_ms(c->advance_ms);
                if (c->delay_ms && !srv_pause(srv, c->delay_ms))
                        break;
                cm_buf_reset(&resp);
                cm_buf_addf(&resp, "HTTP/1.1 %d %s\r\n", c->status,
                            c->status == 200 ? "OK" : "Canned");
                cm_buf_adds(&resp, "Content-Type: application/json\r\n");
                if (c->no_length)
                        cm_buf_adds(&resp, "Connection: close\r\n");
                else
                        cm_buf_addf(&resp, "Content-Length: %zu\r\n",
                                    strlen(c->body));
                cm_buf_adds(&resp, c->headers ? c->headers : "");
                cm_buf_adds(&resp, "\r\n");
                cm_buf_adds(&resp, c->body);
                if (send_all(fd, resp.buf, resp.len) == -1)
                        break;
                while (c->trickle_ms && srv_pause(srv, c->trickle_ms) &&
                       send_all(fd, " ", 1) == 0)
                        ;
                if (c->no_length)
                        break;
        }
        cm_buf_release(&in);
        cm_buf_release(&resp);
}

static void *srv_main(void *arg)
{
        server_t *srv = arg;
        struct pollfd p;
        int fd;

        while (!atomic_load(&srv->stop)) {
                p.fd = srv->lfd;
                p.events = POLLIN;
                p.revents = 0;
                if (poll(&p, 1, 20) <= 0)
                        continue;
                fd = accept(srv->lfd, NULL, NULL);
                if (fd < 0)
                        continue;
                pthread_mutex_lock(&srv->lock);
                srv->conns++;
                pthread_mutex_unlock(&srv->lock);
                srv_conn(srv, fd);
                close(fd);
        }
        return NULL;
}

static void srv_start(server_t *srv, const canned_t *script, size_t cnt)
{
        struct sockaddr_in sa;
        socklen_t sl = sizeof(sa);
        int one = 1;

        memset(srv, 0, sizeof(*srv));
        srv->script = script;
        srv->script_cnt = cnt;
        atomic_init(&srv->stop, 0);
        pthread_mutex_init(&srv->lock, NULL);
        srv->lfd = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(srv->lfd >= 0);
        setsockopt(srv->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        memset(&sa, 0, sizeof(sa));
        sa.sin_family = AF_INET;
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = 0;
        assert_int_equal(bind(srv->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(srv->lfd, 16), 0);
        assert_int_equal(getsockname(srv->lfd, (struct sockaddr *)&sa, &sl), 0);
        srv->port = ntohs(sa.sin_port);
        snprintf(srv->url, sizeof(srv->url), "http://127.0.0.1:%d", srv->port);
        assert_int_equal(pthread_create(&srv->thr, NULL, srv_main, srv), 0);
}

static void srv_stop(server_t *srv)
{
        int i;

        atomic_store(&srv->stop, 1);
        pthread_join(srv->thr, NULL);
        close(srv->lfd);
        for (i = 0; i < REQ_MAX; i++) {
                free(srv->heads[i]);
                free(srv->bodies[i]);
        }
        pthread_mutex_destroy(&srv->lock);
}

static int srv_requests(server_t *srv)
{
        int n;

        pthread_mutex_lock(&srv->lock);
        n = srv->requests;
        pthread_mutex_unlock(&srv->lock);
        return n;
}

static int srv_conns(server_t *srv)
{
        int n;

        pthread_mutex_lock(&srv->lock);
        n = srv->conns;
        pthread_mutex_unlock(&srv->lock);
        return n;
}

/* ---- helpers ---- */

#define assert_contains(hay, needle)                                           \
        contains_or_fail((hay), (needle), 1, __FILE__, __LINE__)
#define assert_not_contains(hay, needle)                                       \
        contains_or_fail((hay), (needle), 0, __FILE__, __LINE__)

static void contains_or_fail(const char *hay, const char *needle, int want,
                             const char *file, int line)
{
        int has = hay && strcasestr(hay, needle) != NULL;

        if (has == want)
                return;
        print_error("%s:%d: expected \"%s\" %sin \"%s\"\n", file, line, needle,
                    want ? "" : "not ", hay ? hay : "(null)");
        fail();
}

static cm_message_t msgs[] = {
    {.role = CM_ROLE_USER,
     .content = "Hi, I'm Sumit Pandya, full stack developer"},
    {.role = CM_ROLE_ASSISTANT, .content = "Hello Sumit! How can I help?"},
    {.role = CM_ROLE_USER, .content = "I start at Acme on 3 March.\nAny tips?"},
};
#define MSG_CNT (sizeof(msgs) / sizeof(msgs[0]))

#define PREV "The user asked about Rust."

/* A client configuration for srv, on the fake clock, which it resets. */
static cm_llm_conf_t conf_for(const server_t *srv)
{
        cm_llm_conf_t conf = {
            .base_url = srv->url,
            .model = "test-model",
            .api_key = API_KEY,
            .temperature = 0.2,
            .timeout_ms = 3000,
            .max_retries = 2,
            .backoff_base_ms = 20,
            .backoff_max_ms = 100,
            .breaker_failures = 0,
            .breaker_cooldown_ms = 1000,
            .clock = &fake_clock,
        };

        fake_reset();
        return conf;
}

static cm_llm_t *llm_new(const cm_llm_conf_t *conf)
{
        char err[256] = "";
        cm_llm_t *llm = cm_llm_new(conf, err, sizeof(err));

        if (!llm)
                print_error("cm_llm_new: %s\n", err);
        assert_non_null(llm);
        return llm;
}

static int fold(cm_llm_t *llm, char **out, char *err, size_t err_size)
{
        err[0] = '\0';
        *out = (char *)"poison"; /* must be overwritten either way */
        return cm_llm_fold(llm, PREV, msgs, MSG_CNT, 50, out, err, err_size);
}

/* One call that must give exactly want. */
static void fold_ok(cm_llm_t *llm, const char *want)
{
        char err[512], *out;
        int rc = fold(llm, &out, err, sizeof(err));

        if (rc != 0)
                print_error("fold failed: %s\n", err);
        assert_int_equal(rc, 0);
        assert_non_null(out);
        assert_string_equal(out, want);
        free(out);
}

/* The reason of the last call fold_fails() ran. */
static char last_err[512];

/* One call that must fail, with why_part in the reason, no text out, and
 * never the API key in the reason. */
static void fold_fails(cm_llm_t *llm, const char *why_part)
{
        char err[512], *out;
        int rc = fold(llm, &out, err, sizeof(err));

        snprintf(last_err, sizeof(last_err), "%s", err);
        if (rc != -1)
                print_error("fold succeeded: %s\n", rc == 0 ? out : "?");
        assert_int_equal(rc, -1);
        assert_null(out);
        assert_true(err[0] != '\0');
        if (why_part)
                assert_contains(err, why_part);
        assert_not_contains(err, API_KEY);
}

/* Asserts that the client waited exactly cnt times so far, the i-th wait
 * in [lo_ms[i], hi_ms[i]] (the backoff's jitter), and nothing else. */
static void assert_waits(int cnt, const long *lo_ms, const long *hi_ms)
{
        int i;

        assert_int_equal(fake.sleeps, cnt);
        for (i = 0; i < cnt; i++) {
                if (fake.slept_us[i] >= (int64_t)lo_ms[i] * 1000 &&
                    fake.slept_us[i] <= (int64_t)hi_ms[i] * 1000)
                        continue;
                print_error("wait %d: %lld us, expected %ld..%ld ms\n", i,
                            (long long)fake.slept_us[i], lo_ms[i], hi_ms[i]);
                fail();
        }
}

/* ---- cases ---- */

static void test_success(void **state)
{
        static const canned_t script[] = {
            {200, NULL, OK_BODY("  \\n" SUMMARY "  \\n"), 0, 0},
        };
        json_object *root, *v, *m;
        const char *content;
        cm_llm_stats_t st;
        server_t srv;
        cm_llm_conf_t conf;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 1);
        conf = conf_for(&srv);
        llm = llm_new(&conf);
        fold_ok(llm, SUMMARY);
        fold_ok(llm, SUMMARY);
        assert_int_equal(srv_requests(&srv), 2);
        assert_int_equal(srv_conns(&srv), 1); /* kept alive */

        /* What went on the wire. */
        assert_true(!strncmp(srv.heads[0],
                             "POST /v1/chat/completions HTTP/1.1\r\n", 36));
        assert_contains(srv.heads[0],
                        "\r\nAuthorization: Bearer " API_KEY "\r\n");
        assert_contains(srv.heads[0], "\r\nContent-Type: application/json");
        root = json_tokener_parse(srv.bodies[0]);
        assert_non_null(root);
        assert_true(json_object_object_get_ex(root, "model", &v));
        assert_string_equal(json_object_get_string(v), "test-model");
        assert_true(json_object_object_get_ex(root, "temperature", &v));
        assert_true(json_object_get_double(v) > 0.19 &&
                    json_object_get_double(v) < 0.21);
        assert_true(json_object_object_get_ex(root, "max_tokens", &v));
        assert_true(json_object_get_int(v) > 50);
        assert_true(json_object_object_get_ex(root, "messages", &v));
        assert_int_equal(json_object_array_length(v), 2);
        m = json_object_array_get_idx(v, 0);
        assert_string_equal(
            json_object_get_string(json_object_object_get(m, "role")),
            "system");
        content = json_object_get_string(json_object_object_get(m, "content"));
        assert_contains(content, "at most 50 words");
        assert_contains(content, "third person");
        m = json_object_array_get_idx(v, 1);
        assert_string_equal(
            json_object_get_string(json_object_object_get(m, "role")), "user");
        content = json_object_get_string(json_object_object_get(m, "content"));
        assert_string_equal(content,
                            "Current summary:\n" PREV "\n\nNew lines:\n"
                            "User: Hi, I'm Sumit Pandya, full stack developer\n"
                            "Assistant: Hello Sumit! How can I help?\n"
                            "User: I start at Acme on 3 March. Any tips?");
        json_object_put(root);

        cm_llm_stats(llm, &st);
        assert_int_equal(st.calls, 2);
        assert_int_equal(st.retries, 0);
        assert_int_equal(st.failures, 0);
        assert_int_equal(st.breaker_open, 0);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* No key: no Authorization header. Base URLs with a trailing slash or an
 * own /v1 reach the same path. No previous summary: "(none)". */
static void test_no_key_no_summary(void **state)
{
        static const canned_t script[] = {{200, NULL, OK_BODY(SUMMARY), 0, 0}};
        char err[256], *out = NULL, base[96];
        const char *bases[] = {"/", "/v1", "/v1/"};
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;
        size_t i;

        (void)state;
        srv_start(&srv, script, 1);
        for (i = 0; i < 3; i++) {
                conf = conf_for(&srv);
                snprintf(base, sizeof(base), "%s%s", srv.url, bases[i]);
                conf.base_url = base;
                conf.api_key = i == 0 ? NULL : "";
                llm = llm_new(&conf);
                assert_int_equal(cm_llm_fold(llm, i == 0 ? NULL : "", msgs, 1,
                                             20, &out, err, sizeof(err)),
                                 0);
                assert_string_equal(out, SUMMARY);
                free(out);
                cm_llm_destroy(llm);
                assert_true(!strncmp(srv.heads[i],
                                     "POST /v1/chat/completions HTTP/1.1", 34));
                assert_not_contains(srv.heads[i], "Authorization");
                assert_contains(srv.bodies[i],
                                "Current summary:\\n(none)\\n\\nNew lines:\\n"
                                "User: Hi, I'm Sumit");
        }
        srv_stop(&srv);
}

static void test_429_retry_after(void **state)
{
        static const canned_t script[] = {
            {429, "Retry-After: 1\r\n",
             "{\"error\":{\"message\":\"rate limit reached\"}}", 0, 0},
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
        };
        static const long want[] = {1000}; /* the backoff alone: 10..20 */
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 2);
        conf = conf_for(&srv);
        llm = llm_new(&conf);
        fold_ok(llm, SUMMARY);
        assert_waits(1, want, want);
        assert_int_equal(srv_requests(&srv), 2);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.retries, 1);
        assert_int_equal(st.failures, 0);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* A Retry-After beyond 30 s: fail now, without waiting. */
static void test_429_retry_after_too_long(void **state)
{
        static const canned_t script[] = {
            {429, "Retry-After: 3600\r\n", "{}", 0, 0},
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
        };
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 2);
        conf = conf_for(&srv);
        llm = llm_new(&conf);
        fold_fails(llm, "HTTP 429");
        assert_waits(0, NULL, NULL);
        assert_int_equal(srv_requests(&srv), 1);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* A Retry-After under 30 s but beyond what is left of the call's budget
 * ((1 + 1) * 500 + 1 * 100 = 1100 ms): fail now, without waiting. */
static void test_retry_after_beyond_budget(void **state)
{
        static const canned_t script[] = {
            {503, "Retry-After: 2\r\n", "{}", 0, 0},
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
        };
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 2);
        conf = conf_for(&srv);
        conf.timeout_ms = 500;
        conf.max_retries = 1;
        llm = llm_new(&conf);
        fold_fails(llm, "(2000 ms) exceeds the budget");
        assert_waits(0, NULL, NULL);
        assert_int_equal(srv_requests(&srv), 1);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* Retry-After is honoured while the call's budget lasts ((2 + 1) * 500 +
 * 2 * 100 = 1700 ms): each attempt takes 100 ms, the first wait of 1000
 * ms fits, the second no longer does, and the call fails rather than wait
 * less than asked. */
static void test_budget_spent(void **state)
{
        static const canned_t script[] = {
            {503, "Retry-After: 1\r\n", "{}", 0, 0, 100},
        };
        static const long want[] = {1000};
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 1);
        conf = conf_for(&srv);
        conf.timeout_ms = 500;
        llm = llm_new(&conf);
        fold_fails(llm, "(1000 ms) exceeds the budget");
        assert_contains(last_err, "HTTP 503");
        assert_waits(1, want, want);
        assert_int_equal(srv_requests(&srv), 2);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.retries, 1);
        assert_int_equal(st.failures, 1);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

static void test_500_then_success(void **state)
{
        static const canned_t script[] = {
            {500, NULL, "{\"error\":{\"message\":\"boom\"}}", 0, 0},
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
        };
        static const long lo[] = {10}, hi[] = {20};
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 2);
        conf = conf_for(&srv);
        llm = llm_new(&conf);
        fold_ok(llm, SUMMARY);
        assert_waits(1, lo, hi); /* the backoff: 20 ms, jittered */
        assert_int_equal(srv_requests(&srv), 2);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.retries, 1);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* Exponential backoff with equal jitter: 20 ms, then 40, then 80, then
 * capped at 100; each wait in [d/2, d]. */
static void test_5xx_retries_exhausted(void **state)
{
        static const canned_t script[] = {
            {502, NULL, "<html>bad gateway</html>", 0, 0},
        };
        static const long lo[] = {10, 20, 40, 50}, hi[] = {20, 40, 80, 100};
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 1);
        conf = conf_for(&srv);
        conf.max_retries = 4;
        llm = llm_new(&conf);
        fold_fails(llm, "HTTP 502");
        assert_contains(last_err, "(5 attempts)");
        assert_waits(4, lo, hi);
        assert_int_equal(srv_requests(&srv), 5);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.retries, 4);
        assert_int_equal(st.failures, 1);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* A reply that comes too late, and one that never ends (a byte at a time)
 * and never closes: each attempt ends at timeout_ms (libcurl's, for the
 * whole transfer), and the call fails. */
static void test_timeout(void **state)
{
        static const canned_t late[] = {
            {200, NULL, OK_BODY(SUMMARY), 1500, 0},
        };
        static const canned_t endless[] = {
            {200, NULL, "{\"choices\":[", 0, 1, 0, 50},
        };
        const canned_t *scripts[] = {late, endless};
        static const long lo[] = {10}, hi[] = {20};
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
                srv_start(&srv, scripts[i], 1);
                conf = conf_for(&srv);
                conf.timeout_ms = 250; /* real time: libcurl's */
                conf.max_retries = 1;
                llm = llm_new(&conf);
                fold_fails(llm, "timed out");
                assert_waits(1, lo, hi);
                cm_llm_stats(llm, &st);
                assert_int_equal(st.retries, 1);
                assert_int_equal(st.failures, 1);
                cm_llm_destroy(llm);
                srv_stop(&srv);
        }
}

/* Nobody listens: connection errors are retried, then the call fails. */
static void test_connection_refused(void **state)
{
        static const canned_t script[] = {{200, NULL, OK_BODY(SUMMARY), 0, 0}};
        static const long lo[] = {10, 20}, hi[] = {20, 40};
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;
        char url[64];

        (void)state;
        srv_start(&srv, script, 1);
        snprintf(url, sizeof(url), "%s", srv.url);
        srv_stop(&srv); /* the port is now closed */
        conf = conf_for(&srv);
        conf.base_url = url;
        llm = llm_new(&conf);
        fold_fails(llm, "3 attempts");
        assert_waits(2, lo, hi);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.retries, 2);
        cm_llm_destroy(llm);
}

/* Runs one call per script entry; each must fail after one request. */
static void each_fails(const canned_t *script, size_t cnt, const char *why)
{
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;
        size_t i;

        srv_start(&srv, script, cnt);
        conf = conf_for(&srv);
        llm = llm_new(&conf);
        for (i = 0; i < cnt; i++) {
                fold_fails(llm, why);
                assert_int_equal(srv_requests(&srv), (int)i + 1);
        }
        cm_llm_stats(llm, &st);
        assert_int_equal(st.retries, 0);
        assert_int_equal(st.failures, cnt);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

static void test_malformed_json(void **state)
{
        static const canned_t script[] = {
            {200, NULL, "{\"choices\": [{\"message\": ", 0, 0},
            {200, NULL, "not json at all", 0, 0},
            {200, NULL, OK_BODY(SUMMARY) " trailing", 0, 0},
            {200, NULL, "", 0, 0},
            {200, NULL, "[1, 2]", 0, 0},
        };

        (void)state;
        each_fails(script, sizeof(script) / sizeof(script[0]), NULL);
}

static void test_empty_choice(void **state)
{
        static const canned_t script[] = {
            {200, NULL, "{\"choices\":[]}", 0, 0},
            {200, NULL, OK_BODY(""), 0, 0},
            {200, NULL, OK_BODY("  \\n\\t "), 0, 0},
            {200, NULL, OK_BODY("Summary:  "), 0, 0},
            {200, NULL, "{\"choices\":[{\"message\":{\"content\":null}}]}", 0,
             0},
            {200, NULL, "{\"choices\":[{\"index\":0}]}", 0, 0},
            {200, NULL, "{\"choices\":{\"message\":\"x\"}}", 0, 0},
            {200, NULL, "{\"id\":\"c1\"}", 0, 0},
            {200, NULL, OK_BODY("bad\\u0000nul"), 0, 0},
        };

        (void)state;
        each_fails(script, sizeof(script) / sizeof(script[0]), NULL);
}

static void test_refusal(void **state)
{
        static const canned_t script[] = {
            {200, NULL, OK_BODY("I'm sorry, but I can't help with that."), 0,
             0},
            {200, NULL, OK_BODY("  as an AI language model, I cannot do it"), 0,
             0},
            {200, NULL, OK_BODY("I CANNOT summarize this conversation."), 0, 0},
            {200, NULL, OK_BODY("I can't help with that request."), 0, 0},
            {200, NULL, OK_BODY("I\xe2\x80\x99m sorry, no."), 0, 0},
            {200, NULL,
             "{\"choices\":[{\"message\":{\"content\":null,"
             "\"refusal\":\"I refuse\"}}]}",
             0, 0},
        };

        (void)state;
        each_fails(script, sizeof(script) / sizeof(script[0]), "refused");
}

/* An apology inside a summary is not a refusal; a label is dropped. */
static void test_not_a_refusal(void **state)
{
        static const canned_t script[] = {
            {200, NULL,
             OK_BODY("Summary: The user said \\\"I'm sorry\\\" to the "
                     "assistant."),
             0, 0},
        };
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 1);
        conf = conf_for(&srv);
        llm = llm_new(&conf);
        fold_ok(llm, "The user said \"I'm sorry\" to the assistant.");
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

static void test_400_no_retry(void **state)
{
        static const canned_t script[] = {
            {400, NULL,
             "{\"error\":{\"message\":\"Incorrect API key provided: " API_KEY
             "\\nor model\"}}",
             0, 0},
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
        };
        char err[512], *out;
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 2);
        conf = conf_for(&srv);
        llm = llm_new(&conf);
        assert_int_equal(fold(llm, &out, err, sizeof(err)), -1);
        assert_null(out);
        assert_contains(err, "HTTP 400");
        assert_contains(err, "Incorrect API key provided: *** or model");
        assert_not_contains(err, API_KEY);
        assert_int_equal(srv_requests(&srv), 1);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.retries, 0);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* Replies over 1 MiB are refused, announced (Content-Length) or not. */
static void test_oversized_reply(void **state)
{
        size_t big = 2 * 1024 * 1024;
        char *body = cm_malloc(big + 1);
        canned_t script[2] = {
            {200, NULL, body, 0, 0},
            {200, NULL, body, 0, 1},
        };

        (void)state;
        memset(body, ' ', big);
        memcpy(body, "{\"choices\":[]}", 14);
        body[big] = '\0';
        each_fails(script, 2, "exceeds");
        free(body);
}

/* The breaker opens after breaker_failures failed calls, refuses calls
 * without a request for exactly the cooldown, then lets one trial through,
 * whose success closes it. */
static void test_breaker(void **state)
{
        static const canned_t script[] = {
            {500, NULL, "{}", 0, 0},
            {500, NULL, "{}", 0, 0},
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
        };
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 3);
        conf = conf_for(&srv);
        conf.max_retries = 0;
        conf.breaker_failures = 2;
        conf.breaker_cooldown_ms = 300;
        llm = llm_new(&conf);
        fold_fails(llm, "HTTP 500");
        fold_fails(llm, "HTTP 500");
        assert_int_equal(srv_requests(&srv), 2);

        /* Open: fails at once, nothing sent, for the whole cooldown. */
        fold_fails(llm, "circuit open: 2 consecutive failed calls");
        assert_contains(last_err, "next trial in 300 ms");
        fake_advance_ms(299);
        fold_fails(llm, "next trial in 1 ms");
        assert_int_equal(srv_requests(&srv), 2);
        assert_waits(0, NULL, NULL);

        /* At the end of the cooldown the trial succeeds and closes it. */
        fake_advance_ms(1);
        fold_ok(llm, SUMMARY);
        fold_ok(llm, SUMMARY);
        assert_int_equal(srv_requests(&srv), 4);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.calls, 6);
        assert_int_equal(st.failures, 4);
        assert_int_equal(st.breaker_open, 1);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* Only consecutive failed calls count: a success in between starts the
 * count again. Retries inside one call are one failure. */
static void test_breaker_counts_calls(void **state)
{
        static const canned_t script[] = {
            {500, NULL, "{}", 0, 0},
            {500, NULL, "{}", 0, 0},
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
            {500, NULL, "{}", 0, 0},
            {502, NULL, "{}", 0, 0},
        };
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 5);
        conf = conf_for(&srv);
        conf.max_retries = 1;
        conf.breaker_failures = 2;
        llm = llm_new(&conf);
        fold_fails(llm, "HTTP 500"); /* requests 1 and 2: one failure */
        fold_ok(llm, SUMMARY);       /* request 3 */
        fold_fails(llm, "HTTP 502"); /* requests 4 and 5 */
        assert_int_equal(srv_requests(&srv), 5);
        fold_fails(llm, "HTTP 502"); /* 6 and 7: the second in a row */
        assert_int_equal(srv_requests(&srv), 7);
        fold_fails(llm, "circuit open: 2 consecutive failed calls");
        assert_int_equal(srv_requests(&srv), 7);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.breaker_open, 1);
        assert_int_equal(st.retries, 3);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* A failed trial opens the breaker again for a whole cooldown, counted
 * from the trial. */
static void test_breaker_failed_trial(void **state)
{
        static const canned_t script[] = {
            {503, NULL, "{}", 0, 0},
            {400, NULL, "{}", 0, 0, 50}, /* the trial takes 50 ms */
            {200, NULL, OK_BODY(SUMMARY), 0, 0},
        };
        cm_llm_stats_t st;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 3);
        conf = conf_for(&srv);
        conf.max_retries = 0;
        conf.breaker_failures = 1;
        conf.breaker_cooldown_ms = 200;
        llm = llm_new(&conf);
        fold_fails(llm, "HTTP 503");
        fold_fails(llm, "next trial in 200 ms");
        fake_advance_ms(200);
        fold_fails(llm, "HTTP 400"); /* the trial, which ends 50 ms on */
        fold_fails(llm, "next trial in 200 ms");
        fake_advance_ms(199);
        fold_fails(llm, "next trial in 1 ms");
        assert_int_equal(srv_requests(&srv), 2);
        fake_advance_ms(1);
        fold_ok(llm, SUMMARY);
        fold_ok(llm, SUMMARY);
        assert_int_equal(srv_requests(&srv), 4);
        cm_llm_stats(llm, &st);
        assert_int_equal(st.breaker_open, 2);
        assert_waits(0, NULL, NULL);
        cm_llm_destroy(llm);
        srv_stop(&srv);
}

/* At debug level, through retries, errors and the breaker, the key never
 * reaches the log. */
static void test_key_never_logged(void **state)
{
        static const canned_t script[] = {
            {500, NULL, "{\"error\":{\"message\":\"bad key " API_KEY "\"}}", 0,
             0},
            {401, NULL, "{\"error\":\"invalid key " API_KEY "\"}", 0, 0},
        };
        cm_log_level_t saved_level = cm_log_level;
        char log[16384];
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;
        FILE *tmp = tmpfile();
        int saved_fd;
        size_t n;

        (void)state;
        assert_non_null(tmp);
        fflush(stderr);
        saved_fd = dup(2);
        assert_true(saved_fd >= 0);
        assert_true(dup2(fileno(tmp), 2) >= 0);
        cm_log_level = CM_LOG_DEBUG;

        srv_start(&srv, script, 2);
        conf = conf_for(&srv);
        conf.max_retries = 1;
        conf.breaker_failures = 1;
        llm = llm_new(&conf);
        fold_fails(llm, "HTTP 401");
        fold_fails(llm, "circuit open");
        cm_llm_destroy(llm);
        srv_stop(&srv);

        cm_log_level = saved_level;
        fflush(stderr);
        dup2(saved_fd, 2);
        close(saved_fd);
        rewind(tmp);
        n = fread(log, 1, sizeof(log) - 1, tmp);
        log[n] = '\0';
        fclose(tmp);
        assert_contains(log, "retrying");
        assert_contains(log, "circuit");
        assert_not_contains(log, API_KEY);
}

static void test_bad_arguments(void **state)
{
        static const canned_t script[] = {{200, NULL, OK_BODY(SUMMARY), 0, 0}};
        static const cm_llm_clock_t half_clock = {fake_now_us, NULL, &fake};
        char err[256], *out;
        cm_llm_conf_t conf;
        server_t srv;
        cm_llm_t *llm;

        (void)state;
        srv_start(&srv, script, 1);

        conf = conf_for(&srv);
        conf.base_url = "ftp://example.com";
        err[0] = '\0';
        assert_null(cm_llm_new(&conf, err, sizeof(err)));
        assert_contains(err, "base_url");
        conf = conf_for(&srv);
        conf.model = "";
        assert_null(cm_llm_new(&conf, err, sizeof(err)));
        assert_contains(err, "model");
        conf = conf_for(&srv);
        conf.timeout_ms = 0;
        assert_null(cm_llm_new(&conf, err, sizeof(err)));
        conf = conf_for(&srv);
        conf.temperature = 5;
        assert_null(cm_llm_new(&conf, err, sizeof(err)));
        conf = conf_for(&srv);
        conf.api_key = API_KEY "\r\nX-Evil: 1";
        assert_null(cm_llm_new(&conf, err, sizeof(err)));
        assert_not_contains(err, API_KEY);
        conf = conf_for(&srv);
        conf.clock = &half_clock;
        assert_null(cm_llm_new(&conf, err, sizeof(err)));
        assert_contains(err, "clock");
        assert_null(cm_llm_new(NULL, err, sizeof(err)));

        conf = conf_for(&srv);
        llm = llm_new(&conf);
        out = (char *)"poison";
        assert_int_equal(
            cm_llm_fold(llm, PREV, msgs, MSG_CNT, 0, &out, err, sizeof(err)),
            -1);
        assert_null(out);
        assert_int_equal(srv_requests(&srv), 0);
        cm_llm_destroy(llm);
        cm_llm_destroy(NULL);
        srv_stop(&srv);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_success),
            cmocka_unit_test(test_no_key_no_summary),
            cmocka_unit_test(test_429_retry_after),
            cmocka_unit_test(test_429_retry_after_too_long),
            cmocka_unit_test(test_retry_after_beyond_budget),
            cmocka_unit_test(test_budget_spent),
            cmocka_unit_test(test_500_then_success),
            cmocka_unit_test(test_5xx_retries_exhausted),
            cmocka_unit_test(test_timeout),
            cmocka_unit_test(test_connection_refused),
            cmocka_unit_test(test_malformed_json),
            cmocka_unit_test(test_empty_choice),
            cmocka_unit_test(test_refusal),
            cmocka_unit_test(test_not_a_refusal),
            cmocka_unit_test(test_400_no_retry),
            cmocka_unit_test(test_oversized_reply),
            cmocka_unit_test(test_breaker),
            cmocka_unit_test(test_breaker_counts_calls),
            cmocka_unit_test(test_breaker_failed_trial),
            cmocka_unit_test(test_key_never_logged),
            cmocka_unit_test(test_bad_arguments),
        };
        int rc;

        rc = cmocka_run_group_tests(tests, NULL, NULL);
        curl_global_cleanup(); /* after the last cm_llm_destroy() */
        return rc;
}
