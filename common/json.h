/*
 * json: the strict JSON front end of the codec. It is the one place where
 * bytes from outside become a json-c tree; codec.c then reads the fields.
 *
 * cm_json_parse_object() accepts exactly one JSON object as RFC 8259
 * defines it, and refuses what json-c 0.16 would accept or silently change
 * even in its strict mode:
 *   - input that is not well-formed UTF-8 (the offset of the first bad
 *     byte is named);
 *   - NaN, Infinity, "1.", "01", "+1", single-quoted strings, bare words,
 *     comments, raw control characters (< 0x20) in strings, unknown
 *     escapes;
 *   - a \u escape of an unpaired surrogate (json-c would give U+FFFD);
 *   - a key repeated in any object, at any depth (json-c keeps the last
 *     one, so that two readers of one message could see different values);
 *   - a key with a \u0000 escape (json-c would cut it there, so that
 *     "user_id\u0000x" became "user_id");
 *   - objects and arrays nested deeper than CM_JSON_DEPTH_MAX levels, and
 *     more than CM_JSON_ITEMS_MAX values and member names in all (the
 *     lexical pass stops at the first one too many, before json-c builds
 *     anything: its tree of a 10 MB document of "{}"s would take 2 GB);
 *   - anything but whitespace after the object, and a top level that is
 *     not an object.
 * It does not refuse "\u0000" inside a string value: the codec's string
 * readers do (its structures hold C strings). Integers that do not fit int64
 * are kept by json-c as uint64 or clamped; the codec's integer reader refuses
 * them.
 *
 * How (json.c): a lexical pass over the bytes checks the above and counts
 * the members of each object; json-c's strict tokener then builds the
 * tree, and an object with fewer members than counted had a duplicate key.
 *
 * Error messages start with "malformed JSON: " or "invalid UTF-8" and name
 * a byte offset where there is one.
 */
#ifndef CM_JSON_H
#define CM_JSON_H

#include <json-c/json.h>
#include <stddef.h>

/* Levels of objects and arrays a document may nest, the top level
 * included (json-c's own default). */
#define CM_JSON_DEPTH_MAX 32
/* Values (objects and arrays included) and member names a document may
 * hold: a request with the codec's 10,000 history entries has 50,000. */
#define CM_JSON_ITEMS_MAX 65536

/*
 * Parses buf[0..len) as one JSON object, as described above. Returns the
 * root, which the caller owns and frees with json_object_put(). On error
 * returns NULL and writes the reason to errstr.
 */
json_object *cm_json_parse_object(const char *buf, size_t len, char *errstr,
                                  size_t errstr_size);

/* The same for one JSON array (a history file, say). */
json_object *cm_json_parse_array(const char *buf, size_t len, char *errstr,
                                 size_t errstr_size);

/*
 * Parses buf[0..len) with json-c's strict tokener alone, without the
 * checks above (json-c is lenient about UTF-8, duplicate keys and the
 * details the lexical pass refuses): only for reading what can still be
 * read from a document cm_json_parse_object() refused, such as the
 * request_id an error reply needs. Every value read from it must be checked
 * again. It too refuses more than CM_JSON_ITEMS_MAX values and nesting
 * deeper than CM_JSON_DEPTH_MAX. Returns the root object (json_object_put()
 * it), or NULL when the input is not a JSON object even to json-c, or too
 * big. Cannot fail otherwise.
 */
json_object *cm_json_parse_loose(const char *buf, size_t len);

/* The JSON name of v's type ("null", "boolean", "integer", "non-integer
 * number", "string", "array", "object"), for "got ..." in errors. */
const char *cm_json_type_name(json_object *v);

/* Aborts with a message: json-c could not allocate. */
_Noreturn void cm_json_oom(void);

#endif
