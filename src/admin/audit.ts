/**
 * The audit log: one JSON line per change to the sites or tokens (who, what, when, from where,
 * whether it was done), and per refused attempt (403, and changes the config refused). Append-only:
 * every line is one `O_APPEND` write, so the gateway's admin API and `mpgate site ...` run from a
 * shell can share the file without interleaving lines.
 */
import { appendFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { AdminConfig } from '../config/schema.js';

export interface AuditEntry {
  /** ISO time; filled in by `record` when absent. */
  time?: string;
  /** Token name, or `cli:USER` for the command line. */
  who: string;
  role: string | null;
  /** "site.add", "site.update", "site.remove", "site.disable", "site.enable", "site.read", "token.add", ... */
  action: string;
  site: string | null;
  ok: boolean;
  /** HTTP status of the API answer (the CLI leaves it out). */
  status?: number;
  /** What was asked, e.g. {"upstream": "..."}; never a token. */
  detail?: unknown;
  /** Why it was refused: an error code and message, or the config validation problems. */
  errors?: unknown;
  ip: string | null;
}

/** `admin.audit`, or mpgate-audit.log next to the config file. */
export function auditFile(configFile: string, admin: Pick<AdminConfig, 'audit'> | undefined): string {
  return admin?.audit ?? join(dirname(configFile), 'mpgate-audit.log');
}

export class AuditLog {
  #queue: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(readonly file: string) {}

  /** Appends one line. Lines are written in call order; the promise settles when this one is on disk. */
  record(entry: AuditEntry): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('audit log is closed'));
    const { time, ...rest } = entry;
    const line = `${JSON.stringify({ time: time ?? new Date().toISOString(), ...rest })}\n`;
    const write = this.#queue.then(() => appendFile(this.file, line, { mode: 0o600 }));
    this.#queue = write.catch(() => {});
    return write;
  }

  /** Settles when every line recorded so far is written (or failed); never rejects. */
  settled(): Promise<void> {
    return this.#queue;
  }

  /** Waits for the lines already recorded. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#queue;
  }
}
