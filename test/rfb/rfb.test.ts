import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { desEncryptBlock } from '../../src/rfb/des.js';
import { checkVncAuthResponse, vncAuthKey, vncAuthResponse } from '../../src/rfb/vnc-auth.js';
import { formatVersion, knownVersion, parseVersion } from '../../src/rfb/protocol.js';
import {
  createRectEncoder,
  decodeColour,
  DEFAULT_PIXEL_FORMAT,
  encodeColour,
  pixelFormatProblem,
  type PixelFormat,
} from '../../src/rfb/pixel-format.js';
import { DirtyRegion, subtract } from '../../src/demo/rect.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');
const CHALLENGE = Buffer.from(Array.from({ length: 16 }, (_, i) => i));

describe('desEncryptBlock', () => {
  // FIPS 46 worked example and known-answer tests.
  const vectors: [string, string, string][] = [
    ['133457799bbcdff1', '0123456789abcdef', '85e813540f0ab405'],
    ['0e329232ea6d0d73', '8787878787878787', '0000000000000000'],
    ['0101010101010101', '8000000000000000', '95f8a5e5dd31d900'],
    ['8001010101010101', '0000000000000000', '95a8d72813daa94d'],
  ];
  for (const [key, plain, cipher] of vectors) {
    it(`key ${key}, block ${plain} → ${cipher}`, () => {
      assert.equal(desEncryptBlock(hex(key), hex(plain)).toString('hex'), cipher);
    });
  }

  it('matches OpenSSL des-ecb (its legacy provider, in a child node) on 200 random keys and blocks', () => {
    const pairs = Array.from({ length: 200 }, () => [crypto.randomBytes(8).toString('hex'), crypto.randomBytes(8).toString('hex')]);
    // DES is in OpenSSL 3's legacy provider, which node loads only with this flag.
    const script = `
      const crypto = require('node:crypto');
      const pairs = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
      console.log(JSON.stringify(pairs.map(([k, b]) => {
        const c = crypto.createCipheriv('des-ecb', Buffer.from(k, 'hex'), null).setAutoPadding(false);
        return Buffer.concat([c.update(Buffer.from(b, 'hex')), c.final()]).toString('hex');
      })));`;
    const out = execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script], { input: JSON.stringify(pairs) });
    const expected = JSON.parse(String(out)) as string[];
    assert.equal(expected.length, pairs.length);
    pairs.forEach(([key, block], i) => {
      assert.equal(desEncryptBlock(hex(key!), hex(block!)).toString('hex'), expected[i], `key ${key} block ${block}`);
    });
  });

  it('rejects keys and blocks that are not 8 bytes', () => {
    assert.throws(() => desEncryptBlock(Buffer.alloc(7), Buffer.alloc(8)), RangeError);
    assert.throws(() => desEncryptBlock(Buffer.alloc(8), Buffer.alloc(9)), RangeError);
  });
});

describe('VNC Authentication', () => {
  // Expected values computed independently with `openssl enc -des-ecb` and bit-reversed keys.
  const vectors: [string, string, string][] = [
    ['password', '0e86ceceeef64e26', 'b866924125c8eebb9debc1db61c538e2'],
    ['secret', 'cea6c64ea62e0000', 'ee22539f33a5983ec12f9c2edbc995dd'],
    ['ctrlX-CORE-long', 'c62e4e361ab4c2f2', 'd6baedce23b8ddfb0f2e7c7752a59c78'],
  ];
  for (const [password, key, response] of vectors) {
    it(`password "${password}": key ${key}, response to 00..0f`, () => {
      assert.equal(vncAuthKey(password).toString('hex'), key);
      assert.equal(vncAuthResponse(password, CHALLENGE).toString('hex'), response);
      assert.equal(checkVncAuthResponse(password, CHALLENGE, hex(response)), true);
    });
  }

  it('only the first 8 characters count', () => {
    assert.deepEqual(vncAuthResponse('ctrlX-CO', CHALLENGE), vncAuthResponse('ctrlX-CORE-long', CHALLENGE));
  });

  it('rejects a wrong or short response', () => {
    assert.equal(checkVncAuthResponse('secret', CHALLENGE, vncAuthResponse('Secret', CHALLENGE)), false);
    assert.equal(checkVncAuthResponse('secret', CHALLENGE, Buffer.alloc(15)), false);
    assert.throws(() => vncAuthResponse('secret', Buffer.alloc(8)), RangeError);
  });
});

describe('ProtocolVersion', () => {
  it('formats the three published versions', () => {
    assert.equal(formatVersion('3.3').toString(), 'RFB 003.003\n');
    assert.equal(formatVersion('3.7').toString(), 'RFB 003.007\n');
    assert.equal(formatVersion('3.8').toString(), 'RFB 003.008\n');
  });

  const table: [string, string | undefined][] = [
    ['RFB 003.003\n', '3.3'],
    ['RFB 003.005\n', '3.3'],
    ['RFB 003.007\n', '3.7'],
    ['RFB 003.008\n', '3.8'],
    ['RFB 003.889\n', '3.8'],
    ['RFB 004.001\n', '3.8'],
    ['RFB 003.002\n', undefined],
    ['RFB 006.000\n', undefined],
    ['RFB 3.8    \n', undefined],
    ['SSH-2.0-Open', undefined],
  ];
  for (const [text, version] of table) {
    it(`${JSON.stringify(text)} → ${version ?? 'not RFB'}`, () => {
      const numbers = parseVersion(Buffer.from(text, 'latin1'));
      assert.equal(numbers && knownVersion(numbers), version);
    });
  }
});

describe('pixel formats', () => {
  const rgb565: PixelFormat = {
    ...DEFAULT_PIXEL_FORMAT,
    bitsPerPixel: 16,
    depth: 16,
    redMax: 31,
    greenMax: 63,
    blueMax: 31,
    redShift: 11,
    greenShift: 5,
    blueShift: 0,
  };

  it('accepts true colour at 8, 16 and 32 bits per pixel', () => {
    assert.equal(pixelFormatProblem(DEFAULT_PIXEL_FORMAT), undefined);
    assert.equal(pixelFormatProblem(rgb565), undefined);
  });

  it('explains what it cannot serve', () => {
    assert.match(pixelFormatProblem({ ...DEFAULT_PIXEL_FORMAT, trueColour: false })!, /colour-map/);
    assert.match(pixelFormatProblem({ ...DEFAULT_PIXEL_FORMAT, bitsPerPixel: 24 })!, /bits-per-pixel 24/);
    assert.match(pixelFormatProblem({ ...rgb565, redShift: 12 })!, /red channel .* does not fit in 16 bits/);
    assert.match(pixelFormatProblem({ ...DEFAULT_PIXEL_FORMAT, greenMax: 0 })!, /green-max must be at least 1/);
  });

  it('round-trips colours through 565', () => {
    assert.equal(encodeColour(rgb565, 0xff0000), 0xf800);
    assert.equal(decodeColour(rgb565, 0x07e0), 0x00ff00);
    assert.equal(decodeColour(rgb565, encodeColour(rgb565, 0x808080)), 0x848284);
  });

  it('encodes a rectangle in the client format, big-endian too', () => {
    const src = Buffer.from([0x11, 0x22, 0x33, 0, 0x44, 0x55, 0x66, 0]); // two pixels, B G R X
    const out = Buffer.alloc(8);
    createRectEncoder({ ...DEFAULT_PIXEL_FORMAT, bigEndian: true })(src, 2, 0, 0, 2, 1, out, 0);
    assert.equal(out.toString('hex'), '0033221100665544');
    createRectEncoder({ ...DEFAULT_PIXEL_FORMAT, redShift: 0, blueShift: 16 })(src, 2, 0, 0, 2, 1, out, 0);
    assert.equal(out.toString('hex'), '3322110066554400');
    const end = createRectEncoder(rgb565)(src, 2, 1, 0, 1, 1, out, 0);
    assert.equal(end, 2);
    assert.equal(out.readUInt16LE(0), encodeColour(rgb565, 0x665544));
  });
});

describe('DirtyRegion', () => {
  it('subtract leaves the frame around a hole', () => {
    const parts = subtract({ x: 0, y: 0, w: 10, h: 10 }, { x: 3, y: 3, w: 4, h: 4 });
    assert.equal(parts.reduce((n, r) => n + r.w * r.h, 0), 100 - 16);
    assert.deepEqual(subtract({ x: 0, y: 0, w: 4, h: 4 }, { x: 10, y: 10, w: 2, h: 2 }), [{ x: 0, y: 0, w: 4, h: 4 }]);
  });

  it('merges neighbours and takes only what is inside the clip', () => {
    const d = new DirtyRegion();
    d.add({ x: 0, y: 0, w: 10, h: 10 });
    d.add({ x: 5, y: 0, w: 10, h: 10 });
    d.add({ x: 500, y: 500, w: 5, h: 5 });
    assert.deepEqual(d.take({ x: 0, y: 0, w: 100, h: 100 }), [{ x: 0, y: 0, w: 15, h: 10 }]);
    assert.deepEqual(d.take({ x: 0, y: 0, w: 100, h: 100 }), []);
    assert.deepEqual(d.take({ x: 0, y: 0, w: 502, h: 1000 }), [{ x: 500, y: 500, w: 2, h: 5 }]);
    assert.deepEqual(d.take({ x: 0, y: 0, w: 1000, h: 1000 }), [{ x: 502, y: 500, w: 3, h: 5 }]);
    assert.equal(d.empty, true);
  });

  it('collapses into one bounding box when it grows too fragmented', () => {
    const d = new DirtyRegion();
    for (let i = 0; i < 40; i++) d.add({ x: i * 100, y: (i % 2) * 100, w: 2, h: 2 });
    const all = d.take({ x: 0, y: 0, w: 10_000, h: 10_000 });
    assert.ok(all.length <= 24, `${all.length} rectangles`);
  });
});
