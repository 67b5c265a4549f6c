'use strict';
// "node-floor": the least a node:http reverse proxy can do per request, to show where the floor
// is on a machine. node:http server + a bare keep-alive HTTP/1.1 client on net sockets: no
// routing table, no header checks, Content-Length responses only, no timeouts, no errors handled.
// Not a product, not safe: a measuring stick for mpgate's own client (src/proxy/h1-client.ts).
// Run it next to mpgate with the shared harness:
//   bash ../shared/bench/proxy-bench.sh --only undici-raw --candidate node-floor 'exec node scripts/bench-anchors/node-floor.cjs' ...
const http = require('node:http');
const net = require('node:net');

const PORT = Number(process.env.PORT || 19080);
const HOST = (process.env.HOST || 'a.test').toLowerCase();
const U = new URL(process.env.UPSTREAM || 'http://127.0.0.1:19001');
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

const idle = [];
const CRLF2 = Buffer.from('\r\n\r\n');

class Conn {
  constructor() {
    this.sock = net.connect({ host: U.hostname, port: Number(U.port), noDelay: true });
    this.h = null; this.buf = null; this.state = 0; this.remaining = 0;
    this.sock.on('data', (d) => this.onData(d));
    this.sock.on('error', () => {});
    this.sock.on('close', () => { const i = idle.indexOf(this); if (i >= 0) idle.splice(i, 1); if (this.h) this.h.error(); });
  }
  send(head, h) { this.h = h; this.state = 0; this.sock.write(head, 'latin1'); }
  onData(d) {
    if (this.state === 0) {
      if (this.buf) { d = Buffer.concat([this.buf, d]); this.buf = null; }
      const end = d.indexOf(CRLF2);
      if (end === -1) { this.buf = d; return; }
      const text = d.latin1Slice(0, end);
      const lines = text.split('\r\n');
      const status = Number(lines[0].slice(9, 12));
      const headers = [];
      let cl = -1;
      for (let i = 1; i < lines.length; i++) {
        const l = lines[i]; const c = l.indexOf(':');
        const name = l.slice(0, c); const value = l.slice(c + 1).trim();
        const lower = name.toLowerCase();
        if (lower === 'content-length') cl = Number(value);
        if (HOP.has(lower)) continue;
        headers.push(name, value);
      }
      this.remaining = cl;
      this.h.head(status, headers);
      this.state = 1;
      d = d.subarray(end + 4);
      if (d.length === 0 && cl !== 0) return;
    }
    if (d.length >= this.remaining) {
      const h = this.h; this.h = null;
      idle.push(this);
      h.end(d.length ? d : null);
    } else {
      this.remaining -= d.length;
      this.h.data(d);
    }
  }
}

function get() { return idle.pop() || new Conn(); }

http.createServer((req, res) => {
  const hv = req.headers.host || '';
  const c = hv.indexOf(':');
  if ((c === -1 ? hv : hv.slice(0, c)).toLowerCase() !== HOST) { res.writeHead(404); res.end('no route\n'); return; }
  const raw = req.rawHeaders;
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    if (HOP.has(raw[i].toLowerCase())) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  const ip = req.socket.remoteAddress;
  head += `X-Real-IP: ${ip}\r\nX-Forwarded-For: ${ip}\r\nX-Forwarded-Proto: http\r\n`;
  const hasBody = req.headers['content-length'] !== undefined;
  const conn = get();
  head += '\r\n';
  conn.send(head, {
    head(status, headers) { res.writeHead(status, headers); },
    data(chunk) { if (!res.write(chunk)) { conn.sock.pause(); res.once('drain', () => conn.sock.resume()); } },
    end(chunk) { res.end(chunk); },
    error() { if (!res.headersSent) res.writeHead(502); res.end(); },
  });
  if (hasBody) {
    req.on('data', (d) => { if (!conn.sock.write(d)) { req.pause(); conn.sock.once('drain', () => req.resume()); } });
  }
}).listen(PORT, '127.0.0.1');
