//! Speech that is not a command, embedded once (models on the speech embedding only).
//! The front end is frozen, so an hour of talk always gives the same embeddings: each
//! training recording is run through it once, and every window a stream would show the
//! head (one every 80 ms) is a negative example for free. An epoch draws its speech
//! windows from all of them, and a mining round runs only the head over all of them
//! (seconds, where re-embedding 4 h took a minute).
use crate::audio::embedding;
use crate::audio::features::{FeatureConfig, FeatureExtractor};
use crate::audio::wav::{self, rms};
use crate::learn::augment::NoiseBank;
use crate::learn::cache;
use crate::learn::dataset::Split;
use crate::learn::speech::SpeechFile;
use crate::util::Rng;
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

/// Changes whenever [`Room::present`] does, so that no bank made otherwise is read.
const ROOM_VERSION: &[u8] = b"room-1";

/// How a stream presents an utterance (`--make-stream --speech`): after 0.3-1.5 s of
/// quiet (at least a window's worth in all), at -30 to -16 dBFS, over background noise
/// at -60 to -35 dBFS. The bank sees talk as listeners hear it: the onset of an
/// utterance after a pause is what a command said alone looks like.
pub struct Room<'a> {
    pub noise: &'a NoiseBank,
    pub seed: u64,
}

impl Room<'_> {
    pub(crate) fn present(&self, x: &[f32], window: usize, rng: &mut Rng) -> Vec<f32> {
        let sr = wav::SAMPLE_RATE as f32;
        let pause = (rng.range(0.3, 1.5) * sr) as usize;
        let pause = pause.max(window.saturating_sub(x.len()));
        let mut y = vec![0.0; pause];
        let g = 10f32.powf(rng.range(-30.0, -16.0) / 20.0) / rms(x).max(1e-6);
        y.extend(x.iter().map(|v| v * g));
        if !self.noise.is_empty() {
            let n = self.noise.window(Split::Train, rng, y.len());
            let k = 10f32.powf(rng.range(-60.0, -35.0) / 20.0) / rms(&n).max(1e-6);
            y.iter_mut().zip(&n).for_each(|(a, b)| *a += k * b);
        }
        y.iter_mut().for_each(|v| *v = v.clamp(-1.0, 1.0));
        y
    }
}

impl SpeechBank {
    /// The bank of `files` from the cache when it holds exactly this one (same front
    /// end, settings, files in the same order, sizes and times), else built and stored
    /// there. A cache that cannot be written is one line, and training goes on.
    pub fn cached(
        files: &[&SpeechFile],
        cfg: &FeatureConfig,
        max_seconds: f64,
        room: &Room,
        progress: &indicatif::ProgressBar,
    ) -> Result<SpeechBank> {
        let mut key = cache::Key::new();
        key.add(&embedding::fingerprint().to_le_bytes())
            .add(&serde_json::to_vec(cfg)?)
            .add(&max_seconds.to_le_bytes())
            .add(&room.noise.fingerprint().to_le_bytes())
            .add(&room.seed.to_le_bytes())
            .add(ROOM_VERSION);
        for f in files {
            key.add_file(&f.path);
        }
        let key = key.value();
        let path = cache::dir().map(|d| d.join(format!("speech-bank-{key:016x}.bin")));
        if let Some(s) = path.as_ref().and_then(|p| cache::read(p, key)) {
            if let Some(bank) = SpeechBank::from_stored(s, cfg) {
                return Ok(bank);
            }
        }
        let bank = SpeechBank::build(files, cfg, max_seconds, room, progress)?;
        if let Some(p) = &path {
            if let Err(e) = cache::write(p, key, &bank.to_stored()) {
                eprintln!("Could not keep the speech bank in {} ({e}); the next run embeds the speech again", p.display());
            }
        }
        Ok(bank)
    }

    fn to_stored(&self) -> cache::Stored {
        cache::Stored {
            header: vec![
                self.frames as f64,
                self.bins as f64,
                self.seconds,
                self.unreadable as f64,
            ],
            ints: self.starts.clone(),
            floats: self.rows.clone(),
        }
    }

    /// A stored bank, if it is whole and of these settings.
    fn from_stored(s: cache::Stored, cfg: &FeatureConfig) -> Option<SpeechBank> {
        let [frames, bins, seconds, unreadable] = s.header[..] else {
            return None;
        };
        let (frames, bins) = (frames as usize, bins as usize);
        if frames != cfg.n_frames() || bins != cfg.n_bins() || !s.floats.len().is_multiple_of(bins)
        {
            return None;
        }
        let rows = s.floats.len() / bins;
        if s.ints.iter().any(|&st| st as usize + frames > rows) {
            return None;
        }
        Some(SpeechBank {
            rows: s.floats,
            starts: s.ints,
            frames,
            bins,
            seconds,
            unreadable: unreadable as usize,
        })
    }

    /// Embeds `files` (up to `max_seconds` of audio, in the given order), each as a
    /// stream presents it ([`Room::present`]).
    fn build(
        files: &[&SpeechFile],
        cfg: &FeatureConfig,
        max_seconds: f64,
        room: &Room,
        progress: &indicatif::ProgressBar,
    ) -> Result<SpeechBank> {
        let mut rng = Rng::new(room.seed);
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
            let Ok(x) = wav::read_mono_16k(&f.path, 120.0) else {
                // Already named when the crop pool was read from the same files.
                bank.unreadable += 1;
                continue;
            };
            bank.seconds += x.len() as f64 / wav::SAMPLE_RATE as f64;
            let x = room.present(&x, cfg.clip_samples, &mut rng);
            bank.push(&fe.compute(&x));
        }
        Ok(bank)
    }

    /// A bank with nothing in it yet, of `cfg`'s windows.
    pub(crate) fn empty(cfg: &FeatureConfig) -> SpeechBank {
        SpeechBank {
            rows: Vec::new(),
            starts: Vec::new(),
            frames: cfg.n_frames(),
            bins: cfg.n_bins(),
            seconds: 0.0,
            unreadable: 0,
        }
    }

    /// Adds one recording's embeddings and its windows.
    pub(crate) fn push(&mut self, feats: &[f32]) {
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

    /// Window `i`'s first row in the bank (consecutive windows of one recording start
    /// on consecutive rows).
    pub fn start(&self, i: usize) -> u32 {
        self.starts[i]
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

    #[test]
    fn a_cached_bank_is_the_bank_and_other_settings_do_not_read_it() {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("LISTEN_CACHE_DIR", d.path());
        let wav = d.path().join("talk.wav");
        let x: Vec<f32> = (0..40_000).map(|i| (i as f32 * 0.05).sin() * 0.2).collect();
        wav::write_wav(&wav, &x, 16_000).unwrap();
        let f = SpeechFile {
            path: wav.clone(),
            group: "g".into(),
            split: crate::learn::dataset::Split::Train,
        };
        let cfg = FeatureConfig::speech_embedding(1000);
        let pb = indicatif::ProgressBar::hidden();
        let noise = NoiseBank::synthetic();
        let room = Room {
            noise: &noise,
            seed: 1,
        };
        let a = SpeechBank::cached(&[&f], &cfg, 3600.0, &room, &pb).unwrap();
        let files: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(files.len(), 2, "the bank is kept beside the audio");
        let b = SpeechBank::cached(&[&f], &cfg, 3600.0, &room, &pb).unwrap();
        assert_eq!((a.rows.clone(), a.starts.clone()), (b.rows, b.starts));
        // Other settings, or the audio changed: a new bank, not the kept one.
        let other = FeatureConfig::speech_embedding(400);
        let c = SpeechBank::cached(&[&f], &other, 3600.0, &room, &pb).unwrap();
        assert_eq!(c.frames, other.n_frames());
        assert_ne!(c.frames, a.frames);
        let elsewhere = Room {
            noise: &noise,
            seed: 2,
        };
        let e = SpeechBank::cached(&[&f], &cfg, 3600.0, &elsewhere, &pb).unwrap();
        assert_ne!(e.rows, a.rows, "another room is another bank");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 4);
        std::env::remove_var("LISTEN_CACHE_DIR");
    }
}
