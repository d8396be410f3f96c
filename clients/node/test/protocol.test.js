// The client's Kafka encoding (src/protocol.js) against kafkajs's own
// encoder and decoder of record batches (the pinned kafkajs, as an
// independent implementation of the format), and the producer's retries
// and sequences against a scripted broker. Broker-less; the e2e tests
// run the same code against Apache Kafka and the devbroker.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import test from 'node:test';
import { Reader, Writer, crc32c, decodeRecordSet, fetchRequest, produceRequest, writeRecordBatch } from '../src/protocol.js';
import { Producer } from '../src/producer.js';
import { fixedRequestQueue } from '../src/requestqueue.js';
import { partitionFor } from '../src/wire.js';

const require = createRequire(import.meta.url);
const { RecordBatch: KRecordBatch } = require('kafkajs/src/protocol/recordBatch/v0');
const KRecord = require('kafkajs/src/protocol/recordBatch/record/v0');
const kDecodeBatch = require('kafkajs/src/protocol/recordBatch/v0/decoder');
const KDecoder = require('kafkajs/src/protocol/decoder');
const kCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C');
const { Types: Compression } = require('kafkajs/src/protocol/message/compression');
const Long = require('kafkajs/src/utils/long');

// A record batch made by kafkajs, framed as in a fetch response.
async function kafkajsBatch({ firstOffset, records, compression = Compression.None, transactional = false, producerId = -1, ts = 1700000000000 }) {
  const encoded = records.map((r, i) =>
    KRecord({ offsetDelta: i, timestampDelta: r.tsDelta ?? 0, key: r.key, value: r.value, headers: r.headers ?? {} }),
  );
  const batch = await KRecordBatch({
    compression,
    firstOffset: Long.fromValue(firstOffset),
    firstTimestamp: ts,
    maxTimestamp: ts,
    lastOffsetDelta: records.length - 1,
    transactional,
    producerId: Long.fromValue(producerId),
    records: encoded,
  });
  return batch.buffer;
}

test('crc32c: the check value, and kafkajs agrees on a batch', () => {
  assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
  const b = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 31) & 0xff));
  assert.equal(crc32c(b), kCrc32c(b));
  assert.equal(crc32c(b, 10, 500), kCrc32c(b.subarray(10, 500)));
});

test('varints, varlongs and int64 round-trip at their edges', () => {
  const ints = [0, 1, -1, 63, 64, -64, -65, 8191, 8192, 2 ** 31 - 1, -(2 ** 31)];
  const w = new Writer(4);
  for (const v of ints) w.varint(v);
  const longs = [0, -1, 2 ** 40 + 5, -(2 ** 40) - 7, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER];
  for (const v of longs) w.int64(v);
  const r = new Reader(w.bytes());
  for (const v of ints) assert.equal(r.varint(), v);
  for (const v of longs) assert.equal(r.int64(), v);
  assert.equal(r.pos, w.pos);
  assert.throws(() => r.int8(), RangeError);
  // Varlongs as kafkajs writes them (timestamp deltas)
  const k = new (require('kafkajs/src/protocol/encoder'))();
  const vl = [0, -1, 1, 2 ** 35, -(2 ** 35) - 1, 2 ** 52];
  for (const v of vl) k.writeVarLong(v);
  const kr = new Reader(k.buffer);
  for (const v of vl) assert.equal(kr.varlong(), v);
});

test('record batch: ours decodes in kafkajs as written, CRC and all', async () => {
  const messages = [
    { key: 'u1:default', value: '{"a":1}' },
    { key: Buffer.from('k2'), value: Buffer.from('é'.repeat(200)) },
    { key: null, value: 'x'.repeat(70000) },
    { key: 'k4', value: null },
    // past 63 records the offset delta's varint takes two bytes
    ...Array.from({ length: 70 }, (_, i) => ({ key: `k${i + 5}`, value: `v${i + 5}` })),
  ];
  const w = new Writer(16);
  const n = writeRecordBatch(w, messages, 1700000000123, { id: 4242, epoch: 3, sequence: 17 });
  assert.equal(n, w.pos);
  const buf = Buffer.from(w.bytes());
  // the CRC covers attributes to the end
  assert.equal(buf.readUInt32BE(17), crc32c(buf, 21));
  const d = await kDecodeBatch(new KDecoder(buf));
  assert.equal(d.producerId, '4242');
  assert.equal(d.producerEpoch, 3);
  assert.equal(d.firstSequence, 17);
  assert.equal(d.records.length, messages.length);
  // and ours reads it back, by each record's length prefix
  const back = decodeRecordSet(buf, 0).records;
  assert.deepEqual(back.map((m) => m.offset), messages.map((_, i) => i));
  assert.equal(back[73].value.toString(), messages[73].value);
  d.records.forEach((rec, i) => {
    const { key, value } = messages[i];
    assert.equal(rec.offset, String(i));
    assert.equal(rec.timestamp, '1700000000123');
    assert.deepEqual(rec.key, key === null ? null : Buffer.from(key));
    assert.deepEqual(rec.value, value === null ? null : Buffer.from(value));
  });
});

test('record sets: kafkajs batches decode to the same records, from the position on', async () => {
  const a = await kafkajsBatch({
    firstOffset: 100,
    records: [
      { key: 'a', value: 'v100' },
      { key: null, value: 'v101', tsDelta: 5, headers: { h: 'x' } },
      { key: 'c', value: 'v102' },
    ],
  });
  const b = await kafkajsBatch({ firstOffset: 103, records: [{ key: 'd', value: 'v103' }], compression: Compression.GZIP });
  const set = Buffer.concat([a, b]);
  const { records, next } = decodeRecordSet(set, 101);
  assert.equal(next, 104);
  assert.deepEqual(
    records.map((r) => [r.offset, r.key && r.key.toString(), r.value.toString()]),
    [
      [101, null, 'v101'],
      [102, 'c', 'v102'],
      [103, 'd', 'v103'],
    ],
  );
  assert.equal(records[0].timestamp, 1700000000005);
  assert.deepEqual(records[0].headers, { h: Buffer.from('x') });
  // A last batch cut off by the fetch size is left for the next fetch.
  const cut = decodeRecordSet(set.subarray(0, set.length - 3), 100);
  assert.equal(cut.next, 103);
  assert.deepEqual(cut.records.map((r) => r.offset), [100, 101, 102]);
  assert.deepEqual(decodeRecordSet(set.subarray(0, 10), 0), { records: [], next: -1 });
  // All before the position: nothing, but the position moves past it.
  assert.deepEqual(decodeRecordSet(a, 200), { records: [], next: 103 });
});

test('record sets: aborted transactions and their markers are left out', async () => {
  const aborted = await kafkajsBatch({ firstOffset: 10, records: [{ key: 'x', value: 'aborted' }], transactional: true, producerId: 7 });
  const committed = await kafkajsBatch({ firstOffset: 11, records: [{ key: 'y', value: 'committed' }], transactional: true, producerId: 8 });
  // A control batch (the abort marker of producer 7): attributes 0x30.
  const marker = Buffer.from(await kafkajsBatch({ firstOffset: 12, records: [{ key: 'm', value: 'm' }], transactional: true, producerId: 7 }));
  marker.writeInt16BE(0x30, 21);
  const plain = await kafkajsBatch({ firstOffset: 13, records: [{ key: 'z', value: 'plain' }] });
  const set = Buffer.concat([aborted, committed, marker, plain]);
  const { records, next } = decodeRecordSet(set, 0, [{ producerId: 7, firstOffset: 10 }]);
  assert.deepEqual(records.map((r) => r.value.toString()), ['committed', 'plain']);
  assert.equal(next, 14);
});

test('record sets: an unknown codec or an old message format is an error, not silence', async () => {
  const b = Buffer.from(await kafkajsBatch({ firstOffset: 0, records: [{ key: 'a', value: 'b' }] }));
  b.writeInt16BE(4, 21); // zstd
  assert.throws(() => decodeRecordSet(b, 0), /zstd compression is not supported/);
  const old = Buffer.from(await kafkajsBatch({ firstOffset: 0, records: [{ key: 'a', value: 'b' }] }));
  old.writeInt8(1, 16);
  assert.throws(() => decodeRecordSet(old, 0), /message format v1/);
});

// A Fetch response body as a broker writes it, for version v.
function fetchResponse(v, topic, partitions) {
  const w = new Writer(64);
  w.int32(0); // throttle
  if (v >= 7) w.int16(0).int32(0);
  w.int32(1).string(topic).int32(partitions.length);
  for (const p of partitions) {
    w.int32(p.partition).int16(p.errorCode ?? 0).int64(p.hw ?? 0).int64(p.hw ?? 0);
    if (v >= 5) w.int64(0);
    w.int32(p.aborted ? p.aborted.length : -1);
    for (const a of p.aborted ?? []) w.int64(a.producerId).int64(a.firstOffset);
    if (v >= 11) w.int32(-1);
    if (p.records) w.int32(p.records.length).raw(p.records);
    else w.int32(-1);
  }
  return Buffer.from(w.bytes());
}

test('fetch: request fields per version, and the response parsed per version', async () => {
  const set = await kafkajsBatch({ firstOffset: 5, records: [{ key: 'r1', value: 'reply' }] });
  for (const v of [4, 5, 7, 9, 11]) {
    const req = fetchRequest(v, {
      topic: 't',
      partitions: [
        { partition: 0, offset: 5 },
        { partition: 1, offset: 2 ** 40 },
      ],
      maxWaitMs: 100,
      minBytes: 1,
      maxBytes: 1 << 20,
      partitionMaxBytes: 1 << 20,
      isolationLevel: 1,
    });
    const r = new Reader((await req.request.encode()).buffer);
    assert.deepEqual([r.int32(), r.int32(), r.int32(), r.int32(), r.int8()], [-1, 100, 1, 1 << 20, 1]);
    if (v >= 7) assert.deepEqual([r.int32(), r.int32()], [0, -1]);
    assert.deepEqual([r.int32(), r.string(), r.int32()], [1, 't', 2]);
    for (const off of [5, 2 ** 40]) {
      r.int32();
      if (v >= 9) assert.equal(r.int32(), -1);
      assert.equal(r.int64(), off);
      if (v >= 5) assert.equal(r.int64(), -1);
      assert.equal(r.int32(), 1 << 20);
    }
    if (v >= 7) assert.equal(r.int32(), 0);
    if (v >= 11) assert.equal(r.string(), '');
    assert.equal(r.pos, r.end, `v${v}: nothing left over`);
    const body = fetchResponse(v, 't', [
      { partition: 0, hw: 6, records: set },
      { partition: 1, errorCode: 6 },
      { partition: 9, records: set }, // not asked for: ignored
    ]);
    const res = await req.response.parse(await req.response.decode(body));
    assert.equal(res.errorCode, 0);
    assert.equal(res.partitions.length, 2);
    assert.deepEqual(res.partitions[0].records.map((m) => m.value.toString()), ['reply']);
    assert.equal(res.partitions[0].next, 6);
    assert.equal(res.partitions[0].highWatermark, 6);
    assert.deepEqual([res.partitions[1].errorCode, res.partitions[1].records.length], [6, 0]);
  }
});

test('produce: the request carries a batch kafkajs reads; the response parsed per version', async () => {
  for (const v of [3, 5, 7]) {
    const req = produceRequest(v, {
      acks: -1,
      timeoutMs: 30000,
      timestamp: 1700000000000,
      topics: [{ topic: 'context.requests', partitions: [{ partition: 3, messages: [{ key: 'u:c', value: '{}' }] }] }],
    });
    const r = new Reader((await req.request.encode()).buffer);
    assert.deepEqual([r.string(), r.int16(), r.int32(), r.int32(), r.string(), r.int32(), r.int32()], [null, -1, 30000, 1, 'context.requests', 1, 3]);
    const n = r.int32();
    const batch = await kDecodeBatch(new KDecoder(r.view(n)));
    assert.deepEqual(batch.records.map((x) => [x.key.toString(), x.value.toString()]), [['u:c', '{}']]);
    assert.equal(r.pos, r.end);
    const w = new Writer(64).int32(1).string('context.requests').int32(2);
    for (const [partition, errorCode, offset] of [
      [3, 0, 77],
      [4, 6, -1],
    ]) {
      w.int32(partition).int16(errorCode).int64(offset).int64(-1);
      if (v >= 5) w.int64(0);
    }
    w.int32(0);
    assert.deepEqual(await req.response.parse(Buffer.from(w.bytes())), [
      { topic: 'context.requests', partition: 3, errorCode: 0, baseOffset: 77 },
      { topic: 'context.requests', partition: 4, errorCode: 6, baseOffset: -1 },
    ]);
  }
});

// A producer over a scripted cluster of one broker (node 1) holding the
// topic 't' with 4 partitions: each Produce request gets the next of
// `answers` (an error code for every partition, or a thrown error).
function scriptedProducer(answers, { idempotent = true, pidAnswers = [] } = {}) {
  const sent = [];
  let pids = 0;
  const broker = {
    versions: { 0: { minVersion: 0, maxVersion: 9 }, 22: { minVersion: 0, maxVersion: 4 } },
    disconnect: async () => {},
    connectionPool: {
      send: async ({ request, response }) => {
        if (request.apiKey === 22) {
          const code = pidAnswers.shift() ?? 0;
          return code ? { errorCode: code, id: -1, epoch: -1 } : { errorCode: 0, id: 1000 + pids++, epoch: 0 };
        }
        const r = new Reader((await request.encode()).buffer);
        r.string();
        r.int16();
        r.int32();
        const batches = [];
        for (let nt = r.int32(); nt > 0; nt--) {
          const topic = r.string();
          for (let np = r.int32(); np > 0; np--) {
            const partition = r.int32();
            const b = new Reader(r.view(r.int32()));
            b.pos = 43; // producer id at 43, epoch, base sequence at 53, count at 57
            const pid = b.int64();
            b.int16();
            const sequence = b.int32();
            const count = b.int32();
            batches.push({ topic, partition, pid, sequence, count });
          }
        }
        sent.push(batches);
        const a = answers.shift() ?? 0;
        if (a instanceof Error) throw a;
        return batches.map((b) => ({ topic: b.topic, partition: b.partition, errorCode: a, baseOffset: 0 }));
      },
    },
  };
  const p = new Producer({ kafka: null, idempotent, timeoutMs: 5000 });
  p.cluster = {
    brokerPool: { seedBroker: broker },
    addTargetTopic: async () => {},
    findTopicPartitionMetadata: () => [0, 1, 2, 3].map((partitionId) => ({ partitionId, leader: 1 })),
    findLeaderForPartitions: (_t, parts) => ({ 1: parts }),
    findBroker: async () => broker,
    refreshMetadata: async () => {},
    disconnect: async () => {},
  };
  return { p, sent };
}

test('producer: retriable errors are retried with the same sequences; the next batch follows on', async () => {
  const { p, sent } = scriptedProducer([6 /* NOT_LEADER_OR_FOLLOWER */, 0, 0]);
  await p.initProducerId();
  const key = 'u1:default';
  const part = partitionFor(key, 4);
  await p.send([{ topic: 't', messages: [{ key, value: 'a' }, { key, value: 'b' }] }]);
  await p.send([{ topic: 't', messages: [{ key, value: 'c' }] }]);
  assert.deepEqual(
    sent.map((req) => req.map((b) => [b.partition, b.pid, b.sequence, b.count])),
    [[[part, 1000, 0, 2]], [[part, 1000, 0, 2]], [[part, 1000, 2, 1]]],
  );
});

test('producer: an unknown producer id gets a new one, sequences from 0; a fatal error rejects', async () => {
  const { p, sent } = scriptedProducer([0, 59 /* UNKNOWN_PRODUCER_ID */, 0, 10 /* MESSAGE_TOO_LARGE */]);
  await p.initProducerId();
  const m = [{ key: 'k', value: 'v' }];
  await p.send([{ topic: 't', messages: m }]);
  await p.send([{ topic: 't', messages: m }]);
  assert.deepEqual(
    sent.map((req) => [req[0].pid, req[0].sequence]),
    [
      [1000, 0],
      [1000, 1],
      [1001, 0],
    ],
  );
  await assert.rejects(p.send([{ topic: 't', messages: m }]), /MESSAGE_TOO_LARGE/);
});

test('producer: a lost connection is retried; without a producer id the batch carries none', async () => {
  const lost = Object.assign(new Error('Connection closed'), { name: 'KafkaJSConnectionClosedError' });
  const { p, sent } = scriptedProducer([lost, 0], { idempotent: false });
  await p.send([{ topic: 't', messages: [{ key: 'k', value: 'v' }] }]);
  assert.equal(sent.length, 2);
  assert.deepEqual([sent[1][0].pid, sent[1][0].sequence], [-1, -1]);
});

test('producer: a producer id is asked again while the broker is loading; refused, the producer is not idempotent', async () => {
  const loading = scriptedProducer([0], { pidAnswers: [14 /* COORDINATOR_LOAD_IN_PROGRESS */, 14] });
  await loading.p.initProducerId();
  await loading.p.send([{ topic: 't', messages: [{ key: 'k', value: 'v' }] }]);
  assert.deepEqual([loading.sent[0][0].pid, loading.sent[0][0].sequence], [1000, 0]);
  const warnings = [];
  const refused = scriptedProducer([0], { pidAnswers: [31 /* CLUSTER_AUTHORIZATION_FAILED */] });
  refused.p.logger = { warn: (m) => warnings.push(m) };
  await refused.p.initProducerId();
  await refused.p.send([{ topic: 't', messages: [{ key: 'k', value: 'v' }] }]);
  assert.deepEqual([refused.sent[0][0].pid, refused.sent[0][0].sequence], [-1, -1]);
  assert.match(warnings[0], /CLUSTER_AUTHORIZATION_FAILED.*not idempotent/);
});

// --- kafkajs's request queue (requestqueue.js) -----------------------------

const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };
const newQueue = (RequestQueue, maxInFlightRequests = null) =>
  new RequestQueue({ maxInFlightRequests, requestTimeout: 1000, enforceRequestTimeout: false, clientId: 't', broker: 'b:1', logger: quietLogger });

test('request queue: nothing waiting arms no timer (kafkajs 2.2.4 looped every 1 ms)', (t) => {
  const RequestQueue = fixedRequestQueue();
  const q = newQueue(RequestQueue);
  t.after(() => q.destroy());
  q.checkPendingRequests(); // what every response does
  assert.equal(q.throttleCheckTimeoutId, null);
});

test('request queue: a request held by throttling is sent when the throttling ends', async (t) => {
  const RequestQueue = fixedRequestQueue();
  const q = newQueue(RequestQueue);
  t.after(() => q.destroy());
  q.maybeThrottle(40);
  let sentAt = 0;
  const t0 = Date.now();
  q.push({ entry: { correlationId: 1 }, expectResponse: true, requestTimeout: 1000, sendRequest: () => (sentAt = Date.now()) });
  assert.equal(sentAt, 0, 'sent while throttled');
  assert.notEqual(q.throttleCheckTimeoutId, null);
  await new Promise((r) => setTimeout(r, 120));
  assert.ok(sentAt - t0 >= 35, `sent after ${sentAt - t0} ms`);
  assert.equal(q.pending.length, 0);
  assert.equal(q.throttleCheckTimeoutId, null, 'no timer once nothing waits');
});

test('request queue: a request over the in-flight limit goes when a response frees a slot', async (t) => {
  const RequestQueue = fixedRequestQueue();
  const q = newQueue(RequestQueue, 1);
  t.after(() => q.destroy());
  const sent = [];
  const push = (id) =>
    q.push({ entry: { correlationId: id, resolve() {}, reject() {} }, expectResponse: true, requestTimeout: 1000, sendRequest: () => sent.push(id) });
  push(1);
  push(2);
  assert.deepEqual(sent, [1]);
  q.fulfillRequest({ correlationId: 1, payload: Buffer.alloc(0), size: 0 });
  assert.deepEqual(sent, [1, 2]);
  q.fulfillRequest({ correlationId: 2, payload: Buffer.alloc(0), size: 0 });
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(q.throttleCheckTimeoutId, null);
});
