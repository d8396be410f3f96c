#include "httpd.h"

#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "log.h"
#include "util.h"

#define CONNECTION_LIMIT   32
#define CONNECTION_TIMEOUT 10 /* seconds */

struct cm_httpd {
        struct MHD_Daemon *d;
        cm_metrics_t *mx;
        cm_httpd_ready_fn ready;
        void *opaque;
};

int cm_httpd_parse_listen(const char *listen, char *host, size_t host_size,
                          int *port, char *errstr, size_t errstr_size)
{
        const char *colon, *h = listen;
        size_t hlen;
        long long p;

        if (listen[0] == '[') {
                const char *end = strchr(listen, ']');

                if (!end || end[1] != ':')
                        goto bad;
                h = listen + 1;
                hlen = (size_t)(end - h);
                colon = end + 1;
        } else {
                colon = strrchr(listen, ':');
                if (!colon)
                        goto bad;
                hlen = (size_t)(colon - listen);
                if (memchr(listen, ':', hlen))
                        goto bad; /* an IPv6 address needs brackets */
        }
        if (hlen >= host_size || cm_parse_int(colon + 1, 1, 65535, &p) == -1)
                goto bad;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        *port = (int)p;
        return 0;
bad:
        return cm_errf(errstr, errstr_size,
                       "metrics.listen '%s': must be host:port, :port or "
                       "[ipv6]:port, with a port in 1..65535",
                       listen);
}

static void log_mhd(void *cls, const char *fmt, va_list ap)
{
        char msg[512];
        size_t n;

        (void)cls;
        vsnprintf(msg, sizeof(msg), fmt, ap);
        n = strlen(msg);
        while (n > 0 && msg[n - 1] == '\n')
                msg[--n] = '\0';
        cm_warn("http: %s", msg);
}

/* Queues body (a heap string, owned from here on) with status. */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
                             const char *type, char *body)
{
        struct MHD_Response *r;
        enum MHD_Result ret;

        r = MHD_create_response_from_buffer(strlen(body), body,
                                            MHD_RESPMEM_MUST_FREE);
        if (!r) {
                free(body);
                return MHD_NO;
        }
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
        ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
                              const char *url, const char *method,
                              const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
        static const char *const text = "text/plain; charset=utf-8";
        cm_httpd_t *h = cls;
        char why[256];

        (void)version;
        (void)upload_data;
        (void)upload_data_size;
        (void)con_cls;
        if (strcmp(method, "GET") && strcmp(method, "HEAD"))
                return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, text,
                             cm_strdup("method not allowed\n"));
        if (!strcmp(url, "/metrics"))
                return reply(c, MHD_HTTP_OK,
                             "text/plain; version=0.0.4; charset=utf-8",
                             cm_metrics_render(h->mx));
        if (!strcmp(url, "/healthz"))
                return reply(c, MHD_HTTP_OK, text, cm_strdup("ok\n"));
        if (!strcmp(url, "/readyz")) {
                cm_buf_t b = CM_BUF_INIT;

                why[0] = '\0';
                if (h->ready(h->opaque, why, sizeof(why)))
                        return reply(c, MHD_HTTP_OK, text,
                                     cm_strdup("ready\n"));
                cm_buf_addf(&b, "not ready: %s\n", why);
                return reply(c, MHD_HTTP_SERVICE_UNAVAILABLE, text,
                             cm_buf_detach(&b, NULL));
        }
        return reply(c, MHD_HTTP_NOT_FOUND, text, cm_strdup("not found\n"));
}

cm_httpd_t *cm_httpd_new(const char *listen, cm_metrics_t *mx,
                         cm_httpd_ready_fn ready, void *opaque, char *errstr,
                         size_t errstr_size)
{
        struct addrinfo hints, *ai = NULL;
        cm_httpd_t *h = NULL;
        char host[256], port_s[16];
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
        int port, rc;

        if (cm_httpd_parse_listen(listen, host, sizeof(host), &port, errstr,
                                  errstr_size) == -1)
                goto out;
        snprintf(port_s, sizeof(port_s), "%d", port);
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = host[0] ? AF_UNSPEC : AF_INET;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        rc = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &ai);
        if (rc != 0) {
                cm_errf(errstr, errstr_size, "metrics.listen '%s': %s", listen,
                        gai_strerror(rc));
                goto out;
        }
        if (ai->ai_family == AF_INET6)
                flags |= MHD_USE_IPv6;
        h = cm_calloc(1, sizeof(*h));
        h->mx = mx;
        h->ready = ready;
        h->opaque = opaque;
        h->d = MHD_start_daemon(
            flags, (uint16_t)port, NULL, NULL, handle, h, MHD_OPTION_SOCK_ADDR,
            ai->ai_addr, MHD_OPTION_CONNECTION_LIMIT,
            (unsigned)CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT,
            (unsigned)CONNECTION_TIMEOUT, MHD_OPTION_EXTERNAL_LOGGER, log_mhd,
            NULL, MHD_OPTION_END);
        if (!h->d) {
                cm_errf(errstr, errstr_size,
                        "cannot serve http on '%s' (metrics.listen): address "
                        "in use or not available",
                        listen);
                free(h);
                h = NULL;
        }
out:
        if (ai)
                freeaddrinfo(ai);
        return h;
}

void cm_httpd_destroy(cm_httpd_t *h)
{
        if (!h)
                return;
        MHD_stop_daemon(h->d);
        free(h);
}
