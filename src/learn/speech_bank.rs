//! Speech that is not a command, embedded once (models on the speech embedding only).
//! The front end is frozen, so an hour of talk always gives the same embeddings: each
//! training recording is run through it once, and every window a stream would show the
//! head (one every 80 ms) is a negative example for free. An epoch draws its speech
//! windows from all of them, and a mining round runs only the head over all of them
//! (seconds, where re-embedding 4 h took a minute).
use crate::audio::features::{FeatureConfig, FeatureExtractor};
use crate::audio::wav;
use crate::learn::speech::SpeechFile;
use anyhow::Result;

pub struct SpeechBank {
    /// Embeddings of every recording, one after another, row-major `[rows][bins]`.
    rows: Vec<f32>,
    /// First row of every window (each lies inside one recording).
    starts: Vec<u32>,
    frames: usize,
    bins: usize,
    pub seconds: f64,
    /// Recordings that could not be read (skipped).
    pub unreadable: usize,
}

impl SpeechBank {
    /// Embeds `files` (up to `max_seconds` of audio, in the given order). A recording
    /// shorter than a window is seen as a stream sees it: after quiet.
    pub fn build(
        files: &[&SpeechFile],
        cfg: &FeatureConfig,
        max_seconds: f64,
        progress: &indicatif::ProgressBar,
    ) -> Result<SpeechBank> {
        let mut fe = FeatureExtractor::new(cfg)?;
        let (frames, bins) = (cfg.n_frames(), cfg.n_bins());
        let mut bank = SpeechBank {
            rows: Vec::new(),
            starts: Vec::new(),
            frames,
            bins,
            seconds: 0.0,
            unreadable: 0,
        };
        for f in files {
            progress.inc(1);
            if bank.seconds >= max_seconds {
                break;
            }
            let Ok(mut x) = wav::read_mono_16k(&f.path, 120.0) else {
                // Already named when the crop pool was read from the same files.
                bank.unreadable += 1;
                continue;
            };
            bank.seconds += x.len() as f64 / wav::SAMPLE_RATE as f64;
            if x.len() < cfg.clip_samples {
                let mut padded = vec![0.0; cfg.clip_samples - x.len()];
                padded.extend_from_slice(&x);
                x = padded;
            }
            bank.push(&fe.compute(&x));
        }
        Ok(bank)
    }

    /// Adds one recording's embeddings and its windows.
    fn push(&mut self, feats: &[f32]) {
        let first = self.rows.len() / self.bins;
        let n = feats.len() / self.bins;
        self.rows.extend_from_slice(feats);
        for s in 0..(n + 1).saturating_sub(self.frames) {
            self.starts.push((first + s) as u32);
        }
    }

    /// Windows in the bank.
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Window `i`, not normalised: `[frames][bins]`.
    pub fn window(&self, i: usize) -> &[f32] {
        let s = self.starts[i] as usize * self.bins;
        &self.rows[s..s + self.frames * self.bins]
    }

    /// Hours of audio in the bank.
    pub fn hours(&self) -> f64 {
        self.seconds / 3600.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_lies_inside_one_recording() {
        let mut b = SpeechBank {
            rows: Vec::new(),
            starts: Vec::new(),
            frames: 3,
            bins: 2,
            seconds: 0.0,
            unreadable: 0,
        };
        b.push(&[0.0; 2 * 5]); // 5 rows: windows at 0, 1, 2
        b.push(&[1.0; 2 * 2]); // 2 rows: too short for a window
        b.push(&[2.0; 2 * 3]); // 3 rows: one window, at row 7
        assert_eq!(b.starts, [0, 1, 2, 7]);
        assert_eq!(b.window(3), &[2.0; 6]);
        assert!(b.window(2).iter().all(|&v| v == 0.0));
    }
}
