#include "summarize.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"
#include "log.h"
#include "redis.h" /* cm_url_redact */
#include "util.h"

struct cm_summarizer {
        const cm_tokenizer_t *tk;
        int max_tokens;
        cm_llm_t *llm; /* NULL: extractive */
        unsigned long fallbacks;
};

static int parse_temperature(const char *s, double *out)
{
        char *end = NULL;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || v < 0 || v > 2)
                return -1;
        *out = v;
        return 0;
}

cm_summarizer_t *cm_summarizer_new(const cm_config_t *cfg,
                                   const cm_tokenizer_t *tk, char *errstr,
                                   size_t errstr_size)
{
        cm_summarizer_t *sz = cm_calloc(1, sizeof(*sz));
        cm_llm_conf_t lc;

        sz->tk = tk;
        sz->max_tokens = cfg->summary_max_tokens;
        if (!strcmp(cfg->summarizer_kind, "extractive"))
                return sz;
        if (strcmp(cfg->summarizer_kind, "llm")) {
                snprintf(errstr, errstr_size,
                         "summarizer.kind '%s': must be extractive or llm",
                         cfg->summarizer_kind);
                goto fail;
        }
        memset(&lc, 0, sizeof(lc));
        if (parse_temperature(cfg->llm_temperature, &lc.temperature) == -1) {
                snprintf(errstr, errstr_size,
                         "llm.temperature '%s': must be a number from 0 to 2",
                         cfg->llm_temperature);
                goto fail;
        }
        lc.base_url = cfg->llm_base_url;
        lc.model = cfg->llm_model;
        lc.api_key = getenv(cfg->llm_api_key_env);
        lc.timeout_ms = cfg->llm_timeout_ms;
        lc.max_retries = cfg->llm_max_retries;
        lc.backoff_base_ms = 200;
        lc.backoff_max_ms = 5000;
        lc.breaker_failures = cfg->llm_breaker_failures;
        lc.breaker_cooldown_ms = cfg->llm_breaker_cooldown_ms;
        sz->llm = cm_llm_new(&lc, errstr, errstr_size);
        if (!sz->llm)
                goto fail;
        if (!lc.api_key) {
                /* The URL as logs show it: without its user info. */
                char *safe = cm_url_redact(cfg->llm_base_url);

                cm_warn("llm: $%s is not set; calling '%s' without a key",
                        cfg->llm_api_key_env, safe);
                free(safe);
        }
        return sz;
fail:
        cm_summarizer_destroy(sz);
        return NULL;
}

void cm_summarizer_destroy(cm_summarizer_t *sz)
{
        if (!sz)
                return;
        cm_llm_destroy(sz->llm);
        free(sz);
}

char *cm_summarizer_fold(cm_summarizer_t *sz, const char *prev,
                         const cm_message_t *msgs, size_t msg_cnt,
                         int *fallback)
{
        cm_fold_in_t in;
        char errstr[512];
        char *out = NULL;

        *fallback = 0;
        if (sz->llm) {
                if (cm_llm_fold(sz->llm, prev, msgs, msg_cnt, sz->max_tokens,
                                &out, errstr, sizeof(errstr)) == 0 &&
                    out &&
                    cm_tokenizer_count(sz->tk, out, strlen(out)) <=
                        sz->max_tokens)
                        return out;
                if (out)
                        snprintf(errstr, sizeof(errstr),
                                 "summary over %d tokens", sz->max_tokens);
                free(out);
                sz->fallbacks++;
                *fallback = 1;
                cm_warn("llm summary failed (%s); using extractive for this "
                        "fold",
                        errstr);
        }
        memset(&in, 0, sizeof(in));
        in.summary = prev;
        in.msgs = msgs;
        in.msg_cnt = msg_cnt;
        in.max_tokens = sz->max_tokens;
        in.tk = sz->tk;
        return cm_extractive_fold(&in);
}

unsigned long cm_summarizer_fallbacks(const cm_summarizer_t *sz)
{
        return sz->fallbacks;
}
