//! The one bar of `leads import`: the whole file's leads, advanced by what the parts' status
//! documents say was processed, with stored and failed counts, the rate and the ETA.

use crate::events::{Counts, Output};
use indicatif::{ProgressDrawTarget, ProgressState, ProgressStyle};
use std::time::Duration;

/// A spinner while the file is read a first time (counted and hashed), before any request.
pub fn reading(output: &Output, file: &str) {
    if output.json() {
        return;
    }
    let bar = &output.bar;
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("the template is valid"));
    bar.set_message(format!("reading {file}"));
    bar.enable_steady_tick(Duration::from_millis(200));
}

/// Shows `output`'s bar for `total` leads (in human mode; in JSON mode it stays hidden).
pub fn start(output: &Output, total: u64) {
    if output.json() {
        return;
    }
    let bar = &output.bar;
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {percent:>3}% {human_pos}/{human_len} leads · {msg} · {rate} · ETA {eta}",
        )
        .expect("the template is valid")
        .with_key("rate", |state: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{:.0} leads/s", state.per_sec());
        })
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    bar.set_length(total);
    bar.set_message("starting");
    // The rate and ETA count from here, not from the first read.
    bar.reset();
}

/// Moves the bar to the file's counts so far.
pub fn update(output: &Output, counts: &Counts, parts_accepted: u32, parts: u32) {
    output.bar.set_position(counts.processed);
    let outcome = match counts.would_import {
        Some(would) => format!(
            "would import {would} · would skip {} · would fail {}",
            counts.skipped, counts.failed
        ),
        None => format!(
            "stored {} · skipped {} · failed {}",
            counts.successful, counts.skipped, counts.failed
        ),
    };
    output
        .bar
        .set_message(format!("{outcome} · part {parts_accepted}/{parts}"));
}

/// Leaves the bar drawn where the status documents put it (`finish` would fill it).
pub fn finish(output: &Output) {
    if !output.json() {
        output.bar.abandon();
        // Drawn for good: what is said next goes below it (indicatif leaves the cursor at the
        // bar's end), not around a redrawn bar.
        output.bar.set_draw_target(ProgressDrawTarget::hidden());
        eprintln!();
    }
}
