/*
 * redis: how much of a bench run Redis holds (see bench.h).
 */
#include <stdlib.h>
#include <string.h>

#include "bench.h"

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
        char host[256] = "127.0.0.1";
        long long port = 6379;
        const char *p = url, *colon, *end;
        redisContext *rc;
        char portbuf[16];

        if (!strncmp(p, "redis://", 8))
                p += 8;
        if (strchr(p, '@'))
                p = strchr(p, '@') + 1;
        end = p + strcspn(p, "/");
        colon = memchr(p, ':', (size_t)(end - p));
        if (colon) {
                size_t hl = (size_t)(colon - p), pl = (size_t)(end - colon - 1);

                if (hl && hl < sizeof(host)) {
                        memcpy(host, p, hl);
                        host[hl] = '\0';
                }
                if (pl && pl < sizeof(portbuf)) {
                        memcpy(portbuf, colon + 1, pl);
                        portbuf[pl] = '\0';
                        cm_parse_int(portbuf, 1, 65535, &port);
                }
        } else if (end > p && (size_t)(end - p) < sizeof(host)) {
                memcpy(host, p, (size_t)(end - p));
                host[end - p] = '\0';
        }
        rc = redisConnect(host, (int)port);
        if (!rc || rc->err) {
                snprintf(errstr, errstr_size,
                         "cannot connect to redis '%s': %s", url,
                         rc ? rc->errstr : "out of memory");
                redisFree(rc);
                return NULL;
        }
        return rc;
}

int redis_count(redisContext *rc, const char *prefix, const char *tag,
                long long sessions, int full, long long out[3], char *errstr,
                size_t errstr_size)
{
        redisReply *r;
        char n[32];
        int i, ret = -1;

        snprintf(n, sizeof(n), "%lld", sessions);
        r = redisCommand(rc, "EVAL %s 0 %s %s %s %s", count_lua, prefix, tag, n,
                         full ? "1" : "0");
        if (!r) {
                snprintf(errstr, errstr_size, "redis: %s", rc->errstr);
                return -1;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
                snprintf(errstr, errstr_size, "redis: unexpected reply: %s",
                         r->type == REDIS_REPLY_ERROR ? r->str : "?");
                goto out;
        }
        for (i = 0; i < 3; i++)
                out[i] = r->element[i]->integer;
        ret = 0;
out:
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
