// The polyglot `profile` task in JavaScript.
//
// World: example:polyglot/profile in ../../wit/profile.wit (cairn assembles
// it with cairn:task and WASI as dependencies). Build with `cairn build .` or
// by hand with the launcher that tests/toolchains/install js provides:
//
//   componentize-js --wit WIT --world-name profile --out profile.wasm profile.js
//
// (WIT: a directory with the world and a deps/ folder; see
// sdk/guides/javascript.md.)
//
// ComponentizeJS maps the world to JavaScript: the export is this module's
// `profile` function, imported interfaces are modules named by their WIT
// package and interface, records are objects with lowerCamelCase fields,
// enums are strings, `option` is a value or `undefined`, u64 is a BigInt.

import { Writer } from 'cairn:task/artifacts@0.1.0';
import { label, log, metric } from 'cairn:task/context@0.1.0';

// An error the export returns as `err(message)`: the bindings send an
// exception's own `payload` property as the error value (a thrown plain
// `Error` would trap the component instead).
class TaskError extends Error {
  constructor(message) {
    super(message);
    this.payload = message;
  }
}

const utf8 = new TextEncoder();
// Words are ASCII, so decoding one as UTF-8 is exact.
const ascii = new TextDecoder();

// Writes `bytes` (a Uint8Array) to a new artifact.
function store(bytes) {
  const writer = new Writer();
  writer.write(bytes);
  // `finish` is static: it consumes the writer.
  return Writer.finish(writer);
}

// ASCII-only casing, byte by byte, so non-UTF-8 text passes through intact.
function applyCasing(bytes, casing) {
  if (casing === 'keep') return bytes;
  const [from, to] = casing === 'lower' ? [0x41, 0x5a] : [0x61, 0x7a];
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    if (out[i] >= from && out[i] <= to) out[i] ^= 0x20;
  }
  return out;
}

function isWordByte(b) {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

// `text` is a borrowed artifact: usable during this call only.
export function profile(text, options) {
  const cased = applyCasing(text.read(), options.casing);

  // Stop-words are compared as given against the cased words.
  const stop = new Set(options.stopWords);
  const counts = new Map();
  let words = 0;
  let letters = 0;
  for (let i = 0; i < cased.length; ) {
    if (!isWordByte(cased[i])) {
      i++;
      continue;
    }
    const start = i;
    while (i < cased.length && isWordByte(cased[i])) i++;
    if (i - start < options.minLength) continue;
    const word = ascii.decode(cased.subarray(start, i));
    if (stop.has(word)) continue;
    counts.set(word, (counts.get(word) ?? 0) + 1);
    words++;
    letters += i - start;
  }
  if (words === 0) {
    throw new TaskError(`no words counted (min-length ${options.minLength})`);
  }

  // Most frequent first; ties in byte order, which for ASCII strings is
  // JavaScript's code-unit order.
  const ranked = [...counts].sort(
    ([a, m], [b, n]) => n - m || (a < b ? -1 : a > b ? 1 : 0),
  );
  const top = ranked
    .slice(0, options.top)
    .map(([word, n]) => `${word}\t${n}\n`)
    .join('');
  const summary = `words ${words}\ndistinct ${counts.size}\nletters ${letters}\n`;

  log('info', `counted ${words} words (${counts.size} distinct)`);
  metric('words', words, undefined);
  if (options.tag !== undefined) label('tag', options.tag);

  return {
    words: BigInt(words),
    distinct: counts.size,
    meanLength: letters / words,
    top: store(utf8.encode(top)),
    text: store(cased),
    summary: store(utf8.encode(summary)),
  };
}
