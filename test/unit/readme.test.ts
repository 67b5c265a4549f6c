/** The README's config examples are what users copy: every one must pass the same validation as a file. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { ROOT } from '../helpers.js';

describe('README.md config examples', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);

  it('has examples to check', () => {
    assert.ok(blocks.length >= 3, `found ${blocks.length} yaml blocks`);
  });

  blocks.forEach((yaml, i) => {
    it(`example ${i + 1} is a valid config (${yaml.split('\n').find((l) => l.trim() && !l.trim().startsWith('#'))?.trim()})`, () => {
      const cfg = parseConfig(yaml, `README.md yaml block ${i + 1}`);
      assert.ok(cfg.sites.length > 0);
    });
  });
});
