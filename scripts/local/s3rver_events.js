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
// SendMessage in SQS's query protocol, SigV4-signed: moto's server picks the
// service from the signature's credential scope (an unsigned request is taken
// for S3 and answered 500).
'use strict';

const crypto = require('crypto');
const objectController = require('s3rver/lib/controllers/object');
const S3Event = require('s3rver/lib/models/event');

const SEND_ATTEMPTS = 5;
const FIRST_RETRY_DELAY_MS = 100;
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

function hmac(key, data) {
  return crypto.createHmac('sha256', key).update(data, 'utf8').digest();
}

function sha256Hex(data) {
  return crypto.createHash('sha256').update(data, 'utf8').digest('hex');
}

// A SigV4-signed POST of a query-protocol form to `url` (moto does not check
// the signature, SQS would).
function signedFormRequest(url, form, { region, accessKeyId, secretAccessKey }, now = new Date()) {
  const { host, pathname } = new URL(url);
  const body = new URLSearchParams(form).toString();
  const amzDate = now.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/sqs/aws4_request`;
  const signedHeaders = 'host;x-amz-date';
  const canonicalHeaders = `host:${host}\nx-amz-date:${amzDate}\n`;
  const canonicalRequest = ['POST', pathname, '', canonicalHeaders, signedHeaders, sha256Hex(body)].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = [day, region, 'sqs', 'aws4_request'].reduce(hmac, `AWS4${secretAccessKey}`);
  const signature = hmac(signingKey, stringToSign).toString('hex');
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded; charset=utf-8',
      'x-amz-date': amzDate,
      authorization: `AWS4-HMAC-SHA256 Credential=${accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`,
    },
    body,
  };
}

function delay(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function sendMessage(queueUrl, messageBody, signing) {
  const form = { Action: 'SendMessage', Version: '2012-11-05', QueueUrl: queueUrl, MessageBody: messageBody };
  const response = await fetch(queueUrl, signedFormRequest(queueUrl, form, signing));
  const text = await response.text();
  if (!response.ok || !text.includes('<MessageId>')) {
    throw new Error(`SendMessage answered ${response.status}: ${text.slice(0, 300)}`);
  }
}

// A lost event would leave an original without metadata and nobody the wiser:
// retry with backoff, then say so loudly on stderr (the s3rver log).
async function sendWithRetries(queueUrl, messageBody, signing) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await sendMessage(queueUrl, messageBody, signing);
    } catch (err) {
      if (attempt === SEND_ATTEMPTS) {
        console.error(`S3 EVENT LOST after ${attempt} attempts to ${queueUrl}: ${err.message}\n${messageBody}`);
        return undefined;
      }
      await delay(FIRST_RETRY_DELAY_MS * 2 ** (attempt - 1));
    }
  }
}

// Send every record of `bucket` to `queueUrl`, one message per record.
function forwardObjectEvents(server, { bucket, queueUrl, region, accessKeyId, secretAccessKey }) {
  patchEventSources();
  const signing = { region, accessKeyId, secretAccessKey };
  // One send at a time, in event order: the queue then holds every earlier
  // event once a later one is there (tests wait for a last, sentinel event).
  let sending = Promise.resolve();
  server.on('event', (event) => {
    for (const record of event.Records) {
      if (record.s3.bucket.name !== bucket) continue;
      const body = JSON.stringify({ Records: [s3Record(record, region)] });
      sending = sending.then(() => sendWithRetries(queueUrl, body, signing));
    }
  });
  console.log(`forwarding object events of bucket ${bucket} to ${queueUrl}`);
}

module.exports = { encodeKey, forwardObjectEvents, nextSequencer, signedFormRequest };
