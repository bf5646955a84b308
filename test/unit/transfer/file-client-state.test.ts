// FileClient's connection state: the whole transition table, from its one function.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RcppError } from '../../../src/errors.js';
import {
  nextState,
  type ClientEvent,
  type ClientState,
} from '../../../src/transfer/file-client.js';

const lost = new RcppError('CONNECTION_LOST', 'gone');
const closing = Promise.resolve();
const ready: ClientState = { s: 'ready' };
const busy: ClientState = { s: 'busy' };
const broken: ClientState = { s: 'broken', error: lost };
const closed: ClientState = { s: 'closed', closing };

describe('FileClient state', () => {
  const table: [string, ClientState, ClientEvent, ClientState | 'throws'][] = [
    ['a command starts on a ready connection', ready, { e: 'start' }, busy],
    ['a command ends (or its list is refused)', busy, { e: 'finish' }, ready],
    ['a command breaks the connection', busy, { e: 'fail', error: lost }, broken],
    ['close while ready', ready, { e: 'close', closing }, closed],
    ['close cuts a running command', busy, { e: 'close', closing }, closed],
    ['close a broken connection', broken, { e: 'close', closing }, closed],
    ['a cut command finishing late keeps it closed', closed, { e: 'finish' }, closed],
    ['a cut command failing late keeps it closed', closed, { e: 'fail', error: lost }, closed],
    [
      'closing twice keeps the first closing',
      closed,
      { e: 'close', closing: Promise.resolve() },
      closed,
    ],
    ['no command starts while another runs', busy, { e: 'start' }, 'throws'],
    ['no command starts on a broken connection', broken, { e: 'start' }, 'throws'],
    ['no command starts on a closed connection', closed, { e: 'start' }, 'throws'],
  ];
  for (const [name, from, event, to] of table) {
    it(name, () => {
      if (to === 'throws') {
        assert.throws(() => nextState(from, event), { code: 'INTERNAL' });
        return;
      }
      const got = nextState(from, event);
      assert.deepEqual(got, to);
      if (to.s === 'closed') assert.equal((got as typeof to).closing, closing);
    });
  }
});
