// What every port-mapping protocol offers rcpp2p once a router speaking it was found: map one TCP
// port (again, to renew it), and remove that mapping. Implemented by natpmp-client, pcp-client and
// upnp-client; chosen by find-gateway; driven by port-mapping (the lifecycle).
import type { Endpoint, PortMappingProtocol } from '../../peer.js';

export interface MapRequest {
  internalPort: number;
  /** The external port we would like: the internal one at first, the granted one on renewal. */
  externalPortHint: number;
  lifetimeSeconds: number;
}

export interface Mapping {
  protocol: PortMappingProtocol;
  /** The router's LAN address. */
  gateway: string;
  /** Our LAN address the router forwards to. */
  internalIp: string;
  internalPort: number;
  /** Where the Internet reaches the mapped port. */
  external: Endpoint;
  /** What the router granted (it may shorten or lengthen what was asked). */
  lifetimeSeconds: number;
}

export interface GatewayClient {
  protocol: PortMappingProtocol;
  /** The router's LAN address. */
  address: string;
  /** "UPnP IGD v1 (WANIPConnection:1)", "NAT-PMP", "PCP": for the log. */
  describe: string;
  /** The router's external address when the protocol told us before mapping (NAT-PMP, UPnP). */
  externalIp: string | undefined;
  /** Maps (or renews) one TCP port; rejects with PORT_MAPPING_FAILED and the router's reason. */
  map(request: MapRequest, signal: AbortSignal): Promise<Mapping>;
  /** Removes the mapping; rejects when the router did not confirm it. */
  unmap(mapping: Mapping, signal: AbortSignal): Promise<void>;
}
