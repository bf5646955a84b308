// Field readers for parseMessage: each reads one field of a decoded JSON object, checks its type
// and bounds, and throws RcppError('PROTOCOL_ERROR') with a sentence naming the message and field.
// Only own properties are read, so keys such as "__proto__" or "constructor" cannot sneak in.

import { RcppError } from '../errors.js';

export type Json = Record<string, unknown>;

export function fail(where: string, what: string): never {
  throw new RcppError('PROTOCOL_ERROR', `The peer sent ${where} whose ${what}.`);
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export class Fields {
  constructor(
    private readonly obj: Json,
    readonly where: string,
  ) {}

  private get(key: string): unknown {
    return Object.hasOwn(this.obj, key) ? this.obj[key] : undefined;
  }

  has(key: string): boolean {
    return this.get(key) !== undefined;
  }

  /** The field's value, unchecked (for nested objects read with element()). */
  raw(key: string): unknown {
    return this.get(key);
  }

  str(key: string, maxBytes: number, pattern?: RegExp): string {
    const v = this.get(key);
    // A UTF-16 length over maxBytes cannot fit; checking it first keeps byteLength cheap.
    if (typeof v !== 'string' || v.length > maxBytes || Buffer.byteLength(v, 'utf8') > maxBytes) {
      fail(this.where, `${key} is not a string of at most ${maxBytes} bytes`);
    }
    if (pattern && !pattern.test(v)) fail(this.where, `${key} is not in the expected form`);
    return v;
  }

  bool(key: string): boolean {
    const v = this.get(key);
    if (typeof v !== 'boolean') fail(this.where, `${key} is not true or false`);
    return v;
  }

  int(key: string, min: number, max: number): number {
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      fail(this.where, `${key} is not a whole number from ${min} to ${max}`);
    }
    return v;
  }

  num(key: string, min: number, max: number): number {
    const v = this.get(key);
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      fail(this.where, `${key} is not a number from ${min} to ${max}`);
    }
    return v;
  }

  /** An array of at most maxItems elements, each read by `item` (which gets the element's place). */
  arr<T>(key: string, maxItems: number, item: (value: unknown, where: string) => T): T[] {
    const v = this.get(key);
    if (!Array.isArray(v) || v.length > maxItems) {
      fail(this.where, `${key} is not a list of at most ${maxItems} items`);
    }
    return v.map((el, n) => item(el, `${this.where} (${key}[${n}])`));
  }
}

/** Reads one array element that must be an object, as Fields for its own keys. */
export function element(value: unknown, where: string): Fields {
  if (!isObject(value)) fail(where, 'entry is not an object');
  return new Fields(value, where);
}

/** Reads one array element that must be a string of at most maxBytes matching pattern. */
export function stringElement(value: unknown, where: string, maxBytes: number, pattern?: RegExp) {
  return new Fields({ value }, where).str('value', maxBytes, pattern);
}
