/*
 * chatmem tokens: the exact token count of stdin, or its token ids, as
 * chatmem counts them (common/tokens.h).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "tokens.h"
#include "util.h"

#define DEFAULT_ENCODING "cl100k_base"

void usage_tokens(FILE *fp)
{
        fprintf(fp,
                "usage: chatmem tokens [--encoding NAME] [--ids]\n"
                "\n"
                "Reads stdin to its end and prints its number of tokens, or "
                "its token ids on\none line, space-separated. The ids are "
                "OpenAI tiktoken's (as js-tiktoken\ngives them); special "
                "tokens such as <|endoftext|> count as plain text, and\n"
                "each ill-formed UTF-8 sequence counts as U+FFFD.\n"
                "\n"
                "  -e, --encoding NAME  cl100k_base (default), o200k_base, "
                "or estimate\n"
                "                       (chars/4, no ids)\n"
                "  -i, --ids            print the ids instead of the count\n"
                "  -h, --help           this text\n");
}

/* Appends the decimal digits of v. */
static void add_u32(cm_buf_t *b, uint32_t v)
{
        char digits[10];
        size_t n = 0;

        do {
                digits[sizeof(digits) - ++n] = (char)('0' + v % 10);
                v /= 10;
        } while (v);
        cm_buf_add(b, digits + sizeof(digits) - n, n);
}

static int print_ids(const cm_tokenizer_t *tk, const cm_buf_t *in)
{
        uint32_t *ids = NULL;
        size_t cnt = 0, i;
        cm_buf_t out;
        int rc = CLI_OK;

        if (cm_tokenizer_encode(tk, in->buf, in->len, &ids, &cnt) == -1) {
                cli_error("tokenizer '%s' has no token ids",
                          cm_tokenizer_name(tk));
                return CLI_USAGE;
        }
        cm_buf_init(&out);
        for (i = 0; i < cnt; i++) {
                if (i > 0)
                        cm_buf_add(&out, " ", 1);
                add_u32(&out, ids[i]);
        }
        cm_buf_add(&out, "\n", 1);
        if (fwrite(out.buf, 1, out.len, stdout) != out.len)
                rc = CLI_FAIL;
        cm_buf_release(&out);
        free(ids);
        return rc;
}

int cmd_tokens(int argc, char **argv, const char *conf_path)
{
        static const struct option longopts[] = {
            {"encoding", required_argument, NULL, 'e'},
            {"ids", no_argument, NULL, 'i'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *encoding = DEFAULT_ENCODING;
        const cm_tokenizer_t *tk = NULL;
        char errstr[512];
        cm_buf_t in;
        int ids = 0;
        int rc;
        int opt;

        (void)conf_path; /* counting needs no configuration */
        while ((opt = getopt_long(argc, argv, "e:ih", longopts, NULL)) != -1) {
                switch (opt) {
                case 'e':
                        encoding = optarg;
                        break;
                case 'i':
                        ids = 1;
                        break;
                case 'h':
                        usage_tokens(stdout);
                        return CLI_OK;
                default:
                        usage_tokens(stderr);
                        return CLI_USAGE;
                }
        }
        if (optind < argc) {
                cli_error("unexpected argument '%s'", argv[optind]);
                usage_tokens(stderr);
                return CLI_USAGE;
        }
        if (cm_tokenizer_get(encoding, &tk, errstr, sizeof(errstr)) == -1) {
                cli_error("%s", errstr);
                return CLI_FAIL;
        }

        cm_buf_init(&in);
        if (cli_read_file("-", &in, errstr, sizeof(errstr)) == -1) {
                cli_error("%s", errstr);
                rc = CLI_FAIL;
                goto out;
        }
        if (ids) {
                rc = print_ids(tk, &in);
        } else {
                printf("%d\n", cm_tokenizer_count(tk, in.buf, in.len));
                rc = CLI_OK;
        }
        if (fflush(stdout) != 0)
                rc = CLI_FAIL;
out:
        cm_buf_release(&in);
        return rc;
}
