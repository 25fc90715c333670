//! Measuring a model where users live: [`evaluate`] scores whole clips (`--evaluate`,
//! `--predict`); [`streams`] writes long test streams with a truth CSV (`--make-stream`);
//! [`score`] matches the engine's detections to the truth (recall, false alarms per
//! hour, latency) and sweeps detector settings.
pub mod evaluate;
pub mod score;
pub mod streams;
