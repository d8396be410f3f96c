/*
 * The stored-message decoder (cm_stored_decode), what every reader of a
 * session's Redis list goes through. Invariant: a decoded entry, written
 * back as the store writes it ({"seq":N then cm_stored_tail_encode()),
 * decodes to the same message; a refused one comes back released, with a
 * reason.
 */
#include "codec.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        cm_message_t msg, again;
        char errstr[512] = "";
        char *tail;
        cm_buf_t b = CM_BUF_INIT;

        if (cm_stored_decode((const char *)data, size, &msg, errstr,
                             sizeof(errstr)) == -1) {
                FUZZ_CHECK(errstr[0] != '\0');
                FUZZ_CHECK(!msg.content && !msg.event_id);
                return 0;
        }
        FUZZ_CHECK(msg.content && strlen(msg.content) == msg.content_len);
        tail = cm_stored_tail_encode(&msg, NULL);
        cm_buf_addf(&b, "{\"seq\":%lld%s", (long long)msg.seq, tail);
        FUZZ_CHECK(cm_stored_decode(b.buf, b.len, &again, errstr,
                                    sizeof(errstr)) == 0);
        FUZZ_CHECK(again.seq == msg.seq && again.role == msg.role &&
                   again.content_len == msg.content_len &&
                   !memcmp(again.content, msg.content, msg.content_len) &&
                   again.ts == msg.ts && again.tokens == msg.tokens &&
                   fuzz_str_eq(again.event_id, msg.event_id));
        free(tail);
        cm_buf_release(&b);
        cm_message_release(&again);
        cm_message_release(&msg);
        return 0;
}
