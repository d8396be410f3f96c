/*
 * chatmem-devbroker: a local Kafka-protocol broker for development and
 * tests only.
 *
 * It hosts librdkafka's mock cluster (rdkafka_mock.h) in this process: a
 * real Kafka wire protocol with consumer groups on loopback, but in memory,
 * not durable, with a fixed retention of about 5 MB per partition. It
 * creates chatmem's topics, prints the bootstrap address on stdout, writes
 * it to --bootstrap-file, and runs until SIGTERM or SIGINT.
 *
 * Fault injection for tests (-C FILE): whenever FILE appears (write it
 * elsewhere and rename it there), its lines are applied, then FILE is
 * renamed to FILE.done, which tells the test that the faults are in place.
 * A FILE present at start is applied before the bootstrap address is
 * published. ERROR is a librdkafka error name (TOPIC_AUTHORIZATION_FAILED,
 * NOT_LEADER_FOR_PARTITION, NO_ERROR...):
 *   topic-error TOPIC ERROR   metadata requests for TOPIC answer ERROR
 *                             (NO_ERROR clears it)
 *   produce-errors N ERROR    the next N produce requests, from any
 *                             client, fail with ERROR (N = 0: clear the
 *                             errors still pending)
 *
 * Production runs on a real Kafka or Redpanda cluster.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "config.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

/* The Kafka protocol API key of Produce requests. */
#define PRODUCE_API_KEY 0

static void usage(FILE *fp)
{
        fprintf(fp,
                "usage: chatmem-devbroker [-c FILE] [-p PARTITIONS] "
                "[-b BROKERS] [-f BOOTSTRAP_FILE]\n"
                "\n"
                "A local Kafka-protocol broker (librdkafka's mock cluster) "
                "for development\nand tests only: in memory, not durable.\n"
                "\n"
                "  -c FILE        chatmem.conf to read the topic names from\n"
                "  -p PARTITIONS  partitions per topic (default 8)\n"
                "  -b BROKERS     number of mock brokers (default 1)\n"
                "  -f FILE        also write the bootstrap address to FILE\n"
                "  -C FILE        fault injection commands (tests only; see "
                "the source)\n");
}

/* The error code of a librdkafka error name ("TOPIC_AUTHORIZATION_FAILED",
 * "NO_ERROR"). Returns 0, or -1 when unknown. */
static int err_by_name(const char *name, rd_kafka_resp_err_t *out)
{
        const struct rd_kafka_err_desc *descs;
        size_t cnt, i;

        rd_kafka_get_err_descs(&descs, &cnt);
        for (i = 0; i < cnt; i++) {
                if (descs[i].name && !strcmp(descs[i].name, name)) {
                        *out = descs[i].code;
                        return 0;
                }
        }
        return -1;
}

/* Applies the commands of path if it exists, then renames it to
 * path.done. */
static void apply_faults(rd_kafka_mock_cluster_t *mcluster, const char *path)
{
        char line[1024], topic[256], name[128], done[4096];
        FILE *fp = fopen(path, "r");

        if (!fp)
                return;
        while (fgets(line, sizeof(line), fp)) {
                rd_kafka_resp_err_t err;
                int n;

                line[strcspn(line, "\n")] = '\0';
                if (!line[0] || line[0] == '#')
                        continue;
                if (sscanf(line, "topic-error %255s %127s", topic, name) == 2 &&
                    err_by_name(name, &err) == 0) {
                        rd_kafka_mock_topic_set_error(mcluster, topic, err);
                        cm_info("topic '%s' now answers metadata with %s",
                                topic, name);
                } else if (sscanf(line, "produce-errors %d %127s", &n, name) ==
                               2 &&
                           n >= 0 && n <= 10000000 &&
                           err_by_name(name, &err) == 0) {
                        rd_kafka_resp_err_t *errs =
                            cm_calloc((size_t)n + 1, sizeof(*errs));
                        int i;

                        for (i = 0; i < n; i++)
                                errs[i] = err;
                        rd_kafka_mock_clear_request_errors(mcluster,
                                                           PRODUCE_API_KEY);
                        rd_kafka_mock_push_request_errors_array(
                            mcluster, PRODUCE_API_KEY, (size_t)n, errs);
                        free(errs);
                        cm_info("the next %d produce requests fail with %s", n,
                                name);
                } else {
                        cm_error("fault file: cannot apply '%s'", line);
                }
        }
        fclose(fp);
        snprintf(done, sizeof(done), "%s.done", path);
        if (rename(path, done) != 0)
                cm_error("cannot rename '%s': %m", path);
}

/* Writes the address to path atomically (tmp file + rename), so that a
 * waiting script never reads half of it. */
static int write_bootstrap(const char *path, const char *addr)
{
        char tmp[4096];
        FILE *fp;

        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
        fp = fopen(tmp, "w");
        if (!fp) {
                cm_error("cannot write '%s': %m", tmp);
                return -1;
        }
        fprintf(fp, "%s\n", addr);
        if (fclose(fp) != 0 || rename(tmp, path) != 0) {
                cm_error("cannot write '%s': %m", path);
                unlink(tmp);
                return -1;
        }
        return 0;
}

int main(int argc, char **argv)
{
        cm_config_t cfg;
        const char *conf_path = NULL, *bootstrap_file = NULL,
                   *fault_file = NULL;
        long long partitions = 8, brokers = 1;
        rd_kafka_conf_t *conf = NULL;
        rd_kafka_t *rk = NULL;
        rd_kafka_mock_cluster_t *mcluster = NULL;
        char errstr[512];
        const char *topics[6];
        int opt, i, ret = 1;

        cm_log_init("chatmem-devbroker");
        cm_config_init(&cfg);
        while ((opt = getopt(argc, argv, "c:p:b:f:C:h")) != -1) {
                switch (opt) {
                case 'c':
                        conf_path = optarg;
                        break;
                case 'p':
                        if (cm_parse_int(optarg, 1, 1000, &partitions) == -1) {
                                fprintf(stderr, "bad partition count '%s'\n",
                                        optarg);
                                goto out;
                        }
                        break;
                case 'b':
                        if (cm_parse_int(optarg, 1, 16, &brokers) == -1) {
                                fprintf(stderr, "bad broker count '%s'\n",
                                        optarg);
                                goto out;
                        }
                        break;
                case 'f':
                        bootstrap_file = optarg;
                        break;
                case 'C':
                        fault_file = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        ret = 0;
                        goto out;
                default:
                        usage(stderr);
                        ret = 2;
                        goto out;
                }
        }
        if (cm_config_load(&cfg, conf_path, errstr, sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                goto out;
        }
        cm_log_level_parse(cfg.log_level, &cm_log_level);
        cm_daemon_signals();

        /* The rd_kafka_t only anchors the cluster; it talks to nothing. */
        conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
        rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                cm_error("cannot create kafka handle: %s", errstr);
                goto out;
        }
        conf = NULL; /* now owned by rk */
        mcluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mcluster) {
                cm_error("cannot create the mock cluster");
                goto out;
        }
        topics[0] = cfg.topic_events;
        topics[1] = cfg.topic_compaction;
        topics[2] = cfg.topic_dlq;
        topics[3] = cfg.topic_requests;
        topics[4] = cfg.topic_replies;
        topics[5] = cfg.topic_prebuilt;
        for (i = 0; i < 6; i++) {
                rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
                    mcluster, topics[i], (int)partitions, 1);

                if (err) {
                        cm_error("cannot create topic '%s': %s", topics[i],
                                 rd_kafka_err2str(err));
                        goto out;
                }
        }
        if (fault_file)
                apply_faults(mcluster, fault_file);
        if (bootstrap_file &&
            write_bootstrap(bootstrap_file,
                            rd_kafka_mock_cluster_bootstraps(mcluster)) == -1)
                goto out;
        printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
        fflush(stdout);
        cm_info("serving %d topic(s) x %lld partition(s) at %s (development "
                "only: in memory, not durable)",
                6, partitions, rd_kafka_mock_cluster_bootstraps(mcluster));

        while (!cm_stop) {
                rd_kafka_poll(rk, 100);
                if (fault_file)
                        apply_faults(mcluster, fault_file);
        }
        cm_info("shutting down");
        ret = 0;
out:
        if (mcluster)
                rd_kafka_mock_cluster_destroy(mcluster);
        if (rk)
                rd_kafka_destroy(rk);
        if (conf)
                rd_kafka_conf_destroy(conf);
        cm_config_release(&cfg);
        return ret;
}
