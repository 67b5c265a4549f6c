/**
 * Which peers may speak for the client. Only connections from `trustedProxies` may set
 * X-Forwarded-* and X-Real-IP; the client address is then the right-most untrusted hop of
 * X-Forwarded-For (what nginx's realip module does with real_ip_recursive on).
 */
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export class ProxyTrust {
  readonly #list = new BlockList();
  readonly #empty: boolean;

  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [addr, bits] = entry.split('/') as [string, string | undefined];
      const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.#list.addAddress(addr, type);
      else this.#list.addSubnet(addr, Number(bits), type);
    }
    this.#empty = entries.length === 0;
  }

  isTrusted(address: string): boolean {
    if (this.#empty || !address) return false;
    const v4 = unmapV4(address);
    if (v4 !== undefined) return this.#list.check(v4, 'ipv4');
    return isIPv6(address) && this.#list.check(address, 'ipv6');
  }

  /** Right-most address in `xff` that is not a trusted proxy; `peer` when there is none. */
  clientFrom(xff: string, peer: string): string {
    const hops = xff.split(',');
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim();
      if (!isIPv4(hop) && !isIPv6(hop)) return peer;
      if (!this.isTrusted(hop)) return hop;
    }
    return hops[0]?.trim() || peer;
  }
}

/** "::ffff:10.0.0.1" → "10.0.0.1"; plain IPv4 unchanged; anything else undefined. */
function unmapV4(address: string): string | undefined {
  if (isIPv4(address)) return address;
  if (address.startsWith('::ffff:') && isIPv4(address.slice(7))) return address.slice(7);
  return undefined;
}
