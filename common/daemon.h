/*
 * daemon: the start of every chatmem worker's life, and its stop signal.
 *
 * Signal handlers only set cm_stop; loops poll with timeouts of at most
 * 100 ms and leave when it is set. A second SIGTERM/SIGINT exits at once.
 */
#ifndef CM_DAEMON_H
#define CM_DAEMON_H

#include <signal.h>

#include "config.h"

/* Set by the SIGTERM/SIGINT handler installed by cm_daemon_signals(). */
extern volatile sig_atomic_t cm_stop;

/* Installs SIGTERM/SIGINT handlers that set cm_stop; a second signal exits
 * at once with status 1. Ignores SIGPIPE. Cannot fail. */
void cm_daemon_signals(void);

/*
 * Parses the command line of a worker ([-c FILE] [-h]), loads the config
 * into cfg (already cm_config_init'ed; see config.h for the environment),
 * sets the log level and installs the signal handlers. summary is the
 * one-line description printed by -h.
 * Returns 0 when the worker is to run, or 1 when it is to exit at once
 * with *status (0 after -h, 1 on a config error, 2 on bad usage), having
 * said why.
 */
int cm_daemon_init(int argc, char **argv, const char *name, const char *summary,
                   cm_config_t *cfg, int *status);

#endif
