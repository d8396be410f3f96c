#include "reply_tracker.h"

#include <string.h>

void cm_tracker_fifo_init(cm_tracker_fifo_t *f)
{
        memset(f, 0, sizeof(*f));
}

void cm_tracker_fifo_release(cm_tracker_fifo_t *f)
{
        size_t i;

        for (i = 0; i < f->cnt; i++) {
                cm_tracker_t *tr = &f->slot[(f->head + i) % CM_TRACKER_MAX];

                rd_kafka_topic_partition_list_destroy(tr->offsets);
        }
        cm_tracker_fifo_init(f);
}

int cm_tracker_full(const cm_tracker_fifo_t *f)
{
        return f->cnt == CM_TRACKER_MAX;
}

cm_tracker_t *cm_tracker_push(cm_tracker_fifo_t *f)
{
        cm_tracker_t *tr = &f->slot[(f->head + f->cnt) % CM_TRACKER_MAX];

        f->cnt++;
        memset(tr, 0, sizeof(*tr));
        tr->offsets = rd_kafka_topic_partition_list_new(8);
        tr->d.pending = 1; /* until the whole batch is queued */
        return tr;
}

void cm_tracker_add(cm_tracker_t *tr, const rd_kafka_message_t *m)
{
        const char *topic = rd_kafka_topic_name(m->rkt);
        rd_kafka_topic_partition_t *p;

        p = rd_kafka_topic_partition_list_find(tr->offsets, topic,
                                               m->partition);
        if (!p)
                p = rd_kafka_topic_partition_list_add(tr->offsets, topic,
                                                      m->partition);
        if (m->offset + 1 > p->offset)
                p->offset = m->offset + 1;
}

void cm_tracker_seal(cm_tracker_t *tr)
{
        tr->d.pending--;
}

size_t cm_tracker_pop_done(cm_tracker_fifo_t *f,
                           void (*store)(void *opaque,
                                         rd_kafka_topic_partition_list_t *o),
                           void *opaque)
{
        size_t n = 0;

        while (f->cnt > 0) {
                cm_tracker_t *tr = &f->slot[f->head];

                if (tr->d.pending > 0 || tr->lost)
                        break;
                if (tr->offsets->cnt > 0)
                        store(opaque, tr->offsets);
                rd_kafka_topic_partition_list_destroy(tr->offsets);
                tr->offsets = NULL;
                f->head = (f->head + 1) % CM_TRACKER_MAX;
                f->cnt--;
                n++;
        }
        return n;
}
