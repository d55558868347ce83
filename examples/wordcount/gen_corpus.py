#!/usr/bin/env python3
"""Generate a large synthetic text corpus for the word-count example.

Usage: python3 gen_corpus.py OUT_PATH --mb 32 [--seed 1]

Writes at least MB mebibytes (2**20 bytes) of text to OUT_PATH, stopping at
the end of a line. Each line is a paragraph of sentences whose words are drawn
from a fixed vocabulary of a few thousand words (common English words followed
by made-up ones) with Zipf-like frequencies, so a handful of words dominate and
there is a long tail of rare ones. The same arguments give a byte-identical
file (with the same Python version's `random` module). Standard library only.
"""

import argparse
import itertools
import random
import sys

# Common English words, roughly from most to least frequent.
COMMON = """
the of and to a in is it you that he was for on are with as i his they be at
one have this from or had by not word but what some we can out other were all
there when up use your how said an each she which do their time if will way
about many then them write would like so these her long make thing see him two
has look more day could go come did number sound no most people my over know
water than call first who may down side been now find any new work part take
get place made live where after back little only round man year came show
every good me give our under name very through just form sentence great think
say help low line differ turn cause much mean before move right boy old too
same tell does set three want air well also play small end put home read hand
port large spell add even land here must big high such follow act why ask men
change went light kind off need house picture try us again animal point mother
world near build self earth father head stand own page should country found
answer school grow study still learn plant cover food sun four between state
keep eye never last let thought city tree cross farm hard start might story saw
far sea draw left late run while press close night real life few north open
seem together next white children begin got walk example ease paper group
always music those both mark often letter until mile river car feet care
second book carry took science eat room friend began idea fish mountain stop
once base hear horse cut sure watch color face wood main enough plain girl
usual young ready above ever red list though feel talk bird soon body dog
family direct pose leave song measure door product black short numeral class
wind question happen complete ship area half rock order fire south problem
piece told knew pass since top whole king space heard best hour better true
during hundred five remember step early hold west ground interest reach fast
verb sing listen six table travel less morning ten simple several vowel toward
war lay against pattern slow center love person money serve appear road map
rain rule govern pull cold notice voice unit power town fine certain fly fall
lead cry dark machine note wait plan figure star box noun field rest correct
able pound done beauty drive stood contain front teach week final gave green
quick develop ocean warm free minute strong special mind behind clear tail
produce fact street inch multiply nothing course stay wheel full force blue
object decide surface deep moon island foot system busy test record boat
common gold possible plane stead dry wonder laugh thousand ago ran check game
shape equate hot miss brought heat snow tire bring yes distant fill east paint
language among cairn stone trail ridge summit valley lantern meadow
""".split()

ONSETS = "b c d f g h j k l m n p r s t v w z br cl dr fl gr pl st th tr sh ch".split()
VOWELS = "a e i o u a e i o ai ea ou".split()
CODAS = [""] * 6 + "n r s l m t nd rk st".split()


def vocabulary(size=3000):
    """The fixed vocabulary, most frequent first; independent of --seed."""
    rng = random.Random(20240601)
    words = list(dict.fromkeys(COMMON))
    seen = set(words)
    while len(words) < size:
        syllables = rng.choice((2, 2, 3, 3, 4))
        word = "".join(
            rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS)
            for _ in range(syllables)
        )
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def generate(out, megabytes, seed):
    words = vocabulary()
    # Zipf-Mandelbrot weights: rank r gets 1 / (r + 2.7).
    cum_weights = list(itertools.accumulate(1.0 / (r + 2.7) for r in range(len(words))))
    rng = random.Random(seed)
    target = int(megabytes * 2**20)
    written = 0
    while written < target:
        # One block of about 1 MiB: draw the words in bulk, then cut them into
        # sentences and the sentences into one-paragraph lines.
        pool = rng.choices(words, cum_weights=cum_weights, k=180_000)
        lengths = rng.choices(range(4, 19), k=len(pool) // 4)
        endings = rng.choices(".?!", weights=(20, 2, 1), k=len(lengths))
        per_line = rng.choices(range(2, 9), k=len(lengths))
        lines, sentences, at, n = [], [], 0, 0
        for length, ending in zip(lengths, endings):
            if at + length > len(pool):
                break
            chunk = pool[at : at + length]
            at += length
            if length > 8:
                chunk[length // 2] += ","
            sentence = " ".join(chunk)
            sentences.append(sentence[0].upper() + sentence[1:] + ending)
            if len(sentences) == per_line[n]:
                lines.append(" ".join(sentences))
                sentences, n = [], n + 1
        if sentences:
            lines.append(" ".join(sentences))
        data = ("\n".join(lines) + "\n").encode("ascii")
        if written + len(data) > target:
            # Stop at the first line end at or after the target size.
            end = data.find(b"\n", target - written - 1) + 1
            data = data[:end]
        out.write(data)
        written += len(data)
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_path", metavar="OUT_PATH")
    parser.add_argument("--mb", type=float, required=True, help="size in MiB")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.mb <= 0:
        parser.error("--mb must be positive")
    with open(args.out_path, "wb") as out:
        written = generate(out, args.mb, args.seed)
    print(f"wrote {written} bytes to {args.out_path}", file=sys.stderr)


if __name__ == "__main__":
    main()
