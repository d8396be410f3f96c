/*
 * chatmem-bench cost: exact tokens with and without chatmem for
 * conversations of several lengths, and the monthly cost they imply.
 */
#include <string.h>

#include "bench.h"
#include "log.h"

int run_cost(const cm_config_t *cfg, const cm_tokenizer_t *tk,
             const bench_opts_t *o)
{
        const char *p = o->lengths;

        while (*p) {
                char num[16];
                size_t l = strcspn(p, ","), cnt, keep;
                long long n;
                conv_session_t cs;
                cm_context_in_t in;
                cm_context_out_t out;
                int full;
                double reqs, cost_full, cost_cm;

                if (l == 0 || l >= sizeof(num)) {
                        cm_error("bad --lengths '%s'", o->lengths);
                        return 1;
                }
                memcpy(num, p, l);
                num[l] = '\0';
                if (cm_parse_int(num, 1, 10000, &n) == -1) {
                        cm_error("bad --lengths '%s'", o->lengths);
                        return 1;
                }
                p += l + (p[l] == ',');
                cnt = (size_t)n;
                conv_session_init(&cs, cnt, cfg, tk);
                keep = cnt < (size_t)cfg->recent_verbatim
                           ? cnt
                           : (size_t)cfg->recent_verbatim;
                conv_context_in(&cs, cs.msgs + cnt - keep, keep, cfg, tk, &in);
                cm_context_build(&in, &out);
                full = cm_context_full_tokens(&cs.profile, cs.msgs, cnt, tk);
                /* Each of users × per_day messages a day (30 days) sends
                 * one context of a conversation this long. */
                reqs = (double)o->users * (double)o->per_day * 30.0;
                cost_full = reqs * full / 1e6 * o->price;
                cost_cm = reqs * out.tokens / 1e6 * o->price;
                printf("{\"mode\":\"cost\",\"messages\":%zu,\"tokenizer\":"
                       "\"%s\",\"full_tokens\":%d,\"chatmem_tokens\":%d,"
                       "\"saving\":%.3f,\"users\":%lld,\"per_day\":%lld,"
                       "\"price_per_1m\":%.4f,\"monthly_full_usd\":%.0f,"
                       "\"monthly_chatmem_usd\":%.0f}\n",
                       cnt, cm_tokenizer_name(tk), full, out.tokens,
                       full ? 1.0 - (double)out.tokens / full : 0.0, o->users,
                       o->per_day, o->price, cost_full, cost_cm);
                cm_context_out_release(&out);
                conv_session_release(&cs);
        }
        fflush(stdout);
        return 0;
}
