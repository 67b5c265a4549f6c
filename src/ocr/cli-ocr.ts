/**
 * `mpgate ocr IMAGE... [--json] [--score] [--workers N]`: runs the OCR engine on files, to try it
 * without the gateway. Images are read by the worker pool, the same code path the HTTP route uses.
 */
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { parseCommand, UsageError } from '../cli/usage.js';
import { OcrError } from './errors.js';
import { OcrPool } from './worker-pool.js';

const HELP = `Usage: mpgate ocr IMAGE... [--json] [--score] [--workers N]

Reads the printed text (Chinese and English) of each image with the built-in offline OCR engine
(PaddleOCR PP-OCRv4 mobile) and prints one line of text per detected line, in reading order.
With more than one image, each one's lines follow a "==> IMAGE <==" header.

Options:
  --json          print WeChat's cv/ocr/comm answer instead, one JSON object per image and line
  --score         add each line's confidence (0-1): after a tab, or as "score" with --json
  --workers N     worker threads (default: one per core, at most one per image)
  --max-side N    longest side of the detection input (default 960)
  -h, --help      this help

Exit status: 0 all images read, 1 an image could not be read, 2 usage error.
`;

export interface CliIo {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} needs a positive integer, got "${value}"\n\n${HELP}`);
  return n;
}

/**
 * Runs the command; resolves to the exit status.
 * @example process.exitCode = await runOcr(['scan.jpg', '--json']);
 */
export async function runOcr(argv: string[], io: CliIo = process): Promise<number> {
  const parsed = parseCommand(
    argv,
    { json: { type: 'boolean' }, score: { type: 'boolean' }, workers: { type: 'string' }, 'max-side': { type: 'string' } },
    HELP,
    true,
  );
  if (!parsed) return 0;
  const files = parsed.positionals;
  if (files.length === 0) throw new UsageError(`ocr needs at least one image: mpgate ocr IMAGE...\n\n${HELP}`);
  const workers = positiveInt('workers', parsed.values.workers) ?? Math.min(files.length, availableParallelism());
  const detMaxSide = positiveInt('max-side', parsed.values['max-side']);
  const score = parsed.values.score === true;

  let pool: OcrPool;
  try {
    pool = await OcrPool.start({ workers, maxQueue: files.length, jobTimeoutMs: 120_000, engine: detMaxSide ? { detMaxSide } : {} });
  } catch (err) {
    io.stderr.write(`mpgate ocr: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  try {
    // All files are submitted at once so the workers share them; output keeps the argument order.
    // Each outcome is caught where it is made: a failure must not go unhandled while an earlier file is awaited.
    const outcomes = files.map((file) =>
      readFile(file)
        .then(
          (image) => pool.recognize(image, { score }),
          (err: NodeJS.ErrnoException) => Promise.reject(new Error(`cannot read file: ${err.code ?? err.message}`)),
        )
        .then(
          (answer) => ({ answer }),
          (error: unknown) => ({ error }),
        ),
    );
    let status = 0;
    for (const [i, file] of files.entries()) {
      const outcome = await outcomes[i]!;
      if ('answer' in outcome) {
        const { answer } = outcome;
        if (parsed.values.json) {
          io.stdout.write(`${JSON.stringify(answer)}\n`);
        } else {
          if (files.length > 1) io.stdout.write(`${i > 0 ? '\n' : ''}==> ${file} <==\n`);
          for (const item of answer.items) io.stdout.write(score ? `${item.text}\t${item.score?.toFixed(3)}\n` : `${item.text}\n`);
        }
      } else {
        const err = outcome.error;
        status = 1;
        const detail = err instanceof OcrError ? `${err.message} (${err.code}, errcode ${err.errcode})` : err instanceof Error ? err.message : String(err);
        io.stderr.write(`mpgate ocr: ${file}: ${detail}\n`);
        if (parsed.values.json && err instanceof OcrError) io.stdout.write(`${JSON.stringify(err.toAnswer())}\n`);
      }
    }
    return status;
  } finally {
    await pool.close();
  }
}
