/**
 * Who is calling the admin API, and what they may touch.
 *
 * Tokens are 32 random bytes (base64url) behind an `mpg_` prefix, shown once and stored only as
 * `scrypt$N$r$p$salt$hash` (RFC 7914). scrypt rather than a plain hash: a leaked config file must
 * not hand out working tokens, even though 256 random bits are already beyond guessing. A verified
 * token is remembered in memory by its SHA-256 so that a dashboard polling every few seconds does
 * not cost an scrypt run (~40 ms of CPU) per request; the memory entry dies with the token's hash.
 *
 * Authorization is two roles: "admin" sees and changes every site; "user" only sites whose
 * `owner` is its user, and only within what an administrator handed out: plain host names (a
 * wildcard or regex would catch names given to others later) and upstreams on this machine's
 * loopback inside `admin.ports` (anything else would let a user reach other people's services,
 * the admin listener or the cloud metadata address through the gateway).
 */
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { siteName, type AdminConfig, type Config, type SiteConfig } from '../config/schema.js';
import { HostRouter, normalizeHost } from '../core/host-router.js';

export type Role = 'admin' | 'user';

export interface Principal {
  /** The token's name (audit log "who"). */
  name: string;
  role: Role;
  /** The site owner this token acts as. */
  user: string;
}

export type TokenConfig = AdminConfig['tokens'][number];

export const TOKEN_PREFIX = 'mpg_';
/** `mpg_` + 32 bytes in base64url (43 characters, no padding). */
const TOKEN_SHAPE = /^mpg_[A-Za-z0-9_-]{43}$/;

/** scrypt cost: 2^14 × 8 × 128 bytes = 16 MiB and ~40 ms per hash (the parameters RFC 7914 §2 suggests for interactive use). */
export const DEFAULT_COST = { N: 16_384, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;

/** A fresh token. Shown to its holder once; only `hashToken(token)` is kept. */
export function createToken(): string {
  return TOKEN_PREFIX + randomBytes(32).toString('base64url');
}

function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((ok, fail) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? fail(err) : ok(key))));
}

/** `scrypt$N$r$p$saltB64$hashB64` of `token`, with a random 16-byte salt. */
export async function hashToken(token: string, cost: { N: number; r: number; p: number } = DEFAULT_COST): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(token, salt, KEY_LENGTH, { ...cost, maxmem: 256 * cost.N * cost.r * cost.p });
  return ['scrypt', cost.N, cost.r, cost.p, salt.toString('base64'), key.toString('base64')].join('$');
}

interface ParsedHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

/** Undefined for anything `hashToken` would not have written (including costs that would stall the server). */
export function parseHash(stored: string): ParsedHash | undefined {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return undefined;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const okInt = (v: number, max: number) => Number.isInteger(v) && v >= 1 && v <= max;
  if (!okInt(N, 1 << 20) || (N & (N - 1)) !== 0 || N < 2 || !okInt(r, 32) || !okInt(p, 16)) return undefined;
  const salt = Buffer.from(parts[4]!, 'base64');
  const key = Buffer.from(parts[5]!, 'base64');
  if (salt.length < 8 || key.length < 16) return undefined;
  return { N, r, p, salt, key };
}

/** Whether `token` is the one `stored` was made from. Constant-time in the comparison of the keys. */
export async function verifyToken(token: string, stored: string): Promise<boolean> {
  const h = parseHash(stored);
  if (h === undefined) return false;
  const key = await scrypt(token, h.salt, h.key.length, { N: h.N, r: h.r, p: h.p, maxmem: 256 * h.N * h.r * h.p + 1024 * 1024 });
  return timingSafeEqual(key, h.key);
}

export function principalOf(t: TokenConfig): Principal {
  return { name: t.name, role: t.role, user: t.user ?? t.name };
}

/**
 * Turns `Authorization: Bearer ...` into a Principal against the tokens of the running config
 * (`tokens()` is read on every call, so a token added or removed with `mpgate admin token` counts
 * from the next reload on).
 */
export class Authenticator {
  /** sha256(token) → the hash it was verified against. Only ever holds tokens that verified. */
  readonly #verified = new Map<string, string>();

  constructor(private readonly tokens: () => readonly TokenConfig[]) {}

  async authenticate(authorization: string | undefined): Promise<Principal | undefined> {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
    const token = m?.[1];
    if (token === undefined || !TOKEN_SHAPE.test(token)) return undefined;
    const tokens = this.tokens();
    const digest = createHash('sha256').update(token).digest('base64');
    const known = this.#verified.get(digest);
    if (known !== undefined) {
      const t = tokens.find((x) => x.hash === known);
      if (t) return principalOf(t);
      this.#verified.delete(digest);
    }
    // Every hash is tried (not "stop at the first"), so the time does not tell which entry matched.
    const results = await Promise.all(tokens.map((t) => verifyToken(token, t.hash)));
    const i = results.indexOf(true);
    if (i === -1) return undefined;
    const t = tokens[i]!;
    this.#verified.set(digest, t.hash);
    return principalOf(t);
  }
}

// ---- authorization -----------------------------------------------------------------------------

/** Admins see every site; users the sites they own. */
export function canSee(p: Principal, site: Pick<SiteConfig, 'owner'>): boolean {
  return p.role === 'admin' || (site.owner !== undefined && site.owner === p.user);
}

/** A site as it would be after a change, for `siteChangeProblem`. */
export interface ProposedSite {
  name: string;
  hosts: readonly string[];
  owner: string | undefined;
  /** Every upstream URL the site would proxy to. */
  upstreams: readonly string[];
}

const LOOPBACK_NAMES = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** "http://127.0.0.1:8000" → 8000 when the URL points at this machine's loopback, else undefined. */
export function loopbackPort(url: string): number | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (!LOOPBACK_NAMES.has(u.hostname.toLowerCase()) && !/^127\.\d+\.\d+\.\d+$/.test(u.hostname)) return undefined;
  return u.port ? Number(u.port) : u.protocol === 'https:' ? 443 : 80;
}

/** Every upstream URL of a site (shorthand and routes; relay backends included). */
export function siteUpstreams(s: Pick<SiteConfig, 'upstream' | 'routes'>): string[] {
  const out: string[] = [];
  const add = (u: string | readonly string[] | undefined) => {
    if (typeof u === 'string') out.push(u);
    else if (u) out.push(...u);
  };
  add(s.upstream);
  for (const r of s.routes ?? []) {
    add(r.upstream);
    if (r.relay) out.push(r.relay.upstream);
  }
  return out;
}

/**
 * Why `p` may not make `next` out of `before` (undefined: allowed). `before` is the site as it is
 * now (undefined when adding); `reservedPorts` are the ports mpgate itself is bound to (a site
 * proxying to the admin listener would publish it). Admins may do anything the schema accepts.
 */
export function siteChangeProblem(p: Principal, config: Config, before: SiteConfig | undefined, next: ProposedSite | undefined, reservedPorts: ReadonlySet<number> = new Set()): string | undefined {
  if (p.role === 'admin') return undefined;
  if (before !== undefined && !canSee(p, before)) return 'this site belongs to another user';
  if (next === undefined) return undefined;
  if (next.owner !== p.user) return `a user token can only give sites to itself (owner: ${p.user})`;
  // Only what the change adds is checked: what an administrator already gave the site stays allowed.
  const oldHosts = new Set(before?.hosts ?? []);
  const newHosts = next.hosts.filter((h) => !oldHosts.has(h));
  const oldUpstreams = new Set(before ? siteUpstreams(before) : []);
  const newUpstreams = next.upstreams.filter((u) => !oldUpstreams.has(u));
  for (const h of newHosts) {
    if (h.startsWith('~') || h.includes('*') || h.startsWith('.')) return `"${h}" is a wildcard or regex; a user token may only use plain host names`;
  }
  // A plain name under another user's wildcard would take those requests away from them.
  const others = new HostRouter<SiteConfig>();
  for (const s of config.sites) if (s !== before && s.owner !== p.user) for (const h of s.hosts) others.add(h, s);
  for (const h of newHosts) {
    const n = normalizeHost(h);
    if (n !== undefined && others.match(n) !== undefined) return `"${h}" is served by another user's site`;
  }
  const range = config.admin?.ports ?? { from: 8000, to: 8999 };
  const othersPorts = new Set<number>();
  for (const s of config.sites) {
    if (s === before || s.owner === p.user) continue;
    for (const u of siteUpstreams(s)) {
      const port = loopbackPort(u);
      if (port !== undefined) othersPorts.add(port);
    }
  }
  for (const u of newUpstreams) {
    const port = loopbackPort(u);
    if (port === undefined || port < range.from || port > range.to) {
      return `a user token may only proxy to this machine's ports ${range.from}-${range.to} (http://127.0.0.1:PORT); "${u}" is not one`;
    }
    if (othersPorts.has(port)) return `port ${port} is the upstream of another user's site`;
    if (reservedPorts.has(port)) return `port ${port} is one of mpgate's own listeners`;
  }
  return undefined;
}
