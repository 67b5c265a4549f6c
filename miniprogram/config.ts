/**
 * Where this mini-program's server is: the one place to change it. It must be one of the
 * mini-program's legal request/uploadFile domains (https, ICP-filed, no port), e.g. a host that
 * `mpgate serve --ocr x.a.com` serves. In DevTools with the domain check off,
 * 'http://127.0.0.1:8080' reaches the demo that `npm start` runs.
 */
export const BASE = 'https://x.a.com';
