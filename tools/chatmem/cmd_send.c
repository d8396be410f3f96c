/*
 * chatmem send: produce chat events to the events topic.
 *
 * One event from the options (--content, or a --type other than message),
 * or one per JSON line on stdin. Every event is checked with the same
 * strict decoder as chatmem-ingest (unless --raw) and keyed by its session
 * "<user_id>:<conversation_id>". What a line lacks is filled in by the
 * codec (cm_event_decode_defaults): event_id with a fresh UUID, user_id,
 * conversation_id and role from the options; such an event is sent
 * re-encoded, one that needs no change byte for byte as given. The event of
 * the options is a cm_event_t encoded by the codec.
 *
 * Producing never waits per message: the producer batches, a full local
 * queue is drained by polling, and delivery reports are counted; at the
 * end one flush (at most FLUSH_MS) settles the rest.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "codec.h"
#include "config.h"
#include "daemon.h"
#include "kafka.h"
#include "log.h"
#include "util.h"

#define FLUSH_MS 30000

typedef struct sender {
        const cm_config_t *cfg;
        rd_kafka_t *rk;
        rd_kafka_topic_t *rkt;
        int raw;
        const char *key; /* --key: the message key of every event */
        /* What a line lacks: a fresh event_id (uuid, renewed once used), and
         * in stdin mode the user_id, conversation_id and role of the
         * options. */
        cm_event_defaults_t defaults;
        char uuid[37];
        unsigned long long produced;  /* accepted by the producer */
        unsigned long long delivered; /* acknowledged by the broker */
        unsigned long long dr_failed; /* delivery reports with an error */
        unsigned long long failed;    /* every event not delivered */
        unsigned long long bad;       /* lines that failed validation */
        char first_error[256];
} sender_t;

void usage_send(FILE *fp)
{
        fprintf(
            fp,
            "usage: chatmem [-c FILE] send [OPTIONS]\n"
            "\n"
            "Produces chat events to the events topic (topics.events), "
            "keyed by session\n\"<user_id>:<conversation_id>\". With "
            "--content, or a --type other than message,\nsends one event "
            "built from the options; otherwise reads one JSON event per\n"
            "line on stdin (blank lines are skipped). A missing event_id "
            "gets a fresh UUID.\n"
            "\n"
            "  -u, --user U         user_id (required for one event; "
            "default for stdin lines)\n"
            "  -C, --conv C         conversation_id (default: "
            "\"default\")\n"
            "  -r, --role R         user | assistant | system (default: "
            "user)\n"
            "  -m, --content TEXT   message content: send one message "
            "event\n"
            "  -e, --event-id ID    event_id of the one event (default: "
            "a fresh UUID)\n"
            "  -t, --type T         message | profile.set | "
            "session.delete | user.delete\n"
            "  -p, --profile JSON   profile of a profile.set event, e.g.\n"
            "                       '{\"name\":\"Sumit\",\"interests\":"
            "[\"React\"]}'\n"
            "  -k, --key KEY        message key of every event (default: "
            "the session key)\n"
            "      --raw            send lines as they are, without "
            "validation (tests);\n"
            "                       keyed by session when a line is a "
            "valid event\n"
            "  -c, --config FILE    chatmem.conf to read\n"
            "  -h, --help           this text\n"
            "\n"
            "A bad line is reported as \"line N: <reason>\" and skipped. "
            "Prints \"sent N events\"\nto stderr; exits 1 if a line was bad "
            "or an event was not delivered.\n");
}

/* Delivery reports, served by rd_kafka_poll() and rd_kafka_flush(). */
static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m,
                        void *opaque)
{
        sender_t *s = opaque;

        (void)rk;
        if (!m->err) {
                s->delivered++;
                return;
        }
        s->dr_failed++;
        if (s->failed++ == 0)
                snprintf(s->first_error, sizeof(s->first_error), "%s",
                         rd_kafka_err2str(m->err));
}

/*
 * Produces one message. flags is RD_KAFKA_MSG_F_COPY or _F_FREE; with
 * _F_FREE the payload is owned by the producer from here on, whatever
 * happens. A full local queue is drained by polling. Returns 0, or -1 (the
 * event is counted as failed).
 */
static int produce(sender_t *s, const char *key, size_t key_len, char *payload,
                   size_t len, int flags)
{
        rd_kafka_resp_err_t err;

        for (;;) {
                err = rd_kafka_producev(s->rk, RD_KAFKA_V_RKT(s->rkt),
                                        RD_KAFKA_V_KEY(key, key ? key_len : 0),
                                        RD_KAFKA_V_VALUE(payload, len),
                                        RD_KAFKA_V_MSGFLAGS(flags),
                                        RD_KAFKA_V_END);
                if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || cm_stop)
                        break;
                rd_kafka_poll(s->rk, 100);
        }
        rd_kafka_poll(s->rk, 0);
        if (err) {
                if (flags == RD_KAFKA_MSG_F_FREE)
                        free(payload);
                if (s->failed++ == 0)
                        snprintf(s->first_error, sizeof(s->first_error), "%s",
                                 rd_kafka_err2str(err));
                return -1;
        }
        s->produced++;
        return 0;
}

/* JSON whitespace. */
static int is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* --raw: sends the line as it is, keyed by its session when it is a valid
 * event (else without a key, unless --key). */
static int send_raw(sender_t *s, const char *line, size_t len)
{
        char session_key[CM_SESSION_KEY_MAX];
        const char *key = s->key;
        cm_event_t ev;

        if (!key && cm_event_decode(line, len, SIZE_MAX, &ev, NULL, 0) == 0) {
                cm_session_key(session_key, ev.user_id, ev.conversation_id);
                key = session_key;
                cm_event_release(&ev);
        }
        return produce(s, key, key ? strlen(key) : 0, (char *)line, len,
                       RD_KAFKA_MSG_F_COPY);
}

/*
 * Checks one event, fills what is missing and produces it. Returns 0, -1
 * for a bad event (reason in errstr), or -2 when it could not be produced.
 */
static int send_event(sender_t *s, const char *line, size_t len, char *errstr,
                      size_t errstr_size)
{
        cm_event_t ev;
        char *payload;
        char session_key[CM_SESSION_KEY_MAX];
        const char *key;
        size_t payload_len;
        int filled, flags;

        if (cm_event_decode_defaults(
                line, len, (size_t)s->cfg->max_content_bytes, &s->defaults,
                &filled, &ev, errstr, errstr_size) == -1)
                return -1;
        if (!strcmp(ev.event_id, s->uuid))
                cm_uuid(s->uuid); /* used: the next line gets another */
        if (filled) {
                payload = cm_event_encode(&ev);
                payload_len = strlen(payload);
                flags = RD_KAFKA_MSG_F_FREE;
        } else {
                payload = (char *)line;
                payload_len = len;
                flags = RD_KAFKA_MSG_F_COPY;
        }
        if (s->key) {
                key = s->key;
        } else {
                cm_session_key(session_key, ev.user_id, ev.conversation_id);
                key = session_key;
        }
        cm_event_release(&ev);
        if (produce(s, key, strlen(key), payload, payload_len, flags) == -1)
                return -2;
        return 0;
}

/* One line of input, or the event built from the options (lineno 0). */
static void send_one(sender_t *s, const char *line, size_t len,
                     unsigned long long lineno)
{
        char why[512];
        int r;

        if (s->raw) {
                send_raw(s, line, len);
                return;
        }
        r = send_event(s, line, len, why, sizeof(why));
        if (r != -1)
                return;
        s->bad++;
        if (lineno)
                fprintf(stderr, "line %llu: %s\n", lineno, why);
        else
                cli_error("invalid event: %s", why);
}

static int blank(const char *s, size_t len)
{
        size_t i;

        for (i = 0; i < len; i++)
                if (!is_space(s[i]))
                        return 0;
        return 1;
}

static void send_stdin(sender_t *s)
{
        char *line = NULL;
        size_t cap = 0;
        unsigned long long lineno = 0;
        ssize_t n;

        while (!cm_stop) {
                errno = 0;
                n = getline(&line, &cap, stdin);
                if (n < 0) {
                        if (errno && errno != EINTR)
                                cli_error("cannot read stdin: %s",
                                          strerror(errno));
                        break;
                }
                lineno++;
                while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                        line[--n] = '\0';
                if (blank(line, (size_t)n))
                        continue;
                send_one(s, line, (size_t)n, lineno);
        }
        free(line);
}

/* Parses an event type name. Returns 0, or -1 if s names none. */
static int type_parse(const char *s, cm_event_type_t *out)
{
        cm_event_type_t t;

        for (t = CM_EVENT_MESSAGE; t <= CM_EVENT_USER_DELETE; t++) {
                if (!strcmp(s, cm_event_type_str(t))) {
                        *out = t;
                        return 0;
                }
        }
        return -1;
}

/* Copies id into out, a field of CM_ID_MAX + 1 bytes. The id itself is
 * checked with the event, unless --raw. Returns 0, or -1 after printing
 * why. */
static int id_copy(const char *option, const char *id, char out[CM_ID_MAX + 1])
{
        if (strlen(id) > CM_ID_MAX) {
                cli_error("send: %s: at most %d bytes", option, CM_ID_MAX);
                return -1;
        }
        memcpy(out, id, strlen(id) + 1);
        return 0;
}

/* Encodes the one event of the options (heap string). On error returns
 * NULL after printing the reason. */
static char *event_from_options(cm_event_type_t type, const char *event_id,
                                const char *user, const char *conv,
                                cm_role_t role, const char *content,
                                const char *profile)
{
        cm_event_t ev;
        char uuid[37], why[512];
        char *out = NULL;

        memset(&ev, 0, sizeof(ev));
        ev.type = type;
        if (!event_id) {
                cm_uuid(uuid);
                event_id = uuid;
        }
        if (id_copy("--event-id", event_id, ev.event_id) == -1 ||
            id_copy("--user", user, ev.user_id) == -1 ||
            (conv && id_copy("--conv", conv, ev.conversation_id) == -1))
                goto out;
        if (type == CM_EVENT_MESSAGE) {
                ev.msg.role = role;
                ev.msg.content = (char *)content; /* borrowed */
                ev.msg.content_len = strlen(content);
                ev.msg.ts = cm_now_ms();
        }
        if (profile && cm_profile_decode(profile, strlen(profile), &ev.profile,
                                         why, sizeof(why)) == -1) {
                cli_error("--profile: %s", why);
                goto out;
        }
        out = cm_event_encode(&ev);
out:
        cm_profile_release(&ev.profile);
        return out;
}

/* Flushes, then counts whatever is still unacknowledged as failed. */
static void finish(sender_t *s)
{
        unsigned long long pending;

        rd_kafka_flush(s->rk, FLUSH_MS);
        if (rd_kafka_outq_len(s->rk) > 0) {
                /* Purged messages get a delivery report with an error. */
                rd_kafka_purge(s->rk, RD_KAFKA_PURGE_F_QUEUE |
                                          RD_KAFKA_PURGE_F_INFLIGHT);
                rd_kafka_poll(s->rk, 100);
        }
        pending = s->produced - s->delivered - s->dr_failed;
        if (pending == 0)
                return;
        if (s->failed == 0)
                snprintf(s->first_error, sizeof(s->first_error),
                         "not acknowledged within %d ms", FLUSH_MS);
        s->failed += pending;
}

int cmd_send(int argc, char **argv, const char *conf_path)
{
        static const struct option longopts[] = {
            {"user", required_argument, NULL, 'u'},
            {"conv", required_argument, NULL, 'C'},
            {"role", required_argument, NULL, 'r'},
            {"content", required_argument, NULL, 'm'},
            {"event-id", required_argument, NULL, 'e'},
            {"type", required_argument, NULL, 't'},
            {"profile", required_argument, NULL, 'p'},
            {"key", required_argument, NULL, 'k'},
            {"raw", no_argument, NULL, 'R'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        cm_config_t cfg;
        sender_t s;
        const char *user = NULL, *conv = NULL, *role = NULL, *content = NULL;
        const char *event_id = NULL, *type = "message", *profile = NULL;
        char *one = NULL;
        char errstr[512];
        cm_event_type_t type_v;
        cm_role_t role_v = CM_ROLE_USER;
        int opt, single, ret = CLI_FAIL;

        memset(&s, 0, sizeof(s));
        memset(&cfg, 0, sizeof(cfg));
        while ((opt = getopt_long(argc, argv, "u:C:r:m:e:t:p:k:c:h", longopts,
                                  NULL)) != -1) {
                switch (opt) {
                case 'u':
                        user = optarg;
                        break;
                case 'C':
                        conv = optarg;
                        break;
                case 'r':
                        role = optarg;
                        break;
                case 'm':
                        content = optarg;
                        break;
                case 'e':
                        event_id = optarg;
                        break;
                case 't':
                        type = optarg;
                        break;
                case 'p':
                        profile = optarg;
                        break;
                case 'k':
                        s.key = optarg;
                        break;
                case 'R':
                        s.raw = 1;
                        break;
                case 'c':
                        conf_path = optarg;
                        break;
                case 'h':
                        usage_send(stdout);
                        return CLI_OK;
                default:
                        usage_send(stderr);
                        return CLI_USAGE;
                }
        }
        if (optind < argc) {
                cli_error("send: unexpected argument '%s'", argv[optind]);
                usage_send(stderr);
                return CLI_USAGE;
        }
        if (type_parse(type, &type_v) == -1) {
                cli_error("send: --type must be message, profile.set, "
                          "session.delete or user.delete");
                return CLI_USAGE;
        }
        if (role && cm_role_parse(role, &role_v) == -1) {
                cli_error("send: --role must be user, assistant or system");
                return CLI_USAGE;
        }
        single = content || type_v != CM_EVENT_MESSAGE;
        if (single && !user) {
                cli_error("send: --user is required with --content or "
                          "--type");
                return CLI_USAGE;
        }
        if (type_v == CM_EVENT_PROFILE_SET && !profile) {
                cli_error("send: --type profile.set needs --profile JSON");
                return CLI_USAGE;
        }
        if (!s.raw && ((user && cli_check_id("user id", user) == -1) ||
                       (conv && cli_check_id("conversation id", conv) == -1)))
                return CLI_USAGE;
        if (single) {
                one = event_from_options(type_v, event_id, user, conv, role_v,
                                         content, profile);
                if (!one)
                        return CLI_USAGE;
        } else {
                s.defaults.user_id = user;
                s.defaults.conversation_id = conv;
                s.defaults.role = role;
        }
        cm_uuid(s.uuid);
        s.defaults.event_id = s.uuid;

        if (cli_config_load(&cfg, conf_path) == -1)
                goto out;
        s.cfg = &cfg;
        cm_daemon_signals();
        s.rk = cm_kafka_producer_new(&cfg, on_delivery, &s, errstr,
                                     sizeof(errstr));
        if (!s.rk) {
                cli_error("%s", errstr);
                goto out;
        }
        s.rkt = rd_kafka_topic_new(s.rk, cfg.topic_events, NULL);
        if (!s.rkt) {
                cli_error("cannot use topic '%s': %s", cfg.topic_events,
                          rd_kafka_err2str(rd_kafka_last_error()));
                goto out;
        }

        if (one)
                send_one(&s, one, strlen(one), 0);
        else
                send_stdin(&s);
        finish(&s);

        fprintf(stderr, "sent %llu events\n", s.delivered);
        if (s.bad)
                fprintf(stderr, "skipped %llu bad event%s\n", s.bad,
                        s.bad == 1 ? "" : "s");
        if (s.failed)
                cli_error("%llu event%s not delivered to '%s' at '%s': %s",
                          s.failed, s.failed == 1 ? "" : "s", cfg.topic_events,
                          cfg.kafka_brokers, s.first_error);
        if (cm_stop)
                cli_error("interrupted");
        ret = s.bad || s.failed || cm_stop ? CLI_FAIL : CLI_OK;
out:
        if (s.rkt)
                rd_kafka_topic_destroy(s.rkt);
        if (s.rk)
                rd_kafka_destroy(s.rk);
        free(one);
        cm_config_release(&cfg);
        return ret;
}
