/** The nginx config parser: nginx's own tokenizing rules, line numbers, and errors with the line. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NginxParseError, parseNginx, quoteWord, type NginxDirective } from '../../src/nginx/parse.js';

/** name + args (+ block) without file/line, for comparing shapes. */
function shape(list: NginxDirective[]): unknown[] {
  return list.map((d) => (d.block ? [d.name, ...d.args, shape(d.block)] : [d.name, ...d.args]));
}

function parseError(text: string): NginxParseError {
  try {
    parseNginx(text, 'bad.conf');
  } catch (err) {
    assert.ok(err instanceof NginxParseError, `expected NginxParseError, got ${String(err)}`);
    return err;
  }
  assert.fail(`expected a parse error for:\n${text}`);
}

describe('parseNginx: structure and lines', () => {
  it('reads the seed\'s server block, comments after directives included', () => {
    const text = [
      'server {  ',
      '    listen 80; #监听80端口  ',
      '    server_name www.a.com; #要代理的域名  ',
      '    location / {  ',
      '        #代理的本地地址  ',
      '        proxy_pass http://localhost:8000;  ',
      '        #设置请求头数据  ',
      '        proxy_set_header Host $host;  ',
      '        proxy_set_header X-Real-IP $remote_addr;  ',
      '    }  ',
      '}',
    ].join('\n');
    const ast = parseNginx(text, 'seed.conf');
    assert.deepEqual(shape(ast), [['server', [
      ['listen', '80'],
      ['server_name', 'www.a.com'],
      ['location', '/', [
        ['proxy_pass', 'http://localhost:8000'],
        ['proxy_set_header', 'Host', '$host'],
        ['proxy_set_header', 'X-Real-IP', '$remote_addr'],
      ]],
    ]]]);
    const server = ast[0]!;
    assert.equal(server.file, 'seed.conf');
    assert.deepEqual(server.block!.map((d) => d.line), [2, 3, 4]);
    assert.deepEqual(server.block![2]!.block!.map((d) => d.line), [6, 8, 9]);
  });

  it('gives a directive spread over lines the line of its first word; CRLF counts as one line', () => {
    const ast = parseNginx('a 1;\r\n\r\nlog_format main\r\n  "$remote_addr"\r\n  \'$status\';\r\nb;', 'x');
    assert.deepEqual(shape(ast), [['a', '1'], ['log_format', 'main', '$remote_addr', '$status'], ['b']]);
    assert.deepEqual(ast.map((d) => d.line), [1, 3, 6]);
  });

  it('starts a comment with # only where a word could start', () => {
    const ast = parseNginx('a b#c; # comment ; {\nd "#not" x#y;#e;\n');
    assert.deepEqual(shape(ast), [['a', 'b#c'], ['d', '#not', 'x#y']]);
  });

  it('keeps ${var} braces and a } inside a word; { and ; end a word', () => {
    const ast = parseNginx('set $x ${host}a}b;\nlocation /a{ return 404;}\nk v;');
    assert.deepEqual(shape(ast), [['set', '$x', '${host}a}b'], ['location', '/a', [['return', '404']]], ['k', 'v']]);
  });

  it('unescapes \\" \\\' \\\\ \\t \\n in words and keeps other backslashes (regexes)', () => {
    const ast = parseNginx(String.raw`a "x \"y\" \\ \t\n" 'it\'s' ~^api\d+\.a\.com$ b\;c;`);
    assert.deepEqual(ast[0]!.args, ['x "y" \\ \t\n', "it's", '~^api\\d+\\.a\\.com$', 'b\\;c']);
  });

  it('reads empty quoted words and quotes followed directly by ; { or )', () => {
    const ast = parseNginx(`server_name "" '';\nif ($a = "b") { x; }\nmap $a $b {"" 1; default 0;}`);
    assert.deepEqual(shape(ast), [
      ['server_name', '', ''],
      ['if', '($a', '=', 'b', ')', [['x']]],
      ['map', '$a', '$b', [['', '1'], ['default', '0']]],
    ]);
  });

  it('parses an empty file and a file of comments to nothing', () => {
    assert.deepEqual(parseNginx(''), []);
    assert.deepEqual(parseNginx('# only\n   # comments\n'), []);
  });
});

describe('parseNginx: malformed input → NginxParseError with the line', () => {
  it('a } with no block open', () => {
    const e = parseError('a;\nb;\n}\n');
    assert.equal(e.line, 3);
    assert.equal(e.message, 'bad.conf:3: unexpected "}"');
  });

  it('a directive without ; before }', () => {
    const e = parseError('server {\n  listen 80\n}\n');
    assert.equal(e.line, 3);
    assert.match(e.message, /^bad\.conf:3: unexpected "}" \(the directive before it needs a ";"\)/);
  });

  it('a block left open at the end names the block and its line', () => {
    const e = parseError('http {\n  server {\n    listen 80;\n  }\n');
    assert.match(e.detail, /expecting "}" \(the "http" block opened on line 1 is not closed\)/);
  });

  it('a directive cut off at the end of the file', () => {
    assert.match(parseError('a 1;\nb 2').detail, /unexpected end of file, expecting ";" or "}"/);
  });

  it('an unterminated quote is reported where it opened', () => {
    const e = parseError('a 1;\nb "open\nc;\n');
    assert.equal(e.line, 2);
    assert.match(e.detail, /double quote opened on line 2 is not closed/);
  });

  it('a stray ; or { and text glued to a closing quote', () => {
    assert.equal(parseError('a;\n;\n').line, 2);
    assert.match(parseError('{ a; }').detail, /unexpected "\{"/);
    const e = parseError('a "b"c;');
    assert.match(e.detail, /unexpected "c" after a quoted string/);
    assert.equal(e.line, 1);
  });
});

describe('quoteWord', () => {
  it('writes words parseNginx reads back unchanged', () => {
    const words = ['plain', '', 'two words', 'semi;colon', '{brace}', 'back\\slash', '"quoted"', "it's", '#hash', '~^api\\d{2}\\.a\\.com$', 'tab\there', '${var}', 'a\\nb'];
    for (const w of words) {
      const [d] = parseNginx(`x ${quoteWord(w)};`);
      assert.deepEqual(d!.args, [w], `round trip of ${JSON.stringify(w)} as ${quoteWord(w)}`);
    }
    assert.equal(quoteWord('http://127.0.0.1:8000/'), 'http://127.0.0.1:8000/');
  });
});
