// http: requests to the hosts this session allows (`--allow-host`).
// Evaluated once when the instance starts, with the glue's private `host`
// object (moduleCall / asyncModuleCall), which user code never sees.
(function (host) {
  "use strict";
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

  function toBase64(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; i += 3) {
      const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
      out += ALPHABET[(n >> 18) & 63] + ALPHABET[(n >> 12) & 63];
      out += i + 1 < bytes.length ? ALPHABET[(n >> 6) & 63] : "=";
      out += i + 2 < bytes.length ? ALPHABET[n & 63] : "=";
    }
    return out;
  }

  function fromBase64(text) {
    const clean = text.replace(/=+$/, "");
    const bytes = new Uint8Array(Math.floor((clean.length * 3) / 4));
    let bits = 0, value = 0, j = 0;
    for (const ch of clean) {
      const digit = ALPHABET.indexOf(ch);
      if (digit < 0) throw new Error("invalid base64 from the host");
      value = (value << 6) | digit;
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        bytes[j++] = (value >> bits) & 255;
      }
    }
    return bytes;
  }

  function utf8Encode(text) {
    const out = [];
    for (const ch of text) {
      let c = ch.codePointAt(0);
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
    }
    return new Uint8Array(out);
  }

  function utf8Decode(bytes) {
    let out = "";
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i];
      let c, n;
      if (b < 0x80) { c = b; n = 1; }
      else if (b >= 0xf0) { c = b & 7; n = 4; }
      else if (b >= 0xe0) { c = b & 15; n = 3; }
      else if (b >= 0xc0) { c = b & 31; n = 2; }
      else { c = 0xfffd; n = 1; }
      for (let k = 1; k < n; k++) c = (c << 6) | ((bytes[i + k] ?? 0) & 63);
      out += String.fromCodePoint(c > 0x10ffff ? 0xfffd : c);
      i += n;
    }
    return out;
  }

  class Headers {
    constructor(pairs) {
      this._pairs = pairs.map(([k, v]) => [String(k), String(v)]);
    }
    /** The first value of `name` (case-insensitive), or null. */
    get(name) {
      const lower = name.toLowerCase();
      const pair = this._pairs.find(([k]) => k.toLowerCase() === lower);
      return pair ? pair[1] : null;
    }
    /** Every value of `name`, in order received. */
    getAll(name) {
      const lower = name.toLowerCase();
      return this._pairs.filter(([k]) => k.toLowerCase() === lower).map(([, v]) => v);
    }
    has(name) {
      return this.get(name) !== null;
    }
    entries() {
      return this._pairs.map((pair) => pair.slice());
    }
    [Symbol.iterator]() {
      return this.entries()[Symbol.iterator]();
    }
  }

  class Response {
    constructor(raw) {
      this.status = raw.status;
      this.statusCode = raw.status;
      this.ok = raw.status >= 200 && raw.status < 300;
      this.url = raw.url;
      this.headers = new Headers(raw.headers);
      this._body = fromBase64(raw.body_base64);
    }
    /** The body as bytes. */
    bytes() {
      return this._body.slice();
    }
    text() {
      return utf8Decode(this._body);
    }
    json() {
      return JSON.parse(this.text());
    }
  }

  function prepare(method, url, options = {}) {
    if (typeof url !== "string") throw new TypeError("url must be a string");
    const headers = Object.entries(options.headers ?? {}).map(([k, v]) => [k, String(v)]);
    const hasType = headers.some(([k]) => k.toLowerCase() === "content-type");
    let body = null;
    if (options.json !== undefined) {
      body = utf8Encode(JSON.stringify(options.json));
      if (!hasType) headers.push(["Content-Type", "application/json"]);
    } else if (typeof options.body === "string") {
      body = utf8Encode(options.body);
    } else if (options.body instanceof Uint8Array) {
      body = options.body;
    } else if (options.body instanceof ArrayBuffer) {
      body = new Uint8Array(options.body);
    } else if (options.body !== undefined && options.body !== null) {
      throw new TypeError("body must be a string, Uint8Array or ArrayBuffer");
    }
    const args = { method: method.toUpperCase(), url, headers };
    if (body !== null) args.body_base64 = toBase64(body);
    if (options.timeout !== undefined) {
      if (typeof options.timeout !== "number" || !(options.timeout > 0))
        throw new RangeError("timeout must be a positive number of seconds");
      args.timeout_ms = Math.max(1, Math.ceil(options.timeout * 1000));
    }
    return args;
  }

  const http = {
    request(method, url, options) {
      return new Response(host.moduleCall("http.request", prepare(method, url, options)));
    },
    /** Like request, as a promise: gathered requests reach the host as one batch. */
    async asyncRequest(method, url, options) {
      return new Response(await host.asyncModuleCall("http.request", prepare(method, url, options)));
    },
    Response,
    Headers,
  };
  for (const method of ["get", "post", "put", "patch", "delete", "head"]) {
    http[method] = (url, options) => http.request(method, url, options);
    http["async" + method[0].toUpperCase() + method.slice(1)] = (url, options) =>
      http.asyncRequest(method, url, options);
  }
  Object.defineProperty(globalThis, "http", { value: Object.freeze(http), writable: true, configurable: true });
})
