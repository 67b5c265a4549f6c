import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { FlagError, configFromFlags } from '../../src/config/from-flags.js';
import { configFromObject, formatProblems, keyPath, loadConfig, parseConfig, type ConfigProblem } from '../../src/config/load.js';
import { ConfigError } from '../../src/core/errors.js';

/** Runs parseConfig and returns the ConfigError it must throw. */
function problemsOf(text: string, file = 'mpgate.yaml'): ConfigError {
  try {
    parseConfig(text, file);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    assert.equal(err.code, 'MPG_CONFIG_INVALID');
    return err;
  }
  assert.fail(`expected this config to be rejected:\n${text}`);
}

function assertDeepFrozen(value: unknown, path = 'config'): void {
  if (value === null || typeof value !== 'object') return;
  assert.ok(Object.isFrozen(value), `${path} is not frozen`);
  for (const [k, v] of Object.entries(value)) assertDeepFrozen(v, `${path}.${k}`);
}

const MINIMAL = `sites:
  - hosts: [a.com]
    upstream: http://127.0.0.1:8000
`;

describe('parseConfig: valid files', () => {
  it('fills in every default', () => {
    const cfg = parseConfig(MINIMAL, 'mpgate.yaml');
    assert.deepEqual(cfg.listen, ['0.0.0.0:80']);
    assert.deepEqual(cfg.trustedProxies, []);
    assert.equal(cfg.defaultSite, undefined);
    assert.deepEqual(cfg.limits, {
      maxBodySize: 10 * 1024 * 1024,
      maxHeaderSize: 16 * 1024,
      maxHeaderCount: 100,
      headersTimeout: 10_000,
      requestTimeout: 300_000,
      idleTimeout: 90_000,
      keepAliveTimeout: 5_000,
      websocketIdleTimeout: 600_000,
    });
    assert.deepEqual(cfg.upstream, {
      connectTimeout: 5_000,
      responseTimeout: 60_000,
      bodyIdleTimeout: 60_000,
      keepAliveTimeout: 30_000,
      connections: 256,
      maxFails: 1,
      failTimeout: 10_000,
    });
    assert.equal(cfg.shutdownGrace, 10_000);
    assert.equal(cfg.accessLog, true);
    assert.equal(cfg.logLevel, 'info');
    assert.equal(cfg.watch, true);
    assert.deepEqual(cfg.sites, [{ hosts: ['a.com'], upstream: 'http://127.0.0.1:8000', disabled: false, redirectHttp: true, hsts: false }]);
    assert.deepEqual(cfg.https, { listen: ['0.0.0.0:443'], minVersion: 'TLSv1.2', http2: true, unknownSni: 'default' });
    assert.deepEqual(cfg.acme, {
      directory: 'letsencrypt', storage: './mpgate-certs', challenges: ['http-01', 'tls-alpn-01'],
      renewBefore: 1 / 3, retryMin: 60_000, retryMax: 3_600_000,
    });
    assert.equal(cfg.admin, undefined);
  });

  it('fills in route defaults', () => {
    const cfg = parseConfig(`sites:
  - hosts: [a.com]
    routes:
      - upstream: http://127.0.0.1:8000
      - path: /api/
        upstream: [http://127.0.0.1:8001, http://127.0.0.1:8002/base]
        stripPrefix: true
        preserveHost: false
        setHeaders: { X-Env: prod }
`);
    assert.deepEqual(cfg.sites[0]!.routes, [
      { path: '/', upstream: 'http://127.0.0.1:8000', stripPrefix: false, preserveHost: true, setHeaders: {} },
      { path: '/api/', upstream: ['http://127.0.0.1:8001', 'http://127.0.0.1:8002/base'], stripPrefix: true, preserveHost: false, setHeaders: { 'X-Env': 'prod' } },
    ]);
  });

  it('parses durations and sizes written with units', () => {
    const cfg = parseConfig(`limits:
  maxBodySize: 1MiB
  maxHeaderSize: 8KiB
  headersTimeout: 10s
  requestTimeout: 2m
  idleTimeout: 250ms
  keepAliveTimeout: 1500
upstream:
  failTimeout: 1h
shutdownGrace: 0
sites:
  - hosts: [a.com]
    upstream: http://127.0.0.1:8000
    maxBodySize: 10m
`);
    assert.equal(cfg.limits.maxBodySize, 1_048_576);
    assert.equal(cfg.limits.maxHeaderSize, 8192);
    assert.equal(cfg.limits.headersTimeout, 10_000);
    assert.equal(cfg.limits.requestTimeout, 120_000);
    assert.equal(cfg.limits.idleTimeout, 250);
    assert.equal(cfg.limits.keepAliveTimeout, 1500);
    assert.equal(cfg.upstream.failTimeout, 3_600_000);
    assert.equal(cfg.shutdownGrace, 0);
    assert.equal(cfg.sites[0]!.maxBodySize, 10 * 1024 * 1024);
  });

  it('returns a deep-frozen object', () => {
    const cfg = parseConfig(`${MINIMAL}  - hosts: [b.com]
    routes:
      - path: /
        upstream: [http://127.0.0.1:1]
        setHeaders: { X-A: b }
`);
    assertDeepFrozen(cfg);
    assert.throws(() => {
      (cfg.limits as { maxBodySize: number }).maxBodySize = 1;
    }, TypeError);
    assert.throws(() => {
      (cfg.sites as unknown[]).push({});
    }, TypeError);
    assert.equal(cfg.limits.maxBodySize, 10 * 1024 * 1024);
  });

  it('accepts JSON, an empty file, and the wildcard and regex host forms', () => {
    const fromJson = parseConfig('{"sites":[{"hosts":["a.com"],"upstream":"http://127.0.0.1:8000"}]}');
    assert.equal(fromJson.sites[0]!.hosts[0], 'a.com');
    assert.deepEqual(parseConfig('').sites, []);
    const hosts = ['x.a.com', '*.b.com', '.c.com', 'www.d.*', '~^api\\d+\\.e\\.com$', 'localhost', 'UPPER.Case.com'];
    const cfg = parseConfig(JSON.stringify({ sites: [{ hosts, upstream: 'https://example.com/base' }] }));
    assert.deepEqual(cfg.sites[0]!.hosts, hosts);
  });

  it('accepts IP addresses and CIDRs in trustedProxies', () => {
    const list = ['10.0.0.0/8', '192.168.1.1', '::1', 'fd00::/8', '::ffff:10.0.0.1', '0.0.0.0/0'];
    assert.deepEqual(parseConfig(JSON.stringify({ trustedProxies: list })).trustedProxies, list);
  });
});

describe('parseConfig: problems', () => {
  it('names file, line, column, key path and a "did you mean" hint for an unknown key', () => {
    const err = problemsOf(`sites:
  - hosts: [a.com]
    routes:
      - path: /
        upstream: http://127.0.0.1:8000
      - path: /x
        upstrem: http://127.0.0.1:8001
`, 'conf/mpgate.yaml');
    const p = err.problems.find((x) => x.key === 'sites[0].routes[1].upstrem');
    assert.ok(p, JSON.stringify(err.problems));
    assert.equal(p.file, 'conf/mpgate.yaml');
    assert.equal(p.line, 7);
    assert.equal(p.column, 9);
    assert.equal(p.message, 'unknown key "upstrem"');
    assert.equal(p.hint, 'did you mean "upstream"?');
    assert.match(err.message, /^conf\/mpgate\.yaml:7:9 sites\[0\]\.routes\[1\]\.upstrem: unknown key "upstrem" \(did you mean "upstream"\?\)$/m);
  });

  it('lists the allowed keys when no known key is close', () => {
    const err = problemsOf('limits:\n  zzzzzzzzzz: 1\n');
    assert.equal(err.problems.length, 1);
    const p = err.problems[0]!;
    assert.equal(p.key, 'limits.zzzzzzzzzz');
    assert.deepEqual([p.line, p.column], [2, 3]);
    assert.match(p.hint!, /^allowed here: maxBodySize, maxHeaderSize, maxHeaderCount,/);
  });

  it('reports unknown top-level keys with a hint', () => {
    const err = problemsOf(`limitz: {}\n${MINIMAL}`);
    assert.deepEqual(err.problems.map((p) => [p.key, p.line, p.column, p.hint]), [['limitz', 1, 1, 'did you mean "limits"?']]);
  });

  it('reports a wrong type as a wrong type, not as a missing key', () => {
    const err = problemsOf('listen: 5\n');
    assert.equal(err.problems.length, 1);
    const p = err.problems[0]!;
    assert.equal(p.key, 'listen');
    assert.deepEqual([p.line, p.column], [1, 9]);
    assert.doesNotMatch(p.message, /required/);
    assert.match(p.message, /expected array/);
    assert.equal(p.hint, undefined);
  });

  it('reports a missing required key as required', () => {
    const err = problemsOf('sites:\n  - upstream: http://127.0.0.1:8000\n');
    const p = err.problems.find((x) => x.key === 'sites[0].hosts');
    assert.ok(p, JSON.stringify(err.problems));
    assert.equal(p.message, '"hosts" is required');
    assert.equal(p.hint, 'add it');
    assert.equal(p.line, 2); // the site the key is missing from
  });

  it('reports a bad size or duration with what it expects', () => {
    const err = problemsOf('limits:\n  maxBodySize: lots\n  headersTimeout: 10 seconds\n');
    assert.deepEqual(err.problems.map((p) => [p.key, p.line]), [['limits.maxBodySize', 2], ['limits.headersTimeout', 3]]);
    assert.match(err.problems[0]!.message, /expected a size/);
    assert.match(err.problems[1]!.message, /expected a duration/);
  });

  it('rejects bad upstream URLs', () => {
    for (const url of ['ftp://127.0.0.1', 'not a url', 'http://user:pw@127.0.0.1', 'http://127.0.0.1/?q=1', 'http://127.0.0.1/#x', '127.0.0.1:8000']) {
      const err = problemsOf(JSON.stringify({ sites: [{ hosts: ['a.com'], upstream: url }] }));
      assert.equal(err.problems.length, 1, url);
      assert.equal(err.problems[0]!.key, 'sites[0].upstream', url);
      assert.match(err.problems[0]!.message, /expected an upstream URL/, url);
    }
  });

  it('rejects bad host patterns', () => {
    for (const host of ['a b', 'x/y', '*.a.*', '*', 'a.*.com', 'user@a.com', 'a.com:80', '~(unclosed', '', 'ä.com', '**.a.com']) {
      const err = problemsOf(JSON.stringify({ sites: [{ hosts: [host], upstream: 'http://127.0.0.1:1' }] }));
      assert.ok(err.problems.some((p) => p.key === 'sites[0].hosts[0]'), `${JSON.stringify(host)}: ${err.message}`);
    }
  });

  it('rejects bad trustedProxies entries instead of failing later', () => {
    for (const entry of ['garbage', '10.0.0', '1.2.3.4.5', ':::', '10.0.0.0/33', 'fd00::/129']) {
      const err = problemsOf(JSON.stringify({ trustedProxies: [entry] }));
      assert.deepEqual(err.problems.map((p) => p.key), ['trustedProxies[0]'], entry);
      assert.match(err.problems[0]!.message, /IP address or CIDR/);
    }
  });

  it('rejects the same host in two sites, also in another case or wildcard spelling', () => {
    const err = problemsOf(`sites:
  - hosts: [a.com, '*.w.com']
    upstream: http://127.0.0.1:1
  - name: second
    hosts: [A.COM]
    upstream: http://127.0.0.1:2
  - name: third
    hosts: [.w.com]
    upstream: http://127.0.0.1:3
`);
    assert.deepEqual(err.problems.map((p) => [p.key, p.line]), [['sites[1].hosts[0]', 5], ['sites[2].hosts[0]', 8]]);
    assert.match(err.problems[0]!.message, /already served by sites\[0\]/);
    assert.match(err.problems[1]!.message, /already served by sites\[0\]/);
  });

  it('rejects two sites with the same name', () => {
    const err = problemsOf(JSON.stringify({ sites: [
      { name: 'x', hosts: ['a.com'], upstream: 'http://127.0.0.1:1' },
      { name: 'x', hosts: ['b.com'], upstream: 'http://127.0.0.1:2' },
    ] }));
    assert.deepEqual(err.problems.map((p) => p.key), ['sites[1].name']);
  });

  it('rejects a defaultSite that names no site, and accepts one that does', () => {
    const err = problemsOf(`defaultSite: nope\n${MINIMAL}`);
    assert.deepEqual(err.problems.map((p) => [p.key, p.line]), [['defaultSite', 1]]);
    assert.match(err.problems[0]!.message, /no site is named "nope"; known: a\.com/);
    // By first host, or by name.
    assert.equal(parseConfig(`defaultSite: a.com\n${MINIMAL}`).defaultSite, 'a.com');
    assert.equal(parseConfig(`defaultSite: main\nsites:\n  - name: main\n    hosts: [a.com]\n    upstream: http://127.0.0.1:1\n`).defaultSite, 'main');
  });

  it('rejects a site with both upstream and routes, and one with neither', () => {
    const both = problemsOf(`sites:
  - hosts: [a.com]
    upstream: http://127.0.0.1:1
    routes:
      - path: /
        upstream: http://127.0.0.1:2
`);
    assert.deepEqual(both.problems.map((p) => [p.key, p.line]), [['sites[0].upstream', 3]]);
    assert.match(both.problems[0]!.message, /either "upstream".*or "routes", not both/);
    const neither = problemsOf('sites:\n  - hosts: [a.com]\n');
    assert.deepEqual(neither.problems.map((p) => p.key), ['sites[0].hosts']);
    assert.match(neither.problems[0]!.message, /needs "upstream: URL" or a "routes:" list/);
  });

  it('rejects a route path listed twice, and one not starting with "/"', () => {
    const err = problemsOf(`sites:
  - hosts: [a.com]
    routes:
      - path: /api
        upstream: http://127.0.0.1:1
      - path: /api
        upstream: http://127.0.0.1:2
      - path: api
        upstream: http://127.0.0.1:3
`);
    assert.deepEqual(err.problems.map((p) => [p.key, p.line]).sort(), [['sites[0].routes[1].path', 6], ['sites[0].routes[2].path', 8]]);
  });

  it('rejects header names and values that could split a request', () => {
    const err = problemsOf(JSON.stringify({ sites: [{ hosts: ['a.com'], routes: [{ path: '/', upstream: 'http://127.0.0.1:1', setHeaders: { 'Bad Name': 'x', Good: 'a\r\nInjected: 1' } }] }] }));
    assert.equal(err.problems.length, 2, err.message);
    assert.ok(err.problems.every((p) => p.key.startsWith('sites[0].routes[0].setHeaders')), err.message);
  });

  it('reports a YAML syntax error with its line, and nothing else', () => {
    const err = problemsOf('listen: ["127.0.0.1:80"]\nsites: [\n  bad', 'broken.yaml');
    assert.ok(err.problems.length >= 1);
    const p = err.problems[0]!;
    assert.equal(p.file, 'broken.yaml');
    assert.ok(p.line >= 2, `line ${p.line}`);
    assert.equal(p.key, '');
    assert.match(p.hint!, /fix the YAML syntax/);
    assert.match(err.message, /^broken\.yaml:\d+:\d+ /);
  });

  it('reports a duplicate key and a tab indentation as YAML errors on their lines', () => {
    const dup = problemsOf('watch: true\nlogLevel: info\nwatch: false\n');
    assert.equal(dup.problems[0]!.line, 3);
    assert.match(dup.problems[0]!.message, /unique/i);
    const tab = problemsOf('sites:\n  - hosts: [a.com]\n    upstream: http://x\n\tbad: 1\n');
    assert.equal(tab.problems[0]!.line, 4);
  });

  it('rejects a document that is not a mapping', () => {
    const err = problemsOf('- a\n- b\n');
    assert.deepEqual(err.problems.map((p) => p.key), ['(top level)']);
  });

  it('reports all problems at once, in one message line each', () => {
    const err = problemsOf(`listen: [nowhere]
limits:
  maxBodySize: huge
  maxHeaderCount: 0
logLevel: loud
sites:
  - hosts: [a.com]
    upstream: ftp://x
    extra: 1
`, 'all.yaml');
    const keys = err.problems.map((p) => p.key).sort();
    assert.deepEqual(keys, ['limits.maxBodySize', 'limits.maxHeaderCount', 'listen[0]', 'logLevel', 'sites[0].extra', 'sites[0].upstream']);
    const lines = err.message.split('\n');
    assert.equal(lines.length, err.problems.length);
    for (const l of lines) assert.match(l, /^all\.yaml:\d+:\d+ \S+: /);
    const byKey = new Map(err.problems.map((p) => [p.key, p.line]));
    assert.deepEqual([byKey.get('listen[0]'), byKey.get('limits.maxBodySize'), byKey.get('limits.maxHeaderCount'), byKey.get('logLevel'), byKey.get('sites[0].upstream'), byKey.get('sites[0].extra')], [1, 3, 4, 5, 8, 9]);
  });

  it('reports exactly two problems for two mistakes', () => {
    const err = problemsOf(`watch: maybe
sites:
  - hosts: [a.com]
    upstream: http://127.0.0.1:1
    stripPrefix: true
`);
    assert.deepEqual(err.problems.map((p) => p.key), ['watch', 'sites[0].stripPrefix']);
    assert.equal(err.problems[1]!.message, 'unknown key "stripPrefix"');
  });
});

describe('formatProblems and keyPath', () => {
  it('formats "file:line:col key: message (hint)", one per line', () => {
    const problems: ConfigProblem[] = [
      { file: 'a.yaml', line: 3, column: 5, key: 'sites[0].hosts', message: 'bad', hint: 'fix it' },
      { file: 'a.yaml', line: 7, column: 1, key: 'watch', message: 'not a boolean' },
    ];
    assert.equal(formatProblems(problems), 'a.yaml:3:5 sites[0].hosts: bad (fix it)\na.yaml:7:1 watch: not a boolean');
  });

  it('leaves out the position when there is none, and the key when it is empty', () => {
    assert.equal(formatProblems([{ file: '<flags>', line: 0, column: 0, key: 'sites[0].upstream', message: 'bad url' }]), '<flags> sites[0].upstream: bad url');
    assert.equal(formatProblems([{ file: 'x.yaml', line: 2, column: 4, key: '', message: 'syntax', hint: 'h' }]), 'x.yaml:2:4 syntax (h)');
    assert.equal(formatProblems([]), '');
  });

  it('keyPath joins names with dots and indexes with brackets', () => {
    assert.equal(keyPath(['sites', 0, 'routes', 1, 'upstrem']), 'sites[0].routes[1].upstrem');
    assert.equal(keyPath(['limits', 'maxBodySize']), 'limits.maxBodySize');
    assert.equal(keyPath([]), '(top level)');
  });
});

describe('configFromObject', () => {
  it('validates like a file, without positions', () => {
    const cfg = configFromObject({ sites: [{ hosts: ['a.com'], upstream: 'http://127.0.0.1:1' }] });
    assert.equal(cfg.limits.maxBodySize, 10 * 1024 * 1024);
    assertDeepFrozen(cfg);
    assert.throws(
      () => configFromObject({ sites: [{ hosts: ['a.com'], upstream: 'nope' }] }),
      (err: unknown) => err instanceof ConfigError && err.problems.length === 1 && err.problems[0]!.file === '<flags>' && err.problems[0]!.line === 0 && /^<flags> sites\[0\]\.upstream: /.test(err.message),
    );
  });
});

describe('configFromFlags', () => {
  it('turns each --route HOST=URL into a site', () => {
    const input = configFromFlags({ listen: ['127.0.0.1:9000'], routes: ['a.test=http://127.0.0.1:8000', 'b.test=https://b.internal/base'] });
    assert.deepEqual(input, {
      listen: ['127.0.0.1:9000'],
      sites: [
        { hosts: ['a.test'], upstream: 'http://127.0.0.1:8000' },
        { hosts: ['b.test'], upstream: 'https://b.internal/base' },
      ],
    });
    const cfg = configFromObject(input);
    assert.equal(cfg.sites.length, 2);
  });

  it('makes the same host given twice one site with an upstream list, in order', () => {
    const input = configFromFlags({ listen: [], routes: ['a.test=http://127.0.0.1:1', 'b.test=http://127.0.0.1:2', 'a.test=http://127.0.0.1:3'] });
    assert.deepEqual(input.sites, [
      { hosts: ['a.test'], upstream: ['http://127.0.0.1:1', 'http://127.0.0.1:3'] },
      { hosts: ['b.test'], upstream: 'http://127.0.0.1:2' },
    ]);
  });

  it('defaults listen to 127.0.0.1:8080 and passes defaultSite and trustedProxies', () => {
    const input = configFromFlags({ listen: [], routes: [' a.test = http://127.0.0.1:1 '], defaultSite: 'a.test', trustedProxies: ['10.0.0.0/8'] });
    assert.deepEqual(input, {
      listen: ['127.0.0.1:8080'],
      defaultSite: 'a.test',
      trustedProxies: ['10.0.0.0/8'],
      sites: [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1' }],
    });
    assert.equal(configFromObject(input).defaultSite, 'a.test');
  });

  it('splits at the first "=" only', () => {
    const input = configFromFlags({ listen: [], routes: ['a.test=http://127.0.0.1:1/x=y'] });
    assert.deepEqual(input.sites, [{ hosts: ['a.test'], upstream: 'http://127.0.0.1:1/x=y' }]);
  });

  it('throws FlagError for a spec that is not HOST=URL', () => {
    for (const spec of ['a.test', '=http://127.0.0.1:1', 'a.test=', '', '=']) {
      assert.throws(() => configFromFlags({ listen: [], routes: [spec] }), (err: unknown) => err instanceof FlagError && err.message.includes(`"${spec}"`) && /HOST=URL/.test(err.message), spec);
    }
  });

  it('leaves bad hosts and URLs to the config validation', () => {
    const input = configFromFlags({ listen: [], routes: ['a b=ftp://x'] });
    assert.throws(() => configFromObject(input), (err: unknown) => err instanceof ConfigError && err.problems.length === 2);
  });
});

describe('loadConfig: relative paths', () => {
  it('are resolved against the config file\'s directory, not the working directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mpgate-paths-'));
    try {
      const file = join(dir, 'mpgate.yaml');
      await writeFile(file, `accessLog: { path: logs/access.log }
https: { defaultCert: { cert: certs/d.pem, key: certs/d-key.pem } }
acme: { storage: ./store, ca: /etc/ssl/pebble.pem }
admin: { audit: audit.log, tls: { cert: ../elsewhere/a.pem, key: a-key.pem } }
sites:
  - hosts: [a.test]
    tls: { cert: certs/a.pem, key: certs/a-key.pem }
    routes:
      - path: /relay
        relay: { upstream: https://backend.test, ca: ca.pem }
  - hosts: [b.test]
    upstream: http://127.0.0.1:8000
    tls: auto
`);
      const cfg = await loadConfig(file);
      assert.deepEqual(cfg.accessLog, { path: join(dir, 'logs/access.log') });
      assert.deepEqual(cfg.https.defaultCert, { cert: join(dir, 'certs/d.pem'), key: join(dir, 'certs/d-key.pem') });
      assert.equal(cfg.acme.storage, join(dir, 'store'));
      assert.equal(cfg.acme.ca, '/etc/ssl/pebble.pem', 'absolute paths stay as they are');
      assert.equal(cfg.admin!.audit, join(dir, 'audit.log'));
      assert.deepEqual(cfg.admin!.tls, { cert: join(dir, '../elsewhere/a.pem'), key: join(dir, 'a-key.pem') });
      assert.deepEqual(cfg.sites[0]!.tls, { cert: join(dir, 'certs/a.pem'), key: join(dir, 'certs/a-key.pem') });
      assert.equal(cfg.sites[0]!.routes![0]!.relay!.ca, join(dir, 'ca.pem'));
      assert.equal(cfg.sites[1]!.tls, 'auto');
      assert.ok(Object.isFrozen(cfg.sites[0]!.tls), 'still deep-frozen');
      // Text validated on its own (mpgate check on stdin, the site store) keeps the paths as written.
      assert.equal(parseConfig('acme: { storage: ./store }\n').acme.storage, './store');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
