/**
 * The first seed's camera page, typed: take a photo, wx.uploadFile it (field `image`) to the
 * server's /wxocr, and show the answer — each item's text followed by '<br>' when errcode is 0,
 * errmsg otherwise. Added: a loading state, a readable message when the status is not 200 or the
 * upload fails, and the detected boxes over the photo.
 */
import { BASE } from '../../config';

/** WeChat's printed-text OCR answer, which mpgate's /wxocr sends (always HTTP 200). */
interface OcrCorner {
  x: number;
  y: number;
}
interface OcrItem {
  text: string;
  pos: { left_top: OcrCorner; right_top: OcrCorner; right_bottom: OcrCorner; left_bottom: OcrCorner };
}
interface OcrAnswer {
  errcode: number;
  errmsg: string;
  items?: OcrItem[];
  img_size?: { w: number; h: number };
}

/** A detected box in percent of the photo, for a view laid over it (the corners' bounding box). */
interface Box {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** rich-text nodes are HTML: the recognised text is escaped, the seed's '<br>' is not. */
function escapeHtml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Why a non-200 answer is not a result, for the person holding the phone. */
function httpMessage(statusCode: number): string {
  if (statusCode === 413) return '图片太大，请降低拍照质量后重试';
  if (statusCode === 404) return '服务器上没有 /wxocr，请检查 config.ts 里的 BASE';
  if (statusCode === 502 || statusCode === 503 || statusCode === 504) return '服务器暂时无法访问，请稍后再试';
  return `服务器出错（HTTP ${statusCode}），请稍后再试`;
}

function toBoxes(answer: OcrAnswer): Box[] {
  const size = answer.img_size;
  if (!size || !(size.w > 0) || !(size.h > 0)) return [];
  const pct = (v: number, of: number) => Math.round((v / of) * 10000) / 100;
  return (answer.items ?? []).map(({ pos }) => {
    const xs = [pos.left_top.x, pos.right_top.x, pos.right_bottom.x, pos.left_bottom.x];
    const ys = [pos.left_top.y, pos.right_top.y, pos.right_bottom.y, pos.left_bottom.y];
    const left = Math.min(...xs);
    const top = Math.min(...ys);
    return { left: pct(left, size.w), top: pct(top, size.h), width: pct(Math.max(...xs) - left, size.w), height: pct(Math.max(...ys) - top, size.h) };
  });
}

Page({
  data: {
    ocrtext: '',
    busy: false,
    photo: '',
    boxes: [] as Box[],
  },

  takePhoto() {
    if (this.data.busy) return;
    this.setData({ ocrtext: '正在识别...', busy: true, boxes: [] });
    wx.createCameraContext().takePhoto({
      quality: 'high',
      success: (photo) => {
        this.setData({ photo: photo.tempImagePath });
        wx.uploadFile({
          url: `${BASE}/wxocr`,
          filePath: photo.tempImagePath,
          name: 'image',
          success: (res) => this.showAnswer(res.statusCode, res.data),
          // No answer at all: no network, a timeout, or BASE not among the legal domains.
          fail: (err) => this.setData({ ocrtext: escapeHtml(`上传失败：${err.errMsg}`) }),
          complete: () => this.setData({ busy: false }),
        });
      },
      fail: (err) => this.setData({ ocrtext: escapeHtml(`拍照失败：${err.errMsg}`), busy: false }),
    });
  },

  showAnswer(statusCode: number, data: string) {
    if (statusCode !== 200) {
      this.setData({ ocrtext: escapeHtml(httpMessage(statusCode)) });
      return;
    }
    let ocr: OcrAnswer;
    try {
      ocr = JSON.parse(data) as OcrAnswer; // uploadFile's res.data is always a string
    } catch {
      this.setData({ ocrtext: '服务器的回答无法解析' });
      return;
    }
    let text = '';
    if (ocr.errcode == 0) {
      for (const item of ocr.items ?? []) text += escapeHtml(item.text) + '<br>';
      if (!text) text = '没有识别到文字';
    } else {
      text = escapeHtml(ocr.errmsg);
    }
    this.setData({ ocrtext: text, boxes: ocr.errcode == 0 ? toBoxes(ocr) : [] });
  },

  onCameraError(e: WechatMiniprogram.CustomEvent<{ errMsg: string }>) {
    this.setData({ ocrtext: escapeHtml(`无法使用相机，请在设置中允许使用摄像头（${e.detail.errMsg}）`) });
  },
});
