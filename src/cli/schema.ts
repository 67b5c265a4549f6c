import { configJsonSchema } from '../config/schema.js';
import { parseCommand } from './usage.js';

const HELP = `Usage: mpgate schema

Prints the JSON Schema of the config file. Point your editor at it for completion, e.g. first line
of mpgate.yaml:  # yaml-language-server: $schema=./schema/mpgate.schema.json
`;

export async function runSchema(argv: string[]): Promise<number> {
  if (!parseCommand(argv, {}, HELP)) return 0;
  process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
  return 0;
}
