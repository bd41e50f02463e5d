#!/usr/bin/env node
// The local OpenID provider: oidc-provider (OpenID certified) on loopback, the issuer `make run`
// gives the page and the app, as Cognito's hosted UI is on AWS (docs/local.md#sign-in).
//
// One client, the page's: public (no secret), authorization code with PKCE (S256 only), its
// redirect and post-logout URIs the page's URLs. One user, whose name and password come from
// the environment. RS256 keys are generated at start unless OIDC_JWKS_FILE names a private JWKS
// (the tests pass one to sign expired and other-audience tokens with the provider's own key).
// The login form is this file's own (it checks the password); consent is implied for the
// page, a first-party client, and every code grant gets a refresh token, as Cognito's do.
//
// Environment: OIDC_HOST (127.0.0.1), OIDC_PORT (4571), OIDC_CLIENT_ID (image-resizer-page),
// OIDC_REDIRECT_URIS (comma-separated page URLs), OIDC_USER (local), OIDC_PASSWORD (required),
// OIDC_JWKS_FILE (optional), OIDC_ID_TOKEN_TTL (seconds, 3600).
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const querystring = require('querystring');

const HOST = process.env.OIDC_HOST || '127.0.0.1';
const PORT = Number(process.env.OIDC_PORT || 4571);
const ISSUER = `http://${HOST}:${PORT}`;
const CLIENT_ID = process.env.OIDC_CLIENT_ID || 'image-resizer-page';
const REDIRECT_URIS = (process.env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean);
const USER = process.env.OIDC_USER || 'local';
const PASSWORD = process.env.OIDC_PASSWORD;
const ID_TOKEN_TTL = Number(process.env.OIDC_ID_TOKEN_TTL || 3600);

function signingKeys() {
  if (process.env.OIDC_JWKS_FILE) {
    return JSON.parse(fs.readFileSync(process.env.OIDC_JWKS_FILE, 'utf8'));
  }
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { keys: [{ ...jwk, kid: crypto.randomUUID(), alg: 'RS256', use: 'sig' }] };
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, error) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in (local provider)</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><main><h1>Sign in</h1><p>The local OpenID provider of <code>make run</code>.</p>
${error ? `<p role="alert">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>User name <input name="username" autocomplete="username" required autofocus></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button></form></main></body></html>`;
}

// The logout confirmation submits itself: Cognito's /logout asks nothing either.
async function logoutSource(ctx, form) {
  ctx.body = `<!doctype html><html><head><meta charset="utf-8"><title>Signing out</title></head>
<body>${form.replace('</form>', '<input type="hidden" name="logout" value="yes"></form>')}
<script>document.forms[0].submit()</script></body></html>`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => resolve(querystring.parse(body)));
    req.on('error', reject);
  });
}

async function main() {
  if (!PASSWORD) throw new Error('OIDC_PASSWORD is required');
  const { default: Provider } = await import('oidc-provider');
  const origins = new Set(REDIRECT_URIS.map((uri) => new URL(uri).origin));
  const provider = new Provider(ISSUER, {
    clients: [
      {
        client_id: CLIENT_ID,
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: REDIRECT_URIS,
        post_logout_redirect_uris: REDIRECT_URIS,
      },
    ],
    jwks: signingKeys(),
    pkce: { methods: ['S256'], required: () => true },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    claims: { openid: ['sub'], profile: ['preferred_username'] },
    findAccount: async (ctx, id) =>
      id === USER ? { accountId: id, claims: async () => ({ sub: id, preferred_username: id }) } : undefined,
    features: {
      devInteractions: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // The page is first-party: its scopes are granted without a consent screen.
    loadExistingGrant: async (ctx) => {
      const { Grant } = ctx.oidc.provider;
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return Grant.find(grantId);
      const grant = new Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid profile');
      await grant.save();
      return grant;
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    clientBasedCORS: (ctx, origin) => origins.has(origin),
    ttl: { IdToken: ID_TOKEN_TTL, AccessToken: ID_TOKEN_TTL },
  });
  const callback = provider.callback();

  const server = http.createServer(async (req, res) => {
    const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(req.url.split('?')[0]);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'POST' && match[2]) {
        const form = await readForm(req);
        if (form.username !== USER || form.password !== PASSWORD) {
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
          return res.end(loginPage(details.uid, 'Wrong user name or password.'));
        }
        return provider.interactionFinished(req, res, { login: { accountId: USER } }, { mergeWithLastSubmission: false });
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return res.end(loginPage(details.uid, ''));
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8' });
      return res.end(`sign-in failed: ${err.message}\n`);
    }
  });
  server.listen(PORT, HOST, () => console.log(`oidc-provider: issuer ${ISSUER}, client ${CLIENT_ID}`));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
