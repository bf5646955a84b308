// Readers for untrusted JSON: transfer-protocol messages, signaling lines, peer records on the shared
// rendezvous account, and the config file. Each reader reads one field, checks its type and bounds,
// and throws the caller's own error (PROTOCOL_ERROR, RENDEZVOUS_REFUSED, CONFIG_INVALID...) with a
// sentence naming the field. Only own properties are read, so keys such as "__proto__" or
// "constructor" cannot sneak in; strings are bounded in UTF-8 bytes before anything else looks at them.
import type { RcppError } from './errors.js';
import { isEndpoint, type Endpoint } from './peer.js';

export type Json = Record<string, unknown>;

/**
 * Makes the error for one problem: `where` says what was read ("a get message", "the record of
 * client LAPTOP"), `problem` what is wrong with it ("paths must be a list of at most 1024 items").
 */
export type Complaint = (where: string, problem: string) => RcppError;

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A value for a sentence: short, and JSON-escaped so no control character reaches a terminal. */
function shown(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

export class Fields {
  constructor(
    private readonly source: Json,
    readonly where: string,
    private readonly complain: Complaint,
    /** Put before field names in sentences ("rendezvous." for a nested object). */
    private readonly prefix = '',
  ) {}

  /** Throws the caller's error for a problem with this object as a whole. */
  fail(problem: string): never {
    throw this.complain(this.where, problem);
  }

  private bad(key: string, problem: string): never {
    this.fail(`${this.prefix}${key} ${problem}`);
  }

  private get(key: string): unknown {
    return Object.hasOwn(this.source, key) ? this.source[key] : undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** The field's value, unchecked (for nested values read with element() or a custom check). */
  raw(key: string): unknown {
    return this.get(key);
  }

  /** Refuses a field other than `allowed`: a typo in a config, or something a peer should not send. */
  onlyKeys(allowed: readonly string[], problem = 'is not a field rcpp2p knows'): void {
    const extra = Object.keys(this.source).find((k) => !allowed.includes(k));
    if (extra !== undefined) this.bad(extra, problem);
  }

  /**
   * A string of at most maxBytes UTF-8 bytes (and at least one character when `nonEmpty`); with a
   * pattern, `form` says in words what it should have been.
   */
  str(
    key: string,
    maxBytes: number,
    pattern?: RegExp,
    form?: string | ((value: string) => string),
    nonEmpty = false,
  ): string {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (nonEmpty && (typeof v !== 'string' || v === '')) {
      this.bad(key, 'must be a non-empty string');
    }
    // A UTF-16 length over maxBytes cannot fit; checking it first keeps byteLength cheap.
    if (typeof v !== 'string' || v.length > maxBytes || Buffer.byteLength(v, 'utf8') > maxBytes) {
      this.bad(key, `must be a string of at most ${maxBytes} bytes`);
    }
    if (pattern && !pattern.test(v)) {
      const said = typeof form === 'function' ? form(v) : (form ?? 'is not in the expected form');
      this.bad(key, said);
    }
    return v;
  }

  /** One of a fixed set of strings. */
  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (!values.includes(v as T)) {
      this.bad(key, `must be one of ${values.map((x) => `"${x}"`).join(', ')} (it is ${shown(v)})`);
    }
    return v as T;
  }

  bool(key: string): boolean {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (typeof v !== 'boolean') this.bad(key, 'must be true or false');
    return v;
  }

  int(key: string, min: number, max: number): number {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      this.bad(key, `must be a whole number from ${min} to ${max} (it is ${shown(v)})`);
    }
    return v;
  }

  num(key: string, min: number, max: number): number {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.bad(key, `must be a number from ${min} to ${max} (it is ${shown(v)})`);
    }
    return v;
  }

  /** An IP address and a port. */
  endpoint(key: string): Endpoint {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (!isEndpoint(v)) this.bad(key, 'must be an IP address and a port');
    return { ip: v.ip, port: v.port };
  }

  /** A list of at most maxItems IP address and port pairs. */
  endpoints(key: string, maxItems: number): Endpoint[] {
    return this.list(key, maxItems).map((value, n) => {
      if (!isEndpoint(value)) this.bad(`${key}[${n}]`, 'must be an IP address and a port');
      return { ip: value.ip, port: value.port };
    });
  }

  /** An array of at most maxItems elements, each read by `item` (which gets the element's place). */
  arr<T>(key: string, maxItems: number, item: (value: unknown, where: string) => T): T[] {
    return this.list(key, maxItems).map((el, n) =>
      item(el, `${this.where} (${this.prefix}${key}[${n}])`),
    );
  }

  private list(key: string, maxItems: number): unknown[] {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (!Array.isArray(v) || v.length > maxItems) {
      this.bad(key, `must be a list of at most ${maxItems} items`);
    }
    return v;
  }

  /** A nested object, read with the same complaint; its fields are named `key.field`. */
  obj(key: string): Fields {
    const v = this.get(key);
    if (v === undefined) this.bad(key, 'is missing');
    if (!isObject(v)) this.bad(key, 'must be an object');
    return new Fields(v, this.where, this.complain, `${this.prefix}${key}.`);
  }

  /** An array element (or any value) that must be an object, read with the same complaint. */
  element(value: unknown, where: string): Fields {
    return element(value, where, this.complain);
  }
}

/** Reads a whole value that must be an object. */
export function fields(value: unknown, where: string, complain: Complaint): Fields {
  if (!isObject(value)) throw complain(where, 'is not an object');
  return new Fields(value, where, complain);
}

/** Reads one array element that must be an object, as Fields for its own keys. */
export function element(value: unknown, where: string, complain: Complaint): Fields {
  if (!isObject(value)) throw complain(where, 'entry is not an object');
  return new Fields(value, where, complain);
}

/** Reads one array element that must be a string of at most maxBytes matching pattern. */
export function stringElement(
  value: unknown,
  where: string,
  complain: Complaint,
  maxBytes: number,
  pattern?: RegExp,
): string {
  return new Fields({ value }, where, complain, 'the ').str('value', maxBytes, pattern);
}
