import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { Authenticator, canSee, createToken, hashToken, loopbackPort, parseHash, siteChangeProblem, verifyToken, type Principal } from '../../src/admin/auth.js';
import { ConfigError } from '../../src/core/errors.js';

/** Cheap scrypt cost for tests that hash many times (the format and the check are the same). */
const FAST = { N: 1024, r: 8, p: 1 };

describe('admin tokens', () => {
  it('are mpg_ + 32 random bytes in base64url, never twice the same', () => {
    const a = createToken();
    const b = createToken();
    assert.match(a, /^mpg_[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(a.slice(4), 'base64url').length, 32);
    assert.notEqual(a, b);
  });

  it('are stored as scrypt$N$r$p$salt$hash and verify only against themselves', async () => {
    const token = createToken();
    const hash = await hashToken(token);
    assert.match(hash, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.ok(!hash.includes(token.slice(4)), 'the hash does not contain the token');
    assert.notEqual(await hashToken(token), hash, 'salted: the same token hashes differently');
    assert.equal(await verifyToken(token, hash), true);
    assert.equal(await verifyToken(createToken(), hash), false);
    assert.equal(await verifyToken(`${token}x`, hash), false);
  });

  it('refuse hashes mpgate would not write (wrong scheme, absurd cost, short salt)', async () => {
    for (const bad of ['scrypt$', 'bcrypt$10$x$y$z$w', 'scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==', 'scrypt$4194304$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA==', 'scrypt$1024$8$1$YQ==$aGFzaGhhc2hoYXNoaGFzaA==']) {
      assert.equal(parseHash(bad), undefined, bad);
      assert.equal(await verifyToken('mpg_x', bad), false, bad);
    }
  });
});

describe('Authenticator', () => {
  it('maps a bearer token to its principal, and forgets it once the hash is gone', async () => {
    const adminTok = createToken();
    const aliceTok = createToken();
    let tokens = [
      { name: 'root', role: 'admin' as const, hash: await hashToken(adminTok, FAST) },
      { name: 'alice-phone', role: 'user' as const, user: 'alice', hash: await hashToken(aliceTok, FAST) },
    ];
    const auth = new Authenticator(() => tokens);
    assert.deepEqual(await auth.authenticate(`Bearer ${adminTok}`), { name: 'root', role: 'admin', user: 'root' });
    assert.deepEqual(await auth.authenticate(`bearer  ${aliceTok}`), { name: 'alice-phone', role: 'user', user: 'alice' });
    // Cached now; still answers from the current token list.
    assert.deepEqual(await auth.authenticate(`Bearer ${aliceTok}`), { name: 'alice-phone', role: 'user', user: 'alice' });
    for (const h of [undefined, '', 'Basic abc', `Bearer ${createToken()}`, `Bearer ${aliceTok.slice(0, -1)}`, `Token ${aliceTok}`, aliceTok]) {
      assert.equal(await auth.authenticate(h), undefined, String(h));
    }
    tokens = tokens.filter((t) => t.name !== 'alice-phone');
    assert.equal(await auth.authenticate(`Bearer ${aliceTok}`), undefined, 'a removed token stops working');
  });
});

describe('authorization', () => {
  const config = parseConfig(`
admin:
  ports: { from: 8000, to: 8099 }
sites:
  - hosts: [x.a.com]
    owner: alice
    upstream: http://127.0.0.1:8000
  - hosts: ["*.bob.a.com"]
    owner: bob
    upstream: http://127.0.0.1:8001
  - hosts: [admin-only.a.com]
    upstream: http://10.0.0.5:80
`);
  const alice: Principal = { name: 'alice', role: 'user', user: 'alice' };
  const root: Principal = { name: 'root', role: 'admin', user: 'root' };
  const [aliceSite, bobSite, unowned] = config.sites as [typeof config.sites[number], typeof config.sites[number], typeof config.sites[number]];

  it('an admin sees every site, a user its own (never an unowned one)', () => {
    assert.deepEqual(config.sites.map((s) => canSee(root, s)), [true, true, true]);
    assert.deepEqual(config.sites.map((s) => canSee(alice, s)), [true, false, false]);
  });

  it('a user changes only its own sites, within its own names and the port range', () => {
    const next = (over: Partial<{ hosts: string[]; owner: string; upstreams: string[] }>) => ({ name: 'n.a.com', hosts: ['n.a.com'], owner: 'alice', upstreams: ['http://127.0.0.1:8005'], ...over });
    assert.equal(siteChangeProblem(alice, config, undefined, next({})), undefined);
    assert.equal(siteChangeProblem(alice, config, aliceSite, next({ upstreams: ['http://localhost:8050'] })), undefined);
    assert.equal(siteChangeProblem(alice, config, aliceSite, undefined), undefined, 'remove own site');
    const refused: [string, string | undefined][] = [
      ['another user\'s site', siteChangeProblem(alice, config, bobSite, next({}))],
      ['removing another user\'s site', siteChangeProblem(alice, config, bobSite, undefined)],
      ['an unowned site', siteChangeProblem(alice, config, unowned, undefined)],
      ['a site for someone else', siteChangeProblem(alice, config, undefined, next({ owner: 'bob' }))],
      ['a wildcard', siteChangeProblem(alice, config, undefined, next({ hosts: ['*.a.com'] }))],
      ['a regex', siteChangeProblem(alice, config, undefined, next({ hosts: ['~^.*$'] }))],
      ['a name under bob\'s wildcard', siteChangeProblem(alice, config, undefined, next({ hosts: ['shop.bob.a.com'] }))],
      ['bob\'s port', siteChangeProblem(alice, config, undefined, next({ upstreams: ['http://127.0.0.1:8001'] }))],
      ['a port outside the range', siteChangeProblem(alice, config, undefined, next({ upstreams: ['http://127.0.0.1:9090'] }))],
      ['another machine', siteChangeProblem(alice, config, undefined, next({ upstreams: ['http://169.254.169.254'] }))],
    ];
    for (const [what, problem] of refused) assert.ok(problem, `refused: ${what}`);
  });

  it('what an administrator gave a site stays allowed when its user changes something else', () => {
    const cfg = parseConfig('sites:\n  - hosts: ["*.alice.a.com"]\n    owner: alice\n    upstream: http://10.0.0.9:9500\n');
    const site = cfg.sites[0]!;
    assert.equal(siteChangeProblem(alice, cfg, site, { name: '*.alice.a.com', hosts: ['*.alice.a.com', 'alice.a.com'], owner: 'alice', upstreams: ['http://10.0.0.9:9500'] }), undefined);
    assert.ok(siteChangeProblem(alice, cfg, site, { name: '*.alice.a.com', hosts: ['*.alice.a.com', '*.more.a.com'], owner: 'alice', upstreams: ['http://10.0.0.9:9500'] }));
    assert.ok(siteChangeProblem(alice, cfg, site, { name: '*.alice.a.com', hosts: ['*.alice.a.com'], owner: 'alice', upstreams: ['http://10.0.0.9:9501'] }));
  });

  it('an admin may do anything the schema accepts', () => {
    assert.equal(siteChangeProblem(root, config, bobSite, { name: 'x', hosts: ['*.a.com'], owner: 'carol', upstreams: ['http://10.1.1.1'] }), undefined);
  });

  it('loopbackPort reads the port of this machine\'s upstreams only', () => {
    assert.equal(loopbackPort('http://127.0.0.1:8000'), 8000);
    assert.equal(loopbackPort('http://localhost'), 80);
    assert.equal(loopbackPort('https://[::1]/x'), 443);
    assert.equal(loopbackPort('http://10.0.0.1:8000'), undefined);
  });

  it('a non-loopback admin listener without tls and a token is refused when the config loads', () => {
    for (const admin of ['{ listen: "0.0.0.0:9090" }', '{ listen: "0.0.0.0:9090", tokens: [{ name: r, role: admin, hash: "scrypt$x" }] }']) {
      assert.throws(() => parseConfig(`admin: ${admin}\n`), (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.key === 'admin.listen' && /needs admin\.tls/.test(p.message)));
    }
    assert.equal(parseConfig('admin: { listen: "127.0.0.1:9090" }\n').admin?.listen, '127.0.0.1:9090');
  });
});
