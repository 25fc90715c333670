//! `listen`: offline keyword spotting. How audio flows:
//!
//! files: `audio` (WAV in) -> `resample` (to 16 kHz) -> `features` (log-mel) -> `model`
//! training: `dataset` (folders, speaker split) -> `augment` -> `train` -> `metrics`, `plots`
//! whole clips: `evaluate` (--evaluate, --predict)
//! long streams: `streams` (--make-stream: words over noise + truth CSV) -> `score`
//!       (--truth: recall, false alarms per hour, latency; --sweep)
//! live: `capture` (cpal -> lock-free ring buffer) -> `engine` (mono, resample, frames,
//!       model every hop) -> `detect` (smoothing, threshold, refractory) -> `listen` (loop,
//!       JSON lines, `exec` for --exec) and `ui` (terminal display)
//! your own words: `capture` -> `record` (--record: room noise, takes cut out by voice
//!       activity, centred 1 s clips) -> `train` (--from: fine-tuning)
pub mod audio;
pub mod augment;
pub mod capture;
pub mod dataset;
pub mod detect;
pub mod engine;
pub mod evaluate;
pub mod exec;
pub mod features;
pub mod listen;
pub mod metrics;
pub mod model;
pub mod negatives;
pub mod plots;
pub mod record;
pub mod resample;
pub mod score;
pub mod speech;
pub mod streams;
pub mod train;
pub mod ui;
pub mod util;
