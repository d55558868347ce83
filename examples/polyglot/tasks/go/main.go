// The polyglot profile contract (examples/polyglot/wit/profile.wit) as a
// Cairn command task in Go: a plain main() built for GOOS=wasip1.
//
//	profile CASING MIN_LENGTH TOP [STOP_WORD...]
//
// reads /in/text and writes /out/top, /out/text and /out/summary with the
// bytes the typed contract specifies. Exit status: 0 done, 1 no words counted
// (or an I/O error), 2 bad arguments.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
)

const usage = "usage: profile keep|lower|upper MIN_LENGTH TOP [STOP_WORD...]\n"

func main() {
	os.Exit(run(os.Args))
}

func run(args []string) int {
	if len(args) < 4 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	casing := args[1]
	if casing != "keep" && casing != "lower" && casing != "upper" {
		fmt.Fprintf(os.Stderr, "profile: bad CASING %q\n%s", casing, usage)
		return 2
	}
	minLength, ok := parseUint(args[2], 0xff)
	if !ok {
		fmt.Fprintf(os.Stderr, "profile: bad MIN_LENGTH %q (0-255)\n%s", args[2], usage)
		return 2
	}
	top, ok := parseUint(args[3], 0xffffffff)
	if !ok {
		fmt.Fprintf(os.Stderr, "profile: bad TOP %q (0-4294967295)\n%s", args[3], usage)
		return 2
	}
	// Stop words are compared with the cased words exactly as given.
	stop := make(map[string]bool, len(args)-4)
	for _, w := range args[4:] {
		stop[w] = true
	}

	text, err := os.ReadFile("/in/text")
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile: %v\n", err)
		return 1
	}
	applyCasing(text, casing)

	counts := make(map[string]uint64)
	var words, letters uint64
	for i := 0; i < len(text); {
		if !isWordByte(text[i]) {
			i++
			continue
		}
		start := i
		for i < len(text) && isWordByte(text[i]) {
			i++
		}
		// Indexing a map with string(bytes) does not allocate; only a
		// new key is copied into a string.
		word := text[start:i]
		if uint64(len(word)) < minLength || stop[string(word)] {
			continue
		}
		counts[string(word)]++
		words++
		letters += uint64(len(word))
	}

	if words == 0 {
		fmt.Fprintf(os.Stderr, "no words counted (min-length %d)\n", minLength)
		return 1
	}

	// Most frequent first, ties in byte order (Go compares strings bytewise).
	ranked := make([]string, 0, len(counts))
	for w := range counts {
		ranked = append(ranked, w)
	}
	sort.Slice(ranked, func(a, b int) bool {
		ca, cb := counts[ranked[a]], counts[ranked[b]]
		if ca != cb {
			return ca > cb
		}
		return ranked[a] < ranked[b]
	})
	if uint64(len(ranked)) > top {
		ranked = ranked[:top]
	}

	err = writeFile("/out/top", func(w *bufio.Writer) {
		for _, word := range ranked {
			fmt.Fprintf(w, "%s\t%d\n", word, counts[word])
		}
	})
	if err == nil {
		err = os.WriteFile("/out/text", text, 0o644)
	}
	if err == nil {
		err = writeFile("/out/summary", func(w *bufio.Writer) {
			fmt.Fprintf(w, "words %d\ndistinct %d\nletters %d\n", words, len(counts), letters)
		})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "profile: %v\n", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "counted %d words (%d distinct)\n", words, len(counts))
	return 0
}

// parseUint accepts one or more ASCII digits with a value of at most max.
// Stricter than strconv (no sign, no underscores), so every language's
// command task accepts exactly the same arguments.
func parseUint(s string, max uint64) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > max {
			return 0, false
		}
	}
	return v, true
}

// applyCasing cases ASCII letters in place; other bytes (UTF-8 or not) are
// left alone.
func applyCasing(text []byte, casing string) {
	switch casing {
	case "lower":
		for i, c := range text {
			if c >= 'A' && c <= 'Z' {
				text[i] = c + ('a' - 'A')
			}
		}
	case "upper":
		for i, c := range text {
			if c >= 'a' && c <= 'z' {
				text[i] = c - ('a' - 'A')
			}
		}
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// writeFile creates path and fills it through a buffered writer.
func writeFile(path string, fill func(*bufio.Writer)) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fill(w)
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
