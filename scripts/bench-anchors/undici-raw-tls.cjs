'use strict';
// Bench anchor "undici-raw-tls": the shared harness's fastest plain Node proxy
// (../shared/bench/anchors/undici-raw.js, unchanged) served over node's TLS with ALPN h2 +
// http/1.1, to show what any Node proxy pays for TLS on this machine next to mpgate.
// It loads the anchor file with http.createServer swapped for http2.createSecureServer
// ({allowHTTP1}); HTTP/2 heads get the least mapping the anchor needs (no pseudo-header
// fields, Host from :authority). Env: as the anchor, plus TLS_CERT, TLS_KEY and ANCHOR (its path).
const fs = require('node:fs');
const http = require('node:http');
const http2 = require('node:http2');

const tls = { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) };

http.createServer = (handler) => http2.createSecureServer({ ...tls, allowHTTP1: true }, (req, res) => {
  if (req.httpVersionMajor === 2) {
    const headers = {};
    for (const [name, value] of Object.entries(req.headers)) if (name[0] !== ':') headers[name] = value;
    headers.host = req.headers[':authority'];
    Object.defineProperty(req, 'headers', { value: headers });
  }
  handler(req, res);
});

require(process.env.ANCHOR);
