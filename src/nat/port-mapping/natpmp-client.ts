// NAT-PMP (RFC 6886) against the default gateway: found by asking for its external address; a map
// request with our port; removal is the same request with lifetime 0 (by internal port). The
// external address is asked again with every mapping, so a changed WAN address shows up on renewal.
import { RcppError } from '../../errors.js';
import type { GatewayClient, Mapping, MapRequest } from './gateway-client.js';
import {
  decodeNatPmpAnswer,
  encodeExternalAddressRequest,
  encodeMapRequest,
  MAX_NATPMP_ANSWER,
  NATPMP_PORT,
  resultWords,
  type NatPmpAnswer,
} from './natpmp.js';
import { localAddressToward, udpExchange } from './transport.js';

type Schedule = readonly number[];

function exchange<K extends NatPmpAnswer['op']>(
  gateway: string,
  request: Buffer,
  op: K,
  signal: AbortSignal,
  retransmitMs?: Schedule,
): Promise<NatPmpAnswer & { op: K }> {
  return udpExchange({
    gateway,
    port: NATPMP_PORT,
    request,
    signal,
    maxAnswerBytes: MAX_NATPMP_ANSWER,
    ...(retransmitMs && { retransmitMs }),
    accept: (bytes) => {
      const d = decodeNatPmpAnswer(bytes);
      return d.ok && d.value.op === op ? (d.value as NatPmpAnswer & { op: K }) : undefined;
    },
  });
}

function refused(what: string, result: number): RcppError {
  return new RcppError('PORT_MAPPING_FAILED', `NAT-PMP ${what}: ${resultWords(result)}`);
}

async function externalAddress(
  gateway: string,
  signal: AbortSignal,
  retransmitMs?: Schedule,
): Promise<string> {
  const answer = await exchange(
    gateway,
    encodeExternalAddressRequest(),
    'external',
    signal,
    retransmitMs,
  );
  if (answer.result !== 0 || answer.externalIp === undefined) {
    throw refused('external address', answer.result);
  }
  return answer.externalIp;
}

/** Asks `gateway` for its external address; resolves with a client when it speaks NAT-PMP. */
export async function findNatPmp(
  gateway: string,
  signal: AbortSignal,
  retransmitMs?: Schedule,
): Promise<GatewayClient> {
  const externalIp = await externalAddress(gateway, signal, retransmitMs);
  const internalIp = await localAddressToward(gateway, signal);
  const client: GatewayClient = {
    protocol: 'natpmp',
    address: gateway,
    describe: 'NAT-PMP',
    externalIp,
    async map(request: MapRequest, mapSignal: AbortSignal): Promise<Mapping> {
      const ip = await externalAddress(gateway, mapSignal);
      client.externalIp = ip;
      const answer = await exchange(
        gateway,
        encodeMapRequest({
          internalPort: request.internalPort,
          suggestedExternalPort: request.externalPortHint,
          lifetimeSeconds: request.lifetimeSeconds,
        }),
        'map',
        mapSignal,
      );
      if (answer.result !== 0) throw refused('mapping', answer.result);
      if (answer.internalPort !== request.internalPort || !answer.externalPort) {
        throw new RcppError(
          'PORT_MAPPING_FAILED',
          `NAT-PMP answered for port ${answer.internalPort ?? '?'}, not ${request.internalPort}`,
        );
      }
      return {
        protocol: 'natpmp',
        gateway,
        internalIp,
        internalPort: request.internalPort,
        external: { ip, port: answer.externalPort },
        lifetimeSeconds: answer.lifetimeSeconds ?? request.lifetimeSeconds,
      };
    },
    async unmap(mapping: Mapping, unmapSignal: AbortSignal): Promise<void> {
      const answer = await exchange(
        gateway,
        encodeMapRequest({
          internalPort: mapping.internalPort,
          suggestedExternalPort: 0,
          lifetimeSeconds: 0,
        }),
        'map',
        unmapSignal,
      );
      if (answer.result !== 0) throw refused('removal', answer.result);
    },
  };
  return client;
}
