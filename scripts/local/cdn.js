#!/usr/bin/env node
// The local CDN: a stand-in for CloudFront in front of the website bucket that runs the
// stack's own CloudFront Function file (infra/cdn/viewer_request.js) on every request, then
// forwards the (possibly rewritten) request to the website and passes its answer back.
//
// It serves http://<address>:<port>/<bucket>/..., the origin's path-style layout, and hands
// the function what CloudFront would: the URI without the bucket (the distribution's root is
// the bucket's), lower-case headers as {value}, the query string as {name: {value}}.
// Differences from CloudFront (docs/local.md#the-local-cdn): it caches nothing, forwards the
// query string as received, and the function runs in Node's vm, not CloudFront's runtime.
//
// Usage: node scripts/local/cdn.js <address> <port> <origin, e.g. http://127.0.0.1:4568> <bucket>
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const vm = require('vm');

const FUNCTION_FILE = path.resolve(__dirname, '..', '..', 'infra', 'cdn', 'viewer_request.js');
// Hop-by-hop headers: never forwarded (RFC 9110 7.6.1), and Host is the origin's.
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'host']);

// The file as CloudFront runs it: a script whose global `handler` takes the event.
function loadHandler(file = FUNCTION_FILE) {
  const context = vm.createContext({});
  vm.runInContext(fs.readFileSync(file, 'utf8'), context, { filename: file });
  if (typeof context.handler !== 'function') {
    throw new Error(`${file} defines no handler function`);
  }
  return context.handler;
}

function viewerEvent(req, uri, address) {
  const headers = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name] = { value: Array.isArray(value) ? value.join(',') : value };
  }
  const querystring = {};
  for (const [name, value] of new URLSearchParams(req.url.split('?')[1] || '')) {
    querystring[name] = { value };
  }
  return {
    version: '1.0',
    context: { eventType: 'viewer-request', distributionId: 'LOCAL', requestId: String(Date.now()) },
    viewer: { ip: address },
    request: { method: req.method, uri, querystring, headers, cookies: {} },
  };
}

function serve(host, port, origin, bucket) {
  const handler = loadHandler();
  const prefix = `/${bucket}`;
  const upstream = new URL(origin);
  const server = http.createServer((req, res) => {
    const [rawPath, query] = req.url.split(/\?(.*)/s);
    if (!rawPath.startsWith(`${prefix}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`this CDN serves ${prefix}/ only\n`);
      return;
    }
    const event = viewerEvent(req, rawPath.slice(prefix.length), req.socket.remoteAddress);
    let request;
    try {
      request = handler(event);
    } catch (err) {
      // CloudFront answers 503 when a function throws.
      res.writeHead(503, { 'content-type': 'text/plain' }).end(`function error: ${err}\n`);
      return;
    }
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name)) headers[name] = value;
    }
    headers.host = upstream.host;
    const forwarded = http.request(
      {
        host: upstream.hostname,
        port: upstream.port,
        method: req.method,
        path: `${prefix}${request.uri}${query !== undefined ? `?${query}` : ''}`,
        headers,
      },
      (answer) => {
        const out = { ...answer.headers };
        delete out.connection;
        delete out['transfer-encoding'];
        res.writeHead(answer.statusCode, out);
        answer.pipe(res);
      },
    );
    forwarded.on('error', (err) => {
      // CloudFront's answer when it can't reach the origin.
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`origin unreachable: ${err.message}\n`);
    });
    req.pipe(forwarded);
  });
  server.listen(port, host);
  return server;
}

if (require.main === module) {
  const [host, port, origin, bucket] = process.argv.slice(2);
  if (!bucket) {
    console.error('usage: node scripts/local/cdn.js <address> <port> <origin> <bucket>');
    process.exit(2);
  }
  serve(host, Number(port), origin, bucket).on('listening', () => {
    console.log(`CDN on http://${host}:${port}/${bucket} -> ${origin}/${bucket}`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

module.exports = { loadHandler, serve, viewerEvent, FUNCTION_FILE };
