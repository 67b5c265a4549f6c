/**
 * Extra real-socket tools for the e2e tests (no mocks): a raw client connection that can be driven
 * byte by byte and watched for close, a raw TCP upstream that answers by hand, a TCP listener that
 * never accepts (for connect timeouts), a byte counter on a backend, and a counter of undici's
 * upstream connection attempts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import net from 'node:net';
import type { Server } from 'node:http';
import { parseRaw, type RawResponse } from '../helpers.js';

export interface ParsedResponse extends RawResponse {
  /** Interim (1xx) status codes seen before the final response. */
  interim: number[];
}

/** A raw client connection to 127.0.0.1:port: write bytes, read responses, watch the close. */
export class RawConn {
  readonly socket: net.Socket;
  #data = Buffer.alloc(0);
  #closed = false;
  #closedAt = 0;
  /** Bytes consumed by earlier `response()` calls. */
  #offset = 0;
  readonly openedAt = performance.now();

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (c: Buffer) => (this.#data = Buffer.concat([this.#data, c])));
    socket.on('error', () => {});
    socket.on('close', () => {
      this.#closed = true;
      this.#closedAt = performance.now();
    });
  }

  static async open(port: number): Promise<RawConn> {
    const socket = net.connect(port, '127.0.0.1');
    const c = new RawConn(socket);
    await once(socket, 'connect');
    return c;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Milliseconds from `from` (performance.now()) to the close. */
  closedAfter(from = this.openedAt): number {
    return this.#closedAt - from;
  }

  /** Everything received so far. */
  get text(): string {
    return this.#data.toString('latin1');
  }

  write(data: string | Buffer): boolean {
    return this.socket.write(data);
  }

  /** Waits for the server to close the connection; throws after `timeoutMs`. */
  async waitClosed(timeoutMs = 3000): Promise<void> {
    await until(() => this.#closed, timeoutMs, 'the server to close the connection');
  }

  /**
   * The next complete response (Content-Length or chunked framing, or up to the close), with any
   * 1xx interim responses before it listed in `interim`.
   */
  async response(timeoutMs = 3000): Promise<ParsedResponse> {
    const interim: number[] = [];
    for (;;) {
      const r = await until(() => this.#tryParse(), timeoutMs, 'a complete response');
      if (r.status >= 200) return { ...r, interim };
      interim.push(r.status);
    }
  }

  /** Interim or final responses received so far, without waiting. */
  #tryParse(): RawResponse | undefined {
    const text = this.#data.subarray(this.#offset).toString('latin1');
    const end = text.indexOf('\r\n\r\n');
    if (end === -1) return this.#closed && text.length > 0 ? this.#take(text, text.length) : undefined;
    const head = parseRaw(text.slice(0, end + 4));
    if (head.status < 200) return this.#take(text, end + 4);
    const cl = head.headers['content-length'];
    if (cl !== undefined) {
      const total = end + 4 + Number(cl);
      return text.length >= total ? this.#take(text, total) : this.#closed ? this.#take(text, text.length) : undefined;
    }
    if ((head.headers['transfer-encoding'] ?? '').includes('chunked')) {
      const done = text.indexOf('\r\n0\r\n\r\n', end);
      if (done !== -1) return this.#take(text, done + 7);
      return this.#closed ? this.#take(text, text.length) : undefined;
    }
    return this.#closed ? this.#take(text, text.length) : undefined;
  }

  #take(text: string, n: number): RawResponse {
    this.#offset += n;
    const r = parseRaw(text.slice(0, n));
    if ((r.headers['transfer-encoding'] ?? '').includes('chunked')) r.body = dechunk(r.body);
    return r;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** Decodes a chunked body (as far as it goes; a truncated one decodes to what arrived). */
export function dechunk(body: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const eol = body.indexOf('\r\n', i);
    if (eol === -1) return out;
    const size = parseInt(body.slice(i, eol), 16);
    if (!(size > 0)) return out;
    out += body.slice(eol + 2, eol + 2 + size);
    i = eol + 2 + size + 2;
  }
}

async function until<T>(check: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A TCP listener on 127.0.0.1 that never accepts, with its accept queue filled, so the kernel
 * drops further SYNs and a connect to it hangs until the client gives up (Python: node always
 * accepts). `listen(0)` makes the queue hold a single connection.
 */
export interface RawUpstream {
  port: number;
  url: string;
  /** Each connection's request head (up to the blank line), in order. */
  heads: string[];
  /** Every chunk received, on any connection, with when it arrived (performance.now()). */
  received: { at: number; text: string }[];
  close(): Promise<void>;
}

/**
 * A raw TCP "upstream" for responses no HTTP server would send: once a connection's request head
 * is in, `onHead` gets the socket and does what the test needs (a partial head, a reset, ...).
 */
export async function startRawUpstream(onHead: (socket: net.Socket, head: string) => void): Promise<RawUpstream> {
  const heads: string[] = [];
  const received: RawUpstream['received'] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buf: string | undefined = '';
    socket.on('data', (c: Buffer) => {
      received.push({ at: performance.now(), text: c.toString('latin1') });
      if (buf === undefined) return;
      buf += c.toString('latin1');
      const end = buf.indexOf('\r\n\r\n');
      if (end === -1) return;
      const head = buf.slice(0, end);
      buf = undefined;
      heads.push(head);
      onHead(socket, head);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  return {
    port, url: `http://127.0.0.1:${port}`, heads, received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export interface Blackhole {
  port: number;
  close(): Promise<void>;
}

export async function startBlackhole(): Promise<Blackhole> {
  const script = [
    'import socket, sys',
    's = socket.socket()',
    's.bind(("127.0.0.1", 0))',
    's.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()', // lives until the test closes stdin (or exits)
  ].join('\n');
  const child: ChildProcess = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [line] = (await Promise.race([
    once(child.stdout!, 'data'),
    once(child, 'error').then(([e]) => Promise.reject(new Error(`cannot run python3 (apt-get install -y python3; scripts/install-test-deps.sh does it): ${(e as Error).message}`))),
  ])) as [Buffer];
  const port = Number(line.toString().trim());
  // Fill the accept queue: connect until a connect no longer completes.
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 8; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    fillers.push(s);
    const connected = await Promise.race([
      once(s, 'connect').then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 200)),
    ]);
    if (!connected) break;
    if (i === 7) throw new Error('blackhole: the accept queue never filled; connects to it would not time out');
  }
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      const exited = once(child, 'exit');
      child.stdin!.end();
      child.kill();
      await exited;
    },
  };
}

/** Counts every byte any client sends to `server` at the TCP level (request heads and bodies). */
export function countBytes(server: Server): { readonly bytes: number; reset(): void } {
  let bytes = 0;
  server.on('connection', (s: net.Socket) => s.on('data', (c: Buffer) => (bytes += c.length)));
  return {
    get bytes() {
      return bytes;
    },
    reset() {
      bytes = 0;
    },
  };
}

/** Counts the gateway's upstream connection attempts per port (proxy/h1-client.ts's diagnostics channels). */
export function watchConnects(): { attempts(port: number): number; refused(port: number): number; stop(): void } {
  const attempts = new Map<number, number>();
  const refused = new Map<number, number>();
  const portOf = (m: unknown) => Number((m as { port: number }).port);
  const onBefore = (m: unknown) => attempts.set(portOf(m), (attempts.get(portOf(m)) ?? 0) + 1);
  const onError = (m: unknown) => refused.set(portOf(m), (refused.get(portOf(m)) ?? 0) + 1);
  diagnostics.subscribe('mpgate:upstream:connect', onBefore);
  diagnostics.subscribe('mpgate:upstream:connectError', onError);
  return {
    attempts: (p) => attempts.get(p) ?? 0,
    refused: (p) => refused.get(p) ?? 0,
    stop: () => {
      diagnostics.unsubscribe('mpgate:upstream:connect', onBefore);
      diagnostics.unsubscribe('mpgate:upstream:connectError', onError);
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** waitFor for a lookup: resolves with the first defined value `find` returns. */
export async function waitFound<T>(find: () => T | undefined, timeoutMs = 2000, what = 'value'): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = find();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
