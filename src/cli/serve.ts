import { resolve as resolvePath } from 'node:path';
import { configFromFlags, FlagError } from '../config/from-flags.js';
import { configFromObject, loadConfig, loadConfigFile } from '../config/load.js';
import { siteName, type Config, type ConfigInput } from '../config/schema.js';
import { ConfigError } from '../core/errors.js';
import { startDemoBackend, type DemoBackend } from '../demo/backend.js';
import { ConfigWatcher } from '../server/config-watcher.js';
import { Gateway } from '../server/gateway.js';
import { createLoggers, type AccessEntry } from '../server/logging.js';
import type { AdminServer } from '../admin/admin-server.js';
import type { Metrics } from '../admin/metrics.js';
import type { SiteStats } from '../admin/stats.js';
import { parseCommand, UsageError, VERSION } from './usage.js';

const HELP = `Usage: mpgate serve [--config FILE] [options]

Runs the gateway. Three ways to give it routes:
  mpgate serve --config mpgate.yaml
  mpgate serve --listen 127.0.0.1:8080 --route a.test=http://127.0.0.1:8000 [--route ...]
  mpgate serve --listen 127.0.0.1:8080 --relay relay.test=https://backend.example
  mpgate serve --listen 127.0.0.1:8080 --ocr ocr.test
  mpgate serve                       (no routes: built-in demo on 127.0.0.1:8080)

Options:
  -c, --config FILE        YAML config file (see "mpgate schema"); reloaded on change and on SIGHUP
  -l, --listen ADDR        listen address, host:port (repeatable; overrides the file's "listen")
  -r, --route HOST=URL     proxy HOST to URL (repeatable; the same HOST twice = round-robin)
      --relay HOST=URL     relay on HOST to the backend URL: /relay?method=path, /relay/path,
                           {"method":"path"} JSON bodies and the seed's /get.php ... URLs
      --ocr HOST           the OCR service at http://HOST/wxocr (offline engine, WeChat's format)
      --default-site NAME  site that answers unknown hosts (default: 404)
      --access-log PATH    access log: "-" stdout (default), a file, or "off"
      --log-level LEVEL    fatal, error, warn, info (default), debug, trace
  -h, --help               this help

With an "admin:" section in the file, the admin API, dashboard and /metrics listen on
admin.listen (default 127.0.0.1:9090); see "mpgate site --help" and "mpgate admin --help".

Signals: SIGTERM/SIGINT stop gracefully (shutdownGrace, default 10s; a second signal stops at once),
SIGHUP reloads the config file.
`;

export async function runServe(argv: string[]): Promise<number> {
  const parsed = parseCommand(argv, {
    config: { type: 'string', short: 'c' },
    listen: { type: 'string', short: 'l', multiple: true },
    route: { type: 'string', short: 'r', multiple: true },
    relay: { type: 'string', multiple: true },
    ocr: { type: 'string', multiple: true },
    'default-site': { type: 'string' },
    'access-log': { type: 'string' },
    'log-level': { type: 'string' },
  }, HELP);
  if (!parsed) return 0;
  const v = parsed.values;
  const file = v.config ? resolvePath(v.config) : undefined;
  const flagRoutes = Boolean(v.route?.length || v.relay?.length || v.ocr?.length);
  if (file && flagRoutes) throw new UsageError('give either --config or --route/--relay/--ocr, not both');

  const overrides = (cfg: ConfigInput): ConfigInput => ({
    ...cfg,
    ...(v.listen?.length ? { listen: v.listen } : {}),
    ...(v['access-log'] ? { accessLog: v['access-log'] === 'off' ? false : { path: v['access-log'] } } : {}),
    ...(v['log-level'] ? { logLevel: v['log-level'] as Config['logLevel'] } : {}),
  });

  let demo: DemoBackend | undefined;
  let config: Config;
  try {
    if (file) {
      const fromFile = await loadConfig(file);
      config = hasOverrides(v) ? configFromObject(overrides(fromFile as unknown as ConfigInput), file) : fromFile;
    } else if (flagRoutes) {
      config = configFromObject(overrides(configFromFlags({ listen: v.listen ?? [], routes: v.route ?? [], relays: v.relay ?? [], ocr: v.ocr ?? [], defaultSite: v['default-site'] })), 'flags');
    } else {
      demo = await startDemoBackend();
      config = configFromObject(overrides(demoConfig(demo.port)), 'demo');
    }
  } catch (err) {
    await demo?.close();
    if (err instanceof ConfigError || err instanceof FlagError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }

  const loggers = createLoggers({ level: config.logLevel, access: config.accessLog });
  const { log } = loggers;
  let gateway: Gateway;
  // With an admin section every access entry also feeds the dashboard's numbers and /metrics;
  // without one the access callback stays the bare logger (nothing added to the hot path).
  // (Loaded only then: a plain proxy process never loads prom-client or the dashboard.)
  const observers = config.admin && file ? await adminObservers(() => gateway) : undefined;
  const access = observers ? observeAccess(loggers.access, observers.stats, observers.metrics) : loggers.access;
  try {
    gateway = await Gateway.start(config, { log, access });
  } catch (err) {
    await demo?.close();
    if (err instanceof ConfigError) {
      // Found only when starting: certificate files that cannot be served.
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    const hint = e.code === 'EADDRINUSE' ? ' (something else listens there; pick another with --listen 127.0.0.1:PORT)'
      : e.code === 'EACCES' ? ' (ports below 1024 need root or CAP_NET_BIND_SERVICE)' : '';
    process.stderr.write(`mpgate: cannot listen: ${e.message}${hint}\n`);
    return 1;
  }
  const addrs = gateway.addresses();
  log.info({ version: VERSION, listen: addrs.map((a) => `${a.host}:${a.port}`), https: gateway.httpsAddresses().map((a) => `${a.host}:${a.port}`), sites: config.sites.length, config: file ?? (demo ? 'demo' : 'flags') }, 'mpgate started');
  if (demo) printDemoBanner(addrs[0]!.port);

  // ---- reload ----------------------------------------------------------------------------------
  let watcher: ConfigWatcher | undefined;
  let reloading = Promise.resolve();
  /** Queues a reload; the promise settles once it is done (applied, or refused and logged). */
  const reload = (why: string): Promise<void> => {
    if (!file) {
      log.warn({ why }, 'reload ignored: no config file');
      return Promise.resolve();
    }
    reloading = reloading.then(async () => {
      try {
        const { config: fresh, text } = await loadConfigFile(file);
        // A save in progress (truncated, not yet written) reads as an empty file, which is a valid
        // config without sites: applied, it would answer 404 for every site until the next event.
        if (text.trim() === '') {
          log.warn({ why, file }, 'config file is empty (a save in progress?), keeping the running one');
          return;
        }
        const next = hasOverrides(v) ? configFromObject(overrides(fresh as unknown as ConfigInput), file) : fresh;
        const previous = gateway.config;
        const result = gateway.reload(next);
        await result.pending;
        if (observers) forgetRemovedSites(previous, next, observers);
        watcher?.noteLoaded(text);
        log.info({ why, sites: next.sites.length }, 'config reloaded');
        // The admin listener is bound once, like `listen`; its tokens and sites are read live.
        const needsRestart = [...result.needsRestart, ...(adminListener(next) !== adminListener(config) ? ['admin.listen/admin.tls'] : [])];
        if (needsRestart.length) log.warn({ settings: needsRestart }, 'changed settings need a restart to take effect');
      } catch (err) {
        if (err instanceof ConfigError) log.error({ why, problems: err.message.split('\n') }, 'config rejected, keeping the running one');
        else log.error({ why, err }, 'reload failed, keeping the running config');
      }
    });
    return reloading;
  };
  if (file && config.watch) watcher = new ConfigWatcher(file, () => void reload('file changed'));
  process.on('SIGHUP', () => void reload('SIGHUP'));

  // ---- admin API -------------------------------------------------------------------------------
  let admin: AdminServer | undefined;
  if (config.admin && file && observers) {
    try {
      const [{ startAdmin }, { DASHBOARD_CSP, dashboardHtml }] = await Promise.all([import('../admin/admin-server.js'), import('../admin/dashboard/page.js')]);
      admin = await startAdmin({
        config, configFile: file, gateway, log,
        // A change made through the API is live when its answer goes out, watch or not.
        reload: () => reload('admin API change'),
        stats: observers.stats, metrics: observers.metrics, dashboardHtml, dashboardCsp: DASHBOARD_CSP,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      process.stderr.write(`mpgate: cannot start the admin API on ${config.admin.listen}: ${e.message}${e.code === 'EADDRINUSE' ? ' (change admin.listen)' : ''}\n`);
      watcher?.close();
      await gateway.close(0);
      loggers.close();
      return 1;
    }
  }

  // ---- shutdown --------------------------------------------------------------------------------
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal, exiting now');
        loggers.close();
        process.exit(1);
      }
      stopping = true;
      log.info({ signal, graceMs: gateway.config.shutdownGrace }, 'shutting down');
      watcher?.close();
      void Promise.all([admin?.close(), gateway.close()]).then(async () => {
        await demo?.close();
        log.info('stopped');
        loggers.close();
        done();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  return 0;
}

async function adminObservers(gateway: () => Gateway): Promise<{ stats: SiteStats; metrics: Metrics }> {
  const [{ SiteStats }, { Metrics }] = await Promise.all([import('../admin/stats.js'), import('../admin/metrics.js')]);
  return { stats: new SiteStats(), metrics: new Metrics({ gauges: () => ({ connections: gateway().connections, websockets: gateway().tunnels, upstreams: gateway().upstreamPools() }) }) };
}

function observeAccess(log: ((e: AccessEntry) => void) | undefined, stats: SiteStats, metrics: Metrics): (e: AccessEntry) => void {
  return (e) => {
    log?.(e);
    stats.observe(e);
    metrics.observe(e);
  };
}

/** A site gone from the config takes its numbers with it (added again, it starts from zero). */
function forgetRemovedSites(previous: Config, next: Config, o: { stats: SiteStats; metrics: Metrics }): void {
  const names = (c: Config) => new Set(c.sites.map(siteName));
  const kept = names(next);
  for (const name of names(previous)) {
    if (kept.has(name)) continue;
    o.stats.forget(name);
    o.metrics.forget(name);
  }
}

function adminListener(c: Config): string {
  return JSON.stringify(c.admin ? [c.admin.listen, c.admin.tls ?? null] : null);
}

function hasOverrides(v: Record<string, unknown>): boolean {
  return Boolean((v.listen as string[] | undefined)?.length || v['access-log'] || v['log-level']);
}

function demoConfig(backendPort: number): ConfigInput {
  const backend = `http://127.0.0.1:${backendPort}`;
  return {
    listen: ['127.0.0.1:8080'],
    sites: [
      {
        name: 'demo',
        hosts: ['app.localhost', 'localhost', '127.0.0.1'],
        routes: [
          { path: '/', upstream: backend },
          // The demo backend stands in for the un-filed server the relay reaches.
          { path: '/relay', relay: { upstream: backend, phpCompat: true } },
          // The first seed's OCR service, where its camera page uploads to.
          { path: '/wxocr', ocr: {} },
        ],
      },
    ],
  };
}

function printDemoBanner(port: number): void {
  const base = `http://127.0.0.1:${port}`;
  const tries: [string, string][] = [
    [`curl ${base}/hello`, 'Host routing to the demo backend (it echoes what it got)'],
    [`curl http://app.localhost:${port}/hello`, 'the same site by name (*.localhost is loopback)'],
    [`curl -H 'Host: nobody.test' ${base}/`, 'unknown host: 404 with an error code'],
    [`curl '${base}/relay?method=api/items&x=1'`, 'relay, query form: backend gets /api/items?x=1'],
    [`curl '${base}/relay/api/items?x=1'`, 'relay, path form: the same'],
    [`curl '${base}/get.php?method=api/items&x=1'`, "the seed's relay URL, unchanged"],
    [`curl '${base}/relay?method=../etc/passwd'`, 'an escape attempt: 400 MPG_RELAY_BAD_PATH'],
    [`curl -F image=@photo.jpg ${base}/wxocr`, "OCR, WeChat's answer format (offline engine)"],
  ];
  const width = Math.max(...tries.map(([c]) => c.length)) + 2;
  process.stdout.write([
    '',
    `mpgate demo is running on ${base} (Ctrl-C to stop). Try:`,
    '',
    ...tries.map(([cmd, what]) => `  ${cmd.padEnd(width)}${what}`),
    '',
    'OCR in a browser (choose or drop a photo, see the text and its boxes):',
    `  ${base}/ocr`,
    '',
    'WebSocket through the gateway (wx.connectSocket):',
    `  node -e "const w=new (require('ws'))('ws://127.0.0.1:${port}/echo');w.on('open',()=>w.send('hi'));w.on('message',m=>{console.log(String(m));w.close()})"`,
    '',
    'Your own routes: mpgate serve --listen 127.0.0.1:8080 --route a.test=http://127.0.0.1:8000',
    'A config file:   mpgate serve --config mpgate.yaml   (example in examples/mpgate.yaml)',
    '',
    '',
  ].join('\n'));
}
