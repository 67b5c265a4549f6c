import { isMap, isScalar, isSeq, YAMLSeq, type Document, type Node as YamlNode, type YAMLMap } from 'yaml';
import { createToken, hashToken, type Role } from '../admin/auth.js';
import { AdminError, editConfigFile, SiteStore } from '../admin/site-store.js';
import { auditCli, auditRefused, cliWho, configPath, printAdminError } from './site.js';
import { parseCommand, UsageError } from './usage.js';

const HELP = `Usage: mpgate admin token add NAME [--role admin|user] [--user USER]
       mpgate admin token list
       mpgate admin token remove NAME

Tokens of the admin API (admin.listen, default 127.0.0.1:9090). The token is printed once; the
config file keeps only its scrypt hash. A "user" token sees and changes only the sites whose
owner is its user (--user, default NAME), with plain host names and upstreams on this machine's
ports in admin.ports; an "admin" token every site. Refusals (403) are audited. The file is changed the
way "mpgate site" changes it (locked, validated, comments kept) and a running gateway applies it
on its next reload (at once when watch is on). Adding the first token adds an "admin:" section,
which starts the admin listener at the next start of "mpgate serve".

Options:
  -c, --config FILE   config file (default ./mpgate.yaml)
      --role ROLE     admin or user (default user)
      --user USER     the site owner a user token acts as (default NAME)
  -h, --help          this help

Exit status: 0 done, 1 refused or failed, 2 usage error.
`;

export async function runAdmin(argv: string[]): Promise<number> {
  const [group, sub, ...rest] = argv;
  if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
    process.stdout.write(HELP);
    return group === undefined ? 2 : 0;
  }
  if (group !== 'token') throw new UsageError(`unknown admin subcommand "${group}": token\n\n${HELP}`);
  const parsed = parseCommand(rest, { config: { type: 'string', short: 'c' }, role: { type: 'string' }, user: { type: 'string' } }, HELP, true);
  if (!parsed) return 0;
  const v = parsed.values;
  const file = configPath(v.config);
  const args = parsed.positionals;
  try {
    if (sub === 'add') {
      if (args.length !== 1) throw new UsageError(`admin token add needs one NAME\n\n${HELP}`);
      const role = v.role ?? 'user';
      if (role !== 'admin' && role !== 'user') throw new UsageError(`--role: admin or user, not "${role}"`);
      return await tokenAdd(file, args[0]!, role, v.user);
    }
    if (sub === 'list') {
      if (args.length !== 0) throw new UsageError(`admin token list takes no arguments\n\n${HELP}`);
      return await tokenList(file);
    }
    if (sub === 'remove') {
      if (args.length !== 1) throw new UsageError(`admin token remove needs one NAME\n\n${HELP}`);
      return await tokenRemove(file, args[0]!);
    }
    throw new UsageError(`${sub === undefined ? 'admin token needs a subcommand' : `unknown admin token subcommand "${sub}"`}: add, list or remove\n\n${HELP}`);
  } catch (err) {
    if (err instanceof AdminError) return printAdminError('admin', err);
    throw err;
  }
}

/** The document's admin.tokens list, created (with the admin section) when missing. */
function tokensSeq(doc: Document): { seq: YAMLSeq; createdAdmin: boolean } {
  let admin = doc.get('admin', true);
  let createdAdmin = false;
  if (admin === undefined || (isScalar(admin) && admin.value === null)) {
    admin = doc.createNode({});
    doc.set('admin', admin);
    createdAdmin = true;
  }
  if (!isMap(admin)) throw new AdminError('MPGA_INVALID', '"admin" in the file is not a mapping; edit it by hand');
  const map = admin as YAMLMap;
  let seq = map.get('tokens', true) as unknown;
  if (seq === undefined || (isScalar(seq) && seq.value === null)) {
    seq = new YAMLSeq();
    map.set('tokens', seq);
  }
  if (!isSeq(seq)) throw new AdminError('MPGA_INVALID', '"admin.tokens" in the file is not a list; edit it by hand');
  seq.flow = false;
  return { seq, createdAdmin };
}

async function tokenAdd(file: string, name: string, role: Role, user: string | undefined): Promise<number> {
  const token = createToken();
  const hash = await hashToken(token);
  const detail = { name, role, user: user ?? name };
  let createdAdmin = false;
  let listen = '';
  try {
    const { config } = await editConfigFile(file, ({ doc, config }) => {
      if (config.admin?.tokens.some((t) => t.name === name)) throw new AdminError('MPGA_CONFLICT', `a token named "${name}" exists; remove it first (mpgate admin token remove ${name})`);
      const r = tokensSeq(doc);
      createdAdmin = r.createdAdmin;
      const node = doc.createNode({ name, role, ...(user !== undefined ? { user } : {}), hash }) as YAMLMap;
      node.commentBefore = ` added ${new Date().toISOString().slice(0, 10)} by ${cliWho()}`;
      const last = r.seq.items.at(-1) as YamlNode | undefined;
      if (last?.spaceBefore) node.spaceBefore = true;
      r.seq.items.push(node);
    });
    listen = `${config.admin!.tls ? 'https' : 'http'}://${config.admin!.listen}`;
    await auditCli(file, config, { action: 'token.add', site: null, ok: true, detail });
  } catch (err) {
    if (err instanceof AdminError) await auditRefused(file, 'token.add', null, detail, err);
    throw err;
  }
  const who = role === 'admin' ? 'admin: every site' : `user: the sites owned by ${user ?? name}`;
  process.stdout.write([
    `token "${name}" (${who}):`,
    '',
    `  ${token}`,
    '',
    `Give it to its holder now: it is not shown again (${file} keeps only its hash).`,
    `Use it as "Authorization: Bearer <token>" with the admin API${listen.endsWith(':0') ? '' : ` (${listen}/api/v1/)`}, or paste it into its dashboard.`,
    createdAdmin ? `The admin API (${listen}) starts with the next start of "mpgate serve".` : '',
    '',
  ].filter((l, i, a) => l !== '' || a[i - 1] !== '').join('\n'));
  return 0;
}

async function tokenList(file: string): Promise<number> {
  const { config } = await new SiteStore(file).list();
  const tokens = config.admin?.tokens ?? [];
  if (tokens.length === 0) {
    process.stdout.write(`no admin tokens in ${file} (add one: mpgate admin token add NAME --role admin)\n`);
    return 0;
  }
  const rows = [['NAME', 'ROLE', 'USER'], ...tokens.map((t) => [t.name, t.role, t.role === 'admin' ? '-' : (t.user ?? t.name)])];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  process.stdout.write(rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 2))).join('')).join('\n') + '\n');
  return 0;
}

async function tokenRemove(file: string, name: string): Promise<number> {
  try {
    const { config } = await editConfigFile(file, ({ doc, config }) => {
      const index = config.admin?.tokens.findIndex((t) => t.name === name) ?? -1;
      if (index === -1) throw new AdminError('MPGA_NOT_FOUND', `no token is named "${name}"`);
      const { seq } = tokensSeq(doc);
      seq.items.splice(index, 1);
    });
    await auditCli(file, config, { action: 'token.remove', site: null, ok: true, detail: { name } });
  } catch (err) {
    if (err instanceof AdminError) await auditRefused(file, 'token.remove', null, { name }, err);
    throw err;
  }
  process.stdout.write(`token "${name}" removed; it stops working when the gateway reloads the file\n`);
  return 0;
}
