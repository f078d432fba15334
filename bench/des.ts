/**
 * `npm run bench:des`: the cost of one VNC Authentication response (two DES blocks under the
 * password's key), the relay's own DES (src/rfb/des.ts) against OpenSSL's `des-ecb` from its
 * legacy provider, which Node loads only when started with `--openssl-legacy-provider` (so it is
 * measured in a child process started that way). The two answers are compared as well.
 *
 * The relay computes one response per session that has a stored password: microseconds either
 * way; the own DES is chosen so that the app needs no OpenSSL flag (and runs where the legacy
 * provider is not shipped at all).
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { vncAuthResponse } from '../src/rfb/vnc-auth.js';

const N = 20_000;
const password = 'secret12';
const challenges = Array.from({ length: 256 }, () => randomBytes(16));

function ours(): { usPerResponse: number; sample: string } {
  for (let i = 0; i < 2000; i++) vncAuthResponse(password, challenges[i % challenges.length]!);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) vncAuthResponse(password, challenges[i % challenges.length]!);
  const ns = Number(process.hrtime.bigint() - t0);
  return { usPerResponse: ns / N / 1000, sample: vncAuthResponse(password, challenges[0]!).toString('hex') };
}

/** The same loop with OpenSSL's des-ecb, in `node --openssl-legacy-provider`. */
function openssl(): { usPerResponse: number; sample: string } | { error: string } {
  const script = `
    const crypto = require('node:crypto');
    const { password, challenges, N } = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
    const rev = (b) => { let o = 0; for (let i = 0; i < 8; i++) o |= ((b >> i) & 1) << (7 - i); return o; };
    const key = Buffer.alloc(8);
    Buffer.from(password, 'latin1').subarray(0, 8).forEach((b, i) => (key[i] = rev(b)));
    const cs = challenges.map((h) => Buffer.from(h, 'hex'));
    const respond = (c) => {
      const d = crypto.createCipheriv('des-ecb', key, null).setAutoPadding(false);
      return Buffer.concat([d.update(c), d.final()]);
    };
    for (let i = 0; i < 2000; i++) respond(cs[i % cs.length]);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) respond(cs[i % cs.length]);
    const ns = Number(process.hrtime.bigint() - t0);
    console.log(JSON.stringify({ usPerResponse: ns / N / 1000, sample: respond(cs[0]).toString('hex') }));`;
  try {
    const out = execFileSync(process.execPath, ['--openssl-legacy-provider', '-e', script], {
      input: JSON.stringify({ password, challenges: challenges.map((c) => c.toString('hex')), N }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return JSON.parse(String(out)) as { usPerResponse: number; sample: string };
  } catch (err) {
    return { error: String((err as { stderr?: Buffer }).stderr ?? err).trim().split('\n')[0] ?? 'failed' };
  }
}

const a = ours();
const b = openssl();
console.log(`VNC Authentication response (2 DES blocks), ${N} responses, Node ${process.version}`);
console.log(`| implementation | µs per response |`);
console.log(`| --- | ---: |`);
console.log(`| ours (src/rfb/des.ts) | ${a.usPerResponse.toFixed(1)} |`);
if ('error' in b) {
  console.log(`| OpenSSL des-ecb (legacy provider) | not available: ${b.error} |`);
} else {
  console.log(`| OpenSSL des-ecb (legacy provider) | ${b.usPerResponse.toFixed(1)} |`);
  console.log(`\nours / OpenSSL: ${(a.usPerResponse / b.usPerResponse).toFixed(1)}×; same answer: ${a.sample === b.sample ? 'yes' : 'NO'}`);
  if (a.sample !== b.sample) process.exitCode = 1;
}
