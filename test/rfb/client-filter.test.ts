/**
 * The watch filter on the browser's RFB messages (src/rfb/client-filter.ts), without sockets:
 * what passes in watch and in control mode, SetDesktopSize only with allowResize and the
 * ExtendedDesktopSize encoding announced, input told apart and refused input counted, byte-exact
 * across any chunking, the handshake skipped (relay-side or passing through), an unknown type
 * ends the stream, an unfollowable handshake is never passed unfiltered to a watcher.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ClientFilter, FILTER_INPUT, FILTER_LOST, FILTER_UNKNOWN, type FilterMode } from '../../src/rfb/client-filter.js';
import { u32 } from '../../src/rfb/protocol.js';
import { between, prng } from '../helpers/stream.js';

const CLIENT_INIT = Buffer.from([1]);
const pixelFormat = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.alloc(16, 7)]);
const encodings = (...list: number[]): Buffer => {
  const b = Buffer.alloc(4 + 4 * list.length);
  b[0] = 2;
  b.writeUInt16BE(list.length, 2);
  for (const [i, e] of list.entries()) b.writeInt32BE(e, 4 + 4 * i);
  return b;
};
const setEncodings = encodings(0, -223);
const withExtended = encodings(7, 0, -308, -223);
const fbur = Buffer.from([3, 1, 0, 0, 0, 0, 4, 0, 3, 0]);
const continuous = Buffer.from([150, 1, 0, 0, 0, 0, 4, 0, 3, 0]);
const fence = Buffer.concat([Buffer.from([248, 0, 0, 0, 0, 0, 0, 3, 4]), Buffer.from('abcd')]);
const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const pointer = Buffer.from([5, 1, 0, 10, 0, 20]);
const pointerExt = Buffer.from([5, 0x80, 0x06, 0x80, 0, 8, 1]);
const cut = Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(5), Buffer.from('hello')]);
const extendedClipboard = Buffer.concat([Buffer.from([6, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff, 0xfc]), Buffer.from([0x02, 0, 0, 1])]);
const xvp = Buffer.from([250, 0, 1, 2]);
const resize = Buffer.concat([Buffer.from([251, 0, 4, 0, 3, 0, 1, 0]), Buffer.alloc(16, 1)]);
const qemuKey = Buffer.from([255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);

const STREAM_KEEP = [pixelFormat, setEncodings, fbur, continuous, fence, withExtended];
const INPUT = [key, pointer, pointerExt, cut, xvp, resize, qemuKey];

interface Run {
  passed: Buffer;
  flags: number;
  filter: ClientFilter;
}

/** Feeds ClientInit and `messages` to a fresh filter in pieces cut by `cuts` (sizes), collecting what passes. */
function run(messages: Buffer[], mode: FilterMode, cuts?: () => number, setup?: (f: ClientFilter) => void): Run {
  const filter = new ClientFilter(true);
  filter.mode = mode;
  setup?.(filter);
  const bytes = Buffer.concat([CLIENT_INIT, ...messages]);
  const out: Buffer[] = [];
  let flags = 0;
  for (let i = 0; i < bytes.length; ) {
    const n = cuts ? Math.min(cuts(), bytes.length - i) : bytes.length;
    flags |= filter.push(bytes.subarray(i, i + n), (b) => out.push(Buffer.from(b)));
    i += n;
  }
  return { passed: Buffer.concat(out), flags, filter };
}

/** The same in one piece, one byte at a time, and in random pieces (seeded): all must agree. */
function everyCut(messages: Buffer[], mode: FilterMode, setup?: (f: ClientFilter) => void): Run {
  const whole = run(messages, mode, undefined, setup);
  const bytewise = run(messages, mode, () => 1, setup);
  assert.deepEqual(bytewise.passed, whole.passed, 'byte by byte');
  assert.equal(bytewise.flags, whole.flags);
  assert.equal(bytewise.filter.refused, whole.filter.refused);
  for (const seed of [1, 2, 3]) {
    const rand = prng(seed);
    const random = run(messages, mode, () => between(rand, 1, 23), setup);
    assert.deepEqual(random.passed, whole.passed, `random cuts, seed ${seed}`);
  }
  return whole;
}

describe('ClientFilter in watch mode', () => {
  it('passes what keeps the picture coming, byte for byte, and counts none of it as input', () => {
    const r = everyCut(STREAM_KEEP, 'watch');
    assert.deepEqual(r.passed, Buffer.concat([CLIENT_INIT, ...STREAM_KEEP]));
    assert.equal(r.flags, 0);
    assert.equal(r.filter.refused, 0);
  });

  it('drops keys, pointer (both forms), clipboard, xvp, SetDesktopSize and QEMU keys wherever they sit, and counts them', () => {
    const mixed: Buffer[] = [];
    for (const m of INPUT) mixed.push(fbur, m);
    mixed.push(fence);
    const r = everyCut(mixed, 'watch');
    assert.deepEqual(r.passed, Buffer.concat([CLIENT_INIT, ...INPUT.map(() => fbur), fence]));
    assert.equal(r.flags & FILTER_INPUT, FILTER_INPUT);
    assert.equal(r.filter.refused, INPUT.length);
  });

  it('drops the extended clipboard too, without counting it as refused input (noVNC sends it by itself)', () => {
    const r = everyCut([fbur, extendedClipboard, fbur], 'watch');
    assert.deepEqual(r.passed, Buffer.concat([CLIENT_INIT, fbur, fbur]));
    assert.equal(r.filter.refused, 0);
    assert.equal(r.flags, 0);
  });

  it('drops a big clipboard text as it streams, without holding it, and reads the messages after it', () => {
    const filter = new ClientFilter(true);
    const out: Buffer[] = [];
    const sink = (b: Buffer): void => {
      out.push(Buffer.from(b));
    };
    filter.push(CLIENT_INIT, sink);
    const body = Buffer.alloc(100_000, 0x41);
    filter.push(Buffer.concat([Buffer.from([6, 0, 0, 0]), u32(body.length), body.subarray(0, 10)]), sink);
    assert.equal(filter.push(body.subarray(10), sink), 0);
    filter.push(fbur, sink);
    assert.deepEqual(Buffer.concat(out), Buffer.concat([CLIENT_INIT, fbur]));
    assert.equal(filter.refused, 1);
  });
});

describe('ClientFilter in control mode', () => {
  it('passes every message but SetDesktopSize, and tells input apart', () => {
    const without = INPUT.filter((m) => m !== resize);
    const r = everyCut([...STREAM_KEEP, ...without], 'control');
    assert.deepEqual(r.passed, Buffer.concat([CLIENT_INIT, ...STREAM_KEEP, ...without]));
    assert.equal(r.flags, FILTER_INPUT);
    assert.equal(run(STREAM_KEEP, 'control').flags, 0);
  });

  it('SetDesktopSize passes only with allowResize and ExtendedDesktopSize announced in the last SetEncodings', () => {
    const resizeOk = (f: ClientFilter): void => {
      f.allowResize = true;
    };
    // Not allowed on the target: dropped and counted, even with the encoding announced.
    const refused = everyCut([withExtended, resize, fbur], 'control');
    assert.deepEqual(refused.passed, Buffer.concat([CLIENT_INIT, withExtended, fbur]));
    assert.equal(refused.filter.refused, 1);
    // Allowed, but the viewer never announced -308 (TigerVNC 1.12 would crash): dropped.
    const unannounced = everyCut([setEncodings, resize, fbur], 'control', resizeOk);
    assert.deepEqual(unannounced.passed, Buffer.concat([CLIENT_INIT, setEncodings, fbur]));
    // Allowed and announced: passes, and is noted.
    const ok = everyCut([withExtended, resize, fbur], 'control', resizeOk);
    assert.deepEqual(ok.passed, Buffer.concat([CLIENT_INIT, withExtended, resize, fbur]));
    assert.equal(ok.filter.resizes, 1);
    assert.equal(ok.filter.extendedDesktopSize, true);
    // A later SetEncodings without it takes the announcement back.
    const withdrawn = everyCut([withExtended, setEncodings, resize], 'control', resizeOk);
    assert.deepEqual(withdrawn.passed, Buffer.concat([CLIENT_INIT, withExtended, setEncodings]));
    // Watching: never, whatever the target allows.
    assert.deepEqual(everyCut([withExtended, resize], 'watch', resizeOk).passed, Buffer.concat([CLIENT_INIT, withExtended]));
  });

  it('a change of mode applies from the next message on, not in the middle of one', () => {
    const filter = new ClientFilter(true);
    filter.mode = 'control';
    const out: Buffer[] = [];
    const sink = (b: Buffer): void => {
      out.push(Buffer.from(b));
    };
    filter.push(Buffer.concat([CLIENT_INIT, key.subarray(0, 3)]), sink);
    filter.mode = 'watch';
    filter.push(Buffer.concat([key.subarray(3), key, fbur]), sink);
    filter.mode = 'control';
    filter.push(pointer, sink);
    assert.deepEqual(Buffer.concat(out), Buffer.concat([CLIENT_INIT, key, fbur, pointer]));
    assert.equal(filter.refused, 1);
  });
});

describe('ClientFilter on what it does not know', () => {
  for (const mode of ['watch', 'control'] as const) {
    it(`${mode}: an unknown message type stops the stream there (nothing after it passes) and is named`, () => {
      const r = run([fbur, Buffer.from([99, 1, 2, 3]), key], mode);
      assert.deepEqual(r.passed, Buffer.concat([CLIENT_INIT, fbur]));
      assert.equal(r.flags & FILTER_UNKNOWN, FILTER_UNKNOWN);
      assert.equal(r.filter.unknownType, 99);
      const after = r.filter.push(fbur, () => assert.fail('nothing passes after an unknown type'));
      assert.equal(after & FILTER_UNKNOWN, FILTER_UNKNOWN);
    });
  }

  it('a QEMU message other than the extended key event is unknown', () => {
    const r = run([fbur, Buffer.from([255, 1, 0, 0])], 'control');
    assert.equal(r.flags & FILTER_UNKNOWN, FILTER_UNKNOWN);
    assert.equal(r.filter.unknownType, 255);
    assert.deepEqual(r.passed, Buffer.concat([CLIENT_INIT, fbur]));
  });
});

describe('ClientFilter on a handshake that passes through', () => {
  const cases: { name: string; server: Buffer; browser: Buffer }[] = [
    {
      name: '3.8 with None',
      server: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1]), u32(0)]),
      browser: Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1]), Buffer.from([1])]),
    },
    {
      name: '3.8 with VNC Authentication (the 16-byte response looks like key events, and passes)',
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
    it(`${c.name}: the handshake passes whole, the messages after it are filtered`, () => {
      for (const serverFirst of [true, false]) {
        const f = new ClientFilter(false);
        const out: Buffer[] = [];
        const sink = (b: Buffer): void => {
          out.push(Buffer.from(b));
        };
        if (serverFirst) f.server(c.server);
        let flags = 0;
        c.browser.forEach((b, i) => {
          if (!serverFirst && i === 12) f.server(c.server);
          flags |= f.push(Buffer.from([b]), sink);
        });
        assert.equal(flags, 0, 'the handshake is not input');
        assert.deepEqual(Buffer.concat(out), c.browser);
        out.length = 0;
        assert.equal(f.push(Buffer.concat([setEncodings, key, fbur, pointer]), sink), FILTER_INPUT);
        assert.deepEqual(Buffer.concat(out), Buffer.concat([setEncodings, fbur]));
        assert.equal(f.failedOpen, false);
      }
    });
  }

  it('a handshake and messages in one chunk (3.8, None): the handshake passes, the messages are filtered', () => {
    const f = new ClientFilter(false);
    const out: Buffer[] = [];
    f.server(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1])]));
    const hello = Buffer.from('RFB 003.008\n\x01\x01', 'latin1');
    const flags = f.push(Buffer.concat([hello, key, fbur]), (b) => {
      out.push(Buffer.from(b));
    });
    assert.equal(flags, FILTER_INPUT);
    assert.deepEqual(Buffer.concat(out), Buffer.concat([hello, fbur]));
    assert.equal(f.refused, 1);
  });

  it('another security type (VeNCrypt): lost; a watcher gets nothing passed, a controller everything', () => {
    for (const mode of ['watch', 'control'] as const) {
      const f = new ClientFilter(false);
      f.mode = mode;
      const out: Buffer[] = [];
      const sink = (b: Buffer): void => {
        out.push(Buffer.from(b));
      };
      f.server(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 19])]));
      const hello = Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([19])]);
      assert.equal(f.push(hello, sink) & FILTER_LOST, FILTER_LOST);
      assert.equal(f.failedOpen, true);
      out.length = 0;
      assert.equal(f.push(key, sink), FILTER_LOST | FILTER_INPUT);
      assert.deepEqual(Buffer.concat(out), mode === 'watch' ? Buffer.alloc(0) : key);
    }
  });
});
