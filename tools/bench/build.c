/*
 * chatmem-bench build: in-process, what chatmem-context does for one
 * request of a 50-message session: decode the stored messages Redis hands
 * it, build the context, encode the reply. Prints µs per build, with and
 * without the decoding and encoding around it.
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "daemon.h"
#include "log.h"

#define SESSION_MSGS 50
#define RECENT_MAX   16

/* The stored entries of cs's messages as Redis holds them: the append
 * script puts {"seq":N in front of cm_stored_tail_encode() (codec.h).
 * Returns a heap array of heap strings. */
static char **stored_entries(const conv_session_t *cs)
{
        char **stored = cm_calloc(cs->cnt, sizeof(*stored));
        size_t i;

        for (i = 0; i < cs->cnt; i++) {
                char *tail = cm_stored_tail_encode(&cs->msgs[i], "e");
                cm_buf_t b;

                cm_buf_init(&b);
                cm_buf_addf(&b, "{\"seq\":%zu%s", i + 1, tail);
                stored[i] = cm_buf_detach(&b, NULL);
                free(tail);
        }
        return stored;
}

int run_build(const cm_config_t *cfg, const cm_tokenizer_t *tk,
              const bench_opts_t *o)
{
        const size_t cnt = SESSION_MSGS;
        conv_session_t cs;
        char **stored = NULL;
        size_t i, recent = (size_t)cfg->recent_verbatim;
        long long it, tokens = 0;
        int64_t t0, t_build = 0, t_all = 0;

        conv_session_init(&cs, cnt, cfg, tk);
        stored = stored_entries(&cs);
        fprintf(stderr, "build: %lld builds of a %zu-message session\n",
                o->iterations, cnt);
        for (it = 0; it < o->iterations && !cm_stop; it++) {
                cm_message_t dec[RECENT_MAX];
                size_t n = recent < RECENT_MAX ? recent : RECENT_MAX, j;
                cm_context_in_t in;
                cm_context_out_t out;
                cm_reply_t reply;
                char *json, why[256];
                int64_t t1;

                t0 = cm_mono_us();
                memset(dec, 0, sizeof(dec));
                for (j = 0; j < n; j++) {
                        if (cm_stored_decode(stored[cnt - n + j],
                                             strlen(stored[cnt - n + j]),
                                             &dec[j], why, sizeof(why)) == -1) {
                                cm_error("stored message: %s", why);
                                abort();
                        }
                }
                conv_context_in(&cs, dec, n, cfg, tk, &in);
                t1 = cm_mono_us();
                cm_context_build(&in, &out);
                t_build += cm_mono_us() - t1;
                memset(&reply, 0, sizeof(reply));
                reply.request_id = "r";
                reply.user_id = "sumit";
                reply.conversation_id = "default";
                reply.context = out.text;
                reply.profile = &cs.profile;
                reply.summary = out.summary;
                reply.recent = out.recent;
                reply.recent_cnt = out.recent_cnt;
                reply.meta.tokens = out.tokens;
                reply.meta.full_history_tokens = cm_context_full_tokens_stored(
                    &cs.profile, 0, &dec[n - 1], NULL, tk);
                json = cm_reply_encode(&reply);
                t_all += cm_mono_us() - t0;
                tokens = out.tokens;
                free(json);
                cm_context_out_release(&out);
                for (j = 0; j < n; j++)
                        cm_message_release(&dec[j]);
        }
        printf("{\"mode\":\"build\",\"messages\":%zu,\"iterations\":%lld,"
               "\"tokenizer\":\"%s\",\"context_tokens\":%lld,"
               "\"build_us\":%.2f,\"builds_per_s\":%.0f,"
               "\"decode_build_encode_us\":%.2f,\"per_s\":%.0f}\n",
               cnt, it, cm_tokenizer_name(tk), tokens,
               (double)t_build / (double)it,
               (double)it * 1e6 / (double)(t_build ? t_build : 1),
               (double)t_all / (double)it,
               (double)it * 1e6 / (double)(t_all ? t_all : 1));
        fflush(stdout);
        for (i = 0; i < cnt; i++)
                free(stored[i]);
        free(stored);
        conv_session_release(&cs);
        return 0;
}
