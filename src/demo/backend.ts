/**
 * The demo upstream `npm start` runs when no config is given: an echo service that shows what a
 * backend behind mpgate receives (Host kept, X-Real-IP, X-Forwarded-*), plus a WebSocket echo, and
 * the page at `GET /ocr` for trying the OCR service in a browser (it posts to `/wxocr` on the same
 * origin, which the gateway answers itself).
 */
import http from 'node:http';
import { WebSocketServer } from 'ws';
import { OCR_PAGE_CSP, OCR_PAGE_HTML } from './ocr-page.js';

const OCR_PAGE = Buffer.from(OCR_PAGE_HTML);

export interface DemoBackend {
  port: number;
  close(): Promise<void>;
}

export async function startDemoBackend(): Promise<DemoBackend> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if ((path === '/ocr' || path === '/ocr/') && (req.method === 'GET' || req.method === 'HEAD')) {
      req.resume();
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'content-length': OCR_PAGE.length,
        'content-security-policy': OCR_PAGE_CSP,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'cache-control': 'no-cache',
      });
      res.end(req.method === 'HEAD' ? undefined : OCR_PAGE);
      return;
    }
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      const body = JSON.stringify({
        service: 'mpgate demo backend',
        method: req.method,
        url: req.url,
        host: req.headers.host,
        realIp: req.headers['x-real-ip'],
        forwardedFor: req.headers['x-forwarded-for'],
        forwardedProto: req.headers['x-forwarded-proto'],
        bodyBytes: size,
      }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.end(`${body}\n`);
    });
  });
  const wss = new WebSocketServer({ server, path: '/echo' });
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close: () => (closing ??= new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate();
      wss.close();
      server.closeAllConnections();
      server.close(() => r());
    })),
  };
}
