/*
 * The polyglot `profile` task in C: a typed Cairn task.
 *
 * World: example:polyglot/profile in ../../wit/profile.wit, assembled with
 * cairn:task and WASI as deps. `wit-bindgen c` (0.63) generates profile.h,
 * profile.c and profile_component_type.o from it at build time; this file
 * implements the one export, exports_profile_profile. See
 * sdk/guides/c.md for the build commands.
 *
 * The text is streamed: read in chunks from the artifact's input-stream,
 * cased and written to the `text` artifact chunk by chunk, so memory holds
 * one chunk plus the distinct words, not the whole artifact.
 *
 * Ownership (wit-bindgen c): the export owns `options` and must free them;
 * the borrowed `text` handle must be dropped before returning; the error
 * string is freed by the generated post-return with free(), so it must be
 * heap-allocated; returned artifacts are owned handles that pass to the
 * host.
 */
#include "profile.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How much to ask the input-stream for per read. */
#define CHUNK (64 * 1024)

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p)
        abort(); /* a trap: the job fails with the guest's backtrace */
    return p;
}

/* A growable byte buffer. */
typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} buf;

static void buf_append(buf *b, const void *bytes, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n)
            cap *= 2;
        b->ptr = xrealloc(b->ptr, cap);
        b->cap = cap;
    }
    memcpy(b->ptr + b->len, bytes, n);
    b->len += n;
}

/* A word set with counts: open addressing, linear probing, power-of-two
 * capacity kept at most half full. Keys are owned copies (the chunk they
 * came from is freed); an empty slot has word == NULL. */
typedef struct {
    uint8_t *word;
    size_t len;
    uint64_t count;
} entry;

typedef struct {
    entry *slots;
    size_t cap, used;
} table;

static uint64_t hash(const uint8_t *s, size_t n) {
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
    t->slots = calloc(cap, sizeof(entry));
    if (!t->slots)
        abort();
}

static entry *table_slot(const table *t, const uint8_t *s, size_t n) {
    size_t i = (size_t)hash(s, n) & (t->cap - 1);
    for (;;) {
        entry *e = &t->slots[i];
        if (!e->word || (e->len == n && memcmp(e->word, s, n) == 0))
            return e;
        i = (i + 1) & (t->cap - 1);
    }
}

/* The entry for a word (copied in with count 0 when new). */
static entry *table_get(table *t, const uint8_t *s, size_t n) {
    entry *e = table_slot(t, s, n);
    if (e->word)
        return e;
    if ((t->used + 1) * 2 > t->cap) {
        table old = *t;
        table_init(t, old.cap * 2);
        for (size_t i = 0; i < old.cap; i++)
            if (old.slots[i].word)
                *table_slot(t, old.slots[i].word, old.slots[i].len) = old.slots[i];
        t->used = old.used;
        free(old.slots);
        e = table_slot(t, s, n);
    }
    e->word = xrealloc(NULL, n);
    memcpy(e->word, s, n);
    e->len = n;
    e->count = 0;
    t->used++;
    return e;
}

static void table_free(table *t) {
    for (size_t i = 0; i < t->cap; i++)
        free(t->slots[i].word);
    free(t->slots);
}

/* Most frequent first; ties in byte order of the word (a prefix sorts
 * before the longer word). */
static int by_rank(const void *pa, const void *pb) {
    const entry *a = pa, *b = pb;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    size_t n = a->len < b->len ? a->len : b->len;
    int c = memcmp(a->word, b->word, n);
    if (c != 0)
        return c;
    return (a->len > b->len) - (a->len < b->len);
}

static bool is_word_byte(uint8_t c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static void apply_casing(uint8_t *p, size_t n, profile_casing_t casing) {
    if (casing == PROFILE_CASING_LOWER) {
        for (size_t i = 0; i < n; i++)
            if (p[i] >= 'A' && p[i] <= 'Z')
                p[i] += 'a' - 'A';
    } else if (casing == PROFILE_CASING_UPPER) {
        for (size_t i = 0; i < n; i++)
            if (p[i] >= 'a' && p[i] <= 'z')
                p[i] -= 'a' - 'A';
    }
}

/* The counting state carried from chunk to chunk. */
typedef struct {
    const profile_options_t *options;
    table counts;
    buf partial; /* a word that may go on in the next chunk */
    uint64_t words, letters;
} counter;

static bool is_stop_word(const profile_options_t *o, const uint8_t *s, size_t n) {
    /* Compared as given with the cased word. Stop lists are short: a scan. */
    for (size_t i = 0; i < o->stop_words.len; i++) {
        const profile_string_t *w = &o->stop_words.ptr[i];
        if (w->len == n && memcmp(w->ptr, s, n) == 0)
            return true;
    }
    return false;
}

static void count_word(counter *c, const uint8_t *s, size_t n) {
    if (n < c->options->min_length || is_stop_word(c->options, s, n))
        return;
    table_get(&c->counts, s, n)->count++;
    c->words++;
    c->letters += n;
}

/* Counts the words of one (cased) chunk; a word touching the chunk's end
 * is kept in `partial` until a non-word byte or the end of the text. */
static void count_chunk(counter *c, const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (!is_word_byte(p[i])) {
            if (c->partial.len) {
                count_word(c, c->partial.ptr, c->partial.len);
                c->partial.len = 0;
            }
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && is_word_byte(p[i]))
            i++;
        if (i == n || c->partial.len) {
            /* Joins a word from the last chunk, or may go on in the next. */
            buf_append(&c->partial, p + start, i - start);
            if (i < n) {
                count_word(c, c->partial.ptr, c->partial.len);
                c->partial.len = 0;
            }
        } else {
            count_word(c, p + start, i - start);
        }
    }
}

/* A new artifact holding `n` bytes. */
static profile_own_artifact_t store(const uint8_t *p, size_t n) {
    cairn_task_artifacts_own_writer_t w = cairn_task_artifacts_constructor_writer();
    profile_list_u8_t bytes = {(uint8_t *)p, n};
    cairn_task_artifacts_method_writer_write(cairn_task_artifacts_borrow_writer(w), &bytes);
    return cairn_task_artifacts_static_writer_finish(w); /* consumes w */
}

/* Streams the artifact into the counter and, cased, into `out`. False when
 * reading failed. */
static bool read_text(profile_borrow_artifact_t text, profile_casing_t casing, counter *c,
                      cairn_task_artifacts_borrow_writer_t out) {
    wasi_io_streams_own_input_stream_t in = cairn_task_artifacts_method_artifact_open(text);
    wasi_io_streams_borrow_input_stream_t in_b = wasi_io_streams_borrow_input_stream(in);
    bool ok = true;
    for (;;) {
        profile_list_u8_t chunk;
        wasi_io_streams_stream_error_t stream_err;
        if (!wasi_io_streams_method_input_stream_blocking_read(in_b, CHUNK, &chunk, &stream_err)) {
            if (stream_err.tag == WASI_IO_STREAMS_STREAM_ERROR_LAST_OPERATION_FAILED) {
                /* The generated *_free does not drop the error's handle. */
                wasi_io_error_error_drop_own(stream_err.val.last_operation_failed);
                ok = false;
            }
            break; /* CLOSED: the end of the text */
        }
        apply_casing(chunk.ptr, chunk.len, casing);
        cairn_task_artifacts_method_writer_write(out, &chunk);
        count_chunk(c, chunk.ptr, chunk.len);
        profile_list_u8_free(&chunk);
    }
    if (c->partial.len)
        count_word(c, c->partial.ptr, c->partial.len);
    wasi_io_streams_input_stream_drop_own(in);
    return ok;
}

/* Fills the result from a counter with words > 0; consumes `text_out`. */
static void report(const counter *c, const profile_options_t *options,
                   cairn_task_artifacts_own_writer_t text_out, profile_profile_t *ret) {
    /* Rank shallow copies of the used slots: the table keeps owning the
     * words. */
    entry *ranked = xrealloc(NULL, c->counts.used * sizeof(entry));
    size_t distinct = 0;
    for (size_t i = 0; i < c->counts.cap; i++)
        if (c->counts.slots[i].word)
            ranked[distinct++] = c->counts.slots[i];
    qsort(ranked, distinct, sizeof(entry), by_rank);

    char line[128];
    buf top = {0};
    for (size_t i = 0; i < distinct && i < options->top; i++) {
        int n = snprintf(line, sizeof line, "\t%" PRIu64 "\n", ranked[i].count);
        buf_append(&top, ranked[i].word, ranked[i].len);
        buf_append(&top, line, (size_t)n);
    }
    free(ranked);
    int n = snprintf(line, sizeof line, "words %" PRIu64 "\ndistinct %zu\nletters %" PRIu64 "\n",
                     c->words, distinct, c->letters);

    ret->words = c->words;
    ret->distinct = (uint32_t)distinct;
    ret->mean_length = (double)c->letters / (double)c->words;
    ret->top = store(top.ptr, top.len);
    ret->text = cairn_task_artifacts_static_writer_finish(text_out);
    ret->summary = store((const uint8_t *)line, (size_t)n);
    free(top.ptr);

    /* Strings passed to imports are borrowed: the host copies them. */
    profile_string_t key, value;
    snprintf(line, sizeof line, "counted %" PRIu64 " words (%zu distinct)", c->words, distinct);
    profile_string_set(&value, line);
    cairn_task_context_log(CAIRN_TASK_CONTEXT_LEVEL_INFO, &value);
    profile_string_set(&key, "words");
    cairn_task_context_metric(&key, (double)c->words, NULL);
    if (options->tag.is_some) {
        profile_string_set(&key, "tag");
        value = options->tag.val;
        cairn_task_context_label(&key, &value);
    }
}

bool exports_profile_profile(profile_borrow_artifact_t text, profile_options_t *options,
                             profile_profile_t *ret, profile_string_t *err) {
    counter c = {.options = options};
    table_init(&c.counts, 1024);

    /* The cased text goes straight to its artifact while it is counted. */
    cairn_task_artifacts_own_writer_t text_out = cairn_task_artifacts_constructor_writer();
    bool read_ok = read_text(text, options->casing, &c,
                             cairn_task_artifacts_borrow_writer(text_out));
    /* A borrow lent to an export must be dropped before it returns. */
    cairn_task_artifacts_artifact_drop_borrow(text);

    bool ok = false;
    if (!read_ok) {
        profile_string_dup(err, "reading the text failed");
    } else if (c.words == 0) {
        /* Heap-allocated: the generated post-return frees it. */
        char msg[64];
        snprintf(msg, sizeof msg, "no words counted (min-length %u)", (unsigned)options->min_length);
        profile_string_dup(err, msg);
    } else {
        report(&c, options, text_out, ret);
        ok = true;
    }
    if (!ok)
        cairn_task_artifacts_writer_drop_own(text_out); /* discards its bytes */

    free(c.partial.ptr);
    table_free(&c.counts);
    /* The export owns its arguments. */
    profile_list_string_free(&options->stop_words);
    profile_option_string_free(&options->tag);
    return ok;
}
