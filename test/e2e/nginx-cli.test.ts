/** `mpgate nginx import` and `mpgate nginx export`, run as real processes. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { nginxCheck } from '../fixtures/nginx/nginx.js';
import { curl, runCli, ROOT, spawnCli, startBackend, startedPort } from '../helpers.js';
import { issue } from '../support/tls-fixtures.js';

const SEED = join(ROOT, 'test/fixtures/nginx/seed-users.conf');
const REAL = join(ROOT, 'test/fixtures/nginx/real-world.conf');

describe('mpgate nginx (CLI)', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mpgate-nginx-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('import: the seed\'s blocks → YAML on stdout, findings as FILE:LINE directive: message on stderr, exit 0', async () => {
    const r = await runCli(['nginx', 'import', SEED]);
    assert.equal(r.code, 0, r.stderr);
    const cfg = parseConfig(r.stdout, 'stdout');
    assert.deepEqual(cfg.sites.map((s) => [s.hosts, s.upstream]), [[['www.a.com'], 'http://localhost:8000'], [['x.a.com'], 'http://localhost:8001'], [['y.a.com'], 'http://localhost:8002']]);
    assert.deepEqual(r.stderr.trimEnd().split('\n'), [
      `${SEED}:4 server: nginx answers unknown hosts with its first server block (www.a.com); mpgate answers them 404 unless defaultSite is set (add "defaultSite: www.a.com" to keep nginx's behaviour)`,
      `${SEED}: 3 sites imported; 1 finding (above)`,
    ]);
  });

  it('import -o writes a file that "mpgate check" accepts', async () => {
    const out = join(dir, 'seed.yaml');
    const r = await runCli(['nginx', 'import', SEED, '-o', out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /3 sites imported into .*seed\.yaml; 1 finding/);
    const check = await runCli(['check', '--config', out]);
    assert.equal(check.code, 0, check.stderr);
    assert.match(check.stdout, /ok \(3 sites, 3 routes, listening on 0\.0\.0\.0:80\)/);
  });

  it('the seed\'s nginx.conf, imported and served: each user\'s subdomain reaches that user\'s port, Host and client address passed on', async () => {
    // The seed's blocks verbatim, with the users' ports (8000, 8001, 8002) moved to free ones.
    const backends = await Promise.all(['www', 'x', 'y'].map((n) => startBackend(undefined, n)));
    const conf = join(dir, 'seed-live.conf');
    let text = await readFile(SEED, 'utf8');
    backends.forEach((b, i) => (text = text.replace(`localhost:${8000 + i}`, `127.0.0.1:${b.port}`)));
    await writeFile(conf, text);
    const out = join(dir, 'seed-live.yaml');
    assert.equal((await runCli(['nginx', 'import', conf, '-o', out])).code, 0);
    const child = spawnCli(['serve', '--config', out, '--listen', '127.0.0.1:0', '--access-log', 'off']);
    try {
      const port = await startedPort(child);
      for (const [i, host] of ['www.a.com', 'x.a.com', 'y.a.com'].entries()) {
        const r = await curl(['-H', `Host: ${host}`, `http://127.0.0.1:${port}/api/items?q=1`]);
        assert.equal(r.status, 200, host);
        const echo = JSON.parse(r.body) as { name: string; url: string; headers: Record<string, string> };
        assert.equal(echo.name, ['www', 'x', 'y'][i]);
        assert.equal(echo.url, '/api/items?q=1');
        assert.equal(echo.headers.host, host, 'proxy_set_header Host $host');
        assert.equal(echo.headers['x-real-ip'], '127.0.0.1', 'proxy_set_header X-Real-IP $remote_addr');
      }
      // nginx would answer an unknown host from its first block; the import's finding says how to keep that.
      assert.equal((await curl(['-H', 'Host: nobody.a.com', `http://127.0.0.1:${port}/`])).status, 404);
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
      await Promise.all(backends.map((b) => b.close()));
    }
  });

  it('import: a production-style file still exits 0 and reports every leftover with its line', async () => {
    const r = await runCli(['nginx', 'import', REAL]);
    assert.equal(r.code, 0, r.stderr);
    parseConfig(r.stdout);
    for (const line of [
      ':69 root: static files are not served by mpgate',
      ':13 include: /etc/nginx/mime.types not followed (absolute path)',
    ]) {
      assert.ok(r.stderr.includes(`${REAL}${line}`), `missing "${line}" in:\n${r.stderr}`);
    }
    // The 80-redirect + 443 pair is translated: no finding for its listen, certificate or return.
    for (const line of [':34 return', ':37 listen', ':38 listen', ':41 ssl_certificate', ':42 ssl_certificate_key']) {
      assert.ok(!r.stderr.includes(`${REAL}${line}`), `unexpected "${line}" in:\n${r.stderr}`);
    }
    assert.match(r.stdout, /\n {4}tls:\n {6}cert: \/etc\/letsencrypt\/live\/shop\.a\.com\/fullchain\.pem\n {6}key: \/etc\/letsencrypt\/live\/shop\.a\.com\/privkey\.pem\n/);
    assert.match(r.stdout, /# certbot's certificate for shop\.a\.com: mpgate re-reads the files when certbot renews them/);
    assert.match(r.stdout, /\nhttps:\n {2}listen: \[ "443" \]\n/);
  });

  it('import: the certbot-style seed → one site per HTTPS pair, only certbot\'s TLS options and dhparam reported', async () => {
    const file = join(ROOT, 'test/fixtures/nginx/seed-users-https.conf');
    const r = await runCli(['nginx', 'import', file]);
    assert.equal(r.code, 0, r.stderr);
    const cfg = parseConfig(r.stdout, 'stdout');
    assert.deepEqual(cfg.sites.map((s) => [s.hosts[0], s.tls === undefined ? 'http' : 'https', s.redirectHttp]), [['www.a.com', 'https', true], ['x.a.com', 'https', true], ['y.a.com', 'http', true]]);
    assert.deepEqual(r.stderr.trimEnd().split('\n').map((l) => l.slice(file.length)), [
      ':18 include: /etc/letsencrypt/options-ssl-nginx.conf (certbot\'s TLS settings) not followed: mpgate\'s defaults apply, TLS 1.2 and 1.3 with ECDHE and AES-GCM or ChaCha20 (certbot\'s list without its DHE suites)',
      ':19 ssl_dhparam: mpgate\'s defaults apply: its TLS 1.2 suites use ECDHE only, so no DH parameters are needed; not translated',
      ':22 server: nginx answers unknown hosts with its first server block (www.a.com); mpgate answers them 404 unless defaultSite is set (add "defaultSite: www.a.com" to keep nginx\'s behaviour)',
      ': 3 sites imported; 3 findings (above)',
    ]);
  });

  it('import: malformed nginx syntax exits 1 with FILE:LINE, a missing file exits 1 without a stack', async () => {
    const bad = join(dir, 'bad.conf');
    await writeFile(bad, 'server {\n  listen 80;\n  server_name a.test\n}\n');
    const r = await runCli(['nginx', 'import', bad]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${bad}:4: unexpected "}" (the directive before it needs a ";")\n`);
    const missing = await runCli(['nginx', 'import', join(dir, 'nope.conf')]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope\.conf: cannot read the file \(ENOENT\)/);
    assert.doesNotMatch(missing.stderr, /at .*\.js:\d+/);
  });

  it('export: a snippet nginx -t accepts; --full a whole nginx.conf; relay/OCR routes and tls: auto noted on stderr', async () => {
    // The example with certificate files that exist (nginx -t reads them), given relative to the config.
    const cert = await issue(dir, { name: 'y', names: ['y.a.com'] });
    const example = join(dir, 'example.yaml');
    // bob's site switched from tls: auto to the files form the example shows in a comment.
    const exampleText = (await readFile(join(ROOT, 'examples/mpgate.yaml'), 'utf8'))
      .replace(/ {4}tls: auto\n {4}# Or certificate files[^\n]*\n {4}# tls:\n {4}# {3}cert: \S+\n {4}# {3}key: \S+\n/, '    tls:\n      cert: y.pem\n      key: y-key.pem\n');
    assert.match(exampleText, /cert: y\.pem/, 'the example still shows the files form for y.a.com');
    await writeFile(example, exampleText);
    const r = await runCli(['nginx', 'export', '--config', example]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /server_name x\.a\.com;/);
    assert.ok(r.stdout.includes(`ssl_certificate ${cert.certFile};`), 'relative paths are resolved against the config file');
    assert.match(r.stdout, /listen 443 ssl http2;\n\s+server_name y\.a\.com;/);
    assert.match(r.stdout, /return 301 https:\/\/\$host\$request_uri;/);
    assert.equal(r.stderr, `${example} sites[0]: tls: auto: nginx needs its own certificate (e.g. certbot --nginx --redirect -d x.a.com); exported on plain HTTP until then\n`);
    const t = await nginxCheck(r.stdout, 'snippet');
    assert.ok(t.ok, t.output);

    const cfg = join(dir, 'relay.yaml');
    await writeFile(cfg, 'sites:\n  - hosts: [a.test]\n    routes:\n      - path: /relay\n        relay: { upstream: "https://127.0.0.1:9443" }\n');
    const out = join(dir, 'nginx.conf');
    const full = await runCli(['nginx', 'export', cfg, '--full', '--mpgate', 'http://127.0.0.1:18080', '-o', out]);
    assert.equal(full.code, 0, full.stderr);
    assert.equal(full.stdout, '');
    assert.match(full.stderr, /relay\.yaml sites\[0\]\.routes\[0\]: relay route \/relay: nginx passes it to mpgate at http:\/\/127\.0\.0\.1:18080/);
    const text = await readFile(out, 'utf8');
    assert.match(text, /^# nginx\.conf generated by "mpgate nginx export --full"/);
    const tf = await nginxCheck(text, 'full');
    assert.ok(tf.ok, tf.output);
  });

  it('export: an invalid config exits 1 with the problems', async () => {
    const cfg = join(dir, 'invalid.yaml');
    await writeFile(cfg, 'sites:\n  - hosts: [a.test]\n    upstrem: http://127.0.0.1:1\n');
    const r = await runCli(['nginx', 'export', '--config', cfg]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /invalid\.yaml:3:5 sites\[0\]\.upstrem: unknown key "upstrem"/);
  });

  it('--help for nginx, import and export; usage errors exit 2', async () => {
    for (const args of [['nginx', '--help'], ['nginx', 'import', '--help'], ['nginx', 'export', '--help']]) {
      const r = await runCli(args);
      assert.equal(r.code, 0, args.join(' '));
      assert.match(r.stdout, /Usage: mpgate nginx/);
    }
    const top = await runCli(['--help']);
    assert.match(top.stdout, /\n {2}nginx {5}Import nginx server blocks/);
    for (const args of [['nginx'], ['nginx', 'frob'], ['nginx', 'import'], ['nginx', 'import', 'a', 'b'], ['nginx', 'export'], ['nginx', 'export', '-c', 'x.yaml', '--mpgate', 'ftp://x'], ['nginx', 'import', '--bogus', 'x']]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    }
  });
});
