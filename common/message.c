/*
 * message: see message.h for the contract.
 */
#include "message.h"

#include <stdlib.h>
#include <string.h>

static const char *const role_names[] = {"user", "assistant", "system"};
static const char *const role_labels[] = {"User", "Assistant", "System"};

#define ROLE_CNT (sizeof(role_names) / sizeof(role_names[0]))

const char *cm_role_str(cm_role_t role)
{
        if ((size_t)role >= ROLE_CNT)
                return "unknown";
        return role_names[role];
}

const char *cm_role_label(cm_role_t role)
{
        if ((size_t)role >= ROLE_CNT)
                return "Unknown";
        return role_labels[role];
}

int cm_role_parse(const char *s, cm_role_t *out)
{
        size_t i;

        for (i = 0; s && i < ROLE_CNT; i++) {
                if (!strcmp(s, role_names[i])) {
                        *out = (cm_role_t)i;
                        return 0;
                }
        }
        return -1;
}

void cm_message_release(cm_message_t *msg)
{
        if (!msg)
                return;
        free(msg->content);
        free(msg->event_id);
        memset(msg, 0, sizeof(*msg));
}
