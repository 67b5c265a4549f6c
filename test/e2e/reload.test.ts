/**
 * Hot reload while traffic runs: the real CLI process, its file watcher and SIGHUP, with routes
 * flipped between two backends under concurrent load (GET and POST). Counts failures: must be 0.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { spawnCli, startBackend, startedPort, waitFor, type Backend } from '../helpers.js';

function configFor(upstream: string, extra = ''): string {
  return `listen: ["127.0.0.1:0"]\naccessLog: false\nshutdownGrace: 5s\nsites:\n  - name: app\n    hosts: [x.test]\n    upstream: ${upstream}\n${extra}`;
}

describe('hot reload under load (CLI process, file watcher and SIGHUP)', () => {
  let a: Backend;
  let b: Backend;
  let dir: string;
  let file: string;
  let child: ReturnType<typeof spawnCli>;
  let port: number;

  before(async () => {
    const slow = (name: string) => async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
      let n = 0;
      for await (const c of req) n += (c as Buffer).length;
      if (req.url === '/slow') await new Promise((r) => setTimeout(r, 800));
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`${name} ${n}`);
    };
    a = await startBackend(slow('A'));
    b = await startBackend(slow('B'));
    dir = await mkdtemp(join(tmpdir(), 'mpgate-reload-'));
    file = join(dir, 'mpgate.yaml');
    await writeFile(file, configFor(a.url));
    child = spawnCli(['serve', '--config', file]);
    port = await startedPort(child);
  });

  after(async () => {
    child.kill('SIGTERM');
    await once(child, 'close');
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('swaps routes atomically with 0 failed requests, rejects a bad file and keeps the old routes', async () => {
    const agent = new Agent({ connections: 16 });
    const seen = { A: 0, B: 0 };
    let failures = 0;
    let requests = 0;
    /** What the failures were, by kind (status and error code, or the client's error). */
    const why = new Map<string, number>();
    const failed = (kind: string) => {
      failures++;
      why.set(kind, (why.get(kind) ?? 0) + 1);
    };
    let stop = false;
    const worker = async (i: number) => {
      const post = i % 2 === 0;
      while (!stop) {
        try {
          const r = await request(`http://127.0.0.1:${port}/x`, {
            dispatcher: agent, method: post ? 'POST' : 'GET', headers: { host: 'x.test' },
            body: post ? Buffer.alloc(64 * 1024, 1) : undefined,
          });
          const text = await r.body.text();
          requests++;
          if (r.statusCode !== 200) failed(`${post ? 'POST' : 'GET'} ${r.statusCode} ${String(r.headers['x-mpgate-error'] ?? '')}`);
          else {
            seen[text[0] as 'A' | 'B']++;
            if (post && !text.endsWith(' 65536')) failed(`POST body cut: ${text.slice(0, 40)}`);
          }
        } catch (err) {
          failed(`${post ? 'POST' : 'GET'} threw ${(err as { code?: string }).code ?? (err as Error).message}`);
        }
      }
    };
    const workers = Array.from({ length: 12 }, (_, i) => worker(i));

    // A slow request that starts on A must finish on A, whatever happens to the routes meanwhile.
    const slowRequest = request(`http://127.0.0.1:${port}/slow`, { headers: { host: 'x.test' } }).then((r) => r.body.text());

    // Whatever fails below, the workers must stop (or they keep the test process busy forever).
    try {
      for (let round = 0; round < 8; round++) {
        await new Promise((r) => setTimeout(r, 250));
        const target = round % 2 === 0 ? b.url : a.url;
        if (round === 3) {
          // An invalid file (unknown key) must be refused with the old routes kept.
          await writeFile(file, configFor(a.url, '    bogusKey: 1\n'));
          await waitFor(() => child.err().includes('config rejected'), 15_000, 'the bad file to be rejected');
          continue;
        }
        if (round % 3 === 0) {
          // Atomic replace (how editors and config tools save).
          await writeFile(`${file}.tmp`, configFor(target));
          await rename(`${file}.tmp`, file);
        } else {
          await writeFile(file, configFor(target));
        }
        if (round === 5) child.kill('SIGHUP');
      }
      // Final state: everything to B.
      await writeFile(file, configFor(b.url));
      await waitFor(async () => {
        const r = await request(`http://127.0.0.1:${port}/x`, { headers: { host: 'x.test' } });
        return (await r.body.text()).startsWith('B');
      }, 15_000, 'the last reload');
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      stop = true;
      await Promise.all(workers);
      await agent.close();
    }

    assert.equal(await slowRequest, 'A 0', 'a request in flight during reloads finishes on the routes it started with');
    assert.ok(requests > 200, `enough load ran (${requests} requests)`);
    assert.equal(failures, 0, `0 failed requests out of ${requests}: ${JSON.stringify(Object.fromEntries(why))}`);
    assert.ok(seen.A > 0 && seen.B > 0, `both backends served (A ${seen.A}, B ${seen.B})`);
    const reloads = child.err().split('\n').filter((l) => l.includes('"config reloaded"')).length;
    assert.ok(reloads >= 5, `reloaded several times (${reloads})`);
  });

  it('an emptied file (a save caught between truncate and write) keeps the running routes; the finished save applies', async () => {
    const get = async () => (await (await request(`http://127.0.0.1:${port}/x`, { headers: { host: 'x.test' } })).body.text()).slice(0, 1);
    assert.equal(await get(), 'B');
    await writeFile(file, '');
    await waitFor(() => child.err().includes('config file is empty'), 5000, 'the empty file to be noticed');
    assert.equal(await get(), 'B', 'still routed: an empty file is not a config without sites');
    child.kill('SIGHUP');
    await waitFor(() => child.err().split('config file is empty').length > 2, 5000, 'SIGHUP on the empty file refused too');
    assert.equal(await get(), 'B');
    await writeFile(file, configFor(a.url));
    await waitFor(async () => (await get()) === 'A', 5000, 'the finished save');
    assert.match(child.err(), /bogusKey/, 'the rejection names the bad key');
  });
});
