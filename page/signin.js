'use strict';
// Sign-in through an OpenID provider: the authorization-code flow with PKCE (S256), no secret.
//
// Plain JavaScript, loaded before app.js.  config.json names the issuer and the client id
// (oidc_issuer, oidc_client_id): make run's local provider, or a user pool's hosted UI.  The
// endpoints come from the issuer's discovery document.  state and nonce are checked on the
// way back; the tokens stay in this tab's sessionStorage (docs/page.md#sign-in), the ID token
// is refreshed with the refresh token a minute before it expires, and signing out ends the
// provider's session through its end_session_endpoint, or where discovery names none
// (Cognito) through config.json's oidc_logout_url and oidc_logout_redirect_param.  app.js
// calls providerSignIn() at start and providerSignOut() from its sign-out button; the
// dev-token form stays for scripts under make run (config.json's sign_in: "token").

const OIDC_STORAGE = 'image-resizer-oidc'; // {id_token, refresh_token, expires_at}
const OIDC_PENDING = 'image-resizer-oidc-pending'; // {state, nonce, verifier} across the redirect
const REFRESH_BEFORE_MS = 60000;

const oidc = { config: null, discovery: null, timer: null };

function randomText(bytes = 32) {
  const data = crypto.getRandomValues(new Uint8Array(bytes));
  return base64url(data);
}

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function pkceChallenge(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function tokenClaims(jwt) {
  const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
  return JSON.parse(decodeURIComponent(escape(atob(part))));
}

// The page itself, without query or fragment: the redirect and post-logout URI.
function pageAddress() {
  return `${location.origin}${location.pathname}`;
}

async function discover() {
  if (!oidc.discovery) {
    const issuer = oidc.config.oidc_issuer.replace(/\/$/, '');
    const response = await fetch(`${issuer}/.well-known/openid-configuration`);
    if (!response.ok) throw new Error(`the sign-in provider's discovery answered ${response.status}`);
    oidc.discovery = await response.json();
  }
  return oidc.discovery;
}

async function redirectToProvider() {
  const discovery = await discover();
  const pending = { state: randomText(), nonce: randomText(), verifier: randomText() };
  sessionStorage.setItem(OIDC_PENDING, JSON.stringify(pending));
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: oidc.config.oidc_client_id,
    redirect_uri: pageAddress(),
    scope: 'openid profile',
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await pkceChallenge(pending.verifier),
    code_challenge_method: 'S256',
  });
  location.assign(`${discovery.authorization_endpoint}?${query}`);
}

async function tokenRequest(fields) {
  const discovery = await discover();
  const response = await fetch(discovery.token_endpoint, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ client_id: oidc.config.oidc_client_id, ...fields }),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`the sign-in provider refused: ${answer.error_description || answer.error || response.status}`);
  return answer;
}

// The issuer, audience and (after a code) nonce of a new ID token; the page keeps it.
function keepTokens(answer, nonce) {
  const claims = tokenClaims(answer.id_token);
  const issuer = oidc.config.oidc_issuer.replace(/\/$/, '');
  const audiences = [].concat(claims.aud);
  if (claims.iss !== issuer || !audiences.includes(oidc.config.oidc_client_id)) {
    throw new Error('the ID token names another issuer or client');
  }
  if (nonce !== undefined && claims.nonce !== nonce) throw new Error('the ID token answers another sign-in (nonce)');
  const saved = JSON.parse(sessionStorage.getItem(OIDC_STORAGE) || '{}');
  const tokens = {
    id_token: answer.id_token,
    refresh_token: answer.refresh_token || saved.refresh_token || null,
    expires_at: claims.exp * 1000,
  };
  sessionStorage.setItem(OIDC_STORAGE, JSON.stringify(tokens));
  scheduleRefresh(tokens);
  return tokens.id_token;
}

function scheduleRefresh(tokens) {
  clearTimeout(oidc.timer);
  if (!tokens.refresh_token) return;
  const wait = Math.max(0, tokens.expires_at - REFRESH_BEFORE_MS - Date.now());
  oidc.timer = setTimeout(() => refresh().catch((err) => signedOut(`Your sign-in ended: ${err.message}`)), wait);
}

async function refresh() {
  const saved = JSON.parse(sessionStorage.getItem(OIDC_STORAGE) || '{}');
  const idToken = keepTokens(await tokenRequest({ grant_type: 'refresh_token', refresh_token: saved.refresh_token }));
  tokenRefreshed(idToken);
  return idToken;
}

// app.js keeps the token it sends in state.token and its own storage key.
function tokenRefreshed(idToken) {
  state.token = idToken;
  sessionStorage.setItem(TOKEN_STORAGE, idToken);
}

// The code in the URL after the provider's redirect, exchanged once, then taken off the URL.
async function finishRedirect(params) {
  const pending = JSON.parse(sessionStorage.getItem(OIDC_PENDING) || 'null');
  sessionStorage.removeItem(OIDC_PENDING);
  history.replaceState(null, '', pageAddress() + location.hash);
  if (params.get('error')) throw new Error(params.get('error_description') || params.get('error'));
  if (!pending || params.get('state') !== pending.state) throw new Error('the sign-in answer does not match this page (state)');
  const answer = await tokenRequest({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: pageAddress(),
    code_verifier: pending.verifier,
  });
  return keepTokens(answer, pending.nonce);
}

// At start: the ID token to sign in with (a redirect's, or this tab's, refreshed if it is
// near expiry), or null.  Adds the "Sign in with the provider" button.
async function providerSignIn(config) {
  if (!config.oidc_issuer || !config.oidc_client_id) return null;
  oidc.config = config;
  const button = document.createElement('button');
  button.type = 'button';
  button.id = 'provider-sign-in';
  button.textContent = 'Log in with your account';
  button.addEventListener('click', () => redirectToProvider().catch((err) => show($('sign-in-error'), err.message)));
  $('sign-in-form').before(button);
  if (config.sign_in === 'token') {
    const hint = document.createElement('p');
    hint.className = 'hint';
    hint.textContent = 'Or, for scripts and curl, a developer token:';
    $('sign-in-form').before(hint);
  }
  const params = new URLSearchParams(location.search);
  try {
    if (params.has('code') || params.has('error')) return await finishRedirect(params);
    const saved = JSON.parse(sessionStorage.getItem(OIDC_STORAGE) || 'null');
    if (!saved) return null;
    if (saved.expires_at - REFRESH_BEFORE_MS > Date.now()) {
      scheduleRefresh(saved);
      return saved.id_token;
    }
    return saved.refresh_token ? await refresh() : null;
  } catch (err) {
    sessionStorage.removeItem(OIDC_STORAGE);
    show($('sign-in-error'), `Sign-in failed: ${err.message}`);
    return null;
  }
}

// Sign-out: forget the tokens, then end the provider's session (it sends the browser back).
// False when no provider session is open (the dev token's sign-out is app.js's own).  No
// id_token_hint: client_id and the registered post-logout URI are enough for both providers.
async function providerSignOut() {
  const saved = JSON.parse(sessionStorage.getItem(OIDC_STORAGE) || 'null');
  if (!saved || !oidc.config) return false;
  sessionStorage.removeItem(OIDC_STORAGE);
  clearTimeout(oidc.timer);
  const address = logoutAddress(oidc.config, await discover(), pageAddress());
  if (!address) return false;
  location.assign(address);
  return true;
}

// Where signing out sends the browser: the provider's sign-out endpoint (discovery's
// end_session_endpoint, or config.oidc_logout_url where discovery names none), with the
// client and the page to come back to (OIDC's post_logout_redirect_uri, or the parameter
// config.oidc_logout_redirect_param names: Cognito's logout_uri); null without an endpoint.
function logoutAddress(config, discovery, page) {
  const endpoint = config.oidc_logout_url || discovery.end_session_endpoint;
  if (!endpoint) return null;
  const query = new URLSearchParams({ client_id: config.oidc_client_id });
  query.set(config.oidc_logout_redirect_param || 'post_logout_redirect_uri', page);
  return `${endpoint}?${query}`;
}
