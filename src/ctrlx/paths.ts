/**
 * @module
 * Where things live: on the device (snap environment) and off it (a data folder standing in for
 * the snap's folders), plus the package's own files (views, public, noVNC).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Snap name, manifest id, URL prefix and socket folder name. */
export const APP_NAME = 'ctrlx-novnc';
/** The reverse proxy forwards the full path: every route lives under this prefix. */
export const PREFIX = `/${APP_NAME}`;
/**
 * The web server's unix socket in `$SNAP_DATA/package-run/<snap>/`: `<snap>.web.sock`, the ctrlX
 * convention (a socket the proxy maps must have `.web` in its name).
 */
export const SOCKET_FILE = `${APP_NAME}.web.sock`;

export interface RuntimePaths {
  /** True when running as a snap (`$SNAP` set). */
  onDevice: boolean;
  /** The unix socket to listen on (device), or undefined (TCP off the device). */
  socket: string | undefined;
  /** The solutions root: `$SNAP_COMMON/solutions` or `<data>/solutions`. */
  solutionsDir: string;
  /** Private app data, never archived by ctrlX: `$SNAP_COMMON/app` or `<data>/app`. */
  appDataDir: string;
}

/**
 * Derives the paths from the environment. On the device `SNAP_DATA` and `SNAP_COMMON` must be set;
 * off it `dataDir` (flag `--data`, default `./data`) stands in for both.
 */
export function runtimePaths(env: NodeJS.ProcessEnv, dataDir = './data'): RuntimePaths {
  if (env.SNAP) {
    const snapData = env.SNAP_DATA;
    const snapCommon = env.SNAP_COMMON;
    if (!snapData || !snapCommon) throw new Error('SNAP is set but SNAP_DATA or SNAP_COMMON is not');
    return {
      onDevice: true,
      socket: path.join(snapData, 'package-run', APP_NAME, SOCKET_FILE),
      solutionsDir: path.join(snapCommon, 'solutions'),
      appDataDir: path.join(snapCommon, 'app'),
    };
  }
  const root = path.resolve(dataDir);
  return {
    onDevice: false,
    socket: undefined,
    solutionsDir: path.join(root, 'solutions'),
    appDataDir: path.join(root, 'app'),
  };
}

let root: string | undefined;

/** The package's root folder (holds package.json, views/, public/), found from this file. */
export function packageRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json')) && fs.existsSync(path.join(dir, 'views'))) {
      root = dir;
      return root;
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the package root (package.json and views/)');
    dir = up;
  }
}

/** The package's version from package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}
