/*
 * Profile extraction (cm_profile_extract) from one user message. Invariant:
 * the count it returns is the number of fields set; at most 16 interests,
 * each of 1..64 bytes; and from valid UTF-8, every field is valid UTF-8.
 */
#include "fuzz.h"
#include "profile.h"
#include "text.h"

/* 1 when s is a non-empty string (valid UTF-8 when utf8), else 0. */
static int field_ok(const char *s, int utf8)
{
        return s[0] != '\0' && (!utf8 || cm_utf8_valid(s, strlen(s)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *text = (const char *)data;
        int utf8 = cm_utf8_valid(text, size);
        cm_profile_t p;
        size_t i;
        int n;

        n = cm_profile_extract(text, size, &p);
        FUZZ_CHECK(n ==
                   (p.name != NULL) + (p.role != NULL) + (p.interest_cnt > 0));
        FUZZ_CHECK(!p.name || field_ok(p.name, utf8));
        FUZZ_CHECK(!p.role || field_ok(p.role, utf8));
        FUZZ_CHECK(p.interest_cnt <= 16);
        for (i = 0; i < p.interest_cnt; i++) {
                FUZZ_CHECK(field_ok(p.interests[i], utf8));
                FUZZ_CHECK(strlen(p.interests[i]) <= 64);
        }
        cm_profile_release(&p);
        return 0;
}
