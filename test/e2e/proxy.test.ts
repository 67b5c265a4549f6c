import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { curl, startBackend, startGateway, type Backend, type TestGateway } from '../helpers.js';

describe('Host routing and forwarding (curl and undici through a real gateway)', () => {
  let a: Backend;
  let b: Backend;
  let gw: TestGateway;

  before(async () => {
    a = await startBackend(undefined, 'a');
    b = await startBackend(undefined, 'b');
    gw = await startGateway({
      sites: [
        { name: 'alice', hosts: ['x.a.com'], upstream: a.url },
        { name: 'bob', hosts: ['*.b.com'], routes: [
          { path: '/', upstream: b.url },
          { path: '/api/', upstream: a.url, stripPrefix: true },
        ] },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await a.close();
    await b.close();
  });

  it('routes by Host, keeps Host, and passes the client address on', async () => {
    const r = await curl(['-H', 'Host: X.A.com.', `${gw.url}/hello?q=1`]);
    assert.equal(r.status, 200);
    const echo = JSON.parse(r.body);
    assert.equal(echo.name, 'a');
    assert.equal(echo.url, '/hello?q=1');
    assert.equal(echo.headers.host, 'X.A.com.');
    assert.equal(echo.headers['x-real-ip'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(echo.headers['x-forwarded-proto'], 'http');
    assert.equal(echo.headers['x-forwarded-host'], 'X.A.com.');
  });

  it('answers unknown hosts with 404 and a stable code, JSON when asked', async () => {
    const text = await curl(['-H', 'Host: x.a.com.evil.test', `${gw.url}/`]);
    assert.equal(text.status, 404);
    assert.equal(text.headers['x-mpgate-error'], 'MPG_NO_SITE');
    const json = await curl(['-H', 'Host: nobody.test', '-H', 'Accept: application/json', `${gw.url}/`]);
    assert.equal(json.status, 404);
    assert.deepEqual(JSON.parse(json.body), { error: { status: 404, code: 'MPG_NO_SITE', message: 'no site for this host' } });
    assert.equal(a.seen.filter((r) => r.headers.host === 'x.a.com.evil.test').length, 0);
  });

  it('picks the longest path prefix and strips it when asked', async () => {
    const api = await request(`${gw.url}/api/items?id=7`, { headers: { host: 'm.b.com' } });
    const apiEcho = (await api.body.json()) as { name: string; url: string };
    assert.equal(apiEcho.name, 'a');
    assert.equal(apiEcho.url, '/items?id=7');
    const root = await request(`${gw.url}/apix`, { headers: { host: 'm.b.com' } });
    assert.equal(((await root.body.json()) as { name: string }).name, 'b');
  });

  it('streams a large body up and down unchanged', async () => {
    const size = 8 * 1024 * 1024;
    const payload = Buffer.alloc(size, 7);
    const r = await request(`${gw.url}/upload`, { method: 'POST', headers: { host: 'x.a.com' }, body: payload });
    const echo = (await r.body.json()) as { bodyLength: number; headers: Record<string, string> };
    assert.equal(echo.bodyLength, size);
    assert.equal(echo.headers['content-length'], String(size));
  });
});
