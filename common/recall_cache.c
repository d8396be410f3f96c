/*
 * recall_cache: a direct-mapped cache of per-session recall indexes
 * (recall_cache.h).
 */
#include <stdlib.h>
#include <string.h>

#include "recall_cache.h"
#include "text.h"
#include "util.h"

typedef struct slot {
        char *key; /* NULL: empty */
        cm_message_t *msgs;
        size_t cnt, cap;
        size_t bytes; /* content bytes of msgs */
        cm_recall_index_t *ix;
} slot_t;

struct cm_recall_cache {
        slot_t *slots;
        size_t cnt;
        size_t max_bytes;
        unsigned long long hits, builds;
};

cm_recall_cache_t *cm_recall_cache_new(size_t slots, size_t max_bytes)
{
        cm_recall_cache_t *c = cm_calloc(1, sizeof(*c));

        c->cnt = slots;
        c->max_bytes = max_bytes;
        c->slots = slots ? cm_calloc(slots, sizeof(*c->slots)) : NULL;
        return c;
}

static void slot_clear(slot_t *s)
{
        size_t i;

        cm_recall_index_destroy(s->ix);
        for (i = 0; i < s->cnt; i++)
                cm_message_release(&s->msgs[i]);
        free(s->msgs);
        free(s->key);
        memset(s, 0, sizeof(*s));
}

void cm_recall_cache_destroy(cm_recall_cache_t *c)
{
        size_t i;

        if (!c)
                return;
        for (i = 0; i < c->cnt; i++)
                slot_clear(&c->slots[i]);
        free(c->slots);
        free(c);
}

/* Whether a and b are the same message, as far as recall reads it. */
static int same_message(const cm_message_t *a, const cm_message_t *b)
{
        return a->role == b->role && a->seq == b->seq && a->ts == b->ts &&
               a->content_len == b->content_len &&
               memcmp(a->content, b->content, a->content_len) == 0;
}

/* Whether the slot's messages are the first of msgs[0..cnt). */
static int slot_is_prefix(const slot_t *s, const cm_message_t *msgs, size_t cnt)
{
        size_t i;

        if (s->cnt > cnt)
                return 0;
        for (i = 0; i < s->cnt; i++)
                if (!same_message(&s->msgs[i], &msgs[i]))
                        return 0;
        return 1;
}

/* Appends copies of msgs[0..cnt) to the slot. */
static void slot_append(slot_t *s, const cm_message_t *msgs, size_t cnt)
{
        size_t i;

        if (s->cnt + cnt > s->cap) {
                s->cap = s->cnt + cnt > s->cap * 2 ? s->cnt + cnt : s->cap * 2;
                s->msgs = cm_realloc(s->msgs, s->cap * sizeof(*s->msgs));
        }
        for (i = 0; i < cnt; i++) {
                cm_message_t *m = &s->msgs[s->cnt++];

                memset(m, 0, sizeof(*m));
                m->role = msgs[i].role;
                m->content = cm_strndup(msgs[i].content, msgs[i].content_len);
                m->content_len = msgs[i].content_len;
                m->seq = msgs[i].seq;
                m->ts = msgs[i].ts;
                m->tokens = msgs[i].tokens;
                s->bytes += msgs[i].content_len;
        }
}

static size_t content_bytes(const cm_message_t *msgs, size_t cnt)
{
        size_t i, n = 0;

        for (i = 0; i < cnt; i++)
                n += msgs[i].content_len;
        return n;
}

void cm_recall_cache_get(cm_recall_cache_t *c, const char *key,
                         const cm_message_t *msgs, size_t cnt,
                         cm_recall_cached_t *out)
{
        slot_t *s =
            c->cnt ? &c->slots[cm_fnv1a(key, strlen(key)) % c->cnt] : NULL;

        memset(out, 0, sizeof(*out));
        if (s && s->key && strcmp(s->key, key) == 0 &&
            slot_is_prefix(s, msgs, cnt) &&
            s->bytes + content_bytes(msgs + s->cnt, cnt - s->cnt) <=
                c->max_bytes) {
                if (cnt > s->cnt) {
                        slot_append(s, msgs + s->cnt, cnt - s->cnt);
                        cm_recall_index_extend(s->ix, s->msgs, s->cnt);
                }
                c->hits++;
                out->hit = 1;
        } else {
                c->builds++;
                if (s)
                        slot_clear(s);
                if (!s || content_bytes(msgs, cnt) > c->max_bytes) {
                        /* Not kept: an index over the caller's array. */
                        out->msgs = msgs;
                        out->cnt = cnt;
                        out->index = cm_recall_index_new(msgs, cnt);
                        out->own = 1;
                        return;
                }
                s->key = cm_strdup(key);
                slot_append(s, msgs, cnt);
                s->ix = cm_recall_index_new(s->msgs, s->cnt);
        }
        out->msgs = s->msgs;
        out->cnt = s->cnt;
        out->index = s->ix;
}

void cm_recall_cache_release(cm_recall_cached_t *got)
{
        if (got->own)
                cm_recall_index_destroy(got->index);
        memset(got, 0, sizeof(*got));
}

void cm_recall_cache_stats(const cm_recall_cache_t *c, unsigned long long *hits,
                           unsigned long long *builds)
{
        *hits = c->hits;
        *builds = c->builds;
}
