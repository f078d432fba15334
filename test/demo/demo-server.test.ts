import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import {
  startDemoServer,
  GARBAGE_BANNER,
  type DemoServer,
  type DemoServerOptions,
} from '../../src/demo/demo-server.js';
import {
  BAR_COLOURS,
  BACKGROUND,
  LABEL_COLOUR,
  MARK_COLOURS,
  RAMP_STEPS,
  TEXT_COLOUR,
  TRACK_COLOUR,
  type DemoLayout,
} from '../../src/demo/scene.js';
import { contains, type Rect } from '../../src/demo/rect.js';
import { DEFAULT_PIXEL_FORMAT, type PixelFormat } from '../../src/rfb/pixel-format.js';
import { SECURITY_NONE, SECURITY_VNC_AUTH, type RfbVersion } from '../../src/rfb/protocol.js';
import { ByteReader, RfbClient, RfbError, type RfbClientOptions } from '../helpers/rfb-client.js';

/** A fixed clock: the block and the time stand still, so only what a test does changes the screen. */
const FIXED_NOW = (): Date => new Date(2024, 4, 17, 12, 34, 56);

/** Starts a demo server on 127.0.0.1, port 0, still picture unless asked; closed after the test. */
async function demo(t: TestContext, options: DemoServerOptions = {}): Promise<DemoServer> {
  const server = await startDemoServer({ host: '127.0.0.1', port: 0, fps: 0, now: FIXED_NOW, ...options });
  t.after(() => server.close());
  return server;
}

/** Connects a test client; closed after the test. */
async function connect(
  t: TestContext,
  server: DemoServer,
  options: Partial<RfbClientOptions> = {},
): Promise<RfbClient> {
  const client = await RfbClient.connect({ port: server.port, ...options });
  t.after(() => client.close());
  return client;
}

/** A raw TCP connection to the server with an exact-count reader; destroyed after the test. */
async function raw(t: TestContext, server: DemoServer): Promise<{ socket: net.Socket; reader: ByteReader }> {
  const socket = net.connect(server.port, '127.0.0.1');
  const reader = new ByteReader(socket);
  await once(socket, 'connect');
  t.after(() => socket.destroy());
  return { socket, reader };
}

function countColour(client: RfbClient, rect: Rect, colour: number): number {
  let n = 0;
  for (let y = rect.y; y < rect.y + rect.h; y++) {
    for (let x = rect.x; x < rect.x + rect.w; x++) if (client.pixel(x, y) === colour) n++;
  }
  return n;
}

/** Centre of bar `i` of the colour bars. */
function barCentre(layout: DemoLayout, i: number): { x: number; y: number } {
  const w = layout.bars.w / BAR_COLOURS.length;
  return { x: Math.floor(layout.bars.x + w * i + w / 2), y: layout.bars.y + Math.floor(layout.bars.h / 2) };
}

function assertInside(rects: readonly Rect[], allowed: readonly Rect[], what: string): void {
  for (const r of rects) {
    assert.ok(
      allowed.some((a) => contains(a, r)),
      `${what}: rectangle ${JSON.stringify(r)} is outside ${JSON.stringify(allowed)}`,
    );
  }
}

describe('startDemoServer', () => {
  it('rejects invalid options before listening', async () => {
    await assert.rejects(startDemoServer({ port: 0, version: '4.0' as RfbVersion }), TypeError);
    await assert.rejects(startDemoServer({ port: 0, width: 100 }), /width must be an integer from 480/);
    await assert.rejects(startDemoServer({ port: 70000 }), RangeError);
    await assert.rejects(startDemoServer({ port: 0, greeting: 'loud' as 'slow' }), /greeting must be one of/);
    await assert.rejects(startDemoServer({ port: 0, password: '' }), /password must be a non-empty string/);
    await assert.rejects(startDemoServer({ port: 0, fps: 100 }), /fps must be from 0 to 30/);
  });

  it('listens on a free port when given port 0 and closes idempotently', async () => {
    const server = await startDemoServer({ port: 0 });
    assert.equal(server.host, '127.0.0.1');
    assert.ok(server.port > 0);
    assert.equal(server.clients, 0);
    await server.close();
    await server.close();
    await assert.rejects(RfbClient.connect({ port: server.port }), { code: 'ECONNREFUSED' });
  });

  it('reports a port in use clearly', async (t) => {
    const first = await demo(t);
    await assert.rejects(
      startDemoServer({ port: first.port }),
      /demo server cannot listen on 127\.0\.0\.1:\d+: the address is already in use/,
    );
  });

  it('drops connected clients on close', async (t) => {
    const server = await startDemoServer({ port: 0, fps: 0 });
    const client = await connect(t, server);
    await server.close();
    await client.closed;
    assert.equal(server.clients, 0);
  });
});

describe('handshake', () => {
  for (const version of ['3.3', '3.7', '3.8'] as const) {
    it(`speaks RFB ${version} with no authentication`, async (t) => {
      const server = await demo(t, { version });
      const client = await connect(t, server);
      assert.equal(client.serverVersion, `RFB 003.00${version.slice(2)}\n`);
      assert.equal(client.version, version);
      assert.deepEqual(client.securityTypes, [SECURITY_NONE]);
      assert.equal(client.width, 1024);
      assert.equal(client.height, 640);
      assert.equal(client.name, 'ctrlx-novnc demo');
      assert.deepEqual(client.serverPixelFormat, DEFAULT_PIXEL_FORMAT);
      const update = await client.update(false);
      assert.deepEqual(update.rects, [{ x: 0, y: 0, w: 1024, h: 640, encoding: 0 }]);
    });
  }

  for (const version of ['3.3', '3.7'] as const) {
    it(`lets a ${version} client talk to a 3.8 server`, async (t) => {
      const server = await demo(t);
      const ready = once(server, 'ready');
      const client = await connect(t, server, { version });
      assert.equal(client.version, version);
      const [info] = await ready;
      assert.equal(info.version, version);
      assert.equal(info.security, 'none');
    });
  }

  it('refuses a client that asks for a newer version, with a reason', async (t) => {
    const server = await demo(t, { version: '3.7' });
    await assert.rejects(connect(t, server, { version: '3.8' }), {
      name: 'RfbError',
      reason: "client version 3.8 is newer than the server's 3.7",
    });
  });

  it('refuses a reply that is not a ProtocolVersion (3.8 format: empty list + reason)', async (t) => {
    const server = await demo(t);
    const { socket, reader } = await raw(t, server);
    assert.equal((await reader.read(12)).toString(), 'RFB 003.008\n');
    socket.write('GET / HTTP/1');
    const rest = await reader.rest();
    const reason = 'unsupported protocol version';
    assert.deepEqual(rest, Buffer.concat([Buffer.from([0, 0, 0, 0, reason.length]), Buffer.from(reason)]));
  });

  it('refuses everyone when told to: 3.3 sends type 0 + reason', async (t) => {
    const server = await demo(t, { version: '3.3', refuse: 'too many viewers' });
    await assert.rejects(connect(t, server), { name: 'RfbError', reason: 'too many viewers' });
  });

  it('refuses everyone when told to: 3.8 sends an empty type list + reason', async (t) => {
    const server = await demo(t, { refuse: 'maintenance' });
    const closed = once(server, 'disconnect');
    await assert.rejects(connect(t, server), { name: 'RfbError', reason: 'maintenance' });
    const [end] = await closed;
    assert.equal(end.reason, 'refused: maintenance');
  });

  it('3.8: a security type that was not offered gets a failed SecurityResult with a reason', async (t) => {
    const server = await demo(t);
    await assert.rejects(connect(t, server, { securityType: 16 }), {
      name: 'RfbError',
      reason: 'security type 16 was not offered',
    });
  });

  it('3.7: a security type that was not offered closes the connection', async (t) => {
    const server = await demo(t, { version: '3.7' });
    await assert.rejects(connect(t, server, { securityType: 16 }), /connection closed/);
  });

  it('parses every message across one-byte TCP chunks', async (t) => {
    const server = await demo(t);
    const { socket, reader } = await raw(t, server);
    const drip = async (bytes: number[]): Promise<void> => {
      for (const b of bytes) {
        socket.write(Buffer.from([b]));
        await new Promise((r) => setTimeout(r, 1));
      }
    };
    await reader.read(12);
    await drip([...Buffer.from('RFB 003.008\n')]);
    assert.deepEqual([...(await reader.read(2))], [1, SECURITY_NONE]);
    await drip([SECURITY_NONE]);
    assert.equal((await reader.read(4)).readUInt32BE(0), 0);
    await drip([1]);
    const init = await reader.read(24);
    await reader.read(init.readUInt32BE(20));
    // KeyEvent 'Z' down, then a FramebufferUpdateRequest for 2×1 pixels at (0, 0).
    await drip([4, 1, 0, 0, 0, 0, 0, 0x5a, 3, 0, 0, 0, 0, 0, 0, 2, 0, 1]);
    const head = await reader.read(4 + 12);
    assert.deepEqual([...head], [0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 0]);
    assert.deepEqual([...(await reader.read(8))], [255, 255, 255, 0, 255, 255, 255, 0]);
  });

  it('closes clients that do not finish the handshake in time', async (t) => {
    const server = await demo(t, { handshakeTimeout: 20 });
    const { reader } = await raw(t, server);
    const [end] = await once(server, 'disconnect');
    assert.equal(end.reason, 'handshake timed out');
    assert.equal((await reader.rest()).toString(), 'RFB 003.008\n');
  });
});

describe('VNC Authentication', () => {
  for (const version of ['3.3', '3.7', '3.8'] as const) {
    it(`${version}: the right password is accepted`, async (t) => {
      const server = await demo(t, { version, password: 'secret' });
      const ready = once(server, 'ready');
      const client = await connect(t, server, { password: 'secret' });
      assert.deepEqual(client.securityTypes, [SECURITY_VNC_AUTH]);
      assert.equal((await ready)[0].security, 'vnc-auth');
      await client.update(false);
    });
  }

  it('3.8: a wrong password fails with the reason', async (t) => {
    const server = await demo(t, { password: 'secret' });
    await assert.rejects(connect(t, server, { password: 'wrong' }), {
      name: 'RfbError',
      reason: 'authentication failed',
    });
  });

  for (const version of ['3.3', '3.7'] as const) {
    it(`${version}: a wrong password gets a failed SecurityResult and a close, no reason`, async (t) => {
      const server = await demo(t, { version, password: 'secret' });
      const closed = once(server, 'disconnect');
      await assert.rejects(connect(t, server, { password: 'wrong' }), (err: unknown) => {
        assert.ok(err instanceof RfbError);
        assert.equal(err.message, 'security failed');
        assert.equal(err.reason, undefined);
        return true;
      });
      assert.equal((await closed)[0].reason, 'authentication failed');
    });
  }

  it('only the first 8 characters of the password count, as in every VNC server', async (t) => {
    const server = await demo(t, { password: 'password-and-more' });
    await connect(t, server, { password: 'password' });
  });
});

describe('screen', () => {
  it('shows the colour bars, the grey ramp, the label and the time', async (t) => {
    const server = await demo(t);
    const { layout } = server.scene;
    const client = await connect(t, server);
    await client.update(false);
    BAR_COLOURS.forEach((colour, i) => {
      const p = barCentre(layout, i);
      assert.equal(client.pixel(p.x, p.y), colour, `bar ${i}`);
    });
    assert.equal(client.pixel(layout.ramp.x + 2, layout.ramp.y + 2), 0x000000);
    assert.equal(client.pixel(layout.ramp.x + layout.ramp.w - 2, layout.ramp.y + 2), 0xffffff);
    const step = layout.ramp.w / RAMP_STEPS;
    assert.equal(client.pixel(Math.floor(layout.ramp.x + step * 8.5), layout.ramp.y + 2), 0x888888);
    // The label: white text on the background; both colours cover a good share of its box.
    const label = countColour(client, layout.label, LABEL_COLOUR);
    assert.ok(label > area(layout.label) * 0.15, `label has ${label} text pixels`);
    assert.ok(countColour(client, layout.label, BACKGROUND) > area(layout.label) * 0.3);
    assert.ok(countColour(client, layout.clock, TEXT_COLOUR) > 500);
    assert.equal(server.scene.fb.pixel(5, 5), client.pixel(5, 5));
  });

  it('echoes typed text, deletes with Backspace and clears with Escape', async (t) => {
    const server = await demo(t);
    const { text } = server.scene.layout;
    const client = await connect(t, server);
    await client.update(false);
    // The first character cell of the text area (scale 2, inside 8 px padding).
    const cell = { x: text.x + 8, y: text.y + 8, w: 12, h: 26 };
    assert.equal(countColour(client, cell, TEXT_COLOUR), 0);
    client.type('W');
    const update = await client.update(true);
    assertInside(update.rects, [text], 'typing');
    assert.ok(countColour(client, cell, TEXT_COLOUR) > 20, 'W is drawn');
    client.key(0xff08, true);
    client.key(0xff08, false);
    await client.update(true);
    assert.equal(countColour(client, cell, TEXT_COLOUR), 0, 'Backspace removed it');
    client.type('ab\ncd');
    await client.update(true);
    const secondLine = { ...cell, y: cell.y + 26 };
    assert.ok(countColour(client, secondLine, TEXT_COLOUR) > 20, 'Enter starts a new line');
    client.key(0xff1b, true);
    const cleared = await client.update(true);
    assert.deepEqual(cleared.rects, [{ x: 0, y: 0, w: 1024, h: 640, encoding: 0 }]);
    assert.equal(countColour(client, text, TEXT_COLOUR), 0);
  });

  it('draws a marker where a button is pressed, coloured by button', async (t) => {
    const server = await demo(t);
    const { layout } = server.scene;
    const client = await connect(t, server);
    await client.update(false);
    const black = barCentre(layout, 7);
    client.click(black.x, black.y, 1);
    client.click(black.x + 30, black.y, 3);
    client.pointer(black.x, black.y + 40, 0); // moving without a button draws nothing
    const update = await client.update(true);
    assert.equal(client.pixel(black.x, black.y), MARK_COLOURS[0]);
    assert.equal(client.pixel(black.x + 30, black.y), MARK_COLOURS[2]);
    assert.equal(client.pixel(black.x, black.y + 40), 0x000000);
    const all = update.rects.reduce((n, r) => n + r.w * r.h, 0);
    assert.ok(all <= 2 * 9 * 31, `only the marks were sent (${all} pixels)`);
  });

  it('shows ClientCutText in the clipboard line', async (t) => {
    const server = await demo(t);
    const { clipboard } = server.scene.layout;
    const client = await connect(t, server);
    await client.update(false);
    const before = countColour(client, clipboard, TEXT_COLOUR);
    client.cutText('copied from the viewer');
    const update = await client.update(true);
    assertInside(update.rects, [clipboard], 'clipboard');
    assert.ok(countColour(client, clipboard, TEXT_COLOUR) > before + 200);
  });
});

describe('framebuffer updates', () => {
  it('answer a full request for part of the screen with exactly that part', async (t) => {
    const server = await demo(t);
    const client = await connect(t, server);
    const update = await client.update(false, { x: 10, y: 20, w: 30, h: 40 });
    assert.deepEqual(update.rects, [{ x: 10, y: 20, w: 30, h: 40, encoding: 0 }]);
    const clipped = await client.update(false, { x: 1000, y: 600, w: 500, h: 500 });
    assert.deepEqual(clipped.rects, [{ x: 1000, y: 600, w: 24, h: 40, encoding: 0 }]);
    const outside = await client.update(false, { x: 2000, y: 0, w: 10, h: 10 });
    assert.deepEqual(outside.rects, []);
  });

  it('hold an incremental request until something changes, then send only that', async (t) => {
    const server = await demo(t);
    const { clipboard } = server.scene.layout;
    const client = await connect(t, server);
    await client.update(false);
    client.requestUpdate(true);
    client.cutText('change');
    const update = await client.nextUpdate();
    assert.ok(update.rects.length > 0);
    assertInside(update.rects, [clipboard], 'incremental');
  });

  it('send only dirty regions inside the requested rectangle and keep the rest for later', async (t) => {
    const server = await demo(t);
    const { bars, text } = server.scene.layout;
    const client = await connect(t, server);
    await client.update(false);
    client.requestUpdate(true, bars);
    client.type('q'); // changes the text area, outside the request
    const p = barCentre(server.scene.layout, 2);
    client.click(p.x, p.y); // changes the bars, inside it
    const first = await client.nextUpdate();
    assertInside(first.rects, [bars], 'bars request');
    assert.equal(client.pixel(p.x, p.y), MARK_COLOURS[0]);
    const second = await client.update(true);
    assertInside(second.rects, [text], 'what was left');
  });

  it('give the whole screen to a first request even when incremental', async (t) => {
    const server = await demo(t);
    const client = await connect(t, server);
    const update = await client.update(true);
    assert.deepEqual(update.rects, [{ x: 0, y: 0, w: 1024, h: 640, encoding: 0 }]);
  });

  const formats: [string, PixelFormat][] = [
    ['noVNC 32-bit RGBX', { ...DEFAULT_PIXEL_FORMAT, redShift: 0, greenShift: 8, blueShift: 16 }],
    ['32-bit big-endian', { ...DEFAULT_PIXEL_FORMAT, bigEndian: true }],
    ['16-bit 565', trueColour(16, false, [31, 63, 31], [11, 5, 0])],
    ['16-bit 555 big-endian', trueColour(16, true, [31, 31, 31], [10, 5, 0])],
    ['8-bit BGR233', trueColour(8, false, [7, 7, 3], [0, 3, 6])],
  ];
  for (const [name, pf] of formats) {
    it(`are encoded in the client's pixel format: ${name}`, async (t) => {
      const server = await demo(t);
      const client = await connect(t, server, { pixelFormat: pf });
      await client.update(false);
      BAR_COLOURS.forEach((colour, i) => {
        const p = barCentre(server.scene.layout, i);
        assert.equal(client.pixel(p.x, p.y).toString(16), colour.toString(16), `bar ${i}`);
      });
    });
  }

  it('stop for a colour-map pixel format, with the reason in the log and event', async (t) => {
    const server = await demo(t);
    const client = await connect(t, server);
    const closed = once(server, 'disconnect');
    client.setPixelFormat({ ...DEFAULT_PIXEL_FORMAT, bitsPerPixel: 8, depth: 8, trueColour: false });
    await client.closed;
    assert.match((await closed)[0].reason, /unsupported pixel format: colour-map pixel formats are not supported/);
  });

  it('follow the animation while a viewer is connected, and only then', async (t) => {
    const server = await startDemoServer({ port: 0, fps: 30 });
    t.after(() => server.close());
    const { track, clock } = server.scene.layout;
    assert.equal(server.animating, false);
    const client = await connect(t, server);
    assert.equal(server.animating, true);
    await client.update(false);
    for (let i = 0; i < 3; i++) {
      const update = await client.update(true);
      assertInside(update.rects, [track, clock], `animation frame ${i}`);
    }
    assert.ok(countColour(client, track, TRACK_COLOUR) > 0);
    const gone = once(server, 'disconnect');
    await client.close();
    await gone;
    assert.equal(server.animating, false);
  });
});

describe('bad clients', () => {
  it('an unknown message type closes that client; the server and others carry on', async (t) => {
    const server = await demo(t);
    const good = await connect(t, server);
    const bad = await connect(t, server);
    const closed = once(server, 'disconnect');
    bad.sendRaw(Buffer.from([99, 1, 2, 3]));
    await bad.closed;
    assert.equal((await closed)[0].reason, 'unknown message type 99');
    assert.equal((await good.update(false)).rects.length, 1);
    const another = await connect(t, server);
    await another.update(false);
    assert.equal(server.clients, 2);
  });

  it('a huge ClientCutText length closes the connection without waiting for the text', async (t) => {
    const server = await demo(t);
    const good = await connect(t, server);
    const bad = await connect(t, server);
    const closed = once(server, 'disconnect');
    bad.sendRaw(Buffer.from([6, 0, 0, 0, 0xff, 0xff, 0xff, 0xf0, 0x41]));
    await bad.closed;
    const [end] = await closed;
    assert.equal(end.reason, 'ClientCutText of 4294967280 bytes is over the 1048576-byte limit');
    await good.update(false);
  });

  it('a cut text within the limit may arrive in many pieces', async (t) => {
    const server = await demo(t, { maxCutText: 100_000 });
    const client = await connect(t, server);
    await client.update(false);
    const text = 'x'.repeat(100_000);
    const head = Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]);
    head.writeUInt32BE(text.length, 4);
    client.sendRaw(head);
    for (let i = 0; i < text.length; i += 7000) client.sendRaw(Buffer.from(text.slice(i, i + 7000)));
    const update = await client.update(true);
    assertInside(update.rects, [server.scene.layout.clipboard], 'long clipboard');
  });

  it('a message cut off by a close is dropped quietly', async (t) => {
    const server = await demo(t);
    const client = await connect(t, server);
    const closed = once(server, 'disconnect');
    client.sendRaw(Buffer.from([3, 0, 0]));
    client.socket.end();
    assert.equal((await closed)[0].reason, 'client closed');
    const other = await connect(t, server);
    await other.update(false);
  });

  it('the longest SetEncodings list is read and ignored', async (t) => {
    const server = await demo(t);
    const client = await connect(t, server);
    client.setEncodings(Array.from({ length: 65535 }, (_, i) => i - 1000));
    assert.equal((await client.update(false)).rects.length, 1);
  });
});

describe('test doubles', () => {
  it('silent: accepts and never sends a byte', async (t) => {
    const server = await demo(t, { greeting: 'silent' });
    const { socket, reader } = await raw(t, server);
    socket.end('RFB 003.008\n');
    const [end] = await once(server, 'disconnect');
    assert.equal(end.bytesWritten, 0);
    assert.equal(end.bytesRead, 12);
    assert.equal((await reader.rest()).length, 0);
  });

  it('garbage: sends a banner that is not RFB', async (t) => {
    const server = await demo(t, { greeting: 'garbage' });
    const { reader } = await raw(t, server);
    const bytes = await reader.read(GARBAGE_BANNER.length);
    assert.equal(bytes.toString(), GARBAGE_BANNER);
    assert.ok(!bytes.toString().startsWith('RFB '));
    assert.equal(server.clients, 1);
  });

  it('slow: the handshake trickles in byte by byte and still completes', async (t) => {
    const server = await demo(t, { greeting: 'slow', slowDelay: 15 });
    const client = await connect(t, server);
    assert.equal(client.name, 'ctrlx-novnc demo');
    assert.ok(client.reader.chunkSizes[0]! < 12, `greeting arrived in pieces: ${client.reader.chunkSizes.join(',')}`);
    const update = await client.update(false);
    assert.equal(update.rects.length, 1);
  });

  it('slow with a refusal: the reason trickles in, then the connection closes', async (t) => {
    const server = await demo(t, { greeting: 'slow', slowDelay: 1, version: '3.3', refuse: 'busy' });
    await assert.rejects(connect(t, server), { name: 'RfbError', reason: 'busy' });
  });
});

/** A true-colour format from bits per pixel, byte order, channel maxima and shifts (red, green, blue). */
function trueColour(bits: number, bigEndian: boolean, max: number[], shift: number[]): PixelFormat {
  const [redMax, greenMax, blueMax] = max as [number, number, number];
  const [redShift, greenShift, blueShift] = shift as [number, number, number];
  const depth = max.reduce((n, m) => n + Math.log2(m + 1), 0);
  return {
    ...{ bitsPerPixel: bits, depth, bigEndian, trueColour: true },
    ...{ redMax, greenMax, blueMax, redShift, greenShift, blueShift },
  };
}

function area(r: Rect): number {
  return r.w * r.h;
}
