//! `flows::step` calls per second (budget: ≥ 200,000/s on the 2-core machine).
//!
//! Plain timing loop (`harness = false`): replays a realistic conversation through the bundled
//! main menu and shop flows (menu picks, asks, a cart with expressions, a re-prompt) and
//! reports calls/s and ns/call, next to a baseline of cloning the session (the least any
//! step must do, since it keeps the original to return on error) to give a ratio.
//! Run: `cargo bench -p switchboard-flows`.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

use switchboard_flows::{FlowLibrary, FlowSession, Input, parse_flow, step};
use time::macros::datetime;

fn library() -> FlowLibrary {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows");
    let mut lib = FlowLibrary::default();
    for entry in std::fs::read_dir(dir).expect("flows/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            lib.insert(
                parse_flow(&std::fs::read_to_string(&path).expect("read"))
                    .expect("bundled flows parse"),
            );
        }
    }
    lib
}

fn main() {
    let lib = library();
    let now = datetime!(2025-03-10 09:00 UTC);
    // One shopping conversation: 13 steps, ending back at the main menu's "anything else?".
    let script: Vec<Input> = [
        "4",
        "coffee",
        "beans",
        "2",
        "tea",
        "rooibos",
        "25",
        "3",
        "view cart",
        "check out",
        "12 Long Street, Gardens, Cape Town",
        "yes",
    ]
    .into_iter()
    .map(Input::text)
    .collect();
    let fresh = FlowSession::new("bench", "main_menu").with_contact("name", "Thandi");

    let run_conversation = || {
        let mut s = step(&lib, fresh.clone(), Input::Start, now).session;
        let mut calls = 1u64;
        for input in &script {
            let out = step(&lib, s, input.clone(), now);
            black_box(&out.actions);
            s = out.session;
            calls += 1;
        }
        black_box(s);
        calls
    };

    // Warm up.
    for _ in 0..200 {
        run_conversation();
    }

    let rounds = 20_000;
    let start = Instant::now();
    let mut calls = 0u64;
    for _ in 0..rounds {
        calls += run_conversation();
    }
    let elapsed = start.elapsed();
    let ns_per_call = elapsed.as_nanos() as f64 / calls as f64;
    let per_sec = calls as f64 / elapsed.as_secs_f64();

    // Baseline: cloning a mid-conversation session (with a cart) plus an input, per call.
    let mut mid = fresh.clone();
    mid = step(&lib, mid, Input::Start, now).session;
    for input in &script[..9] {
        mid = step(&lib, mid, input.clone(), now).session;
    }
    let base_n = 2_000_000u64;
    let start = Instant::now();
    for _ in 0..base_n {
        black_box((black_box(&mid).clone(), black_box(&script[0]).clone()));
    }
    let base_ns = start.elapsed().as_nanos() as f64 / base_n as f64;

    println!(
        "flows::step: {calls} calls in {elapsed:.2?}: {per_sec:.0} calls/s, {ns_per_call:.0} ns/call"
    );
    println!(
        "baseline (clone session + input): {base_ns:.0} ns; step costs {:.1}x a clone",
        ns_per_call / base_ns
    );
    let budget = 200_000.0;
    println!(
        "budget >= {budget:.0} calls/s: {} ({:.1}x)",
        if per_sec >= budget { "met" } else { "MISSED" },
        per_sec / budget
    );
}
