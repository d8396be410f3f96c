#include "session_cache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

typedef struct slot {
        char *key; /* NULL when empty */
        cm_session_t s;
} slot_t;

struct cm_session_cache {
        slot_t *slots;
        size_t cnt;
};

cm_session_cache_t *cm_session_cache_new(size_t slots)
{
        cm_session_cache_t *c = cm_calloc(1, sizeof(*c));

        c->cnt = slots;
        c->slots = cm_calloc(slots ? slots : 1, sizeof(*c->slots));
        return c;
}

void cm_session_cache_destroy(cm_session_cache_t *c)
{
        size_t i;

        if (!c)
                return;
        for (i = 0; i < c->cnt; i++) {
                free(c->slots[i].key);
                cm_session_release(&c->slots[i].s);
        }
        free(c->slots);
        free(c);
}

static slot_t *slot_of(const cm_session_cache_t *c, const char *key)
{
        if (c->cnt == 0)
                return NULL;
        return &c->slots[cm_fnv1a(key, strlen(key)) % c->cnt];
}

void cm_session_cache_put(cm_session_cache_t *c, const char *key,
                          cm_session_t *s)
{
        slot_t *slot = slot_of(c, key);

        if (!slot) {
                cm_session_release(s);
                return;
        }
        if (!slot->key || strcmp(slot->key, key)) {
                free(slot->key);
                slot->key = cm_strdup(key);
        }
        cm_session_release(&slot->s);
        slot->s = *s; /* now owned by the slot */
        memset(s, 0, sizeof(*s));
}

const cm_session_t *cm_session_cache_get(const cm_session_cache_t *c,
                                         const char *key)
{
        const slot_t *slot = slot_of(c, key);

        if (!slot || !slot->key || strcmp(slot->key, key))
                return NULL;
        return &slot->s;
}
