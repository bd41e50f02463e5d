// The local CDN (scripts/local/cdn.js) in front of a stand-in origin: what reaches the origin.
'use strict';
const test = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const { serve } = require('../../scripts/local/cdn.js');

const CHROMIUM = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

function listening(server) {
  return new Promise((resolve) => server.on('listening', () => resolve(server.address().port)));
}

function get(port, path, headers) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, headers }, (res) => {
        let body = '';
        res.on('data', (chunk) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}

test('the CDN runs the function, then forwards to the bucket on the origin', async (t) => {
  const origin = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'x-origin': 'yes' });
    res.end(JSON.stringify({ url: req.url, host: req.headers.host, accept: req.headers.accept }));
  });
  origin.listen(0, '127.0.0.1');
  const originPort = await listening(origin);
  const cdn = serve('127.0.0.1', 0, `http://127.0.0.1:${originPort}`, 'images');
  const cdnPort = await listening(cdn);
  t.after(() => {
    cdn.close();
    origin.close();
  });

  const seen = async (path, accept) => {
    const answer = await get(cdnPort, path, accept ? { accept } : {});
    assert.strictEqual(answer.status, 200);
    assert.strictEqual(answer.headers['x-origin'], 'yes');
    return JSON.parse(answer.body);
  };
  const rewritten = await seen('/images/640x.auto/a%20b/c.jpg?v=1&w=a%20b', CHROMIUM);
  assert.strictEqual(rewritten.url, '/images/640x.avif/a%20b/c.jpg?v=1&w=a%20b');
  assert.strictEqual(rewritten.host, `127.0.0.1:${originPort}`);
  assert.strictEqual(rewritten.accept, CHROMIUM);
  assert.strictEqual((await seen('/images/640x.auto/c.jpg', 'image/webp')).url, '/images/640x.webp/c.jpg');
  assert.strictEqual((await seen('/images/640x.auto/c.jpg', '*/*')).url, '/images/640x.auto/c.jpg');
  assert.strictEqual((await seen('/images/640x.auto/c.jpg', null)).url, '/images/640x.auto/c.jpg');
  for (const page of ['/images/index.html', '/images/config.json', '/images/640x/c.jpg?x=.auto']) {
    assert.strictEqual((await seen(page, CHROMIUM)).url, page);
  }
  assert.strictEqual((await get(cdnPort, '/other/640x.auto/c.jpg', {})).status, 404);
});
