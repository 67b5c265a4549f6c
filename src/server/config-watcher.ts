/**
 * Watches the config file for changes. Watches the directory, not the file: editors and atomic
 * writers replace the file by rename, which a file watch loses track of. Bursts of events are
 * coalesced and unchanged content is ignored, so one save means one reload.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createHash } from 'node:crypto';

/** Time between the two reads that must agree before a changed file is loaded. */
const SETTLE_MS = 50;

export class ConfigWatcher {
  readonly #watcher: FSWatcher;
  #timer: NodeJS.Timeout | undefined;
  #lastHash: string | undefined;
  #closed = false;

  constructor(readonly file: string, private readonly onChange: () => void, readonly debounceMs = 150) {
    const name = basename(file);
    this.#watcher = watch(dirname(file), { persistent: false }, (_event, changed) => {
      if (changed === null || changed === name) this.#schedule();
    });
    this.#watcher.on('error', () => {});
    void this.#hash().then((h) => (this.#lastHash ??= h));
  }

  /**
   * Records the content a reload applied, so the watcher does not fire for it again. It takes the
   * text that was loaded, not the file as it is now: a write that landed after the reload read the
   * file must still trigger the next reload.
   */
  noteLoaded(text: string): void {
    this.#lastHash = sha256(text);
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#check(), this.debounceMs);
  }

  async #check(): Promise<void> {
    const h = await this.#hash();
    if (this.#closed || h === undefined || h === this.#lastHash) return;
    // A writer still at work (a slow machine, a file written in several chunks) shows up as
    // content that changes between two reads: wait for it to settle rather than load half a file.
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    if (this.#closed || (await this.#hash()) !== h) return this.#schedule();
    this.#lastHash = h;
    this.onChange();
  }

  async #hash(): Promise<string | undefined> {
    try {
      return sha256(await readFile(this.file));
    } catch {
      return undefined; // mid-rename: the next event will see the new file
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watcher.close();
  }
}

function sha256(content: string | Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}
