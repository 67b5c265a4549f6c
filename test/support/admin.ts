/** The admin side of `mpgate serve` as its tests drive it: tokens made by the CLI, the admin URL. */
import assert from 'node:assert/strict';
import { runCli, spawnCli, startedPort, waitFor } from '../helpers.js';

/** `mpgate admin token add NAME ...` on `file`; returns the token, which the CLI prints once. */
export async function tokenAdd(file: string, name: string, args: readonly string[] = []): Promise<string> {
  const r = await runCli(['admin', 'token', 'add', name, ...args, '--config', file]);
  assert.equal(r.code, 0, r.stderr);
  const token = /\bmpg_[A-Za-z0-9_-]{43}\b/.exec(r.stdout)?.[0];
  assert.ok(token, `no token in: ${r.stdout}`);
  return token;
}

/** `mpgate serve --config FILE [args]` with an admin section, once both listeners are up. */
export async function serveWithAdmin(file: string, args: readonly string[] = []): Promise<{ child: ReturnType<typeof spawnCli>; port: number; admin: string }> {
  const child = spawnCli(['serve', '--config', file, ...args]);
  const port = await startedPort(child);
  return { child, port, admin: await adminUrlOf(child) };
}

/** The admin URL from a running `mpgate serve`'s "admin API listening" log line. */
export function adminUrlOf(child: ReturnType<typeof spawnCli>): Promise<string> {
  return waitFor(() => {
    for (const line of child.err().split('\n')) {
      if (line.includes('"admin API listening"')) return (JSON.parse(line) as { admin: string }).admin;
    }
    return '';
  }, 10_000, `the admin API to start (stderr: ${child.err().slice(-500)})`);
}
