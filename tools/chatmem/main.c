/*
 * chatmem: the operator and developer CLI.
 *
 *   chatmem [-c FILE] send      produce chat events (one, or JSON lines)
 *   chatmem [-c FILE] context   ask chatmem-context for a context, print it
 *   chatmem [-c FILE] stats     active sessions, whether Redis is reachable
 *   chatmem [-c FILE] session   show, dump the archive of, or delete one
 *                               session
 *   chatmem tokens              count the tokens of stdin (or list them)
 *
 * Exit status: 0 ok, 1 failure, 2 usage, 3 timeout.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "config.h"
#include "log.h"

typedef struct command {
        const char *name;
        int (*run)(int argc, char **argv, const char *conf_path);
        void (*usage)(FILE *fp);
        const char *summary;
} command_t;

static const command_t commands[] = {
    {"send", cmd_send, usage_send, "produce chat events to the events topic"},
    {"context", cmd_context, usage_context,
     "request the context of a session and print the reply"},
    {"stats", cmd_stats, usage_stats,
     "active sessions and whether the cache (Redis) is reachable"},
    {"session", cmd_session, usage_session,
     "show, dump the archive of, or delete one session in Redis"},
    {"tokens", cmd_tokens, usage_tokens,
     "count the tokens of stdin exactly, or print their ids"},
};

#define COMMAND_CNT (sizeof(commands) / sizeof(commands[0]))

void cli_error(const char *fmt, ...)
{
        char msg[2048];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        fprintf(stderr, "chatmem: %s\n", msg);
}

int cli_config_load(cm_config_t *cfg, const char *conf_path)
{
        char errstr[512];

        cm_config_init(cfg);
        if (cm_config_load(cfg, conf_path, errstr, sizeof(errstr)) == -1) {
                cli_error("%s", errstr);
                return -1;
        }
        /* A command-line tool speaks through its output: the workers'
         * default "info" would add connection chatter to every command, so
         * the CLI logs warnings and errors unless a level is set
         * explicitly. */
        if (getenv("CHATMEM_LOG_LEVEL") || strcmp(cfg->log_level, "info"))
                cm_log_level_parse(cfg->log_level, &cm_log_level);
        else
                cm_log_level = CM_LOG_WARN;
        return 0;
}

int cli_check_id(const char *what, const char *s)
{
        char why[256];

        if (cm_id_check(s, strlen(s), 0, why, sizeof(why)) == -1) {
                cli_error("bad %s '%s': %s", what, s, why);
                return -1;
        }
        return 0;
}

int cli_read_file(const char *path, cm_buf_t *b, char *errstr,
                  size_t errstr_size)
{
        int is_stdin = !strcmp(path, "-");
        FILE *fp = is_stdin ? stdin : fopen(path, "rb");
        char chunk[65536];
        size_t n;
        int ret = -1;

        if (!fp) {
                snprintf(errstr, errstr_size, "cannot open '%s': %s", path,
                         strerror(errno));
                return -1;
        }
        while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
                cm_buf_add(b, chunk, n);
        if (ferror(fp)) {
                if (is_stdin)
                        snprintf(errstr, errstr_size, "cannot read stdin: %s",
                                 strerror(errno));
                else
                        snprintf(errstr, errstr_size, "cannot read '%s': %s",
                                 path, strerror(errno));
                goto out;
        }
        ret = 0;
out:
        if (!is_stdin)
                fclose(fp);
        return ret;
}

static void usage(FILE *fp)
{
        size_t i;

        fprintf(fp, "usage: chatmem [-c FILE] COMMAND [ARGS...]\n"
                    "\n"
                    "Operator and developer CLI of chatmem.\n"
                    "\n"
                    "Commands:\n");
        for (i = 0; i < COMMAND_CNT; i++)
                fprintf(fp, "  %-9s %s\n", commands[i].name,
                        commands[i].summary);
        fprintf(fp, "  help      this text, or 'chatmem help COMMAND'\n"
                    "\n"
                    "Options:\n"
                    "  -c, --config FILE  chatmem.conf to read (default: "
                    "$CHATMEM_CONFIG, else none)\n"
                    "  -h, --help         this text\n"
                    "\n"
                    "Every setting can also come from the environment "
                    "(CHATMEM_KAFKA_BROKERS,\nCHATMEM_REDIS_URL, ...).\n"
                    "Exit status: 0 ok, 1 failure, 2 usage, 3 timeout.\n");
}

static const command_t *command_find(const char *name)
{
        size_t i;

        for (i = 0; i < COMMAND_CNT; i++)
                if (!strcmp(commands[i].name, name))
                        return &commands[i];
        return NULL;
}

/* chatmem help [COMMAND] */
static int help(int argc, char **argv)
{
        const command_t *cmd;

        if (argc < 2) {
                usage(stdout);
                return CLI_OK;
        }
        cmd = command_find(argv[1]);
        if (!cmd) {
                cli_error("unknown command '%s'", argv[1]);
                usage(stderr);
                return CLI_USAGE;
        }
        cmd->usage(stdout);
        return CLI_OK;
}

int main(int argc, char **argv)
{
        static const struct option longopts[] = {
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *conf_path = NULL;
        const command_t *cmd;
        char prog[32];
        int opt;

        cm_log_init("chatmem");
        /* '+': stop at the command name; its options are its own. */
        while ((opt = getopt_long(argc, argv, "+c:h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        conf_path = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return CLI_OK;
                default:
                        usage(stderr);
                        return CLI_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return CLI_USAGE;
        }
        argc -= optind;
        argv += optind;
        optind = 0; /* glibc: start over for the command's own options */
        if (!strcmp(argv[0], "help"))
                return help(argc, argv);
        cmd = command_find(argv[0]);
        if (!cmd) {
                cli_error("unknown command '%s'", argv[0]);
                usage(stderr);
                return CLI_USAGE;
        }
        /* getopt_long names argv[0] in its messages. */
        snprintf(prog, sizeof(prog), "chatmem %s", cmd->name);
        argv[0] = prog;
        return cmd->run(argc, argv, conf_path);
}
