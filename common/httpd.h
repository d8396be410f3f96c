/*
 * httpd: the operations endpoints of a daemon, over HTTP/1.1
 * (libmicrohttpd, on a thread of its own):
 *
 *   GET /metrics  the registry, in the Prometheus text format 0.0.4;
 *   GET /healthz  200 "ok" while the process runs;
 *   GET /readyz   200 "ready" when the ready callback says so, else 503
 *                 with its reason.
 *
 * Anything else is 404; a method other than GET or HEAD is 405.
 *
 * The handlers run on the server's thread: the registry is thread-safe
 * (metrics.h), and the ready callback must read only what is safe to read
 * from another thread (atomics).
 */
#ifndef CM_HTTPD_H
#define CM_HTTPD_H

#include <stddef.h>

#include "metrics.h"

typedef struct cm_httpd cm_httpd_t;

/* Returns 1 when ready, else 0 with a short reason in why. Called on the
 * server's thread. */
typedef int (*cm_httpd_ready_fn)(void *opaque, char *why, size_t why_size);

/*
 * Splits listen ("host:port", ":port" for every address, "[v6addr]:port")
 * into host (empty for every address) and port. Returns 0, or -1 with the
 * reason in errstr.
 */
int cm_httpd_parse_listen(const char *listen, char *host, size_t host_size,
                          int *port, char *errstr, size_t errstr_size);

/*
 * Starts serving on listen (see cm_httpd_parse_listen) the registry mx and
 * the readiness ready(opaque); both must outlive the server. Returns the
 * server, to stop with cm_httpd_destroy(), or NULL with the reason in
 * errstr (bad address, port in use).
 */
cm_httpd_t *cm_httpd_new(const char *listen, cm_metrics_t *mx,
                         cm_httpd_ready_fn ready, void *opaque, char *errstr,
                         size_t errstr_size);

/* Stops the server: returns once its thread has ended and every
 * connection is closed. h may be NULL. */
void cm_httpd_destroy(cm_httpd_t *h);

#endif
