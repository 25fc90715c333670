//! Audio shared by every flow: reading and writing WAV files ([`wav`]), resampling to
//! 16 kHz ([`resample`]) and the one feature extractor ([`features`]) that turns a
//! second of 16 kHz audio into the log-mel frames the model reads.
pub mod features;
pub mod resample;
pub mod wav;
