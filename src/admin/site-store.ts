/**
 * The config file as the admin API and `mpgate site|admin` change it. One path for every change:
 *
 *   lock → read the file → apply to the parsed YAML document → validate the whole resulting text
 *   exactly as `mpgate check` and the gateway would (`parseConfig`) → write it atomically → unlock
 *
 * - The file stays the person's file: edits go through the yaml Document API (comments, key order,
 *   flow lists kept), and only the lines of the changed site are re-emitted; every other line is
 *   copied byte for byte from the file as it was (see `carryOver`).
 * - A change the schema refuses leaves the file untouched and comes back as `AdminError`
 *   MPGA_INVALID with the same problems `mpgate check` prints.
 * - Two changes never lose one: edits are queued in-process and hold `<config>.lock` (created with
 *   O_EXCL) across processes, and the file is re-read inside the lock, so the CLI and the running
 *   gateway can both edit. A lock older than `staleMs` was left by a process that died mid-edit (an
 *   edit takes milliseconds) and is broken.
 * - The write is a temp file in the same directory, fsync, rename over the config (readers — the
 *   gateway's watcher — see the old or the new file, never half of one), then fsync of the directory.
 *   The file's mode (and owner, when allowed) is kept.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile, realpath, rename, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { basename, dirname, join } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, YAMLSeq, type Document, type Node as YamlNode, type YAMLMap } from 'yaml';
import { formatProblems, parseConfig, type ConfigProblem } from '../config/load.js';
import { siteName, splitListen, type Config, type SiteConfig } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import { loopbackPort, siteUpstreams, type ProposedSite } from './auth.js';
import { AdminError } from './errors.js';

export { AdminError, ADMIN_ERRORS, type AdminErrorCode } from './errors.js';

// ---- errors ------------------------------------------------------------------------------------

// ---- the locked, validated, atomic edit --------------------------------------------------------

export interface EditContext {
  /** The file's YAML document; change it in place. */
  doc: Document;
  /** The file's current (valid) config. */
  config: Config;
}

export interface EditLockOptions {
  /** How long to wait for another process's edit (default 15 s). */
  lockTimeoutMs?: number;
  /** Age after which a lock file is considered left behind by a dead process (default 10 s). */
  staleMs?: number;
}

/** Per config file (real path): the tail of this process's edit queue. */
const queues = new Map<string, Promise<unknown>>();

/**
 * Applies `apply` to `file` under the lock and writes the result if it validates. Returns what
 * `apply` returned and the config now in the file. Throws AdminError (MPGA_INVALID with problems,
 * MPGA_LOCKED) or whatever `apply` throws; in every failure the file is unchanged.
 */
export async function editConfigFile<T>(file: string, apply: (ctx: EditContext) => T | Promise<T>, opts: EditLockOptions = {}): Promise<{ result: T; config: Config; changed: boolean }> {
  const real = await realpath(file).catch(() => file);
  const prev = queues.get(real) ?? Promise.resolve();
  const run = prev.catch(() => {}).then(() => withFileLock(real, opts, () => editUnlocked(real, file, apply)));
  const tail = run.catch(() => {});
  queues.set(real, tail);
  void tail.then(() => {
    if (queues.get(real) === tail) queues.delete(real);
  });
  return run;
}

async function editUnlocked<T>(real: string, shown: string, apply: (ctx: EditContext) => T | Promise<T>): Promise<{ result: T; config: Config; changed: boolean }> {
  const text = await readConfigText(real, shown);
  let config: Config;
  try {
    config = parseConfig(text, shown);
  } catch (err) {
    if (err instanceof ConfigError) throw new AdminError('MPGA_INVALID', `${shown} is not valid as it is; fix it first (mpgate check --config ${shown})`, err.problems, { cause: err });
    throw err;
  }
  const doc = parseDocument(text, { uniqueKeys: true });
  const before = doc.toString(STRINGIFY);
  const result = await apply({ doc, config });
  const after = doc.toString(STRINGIFY);
  if (after === before) return { result, config, changed: false };
  const next = carryOver(text, before, after);
  let nextConfig: Config;
  try {
    nextConfig = parseConfig(next, shown);
  } catch (err) {
    // Positions would point into text that was never written; the key path says where.
    if (err instanceof ConfigError) {
      const problems = err.problems.map((p) => ({ ...p, line: 0, column: 0 }));
      throw new AdminError('MPGA_INVALID', `the change was refused (${shown} is unchanged):\n${formatProblems(problems)}`, problems, { cause: err });
    }
    throw err;
  }
  try {
    await writeAtomic(real, next);
  } catch (err) {
    throw new AdminError('MPGA_INTERNAL', `cannot write ${shown} (${(err as NodeJS.ErrnoException).code ?? String(err)}); it is unchanged`, undefined, { cause: err });
  }
  return { result, config: nextConfig, changed: true };
}

async function readConfigText(file: string, shown: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw new AdminError('MPGA_INVALID', `cannot read ${shown} (${code})`, [{ file: shown, line: 0, column: 0, key: '', message: `cannot read the file (${code})`, hint: 'check the path given to --config' }], { cause: err });
  }
}

/** No folding of long lines (URLs, regexes), `[a, b]` as people write flow lists. */
const STRINGIFY = { lineWidth: 0, flowCollectionPadding: false } as const;

/**
 * Carries an edit made on the parsed document back into the original text. `before` and `after`
 * are the document re-emitted before and after the edit; they differ only in the lines of the
 * changed site. Those lines are taken from `after`, all others from `original` — so aligned
 * comments, quoting and blank lines elsewhere stay exactly as written. Falls back to `after` when
 * the re-emitted document does not line up with the original (same line count), or when the
 * result would not mean the same as `after`.
 */
export function carryOver(original: string, before: string, after: string): string {
  const crlf = original.includes('\r\n');
  const o = original.split('\n');
  const b = before.split('\n');
  const a = after.split('\n');
  if (o.length !== b.length) return after;
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  const middle = a.slice(start, a.length - end).map((l) => (l.trim() === '' ? '' : l) + (crlf ? '\r' : ''));
  const merged = [...o.slice(0, start), ...middle, ...o.slice(o.length - end)].join('\n');
  try {
    const same = JSON.stringify(parseDocument(merged).toJS()) === JSON.stringify(parseDocument(after).toJS());
    return same ? merged : after;
  } catch {
    return after;
  }
}

/** Temp file next to `file`, fsync, rename over it, fsync the directory. Mode and owner kept. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const st = await stat(file);
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx', st.mode & 0o7777);
  try {
    await fh.writeFile(text);
    await fh.chmod(st.mode & 0o7777); // the umask may have narrowed the mode given to open
    await fh.chown(st.uid, st.gid).catch(() => {}); // only root may give a file away; otherwise it is ours already
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  const dir = await open(dirname(file), 'r').catch(() => undefined);
  if (dir) {
    await dir.sync().catch(() => {}); // some filesystems refuse fsync on a directory; the rename is done either way
    await dir.close();
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Runs `fn` holding `<file>.lock` (O_CREAT|O_EXCL), waiting for other processes' edits. */
export async function withFileLock<T>(file: string, opts: EditLockOptions, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  const staleMs = opts.staleMs ?? 10_000;
  const deadline = Date.now() + (opts.lockTimeoutMs ?? 15_000);
  for (;;) {
    try {
      const fh = await open(lock, 'wx', 0o644);
      await fh.writeFile(`${process.pid} ${new Date().toISOString()}\n`);
      await fh.close();
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new AdminError('MPGA_INTERNAL', `cannot create the lock file ${lock} (${code ?? String(err)})`, undefined, { cause: err });
    }
    const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => -1);
    if (age > staleMs) {
      await unlink(lock).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) throw new AdminError('MPGA_LOCKED', `another change to ${basename(file)} is in progress (${lock}); try again`);
    await sleep(5 + Math.random() * 25);
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

// ---- sites -------------------------------------------------------------------------------------

/** A site as the API and `site list` show it. */
export interface SiteView {
  name: string;
  hosts: string[];
  owner: string | null;
  upstream: string | string[] | null;
  /** Number of routes (the `upstream` shorthand is one). */
  routes: number;
  disabled: boolean;
  tls: 'auto' | 'files' | null;
}

export function siteView(s: SiteConfig): SiteView {
  return {
    name: siteName(s),
    hosts: [...s.hosts],
    owner: s.owner ?? null,
    upstream: s.upstream === undefined ? null : typeof s.upstream === 'string' ? s.upstream : [...s.upstream],
    routes: s.routes?.length ?? 1,
    disabled: s.disabled,
    tls: s.tls === undefined ? null : s.tls === 'auto' ? 'auto' : 'files',
  };
}

export interface AddSite {
  host: string;
  owner?: string | undefined;
  /** Local port: upstream http://127.0.0.1:PORT. Neither port nor upstream: the next free port of admin.ports. */
  port?: number | undefined;
  upstream?: string | undefined;
  /** Default: the host. */
  name?: string | undefined;
  /** HTTPS for the site: "auto" (ACME) or certificate files. */
  tls?: 'auto' | { cert: string; key: string } | undefined;
}

export interface SitePatch {
  upstream?: string | string[] | undefined;
  hosts?: string[] | undefined;
  owner?: string | undefined;
  maxBodySize?: number | string | undefined;
  disabled?: boolean | undefined;
  /** "auto", certificate files, or null to serve the site over plain HTTP only. */
  tls?: 'auto' | { cert: string; key: string } | null | undefined;
}

/**
 * Called inside the lock with the file's current config, the site as it is (undefined when adding)
 * and as it would be (undefined when removing). Throws (AdminError MPGA_FORBIDDEN) to refuse.
 */
export type Guard = (config: Config, before: SiteConfig | undefined, next: ProposedSite | undefined) => void;

export interface EditOptions {
  /** Who makes the change, for the comment above an added site. */
  by?: string | undefined;
  guard?: Guard | undefined;
  /** Clock for the "added on" comment. */
  now?: Date | undefined;
}

export interface SiteResult {
  site: SiteView;
  /** The config now in the file. */
  config: Config;
}

/** Host names compare as the schema's duplicate check does: case-insensitive, "*.a.com" = ".a.com". */
export function hostKey(h: string): string {
  return h.startsWith('~') ? h : h.toLowerCase().replace(/^\*\./, '.');
}

export class SiteStore {
  constructor(readonly file: string, readonly lockOptions: EditLockOptions = {}) {}

  /** The sites in the file now (no lock needed: the file is only ever replaced whole). */
  async list(): Promise<{ config: Config; sites: SiteView[] }> {
    const text = await readConfigText(this.file, this.file);
    try {
      const config = parseConfig(text, this.file);
      return { config, sites: config.sites.map(siteView) };
    } catch (err) {
      if (err instanceof ConfigError) throw new AdminError('MPGA_INVALID', err.message, err.problems, { cause: err });
      throw err;
    }
  }

  /** Adds a site for `host`. 409 MPGA_CONFLICT when the host or name is already served. */
  async add(req: AddSite, opts: EditOptions = {}): Promise<SiteResult> {
    if (req.port !== undefined && req.upstream !== undefined) throw new AdminError('MPGA_INVALID', 'give a port or an upstream, not both');
    const name = req.name ?? req.host;
    const { config } = await editConfigFile(this.file, async ({ doc, config }) => {
      const key = hostKey(req.host);
      const clash = config.sites.find((s) => siteName(s) === name || s.hosts.some((h) => hostKey(h) === key));
      if (clash) throw new AdminError('MPGA_CONFLICT', `"${req.host}" is already served by site "${siteName(clash)}"`);
      const upstream = req.upstream ?? `http://127.0.0.1:${req.port ?? (await nextFreePort(config))}`;
      opts.guard?.(config, undefined, { name, hosts: [req.host], owner: req.owner, upstreams: [upstream] });
      const seq = sitesSeq(doc);
      const node = doc.createNode({ name, hosts: [req.host], ...(req.owner !== undefined ? { owner: req.owner } : {}), upstream, ...(req.tls !== undefined ? { tls: req.tls } : {}) }) as YAMLMap;
      for (const key of ['hosts', 'tls']) {
        const child: unknown = node.get(key, true);
        if (isSeq(child) || isMap(child)) child.flow = true;
      }
      const day = (opts.now ?? new Date()).toISOString().slice(0, 10);
      const by = oneLine(opts.by ?? 'mpgate');
      node.commentBefore = ` ${req.owner !== undefined ? `${oneLine(req.owner)}'s site` : 'site'}, added ${day} by ${by}`;
      const last = seq.items.at(-1) as YamlNode | undefined;
      if (last?.spaceBefore) node.spaceBefore = true;
      seq.flow = false;
      seq.items.push(node);
    }, this.lockOptions);
    return { site: findView(config, name), config };
  }

  async remove(name: string, opts: EditOptions = {}): Promise<{ site: SiteView; config: Config }> {
    let removed: SiteView | undefined;
    const { config } = await editConfigFile(this.file, ({ doc, config }) => {
      const { seq, index, site } = locate(doc, config, name);
      opts.guard?.(config, site, undefined);
      removed = siteView(site);
      removeItem(seq, index);
    }, this.lockOptions);
    return { site: removed!, config };
  }

  async setDisabled(name: string, disabled: boolean, opts: EditOptions = {}): Promise<SiteResult> {
    return this.update(name, { disabled }, opts);
  }

  /** Changes fields of a site. Hosts change without renaming it: the old name is written out if it was implicit. */
  async update(name: string, patch: SitePatch, opts: EditOptions = {}): Promise<SiteResult> {
    const { config } = await editConfigFile(this.file, ({ doc, config }) => {
      const { item, site } = locate(doc, config, name);
      const hosts = patch.hosts ?? [...site.hosts];
      const upstreams = patch.upstream !== undefined ? (typeof patch.upstream === 'string' ? [patch.upstream] : patch.upstream) : siteUpstreams(site);
      opts.guard?.(config, site, { name, hosts, owner: patch.owner ?? site.owner, upstreams });
      if (patch.hosts !== undefined) {
        if (!item.has('name') && patch.hosts[0] !== name) item.items.unshift(doc.createPair('name', name));
        setValue(doc, item, 'hosts', patch.hosts);
      }
      if (patch.upstream !== undefined) setValue(doc, item, 'upstream', patch.upstream);
      if (patch.owner !== undefined) setValue(doc, item, 'owner', patch.owner);
      if (patch.maxBodySize !== undefined) setValue(doc, item, 'maxBodySize', patch.maxBodySize);
      if (patch.tls === null) item.delete('tls');
      else if (patch.tls !== undefined) setValue(doc, item, 'tls', patch.tls);
      if (patch.disabled === true) setValue(doc, item, 'disabled', true);
      else if (patch.disabled === false) item.delete('disabled'); // the default: keep the file short
    }, this.lockOptions);
    return { site: findView(config, name), config };
  }
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ');
}

function findView(config: Config, name: string): SiteView {
  const s = config.sites.find((x) => siteName(x) === name);
  if (!s) throw new AdminError('MPGA_INTERNAL', `site "${name}" is missing after the change`);
  return siteView(s);
}

/** The document's `sites` list, created (block style) when the file has none. */
function sitesSeq(doc: Document): YAMLSeq {
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as unknown as typeof doc.contents;
  const node = doc.get('sites', true);
  if (node === undefined || (isScalar(node) && node.value === null)) {
    const seq = new YAMLSeq();
    doc.set('sites', seq);
    return seq;
  }
  if (!isSeq(node)) throw new AdminError('MPGA_INVALID', '"sites" in the file is not a list; edit it by hand');
  return node;
}

function locate(doc: Document, config: Config, name: string): { seq: YAMLSeq; index: number; item: YAMLMap; site: SiteConfig } {
  const index = config.sites.findIndex((s) => siteName(s) === name);
  if (index === -1) throw new AdminError('MPGA_NO_SUCH_SITE', `no site is named "${name}"`);
  const seq = doc.get('sites', true);
  const item = isSeq(seq) ? seq.items[index] : undefined;
  // Aliases and merge keys would make "this item" ambiguous; such files are edited by hand.
  if (!isSeq(seq) || !isMap(item)) throw new AdminError('MPGA_INVALID', `site "${name}" is not written as a plain mapping in the file; edit it by hand`);
  return { seq, index, item, site: config.sites[index]! };
}

/** Replaces a value, keeping the node (and its trailing comment) when it is a scalar replaced by a scalar. */
function setValue(doc: Document, map: YAMLMap, key: string, value: unknown): void {
  const existing = map.get(key, true);
  if (isScalar(existing) && (value === null || typeof value !== 'object')) {
    existing.value = value;
    return;
  }
  map.set(key, doc.createNode(value, { flow: true }));
}

/**
 * Removes an item with the comment written above it. For the first item yaml keeps that comment on
 * the list itself; its last paragraph (blank-line separated) is the item's.
 */
function removeItem(seq: YAMLSeq, index: number): void {
  seq.items.splice(index, 1);
  if (index === 0 && seq.commentBefore) {
    const paragraphs = seq.commentBefore.split('\n\n');
    paragraphs.pop();
    seq.commentBefore = paragraphs.length > 0 ? paragraphs.join('\n\n') : null;
  }
  const first = seq.items[0] as YamlNode | undefined;
  if (index === 0 && first) first.spaceBefore = false;
}

// ---- ports -------------------------------------------------------------------------------------

/** Ports a new site must not get: every loopback upstream port of every site, and mpgate's own listeners. */
export function usedPorts(config: Config): Set<number> {
  const used = new Set<number>();
  for (const s of config.sites) {
    for (const u of siteUpstreams(s)) {
      const p = loopbackPort(u);
      if (p !== undefined) used.add(p);
    }
  }
  for (const l of [...config.listen, ...config.https.listen, ...(config.admin ? [config.admin.listen] : [])]) used.add(splitListen(l).port);
  return used;
}

/** The lowest port of `admin.ports` no site uses and nothing listens on. */
export async function nextFreePort(config: Config, probe: (port: number) => Promise<boolean> = isPortFree): Promise<number> {
  const { from, to } = config.admin?.ports ?? { from: 8000, to: 8999 };
  const used = usedPorts(config);
  for (let port = from; port <= to; port++) {
    if (!used.has(port) && (await probe(port))) return port;
  }
  throw new AdminError('MPGA_NO_FREE_PORT', `every port in ${from}-${to} is used by a site or taken by a running process; widen admin.ports`);
}

/**
 * Whether nothing listens on 127.0.0.1:`port`: a listen probe, closed at once. A service bound to
 * 0.0.0.0 or [::] (dual stack) holds the port on 127.0.0.1 as well, so it is seen too.
 */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((ok) => {
    const server = net.createServer();
    server.once('error', () => ok(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => ok(true)));
  });
}
