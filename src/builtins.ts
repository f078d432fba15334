/**
 * @module
 * `node:http` and `node:util` for the app, without the memory an ES-module import of them costs.
 *
 * `import … from 'node:http'` builds the module's namespace from every export, and reading Node's
 * lazy `http.WebSocket`, `CloseEvent` and `MessageEvent` getters loads Node's bundled fetch and
 * WebSocket client (undici): with Node 24 about 9 MB more resident memory (6.6 MB private) for code
 * the app never runs. `node:util`'s namespace likewise loads 17 internal modules (1.8 MB) for
 * `parseArgs` alone. `process.getBuiltinModule` hands out the CommonJS exports and reads no getter.
 * Types still come from `import type` (erased at compile time). The snap test checks that the
 * app's modules load no undici under the bundled Node.
 */
export const http = process.getBuiltinModule('node:http') as typeof import('node:http');
export const { parseArgs } = process.getBuiltinModule('node:util') as typeof import('node:util');
