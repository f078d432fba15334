/**
 * The viewer's messages (src/common/viewer-messages.ts, used by public/viewer.js) are chosen by
 * close code and failure kind, never by the reason text: every code of the failure table gives the
 * same message, retry and settings link whatever sentence comes with it (the sentence is at most
 * shown as it is); the preflight's kind picks the message of a refused upgrade the same way. And
 * the viewer itself holds no regular expression.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FAILURES, type FailureKind } from '../../src/common/failures.js';
import { closeMessage, lostAtText, refusalMessage, screenshotName, SETUP_KINDS, type ViewerMessage } from '../../src/common/viewer-messages.js';
import { prng } from '../helpers/stream.js';

const TARGET = { name: 'Press', address: '10.0.0.5:5900', idleMinutes: 30 };
const KINDS = Object.keys(FAILURES) as FailureKind[];

/** Sentences that have nothing in common with what the relay says today. */
function otherSentences(seed: number): string[] {
  const rand = prng(seed);
  const words = ['Verbindung', 'abgelehnt', 'not', 'a', 'VNC', 'server:', 'ECONNREFUSED', 'authentication failed:', '(server: x)', 'idle', '–', '✓'];
  const out = ['reworded: something else went wrong', 'ECONNRESET 1.2.3.4:5', 'authentication failed: x', 'not a VNC server'];
  for (let i = 0; i < 20; i++) {
    const n = 1 + (rand() % 8);
    out.push(Array.from({ length: n }, () => words[rand() % words.length]).join(' '));
  }
  return out;
}

/** A reason no message contains by itself, to see where a message shows its reason. */
const MARK = '\u0000reason\u0000';

/** `m` (made with the reason {@link MARK}) as it must read with `reason` instead. */
const withReason = (m: ViewerMessage, reason: string): ViewerMessage => ({ ...m, text: m.text.split(MARK).join(reason) });

describe('viewer messages', () => {
  it('every close code of the table gives the same message, retry and settings link whatever its reason says', () => {
    const sentences = otherSentences(0x11);
    for (const kind of KINDS) {
      const code = FAILURES[kind].code;
      const base = closeMessage({ code, reason: MARK, opened: true }, TARGET);
      assert.ok(base, `${kind}: a message`);
      for (const reason of sentences) {
        const m = closeMessage({ code, reason, opened: true }, TARGET);
        assert.ok(m, `${kind}: a message for "${reason}"`);
        assert.deepEqual(m, withReason(base, reason), `${kind} (${code}) with reason "${reason}"`);
        assert.equal(m.retry, FAILURES[kind].retry, `${kind}: retry as the table says`);
      }
    }
  });

  const cases: { kind: FailureKind; text: string; retry: boolean; settings: boolean }[] = [
    { kind: 'login-rejected', text: 'Press did not accept the VNC password stored in the settings. Enter the right password in the settings.', retry: false, settings: true },
    { kind: 'connection-refused', text: 'Cannot reach the VNC server 10.0.0.5:5900: connection refused (is the VNC server running?).', retry: true, settings: true },
    { kind: 'connect-timeout', text: 'Cannot reach the VNC server 10.0.0.5:5900: no answer (timed out).', retry: true, settings: true },
    { kind: 'host-not-found', text: 'Cannot reach the VNC server 10.0.0.5:5900: the host name cannot be resolved.', retry: true, settings: true },
    { kind: 'connection-reset', text: 'Cannot reach the VNC server 10.0.0.5:5900: the connection was reset.', retry: true, settings: false },
    { kind: 'idle', text: 'Disconnected from Press after 30 min without input. Connect again when you need it.', retry: false, settings: false },
    { kind: 'target-changed', text: 'The target was changed in the settings; reconnecting…', retry: true, settings: false },
    { kind: 'target-closed', text: 'Press closed the connection.', retry: true, settings: false },
    { kind: 'shutting-down', text: 'The app is restarting; reconnecting…', retry: true, settings: false },
    { kind: 'handshake-timeout', text: 'The VNC handshake with Press timed out.', retry: true, settings: true },
  ];
  for (const c of cases) {
    it(`${c.kind} (${FAILURES[c.kind].code}): "${c.text}"`, () => {
      for (const reason of ['', 'a sentence nobody wrote yet', 'authentication failed: old wording']) {
        const m = closeMessage({ code: FAILURES[c.kind].code, reason, opened: true }, TARGET)!;
        assert.deepEqual([m.text, m.retry, m.settings], [c.text, c.retry, c.settings], `reason "${reason}"`);
      }
    });
  }

  it('shows the reason as it is where it adds detail (not a VNC server, refused, unsupported), without parsing it', () => {
    const reason = 'Irgendein Satz: 42';
    assert.equal(
      closeMessage({ code: FAILURES['not-vnc'].code, reason, opened: true }, TARGET)!.text,
      'Press is reachable, but it is not a VNC server (Irgendein Satz: 42). Check the port in the settings.',
    );
    assert.equal(
      closeMessage({ code: FAILURES['server-refused'].code, reason, opened: true }, TARGET)!.text,
      'The VNC server of Press refused the connection (Irgendein Satz: 42).',
    );
  });

  it('a session ended by a manager names the manager and does not reconnect; an unknown message does not either', () => {
    const ended = closeMessage({ code: 4031, reason: 'Disconnected by boss', opened: true }, TARGET)!;
    assert.deepEqual(ended, { text: 'Disconnected by boss (Press). Connect again when you need it.', retry: false, settings: false });
    const unknown = closeMessage({ code: 4032, reason: 'unknown client message type 99', opened: true }, TARGET)!;
    assert.equal(unknown.retry, false);
    assert.match(unknown.text, /message it cannot check \(unknown client message type 99\)/);
  });

  it('a failure of the relay’s own login wins over the security failure noVNC reports for it', () => {
    const securityFailure = { reason: 'anything at all' };
    const m = closeMessage({ code: FAILURES['login-rejected'].code, reason: 'x', opened: true, securityFailure }, TARGET)!;
    assert.match(m.text, /did not accept the VNC password stored in the settings/);
    // The server's own authentication (passed through), then the server hangs up: 1000.
    const own = closeMessage({ code: 1000, reason: 'target closed', opened: true, securityFailure }, TARGET)!;
    assert.deepEqual([own.text, own.retry], ['Authentication with Press failed: anything at all. Check the VNC password.', false]);
    // Only the server's own rejection of a password typed in the browser asks for it again.
    assert.equal(own.askPassword, true);
    assert.equal(m.askPassword, undefined);
  });

  it('a connection lost without a code of the table says so; one that never opened asks the preflight (null)', () => {
    assert.deepEqual(closeMessage({ code: 1006, reason: '', opened: true }, TARGET), { text: 'The connection to Press was lost.', retry: true, settings: false });
    assert.equal(closeMessage({ code: 1006, reason: '', opened: false }, TARGET), null);
  });

  it('a refused upgrade is explained by the preflight’s kind, whatever its detail says', () => {
    for (const detail of ['No VNC target is configured yet: add one on the settings page.', 'Es ist noch kein Ziel eingerichtet.', '']) {
      assert.deepEqual(refusalMessage({ status: 503, kind: 'no-target', detail }, TARGET), {
        text: 'No VNC target is configured yet. Add one in the settings.',
        retry: true,
        settings: true,
        quiet: true,
      });
    }
    // Held back after rejected passwords: one countdown only (the viewer's, to Retry-After), so
    // the sentence has no number of its own; the settings are offered.
    const held = refusalMessage({ status: 503, kind: 'login-held-back', detail: 'Wait 30 s.' }, TARGET);
    assert.deepEqual(
      [held.text, held.retry, held.settings],
      ['The VNC server of Press rejected the stored password; to avoid its lockout the next attempt waits. Check the VNC password in the settings.', true, true],
    );
    const unknown = refusalMessage({ status: 404, kind: 'unknown-target', detail: 'Unknown VNC target "x".' }, TARGET);
    assert.deepEqual([unknown.retry, unknown.settings], [true, true]);
    const busy = refusalMessage({ status: 503, kind: 'too-many-sessions', detail: 'Full.' }, TARGET);
    assert.deepEqual([busy.text, busy.retry, busy.settings], ['Full.', true, false]);
    assert.deepEqual(refusalMessage({ status: 426 }, TARGET), { text: 'Could not open the connection to Press.', retry: true, settings: false });
    assert.equal(refusalMessage({ status: 403, detail: 'Forbidden origin' }, TARGET).retry, false);
    // A kind this viewer does not know: the detail, and a retry.
    assert.deepEqual(refusalMessage({ status: 503, kind: 'from-a-newer-app', detail: 'Later.' }, TARGET), { text: 'Later.', retry: true, settings: false });
  });

  it('in German: every kind has a German sentence with the same retry, settings and setup flags as in English', () => {
    for (const kind of KINDS) {
      const code = FAILURES[kind].code;
      const english = closeMessage({ code, reason: '', opened: true }, TARGET, 'en')!;
      const german = closeMessage({ code, reason: '', opened: true }, TARGET, 'de')!;
      assert.deepEqual({ ...german, text: '' }, { ...english, text: '' }, kind);
      assert.notEqual(german.text, english.text, `${kind}: translated`);
    }
    assert.equal(
      closeMessage({ code: FAILURES['login-rejected'].code, reason: '', opened: true }, TARGET, 'de')!.text,
      'Press hat das in den Einstellungen gespeicherte VNC-Passwort nicht angenommen. Tragen Sie in den Einstellungen das richtige Passwort ein.',
    );
    assert.equal(
      closeMessage({ code: FAILURES['connection-refused'].code, reason: '', opened: true }, TARGET, 'de')!.text,
      'Der VNC-Server 10.0.0.5:5900 ist nicht erreichbar: Verbindung abgelehnt (läuft der VNC-Server?).',
    );
    assert.equal(refusalMessage({ status: 426 }, TARGET, 'de').text, 'Die Verbindung zu Press konnte nicht geöffnet werden.');
    assert.equal(lostAtText(new Date(2026, 0, 2, 8, 10), 'de'), 'Verbindung verloren um 08:10');
    assert.equal(lostAtText(new Date(2026, 0, 2, 8, 10)), 'Connection lost at 08:10');
  });

  it('an ended login (4030) says so and reconnects at once, whether it expired or was revoked', () => {
    for (const reason of ['login expired', 'login revoked', '']) {
      const m = closeMessage({ code: 4030, reason, opened: true }, TARGET)!;
      assert.match(m.text, /^Your login expired/);
      assert.deepEqual({ retry: m.retry, soon: m.soon, settings: m.settings }, { retry: true, soon: true, settings: false });
    }
  });

  it('a lockout is said as such: by its code (4009), and when the browser met the server\'s "Too many security failures" itself', () => {
    const byCode = closeMessage({ code: 4009, reason: 'VNC server 10.0.0.5:5900 locks this controller out for now: Too many security failures', opened: true }, TARGET);
    assert.match(byCode!.text, /^The VNC server of Press refuses this controller for now: too many security failures\./);
    assert.deepEqual([byCode!.retry, byCode!.settings], [false, false]);
    const bySecurity = closeMessage({ code: 1000, reason: '', opened: true, securityFailure: { reason: 'Too many security failures' } }, TARGET);
    assert.deepEqual(bySecurity, byCode);
    // Any other security failure is still a failed login.
    const wrong = closeMessage({ code: 1000, reason: '', opened: true, securityFailure: { reason: 'Authentication failure' } }, TARGET);
    assert.match(wrong!.text, /^Authentication with Press failed: Authentication failure\. Check the VNC password\.$/);
  });

  it('setup errors (not a VNC server, password rejected, security type not supported) stop retrying and say what to fix', () => {
    assert.deepEqual([...SETUP_KINDS].sort(), ['login-rejected', 'not-vnc', 'security-unsupported']);
    const fixes: Record<string, RegExp> = {
      'not-vnc': /Check the port in the settings\.$/,
      'login-rejected': /Enter the right password in the settings\.$/,
      'security-unsupported': /Set the VNC server to "VNC password" or no authentication, or store its password in the settings\.$/,
    };
    for (const kind of SETUP_KINDS) {
      const m = closeMessage({ code: FAILURES[kind].code, reason: 'x', opened: true }, TARGET)!;
      assert.deepEqual([m.retry, m.setup], [false, true], kind);
      assert.match(m.text, fixes[kind]!, kind);
    }
    // Other failures are no setup errors.
    assert.equal(closeMessage({ code: FAILURES['connection-refused'].code, reason: '', opened: true }, TARGET)!.setup, undefined);
  });

  it('the kept picture says when the connection was lost; screenshots are named after target and time', () => {
    const at = new Date(2026, 0, 5, 8, 7, 9);
    assert.equal(lostAtText(at), 'Connection lost at 08:07');
    assert.equal(screenshotName('press-1', at), 'press-1-20260105-080709.png');
    assert.equal(screenshotName('a b/c', at), 'a_b_c-20260105-080709.png');
    assert.equal(screenshotName('', at), 'screen-20260105-080709.png');
  });

  it('public/viewer.js holds no regular expression: it picks messages by code only', () => {
    const source = readFileSync(new URL('../../../public/viewer.js', import.meta.url), 'utf8');
    assert.doesNotMatch(source, /new RegExp|\.test\(|\.exec\(|\.match\(|\.replace\(\//);
    assert.match(source, /from '\.\.\/common\/viewer-messages\.js'/);
  });
});
