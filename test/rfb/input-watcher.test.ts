/**
 * The idle timeout's input detector: finds keys, pointer and clipboard among the browser's RFB
 * messages, skips the handshake (worked out from both sides when it passes through), follows any
 * chunking, and fails open (everything counts as input) whenever it cannot follow the stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InputWatcher } from '../../src/rfb/input-watcher.js';
import { u32 } from '../../src/rfb/protocol.js';

const fbur = Buffer.from([3, 1, 0, 0, 0, 0, 4, 0, 3, 0]);
const setEncodings = Buffer.from([2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0x21]);
const fence = Buffer.concat([Buffer.from([248, 0, 0, 0, 0, 0, 0, 3, 4]), Buffer.from('abcd')]);
const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const pointer = Buffer.from([5, 0, 0, 10, 0, 20]);
const CLIENT_INIT = Buffer.from([1]);
const cut = Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(5), Buffer.from('hello')]);

/** Feeds `bytes` in one piece, then one byte at a time; returns whether input was seen in each. */
function seen(make: () => InputWatcher, messages: Buffer): boolean[] {
  const bytes = Buffer.concat([CLIENT_INIT, messages]);
  const whole = make().browser(bytes);
  const w = make();
  let bytewise = false;
  for (const b of bytes) bytewise = w.browser(Buffer.from([b])) || bytewise;
  return [whole, bytewise];
}

describe('InputWatcher after a relay-side handshake', () => {
  const after = (): InputWatcher => new InputWatcher(true);

  it('update requests, encodings and fences are not input', () => {
    assert.deepEqual(seen(after, Buffer.concat([setEncodings, fbur, fence, fbur])), [false, false]);
  });

  for (const [name, msg] of [['a key', key], ['the pointer', pointer], ['clipboard text', cut]] as const) {
    it(`${name} is input, wherever it sits among other messages`, () => {
      assert.deepEqual(seen(after, Buffer.concat([fbur, msg, fbur])), [true, true]);
    });
  }

  it('the extended pointer event (7 bytes, marker bit 0x80) is input, and the stream stays in step', () => {
    // noVNC 1.7 with ExtendedMouseButtons: back (0x80|mask bit 7 → high byte 1) and forward (2).
    const back = Buffer.from([5, 0x80, 0x06, 0x80, 0, 8, 1]);
    const forward = Buffer.from([5, 0x80, 0x06, 0x80, 0, 8, 2]);
    const w = after();
    assert.equal(w.browser(Buffer.concat([CLIENT_INIT, fbur])), false);
    assert.equal(w.browser(Buffer.concat([forward, fbur])), true);
    assert.equal(w.browser(Buffer.concat([back, fbur])), true);
    assert.equal(w.browser(Buffer.concat([fbur, setEncodings])), false, 'still in step: no phantom input');
    assert.equal(w.failedOpen, false);
  });

  it('the extended clipboard (negative length: Request/Notify/Provide, sent by noVNC itself) is not input', () => {
    const request = Buffer.concat([Buffer.from([6, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xfc]), Buffer.from([0x02, 0, 0, 1])]);
    assert.deepEqual(seen(after, Buffer.concat([fbur, request, fbur])), [false, false]);
  });

  it('a big clipboard text is skipped as it streams, and the messages after it are still read', () => {
    const w = after();
    assert.equal(w.browser(CLIENT_INIT), false);
    const body = Buffer.alloc(100_000, 0x41);
    const head = Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(body.length)]);
    assert.equal(w.browser(Buffer.concat([head, body.subarray(0, 10)])), true);
    assert.equal(w.browser(body.subarray(10)), false);
    assert.equal(w.browser(fbur), false);
    assert.equal(w.browser(key), true);
    assert.equal(w.failedOpen, false);
  });

  it('an unknown message type: fails open, every later byte counts as input', () => {
    const w = after();
    assert.equal(w.browser(Buffer.from([1, 99, 1, 2, 3])), true);
    assert.equal(w.failedOpen, true);
    assert.equal(w.browser(fbur), true);
  });
});

describe('InputWatcher on a handshake that passes through', () => {
  const cases: { name: string; server: Buffer; browser: Buffer }[] = [
    {
      name: '3.8 with None',
      server: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1]), u32(0)]),
      browser: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1]), Buffer.from([1])]),
    },
    {
      name: '3.8 with VNC Authentication (the 16-byte response looks like messages, and is skipped)',
      server: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 2]), Buffer.alloc(16), u32(0)]),
      browser: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([2]), Buffer.alloc(16, 4), Buffer.from([1])]),
    },
    {
      name: '3.3 with VNC Authentication imposed by the server',
      server: Buffer.concat([Buffer.from('RFB 003.003\n'), u32(2), Buffer.alloc(16), u32(0)]),
      browser: Buffer.concat([Buffer.from('RFB 003.003\n'), Buffer.alloc(16, 5), Buffer.from([1])]),
    },
  ];
  for (const c of cases) {
    it(`${c.name}: the handshake is not input, the messages after it are read`, () => {
      for (const serverFirst of [true, false]) {
        const w = new InputWatcher(false);
        if (serverFirst) w.server(c.server);
        let input = false;
        // The browser's bytes arrive one at a time, the server's in between when not first.
        c.browser.forEach((b, i) => {
          if (!serverFirst && i === 12) w.server(c.server);
          input = w.browser(Buffer.from([b])) || input;
        });
        assert.equal(input, false, 'the handshake is not input');
        assert.equal(w.browser(Buffer.concat([setEncodings, fbur])), false);
        assert.equal(w.browser(pointer), true);
        assert.equal(w.failedOpen, false);
      }
    });
  }

  it('another security type (VeNCrypt): fails open', () => {
    const w = new InputWatcher(false);
    w.server(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 19])]));
    assert.equal(w.browser(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([19])])), true);
    assert.equal(w.failedOpen, true);
  });
});
