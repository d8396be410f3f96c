/*
 * redis: how much of a bench run Redis holds (see bench.h).
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "redis.h"

/* ARGV: key prefix, tag, session count, "1" to count summaries and
 * profiles too (else they are 0). Returns {sum of meta 'total',
 * sessions with a summary, sessions with a profile name}. */
static const char count_lua[] =
    "local p, t, n = ARGV[1], ARGV[2], tonumber(ARGV[3])\n"
    "local s, sm, pr = 0, 0, 0\n"
    "for i = 0, n - 1 do\n"
    "  local u = t .. 'u' .. i\n"
    "  local v = redis.call('HGET', p .. '{' .. u .. ':default}:meta', "
    "'total')\n"
    "  if v then s = s + tonumber(v) end\n"
    "  if ARGV[4] == '1' then\n"
    "  if redis.call('HEXISTS', p .. '{' .. u .. ':default}:summary', "
    "'text') == 1 then sm = sm + 1 end\n"
    "  if redis.call('HEXISTS', p .. '{' .. u .. '}:profile', 'name') == 1 "
    "then pr = pr + 1 end\n"
    "  end\n"
    "end\n"
    "return {s, sm, pr}\n";

redisContext *redis_connect(const char *url, char *errstr, size_t errstr_size)
{
        cm_redis_url_t u;
        redisContext *rc;

        if (cm_redis_url_parse(url, &u, errstr, errstr_size) == -1)
                return NULL;
        rc = cm_redis_connect(&u, 2000, 30000, errstr, errstr_size);
        cm_redis_url_release(&u);
        return rc;
}

int redis_count(redisContext *rc, const char *prefix, const char *tag,
                long long sessions, int full, long long out[3], char *errstr,
                size_t errstr_size)
{
        static const cm_redis_script_t count = {"count", count_lua, NULL};
        const char *args[4];
        redisReply *r;
        char n[32];
        int ret;

        snprintf(n, sizeof(n), "%lld", sessions);
        args[0] = prefix;
        args[1] = tag;
        args[2] = n;
        args[3] = full ? "1" : "0";
        r = cm_redis_script_run(rc, &count, NULL, 0, args, NULL, 4, errstr,
                                errstr_size);
        if (!r)
                return -1;
        ret = cm_redis_reply_ints(r, 3, out, "count", errstr, errstr_size);
        freeReplyObject(r);
        return ret;
}

/* Reads the fleet counter ingest_applied (P:stats) into *out: ingest adds
 * to it once per batch, after Redis acknowledged the batch, so polling it
 * costs Redis one HGET however many sessions there are. */
int redis_applied(redisContext *rc, const char *prefix, long long *out,
                  char *errstr, size_t errstr_size)
{
        redisReply *r;
        int ret = -1;

        r = redisCommand(rc, "HGET %sstats ingest_applied", prefix);
        if (!r) {
                snprintf(errstr, errstr_size, "redis: %s", rc->errstr);
                return -1;
        }
        if (r->type == REDIS_REPLY_NIL) {
                *out = 0;
                ret = 0;
        } else if (r->type == REDIS_REPLY_STRING) {
                *out = atoll(r->str);
                ret = 0;
        } else {
                snprintf(errstr, errstr_size, "redis: unexpected reply: %s",
                         r->type == REDIS_REPLY_ERROR ? r->str : "?");
        }
        freeReplyObject(r);
        return ret;
}
