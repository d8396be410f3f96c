/*
 * chatmem-bench: the load generator behind `make bench`.
 *
 *   chatmem-bench ingest   produce chat events over S sessions, paced so
 *                          the consumers stay within the devbroker's
 *                          retention, and wait until Redis holds them all;
 *                          events/s from the first produce to the last ack
 *   chatmem-bench context  open-loop context requests at a fixed rate,
 *                          latency from the request's scheduled send time
 *                          to the receipt of its reply (log-bucketed
 *                          histogram, corrected for coordinated omission)
 *   chatmem-bench build    in-process: decode a 50-message session, build
 *                          its context, encode the reply; µs per build
 *   chatmem-bench cost     exact tokens with and without chatmem for
 *                          conversations of several lengths, and the
 *                          monthly cost they imply
 *   chatmem-bench archive  the archive's chunk codec in-process (bytes per
 *                          message by chunk size and zstd level), then
 *                          archives of several sizes written to Redis by
 *                          the real fold path: MEMORY USAGE per archived
 *                          message and per 1M sessions
 *
 * Results are JSON lines on stdout; progress goes to stderr. Settings come
 * from chatmem.conf and the environment like every chatmem program
 * (CHATMEM_KAFKA_BROKERS, CHATMEM_REDIS_URL, CHATMEM_KAFKA_PROP_*).
 *
 * This file parses the options and runs the mode; each mode is in its own
 * file (<mode>.c), what they share in bench.h.
 */
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "daemon.h"
#include "log.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: chatmem-bench MODE [options]\n"
                "\n"
                "  ingest   --events N --sessions S [--window W] [--tag T]\n"
                "           [--msgs-min A --msgs-max B] [--wait-summary K]\n"
                "  context  --rate R --duration D --sessions S --tag T\n"
                "           [--reply-topic TOPIC] [--req-prefix P] [--query]\n"
                "           [--warmup W]\n"
                "  build    [--iterations N]\n"
                "  cost     [--lengths 5,10,20,50] [--price USD_PER_1M]\n"
                "           [--users N] [--per-day N]\n"
                "  archive  [--sizes 100,1000,10000] [--samples K] [--tag T]\n"
                "\n"
                "common:    [-c chatmem.conf] [--linger-ms MS] [--timeout S]\n"
                "\n"
                "Results are JSON lines on stdout, progress is on stderr.\n"
                "With --events 0 each session gets between --msgs-min and\n"
                "--msgs-max messages. --window bounds the events produced but\n"
                "not yet in Redis, so that the consumers stay within the\n"
                "devbroker's retention (about 5 MB per partition).\n"
                "context --query gives every request a query (recall);\n"
                "--warmup sends at the rate for W seconds before the clock\n"
                "starts and waits for those replies (not recorded).\n");
}

static int opt_int(const char *name, const char *s, long long min,
                   long long max, long long *out)
{
        if (cm_parse_int(s, min, max, out) == -1) {
                fprintf(stderr,
                        "chatmem-bench: %s: '%s' is not a number in "
                        "[%lld, %lld]\n",
                        name, s, min, max);
                return -1;
        }
        return 0;
}

void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
        atomic_llong *failed = opaque;

        (void)rk;
        if (m->err) {
                if (atomic_fetch_add(failed, 1) < 5)
                        cm_error("delivery failed: %s",
                                 rd_kafka_err2str(m->err));
        }
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"events", required_argument, NULL, 'e'},
            {"sessions", required_argument, NULL, 's'},
            {"msgs-min", required_argument, NULL, 'm'},
            {"msgs-max", required_argument, NULL, 'M'},
            {"window", required_argument, NULL, 'w'},
            {"rate", required_argument, NULL, 'r'},
            {"duration", required_argument, NULL, 'd'},
            {"warmup", required_argument, NULL, 'U'},
            {"timeout", required_argument, NULL, 't'},
            {"iterations", required_argument, NULL, 'i'},
            {"linger-ms", required_argument, NULL, 'l'},
            {"wait-summary", required_argument, NULL, 'W'},
            {"reply-topic", required_argument, NULL, 'R'},
            {"tag", required_argument, NULL, 'T'},
            {"req-prefix", required_argument, NULL, 'P'},
            {"query", no_argument, NULL, 'Q'},
            {"lengths", required_argument, NULL, 'L'},
            {"price", required_argument, NULL, 'p'},
            {"users", required_argument, NULL, 'u'},
            {"per-day", required_argument, NULL, 'D'},
            {"sizes", required_argument, NULL, 'S'},
            {"samples", required_argument, NULL, 'k'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        bench_opts_t o = {
            .tag = "b",
            .req_prefix = "q",
            .events = 10000,
            .sessions = 1000,
            .msgs_min = 20,
            .msgs_max = 50,
            .window = 50000,
            .rate = 1000,
            .duration = 5,
            .timeout = 120,
            .iterations = 20000,
            .linger_ms = -1,
            .lengths = "5,10,20,50",
            .price = 0.15,
            .users = 1000000,
            .per_day = 10,
            .sizes = "100,1000,10000",
            .samples = 3,
        };
        cm_config_t cfg;
        const cm_tokenizer_t *tk = NULL;
        const char *mode;
        char errstr[512], *end = NULL;
        int opt, ret = 2;

        cm_log_init("chatmem-bench");
        cm_config_init(&cfg);
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        mode = argv[1];
        argc--;
        argv++;
        while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
                int bad = 0;

                switch (opt) {
                case 'c':
                        o.conf_path = optarg;
                        break;
                case 'e':
                        bad = opt_int("--events", optarg, 0, 1LL << 40,
                                      &o.events);
                        break;
                case 's':
                        bad = opt_int("--sessions", optarg, 1, 100000000,
                                      &o.sessions);
                        break;
                case 'm':
                        bad = opt_int("--msgs-min", optarg, 1, 100000,
                                      &o.msgs_min);
                        break;
                case 'M':
                        bad = opt_int("--msgs-max", optarg, 1, 100000,
                                      &o.msgs_max);
                        break;
                case 'w':
                        bad = opt_int("--window", optarg, 1, 1LL << 40,
                                      &o.window);
                        break;
                case 'r':
                        bad = opt_int("--rate", optarg, 1, 10000000, &o.rate);
                        break;
                case 'd':
                        bad =
                            opt_int("--duration", optarg, 1, 3600, &o.duration);
                        break;
                case 'U':
                        bad = opt_int("--warmup", optarg, 0, 600, &o.warmup);
                        break;
                case 't':
                        bad =
                            opt_int("--timeout", optarg, 1, 36000, &o.timeout);
                        break;
                case 'i':
                        bad = opt_int("--iterations", optarg, 1, 1LL << 40,
                                      &o.iterations);
                        break;
                case 'l':
                        bad = opt_int("--linger-ms", optarg, 0, 10000,
                                      &o.linger_ms);
                        break;
                case 'W':
                        bad = opt_int("--wait-summary", optarg, 0, 100000000,
                                      &o.wait_summary);
                        break;
                case 'R':
                        o.reply_topic = optarg;
                        break;
                case 'T':
                        o.tag = optarg;
                        break;
                case 'P':
                        o.req_prefix = optarg;
                        break;
                case 'Q':
                        o.query = 1;
                        break;
                case 'L':
                        o.lengths = optarg;
                        break;
                case 'p':
                        o.price = strtod(optarg, &end);
                        bad = !end || *end || o.price < 0;
                        if (bad)
                                fprintf(stderr,
                                        "chatmem-bench: --price: "
                                        "'%s' is not a price\n",
                                        optarg);
                        break;
                case 'u':
                        bad =
                            opt_int("--users", optarg, 1, 1LL << 40, &o.users);
                        break;
                case 'D':
                        bad =
                            opt_int("--per-day", optarg, 1, 100000, &o.per_day);
                        break;
                case 'S':
                        o.sizes = optarg;
                        break;
                case 'k':
                        bad = opt_int("--samples", optarg, 1, 1000000,
                                      &o.samples);
                        break;
                case 'h':
                        usage(stdout);
                        ret = 0;
                        goto out;
                default:
                        usage(stderr);
                        goto out;
                }
                if (bad)
                        goto out;
        }
        if (o.msgs_max < o.msgs_min) {
                fprintf(stderr, "chatmem-bench: --msgs-max < --msgs-min\n");
                goto out;
        }
        ret = 1;
        if (cm_config_load(&cfg, o.conf_path, errstr, sizeof(errstr)) == -1) {
                fprintf(stderr, "chatmem-bench: %s\n", errstr);
                goto out;
        }
        cm_log_level_parse(cfg.log_level, &cm_log_level);
        if (o.linger_ms >= 0) {
                char v[32];

                snprintf(v, sizeof(v), "%lld", o.linger_ms);
                if (cm_config_set(&cfg, "kafka.linger_ms", v, errstr,
                                  sizeof(errstr)) == -1) {
                        fprintf(stderr, "chatmem-bench: %s\n", errstr);
                        goto out;
                }
        }
        cm_daemon_signals();
        if (!strcmp(mode, "ingest")) {
                ret = run_ingest(&cfg, &o);
        } else if (!strcmp(mode, "context")) {
                ret = run_context(&cfg, &o);
        } else if (!strcmp(mode, "archive")) {
                ret = run_archive(&cfg, &o);
        } else if (!strcmp(mode, "build") || !strcmp(mode, "cost")) {
                if (cm_tokenizer_get(cfg.tokenizer, &tk, errstr,
                                     sizeof(errstr)) == -1) {
                        fprintf(stderr, "chatmem-bench: %s\n", errstr);
                        goto out;
                }
                ret = !strcmp(mode, "build") ? run_build(&cfg, tk, &o)
                                             : run_cost(&cfg, tk, &o);
        } else {
                fprintf(stderr, "chatmem-bench: unknown mode '%s'\n", mode);
                usage(stderr);
                ret = 2;
        }
out:
        cm_config_release(&cfg);
        return ret;
}
