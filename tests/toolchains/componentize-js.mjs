#!/usr/bin/env node
// The `componentize-js` launcher of Cairn's JavaScript toolchain
// (target/toolchains/bin/componentize-js runs this; tests/toolchains/js.sh
// installs the package it drives).
//
//   componentize-js --wit WITDIR --world-name WORLD --out OUT.wasm ENTRY.js
//   componentize-js --version
//
// It calls ComponentizeJS's `componentize` API directly instead of its CLI,
// and always disables the `http` and `fetch-event` features: with them the
// engine imports wasi:http, which a Cairn task's world does not offer. The
// stdio, random and clocks features stay: they need only wasi:cli, wasi:random
// and wasi:clocks, which the task world includes.

import { writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Where js.sh installed the package; the bin/ launcher sets this too.
const home = process.env.CAIRN_JS_TOOLCHAIN ?? join(repo, 'target/toolchains/js');
const pkg = join(home, 'node_modules/@bytecodealliance/componentize-js');

function fail(message) {
  console.error(`componentize-js: ${message}`);
  process.exit(1);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      wit: { type: 'string' },
      'world-name': { type: 'string' },
      out: { type: 'string', short: 'o' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
} catch (e) {
  fail(`${e.message}\nusage: componentize-js --wit WITDIR --world-name WORLD --out OUT.wasm ENTRY.js`);
}
const { values: opts, positionals } = parsed;

if (opts.help) {
  console.log('usage: componentize-js --wit WITDIR --world-name WORLD --out OUT.wasm ENTRY.js\n       componentize-js --version');
  process.exit(0);
}

// Imported lazily, by path: the package lives in the toolchain directory,
// not next to this script, and its `exports` map offers only `import`.
let api;
try {
  api = await import(pathToFileURL(join(pkg, 'src/componentize.js')).href);
} catch (e) {
  fail(`cannot load ComponentizeJS from ${pkg} (${e.message}); run tests/toolchains/install js`);
}

if (opts.version) {
  console.log(`componentize-js ${api.version}`);
  process.exit(0);
}

if (positionals.length !== 1 || !opts.wit || !opts.out) {
  fail('usage: componentize-js --wit WITDIR --world-name WORLD --out OUT.wasm ENTRY.js');
}

try {
  const { component } = await api.componentize({
    sourcePath: resolve(positionals[0]),
    witPath: resolve(opts.wit),
    worldName: opts['world-name'],
    disableFeatures: ['http', 'fetch-event'],
  });
  await writeFile(opts.out, component);
} catch (e) {
  fail(e.message ?? String(e));
}
