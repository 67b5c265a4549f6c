/**
 * Watches the config file for changes. Watches the directory, not the file: editors and atomic
 * writers replace the file by rename, which a file watch loses track of. Bursts of events are
 * coalesced and unchanged content is ignored, so one save means one reload.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { createHash } from 'node:crypto';

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

  /** Records the content just loaded, so the watcher does not fire for it again. */
  async noteLoaded(): Promise<void> {
    this.#lastHash = await this.#hash();
  }

  #schedule(): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.#check(), this.debounceMs);
  }

  async #check(): Promise<void> {
    const h = await this.#hash();
    if (this.#closed || h === undefined || h === this.#lastHash) return;
    this.#lastHash = h;
    this.onChange();
  }

  async #hash(): Promise<string | undefined> {
    try {
      return createHash('sha256').update(await readFile(this.file)).digest('hex');
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
