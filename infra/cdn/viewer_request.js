// CloudFront Function (viewer request, cloudfront-js-2.0): `/<size>.auto/<key>` becomes the
// concrete variant's path, picked from the viewer's Accept header before the cache lookup, so
// the cache key is always a concrete, stored variant (no Vary: Accept).  The rule is
// chalicelib/resize/negotiate.py's cdn_format; both run tests/support/accept_cases.json.
//   AVIF: named with q > 0, at least WebP's q, and WebP named too (an animation asked for as
//         AVIF is its animated WebP, through a redirect object the API stores);
//   WebP: named with q > 0 and preferred over AVIF (or AVIF not accepted);
//   else: the URL is left as it is; the origin's miss rule brings it to the API, which
//         knows the original (alpha, animation) and answers 307 to the fallback.
// Wildcards never select AVIF or WebP.  Only the size segment changes: the key, its
// percent-encoding and the query string pass through untouched.

var AUTO_TOKEN = /^([0-9]*x[0-9]*[a-z0-9@-]*)\.auto$/;
// RFC 9110's qvalue; anything else refuses the item.
var QVALUE = /^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$/;

function quality(params) {
  for (var i = 0; i < params.length; i++) {
    var pair = params[i].split('=');
    if (pair[0].trim().toLowerCase() === 'q') {
      var text = (pair[1] || '').trim();
      return QVALUE.test(text) ? parseFloat(text) : 0;
    }
  }
  return 1;
}

function accepted(accept) {
  var found = {};
  var items = (accept || '').split(',');
  for (var i = 0; i < items.length; i++) {
    var parts = items[i].split(';');
    var type = parts[0].trim().toLowerCase();
    if (type === 'image/avif' || type === 'image/webp') {
      var name = type.slice(6);
      found[name] = Math.max(found[name] || 0, quality(parts.slice(1)));
    }
  }
  return found;
}

function cdnFormat(accept) {
  var q = accepted(accept);
  var avif = q.avif || 0;
  var webp = q.webp || 0;
  if (avif > 0 && avif >= webp) {
    return webp > 0 ? 'avif' : null;
  }
  return webp > 0 ? 'webp' : null;
}

function handler(event) {
  var request = event.request;
  var segments = request.uri.split('/');
  // ['', '<size>.auto', '<key>', ...]: a size segment followed by a key.
  if (segments.length < 3 || segments[2] === '') {
    return request;
  }
  var match = AUTO_TOKEN.exec(segments[1]);
  if (match === null) {
    return request;
  }
  var accept = request.headers.accept ? request.headers.accept.value : '';
  var format = cdnFormat(accept);
  if (format !== null) {
    segments[1] = match[1] + '.' + format;
    request.uri = segments.join('/');
  }
  return request;
}
