/**
 * "Resize remote" on a real TigerVNC (Xvnc): on a target with `allowResize` a controlling viewer
 * changes the screen's size through the relay (SetDesktopSize, after announcing ExtendedDesktopSize),
 * and the relay puts the original size back when that session ends. The size is read back from the
 * ServerInit of a fresh connection. Without `allowResize` the same request never reaches the server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createWebSocketStream } from 'ws';
import { readDesktopSize, requestDesktopSize } from '../../src/relay/desktop-size.js';
import { RELAY, config, startTestApp, target, waitFor, type TestApp } from '../helpers/app.js';
import { recordReliability } from '../helpers/reliability.js';
import { openClient, whenClosed } from '../helpers/ws-client.js';
import { startXvnc, type Xvnc } from '../helpers/xvnc.js';

describe('resize remote with TigerVNC (Xvnc)', () => {
  let x: Xvnc;
  let app: TestApp;

  before(async () => {
    x = await startXvnc({ geometry: '800x600' });
    app = await startTestApp({
      initial: config(
        { ...target('resizable', x.port, '127.0.0.1', 'Resizable'), control: 'immediate', allowResize: true },
        { ...target('fixed', x.port, '127.0.0.1', 'Fixed'), control: 'immediate' },
      ),
    });
  });
  after(async () => {
    await app?.close();
    await x?.stop();
  });

  const size = async (): Promise<string> => {
    const s = await readDesktopSize({ host: '127.0.0.1', port: x.port });
    return `${s.width}x${s.height}`;
  };

  it('a controlling session resizes the screen; the original size is back once it ends', async () => {
    assert.equal(await size(), '800x600');
    const ws = await openClient(`ws://127.0.0.1:${app.port}${RELAY}?target=resizable&viewer=viewer-resize`, ['binary']);
    const closed = whenClosed(ws);
    const stream = createWebSocketStream(ws); // at once: the greeting is on its way
    // The relay reads the size before any viewer may change it.
    await app.app.supervisor.resizesSettled();
    const before = await requestDesktopSize(stream, { width: 1024, height: 768 });
    assert.deepEqual(before, { width: 800, height: 600 });
    assert.equal(await size(), '1024x768', 'the real screen changed');
    ws.close(1000);
    await closed;
    await waitFor('the session to end', async () => app.app.status().relay.totals.sessionsOpen === 0);
    await app.app.supervisor.resizesSettled();
    assert.equal(await size(), '800x600', 'the original size is back');
    recordReliability({
      table: 'faults',
      name: 'remote resize restored (issue 13)',
      tried: 'a viewer on an allowResize target resized TigerVNC from 800x600 to 1024x768 through the relay, then closed',
      outcome: 'the screen was 1024x768 while the session lasted and 800x600 again after it ended (read from a fresh ServerInit)',
      bytesLost: 0,
    });
  });

  it('without allowResize the request never reaches the server: the size stays', async () => {
    const ws = await openClient(`ws://127.0.0.1:${app.port}${RELAY}?target=fixed&viewer=viewer-fixed`, ['binary']);
    const closed = whenClosed(ws);
    const stream = createWebSocketStream(ws);
    // The relay drops SetDesktopSize: no answer comes; the stream is given up after a while.
    await assert.rejects(
      Promise.race([requestDesktopSize(stream, { width: 640, height: 480 }), new Promise((_r, reject) => setTimeout(() => reject(new Error('no answer')), 1500))]),
      /no answer/,
    );
    assert.equal(await size(), '800x600');
    ws.close(1000);
    await closed;
  });
});
