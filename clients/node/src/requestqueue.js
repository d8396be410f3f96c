// A fix of kafkajs 2.2.4's request queue (one per connection), whose
// scheduleCheckPendingRequests() arms a timer even when no request waits,
// with a negative delay when the connection is not throttled: the timer
// fires after 1 ms, checks an empty queue and arms itself again. Every
// open connection so wakes its process a thousand times a second for as
// long as it lives (kafkajs issues #1556, #1604 and #1704; no kafkajs
// release has the fix). The client holds several connections, and the
// wake-ups cost an idle client about half of its CPU time.
//
// The fixed method arms a check only while requests wait: at the end of
// the broker's throttling when that is ahead, else after the queue's own
// interval (10 ms, a safety net: a request waiting for a free in-flight
// slot is sent when a response frees one). It replaces the method on the
// prototype of the pinned kafkajs (package.json pins 2.2.4 exactly), so
// every connection of this process's copy of kafkajs has it.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

// kafkajs's CHECK_PENDING_REQUESTS_INTERVAL (ms)
const CHECK_INTERVAL_MS = 10;

function scheduleCheckPendingRequests() {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const untilUnthrottled = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(
    () => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    },
    untilUnthrottled > 0 ? untilUnthrottled : CHECK_INTERVAL_MS,
  );
}

/** kafkajs's RequestQueue class, with the fix in place. */
export function fixedRequestQueue() {
  const RequestQueue = require('kafkajs/src/network/requestQueue/index.js');
  RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
  return RequestQueue;
}
