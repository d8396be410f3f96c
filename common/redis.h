/*
 * redis: the one door to a Redis server below the store — its URL, the
 * connection (timeouts, AUTH, SELECT) and Lua scripts (EVALSHA, falling
 * back to EVAL when the server's script cache lost the script).
 *
 * Everything here works on a plain hiredis connection and keeps no state
 * of its own, so the store, the CLI and the bench share it. hiredis's rule
 * holds throughout: once a call fails with an I/O error (rc->err set) the
 * connection is dead; free it and connect again, never reuse it. An error
 * reply from Redis leaves the connection in step and usable.
 *
 * URLs are parsed with libcurl's URL API (curl_url), so percent-encoded
 * user names and passwords and bracketed IPv6 hosts work, and logs get
 * URLs through cm_url_redact() or cm_redis_url_t.safe only.
 */
#ifndef CM_REDIS_H
#define CM_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

/* redis://[[user]:password@]host[:port][/db], decoded. */
typedef struct cm_redis_url {
        char *host;     /* IPv6 without brackets ("::1"), zone appended */
        int port;       /* 6379 when absent */
        char *user;     /* NULL: AUTH with the password only */
        char *password; /* NULL: no AUTH */
        int db;         /* 0 when absent */
        char *safe;     /* for logs: redis://[user][:***@]host:port/db */
} cm_redis_url_t;

/*
 * Parses url into out (embedded; release with cm_redis_url_release()). A
 * URL without "://" is read as redis://<url>. Only the redis scheme is
 * accepted; user and password are percent-decoded, and user info without
 * ':' is the password (as redis-cli reads it); the port must be in
 * 1..65535, the path empty, "/" or "/<db>"; a query or fragment is
 * refused. On error returns -1 and writes the reason to errstr (which
 * never holds the password); out is then empty.
 */
int cm_redis_url_parse(const char *url, cm_redis_url_t *out, char *errstr,
                       size_t errstr_size);

/* Frees what u owns and empties it; u may be NULL. */
void cm_redis_url_release(cm_redis_url_t *u);

/*
 * Any URL for logs: scheme://host[:port]/path with the user info, query
 * and fragment removed. Returns a heap string the caller frees; a string
 * that does not parse as a URL gives "(invalid url)". Cannot fail.
 */
char *cm_url_redact(const char *url);

/*
 * Connects to u (connect_ms to connect, io_ms for each later read or
 * write, 0 = no limit), sends AUTH (user and password, or the password
 * alone) when u has a password and SELECT when u->db is not 0. Returns the
 * connection (free with redisFree()), or NULL and writes the reason, with
 * u->safe and never the password, to errstr.
 */
redisContext *cm_redis_connect(const cm_redis_url_t *u, int connect_ms,
                               int io_ms, char *errstr, size_t errstr_size);

/*
 * Bounds each later read and write of rc by io_ms (0: no limit) and by
 * what is left until deadline_us (mono µs, deadline.h; 0: none), at least
 * 1 ms: cm_deadline_step_ms(). A read or write that runs out fails as an
 * I/O error does (rc->err set: free rc). Returns 0, or -1 with the reason
 * in errstr.
 */
int cm_redis_set_deadline(redisContext *rc, int io_ms, int64_t deadline_us,
                          char *errstr, size_t errstr_size);

/*
 * A Lua script. The scripts of common/lua/ are generated at build time as
 * const objects (name, source, SHA1). A script made at run time may leave
 * sha NULL: it is then always sent whole (EVAL).
 */
typedef struct cm_redis_script {
        const char *name; /* for error messages: "append" */
        const char *src;
        const char *sha; /* 40 lowercase hex digits of SHA1(src), or NULL */
} cm_redis_script_t;

/*
 * Loads scripts[0..cnt) into the server's script cache in one round trip
 * (SCRIPT LOAD), so that the first EVALSHA of each finds it, and checks
 * that the server's SHA1 of each is its sha. Returns 0, or -1 with the
 * reason in errstr (an I/O error sets rc->err).
 */
int cm_redis_script_load(redisContext *rc,
                         const cm_redis_script_t *const *scripts, size_t cnt,
                         char *errstr, size_t errstr_size);

/*
 * Runs script s with keys[0..nkeys) (NUL-terminated strings) and
 * args[0..nargs) (any bytes: args[i] is arglens[i] bytes long, or, with
 * arglens NULL, every arg is a NUL-terminated string; any count) and
 * waits for the reply: EVALSHA, then EVAL with
 * the source if the server answers NOSCRIPT (its cache was flushed or
 * Redis restarted), which also caches the script again. Returns the reply
 * (free with freeReplyObject()), or NULL and writes the reason to errstr:
 * for an error reply (the script failed; the connection stays usable) and
 * for an I/O error (rc->err is set: free rc).
 */
redisReply *cm_redis_script_run(redisContext *rc, const cm_redis_script_t *s,
                                const char *const *keys, size_t nkeys,
                                const char *const *args, const size_t *arglens,
                                size_t nargs, char *errstr, size_t errstr_size);

/*
 * A pipeline of script calls, run in one round trip (cm_redis_batch_run):
 * add the calls, run, read each reply, destroy. The calls' arguments are
 * copied, so a call met by NOSCRIPT can be sent again with EVAL. Heap
 * object: cm_redis_batch_new() / cm_redis_batch_destroy().
 */
typedef struct cm_redis_batch cm_redis_batch_t;

/* Returns an empty batch. Cannot fail. */
cm_redis_batch_t *cm_redis_batch_new(void);

/* Frees the batch, its copies and its replies; b may be NULL. */
void cm_redis_batch_destroy(cm_redis_batch_t *b);

/* Queues one call of s (copies keys and args; any count). Returns the
 * call's index. Cannot fail. */
size_t cm_redis_batch_add(cm_redis_batch_t *b, const cm_redis_script_t *s,
                          const char *const *keys, size_t nkeys,
                          const char *const *args, size_t nargs);

/* Calls queued so far. Cannot fail. */
size_t cm_redis_batch_count(const cm_redis_batch_t *b);

/*
 * Sends every queued call (EVALSHA) in one pipeline and reads every reply.
 * Calls answered NOSCRIPT are sent again with EVAL, in their order, in a
 * second round trip; Redis ran none of them the first time. Returns 0 when
 * every call has its reply (error replies included: check each one's
 * type), or -1 with the reason in errstr on an I/O error (rc->err is set:
 * free rc; Redis may have run any prefix of the calls, and the replies
 * are gone). Should another client reload the script while the pipeline
 * runs, calls after a refused one may run before it is sent again; that
 * is logged as an error.
 */
int cm_redis_batch_run(redisContext *rc, cm_redis_batch_t *b, char *errstr,
                       size_t errstr_size);

/* The reply of call i after a successful cm_redis_batch_run() (owned by
 * the batch), else NULL. */
const redisReply *cm_redis_batch_reply(const cm_redis_batch_t *b, size_t i);

/*
 * Checks that r is an array of exactly cnt integers and copies them to
 * out[0..cnt). Returns 0, or -1 and writes what came instead (an error
 * reply's text, the type or the count), after what, to errstr.
 */
int cm_redis_reply_ints(const redisReply *r, size_t cnt, long long *out,
                        const char *what, char *errstr, size_t errstr_size);

/* Checks that r is an array whose elements are all strings. Returns 0, or
 * -1 and writes what came instead, after what, to errstr. */
int cm_redis_reply_strings(const redisReply *r, const char *what, char *errstr,
                           size_t errstr_size);

/* Checks that r is an integer reply and copies it to *out. Returns 0, or -1
 * and writes what came instead, after what, to errstr. */
int cm_redis_reply_int(const redisReply *r, long long *out, const char *what,
                       char *errstr, size_t errstr_size);

#endif
