import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  parseHelloReply,
  parseIndexListReply,
  parseListReply,
  parseRendezvousCommand,
  renderRendezvousCommand,
  socketPath,
  type RendezvousOp,
} from '../../../src/rendezvous/commands.js';
import { isRcppError } from '../../../src/errors.js';

const OPS: RendezvousOp[] = [
  { op: 'hello', dir: '.rcpp2p', role: 'server', name: 'ASUS' },
  { op: 'hello', dir: '/tmp/lab-1/rv', role: 'client', name: 'laptop_2.home' },
  { op: 'list', dir: '.rcpp2p', role: 'client' },
  { op: 'publish', dir: 'shared/rcpp2p', role: 'server', name: 'NAS-1' },
  { op: 'unlink-socket', dir: '.rcpp2p', name: 'ASUS' },
  { op: 'watch', dir: '.rcpp2p', name: 'ASUS', wid: '0123456789abcdef' },
  {
    op: 'ask',
    dir: '/tmp/lab-1/rv',
    name: 'NAS-1',
    cid: 'fedcba9876543210',
    first: 2,
    client: 'LAPTOP',
  },
  { op: 'ask', dir: '.rcpp2p', name: 'ASUS', cid: 'fedcba9876543210', first: 1, client: 'ASUS' },
  { op: 'publish-index', dir: '.rcpp2p', name: 'ASUS', bytes: 0 },
  { op: 'publish-index', dir: '/tmp/lab-1/rv', name: 'NAS-1', bytes: 8388608 },
  { op: 'remove-index', dir: '.rcpp2p', name: 'ASUS' },
  { op: 'list-indexes', dir: 'shared/rcpp2p' },
  { op: 'read-index', dir: '.rcpp2p', name: 'laptop_2.home' },
];

describe('rendezvous commands', () => {
  for (const op of OPS) {
    it(`renders and parses back ${op.op} ${JSON.stringify(op)}`, () => {
      const command = renderRendezvousCommand(op);
      assert.ok(command.startsWith("/bin/sh -c '"), command);
      assert.deepEqual(parseRendezvousCommand(command), op);
    });
  }

  it('refuses names and folders that would need shell quoting', () => {
    for (const name of ["a'b", 'a b', '$(id)', '../x', '', '-rf', 'x'.repeat(65)]) {
      assert.throws(
        () => renderRendezvousCommand({ op: 'hello', dir: '.rcpp2p', role: 'server', name }),
        isRcppError,
        name,
      );
    }
    for (const dir of ["a'b", 'a b', '../../etc', 'x/../y', '$HOME', '']) {
      assert.throws(
        () => renderRendezvousCommand({ op: 'list', dir, role: 'server' }),
        isRcppError,
        dir,
      );
    }
  });

  it('refuses loop ids and counts that are not what the loops expect', () => {
    for (const wid of ['', '0123', '0123456789ABCDEF', '0123456789abcdeg', '$(id)0123456789']) {
      assert.throws(
        () => renderRendezvousCommand({ op: 'watch', dir: '.rcpp2p', name: 'ASUS', wid }),
        isRcppError,
        wid,
      );
    }
    assert.throws(
      () =>
        renderRendezvousCommand({
          op: 'ask',
          dir: '.rcpp2p',
          name: 'ASUS',
          cid: 'fedcba9876543210',
          first: 1,
          client: '../servers/ASUS',
        }),
      isRcppError,
    );
    for (const first of [0, 10, -1, 1.5]) {
      assert.throws(
        () =>
          renderRendezvousCommand({
            op: 'ask',
            dir: '.rcpp2p',
            name: 'ASUS',
            cid: 'fedcba9876543210',
            first,
            client: 'LAPTOP',
          }),
        isRcppError,
        String(first),
      );
    }
  });

  it('does not recognise commands that are not exactly ours', () => {
    const hello = renderRendezvousCommand({
      op: 'hello',
      dir: '.rcpp2p',
      role: 'server',
      name: 'ASUS',
    });
    for (const other of [
      hello + ' ',
      hello.replace('ASUS', 'AS US'),
      hello.replace('.rcpp2p', '../../x'),
      'echo $SSH_CLIENT',
      "/bin/sh -c 'rm -rf /'",
      '',
    ]) {
      assert.equal(parseRendezvousCommand(other), undefined, other);
    }
  });

  it('reads a hello reply with and without a record', () => {
    const withRecord = parseHelloReply(
      'rcpp2p 1\nssh-client 203.0.113.22 40002 22\nhome /root\nrecord {"v":1}\n',
    );
    assert.deepEqual(withRecord, {
      observed: { ip: '203.0.113.22', port: 40002 },
      home: '/root',
      recordText: '{"v":1}',
    });
    const without = parseHelloReply(
      'rcpp2p 1\nssh-client 127.0.0.1 51234 2222\nhome /home/ann\nrecord \n',
    );
    assert.equal(without.recordText, undefined);
    assert.equal(without.home, '/home/ann');
  });

  it('explains a hello reply from a restricted account', () => {
    assert.throws(
      () => parseHelloReply('This account is restricted.\n'),
      /did not run the rcpp2p command/,
    );
    assert.throws(
      () => parseHelloReply('rcpp2p 1\nssh-client \nhome /root\nrecord \n'),
      /external address/,
    );
  });

  it('reads a list reply and notices a cut-off one', () => {
    assert.deepEqual(parseListReply('record {"a":1}\nrecord {"b":2}\nend\n'), [
      '{"a":1}',
      '{"b":2}',
    ]);
    assert.deepEqual(parseListReply('end\n'), []);
    assert.throws(() => parseListReply('record {"a":1}\n'), /cut the record list short/);
  });

  it('refuses an index size that is not a whole number of bytes', () => {
    for (const bytes of [-1, 1.5, Number.NaN, 1e20]) {
      assert.throws(
        () => renderRendezvousCommand({ op: 'publish-index', dir: '.rcpp2p', name: 'A', bytes }),
        isRcppError,
        String(bytes),
      );
    }
    const command = renderRendezvousCommand({
      op: 'publish-index',
      dir: '.rcpp2p',
      name: 'A',
      bytes: 12,
    });
    assert.equal(parseRendezvousCommand(command.replace('-eq 12', '-eq 012')), undefined);
    assert.equal(parseRendezvousCommand(command.replace('-eq 12', '-eq 1 -o 1')), undefined);
  });

  it('reads an index list, leaving out lines it did not write', () => {
    const reply = parseIndexListReply(
      [
        'index ASUS 300 {"rcpp2p":"index"}',
        'index NAS 12 ',
        'index ../etc 5 {}',
        'garbage \u001b[31m',
        'index TWICE 1 {}',
        'index TWICE 2 {}',
        'index BSD    77 {"x":1}',
        'end',
        '',
      ].join('\n'),
    );
    assert.deepEqual(reply.indexes, [
      { name: 'ASUS', bytes: 300, summary: '{"rcpp2p":"index"}' },
      { name: 'NAS', bytes: 12, summary: '' },
      { name: 'BSD', bytes: 77, summary: '{"x":1}' },
    ]);
    assert.equal(reply.damaged.length, 3, reply.damaged.join('\n'));
    assert.match(reply.damaged[1] ?? '', /\\u001b/, 'escapes are shown, not sent to the terminal');
    assert.match(reply.damaged[2] ?? '', /TWICE is listed twice/);
    assert.deepEqual(parseIndexListReply('end\n'), { indexes: [], damaged: [] });
    assert.throws(() => parseIndexListReply('index ASUS 3 {}\n'), /cut the index list short/);
  });

  it('puts the signaling socket under the home folder or an absolute folder', () => {
    assert.equal(socketPath('/home/ann', '.rcpp2p', 'ASUS'), '/home/ann/.rcpp2p/sockets/ASUS.sock');
    assert.equal(socketPath('/root/', '/tmp/lab/rv', 'ASUS'), '/tmp/lab/rv/sockets/ASUS.sock');
  });
});
