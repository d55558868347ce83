"""The polyglot `profile` task in Python.

World: example:polyglot/profile in ../../wit/profile.wit (cairn assembles it
with cairn:task and WASI as dependencies). Build with `cairn build .` or by
hand with componentize-py 0.25:

    componentize-py -d WIT -w profile componentize -p . app -o profile.wasm

(WIT: a directory with the world and a deps/ folder; sdk/guides/python.md.)

componentize-py generates the `wit_world` package from the world at build
time: `wit_world.WitWorld` is the protocol this module's `WitWorld` class
implements, and `wit_world.imports` holds the imported interfaces.
"""

import re
from collections import Counter

import wit_world
from wit_world import Casing, Options, Profile
from wit_world.imports import context
from wit_world.imports.artifacts import Artifact, Writer
from componentize_py_types import Err

# A word: a maximal run of ASCII letters and digits. The pattern is on bytes,
# so the text need not be UTF-8 and no other byte can join a word.
WORD = re.compile(rb"[A-Za-z0-9]+")


def store(data: bytes) -> Artifact:
    """Writes `data` to a new artifact."""
    writer = Writer()
    writer.write(data)
    # `finish` is a static method that consumes the writer.
    return Writer.finish(writer)


def apply_casing(text: bytes, casing: Casing) -> bytes:
    # bytes.lower/upper change only ASCII letters, as the contract requires.
    if casing == Casing.LOWER:
        return text.lower()
    if casing == Casing.UPPER:
        return text.upper()
    return text


class WitWorld(wit_world.WitWorld):
    def profile(self, text: Artifact, options: Options) -> Profile:
        # `text` is borrowed: usable during this call only, never dropped here.
        cased = apply_casing(text.read(), options.casing)

        # Stop-words are compared as given against the cased words.
        stop = {word.encode() for word in options.stop_words}
        counts = Counter(
            word
            for word in WORD.findall(cased)
            if len(word) >= options.min_length and word not in stop
        )
        words = sum(counts.values())
        if words == 0:
            # Raising Err(value) is how a `result<_, string>` export fails.
            raise Err(f"no words counted (min-length {options.min_length})")
        distinct = len(counts)
        letters = sum(len(word) * n for word, n in counts.items())

        # Most frequent first; ties in byte order (bytes compare bytewise).
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        top = b"".join(
            word + b"\t" + str(n).encode() + b"\n" for word, n in ranked[: options.top]
        )
        summary = f"words {words}\ndistinct {distinct}\nletters {letters}\n".encode()

        context.log(context.Level.INFO, f"counted {words} words ({distinct} distinct)")
        context.metric("words", float(words), None)
        if options.tag is not None:
            context.label("tag", options.tag)

        return Profile(
            words=words,
            distinct=distinct,
            mean_length=letters / words,
            top=store(top),
            text=store(cased),
            summary=store(summary),
        )
