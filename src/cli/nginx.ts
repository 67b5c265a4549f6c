/**
 * `mpgate nginx import FILE`: nginx server blocks → mpgate YAML, with a finding for everything not
 * translated. `mpgate nginx export --config FILE`: the nginx config that routes like mpgate.
 */
import { writeFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../core/errors.js';
import { DEFAULT_MPGATE_URL, exportNginx } from '../nginx/export.js';
import { formatFinding, importNginx } from '../nginx/import.js';
import { loadNginx } from '../nginx/load.js';
import { NginxParseError } from '../nginx/parse.js';
import { parseCommand, UsageError } from './usage.js';

const IMPORT_HELP = `Usage: mpgate nginx import FILE [-o OUT] [--conf-dir DIR]

Turns the nginx server blocks in FILE (a whole nginx.conf or a conf.d/sites-enabled snippet) into
an mpgate config, printed as YAML (or written to OUT). Translated: listen, server_name, location
(prefix; "=" when mpgate routes that path the same anyway), proxy_pass (URL, URI part, upstream
blocks), proxy_set_header, client_max_body_size, default_server, set_real_ip_from, the proxy/
client timeouts, and HTTPS: "listen ... ssl [http2]", ssl_certificate(_key) (the site's tls files),
ssl_protocols, Strict-Transport-Security, the port-80 "return 301 https://..." server (the site's
redirectHttp) and "return 503" (disabled). Everything else is a finding on stderr, one per line:
  FILE:LINE directive: message
(e.g. ssl_session_*, ssl_dhparam: mpgate's TLS defaults apply). Relative includes next to FILE are followed; absolute
ones are reported. Exit status: 0 imported (findings or not), 1 unreadable or malformed FILE
(FILE:LINE: what is wrong), 2 usage error.

Options:
  -o, --output OUT    write the YAML to OUT instead of stdout
      --conf-dir DIR  directory relative includes are read from (nginx's: that of nginx.conf;
                      default: FILE's directory)
  -h, --help          this help
`;

const EXPORT_HELP = `Usage: mpgate nginx export --config FILE [--full] [--mpgate URL] [-o OUT]

Prints the nginx configuration that routes like the mpgate config FILE: one server block per site
(listen, server_name, client_max_body_size, timeouts), one location per route (proxy_pass, an
upstream block for several upstreams, Host, X-Real-IP, X-Forwarded-*, WebSocket upgrades).
Without --full it is an http-level snippet for /etc/nginx/conf.d/; check it with "nginx -t".
Relay and OCR routes are mpgate's own services: their locations pass requests to mpgate itself,
which then runs behind nginx (see --mpgate); they are listed on stderr.
Exit status: 0 written, 1 invalid config, 2 usage error.

Options:
  -c, --config FILE   the mpgate config (may also be given as the argument)
      --full          a whole nginx.conf (events, http) instead of a snippet
      --mpgate URL    where mpgate listens behind nginx, for relay/OCR routes (default ${DEFAULT_MPGATE_URL})
  -o, --output OUT    write to OUT instead of stdout
  -h, --help          this help
`;

const HELP = `Usage: mpgate nginx import FILE [-o OUT]
       mpgate nginx export --config FILE [--full]

  import   nginx server blocks → mpgate YAML; untranslated directives reported on stderr
  export   mpgate config → the equivalent nginx configuration

Run "mpgate nginx import --help" or "mpgate nginx export --help" for the details.
`;

export async function runNginx(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'import') return runImport(rest);
  if (sub === 'export') return runExport(rest);
  if (sub === '--help' || sub === '-h' || sub === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  throw new UsageError(`${sub === undefined ? 'nginx needs a subcommand' : `unknown nginx subcommand "${sub}"`}\n\n${HELP}`);
}

async function runImport(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { output: { type: 'string', short: 'o' }, 'conf-dir': { type: 'string' } }, IMPORT_HELP, true);
  if (!parsed) return 0;
  const [file, ...extra] = parsed.positionals;
  if (file === undefined || extra.length > 0) throw new UsageError(`nginx import needs one file: mpgate nginx import FILE\n\n${IMPORT_HELP}`);
  let loaded;
  try {
    loaded = loadNginx(file, parsed.values['conf-dir'] === undefined ? {} : { confDir: parsed.values['conf-dir'] });
  } catch (err) {
    if (err instanceof NginxParseError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === undefined) throw err;
    process.stderr.write(`${e.path ?? file}: cannot read the file (${e.code})\n`);
    return 1;
  }
  let result;
  try {
    result = importNginx(loaded.directives, { source: file, findings: loaded.findings });
  } catch (err) {
    // The import validates what it built; a refusal here is a gap in the importer, not in FILE.
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${file}: the imported config is not valid (please report this):\n${err.message}\n`);
    return 1;
  }
  if (parsed.values.output !== undefined) writeFileSync(parsed.values.output, result.yaml);
  else process.stdout.write(result.yaml);
  for (const f of result.findings) process.stderr.write(`${formatFinding(f)}\n`);
  const sites = result.config.sites?.length ?? 0;
  const n = result.findings.length;
  process.stderr.write(`${file}: ${sites} site${sites === 1 ? '' : 's'} imported${parsed.values.output !== undefined ? ` into ${parsed.values.output}` : ''}; ${n} finding${n === 1 ? '' : 's'}${n ? ' (above)' : ''}\n`);
  return 0;
}

async function runExport(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    config: { type: 'string', short: 'c' },
    full: { type: 'boolean' },
    mpgate: { type: 'string' },
    output: { type: 'string', short: 'o' },
  }, EXPORT_HELP, true);
  if (!parsed) return 0;
  const file = parsed.values.config ?? parsed.positionals[0];
  if (!file || parsed.positionals.length > (parsed.values.config === undefined ? 1 : 0)) throw new UsageError(`nginx export needs one config file: mpgate nginx export --config FILE\n\n${EXPORT_HELP}`);
  const mpgate = parsed.values.mpgate;
  if (mpgate !== undefined && !/^https?:\/\/[^/?#]+\/?$/.test(mpgate)) throw new UsageError(`--mpgate expects a URL such as ${DEFAULT_MPGATE_URL}, got "${mpgate}"`);
  let config;
  try {
    config = await loadConfig(file);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in ${file}\n`);
    return 1;
  }
  const { text, notes } = exportNginx(config, { full: parsed.values.full ?? false, source: file, ...(mpgate === undefined ? {} : { mpgate }) });
  if (parsed.values.output !== undefined) writeFileSync(parsed.values.output, text);
  else process.stdout.write(text);
  for (const note of notes) process.stderr.write(`${file} ${note}\n`);
  return 0;
}
