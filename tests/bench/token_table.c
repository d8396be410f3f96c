/*
 * token_table: how many tokens chatmem's context saves against sending the
 * whole history, on the seed-style conversation.
 *
 *   token_table EVENTS.jsonl [ENCODING]
 *
 * EVENTS.jsonl holds chat events, one a line (tests/seed50.py prints them;
 * `make token-table` runs it). For N = 5, 10, 20 and 50 it takes the first
 * N messages and prints, counted exactly with ENCODING (default
 * cl100k_base):
 *   - the full history: the profile lines, "Recent Messages:" and every
 *     message line (metadata.full_history_tokens);
 *   - chatmem's context: the profile, the summary of the messages older
 *     than the last 3 (one extractive fold, summary_max_tokens 300) and
 *     the last 3 messages verbatim, built within the default max_tokens
 *     (2000) (metadata.tokens).
 * The profile is what cm_profile_extract finds in the user messages, the
 * newest statement winning, interests merged. Exit status: 0, or 1 when
 * the events cannot be read or the tokenizer cannot be loaded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "context.h"
#include "profile.h"
#include "summarize.h"
#include "tokens.h"
#include "util.h"

#define RECENT             3
#define SUMMARY_MAX_TOKENS 300
#define MAX_TOKENS         2000

/* Reads the message events of path into *msgs. Returns the count, or -1
 * after saying why on stderr. */
static long read_events(const char *path, cm_message_t **msgs)
{
        FILE *fp = fopen(path, "r");
        char *line = NULL, why[256];
        size_t cap = 0, cnt = 0, lineno = 0;
        ssize_t len;
        long ret = -1;

        *msgs = NULL;
        if (!fp) {
                fprintf(stderr, "token_table: cannot open '%s'\n", path);
                return -1;
        }
        while ((len = getline(&line, &cap, fp)) > 0) {
                cm_event_t ev;

                lineno++;
                if (cm_event_decode(line, (size_t)len, 1 << 20, &ev, why,
                                    sizeof(why)) == -1) {
                        fprintf(stderr, "token_table: %s:%zu: %s\n", path,
                                lineno, why);
                        goto out;
                }
                if (ev.type == CM_EVENT_MESSAGE) {
                        *msgs = cm_realloc(*msgs, (cnt + 1) * sizeof(**msgs));
                        (*msgs)[cnt++] = ev.msg;
                        memset(&ev.msg, 0, sizeof(ev.msg)); /* now ours */
                }
                cm_event_release(&ev);
        }
        ret = (long)cnt;
out:
        free(line);
        fclose(fp);
        return ret;
}

/* Merges the facts of one user message into profile: a name or role
 * stated replaces the earlier one; interests are added once each. */
static void profile_merge(cm_profile_t *profile, const cm_message_t *msg)
{
        cm_profile_t facts;
        size_t i, j;

        if (msg->role != CM_ROLE_USER)
                return;
        cm_profile_extract(msg->content, msg->content_len, &facts);
        if (facts.name) {
                free(profile->name);
                profile->name = cm_strdup(facts.name);
        }
        if (facts.role) {
                free(profile->role);
                profile->role = cm_strdup(facts.role);
        }
        for (i = 0; i < facts.interest_cnt; i++) {
                for (j = 0; j < profile->interest_cnt; j++) {
                        if (!strcmp(profile->interests[j], facts.interests[i]))
                                break;
                }
                if (j < profile->interest_cnt)
                        continue;
                profile->interests =
                    cm_realloc(profile->interests,
                               (profile->interest_cnt + 1) * sizeof(char *));
                profile->interests[profile->interest_cnt++] =
                    cm_strdup(facts.interests[i]);
        }
        cm_profile_release(&facts);
}

/* Prints one row of the table for the first n messages. */
static void row(const cm_message_t *msgs, size_t n, const cm_tokenizer_t *tk)
{
        cm_profile_t profile;
        cm_fold_in_t fold;
        cm_context_in_t in;
        cm_context_out_t out;
        size_t i, older = n > RECENT ? n - RECENT : 0;
        char *summary;
        int full;

        memset(&profile, 0, sizeof(profile));
        for (i = 0; i < n; i++)
                profile_merge(&profile, &msgs[i]);

        memset(&fold, 0, sizeof(fold));
        fold.msgs = msgs;
        fold.msg_cnt = older;
        fold.max_tokens = SUMMARY_MAX_TOKENS;
        fold.tk = tk;
        summary = older ? cm_extractive_fold(&fold) : cm_strdup("");

        memset(&in, 0, sizeof(in));
        in.profile = &profile;
        in.summary = summary;
        in.msgs = msgs + older;
        in.msg_cnt = n - older;
        in.max_tokens = MAX_TOKENS;
        in.tk = tk;
        cm_context_build(&in, &out);
        full = cm_context_full_tokens(&profile, msgs, n, tk);

        printf("| %8zu | %19d | %14d | %7.1f%% |\n", n, full, out.tokens,
               full ? 100.0 * (full - out.tokens) / full : 0.0);
        cm_context_out_release(&out);
        free(summary);
        cm_profile_release(&profile);
}

int main(int argc, char **argv)
{
        static const size_t sizes[] = {5, 10, 20, 50};
        const char *encoding = argc > 2 ? argv[2] : "cl100k_base";
        const cm_tokenizer_t *tk = NULL;
        cm_message_t *msgs = NULL;
        char errstr[512];
        long cnt = -1;
        size_t i;
        int ret = 1;

        if (argc < 2 || argc > 3) {
                fprintf(stderr, "usage: token_table EVENTS.jsonl "
                                "[ENCODING]\n");
                return 2;
        }
        if (cm_tokenizer_get(encoding, &tk, errstr, sizeof(errstr)) == -1) {
                fprintf(stderr, "token_table: %s\n", errstr);
                goto out;
        }
        cnt = read_events(argv[1], &msgs);
        if (cnt < 0)
                goto out;

        printf("token reduction, %s tokens, exact: full history vs chatmem "
               "(profile + summary + last %d)\n\n",
               cm_tokenizer_name(tk), RECENT);
        printf("| messages | full history tokens | chatmem tokens | "
               "saved %%  |\n");
        printf("|---------:|--------------------:|---------------:|-------"
               "--:|\n");
        for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                if (sizes[i] > (size_t)cnt) {
                        fprintf(stderr,
                                "token_table: only %ld messages in '%s'\n", cnt,
                                argv[1]);
                        goto out;
                }
                row(msgs, sizes[i], tk);
        }
        ret = 0;
out:
        for (i = 0; cnt > 0 && i < (size_t)cnt; i++)
                cm_message_release(&msgs[i]);
        free(msgs);
        return ret;
}
