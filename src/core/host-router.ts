/**
 * Host → site, with nginx's server_name precedence
 * (https://nginx.org/en/docs/http/server_names.html#optimization):
 *   1. exact name
 *   2. longest wildcard starting with an asterisk ("*.a.com"; ".a.com" also matches "a.com")
 *   3. longest wildcard ending with an asterisk ("www.a.*")
 *   4. first matching regex ("~..."), in file order
 *   5. the default site, if configured; otherwise no match (the caller answers 404).
 * Names are compared case-insensitively with the port and a trailing dot removed. Nothing is ever
 * matched by substring.
 */

export class HostRouter<T> {
  readonly #exact = new Map<string, T>();
  readonly #leadingWildcard = new Map<string, T>(); // "*.a.com" stored as ".a.com"
  readonly #trailingWildcard = new Map<string, T>(); // "www.a.*" stored as "www.a."
  readonly #regexes: { re: RegExp; value: T }[] = [];
  #fallback: T | undefined;

  /** Adds one server name pattern. Patterns must already be valid (the config schema checks them). */
  add(pattern: string, value: T): this {
    if (pattern.startsWith('~')) {
      this.#regexes.push({ re: new RegExp(pattern.slice(1), 'i'), value });
      return this;
    }
    const name = pattern.toLowerCase();
    if (name.startsWith('.')) {
      // nginx: ".a.com" is "a.com" plus "*.a.com", and as a wildcard it ranks with "*.a.com".
      if (!this.#exact.has(name.slice(1))) this.#exact.set(name.slice(1), value);
      this.#leadingWildcard.set(name, value);
    } else if (name.startsWith('*.')) {
      this.#leadingWildcard.set(name.slice(1), value);
    } else if (name.endsWith('.*')) {
      this.#trailingWildcard.set(name.slice(0, -1), value);
    } else {
      this.#exact.set(name, value);
    }
    return this;
  }

  /** The value used when nothing else matches. */
  setFallback(value: T | undefined): this {
    this.#fallback = value;
    return this;
  }

  /** Matches a raw Host header value (any case, optional port, optional trailing dot). */
  match(hostHeader: string | undefined): T | undefined {
    if (hostHeader === undefined || hostHeader === '') return this.#fallback;
    // Fast path: most requests carry exactly a configured name.
    const hit = this.#exact.get(hostHeader);
    if (hit !== undefined) return hit;
    const name = normalizeHost(hostHeader);
    if (name === undefined) return this.#fallback;
    return this.#matchName(name) ?? this.#fallback;
  }

  #matchName(name: string): T | undefined {
    const exact = this.#exact.get(name);
    if (exact !== undefined) return exact;
    if (this.#leadingWildcard.size > 0) {
      // Longest suffix first: for "a.b.c.com" try ".b.c.com", ".c.com", ".com".
      for (let dot = name.indexOf('.'); dot !== -1; dot = name.indexOf('.', dot + 1)) {
        const v = this.#leadingWildcard.get(name.slice(dot));
        if (v !== undefined) return v;
      }
    }
    if (this.#trailingWildcard.size > 0) {
      // Longest prefix first: for "www.a.b" try "www.a.", "www.".
      for (let dot = name.lastIndexOf('.'); dot > 0; dot = name.lastIndexOf('.', dot - 1)) {
        const v = this.#trailingWildcard.get(name.slice(0, dot + 1));
        if (v !== undefined) return v;
      }
    }
    for (const { re, value } of this.#regexes) if (re.test(name)) return value;
    return undefined;
  }
}

/**
 * "Example.COM:8080" → "example.com", "[::1]:80" → "[::1]", "a.com." → "a.com".
 * Returns undefined for values that are not a host (so they can never match a configured name).
 */
export function normalizeHost(value: string): string | undefined {
  let host = value.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    if (end === -1) return undefined;
    const rest = host.slice(end + 1);
    if (rest !== '' && !/^:\d*$/.test(rest)) return undefined;
    // An IPv6 literal holds hex digits, ":" and "." (embedded IPv4) only: "[a b]" is not a host.
    if (!/^\[[0-9a-f:.]+\]$/.test(host.slice(0, end + 1))) return undefined;
    return host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  if (colon !== -1) {
    if (!/^\d*$/.test(host.slice(colon + 1))) return undefined;
    host = host.slice(0, colon);
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  // RFC 3986 reg-name characters we accept in a host; anything else (spaces, "/", "@") is not a host.
  // Empty labels ("x..a.com", ".a.com", "a..") are not a host either (nginx answers 400): without this
  // check "x..a.com" would match "*.a.com" and "www.a.." would match "www.a.*".
  if (host === '' || !/^[a-z0-9._-]+$/.test(host) || host.startsWith('.') || host.endsWith('.') || host.includes('..')) return undefined;
  return host;
}
