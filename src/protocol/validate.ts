// The transfer protocol's field readers: src/validate.ts's readers, with the protocol's sentence
// ("The peer sent a get message that rcpp2p cannot accept: paths must be ...") and PROTOCOL_ERROR. Kept as its own module so
// parseMessage() reads as a list of fields.
import { RcppError } from '../errors.js';
import * as shared from '../validate.js';

export { isObject, type Json } from '../validate.js';

const complain: shared.Complaint = (where, problem) =>
  new RcppError('PROTOCOL_ERROR', `The peer sent ${where} that rcpp2p cannot accept: ${problem}.`);

export function fail(where: string, what: string): never {
  throw complain(where, what);
}

export class Fields extends shared.Fields {
  constructor(obj: shared.Json, where: string) {
    super(obj, where, complain);
  }
}

export function element(value: unknown, where: string): shared.Fields {
  return shared.element(value, where, complain);
}

export function stringElement(
  value: unknown,
  where: string,
  maxBytes: number,
  pattern?: RegExp,
): string {
  return shared.stringElement(value, where, complain, maxBytes, pattern);
}
