/*
 * The polyglot profile contract (examples/polyglot/wit/profile.wit) as a
 * Cairn command task in C: a plain main() built for wasm32-wasi (preview 1).
 *
 *   profile CASING MIN_LENGTH TOP [STOP_WORD...]
 *
 * reads /in/text and writes /out/top, /out/text and /out/summary with the
 * bytes the typed contract specifies. Exit status: 0 done, 1 no words counted
 * (or an I/O error), 2 bad arguments.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char USAGE[] =
    "usage: profile keep|lower|upper MIN_LENGTH TOP [STOP_WORD...]\n";

/* A word is a slice of the text buffer (or of argv, for stop words): the
 * table never copies bytes. */
typedef struct {
    const unsigned char *bytes;
    size_t len;
    uint64_t count;
} entry;

/* Open addressing, linear probing, power-of-two capacity kept at most half
 * full. An entry with bytes == NULL is empty. */
typedef struct {
    entry *slots;
    size_t cap;
    size_t used;
} table;

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("profile: out of memory\n", stderr);
        exit(1);
    }
    return p;
}

static uint64_t hash(const unsigned char *s, size_t n) {
    uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3u;
    }
    return h;
}

static void table_init(table *t, size_t cap) {
    t->cap = cap;
    t->used = 0;
    t->slots = xmalloc(cap * sizeof(entry));
    memset(t->slots, 0, cap * sizeof(entry));
}

static entry *table_slot(const table *t, const unsigned char *s, size_t n) {
    size_t i = (size_t)hash(s, n) & (t->cap - 1);
    for (;;) {
        entry *e = &t->slots[i];
        if (!e->bytes || (e->len == n && memcmp(e->bytes, s, n) == 0))
            return e;
        i = (i + 1) & (t->cap - 1);
    }
}

static void table_grow(table *t) {
    table old = *t;
    table_init(t, old.cap * 2);
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].bytes) {
            *table_slot(t, old.slots[i].bytes, old.slots[i].len) = old.slots[i];
            t->used++;
        }
    free(old.slots);
}

/* The entry for a word, added with count 0 when new. */
static entry *table_get(table *t, const unsigned char *s, size_t n) {
    entry *e = table_slot(t, s, n);
    if (e->bytes)
        return e;
    if ((t->used + 1) * 2 > t->cap) {
        table_grow(t);
        e = table_slot(t, s, n);
    }
    e->bytes = s;
    e->len = n;
    e->count = 0;
    t->used++;
    return e;
}

static bool table_has(const table *t, const unsigned char *s, size_t n) {
    return table_slot(t, s, n)->bytes != NULL;
}

/* Most frequent first; ties in byte order of the word (a prefix sorts
 * before the longer word). */
static int by_rank(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->bytes, b->bytes, n);
    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static bool is_word_byte(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* One or more ASCII digits with a value of at most max. Stricter than
 * strtoul (no sign, spaces or base prefix), so every language's command task
 * accepts exactly the same arguments. */
static bool parse_uint(const char *s, uint64_t max, uint64_t *out) {
    uint64_t v = 0;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        v = v * 10 + (uint64_t)(*s - '0');
        if (v > max)
            return false;
    }
    *out = v;
    return true;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = xmalloc(cap);
    for (;;) {
        n += fread(buf + n, 1, cap - n, f);
        if (n < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
        if (!buf) {
            fputs("profile: out of memory\n", stderr);
            exit(1);
        }
    }
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

/* Says which file failed and why (errno), and exits 1. */
static void fail(const char *path) {
    fprintf(stderr, "profile: %s: %s\n", path, strerror(errno));
    exit(1);
}

static FILE *create(const char *path) {
    FILE *f = fopen(path, "wb");
    if (!f)
        fail(path);
    return f;
}

/* Closes f, failing if any write to it or the close failed. */
static void finish(FILE *f, const char *path) {
    if (ferror(f) | (fclose(f) != 0)) /* `|`, not `||`: always close */
        fail(path);
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *casing = argv[1];
    if (strcmp(casing, "keep") && strcmp(casing, "lower") && strcmp(casing, "upper")) {
        fprintf(stderr, "profile: bad CASING \"%s\"\n%s", casing, USAGE);
        return 2;
    }
    uint64_t min_length, top;
    if (!parse_uint(argv[2], UINT8_MAX, &min_length)) {
        fprintf(stderr, "profile: bad MIN_LENGTH \"%s\" (0-255)\n%s", argv[2], USAGE);
        return 2;
    }
    if (!parse_uint(argv[3], UINT32_MAX, &top)) {
        fprintf(stderr, "profile: bad TOP \"%s\" (0-4294967295)\n%s", argv[3], USAGE);
        return 2;
    }
    /* Stop words are compared with the cased words exactly as given. */
    table stop;
    table_init(&stop, 16);
    for (int i = 4; i < argc; i++)
        table_get(&stop, (const unsigned char *)argv[i], strlen(argv[i]));

    size_t len;
    unsigned char *text = read_all("/in/text", &len);
    if (!text)
        fail("/in/text");
    if (!strcmp(casing, "lower")) {
        for (size_t i = 0; i < len; i++)
            if (text[i] >= 'A' && text[i] <= 'Z')
                text[i] += 'a' - 'A';
    } else if (!strcmp(casing, "upper")) {
        for (size_t i = 0; i < len; i++)
            if (text[i] >= 'a' && text[i] <= 'z')
                text[i] -= 'a' - 'A';
    }

    table counts;
    table_init(&counts, 1024);
    uint64_t words = 0, letters = 0;
    for (size_t i = 0; i < len;) {
        if (!is_word_byte(text[i])) {
            i++;
            continue;
        }
        size_t start = i;
        while (i < len && is_word_byte(text[i]))
            i++;
        size_t n = i - start;
        if (n < min_length || table_has(&stop, text + start, n))
            continue;
        table_get(&counts, text + start, n)->count++;
        words++;
        letters += n;
    }

    if (words == 0) {
        fprintf(stderr, "no words counted (min-length %" PRIu64 ")\n", min_length);
        return 1;
    }

    /* Pack the used slots to the front and rank them. */
    size_t distinct = 0;
    for (size_t i = 0; i < counts.cap; i++)
        if (counts.slots[i].bytes)
            counts.slots[distinct++] = counts.slots[i];
    qsort(counts.slots, distinct, sizeof(entry), by_rank);

    FILE *f = create("/out/top");
    for (size_t i = 0; i < distinct && i < top; i++) {
        fwrite(counts.slots[i].bytes, 1, counts.slots[i].len, f);
        fprintf(f, "\t%" PRIu64 "\n", counts.slots[i].count);
    }
    finish(f, "/out/top");

    f = create("/out/text");
    fwrite(text, 1, len, f);
    finish(f, "/out/text");

    f = create("/out/summary");
    fprintf(f, "words %" PRIu64 "\ndistinct %zu\nletters %" PRIu64 "\n", words, distinct, letters);
    finish(f, "/out/summary");

    fprintf(stderr, "counted %" PRIu64 " words (%zu distinct)\n", words, distinct);
    return 0;
}
