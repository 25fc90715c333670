//! Listening: microphone (or file) to detections. [`capture`] copies the device's
//! samples into a lock-free ring; the [`engine`] mixes to mono, resamples, computes
//! frames and runs the model every hop; [`detect`] turns posteriors into detections;
//! a file is scored on every core in parts ([`parallel`]);
//! [`session`] drives the loop and hands each detection to the [`display`], JSON lines
//! or [`exec`]. [`record`] records your own clips through the same capture.
pub mod capture;
pub mod detect;
pub mod display;
pub mod engine;
pub mod exec;
pub mod parallel;
pub mod record;
pub mod session;
