import pino from 'pino';
import { loadConfig } from '../config/load.js';
import { Certificates } from '../tls/certificates.js';
import { ConfigError } from '../core/errors.js';
import { parseCommand, UsageError } from './usage.js';

const HELP = `Usage: mpgate check --config FILE

Validates FILE (YAML) exactly as "serve" would and prints every problem as
FILE:LINE:COLUMN KEY: MESSAGE (HINT). Exit status: 0 valid, 1 invalid, 2 usage error.

Options:
  -c, --config FILE   config file to check (may also be given as the argument)
  -h, --help          this help
`;

export async function runCheck(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, { config: { type: 'string', short: 'c' } }, HELP, true);
  if (!parsed) return 0;
  const file = parsed.values.config ?? parsed.positionals[0];
  if (!file) throw new UsageError(`check needs a file: mpgate check --config FILE\n\n${HELP}`);
  try {
    const cfg = await loadConfig(file);
    // Certificate files are part of the config: read and matched exactly as serve does.
    const certs = new Certificates(pino({ level: 'silent' }));
    try {
      certs.configure(cfg);
    } finally {
      certs.close();
    }
    const routes = cfg.sites.reduce((n, s) => n + (s.routes?.length ?? 1), 0);
    process.stdout.write(`${file}: ok (${cfg.sites.length} site${cfg.sites.length === 1 ? '' : 's'}, ${routes} route${routes === 1 ? '' : 's'}, listening on ${cfg.listen.join(', ')})\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n${err.problems.length} problem${err.problems.length === 1 ? '' : 's'} in ${file}\n`);
    return 1;
  }
}
