/**
 * Loads a config file once into a deep-frozen, typed `Config`. Every problem is reported as
 * `file:line:col key: message (hint)`, all at once, so a user fixes the file in one pass.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/errors.js';
import { configSchema, type Config, type ConfigInput } from './schema.js';

export interface ConfigProblem {
  file: string;
  line: number;
  column: number;
  /** Dotted key path, e.g. `sites[0].routes[1].upstream`. */
  key: string;
  message: string;
  hint?: string;
}

/** Reads and validates `file`. Throws `ConfigError` (with `.problems`) when it is not valid. */
export async function loadConfig(file: string): Promise<Config> {
  return (await loadConfigFile(file)).config;
}

/** loadConfig, also returning the exact text it validated (what a reload has really applied). */
export async function loadConfigFile(file: string): Promise<{ config: Config; text: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const problems: ConfigProblem[] = [
      { file, line: 0, column: 0, key: '', message: `cannot read the file (${e.code ?? e.message})`, hint: 'check the path given to --config' },
    ];
    throw new ConfigError(formatProblems(problems), problems, { cause: err });
  }
  // Relative paths in the file mean "next to this file", whatever directory mpgate is started
  // from (a systemd unit runs in /): certificate files, CA files, the ACME store, logs.
  return { config: parseConfig(text, file, { baseDir: dirname(resolvePath(file)) }), text };
}

/**
 * Validates YAML (or JSON) text. `file` is only used in messages; with `baseDir`, relative file
 * paths in the config are resolved against it.
 */
export function parseConfig(text: string, file = '<config>', opts: { baseDir?: string } = {}): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e): ConfigProblem => {
      const pos = lineCounter.linePos(e.pos[0]);
      return { file, line: pos.line, column: pos.col, key: '', message: e.message.split('\n')[0]!, hint: 'fix the YAML syntax (indentation uses spaces, "key: value")' };
    });
    throw new ConfigError(formatProblems(problems), problems);
  }
  const raw = (doc.toJS() ?? {}) as unknown;
  return validate(raw, file, doc, lineCounter, opts.baseDir);
}

/** Validates an in-memory object (used by the CLI one-liner and the demo). */
export function configFromObject(raw: ConfigInput, file = '<flags>'): Config {
  return validate(raw, file);
}

function validate(raw: unknown, file: string, doc?: Document, lines?: LineCounter, baseDir?: string): Config {
  // reportInput: zod 4 drops `issue.input` otherwise, and toProblems needs it to tell "missing" from "wrong type".
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (result.success) return deepFreeze(baseDir === undefined ? result.data : resolvePaths(result.data, baseDir));
  const problems = result.error.issues.flatMap((issue) => toProblems(issue, file, doc, lines));
  throw new ConfigError(formatProblems(problems), problems);
}

function toProblems(issue: z.core.$ZodIssue, file: string, doc?: Document, lines?: LineCounter): ConfigProblem[] {
  const path = issue.path as (string | number)[];
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => {
      const at = locate(doc, lines, [...path, k], true);
      const known = knownKeys(path);
      const near = closest(k, known);
      return {
        file, ...at, key: keyPath([...path, k]),
        message: `unknown key "${k}"`,
        hint: near ? `did you mean "${near}"?` : known.length ? `allowed here: ${known.join(', ')}` : 'remove it',
      };
    });
  }
  const at = locate(doc, lines, path, false);
  let message = issue.message;
  let hint: string | undefined;
  if (issue.code === 'invalid_type' && issue.input === undefined) {
    message = `"${String(path[path.length - 1])}" is required`;
    hint = 'add it';
  } else if (issue.code === 'invalid_union') {
    // The union members' messages say what each form expects; the first is the most specific.
    const inner = issue.errors.flat().find((e) => e.code !== 'invalid_type') ?? issue.errors.flat()[0];
    if (inner) message = inner.message;
  }
  return [{ file, ...at, key: keyPath(path), message, ...(hint ? { hint } : {}) }];
}

/** Line/column of the node at `path` (or of its key). Falls back to the closest existing parent. */
function locate(doc: Document | undefined, lines: LineCounter | undefined, path: (string | number)[], wantKey: boolean): { line: number; column: number } {
  if (!doc || !lines) return { line: 0, column: 0 };
  for (let n = path.length; n >= 0; n--) {
    const sub = path.slice(0, n);
    let range: [number, number, number] | null | undefined;
    if (wantKey && n === path.length && n > 0) {
      const parent = n === 1 ? doc.contents : doc.getIn(sub.slice(0, -1), true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === sub[n - 1]);
        range = (pair?.key as YamlNode | undefined)?.range;
      }
    } else {
      const node = n === 0 ? doc.contents : (doc.getIn(sub, true) as YamlNode | undefined);
      range = node && typeof node === 'object' && 'range' in node ? node.range : undefined;
    }
    if (range) {
      const pos = lines.linePos(range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return { line: 1, column: 1 };
}

function knownKeys(path: (string | number)[]): string[] {
  let shape: unknown = configSchema;
  for (const seg of path) {
    shape = unwrap(shape);
    if (typeof seg === 'number') shape = (unwrap(shape) as { element?: unknown }).element;
    else shape = (unwrap(shape) as { shape?: Record<string, unknown> }).shape?.[seg];
    if (!shape) return [];
  }
  const s = unwrap(shape) as { shape?: Record<string, unknown> };
  return s.shape ? Object.keys(s.shape) : [];
}

/** Peels defaults, optionals, pipes and refinements off a zod schema to reach the object/array. */
function unwrap(schema: unknown): unknown {
  let s = schema as { def?: { type?: string; innerType?: unknown; in?: unknown; options?: unknown[] } } | undefined;
  for (let i = 0; i < 10 && s?.def; i++) {
    const d = s.def;
    if (d.innerType) s = d.innerType as typeof s;
    else if (d.type === 'pipe' && d.in) s = d.in as typeof s;
    else if (d.type === 'union' && d.options) s = (d.options.find((o) => (o as typeof s)?.def?.type === 'object' || (o as typeof s)?.def?.type === 'array') ?? d.options[0]) as typeof s;
    else break;
  }
  return s;
}

function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

export function keyPath(path: readonly (string | number)[]): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('') || '(top level)';
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems
    .map((p) => `${p.file}${p.line ? `:${p.line}:${p.column}` : ''} ${p.key ? `${p.key}: ` : ''}${p.message}${p.hint ? ` (${p.hint})` : ''}`)
    .join('\n');
}

/** Every file or directory path the config holds, made absolute against `base` (before freezing). */
function resolvePaths(cfg: Config, base: string): Config {
  const abs = (p: string): string => resolvePath(base, p);
  const files = <T extends { cert: string; key: string } | undefined>(f: T): T => (f === undefined ? f : { ...f, cert: abs(f.cert), key: abs(f.key) });
  return {
    ...cfg,
    sites: cfg.sites.map((s) => ({
      ...s,
      ...(s.tls !== undefined && s.tls !== 'auto' ? { tls: files(s.tls) } : {}),
      ...(s.routes ? { routes: s.routes.map((r) => (r.relay?.ca !== undefined ? { ...r, relay: { ...r.relay, ca: abs(r.relay.ca) } } : r)) } : {}),
    })),
    https: { ...cfg.https, ...(cfg.https.defaultCert ? { defaultCert: files(cfg.https.defaultCert) } : {}) },
    acme: { ...cfg.acme, storage: abs(cfg.acme.storage), ...(cfg.acme.ca !== undefined ? { ca: abs(cfg.acme.ca) } : {}) },
    ...(cfg.admin ? { admin: { ...cfg.admin, ...(cfg.admin.tls ? { tls: files(cfg.admin.tls) } : {}), ...(cfg.admin.audit !== undefined ? { audit: abs(cfg.admin.audit) } : {}) } } : {}),
    ...(typeof cfg.accessLog === 'object' && cfg.accessLog.path !== '-' ? { accessLog: { path: abs(cfg.accessLog.path) } } : {}),
  };
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
