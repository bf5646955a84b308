// The rendezvous directory ends up inside shell commands run on the rendezvous host, so it is
// restricted to characters that need no quoting (peer names: src/peer.ts). Checked before any
// command is built.
import { RcppError } from '../errors.js';
import { isRendezvousDir } from '../peer.js';

export function checkRendezvousDir(dir: string): string {
  if (!isRendezvousDir(dir)) {
    throw new RcppError(
      'CONFIG_INVALID',
      `The rendezvous directory "${dir}" contains characters rcpp2p does not allow.`,
      'Use letters, digits, ".", "_", "-", "+" and "/" only (default: .rcpp2p).',
    );
  }
  return dir;
}
