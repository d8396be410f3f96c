/*
 * The chat-event decoder (cm_event_decode). Invariant: a decoded event
 * encodes (cm_event_encode) to a document that decodes to the same fields;
 * a refused one comes back released, with a reason.
 */
#include "codec.h"
#include "fuzz.h"

static int profiles_equal(const cm_profile_t *a, const cm_profile_t *b)
{
        size_t i;

        if (!fuzz_str_eq(a->name, b->name) || !fuzz_str_eq(a->role, b->role) ||
            a->interest_cnt != b->interest_cnt)
                return 0;
        for (i = 0; i < a->interest_cnt; i++)
                if (!fuzz_str_eq(a->interests[i], b->interests[i]))
                        return 0;
        return 1;
}

static int events_equal(const cm_event_t *a, const cm_event_t *b)
{
        if (a->type != b->type || strcmp(a->event_id, b->event_id) ||
            strcmp(a->user_id, b->user_id) ||
            strcmp(a->conversation_id, b->conversation_id))
                return 0;
        switch (a->type) {
        case CM_EVENT_MESSAGE:
                return a->msg.role == b->msg.role &&
                       a->msg.content_len == b->msg.content_len &&
                       !memcmp(a->msg.content, b->msg.content,
                               a->msg.content_len) &&
                       a->msg.ts == b->msg.ts;
        case CM_EVENT_PROFILE_SET:
                return profiles_equal(&a->profile, &b->profile);
        case CM_EVENT_SESSION_DELETE:
        case CM_EVENT_USER_DELETE:
                break;
        }
        return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cm_event_t ev, again;
        char errstr[512] = "";
        char *json;

        if (cm_event_decode((const char *)data, size, FUZZ_MAX_CONTENT, &ev,
                            errstr, sizeof(errstr)) == -1) {
                FUZZ_CHECK(errstr[0] != '\0');
                FUZZ_CHECK(!ev.msg.content && !ev.profile.name &&
                           !ev.profile.interests && !ev.event_id[0]);
                return 0;
        }
        FUZZ_CHECK(cm_id_check(ev.event_id, strlen(ev.event_id), 1, NULL, 0) ==
                   0);
        FUZZ_CHECK(cm_id_check(ev.user_id, strlen(ev.user_id), 0, NULL, 0) ==
                   0);
        json = cm_event_encode(&ev);
        FUZZ_CHECK(cm_event_decode(json, strlen(json), FUZZ_MAX_CONTENT, &again,
                                   errstr, sizeof(errstr)) == 0);
        FUZZ_CHECK(events_equal(&ev, &again));
        free(json);
        cm_event_release(&again);
        cm_event_release(&ev);
        return 0;
}
