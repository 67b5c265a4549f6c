/**
 * Test helpers: real servers on 127.0.0.1 port 0, real clients. Nothing here fakes a socket.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import http, { type IncomingMessage, type RequestListener, type Server } from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { configFromObject } from '../src/config/load.js';
import type { ConfigInput } from '../src/config/schema.js';
import type { AccessEntry } from '../src/server/access-log.js';
import { Gateway } from '../src/server/gateway.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface Backend {
  server: Server;
  port: number;
  url: string;
  /** Every request head the backend received, in order. */
  seen: IncomingMessage[];
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1:0. The default handler echoes the request as JSON. */
export async function startBackend(handler?: RequestListener, name = 'backend'): Promise<Backend> {
  const seen: IncomingMessage[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req);
    if (handler) return handler(req, res);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ name, method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, bodyLength: body.length, body: body.length < 4096 ? body.toString('latin1') : '' }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    server, port, url: `http://127.0.0.1:${port}`, seen,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

export interface TestGateway {
  gateway: Gateway;
  port: number;
  url: string;
  access: AccessEntry[];
  close(graceMs?: number): Promise<void>;
}

/** Starts a Gateway in-process on 127.0.0.1:0 with the given config (listen is overridden). */
export async function startGateway(config: ConfigInput): Promise<TestGateway> {
  const access: AccessEntry[] = [];
  const cfg = configFromObject({ ...config, listen: ['127.0.0.1:0'] }, 'test');
  const gateway = await Gateway.start(cfg, { log: pino({ level: 'silent' }), access: (e) => access.push(e) });
  const port = gateway.addresses()[0]!.port;
  return { gateway, port, url: `http://127.0.0.1:${port}`, access, close: (g = 2000) => gateway.close(g) };
}

export interface RawResponse {
  status: number;
  head: string;
  headers: Record<string, string>;
  body: string;
  raw: string;
}

/**
 * Sends raw bytes and collects everything until the server closes or `waitMs` passes.
 * For probes no HTTP client would send (ambiguous framing, duplicate Host, ...).
 */
export async function rawRequest(port: number, data: string | Buffer, waitMs = 1500): Promise<RawResponse> {
  const socket = net.connect(port, '127.0.0.1');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(data);
  await Promise.race([once(socket, 'close'), new Promise((r) => setTimeout(r, waitMs))]);
  socket.destroy();
  return parseRaw(Buffer.concat(chunks).toString('latin1'));
}

export function parseRaw(raw: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  const head = end === -1 ? raw : raw.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const c = l.indexOf(':');
    if (c > 0) headers[l.slice(0, c).toLowerCase()] = l.slice(c + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), head, headers, body: end === -1 ? '' : raw.slice(end + 4), raw };
}

const execFileP = promisify(execFile);

/** Runs curl (a real client) and returns status, headers and body. Fails loudly when curl is missing. */
export async function curl(args: string[]): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  let out;
  try {
    out = await execFileP('curl', ['-sS', '-i', '--max-time', '20', ...args], { encoding: 'latin1', maxBuffer: 256 * 1024 * 1024 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string };
    if (e.code === 'ENOENT') throw new Error('curl is not installed: run `apt-get install -y curl` (scripts/install-test-deps.sh does it)');
    if (e.stdout) out = { stdout: e.stdout };
    else throw err;
  }
  // Skip interim responses (100 Continue).
  let text = out.stdout;
  while (/^HTTP\/[\d.]+ 1\d\d/.test(text)) text = text.slice(text.indexOf('\r\n\r\n') + 4);
  const r = parseRaw(text);
  return { status: r.status, headers: r.headers, body: r.body };
}

/** Spawns the mpgate CLI (the built one) and collects its output. */
export function spawnCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess & { out: () => string; err: () => string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return Object.assign(child, { out: () => out, err: () => err });
}

/** Runs the CLI to completion. */
export async function runCli(args: string[], opts: { cwd?: string } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawnCli(args, opts);
  const [code] = (await once(child, 'close')) as [number];
  return { code, stdout: child.out(), stderr: child.err() };
}

/** Waits until `check` returns a truthy value (polling), or throws after `timeoutMs`. */
export async function waitFor<T>(check: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A port on 127.0.0.1 where nothing listens (bound, then closed). */
export async function closedPort(): Promise<number> {
  // Below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default): a port from
  // listen(0) is free now, but any outgoing connection of a test running alongside may take it as
  // its source port before the gateway binds it. Ports under that range are only ever handed out
  // on request, so the one picked here stays free.
  for (let attempt = 0; ; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    const s = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((r) => s.close(r));
      return port;
    }
    if (attempt > 50) throw new Error('closedPort: no free port found between 20000 and 32000');
  }
}

/** Port of the first listener, from the CLI's "mpgate started" log line (stderr, JSON). */
export function startedPort(child: ReturnType<typeof spawnCli>): Promise<number> {
  return waitFor(() => {
    // A gateway that exited (port taken, bad config) fails the wait at once, with its reason.
    if (child.exitCode !== null) throw new Error(`mpgate exited with ${child.exitCode} before it started:\n${child.err()}`);
    for (const line of child.err().split('\n')) {
      if (line.includes('"mpgate started"')) return Number((JSON.parse(line) as { listen: string[] }).listen[0]!.split(':').pop());
    }
    return 0;
  }, 10_000, 'the gateway to start');
}
