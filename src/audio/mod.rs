//! Audio shared by every flow: reading and writing WAV files ([`wav`]), resampling to
//! 16 kHz ([`resample`]) and the one feature extractor ([`features`]) that turns a
//! second of 16 kHz audio into the frames the model reads: log-mel frames, or
//! Google's speech embedding of a 32-bin mel every 80 ms ([`embedding`]), whole or
//! frame by frame as a stream arrives ([`stream`]).
pub mod embedding;
pub mod features;
pub mod resample;
pub mod stream;
pub mod wav;
