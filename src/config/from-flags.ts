/**
 * The no-file one-liner, like Caddy's `reverse-proxy`:
 *   mpgate serve --listen 127.0.0.1:8080 --route a.test=http://127.0.0.1:8000 --route b.test=...
 * Builds the same config object a file would, so it goes through the same validation.
 */
import type { ConfigInput } from './schema.js';

export interface FlagInput {
  listen: string[];
  routes: string[];
  defaultSite?: string | undefined;
  trustedProxies?: string[];
}

export class FlagError extends Error {}

export function configFromFlags(flags: FlagInput): ConfigInput {
  const byHost = new Map<string, string[]>();
  for (const spec of flags.routes) {
    const eq = spec.indexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw new FlagError(`--route "${spec}": expected HOST=URL, e.g. --route a.test=http://127.0.0.1:8000`);
    const host = spec.slice(0, eq).trim();
    const url = spec.slice(eq + 1).trim();
    const list = byHost.get(host) ?? [];
    list.push(url);
    byHost.set(host, list);
  }
  return {
    listen: flags.listen.length ? flags.listen : ['127.0.0.1:8080'],
    ...(flags.defaultSite ? { defaultSite: flags.defaultSite } : {}),
    ...(flags.trustedProxies?.length ? { trustedProxies: flags.trustedProxies } : {}),
    sites: [...byHost].map(([host, urls]) => ({ hosts: [host], upstream: urls.length === 1 ? urls[0]! : urls })),
  };
}
