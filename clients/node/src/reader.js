// A reader of every partition of one topic, without a consumer group:
// the reply topic of a client and context.prebuilt are read whole by each
// reader, from the end or the beginning, as librdkafka's assign() would.
//
// kafkajs's public consumer always joins a consumer group, which costs a
// group join per client (group.initial.rebalance.delay.ms, 3 s by
// default on a broker, and on the devbroker), leaves a group behind and
// cannot say when it is positioned. So this reader drives kafkajs's own
// Cluster and Broker objects directly: ListOffsets through them, and
// Fetch requests of this client's encoding (protocol.js) through their
// connections. The cluster is created by the client's Kafka instance (its
// ssl, sasl, retry and logger settings apply) through the factory kafkajs
// keeps under a private symbol. These are internals of the pinned kafkajs
// 2.2.4 (package.json pins it exactly; test/e2e covers the path).
import { ChatMemError, kafkaCodeError } from './errors.js';
import { API_FETCH, FETCH_VERSIONS, fetchRequest, pickVersion } from './protocol.js';

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

/**
 * The partition ids of a topic, in order, once the cluster's metadata
 * shows every one with a leader: a topic being auto-created (by this
 * metadata request) takes a moment. Waits up to waitMs, then rejects
 * with the last retriable error or a ChatMemError.
 */
export async function topicPartitions(cluster, topic, waitMs = 5000) {
  const deadline = Date.now() + waitMs;
  for (;;) {
    let error = null;
    try {
      await cluster.addTargetTopic(topic); // a metadata request when new
      const meta = cluster.findTopicPartitionMetadata(topic);
      if (meta.length > 0 && meta.every((p) => p.leader !== null && p.leader !== undefined && p.leader >= 0))
        return meta.map((p) => p.partitionId).sort((a, b) => a - b);
    } catch (e) {
      if (!e.retriable) throw e;
      error = e;
    }
    if (Date.now() >= deadline) throw error ?? new ChatMemError(`topic '${topic}' has no partitions with a leader`, 'kafka');
    await sleep(100);
    await cluster.refreshMetadata().catch(() => {});
  }
}

const ERR_OFFSET_OUT_OF_RANGE = 1;

/**
 * TopicReader({kafka, topic, fromBeginning, maxWaitMs, onMessages, logger})
 *
 * start() resolves once every partition has a position (the end of the
 * partition, or its start with fromBeginning): every message produced
 * after start() resolved is delivered. onMessages(partition, messages) is
 * called, and awaited, for each non-empty fetch of a partition, in
 * offset order; messages are records {key, value, offset, headers,
 * timestamp} (protocol.js decodeRecordSet: Buffers viewing the response,
 * numbers). stop() ends the loop and closes the connections.
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
    this.positions = new Map(); // partition -> next offset
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
          const partitions = await topicPartitions(this.cluster, this.topic);
          const [offsets] = await this.cluster.fetchTopicsOffset([
            { topic: this.topic, fromBeginning: this.fromBeginning, partitions: partitions.map((partition) => ({ partition })) },
          ]);
          for (const { partition, offset } of offsets.partitions) this.positions.set(partition, Number(offset));
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
    for (const p of offsets.partitions) this.positions.set(p.partition, Number(p.offset));
  }

  async fetchFrom(nodeId, parts) {
    const broker = await this.cluster.findBroker({ nodeId });
    const version = pickVersion(broker.versions, API_FETCH, FETCH_VERSIONS);
    if (version < 0) throw new ChatMemError(`broker ${nodeId} speaks no Fetch version in ${FETCH_VERSIONS.join('..')}`, 'kafka');
    let res;
    try {
      res = await broker.connectionPool.send(
        fetchRequest(version, {
          topic: this.topic,
          partitions: parts.map((partition) => ({ partition, offset: this.positions.get(partition) })),
          maxWaitMs: this.maxWaitMs,
          minBytes: 1,
          maxBytes: this.maxBytes,
          partitionMaxBytes: this.maxBytes,
          isolationLevel: READ_COMMITTED,
        }),
      );
    } catch (e) {
      if (e.name === 'KafkaJSConnectionClosedError') await broker.disconnect().catch(() => {});
      throw e;
    }
    if (res.errorCode !== 0) throw kafkaCodeError(res.errorCode, `fetch from broker ${nodeId}`);
    const out = [];
    let error = null;
    for (const pd of res.partitions) {
      if (pd.errorCode === ERR_OFFSET_OUT_OF_RANGE) {
        // Gone (retention): on to the oldest offset still there.
        await this.reset(pd.partition).catch(() => {});
        continue;
      }
      if (pd.errorCode !== 0) {
        error ??= kafkaCodeError(pd.errorCode, `fetch ${this.topic}[${pd.partition}]`);
        continue;
      }
      // next: after the last complete batch, also when all its records
      // were before the position or were transaction markers.
      if (pd.next > this.positions.get(pd.partition)) this.positions.set(pd.partition, pd.next);
      if (pd.records.length > 0) out.push({ partition: pd.partition, messages: pd.records });
    }
    // The other partitions' messages are delivered; the error (a leader
    // moved, a topic not yet everywhere) makes the loop back off and
    // refresh the metadata.
    if (error) {
      if (out.length === 0) throw error;
      await this.cluster.refreshMetadata().catch(() => {});
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
