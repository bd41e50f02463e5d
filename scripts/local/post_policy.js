// S3's checks of a browser form upload (POST Object), which s3rver skips.
//
// s3rver stores whatever a form POST sends: no signature, no expiry, no
// policy conditions, no content-length-range.  The upload endpoint's whole
// safety rests on those checks, so the local stack makes them the way S3
// documents them (AmazonS3/latest/API/sigv4-HTTPPOSTConstructPolicy.html):
//
// * the policy is signed with SigV4 (AWS4-HMAC-SHA256) by a known key;
// * it has not expired;
// * every condition holds: exact matches, ["eq", ...], ["starts-with", ...],
//   ["content-length-range", min, max] on the file's size;
// * every form field except x-amz-signature, file, policy and x-ignore-* is
//   named by a condition ("Extra input fields" otherwise).
//
// The form is buffered (uploads are bounded), checked, then handed to
// s3rver's own POST handler unchanged.  Answers: 403 AccessDenied for a bad
// signature, an expired or unmet policy; 400 EntityTooLarge/EntityTooSmall;
// 400 InvalidArgument for a field sent twice.
//
// A field sent twice (before the file) is refused before s3rver sees the form.
// The checks read one value per field, s3rver stores the last copy of `key`,
// Content-Type and x-amz-meta-*: a hostile second copy would pass unchecked.
// Confirmed: nothing in S3's documentation says what S3 answers; the one public
// account found, a review in scality/cloudserver PR #5601 (2024), says S3,
// tried by hand, does not accept the same form field twice, without the error.
// Chosen: 400 InvalidArgument naming the field.  Names compare as the checks
// compare them, lower-cased ('Key' and 'key' are one field); what follows the
// file is read by neither S3 nor s3rver, so is not counted.
'use strict';

const crypto = require('crypto');
const { Readable } = require('stream');
// The very busboy s3rver parses forms with (package.json pins s3rver's 0.3.1,
// deduplicated): the checks must read the form exactly as s3rver then stores it.
const Busboy = require('busboy');
const S3Error = require('s3rver/lib/models/error');
const objectController = require('s3rver/lib/controllers/object');

// Well above any MAX_SOURCE_BYTES worth testing locally; the policy sets the real cap.
const MAX_FORM_BYTES = 256 * 1024 * 1024;
const UNCONDITIONED = new Set(['x-amz-signature', 'file', 'policy']);

function denied(message) {
  return new S3Error('AccessDenied', message);
}

async function readBody(request) {
  const chunks = [];
  let size = 0;
  for await (const chunk of request) {
    size += chunk.length;
    if (size > MAX_FORM_BYTES) throw new S3Error('MaxPostPreDataLengthExceededError', 'Your POST request fields preceding the upload file were too large.');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

// The fields before the file (S3 ignores what follows it), the names among
// them that came more than once, and the file's size.
function parseForm(headers, body) {
  return new Promise((resolve, reject) => {
    const fields = new Map();
    const repeated = new Set();
    let fileSize = null;
    const busboy = new Busboy({ headers, limits: { fileSize: MAX_FORM_BYTES } });
    busboy.on('field', (name, value) => {
      if (fileSize !== null) return;
      // busboy gives a part without a filename (and not typed
      // application/octet-stream) as a field; s3rver stores one named 'file'
      // as the file, so the checks must take it for the file too.
      if (name === 'file') {
        fileSize = Buffer.byteLength(value);
        return;
      }
      const lower = name.toLowerCase();
      if (fields.has(lower)) repeated.add(lower);
      else fields.set(lower, value);
    });
    busboy.on('file', (name, stream) => {
      if (name !== 'file' || fileSize !== null) return stream.resume();
      fileSize = 0;
      stream.on('data', (chunk) => {
        fileSize += chunk.length;
      });
      return undefined;
    });
    busboy.once('error', reject);
    busboy.once('finish', () => resolve({ fields, repeated, fileSize }));
    Readable.from([body]).pipe(busboy);
  });
}

function refuseRepeated(repeated) {
  if (!repeated.size) return;
  const names = [...repeated];
  const quoted = names.map((name) => `'${name}'`).join(', ');
  throw new S3Error('InvalidArgument', `POST form field ${quoted} appears more than once; send each field once.`, {
    ArgumentName: names[0],
  });
}

function hmac(key, text) {
  return crypto.createHmac('sha256', key).update(text).digest();
}

// SigV4 for POST: the signature is over the base64 policy itself.
function expectedSignature(secret, credential, policy) {
  const [, date, region, service, terminator] = credential.split('/');
  if (!date || !region || !service || terminator !== 'aws4_request') {
    throw denied('Invalid x-amz-credential');
  }
  let key = hmac(`AWS4${secret}`, date);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  return hmac(key, policy).toString('hex');
}

function checkSignature(fields, secretFor) {
  const policy = fields.get('policy');
  const credential = fields.get('x-amz-credential') || '';
  const signature = fields.get('x-amz-signature') || '';
  if (!policy) throw denied('Bucket POST must contain a policy');
  if (fields.get('x-amz-algorithm') !== 'AWS4-HMAC-SHA256') {
    throw denied('Only AWS4-HMAC-SHA256 signed forms are accepted here');
  }
  const secret = secretFor(credential.split('/')[0]);
  if (!secret) throw new S3Error('InvalidAccessKeyId', 'The AWS access key Id you provided does not exist in our records.');
  const expected = Buffer.from(expectedSignature(secret, credential, policy));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !crypto.timingSafeEqual(expected, given)) {
    throw new S3Error(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided.',
    );
  }
  return JSON.parse(Buffer.from(policy, 'base64').toString('utf8'));
}

function fieldValue(fields, name, bucket) {
  const lower = name.replace(/^\$/, '').toLowerCase();
  return lower === 'bucket' ? bucket : fields.get(lower);
}

// Every condition holds; returns the field names the conditions cover.
function checkConditions(document, fields, fileSize, bucket) {
  if (!document.expiration || !(Date.parse(document.expiration) > Date.now())) {
    throw denied('Invalid according to Policy: Policy expired.');
  }
  const covered = new Set();
  for (const condition of document.conditions || []) {
    if (Array.isArray(condition) && condition[0] === 'content-length-range') {
      const [, min, max] = condition;
      if (fileSize < Number(min)) throw new S3Error('EntityTooSmall', 'Your proposed upload is smaller than the minimum allowed size');
      if (fileSize > Number(max)) throw new S3Error('EntityTooLarge', 'Your proposed upload exceeds the maximum allowed size');
      continue;
    }
    const [operator, name, expected] = Array.isArray(condition)
      ? condition
      : ['eq', ...Object.entries(condition)[0]];
    const actual = fieldValue(fields, name, bucket);
    covered.add(name.replace(/^\$/, '').toLowerCase());
    const holds =
      operator === 'eq' ? actual === expected
        : operator === 'starts-with' ? typeof actual === 'string' && actual.startsWith(expected)
          : false;
    if (!holds) {
      throw denied(`Invalid according to Policy: Policy Condition failed: ${JSON.stringify(condition)}`);
    }
  }
  const extra = [...fields.keys()].filter(
    (name) => !UNCONDITIONED.has(name) && !name.startsWith('x-ignore-') && !covered.has(name),
  );
  if (extra.length) throw denied(`Invalid according to Policy: Extra input fields: ${extra.join(', ')}`);
}

// Wraps s3rver's POST Object handler; `secretFor(accessKeyId)` gives the signing secret.
function enforcePostPolicy(secretFor) {
  const postObject = objectController.postObject;
  objectController.postObject = async function checkedPostObject(ctx) {
    if (!ctx.is('multipart/form-data')) return postObject(ctx);
    const body = await readBody(ctx.req);
    const { fields, repeated, fileSize } = await parseForm(ctx.headers, body);
    refuseRepeated(repeated);
    if (fileSize === null) return postObject(Object.assign(ctx, { req: Readable.from([body]) }));
    const document = checkSignature(fields, secretFor);
    checkConditions(document, fields, fileSize, ctx.params.bucket);
    ctx.req = Readable.from([body]);
    return postObject(ctx);
  };
}

module.exports = { enforcePostPolicy };
