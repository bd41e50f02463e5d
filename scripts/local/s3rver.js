#!/usr/bin/env node
// Starts s3rver for the local stack, with fixes that make it behave like S3:
//
// 1. s3rver writes the raw, decoded key into a website redirect's Location
//    header, so a key with a space or a non-ASCII letter becomes an invalid
//    header.  S3 percent-encodes it; so do we.
// 2. s3rver overwrites an object's files in place, so a GET racing a PUT of
//    the same key can read an empty or half-written object.  S3 PUTs are
//    atomic; here every file is written to a temporary name, then renamed,
//    the data file last, so a new key never shows without its metadata.
//    An overwrite can still pair the new metadata with the old data for a
//    moment (s3rver keeps them in separate files); variants are rewritten
//    with identical bytes and type, so that window is harmless here.
// 3. s3rver stores any form POST: no signature, expiry or policy checks.
//    post_policy.js makes S3's checks (uploads are only as safe as those).
// 4. s3rver encrypts ListObjectsV2 continuation tokens with DES.  OpenSSL 3
//    (Node 17+) has DES only in its legacy provider, so without
//    --openssl-legacy-provider every listing cut short by MaxKeys answers 500.
//    We refuse to start without it rather than serve a broken LIST.
// 4. s3rver half-decodes a copy's source key, so a '+' in it was not found;
//    and two deletes in one folder at once raced (a DeleteObjects answered 500).
// 5. With S3RVER_EVENTS_QUEUE_URL and S3RVER_EVENTS_BUCKET set, that bucket's
//    object events are sent to the queue in S3's notification format
//    (scripts/local/s3rver_events.js; AWS_REGION, AWS_ACCESS_KEY_ID and
//    AWS_SECRET_ACCESS_KEY sign the SendMessage requests).
//
// Usage: node --openssl-legacy-provider scripts/local/s3rver.js <directory> <address> <port>
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { Readable, Transform } = require('stream');
const { pipeline } = require('stream/promises');
const S3rver = require('s3rver');
const objectController = require('s3rver/lib/controllers/object');
const RoutingRule = require('s3rver/lib/models/routing-rule');
const S3Object = require('s3rver/lib/models/object');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const { enforcePostPolicy } = require('./post_policy');
const { forwardObjectEvents } = require('./s3rver_events');

const buildLocation = RoutingRule.prototype.getRedirectLocation;
RoutingRule.prototype.getRedirectLocation = function (key, defaults) {
  const location = buildLocation.call(this, key, defaults);
  // s3rver builds `${protocol}://${host}/${newKey}`; encode only newKey.
  const host = this.redirect.HostName || defaults.hostname;
  const pathStart = location.indexOf('://') + 3 + host.length + 1;
  const path = location.slice(pathStart).split('/').map(encodeURIComponent).join('/');
  return location.slice(0, pathStart) + path;
};

function temporaryPath(finalPath) {
  return `${finalPath}.${crypto.randomUUID()}.tmp`;
}

async function writeFileAtomically(finalPath, data) {
  const temporary = temporaryPath(finalPath);
  await fs.promises.writeFile(temporary, data);
  await fs.promises.rename(temporary, finalPath);
}

// Same files and contents as s3rver's own putMetadata, written atomically.
FilesystemStore.prototype.putMetadata = async function (bucket, key, metadata, md5) {
  const stored = {};
  for (const [name, value] of Object.entries(metadata)) {
    if (S3Object.ALLOWED_METADATA.includes(name) || name.startsWith('x-amz-meta-')) {
      stored[name] = value;
    }
  }
  if (md5) await writeFileAtomically(this.getResourcePath(bucket, key, 'object.md5'), md5);
  await writeFileAtomically(
    this.getResourcePath(bucket, key, 'metadata.json'),
    JSON.stringify(stored, null, 2),
  );
};

FilesystemStore.prototype.putObject = async function (object) {
  const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
  await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
  const temporary = temporaryPath(objectPath);
  const md5 = crypto.createHash('md5');
  let size = 0;
  const content = Buffer.isBuffer(object.content) ? Readable.from([object.content]) : object.content;
  const measure = new Transform({
    transform(chunk, encoding, callback) {
      md5.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  await pipeline(content, measure, fs.createWriteStream(temporary));
  const digest = md5.digest('hex');
  // Metadata first, object last: s3rver finds an object by its data file, so a
  // new key appears only once its Content-Type is there.  (Renaming the data
  // first let GETs racing the first PUT answer binary/octet-stream.)
  await this.putMetadata(object.bucket, object.key, object.metadata, digest);
  await fs.promises.rename(temporary, objectPath);
  return { size, md5: digest };
};

// s3rver's deleteObject removes emptied folders with readdir-then-rmdir, so two
// deletes in one folder at once (DeleteObjects runs its keys in parallel) raced
// and the request answered 500 (ENOENT).  rmdir alone refuses a folder that is
// not empty; a folder already gone is fine.
FilesystemStore.prototype.deleteObject = async function (bucket, key) {
  const ignoreMissing = (err) => {
    if (err.code !== 'ENOENT') throw err;
  };
  const files = ['object', 'object.md5', 'metadata.json'].map((type) => this.getResourcePath(bucket, key, type));
  await Promise.all(files.map((file) => fs.promises.unlink(file).catch(ignoreMissing)));
  const folders = key.split('/').slice(0, -1); // the last part is in the file names
  for (; folders.length; folders.pop()) {
    try {
      await fs.promises.rmdir(path.join(this.getBucketPath(bucket), ...folders));
    } catch (err) {
      if (err.code === 'ENOTEMPTY' || err.code === 'EEXIST') return;
      ignoreMissing(err);
    }
  }
};

// s3rver decodes x-amz-copy-source with decodeURI, which leaves %2B, %2F, %3F,
// %26 etc. encoded, so copying a key with a '+' answered NoSuchKey.  S3 decodes
// it fully: hand s3rver the fully decoded source in the one form decodeURI
// turns back into it exactly.
const putObjectCopy = objectController.putObjectCopy;
objectController.putObjectCopy = function (ctx) {
  ctx.headers['x-amz-copy-source'] = encodeURI(decodeURIComponent(ctx.headers['x-amz-copy-source']));
  return putObjectCopy(ctx);
};

try {
  crypto.createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
} catch (err) {
  console.error(`s3rver needs DES for truncated listings (${err.code}): run node --openssl-legacy-provider`);
  process.exit(2);
}

const [directory, address = '127.0.0.1', port = '4568'] = process.argv.slice(2);
if (!directory) {
  console.error('usage: node --openssl-legacy-provider scripts/local/s3rver.js <directory> [address] [port]');
  process.exit(2);
}

// s3rver's default key pair, the only one the local stack signs with.
const SECRETS = new Map([['S3RVER', 'S3RVER']]);
enforcePostPolicy((accessKeyId) => SECRETS.get(accessKeyId));

const server = new S3rver({ directory, address, port: Number(port), silent: true });
// Opt-in: the object events of one bucket (the originals) go to an SQS queue.
if (process.env.S3RVER_EVENTS_QUEUE_URL) {
  forwardObjectEvents(server, {
    bucket: process.env.S3RVER_EVENTS_BUCKET,
    queueUrl: process.env.S3RVER_EVENTS_QUEUE_URL,
    region: process.env.AWS_REGION || 'us-east-1',
    accessKeyId: process.env.AWS_ACCESS_KEY_ID,
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY,
  });
}
server.run().then(
  ({ address: host, port: bound }) => console.log(`s3rver listening on http://${host}:${bound}`),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close().finally(() => process.exit(0)));
}
