// UPnP's texts: SSDP answers (who may point us where), device descriptions (which service, which
// control URL), SOAP answers (values and faults), from real miniupnpd captures and hostile variants.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseIgdDescription } from '../../../../src/nat/port-mapping/igd-description.js';
import {
  decodeSoapAnswer,
  encodeSoapRequest,
  MAX_SOAP_ANSWER,
} from '../../../../src/nat/port-mapping/soap.js';
import {
  decodeSearchAnswer,
  encodeSearch,
  MAX_SSDP_ANSWER,
} from '../../../../src/nat/port-mapping/ssdp.js';
import { elementBlocks, elementTexts, xmlText } from '../../../../src/nat/port-mapping/xml.js';
import {
  DSL_ROUTER_DESCRIPTION,
  MINIUPNPD_IGD1_DESCRIPTION,
  MINIUPNPD_IGD2_DESCRIPTION,
  MINIUPNPD_SSDP_ANSWER,
  SOAP_ADD_OK_SELF_CLOSING,
  SOAP_ANY_RESERVED,
  SOAP_CONFLICT_718,
  SOAP_DELETE_OK,
  SOAP_EXTERNAL_IP,
} from './samples.js';

describe('SSDP', () => {
  it('a multicast M-SEARCH carries MX; a unicast one to the gateway does not', () => {
    const multicast = encodeSearch('urn:schemas-upnp-org:device:InternetGatewayDevice:1');
    assert.equal(
      multicast.toString(),
      'M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: "ssdp:discover"\r\nMX: 1\r\n' +
        'ST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n',
    );
    const unicast = encodeSearch('urn:x', '198.18.1.1').toString();
    assert.match(unicast, /^HOST: 198\.18\.1\.1:1900\r$/m);
    assert.doesNotMatch(unicast, /MX:/);
  });

  const answer = (location: string, st = 'urn:schemas-upnp-org:device:InternetGatewayDevice:1') =>
    Buffer.from(`HTTP/1.1 200 OK\r\nST: ${st}\r\nLOCATION: ${location}\r\n\r\n`);
  const cases: { setup: string; bytes: Buffer; from: string; problem?: RegExp }[] = [
    { setup: "miniupnpd's answer", bytes: Buffer.from(MINIUPNPD_SSDP_ANSWER), from: '198.18.1.1' },
    {
      setup: 'the same answer relayed by another LAN host',
      bytes: Buffer.from(MINIUPNPD_SSDP_ANSWER),
      from: '198.18.1.7',
      problem: /not on the answering address 198\.18\.1\.7/,
    },
    {
      setup: 'a LOCATION on the Internet',
      bytes: answer('http://203.0.113.99/rootDesc.xml'),
      from: '198.18.1.1',
      problem: /not on the answering address/,
    },
    {
      setup: 'a LOCATION by name (would need a lookup)',
      bytes: answer('http://router.local:5000/rootDesc.xml'),
      from: '198.18.1.1',
      problem: /not on the answering address/,
    },
    {
      setup: 'https or file URLs',
      bytes: answer('file:///etc/passwd'),
      from: '198.18.1.1',
      problem: /is not http/,
    },
    {
      setup: 'a user name in the URL',
      bytes: answer('http://admin:admin@198.18.1.1:5000/x.xml'),
      from: '198.18.1.1',
      problem: /user name/,
    },
    {
      setup: 'a media server answering for itself',
      bytes: answer('http://198.18.1.1:8200/x.xml', 'urn:schemas-upnp-org:device:MediaServer:1'),
      from: '198.18.1.1',
      problem: /an answer for "urn:schemas-upnp-org:device:MediaServer:1"/,
    },
    {
      setup: 'a NOTIFY, not an answer',
      bytes: Buffer.from('NOTIFY * HTTP/1.1\r\nLOCATION: http://198.18.1.1:5000/a\r\n\r\n'),
      from: '198.18.1.1',
      problem: /not an "HTTP\/1\.1 200" answer/,
    },
    {
      setup: 'no LOCATION',
      bytes: Buffer.from(
        'HTTP/1.1 200 OK\r\nST: urn:schemas-upnp-org:device:InternetGatewayDevice:1\r\n\r\n',
      ),
      from: '198.18.1.1',
      problem: /no LOCATION/,
    },
    {
      setup: 'a LOCATION of 300 characters',
      bytes: answer(`http://198.18.1.1:5000/${'a'.repeat(280)}`),
      from: '198.18.1.1',
      problem: /longer than 256/,
    },
    {
      setup: 'an answer larger than 2 KB',
      bytes: Buffer.concat([answer('http://198.18.1.1:5000/a'), Buffer.alloc(MAX_SSDP_ANSWER)]),
      from: '198.18.1.1',
      problem: /an answer of \d+ bytes/,
    },
    {
      setup: 'a header line without a colon',
      bytes: Buffer.from('HTTP/1.1 200 OK\r\ngarbage\r\n\r\n'),
      from: '198.18.1.1',
      problem: /without a colon/,
    },
  ];
  for (const c of cases) {
    it(`reads: ${c.setup}`, () => {
      const d = decodeSearchAnswer(c.bytes, c.from);
      if (c.problem) {
        assert.equal(d.ok, false);
        assert.match(d.ok ? '' : d.problem, c.problem);
      } else {
        assert.deepEqual(d, {
          ok: true,
          value: {
            location: 'http://198.18.1.1:5000/rootDesc.xml',
            target: 'urn:schemas-upnp-org:device:InternetGatewayDevice:1',
          },
        });
      }
    });
  }
});

describe('IGD descriptions', () => {
  const location = 'http://198.18.1.1:5000/rootDesc.xml';

  it('miniupnpd IGD v1: WANIPConnection:1 at /ctl/IPConn', () => {
    assert.deepEqual(parseIgdDescription(MINIUPNPD_IGD1_DESCRIPTION, location), {
      ok: true,
      value: [
        {
          serviceType: 'urn:schemas-upnp-org:service:WANIPConnection:1',
          kind: 'WANIPConnection',
          version: 1,
          controlUrl: 'http://198.18.1.1:5000/ctl/IPConn',
        },
      ],
    });
  });

  it('miniupnpd IGD v2: WANIPConnection:2', () => {
    const d = parseIgdDescription(MINIUPNPD_IGD2_DESCRIPTION, location);
    assert.ok(d.ok);
    assert.deepEqual(
      d.value.map((s) => `${s.kind}:${s.version}`),
      ['WANIPConnection:2'],
    );
  });

  it('a DSL router: WANPPPConnection, control URL resolved against its URLBase', () => {
    const d = parseIgdDescription(DSL_ROUTER_DESCRIPTION, 'http://192.168.178.1:49000/igddesc.xml');
    assert.deepEqual(d, {
      ok: true,
      value: [
        {
          serviceType: 'urn:schemas-upnp-org:service:WANPPPConnection:1',
          kind: 'WANPPPConnection',
          version: 1,
          controlUrl: 'http://192.168.178.1:49000/igdupnp/control/WANPPPConn1',
        },
      ],
    });
  });

  it('a router offering both: IP v2 before IP v1 before PPP', () => {
    const svc = (type: string, url: string): string =>
      `<service><serviceType>urn:schemas-upnp-org:service:${type}</serviceType><controlURL>${url}</controlURL></service>`;
    const xml = `<root>${svc('WANPPPConnection:1', '/ppp')}${svc('WANIPConnection:1', '/ip1')}${svc('WANIPConnection:2', '/ip2')}</root>`;
    const d = parseIgdDescription(xml, location);
    assert.ok(d.ok);
    assert.deepEqual(
      d.value.map((s) => new URL(s.controlUrl).pathname),
      ['/ip2', '/ip1', '/ppp'],
    );
  });

  it('control URLs (or a URLBase) on another host are not followed', () => {
    const elsewhere = MINIUPNPD_IGD1_DESCRIPTION.replace(
      '<controlURL>/ctl/IPConn</controlURL>',
      '<controlURL>http://203.0.113.99/ctl/IPConn</controlURL>',
    );
    assert.deepEqual(parseIgdDescription(elsewhere, location), {
      ok: false,
      problem: 'no WANIPConnection or WANPPPConnection service on it',
    });
    const base = DSL_ROUTER_DESCRIPTION.replace(
      'http://192.168.178.1:49000',
      'http://203.0.113.99:49000',
    );
    assert.equal(parseIgdDescription(base, 'http://192.168.178.1:49000/igddesc.xml').ok, false);
  });

  it('entities in URLs are decoded; unknown entities drop the element', () => {
    assert.equal(xmlText(' /ctl?a=1&amp;b=&#50; '), '/ctl?a=1&b=2');
    assert.equal(xmlText('/ctl&nbsp;'), undefined);
    assert.equal(xmlText('a & b'), undefined);
    assert.equal(xmlText('&#0;'), undefined);
  });

  it('a description larger than 64 KB is refused', () => {
    const big = MINIUPNPD_IGD1_DESCRIPTION + ' '.repeat(64 * 1024);
    assert.deepEqual(parseIgdDescription(big, location), {
      ok: false,
      problem: 'a description larger than 64 KB',
    });
  });

  it('thousands of unclosed <service> tags are read in one pass', () => {
    const hostile = `<root>${'<service><serviceType>'.repeat(3000)}</root>`;
    const started = process.hrtime.bigint();
    assert.equal(parseIgdDescription(hostile, location).ok, false);
    assert.deepEqual(elementBlocks(hostile, 'service', 64), []);
    // Not a timing assertion on the machine's speed: quadratic work here would take seconds.
    assert.ok(process.hrtime.bigint() - started < 2_000_000_000n);
  });

  it('elements are found with namespace prefixes and attributes', () => {
    assert.deepEqual(elementTexts('<a:x k="v">1</a:x><x>2</x><x>3</y>', 'x', 5), ['1', '2']);
  });
});

describe('SOAP', () => {
  it('a request names the service and action in SOAPAction and escapes its arguments', () => {
    const r = encodeSoapRequest(
      'urn:schemas-upnp-org:service:WANIPConnection:1',
      'AddPortMapping',
      [
        ['NewExternalPort', 40001],
        ['NewPortMappingDescription', 'a<b&c'],
      ],
    );
    assert.equal(r.soapAction, '"urn:schemas-upnp-org:service:WANIPConnection:1#AddPortMapping"');
    assert.match(
      r.body,
      /<u:AddPortMapping xmlns:u="urn:schemas-upnp-org:service:WANIPConnection:1"><NewExternalPort>40001<\/NewExternalPort><NewPortMappingDescription>a&lt;b&amp;c<\/NewPortMappingDescription><\/u:AddPortMapping>/,
    );
  });

  const values = (d: ReturnType<typeof decodeSoapAnswer>): Record<string, string> => {
    assert.ok(d.ok && d.value.ok, JSON.stringify(d));
    return Object.fromEntries(d.value.values);
  };

  it('reads GetExternalIPAddress, AddAnyPortMapping, and the empty AddPortMapping answer', () => {
    assert.deepEqual(values(decodeSoapAnswer(200, SOAP_EXTERNAL_IP, 'GetExternalIPAddress')), {
      NewExternalIPAddress: '203.0.113.21',
    });
    assert.deepEqual(values(decodeSoapAnswer(200, SOAP_ANY_RESERVED, 'AddAnyPortMapping')), {
      NewReservedPort: '4448',
    });
    assert.deepEqual(values(decodeSoapAnswer(200, SOAP_ADD_OK_SELF_CLOSING, 'AddPortMapping')), {});
    assert.deepEqual(values(decodeSoapAnswer(200, SOAP_DELETE_OK, 'DeletePortMapping')), {});
  });

  it('reads a fault: 718 ConflictInMappingEntry', () => {
    assert.deepEqual(decodeSoapAnswer(500, SOAP_CONFLICT_718, 'AddPortMapping'), {
      ok: true,
      value: { ok: false, errorCode: 718, description: 'ConflictInMappingEntry' },
    });
  });

  it('a fault description with terminal escapes is made safe to show', () => {
    const body = SOAP_CONFLICT_718.replace('ConflictInMappingEntry', 'x&#27;[31mred');
    const d = decodeSoapAnswer(500, body, 'AddPortMapping');
    assert.ok(d.ok && !d.value.ok);
    assert.equal(d.value.description, 'x\ufffd[31mred');
  });

  const bad: { setup: string; status: number; body: string; problem: RegExp }[] = [
    {
      setup: 'the answer to another action',
      status: 200,
      body: SOAP_EXTERNAL_IP,
      problem: /without AddPortMappingResponse/,
    },
    { setup: 'a redirect', status: 302, body: '', problem: /HTTP status 302/ },
    {
      setup: 'a 500 that is no SOAP fault',
      status: 500,
      body: 'Internal Server Error',
      problem: /no fault/,
    },
    {
      setup: 'a 20 KB answer',
      status: 200,
      body: 'x'.repeat(MAX_SOAP_ANSWER + 1),
      problem: /larger than 16 KB/,
    },
    {
      setup: 'a value with an unknown entity',
      status: 200,
      body: '<u:AddPortMappingResponse><NewX>&bogus;</NewX></u:AddPortMappingResponse>',
      problem: /a malformed NewX/,
    },
  ];
  for (const c of bad) {
    it(`refuses: ${c.setup}`, () => {
      const d = decodeSoapAnswer(c.status, c.body, 'AddPortMapping');
      assert.equal(d.ok, false);
      assert.match(d.ok ? '' : d.problem, c.problem);
    });
  }
});
