/*
 * llm: see llm.h for the contract.
 *
 * One call of cm_llm_fold() is: ask the breaker, build the request with
 * json-c, then up to 1 + max_retries attempts. An attempt either yields a
 * summary (ATTEMPT_OK), or fails in a way worth retrying (ATTEMPT_RETRY:
 * transport error, 429, 5xx) or not (ATTEMPT_FAIL). Between attempts the
 * client sleeps for the backoff, or for Retry-After when the server gave
 * one and it is longer. The outcome of the whole call feeds the breaker.
 * Every reading of the time and every wait goes through llm->clock.
 *
 * The reply is read into a buffer capped at RESPONSE_MAX (the write
 * callback aborts the transfer beyond it) and parsed with json-c in strict
 * mode; only choices[0].message.content is used, trimmed, and checked to be
 * non-empty, valid UTF-8 without NUL, and not a refusal.
 */
#include "llm.h"

#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "log.h"
#include "redis.h"
#include "text.h"
#include "util.h"

#define LLM_PATH               "/v1/chat/completions"
#define RESPONSE_MAX           (1024 * 1024)
#define RETRY_AFTER_MAX_MS     30000
#define CONNECT_TIMEOUT_MAX_MS 10000
#define SERVER_MSG_MAX         200
#define REQUEST_TOKENS_MAX     100000
#define WHY_SIZE               512

struct cm_llm {
        char *url;     /* base_url + LLM_PATH */
        char *log_url; /* url without userinfo and query: for logs */
        char *model;
        char *api_key; /* NULL when none; kept to scrub server messages */
        double temperature;
        int timeout_ms;
        int max_retries;
        int backoff_base_ms;
        int backoff_max_ms;
        int breaker_failures;
        int breaker_cooldown_ms;
        cm_llm_clock_t clock;
        CURL *curl; /* NULL after a transport error: rebuilt on next use */
        struct curl_slist *headers;
        char errbuf[CURL_ERROR_SIZE];
        /* breaker */
        int consecutive_failures;
        int breaker_is_open;
        int64_t open_until_us; /* clock time at which the trial may run */
        unsigned int seed;     /* jitter */
        cm_llm_stats_t stats;
};

/* What one HTTP exchange collected. */
typedef struct attempt {
        cm_buf_t body;
        int too_large;
        long retry_after_ms; /* -1: no usable Retry-After header */
} attempt_t;

typedef enum attempt_res {
        ATTEMPT_OK = 0,
        ATTEMPT_RETRY,
        ATTEMPT_FAIL,
} attempt_res_t;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
        curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* base_url without trailing slashes, then LLM_PATH; a base that already
 * ends in /v1 (as Groq and OpenAI document theirs) gets only the rest. */
static char *url_build(const char *base)
{
        size_t len = strlen(base);
        cm_buf_t b;

        while (len > 0 && base[len - 1] == '/')
                len--;
        cm_buf_init(&b);
        cm_buf_add(&b, base, len);
        if (len >= 3 && !strncmp(base + len - 3, "/v1", 3))
                cm_buf_adds(&b, &LLM_PATH[3]);
        else
                cm_buf_adds(&b, LLM_PATH);
        return cm_buf_detach(&b, NULL);
}

static void wipe_free(char *s)
{
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}

static void headers_free(struct curl_slist *headers)
{
        struct curl_slist *h;

        for (h = headers; h; h = h->next)
                if (h->data)
                        explicit_bzero(h->data, strlen(h->data));
        curl_slist_free_all(headers);
}

/* Out of memory aborts, as in util.c. */
static void headers_add(cm_llm_t *llm, const char *header)
{
        struct curl_slist *h = curl_slist_append(llm->headers, header);

        if (!h) {
                fprintf(stderr, "chatmem: out of memory adding a header\n");
                abort();
        }
        llm->headers = h;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        attempt_t *at = userdata;
        size_t n = size * nmemb;

        if (at->body.len + n > RESPONSE_MAX) {
                at->too_large = 1;
                return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
        }
        cm_buf_add(&at->body, ptr, n);
        return n;
}

/* Takes Retry-After in delta-seconds; an HTTP-date is ignored (the
 * backoff applies). A new status line (after a 1xx) resets it. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
        static const char name[] = "retry-after:";
        attempt_t *at = userdata;
        size_t n = size * nmemb, i, j;
        char val[24];
        long long secs;

        if (n >= 5 && !strncmp(ptr, "HTTP/", 5)) {
                at->retry_after_ms = -1;
                return n;
        }
        if (n <= sizeof(name) - 1 || strncasecmp(ptr, name, sizeof(name) - 1))
                return n;
        i = sizeof(name) - 1;
        while (i < n && cm_isspace(ptr[i]))
                i++;
        while (n > i && cm_isspace(ptr[n - 1]))
                n--;
        if (n - i >= sizeof(val))
                return size * nmemb;
        for (j = 0; i < n; i++, j++)
                val[j] = ptr[i];
        val[j] = '\0';
        if (cm_parse_int(val, 0, 365LL * 86400, &secs) == 0)
                at->retry_after_ms = (long)(secs * 1000);
        return size * nmemb;
}

static void handle_close(cm_llm_t *llm)
{
        if (llm->curl)
                curl_easy_cleanup(llm->curl);
        llm->curl = NULL;
}

/* Creates the easy handle with every option that does not change between
 * attempts. */
static int handle_open(cm_llm_t *llm, char *why, size_t why_size)
{
        long connect_ms = llm->timeout_ms < CONNECT_TIMEOUT_MAX_MS
                              ? llm->timeout_ms
                              : CONNECT_TIMEOUT_MAX_MS;
        CURL *curl = curl_easy_init();

        if (!curl) {
                cm_errf(why, why_size, "cannot create a curl handle");
                return -1;
        }
        curl_easy_setopt(curl, CURLOPT_URL, llm->url);
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, llm->headers);
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, "chatmem/1");
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_VERBOSE, 0L); /* would log the key */
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
        curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE,
                         (curl_off_t)RESPONSE_MAX);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, llm->errbuf);
        llm->curl = curl;
        return 0;
}

static int64_t real_now_us(void *opaque)
{
        (void)opaque;
        return cm_mono_us();
}

static void real_sleep_us(void *opaque, int64_t us)
{
        struct timespec ts, rem;

        (void)opaque;
        if (us <= 0)
                return;
        ts.tv_sec = (time_t)(us / 1000000);
        ts.tv_nsec = (long)(us % 1000000) * 1000L;
        while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
                ts = rem;
}

static const cm_llm_clock_t real_clock = {real_now_us, real_sleep_us, NULL};

static int64_t llm_now(const cm_llm_t *llm)
{
        return llm->clock.now_us(llm->clock.opaque);
}

cm_llm_t *cm_llm_new(const cm_llm_conf_t *conf, char *errstr,
                     size_t errstr_size)
{
        cm_llm_t *llm = NULL;
        cm_buf_t auth;

        cm_buf_init(&auth);
        if (!conf || !conf->base_url ||
            (strncasecmp(conf->base_url, "http://", 7) &&
             strncasecmp(conf->base_url, "https://", 8))) {
                cm_errf(errstr, errstr_size,
                        "llm base_url must start with http:// or https://");
                goto err;
        }
        if (!conf->model || !*conf->model) {
                cm_errf(errstr, errstr_size, "llm model is not set");
                goto err;
        }
        if (conf->api_key && strpbrk(conf->api_key, "\r\n")) {
                cm_errf(errstr, errstr_size,
                        "llm api_key contains a line break");
                goto err;
        }
        if (conf->timeout_ms <= 0 || conf->max_retries < 0 ||
            conf->max_retries > 100 || conf->backoff_base_ms < 0 ||
            conf->backoff_max_ms < conf->backoff_base_ms ||
            conf->breaker_cooldown_ms < 0) {
                cm_errf(errstr, errstr_size,
                        "llm timeout_ms must be > 0, max_retries in 0..100, "
                        "0 <= backoff_base_ms <= backoff_max_ms, "
                        "breaker_cooldown_ms >= 0");
                goto err;
        }
        if (!(conf->temperature >= 0.0 && conf->temperature <= 2.0)) {
                cm_errf(errstr, errstr_size, "llm temperature must be in 0..2");
                goto err;
        }
        if (conf->clock && (!conf->clock->now_us || !conf->clock->sleep_us)) {
                cm_errf(errstr, errstr_size,
                        "llm clock needs both now_us and sleep_us");
                goto err;
        }
        pthread_once(&curl_once, curl_init);
        if (curl_init_rc != CURLE_OK) {
                cm_errf(errstr, errstr_size, "cannot initialise libcurl: %s",
                        curl_easy_strerror(curl_init_rc));
                goto err;
        }

        llm = cm_calloc(1, sizeof(*llm));
        llm->url = url_build(conf->base_url);
        llm->log_url = cm_url_redact(llm->url);
        llm->model = cm_strdup(conf->model);
        if (conf->api_key && *conf->api_key)
                llm->api_key = cm_strdup(conf->api_key);
        llm->temperature = conf->temperature;
        llm->timeout_ms = conf->timeout_ms;
        llm->max_retries = conf->max_retries;
        llm->backoff_base_ms = conf->backoff_base_ms;
        llm->backoff_max_ms = conf->backoff_max_ms;
        llm->breaker_failures = conf->breaker_failures;
        llm->breaker_cooldown_ms = conf->breaker_cooldown_ms;
        llm->clock = conf->clock ? *conf->clock : real_clock;
        llm->seed = (unsigned int)llm_now(llm) ^ (unsigned int)(uintptr_t)llm;

        headers_add(llm, "Content-Type: application/json");
        headers_add(llm, "Accept: application/json");
        /* No "Expect: 100-continue" round trip on large prompts. */
        headers_add(llm, "Expect:");
        if (llm->api_key) {
                cm_buf_adds(&auth, "Authorization: Bearer ");
                cm_buf_adds(&auth, llm->api_key);
                headers_add(llm, auth.buf);
        }
        if (handle_open(llm, errstr, errstr_size) == -1)
                goto err;
        cm_debug("llm client for '%s' model '%s' (key %s)", llm->log_url,
                 llm->model, llm->api_key ? "set" : "none");
        goto out;

err:
        cm_llm_destroy(llm);
        llm = NULL;
out:
        if (auth.buf)
                explicit_bzero(auth.buf, auth.len);
        cm_buf_release(&auth);
        return llm;
}

void cm_llm_destroy(cm_llm_t *llm)
{
        if (!llm)
                return;
        handle_close(llm);
        headers_free(llm->headers);
        wipe_free(llm->api_key);
        free(llm->url);
        free(llm->log_url);
        free(llm->model);
        free(llm);
}

void cm_llm_stats(const cm_llm_t *llm, cm_llm_stats_t *stats)
{
        if (!llm) {
                memset(stats, 0, sizeof(*stats));
                return;
        }
        *stats = llm->stats;
}

/* Appends s with line breaks and tabs turned into spaces, so that one
 * message is one "Role: text" line of the prompt. */
static void add_one_line(cm_buf_t *b, const char *s)
{
        size_t i, start = 0;

        for (i = 0; s[i]; i++) {
                if (s[i] == '\n' || s[i] == '\r' || s[i] == '\t') {
                        cm_buf_add(b, s + start, i - start);
                        cm_buf_add(b, " ", 1);
                        start = i + 1;
                }
        }
        cm_buf_add(b, s + start, i - start);
}

static int request_max_tokens(int max_tokens)
{
        if (max_tokens > REQUEST_TOKENS_MAX)
                max_tokens = REQUEST_TOKENS_MAX;
        return max_tokens + max_tokens / 2 + 16;
}

/* The chat completions request. Returns a heap string. Cannot fail. */
static char *request_build(const cm_llm_t *llm, const char *prev,
                           const cm_message_t *msgs, size_t msg_cnt,
                           int max_tokens, size_t *len)
{
        json_object *root = json_object_new_object();
        json_object *messages = json_object_new_array();
        json_object *m;
        cm_buf_t sys, user;
        const char *s;
        char *ret;
        size_t i;

        cm_buf_init(&sys);
        cm_buf_init(&user);
        cm_buf_addf(&sys,
                    "You maintain the running summary of a conversation "
                    "between a user and an assistant. Update the current "
                    "summary with the new lines of the conversation. Keep "
                    "every fact: names, numbers, dates, places, decisions and "
                    "questions asked. Drop greetings and small talk. Write in "
                    "the third person (\"The user...\", \"The "
                    "assistant...\"). Use at most %d words. Return only the "
                    "updated summary text, with no title, preamble or "
                    "comment.",
                    max_tokens);
        cm_buf_adds(&user, "Current summary:\n");
        add_one_line(&user, prev && *prev ? prev : "(none)");
        cm_buf_adds(&user, "\n\nNew lines:");
        for (i = 0; i < msg_cnt; i++) {
                cm_buf_addf(&user, "\n%s: ", cm_role_label(msgs[i].role));
                add_one_line(&user, msgs[i].content ? msgs[i].content : "");
        }

        json_object_object_add(root, "model",
                               json_object_new_string(llm->model));
        m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("system"));
        json_object_object_add(
            m, "content", json_object_new_string_len(sys.buf, (int)sys.len));
        json_object_array_add(messages, m);
        m = json_object_new_object();
        json_object_object_add(m, "role", json_object_new_string("user"));
        json_object_object_add(
            m, "content", json_object_new_string_len(user.buf, (int)user.len));
        json_object_array_add(messages, m);
        json_object_object_add(root, "messages", messages);
        json_object_object_add(root, "temperature",
                               json_object_new_double(llm->temperature));
        json_object_object_add(
            root, "max_tokens",
            json_object_new_int(request_max_tokens(max_tokens)));
        json_object_object_add(root, "stream", json_object_new_boolean(0));

        s = json_object_to_json_string_ext(
            root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        *len = strlen(s);
        ret = cm_strndup(s, *len);
        json_object_put(root);
        cm_buf_release(&sys);
        cm_buf_release(&user);
        return ret;
}

/* Parses a JSON document that must fill buf[0..len) (trailing white space
 * allowed). Returns the tree (json_object_put() it) or NULL. */
static json_object *json_parse_whole(const char *buf, size_t len)
{
        json_tokener *tok = json_tokener_new();
        json_object *root = NULL;
        size_t end;

        if (!tok || len > INT32_MAX)
                goto out;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, buf, (int)len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success)
                goto fail;
        for (end = json_tokener_get_parse_end(tok); end < len; end++)
                if (!cm_isspace(buf[end]))
                        goto fail;
        goto out;
fail:
        if (root)
                json_object_put(root);
        root = NULL;
out:
        if (tok)
                json_tokener_free(tok);
        return root;
}

/*
 * The server's own error message (error.message, error, message) from an
 * error body, for errstr: printable, at most SERVER_MSG_MAX bytes, with the
 * API key replaced by "***". "" when the body has none (an HTML error page
 * is not quoted).
 */
static void server_message(const cm_llm_t *llm, const cm_buf_t *body, char *msg,
                           size_t msg_size)
{
        json_object *root = NULL, *err = NULL, *v = NULL;
        const char *s = NULL, *hit;
        size_t len, i, key_len;
        cm_buf_t b;

        cm_buf_init(&b);
        msg[0] = '\0';
        if (!body->len)
                goto out;
        root = json_parse_whole(body->buf, body->len);
        if (!root || !json_object_is_type(root, json_type_object))
                goto out;
        if (json_object_object_get_ex(root, "error", &err) &&
            json_object_is_type(err, json_type_object) &&
            json_object_object_get_ex(err, "message", &v) &&
            json_object_is_type(v, json_type_string))
                s = json_object_get_string(v);
        else if (err && json_object_is_type(err, json_type_string))
                s = json_object_get_string(err);
        else if (json_object_object_get_ex(root, "message", &v) &&
                 json_object_is_type(v, json_type_string))
                s = json_object_get_string(v);
        if (!s)
                goto out;
        /* Scrub the key first, then control characters, then cut. */
        key_len = llm->api_key ? strlen(llm->api_key) : 0;
        while (key_len && (hit = strstr(s, llm->api_key)) != NULL) {
                cm_buf_add(&b, s, (size_t)(hit - s));
                cm_buf_adds(&b, "***");
                s = hit + key_len;
        }
        cm_buf_adds(&b, s);
        for (i = 0; i < b.len; i++)
                if ((unsigned char)b.buf[i] < 0x20 || b.buf[i] == 0x7f)
                        b.buf[i] = ' ';
        if (!cm_utf8_valid(b.buf, b.len))
                goto out;
        len = b.len < SERVER_MSG_MAX ? b.len : SERVER_MSG_MAX;
        if (len >= msg_size)
                len = msg_size - 1;
        len = cm_utf8_floor(b.buf, len);
        memcpy(msg, b.buf, len);
        msg[len] = '\0';
out:
        if (b.buf)
                explicit_bzero(b.buf, b.len);
        cm_buf_release(&b);
        if (root)
                json_object_put(root);
}

/* Openings that mark a refusal rather than a summary (ASCII
 * case-insensitive; ’ is U+2019). */
static const char *const refusals[] = {
    "I'm sorry",
    "I\xe2\x80\x99m sorry",
    "I am sorry",
    "I apologize",
    "I cannot",
    "I can't",
    "I can\xe2\x80\x99t",
    "I'm unable",
    "I\xe2\x80\x99m unable",
    "I am unable",
    "As an AI",
};

/* Labels a model may put before the summary despite the prompt. */
static const char *const labels[] = {"Updated summary:", "Summary:"};

int cm_llm_reply_parse(const char *buf, size_t len, char **summary, char *why,
                       size_t why_size)
{
        json_object *root = NULL, *choices, *choice, *message, *content;
        json_object *refusal;
        const char *s;
        size_t n, i, l;
        int ret = -1;

        root = json_parse_whole(buf, len);
        if (!root || !json_object_is_type(root, json_type_object)) {
                cm_errf(why, why_size, "malformed JSON in the reply");
                goto out;
        }
        if (!json_object_object_get_ex(root, "choices", &choices) ||
            !json_object_is_type(choices, json_type_array) ||
            json_object_array_length(choices) == 0) {
                cm_errf(why, why_size, "no choices in the reply");
                goto out;
        }
        choice = json_object_array_get_idx(choices, 0);
        if (!json_object_is_type(choice, json_type_object) ||
            !json_object_object_get_ex(choice, "message", &message) ||
            !json_object_is_type(message, json_type_object)) {
                cm_errf(why, why_size, "no message in the reply's choice");
                goto out;
        }
        if (json_object_object_get_ex(message, "refusal", &refusal) &&
            json_object_is_type(refusal, json_type_string) &&
            json_object_get_string_len(refusal) > 0) {
                cm_errf(why, why_size, "the model refused (refusal field)");
                goto out;
        }
        if (!json_object_object_get_ex(message, "content", &content) ||
            !json_object_is_type(content, json_type_string)) {
                cm_errf(why, why_size, "no content string in the reply");
                goto out;
        }
        s = json_object_get_string(content);
        n = (size_t)json_object_get_string_len(content);
        if (strlen(s) != n || !cm_utf8_valid(s, n)) {
                cm_errf(why, why_size, "reply content is not valid UTF-8 text");
                goto out;
        }
        while (n > 0 && cm_isspace(*s)) {
                s++;
                n--;
        }
        for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
                l = strlen(labels[i]);
                if (n >= l && !strncasecmp(s, labels[i], l)) {
                        s += l;
                        n -= l;
                        break;
                }
        }
        while (n > 0 && cm_isspace(*s)) {
                s++;
                n--;
        }
        while (n > 0 && cm_isspace(s[n - 1]))
                n--;
        if (n == 0) {
                cm_errf(why, why_size, "empty content in the reply");
                goto out;
        }
        for (i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
                l = strlen(refusals[i]);
                if (n >= l && !strncasecmp(s, refusals[i], l)) {
                        cm_errf(why, why_size,
                                "the model refused (reply starts with "
                                "\"%s\")",
                                refusals[i]);
                        goto out;
                }
        }
        *summary = cm_strndup(s, n);
        ret = 0;
out:
        if (root)
                json_object_put(root);
        return ret;
}

/* Transport errors that another attempt cannot fix. */
static int transport_retryable(CURLcode rc)
{
        switch (rc) {
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_URL_MALFORMAT:
        case CURLE_NOT_BUILT_IN:
        case CURLE_OUT_OF_MEMORY:
        case CURLE_BAD_FUNCTION_ARGUMENT:
        case CURLE_WRITE_ERROR:
        case CURLE_FILESIZE_EXCEEDED:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
                return 0;
        default:
                return 1;
        }
}

static attempt_res_t attempt_once(cm_llm_t *llm, const char *req,
                                  size_t req_len, long timeout_ms,
                                  attempt_t *at, char **summary, char *why,
                                  size_t why_size)
{
        char msg[SERVER_MSG_MAX + 1];
        long status = 0;
        CURLcode rc;

        cm_buf_reset(&at->body);
        at->too_large = 0;
        at->retry_after_ms = -1;
        if (!llm->curl && handle_open(llm, why, why_size) == -1)
                return ATTEMPT_FAIL;
        llm->errbuf[0] = '\0';
        curl_easy_setopt(llm->curl, CURLOPT_WRITEDATA, at);
        curl_easy_setopt(llm->curl, CURLOPT_HEADERDATA, at);
        curl_easy_setopt(llm->curl, CURLOPT_POSTFIELDS, req);
        curl_easy_setopt(llm->curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req_len);
        curl_easy_setopt(llm->curl, CURLOPT_TIMEOUT_MS, timeout_ms);
        rc = curl_easy_perform(llm->curl);
        if (rc != CURLE_OK) {
                /* The connection may be half-used: never reuse it. */
                handle_close(llm);
                if (at->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
                        cm_errf(why, why_size,
                                "reply from '%s' exceeds %d bytes",
                                llm->log_url, RESPONSE_MAX);
                        return ATTEMPT_FAIL;
                }
                cm_errf(why, why_size, "request to '%s' failed: %s",
                        llm->log_url,
                        llm->errbuf[0] ? llm->errbuf : curl_easy_strerror(rc));
                return transport_retryable(rc) ? ATTEMPT_RETRY : ATTEMPT_FAIL;
        }
        curl_easy_getinfo(llm->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
                server_message(llm, &at->body, msg, sizeof(msg));
                cm_errf(why, why_size, "HTTP %ld from '%s'%s%s", status,
                        llm->log_url, msg[0] ? ": " : "", msg);
                if (status != 429 && status != 503)
                        at->retry_after_ms = -1;
                if (status == 429 || (status >= 500 && status <= 599))
                        return ATTEMPT_RETRY;
                return ATTEMPT_FAIL;
        }
        if (cm_llm_reply_parse(at->body.buf, at->body.len, summary, why,
                               why_size) == -1)
                return ATTEMPT_FAIL;
        return ATTEMPT_OK;
}

/* base * 2^n capped at max, then a random point in [d/2, d]. */
static long backoff_ms(cm_llm_t *llm, int n)
{
        long d = llm->backoff_base_ms;
        int i;

        for (i = 0; i < n && d < llm->backoff_max_ms; i++)
                d *= 2;
        if (d > llm->backoff_max_ms)
                d = llm->backoff_max_ms;
        if (d < 2)
                return d;
        return d / 2 + (long)(rand_r(&llm->seed) % (d - d / 2 + 1));
}

/* 1 if a call may go out now (closed, or half-open: this call is the
 * trial); 0 with the remaining cooldown in *wait_ms if not. */
static int breaker_allows(const cm_llm_t *llm, int64_t now_us, long *wait_ms)
{
        if (!llm->breaker_is_open || now_us >= llm->open_until_us)
                return 1;
        *wait_ms = (long)((llm->open_until_us - now_us + 999) / 1000);
        return 0;
}

static void breaker_record(cm_llm_t *llm, int ok)
{
        if (llm->breaker_failures <= 0)
                return;
        if (ok) {
                if (llm->breaker_is_open)
                        cm_info("llm circuit for '%s' closed", llm->log_url);
                llm->breaker_is_open = 0;
                llm->consecutive_failures = 0;
                return;
        }
        llm->consecutive_failures++;
        if (!llm->breaker_is_open &&
            llm->consecutive_failures < llm->breaker_failures)
                return;
        llm->breaker_is_open = 1;
        llm->open_until_us =
            llm_now(llm) + (int64_t)llm->breaker_cooldown_ms * 1000;
        llm->stats.breaker_open++;
        cm_warn("llm circuit for '%s' open for %d ms after %d consecutive "
                "failed calls",
                llm->log_url, llm->breaker_cooldown_ms,
                llm->consecutive_failures);
}

int cm_llm_fold(cm_llm_t *llm, const char *prev_summary,
                const cm_message_t *msgs, size_t msg_cnt, int max_tokens,
                char **out, char *errstr, size_t errstr_size)
{
        char why[WHY_SIZE] = "";
        char *req = NULL, *summary = NULL;
        attempt_res_t res = ATTEMPT_FAIL;
        int64_t start_us, deadline_us, now_us;
        long wait_ms = 0, remaining_ms, attempt_timeout;
        size_t req_len = 0, len;
        int ret = -1, attempted = 0, attempts = 0, n;
        attempt_t at;

        cm_buf_init(&at.body);
        if (out)
                *out = NULL;
        if (!llm || !out || max_tokens <= 0 || (msg_cnt && !msgs)) {
                cm_errf(errstr, errstr_size, "invalid argument to cm_llm_fold");
                return -1;
        }
        llm->stats.calls++;
        start_us = llm_now(llm);
        if (!breaker_allows(llm, start_us, &wait_ms)) {
                cm_errf(errstr, errstr_size,
                        "circuit open: %d consecutive failed calls to '%s', "
                        "next trial in %ld ms",
                        llm->consecutive_failures, llm->log_url, wait_ms);
                goto out;
        }
        attempted = 1;
        deadline_us =
            start_us + ((int64_t)(llm->max_retries + 1) * llm->timeout_ms +
                        (int64_t)llm->max_retries * llm->backoff_max_ms) *
                           1000;
        req = request_build(llm, prev_summary, msgs, msg_cnt, max_tokens,
                            &req_len);

        for (n = 0;; n++) {
                now_us = llm_now(llm);
                remaining_ms = (long)((deadline_us - now_us) / 1000);
                attempt_timeout = llm->timeout_ms < remaining_ms
                                      ? llm->timeout_ms
                                      : remaining_ms;
                if (attempt_timeout <= 0) {
                        len = strlen(why);
                        cm_errf(why + len, sizeof(why) - len,
                                "%stime budget spent", len ? "; " : "");
                        res = ATTEMPT_FAIL;
                        break;
                }
                cm_debug("llm request to '%s': attempt %d of %d, %zu bytes",
                         llm->log_url, n + 1, llm->max_retries + 1, req_len);
                attempts++;
                res = attempt_once(llm, req, req_len, attempt_timeout, &at,
                                   &summary, why, sizeof(why));
                if (res != ATTEMPT_RETRY || n >= llm->max_retries)
                        break;
                wait_ms = backoff_ms(llm, n);
                if (at.retry_after_ms > wait_ms)
                        wait_ms = at.retry_after_ms;
                remaining_ms = (long)((deadline_us - llm_now(llm)) / 1000);
                if (at.retry_after_ms > RETRY_AFTER_MAX_MS ||
                    wait_ms >= remaining_ms) {
                        /* Retrying before the server's time would only earn
                         * another refusal: give up now. */
                        res = ATTEMPT_FAIL;
                        len = strlen(why);
                        cm_errf(why + len, sizeof(why) - len,
                                "; the wait asked for (%ld ms) exceeds the "
                                "budget",
                                wait_ms);
                        break;
                }
                cm_warn("llm attempt %d of %d failed: %s; retrying in %ld ms",
                        n + 1, llm->max_retries + 1, why, wait_ms);
                if (wait_ms > 0)
                        llm->clock.sleep_us(llm->clock.opaque,
                                            (int64_t)wait_ms * 1000);
                llm->stats.retries++;
        }
        if (res != ATTEMPT_OK) {
                if (attempts > 1)
                        cm_errf(errstr, errstr_size, "%s (%d attempts)", why,
                                attempts);
                else
                        cm_errf(errstr, errstr_size, "%s", why);
                goto out;
        }
        *out = summary;
        summary = NULL; /* now owned by the caller */
        ret = 0;
out:
        if (ret == -1)
                llm->stats.failures++;
        if (attempted)
                breaker_record(llm, ret == 0);
        free(summary);
        free(req);
        cm_buf_release(&at.body);
        return ret;
}
