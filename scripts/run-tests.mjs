// npm test: runs every compiled test file with node's own test runner (node:test), after checking
// that the system tools the tests drive are installed (installing them with apt when root).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
execFileSync('bash', [join(root, 'scripts/install-test-deps.sh')], { stdio: 'inherit' });

function find(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? find(p) : p.endsWith('.test.js') ? [p] : [];
  });
}
const only = process.argv.slice(2);

// The mini-program sample is typed against WeChat's own typings (miniprogram-api-typings), which
// live in miniprogram/'s own package.json: install them once and typecheck the whole sample.
if (only.length === 0) {
  const mp = join(root, 'miniprogram');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  if (!existsSync(join(mp, 'node_modules/miniprogram-api-typings'))) {
    execFileSync(npm, ['ci', '--prefix', mp, '--no-audit', '--no-fund', '--loglevel=error'], { stdio: 'inherit' });
  }
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(mp, 'tsconfig.json')], { stdio: 'inherit' });
  console.log('miniprogram: typecheck ok');
}
const files = find(join(root, 'dist/test')).filter((f) => only.length === 0 || only.some((o) => f.includes(o))).sort();
if (files.length === 0) {
  console.error('run-tests: no compiled test files found under dist/test (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=2', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
