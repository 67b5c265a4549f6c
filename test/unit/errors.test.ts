import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ADMIN_ERRORS } from '../../src/admin/errors.js';
import { ConfigError, ERROR_CODES, GatewayError, classifyError, isConnectFailure, type ErrorCode } from '../../src/core/errors.js';

/** An error shaped like the ones node and undici throw. */
function withCode(code: string, message = code): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

describe('classifyError', () => {
  const cases: [string, ErrorCode, number][] = [
    ['ECONNREFUSED', 'MPG_UPSTREAM_REFUSED', 502],
    ['ECONNRESET', 'MPG_UPSTREAM_RESET', 502],
    ['EPIPE', 'MPG_UPSTREAM_RESET', 502],
    ['ENOTFOUND', 'MPG_UPSTREAM_UNREACHABLE', 502],
    ['EHOSTUNREACH', 'MPG_UPSTREAM_UNREACHABLE', 502],
    ['ETIMEDOUT', 'MPG_UPSTREAM_CONNECT_TIMEOUT', 504],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'MPG_UPSTREAM_TLS', 502],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'MPG_UPSTREAM_TLS', 502],
  ];
  for (const [errno, code, status] of cases) {
    it(`maps ${errno} to ${code} (${status})`, () => {
      const cause = withCode(errno);
      const g = classifyError(cause);
      assert.ok(g instanceof GatewayError);
      assert.equal(g.code, code);
      assert.equal(g.status, status);
      assert.equal(g.message, ERROR_CODES[code].message);
      assert.equal(g.cause, cause);
    });
  }

  it('maps unknown codes and code-less errors to MPG_UPSTREAM_BAD_RESPONSE', () => {
    for (const err of [withCode('E_SOMETHING_NEW'), new Error('plain'), 'a string', 42, null, undefined, {}, { code: 7 }]) {
      const g = classifyError(err);
      assert.equal(g.code, 'MPG_UPSTREAM_BAD_RESPONSE', String(err));
      assert.equal(g.status, 502);
      assert.equal(g.cause, err);
    }
  });

  it('does not mistake Object.prototype names for known codes', () => {
    for (const name of ['constructor', 'toString', '__proto__', 'hasOwnProperty', 'valueOf']) {
      const g = classifyError(withCode(name));
      assert.equal(g.code, 'MPG_UPSTREAM_BAD_RESPONSE', name);
      assert.equal(g.status, 502, name);
    }
  });

  it('returns a GatewayError unchanged', () => {
    const g = new GatewayError('MPG_NO_ROUTE');
    assert.equal(classifyError(g), g);
  });

  it('only connection failures allow trying another upstream', () => {
    assert.equal(isConnectFailure(classifyError(withCode('ECONNREFUSED'))), true);
    assert.equal(isConnectFailure(classifyError(new GatewayError('MPG_UPSTREAM_CONNECT_TIMEOUT'))), true);
    assert.equal(isConnectFailure(classifyError(withCode('ENOTFOUND'))), true);
    // The request may have reached the upstream: never resent.
    assert.equal(isConnectFailure(classifyError(withCode('ECONNRESET'))), false);
    assert.equal(isConnectFailure(new GatewayError('MPG_UPSTREAM_TIMEOUT')), false);
    assert.equal(isConnectFailure(classifyError(new Error('x'))), false);
  });
});

describe('GatewayError', () => {
  it('takes status and default message from the table', () => {
    const g = new GatewayError('MPG_BODY_TOO_LARGE');
    assert.equal(g.code, 'MPG_BODY_TOO_LARGE');
    assert.equal(g.status, 413);
    assert.equal(g.message, 'request body too large');
    assert.equal(g.name, 'GatewayError');
    assert.ok(g instanceof Error);
    assert.equal(g.cause, undefined);
  });

  it('keeps a detail message and the cause', () => {
    const cause = withCode('ECONNRESET');
    const g = new GatewayError('MPG_UPSTREAM_RESET', 'reset after 3 bytes', { cause });
    assert.equal(g.message, 'reset after 3 bytes');
    assert.equal(g.cause, cause);
    assert.equal(g.status, 502);
  });
});

describe('ConfigError', () => {
  it('carries its problems and a stable code', () => {
    const problems = [{ file: 'f', line: 1, column: 2, key: 'k', message: 'm' }];
    const e = new ConfigError('f:1:2 k: m', problems);
    assert.equal(e.code, 'MPG_CONFIG_INVALID');
    assert.equal(e.name, 'ConfigError');
    assert.equal(e.problems, problems);
  });
});

describe('ERROR_CODES and docs/errors.md', () => {
  const docs = readFileSync(new URL('../../../docs/errors.md', import.meta.url), 'utf8');
  /** Rows of the table: "| `CODE` | status | meaning |". */
  const rows = [...docs.matchAll(/^\|\s*`([^`]+)`\s*\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|\s*$/gm)].map((m) => ({ code: m[1]!, status: m[2]!, meaning: m[3]! }));

  it('the docs table has rows to compare', () => {
    assert.ok(rows.length >= 10, `found only ${rows.length} rows in docs/errors.md`);
  });

  it('lists every code with the same status', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      const row = rows.find((r) => r.code === code);
      assert.ok(row, `${code} is missing from docs/errors.md`);
      assert.equal(row.status, String(spec.status), `${code}: docs say ${row.status}, code says ${spec.status}`);
      assert.ok(row.meaning.length > 0, `${code} has no meaning in docs/errors.md`);
    }
  });

  it('lists every admin API code with the same status', () => {
    for (const [code, status] of Object.entries(ADMIN_ERRORS)) {
      const row = rows.find((r) => r.code === code);
      assert.ok(row, `${code} is missing from docs/errors.md`);
      assert.equal(row.status, String(status), `${code}: docs say ${row.status}, code says ${status}`);
    }
  });

  it('lists no code that does not exist, and none twice', () => {
    const known = new Set([...Object.keys(ERROR_CODES), ...Object.keys(ADMIN_ERRORS)]);
    for (const r of rows) assert.ok(known.has(r.code), `docs/errors.md lists ${r.code}, which src/core/errors.ts does not define`);
    assert.equal(new Set(rows.map((r) => r.code)).size, rows.length, 'a code is listed twice');
  });

  it('every status is an HTTP error status and every code has a message', () => {
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      assert.ok(/^MPG_[A-Z_]+$/.test(code), code);
      assert.ok(spec.status >= 400 && spec.status <= 599, code);
      assert.ok(spec.message.length > 0, code);
    }
  });
});
