#include "deadline.h"

int cm_deadline_step_ms(int limit_ms, int64_t deadline_us, int64_t now_us)
{
        int64_t left_ms;

        if (!deadline_us)
                return limit_ms > 0 ? limit_ms : 0;
        if (now_us >= deadline_us)
                return -1;
        left_ms = (deadline_us - now_us) / 1000;
        if (left_ms < 1)
                left_ms = 1;
        if (limit_ms > 0 && left_ms > limit_ms)
                return limit_ms;
        return left_ms > 0x7fffffff ? 0x7fffffff : (int)left_ms;
}

int64_t cm_deadline_wait_until(int64_t taken_us, int deadline_ms, size_t n,
                               int64_t build_us)
{
        int64_t budget_us = (int64_t)deadline_ms * 1000;
        int64_t slack_us = budget_us / 10, max_us = budget_us / 2;
        int64_t reserve_us = max_us;

        if (build_us < 0)
                build_us = 0;
        if (build_us == 0 || n <= (size_t)((max_us - slack_us) / build_us))
                reserve_us = slack_us + (int64_t)n * build_us;
        return taken_us + budget_us - reserve_us;
}
