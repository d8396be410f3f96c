#include "daemon.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

volatile sig_atomic_t cm_stop = 0;

static void on_signal(int sig)
{
        (void)sig;
        if (cm_stop)
                _exit(1);
        cm_stop = 1;
}

void cm_daemon_signals(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

static void usage(FILE *fp, const char *name, const char *summary)
{
        fprintf(fp,
                "usage: %s [-c FILE]\n%s\n\n"
                "  -c FILE  chatmem.conf to read (default: $CHATMEM_CONFIG, "
                "else none)\n"
                "  -h       this text\n\n"
                "Every setting can also come from the environment "
                "(CHATMEM_KAFKA_BROKERS,\nCHATMEM_REDIS_URL, ...).\n",
                name, summary);
}

int cm_daemon_init(int argc, char **argv, const char *name, const char *summary,
                   cm_config_t *cfg, int *status)
{
        const char *conf_path = NULL;
        char errstr[512];
        int opt;

        cm_log_init(name);
        while ((opt = getopt(argc, argv, "c:h")) != -1) {
                switch (opt) {
                case 'c':
                        conf_path = optarg;
                        break;
                case 'h':
                        usage(stdout, name, summary);
                        *status = 0;
                        return 1;
                default:
                        usage(stderr, name, summary);
                        *status = 2;
                        return 1;
                }
        }
        if (optind < argc) {
                usage(stderr, name, summary);
                *status = 2;
                return 1;
        }
        if (cm_config_load(cfg, conf_path, errstr, sizeof(errstr)) == -1) {
                cm_error("%s", errstr);
                *status = 1;
                return 1;
        }
        cm_log_level_parse(cfg->log_level, &cm_log_level);
        cm_log_format_parse(cfg->log_format, &cm_log_format);
        cm_daemon_signals();
        *status = 0;
        return 0;
}
