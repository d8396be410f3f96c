/*
 * The LLM response parser (cm_llm_reply_parse): the body of a 2xx reply
 * of /v1/chat/completions. Invariant: a summary it returns is non-empty,
 * trimmed, valid UTF-8 and without NUL; on error *summary is untouched
 * and there is a reason.
 */
#include "fuzz.h"
#include "llm.h"
#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        char errstr[512] = "";
        char *summary = NULL;
        size_t n;

        if (cm_llm_reply_parse((const char *)data, size, &summary, errstr,
                               sizeof(errstr)) == -1) {
                FUZZ_CHECK(errstr[0] != '\0');
                FUZZ_CHECK(summary == NULL);
                return 0;
        }
        FUZZ_CHECK(summary != NULL);
        n = strlen(summary);
        FUZZ_CHECK(n > 0 && cm_utf8_valid(summary, n));
        FUZZ_CHECK(!cm_isspace(summary[0]) && !cm_isspace(summary[n - 1]));
        free(summary);
        return 0;
}
