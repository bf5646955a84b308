// Peer names and the rendezvous directory end up inside shell commands run on the rendezvous host,
// so they are restricted to characters that need no quoting. Checked before any command is built.
import { RcppError } from '../errors.js';

const PEER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const RENDEZVOUS_DIR = /^[A-Za-z0-9._/+-]{1,200}$/;

export function isPeerName(name: string): boolean {
  return PEER_NAME.test(name);
}

export function checkPeerName(name: string, what = 'name'): string {
  if (!isPeerName(name)) {
    throw new RcppError(
      'USAGE',
      `"${name}" is not a valid ${what}.`,
      'Use 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.',
    );
  }
  return name;
}

export function checkRendezvousDir(dir: string): string {
  if (!RENDEZVOUS_DIR.test(dir) || dir.split('/').includes('..')) {
    throw new RcppError(
      'CONFIG_INVALID',
      `The rendezvous directory "${dir}" contains characters rcpp2p does not allow.`,
      'Use letters, digits, ".", "_", "-", "+" and "/" only (default: .rcpp2p).',
    );
  }
  return dir;
}
