//! The polyglot profile contract (examples/polyglot/wit/profile.wit) as a
//! Cairn command task in Zig (written for Zig 0.17): a plain main() built
//! for wasm32-wasi (preview 1).
//!
//!   profile CASING MIN_LENGTH TOP [STOP_WORD...]
//!
//! reads /in/text and writes /out/top, /out/text and /out/summary with the
//! bytes the typed contract specifies. Exit status: 0 done, 1 no words
//! counted (or an I/O error), 2 bad arguments.
const std = @import("std");
const Io = std.Io;

const usage = "usage: profile keep|lower|upper MIN_LENGTH TOP [STOP_WORD...]\n";

const Casing = enum { keep, lower, upper };

const Ranked = struct { word: []const u8, count: u64 };

pub fn main(init: std.process.Init) u8 {
    var buf: [256]u8 = undefined;
    var stderr_writer = Io.File.stderr().writerStreaming(init.io, &buf);
    const stderr = &stderr_writer.interface;
    defer stderr.flush() catch {};
    return run(init, stderr) catch |err| {
        stderr.print("profile: {t}\n", .{err}) catch {};
        return 1;
    };
}

fn run(init: std.process.Init, stderr: *Io.Writer) !u8 {
    const io = init.io;
    // Everything lives until exit: allocate from the process arena.
    const arena = init.arena.allocator();
    const args = try init.minimal.args.toSlice(arena);

    if (args.len < 4) {
        try stderr.writeAll(usage);
        return 2;
    }
    const casing = std.meta.stringToEnum(Casing, args[1]) orelse {
        try stderr.print("profile: bad CASING \"{s}\"\n" ++ usage, .{args[1]});
        return 2;
    };
    const min_length = parseUint(u8, args[2]) orelse {
        try stderr.print("profile: bad MIN_LENGTH \"{s}\" (0-255)\n" ++ usage, .{args[2]});
        return 2;
    };
    const top = parseUint(u32, args[3]) orelse {
        try stderr.print("profile: bad TOP \"{s}\" (0-4294967295)\n" ++ usage, .{args[3]});
        return 2;
    };
    // Stop words are compared with the cased words exactly as given.
    var stop: std.StringHashMapUnmanaged(void) = .empty;
    for (args[4..]) |word| try stop.put(arena, word, {});

    // Without libc, Zig on WASI opens paths relative to a preopened
    // directory, not through absolute paths: look up the host's /in and /out.
    const in_dir = try preopenedDir(init.preopens, "/in");
    const out_dir = try preopenedDir(init.preopens, "/out");

    const text = try in_dir.readFileAlloc(io, "text", arena, .unlimited);
    applyCasing(text, casing);

    // Keys are slices of `text`: counting copies no bytes.
    var counts: std.StringHashMapUnmanaged(u64) = .empty;
    var words: u64 = 0;
    var letters: u64 = 0;
    var i: usize = 0;
    while (i < text.len) {
        if (!isWordByte(text[i])) {
            i += 1;
            continue;
        }
        const start = i;
        while (i < text.len and isWordByte(text[i])) i += 1;
        const word = text[start..i];
        if (word.len < min_length or stop.contains(word)) continue;
        const entry = try counts.getOrPut(arena, word);
        if (!entry.found_existing) entry.value_ptr.* = 0;
        entry.value_ptr.* += 1;
        words += 1;
        letters += word.len;
    }

    if (words == 0) {
        try stderr.print("no words counted (min-length {d})\n", .{min_length});
        return 1;
    }

    const ranked = try arena.alloc(Ranked, counts.count());
    var it = counts.iterator();
    var n: usize = 0;
    while (it.next()) |e| : (n += 1) ranked[n] = .{ .word = e.key_ptr.*, .count = e.value_ptr.* };
    std.mem.sortUnstable(Ranked, ranked, {}, byRank);

    var out_buf: [64 * 1024]u8 = undefined;
    {
        var file = try out_dir.createFile(io, "top", .{});
        defer file.close(io);
        var fw = file.writerStreaming(io, &out_buf);
        const w = &fw.interface;
        for (ranked[0..@min(ranked.len, top)]) |r| try w.print("{s}\t{d}\n", .{ r.word, r.count });
        try w.flush();
    }
    try out_dir.writeFile(io, .{ .sub_path = "text", .data = text });
    {
        var file = try out_dir.createFile(io, "summary", .{});
        defer file.close(io);
        var fw = file.writerStreaming(io, &out_buf);
        const w = &fw.interface;
        try w.print("words {d}\ndistinct {d}\nletters {d}\n", .{ words, ranked.len, letters });
        try w.flush();
    }

    try stderr.print("counted {d} words ({d} distinct)\n", .{ words, ranked.len });
    return 0;
}

fn preopenedDir(preopens: std.process.Preopens, name: []const u8) !Io.Dir {
    return switch (preopens.get(name) orelse return error.NotPreopened) {
        .dir => |d| d,
        .file => error.NotADirectory,
    };
}

/// One or more ASCII digits with a value that fits T. Stricter than
/// std.fmt.parseInt (no sign, no underscores), so every language's command
/// task accepts exactly the same arguments.
fn parseUint(comptime T: type, s: []const u8) ?T {
    if (s.len == 0) return null;
    var v: T = 0;
    for (s) |c| {
        if (c < '0' or c > '9') return null;
        v = std.math.mul(T, v, 10) catch return null;
        v = std.math.add(T, v, c - '0') catch return null;
    }
    return v;
}

/// Cases ASCII letters in place; other bytes (UTF-8 or not) are left alone.
fn applyCasing(text: []u8, casing: Casing) void {
    switch (casing) {
        .keep => {},
        .lower => for (text) |*c| {
            c.* = std.ascii.toLower(c.*);
        },
        .upper => for (text) |*c| {
            c.* = std.ascii.toUpper(c.*);
        },
    }
}

fn isWordByte(c: u8) bool {
    return std.ascii.isAlphanumeric(c);
}

/// Most frequent first; ties in byte order of the word.
fn byRank(_: void, a: Ranked, b: Ranked) bool {
    if (a.count != b.count) return a.count > b.count;
    return std.mem.lessThan(u8, a.word, b.word);
}
