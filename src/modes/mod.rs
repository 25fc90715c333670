//! The binary's modes, one module each: what the command line gave it (an options
//! struct), its checks of those options, the run, and what it prints. `main.rs` only
//! parses the arguments, picks the one mode and hands its options here.
pub mod devices;
pub mod evaluate;
pub mod listen;
pub mod record;
pub mod stream;
pub mod train;
pub mod train_words;

use crate::learn::dataset::Split;
use anyhow::{bail, Result};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Exit code of a run that Ctrl-C ended (the shell's 128 + SIGINT), whatever it kept:
/// one rule for every mode. `q`/Esc in the live display and a closed stdout are 0.
pub const INTERRUPTED: i32 = 130;

/// Every core, unless the user said otherwise (at least one).
pub fn threads(asked: Option<usize>) -> Result<usize> {
    match asked {
        Some(0) => anyhow::bail!("--threads 0: use 1 or more (left out: every core)"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)),
    }
}

/// `--split NAME`: one split, or None for all of them.
pub fn parse_split(name: &str) -> Result<Option<Split>> {
    Ok(match name {
        "all" => None,
        "train" => Some(Split::Train),
        "validation" => Some(Split::Validation),
        "test" => Some(Split::Test),
        other => bail!("--split {other}: use train, validation, test or all"),
    })
}

/// A flag that Ctrl-C (or SIGTERM) raises, for modes that end cleanly on it.
pub fn stop_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let _ = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst));
    stop
}
