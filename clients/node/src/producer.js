// The client's producer: Produce requests of its own encoding (see
// protocol.js) over the connections and metadata of a kafkajs Cluster.
// One send() at a time (the Batcher in front of it keeps one in flight),
// so a batch retried after an error still goes before the next one: the
// messages of a session keep their order.
//
// Idempotent when asked and the broker grants a producer id
// (InitProducerId): a batch retried after a lost acknowledgement is then
// not written twice. Where none is granted, the messages of a retried
// batch may be written twice; chatmem's ingest drops the second copy of
// an event by its event_id, and a request asked twice is answered twice
// (the second reply matches no pending request and is dropped).
import { ChatMemError, kafkaCodeError } from './errors.js';
import {
  API_INIT_PRODUCER_ID,
  API_PRODUCE,
  PRODUCE_VERSIONS,
  initProducerIdRequest,
  pickVersion,
  produceRequest,
} from './protocol.js';
import { createCluster, topicPartitions } from './reader.js';
import { partitionFor } from './wire.js';

const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2000;
const ERR_DUPLICATE_SEQUENCE = 46;
// The producer id is no longer valid for these: a new one (new epoch,
// sequences from 0) and the batch again.
const ERR_PRODUCER_STATE = new Set([45 /* OUT_OF_ORDER_SEQUENCE_NUMBER */, 47 /* INVALID_PRODUCER_EPOCH */, 59 /* UNKNOWN_PRODUCER_ID */]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class Producer {
  /**
   * {kafka (a kafkajs Kafka), idempotent, acks (-1 all, 1 leader),
   * timeoutMs (the broker's ack timeout, and the bound on retrying),
   * logger}
   */
  constructor({ kafka, idempotent = false, acks = -1, timeoutMs = 30000, logger }) {
    this.kafka = kafka;
    this.wantIdempotent = idempotent;
    this.acks = acks;
    this.timeoutMs = timeoutMs;
    this.logger = logger;
    this.cluster = null;
    this.pid = null; // {id, epoch}
    this.sequences = new Map(); // "topic\0partition" -> next sequence
    this.topics = new Set(); // the topics in the cluster's metadata
  }

  async connect() {
    this.cluster = createCluster(this.kafka);
    await this.cluster.connect();
    if (this.wantIdempotent) await this.initProducerId();
  }

  async disconnect() {
    if (!this.cluster) return;
    const c = this.cluster;
    this.cluster = null;
    await c.disconnect().catch(() => {});
  }

  // A producer id from the bootstrap broker, retried within timeoutMs
  // while the broker says to (a coordinator still loading); none granted
  // (an old broker, ACLs): not idempotent, said once.
  async initProducerId() {
    this.pid = null;
    this.sequences.clear();
    const deadline = Date.now() + this.timeoutMs;
    try {
      const broker = this.cluster.brokerPool.seedBroker;
      const v = pickVersion(broker.versions, API_INIT_PRODUCER_ID, [0, 1]);
      if (v < 0) throw new Error('the broker has no InitProducerId');
      for (let backoff = BACKOFF_MIN_MS; ; backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)) {
        const r = await broker.connectionPool.send(initProducerIdRequest(v));
        if (r.errorCode === 0) {
          this.pid = { id: r.id, epoch: r.epoch };
          return;
        }
        const e = kafkaCodeError(r.errorCode, 'InitProducerId');
        if (!e.retriable || Date.now() + backoff > deadline) throw e;
        await sleep(backoff);
      }
    } catch (e) {
      this.logger?.warn?.(`chatmem: no producer id (${e.message}); the producer is not idempotent`);
      this.wantIdempotent = false;
    }
  }

  /** The partition count of a topic, waiting (within timeoutMs) for one being auto-created. */
  async partitionCount(topic) {
    if (!this.topics.has(topic)) {
      await topicPartitions(this.cluster, topic, this.timeoutMs);
      this.topics.add(topic);
    }
    const n = this.cluster.findTopicPartitionMetadata(topic).length;
    if (n === 0) throw new ChatMemError(`topic '${topic}' has no partitions`, 'kafka');
    return n;
  }

  /**
   * Sends [{topic, messages: [{key, value}]}] (key: the partitioning key,
   * a string or Buffer; value a string or Buffer) with acks; resolves
   * when every message is acknowledged, rejects with the first error that
   * is not retriable or outlasts timeoutMs.
   */
  async send(topicMessages) {
    if (!this.cluster) throw new ChatMemError('producer not connected', 'kafka');
    const deadline = Date.now() + this.timeoutMs;
    // "topic\0partition" -> {topic, partition, messages}
    let pending = new Map();
    for (const { topic, messages } of topicMessages) {
      const n = await this.partitionCount(topic);
      for (let i = 0; i < messages.length; i++) {
        const m = messages[i];
        const partition = partitionFor(m.key, n);
        const id = `${topic}\0${partition}`;
        let b = pending.get(id);
        if (b === undefined) pending.set(id, (b = { topic, partition, messages: [] }));
        b.messages.push(m);
      }
    }
    let backoff = BACKOFF_MIN_MS;
    for (;;) {
      const { retry, error } = await this.sendOnce(pending);
      if (retry.size === 0) return;
      if (Date.now() + backoff > deadline) throw error;
      this.logger?.debug?.(`chatmem: produce: ${error.message}; retrying in ${backoff} ms`);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      if (this.pid === null && this.wantIdempotent) {
        // A new producer id: the batches take sequences from 0 again.
        await this.initProducerId();
        for (const x of retry.values()) delete x.sequence;
      }
      await this.cluster.refreshMetadata().catch(() => {});
      pending = retry;
    }
  }

  // One Produce request per leader for the batches given; returns those
  // to retry (retriable errors) and the error that made them; throws
  // the first error that is not retriable.
  async sendOnce(batches) {
    const byLeader = new Map();
    for (const b of batches.values()) {
      const leaders = this.cluster.findLeaderForPartitions(b.topic, [b.partition]);
      const nodeId = Object.keys(leaders)[0];
      if (nodeId === undefined || Number(nodeId) < 0) {
        return { retry: batches, error: new ChatMemError(`${b.topic}[${b.partition}] has no leader`, 'kafka') };
      }
      let list = byLeader.get(nodeId);
      if (list === undefined) byLeader.set(nodeId, (list = []));
      list.push(b);
    }
    const retry = new Map();
    let error = null;
    await Promise.all(
      [...byLeader].map(async ([nodeId, list]) => {
        try {
          await this.produceTo(Number(nodeId), list);
        } catch (e) {
          if (!e.retriable) throw e;
          error ??= e;
          for (const b of e.failed ?? list) retry.set(`${b.topic}\0${b.partition}`, b);
        }
      }),
    );
    return { retry, error };
  }

  async produceTo(nodeId, list) {
    let broker;
    try {
      broker = await this.cluster.findBroker({ nodeId });
    } catch (e) {
      throw Object.assign(new ChatMemError(`broker ${nodeId}: ${e.message}`, 'kafka', { cause: e }), { retriable: true });
    }
    const version = pickVersion(broker.versions, API_PRODUCE, PRODUCE_VERSIONS);
    if (version < 0) throw new ChatMemError(`broker ${nodeId} speaks no Produce version in ${PRODUCE_VERSIONS.join('..')}`, 'kafka');
    const byTopic = new Map();
    for (const b of list) {
      if (this.pid) {
        const seqId = `${b.topic}\0${b.partition}`;
        b.producer = { id: this.pid.id, epoch: this.pid.epoch, sequence: b.sequence ?? (b.sequence = this.sequences.get(seqId) ?? 0) };
        this.sequences.set(seqId, (b.sequence + b.messages.length) % 2147483648);
      }
      let t = byTopic.get(b.topic);
      if (t === undefined) byTopic.set(b.topic, (t = { topic: b.topic, partitions: [] }));
      t.partitions.push(b);
    }
    let results;
    try {
      results = await broker.connectionPool.send(
        produceRequest(version, { acks: this.acks, timeoutMs: this.timeoutMs, topics: [...byTopic.values()] }),
      );
    } catch (e) {
      if (e.name === 'KafkaJSConnectionClosedError') await broker.disconnect().catch(() => {});
      // A request that may or may not have been written: sent again with
      // the same sequences (idempotent), or as it is (not).
      throw Object.assign(new ChatMemError(`produce to broker ${nodeId}: ${e.message}`, 'kafka', { cause: e }), {
        retriable: e.retriable !== false,
      });
    }
    if (this.acks === 0) return;
    const failed = [];
    let first = null;
    for (const r of results) {
      if (r.errorCode === 0 || r.errorCode === ERR_DUPLICATE_SEQUENCE) continue;
      const b = list.find((x) => x.topic === r.topic && x.partition === r.partition);
      if (!b) continue;
      const e = kafkaCodeError(r.errorCode, `produce to ${r.topic}[${r.partition}]`);
      // Not written: retried (when retriable) with the same sequence, or
      // under a new producer id when the broker no longer knows this one.
      if (ERR_PRODUCER_STATE.has(r.errorCode) && this.pid) {
        this.pid = null; // a new one before the retry (send())
        e.retriable = true;
      }
      first ??= e;
      failed.push(b);
    }
    if (first) {
      if (!first.retriable) throw first;
      throw Object.assign(first, { failed });
    }
  }
}
