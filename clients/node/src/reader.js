// A reader of every partition of one topic, without a consumer group:
// the reply topic of a client and context.prebuilt are read whole by each
// reader, from the end or the beginning, as librdkafka's assign() would.
//
// kafkajs's public consumer always joins a consumer group, which costs a
// group join per client (group.initial.rebalance.delay.ms, 3 s by
// default on a broker, and on the devbroker), leaves a group behind and
// cannot say when it is positioned. So this reader drives kafkajs's own
// Cluster and Broker objects (ListOffsets, Fetch) directly: the cluster
// is created by the client's Kafka instance (its ssl, sasl, retry and
// logger settings apply) through the factory kafkajs keeps under a
// private symbol. These are internals of the pinned kafkajs 2.2.4
// (package.json pins it exactly; test/e2e covers the path).
import { ChatMemError } from './errors.js';

const CREATE_CLUSTER = 'private:Kafka:createCluster';
const READ_COMMITTED = 1;
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 5000;

/** A new kafkajs Cluster (own connections) from a kafkajs Kafka instance. */
export function createCluster(kafka) {
  const sym = Object.getOwnPropertySymbols(kafka).find((s) => s.description === CREATE_CLUSTER);
  if (!sym || typeof kafka[sym] !== 'function')
    throw new ChatMemError('this kafkajs has no cluster factory: chatmem needs kafkajs 2.2.x', 'kafka');
  return kafka[sym]({ metadataMaxAge: 300000, allowAutoTopicCreation: true, isolationLevel: READ_COMMITTED });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// a < b for two offsets as kafkajs gives them: strings of decimal digits
// without leading zeros (no BigInt per record).
function offsetBefore(a, b) {
  return a.length !== b.length ? a.length < b.length : a < b;
}

/**
 * TopicReader({kafka, topic, fromBeginning, maxWaitMs, onMessages, logger})
 *
 * start() resolves once every partition has a position (the end of the
 * partition, or its start with fromBeginning): every message produced
 * after start() resolved is delivered. onMessages(partition, messages) is
 * called, and awaited, for each non-empty fetch of a partition, in
 * offset order; messages are kafkajs records ({key, value, offset,
 * headers, timestamp}). stop() ends the loop and closes the connections.
 * One fetch may be ahead of the delivery: stop() drops what it brought.
 */
export class TopicReader {
  constructor({ kafka, topic, fromBeginning = false, maxWaitMs = 100, maxBytes = 16 << 20, onMessages, logger }) {
    this.kafka = kafka;
    this.topic = topic;
    this.fromBeginning = fromBeginning;
    this.maxWaitMs = maxWaitMs;
    this.maxBytes = maxBytes;
    this.onMessages = onMessages;
    this.logger = logger;
    this.positions = new Map(); // partition -> next offset (string)
    this.running = false;
    this.loopDone = null;
  }

  async start() {
    this.cluster = createCluster(this.kafka);
    this.running = true;
    try {
      await this.cluster.connect();
      // A topic just created may take a moment to have leaders on every
      // broker: a few tries, then the error.
      for (let i = 0; ; i++) {
        try {
          await this.cluster.addTargetTopic(this.topic);
          const partitions = await this.partitions();
          const [offsets] = await this.cluster.fetchTopicsOffset([
            { topic: this.topic, fromBeginning: this.fromBeginning, partitions: partitions.map((partition) => ({ partition })) },
          ]);
          for (const { partition, offset } of offsets.partitions) this.positions.set(partition, offset);
          break;
        } catch (e) {
          if (i >= 10 || !e.retriable) throw e;
          await sleep(200);
          await this.cluster.refreshMetadata().catch(() => {});
        }
      }
    } catch (e) {
      this.running = false;
      await this.cluster.disconnect().catch(() => {});
      throw e;
    }
    this.loopDone = this.loop();
  }

  // The topic's partitions, waiting (bounded) for an auto-created topic
  // to show them with leaders.
  async partitions() {
    for (let i = 0; ; i++) {
      const meta = this.cluster.findTopicPartitionMetadata(this.topic);
      if (meta.length > 0 && meta.every((p) => p.leader !== null && p.leader !== undefined && p.leader >= 0))
        return meta.map((p) => p.partitionId).sort((a, b) => a - b);
      if (i >= 50) throw new ChatMemError(`topic '${this.topic}' has no partitions with a leader`, 'kafka');
      await sleep(100);
      await this.cluster.refreshMetadata();
    }
  }

  // Fetches and delivers. The next fetch is sent before the messages of
  // the last one are delivered, so the broker gathers the next replies
  // while this process handles the last ones; at most one fetch is ahead
  // of the delivery (a delivery that waits holds the reader back).
  async loop() {
    let backoff = BACKOFF_MIN_MS;
    let ahead = null;
    while (this.running) {
      try {
        const results = await (ahead ?? this.fetchRound());
        ahead = null;
        if (this.running) {
          ahead = this.fetchRound();
          ahead.catch(() => {}); // handled when awaited above
          await new Promise((r) => setImmediate(r)); // the fetch goes out first
        }
        for (const { partition, messages } of results) {
          if (!this.running) break;
          try {
            await this.onMessages(partition, messages);
          } catch (e) {
            // The caller's failure: its messages are passed, not fetched again.
            this.logger?.error?.(`chatmem: handling messages of ${this.topic}: ${e.message}`);
          }
        }
        backoff = BACKOFF_MIN_MS;
      } catch (e) {
        ahead = null;
        if (!this.running) break;
        if (e.name === 'KafkaJSOffsetOutOfRange') {
          await this.reset(e.partition).catch(() => {});
          continue;
        }
        this.logger?.debug?.(`chatmem: fetching ${this.topic}: ${e.message}; retrying in ${backoff} ms`);
        await sleep(backoff);
        backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        if (e.name === 'KafkaJSConnectionClosedError' && e.host) this.cluster.removeBroker({ host: e.host, port: e.port });
        await this.cluster.refreshMetadata().catch(() => {});
      }
    }
    if (ahead) await ahead.catch(() => {});
  }

  // One fetch from the leader of every partition; advances the positions
  // and returns the messages [{partition, messages}] in offset order.
  async fetchRound() {
    await this.cluster.refreshMetadataIfNecessary();
    const byLeader = this.cluster.findLeaderForPartitions(this.topic, [...this.positions.keys()]);
    const rounds = await Promise.all(Object.entries(byLeader).map(([nodeId, parts]) => this.fetchFrom(nodeId, parts)));
    return rounds.flat();
  }

  // An offset that is gone (retention): on to the oldest still there.
  async reset(partition) {
    const [offsets] = await this.cluster.fetchTopicsOffset([{ topic: this.topic, fromBeginning: true, partitions: [{ partition }] }]);
    for (const p of offsets.partitions) this.positions.set(p.partition, p.offset);
  }

  async fetchFrom(nodeId, parts) {
    const broker = await this.cluster.findBroker({ nodeId });
    const requested = new Map(parts.map((p) => [p, this.positions.get(p)]));
    const { responses } = await broker.fetch({
      maxWaitTime: this.maxWaitMs,
      minBytes: 1,
      maxBytes: this.maxBytes,
      isolationLevel: READ_COMMITTED,
      topics: [
        {
          topic: this.topic,
          partitions: parts.map((partition) => ({ partition, fetchOffset: requested.get(partition), maxBytes: this.maxBytes })),
        },
      ],
    });
    const out = [];
    for (const { topicName, partitions } of responses) {
      if (topicName !== this.topic) continue;
      for (const pd of partitions) {
        const raw = pd.messages;
        if (!raw || raw.length === 0) continue;
        const from = requested.get(pd.partition);
        const last = raw[raw.length - 1].offset;
        if (offsetBefore(last, from)) {
          // Only records before the position came back (a compacted
          // batch): step over one offset, as kafkajs's consumer does.
          this.positions.set(pd.partition, (BigInt(from) + 1n).toString());
          continue;
        }
        this.positions.set(pd.partition, (BigInt(last) + 1n).toString());
        // The records are in offset order: those before the position (the
        // head of a batch that started earlier) are a prefix, and control
        // records are rare; the common fetch is delivered as it came.
        let start = 0;
        while (offsetBefore(raw[start].offset, from)) start++;
        let messages = start === 0 ? raw : raw.slice(start);
        if (messages.some((m) => m.isControlRecord)) messages = messages.filter((m) => !m.isControlRecord);
        if (messages.length > 0) out.push({ partition: pd.partition, messages });
      }
    }
    return out;
  }

  async stop() {
    if (!this.cluster) return;
    this.running = false;
    // The fetch in flight ends within maxWaitMs; then the connections
    // close (closing them under a request in flight makes kafkajs log an
    // error). A fetch stuck on a dead connection is not waited for long.
    if (this.loopDone) {
      let timer;
      const bound = new Promise((r) => (timer = setTimeout(r, this.maxWaitMs + 2000)));
      await Promise.race([this.loopDone.catch(() => {}), bound]);
      clearTimeout(timer);
    }
    await this.cluster.disconnect().catch(() => {});
    this.cluster = null;
  }
}
