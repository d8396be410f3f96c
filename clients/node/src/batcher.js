// Batching in front of the client's producer (producer.js), which sends
// what it is given at once: this batcher gathers the messages of
// concurrent calls and sends them with one producer.send(). Messages wait
// at most lingerMs (0: until the current turn of the event loop ends)
// while fewer than maxInFlight batches are in flight, and gather behind
// them otherwise. With maxInFlight 1 (the producer's retries and
// sequence numbers need it) the messages go out in the order they were
// given.
export class Batcher {
  constructor(producer, { lingerMs = 0, maxBatch = 5000, maxInFlight = 1 } = {}) {
    this.producer = producer;
    this.lingerMs = lingerMs;
    this.maxBatch = maxBatch;
    this.maxInFlight = maxInFlight;
    this.queue = [];
    this.inFlight = 0;
    this.timer = null;
    this.idleWaiters = [];
  }

  /** Resolves when the message is acknowledged; rejects with the producer's error. */
  send(topic, key, value) {
    return new Promise((resolve, reject) => {
      this.queue.push({ topic, key, value, resolve, reject });
      this.schedule();
    });
  }

  schedule() {
    if (this.inFlight >= this.maxInFlight || this.timer) return;
    if (this.lingerMs > 0) this.timer = setTimeout(() => this.flush(), this.lingerMs);
    else this.timer = setImmediate(() => this.flush());
  }

  flush() {
    this.timer = null;
    if (this.inFlight >= this.maxInFlight || this.queue.length === 0) {
      this.notifyIdle();
      return;
    }
    const batch = this.queue.splice(0, this.maxBatch);
    const byTopic = new Map();
    for (let i = 0; i < batch.length; i++) {
      const m = batch[i];
      let messages = byTopic.get(m.topic);
      if (messages === undefined) byTopic.set(m.topic, (messages = []));
      messages.push({ key: m.key, value: m.value });
    }
    const topicMessages = [];
    for (const [topic, messages] of byTopic) topicMessages.push({ topic, messages });
    this.inFlight++;
    this.producer
      .send(topicMessages)
      .then(
        () => batch.forEach((m) => m.resolve()),
        (e) => batch.forEach((m) => m.reject(e)),
      )
      .finally(() => {
        this.inFlight--;
        if (this.queue.length > 0 && !this.timer) {
          // Gathered behind a batch in flight: it goes at once.
          this.timer = setImmediate(() => this.flush());
        } else {
          this.notifyIdle();
        }
      });
  }

  notifyIdle() {
    if (this.inFlight > 0 || this.queue.length > 0 || this.timer) return;
    const w = this.idleWaiters;
    this.idleWaiters = [];
    w.forEach((r) => r());
  }

  /** Resolves when every message given so far is acknowledged or failed. */
  drain() {
    if (this.inFlight === 0 && this.queue.length === 0 && !this.timer) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Fails every message not yet handed to the producer. */
  abort(err) {
    const q = this.queue;
    this.queue = [];
    q.forEach((m) => m.reject(err));
    if (this.timer) {
      clearTimeout(this.timer);
      clearImmediate(this.timer);
      this.timer = null;
    }
    this.notifyIdle();
  }
}
