import { parseDoctorUrl, parseResolve, runDoctor, type CheckResult, type DoctorReport } from '../tls/doctor-checks.js';
import { TlsToolError } from '../tls/errors.js';
import { parseCommand, UsageError } from './usage.js';

const HELP = `Usage: mpgate doctor https://NAME[/PATH] [options]

Checks a server the way a WeChat mini-program client will meet it, one line per check:
PASS, WARN or FAIL (SKIP when an earlier failure makes it moot), what was found and, when it
is not a pass, the fix. Exit status: 0 no FAIL, 1 at least one FAIL, 2 usage error.

Checks                                                              [rule]
  URL       https:// or wss://, no port, not even ":443"            [FAIL; IP or localhost: WARN]
  DNS       the name resolves; every address is listed              [FAIL]
  TCP       connects to 443 (or the URL's port, for a local test)   [FAIL; port not 443: WARN]
  TLS 1.2+  a TLS 1.2/1.3 handshake succeeds                        [FAIL; TLS 1.3 only: WARN]
  TLS <1.2  a TLS 1.0/1.1-only handshake is refused                 [FAIL when accepted]
  chain     complete and trusted; names the self-signed certificate,
            the missing intermediate or the untrusted root          [FAIL]
  name      the name is in subjectAltName; "*." covers one label    [FAIL]
  expiry    days left                                               [FAIL expired; WARN < 14 days]
  Apple     serverAuth EKU, RSA >= 2048 bits, <= 825 days validity  [FAIL; over 398 days: WARN]
  HTTP/2    h2 offered through ALPN (wx.request enableHttp2)        [WARN]
  wss       with --ws PATH: 101 with a correct Sec-WebSocket-Accept [FAIL]

Options:
      --ca FILE          also trust the CA certificates in FILE (PEM), for a private or
                         "mpgate cert dev" CA; repeatable. Otherwise the public roots bundled
                         with Node (Mozilla's list, what phones trust) and NODE_EXTRA_CA_CERTS.
      --ws PATH          also check that wss://NAME/PATH upgrades (implied by a wss:// URL)
      --resolve NAME:IP  connect to IP for NAME instead of asking DNS, like curl --resolve
                         (NAME:PORT:IP is accepted too); repeatable
      --timeout MS       limit for each network step (default 5000)
      --json             print the report as JSON
  -h, --help             this help

Example:
  mpgate doctor https://api.example.com --ws /socket
  mpgate doctor https://dev.test:8443 --resolve dev.test:127.0.0.1 --ca ~/.local/share/mpgate/certs/ca.pem
`;

const MARK: Record<CheckResult['status'], string> = { pass: 'PASS', warn: 'WARN', fail: 'FAIL', skip: 'SKIP' };

/** The human form of a report: one line per check, the fix indented under it, a count at the end. */
export function formatReport(r: DoctorReport): string {
  const width = Math.max(...r.checks.map((c) => c.title.length));
  const lines = [`mpgate doctor ${r.url} (${r.name} port ${r.port}${r.address ? ` at ${r.address}` : ''})`];
  for (const c of r.checks) {
    lines.push(`${MARK[c.status]}  ${c.title.padEnd(width)}  ${c.found}`);
    if (c.fix && c.status !== 'pass' && c.status !== 'skip') lines.push(`${' '.repeat(6)}fix: ${c.fix}`);
  }
  const n = r.counts;
  lines.push(`${r.checks.length} checks: ${n.pass} pass, ${n.warn} warn, ${n.fail} fail${n.skip ? `, ${n.skip} skipped` : ''}`);
  return `${lines.join('\n')}\n`;
}

export async function runDoctorCommand(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    ca: { type: 'string', multiple: true },
    ws: { type: 'string' },
    resolve: { type: 'string', multiple: true },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
  }, HELP, true);
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(`doctor needs exactly one URL: mpgate doctor https://NAME\n\n${HELP}`);
  const url = positionals[0]!;
  let resolve;
  try {
    parseDoctorUrl(url);
    resolve = (values.resolve ?? []).map(parseResolve);
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${HELP}`);
  }
  const timeoutMs = values.timeout === undefined ? 5000 : Number(values.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new UsageError(`--timeout ${values.timeout}: expected a positive number of milliseconds`);
  if (values.ws !== undefined && !values.ws.startsWith('/')) throw new UsageError(`--ws ${values.ws}: expected a path starting with "/"`);
  let report: DoctorReport;
  try {
    report = await runDoctor({ url, caFiles: values.ca ?? [], ...(values.ws === undefined ? {} : { wsPath: values.ws }), resolve, timeoutMs });
  } catch (err) {
    if (!(err instanceof TlsToolError)) throw err;
    process.stderr.write(`mpgate doctor: ${err.message}\n`);
    return 1;
  }
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}
