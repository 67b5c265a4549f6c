/**
 * nginx configuration syntax → a tree of directives with file and line, the way nginx itself reads
 * it (src/core/ngx_conf_file.c, ngx_conf_read_token): words separated by blanks, `;` ends a
 * directive, `{ ... }` is a block, `#` starts a comment only where a word could start, '...' and
 * "..." quote, a backslash makes the next character literal, and in the final word only \" \' \\
 * \t \r \n are unescaped (any other backslash stays, so regexes such as `\d` survive).
 * `${name}` keeps its braces inside a word; a `}` inside a word is part of it.
 *
 * Pure: no file access. `include` is an ordinary directive here; load.ts decides whether to follow it.
 */

export interface NginxDirective {
  name: string;
  args: string[];
  /** File the directive was read from (for messages). */
  file: string;
  /** 1-based line of the directive's first word. */
  line: number;
  /** The directives inside `{ ... }` when this directive opens a block. */
  block?: NginxDirective[];
}

/** Something in an nginx file that `mpgate nginx import` did not carry over (or carried over differently). */
export interface NginxFinding {
  file: string;
  line: number;
  directive: string;
  message: string;
}

/** Malformed nginx syntax. `line` is where nginx would complain. */
export class NginxParseError extends Error {
  constructor(readonly file: string, readonly line: number, readonly detail: string) {
    super(`${file}:${line}: ${detail}`);
    this.name = 'NginxParseError';
  }
}

interface Word {
  value: string;
  line: number;
}

type End = ';' | '{' | '}' | 'eof';

const isBlank = (ch: string) => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';

/** Parses nginx configuration text. Throws NginxParseError with the line on malformed input. */
export function parseNginx(text: string, file = '<nginx>'): NginxDirective[] {
  const reader = new Reader(text, file);
  const root: NginxDirective[] = [];
  const open: NginxDirective[] = [];
  let current = root;
  for (;;) {
    const { words, end } = reader.statement();
    if (end === 'eof') {
      const unclosed = open[open.length - 1];
      if (unclosed) throw new NginxParseError(file, reader.line, `unexpected end of file, expecting "}" (the "${unclosed.name}" block opened on line ${unclosed.line} is not closed)`);
      return root;
    }
    if (end === '}') {
      if (open.length === 0) throw new NginxParseError(file, reader.line, 'unexpected "}"');
      open.pop();
      const parent = open[open.length - 1];
      current = parent ? parent.block! : root;
      continue;
    }
    const [name, ...args] = words;
    const directive: NginxDirective = { name: name!.value, args: args.map((w) => w.value), file, line: name!.line };
    current.push(directive);
    if (end === '{') {
      directive.block = [];
      open.push(directive);
      current = directive.block;
    }
  }
}

class Reader {
  #pos = 0;
  line = 1;

  constructor(readonly text: string, readonly file: string) {}

  #fail(detail: string, line = this.line): never {
    throw new NginxParseError(this.file, line, detail);
  }

  /** Reads words up to the next `;`, `{`, `}` or the end of the text. */
  statement(): { words: Word[]; end: End } {
    const text = this.text;
    const words: Word[] = [];
    let lastSpace = true;
    let needSpace = false;
    let comment = false;
    let escaped = false;
    let variable = false;
    let dquoted = false;
    let squoted = false;
    let start = 0;
    let startLine = 0;
    for (;;) {
      if (this.#pos >= text.length) {
        if (dquoted || squoted) this.#fail(`unexpected end of file: the ${dquoted ? 'double' : 'single'} quote opened on line ${startLine} is not closed`, startLine);
        if (words.length > 0 || !lastSpace) this.#fail('unexpected end of file, expecting ";" or "}"');
        return { words, end: 'eof' };
      }
      const ch = text[this.#pos++]!;
      if (ch === '\n') this.line++;
      if (comment) {
        if (ch === '\n') comment = false;
        continue;
      }
      if (escaped) {
        escaped = false;
        continue;
      }
      if (needSpace) {
        if (isBlank(ch)) {
          lastSpace = true;
          needSpace = false;
          continue;
        }
        if (ch === ';' || ch === '{') return { words, end: ch };
        if (ch === ')') {
          lastSpace = true;
          needSpace = false;
        } else {
          this.#fail(`unexpected "${ch}" after a quoted string`);
        }
      }
      if (lastSpace) {
        start = this.#pos - 1;
        startLine = this.line;
        if (isBlank(ch)) continue;
        switch (ch) {
          case ';':
          case '{':
            if (words.length === 0) this.#fail(`unexpected "${ch}"`);
            return { words, end: ch };
          case '}':
            if (words.length > 0) this.#fail('unexpected "}" (the directive before it needs a ";")');
            return { words, end: '}' };
          case '#':
            comment = true;
            continue;
          case '\\':
            escaped = true;
            lastSpace = false;
            continue;
          case '"':
            start++;
            dquoted = true;
            lastSpace = false;
            continue;
          case "'":
            start++;
            squoted = true;
            lastSpace = false;
            continue;
          case '$':
            variable = true;
            lastSpace = false;
            continue;
          default:
            lastSpace = false;
        }
        continue;
      }
      if (ch === '{' && variable) continue;
      variable = false;
      if (ch === '\\') {
        escaped = true;
        continue;
      }
      if (ch === '$') {
        variable = true;
        continue;
      }
      let found = false;
      if (dquoted) {
        if (ch === '"') {
          dquoted = false;
          needSpace = true;
          found = true;
        }
      } else if (squoted) {
        if (ch === "'") {
          squoted = false;
          needSpace = true;
          found = true;
        }
      } else if (isBlank(ch) || ch === ';' || ch === '{') {
        lastSpace = true;
        found = true;
      }
      if (found) {
        words.push({ value: unescape(text.slice(start, this.#pos - 1)), line: startLine });
        if (ch === ';' || ch === '{') return { words, end: ch };
      }
    }
  }
}

/** nginx's unescaping of a finished word: \" \' \\ \t \r \n; any other backslash is kept. */
function unescape(raw: string): string {
  if (!raw.includes('\\')) return raw;
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const ch = raw[i]!;
    if (ch === '\\' && i + 1 < raw.length) {
      const next = raw[i + 1]!;
      if (next === '"' || next === "'" || next === '\\') {
        out += next;
        i++;
        continue;
      }
      if (next === 't' || next === 'r' || next === 'n') {
        out += next === 't' ? '\t' : next === 'r' ? '\r' : '\n';
        i++;
        continue;
      }
    }
    out += ch;
  }
  return out;
}

/**
 * Writes one word so that parseNginx reads back exactly `value`: bare when that is safe, otherwise
 * double-quoted with `\` and `"` escaped. `$` is left alone (nginx expands variables in most
 * arguments whether quoted or not); callers that need a literal `$` must avoid it themselves.
 */
export function quoteWord(value: string): string {
  if (/^[^\s;{}"'#\\]+$/.test(value)) return value;
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
