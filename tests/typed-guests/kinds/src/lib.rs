//! `echo(...)`: returns every parameter unchanged, one record field each,
//! so the host can check that every kind of WIT value round-trips.

// The generated `Guest::echo` has one parameter per WIT kind.
#[allow(clippy::too_many_arguments)]
mod bindings {
    wit_bindgen::generate!({
        path: ["../../../wit", "../wit"],
        world: "cairn-test:typed/kinds",
        with: {
            "cairn:task/artifacts@0.1.0": cairn_sdk::bindings::cairn::task::artifacts,
            "cairn:task/context@0.1.0": cairn_sdk::bindings::cairn::task::context,
        },
        generate_all,
    });
}

use bindings::{Color, Everything, Perms, Point, Shape};

struct Kinds;

impl bindings::Guest for Kinds {
    #[allow(clippy::too_many_arguments)]
    fn echo(
        b: bool,
        i8v: i8,
        u16v: u16,
        i64v: i64,
        f: f64,
        c: char,
        s: String,
        l: Vec<u32>,
        p: Point,
        t: (u8, String),
        o: Option<String>,
        r: Result<u32, String>,
        col: Color,
        fl: Perms,
        sh: Shape,
    ) -> Everything {
        Everything {
            b,
            i8v,
            u16v,
            i64v,
            f,
            c,
            s,
            l,
            p,
            t,
            o,
            r,
            col,
            fl,
            sh,
        }
    }
}

bindings::export!(Kinds with_types_in bindings);
