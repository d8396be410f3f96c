/*
 * profile: who the user is (name, role, interests): the cm_profile_t that
 * the codec, the store and the context carry, and extracting it from what
 * the user says about themself.
 *
 * Only user messages are given to it (the caller filters on role): an
 * assistant saying "I'm Claude" is never a fact about the user.
 *
 * Patterns: "I'm X" / "I am X" / "my name is X" / "call me X" for the name
 * (a capitalised proper name, not "I'm going to…", "I'm not sure",
 * "I'm a bit tired", never a placeholder such as "[User 1's name]");
 * "I work as X" / "I'm a X" / "I am an X" / "my job is X" for the role
 * (a noun phrase that names an occupation, not a mood or a skill);
 * "I work with X", "I'm into X", "I love X", "I like X", "my hobby is X"
 * for interests. "Hi, I'm Sumit Pandya, full stack developer" gives both
 * the name and the role. Precision comes first: questions, wishes and
 * hypotheses ("if", "would", "I want to work as…"), negations, quoted or
 * reported speech, former roles ("I used to work as…") and references to
 * something said before ("I love it", "I like the way…") give nothing.
 */
#ifndef CM_PROFILE_H
#define CM_PROFILE_H

#include <stddef.h>

#include "message.h"

/* What chatmem knows of a user. Owns its strings: release with
 * cm_profile_release(), which accepts a zeroed struct and leaves one. */
typedef struct cm_profile {
        char *name;       /* owned; NULL when unknown */
        char *role;       /* owned; NULL when unknown */
        char **interests; /* owned array of owned strings */
        size_t interest_cnt;
} cm_profile_t;

/* Frees what profile owns and zeroes it. Accepts NULL. */
void cm_profile_release(cm_profile_t *profile);
/* Returns 1 if the profile is NULL or has no field set, else 0. */
int cm_profile_empty(const cm_profile_t *profile);

/*
 * Extracts the facts stated in one user message into out (zeroed first;
 * release with cm_profile_release). Fields not stated stay NULL / empty.
 * Interests are split on "and" / "," and trimmed, at most 16, each at most
 * 64 bytes. Returns the number of fields found (0..3). Cannot fail.
 */
int cm_profile_extract(const char *text, size_t len, cm_profile_t *out);

/*
 * Completes dst from src: the name and the role dst lacks are copied from
 * src, and src's interests that dst lacks (compared without case) are
 * appended, up to 16 in all. src may be NULL. Cannot fail.
 */
void cm_profile_fill(cm_profile_t *dst, const cm_profile_t *src);

/*
 * What the user messages of msgs[0..cnt) (oldest first) state, into out
 * (zeroed first; release with cm_profile_release): the newest statement
 * of a name or a role wins, interests are taken newest first. Cannot fail.
 */
void cm_profile_from_messages(const cm_message_t *msgs, size_t cnt,
                              cm_profile_t *out);

#endif
