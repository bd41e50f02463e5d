// The CloudFront Function (infra/cdn/viewer_request.js) in Node, with the event shape AWS
// documents for viewer-request functions; run by tests/test_negotiate.py (`node --test tests/cdn`).
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { loadHandler } = require('../../scripts/local/cdn.js');

const ROOT = path.resolve(__dirname, '..', '..');
const SOURCE = fs.readFileSync(path.join(ROOT, 'infra', 'cdn', 'viewer_request.js'), 'utf8');
const CASES = JSON.parse(
  fs.readFileSync(path.join(ROOT, 'tests', 'support', 'accept_cases.json'), 'utf8'),
).cases;

// CloudFront runs the file as it stands: no require, no exports, a global `handler`;
// the local CDN loads it the same way.
const handler = loadHandler(path.join(ROOT, 'infra', 'cdn', 'viewer_request.js'));

function viewerRequest(uri, accept, querystring) {
  const headers = { host: { value: 'd111111abcdef8.cloudfront.net' } };
  if (accept !== null) {
    headers.accept = { value: accept };
  }
  return {
    version: '1.0',
    context: {
      distributionDomainName: 'd111111abcdef8.cloudfront.net',
      distributionId: 'EDFDVBD6EXAMPLE',
      eventType: 'viewer-request',
      requestId: '4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==',
    },
    viewer: { ip: '198.51.100.11' },
    request: {
      method: 'GET',
      uri,
      querystring: querystring || {},
      headers,
      cookies: {},
    },
  };
}

const CHROMIUM = CASES[0].accept;

test('the file fits CloudFront: under 10 KB, no modules', () => {
  assert.ok(Buffer.byteLength(SOURCE) < 10240);
  assert.doesNotMatch(SOURCE, /\brequire\s*\(|\bimport\s|module\.exports/);
});

for (const c of CASES) {
  test(`Accept table: ${c.name}`, () => {
    const out = handler(viewerRequest('/640x.auto/photos/cat.jpg', c.accept));
    const expected = c.cdn === null ? '/640x.auto/photos/cat.jpg' : `/640x.${c.cdn}/photos/cat.jpg`;
    assert.strictEqual(out.uri, expected);
  });
}

const REWRITES = [
  ['/640x.auto/photos/cat.jpg', '/640x.avif/photos/cat.jpg'],
  ['/300x300-cover.auto/a/b/c/d.png', '/300x300-cover.avif/a/b/c/d.png'],
  ['/200x@2x.auto/cat.jpg', '/200x@2x.avif/cat.jpg'],
  ['/x200-pad@3x.auto/caf%C3%A9%20au%20lait.jpg', '/x200-pad@3x.avif/caf%C3%A9%20au%20lait.jpg'],
  ['/640x.auto/photos/640x.auto/x.jpg', '/640x.avif/photos/640x.auto/x.jpg'],
];
for (const [uri, expected] of REWRITES) {
  test(`rewrites ${uri}`, () => {
    assert.strictEqual(handler(viewerRequest(uri, CHROMIUM)).uri, expected);
  });
}

const UNTOUCHED = [
  '/640x/photos/cat.jpg',
  '/640x.avif/photos/cat.jpg',
  '/640x.webp/photos/cat.jpg',
  '/photos/640x.auto/cat.jpg',
  '/640x.auto',
  '/640x.auto/',
  '/auto/cat.jpg',
  '/640x.AUTO/cat.jpg',
  '/.auto/cat.jpg',
  '/',
  '/index.html',
  '/app.js',
  '/style.css',
  '/config.json',
  '/favicon.ico',
];
for (const uri of UNTOUCHED) {
  test(`leaves ${uri} alone`, () => {
    const event = viewerRequest(uri, CHROMIUM);
    const out = handler(event);
    assert.strictEqual(out.uri, uri);
  });
}

test('query strings, headers and method pass through', () => {
  const query = { v: { value: '2' }, w: { value: 'a b', multiValue: [{ value: 'a b' }] } };
  const out = handler(viewerRequest('/640x.auto/cat.jpg', CHROMIUM, query));
  assert.strictEqual(out.uri, '/640x.avif/cat.jpg');
  assert.deepStrictEqual(out.querystring, query);
  assert.strictEqual(out.method, 'GET');
  assert.strictEqual(out.headers.accept.value, CHROMIUM);
});
