/**
 * The relay's JSON-body form (`{"method":"api/items", ...}`) takes the path out of the body and
 * forwards the rest. Re-serialising the parsed object would not be lossless: numbers beyond 2^53
 * lose digits (12345678901234567890 → 12345678901234567000) and "2.50" becomes 2.5. So the member
 * is cut out of the original text instead, and every other member goes on byte for byte.
 */

export type TakeJsonParamResult =
  | { ok: true; value: string; rest: string }
  | { ok: false; reason: string };

/**
 * Removes every top-level member named `param` from the JSON object in `text`. The last occurrence
 * decides the value, as JSON.parse does. Fails when the text is not a JSON object or the member is
 * missing or not a string.
 */
export function takeJsonParam(text: string, param: string): TakeJsonParamResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'the JSON body does not parse' };
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return { ok: false, reason: 'the JSON body is not an object' };
  const value = (parsed as Record<string, unknown>)[param];
  if (typeof value !== 'string') return { ok: false, reason: `the JSON body has no string "${param}"` };

  // The text is valid JSON (JSON.parse said so), which keeps this scanner simple.
  const kept: string[] = [];
  let i = skipSpace(text, 0) + 1; // past "{"
  for (;;) {
    i = skipSpace(text, i);
    if (text[i] === '}') break;
    const start = i;
    const keyEnd = skipString(text, i);
    const key = JSON.parse(text.slice(start, keyEnd)) as string;
    i = skipSpace(text, keyEnd) + 1; // past ":"
    const end = skipValue(text, skipSpace(text, i));
    if (key !== param) kept.push(text.slice(start, end));
    i = skipSpace(text, end);
    if (text[i] === ',') i++;
  }
  return { ok: true, value, rest: `{${kept.join(',')}}` };
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  return i;
}

/** `i` at an opening quote; returns the index after the closing quote. */
function skipString(text: string, i: number): number {
  for (i++; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return i;
}

/** `i` at the first character of a value; returns the index after it. */
function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return skipString(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (; i < text.length; i++) {
      const d = text[i];
      if (d === '"') i = skipString(text, i) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return i;
  }
  // number, true, false, null
  while (i < text.length && !/[\s,}\]]/.test(text[i]!)) i++;
  return i;
}
