/*
 * json: see json.h for the contract.
 *
 * Parsing runs in three steps over the raw buffer:
 *   1. cm_utf8_valid_prefix() on the whole input, and check_bounds(): no
 *      more than CM_JSON_ITEMS_MAX values and member names, nesting no
 *      deeper than CM_JSON_DEPTH_MAX (the loose parser checks these too);
 *   2. lex_check(), a lexical pass that rejects what json-c 0.16 lets
 *      through even with JSON_TOKENER_STRICT (single-quoted keys, NaN and
 *      Infinity, "1.", raw control characters in strings), \u escapes
 *      that are unpaired surrogates (json-c would turn them into U+FFFD),
 *      and a \u0000 in a key; it also counts the members of each object;
 *   3. json_tokener in strict mode, which must consume the whole buffer and
 *      yield an object; an object with fewer members than counted had a
 *      duplicate key (json-c keeps the last one) and is refused.
 */
#include "json.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"
#include "util.h"

void cm_json_oom(void)
{
        fprintf(stderr, "chatmem: out of memory in json-c\n");
        abort();
}

/*
 * Lexical pass (see the top of the file).
 */

static int hex4(const char *s, size_t avail, unsigned *out)
{
        unsigned v = 0;
        size_t i;

        if (avail < 4)
                return -1;
        for (i = 0; i < 4; i++) {
                char c = s[i];

                if (!cm_isxdigit(c))
                        return -1;
                v = v << 4 |
                    (unsigned)(cm_isdigit(c) ? c - '0'
                                             : cm_tolower(c) - 'a' + 10);
        }
        *out = v;
        return 0;
}

/* Scans the string starting at the quote buf[*pos]; moves *pos past it.
 * *nul is set to 1 when the string holds a \u0000 escape, else 0. */
static int lex_string(const char *buf, size_t len, size_t *pos, int *nul,
                      char *errstr, size_t errstr_size)
{
        size_t i = *pos + 1;

        *nul = 0;

        while (i < len) {
                unsigned char c = (unsigned char)buf[i];
                unsigned cp, lo;

                if (c == '"') {
                        *pos = i + 1;
                        return 0;
                }
                if (c < 0x20)
                        return cm_errf(
                            errstr, errstr_size,
                            "malformed JSON: control character 0x%02x "
                            "in a string at byte %zu",
                            c, i);
                if (c != '\\') {
                        i++;
                        continue;
                }
                if (i + 1 >= len)
                        break;
                c = (unsigned char)buf[i + 1];
                if (c != 'u') {
                        if (!memchr("\"\\/bfnrt", c, 8))
                                return cm_errf(errstr, errstr_size,
                                               "malformed JSON: invalid escape "
                                               "at byte %zu",
                                               i);
                        i += 2;
                        continue;
                }
                if (hex4(buf + i + 2, len - i - 2, &cp) == -1)
                        return cm_errf(errstr, errstr_size,
                                       "malformed JSON: invalid \\u escape at "
                                       "byte %zu",
                                       i);
                if (cp == 0)
                        *nul = 1;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                        if (i + 12 <= len && buf[i + 6] == '\\' &&
                            buf[i + 7] == 'u' &&
                            hex4(buf + i + 8, 4, &lo) == 0 && lo >= 0xdc00 &&
                            lo <= 0xdfff) {
                                i += 12;
                                continue;
                        }
                } else if (cp < 0xdc00 || cp > 0xdfff) {
                        i += 6;
                        continue;
                }
                return cm_errf(errstr, errstr_size,
                               "invalid UTF-8: unpaired surrogate escape "
                               "\\u%04x at byte %zu",
                               cp, i);
        }
        return cm_errf(errstr, errstr_size,
                       "malformed JSON: unterminated string at byte %zu", *pos);
}

/* Scans a number per RFC 8259 starting at buf[*pos]. */
static int lex_number(const char *buf, size_t len, size_t *pos, char *errstr,
                      size_t errstr_size)
{
        size_t i = *pos;

        if (buf[i] == '-')
                i++;
        if (i < len && buf[i] == '0') {
                i++;
        } else if (i < len && cm_isdigit(buf[i])) {
                while (i < len && cm_isdigit(buf[i]))
                        i++;
        } else {
                goto bad;
        }
        if (i < len && buf[i] == '.') {
                i++;
                if (i >= len || !cm_isdigit(buf[i]))
                        goto bad;
                while (i < len && cm_isdigit(buf[i]))
                        i++;
        }
        if (i < len && (buf[i] == 'e' || buf[i] == 'E')) {
                i++;
                if (i < len && (buf[i] == '+' || buf[i] == '-'))
                        i++;
                if (i >= len || !cm_isdigit(buf[i]))
                        goto bad;
                while (i < len && cm_isdigit(buf[i]))
                        i++;
        }
        if (i < len && (cm_isdigit(buf[i]) || memchr(".eE+-", buf[i], 5)))
                goto bad;
        *pos = i;
        return 0;
bad:
        return cm_errf(errstr, errstr_size,
                       "malformed JSON: invalid number at byte %zu", *pos);
}

/* Member counts of the objects of a document, in the order their '{'
 * appear (pre-order), so that duplicate keys, which json-c silently merges
 * (last wins), can be told apart afterwards. There are at most
 * CM_JSON_ITEMS_MAX objects, nested at most CM_JSON_DEPTH_MAX deep. */
typedef struct obj_counts {
        size_t *n; /* members of each object */
        size_t cnt;
        size_t cap;
        size_t open[CM_JSON_DEPTH_MAX]; /* stack: indexes into n of the
                                           objects still open */
        size_t depth;
} obj_counts_t;

static void obj_counts_release(obj_counts_t *oc)
{
        free(oc->n);
        memset(oc, 0, sizeof(*oc));
}

static void obj_counts_open(obj_counts_t *oc)
{
        if (oc->cnt == oc->cap) {
                oc->cap = oc->cap ? 2 * oc->cap : 16;
                oc->n = cm_realloc(oc->n, oc->cap * sizeof(*oc->n));
        }
        oc->n[oc->cnt] = 0;
        /* check_bounds() kept the depth; past it the counts do not matter
         * (json-c refuses the document). */
        if (oc->depth < CM_JSON_DEPTH_MAX)
                oc->open[oc->depth++] = oc->cnt;
        oc->cnt++;
}

/* The bounds of both parsers, checked before anything is built: at most
 * CM_JSON_ITEMS_MAX values and member names (containers count) and
 * nesting at most CM_JSON_DEPTH_MAX deep. Lenient, as the loose parser
 * needs: a string runs to the next unescaped quote whatever it holds, and
 * any other run of bytes that is neither whitespace nor punctuation counts
 * as one value. Returns 0, or -1 with the reason. */
static int check_bounds(const char *buf, size_t len, char *errstr,
                        size_t errstr_size)
{
        size_t i, items = 0, nesting = 0;
        int in_word = 0;

        for (i = 0; i < len; i++) {
                char c = buf[i];
                int open = c == '[' || c == '{';

                if (memchr(" \t\n\r,:", c, 6) || c == ']' || c == '}') {
                        in_word = 0;
                        if ((c == ']' || c == '}') && nesting)
                                nesting--;
                        continue;
                }
                if (in_word && !open && c != '"')
                        continue;
                if (++items > CM_JSON_ITEMS_MAX)
                        return cm_errf(errstr, errstr_size,
                                       "malformed JSON: more than %d values "
                                       "and member names at byte %zu",
                                       CM_JSON_ITEMS_MAX, i);
                if (open && ++nesting > CM_JSON_DEPTH_MAX)
                        return cm_errf(errstr, errstr_size,
                                       "malformed JSON: nested deeper than %d "
                                       "levels at byte %zu",
                                       CM_JSON_DEPTH_MAX, i);
                in_word = !open && c != '"';
                if (c == '"')
                        for (i++; i < len && buf[i] != '"'; i++)
                                if (buf[i] == '\\')
                                        i++;
        }
        return 0;
}

/* 1 when the next byte of buf[i..len) that is not whitespace is a ':'
 * (the string before it is a key). */
static int next_is_colon(const char *buf, size_t len, size_t i)
{
        while (i < len && memchr(" \t\n\r", buf[i], 4))
                i++;
        return i < len && buf[i] == ':';
}

static int lex_check(const char *buf, size_t len, obj_counts_t *oc,
                     char *errstr, size_t errstr_size)
{
        size_t i = 0;

        while (i < len) {
                char c = buf[i];
                char what[CM_TEXT_BYTE_NAME_MAX];
                size_t start = i;
                int nul;

                if (c == '"') {
                        if (lex_string(buf, len, &i, &nul, errstr,
                                       errstr_size) == -1)
                                return -1;
                        /* json-c would cut such a key at the NUL, making
                         * "user_id\u0000x" a "user_id". */
                        if (nul && next_is_colon(buf, len, i))
                                return cm_errf(errstr, errstr_size,
                                               "malformed JSON: NUL (\\u0000) "
                                               "in a key at byte %zu",
                                               start);
                } else if (c == '-' || cm_isdigit(c)) {
                        if (lex_number(buf, len, &i, errstr, errstr_size) == -1)
                                return -1;
                } else if (cm_isalpha(c)) {
                        while (i < len && (cm_isalpha(buf[i]) ||
                                           cm_isdigit(buf[i]) || buf[i] == '_'))
                                i++;
                        if ((i - start == 4 &&
                             !memcmp(buf + start, "true", 4)) ||
                            (i - start == 5 &&
                             !memcmp(buf + start, "false", 5)) ||
                            (i - start == 4 && !memcmp(buf + start, "null", 4)))
                                continue;
                        return cm_errf(errstr, errstr_size,
                                       "malformed JSON: unexpected word '%.*s' "
                                       "at byte %zu",
                                       (int)(i - start > 16 ? 16 : i - start),
                                       buf + start, start);
                } else if (memchr(" \t\n\r[],", c, 7)) {
                        i++;
                } else if (c == '{' || c == '}' || c == ':') {
                        /* A ':' belongs to the innermost open object; the
                         * counts of a malformed document do not matter as
                         * json-c refuses it. */
                        if (c == '{')
                                obj_counts_open(oc);
                        else if (c == '}' && oc->depth)
                                oc->depth--;
                        else if (c == ':' && oc->depth)
                                oc->n[oc->open[oc->depth - 1]]++;
                        i++;
                } else {
                        cm_text_byte_name(c, what);
                        return cm_errf(
                            errstr, errstr_size,
                            "malformed JSON: unexpected character %s "
                            "at byte %zu",
                            what, i);
                }
        }
        return 0;
}

/* Walks the objects of v in pre-order against the counts of the text;
 * a shorter object had a duplicate key. Returns 0, or -1 with the reason. */
static int check_unique(json_object *v, const obj_counts_t *oc, size_t *next,
                        char *errstr, size_t errstr_size)
{
        size_t i, n;

        if (json_object_is_type(v, json_type_array)) {
                n = json_object_array_length(v);
                for (i = 0; i < n; i++)
                        if (check_unique(json_object_array_get_idx(v, i), oc,
                                         next, errstr, errstr_size) == -1)
                                return -1;
                return 0;
        }
        if (!json_object_is_type(v, json_type_object))
                return 0;
        if (*next >= oc->cnt ||
            (size_t)json_object_object_length(v) != oc->n[*next])
                return cm_errf(errstr, errstr_size,
                               "malformed JSON: duplicate key in an object");
        (*next)++;
        {
                json_object_object_foreach(v, key, child)
                {
                        (void)key;
                        if (check_unique(child, oc, next, errstr,
                                         errstr_size) == -1)
                                return -1;
                }
        }
        return 0;
}

/* JSON-ish name of a value's type, for "got ..." in errors. */
const char *cm_json_type_name(json_object *v)
{
        switch (json_object_get_type(v)) {
        case json_type_null:
                return "null";
        case json_type_boolean:
                return "boolean";
        case json_type_double:
                return "non-integer number";
        case json_type_int:
                return "integer";
        case json_type_object:
                return "object";
        case json_type_array:
                return "array";
        case json_type_string:
                return "string";
        }
        return "unknown";
}

/* Parses buf[0..len) as one JSON value of type want (an object or an
 * array), as json.h describes. */
static json_object *parse(const char *buf, size_t len, json_type want,
                          char *errstr, size_t errstr_size)
{
        json_tokener *tok = NULL;
        json_object *root = NULL;
        obj_counts_t oc = {0};
        enum json_tokener_error jerr;
        size_t bad, end, next = 0;

        if (!buf || len == 0) {
                cm_errf(errstr, errstr_size, "malformed JSON: empty input");
                goto out;
        }
        if (len > INT_MAX) {
                cm_errf(errstr, errstr_size,
                        "malformed JSON: input of %zu bytes is too large", len);
                goto out;
        }
        bad = cm_utf8_valid_prefix(buf, len);
        if (bad < len) {
                cm_errf(errstr, errstr_size, "invalid UTF-8 at byte %zu", bad);
                goto out;
        }
        if (check_bounds(buf, len, errstr, errstr_size) == -1)
                goto out;
        if (lex_check(buf, len, &oc, errstr, errstr_size) == -1)
                goto out;
        tok = json_tokener_new_ex(CM_JSON_DEPTH_MAX);
        if (!tok)
                cm_json_oom();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, buf, (int)len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (jerr == json_tokener_continue) {
                /* All was consumed; a NUL ends a top-level number. */
                root = json_tokener_parse_ex(tok, "", 1);
                jerr = json_tokener_get_error(tok);
                end = len;
                if (jerr != json_tokener_success) {
                        cm_errf(errstr, errstr_size,
                                "malformed JSON: unexpected end of input");
                        goto bad;
                }
        }
        if (jerr != json_tokener_success) {
                cm_errf(errstr, errstr_size, "malformed JSON: %s at byte %zu",
                        json_tokener_error_desc(jerr), end);
                goto bad;
        }
        while (end < len && memchr(" \t\n\r", buf[end], 4))
                end++;
        if (end != len) {
                cm_errf(errstr, errstr_size,
                        "malformed JSON: trailing characters at byte %zu", end);
                goto bad;
        }
        if (!json_object_is_type(root, want)) {
                cm_errf(errstr, errstr_size,
                        "malformed JSON: top level must be an %s, got %s",
                        want == json_type_object ? "object" : "array",
                        cm_json_type_name(root));
                goto bad;
        }
        if (check_unique(root, &oc, &next, errstr, errstr_size) == -1)
                goto bad;
        goto out;
bad:
        json_object_put(root);
        root = NULL;
out:
        if (tok)
                json_tokener_free(tok);
        obj_counts_release(&oc);
        return root;
}

json_object *cm_json_parse_object(const char *buf, size_t len, char *errstr,
                                  size_t errstr_size)
{
        return parse(buf, len, json_type_object, errstr, errstr_size);
}

json_object *cm_json_parse_array(const char *buf, size_t len, char *errstr,
                                 size_t errstr_size)
{
        return parse(buf, len, json_type_array, errstr, errstr_size);
}

json_object *cm_json_parse_loose(const char *buf, size_t len)
{
        json_tokener *tok = NULL;
        json_object *root = NULL;

        if (!buf || len == 0 || len > INT_MAX ||
            check_bounds(buf, len, NULL, 0) == -1)
                return NULL;
        tok = json_tokener_new_ex(CM_JSON_DEPTH_MAX);
        if (!tok)
                cm_json_oom();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, buf, (int)len);
        if (json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(root, json_type_object)) {
                json_object_put(root);
                root = NULL;
        }
        json_tokener_free(tok);
        return root;
}
