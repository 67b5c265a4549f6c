/**
 * Creates the OCR engines a config needs, once: the local PP-OCR worker pool and/or the WeChat
 * cloud client with its access_token manager. Which are needed is read from the routes.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { OcrError } from './errors.js';
import type { EngineName, OcrEngineLike, OcrService } from './ocr-service.js';

// The engines are imported when a route needs them: the local one loads sharp (libvips and its
// threads) and onnxruntime, which a gateway without OCR routes should not carry.

/** The engines named by any route's `engine` or `fallback`. */
export function enginesNeeded(config: Config): Set<EngineName> {
  const names = new Set<EngineName>();
  for (const site of config.sites) {
    for (const r of site.routes ?? []) {
      if (r.ocr) {
        names.add(r.ocr.engine);
        if (r.ocr.fallback) names.add(r.ocr.fallback);
      }
    }
  }
  return names;
}

/** Adds to `service` every engine `config` needs that it does not have yet. */
export function provideEngines(service: OcrService, config: Config, log: Logger): void {
  for (const name of enginesNeeded(config)) {
    if (service.has(name)) continue;
    service.add(name, name === 'local' ? startLocal(config, log) : startWechat(config));
  }
}

async function startLocal(config: Config, log: Logger): Promise<OcrEngineLike> {
  const started = Date.now();
  const { OcrPool } = await import('./worker-pool.js');
  const pool = await OcrPool.start({
    ...(config.ocr.workers !== undefined ? { workers: config.ocr.workers } : {}),
    maxQueue: config.ocr.queue,
    jobTimeoutMs: config.ocr.timeout,
    engine: { maxPixels: config.ocr.maxPixels, detMaxSide: config.ocr.detMaxSide },
    onEvent: (e) => {
      if (e.type === 'progress') log.info({ worker: e.worker, stage: e.stage }, 'ocr: loading');
      else if (e.type === 'ready') log.info({ worker: e.worker, loadMs: e.loadMs, warmupMs: e.warmupMs }, 'ocr: worker ready');
      else if (e.type === 'worker-lost') log.error({ worker: e.worker, reason: e.reason, err: e.error.message }, 'ocr: worker lost');
      else if (e.type === 'slot-abandoned') log.error({ worker: e.worker, failures: e.failures }, 'ocr: worker slot given up');
    },
  });
  log.info({ workers: pool.stats.workers, ms: Date.now() - started }, 'ocr: local engine ready');
  return pool;
}

async function startWechat(config: Config): Promise<OcrEngineLike> {
  const w = config.ocr.wechat;
  if (w === undefined) throw new OcrError('OCR_UPSTREAM_AUTH', 'ocr.wechat is not configured');
  const secret = w.secret ?? (w.secretEnv ? process.env[w.secretEnv] : undefined);
  if (!secret) throw new OcrError('OCR_UPSTREAM_AUTH', `the AppSecret is missing: set the environment variable ${w.secretEnv ?? '(secretEnv)'}`);
  const [{ AccessTokenManager }, { WechatOcrEngine }] = await Promise.all([import('./wechat-token.js'), import('./wechat-engine.js')]);
  const tokens = new AccessTokenManager({ appid: w.appid, secret, baseUrl: w.baseUrl });
  const engine = new WechatOcrEngine({ tokens, baseUrl: w.baseUrl, timeout: Math.min(config.ocr.timeout, 15_000) });
  return {
    recognize: (image, opts) => engine.recognize(image, opts),
    close: async () => {
      await engine.close();
      await tokens.close();
    },
  };
}
