//! `listen`: offline keyword spotting. How audio flows:
//!
//! files: `audio` (WAV in) -> `resample` (to 16 kHz) -> `features` (log-mel) -> `model`
//! training: `dataset` (folders, speaker split) -> `augment` -> `train` -> `metrics`, `plots`
//! whole clips: `evaluate` (--evaluate, --predict)
pub mod audio;
pub mod augment;
pub mod dataset;
pub mod evaluate;
pub mod features;
pub mod metrics;
pub mod model;
pub mod plots;
pub mod resample;
pub mod train;
pub mod util;
