/*
 * chatmem stats, chatmem session: what is in the Redis session store.
 *
 *   stats                     active sessions (SCAN, never KEYS) and
 *                             whether the cache is reachable, like the
 *                             seed's getSessionStats()
 *   session show USER [CONV]  counters, summary, profile, every message,
 *                             the archive
 *   session archive USER [CONV]  the archive, one JSON line per message
 *   session delete USER [CONV]
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "cli.h"
#include "codec.h"
#include "config.h"
#include "log.h"
#include "store.h"
#include "util.h"

void usage_stats(FILE *fp)
{
        fprintf(
            fp,
            "usage: chatmem [-c FILE] stats [--json]\n"
            "\n"
            "Prints the number of active sessions in Redis and whether "
            "the cache (Redis)\nis enabled and reachable, and the "
            "fleet counters the workers keep\n(ingest_applied, "
            "ingest_duplicates, ingest_dead). When Redis "
            "cannot be reached, reports 0 sessions\nand the cache as "
            "disabled, says why on stderr and still exits 0.\n"
            "\n"
            "  -j, --json         {\"active_sessions\":N,"
            "\"cache_enabled\":true,\"redis\":\"redis://...\",\n"
            "                     \"counters\":{\"ingest_applied\":N,...}}\n"
            "  -c, --config FILE  chatmem.conf to read\n"
            "  -h, --help         this text\n");
}

void usage_session(FILE *fp)
{
        fprintf(fp,
                "usage: chatmem [-c FILE] session show USER [CONV] [--json]\n"
                "       chatmem [-c FILE] session archive USER [CONV]\n"
                "       chatmem [-c FILE] session delete USER [CONV]\n"
                "\n"
                "show    prints the session USER:CONV (CONV defaults to "
                "\"default\"): its\n"
                "        counters, summary, the user's profile, every "
                "stored message and\n"
                "        every archived (folded) message; exits 1 when "
                "there is no such\n"
                "        session\n"
                "archive prints the archived messages of the session, "
                "oldest first, one\n"
                "        JSON object per line: {\"seq\",\"role\","
                "\"content\",\"ts\",\"tokens\"}\n"
                "        (nothing when there are none)\n"
                "delete  deletes every key of the session, its archive "
                "included (not the\n"
                "        user's profile), and prints how many were "
                "removed\n"
                "\n"
                "  -j, --json         show: print one JSON object\n"
                "  -c, --config FILE  chatmem.conf to read\n"
                "  -h, --help         this text\n");
}

/* Adds a string member (NULL gives null). */
static void jadd_str(json_object *obj, const char *name, const char *s)
{
        json_object_object_add(obj, name, s ? json_object_new_string(s) : NULL);
}

static void print_json(json_object *obj)
{
        puts(json_object_to_json_string_ext(
            obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(obj);
}

/* Parses the options of stats and session (--json, --config, --help).
 * Returns -1 to go on, else the exit status to return. */
static int parse_options(int argc, char **argv, void (*usage)(FILE *fp),
                         int *json, const char **conf_path)
{
        static const struct option longopts[] = {
            {"json", no_argument, NULL, 'j'},
            {"config", required_argument, NULL, 'c'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        int opt;

        while ((opt = getopt_long(argc, argv, "jc:h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'j':
                        *json = 1;
                        break;
                case 'c':
                        *conf_path = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return CLI_OK;
                default:
                        usage(stderr);
                        return CLI_USAGE;
                }
        }
        return -1;
}

/* Loads the configuration into cfg and connects to its Redis. Returns the
 * store, or NULL after printing why; cfg must be released either way. */
static cm_store_t *store_open(cm_config_t *cfg, const char *conf_path)
{
        cm_store_t *st;
        char errstr[512];

        if (cli_config_load(cfg, conf_path) == -1)
                return NULL;
        st = cm_store_new(cfg, errstr, sizeof(errstr));
        if (!st)
                cli_error("%s", errstr);
        return st;
}

int cmd_stats(int argc, char **argv, const char *conf_path)
{
        cm_config_t cfg;
        cm_store_t *st = NULL;
        long long sessions = 0;
        char errstr[512], **counters = NULL;
        int json = 0, enabled, ret = CLI_FAIL;
        size_t i;

        ret = parse_options(argc, argv, usage_stats, &json, &conf_path);
        if (ret != -1)
                return ret;
        ret = CLI_FAIL;
        if (optind < argc) {
                cli_error("stats: unexpected argument '%s'", argv[optind]);
                usage_stats(stderr);
                return CLI_USAGE;
        }
        st = store_open(&cfg, conf_path);
        if (!st)
                goto out;
        enabled =
            cm_store_count_sessions(st, &sessions, errstr, sizeof(errstr)) == 0;
        if (!enabled) {
                cli_error("cache disabled: %s", errstr);
                sessions = 0;
        } else if (cm_store_stats_get(st, &counters, errstr, sizeof(errstr)) ==
                   -1) {
                cli_error("%s", errstr);
        }
        if (json) {
                json_object *obj = json_object_new_object();
                json_object *cnt = json_object_new_object();

                json_object_object_add(obj, "active_sessions",
                                       json_object_new_int64(sessions));
                json_object_object_add(obj, "cache_enabled",
                                       json_object_new_boolean(enabled));
                jadd_str(obj, "redis", cm_store_url(st));
                for (i = 0; counters && counters[i]; i++) {
                        char *eq = strchr(counters[i], '=');

                        *eq = '\0';
                        json_object_object_add(
                            cnt, counters[i],
                            json_object_new_int64(atoll(eq + 1)));
                }
                json_object_object_add(obj, "counters", cnt);
                print_json(obj);
        } else {
                printf("active sessions: %lld\ncache: %s (%s)\n", sessions,
                       enabled ? "enabled" : "disabled", cm_store_url(st));
                for (i = 0; counters && counters[i]; i++) {
                        char *eq = strchr(counters[i], '=');

                        printf("%.*s: %s\n", (int)(eq - counters[i]),
                               counters[i], eq + 1);
                }
        }
        ret = CLI_OK;
out:
        for (i = 0; counters && counters[i]; i++)
                free(counters[i]);
        free(counters);
        cm_store_destroy(st);
        cm_config_release(&cfg);
        return ret;
}

/* Writes ts (ms since the epoch) as ISO 8601 UTC to out. */
static void format_ts(int64_t ts, char *out, size_t out_size)
{
        time_t secs = (time_t)(ts / 1000);
        struct tm tm;
        size_t n;

        if (ts <= 0 || !gmtime_r(&secs, &tm)) {
                snprintf(out, out_size, "-");
                return;
        }
        n = strftime(out, out_size, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(out + n, out_size - n, ".%03dZ", (int)(ts % 1000));
}

static json_object *profile_json(const cm_profile_t *p)
{
        json_object *obj = json_object_new_object();
        json_object *arr = json_object_new_array();
        size_t i;

        jadd_str(obj, "name", p->name);
        jadd_str(obj, "role", p->role);
        for (i = 0; i < p->interest_cnt; i++)
                json_object_array_add(arr,
                                      json_object_new_string(p->interests[i]));
        json_object_object_add(obj, "interests", arr);
        return obj;
}

/* One message as JSON: seq, event_id (when known), role, content, ts
 * (when known), tokens. */
static json_object *message_json(const cm_message_t *m)
{
        json_object *e = json_object_new_object();

        json_object_object_add(e, "seq", json_object_new_int64(m->seq));
        if (m->event_id)
                jadd_str(e, "event_id", m->event_id);
        jadd_str(e, "role", cm_role_str(m->role));
        json_object_object_add(
            e, "content",
            json_object_new_string_len(m->content, (int)m->content_len));
        if (m->ts)
                json_object_object_add(e, "ts", json_object_new_int64(m->ts));
        json_object_object_add(e, "tokens", json_object_new_int(m->tokens));
        return e;
}

static void show_json(const char *user, const char *conv, const cm_session_t *s)
{
        json_object *obj = json_object_new_object();
        json_object *msgs = json_object_new_array();
        json_object *arch = json_object_new_array();
        size_t i;

        jadd_str(obj, "user_id", user);
        jadd_str(obj, "conversation_id", conv);
        json_object_object_add(obj, "exists",
                               json_object_new_boolean(s->exists));
        json_object_object_add(obj, "total_messages",
                               json_object_new_int64(s->total));
        json_object_object_add(obj, "stored_messages",
                               json_object_new_int64(s->stored_cnt));
        json_object_object_add(obj, "last_seq",
                               json_object_new_int64(s->last_seq));
        json_object_object_add(obj, "tokens", json_object_new_int64(s->tokens));
        jadd_str(obj, "summary", s->summary ? s->summary : "");
        json_object_object_add(obj, "profile", profile_json(&s->profile));
        for (i = 0; i < s->msg_cnt; i++)
                json_object_array_add(msgs, message_json(&s->msgs[i]));
        json_object_object_add(obj, "messages", msgs);
        json_object_object_add(obj, "archived_messages",
                               json_object_new_int64((int64_t)s->archive_cnt));
        for (i = 0; i < s->archive_cnt; i++)
                json_object_array_add(arch, message_json(&s->archive[i]));
        json_object_object_add(obj, "archive", arch);
        print_json(obj);
}

static void print_messages(const char *title, const cm_message_t *msgs,
                           size_t cnt)
{
        char when[40];
        size_t i;

        printf("\n%s (%zu):\n", title, cnt);
        for (i = 0; i < cnt; i++) {
                const cm_message_t *m = &msgs[i];

                format_ts(m->ts, when, sizeof(when));
                printf("#%lld %s %s: %.*s\n", (long long)m->seq, when,
                       cm_role_label(m->role), (int)m->content_len, m->content);
        }
}

static void show_text(const char *key, const cm_session_t *s)
{
        const cm_profile_t *p = &s->profile;
        size_t i;

        printf("session: %s\n", key);
        printf("total messages: %lld, stored: %lld, last seq: %lld, "
               "tokens: %lld\n",
               (long long)s->total, (long long)s->stored_cnt,
               (long long)s->last_seq, (long long)s->tokens);
        if (cm_profile_empty(p)) {
                printf("profile: (none)\n");
        } else {
                printf("profile: name: %s, role: %s, interests: ",
                       p->name ? p->name : "-", p->role ? p->role : "-");
                for (i = 0; i < p->interest_cnt; i++)
                        printf("%s%s", i ? ", " : "", p->interests[i]);
                printf("%s\n", p->interest_cnt ? "" : "-");
        }
        printf("summary: %s\n",
               s->summary && *s->summary ? s->summary : "(none)");
        print_messages("archived messages", s->archive, s->archive_cnt);
        print_messages("messages", s->msgs, s->msg_cnt);
}

static int session_show(cm_store_t *st, const char *user, const char *conv,
                        int json)
{
        cm_session_t s;
        char errstr[512], key[CM_SESSION_KEY_MAX];
        int exists;

        if (cm_store_load(st, user, conv, -1, CM_LOAD_ARCHIVE, &s, errstr,
                          sizeof(errstr)) == -1) {
                cli_error("%s", errstr);
                return CLI_FAIL;
        }
        exists = s.exists;
        cm_session_key(key, user, conv);
        if (json)
                show_json(user, conv, &s);
        else if (exists)
                show_text(key, &s);
        if (!exists)
                cli_error("no session '%s' in redis '%s'", key,
                          cm_store_url(st));
        cm_session_release(&s);
        return exists ? CLI_OK : CLI_FAIL;
}

/* Prints the archived messages of the session as JSON lines. */
static int session_archive(cm_store_t *st, const char *user, const char *conv)
{
        cm_session_t s;
        char errstr[512];
        size_t i;

        if (cm_store_load(st, user, conv, 0, CM_LOAD_ARCHIVE, &s, errstr,
                          sizeof(errstr)) == -1) {
                cli_error("%s", errstr);
                return CLI_FAIL;
        }
        for (i = 0; i < s.archive_cnt; i++)
                print_json(message_json(&s.archive[i]));
        cm_session_release(&s);
        return CLI_OK;
}

static int session_delete(cm_store_t *st, const char *user, const char *conv)
{
        char errstr[512], key[CM_SESSION_KEY_MAX];
        long long n;

        n = cm_store_delete_session(st, user, conv, errstr, sizeof(errstr));
        if (n < 0) {
                cli_error("%s", errstr);
                return CLI_FAIL;
        }
        cm_session_key(key, user, conv);
        printf("deleted session '%s': %lld key%s removed\n", key, n,
               n == 1 ? "" : "s");
        return CLI_OK;
}

int cmd_session(int argc, char **argv, const char *conf_path)
{
        cm_config_t cfg;
        cm_store_t *st = NULL;
        const char *action, *user, *conv = "default";
        int json = 0, ret;

        ret = parse_options(argc, argv, usage_session, &json, &conf_path);
        if (ret != -1)
                return ret;
        ret = CLI_FAIL;
        /* argv[optind]: show|delete, then USER [CONV]. */
        if (argc - optind < 2 || argc - optind > 3) {
                usage_session(stderr);
                return CLI_USAGE;
        }
        action = argv[optind];
        user = argv[optind + 1];
        if (argc - optind == 3)
                conv = argv[optind + 2];
        if (strcmp(action, "show") && strcmp(action, "archive") &&
            strcmp(action, "delete")) {
                cli_error("session: unknown action '%s' (show, archive or "
                          "delete)",
                          action);
                usage_session(stderr);
                return CLI_USAGE;
        }
        if (cli_check_id("user id", user) == -1 ||
            cli_check_id("conversation id", conv) == -1)
                return CLI_USAGE;
        st = store_open(&cfg, conf_path);
        if (!st)
                goto out;
        if (!strcmp(action, "show"))
                ret = session_show(st, user, conv, json);
        else if (!strcmp(action, "archive"))
                ret = session_archive(st, user, conv);
        else
                ret = session_delete(st, user, conv);
out:
        cm_store_destroy(st);
        cm_config_release(&cfg);
        return ret;
}
