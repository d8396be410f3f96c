/*
 * deadline: time budgets on the monotonic clock (cm_mono_us()), for work
 * that must end by a given time whatever it waits on. The context worker
 * answers each request within context.deadline_ms of taking it from Kafka:
 * its Redis waits (connect, every read and write) are cut to what is left.
 *
 * A deadline is a time in mono µs; 0 means none. These are pure functions
 * of the caller's clock (now_us), so that they are tested without waiting.
 */
#ifndef CM_DEADLINE_H
#define CM_DEADLINE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The timeout of one blocking step (a connect, a read, a write) started at
 * now_us: limit_ms (0: no limit of its own), cut to what is left until
 * deadline_us (0: no deadline), in whole ms rounded down but at least 1,
 * so that what has already arrived is still read. Returns that, 0 when
 * neither limits the step, or -1 when the deadline has passed. Cannot
 * fail.
 */
int cm_deadline_step_ms(int limit_ms, int64_t deadline_us, int64_t now_us);

/*
 * Until when a batch of n requests, the oldest taken at taken_us and each
 * to be answered within deadline_ms of being taken, may wait for its
 * data: the oldest request's deadline less a reserve, which is the time
 * its n replies take to build, estimated at build_us each, plus a tenth
 * of the deadline for what a clock cannot promise (a socket timeout ends
 * on the kernel's next tick, a thread is scheduled late). The reserve is
 * at most half the deadline, so that slow builds never leave the wait no
 * time at all. Cannot fail.
 */
int64_t cm_deadline_wait_until(int64_t taken_us, int deadline_ms, size_t n,
                               int64_t build_us);

#endif
