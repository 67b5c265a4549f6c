/**
 * The no-file one-liner, like Caddy's `reverse-proxy`:
 *   mpgate serve --listen 127.0.0.1:8080 --route a.test=http://127.0.0.1:8000 --route b.test=...
 *   mpgate serve --listen 127.0.0.1:8080 --relay relay.test=https://backend.example
 *   mpgate serve --listen 127.0.0.1:8080 --ocr ocr.test
 * Builds the same config object a file would, so it goes through the same validation.
 */
import type { ConfigInput } from './schema.js';

export interface FlagInput {
  listen: string[];
  routes: string[];
  relays?: string[];
  /** Hosts that get the OCR service at /wxocr. */
  ocr?: string[];
  defaultSite?: string | undefined;
  trustedProxies?: string[];
}

export class FlagError extends Error {}

type SiteInput = NonNullable<ConfigInput['sites']>[number];
type RouteInput = NonNullable<SiteInput['routes']>[number];

function split(flag: string, spec: string): [string, string] {
  const eq = spec.indexOf('=');
  if (eq <= 0 || eq === spec.length - 1) throw new FlagError(`${flag} "${spec}": expected HOST=URL, e.g. ${flag} a.test=http://127.0.0.1:8000`);
  return [spec.slice(0, eq).trim(), spec.slice(eq + 1).trim()];
}

export function configFromFlags(flags: FlagInput): ConfigInput {
  const proxies = new Map<string, string[]>();
  const relays = new Map<string, string>();
  for (const spec of flags.routes) {
    const [host, url] = split('--route', spec);
    proxies.set(host, [...(proxies.get(host) ?? []), url]);
  }
  for (const spec of flags.relays ?? []) {
    const [host, url] = split('--relay', spec);
    if (relays.has(host)) throw new FlagError(`--relay: ${host} is given twice; a host has one relay`);
    relays.set(host, url);
  }
  const ocrHosts = new Set((flags.ocr ?? []).map((h) => h.trim()).filter(Boolean));
  const hosts = [...new Set([...proxies.keys(), ...relays.keys(), ...ocrHosts])];
  return {
    listen: flags.listen.length ? flags.listen : ['127.0.0.1:8080'],
    ...(flags.defaultSite ? { defaultSite: flags.defaultSite } : {}),
    ...(flags.trustedProxies?.length ? { trustedProxies: flags.trustedProxies } : {}),
    sites: hosts.map((host): SiteInput => {
      const urls = proxies.get(host);
      const relay = relays.get(host);
      if (relay === undefined && !ocrHosts.has(host)) return { hosts: [host], upstream: urls!.length === 1 ? urls![0]! : urls! };
      const routes: RouteInput[] = [];
      // A relay host: /relay, /relay/... and the seed's .php URLs.
      if (relay !== undefined) routes.push({ path: '/relay', relay: { upstream: relay, phpCompat: true } });
      // The first seed's OCR service, where its page uploads to.
      if (ocrHosts.has(host)) routes.push({ path: '/wxocr', ocr: {} });
      // The --route upstream (if any) takes the rest.
      if (urls) routes.push({ path: '/', upstream: urls.length === 1 ? urls[0]! : urls });
      return { hosts: [host], routes };
    }),
  };
}
