// PCP (RFC 6887) against the default gateway: found with ANNOUNCE; MAP for our TCP port with a
// nonce kept for the mapping's life (renewal is the same MAP, removal the same with lifetime 0).
// The answer must echo our nonce, protocol and port, or it is not ours. A router that answers in
// NAT-PMP's version is reported as such (NATPMP_ONLY), so the caller can speak NAT-PMP to it.
import { randomBytes } from 'node:crypto';
import { RcppError } from '../../errors.js';
import type { GatewayClient, Mapping, MapRequest } from './gateway-client.js';
import { NATPMP_PORT } from './natpmp.js';
import {
  decodePcpAnswer,
  encodeAnnounce,
  encodeMap,
  MAX_PCP_MESSAGE,
  PCP_TCP,
  pcpResultWords,
  type PcpAnswer,
} from './pcp.js';
import { localAddressToward, udpExchange } from './transport.js';

/** The message of the error findPcp throws for a router that speaks only NAT-PMP. */
export const NATPMP_ONLY = 'the router speaks NAT-PMP, not PCP';
const UNSUPP_OPCODE = 4;

function exchange(
  gateway: string,
  request: Buffer,
  accept: (answer: PcpAnswer) => boolean,
  signal: AbortSignal,
  retransmitMs?: readonly number[],
): Promise<PcpAnswer> {
  return udpExchange({
    gateway,
    port: NATPMP_PORT,
    request,
    signal,
    maxAnswerBytes: MAX_PCP_MESSAGE,
    ...(retransmitMs && { retransmitMs }),
    accept: (bytes) => {
      const d = decodePcpAnswer(bytes);
      return d.ok && accept(d.value) ? d.value : undefined;
    },
  });
}

export async function findPcp(
  gateway: string,
  signal: AbortSignal,
  retransmitMs?: readonly number[],
): Promise<GatewayClient> {
  const clientIp = await localAddressToward(gateway, signal);
  const announced = await exchange(
    gateway,
    encodeAnnounce(clientIp),
    (a) => a.kind === 'announce' || a.kind === 'natpmp-only',
    signal,
    retransmitMs,
  );
  if (announced.kind === 'natpmp-only') throw new RcppError('PORT_MAPPING_FAILED', NATPMP_ONLY);
  if (
    announced.kind === 'announce' &&
    announced.result !== 0 &&
    announced.result !== UNSUPP_OPCODE
  ) {
    throw new RcppError('PORT_MAPPING_FAILED', `PCP: ${pcpResultWords(announced.result)}`);
  }
  const nonce = randomBytes(12);
  const mapAnswer = (request: MapRequest, lifetimeSeconds: number, s: AbortSignal) =>
    exchange(
      gateway,
      encodeMap({
        nonce,
        clientIp,
        internalPort: request.internalPort,
        suggestedExternalPort: request.externalPortHint,
        lifetimeSeconds,
      }),
      (a) =>
        a.kind === 'map-refused' ||
        (a.kind === 'map' &&
          a.nonce.equals(nonce) &&
          a.protocol === PCP_TCP &&
          a.internalPort === request.internalPort),
      s,
    );
  return {
    protocol: 'pcp',
    address: gateway,
    describe: 'PCP',
    externalIp: undefined,
    async map(request: MapRequest, mapSignal: AbortSignal): Promise<Mapping> {
      const a = await mapAnswer(request, request.lifetimeSeconds, mapSignal);
      if (a.kind !== 'map' || a.result !== 0) {
        throw new RcppError(
          'PORT_MAPPING_FAILED',
          `PCP mapping: ${pcpResultWords(answerResult(a))}`,
        );
      }
      if (a.externalIp === undefined || a.externalPort === 0) {
        throw new RcppError('PORT_MAPPING_FAILED', 'PCP mapping: no IPv4 external address');
      }
      return {
        protocol: 'pcp',
        gateway,
        internalIp: clientIp,
        internalPort: request.internalPort,
        external: { ip: a.externalIp, port: a.externalPort },
        lifetimeSeconds: a.lifetimeSeconds,
      };
    },
    async unmap(mapping: Mapping, unmapSignal: AbortSignal): Promise<void> {
      const a = await mapAnswer(
        {
          internalPort: mapping.internalPort,
          externalPortHint: 0,
          lifetimeSeconds: 0,
        },
        0,
        unmapSignal,
      );
      if (answerResult(a) !== 0) {
        throw new RcppError(
          'PORT_MAPPING_FAILED',
          `PCP removal: ${pcpResultWords(answerResult(a))}`,
        );
      }
    },
  };
}

function answerResult(a: PcpAnswer): number {
  return a.kind === 'natpmp-only' ? 1 : a.result;
}
