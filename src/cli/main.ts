#!/usr/bin/env node
/**
 * mpgate command line. Each command lives in its own module; this file only dispatches and turns
 * usage errors into a message and exit code 2.
 */
import { runOcr } from '../ocr/cli-ocr.js';
import { runCheck } from './check.js';
import { runSchema } from './schema.js';
import { runServe } from './serve.js';
import { UsageError, VERSION } from './usage.js';

const HELP = `mpgate ${VERSION} — the server side of a WeChat mini-program in one program

Usage: mpgate <command> [options]

Commands:
  serve     Run the gateway (no options: a demo on 127.0.0.1:8080)
  check     Validate a config file and exit (0 valid, 1 invalid)
  schema    Print the JSON Schema of the config file
  ocr       Read the text in image files with the offline engine (WeChat's answer format with --json)
  version   Print the version

Run "mpgate <command> --help" for a command's options.
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  serve: runServe,
  check: runCheck,
  schema: runSchema,
  ocr: runOcr,
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
