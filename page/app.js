// The demo page: sign in, upload a photo straight to S3 through POST /uploads,
// then see it at many sizes through the public website, with its record from
// GET /meta and, for each variant, whether it was a miss or a hit.
// Plain JavaScript, no build step.  config.json is written next to this file by
// whoever publishes the page (scripts/ops/publish_page.py).
'use strict';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// A page-side test hook, never a server setting: wait this long between getting
// the signed form and posting the file, so a test can let the form expire.
const UPLOAD_DELAY_MS = Math.max(0, Number(params.get('upload_delay_ms')) || 0);
const TOKEN_STORAGE = 'image-resizer-token';
const META_POLL_MS = 500;
const META_WAIT_MS = 60000;
const PAGE_SIZE = 12;

const state = { config: null, token: null, cursor: null, maxBytes: null, shownKey: null };

// Misses are told apart by their redirect through the API, which needs every
// entry of the page's life: the default buffer (250) fills on a busy page.
performance.setResourceTimingBufferSize(2000);

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function show(element, text) {
  element.textContent = text;
  element.hidden = !text;
}

function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${bytes} bytes`;
}

// Keys are percent-encoded segment by segment, as the API writes them.
function keyPath(key) {
  return key.split('/').map(encodeURIComponent).join('/');
}

// Images go through the CDN (CloudFront, or make run's stand-in running the same
// function), which resolves `.auto` sizes to the format the browser takes best.
function imageBase() {
  return state.config.cdn_url || state.config.public_url;
}

function variantUrl(key, token) {
  return `${imageBase()}/${token}/${keyPath(key)}`;
}

// `.auto`: one URL, the format the browser takes best (docs/urls.md).
function auto(token) {
  return `${token}.auto`;
}

// config.json's authorization_scheme: "Bearer" under make run; empty on AWS, where the
// header API Gateway's Cognito authorizer reads holds the bare ID token, as AWS documents it.
function authorization() {
  const scheme = state.config.authorization_scheme;
  return scheme ? `${scheme} ${state.token}` : state.token;
}

// GET /meta is public and sent without credentials: a simple request, no preflight.
// What it shows is what anyone may see; the owner's view comes from GET /uploads?key=.
async function api(method, path, body, { signed = true } = {}) {
  const headers = signed ? { Authorization: authorization() } : {};
  const options = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`${state.config.api_url}${path}`, options);
  } catch (err) {
    throw new ApiError(0, 'unreachable', `The API at ${state.config.api_url} can't be reached (${err.message}).`);
  }
  const text = await response.text();
  let document = null;
  try {
    document = text ? JSON.parse(text) : null;
  } catch (err) {
    document = null;
  }
  if (!response.ok) {
    const code = (document && document.code) || `http_${response.status}`;
    const message = (document && document.message) || `The API answered ${response.status}.`;
    throw new ApiError(response.status, code, message);
  }
  return document;
}

// S3 answers a refused form POST with XML; say what it means in a sentence.
function s3Sentence(status, xml, form) {
  const parsed = new DOMParser().parseFromString(xml || '<x/>', 'application/xml');
  const code = parsed.querySelector('Code')?.textContent || '';
  const message = parsed.querySelector('Message')?.textContent || '';
  if (code === 'AccessDenied' && /expired/i.test(message)) {
    return `The upload form expired before the file was sent (a form is valid for ${form.expires_in} seconds). Choose the file again to get a new form.`;
  }
  if (code === 'EntityTooLarge') {
    return `The file is larger than the ${formatBytes(form.max_bytes)} an upload may be.`;
  }
  if (code === 'EntityTooSmall') return 'The file is empty.';
  if (code === 'SignatureDoesNotMatch') return 'The storage refused the upload form’s signature. Please try again.';
  if (code === 'AccessDenied') return `The storage refused the upload: ${message || 'access denied'}`;
  if (status === 0) return 'The upload was interrupted or blocked (network or CORS). Please try again.';
  return `The storage refused the upload (${status}${code ? ` ${code}` : ''})${message ? `: ${message}` : '.'}`;
}

// Why an original was rejected, in words (the record has only the code).
// Why a file was refused: [a few words for the list, the sentence for its own view].
const REJECTIONS = {
  unsupported_format: ['not an image', 'This file is not an image the service can read, whatever its name says (for example a PDF renamed .jpg).'],
  invalid_image: ['damaged', 'This image is damaged and can’t be decoded.'],
  empty_original: ['empty', 'This file is empty.'],
  original_too_many_bytes: ['too large', 'This file is too large to process.'],
  original_too_many_pixels: ['too many pixels', 'This image has too many pixels to process.'],
  original_too_complex: ['too complex', 'This image would take too much memory to process.'],
};

function rejectionSentence(code) {
  return REJECTIONS[code]?.[1] || `The service could not make any size of this file (${code || 'no reason given'}).`;
}

function rejectionWords(code) {
  return REJECTIONS[code]?.[0] || 'no size can be made';
}

// --- sign in -----------------------------------------------------------------

function setUpSignIn() {
  // The dev-token form only under make run (sign_in: "token"); on AWS the provider's button.
  $('sign-in-form').hidden = state.config.sign_in !== 'token';
  if (state.config.sign_in !== 'token' && !state.config.oidc_issuer) {
    show($('sign-in-error'), 'This page has no sign-in: its stack names no user pool client (see docs/deploy.md).');
  }
  $('token-hint').textContent = state.config.token_hint || '';
  $('sign-in-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    await signIn($('token').value.trim());
  });
  $('sign-out').addEventListener('click', async () => {
    sessionStorage.removeItem(TOKEN_STORAGE);
    if (await providerSignOut()) return; // signin.js: the provider sends the browser back
    location.hash = '';
    location.reload();
  });
}

async function signIn(token) {
  show($('sign-in-error'), '');
  state.token = token;
  try {
    await loadUploads(true);
  } catch (err) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_STORAGE);
    show($('sign-in-error'), err.status === 401 ? `That token was refused: ${err.message}` : err.message);
    return;
  }
  sessionStorage.setItem(TOKEN_STORAGE, token);
  $('sign-in').hidden = true;
  $('signed-in').hidden = false;
  $('upload').hidden = false;
  $('uploads').hidden = false;
}

function signedOut(message) {
  sessionStorage.removeItem(TOKEN_STORAGE);
  state.token = null;
  $('sign-in').hidden = false;
  $('signed-in').hidden = true;
  $('upload').hidden = true;
  $('uploads').hidden = true;
  show($('sign-in-error'), message);
}

// --- upload ------------------------------------------------------------------

function setUpUpload() {
  const input = $('file');
  const zone = $('drop-zone');
  input.addEventListener('change', () => {
    if (input.files.length) upload(input.files[0]);
    input.value = ''; // the same file chosen again is a new upload
  });
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('dragging');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    if (event.dataTransfer.files.length) upload(event.dataTransfer.files[0]);
  });
}

function postForm(form, file, onProgress) {
  // XMLHttpRequest, not fetch: only it reports upload progress.
  return new Promise((resolve, reject) => {
    const data = new FormData();
    for (const [name, value] of Object.entries(form.upload.fields)) data.append(name, value);
    data.append('file', file); // S3 wants the file last
    const request = new XMLHttpRequest();
    request.open('POST', form.upload.url);
    request.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    request.addEventListener('load', () => {
      if (request.status >= 200 && request.status < 300) resolve();
      else reject(new Error(s3Sentence(request.status, request.responseText, form)));
    });
    request.addEventListener('error', () => reject(new Error(s3Sentence(0, '', form))));
    request.send(data);
  });
}

// Browsers without a HEIF codec (Chromium and Firefox off Apple systems) give a phone's
// .heic file no type (or a generic one); its name says what it is.
const TYPES_BY_EXTENSION = { heic: 'image/heic', heif: 'image/heif', hif: 'image/heif' };

function contentTypeOf(file) {
  const extension = file.name.includes('.') ? file.name.split('.').pop().toLowerCase() : '';
  return TYPES_BY_EXTENSION[extension] || file.type;
}

async function upload(file) {
  const status = $('upload-status');
  const progress = $('upload-progress');
  show($('upload-error'), '');
  progress.hidden = true;
  const contentType = contentTypeOf(file);
  if (!contentType) {
    show($('upload-error'), `The browser can’t tell what kind of file “${file.name}” is; choose a JPEG, PNG, GIF, WebP, AVIF, HEIC, BMP or TIFF.`);
    return;
  }
  if (state.maxBytes && file.size > state.maxBytes) {
    show($('upload-error'), `“${file.name}” is ${formatBytes(file.size)}; an upload may be at most ${formatBytes(state.maxBytes)}.`);
    return;
  }
  openItem(file.name, 'uploading', 'Uploading…');
  try {
    status.textContent = `Asking for an upload form for “${file.name}”…`;
    // The declared size lets the API refuse an over-limit file before any byte is sent.
    const form = await api('POST', '/uploads', { filename: file.name, content_type: contentType, size: file.size });
    state.maxBytes = form.max_bytes;
    if (UPLOAD_DELAY_MS) await new Promise((resolve) => setTimeout(resolve, UPLOAD_DELAY_MS));
    status.textContent = `Uploading “${file.name}” (${formatBytes(file.size)})…`;
    progress.value = 0;
    progress.hidden = false;
    await postForm(form, file, (fraction) => {
      progress.value = Math.round(fraction * 100);
    });
    progress.value = 100;
    status.textContent = `Uploaded “${file.name}”.`;
    location.hash = `key=${encodeURIComponent(form.key)}`;
    await showItem(form.key, { justUploaded: true, filename: file.name });
    await loadUploads(true);
  } catch (err) {
    status.textContent = '';
    progress.hidden = true;
    if (!state.shownKey) $('item').hidden = true;
    if (err.status === 401) signedOut(`Your sign-in was refused: ${err.message}. Sign in again.`);
    else if (err instanceof ApiError) show($('upload-error'), `Can’t upload “${file.name}”: ${err.message}.`);
    else show($('upload-error'), err.message);
  }
}

// --- one original: its record and its gallery ----------------------------------

async function fetchMeta(key) {
  try {
    return await api('GET', `/meta/${keyPath(key)}`, undefined, { signed: false });
  } catch (err) {
    if (err.code === 'not_found') return null; // not processed yet, or never uploaded
    if (err.code === 'original_deleted') return { state: 'deleted' };
    throw err;
  }
}

// The owner's view of one record (camera, time taken, bytes, ETag), which GET /meta
// shows nobody: null when not signed in, not the caller's, or refused.
async function fetchOwned(key) {
  if (!state.token) return null;
  try {
    return await api('GET', `/uploads?key=${encodeURIComponent(key)}`);
  } catch (err) {
    return null;
  }
}

async function waitForMeta(key) {
  const deadline = Date.now() + META_WAIT_MS;
  const started = Date.now();
  for (;;) {
    const meta = await fetchMeta(key);
    if (meta || Date.now() > deadline) return meta;
    const seconds = Math.round((Date.now() - started) / 1000);
    setItemState('processing', `Processing the upload… (${seconds} s)`);
    await new Promise((resolve) => setTimeout(resolve, META_POLL_MS));
  }
}

function setItemState(name, text) {
  const element = $('item-state');
  element.dataset.state = name;
  element.textContent = text;
}

function fileName(key) {
  return key.split('/').pop();
}

// The item's section opened, empty, with its gallery's room held until the record
// arrives: opened as the person acts, what is below moves then, never later.
function openItem(title, stateName, text) {
  state.shownKey = null;
  $('item').hidden = false;
  $('item-title').textContent = title;
  show($('item-error'), '');
  $('item-facts').replaceChildren();
  $('gallery').replaceChildren();
  $('gallery').classList.add('reserved');
  $('timing-note').hidden = true;
  hideTools();
  setItemState(stateName, text);
}

async function showItem(key, { justUploaded = false, filename = null } = {}) {
  // upload() opened the section as the file was chosen, unless another was opened since.
  if (!justUploaded || state.shownKey !== null) openItem(filename || fileName(key), 'loading', '');
  state.shownKey = key;
  setItemState('loading', 'Looking up its record…');
  const settled = () => $('gallery').classList.remove('reserved'); // no gallery to come
  let meta;
  try {
    meta = justUploaded ? await waitForMeta(key) : await fetchMeta(key);
  } catch (err) {
    settled();
    setItemState('error', 'Its record could not be read.');
    show($('item-error'), err.message);
    return;
  }
  if (state.shownKey !== key) return; // another item was opened meanwhile
  if (!meta) {
    settled();
    setItemState('not_found', justUploaded
      ? 'Not processed yet: the events pipeline has not reached this upload. Reload in a moment.'
      : 'Not found: nothing is known of this image, or its upload has not been processed yet.');
    return;
  }
  if (meta.state === 'deleted') {
    settled();
    setItemState('deleted', 'Deleted: this image was deleted, and every size of it with it.');
    return;
  }
  meta = (await fetchOwned(key)) || meta;
  if (state.shownKey !== key) return;
  if (meta.state === 'rejected') {
    settled();
    showFacts(meta);
    setItemState('rejected', 'Rejected: no size of this file can be made.');
    show($('item-error'), rejectionSentence(meta.error_code));
    return;
  }
  await refreshIfReplaced(key, meta);
  if (state.shownKey !== key) return;
  // In one task, so the browser lays the record out once: nothing already on
  // screen moves when it arrives (the gallery's boxes are reserved from its size).
  showFacts(meta);
  setItemState('ready', 'Ready: use it at any size.');
  showGallery(key, meta);
  showTools(key, meta);
}

// A replaced original keeps its URLs, and this browser may hold the old
// variants for their max-age (a day).  When the record's ETag is not the one
// this browser last showed in that place (the gallery, the list), the URLs
// shown there are fetched again past the cache, so the cache holds the new
// variants before any <img> asks.  True when it refetched.
async function refetchIfReplaced(place, key, etag, urls, onRefetch = () => {}) {
  const remembered = `image-resizer-etag:${place}:${key}`;
  const seen = localStorage.getItem(remembered);
  localStorage.setItem(remembered, etag);
  if (!seen || seen === etag) return false;
  onRefetch();
  // A .auto URL's answer depends on Accept, and fetch() sends */*: send what this
  // browser's <img> sends as far as the negotiation can tell, so the CDN picks the
  // same format and the entry the <img> reads is the one refreshed.
  const headers = { Accept: await imageAccept() };
  await Promise.all(urls.map((url) => fetch(url, { cache: 'reload', mode: 'no-cors', headers }).catch(() => null)));
  return true;
}

// 1×1 pictures: whether this browser decodes AVIF and WebP.
const PROBES = {
  'image/avif': 'data:image/avif;base64,AAAAIGZ0eXBhdmlmAAAAAGF2aWZtaWYxbWlhZk1BMUIAAADrbWV0YQAAAAAAAAAhaGRscgAAAAAAAAAAcGljdAAAAAAAAAAAAAAAAAAAAAAOcGl0bQAAAAAAAQAAAB5pbG9jAAAAAEQAAAEAAQAAAAEAAAETAAAAJQAAAChpaW5mAAAAAAABAAAAGmluZmUCAAAAAAEAAGF2MDFDb2xvcgAAAABqaXBycAAAAEtpcGNvAAAAFGlzcGUAAAAAAAAAAQAAAAEAAAAQcGl4aQAAAAADCAgIAAAADGF2MUOBAAwAAAAAE2NvbHJuY2x4AAEADQAGgAAAABdpcG1hAAAAAAAAAAEAAQQBAoMEAAAALW1kYXQSAAoIGAAGiAhoNCAyFxTHh4ZlAgggnlAAAAD2b2M9SPG6ZHSs',
  'image/webp': 'data:image/webp;base64,UklGRiQAAABXRUJQVlA4IBgAAAAwAQCdASoBAAEAAsBMJaQAA3AA/veMAAA=',
};

let acceptForImages = null;

async function imageAccept() {
  if (acceptForImages === null) {
    const decodes = (src) => new Promise((resolve) => {
      const img = new Image();
      img.onload = () => resolve(img.naturalWidth > 0);
      img.onerror = () => resolve(false);
      img.src = src;
    });
    const types = Object.keys(PROBES);
    const taken = await Promise.all(types.map((type) => decodes(PROBES[type])));
    acceptForImages = [...types.filter((_, i) => taken[i]), 'image/*', '*/*;q=0.8'].join(',');
  }
  return acceptForImages;
}

// Only the owner's view has the ETag: a stranger's browser keeps what it cached.
async function refreshIfReplaced(key, meta) {
  if (!meta.etag) return;
  const urls = galleryTokens(meta).map((token) => variantUrl(key, token));
  await refetchIfReplaced('gallery', key, meta.etag, urls, () =>
    setItemState('refreshing', 'Replaced: fetching its new sizes…'));
}

function showFacts(meta) {
  const facts = [
    ['State', meta.state + (meta.error_code ? ` (${meta.error_code})` : '')],
    ['Size', meta.width ? `${meta.width}×${meta.height} px (upright)` : ''],
    ['Format', meta.format ? `${meta.format}${meta.frames > 1 ? `, ${meta.frames} frames` : ''}` : ''],
    ['File size', meta.bytes === undefined ? '' : formatBytes(meta.bytes)],
    ['Taken', humanDate(meta.taken_at)],
    ['Camera', [meta.camera_make, meta.camera_model].filter(Boolean).join(' ')],
    ['Uploaded', humanDate(meta.created_at)],
    ['Watermark', meta.watermarked ? 'yes, on sizes its policy marks' : ''],
  ];
  const list = $('item-facts');
  for (const [name, value] of facts) {
    if (!value) continue;
    const term = document.createElement('dt');
    term.textContent = name;
    const detail = document.createElement('dd');
    detail.textContent = value;
    detail.dataset.fact = name.toLowerCase();
    list.append(term, detail);
  }
}

// The original's own format named is only a redirect to the size without it:
// leave the format out when it is the original's.
function inFormat(token, extension, meta) {
  return (meta.format || '').toLowerCase() === extension ? token : `${token}.${extension}`;
}

const RESPONSIVE_WIDTHS = ['320x', '640x', '1280x'];
const PICTURE_SIZES = ['320x', '320x@2x'];
const PICTURE_FORMATS = [['image/avif', 'avif'], ['image/webp', 'webp']];
// Square and other thumbnails keep the subject: the focal point, else the most detail.
const COVERS = [
  ['160x160-cover-focus', 160, 160],
  ['240x135-cover-focus', 240, 135],
  ['120x160-cover-focus', 120, 160],
];
const RETINA = '200x@2x';

function twice(token) {
  return token.replace(/^(\d*x\d*(?:-cover(?:-[a-z]+)?)?)/, '$1@2x');
}

// Every size token the gallery may ask for.
function galleryTokens(meta) {
  return [
    ...RESPONSIVE_WIDTHS.map(auto),
    ...PICTURE_FORMATS.flatMap(([, extension]) => PICTURE_SIZES.map((token) => inFormat(token, extension, meta))),
    ...PICTURE_SIZES,
    ...COVERS.flatMap(([token]) => [token, twice(token)]).map(auto),
    auto(RETINA),
  ];
}

function showGallery(key, meta) {
  const url = (token) => variantUrl(key, token);
  const density = (tokens) => tokens.map((token, i) => `${url(token)} ${i + 1}x`).join(', ');
  const gallery = $('gallery');
  gallery.classList.remove('reserved');
  gallery.append(
    figure('responsive', 'Fits the screen: the browser picks 320, 640 or 1280 pixels wide, in the best format it reads', () => {
      const img = image(meta);
      img.srcset = RESPONSIVE_WIDTHS.map((token) => `${url(auto(token))} ${token.slice(0, -1)}w`).join(', ');
      img.sizes = '(min-width: 720px) 640px, 320px';
      img.src = url(auto('640x'));
      return img;
    }),
    figure('picture', 'The smallest file this browser can show: AVIF, else WebP, else the original’s format', () => {
      const picture = document.createElement('picture');
      for (const [type, extension] of PICTURE_FORMATS) {
        const source = document.createElement('source');
        source.type = type;
        source.srcset = density(PICTURE_SIZES.map((token) => inFormat(token, extension, meta)));
        picture.append(source);
      }
      const img = image(meta);
      img.srcset = density(PICTURE_SIZES);
      img.src = url(PICTURE_SIZES[0]);
      picture.append(img);
      return picture;
    }),
    ...COVERS.map(
      ([token, width, height]) => figure('cover', `Thumbnail ${width}×${height}, cropped around the subject`, () => {
        const img = image({ width, height });
        img.srcset = density([auto(token), auto(twice(token))]);
        img.src = url(auto(token));
        return img;
      }),
    ),
    figure('retina', 'Sharp on every screen: 400 pixels shown 200 wide', () => {
      const img = image(meta);
      // No src: it would be a 1x candidate, and the image would claim 400 CSS px.
      img.srcset = `${url(auto(RETINA))} 2x`;
      return img;
    }),
  );
  for (const frame of gallery.querySelectorAll('.variant .frame')) paintPlaceholder(frame, meta);
  $('timing-note').hidden = false;
}

// Until its image loads, a frame shows the record's dominant colour and BlurHash
// (docs/lifecycle.md#placeholders); loaded() takes them away again.
function paintPlaceholder(frame, meta) {
  if (meta.dominant_color) frame.style.backgroundColor = meta.dominant_color;
  const painted = meta.blurhash && blurhashUrl(meta.blurhash);
  if (painted) {
    frame.style.backgroundImage = `url("${painted}")`;
    frame.style.backgroundSize = '100% 100%';
  }
  frame.dataset.placeholder = painted ? 'blurhash' : meta.dominant_color ? 'colour' : 'none';
}

const BASE83 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~';

function base83(text) {
  let value = 0;
  for (const char of text) {
    const digit = BASE83.indexOf(char);
    if (digit < 0) throw new Error('not base 83');
    value = value * 83 + digit;
  }
  return value;
}

function toLinear(value) {
  const v = value / 255;
  return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
}

function toSrgb(value) {
  const v = Math.max(0, Math.min(1, value));
  return Math.round((v <= 0.0031308 ? v * 12.92 : 1.055 * v ** (1 / 2.4) - 0.055) * 255);
}

// A BlurHash (https://blurha.sh) decoded onto a small canvas, as a data: URL; null if unreadable.
function blurhashUrl(hash, width = 32, height = 32) {
  try {
    const size = base83(hash[0]);
    const [columns, rows] = [(size % 9) + 1, Math.floor(size / 9) + 1];
    if (hash.length !== 4 + 2 * columns * rows) return null;
    const maximum = (base83(hash[1]) + 1) / 166;
    const dc = base83(hash.slice(2, 6));
    const colours = [[toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]];
    for (let i = 1; i < columns * rows; i++) {
      const value = base83(hash.slice(4 + i * 2, 6 + i * 2));
      const signed = (v) => Math.sign(v) * Math.abs(v) ** 2 * maximum;
      colours.push([
        signed(Math.floor(value / 361) / 9 - 1),
        signed((Math.floor(value / 19) % 19) / 9 - 1),
        signed((value % 19) / 9 - 1),
      ]);
    }
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext('2d');
    const pixels = context.createImageData(width, height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const sum = [0, 0, 0];
        for (let j = 0; j < rows; j++) {
          for (let i = 0; i < columns; i++) {
            const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
            const colour = colours[i + j * columns];
            for (let c = 0; c < 3; c++) sum[c] += colour[c] * basis;
          }
        }
        const at = 4 * (x + y * width);
        pixels.data.set([toSrgb(sum[0]), toSrgb(sum[1]), toSrgb(sum[2]), 255], at);
      }
    }
    context.putImageData(pixels, 0, 0);
    return canvas.toDataURL('image/png');
  } catch {
    return null;
  }
}

// An <img> hidden until it loads, with the aspect ratio reserved from the record.
function image(box) {
  const img = document.createElement('img');
  img.alt = '';
  img.decoding = 'async';
  if (box.width && box.height) {
    img.width = box.width;
    img.height = box.height;
  }
  return img;
}

function figure(kind, label, build) {
  const element = document.createElement('figure');
  element.className = `variant ${kind}`;
  element.dataset.kind = kind;
  element.dataset.result = 'loading';
  const frame = document.createElement('div');
  frame.className = 'frame';
  const content = build();
  frame.append(content);
  const caption = document.createElement('figcaption');
  const what = document.createElement('span');
  what.className = 'what';
  what.textContent = label;
  const result = document.createElement('span');
  result.className = 'result';
  result.textContent = 'loading…';
  caption.append(what, result);
  element.append(frame, caption);
  const img = content.tagName === 'IMG' ? content : content.querySelector('img');
  img.alt = `${fileName(state.shownKey)}: ${label}`;
  img.addEventListener('load', () => loaded(element, img, result));
  img.addEventListener('error', () => failed(element, img, result));
  return element;
}

function tokenOf(url) {
  const path = new URL(url).pathname;
  const base = new URL(imageBase()).pathname.replace(/\/$/, '');
  return decodeURIComponent(path.slice(base.length + 1).split('/')[0]);
}

async function loaded(element, img, result) {
  // Loaded is not yet painted: an async decode can take a while on a busy phone, and
  // the placeholder stays until the picture can take its place.
  await img.decode().catch(() => {});
  img.classList.add('loaded');
  const frame = element.querySelector('.frame');
  frame.style.removeProperty('background-color');
  frame.style.removeProperty('background-image');
  frame.style.removeProperty('background-size');
  frame.dataset.placeholder = 'gone';
  const timing = await variantTiming(img.currentSrc);
  element.dataset.result = timing.result;
  element.dataset.token = tokenOf(img.currentSrc);
  const time = timing.ms === null ? '' : ` in ${Math.round(timing.ms)} ms`;
  result.textContent = `${element.dataset.token}: shown ${img.naturalWidth}×${img.naturalHeight} px; ${timing.result}${time}${timing.detail ? ` (${timing.detail})` : ''}`;
}

function failed(element, img, result) {
  // Never a broken-image icon: the image goes, a sentence takes its place.
  img.classList.add('failed');
  element.dataset.result = 'error';
  element.classList.add('error');
  result.textContent = 'This size could not be loaded: the original may have been deleted or replaced by something that is not an image.';
}

// Hit or miss, from Resource Timing.  A miss is the website's 307 to the resize
// API and the API's 307 back: a cross-origin redirect, after which the browser
// zeroes the entry's detail (responseStart, transferSize, responseStatus)
// because those responses send no Timing-Allow-Origin.  A hit from the same
// origin as the page keeps them.  Variants on another origin than the page hide
// their detail either way, so there the answer is "unknown".
async function variantTiming(url) {
  let entries = performance.getEntriesByName(url, 'resource');
  for (let tries = 0; !entries.length && tries < 10; tries += 1) {
    // The entry can be queued just after the load event.
    await new Promise((resolve) => setTimeout(resolve, 50));
    entries = performance.getEntriesByName(url, 'resource');
  }
  if (!entries.length) return { result: 'hit', ms: null, detail: 'already loaded by this page' };
  const entry = entries[0];
  if (new URL(url).origin !== location.origin) {
    return { result: 'unknown', ms: entry.duration, detail: 'another origin hides the timing detail' };
  }
  if (entry.responseStart === 0) return { result: 'miss', ms: entry.duration, detail: 'made by the resize API' };
  if (entry.redirectEnd > 0) return { result: 'hit', ms: entry.duration, detail: 'another spelling of a stored size' };
  if (entry.transferSize === 0 && entry.decodedBodySize > 0) {
    return { result: 'hit', ms: entry.duration, detail: 'from the browser’s cache' };
  }
  return { result: 'hit', ms: entry.duration, detail: '' };
}

// --- earlier uploads -------------------------------------------------------------

async function loadUploads(fromStart) {
  const query = new URLSearchParams({ limit: String(PAGE_SIZE) });
  if (!fromStart && state.cursor) query.set('cursor', state.cursor);
  const answer = await api('GET', `/uploads?${query}`);
  const list = $('upload-list');
  if (fromStart) list.replaceChildren();
  for (const record of answer.uploads) list.append(uploadEntry(record));
  state.cursor = answer.next_cursor;
  $('more-uploads').hidden = !answer.next_cursor;
  const usage = answer.usage;
  $('usage').textContent = `${usage.originals} original${usage.originals === 1 ? '' : 's'}, ${formatBytes(usage.bytes)} in all.`;
  if (!answer.uploads.length && fromStart) {
    const empty = document.createElement('li');
    empty.className = 'hint';
    empty.textContent = 'Nothing yet: upload a photo above.';
    list.append(empty);
  }
}

// The prefix's policy marks this original's larger outputs (docs/watermarks.md).
function watermarkLabel() {
  const label = document.createElement('span');
  label.className = 'watermark-label';
  label.textContent = 'watermarked';
  return label;
}

function uploadEntry(record) {
  const item = document.createElement('li');
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'upload-entry';
  button.dataset.key = record.key;
  const thumbnail = record.presets && record.presets['160x160-cover-focus'];
  if (thumbnail) {
    const img = document.createElement('img');
    img.alt = '';
    img.width = 64;
    img.height = 64;
    img.addEventListener('load', () => img.classList.add('loaded'));
    img.addEventListener('error', () => img.classList.add('failed'));
    refetchIfReplaced('list', record.key, record.etag, [thumbnail]).finally(() => {
      img.src = thumbnail;
    });
    button.append(img);
  } else {
    const placeholder = document.createElement('span');
    placeholder.className = 'placeholder';
    placeholder.textContent = record.state === 'rejected' ? '✕' : '…';
    placeholder.setAttribute('aria-hidden', 'true');
    button.append(placeholder);
  }
  const text = document.createElement('span');
  text.className = 'entry-text';
  const name = document.createElement('span');
  name.className = 'entry-name';
  name.textContent = fileName(record.key);
  const detail = document.createElement('span');
  detail.className = 'hint';
  const facts = record.state === 'rejected' ? `can’t be used: ${rejectionWords(record.error_code)}` : `${record.width}×${record.height} ${record.format}`;
  detail.textContent = `${facts}, ${formatBytes(record.bytes)}, ${humanDate(record.created_at)}`;
  text.append(name, detail);
  if (record.watermarked) text.append(watermarkLabel());
  button.append(text);
  button.addEventListener('click', () => {
    location.hash = `key=${encodeURIComponent(record.key)}`;
  });
  item.append(button);
  return item;
}

function keyFromHash() {
  const match = /^#key=(.+)$/.exec(location.hash);
  return match ? decodeURIComponent(match[1]) : null;
}

// --- a photo's own tools: any size's address and HTML, replace, delete ---------------

// "2026-12-01T12:00:05" (or EXIF's "2024:05:06 07:08:09") as this reader writes dates.
function humanDate(text) {
  if (!text) return '';
  const iso = /^\d{4}:\d\d:\d\d /.test(text) ? text.replace(/^(\d{4}):(\d\d):(\d\d) /, '$1-$2-$3T') : text;
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return text;
  return new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' }).format(date);
}

const tools = { key: null, meta: null };

function hideTools() {
  tools.key = null;
  $('use').hidden = true;
  $('manage').hidden = true;
  show($('manage-error'), '');
  $('manage-status').textContent = '';
}

function showTools(key, meta) {
  tools.key = key;
  tools.meta = meta;
  $('use').hidden = false;
  // Only the owner's view names the uploader's file size: the owner may replace and delete.
  $('manage').hidden = meta.bytes === undefined;
  pickSize();
}

function clampPixels(value) {
  const number = Math.round(Number(value));
  return Number.isFinite(number) && number >= 1 ? Math.min(number, 4000) : null;
}

// The size token the picker describes, and the box the result will have.
function pickedSize() {
  const width = clampPixels($('pick-width').value) || 480;
  const fit = $('pick-fit').value;
  const height = clampPixels($('pick-height').value) || (fit ? width : null);
  const format = $('pick-format').value;
  const own = (tools.meta.format || '').toLowerCase();
  const extension = format === own ? '' : `.${format}`;
  const token = `${width}x${height || ''}${fit ? `-${fit}` : ''}${extension}`;
  return { token, box: boxOf(width, height, fit, tools.meta) };
}

// The known size of a variant, so its box is reserved before it loads.
function boxOf(width, height, fit, meta) {
  if (fit || !meta.width) return [width, height || width];
  const scale = Math.min(1, width / meta.width, height ? height / meta.height : 1);
  return [Math.max(1, Math.round(meta.width * scale)), Math.max(1, Math.round(meta.height * scale))];
}

function snippet(key, token, box) {
  const double = token.replace(/(\.[a-z]+)?$/, '@2x$1'); // twice the pixels, for sharp screens
  return `<img src="${variantUrl(key, token)}"\n     srcset="${variantUrl(key, token)} 1x, ${variantUrl(key, double)} 2x"\n     width="${box[0]}" height="${box[1]}" alt="Describe the photo here">`;
}

function pickSize() {
  const { token, box } = pickedSize();
  const url = variantUrl(tools.key, token);
  $('pick-url').value = url;
  $('pick-snippet').value = snippet(tools.key, token, box);
  $('copy-status').textContent = '';
  const preview = $('pick-preview');
  preview.width = box[0];
  preview.height = box[1];
  // The old picture stays until the new one decodes: the box follows the new size at once.
  preview.style.aspectRatio = `${box[0]} / ${box[1]}`;
  preview.alt = `${fileName(tools.key)} at ${box[0]}×${box[1]}`;
  preview.dataset.token = token;
  preview.dataset.result = 'loading';
  $('pick-status').textContent = 'Making this size…';
  preview.onload = () => {
    preview.dataset.result = 'loaded';
    $('pick-status').textContent = `Shown at ${preview.naturalWidth}×${preview.naturalHeight} pixels.`;
  };
  preview.onerror = () => {
    preview.dataset.result = 'error';
    $('pick-status').textContent = 'This size could not be made: open its address to see why.';
  };
  preview.src = url;
}

async function copyUrl() {
  const field = $('pick-url');
  try {
    await navigator.clipboard.writeText(field.value);
  } catch (err) {
    field.select();
    document.execCommand('copy');
  }
  $('copy-status').textContent = 'Address copied.';
}

async function replacePhoto(file) {
  const key = tools.key;
  show($('manage-error'), '');
  if (!file.type) {
    show($('manage-error'), `The browser can’t tell what kind of file “${file.name}” is.`);
    return;
  }
  const before = tools.meta.etag;
  try {
    $('manage-status').textContent = `Replacing with “${file.name}”…`;
    const form = await api('POST', '/uploads', { replace: key, content_type: file.type, size: file.size });
    await postForm(form, file, () => {});
    $('manage-status').textContent = 'Replaced: making its sizes again…';
    const deadline = Date.now() + META_WAIT_MS;
    for (;;) {
      const owned = await fetchOwned(key);
      if ((owned && owned.etag !== before && owned.state !== 'processing') || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, META_POLL_MS));
    }
    await showItem(key);
    $('manage-status').textContent = `Replaced with “${file.name}”.`;
    await loadUploads(true);
  } catch (err) {
    $('manage-status').textContent = '';
    show($('manage-error'), `Can’t replace it: ${err.message}`);
  }
}

async function deletePhoto() {
  const key = tools.key;
  const name = fileName(key);
  if (!window.confirm(`Delete “${name}” and every size of it? Pages that show it will show nothing. This can’t be undone.`)) return;
  show($('manage-error'), '');
  try {
    await api('DELETE', `/uploads/${keyPath(key)}`);
    hideTools();
    $('gallery').replaceChildren();
    $('item-facts').replaceChildren();
    setItemState('deleted', `Deleted: “${name}” and every size of it are gone.`);
    $('item-state').focus();
    // The list is read again once the pipeline has recorded it; until then, drop its entry.
    for (const entry of $('upload-list').querySelectorAll('button[data-key]')) {
      if (entry.dataset.key === key) entry.closest('li').remove();
    }
  } catch (err) {
    show($('manage-error'), `Can’t delete it: ${err.message}`);
  }
}

function setUpTools() {
  $('size-picker').addEventListener('submit', (event) => {
    event.preventDefault();
    pickSize();
  });
  $('copy-url').addEventListener('click', copyUrl);
  $('delete-photo').addEventListener('click', deletePhoto);
  const input = $('replace-file');
  input.addEventListener('change', () => {
    if (input.files.length) replacePhoto(input.files[0]);
    input.value = '';
  });
  $('item-state').tabIndex = -1;
}

// --- start -------------------------------------------------------------------------

async function start() {
  try {
    const response = await fetch('config.json', { cache: 'no-cache' });
    if (!response.ok) throw new Error(`config.json answered ${response.status}`);
    state.config = await response.json();
  } catch (err) {
    show($('page-error'), `This page is not set up: ${err.message}. Publish it with scripts/ops/publish_page.py or make run.`);
    $('sign-in').hidden = true;
    return;
  }
  setUpSignIn();
  setUpUpload();
  setUpTools();
  $('more-uploads').addEventListener('click', () => loadUploads(false).catch((err) => show($('uploads-error'), err.message)));
  window.addEventListener('hashchange', () => {
    const key = keyFromHash();
    if (key && key !== state.shownKey) showItem(key);
  });
  // signin.js: a provider's ID token (after its redirect, or this tab's), else the dev token.
  const saved = (await providerSignIn(state.config)) || sessionStorage.getItem(TOKEN_STORAGE);
  if (saved) await signIn(saved);
  // Shown once complete (and only when needed), so nothing on screen moves as it fills in.
  if (!state.token) $('sign-in').hidden = false;
  const key = keyFromHash();
  if (key) await showItem(key);
  document.body.dataset.ready = 'true';
}

start();
