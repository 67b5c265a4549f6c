import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseConfig } from '../../src/config/load.js';
import { configJsonSchema, configSchema, routeSchema, siteSchema } from '../../src/config/schema.js';
import { ConfigError } from '../../src/core/errors.js';

const ROOT = new URL('../../../', import.meta.url);
const SCHEMA_FILE = new URL('schema/mpgate.schema.json', ROOT);
const EXAMPLE_FILE = new URL('examples/mpgate.yaml', ROOT);

interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  default?: unknown;
  [k: string]: unknown;
}

const generated = JSON.parse(JSON.stringify(configJsonSchema())) as JsonSchema;

/** The object-typed member of a schema that may be an anyOf. */
function objectOf(s: JsonSchema): JsonSchema {
  if (s.type === 'object') return s;
  const o = s.anyOf?.find((x) => x.type === 'object');
  assert.ok(o, `no object schema in ${JSON.stringify(s).slice(0, 200)}`);
  return o;
}

describe('JSON Schema', () => {
  it('schema/mpgate.schema.json is what configJsonSchema() generates (run `npm run schema` after changing the schema)', () => {
    assert.ok(existsSync(SCHEMA_FILE), 'schema/mpgate.schema.json is missing: run `npm run schema`');
    const committed = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as unknown;
    assert.deepEqual(committed, generated);
  });

  it('is a draft 2020-12 object schema with an $id and a title', () => {
    assert.equal(generated.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(generated.type, 'object');
    assert.equal(generated.$id, 'https://mpgate.dev/schema/mpgate.schema.json');
    assert.equal(generated.title, 'mpgate configuration');
  });

  it('rejects unknown keys at the top level and in every nested object', () => {
    assert.equal(generated.additionalProperties, false);
    const props = generated.properties!;
    assert.equal(objectOf(props.limits!).additionalProperties, false);
    assert.equal(objectOf(props.upstream!).additionalProperties, false);
    assert.equal(objectOf(props.accessLog!).additionalProperties, false);
    const site = objectOf(props.sites!.items!);
    assert.equal(site.additionalProperties, false);
    assert.equal(objectOf(site.properties!.routes!.items!).additionalProperties, false);
  });

  it('lists exactly the keys the validator accepts', () => {
    assert.deepEqual(Object.keys(generated.properties!).sort(), Object.keys(configSchema.shape).sort());
    const site = objectOf(generated.properties!.sites!.items!);
    assert.deepEqual(Object.keys(site.properties!).sort(), Object.keys(siteSchema.shape).sort());
    const route = objectOf(site.properties!.routes!.items!);
    assert.deepEqual(Object.keys(route.properties!).sort(), Object.keys(routeSchema.shape).sort());
    for (const key of ['path', 'upstream', 'stripPrefix', 'preserveHost', 'setHeaders']) assert.ok(key in route.properties!, key);
    for (const key of ['hosts', 'upstream', 'routes', 'maxBodySize']) assert.ok(key in site.properties!, key);
  });

  it('describes every top-level key', () => {
    for (const [key, prop] of Object.entries(generated.properties!)) {
      assert.equal(typeof prop.description, 'string', `${key} has no description`);
    }
  });

  it('the defaults it shows are the ones the validator applies', () => {
    const defaults = parseConfig('') as unknown as Record<string, unknown>;
    for (const [key, prop] of Object.entries(generated.properties!)) {
      if (prop.default === undefined || ['limits', 'upstream', 'ocr', 'https', 'acme'].includes(key)) continue;
      assert.deepEqual(defaults[key], prop.default, key);
    }
    for (const group of ['limits', 'upstream', 'ocr', 'https', 'acme'] as const) {
      for (const [key, prop] of Object.entries(objectOf(generated.properties![group]!).properties!)) {
        if (prop.default === undefined) continue;
        assert.deepEqual((defaults[group] as Record<string, unknown>)[key], prop.default, `${group}.${key}`);
      }
    }
  });

  it('the validator behind it rejects unknown top-level keys too', () => {
    assert.throws(() => parseConfig('listen: ["127.0.0.1:8080"]\nlisten_port: 80\n'), (err: unknown) => err instanceof ConfigError && err.problems.length === 1 && err.problems[0]!.key === 'listen_port');
  });

  // examples/mpgate.yaml is checked once it exists; there is no placeholder test while it does not.
  if (existsSync(EXAMPLE_FILE)) {
    it('examples/mpgate.yaml is a valid config', () => {
      const cfg = parseConfig(readFileSync(EXAMPLE_FILE, 'utf8'), 'examples/mpgate.yaml');
      assert.ok(cfg.sites.length > 0, 'the example has no sites');
    });
  }
});
