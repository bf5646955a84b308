// A minimal NAT-PMP (RFC 6886) and PCP (RFC 6887) client for the lab's miniupnpd, run as its own
// process inside a LAN host namespace:
//   node dist/test/helpers/port-mapping-probe.js --gateway 198.18.1.1 --protocol natpmp|pcp
//        --op external|map|unmap [--proto tcp|udp] [--internal-port N] [--external-port N]
//        [--lifetime S] [--client-ip 198.18.1.2] [--nonce HEX24]
// Sends one request to GATEWAY:5351 (retransmitted after 250, 500, 1000 ms, as RFC 6886 asks) and
// prints one JSON line {"event":"result", ok, resultCode, externalIp, externalPort, lifetime, epoch}.
// `unmap` is a map with lifetime 0 (NAT-PMP: external port 0; PCP: the same nonce as the map).
// PCP needs the client's own address in the request (--client-ip), since miniupnpd checks it
// against the packet's source.
import dgram from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';

const PORT = 5351;
const RETRIES_MS = [250, 500, 1000, 2000];

export interface PortMappingProbeResult {
  event: 'result';
  protocol: 'natpmp' | 'pcp';
  op: 'external' | 'map' | 'unmap';
  ok: boolean;
  /** 0 is success (both protocols); see RFC 6886 3.5 and RFC 6887 7.4 for the others. */
  resultCode: number;
  externalIp?: string;
  externalPort?: number;
  internalPort?: number;
  lifetime?: number;
  epoch?: number;
  nonce?: string;
  error?: string;
}

type Op = PortMappingProbeResult['op'];

function natpmpRequest(
  op: Op,
  proto: 'tcp' | 'udp',
  internal: number,
  external: number,
  life: number,
): Buffer {
  if (op === 'external') return Buffer.from([0, 0]);
  const b = Buffer.alloc(12);
  b.writeUInt8(0, 0); // version
  b.writeUInt8(proto === 'udp' ? 1 : 2, 1);
  b.writeUInt16BE(internal, 4);
  b.writeUInt16BE(op === 'unmap' ? 0 : external, 6);
  b.writeUInt32BE(op === 'unmap' ? 0 : life, 8);
  return b;
}

function parseNatpmp(op: Op, r: Buffer): Omit<PortMappingProbeResult, 'event' | 'protocol' | 'op'> {
  const resultCode = r.readUInt16BE(2);
  const epoch = r.readUInt32BE(4);
  if (op === 'external') {
    const externalIp = r.length >= 12 ? [...r.subarray(8, 12)].join('.') : undefined;
    return { ok: resultCode === 0, resultCode, epoch, externalIp };
  }
  return {
    ok: resultCode === 0,
    resultCode,
    epoch,
    internalPort: r.readUInt16BE(8),
    externalPort: r.readUInt16BE(10),
    lifetime: r.readUInt32BE(12),
  };
}

function mappedV4(ip: string): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16BE(0xffff, 10);
  ip.split('.').forEach((octet, i) => b.writeUInt8(Number(octet), 12 + i));
  return b;
}

function pcpRequest(
  op: Op,
  proto: 'tcp' | 'udp',
  internal: number,
  external: number,
  life: number,
  clientIp: string,
  nonce: Buffer,
): Buffer {
  // a MAP request; 'external' is a MAP for a short-lived mapping, since PCP has no address query
  const b = Buffer.alloc(60);
  b.writeUInt8(2, 0); // version
  b.writeUInt8(1, 1); // R=0, opcode MAP
  b.writeUInt32BE(op === 'unmap' ? 0 : life, 4);
  mappedV4(clientIp).copy(b, 8);
  nonce.copy(b, 24);
  b.writeUInt8(proto === 'udp' ? 17 : 6, 36);
  b.writeUInt16BE(internal, 40);
  b.writeUInt16BE(op === 'unmap' ? 0 : external, 42);
  mappedV4('0.0.0.0').copy(b, 44);
  return b;
}

function parsePcp(r: Buffer): Omit<PortMappingProbeResult, 'event' | 'protocol' | 'op'> {
  const resultCode = r.readUInt8(3);
  const lifetime = r.readUInt32BE(4);
  const epoch = r.readUInt32BE(8);
  if (r.length < 60) return { ok: false, resultCode, lifetime, epoch };
  const ext = r.subarray(44, 60);
  return {
    ok: resultCode === 0,
    resultCode,
    lifetime,
    epoch,
    nonce: r.subarray(24, 36).toString('hex'),
    internalPort: r.readUInt16BE(40),
    externalPort: r.readUInt16BE(42),
    externalIp: [...ext.subarray(12, 16)].join('.'),
  };
}

async function exchange(gateway: string, request: Buffer): Promise<Buffer> {
  const socket = dgram.createSocket('udp4');
  try {
    await new Promise<void>((resolve) => socket.bind(0, resolve));
    const reply = new Promise<Buffer>((resolve) => socket.once('message', (m) => resolve(m)));
    for (const waitMs of RETRIES_MS) {
      socket.send(request, PORT, gateway);
      let timer: NodeJS.Timeout | undefined;
      const got = await Promise.race([
        reply,
        new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), waitMs))),
      ]);
      clearTimeout(timer);
      if (got) return got;
    }
    throw new Error(`no answer from ${gateway}:${PORT}`);
  } finally {
    socket.close();
  }
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      gateway: { type: 'string' },
      protocol: { type: 'string', default: 'natpmp' },
      op: { type: 'string', default: 'external' },
      proto: { type: 'string', default: 'tcp' },
      'internal-port': { type: 'string', default: '0' },
      'external-port': { type: 'string', default: '0' },
      lifetime: { type: 'string', default: '120' },
      'client-ip': { type: 'string' },
      nonce: { type: 'string' },
    },
  });
  const protocol = v.protocol === 'pcp' ? 'pcp' : 'natpmp';
  const op = (['external', 'map', 'unmap'] as const).find((o) => o === v.op);
  if (!v.gateway || !op) throw new Error('--gateway and --op external|map|unmap are required');
  const proto = v.proto === 'udp' ? 'udp' : 'tcp';
  const internal = Number(v['internal-port']);
  const external = Number(v['external-port']);
  const life = Number(v.lifetime);
  let request: Buffer;
  let nonce: Buffer | undefined;
  if (protocol === 'pcp') {
    if (!v['client-ip']) throw new Error('PCP needs --client-ip');
    nonce = v.nonce ? Buffer.from(v.nonce, 'hex') : randomBytes(12);
    request = pcpRequest(op, proto, internal, external, life, v['client-ip'], nonce);
  } else {
    request = natpmpRequest(op, proto, internal, external, life);
  }
  const reply = await exchange(v.gateway, request);
  const parsed = protocol === 'pcp' ? parsePcp(reply) : parseNatpmp(op, reply);
  const result: PortMappingProbeResult = { event: 'result', protocol, op, ...parsed };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stdout.write(
      `${JSON.stringify({ event: 'result', ok: false, resultCode: -1, error: err.message })}\n`,
    );
    process.exit(0);
  },
);
