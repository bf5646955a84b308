// UPnP IGD: SSDP finds the gateway's description; its WAN connection services are tried best first
// until one tells its external address (GetExternalIPAddress). Mapping:
//   IGD v2 (WANIPConnection:2): AddAnyPortMapping, the router picks a free external port near ours;
//   IGD v1 (and WANPPPConnection): AddPortMapping with our port, then (conflict 718) a few others.
// Renewal maps the granted external port again (AddPortMapping, both versions); removal is
// DeletePortMapping by that external port. A lease is always bounded: a router that only offers
// permanent mappings (error 725) is not used.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import { isIPv4 } from 'node:net';
import { abortError, RcppError } from '../../errors.js';
import { logger } from '../../log.js';
import type { GatewayClient, Mapping, MapRequest } from './gateway-client.js';
import { MAX_DESCRIPTION_BYTES, parseIgdDescription, type WanService } from './igd-description.js';
import {
  decodeSoapAnswer,
  encodeSoapRequest,
  MAX_SOAP_ANSWER,
  UPNP_ERRORS,
  type SoapAnswer,
} from './soap.js';
import {
  decodeSearchAnswer,
  encodeSearch,
  IGD_SEARCH_TARGETS,
  MAX_SSDP_ANSWER,
  SSDP_ADDRESS,
  SSDP_PORT,
} from './ssdp.js';
import { httpExchange } from './transport.js';

const log = logger('portmap');
/** How many other external ports an IGD v1 is asked for when ours is taken. */
const CONFLICT_RETRIES = 3;
/** M-SEARCH is sent again this long after the first (UDP may be lost). */
const SEARCH_RESEND_MS = 500;
const DESCRIPTION = 'rcpp2p';

/**
 * Sends M-SEARCHes (multicast, and unicast to `gateway` when known) and resolves with the first
 * valid answer's description URL; the answer from `gateway` itself wins when several come at once.
 * Runs until the signal aborts.
 */
export function searchIgd(gateway: string | undefined, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortError(signal));
      return;
    }
    const socket = dgram.createSocket('udp4');
    let resend: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (err: Error | undefined, location?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(resend);
      signal.removeEventListener('abort', onAbort);
      socket.close();
      if (err) reject(err);
      else resolve(location ?? '');
    };
    const onAbort = (): void => finish(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    let failures = 0;
    const sendAll = (): void => {
      for (const target of IGD_SEARCH_TARGETS) {
        const sends: [Buffer, string][] = [[encodeSearch(target), SSDP_ADDRESS]];
        if (gateway) sends.push([encodeSearch(target, gateway), gateway]);
        for (const [message, to] of sends) {
          socket.send(message, SSDP_PORT, to, (err) => {
            // No multicast route (a host without a default route): the search cannot go out.
            if (err && ++failures >= IGD_SEARCH_TARGETS.length * sends.length) {
              finish(
                new RcppError(
                  'PORT_MAPPING_FAILED',
                  `SSDP search: ${(err as NodeJS.ErrnoException).code ?? err.message}`,
                ),
              );
            }
          });
        }
      }
    };
    socket.on('error', (err) =>
      finish(new RcppError('PORT_MAPPING_FAILED', `SSDP: ${err.message}`)),
    );
    socket.on('message', (bytes, from) => {
      if (bytes.length > MAX_SSDP_ANSWER) return;
      const answer = decodeSearchAnswer(bytes, from.address);
      if (!answer.ok) {
        log(`ignored an SSDP answer from ${from.address}: ${answer.problem}`);
        return;
      }
      finish(undefined, answer.value.location);
    });
    socket.bind(0, () => {
      sendAll();
      resend = setTimeout(() => {
        failures = 0;
        sendAll();
      }, SEARCH_RESEND_MS);
    });
  });
}

interface Control {
  service: WanService;
  /** Our LAN address as the gateway sees it (the HTTP connection's local address). */
  internalIp: string;
}

async function call(
  service: WanService,
  action: string,
  args: readonly (readonly [string, string | number])[],
  signal: AbortSignal,
): Promise<{ answer: SoapAnswer; localAddress: string | undefined }> {
  const request = encodeSoapRequest(service.serviceType, action, args);
  const reply = await httpExchange(service.controlUrl, {
    method: 'POST',
    headers: { 'Content-Type': 'text/xml; charset="utf-8"', SOAPAction: request.soapAction },
    body: request.body,
    maxAnswerBytes: MAX_SOAP_ANSWER,
    signal,
  });
  const decoded = decodeSoapAnswer(reply.status, reply.body, action);
  if (!decoded.ok) {
    throw new RcppError('PORT_MAPPING_FAILED', `UPnP ${action}: ${decoded.problem}`);
  }
  return { answer: decoded.value, localAddress: reply.localAddress };
}

function soapFailure(action: string, answer: SoapAnswer & { ok: false }): RcppError {
  const code = answer.errorCode === undefined ? '' : ` ${answer.errorCode}`;
  const words = answer.description ? ` ${answer.description}` : '';
  return new RcppError('PORT_MAPPING_FAILED', `UPnP ${action} refused (error${code}${words})`);
}

/** Fetches the description at `location` and returns a client for its first working service. */
export async function openIgd(location: string, signal: AbortSignal): Promise<GatewayClient> {
  const description = await httpExchange(location, {
    method: 'GET',
    maxAnswerBytes: MAX_DESCRIPTION_BYTES,
    signal,
  });
  if (description.status !== 200) {
    throw new RcppError(
      'PORT_MAPPING_FAILED',
      `UPnP description: HTTP status ${description.status}`,
    );
  }
  const services = parseIgdDescription(description.body, location);
  if (!services.ok)
    throw new RcppError('PORT_MAPPING_FAILED', `UPnP description: ${services.problem}`);
  let lastError: Error | undefined;
  for (const service of services.value) {
    try {
      const { answer, localAddress } = await call(service, 'GetExternalIPAddress', [], signal);
      if (!answer.ok) throw soapFailure('GetExternalIPAddress', answer);
      const ip = answer.values.get('NewExternalIPAddress') ?? '';
      if (!isIPv4(ip)) {
        throw new RcppError(
          'PORT_MAPPING_FAILED',
          `UPnP: the router has no external address ("${ip.slice(0, 40)}")`,
        );
      }
      if (localAddress === undefined || !isIPv4(localAddress)) {
        throw new RcppError('PORT_MAPPING_FAILED', 'UPnP: our LAN address is unknown');
      }
      return igdClient({ service, internalIp: localAddress }, ip);
    } catch (err) {
      if (signal.aborted) throw abortError(signal);
      lastError = err as Error;
      log(`${service.serviceType} at ${service.controlUrl}: ${lastError.message}`);
    }
  }
  throw lastError ?? new RcppError('PORT_MAPPING_FAILED', 'UPnP: no usable WAN service');
}

function igdClient(control: Control, externalIp: string): GatewayClient {
  const { service, internalIp } = control;
  const v2 = service.kind === 'WANIPConnection' && service.version >= 2;
  const gateway = new URL(service.controlUrl).hostname;
  const mappingArgs = (request: MapRequest, externalPort: number) =>
    [
      ['NewRemoteHost', ''],
      ['NewExternalPort', externalPort],
      ['NewProtocol', 'TCP'],
      ['NewInternalPort', request.internalPort],
      ['NewInternalClient', internalIp],
      ['NewEnabled', 1],
      ['NewPortMappingDescription', DESCRIPTION],
      ['NewLeaseDuration', request.lifetimeSeconds],
    ] as const;

  const client: GatewayClient = {
    protocol: 'upnp',
    address: gateway,
    describe: `UPnP IGD v${v2 ? 2 : 1} (${service.kind}:${service.version})`,
    externalIp,
    async map(request: MapRequest, signal: AbortSignal): Promise<Mapping> {
      const ext = await call(service, 'GetExternalIPAddress', [], signal);
      const ip = ext.answer.ok ? (ext.answer.values.get('NewExternalIPAddress') ?? '') : '';
      if (!isIPv4(ip))
        throw new RcppError('PORT_MAPPING_FAILED', 'UPnP: the router has no external address');
      client.externalIp = ip;
      const mapped = (port: number): Mapping => ({
        protocol: 'upnp',
        gateway,
        internalIp,
        internalPort: request.internalPort,
        external: { ip, port },
        lifetimeSeconds: request.lifetimeSeconds,
      });
      const tries = [request.externalPortHint];
      for (let i = 0; i < CONFLICT_RETRIES; i++) tries.push(randomInt(20_000, 60_000));
      for (const [n, port] of tries.entries()) {
        const { answer } = await call(
          service,
          'AddPortMapping',
          mappingArgs(request, port),
          signal,
        );
        if (answer.ok) return mapped(port);
        if (answer.errorCode === UPNP_ERRORS.onlyPermanentLeases) {
          throw new RcppError(
            'PORT_MAPPING_FAILED',
            'UPnP: the router only offers permanent mappings, and rcpp2p only makes ones that expire',
          );
        }
        const conflict = answer.errorCode === UPNP_ERRORS.conflict;
        if (conflict && v2) {
          // Taken by another host: let the router choose a free port near ours.
          const any = await call(service, 'AddAnyPortMapping', mappingArgs(request, port), signal);
          if (!any.answer.ok) throw soapFailure('AddAnyPortMapping', any.answer);
          const reserved = Number(any.answer.values.get('NewReservedPort'));
          if (!Number.isInteger(reserved) || reserved < 1 || reserved > 65535) {
            throw new RcppError('PORT_MAPPING_FAILED', 'UPnP AddAnyPortMapping: no reserved port');
          }
          return mapped(reserved);
        }
        if (!conflict || n === tries.length - 1) throw soapFailure('AddPortMapping', answer);
      }
      throw new RcppError('PORT_MAPPING_FAILED', 'UPnP AddPortMapping: every port tried is taken');
    },
    async unmap(mapping: Mapping, signal: AbortSignal): Promise<void> {
      const { answer } = await call(
        service,
        'DeletePortMapping',
        [
          ['NewRemoteHost', ''],
          ['NewExternalPort', mapping.external.port],
          ['NewProtocol', 'TCP'],
        ],
        signal,
      );
      if (!answer.ok && answer.errorCode !== UPNP_ERRORS.noSuchEntry) {
        throw soapFailure('DeletePortMapping', answer);
      }
    },
  };
  return client;
}
