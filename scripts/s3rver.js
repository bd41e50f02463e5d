#!/usr/bin/env node
// Starts s3rver for the local stack, with one fix: s3rver writes the raw,
// decoded key into a website redirect's Location header, so a key with a
// space or a non-ASCII letter becomes an invalid header (S3 percent-encodes
// it).  We percent-encode the path of every routing-rule Location here.
//
// Usage: node scripts/s3rver.js <directory> <address> <port>
'use strict';

const S3rver = require('s3rver');
const RoutingRule = require('s3rver/lib/models/routing-rule');

const buildLocation = RoutingRule.prototype.getRedirectLocation;
RoutingRule.prototype.getRedirectLocation = function (key, defaults) {
  const location = buildLocation.call(this, key, defaults);
  // s3rver builds `${protocol}://${host}/${newKey}`; encode only newKey.
  const host = this.redirect.HostName || defaults.hostname;
  const pathStart = location.indexOf('://') + 3 + host.length + 1;
  const path = location.slice(pathStart).split('/').map(encodeURIComponent).join('/');
  return location.slice(0, pathStart) + path;
};

const [directory, address = '127.0.0.1', port = '4568'] = process.argv.slice(2);
if (!directory) {
  console.error('usage: node scripts/s3rver.js <directory> [address] [port]');
  process.exit(2);
}

const server = new S3rver({ directory, address, port: Number(port), silent: true });
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
