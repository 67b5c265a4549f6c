/** The mpgate command line, run as a real process: check, schema, help, the one-liner, the demo, SIGTERM. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import WebSocket from 'ws';
import { curl, runCli, spawnCli, startBackend, startedPort, waitFor, ROOT, type Backend } from '../helpers.js';

describe('mpgate CLI', () => {
  let dir: string;
  let backend: Backend;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mpgate-cli-'));
    backend = await startBackend();
  });
  after(async () => {
    await backend.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('check: exit 0 and a summary for a valid file', async () => {
    const r = await runCli(['check', '--config', join(ROOT, 'examples/mpgate.yaml')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ok \(3 sites, 4 routes/);
  });

  it('check: exit 1 with file:line:col, key and a suggestion for every problem', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'listen: ["127.0.0.1:8080"]\nsites:\n  - hosts: [a.test]\n    upstrem: http://127.0.0.1:1\n  - hosts: [b.test]\n    upstream: ftp://nope\n');
    const r = await runCli(['check', file]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:4:5 sites\\[0\\]\\.upstrem: unknown key "upstrem" \\(did you mean "upstream"\\?\\)`));
    assert.match(r.stderr, /:6:15 sites\[1\]\.upstream: expected an upstream URL/);
    assert.match(r.stderr, /problems in/);
  });

  it('check: a missing file is a clear error, not a stack trace', async () => {
    const r = await runCli(['check', join(dir, 'nope.yaml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /cannot read the file \(ENOENT\)/);
    assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  });

  it('--help works for every command; unknown commands and flags exit 2', async () => {
    for (const cmd of [[], ['serve'], ['check'], ['schema']]) {
      const r = await runCli([...cmd, '--help']);
      assert.equal(r.code, 0, `mpgate ${cmd.join(' ')} --help`);
      assert.match(r.stdout, /Usage: mpgate/);
    }
    assert.equal((await runCli(['frobnicate'])).code, 2);
    const bad = await runCli(['serve', '--no-such-flag']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no-such-flag/);
  });

  it('schema prints the JSON Schema generated from the config schema', async () => {
    const r = await runCli(['schema']);
    assert.equal(r.code, 0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown> };
    for (const key of ['listen', 'sites', 'limits', 'upstream', 'trustedProxies']) assert.ok(key in schema.properties, key);
  });

  it('serve --route: the no-file one-liner proxies by Host and 404s the rest', async () => {
    const child = spawnCli(['serve', '--listen', '127.0.0.1:0', '--route', `a.test=${backend.url}`, '--access-log', 'off']);
    try {
      const port = await startedPort(child);
      const ok = await curl(['-H', 'Host: a.test', `http://127.0.0.1:${port}/one-liner`]);
      assert.equal(ok.status, 200);
      assert.equal(JSON.parse(ok.body).url, '/one-liner');
      const no = await curl(['-H', 'Host: b.test', `http://127.0.0.1:${port}/`]);
      assert.equal(no.status, 404);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  it('serve --route with a bad spec fails with a hint', async () => {
    const r = await runCli(['serve', '--route', 'a.test']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /expected HOST=URL/);
  });

  it('serve with no config runs the demo and prints what to try', async () => {
    const child = spawnCli(['serve', '--listen', '127.0.0.1:0']);
    try {
      const port = await startedPort(child);
      await waitFor(() => child.out().includes('mpgate demo is running'), 5000, 'the banner');
      assert.match(child.out(), new RegExp(`curl http://127\\.0\\.0\\.1:${port}/hello`));
      const r = await curl([`http://127.0.0.1:${port}/hello`]);
      assert.equal(r.status, 200);
      const echo = JSON.parse(r.body);
      assert.equal(echo.service, 'mpgate demo backend');
      assert.equal(echo.realIp, '127.0.0.1');
      const ws = new WebSocket(`ws://127.0.0.1:${port}/echo`);
      await once(ws, 'open');
      ws.send('ping');
      const [msg] = (await once(ws, 'message')) as [Buffer];
      assert.equal(msg.toString(), 'ping');
      ws.close();
      // The access log (stdout) recorded the request.
      await waitFor(() => child.out().includes('"path":"/hello"'), 3000, 'the access log line');
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  it('an address in use is a one-line error with a hint', async () => {
    const child = spawnCli(['serve', '--listen', '127.0.0.1:0', '--route', `a.test=${backend.url}`]);
    try {
      const port = await startedPort(child);
      const r = await runCli(['serve', '--listen', `127.0.0.1:${port}`, '--route', `a.test=${backend.url}`]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /EADDRINUSE.*pick another with --listen/);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'close');
    }
  });

  it('SIGTERM: stops accepting, lets the request in flight finish, exits 0', async () => {
    const slow = await startBackend((req, res) => {
      setTimeout(() => res.end('finished'), 700);
    });
    const file = join(dir, 'grace.yaml');
    await writeFile(file, `listen: ["127.0.0.1:0"]\nshutdownGrace: 5s\naccessLog: false\nsites:\n  - hosts: [a.test]\n    upstream: ${slow.url}\n`);
    const child = spawnCli(['serve', '--config', file]);
    try {
      const port = await startedPort(child);
      const inFlight = request(`http://127.0.0.1:${port}/`, { headers: { host: 'a.test' } });
      await waitFor(() => slow.seen.length === 1, 3000, 'the request to reach the backend');
      child.kill('SIGTERM');
      const r = await inFlight;
      assert.equal(r.statusCode, 200);
      assert.equal(await r.body.text(), 'finished');
      const [code] = (await once(child, 'close')) as [number];
      assert.equal(code, 0);
      assert.match(child.err(), /"shutting down"/);
      await assert.rejects(request(`http://127.0.0.1:${port}/`, { headers: { host: 'a.test' } }), /ECONNREFUSED/);
    } finally {
      child.kill('SIGKILL');
      await slow.close();
    }
  });
});
