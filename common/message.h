/*
 * message: one message of a conversation (role, content, and what the
 * store knows of it), the unit that every layer passes around: the codec
 * decodes and encodes it, the store keeps it, the context builder and the
 * summarizers read it.
 *
 * A cm_message_t owns its strings; release it with cm_message_release(),
 * which accepts a zeroed struct and leaves one.
 */
#ifndef CM_MESSAGE_H
#define CM_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

typedef enum cm_role {
        CM_ROLE_USER = 0,
        CM_ROLE_ASSISTANT,
        CM_ROLE_SYSTEM,
} cm_role_t;

/* "user", "assistant", "system" ("unknown" out of range). Cannot fail. */
const char *cm_role_str(cm_role_t role);
/* "User", "Assistant", "System": the prefix used in the context text
 * ("Unknown" out of range). Cannot fail. */
const char *cm_role_label(cm_role_t role);
/* Returns 0 and sets *out, or -1 if s is not a role name (NULL is not). */
int cm_role_parse(const char *s, cm_role_t *out);

typedef struct cm_message {
        cm_role_t role;
        char *content; /* owned, valid UTF-8, NUL-terminated */
        size_t content_len;
        int64_t seq;    /* sequence in the session; 0 when not stored */
        int64_t ts;     /* ms since epoch; 0 when absent */
        int tokens;     /* tokens of its context line with the line break
                           (cm_context_line_tokens); -1 unknown */
        char *event_id; /* owned; NULL when absent */
} cm_message_t;

/* Frees what msg owns and zeroes it. Accepts NULL. */
void cm_message_release(cm_message_t *msg);

#endif
