// JSON text → value, safe from a V8 bug (nodejs/node#63785, crbug 521080746; Node 24 and
// Chromium, unfixed in V8 14.6): after parsing one escaped key, JSON.parse can decode a later,
// different escaped key as that earlier one (`{"\\":0}` then `{"\"":1}` yields key `\`). Texts
// without a backslash have no escaped key and take the native parser; the rest go through the
// strict RFC 8259 parser below, which gives what a correct JSON.parse gives.

/** Deepest nesting the fallback parser accepts (JCS rejects anything past 128 anyway). */
export const MAX_JSON_PARSE_DEPTH = 512;

/** Like JSON.parse (no reviver); throws SyntaxError on invalid JSON text. */
export function parseJson(text: string): unknown {
  return text.indexOf('\\') === -1 ? JSON.parse(text) : new StrictParser(text).parseDocument();
}

/** Always the JavaScript parser (what parseJson uses for texts with escapes). */
export function parseJsonStrict(text: string): unknown {
  return new StrictParser(text).parseDocument();
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const PLAIN_RUN = /[^"\\\u0000-\u001f]*/y;
const HEX4 = /^[0-9a-fA-F]{4}$/;
const SIMPLE_ESCAPES = new Map<string, string>([['"', '"'], ['\\', '\\'], ['/', '/'], ['b', '\b'], ['f', '\f'], ['n', '\n'], ['r', '\r'], ['t', '\t']]);

class StrictParser {
  readonly #text: string;
  #pos = 0;

  constructor(text: string) {
    this.#text = text;
  }

  parseDocument(): unknown {
    const value = this.#value(0);
    this.#skipWhitespace();
    if (this.#pos !== this.#text.length) this.#fail('unexpected data after the JSON value');
    return value;
  }

  #fail(what: string): never {
    throw new SyntaxError(`${what} at position ${this.#pos} of the JSON text`);
  }

  #skipWhitespace(): void {
    const t = this.#text;
    while (this.#pos < t.length) {
      const c = t.charCodeAt(this.#pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return;
      this.#pos++;
    }
  }

  #literal(word: string, value: unknown): unknown {
    if (!this.#text.startsWith(word, this.#pos)) this.#fail('invalid literal');
    this.#pos += word.length;
    return value;
  }

  #value(depth: number): unknown {
    this.#skipWhitespace();
    switch (this.#text[this.#pos]) {
      case '{':
        return this.#object(depth + 1);
      case '[':
        return this.#array(depth + 1);
      case '"':
        return this.#string();
      case 't':
        return this.#literal('true', true);
      case 'f':
        return this.#literal('false', false);
      case 'n':
        return this.#literal('null', null);
      default: {
        NUMBER.lastIndex = this.#pos;
        const m = NUMBER.exec(this.#text);
        if (m === null || m[0].length === 0) this.#fail('unexpected character');
        this.#pos += m[0].length;
        return Number(m[0]);
      }
    }
  }

  #object(depth: number): Record<string, unknown> {
    if (depth > MAX_JSON_PARSE_DEPTH) this.#fail('nesting too deep');
    this.#pos++; // {
    const out: Record<string, unknown> = {};
    this.#skipWhitespace();
    if (this.#text[this.#pos] === '}') {
      this.#pos++;
      return out;
    }
    for (;;) {
      this.#skipWhitespace();
      if (this.#text[this.#pos] !== '"') this.#fail('expected a property name');
      const key = this.#string();
      this.#skipWhitespace();
      if (this.#text[this.#pos] !== ':') this.#fail("expected ':'");
      this.#pos++;
      const value = this.#value(depth);
      // CreateDataProperty, as JSON.parse: `__proto__` becomes an own property, last duplicate wins.
      Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
      this.#skipWhitespace();
      const c = this.#text[this.#pos++];
      if (c === '}') return out;
      if (c !== ',') this.#fail("expected ',' or '}'");
    }
  }

  #array(depth: number): unknown[] {
    if (depth > MAX_JSON_PARSE_DEPTH) this.#fail('nesting too deep');
    this.#pos++; // [
    const out: unknown[] = [];
    this.#skipWhitespace();
    if (this.#text[this.#pos] === ']') {
      this.#pos++;
      return out;
    }
    for (;;) {
      out.push(this.#value(depth));
      this.#skipWhitespace();
      const c = this.#text[this.#pos++];
      if (c === ']') return out;
      if (c !== ',') this.#fail("expected ',' or ']'");
    }
  }

  #string(): string {
    const t = this.#text;
    this.#pos++; // opening quote
    let out = '';
    for (;;) {
      PLAIN_RUN.lastIndex = this.#pos;
      const run = PLAIN_RUN.exec(t) as RegExpExecArray; // matches at least the empty string
      out += run[0];
      this.#pos += run[0].length;
      const c = t[this.#pos];
      if (c === '"') {
        this.#pos++;
        return out;
      }
      if (c !== '\\') this.#fail(c === undefined ? 'unterminated string' : 'control character in string');
      const e = t[this.#pos + 1];
      if (e === 'u') {
        const hex = t.slice(this.#pos + 2, this.#pos + 6);
        if (!HEX4.test(hex)) this.#fail('invalid \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.#pos += 6;
      } else {
        const simple = e === undefined ? undefined : SIMPLE_ESCAPES.get(e);
        if (simple === undefined) this.#fail('invalid escape');
        out += simple;
        this.#pos += 2;
      }
    }
  }
}
