/**
 * The viewer pages' event streams (src/web/events.ts) on a real HTTP server: the headers that keep
 * proxies from buffering or caching, each event written at once, a comment heartbeat, events only
 * to the same viewer id and user, and every stream ended when the app stops.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { describe, it } from 'node:test';
import express from 'express';
import { ViewerEventHub } from '../../src/web/events.js';
import { waitFor } from '../helpers/app.js';

describe('ViewerEventHub', () => {
  it('streams with no-store and no proxy buffering, heartbeats, sends only to the same viewer and user, ends on close', async (t) => {
    const hub = new ViewerEventHub(50);
    const app = express();
    app.get('/events', (req, res) => {
      hub.open({ viewerId: String(req.query.viewer), user: String(req.query.user) }, res);
    });
    const server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      hub.close();
      server.close();
      server.closeAllConnections();
    });
    const port = (server.address() as net.AddressInfo).port;
    const open = (viewer: string, user: string) =>
      new Promise<{ res: http.IncomingMessage; text: () => string; ended: Promise<void> }>((resolve) => {
        http.get({ host: '127.0.0.1', port, path: `/events?viewer=${viewer}&user=${user}`, agent: false }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (text += c));
          const ended = new Promise<void>((r) => res.on('end', () => r()));
          resolve({ res, text: () => text, ended });
        });
      });
    const mine = await open('viewer-one', 'anna');
    const otherUser = await open('viewer-one', 'mallory');
    const otherViewer = await open('viewer-two', 'anna');
    assert.equal(mine.res.statusCode, 200);
    assert.match(String(mine.res.headers['content-type']), /^text\/event-stream/);
    assert.equal(mine.res.headers['cache-control'], 'no-store');
    assert.equal(mine.res.headers['x-accel-buffering'], 'no');
    assert.equal(hub.size, 3);
    hub.send({ viewerId: 'viewer-one', user: 'anna' }, 'control', { mode: 'watch', by: 'ben' });
    await waitFor('the event', () => mine.text().includes('event: control\ndata: {"mode":"watch","by":"ben"}\n\n'));
    await waitFor('a heartbeat', () => mine.text().includes(': keep-alive\n\n'));
    assert.ok(!otherUser.text().includes('event:'), 'another user with the same viewer id hears nothing');
    assert.ok(!otherViewer.text().includes('event:'), 'another viewer of the same user hears nothing');
    hub.close();
    await Promise.all([mine.ended, otherUser.ended, otherViewer.ended]);
    assert.equal(hub.size, 0);
  });
});
