/*
 * bench_tokens: how fast chatmem's tokenizers count and encode.
 *
 *   bench_tokens FILE [MIN_SECONDS]
 *
 * FILE holds documents separated by NUL bytes, each an optional
 * "<category>\x01" then the text. For each BPE encoding and each of
 * "count" (cm_tokenizer_count) and "encode" (cm_tokenizer_encode), every
 * document is tokenized on its own, over and over until MIN_SECONDS
 * (default 1) have passed; the best of 3 such runs is printed as
 *   <encoding> <mode> <category|all> <bytes> <tokens> <seconds>
 * per pass, for all documents and for each category (count only).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokens.h"
#include "util.h"

typedef struct doc {
        const char *text;
        size_t len;
        const char *category;
} doc_t;

/* Seconds one pass over docs (those of category, if not NULL) takes, the
 * best of 3 runs of at least min_s each; *tokens is set per pass. */
static double bench(const cm_tokenizer_t *tk, const doc_t *docs, size_t cnt,
                    const char *category, int encode, double min_s,
                    size_t *bytes, size_t *tokens)
{
        double best = 0;
        int run;

        for (run = 0; run < 3; run++) {
                int64_t t0 = cm_mono_us();
                size_t passes = 0;
                double s;

                do {
                        size_t i;

                        *bytes = *tokens = 0;
                        for (i = 0; i < cnt; i++) {
                                if (category &&
                                    strcmp(docs[i].category, category))
                                        continue;
                                if (encode) {
                                        uint32_t *ids = NULL;
                                        size_t n = 0;

                                        cm_tokenizer_encode(tk, docs[i].text,
                                                            docs[i].len, &ids,
                                                            &n);
                                        *tokens += n;
                                        free(ids);
                                } else {
                                        *tokens += (size_t)cm_tokenizer_count(
                                            tk, docs[i].text, docs[i].len);
                                }
                                *bytes += docs[i].len;
                        }
                        passes++;
                        s = (cm_mono_us() - t0) / 1e6;
                } while (s < min_s);
                s /= (double)passes;
                if (run == 0 || s < best)
                        best = s;
        }
        return best;
}

int main(int argc, char **argv)
{
        static const char *const names[] = {"cl100k_base", "o200k_base"};
        const char *categories[64];
        size_t cat_cnt = 0;
        double min_s = argc > 2 ? strtod(argv[2], NULL) : 1.0;
        FILE *fp;
        cm_buf_t data;
        doc_t *docs = NULL;
        size_t cnt = 0, cap = 0, at = 0, i, e, c;
        char chunk[65536];
        size_t n;

        if (argc < 2) {
                fprintf(stderr, "usage: %s FILE [MIN_SECONDS]\n", argv[0]);
                return 2;
        }
        fp = fopen(argv[1], "rb");
        if (!fp) {
                perror(argv[1]);
                return 1;
        }
        cm_buf_init(&data);
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
                cm_buf_add(&data, chunk, n);
        fclose(fp);

        while (at < data.len) {
                char *start = data.buf + at;
                char *end = memchr(start, '\0', data.len - at);
                char *sep;
                doc_t d = {start, 0, "all"};

                if (!end)
                        end = data.buf + data.len;
                sep = memchr(start, '\x01', (size_t)(end - start));
                if (sep) {
                        *sep = '\0';
                        d.category = start;
                        d.text = sep + 1;
                }
                d.len = (size_t)(end - d.text);
                at = (size_t)(end - data.buf) + 1;
                if (cnt == cap) {
                        cap = cap ? cap * 2 : 256;
                        docs = cm_realloc(docs, cap * sizeof(*docs));
                }
                docs[cnt++] = d;
                for (c = 0; c < cat_cnt; c++)
                        if (!strcmp(categories[c], d.category))
                                break;
                if (c == cat_cnt && cat_cnt < 64)
                        categories[cat_cnt++] = d.category;
        }

        for (e = 0; e < 2; e++) {
                const cm_tokenizer_t *tk = NULL;
                char errstr[512];
                size_t bytes, tokens;
                double s;

                if (cm_tokenizer_get(names[e], &tk, errstr, sizeof(errstr))) {
                        fprintf(stderr, "%s\n", errstr);
                        return 1;
                }
                for (i = 0; i < 2; i++) {
                        s = bench(tk, docs, cnt, NULL, (int)i, min_s, &bytes,
                                  &tokens);
                        printf("%s %s all %zu %zu %.6f\n", names[e],
                               i ? "encode" : "count", bytes, tokens, s);
                }
                for (c = 0; c < cat_cnt; c++) {
                        s = bench(tk, docs, cnt, categories[c], 0, min_s / 4,
                                  &bytes, &tokens);
                        printf("%s count %s %zu %zu %.6f\n", names[e],
                               categories[c], bytes, tokens, s);
                }
        }
        free(docs);
        cm_buf_release(&data);
        return 0;
}
