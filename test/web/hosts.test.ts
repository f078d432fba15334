/**
 * The `Host` allow-list's rules without sockets (src/web/hosts.ts): which header forms parse, which
 * names pass, and how `--allowed-hosts` is read. The listeners themselves: host-allow.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostAllowList, hostOfHeader, parseAllowedHosts } from '../../src/web/hosts.js';

describe('Host header parsing', () => {
  it('takes the host part of every form a client sends', () => {
    const cases: [string, string | undefined][] = [
      ['localhost', 'localhost'],
      ['LocalHost:6080', 'localhost'],
      ['example.com.', 'example.com'],
      ['127.0.0.1:6080', '127.0.0.1'],
      ['[::1]:6080', '::1'],
      ['[FE80::1]', 'fe80::1'],
      ['::1', undefined], // IPv6 needs brackets in Host
      ['[not-v6]:80', undefined],
      ['a b', undefined],
      ['evil_host', undefined],
      ['host:port', undefined],
      ['', undefined],
    ];
    for (const [header, host] of cases) assert.equal(hostOfHeader(header), host, header);
  });
});

describe('HostAllowList', () => {
  const list = new HostAllowList('127.0.0.1', parseAllowedHosts('hmi.plant.example,*.lab.example'));

  it('allows loopback names, any IP literal, the listen host, listed names and no Host at all', () => {
    for (const h of [undefined, 'localhost', 'localhost:1', 'x.localhost', 'a.b.localhost:9', '127.0.0.1', '10.0.0.1:80', '[::1]:80', '[2001:db8::1]', 'hmi.plant.example', 'q.lab.example']) {
      assert.equal(list.allows(h), true, String(h));
    }
    assert.equal(new HostAllowList('box.example').allows('BOX.example:6080'), true);
  });

  it('refuses every other name, look-alikes included', () => {
    for (const h of ['evil.example', 'localhost.evil.example', 'evillocalhost', '127.0.0.1.nip.io', 'lab.example', 'xlab.example', 'plant.example', 'hmi.plant.example.evil', '', 'a b']) {
      assert.equal(list.allows(h), false, h);
    }
  });

  it('reads --allowed-hosts and names a bad entry', () => {
    assert.deepEqual(parseAllowedHosts(' A.example , *.B.example ,10.0.0.1'), ['a.example', '*.b.example', '10.0.0.1']);
    for (const bad of ['', 'a,', 'a b', '*.', '*', '*.10.0.0.1', 'http://a.example', 'a.example:80']) {
      assert.throws(() => parseAllowedHosts(bad), /^AppError: --allowed-hosts: /, bad);
    }
  });
});
