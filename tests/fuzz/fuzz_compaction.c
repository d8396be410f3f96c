/*
 * The compaction-job decoder (cm_compaction_job_decode). Invariant: a
 * decoded job encodes (cm_compaction_job_encode) to a document that
 * decodes to the same job; a refused one comes back zeroed, with a reason.
 */
#include "codec.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static const cm_compaction_job_t zero;
        cm_compaction_job_t job, again;
        char errstr[512] = "";
        char *json;

        if (cm_compaction_job_decode((const char *)data, size, &job, errstr,
                                     sizeof(errstr)) == -1) {
                FUZZ_CHECK(errstr[0] != '\0');
                FUZZ_CHECK(!memcmp(&job, &zero, sizeof(job)));
                return 0;
        }
        json = cm_compaction_job_encode(job.user_id, job.conversation_id,
                                        job.requested_at);
        FUZZ_CHECK(cm_compaction_job_decode(json, strlen(json), &again, errstr,
                                            sizeof(errstr)) == 0);
        FUZZ_CHECK(!strcmp(job.user_id, again.user_id) &&
                   !strcmp(job.conversation_id, again.conversation_id) &&
                   job.requested_at == again.requested_at);
        free(json);
        return 0;
}
