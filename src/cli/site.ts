import { userInfo } from 'node:os';
import { resolve } from 'node:path';
import { formatProblems } from '../config/load.js';
import { splitListen, type Config, type SiteConfig } from '../config/schema.js';
import { AuditLog, auditFile } from '../admin/audit.js';
import { siteUpstreams } from '../admin/auth.js';
import { AdminError, SiteStore, siteView, type AddSite, type SiteView } from '../admin/site-store.js';
import { certExpiry, siteTest, tcpProbe, type CertExpiry, type Hop } from '../admin/site-test.js';
import { parseCommand, UsageError } from './usage.js';

const HELP = `Usage: mpgate site add HOST [--owner USER] [--port PORT | --upstream URL] [--name NAME]
                     [--tls auto | --cert FILE --key FILE]
       mpgate site list [--owner USER] [--json]
       mpgate site remove NAME
       mpgate site disable NAME
       mpgate site enable NAME
       mpgate site test HOST [--path PATH] [--gateway URL] [--json]

Sites of a shared server, one per user's subdomain, kept in the config file. Changes are
validated exactly like the file ("mpgate check"), written atomically with the file's comments
kept, and recorded in the audit log; a running "mpgate serve" picks them up without a restart.

  add      Adds a site for HOST, proxied to http://127.0.0.1:PORT. Without --port or --upstream
           the port is the lowest of admin.ports (default 8000-8999) that no site uses and
           nothing listens on.
  list     Host, owner, upstream, whether the upstream accepts connections, certificate expiry.
  remove   Removes a site (by name; a site's name defaults to its first host).
  disable  Keeps the site in the file; it answers 503 MPG_SITE_DISABLED until enabled.
  test     Checks each hop of a request for HOST: DNS, which site the Host selects, whether its
           upstreams accept connections, and a request through the running gateway.

Options:
  -c, --config FILE     config file (default ./mpgate.yaml)
      --owner USER      the user who owns the site (add), or whose sites to show (list)
      --port PORT       the user's local port (add)
      --upstream URL    any upstream URL instead of a local port (add)
      --name NAME       site name (add; default: HOST)
      --tls auto        HTTPS with a certificate issued and renewed by ACME (add; see "acme" in the config)
      --cert FILE, --key FILE   HTTPS with these certificate files instead (add)
      --gateway URL     where the gateway listens (test; default: from the file's "listen")
      --path PATH       request path (test; default /)
      --json            machine-readable output (list, test)
  -h, --help            this help

Exit status: 0 done, 1 refused or failed (the reason is printed), 2 usage error.
`;

export async function runSite(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return sub === undefined ? 2 : 0;
  }
  const parsed = parseCommand(rest, {
    config: { type: 'string', short: 'c' },
    owner: { type: 'string' },
    port: { type: 'string' },
    upstream: { type: 'string' },
    name: { type: 'string' },
    tls: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    gateway: { type: 'string' },
    path: { type: 'string' },
    json: { type: 'boolean' },
  }, HELP, true);
  if (!parsed) return 0;
  const v = parsed.values;
  const file = configPath(v.config);
  const args = parsed.positionals;
  const one = (what: string): string => {
    if (args.length !== 1) throw new UsageError(`site ${sub} needs exactly one ${what}\n\n${HELP}`);
    return args[0]!;
  };
  try {
    switch (sub) {
      case 'add': {
        const host = one('HOST');
        let port: number | undefined;
        if (v.port !== undefined) {
          port = Number(v.port);
          if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--port: expected a port number 1-65535, got "${v.port}"`);
        }
        if (port !== undefined && v.upstream !== undefined) throw new UsageError('give --port or --upstream, not both');
        if (v.tls !== undefined && v.tls !== 'auto') throw new UsageError(`--tls: only "auto" (or give --cert FILE --key FILE), got "${v.tls}"`);
        if ((v.cert === undefined) !== (v.key === undefined)) throw new UsageError('give --cert and --key together');
        if (v.tls !== undefined && v.cert !== undefined) throw new UsageError('give --tls auto or --cert/--key, not both');
        // Paths as typed on the command line: relative to where the command runs.
        const tls = v.tls === 'auto' ? 'auto' as const : v.cert !== undefined ? { cert: resolve(v.cert), key: resolve(v.key!) } : undefined;
        return await siteAdd(file, { host, owner: v.owner, port, upstream: v.upstream, name: v.name, tls });
      }
      case 'list':
        if (args.length > 0) throw new UsageError(`site list takes no arguments\n\n${HELP}`);
        return await siteList(file, v.owner, v.json === true);
      case 'remove':
      case 'disable':
      case 'enable':
        return await siteChange(file, sub, one('NAME'));
      case 'test':
        return await siteTestCommand(file, one('HOST'), v.gateway, v.path, v.json === true);
      default:
        throw new UsageError(`unknown site subcommand "${sub}": add, list, remove, disable, enable or test\n\n${HELP}`);
    }
  } catch (err) {
    if (err instanceof AdminError) return printAdminError('site', err);
    throw err;
  }
}

// ---- shared with `mpgate admin` ------------------------------------------------------------------

export function configPath(given: string | undefined): string {
  return resolve(given ?? 'mpgate.yaml');
}

/** Who the audit log names for a change made from this shell. */
export function cliWho(): string {
  let name: string;
  try {
    name = userInfo().username;
  } catch {
    name = process.env.USER ?? `uid ${process.getuid?.() ?? '?'}`;
  }
  return `cli:${name}`;
}

export function printAdminError(command: string, err: AdminError): number {
  process.stderr.write(`mpgate ${command}: ${err.message}\n`);
  if (err.problems?.length && !err.message.includes(err.problems[0]!.message)) process.stderr.write(`${formatProblems(err.problems)}\n`);
  return 1;
}

/** Appends one audit line for a change made from the command line; a failure to write it is reported, not fatal. */
export async function auditCli(file: string, config: Config | undefined, entry: { action: string; site: string | null; ok: boolean; detail?: unknown; errors?: unknown }): Promise<void> {
  const log = new AuditLog(auditFile(file, config?.admin));
  try {
    await log.record({ who: cliWho(), role: 'admin', ip: null, ...entry });
  } catch (err) {
    process.stderr.write(`mpgate: could not write the audit log ${log.file} (${(err as NodeJS.ErrnoException).code ?? String(err)})\n`);
  } finally {
    await log.close();
  }
}

function reloadNote(config: Config, file: string): string {
  return config.watch
    ? `a running "mpgate serve --config ${file}" applies it within a second`
    : `watch is off in ${file}: send SIGHUP to the running gateway to apply it`;
}

// ---- subcommands ---------------------------------------------------------------------------------

async function siteAdd(file: string, req: AddSite): Promise<number> {
  const store = new SiteStore(file);
  const detail = { host: req.host, owner: req.owner, port: req.port, upstream: req.upstream, tls: req.tls };
  try {
    const { site, config } = await store.add(req, { by: cliWho() });
    await auditCli(file, config, { action: 'site.add', site: site.name, ok: true, detail: { ...detail, upstream: site.upstream } });
    process.stdout.write(`added ${site.name}: ${site.hosts.join(', ')} → ${String(site.upstream)}${site.owner ? ` (owner ${site.owner})` : ''}${site.tls ? `, HTTPS (${site.tls === 'auto' ? 'certificate by ACME' : 'certificate files'})` : ''}\n`);
    const port = typeof site.upstream === 'string' ? /^http:\/\/127\.0\.0\.1:(\d+)$/.exec(site.upstream)?.[1] : undefined;
    if (port) process.stdout.write(`the service must listen on 127.0.0.1:${port}\n`);
    process.stdout.write(`${reloadNote(config, file)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof AdminError) await auditRefused(file, 'site.add', req.name ?? req.host, detail, err);
    throw err;
  }
}

async function siteChange(file: string, action: 'remove' | 'disable' | 'enable', name: string): Promise<number> {
  const store = new SiteStore(file);
  try {
    const { site, config } = action === 'remove' ? await store.remove(name, { by: cliWho() }) : await store.setDisabled(name, action === 'disable', { by: cliWho() });
    await auditCli(file, config, { action: `site.${action}`, site: site.name, ok: true });
    const done = action === 'remove' ? 'removed' : action === 'disable' ? 'disabled (answers 503 MPG_SITE_DISABLED)' : 'enabled';
    process.stdout.write(`${site.name} ${done}\n${reloadNote(config, file)}\n`);
    return 0;
  } catch (err) {
    if (err instanceof AdminError) await auditRefused(file, `site.${action}`, name, undefined, err);
    throw err;
  }
}

/** Audit line for a change the store refused. */
export async function auditRefused(file: string, action: string, site: string | null, detail: unknown, err: AdminError): Promise<void> {
  // The file may be the reason (unreadable, invalid): the audit log then goes to its default place.
  const config = await new SiteStore(file).list().then((l) => l.config, () => undefined);
  await auditCli(file, config, { action, site, ok: false, detail, errors: { code: err.code, message: err.message, ...(err.problems ? { problems: err.problems } : {}) } });
}

export interface ListedSite extends SiteView {
  upstreams: { origin: string; up: boolean }[];
  /** "up", "down", "partly up", "disabled" or "-" (no upstream: an OCR-only site). */
  status: string;
  cert: CertExpiry | null;
}

async function siteList(file: string, owner: string | undefined, json: boolean): Promise<number> {
  const { config } = await new SiteStore(file).list();
  const sites = config.sites.filter((s) => owner === undefined || s.owner === owner);
  const listed = await Promise.all(sites.map((s) => describe(s, config, file)));
  if (json) {
    process.stdout.write(`${JSON.stringify(listed, null, 2)}\n`);
    return 0;
  }
  if (listed.length === 0) {
    process.stdout.write(owner ? `no sites owned by ${owner} in ${file}\n` : `no sites in ${file} (add one: mpgate site add HOST --owner USER)\n`);
    return 0;
  }
  const rows = [['SITE', 'HOSTS', 'OWNER', 'UPSTREAM', 'STATUS', 'CERTIFICATE'], ...listed.map((s) => [
    s.name,
    s.hosts.join(','),
    s.owner ?? '-',
    s.upstream === null ? `${s.routes} routes` : typeof s.upstream === 'string' ? s.upstream : s.upstream.join(','),
    s.status,
    s.cert === null ? '-' : 'error' in s.cert ? s.cert.error : `${s.cert.notAfter.slice(0, 10)} (${s.cert.daysLeft} days)`,
  ])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('').trimEnd()).join('\n') + '\n');
  return 0;
}

async function describe(s: SiteConfig, config: Config, file: string): Promise<ListedSite> {
  const origins = [...new Set(siteUpstreams(s).map((u) => new URL(u).origin))];
  const probes = await Promise.all(origins.map((o) => tcpProbe(o, 1000)));
  const upstreams = origins.map((origin, i) => ({ origin, up: probes[i]!.ok }));
  const up = upstreams.filter((u) => u.up).length;
  const status = s.disabled ? 'disabled' : upstreams.length === 0 ? '-' : up === upstreams.length ? 'up' : up === 0 ? 'down' : `partly up (${up}/${upstreams.length})`;
  return { ...siteView(s), upstreams, status, cert: await certExpiry(s, config, file) };
}

async function siteTestCommand(file: string, host: string, gateway: string | undefined, path: string | undefined, json: boolean): Promise<number> {
  if (path !== undefined && !path.startsWith('/')) throw new UsageError('--path must start with "/"');
  const { config } = await new SiteStore(file).list();
  const gatewayUrl = gateway ?? defaultGateway(config);
  if (gatewayUrl === undefined) throw new UsageError(`cannot tell where the gateway listens from ${file} (listen port 0?): give --gateway http://127.0.0.1:PORT`);
  try {
    new URL(gatewayUrl);
  } catch {
    throw new UsageError(`--gateway: expected a URL such as http://127.0.0.1:8080, got "${gatewayUrl}"`);
  }
  const hops = await siteTest({ gatewayUrl, host, path, config });
  const ok = hops.every((h) => h.ok);
  if (json) process.stdout.write(`${JSON.stringify({ host, ok, hops }, null, 2)}\n`);
  else process.stdout.write(formatHops(hops));
  return ok ? 0 : 1;
}

export function formatHops(hops: readonly Hop[]): string {
  return hops.map((h) => {
    const mark = !h.ok ? 'FAIL' : h.warn ? 'note' : 'ok';
    return `${mark.padEnd(5)}${h.name.padEnd(10)}${h.detail}\n${h.fix && (!h.ok || h.warn) ? `${' '.repeat(15)}→ ${h.fix}\n` : ''}`;
  }).join('');
}

/** http://ADDR:PORT of the first `listen` (all interfaces → 127.0.0.1). */
function defaultGateway(config: Config): string | undefined {
  const { host, port } = splitListen(config.listen[0]!);
  if (port === 0) return undefined;
  const h = host === '' || host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}
