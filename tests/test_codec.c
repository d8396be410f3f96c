/*
 * Unit tests for common/codec.c: every decoder against good and bad input,
 * every encoder by parsing its output back with json-c, and round trips.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "text.h"
#include "util.h"

#define MAXC 65536

/* Fails the test unless hay contains needle, showing both. */
#define assert_contains(hay, needle)                                           \
        contains_or_fail((hay), (needle), __FILE__, __LINE__)

static void contains_or_fail(const char *hay, const char *needle,
                             const char *file, int line)
{
        if (hay && strstr(hay, needle))
                return;
        print_error("%s:%d: expected \"%s\" in \"%s\"\n", file, line, needle,
                    hay ? hay : "(null)");
        fail();
}

/* A heap string of n copies of c. */
static char *repeat(char c, size_t n)
{
        char *s = cm_malloc(n + 1);

        memset(s, c, n);
        s[n] = '\0';
        return s;
}

static int ev_decode(const char *json, cm_event_t *ev, char *err,
                     size_t err_size)
{
        return cm_event_decode(json, strlen(json), MAXC, ev, err, err_size);
}

/* Asserts that json is rejected as an event with err_part in the reason. */
static void event_fails(const char *json, const char *err_part)
{
        cm_event_t ev;
        char err[512] = "";

        if (ev_decode(json, &ev, err, sizeof(err)) != -1) {
                print_error("accepted bad event: %s\n", json);
                fail();
        }
        assert_contains(err, err_part);
        /* a failed decode leaves the struct released */
        assert_null(ev.msg.content);
        assert_null(ev.profile.interests);
}

static void event_ok(const char *json, cm_event_t *ev)
{
        char err[512] = "";

        if (ev_decode(json, ev, err, sizeof(err)) != 0) {
                print_error("rejected good event: %s: %s\n", json, err);
                fail();
        }
}

/* Asserts that json is refused as a request with err_part in the reason,
 * keeping want_request_id ("" none) and want_reply_to (NULL none) for the
 * error reply, and nothing else. */
static void request_fails_to(const char *json, const char *err_part,
                             const char *want_request_id,
                             const char *want_reply_to)
{
        cm_request_t req;
        char err[512] = "";

        if (cm_request_decode(json, strlen(json), MAXC, &req, err,
                              sizeof(err)) != -1) {
                print_error("accepted bad request: %s\n", json);
                fail();
        }
        assert_contains(err, err_part);
        assert_string_equal(req.request_id, want_request_id);
        if (want_reply_to)
                assert_string_equal(req.reply_to, want_reply_to);
        else
                assert_null(req.reply_to);
        assert_null(req.history);
        assert_null(req.query);
        cm_request_release(&req);
}

static void request_fails(const char *json, const char *err_part,
                          const char *want_request_id)
{
        request_fails_to(json, err_part, want_request_id, NULL);
}

static void request_ok(const char *json, cm_request_t *req)
{
        char err[512] = "";

        if (cm_request_decode(json, strlen(json), MAXC, req, err,
                              sizeof(err)) != 0) {
                print_error("rejected good request: %s: %s\n", json, err);
                fail();
        }
}

/* Parses s with json-c (the test's independent reader). */
static json_object *parse(const char *s)
{
        json_object *obj = json_tokener_parse(s);

        if (!obj) {
                print_error("encoder output is not JSON: %s\n", s);
                fail();
        }
        return obj;
}

static json_object *get(json_object *obj, const char *key, json_type type)
{
        json_object *v = NULL;

        if (!json_object_object_get_ex(obj, key, &v)) {
                print_error("missing key '%s' in %s\n", key,
                            json_object_to_json_string(obj));
                fail();
        }
        if (!json_object_is_type(v, type)) {
                print_error("key '%s' has type %s\n", key,
                            json_type_to_name(json_object_get_type(v)));
                fail();
        }
        return v;
}

static int has(json_object *obj, const char *key)
{
        return json_object_object_get_ex(obj, key, NULL) ? 1 : 0;
}

static const char *get_str(json_object *obj, const char *key)
{
        return json_object_get_string(get(obj, key, json_type_string));
}

static int64_t get_int(json_object *obj, const char *key)
{
        return json_object_get_int64(get(obj, key, json_type_int));
}

/*
 * Names and ids
 */

static void test_role_and_type_names(void **state)
{
        cm_role_t role = CM_ROLE_SYSTEM;

        (void)state;
        assert_string_equal(cm_role_str(CM_ROLE_USER), "user");
        assert_string_equal(cm_role_str(CM_ROLE_ASSISTANT), "assistant");
        assert_string_equal(cm_role_str(CM_ROLE_SYSTEM), "system");
        assert_string_equal(cm_role_label(CM_ROLE_USER), "User");
        assert_string_equal(cm_role_label(CM_ROLE_ASSISTANT), "Assistant");
        assert_string_equal(cm_role_label(CM_ROLE_SYSTEM), "System");
        assert_int_equal(cm_role_parse("assistant", &role), 0);
        assert_int_equal(role, CM_ROLE_ASSISTANT);
        assert_int_equal(cm_role_parse("User", &role), -1);
        assert_int_equal(cm_role_parse("", &role), -1);
        assert_int_equal(cm_role_parse(NULL, &role), -1);
        assert_int_equal(role, CM_ROLE_ASSISTANT);
        assert_string_equal(cm_event_type_str(CM_EVENT_MESSAGE), "message");
        assert_string_equal(cm_event_type_str(CM_EVENT_PROFILE_SET),
                            "profile.set");
        assert_string_equal(cm_event_type_str(CM_EVENT_SESSION_DELETE),
                            "session.delete");
        assert_string_equal(cm_event_type_str(CM_EVENT_USER_DELETE),
                            "user.delete");
}

static void test_id_check(void **state)
{
        char err[256];
        char *s128 = repeat('a', 128);
        char *s129 = repeat('a', 129);

        (void)state;
        assert_int_equal(cm_id_check("u", 1, 0, err, sizeof(err)), 0);
        assert_int_equal(cm_id_check("A-z_0.9@x", 9, 0, err, sizeof(err)), 0);
        assert_int_equal(cm_id_check(s128, 128, 0, err, sizeof(err)), 0);
        assert_int_equal(cm_id_check(s129, 129, 0, err, sizeof(err)), -1);
        assert_contains(err, "must be 1..128 bytes of [A-Za-z0-9._@-]");
        assert_contains(err, "got 129 bytes");
        assert_int_equal(cm_id_check("", 0, 0, err, sizeof(err)), -1);
        assert_contains(err, "got 0 bytes");
        assert_int_equal(cm_id_check("u42/x", 5, 0, err, sizeof(err)), -1);
        assert_contains(err, "forbidden character '/' at byte 3");
        assert_int_equal(cm_id_check("a b", 3, 0, err, sizeof(err)), -1);
        assert_contains(err, "forbidden character ' ' at byte 1");
        assert_int_equal(cm_id_check("a:b", 3, 0, err, sizeof(err)), -1);
        assert_contains(err, "forbidden character ':' at byte 1");
        assert_int_equal(cm_id_check("a:b", 3, 1, err, sizeof(err)), 0);
        assert_int_equal(cm_id_check("\xc3\xbc", 2, 1, err, sizeof(err)), -1);
        assert_contains(err, "forbidden character 0xc3 at byte 0");
        /* the length given is what counts, not the NUL */
        assert_int_equal(cm_id_check("ab\0c", 4, 0, err, sizeof(err)), -1);
        assert_contains(err, "0x00 at byte 2");
        /* no room for the reason is fine */
        assert_int_equal(cm_id_check("a/b", 3, 0, NULL, 0), -1);
        assert_int_equal(cm_id_check("a/b", 3, 0, err, 4), -1);
        assert_int_equal(strlen(err), 3);
        free(s128);
        free(s129);
}

/*
 * Events
 */

static void test_event_decode_message(void **state)
{
        cm_event_t ev;

        (void)state;
        event_ok("{\"type\": \"message\", \"event_id\": \"b7c1:0\", "
                 "\"user_id\": \"u42\", \"conversation_id\": \"c-1\", "
                 "\"role\": \"user\", \"content\": \"Hi, I'm Sumit\", "
                 "\"ts\": 1732400000123}",
                 &ev);
        assert_int_equal(ev.type, CM_EVENT_MESSAGE);
        assert_string_equal(ev.event_id, "b7c1:0");
        assert_string_equal(ev.user_id, "u42");
        assert_string_equal(ev.conversation_id, "c-1");
        assert_int_equal(ev.msg.role, CM_ROLE_USER);
        assert_string_equal(ev.msg.content, "Hi, I'm Sumit");
        assert_int_equal(ev.msg.content_len, 13);
        assert_true(ev.msg.ts == 1732400000123LL);
        assert_int_equal(ev.msg.seq, 0);
        assert_int_equal(ev.msg.tokens, -1);
        assert_true(cm_profile_empty(&ev.profile));
        cm_event_release(&ev);
        assert_null(ev.msg.content);
        cm_event_release(&ev); /* twice is fine */
}

static void test_event_defaults(void **state)
{
        cm_event_t ev;

        (void)state;
        event_ok(
            "{\"event_id\":\"e1\",\"user_id\":\"u\",\"role\":\"assistant\","
            "\"content\":\"x\"}",
            &ev);
        assert_int_equal(ev.type, CM_EVENT_MESSAGE);
        assert_string_equal(ev.conversation_id, "default");
        assert_int_equal(ev.msg.role, CM_ROLE_ASSISTANT);
        assert_int_equal(ev.msg.ts, 0);
        cm_event_release(&ev);

        /* whitespace around the object is allowed; unknown fields ignored */
        event_ok(
            " \n{\"event_id\":\"e1\",\"user_id\":\"u\",\"role\":\"system\","
            "\"content\":\"x\",\"future\":{\"a\":[1,2.5,null]},"
            "\"ts\":0}\r\n",
            &ev);
        assert_int_equal(ev.msg.role, CM_ROLE_SYSTEM);
        assert_int_equal(ev.msg.ts, 0);
        cm_event_release(&ev);
}

static void test_event_other_types(void **state)
{
        cm_event_t ev;

        (void)state;
        event_ok("{\"type\":\"profile.set\",\"event_id\":\"e2\",\"user_id\":"
                 "\"u42\",\"profile\":{\"name\":\"Sumit Pandya\",\"role\":"
                 "\"full stack developer\",\"interests\":[\"React\","
                 "\"Node.js\"]}}",
                 &ev);
        assert_int_equal(ev.type, CM_EVENT_PROFILE_SET);
        assert_string_equal(ev.conversation_id, "default");
        assert_string_equal(ev.profile.name, "Sumit Pandya");
        assert_string_equal(ev.profile.role, "full stack developer");
        assert_int_equal(ev.profile.interest_cnt, 2);
        assert_string_equal(ev.profile.interests[0], "React");
        assert_string_equal(ev.profile.interests[1], "Node.js");
        assert_false(cm_profile_empty(&ev.profile));
        assert_null(ev.msg.content);
        cm_event_release(&ev);

        /* every profile field is optional */
        event_ok("{\"type\":\"profile.set\",\"event_id\":\"e2\",\"user_id\":"
                 "\"u42\",\"profile\":{\"interests\":[]}}",
                 &ev);
        assert_true(cm_profile_empty(&ev.profile));
        cm_event_release(&ev);

        /* deletes need only the ids; stray message fields are ignored */
        event_ok("{\"type\":\"session.delete\",\"event_id\":\"e3\","
                 "\"user_id\":\"u42\",\"conversation_id\":\"c9\"}",
                 &ev);
        assert_int_equal(ev.type, CM_EVENT_SESSION_DELETE);
        assert_string_equal(ev.conversation_id, "c9");
        cm_event_release(&ev);
        event_ok("{\"type\":\"user.delete\",\"event_id\":\"e4\","
                 "\"user_id\":\"u42\",\"role\":5}",
                 &ev);
        assert_int_equal(ev.type, CM_EVENT_USER_DELETE);
        assert_string_equal(ev.conversation_id, "default");
        cm_event_release(&ev);
}

static void test_event_missing_fields(void **state)
{
        (void)state;
        event_fails("{\"user_id\":\"u\",\"role\":\"user\",\"content\":\"x\"}",
                    "missing field 'event_id'");
        event_fails("{\"event_id\":\"e\",\"role\":\"user\",\"content\":\"x\"}",
                    "missing field 'user_id'");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"content\":\"x\"}",
                    "missing field 'role'");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\"}",
                    "missing field 'content'");
        event_fails("{\"type\":\"profile.set\",\"event_id\":\"e\","
                    "\"user_id\":\"u\"}",
                    "missing field 'profile'");
        event_fails("{\"type\":\"session.delete\",\"user_id\":\"u\"}",
                    "missing field 'event_id'");
        event_fails("{}", "missing field 'event_id'");
}

static void test_event_wrong_types(void **state)
{
        static const struct {
                const char *json;
                const char *err;
        } cases[] = {
            {"{\"event_id\":7,\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"x\"}",
             "field 'event_id': must be a string, got integer"},
            {"{\"event_id\":\"e\",\"user_id\":42,\"role\":\"user\","
             "\"content\":\"x\"}",
             "field 'user_id': must be a string, got integer"},
            {"{\"event_id\":\"e\",\"user_id\":null,\"role\":\"user\","
             "\"content\":\"x\"}",
             "field 'user_id': must be a string, got null"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"conversation_id\":"
             "true,\"role\":\"user\",\"content\":\"x\"}",
             "field 'conversation_id': must be a string, got boolean"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":1,"
             "\"content\":\"x\"}",
             "field 'role': must be a string, got integer"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"bot\","
             "\"content\":\"x\"}",
             "field 'role': must be one of user, assistant, system"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"User\","
             "\"content\":\"x\"}",
             "field 'role': must be one of user, assistant, system"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":[\"x\"]}",
             "field 'content': must be a string, got array"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":{}}",
             "field 'content': must be a string, got object"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"\"}",
             "field 'content': must not be empty"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"x\",\"ts\":\"1732400000123\"}",
             "field 'ts': must be an integer, got string"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"x\",\"ts\":1.5}",
             "field 'ts': must be an integer"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"x\",\"ts\":1e3}",
             "field 'ts': must be an integer"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"x\",\"ts\":-1}",
             "field 'ts': must be a non-negative integer, got -1"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"x\",\"ts\":99999999999999999999}",
             "field 'ts': integer out of range"},
            {"{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
             "\"content\":\"x\",\"ts\":null}",
             "field 'ts': must be an integer, got null"},
            {"{\"type\":1,\"event_id\":\"e\",\"user_id\":\"u\"}",
             "field 'type': must be a string, got integer"},
            {"{\"type\":\"msg\",\"event_id\":\"e\",\"user_id\":\"u\"}",
             "field 'type': must be one of message, profile.set, "
             "session.delete, user.delete"},
            {"{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
             "\"u\",\"profile\":[]}",
             "field 'profile': must be an object, got array"},
            {"{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
             "\"u\",\"profile\":{\"name\":1}}",
             "field 'profile.name': must be a string, got integer"},
            {"{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
             "\"u\",\"profile\":{\"role\":false}}",
             "field 'profile.role': must be a string, got boolean"},
            {"{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
             "\"u\",\"profile\":{\"name\":\"\"}}",
             "field 'profile.name': must not be empty"},
            {"{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
             "\"u\",\"profile\":{\"interests\":\"React\"}}",
             "field 'profile.interests': must be an array, got string"},
            {"{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
             "\"u\",\"profile\":{\"interests\":[\"a\",2]}}",
             "field 'profile.interests[1]': must be a string, got "
             "integer"},
        };
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu: %s\n", i, cases[i].json);
                event_fails(cases[i].json, cases[i].err);
        }
}

static void test_event_profile_limits(void **state)
{
        char *s256 = repeat('n', 256);
        char *s257 = repeat('n', 257);
        cm_event_t ev;
        cm_buf_t b;
        int i;

        (void)state;
        cm_buf_init(&b);
        cm_buf_addf(&b,
                    "{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
                    "\"u\",\"profile\":{\"name\":\"%s\",\"role\":\"%s\","
                    "\"interests\":[",
                    s256, s256);
        for (i = 0; i < 64; i++)
                cm_buf_addf(&b, "%s\"%s\"", i ? "," : "", s256);
        cm_buf_adds(&b, "]}}");
        event_ok(b.buf, &ev);
        assert_int_equal(strlen(ev.profile.name), 256);
        assert_int_equal(ev.profile.interest_cnt, 64);
        cm_event_release(&ev);

        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
                    "\"u\",\"profile\":{\"name\":\"%s\"}}",
                    s257);
        event_fails(b.buf, "field 'profile.name': 257 bytes is over the "
                           "limit of 256");
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
                    "\"u\",\"profile\":{\"interests\":[\"a\",\"%s\"]}}",
                    s257);
        event_fails(b.buf, "field 'profile.interests[1]': 257 bytes is over "
                           "the limit of 256");
        cm_buf_reset(&b);
        cm_buf_adds(&b, "{\"type\":\"profile.set\",\"event_id\":\"e\","
                        "\"user_id\":\"u\",\"profile\":{\"interests\":[");
        for (i = 0; i < 65; i++)
                cm_buf_addf(&b, "%s\"i%d\"", i ? "," : "", i);
        cm_buf_adds(&b, "]}}");
        event_fails(b.buf, "field 'profile.interests': 65 entries is over "
                           "the limit of 64");
        cm_buf_release(&b);
        free(s256);
        free(s257);
}

static void test_event_ids(void **state)
{
        char *s128 = repeat('u', 128);
        char *s129 = repeat('u', 129);
        cm_event_t ev;
        cm_buf_t b;

        (void)state;
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u/1\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    "field 'user_id': forbidden character '/' at byte 1");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u 1\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    "field 'user_id': forbidden character ' ' at byte 1");
        /* ':' separates user and conversation in the session key */
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u:1\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    "field 'user_id': forbidden character ':' at byte 1");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\","
                    "\"conversation_id\":\"a:b\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    "field 'conversation_id': forbidden character ':'");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"J\xc3\xbcrgen\","
                    "\"role\":\"user\",\"content\":\"x\"}",
                    "field 'user_id': forbidden character 0xc3 at byte 1");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\\u00fc\","
                    "\"role\":\"user\",\"content\":\"x\"}",
                    "field 'user_id': forbidden character 0xc3");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"{u}\","
                    "\"role\":\"user\",\"content\":\"x\"}",
                    "forbidden character '{'");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    "field 'user_id': must be 1..128 bytes of "
                    "[A-Za-z0-9._@-], got 0 bytes");
        event_fails("{\"event_id\":\"\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    "field 'event_id': must be 1..128 bytes of "
                    "[A-Za-z0-9._@:-], got 0 bytes");
        event_fails("{\"event_id\":\"e 1\",\"user_id\":\"u\",\"role\":"
                    "\"user\",\"content\":\"x\"}",
                    "field 'event_id': forbidden character ' '");

        cm_buf_init(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"%s\",\"user_id\":\"%s\","
                    "\"conversation_id\":\"%s\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    s128, s128, s128);
        event_ok(b.buf, &ev);
        assert_string_equal(ev.user_id, s128);
        assert_string_equal(ev.conversation_id, s128);
        assert_string_equal(ev.event_id, s128);
        cm_event_release(&ev);

        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"%s\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    s129);
        event_fails(b.buf, "field 'user_id': must be 1..128 bytes of "
                           "[A-Za-z0-9._@-], got 129 bytes");
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"conversation_id\":"
                    "\"%s\",\"role\":\"user\",\"content\":\"x\"}",
                    s129);
        event_fails(b.buf, "field 'conversation_id': must be 1..128 bytes");
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"%s\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\"}",
                    s129);
        event_fails(b.buf, "field 'event_id': must be 1..128 bytes");

        /* event_id may hold ':' and the other id characters */
        event_ok("{\"event_id\":\"a:b.c_d@e-f\",\"user_id\":\"x.y_z@w-1\","
                 "\"role\":\"user\",\"content\":\"x\"}",
                 &ev);
        assert_string_equal(ev.event_id, "a:b.c_d@e-f");
        assert_string_equal(ev.user_id, "x.y_z@w-1");
        cm_event_release(&ev);
        cm_buf_release(&b);
        free(s128);
        free(s129);
}

static void test_event_content_limit(void **state)
{
        char *at = repeat('x', MAXC);
        char *over = repeat('x', MAXC + 1);
        char *big = repeat('x', 70000);
        char *uni = cm_malloc(MAXC + 1);
        char err[256];
        cm_event_t ev;
        cm_buf_t b;
        size_t i;

        (void)state;
        cm_buf_init(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"%s\"}",
                    at);
        event_ok(b.buf, &ev);
        assert_int_equal(ev.msg.content_len, MAXC);
        assert_int_equal(strlen(ev.msg.content), MAXC);
        cm_event_release(&ev);

        /* the limit is configurable */
        assert_int_equal(
            cm_event_decode(b.buf, b.len, 1000, &ev, err, sizeof(err)), -1);
        assert_contains(err, "field 'content': 65536 bytes is over the "
                             "limit of 1000");

        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"%s\"}",
                    over);
        event_fails(b.buf, "field 'content': 65537 bytes is over the limit "
                           "of 65536");
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"%s\"}",
                    big);
        event_fails(b.buf, "field 'content': 70000 bytes is over the limit "
                           "of 65536");

        /* the limit counts decoded bytes: 21845 x U+20AC is 65535 bytes but
         * "\u20ac" is 6 bytes of input each */
        cm_buf_reset(&b);
        cm_buf_adds(&b, "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":"
                        "\"user\",\"content\":\"");
        for (i = 0; i < 21845; i++)
                cm_buf_adds(&b, "\\u20ac");
        cm_buf_adds(&b, "\"}");
        event_ok(b.buf, &ev);
        assert_int_equal(ev.msg.content_len, 65535);
        cm_event_release(&ev);
        /* ... and one more ASCII byte is still at the limit, two are over */
        for (i = 0; i < 21845; i++)
                memcpy(uni + 3 * i, "\xe2\x82\xac", 3);
        uni[65535] = 'x';
        uni[65536] = '\0';
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"%s\"}",
                    uni);
        event_ok(b.buf, &ev);
        assert_int_equal(ev.msg.content_len, MAXC);
        cm_event_release(&ev);
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"%sy\"}",
                    uni);
        event_fails(b.buf, "65537 bytes is over the limit of 65536");

        cm_buf_release(&b);
        free(at);
        free(over);
        free(big);
        free(uni);
}

static void test_event_malformed(void **state)
{
        static const struct {
                const char *json;
                const char *err;
        } cases[] = {
            {"", "malformed JSON: empty input"},
            {"{", "malformed JSON"},
            {"{\"event_id\":\"e\"", "malformed JSON"},
            {"{\"event_id\":\"e", "malformed JSON: unterminated string"},
            {"not json", "malformed JSON"},
            {"{\"a\":1} x", "malformed JSON"},
            {"{\"a\":1}{\"b\":2}", "malformed JSON"},
            {"{\"a\":1}]", "malformed JSON"},
            {"[{\"event_id\":\"e\"}]",
             "malformed JSON: top level must be an object, got array"},
            {"\"event\"", "top level must be an object, got string"},
            {"42", "top level must be an object, got integer"},
            {"null", "top level must be an object, got null"},
            {"{\"a\":1,}", "malformed JSON"},
            {"{'event_id':'e'}", "malformed JSON: unexpected character "
                                 "'''"},
            {"{event_id:1}", "malformed JSON"},
            {"{\"a\":NaN}", "malformed JSON: unexpected word 'NaN'"},
            {"{\"a\":Infinity}", "malformed JSON: unexpected word"},
            {"{\"a\":-Infinity}", "malformed JSON: invalid number"},
            {"{\"a\":1.}", "malformed JSON: invalid number"},
            {"{\"a\":.5}", "malformed JSON"},
            {"{\"a\":01}", "malformed JSON: invalid number"},
            {"{\"a\":+1}", "malformed JSON"},
            {"{\"a\":True}", "malformed JSON: unexpected word 'True'"},
            {"{\"a\":1 /* c */}", "malformed JSON"},
            {"{\"a\":\"tab\there\"}", "malformed JSON: control character 0x09"},
            {"{\"a\":\"\\x41\"}", "malformed JSON: invalid escape"},
            {"{\"a\":\"\\u12\"}", "malformed JSON: invalid \\u escape"},
            {"{\"a\":\"x\"}\x01", "malformed JSON: unexpected character "
                                  "0x01"},
        };
        cm_event_t ev;
        char err[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu: %s\n", i, cases[i].json);
                event_fails(cases[i].json, cases[i].err);
        }
        /* a NUL inside the buffer is not the end of it */
        assert_int_equal(
            cm_event_decode("{}\0{}", 5, MAXC, &ev, err, sizeof(err)), -1);
        assert_contains(err, "malformed JSON");
        assert_int_equal(cm_event_decode(NULL, 0, MAXC, &ev, err, sizeof(err)),
                         -1);
        /* the length bounds the input: a valid prefix is still cut short */
        assert_int_equal(cm_event_decode("{\"event_id\":\"e\"}", 10, MAXC, &ev,
                                         err, sizeof(err)),
                         -1);
        assert_contains(err, "malformed JSON");
        /* deep nesting: test_hostile_nesting */
}

static void test_event_invalid_utf8(void **state)
{
        static const char *const cases[] = {
            /* raw 0xff */
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\xff\"}",
            /* overlong '/' */
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\xc0\xaf\"}",
            /* truncated 3-byte sequence */
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\xe2\x82\"}",
            /* raw UTF-16 surrogate */
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\xed\xa0\x80\"}",
            /* above U+10FFFF */
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\xf4\x90\x80\x80\"}",
            /* in a key, in an ignored field */
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\",\"x\xff\":1}",
            /* lone surrogate escapes */
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\\ud800\"}",
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\\uDBFFz\"}",
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\\udc00\"}",
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"\\ud800\\u0041\"}",
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"\\ud800\\ud800\"}",
        };
        cm_event_t ev;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu\n", i);
                event_fails(cases[i], "invalid UTF-8");
        }
        event_fails(cases[0], "invalid UTF-8 at byte 56");
        event_fails(cases[6], "unpaired surrogate escape \\ud800");

        /* a proper pair decodes to one 4-byte character */
        event_ok("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                 "\"content\":\"\\ud83d\\ude00 \\u00e9\xc3\xa9\"}",
                 &ev);
        assert_string_equal(ev.msg.content,
                            "\xf0\x9f\x98\x80 \xc3\xa9\xc3\xa9");
        cm_event_release(&ev);

        /* an escaped NUL would cut our C strings short */
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"a\\u0000b\"}",
                    "field 'content': must not contain NUL");
}

static void test_event_duplicate_keys(void **state)
{
        cm_event_t ev;

        (void)state;
        /* json-c keeps the last of two equal keys; another reader might keep
         * the first, so such a message is refused */
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u1\",\"user_id\":"
                    "\"u2\",\"role\":\"user\",\"content\":\"x\"}",
                    "malformed JSON: duplicate key");
        event_fails("{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
                    "\"u\",\"profile\":{\"name\":\"a\",\"name\":\"b\"}}",
                    "duplicate key");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\",\"x\":[{},{\"a\":1,\"b\":{\"c\":1,"
                    "\"c\":2}}]}",
                    "duplicate key");
        /* same key in different objects, and braces, colons and quotes
         * inside strings, are not duplicates */
        event_ok("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                 "\"content\":\"{\\\"a\\\":1,\\\"a\\\":2}: }{\",\"x\":"
                 "[{\"a\":1},{\"a\":{\"a\":{}}},[[{\"a\":[]}]]],"
                 "\"y\":{\"event_id\":\"z\",\"k:\":\":\"}}",
                 &ev);
        assert_string_equal(ev.msg.content, "{\"a\":1,\"a\":2}: }{");
        cm_event_release(&ev);
        /* the request_id is still read for the error reply */
        request_fails("{\"request_id\":\"r\",\"user_id\":\"u\",\"recent\":1,"
                      "\"recent\":2}",
                      "duplicate key", "r");
}

static void test_event_escapes(void **state)
{
        cm_event_t ev;

        (void)state;
        event_ok("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                 "\"content\":\"q\\\"b\\\\s\\/n\\nt\\tr\\rb\\bf\\f\"}",
                 &ev);
        assert_string_equal(ev.msg.content, "q\"b\\s/n\nt\tr\rb\bf\f");
        cm_event_release(&ev);
}

static void test_event_ts(void **state)
{
        cm_event_t ev;

        (void)state;
        event_ok("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                 "\"content\":\"x\",\"ts\":9223372036854775807}",
                 &ev);
        assert_true(ev.msg.ts == INT64_MAX);
        cm_event_release(&ev);
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\",\"ts\":9223372036854775808}",
                    "field 'ts': integer out of range");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\",\"ts\":-99999999999999999999}",
                    "field 'ts': must be a non-negative integer");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\",\"ts\":1732400000123.0}",
                    "field 'ts': must be an integer, got non-integer number");
}

static void check_event_round_trip(const char *json)
{
        cm_event_t a, b;
        char *enc;
        size_t i;

        event_ok(json, &a);
        enc = cm_event_encode(&a);
        event_ok(enc, &b);
        assert_int_equal(a.type, b.type);
        assert_string_equal(a.event_id, b.event_id);
        assert_string_equal(a.user_id, b.user_id);
        assert_string_equal(a.conversation_id, b.conversation_id);
        assert_int_equal(a.msg.role, b.msg.role);
        if (a.msg.content) {
                assert_int_equal(a.msg.content_len, b.msg.content_len);
                assert_memory_equal(a.msg.content, b.msg.content,
                                    a.msg.content_len);
        } else {
                assert_null(b.msg.content);
        }
        assert_true(a.msg.ts == b.msg.ts);
        if (a.profile.name)
                assert_string_equal(a.profile.name, b.profile.name);
        else
                assert_null(b.profile.name);
        if (a.profile.role)
                assert_string_equal(a.profile.role, b.profile.role);
        else
                assert_null(b.profile.role);
        assert_int_equal(a.profile.interest_cnt, b.profile.interest_cnt);
        for (i = 0; i < a.profile.interest_cnt; i++)
                assert_string_equal(a.profile.interests[i],
                                    b.profile.interests[i]);
        free(enc);
        cm_event_release(&a);
        cm_event_release(&b);
}

static void test_event_round_trip(void **state)
{
        (void)state;
        check_event_round_trip(
            "{\"event_id\":\"b7c1\",\"user_id\":\"u42\",\"role\":"
            "\"assistant\",\"content\":\"line\\n\\\"q\\\" </a> \\u00e9 "
            "\\ud83d\\ude00 \\u0001\",\"ts\":1732400000123}");
        check_event_round_trip("{\"event_id\":\"e\",\"user_id\":\"u\","
                               "\"role\":\"system\",\"content\":\"x\"}");
        check_event_round_trip(
            "{\"type\":\"profile.set\",\"event_id\":\"e2\",\"user_id\":"
            "\"u\",\"conversation_id\":\"c\",\"profile\":{\"name\":"
            "\"Sumit\",\"interests\":[\"React\",\"Node.js\"]}}");
        check_event_round_trip("{\"type\":\"profile.set\",\"event_id\":\"e2\","
                               "\"user_id\":\"u\",\"profile\":{\"role\":"
                               "\"dev\"}}");
        check_event_round_trip("{\"type\":\"session.delete\",\"event_id\":"
                               "\"e3\",\"user_id\":\"u\","
                               "\"conversation_id\":\"c\"}");
        check_event_round_trip("{\"type\":\"user.delete\",\"event_id\":\"e4\","
                               "\"user_id\":\"u\"}");
}

static void test_event_encode_shape(void **state)
{
        cm_event_t ev;
        json_object *obj;
        char *enc;

        (void)state;
        memset(&ev, 0, sizeof(ev));
        ev.type = CM_EVENT_MESSAGE;
        memcpy(ev.event_id, "e1", 3);
        memcpy(ev.user_id, "u1", 3);
        ev.msg.role = CM_ROLE_USER;
        ev.msg.content = "a/b";
        ev.msg.content_len = 3;
        enc = cm_event_encode(&ev);
        /* plain, no slash escaping, no ts when 0, conversation defaulted */
        assert_string_equal(enc, "{\"type\":\"message\",\"event_id\":\"e1\","
                                 "\"user_id\":\"u1\",\"conversation_id\":"
                                 "\"default\",\"role\":\"user\",\"content\":"
                                 "\"a/b\"}");
        free(enc);

        ev.msg.ts = 1732400000123LL;
        enc = cm_event_encode(&ev);
        obj = parse(enc);
        assert_true(get_int(obj, "ts") == 1732400000123LL);
        json_object_put(obj);
        free(enc);

        ev.type = CM_EVENT_PROFILE_SET;
        enc = cm_event_encode(&ev);
        obj = parse(enc);
        assert_string_equal(get_str(obj, "type"), "profile.set");
        assert_int_equal(
            json_object_object_length(get(obj, "profile", json_type_object)),
            0);
        assert_false(has(obj, "content"));
        json_object_put(obj);
        free(enc);
}

/*
 * Requests
 */

static void test_request_full(void **state)
{
        cm_request_t req;

        (void)state;
        request_ok("{\"request_id\": \"r-991\", \"user_id\": \"u42\", "
                   "\"conversation_id\": \"default\", \"reply_to\": "
                   "\"context.replies\", \"max_tokens\": 2000, \"recent\": 3, "
                   "\"query\": \"Do you remember my name?\", \"scope\": "
                   "\"user\", \"history\": "
                   "[{\"role\": \"user\", \"content\": \"Hi\"}, "
                   "{\"role\": \"assistant\", \"content\": \"\"}]}",
                   &req);
        assert_string_equal(req.request_id, "r-991");
        assert_string_equal(req.user_id, "u42");
        assert_string_equal(req.conversation_id, "default");
        assert_string_equal(req.reply_to, "context.replies");
        assert_int_equal(req.max_tokens, 2000);
        assert_int_equal(req.recent, 3);
        assert_string_equal(req.query, "Do you remember my name?");
        assert_int_equal(req.scope_user, 1);
        assert_int_equal(req.has_history, 1);
        assert_int_equal(req.history_cnt, 2);
        assert_int_equal(req.history[0].role, CM_ROLE_USER);
        assert_string_equal(req.history[0].content, "Hi");
        assert_int_equal(req.history[0].content_len, 2);
        assert_int_equal(req.history[0].tokens, -1);
        assert_int_equal(req.history[1].role, CM_ROLE_ASSISTANT);
        assert_string_equal(req.history[1].content, "");
        assert_true(cm_profile_empty(&req.profile));
        assert_int_equal(req.stateless, 0);
        cm_request_release(&req);
        assert_null(req.history);
        cm_request_release(&req);

        request_ok("{\"request_id\": \"r\", \"user_id\": \"u\", "
                   "\"stored\": false, \"profile\": {\"name\": \"Ann\", "
                   "\"interests\": [\"chess\"]}}",
                   &req);
        assert_int_equal(req.stateless, 1);
        assert_string_equal(req.profile.name, "Ann");
        assert_null(req.profile.role);
        assert_int_equal(req.profile.interest_cnt, 1);
        assert_string_equal(req.profile.interests[0], "chess");
        cm_request_release(&req);
        request_ok("{\"request_id\": \"r\", \"user_id\": \"u\", "
                   "\"stored\": true}",
                   &req);
        assert_int_equal(req.stateless, 0);
        cm_request_release(&req);
}

/* Kafka header routing: kafka_correlationId and kafka_replyTopic stand
 * for a request_id and reply_to the body lacks; the body wins. */
static void test_request_routed(void **state)
{
        static const unsigned char uuid[16] = {
            0x00, 0x11, 0xff, 0x7a, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
        cm_request_route_t route = {"corr-1", "context.replies.hdr"};
        cm_request_t req;
        char id[CM_ID_MAX + 1], err[512] = "", big[200];
        const char *body = "{\"user_id\":\"u\"}";

        (void)state;
        /* Correlation bytes: an id as it is, binary as hex. */
        assert_int_equal(cm_request_id_from_bytes("r-1:x", 5, id), 0);
        assert_string_equal(id, "r-1:x");
        assert_int_equal(cm_request_id_from_bytes(uuid, 16, id), 0);
        assert_string_equal(id, "0011ff7a0102030405060708090a0b0c");
        assert_int_equal(cm_request_id_from_bytes("", 0, id), -1);
        memset(big, 0xfe, sizeof(big));
        assert_int_equal(cm_request_id_from_bytes(big, 65, id), -1);
        assert_int_equal(cm_request_id_from_bytes(big, 64, id), 0);
        assert_int_equal(strlen(id), 128);

        /* Only headers: both come from the route. */
        assert_int_equal(cm_request_decode_routed(body, strlen(body), MAXC,
                                                  &route, &req, err,
                                                  sizeof(err)),
                         0);
        assert_string_equal(req.request_id, "corr-1");
        assert_string_equal(req.reply_to, "context.replies.hdr");
        cm_request_release(&req);

        /* The body wins where it has the field. */
        body = "{\"request_id\":\"r9\",\"user_id\":\"u\",\"reply_to\":"
               "\"context.replies.b\"}";
        assert_int_equal(cm_request_decode_routed(body, strlen(body), MAXC,
                                                  &route, &req, err,
                                                  sizeof(err)),
                         0);
        assert_string_equal(req.request_id, "r9");
        assert_string_equal(req.reply_to, "context.replies.b");
        cm_request_release(&req);

        /* A bad request is answered by the header's id on its topic; a
         * header topic that is no topic name is left out. */
        body = "{\"user_id\":\"bad id\"}";
        assert_int_equal(cm_request_decode_routed(body, strlen(body), MAXC,
                                                  &route, &req, err,
                                                  sizeof(err)),
                         -1);
        assert_string_equal(req.request_id, "corr-1");
        assert_string_equal(req.reply_to, "context.replies.hdr");
        cm_request_release(&req);
        route.reply_to = "bad/topic";
        body = "not json";
        assert_int_equal(cm_request_decode_routed(body, strlen(body), MAXC,
                                                  &route, &req, err,
                                                  sizeof(err)),
                         -1);
        assert_string_equal(req.request_id, "corr-1");
        assert_null(req.reply_to);
        cm_request_release(&req);

        /* Without a route, a body without request_id is refused. */
        body = "{\"user_id\":\"u\"}";
        assert_int_equal(cm_request_decode_routed(body, strlen(body), MAXC,
                                                  NULL, &req, err, sizeof(err)),
                         -1);
        assert_string_equal(req.request_id, "");
        cm_request_release(&req);
}

static void test_request_defaults(void **state)
{
        cm_request_t req;

        (void)state;
        request_ok("{\"request_id\":\"r:1\",\"user_id\":\"u\"}", &req);
        assert_string_equal(req.request_id, "r:1");
        assert_string_equal(req.conversation_id, "default");
        assert_null(req.reply_to);
        assert_int_equal(req.max_tokens, 0);
        assert_int_equal(req.recent, -1);
        assert_null(req.query);
        assert_int_equal(req.scope_user, 0);
        assert_null(req.history);
        assert_int_equal(req.history_cnt, 0);
        assert_int_equal(req.has_history, 0);
        cm_request_release(&req);

        /* empty history is still "the application keeps its history" */
        request_ok("{\"request_id\":\"r\",\"user_id\":\"u\",\"history\":[],"
                   "\"query\":\"\"}",
                   &req);
        assert_int_equal(req.has_history, 1);
        assert_int_equal(req.history_cnt, 0);
        assert_null(req.query); /* an empty query is no query */
        cm_request_release(&req);

        /* bounds are inclusive */
        request_ok("{\"request_id\":\"r\",\"user_id\":\"u\",\"max_tokens\":1,"
                   "\"recent\":0}",
                   &req);
        assert_int_equal(req.max_tokens, 1);
        assert_int_equal(req.recent, 0);
        cm_request_release(&req);
        request_ok("{\"request_id\":\"r\",\"user_id\":\"u\",\"max_tokens\":"
                   "1000000,\"recent\":1000}",
                   &req);
        assert_int_equal(req.max_tokens, 1000000);
        assert_int_equal(req.recent, 1000);
        cm_request_release(&req);
}

static void test_request_bad_fields_keep_id(void **state)
{
        static const struct {
                const char *fields;
                const char *err;
        } cases[] = {
            {"", "missing field 'user_id'"},
            {",\"user_id\":7", "field 'user_id': must be a string"},
            {",\"user_id\":\"a/b\"",
             "field 'user_id': forbidden character '/'"},
            {",\"user_id\":\"u\",\"conversation_id\":\"\"",
             "field 'conversation_id': must be 1..128 bytes"},
            {",\"user_id\":\"u\",\"max_tokens\":0",
             "field 'max_tokens': must be an integer in 1..1000000, "
             "got 0"},
            {",\"user_id\":\"u\",\"max_tokens\":1000001",
             "field 'max_tokens': must be an integer in 1..1000000"},
            {",\"user_id\":\"u\",\"max_tokens\":-5",
             "field 'max_tokens': must be an integer in 1..1000000"},
            {",\"user_id\":\"u\",\"max_tokens\":\"2000\"",
             "field 'max_tokens': must be an integer, got string"},
            {",\"user_id\":\"u\",\"max_tokens\":2000.5",
             "field 'max_tokens': must be an integer"},
            {",\"user_id\":\"u\",\"max_tokens\":99999999999999999999",
             "field 'max_tokens': integer out of range"},
            {",\"user_id\":\"u\",\"recent\":-1",
             "field 'recent': must be an integer in 0..1000, got -1"},
            {",\"user_id\":\"u\",\"recent\":1001",
             "field 'recent': must be an integer in 0..1000"},
            {",\"user_id\":\"u\",\"recent\":true",
             "field 'recent': must be an integer, got boolean"},
            {",\"user_id\":\"u\",\"query\":5",
             "field 'query': must be a string"},
            {",\"user_id\":\"u\",\"scope\":\"all\"",
             "field 'scope': must be \"session\" or \"user\", got \"all\""},
            {",\"user_id\":\"u\",\"scope\":1",
             "field 'scope': must be a string"},
            {",\"user_id\":\"u\",\"reply_to\":\"a/b\"",
             "field 'reply_to': forbidden character '/'"},
            {",\"user_id\":\"u\",\"reply_to\":\"a:b\"",
             "field 'reply_to': forbidden character ':'"},
            {",\"user_id\":\"u\",\"reply_to\":\"\"",
             "field 'reply_to': must be a topic name"},
            {",\"user_id\":\"u\",\"reply_to\":\"..\"",
             "field 'reply_to': must be a topic name"},
            {",\"user_id\":\"u\",\"reply_to\":[]",
             "field 'reply_to': must be a string, got array"},
            {",\"user_id\":\"u\",\"stored\":0",
             "field 'stored': must be a boolean, got integer"},
            {",\"user_id\":\"u\",\"profile\":\"Ann\"",
             "field 'profile': must be an object, got string"},
            {",\"user_id\":\"u\",\"profile\":{\"name\":\"\"}",
             "field 'profile.name': must not be empty"},
            {",\"user_id\":\"u\",\"history\":{}",
             "field 'history': must be an array, got object"},
            {",\"user_id\":\"u\",\"history\":[\"hi\"]",
             "field 'history[0]': must be an object, got string"},
            {",\"user_id\":\"u\",\"history\":[{\"role\":\"user\","
             "\"content\":\"a\"},{\"content\":\"b\"}]",
             "missing field 'history[1].role'"},
            {",\"user_id\":\"u\",\"history\":[{\"role\":\"user\"}]",
             "missing field 'history[0].content'"},
            {",\"user_id\":\"u\",\"history\":[{\"role\":\"robot\","
             "\"content\":\"b\"}]",
             "field 'history[0].role': must be one of user, assistant, "
             "system"},
            {",\"user_id\":\"u\",\"history\":[{\"role\":\"user\","
             "\"content\":1}]",
             "field 'history[0].content': must be a string, got "
             "integer"},
            {",\"user_id\":\"u\",\"history\":[{\"role\":\"user\","
             "\"content\":\"\\udfff\"}]",
             "invalid UTF-8"},
        };
        cm_buf_t b;
        size_t i;

        (void)state;
        cm_buf_init(&b);
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                cm_buf_reset(&b);
                cm_buf_addf(&b, "{\"request_id\":\"r-991\"%s}",
                            cases[i].fields);
                print_message("case %zu: %s\n", i, b.buf);
                request_fails(b.buf, cases[i].err, "r-991");
        }
        cm_buf_release(&b);
}

static void test_request_limits(void **state)
{
        char *s = repeat('q', MAXC + 1);
        char *t = repeat('t', 250);
        cm_request_t req;
        cm_buf_t b;
        int i;

        (void)state;
        cm_buf_init(&b);
        cm_buf_addf(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"query\":"
                    "\"%s\"}",
                    s);
        request_fails(b.buf,
                      "field 'query': 65537 bytes is over the limit of "
                      "65536",
                      "r");
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"history\":"
                    "[{\"role\":\"user\",\"content\":\"%s\"}]}",
                    s);
        request_fails(b.buf, "field 'history[0].content': 65537 bytes is over",
                      "r");
        s[MAXC] = '\0';
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"query\":\"%s\","
                    "\"history\":[{\"role\":\"user\",\"content\":\"%s\"}]}",
                    s, s);
        request_ok(b.buf, &req);
        assert_int_equal(strlen(req.query), MAXC);
        assert_int_equal(req.history[0].content_len, MAXC);
        cm_request_release(&req);

        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"reply_to\":"
                    "\"%s\"}",
                    t);
        request_fails(b.buf,
                      "field 'reply_to': must be a topic name of "
                      "1..249 bytes",
                      "r");
        t[249] = '\0';
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"reply_to\":"
                    "\"%s\"}",
                    t);
        request_ok(b.buf, &req);
        assert_string_equal(req.reply_to, t);
        cm_request_release(&req);

        /* 10000 history entries are fine, 10001 are not */
        cm_buf_reset(&b);
        cm_buf_adds(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"history\":[");
        for (i = 0; i < 10000; i++)
                cm_buf_addf(&b, "%s{\"role\":\"user\",\"content\":\"m%d\"}",
                            i ? "," : "", i);
        cm_buf_adds(&b, "]}");
        request_ok(b.buf, &req);
        assert_int_equal(req.history_cnt, 10000);
        assert_string_equal(req.history[9999].content, "m9999");
        cm_request_release(&req);
        b.len -= 2;
        b.buf[b.len] = '\0';
        cm_buf_adds(&b, ",{\"role\":\"user\",\"content\":\"x\"}]}");
        request_fails(b.buf,
                      "field 'history': 10001 entries is over the "
                      "limit of 10000",
                      "r");
        cm_buf_release(&b);
        free(s);
        free(t);
}

static void test_request_id_unreadable(void **state)
{
        (void)state;
        request_fails("{\"user_id\":\"u\"}", "missing field 'request_id'", "");
        request_fails("{\"request_id\":\"r 1\",\"user_id\":\"u\"}",
                      "field 'request_id': forbidden character ' '", "");
        request_fails("{\"request_id\":12,\"user_id\":\"u\"}",
                      "field 'request_id': must be a string", "");
        request_fails("{\"request_id\":\"r-1\",\"user_id\":\"u\"",
                      "malformed "
                      "JSON",
                      "");
        request_fails("[{\"request_id\":\"r-1\"}]",
                      "top level must be an "
                      "object",
                      "");
        request_fails("{\"request_id\":\"r\xff\",\"user_id\":\"u\"}",
                      "invalid UTF-8", "");
        request_fails("{\"request_id\":\"r\\ud800\",\"user_id\":\"u\"}",
                      "invalid UTF-8", "");
        /* readable although the input is refused elsewhere */
        request_fails("{\"request_id\":\"r-1\",\"user_id\":\"u\","
                      "\"query\":\"\xff\"}",
                      "invalid UTF-8 at byte 43", "r-1");
        request_fails("{\"request_id\":\"r-1\",\"user_id\":\"u\","
                      "\"query\":\"\\ud800\"}",
                      "invalid UTF-8", "r-1");
        request_fails("{\"request_id\":\"r-1\",\"user_id\":\"u\","
                      "\"max_tokens\":NaN}",
                      "malformed JSON", "r-1");
}

static void test_request_round_trip(void **state)
{
        cm_message_t hist[2];
        cm_request_t req, out;
        char *enc;
        json_object *obj;

        (void)state;
        memset(&req, 0, sizeof(req));
        memset(hist, 0, sizeof(hist));
        memcpy(req.request_id, "r-1:x", 6);
        memcpy(req.user_id, "u42", 4);
        memcpy(req.conversation_id, "c.9", 4);
        req.reply_to = "my.replies";
        req.max_tokens = 1500;
        req.recent = 0;
        req.query = "what's my name? \xe2\x82\xac";
        hist[0].role = CM_ROLE_USER;
        hist[0].content = "Hi, I'm \"Sumit\"";
        hist[0].content_len = strlen(hist[0].content);
        hist[1].role = CM_ROLE_ASSISTANT;
        hist[1].content = "Hello\nSumit";
        hist[1].content_len = strlen(hist[1].content);
        req.history = hist;
        req.history_cnt = 2;
        req.has_history = 1;
        req.profile.name = "Ann Lee";
        req.stateless = 1;

        enc = cm_request_encode(&req);
        request_ok(enc, &out);
        assert_string_equal(out.request_id, req.request_id);
        assert_string_equal(out.user_id, req.user_id);
        assert_string_equal(out.conversation_id, req.conversation_id);
        assert_string_equal(out.reply_to, req.reply_to);
        assert_int_equal(out.max_tokens, 1500);
        assert_int_equal(out.recent, 0);
        assert_string_equal(out.query, req.query);
        assert_int_equal(out.has_history, 1);
        assert_int_equal(out.history_cnt, 2);
        assert_int_equal(out.history[0].role, CM_ROLE_USER);
        assert_string_equal(out.history[0].content, hist[0].content);
        assert_int_equal(out.history[1].role, CM_ROLE_ASSISTANT);
        assert_string_equal(out.history[1].content, hist[1].content);
        assert_string_equal(out.profile.name, "Ann Lee");
        assert_int_equal(out.stateless, 1);
        cm_request_release(&out);
        free(enc);

        /* defaults are left out, so that the server's defaults apply */
        memset(&req, 0, sizeof(req));
        memcpy(req.request_id, "r", 2);
        memcpy(req.user_id, "u", 2);
        req.recent = -1;
        enc = cm_request_encode(&req);
        obj = parse(enc);
        assert_string_equal(get_str(obj, "conversation_id"), "default");
        assert_false(has(obj, "reply_to"));
        assert_false(has(obj, "max_tokens"));
        assert_false(has(obj, "recent"));
        assert_false(has(obj, "query"));
        assert_false(has(obj, "history"));
        json_object_put(obj);
        request_ok(enc, &out);
        assert_int_equal(out.max_tokens, 0);
        assert_int_equal(out.recent, -1);
        assert_int_equal(out.has_history, 0);
        cm_request_release(&out);
        free(enc);

        /* an empty history is kept */
        req.has_history = 1;
        enc = cm_request_encode(&req);
        request_ok(enc, &out);
        assert_int_equal(out.has_history, 1);
        assert_int_equal(out.history_cnt, 0);
        cm_request_release(&out);
        free(enc);
}

/*
 * Replies
 */

static void make_reply(cm_reply_t *reply, cm_profile_t *profile,
                       cm_message_t recent[2])
{
        static char *interests[] = {"React", "Node.js"};

        memset(profile, 0, sizeof(*profile));
        profile->name = "Sumit Pandya";
        profile->role = "full stack developer";
        profile->interests = interests;
        profile->interest_cnt = 2;
        memset(recent, 0, 2 * sizeof(*recent));
        recent[0].role = CM_ROLE_USER;
        recent[0].content = "Can you give me a practical example?";
        recent[0].content_len = strlen(recent[0].content);
        recent[0].tokens = 9;
        recent[0].seq = 10;
        recent[1].role = CM_ROLE_ASSISTANT;
        recent[1].content = "Sure: `await fetch(\"/api\")`";
        recent[1].content_len = 0; /* left 0: strlen is used */
        memset(reply, 0, sizeof(*reply));
        reply->request_id = "r-991";
        reply->user_id = "u42";
        reply->conversation_id = "default";
        reply->context = "User Profile: Sumit Pandya, full stack developer\n"
                         "Interests: React, Node.js\n\nRecent Messages:\n"
                         "User: Can you give me a practical example?";
        reply->profile = profile;
        reply->summary = "The user asked about async/await.";
        reply->recent = recent;
        reply->recent_cnt = 2;
        reply->meta.total_messages = 11;
        reply->meta.summarized = 1;
        reply->meta.cached = 0;
        reply->meta.tokens = 412;
        reply->meta.full_history_tokens = 1630;
        reply->meta.degraded = 0;
        reply->meta.build_us = 180;
        reply->meta.recalled = 4;
        reply->meta.recall_us = 35;
}

static void test_reply_shape(void **state)
{
        static const char *const top[] = {
            "request_id", "user_id", "conversation_id", "context",
            "profile",    "summary", "recent",          "metadata"};
        cm_profile_t profile;
        cm_message_t recent[2];
        cm_reply_t reply;
        json_object *obj, *p, *arr, *m, *e;
        char *enc;
        size_t i;

        (void)state;
        make_reply(&reply, &profile, recent);
        enc = cm_reply_encode(&reply);
        assert_true(cm_utf8_valid(enc, strlen(enc)));
        assert_null(strstr(enc, "\\/")); /* no slash escaping */
        /* plain: no spaces between tokens */
        assert_true(
            !strncmp(enc, "{\"request_id\":\"r-991\",\"user_id\":", 32));
        obj = parse(enc);
        assert_int_equal(json_object_object_length(obj), 8);
        for (i = 0; i < 8; i++)
                assert_true(has(obj, top[i]));
        assert_string_equal(get_str(obj, "request_id"), "r-991");
        assert_string_equal(get_str(obj, "user_id"), "u42");
        assert_string_equal(get_str(obj, "conversation_id"), "default");
        assert_string_equal(get_str(obj, "context"), reply.context);
        assert_string_equal(get_str(obj, "summary"), reply.summary);

        p = get(obj, "profile", json_type_object);
        assert_int_equal(json_object_object_length(p), 3);
        assert_string_equal(get_str(p, "name"), "Sumit Pandya");
        assert_string_equal(get_str(p, "role"), "full stack developer");
        arr = get(p, "interests", json_type_array);
        assert_int_equal(json_object_array_length(arr), 2);
        assert_string_equal(
            json_object_get_string(json_object_array_get_idx(arr, 1)),
            "Node.js");

        arr = get(obj, "recent", json_type_array);
        assert_int_equal(json_object_array_length(arr), 2);
        for (i = 0; i < 2; i++) {
                e = json_object_array_get_idx(arr, i);
                assert_true(json_object_is_type(e, json_type_object));
                /* only role and content: no seq, ts, tokens */
                assert_int_equal(json_object_object_length(e), 2);
                assert_string_equal(get_str(e, "content"), recent[i].content);
        }
        assert_string_equal(get_str(json_object_array_get_idx(arr, 0), "role"),
                            "user");
        assert_string_equal(get_str(json_object_array_get_idx(arr, 1), "role"),
                            "assistant");

        m = get(obj, "metadata", json_type_object);
        assert_int_equal(json_object_object_length(m), 9);
        assert_int_equal(get_int(m, "total_messages"), 11);
        assert_true(
            json_object_get_boolean(get(m, "summarized", json_type_boolean)));
        assert_false(
            json_object_get_boolean(get(m, "cached", json_type_boolean)));
        assert_int_equal(get_int(m, "tokens"), 412);
        assert_int_equal(get_int(m, "full_history_tokens"), 1630);
        assert_false(
            json_object_get_boolean(get(m, "degraded", json_type_boolean)));
        assert_int_equal(get_int(m, "build_us"), 180);
        assert_int_equal(get_int(m, "recalled"), 4);
        assert_int_equal(get_int(m, "recall_us"), 35);
        json_object_put(obj);
        free(enc);
}

static void test_reply_minimal_shape(void **state)
{
        cm_reply_t reply;
        json_object *obj, *p;
        char *enc;

        (void)state;
        /* context.prebuilt: no request_id; nothing known yet */
        memset(&reply, 0, sizeof(reply));
        reply.user_id = "u";
        reply.conversation_id = "c";
        reply.context = "";
        reply.meta.total_messages = 5000000000LL;
        reply.meta.build_us = 4000000000LL;
        reply.meta.degraded = 7; /* any non-zero is true */
        enc = cm_reply_encode(&reply);
        obj = parse(enc);
        assert_false(has(obj, "request_id"));
        assert_int_equal(json_object_object_length(obj), 7);
        p = get(obj, "profile", json_type_object);
        assert_int_equal(json_object_object_length(p), 1);
        assert_int_equal(
            json_object_array_length(get(p, "interests", json_type_array)), 0);
        assert_string_equal(get_str(obj, "summary"), "");
        assert_int_equal(
            json_object_array_length(get(obj, "recent", json_type_array)), 0);
        p = get(obj, "metadata", json_type_object);
        assert_true(get_int(p, "total_messages") == 5000000000LL);
        assert_true(get_int(p, "build_us") == 4000000000LL);
        assert_true(
            json_object_get_boolean(get(p, "degraded", json_type_boolean)));
        json_object_put(obj);
        free(enc);
}

static void test_reply_round_trip(void **state)
{
        cm_profile_t profile;
        cm_message_t recent[2];
        cm_reply_t reply;
        cm_reply_doc_t doc;
        char err[256];
        char *enc;

        (void)state;
        make_reply(&reply, &profile, recent);
        reply.meta.cached = 1;
        reply.meta.degraded = 1;
        enc = cm_reply_encode(&reply);
        assert_int_equal(
            cm_reply_decode(enc, strlen(enc), &doc, err, sizeof(err)), 0);
        assert_int_equal(doc.is_error, 0);
        assert_string_equal(doc.request_id, "r-991");
        assert_string_equal(doc.user_id, "u42");
        assert_string_equal(doc.conversation_id, "default");
        assert_string_equal(doc.context, reply.context);
        assert_string_equal(doc.profile.name, "Sumit Pandya");
        assert_string_equal(doc.profile.role, "full stack developer");
        assert_int_equal(doc.profile.interest_cnt, 2);
        assert_string_equal(doc.profile.interests[0], "React");
        assert_string_equal(doc.summary, reply.summary);
        assert_int_equal(doc.recent_cnt, 2);
        assert_int_equal(doc.recent[1].role, CM_ROLE_ASSISTANT);
        assert_string_equal(doc.recent[1].content, recent[1].content);
        assert_int_equal(doc.meta.total_messages, 11);
        assert_int_equal(doc.meta.summarized, 1);
        assert_int_equal(doc.meta.cached, 1);
        assert_int_equal(doc.meta.tokens, 412);
        assert_int_equal(doc.meta.full_history_tokens, 1630);
        assert_int_equal(doc.meta.degraded, 1);
        assert_int_equal(doc.meta.build_us, 180);
        assert_null(doc.error_code);
        cm_reply_doc_release(&doc);
        cm_reply_doc_release(&doc);
        free(enc);

        /* prebuilt: no request_id, empty profile */
        reply.request_id = NULL;
        reply.profile = NULL;
        enc = cm_reply_encode(&reply);
        assert_int_equal(
            cm_reply_decode(enc, strlen(enc), &doc, err, sizeof(err)), 0);
        assert_null(doc.request_id);
        assert_true(cm_profile_empty(&doc.profile));
        cm_reply_doc_release(&doc);
        free(enc);
}

static void test_reply_encode_bad_utf8(void **state)
{
        cm_reply_t reply;
        cm_reply_doc_t doc;
        char err[256];
        char *enc;

        (void)state;
        /* a caller's bug (a cut in mid-character) still gives valid JSON */
        memset(&reply, 0, sizeof(reply));
        reply.user_id = "u";
        reply.conversation_id = "c";
        reply.context = "caf\xc3";
        reply.summary = "\xff ok";
        enc = cm_reply_encode(&reply);
        assert_true(cm_utf8_valid(enc, strlen(enc)));
        assert_int_equal(
            cm_reply_decode(enc, strlen(enc), &doc, err, sizeof(err)), 0);
        assert_string_equal(doc.context, "caf\xef\xbf\xbd");
        assert_string_equal(doc.summary, "\xef\xbf\xbd ok");
        cm_reply_doc_release(&doc);
        free(enc);

        /* one U+FFFD per maximal subpart (text.h), not one per byte */
        reply.context = "x\xe2\x82y";            /* E2 82: one subpart */
        reply.summary = "\xf0\x9f\x98 \xe0\x80"; /* one; then E0, 80 */
        enc = cm_reply_encode(&reply);
        assert_int_equal(
            cm_reply_decode(enc, strlen(enc), &doc, err, sizeof(err)), 0);
        assert_string_equal(doc.context, "x\xef\xbf\xbdy");
        assert_string_equal(doc.summary,
                            "\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
        cm_reply_doc_release(&doc);
        free(enc);
}

static void test_error_reply(void **state)
{
        cm_reply_doc_t doc;
        json_object *obj, *e;
        char err[256];
        char *enc;

        (void)state;
        enc = cm_error_reply_encode("r-991", "invalid_request",
                                    "field 'max_tokens': must be an integer");
        obj = parse(enc);
        assert_int_equal(json_object_object_length(obj), 2);
        assert_string_equal(get_str(obj, "request_id"), "r-991");
        e = get(obj, "error", json_type_object);
        assert_int_equal(json_object_object_length(e), 2);
        assert_string_equal(get_str(e, "code"), "invalid_request");
        assert_string_equal(get_str(e, "message"),
                            "field 'max_tokens': must be an integer");
        json_object_put(obj);
        assert_int_equal(
            cm_reply_decode(enc, strlen(enc), &doc, err, sizeof(err)), 0);
        assert_int_equal(doc.is_error, 1);
        assert_string_equal(doc.request_id, "r-991");
        assert_string_equal(doc.error_code, "invalid_request");
        assert_string_equal(doc.error_message,
                            "field 'max_tokens': must be an integer");
        assert_null(doc.context);
        cm_reply_doc_release(&doc);
        free(enc);

        enc = cm_error_reply_encode(NULL, "invalid_request", "x");
        obj = parse(enc);
        assert_false(has(obj, "request_id"));
        json_object_put(obj);
        free(enc);
        enc = cm_error_reply_encode("", "invalid_request", "x");
        assert_null(strstr(enc, "request_id"));
        free(enc);
}

static void test_reply_decode_bad(void **state)
{
        static const struct {
                const char *json;
                const char *err;
        } cases[] = {
            {"[]", "top level must be an object"},
            {"{\"error\":{\"message\":\"x\"}}", "missing field "
                                                "'error.code'"},
            {"{\"error\":\"boom\"}", "field 'error': must be an object"},
            {"{\"request_id\":\"r\",\"user_id\":\"u\"}",
             "missing field 'conversation_id'"},
            {"{\"user_id\":\"u\",\"conversation_id\":\"c\",\"context\":\"\","
             "\"profile\":{},\"summary\":\"\",\"recent\":[]}",
             "missing field 'metadata'"},
            {"{\"user_id\":\"u\",\"conversation_id\":\"c\",\"context\":\"\","
             "\"profile\":{},\"summary\":\"\",\"recent\":[],\"metadata\":"
             "{\"total_messages\":1,\"summarized\":false,\"cached\":0,"
             "\"tokens\":1,\"full_history_tokens\":1,\"degraded\":false,"
             "\"build_us\":1}}",
             "field 'metadata.cached': must be a boolean, got integer"},
            {"{\"user_id\":\"u\",\"conversation_id\":\"c\",\"context\":\"\","
             "\"profile\":{},\"summary\":\"\",\"recent\":[],\"metadata\":"
             "{\"total_messages\":1,\"summarized\":false,\"cached\":false,"
             "\"tokens\":1,\"degraded\":false,\"build_us\":1}}",
             "missing field 'metadata.full_history_tokens'"},
            {"{\"user_id\":\"u\",\"conversation_id\":\"c\",\"context\":\"\","
             "\"profile\":{},\"summary\":\"\",\"recent\":[{\"role\":"
             "\"x\",\"content\":\"\"}],\"metadata\":{}}",
             "field 'recent[0].role': must be one of"},
        };
        cm_reply_doc_t doc;
        char err[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu: %s\n", i, cases[i].json);
                assert_int_equal(cm_reply_decode(cases[i].json,
                                                 strlen(cases[i].json), &doc,
                                                 err, sizeof(err)),
                                 -1);
                assert_contains(err, cases[i].err);
                assert_null(doc.user_id);
                assert_null(doc.recent);
        }
}

/*
 * DLQ
 */

static void test_dlq_text(void **state)
{
        const char *payload = "{\"user_id\":\"u/1\"}";
        json_object *obj;
        char *enc;

        (void)state;
        enc = cm_dlq_encode("chat.events", 3, 1234567890123LL, "u/1:default",
                            11, payload, strlen(payload),
                            "field 'user_id': forbidden character '/'");
        obj = parse(enc);
        assert_int_equal(json_object_object_length(obj), 6);
        assert_string_equal(get_str(obj, "topic"), "chat.events");
        assert_int_equal(get_int(obj, "partition"), 3);
        assert_true(get_int(obj, "offset") == 1234567890123LL);
        assert_string_equal(get_str(obj, "key"), "u/1:default");
        assert_string_equal(get_str(obj, "payload"), payload);
        assert_string_equal(get_str(obj, "error"),
                            "field 'user_id': forbidden character '/'");
        json_object_put(obj);
        free(enc);

        /* no key; the lengths count, NULs included */
        enc = cm_dlq_encode("chat.events", 0, 0, NULL, 0, "ab\0cd", 5, "x");
        obj = parse(enc);
        assert_true(has(obj, "key"));
        get(obj, "key", json_type_null);
        assert_int_equal(
            json_object_get_string_len(get(obj, "payload", json_type_string)),
            5);
        assert_memory_equal(get_str(obj, "payload"), "ab\0cd", 5);
        json_object_put(obj);
        free(enc);
}

static void test_dlq_binary(void **state)
{
        static const struct {
                const char *in;
                size_t len;
                const char *b64;
        } vec[] = {
            {"\xff", 1, "/w=="},
            {"\xff\xfe", 2, "//4="},
            {"\xff\xfe\xfd", 3, "//79"},
            {"\xc0\xaf"
             "foobar",
             8, "wK9mb29iYXI="},
            {"a\xff"
             "bc",
             4, "Yf9iYw=="},
        };
        json_object *obj;
        char *enc;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
                enc = cm_dlq_encode("chat.events", 1, 2, vec[i].in, vec[i].len,
                                    vec[i].in, vec[i].len, "invalid UTF-8");
                assert_true(cm_utf8_valid(enc, strlen(enc)));
                obj = parse(enc);
                assert_false(has(obj, "key"));
                assert_false(has(obj, "payload"));
                assert_string_equal(get_str(obj, "key_base64"), vec[i].b64);
                assert_string_equal(get_str(obj, "payload_base64"), vec[i].b64);
                assert_string_equal(get_str(obj, "error"), "invalid UTF-8");
                json_object_put(obj);
                free(enc);
        }
        /* text key, binary payload */
        enc = cm_dlq_encode("t", -1, -1, "u:c", 3, "\xc0\xaf", 2, "bad");
        obj = parse(enc);
        assert_string_equal(get_str(obj, "key"), "u:c");
        assert_string_equal(get_str(obj, "payload_base64"), "wK8=");
        assert_int_equal(get_int(obj, "partition"), -1);
        json_object_put(obj);
        free(enc);
        /* empty payload is a string */
        enc = cm_dlq_encode("t", 0, 0, NULL, 0, NULL, 0, "empty");
        obj = parse(enc);
        assert_string_equal(get_str(obj, "payload"), "");
        json_object_put(obj);
        free(enc);
}

/* A payload or key over the limit keeps its first bytes, says so, and the
 * entry stays small enough for any Kafka message. */
static void test_dlq_bounded(void **state)
{
        size_t big = 2 * 1024 * 1024, i;
        char *text = repeat('x', big);
        char *ctrl = repeat('\x01', big);
        char *bin = repeat('\xff', big);
        char *key = repeat('k', 5000);
        char *euro = cm_malloc(big);
        json_object *obj;
        const char *p;
        char *enc;

        (void)state;
        enc = cm_dlq_encode("chat.events", 1, 2, "u:c", 3, text, big, "big");
        obj = parse(enc);
        assert_int_equal(
            json_object_get_string_len(get(obj, "payload", json_type_string)),
            CM_DLQ_PAYLOAD_MAX);
        assert_true(json_object_get_boolean(
            get(obj, "payload_truncated", json_type_boolean)));
        assert_int_equal(get_int(obj, "payload_bytes"), (int64_t)big);
        assert_string_equal(get_str(obj, "key"), "u:c");
        assert_false(has(obj, "key_truncated"));
        json_object_put(obj);
        free(enc);

        /* every byte escaped (\u0001): still far below 1 MB */
        enc = cm_dlq_encode("chat.events", 1, 2, "u:c", 3, ctrl, big, "ctl");
        assert_true(strlen(enc) < 6 * CM_DLQ_PAYLOAD_MAX + 1024);
        obj = parse(enc);
        assert_int_equal(
            json_object_get_string_len(get(obj, "payload", json_type_string)),
            CM_DLQ_PAYLOAD_MAX);
        json_object_put(obj);
        free(enc);

        /* binary: the base64 of the first bytes */
        enc = cm_dlq_encode("chat.events", 1, 2, NULL, 0, bin, big, "bin");
        obj = parse(enc);
        assert_int_equal(json_object_get_string_len(
                             get(obj, "payload_base64", json_type_string)),
                         CM_DLQ_PAYLOAD_MAX / 3 * 4 + 4);
        assert_false(has(obj, "payload"));
        assert_int_equal(get_int(obj, "payload_bytes"), (int64_t)big);
        json_object_put(obj);
        free(enc);

        /* text is cut on a character boundary: 'a' then 3-byte U+20AC,
         * so that the limit falls inside one */
        euro[0] = 'a';
        for (i = 1; i + 3 <= big; i += 3)
                memcpy(euro + i, "\xe2\x82\xac", 3);
        enc = cm_dlq_encode("t", 0, 0, NULL, 0, euro, i, "euro");
        obj = parse(enc);
        p = get_str(obj, "payload");
        assert_int_equal(strlen(p), 1 + (CM_DLQ_PAYLOAD_MAX - 1) / 3 * 3);
        assert_true(cm_utf8_valid(p, strlen(p)));
        assert_memory_equal(p, euro, strlen(p));
        assert_int_equal(get_int(obj, "payload_bytes"), (int64_t)i);
        json_object_put(obj);
        free(enc);

        /* a bad byte past the cut does not matter; at the limit, no cut */
        text[CM_DLQ_PAYLOAD_MAX + 10] = '\xff';
        enc = cm_dlq_encode("t", 0, 0, NULL, 0, text, big, "x");
        obj = parse(enc);
        assert_int_equal(strlen(get_str(obj, "payload")), CM_DLQ_PAYLOAD_MAX);
        json_object_put(obj);
        free(enc);
        enc = cm_dlq_encode("t", 0, 0, NULL, 0, text, CM_DLQ_PAYLOAD_MAX, "x");
        obj = parse(enc);
        assert_int_equal(strlen(get_str(obj, "payload")), CM_DLQ_PAYLOAD_MAX);
        assert_false(has(obj, "payload_truncated"));
        assert_false(has(obj, "payload_bytes"));
        json_object_put(obj);
        free(enc);

        /* a hostile key */
        enc = cm_dlq_encode("t", 0, 0, key, 5000, "{}", 2, "key");
        obj = parse(enc);
        assert_int_equal(strlen(get_str(obj, "key")), CM_DLQ_KEY_MAX);
        assert_true(json_object_get_boolean(
            get(obj, "key_truncated", json_type_boolean)));
        assert_int_equal(get_int(obj, "key_bytes"), 5000);
        assert_string_equal(get_str(obj, "payload"), "{}");
        json_object_put(obj);
        free(enc);

        free(text);
        free(ctrl);
        free(bin);
        free(key);
        free(euro);
}

/*
 * Stored entries
 */

static char *stored_entry(int64_t seq, const char *tail)
{
        cm_buf_t b;

        cm_buf_init(&b);
        cm_buf_addf(&b, "{\"seq\":%lld%s", (long long)seq, tail);
        return cm_buf_detach(&b, NULL);
}

static void test_stored_tail(void **state)
{
        cm_message_t msg;
        char *tail;

        (void)state;
        memset(&msg, 0, sizeof(msg));
        msg.role = CM_ROLE_USER;
        msg.content = "hi";
        msg.content_len = 2;
        msg.ts = 123;
        msg.tokens = 4;
        tail = cm_stored_tail_encode(&msg, "e1");
        assert_string_equal(tail, ",\"event_id\":\"e1\",\"role\":\"user\","
                                  "\"content\":\"hi\",\"ts\":123,"
                                  "\"tokens\":4}");
        free(tail);

        /* no event_id, no ts; tokens always */
        msg.ts = 0;
        msg.tokens = -1;
        msg.role = CM_ROLE_SYSTEM;
        tail = cm_stored_tail_encode(&msg, NULL);
        assert_string_equal(tail, ",\"role\":\"system\",\"content\":\"hi\","
                                  "\"tokens\":-1}");
        free(tail);

        /* msg->event_id is the fallback */
        msg.event_id = "m:7";
        tail = cm_stored_tail_encode(&msg, NULL);
        assert_contains(tail, "\"event_id\":\"m:7\"");
        free(tail);
        tail = cm_stored_tail_encode(&msg, "arg");
        assert_contains(tail, "\"event_id\":\"arg\"");
        free(tail);
}

static void test_stored_round_trip(void **state)
{
        cm_message_t msg, out;
        char err[256];
        char *tail, *entry;

        (void)state;
        memset(&msg, 0, sizeof(msg));
        msg.role = CM_ROLE_ASSISTANT;
        msg.content = "line1\nline2 \"q\" a/b \xe2\x82\xac \x01";
        msg.content_len = strlen(msg.content);
        msg.ts = 1732400000123LL;
        msg.tokens = 17;
        tail = cm_stored_tail_encode(&msg, "b7c1:0");
        entry = stored_entry(9007199254740993LL, tail);
        assert_int_equal(
            cm_stored_decode(entry, strlen(entry), &out, err, sizeof(err)), 0);
        assert_true(out.seq == 9007199254740993LL);
        assert_string_equal(out.event_id, "b7c1:0");
        assert_int_equal(out.role, CM_ROLE_ASSISTANT);
        assert_string_equal(out.content, msg.content);
        assert_int_equal(out.content_len, msg.content_len);
        assert_true(out.ts == 1732400000123LL);
        assert_int_equal(out.tokens, 17);
        cm_message_release(&out);
        cm_message_release(&out);
        free(entry);
        free(tail);

        msg.ts = 0;
        tail = cm_stored_tail_encode(&msg, NULL);
        entry = stored_entry(1, tail);
        assert_int_equal(
            cm_stored_decode(entry, strlen(entry), &out, err, sizeof(err)), 0);
        assert_int_equal(out.seq, 1);
        assert_null(out.event_id);
        assert_int_equal(out.ts, 0);
        cm_message_release(&out);
        free(entry);
        free(tail);
}

static void test_stored_decode_bad(void **state)
{
        static const struct {
                const char *json;
                const char *err;
        } cases[] = {
            {"{\"role\":\"user\",\"content\":\"x\"}", "missing field 'seq'"},
            {"{\"seq\":\"1\",\"role\":\"user\",\"content\":\"x\"}",
             "field 'seq': must be an integer"},
            {"{\"seq\":-1,\"role\":\"user\",\"content\":\"x\"}",
             "field 'seq': must be a non-negative integer"},
            {"{\"seq\":1,\"content\":\"x\"}", "missing field 'role'"},
            {"{\"seq\":1,\"role\":\"x\",\"content\":\"x\"}",
             "field 'role': must be one of"},
            {"{\"seq\":1,\"role\":\"user\"}", "missing field 'content'"},
            {"{\"seq\":1,\"role\":\"user\",\"content\":\"x\",\"ts\":-5}",
             "field 'ts'"},
            {"{\"seq\":1,\"role\":\"user\",\"content\":\"x\",\"tokens\":"
             "-2}",
             "field 'tokens'"},
            {"{\"seq\":1,\"role\":\"user\",\"content\":\"x\",\"event_id\":"
             "\"a b\"}",
             "field 'event_id'"},
            {"{\"seq\":1,\"role\":\"user\",\"content\":\"x\"", "malformed"},
        };
        cm_message_t msg;
        char err[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu: %s\n", i, cases[i].json);
                assert_int_equal(cm_stored_decode(cases[i].json,
                                                  strlen(cases[i].json), &msg,
                                                  err, sizeof(err)),
                                 -1);
                assert_contains(err, cases[i].err);
                assert_null(msg.content);
                assert_null(msg.event_id);
        }
        /* tokens absent: unknown */
        {
                const char *entry = "{\"seq\":3,\"role\":\"user\","
                                    "\"content\":\"\"}";

                assert_int_equal(cm_stored_decode(entry, strlen(entry), &msg,
                                                  err, sizeof(err)),
                                 0);
        }
        assert_int_equal(msg.tokens, -1);
        assert_string_equal(msg.content, "");
        cm_message_release(&msg);
}

static void test_release_zeroed(void **state)
{
        cm_message_t msg;
        cm_profile_t profile;
        cm_event_t ev;
        cm_request_t req;
        cm_reply_doc_t doc;

        (void)state;
        memset(&msg, 0, sizeof(msg));
        memset(&profile, 0, sizeof(profile));
        memset(&ev, 0, sizeof(ev));
        memset(&req, 0, sizeof(req));
        memset(&doc, 0, sizeof(doc));
        cm_message_release(&msg);
        cm_profile_release(&profile);
        cm_event_release(&ev);
        cm_request_release(&req);
        cm_reply_doc_release(&doc);
        cm_message_release(NULL);
        cm_profile_release(NULL);
        cm_event_release(NULL);
        cm_request_release(NULL);
        cm_reply_doc_release(NULL);
        assert_true(cm_profile_empty(&profile));
        assert_true(cm_profile_empty(NULL));
}

/* An invalid request keeps a readable reply_to, so that its error reply
 * goes where the application listens; an unreadable one stays NULL. */
static void test_request_error_keeps_reply_to(void **state)
{
        (void)state;
        request_fails_to("{\"request_id\":\"r1\",\"user_id\":\"bad id\","
                         "\"reply_to\":\"context.replies.app7\"}",
                         "field 'user_id': forbidden character ' '", "r1",
                         "context.replies.app7");
        /* reply_to before request_id in the text: the same */
        request_fails_to("{\"reply_to\":\"context.replies.app7\","
                         "\"request_id\":\"r1\",\"user_id\":\"u\","
                         "\"recent\":-1}",
                         "field 'recent'", "r1", "context.replies.app7");
        /* an unreadable request_id does not hide the reply_to */
        request_fails_to("{\"request_id\":\"r 1\",\"user_id\":\"u\","
                         "\"reply_to\":\"context.replies.app7\"}",
                         "field 'request_id': forbidden character ' '", "",
                         "context.replies.app7");
        /* nor an unreadable reply_to the request_id */
        request_fails_to("{\"request_id\":\"r1\",\"user_id\":\"bad id\","
                         "\"reply_to\":\"chat/events\"}",
                         "field 'reply_to': forbidden character '/'", "r1",
                         NULL);
        request_fails_to("{\"request_id\":\"r1\",\"user_id\":\"u\","
                         "\"reply_to\":7}",
                         "field 'reply_to': must be a string", "r1", NULL);
        /* both unreadable: the request_id's error is reported */
        request_fails_to("{\"request_id\":5,\"user_id\":\"u\","
                         "\"reply_to\":\"a b\"}",
                         "field 'request_id': must be a string", "", NULL);
}

/* The same when the JSON itself is refused but json-c can still read it:
 * invalid UTF-8 elsewhere, NaN, a duplicate key. */
static void test_request_malformed_keeps_reply_to(void **state)
{
        (void)state;
        request_fails_to("{\"request_id\":\"r-1\",\"reply_to\":"
                         "\"context.replies.app7\",\"user_id\":\"u\","
                         "\"query\":\"\xff\"}",
                         "invalid UTF-8 at byte", "r-1",
                         "context.replies.app7");
        request_fails_to("{\"request_id\":\"r-1\",\"reply_to\":"
                         "\"context.replies.app7\",\"user_id\":\"u\","
                         "\"max_tokens\":NaN}",
                         "malformed JSON", "r-1", "context.replies.app7");
        request_fails_to("{\"request_id\":\"r-1\",\"reply_to\":"
                         "\"context.replies.app7\",\"user_id\":\"u\","
                         "\"user_id\":\"v\"}",
                         "duplicate key", "r-1", "context.replies.app7");
        /* salvaged fields are checked as strictly as ever */
        request_fails_to("{\"request_id\":\"r-1\",\"reply_to\":"
                         "\"chat/x\",\"query\":\"\xff\"}",
                         "invalid UTF-8", "r-1", NULL);
        request_fails_to("{\"request_id\":\"r-1\",\"reply_to\":"
                         "\"replies\xff\",\"user_id\":\"u\"}",
                         "invalid UTF-8", "r-1", NULL);
        /* not JSON even to json-c: nothing can be read */
        request_fails_to("{\"request_id\":\"r-1\",\"reply_to\":"
                         "\"context.replies.app7\"",
                         "malformed JSON", "", NULL);
}

static void test_compaction_job(void **state)
{
        cm_compaction_job_t job;
        char err[256] = "";
        char *enc;

        (void)state;
        enc = cm_compaction_job_encode("u42", "c-1", 1732400000123);
        assert_string_equal(enc, "{\"user_id\":\"u42\",\"conversation_id\":"
                                 "\"c-1\",\"requested_at\":1732400000123}");
        assert_int_equal(
            cm_compaction_job_decode(enc, strlen(enc), &job, err, sizeof(err)),
            0);
        assert_string_equal(job.user_id, "u42");
        assert_string_equal(job.conversation_id, "c-1");
        assert_true(job.requested_at == 1732400000123);
        free(enc);

        /* defaults */
        enc = "{\"user_id\":\"u\"}";
        assert_int_equal(
            cm_compaction_job_decode(enc, strlen(enc), &job, err, sizeof(err)),
            0);
        assert_string_equal(job.user_id, "u");
        assert_string_equal(job.conversation_id, "default");
        assert_true(job.requested_at == 0);
}

static void test_compaction_job_bad(void **state)
{
        static const struct {
                const char *json;
                const char *err;
        } cases[] = {
            {"{}", "missing field 'user_id'"},
            {"{\"user_id\":\"a:b\"}", "field 'user_id': forbidden character"},
            {"{\"user_id\":\"u\",\"conversation_id\":7}",
             "field 'conversation_id': must be a string"},
            {"{\"user_id\":\"u\",\"conversation_id\":\"\"}",
             "field 'conversation_id': must be 1..128 bytes"},
            {"{\"user_id\":\"u\",\"requested_at\":-1}",
             "field 'requested_at': must be a non-negative integer"},
            {"{\"user_id\":\"u\",\"requested_at\":\"now\"}",
             "field 'requested_at': must be an integer"},
            {"{\"user_id\":\"u\",\"user_id\":\"v\"}", "duplicate key"},
            {"{\"user_id\":\"u\"", "malformed JSON"},
            {"[]", "top level must be an object"},
            {"{\"user_id\":\"\xc3\"}", "invalid UTF-8 at byte 12"},
        };
        cm_compaction_job_t job;
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char err[256] = "";

                print_message("case %zu: %s\n", i, cases[i].json);
                memset(&job, 'x', sizeof(job));
                assert_int_equal(cm_compaction_job_decode(
                                     cases[i].json, strlen(cases[i].json), &job,
                                     err, sizeof(err)),
                                 -1);
                assert_contains(err, cases[i].err);
                /* zeroed on error */
                assert_string_equal(job.user_id, "");
                assert_string_equal(job.conversation_id, "");
                assert_true(job.requested_at == 0);
        }
}

static void test_session_key(void **state)
{
        char key[CM_SESSION_KEY_MAX];
        char user[CM_ID_MAX + 1], conv[CM_ID_MAX + 1];
        char *u = repeat('u', CM_ID_MAX);
        char *c = repeat('c', CM_ID_MAX);
        char err[256];

        (void)state;
        assert_int_equal(cm_session_key(key, "u42", "default"), 11);
        assert_string_equal(key, "u42:default");
        assert_int_equal(
            cm_session_key_split(key, user, conv, err, sizeof(err)), 0);
        assert_string_equal(user, "u42");
        assert_string_equal(conv, "default");

        /* the longest ids fit CM_SESSION_KEY_MAX with the NUL */
        assert_int_equal(cm_session_key(key, u, c), 2 * CM_ID_MAX + 1);
        assert_int_equal(strlen(key), 2 * CM_ID_MAX + 1);
        assert_int_equal(key[CM_ID_MAX], ':');
        assert_int_equal(
            cm_session_key_split(key, user, conv, err, sizeof(err)), 0);
        assert_string_equal(user, u);
        assert_string_equal(conv, c);
        free(u);
        free(c);
}

static void test_session_key_split_bad(void **state)
{
        static const struct {
                const char *key;
                const char *err;
        } cases[] = {
            {"nocolon", "session key must be '<user_id>:<conversation_id>'"},
            {"", "session key must be"},
            {":c", "session key user_id: must be 1..128 bytes"},
            {"u:", "session key conversation_id: must be 1..128 bytes"},
            {"u:c:d", "session key conversation_id: forbidden character ':'"},
            {"u/x:c", "session key user_id: forbidden character '/'"},
            {"u:c d", "session key conversation_id: forbidden character ' '"},
        };
        char user[CM_ID_MAX + 1], conv[CM_ID_MAX + 1];
        char *longer = repeat('u', CM_ID_MAX + 1);
        char err[256];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                print_message("case %zu: %s\n", i, cases[i].key);
                snprintf(user, sizeof(user), "x");
                snprintf(conv, sizeof(conv), "y");
                assert_int_equal(cm_session_key_split(cases[i].key, user, conv,
                                                      err, sizeof(err)),
                                 -1);
                assert_contains(err, cases[i].err);
                assert_string_equal(user, "");
                assert_string_equal(conv, "");
        }
        assert_int_equal(
            cm_session_key_split(NULL, user, conv, err, sizeof(err)), -1);
        longer[CM_ID_MAX] = ':'; /* 128 bytes, ':', nothing */
        assert_int_equal(
            cm_session_key_split(longer, user, conv, err, sizeof(err)), -1);
        assert_contains(err, "conversation_id");
        free(longer);
}

static void test_event_decode_defaults(void **state)
{
        const cm_event_defaults_t defs = {"e-new", "u-def", "c-def",
                                          "assistant"};
        const cm_event_defaults_t none = {NULL, NULL, NULL, NULL};
        const char *full = "{\"event_id\":\"e1\",\"user_id\":\"u1\","
                           "\"conversation_id\":\"c1\",\"role\":\"user\","
                           "\"content\":\"hi\"}";
        const char *bare = "{\"content\":\"hi\",\"extra\":[1.5,{\"a\":1}]}";
        const char *del = "{\"type\":\"user.delete\",\"user_id\":\"u1\"}";
        cm_event_t ev, plain;
        char err[512] = "", err2[512] = "";
        int filled = -1;

        (void)state;
        /* nothing missing: buf itself is the event */
        assert_int_equal(cm_event_decode_defaults(full, strlen(full), MAXC,
                                                  &defs, &filled, &ev, err,
                                                  sizeof(err)),
                         0);
        assert_int_equal(filled, 0);
        assert_string_equal(ev.event_id, "e1");
        assert_string_equal(ev.user_id, "u1");
        assert_string_equal(ev.conversation_id, "c1");
        assert_int_equal(ev.msg.role, CM_ROLE_USER);
        cm_event_release(&ev);

        /* every field missing comes from the defaults */
        assert_int_equal(cm_event_decode_defaults(bare, strlen(bare), MAXC,
                                                  &defs, &filled, &ev, err,
                                                  sizeof(err)),
                         0);
        assert_int_equal(filled, 1);
        assert_string_equal(ev.event_id, "e-new");
        assert_string_equal(ev.user_id, "u-def");
        assert_string_equal(ev.conversation_id, "c-def");
        assert_int_equal(ev.msg.role, CM_ROLE_ASSISTANT);
        assert_string_equal(ev.msg.content, "hi");
        cm_event_release(&ev);

        /* role is not added to other types */
        assert_int_equal(cm_event_decode_defaults(del, strlen(del), MAXC, &defs,
                                                  &filled, &ev, err,
                                                  sizeof(err)),
                         0);
        assert_int_equal(filled, 1);
        assert_int_equal(ev.type, CM_EVENT_USER_DELETE);
        assert_string_equal(ev.user_id, "u1");
        assert_string_equal(ev.event_id, "e-new");
        cm_event_release(&ev);

        /* without defaults, the plain decoder's verdict and reason */
        assert_int_equal(cm_event_decode_defaults(bare, strlen(bare), MAXC,
                                                  &none, &filled, &ev, err,
                                                  sizeof(err)),
                         -1);
        assert_int_equal(filled, 0);
        assert_string_equal(err, "missing field 'event_id'");
        assert_null(ev.msg.content);

        /* a default is checked like the field itself */
        {
                const cm_event_defaults_t bad = {"e", "no/slash", NULL, NULL};

                assert_int_equal(
                    cm_event_decode_defaults(bare, strlen(bare), MAXC, &bad,
                                             &filled, &ev, err, sizeof(err)),
                    -1);
                assert_contains(err, "field 'user_id': forbidden character");
        }

        /* malformed input: the same reason as cm_event_decode() */
        {
                const char *bad = "{\"event_id\":\"e\",\"user_id\":\"u\",}";

                assert_int_equal(
                    cm_event_decode_defaults(bad, strlen(bad), MAXC, &defs,
                                             &filled, &ev, err, sizeof(err)),
                    -1);
                assert_int_equal(ev_decode(bad, &plain, err2, sizeof(err2)),
                                 -1);
                assert_string_equal(err, err2);
        }
        /* a present field keeps its bad value: no default papers over it */
        {
                const char *bad = "{\"user_id\":\"u\",\"role\":\"robot\","
                                  "\"content\":\"x\"}";

                assert_int_equal(
                    cm_event_decode_defaults(bad, strlen(bad), MAXC, &defs,
                                             &filled, &ev, err, sizeof(err)),
                    -1);
                assert_contains(err, "field 'role': must be one of");
        }
}

static void test_profile_decode(void **state)
{
        const char *good = "{\"name\":\"Sumit\",\"role\":\"dev\","
                           "\"interests\":[\"React\",\"Node.js\"]}";
        cm_profile_t p;
        char err[512] = "";
        char *many;
        cm_buf_t b;
        int i;

        (void)state;
        assert_int_equal(
            cm_profile_decode(good, strlen(good), &p, err, sizeof(err)), 0);
        assert_string_equal(p.name, "Sumit");
        assert_string_equal(p.role, "dev");
        assert_int_equal(p.interest_cnt, 2);
        assert_string_equal(p.interests[1], "Node.js");
        cm_profile_release(&p);

        assert_int_equal(cm_profile_decode("{}", 2, &p, err, sizeof(err)), 0);
        assert_true(cm_profile_empty(&p));

        /* the limits of a profile.set event, with its field names */
        assert_int_equal(
            cm_profile_decode("{\"name\":\"\"}", 11, &p, err, sizeof(err)), -1);
        assert_string_equal(err, "field 'profile.name': must not be empty");
        assert_null(p.name);
        cm_buf_init(&b);
        cm_buf_adds(&b, "{\"interests\":[");
        for (i = 0; i < 65; i++)
                cm_buf_addf(&b, "%s\"i%d\"", i ? "," : "", i);
        cm_buf_adds(&b, "]}");
        many = cm_buf_detach(&b, NULL);
        assert_int_equal(
            cm_profile_decode(many, strlen(many), &p, err, sizeof(err)), -1);
        assert_contains(err, "field 'profile.interests': 65 entries");
        assert_null(p.interests);
        free(many);
        assert_int_equal(
            cm_profile_decode("{\"role\":7}", 10, &p, err, sizeof(err)), -1);
        assert_contains(err, "field 'profile.role': must be a string");
        assert_int_equal(cm_profile_decode("[]", 2, &p, err, sizeof(err)), -1);
        assert_contains(err, "top level must be an object");
        assert_int_equal(cm_profile_decode("{\"name\":\"a\",\"name\":\"b\"}",
                                           23, &p, err, sizeof(err)),
                         -1);
        assert_contains(err, "duplicate key");
        assert_int_equal(
            cm_profile_decode("{\"name\":x}", 10, &p, err, sizeof(err)), -1);
        assert_string_equal(err,
                            "malformed JSON: unexpected word 'x' at byte 8");
}

static int history_decode(const char *json, cm_message_t **msgs, size_t *cnt,
                          char *err, size_t err_size)
{
        return cm_history_decode(json, strlen(json), 16, msgs, cnt, err,
                                 err_size);
}

/* Asserts that json is refused as a history, with reason err_part. */
static void history_fails(const char *json, const char *err_part)
{
        cm_message_t *msgs = (cm_message_t *)1;
        size_t cnt = 7;
        char err[512] = "";

        if (history_decode(json, &msgs, &cnt, err, sizeof(err)) != -1) {
                print_error("accepted bad history: %s\n", json);
                fail();
        }
        assert_contains(err, err_part);
        assert_null(msgs);
        assert_int_equal(cnt, 0);
}

static void test_history_decode(void **state)
{
        cm_message_t *msgs = NULL;
        cm_request_t req, out;
        size_t cnt = 0;
        char err[512] = "", *enc;

        (void)state;
        assert_int_equal(history_decode(" [{\"role\":\"user\",\"content\":"
                                        "\"Hi\"},{\"role\":\"assistant\","
                                        "\"content\":\"\",\"ts\":1}]\n",
                                        &msgs, &cnt, err, sizeof(err)),
                         0);
        assert_int_equal(cnt, 2);
        assert_int_equal(msgs[0].role, CM_ROLE_USER);
        assert_string_equal(msgs[0].content, "Hi");
        assert_int_equal(msgs[1].role, CM_ROLE_ASSISTANT);
        assert_string_equal(msgs[1].content, "");
        assert_int_equal(msgs[1].tokens, -1);

        /* handed to a request, it encodes and decodes as it was */
        memset(&req, 0, sizeof(req));
        memcpy(req.request_id, "r", 2);
        memcpy(req.user_id, "u", 2);
        req.recent = -1;
        req.history = msgs;
        req.history_cnt = cnt;
        req.has_history = 1;
        enc = cm_request_encode(&req);
        request_ok(enc, &out);
        assert_int_equal(out.history_cnt, 2);
        assert_string_equal(out.history[0].content, "Hi");
        cm_request_release(&out);
        cm_request_release(&req);
        free(enc);

        assert_int_equal(history_decode("[]", &msgs, &cnt, err, sizeof(err)),
                         0);
        assert_null(msgs);
        assert_int_equal(cnt, 0);

        /* what a worker would refuse, with the reason it would give */
        history_fails("[{\"role\":\"user\",\"content\":\"ok\"},"
                      "{\"role\":\"robot\",\"content\":\"x\"}]",
                      "field 'history[1].role': must be one of user, "
                      "assistant, system");
        history_fails("[{\"role\":\"user\"}]",
                      "missing field 'history[0].content'");
        history_fails("[{\"role\":\"user\",\"content\":\"17 bytes of text!\"}]",
                      "field 'history[0].content': 17 bytes is over the "
                      "limit of 16");
        history_fails("[{\"role\":\"user\",\"content\":\"a\\u0000b\"}]",
                      "field 'history[0].content': must not contain NUL");
        history_fails("[{\"role\":\"user\",\"role\":\"user\",\"content\":"
                      "\"x\"}]",
                      "duplicate key");
        history_fails("{\"role\":\"user\",\"content\":\"x\"}",
                      "top level must be an array, got object");
        history_fails("", "malformed JSON: empty input");
        history_fails("[], \"extra\": 1",
                      "malformed JSON: unexpected character at byte 2");
        history_fails("[] []", "malformed JSON");
        /* byte offsets count from the start of the input */
        history_fails("[{\"role\":\"user\",\"content\":\"\xff\"}]",
                      "invalid UTF-8 at byte 27");
        history_fails("[{\"role\":\"user\",\"content\":nope}]",
                      "unexpected word 'nope' at byte 26");
        history_fails("[{\"role\":\"user\"", "malformed JSON");
}

static void test_reply_is_error(void **state)
{
        cm_profile_t profile;
        cm_message_t recent;
        cm_reply_t reply;
        char *enc;

        (void)state;
        enc = cm_error_reply_encode("r-1", "invalid_request", "bad");
        assert_int_equal(cm_reply_is_error(enc, strlen(enc)), 1);
        free(enc);
        enc = cm_error_reply_encode(NULL, NULL, NULL);
        assert_int_equal(cm_reply_is_error(enc, strlen(enc)), 1);
        free(enc);

        /* a reply that talks about errors in every string it has */
        memset(&profile, 0, sizeof(profile));
        memset(&recent, 0, sizeof(recent));
        memset(&reply, 0, sizeof(reply));
        profile.name = "\"error\":{";
        recent.role = CM_ROLE_USER;
        recent.content = "{\"error\":{\"code\":\"x\"}}";
        reply.request_id = "r-1";
        reply.user_id = "u";
        reply.conversation_id = "default";
        reply.context = "\"error\":{}";
        reply.profile = &profile;
        reply.summary = "error: {\"error\":{";
        reply.recent = &recent;
        reply.recent_cnt = 1;
        enc = cm_reply_encode(&reply);
        assert_int_equal(cm_reply_is_error(enc, strlen(enc)), 0);
        free(enc);
        assert_int_equal(cm_reply_is_error(NULL, 0), 0);
}

/*
 * Hostile input (issue 11): each case is refused with a reason the DLQ
 * entry or the error reply carries, and a request keeps its request_id
 * for that reply whenever json-c can still read it. Covered elsewhere:
 * lone surrogates in events (test_event_invalid_utf8) and in a request's
 * query or request_id (test_request_id_unreadable), duplicate keys
 * (test_event_duplicate_keys, test_compaction_job_bad), 10,000 history
 * entries (test_request_limits).
 */

/* head, then depth times open, inner, depth times close, then tail. */
static char *nested(const char *head, const char *open, const char *inner,
                    const char *close, size_t depth, const char *tail)
{
        cm_buf_t b;
        size_t i;

        cm_buf_init(&b);
        cm_buf_adds(&b, head);
        for (i = 0; i < depth; i++)
                cm_buf_adds(&b, open);
        cm_buf_adds(&b, inner);
        for (i = 0; i < depth; i++)
                cm_buf_adds(&b, close);
        cm_buf_adds(&b, tail);
        return cm_buf_detach(&b, NULL);
}

#define DEEP     100000
#define TOO_DEEP "malformed JSON: nested deeper than 32 levels"

static void test_hostile_nesting(void **state)
{
        static const char ev_head[] = "{\"event_id\":\"e\",\"user_id\":\"u\","
                                      "\"role\":\"user\",\"content\":\"x\","
                                      "\"x\":";
        static const char rq_head[] =
            "{\"request_id\":\"r\",\"user_id\":\"u\",\"x\":";
        char *deep_arr = nested(ev_head, "[", "", "]", DEEP, "}");
        char *deep_obj = nested("", "{\"a\":", "1", "}", DEEP, "");
        char *deep_req = nested(rq_head, "[", "", "]", DEEP, "}");
        char *open_only = nested(rq_head, "[", "", "", DEEP, "");
        char *deep_hist = nested("", "[", "", "]", DEEP, "");
        char *in_string = nested("{\"event_id\":\"e\",\"user_id\":\"u\","
                                 "\"role\":\"user\",\"content\":\"",
                                 "[{", "", "}]", 16000, "\"}");
        char *at_limit = nested(ev_head, "[", "", "]", 31, "}");
        char *over = nested(ev_head, "[", "", "]", 32, "}");
        cm_compaction_job_t job;
        cm_message_t msg, *msgs;
        cm_event_t ev;
        char err[256];
        size_t cnt;

        (void)state;
        /* 100,000 levels of arrays or objects, anywhere */
        event_fails(deep_arr, TOO_DEEP " at byte 93");
        event_fails(deep_obj, TOO_DEEP " at byte 160");
        assert_int_equal(cm_compaction_job_decode(deep_obj, strlen(deep_obj),
                                                  &job, err, sizeof(err)),
                         -1);
        assert_contains(err, TOO_DEEP);
        assert_int_equal(cm_stored_decode(deep_obj, strlen(deep_obj), &msg, err,
                                          sizeof(err)),
                         -1);
        assert_contains(err, TOO_DEEP);
        assert_int_equal(cm_history_decode(deep_hist, strlen(deep_hist), MAXC,
                                           &msgs, &cnt, err, sizeof(err)),
                         -1);
        assert_contains(err, TOO_DEEP " at byte 32");
        /* json-c cannot read such a request either: its request_id is
         * unreadable, so the worker sends it to the DLQ */
        request_fails(deep_req, TOO_DEEP, "");
        request_fails(open_only, TOO_DEEP, "");
        /* brackets inside a string are text */
        event_ok(in_string, &ev);
        assert_int_equal(ev.msg.content_len, 16000 * 4);
        cm_event_release(&ev);
        /* the limit: 32 levels with the top object, not 33 */
        event_ok(at_limit, &ev);
        cm_event_release(&ev);
        event_fails(over, TOO_DEEP " at byte 93");

        free(deep_arr);
        free(deep_obj);
        free(deep_req);
        free(open_only);
        free(deep_hist);
        free(in_string);
        free(at_limit);
        free(over);
}

#define TOO_MANY "malformed JSON: more than 65536 values and member names"

/* A document of many small values: json-c's tree of 9 MB of "{}" takes
 * over 2 GB, so the count is bounded before it is built. */
static void test_hostile_many_values(void **state)
{
        static const char ev_head[] = "{\"event_id\":\"e\",\"user_id\":\"u\","
                                      "\"role\":\"user\",\"content\":\"x\","
                                      "\"x\":[";
        cm_request_t req;
        cm_event_t ev;
        char err[256];
        cm_buf_t b;
        size_t i;

        (void)state;
        /* 11 values and names before the array: 65525 numbers in it make
         * the limit, one more is over it */
        cm_buf_init(&b);
        cm_buf_adds(&b, ev_head);
        for (i = 0; i < 65525; i++)
                cm_buf_adds(&b, i ? ",1" : "1");
        cm_buf_adds(&b, "]}");
        event_ok(b.buf, &ev);
        cm_event_release(&ev);
        b.len -= 2;
        cm_buf_adds(&b, ",1]}");
        event_fails(b.buf, TOO_MANY " at byte 131113");

        /* 3,000,000 empty objects in a request: refused up front, by the
         * loose reader too, so its request_id is not read (a DLQ entry) */
        cm_buf_reset(&b);
        cm_buf_adds(&b, "{\"request_id\":\"r\",\"user_id\":\"u\",\"x\":[");
        for (i = 0; i < 3000000; i++)
                cm_buf_adds(&b, i ? ",{}" : "{}");
        cm_buf_adds(&b, "]}");
        assert_int_equal(
            cm_request_decode(b.buf, b.len, MAXC, &req, err, sizeof(err)), -1);
        assert_contains(err, TOO_MANY);
        assert_string_equal(req.request_id, "");
        cm_request_release(&req);
        /* strings, words and numbers count once each, whatever their
         * length */
        cm_buf_reset(&b);
        cm_buf_adds(&b, ev_head);
        for (i = 0; i < 20000; i++)
                cm_buf_adds(&b, i ? ",\"a,b:c]}\",true,-12.5e3"
                                  : "\"a,b:c]}\",true,-12.5e3");
        cm_buf_adds(&b, "]}");
        event_ok(b.buf, &ev);
        cm_event_release(&ev);
        cm_buf_release(&b);
}

static void test_hostile_nul(void **state)
{
        static const char raw_in_string[] =
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
            "\"content\":\"a\0b\"}";
        static const char raw_between[] =
            "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\",\0"
            "\"content\":\"ab\"}";
        static const char raw_in_request[] =
            "{\"request_id\":\"r\",\"user_id\":\"u\",\"query\":\"a\0b\"}";
        cm_request_t req;
        cm_event_t ev;
        char err[256];

        (void)state;
        /* raw NUL bytes: a control character in a string, a stray byte
         * elsewhere; the length, not the NUL, ends the input */
        assert_int_equal(cm_event_decode(raw_in_string,
                                         sizeof(raw_in_string) - 1, MAXC, &ev,
                                         err, sizeof(err)),
                         -1);
        assert_contains(err, "malformed JSON: control character 0x00 in a "
                             "string at byte 56");
        assert_int_equal(cm_event_decode(raw_between, sizeof(raw_between) - 1,
                                         MAXC, &ev, err, sizeof(err)),
                         -1);
        assert_contains(err, "malformed JSON: unexpected character 0x00 at "
                             "byte 44");
        /* json-c cannot read that request: no request_id (a DLQ entry) */
        assert_int_equal(cm_request_decode(raw_in_request,
                                           sizeof(raw_in_request) - 1, MAXC,
                                           &req, err, sizeof(err)),
                         -1);
        assert_contains(err, "control character 0x00");
        assert_string_equal(req.request_id, "");
        cm_request_release(&req);

        /* \u0000 in every string the codec reads */
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\\u0000v\","
                    "\"role\":\"user\",\"content\":\"x\"}",
                    "field 'user_id': must not contain NUL");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"conversation_id\":"
                    "\"c\\u0000\",\"role\":\"user\",\"content\":\"x\"}",
                    "field 'conversation_id': must not contain NUL");
        event_fails("{\"event_id\":\"\\u0000\",\"user_id\":\"u\","
                    "\"role\":\"user\",\"content\":\"x\"}",
                    "field 'event_id': must not contain NUL");
        event_fails("{\"type\":\"profile.set\",\"event_id\":\"e\",\"user_id\":"
                    "\"u\",\"profile\":{\"name\":\"A\\u0000B\"}}",
                    "field 'profile.name': must not contain NUL");
        request_fails("{\"request_id\":\"r\",\"user_id\":\"u\",\"query\":"
                      "\"a\\u0000\"}",
                      "field 'query': must not contain NUL", "r");
        request_fails("{\"request_id\":\"r\",\"user_id\":\"u\",\"history\":"
                      "[{\"role\":\"user\",\"content\":\"\\u0000\"}]}",
                      "field 'history[0].content': must not contain NUL", "r");
        request_fails("{\"request_id\":\"r\\u0000\",\"user_id\":\"u\"}",
                      "field 'request_id': must not contain NUL", "");

        /* ... and in keys, which json-c would cut at the NUL: that
         * "user_id\u0000x" is no "user_id", nor "content\u0000" a second
         * "content" */
        event_fails("{\"event_id\":\"e\",\"user_id\\u0000x\":\"v\","
                    "\"role\":\"user\",\"content\":\"x\"}",
                    "malformed JSON: NUL (\\u0000) in a key at byte 16");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\",\"content\\u0000\" : \"y\"}",
                    "NUL (\\u0000) in a key");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\",\"x\":[{\"\\u0000\":1}]}",
                    "NUL (\\u0000) in a key");
        request_fails("{\"request_id\":\"r\",\"user_id\\u0000\":\"u\"}",
                      "NUL (\\u0000) in a key", "r");
        /* a value nobody reads may hold one (forward compatibility) */
        event_ok("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                 "\"content\":\"x\",\"x\":\"\\u0000\"}",
                 &ev);
        cm_event_release(&ev);
}

static void test_hostile_surrogates(void **state)
{
        (void)state;
        /* a low surrogate alone, and a high one followed by no low one,
         * in the strings of a request: the request_id is kept */
        request_fails("{\"request_id\":\"r\",\"user_id\":\"u\",\"history\":"
                      "[{\"role\":\"user\",\"content\":\"a\\udc00b\"}]}",
                      "invalid UTF-8: unpaired surrogate escape \\udc00", "r");
        request_fails("{\"request_id\":\"r\",\"user_id\":\"u\",\"query\":"
                      "\"\\udbff\\u0041\"}",
                      "unpaired surrogate escape \\udbff", "r");
        request_fails("{\"request_id\":\"r\",\"user_id\":\"u\\udfff\"}",
                      "unpaired surrogate escape \\udfff", "r");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"x\",\"\\ud800\":1}",
                    "unpaired surrogate escape \\ud800");
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"\\ude00\\ud83d\"}",
                    "unpaired surrogate escape \\ude00");
}

static void test_hostile_ids(void **state)
{
        /* Characters that would break the Redis hash tag {u:c} or a key
         * pattern, raw and escaped. user_id and conversation_id are
         * 1..128 bytes of [A-Za-z0-9._@-] (DESIGN.md): every other byte is
         * refused, so no id can end or open a hash tag, split the session
         * key, or be a pattern. */
        static const char *const bad[] = {
            "{",       "}",       ":",       "*",       "\\n",
            "\\r",     "\\t",     "\\u000a", "\\u007b", "\\u007d",
            "\\u003a", "\\u002a", "?",       "[",       " ",
        };
        char user[CM_ID_MAX + 1], conv[CM_ID_MAX + 1];
        cm_compaction_job_t job;
        size_t i;
        cm_buf_t b;

        (void)state;
        cm_buf_init(&b);
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char err[256] = "";

                print_message("case %zu: %s\n", i, bad[i]);
                cm_buf_reset(&b);
                cm_buf_addf(&b,
                            "{\"event_id\":\"e\",\"user_id\":\"u%s1\","
                            "\"role\":\"user\",\"content\":\"x\"}",
                            bad[i]);
                event_fails(b.buf, "field 'user_id': forbidden character");
                cm_buf_reset(&b);
                cm_buf_addf(&b,
                            "{\"event_id\":\"e\",\"user_id\":\"u\","
                            "\"conversation_id\":\"%sc\",\"role\":\"user\","
                            "\"content\":\"x\"}",
                            bad[i]);
                event_fails(b.buf,
                            "field 'conversation_id': forbidden character");
                cm_buf_reset(&b);
                cm_buf_addf(&b,
                            "{\"request_id\":\"r\",\"user_id\":\"u\","
                            "\"conversation_id\":\"c%s\"}",
                            bad[i]);
                request_fails(
                    b.buf, "field 'conversation_id': forbidden character", "r");
                cm_buf_reset(&b);
                cm_buf_addf(&b, "{\"user_id\":\"%su\"}", bad[i]);
                assert_int_equal(cm_compaction_job_decode(b.buf, b.len, &job,
                                                          err, sizeof(err)),
                                 -1);
                assert_contains(err, "field 'user_id': forbidden character");
                /* event_id and request_id allow ':' (not in a key) */
                if (!strcmp(bad[i], ":") || !strcmp(bad[i], "\\u003a"))
                        continue;
                cm_buf_reset(&b);
                cm_buf_addf(&b,
                            "{\"event_id\":\"e%s\",\"user_id\":\"u\","
                            "\"role\":\"user\",\"content\":\"x\"}",
                            bad[i]);
                event_fails(b.buf, "field 'event_id': forbidden character");
                cm_buf_reset(&b);
                cm_buf_addf(&b, "{\"request_id\":\"r%s\",\"user_id\":\"u\"}",
                            bad[i]);
                request_fails(b.buf, "field 'request_id': forbidden character",
                              "");
        }
        /* a raw line break is not even JSON */
        event_fails("{\"event_id\":\"e\",\"user_id\":\"u\n1\",\"role\":"
                    "\"user\",\"content\":\"x\"}",
                    "malformed JSON: control character 0x0a");
        /* the session keys read back from Redis or a Kafka key */
        for (i = 0; i < 4; i++) {
                static const char *const keys[] = {"u{:c", "u:c}", "u*:c",
                                                   "u:c\n"};
                char err[256] = "";

                assert_int_equal(
                    cm_session_key_split(keys[i], user, conv, err, sizeof(err)),
                    -1);
                assert_contains(err, "forbidden character");
        }
        cm_buf_release(&b);
}

static void test_hostile_big(void **state)
{
        char *mib = repeat('x', 1024 * 1024);
        char *big = repeat('y', 8 * 1024 * 1024);
        char *at = repeat('h', MAXC);
        cm_request_t req;
        cm_buf_t b;
        size_t i;

        (void)state;
        cm_buf_init(&b);
        /* events of 1 MiB and 8 MiB: refused by the content limit */
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"%s\"}",
                    mib);
        event_fails(b.buf, "field 'content': 1048576 bytes is over the limit "
                           "of 65536");
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"event_id\":\"e\",\"user_id\":\"u\",\"role\":\"user\","
                    "\"content\":\"%s\"}",
                    big);
        event_fails(b.buf, "field 'content': 8388608 bytes is over the limit");

        /* a request of 1 MiB in one field: its error reply keeps the id */
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"history\":"
                    "[{\"role\":\"user\",\"content\":\"%s\"}]}",
                    mib);
        request_fails(b.buf,
                      "field 'history[0].content': 1048576 bytes is over", "r");
        cm_buf_reset(&b);
        cm_buf_addf(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"query\":\"%s\"}",
                    big);
        request_fails(b.buf, "field 'query': 8388608 bytes is over", "r");

        /* 10 MiB of inline history within the limits (160 messages at
         * the content limit) is a valid request: the context worker
         * answers it inside max_tokens (test_context.c, test_budget_large;
         * tests/test_e2e_hostile.sh) */
        cm_buf_reset(&b);
        cm_buf_adds(&b,
                    "{\"request_id\":\"r\",\"user_id\":\"u\",\"history\":[");
        for (i = 0; i < 160; i++)
                cm_buf_addf(&b, "%s{\"role\":\"%s\",\"content\":\"%s\"}",
                            i ? "," : "", i % 2 ? "assistant" : "user", at);
        cm_buf_adds(&b, "]}");
        assert_true(b.len > 10 * 1024 * 1024);
        request_ok(b.buf, &req);
        assert_int_equal(req.history_cnt, 160);
        assert_int_equal(req.history[159].content_len, MAXC);
        cm_request_release(&req);

        cm_buf_release(&b);
        free(mib);
        free(big);
        free(at);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_role_and_type_names),
            cmocka_unit_test(test_id_check),
            cmocka_unit_test(test_event_decode_message),
            cmocka_unit_test(test_event_defaults),
            cmocka_unit_test(test_event_other_types),
            cmocka_unit_test(test_event_missing_fields),
            cmocka_unit_test(test_event_wrong_types),
            cmocka_unit_test(test_event_profile_limits),
            cmocka_unit_test(test_event_ids),
            cmocka_unit_test(test_event_content_limit),
            cmocka_unit_test(test_event_malformed),
            cmocka_unit_test(test_event_invalid_utf8),
            cmocka_unit_test(test_event_duplicate_keys),
            cmocka_unit_test(test_event_escapes),
            cmocka_unit_test(test_event_ts),
            cmocka_unit_test(test_event_round_trip),
            cmocka_unit_test(test_event_encode_shape),
            cmocka_unit_test(test_request_full),
            cmocka_unit_test(test_request_defaults),
            cmocka_unit_test(test_request_routed),
            cmocka_unit_test(test_request_bad_fields_keep_id),
            cmocka_unit_test(test_request_limits),
            cmocka_unit_test(test_request_id_unreadable),
            cmocka_unit_test(test_request_round_trip),
            cmocka_unit_test(test_reply_shape),
            cmocka_unit_test(test_reply_minimal_shape),
            cmocka_unit_test(test_reply_round_trip),
            cmocka_unit_test(test_reply_encode_bad_utf8),
            cmocka_unit_test(test_error_reply),
            cmocka_unit_test(test_reply_decode_bad),
            cmocka_unit_test(test_dlq_text),
            cmocka_unit_test(test_dlq_binary),
            cmocka_unit_test(test_dlq_bounded),
            cmocka_unit_test(test_stored_tail),
            cmocka_unit_test(test_stored_round_trip),
            cmocka_unit_test(test_stored_decode_bad),
            cmocka_unit_test(test_release_zeroed),
            cmocka_unit_test(test_request_error_keeps_reply_to),
            cmocka_unit_test(test_request_malformed_keeps_reply_to),
            cmocka_unit_test(test_compaction_job),
            cmocka_unit_test(test_compaction_job_bad),
            cmocka_unit_test(test_session_key),
            cmocka_unit_test(test_session_key_split_bad),
            cmocka_unit_test(test_event_decode_defaults),
            cmocka_unit_test(test_profile_decode),
            cmocka_unit_test(test_history_decode),
            cmocka_unit_test(test_reply_is_error),
            cmocka_unit_test(test_hostile_nesting),
            cmocka_unit_test(test_hostile_many_values),
            cmocka_unit_test(test_hostile_nul),
            cmocka_unit_test(test_hostile_surrogates),
            cmocka_unit_test(test_hostile_ids),
            cmocka_unit_test(test_hostile_big),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
