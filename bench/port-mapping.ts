// Set-up time with router port mapping on and off, without a gateway that maps ports (the set-up
// lab's routers run no miniupnpd): the client asks its router (PCP/NAT-PMP to the default gateway,
// UPnP by SSDP) while it logs in, and must not wait for a router that never answers. Runs alternate
// in the same lab, so a slow spell of the machine hits both; the ratio is the regression, if any.
import type { Series } from './stats.js';

const OFF = 'rcpp2p direct set-up, --no-port-mapping';
const ON = 'rcpp2p direct set-up, mapping on, no gateway';
const OFF_TOTAL = 'rcpp2p 1-byte get, --no-port-mapping';
const ON_TOTAL = 'rcpp2p 1-byte get, mapping on, no gateway';

/** The rows for the table: [figure, baseline it is compared with]. */
export const PORT_MAPPING_FIGURES: [string, string | undefined][] = [
  [OFF, undefined],
  [ON, OFF],
  [OFF_TOTAL, undefined],
  [ON_TOTAL, OFF_TOTAL],
];

export interface PortMappingBenchTools {
  /** One 1-byte get with these extra options: its wall time and the link's setupMs. */
  get(extra: string[]): Promise<{ ms: number; setupMs: number; path: string }>;
  /** Between two gets: wait until the routers forget the last connection. */
  between(): Promise<void>;
  record(name: string, unit: Series['unit'], value: number): void;
}

export async function portMappingSetup(tools: PortMappingBenchTools, runs: number): Promise<void> {
  for (let i = 0; i < runs; i++) {
    for (const on of i % 2 === 0 ? [false, true] : [true, false]) {
      await tools.between();
      const got = await tools.get(on ? [] : ['--no-port-mapping']);
      if (got.path !== 'direct') {
        throw new Error(
          `expected a direct get (port mapping ${on ? 'on' : 'off'}), got ${got.path}`,
        );
      }
      tools.record(on ? ON : OFF, 's', got.setupMs / 1000);
      tools.record(on ? ON_TOTAL : OFF_TOTAL, 's', got.ms / 1000);
    }
  }
}
