import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/cli/usage.js';
import { runOcr } from '../../src/ocr/cli-ocr.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/ocr/', import.meta.url));

async function run(...argv: string[]) {
  let stdout = '';
  let stderr = '';
  const status = await runOcr(argv, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) } });
  return { status, stdout, stderr };
}

describe('mpgate ocr', () => {
  it('prints the text lines of several images under headers, with scores, and fails for a missing file', async () => {
    const r = await run(`${FIXTURES}zh-line.png`, `${FIXTURES}mixed-lines.png`, `${FIXTURES}missing.png`, '--score', '--workers', '2');
    assert.equal(r.status, 1);
    const blocks = r.stdout.split('\n\n');
    assert.match(blocks[0]!, /^==> .*zh-line\.png <==\n欢迎使用微信小程序文字识别服务\t0\.\d{3}$/);
    assert.match(blocks[1]!, /==> .*mixed-lines\.png <==\n订单号 ?A1024-778\t/);
    assert.match(r.stderr, /missing\.png: cannot read file: ENOENT/);
  });

  it('prints WeChat’s answer with --json, and the WeChat error for an undecodable file', async () => {
    const r = await run(`${FIXTURES}exif-rotated.jpg`, `${FIXTURES}fixtures.json`, '--json', '--workers', '1');
    assert.equal(r.status, 1);
    const [ok, bad] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(ok!.errcode, 0);
    assert.deepEqual(ok!.img_size, { w: 600, h: 200 });
    assert.equal((ok!.items as unknown[]).length, 2);
    assert.deepEqual(bad, { errcode: 101002, errmsg: 'image decode failed' });
    assert.match(r.stderr, /fixtures\.json: .*OCR_DECODE_FAILED, errcode 101002/);
  });

  it('treats no image or a bad --workers as usage errors', async () => {
    await assert.rejects(run(), UsageError);
    await assert.rejects(run('x.png', '--workers', '0'), /--workers needs a positive integer/);
    await assert.rejects(run('x.png', '--bogus'), UsageError);
  });
});
