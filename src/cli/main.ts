#!/usr/bin/env node
/**
 * mpgate command line. Each command lives in its own module; this file only dispatches and turns
 * usage errors into a message and exit code 2.
 */
import { UsageError, VERSION } from './usage.js';

const HELP = `mpgate ${VERSION} — the server side of a WeChat mini-program in one program

Usage: mpgate <command> [options]

Commands:
  serve     Run the gateway (no options: a demo on 127.0.0.1:8080)
  check     Validate a config file and exit (0 valid, 1 invalid)
  schema    Print the JSON Schema of the config file
  ocr       Read the text in image files with the offline engine (WeChat's answer format with --json)
  cert      Local CA and certificates for trying HTTPS (cert dev), or list certificate files (cert list)
  doctor    Check an https:// server the way WeChat will (TLS versions, chain, name, expiry, h2, wss)
  nginx     Import nginx server blocks as mpgate config (nginx import FILE), or export the nginx equivalent
  site      Sites of a shared server: site add HOST --owner USER, list, remove, disable, enable, test
  admin     Admin API tokens: admin token add NAME [--role admin], list, remove
  version   Print the version

Run "mpgate <command> --help" for a command's options.
`;

// Each command is imported when it runs: `ocr` loads sharp and onnxruntime, `serve` the gateway,
// and none of that should slow down `mpgate check` or `--help`.
const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: async (argv) => (await import('./serve.js')).runServe(argv),
  check: async (argv) => (await import('./check.js')).runCheck(argv),
  schema: async (argv) => (await import('./schema.js')).runSchema(argv),
  ocr: async (argv) => (await import('../ocr/cli-ocr.js')).runOcr(argv),
  cert: async (argv) => (await import('./cert.js')).runCert(argv),
  doctor: async (argv) => (await import('./doctor.js')).runDoctorCommand(argv),
  nginx: async (argv) => (await import('./nginx.js')).runNginx(argv),
  site: async (argv) => (await import('./site.js')).runSite(argv),
  admin: async (argv) => (await import('./admin.js')).runAdmin(argv),
  version: async () => {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  },
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === '--version' || command === '-v') return COMMANDS.version!([]);
  const run = COMMANDS[command];
  if (run === undefined) {
    process.stderr.write(`mpgate: unknown command "${command}"\n\n${HELP}`);
    return 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0 || process.exitCode === undefined) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`mpgate: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`mpgate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
