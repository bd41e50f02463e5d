// s3rver's object events, made to look like S3's and sent to an SQS queue.
//
// s3rver (3.7) emits 'event' with a notification-shaped { Records: [record] }
// after PUT, POST (form upload), PUT-copy, DELETE and CompleteMultipartUpload.
// Compared with what S3 sends, its records differ in:
//   - s3.object.key is the raw key; S3 URL-encodes it (space as '+'), as
//     Python's quote_plus(key, safe='/') does, so consumers unquote_plus it;
//   - s3.bucket.arn is 'arn:aws:s3: : :<bucket>' (S3: 'arn:aws:s3:::<bucket>');
//   - sequencer is Date.now() in hex: neither fixed-width nor increasing
//     within a millisecond;
//   - a copy has no eTag, a completed multipart upload is labelled
//     ObjectCreated:Post (S3: ObjectCreated:CompleteMultipartUpload), and a
//     multi-object delete (POST ?delete) emits nothing at all (S3: one
//     ObjectRemoved:Delete per key).
// patchEventSources fixes the last three at their controllers, s3Record the rest.
//
// Each record is sent as its own SQS message, body {"Records": [record]}, with
// the AWS SDK's SQS client (SendMessage, SigV4-signed: moto's server picks the
// service from the signature's credential scope) and its standard retry
// strategy, bounded by SEND_ATTEMPTS.
'use strict';

const objectController = require('s3rver/lib/controllers/object');
const S3Event = require('s3rver/lib/models/event');

// Attempts per message, the first included.  The SDK's standard strategy
// retries only what may pass later (throttling, 5xx, timeouts, refused or
// reset connections) with jittered exponential backoff from 100 ms; an
// answer such as "no such queue" is final at once.
const SEND_ATTEMPTS = 5;
// No answer within this long is a failed attempt (then retried), so one hung
// request cannot hold back every later event.
const REQUEST_TIMEOUT_MS = 10_000;
const SEQUENCER_WIDTH = 18; // as long as S3's, e.g. 0055AED6DCD90281E5

// What Python's urllib.parse.quote_plus(key, safe='/') makes of a key.
function encodeKey(key) {
  return key
    .split('/')
    .map((segment) =>
      encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`),
    )
    .join('/')
    .replace(/%20/g, '+');
}

// Microseconds since the epoch, strictly increasing within this process, so
// sequencers keep growing for later events, across restarts too.
let lastSequence = 0n;
function nextSequencer() {
  const now = BigInt(Date.now()) * 1000n;
  lastSequence = now > lastSequence ? now : lastSequence + 1n;
  return lastSequence.toString(16).toUpperCase().padStart(SEQUENCER_WIDTH, '0');
}

function s3Record(record, region) {
  const { bucket, object } = record.s3;
  return {
    ...record,
    eventVersion: '2.1',
    awsRegion: region,
    s3: {
      ...record.s3,
      configurationId: 'local-events',
      bucket: { ...bucket, arn: `arn:aws:s3:::${bucket.name}` },
      object: { ...object, key: encodeKey(object.key), sequencer: nextSequencer() },
    },
  };
}

// Run a controller with ctx.app.emit('event', …) held back, then emit each
// held event through `revise(event, ctx)`, which sees the finished response.
function reviseEvents(controllerName, revise) {
  const controller = objectController[controllerName];
  objectController[controllerName] = async function (ctx) {
    const app = ctx.app;
    const held = [];
    ctx.app = Object.create(app, {
      emit: { value: (name, ...args) => (name === 'event' ? held.push(args[0]) : app.emit(name, ...args)) },
    });
    try {
      await controller(ctx);
    } finally {
      ctx.app = app;
      for (const event of held) app.emit('event', revise(event, ctx));
    }
  };
}

function setFirstObject(event, fields) {
  Object.assign(event.Records[0].s3.object, fields);
  return event;
}

function patchEventSources() {
  reviseEvents('putObjectCopy', (event, ctx) => {
    const etag = ctx.body && ctx.body.CopyObjectResult && ctx.body.CopyObjectResult.ETag;
    return etag ? setFirstObject(event, { eTag: JSON.parse(etag) }) : event;
  });
  reviseEvents('completeMultipartUpload', (event) => {
    event.Records[0].eventName = 'ObjectCreated:CompleteMultipartUpload';
    return event;
  });
  // s3rver deletes each listed key through ctx.store.deleteObject: give this
  // request a store whose deleteObject also emits the event S3 would send.
  const deleteMultipleObjects = objectController.deleteMultipleObjects;
  objectController.deleteMultipleObjects = async function (ctx) {
    const store = ctx.store;
    const deleteObject = async (bucket, key) => {
      await store.deleteObject(bucket, key);
      const eventData = { bucket, eventType: 'Delete', S3Item: { key } };
      ctx.app.emit('event', new S3Event(eventData, { reqHeaders: ctx.headers, sourceIp: ctx.ip }));
    };
    ctx.store = Object.create(store, { deleteObject: { value: deleteObject } });
    try {
      await deleteMultipleObjects(ctx);
    } finally {
      ctx.store = store;
    }
  };
}

// SQS client settings for the queue at `queueUrl`: its origin is the endpoint
// (the local moto server).
function clientConfig(queueUrl, { region, accessKeyId, secretAccessKey }) {
  return {
    endpoint: new URL(queueUrl).origin,
    region,
    credentials: { accessKeyId, secretAccessKey },
    maxAttempts: SEND_ATTEMPTS,
    retryMode: 'standard',
    requestHandler: { requestTimeout: REQUEST_TIMEOUT_MS },
  };
}

// A lost event would leave an original without metadata and nobody the wiser:
// after the SDK's retries, say so loudly on stderr (the s3rver log).
async function sendOrLog(sendMessage, queueUrl, messageBody) {
  try {
    await sendMessage(messageBody);
  } catch (err) {
    const attempts = (err.$metadata && err.$metadata.attempts) || 1;
    const tries = `${attempts} attempt${attempts === 1 ? '' : 's'}`;
    console.error(`S3 EVENT LOST after ${tries} to ${queueUrl}: ${err.name}: ${err.message}\n${messageBody}`);
  }
}

// Send every record of `bucket` to `queueUrl`, one message per record.
function forwardObjectEvents(server, { bucket, queueUrl, region, accessKeyId, secretAccessKey }) {
  patchEventSources();
  // Loading the SDK takes about a quarter of a second: s3rver does not wait
  // for it, the first event does.  Resolving it now (no loading) still fails
  // at start when it is not installed.
  require.resolve('@aws-sdk/client-sqs');
  const config = clientConfig(queueUrl, { region, accessKeyId, secretAccessKey });
  let client = null;
  const sendMessage = (messageBody) => {
    const { SQSClient, SendMessageCommand } = require('@aws-sdk/client-sqs');
    client = client || new SQSClient(config);
    return client.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: messageBody }));
  };
  // One send at a time, in event order: the queue then holds every earlier
  // event once a later one is there (tests wait for a last, sentinel event).
  let sending = Promise.resolve();
  server.on('event', (event) => {
    for (const record of event.Records) {
      if (record.s3.bucket.name !== bucket) continue;
      const body = JSON.stringify({ Records: [s3Record(record, region)] });
      sending = sending.then(() => sendOrLog(sendMessage, queueUrl, body));
    }
  });
  console.log(`forwarding object events of bucket ${bucket} to ${queueUrl}`);
}

module.exports = { encodeKey, forwardObjectEvents, nextSequencer };
