/**
 * The `errmsg` a mini-program shows when OCR fails. The seed's page displays `errmsg` as is, so it
 * is written for the person holding the phone: Chinese by default, English when the client's
 * Accept-Language prefers English. Codes and errcodes never change with the language.
 */

export type Lang = 'zh' | 'en';

const MESSAGES: Record<string, { zh: string; en: string }> = {
  OCR_NO_IMAGE: { zh: '没有收到图片，请用 image 字段上传', en: 'no image received: upload it in the "image" field' },
  OCR_DECODE_FAILED: { zh: '图片无法识别，可能已损坏或格式不支持', en: 'the image cannot be decoded (damaged or unsupported format)' },
  OCR_TOO_MANY_PIXELS: { zh: '图片尺寸过大', en: 'the image has too many pixels' },
  OCR_IMAGE_TOO_LARGE: { zh: '图片文件过大', en: 'the image file is too large' },
  OCR_TOO_MANY_FILES: { zh: '一次只能上传一张图片', en: 'send one image per request' },
  OCR_METHOD: { zh: '请用 POST 上传图片', en: 'upload the image with POST' },
  OCR_BUSY: { zh: '系统繁忙，请稍后再试', en: 'the service is busy, try again shortly' },
  OCR_TIMEOUT: { zh: '识别超时，请稍后再试', en: 'recognition timed out, try again' },
  OCR_WORKER_CRASHED: { zh: '识别出错，请重试', en: 'recognition failed, try again' },
  OCR_CLOSED: { zh: '服务正在重启，请稍后再试', en: 'the service is restarting, try again shortly' },
  OCR_ENGINE_FAILED: { zh: '识别服务出错', en: 'the OCR engine failed' },
  OCR_QUOTA: { zh: '今日识别次数已用完', en: 'the daily OCR quota is used up' },
  OCR_UPSTREAM_FAILED: { zh: '云端识别服务暂时不可用，请稍后再试', en: 'the cloud OCR service is unavailable, try again shortly' },
  OCR_UPSTREAM_AUTH: { zh: '云端识别服务认证失败，请联系管理员', en: 'the cloud OCR service refused the server\'s credentials' },
  OCR_BAD_IMAGE_URL: { zh: '图片地址无效', en: 'the image URL is invalid' },
};

/** Localised errmsg for an OCR error code (falls back to the generic engine failure). */
export function ocrMessage(code: string, lang: Lang): string {
  return (MESSAGES[code] ?? MESSAGES.OCR_ENGINE_FAILED!)[lang];
}

/** Every code with a message, for the docs test. */
export const MESSAGE_CODES: readonly string[] = Object.keys(MESSAGES);

/**
 * 'en' when the highest-weighted language in Accept-Language is English, else 'zh'
 * (RFC 9110 §12.5.4 weights; a missing q is 1, ties keep the header's order).
 */
export function pickLang(acceptLanguage: string | undefined): Lang {
  if (!acceptLanguage) return 'zh';
  let best = '';
  let bestQ = -1;
  for (const part of acceptLanguage.split(',')) {
    const [tag = '', ...params] = part.trim().split(';');
    let q = 1;
    for (const p of params) {
      const m = /^\s*q=([01](?:\.\d{0,3})?)\s*$/.exec(p);
      if (m) q = Number(m[1]);
    }
    if (q > bestQ && tag) {
      best = tag.toLowerCase();
      bestQ = q;
    }
  }
  return best === 'en' || best.startsWith('en-') ? 'en' : 'zh';
}
