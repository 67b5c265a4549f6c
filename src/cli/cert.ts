import { X509Certificate } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import tls from 'node:tls';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../core/errors.js';
import { isAcmeStorage, listStoredSites, type StoredSite } from '../tls/acme/store.js';
import { analyzeChain, isKeyOnlyPem, isoDay, readCertificates, shortDn, summarize } from '../tls/cert-info.js';
import { defaultCertDir, ensureDevCertificates, shellQuote, trustHint, type DevCertResult } from '../tls/dev-ca.js';
import { TlsToolError } from '../tls/errors.js';
import { parseCommand, UsageError } from './usage.js';

/** The default of acme.storage (config/schema.ts), relative to where the gateway runs. */
const DEFAULT_ACME_STORAGE = './mpgate-certs';

const HELP = `Usage: mpgate cert dev [--dir DIR] [--name NAME]... [--force]
       mpgate cert list [--config FILE | --dir DIR | FILE...]

Certificates for trying HTTPS on a laptop, and a look at certificate files.
Exit status: 0 done, 1 failed, 2 usage error.

  dev    Creates (or reuses) a local CA and a certificate signed by it for the names given
         (default: localhost, *.localhost, 127.0.0.1, ::1), with a full-chain file, and prints
         the command that makes this machine trust the CA. Run it again to reuse the files:
         the leaf is reissued only when the names change or under 30 days are left, and the
         CA is never replaced without --force. Needs the openssl program.
  list   Shows, for each certificate file (PEM or DER): names (subjectAltName), subject,
         issuer, validity and days left, key type, and whether the file's chain is complete.
         A --dir that is an ACME storage directory (acme.storage) lists the certificates of
         the sites with tls: auto, with their state, last error and next attempt; without
         --dir or files, ${DEFAULT_ACME_STORAGE} (the default acme.storage) is listed too when it exists.

Options:
  -c, --config FILE the certificates a config serves: its sites' tls files and its ACME store (list)
      --dir DIR     where the files are (default: ${defaultCertDir()},
                    or $MPGATE_CERT_DIR), or an ACME storage directory
      --name NAME   a DNS name, "*.name" or an IP address for the certificate (dev; repeatable)
      --force       replace the CA even if one exists (dev); certificates it signed stop being trusted
  -h, --help        this help

Phones do not trust this CA: WeChat on a device needs a certificate from a public CA.
`;

export async function runCert(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  if (sub === 'dev') return certDev(rest);
  if (sub === 'list') return certList(rest);
  throw new UsageError(`${sub === undefined ? 'cert needs a subcommand' : `unknown cert subcommand "${sub}"`}: dev or list\n\n${HELP}`);
}

async function certDev(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { dir: { type: 'string' }, name: { type: 'string', multiple: true }, force: { type: 'boolean' } }, HELP);
  if (!parsed) return 0;
  const dir = resolve(parsed.values.dir ?? defaultCertDir());
  let r: DevCertResult;
  try {
    r = await ensureDevCertificates({ dir, names: parsed.values.name ?? [], force: parsed.values.force === true });
  } catch (err) {
    if (err instanceof TypeError) throw new UsageError(err.message);
    if (!(err instanceof TlsToolError)) throw err;
    process.stderr.write(`mpgate cert dev: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(formatDev(r));
  return 0;
}

/** What `cert dev` prints: the files, their expiry, and how to trust the CA here. */
export function formatDev(r: DevCertResult, platform: NodeJS.Platform = process.platform): string {
  const f = r.files;
  const leafState = r.leaf.state === 'reused' ? 'reused' : r.leaf.state === 'created' ? 'created' : `reissued: ${r.leaf.state}`;
  const hint = trustHint(f.caCert, platform);
  const q = shellQuote;
  const firstDns = r.leaf.names.find((n) => !n.startsWith('*.')) ?? 'localhost';
  const host = firstDns.includes(':') ? `[${firstDns}]` : firstDns;
  const lines = [
    `CA         ${f.caCert} (${r.ca.created ? 'created' : 'reused'}), expires ${isoDay(r.ca.notAfter)} (${r.ca.daysLeft} days)`,
    `CA key     ${f.caKey} (mode 0600; keep it private: it can sign for any name)`,
    `cert       ${f.cert} (${leafState}) for ${r.leaf.names.join(', ')}, expires ${isoDay(r.leaf.notAfter)} (${r.leaf.daysLeft} days)`,
    `key        ${f.key} (mode 0600)`,
    `fullchain  ${f.fullchain} (certificate + CA: give this file to the server)`,
    ...r.fixedModes.map((m) => `fixed      ${m} was readable by others; now 0600`),
    '',
    `Trust the CA on this machine (${hint.label}):`,
    ...hint.commands.map((c) => `  ${c}`),
    'Node.js (mpgate, scripts):',
    `  export NODE_EXTRA_CA_CERTS=${q(f.caCert)}`,
    'curl:',
    `  curl --cacert ${q(f.caCert)} https://${host}:8443/`,
    'Check a server that uses it:',
    `  mpgate doctor https://${host}:8443/ --ca ${q(f.caCert)}`,
  ];
  return `${lines.join('\n')}\n`;
}

const CERT_EXT = new Set(['.pem', '.crt', '.cer', '.der']);

async function certList(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { dir: { type: 'string' }, config: { type: 'string', short: 'c' } }, HELP, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if ([values.dir !== undefined, positionals.length > 0, values.config !== undefined].filter(Boolean).length > 1) throw new UsageError(`give one of --config, --dir or files\n\n${HELP}`);
  let files: string[];
  const fromDir = positionals.length === 0 && values.config === undefined;
  let acme: { dir: string; sites: StoredSite[] } | undefined;
  if (values.config !== undefined) {
    // What a config serves: every site's certificate files, the default certificate, and the ACME store.
    let cfg;
    try {
      cfg = await loadConfig(values.config);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    const certFiles = [...cfg.sites.flatMap((site) => (site.tls !== undefined && site.tls !== 'auto' ? [site.tls.cert] : [])), ...(cfg.https.defaultCert ? [cfg.https.defaultCert.cert] : [])];
    files = [...new Set(certFiles)];
    if (cfg.sites.some((site) => site.tls === 'auto') && (await isAcmeStorage(cfg.acme.storage))) acme = { dir: cfg.acme.storage, sites: await listStoredSites(cfg.acme.storage) };
    if (files.length === 0 && acme === undefined) {
      process.stderr.write(`mpgate cert list: ${values.config} serves no certificate yet (no site has tls, or tls: auto has not issued one)\n`);
      return 1;
    }
  } else if (fromDir) {
    const dir = resolve(values.dir ?? defaultCertDir());
    // The gateway's ACME storage: named with --dir, or the default one in the current directory.
    const acmeDir = values.dir !== undefined ? dir : resolve(DEFAULT_ACME_STORAGE);
    if (await isAcmeStorage(acmeDir)) acme = { dir: acmeDir, sites: await listStoredSites(acmeDir) };
    let names: string[] = [];
    try {
      names = await readdir(dir);
    } catch (err) {
      if (acme === undefined) {
        process.stderr.write(`mpgate cert list: ${dir}: cannot read the directory (${(err as NodeJS.ErrnoException).code ?? String(err)}); create certificates with: mpgate cert dev --dir ${shellQuote(dir)}\n`);
        return 1;
      }
    }
    files = [];
    for (const n of names.sort()) {
      const p = join(dir, n);
      if (!CERT_EXT.has(extname(n).toLowerCase()) || !(await stat(p)).isFile()) continue;
      if (isKeyOnlyPem(await readFile(p, 'latin1'))) continue;
      files.push(p);
    }
    if (files.length === 0 && acme === undefined) {
      process.stderr.write(`mpgate cert list: no certificate files in ${dir}; create some with: mpgate cert dev --dir ${shellQuote(dir)}\n`);
      return 1;
    }
    if (files.length === 0 && acme?.sites.length === 0) {
      process.stderr.write(`mpgate cert list: ${acme.dir}: ACME storage without sites yet (the gateway orders certificates for sites with tls: auto)\n`);
      return 1;
    }
  } else {
    files = positionals.map((p) => resolve(p));
  }
  const acmeCerts = (acme?.sites ?? []).flatMap((s) => (s.certFile ? [s.certFile] : []));
  files.push(...acmeCerts);

  const loaded: { file: string; certs: X509Certificate[] }[] = [];
  let failed = 0;
  for (const file of files) {
    try {
      loaded.push({ file, certs: await readCertificates(file) });
    } catch (err) {
      if (!(err instanceof TlsToolError)) throw err;
      process.stderr.write(`mpgate cert list: ${err.message}\n`);
      failed++;
    }
  }
  // Roots found among the files (ca.pem next to a leaf) complete chains, as do the public roots.
  const localRoots = new Map<string, { cert: X509Certificate; file: string }>();
  // A root is named after the smallest file that holds it (ca.pem rather than a full-chain file).
  for (const l of [...loaded].sort((a, b) => a.certs.length - b.certs.length)) {
    for (const c of l.certs) if (c.ca && summarize(c).selfSigned && !localRoots.has(c.fingerprint256)) localRoots.set(c.fingerprint256, { cert: c, file: l.file });
  }
  const anchors = [...[...localRoots.values()].map((r) => r.cert), ...tls.rootCertificates.map((p) => new X509Certificate(p))];
  const now = new Date();
  const out: string[] = [];
  for (const l of loaded) {
    if (acmeCerts.includes(l.file)) continue;
    out.push(describeFile(l.file, l.certs, anchors, localRoots, now));
  }
  for (const site of acme?.sites ?? []) {
    const l = loaded.find((x) => x.file === site.certFile);
    const head = l ? describeFile(l.file, l.certs, anchors, localRoots, now) : `${site.dir} (${site.certFile ? 'certificate unreadable' : 'no certificate yet'})\n`;
    out.push(`${head}${acmeLines(site, now).join('\n')}\n`);
  }
  process.stdout.write(out.join('\n'));
  return failed === 0 ? 0 : 1;
}

/** The ACME lines of a site: its names, the outcome of the last attempt, and the next one. */
function acmeLines(site: StoredSite, now: Date): string[] {
  const st = site.state;
  if (st === undefined) return [`  site      ${site.site} (no state file)`];
  const lines = [`  site      ${site.site} (${st.names.join(', ')}), tls: auto`];
  if (st.state === 'failed') {
    lines.push(`  state     failed (${st.failures} attempt${st.failures === 1 ? '' : 's'}): ${st.lastError ?? 'unknown error'}`);
  } else {
    lines.push(`  state     valid${st.issuedAt ? `, issued ${st.issuedAt}` : ''}${st.certDirectory ? ` by ${st.certDirectory}` : ''}`);
  }
  if (st.nextAttempt !== undefined) {
    const due = Date.parse(st.nextAttempt) <= now.getTime() ? ', due (when the gateway runs)' : '';
    lines.push(`  next      ${st.nextAttempt} (${st.state === 'failed' ? 'retry' : 'renewal'}${due})`);
  }
  return lines;
}

function describeFile(file: string, certs: X509Certificate[], anchors: X509Certificate[], localRoots: Map<string, { file: string }>, now: Date): string {
  const s = summarize(certs[0]!, now);
  const left = s.expired ? `EXPIRED ${Math.floor((now.getTime() - s.notAfter.getTime()) / 86_400_000)} days ago`
    : s.notYetValid ? 'NOT YET VALID'
    : `${s.daysLeft} days left`;
  const lines = [
    `${file} (${certs.length} certificate${certs.length === 1 ? '' : 's'})`,
    `  names     ${s.names.length ? s.names.join(', ') : '(none)'}`,
    `  subject   ${s.subject}`,
    `  issuer    ${s.issuer}`,
    `  valid     ${isoDay(s.notBefore)} → ${isoDay(s.notAfter)}, ${left}`,
    `  key       ${s.key}${s.isCa ? ', CA' : ''}`,
    `  chain     ${chainText(file, certs, anchors, localRoots)}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** Whether the file alone (plus a root the client already has) is a complete chain. */
function chainText(file: string, certs: X509Certificate[], anchors: X509Certificate[], localRoots: Map<string, { file: string }>): string {
  const a = analyzeChain(certs, anchors);
  const names = a.path.map((c) => `"${shortDn(c.subject)}"`);
  const extra = [
    ...(a.outOfOrder ? ['out of order (leaf first, then each issuer)'] : []),
    ...(a.unused.length ? [`${a.unused.length} certificate${a.unused.length === 1 ? '' : 's'} not part of the chain`] : []),
  ];
  const tail = extra.length ? `; ${extra.join('; ')}` : '';
  if (certs[0]!.ca && summarize(certs[0]!).selfSigned) return `self-signed root CA (the file to trust, not to serve)${tail}`;
  if (a.problem === 'self-signed') {
    return certs[0]!.ca ? `self-signed root CA${tail}` : `self-signed leaf: no client trusts it${tail}`;
  }
  if (a.problem === 'missing-issuer') {
    return `incomplete: issuer "${a.missingIssuer}" of ${names[names.length - 1]} is not in the file${certs.length === 1 ? ' (a server needs the full-chain file)' : ''}${tail}`;
  }
  if (a.problem === 'untrusted-root') return `ends at the untrusted root ${names[names.length - 1]}${tail}`;
  const anchor = a.anchor!;
  const local = localRoots.get(anchor.fingerprint256);
  const where = certs.includes(anchor) ? 'in this file' : local ? (local.file === file ? 'in this file' : `${dirname(local.file) === dirname(file) ? basename(local.file) : local.file}`) : 'a public root';
  const path = a.path.includes(anchor) ? names.join(' → ') : [...names, `"${shortDn(anchor.subject)}"`].join(' → ');
  return `complete: ${path} (root: ${where})${tail}`;
}
