/*
 * cli: what the subcommands of the chatmem CLI share.
 *
 * Each subcommand is one cmd_<name>() that takes its own argv (argv[0] is
 * the subcommand's name), parses its options with getopt_long, loads the
 * configuration with cli_config_load() and returns the process exit
 * status. Output meant for the user goes to stdout; diagnostics go to
 * stderr through cli_error(), library diagnostics through log.h.
 */
#ifndef CM_CLI_H
#define CM_CLI_H

#include <stdio.h>

#include "config.h"
#include "util.h"

/* Exit statuses of the chatmem CLI. */
enum {
        CLI_OK = 0,
        CLI_FAIL = 1,
        CLI_USAGE = 2,
        CLI_TIMEOUT = 3,
};

/* Prints "chatmem: <message>\n" to stderr. Cannot fail. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Fills cfg with the defaults, reads conf_path (NULL: $CHATMEM_CONFIG or
 * none) and the environment, and applies the configured log level.
 * Returns 0, or -1 after printing the reason; cfg must be released with
 * cm_config_release() either way.
 */
int cli_config_load(cm_config_t *cfg, const char *conf_path);

/*
 * Checks that s is a valid user or conversation id. Returns 0, or -1
 * after printing "chatmem: bad <what> '<s>': <reason>".
 */
int cli_check_id(const char *what, const char *s);

/*
 * Appends the whole file at path ("-": stdin) to b. Returns 0, or -1 with
 * the reason in errstr (b then holds what was read).
 */
int cli_read_file(const char *path, cm_buf_t *b, char *errstr,
                  size_t errstr_size);

/* Usage of each subcommand, to fp. */
void usage_send(FILE *fp);
void usage_context(FILE *fp);
void usage_stats(FILE *fp);
void usage_session(FILE *fp);
void usage_tokens(FILE *fp);

/* The subcommands. conf_path is the -c given before the subcommand (NULL
 * when none); a -c given after it wins. Each returns an exit status. */
int cmd_send(int argc, char **argv, const char *conf_path);
int cmd_context(int argc, char **argv, const char *conf_path);
int cmd_stats(int argc, char **argv, const char *conf_path);
int cmd_session(int argc, char **argv, const char *conf_path);
int cmd_tokens(int argc, char **argv, const char *conf_path);

#endif
