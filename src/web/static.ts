/**
 * @module
 * The pages' static files as `npm run build` leaves them in dist/static (scripts/bundle.mjs): one
 * bundled script per page and the style sheets, named by their content hash, each with a `.br`
 * and a `.gz` copy. Read once at start (a few hundred KB) and served from memory under
 * `/ctrlx-novnc/static/<hashed name>` with `Cache-Control: immutable` for a year: a changed file
 * has a new name, so a browser never asks again for a name it has. The encoding follows
 * `Accept-Encoding` (brotli, else gzip, else none); nothing is compressed per request.
 */
import fs from 'node:fs';
import path from 'node:path';
import type express from 'express';
import { packageRoot } from '../ctrlx/paths.js';

/** Where `npm run build` writes the static files. */
export function defaultStaticDir(): string {
  return path.join(packageRoot(), 'dist', 'static');
}

export const IMMUTABLE = 'public, max-age=31536000, immutable';

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** One file as served: its bytes as built and in each precompressed encoding that exists. */
interface StaticFile {
  type: string;
  identity: Buffer;
  br?: Buffer;
  gzip?: Buffer;
}

export interface StaticFiles {
  /** Page name (`viewer.js`) → hashed file name (`viewer-1a2b3c4d5e.js`), for the views. */
  names: Readonly<Record<string, string>>;
  /** `GET`/`HEAD <hashed name>`; anything else falls through (404 page). */
  handler: express.RequestHandler;
}

/** The encoding to send for an `Accept-Encoding` header, of those the file has. */
export function chooseEncoding(header: string | undefined, has: { br: boolean; gzip: boolean }): 'br' | 'gzip' | 'identity' {
  const q = new Map<string, number>();
  for (const part of (header ?? '').split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    if (!name) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/.exec(p);
      if (m) weight = Number(m[1]);
    }
    q.set(name, Number.isFinite(weight) ? weight : 0);
  }
  const accepts = (coding: string): boolean => (q.get(coding) ?? q.get('*') ?? 0) > 0;
  if (has.br && accepts('br')) return 'br';
  if (has.gzip && (accepts('gzip') || (q.get('x-gzip') ?? 0) > 0)) return 'gzip';
  return 'identity';
}

/**
 * Reads `dir/manifest.json` and every file it names. Throws, saying what to run, when the build
 * output is missing or incomplete: the pages cannot work without it.
 */
export function loadStaticFiles(dir = defaultStaticDir()): StaticFiles {
  const manifestFile = path.join(dir, 'manifest.json');
  let manifest: { files?: Record<string, string> };
  try {
    manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files?: Record<string, string> };
  } catch (err) {
    throw new Error(`cannot read ${manifestFile} (${(err as Error).message}): the pages' scripts are built by \`npm run build\``);
  }
  const names = manifest.files ?? {};
  const files = new Map<string, StaticFile>();
  for (const hashed of Object.values(names)) {
    if (path.basename(hashed) !== hashed) throw new Error(`${manifestFile}: "${hashed}" is not a plain file name`);
    const file = path.join(dir, hashed);
    const read = (f: string): Buffer | undefined => (fs.existsSync(f) ? fs.readFileSync(f) : undefined);
    const identity = read(file);
    if (!identity) throw new Error(`${file} is missing: run \`npm run build\` again`);
    const br = read(`${file}.br`);
    const gzip = read(`${file}.gz`);
    files.set(hashed, {
      type: TYPES[path.extname(hashed)] ?? 'application/octet-stream',
      identity,
      ...(br ? { br } : {}),
      ...(gzip ? { gzip } : {}),
    });
  }

  const handler: express.RequestHandler = (req, res, next) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return next();
    const file = files.get(req.path.slice(1));
    if (!file) return next();
    const encoding = chooseEncoding(req.headers['accept-encoding'], { br: Boolean(file.br), gzip: Boolean(file.gzip) });
    const body = encoding === 'identity' ? file.identity : file[encoding]!;
    res.status(200);
    res.setHeader('Content-Type', file.type);
    res.setHeader('Cache-Control', IMMUTABLE);
    res.setHeader('Vary', 'Accept-Encoding');
    if (encoding !== 'identity') res.setHeader('Content-Encoding', encoding);
    res.setHeader('Content-Length', body.length);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  return { names, handler };
}
