//! `listen`: offline keyword spotting. Say "left" at your desk and `left` shows up in
//! the terminal, or is handed to another program.
//!
//! The crate is laid out as audio flows through it; each stage's page says what it
//! takes and what it hands on.
//!
//! - [`audio`] (shared by every flow): WAV files in and out, resampling to 16 kHz, and
//!   the one feature extractor (log-mel) that training, evaluation and listening use.
//! - [`model`] (shared): a model is a folder, weights plus a JSON card (labels,
//!   features, normalisation, detector settings); the default one is embedded.
//! - [`live`]: microphone or file to detections: `capture` (cpal -> lock-free ring)
//!   -> `engine` (mono, 16 kHz, frames, the model every hop) -> `detect` (smoothing,
//!   threshold, refractory) -> `session` (the loop) -> `display`, JSON lines, `exec`;
//!   `record` makes your own clips through the same capture.
//! - [`learn`]: clips to a model folder: `dataset` (folders, speaker split) and
//!   `speech`/`negatives` (running speech that is not a command) -> `augment` ->
//!   `train` (named steps: plan, data, features, fit, report, card, write) ->
//!   `report` and `plots`.
//! - [`measure`]: how good a model is where users live: `evaluate` (whole clips),
//!   `streams` (long test streams with a truth CSV) and `score` (recall, false alarms
//!   per hour, latency, sweeps).
//! - [`modes`]: what the `listen` binary can do, one module per mode: its options,
//!   their checks, the run and what it prints.
pub mod audio;
pub mod learn;
pub mod live;
pub mod measure;
pub mod model;
pub mod modes;
pub mod util;
