/**
 * Reads an nginx file for `mpgate nginx import` and follows its `include`s — only the relative ones
 * that exist. nginx resolves a relative include against its configuration directory (the directory
 * of nginx.conf); here that is `confDir`, by default the directory of the imported file. Absolute
 * includes (/etc/nginx/mime.types, /etc/nginx/sites-enabled/*) are reported and not followed: the
 * import reads what it was given and files next to it, never the rest of the machine's /etc.
 * A `*`/`?`/`[...]` pattern in the last path component is expanded in name order, as nginx does.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, resolve } from 'node:path';
import { parseNginx, type NginxDirective, type NginxFinding } from './parse.js';

export interface LoadedNginx {
  /** The file's directives with followed includes spliced in where they were. */
  directives: NginxDirective[];
  /** Includes that were not followed. */
  findings: NginxFinding[];
}

const MAX_DEPTH = 16;

/** Reads and parses `file`; throws NginxParseError on malformed syntax (in it or an included file), or the fs error. */
export function loadNginx(file: string, opts: { confDir?: string } = {}): LoadedNginx {
  const confDir = resolve(opts.confDir ?? dirname(file));
  const findings: NginxFinding[] = [];
  const directives = expand(parseNginx(readFileSync(file, 'utf8'), file), confDir, findings, [resolve(file)]);
  return { directives, findings };
}

function expand(list: NginxDirective[], confDir: string, findings: NginxFinding[], chain: string[]): NginxDirective[] {
  const out: NginxDirective[] = [];
  for (const d of list) {
    if (d.name !== 'include') {
      out.push(d.block ? { ...d, block: expand(d.block, confDir, findings, chain) } : d);
      continue;
    }
    const report = (message: string) => findings.push({ file: d.file, line: d.line, directive: 'include', message });
    const target = d.args[0];
    if (d.args.length !== 1 || target === undefined || target === '') {
      report('expects one file name; not followed');
      continue;
    }
    if (isAbsolute(target) && /^\/etc\/letsencrypt\/options-ssl-nginx\.conf$/.test(target)) {
      // session cache, ssl_protocols TLSv1.2 TLSv1.3, ECDHE(+DHE) AES-GCM/ChaCha20 ciphers.
      report(`${target} (certbot's TLS settings) not followed: mpgate's defaults apply, TLS 1.2 and 1.3 with ECDHE and AES-GCM or ChaCha20 (certbot's list without its DHE suites)`);
      continue;
    }
    if (isAbsolute(target)) {
      report(`${target} not followed (absolute path): its directives are not translated; import that file on its own, or copy it next to this one and include it by a relative name${/proxy_params/.test(target) ? ' (Debian\'s proxy_params sets Host $http_host: the routes here then need preserveHost: true)' : ''}`);
      continue;
    }
    const files = matchInclude(join(confDir, target));
    if (files === undefined) {
      report(`${target} not followed: ${join(confDir, target)} does not exist (relative includes are read from ${confDir}; see --conf-dir)`);
      continue;
    }
    for (const f of files) {
      const abs = resolve(f);
      if (chain.includes(abs) || chain.length > MAX_DEPTH) {
        report(`${target} not followed: it includes itself (${[...chain, abs].map((p) => basename(p)).join(' → ')})`);
        continue;
      }
      out.push(...expand(parseNginx(readFileSync(abs, 'utf8'), f), confDir, findings, [...chain, abs]));
    }
  }
  return out;
}

/** The files an include names: the file itself, or the matches of a pattern in its last component. */
function matchInclude(path: string): string[] | undefined {
  const dir = dirname(path);
  const name = basename(path);
  if (!/[*?[]/.test(name)) {
    try {
      return statSync(path).isFile() ? [path] : undefined;
    } catch {
      return undefined;
    }
  }
  const re = new RegExp(`^${name.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return undefined;
  }
  // A pattern that matches nothing is not an error for nginx either.
  return names.filter((n) => re.test(n) && !n.startsWith('.')).sort().map((n) => join(dir, n)).filter((p) => statSync(p).isFile());
}
