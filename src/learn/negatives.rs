//! Training against speech that is not a command (`--train DIR --negatives SPEECH`):
//! 1-s crops of running speech, other words and other languages as `_unknown_`, the
//! same speech under commands (a command said while a TV talks), and hard-negative
//! mining: the model in training is run over the training split's speech, window by
//! window as the streaming engine sees it, and the windows where a command fires or
//! nearly fires become `_unknown_` examples for the epochs after. Hands on to training:
//! the crop pools and, per mining round, its figures for the card.
use crate::audio::features::{FeatureConfig, FeatureExtractor, FeatureKind, Normalisation};
use crate::audio::wav::{self, rms};
use crate::learn::augment::NoiseBank;
use crate::learn::dataset::Split;
use crate::learn::speech::{self, CropPool, SpeechFile, SpeechScan};
use crate::learn::speech_bank::{Room, SpeechBank};
use crate::model::Model;
use crate::util::Rng;
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where training's speech that is not a command comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum NegativesFrom {
    /// A folder of recordings (`--negatives DIR`).
    Folder(PathBuf),
    /// The bank built into listen ([`crate::learn::shipped_negatives`]), its training part:
    /// for `--train-words`, whose users have no folder of speech.
    Shipped,
}

impl NegativesFrom {
    /// What the card and the log call it.
    pub fn name(&self) -> String {
        match self {
            NegativesFrom::Folder(d) => d.file_name().map_or_else(
                || d.display().to_string(),
                |n| n.to_string_lossy().to_string(),
            ),
            NegativesFrom::Shipped => "the bank built into listen".to_string(),
        }
    }
}

/// Crops of training speech held in memory at most (16-bit: ~0.5 GB at 1 s).
pub const POOL_MAX: usize = 16_000;
/// Mined windows kept at most (the newest round replaces the oldest beyond it).
pub const HARD_MAX: usize = 6_000;
/// A window "nearly fires" when a command's probability reaches this.
pub const MINE_THRESHOLD: f32 = 0.3;
/// Share of command examples mixed over speech.
pub const OVER_SPEECH_SHARE: f32 = 0.25;
/// How far the mining window moves.
const MINE_HOP_MS: usize = 100;
/// Seconds of training speech each mining round runs over.
const MINE_SECONDS: f64 = 4.0 * 3600.0;

#[derive(Clone, Debug, Serialize)]
pub struct MiningRound {
    pub epoch: usize,
    pub hours: f64,
    pub windows: usize,
    /// Windows where a command reached [`MINE_THRESHOLD`].
    pub near_fires: usize,
    /// The same per hour of speech: falls as the model learns to stay quiet.
    pub near_fires_per_hour: f64,
    pub kept: usize,
    /// Recordings that could not be read (skipped).
    pub unreadable: usize,
}

pub struct Negatives {
    pub scan: SpeechScan,
    pub pool: Arc<CropPool>,
    pub hard: Arc<CropPool>,
    pub rounds: Vec<MiningRound>,
    /// Models on the speech embedding: the training speech embedded once; its windows
    /// replace the crops as `_unknown_` examples, and mined windows are its indices.
    pub bank: Option<Arc<SpeechBank>>,
    pub hard_windows: Arc<Vec<u32>>,
}

/// Hours of training speech a speech bank holds at most (~14 MB an hour).
const BANK_SECONDS: f64 = 12.0 * 3600.0;

impl Negatives {
    /// Scans `dir` and takes crops of its training split, one recording at a time;
    /// for a model on the speech embedding, embeds the training split too (`progress`
    /// counts its recordings).
    pub fn load(
        dir: &Path,
        commands: &[String],
        cfg: &FeatureConfig,
        seed: u64,
        noise: &NoiseBank,
        progress: impl Fn(u64) -> indicatif::ProgressBar,
    ) -> Result<Negatives> {
        let scan = speech::scan(dir, commands)?;
        let mut train = scan.of_split(Split::Train);
        let mut rng = Rng::new(seed ^ 0x4e_6567);
        let len = cfg.clip_samples;
        let embedded = cfg.kind == FeatureKind::SpeechEmbedding;
        // With a bank the crops only go under commands: a quarter as many do.
        let most = if embedded { POOL_MAX / 4 } else { POOL_MAX };
        let pool = CropPool::from_files(&train, len, 1.0, most, &mut rng);
        let bank = if embedded {
            rng.shuffle(&mut train);
            let pb = progress(train.len() as u64);
            let room = Room {
                noise,
                seed: seed ^ 0x726f_6f6d,
            };
            let b = SpeechBank::cached(&train, cfg, BANK_SECONDS, &room, &pb)?;
            pb.finish_and_clear();
            Some(Arc::new(b))
        } else {
            None
        };
        Ok(Negatives {
            scan,
            pool: Arc::new(pool),
            hard: Arc::new(CropPool::new(len)),
            rounds: Vec::new(),
            bank,
            hard_windows: Arc::new(Vec::new()),
        })
    }

    /// The training part of the bank built into listen, leaving out every recording that
    /// says one of `commands`: `_unknown_` windows and mining, with no audio (no crops
    /// under commands, no validation speech).
    pub fn shipped(commands: &[String], cfg: &FeatureConfig) -> Result<Negatives> {
        if cfg.kind != FeatureKind::SpeechEmbedding {
            anyhow::bail!("the negatives built into listen are speech embeddings: train a model on the speech embedding (--arch embedding-head-x3)");
        }
        let shipped = crate::learn::shipped_negatives::Shipped::bundled()?;
        let (bank, left_out) =
            shipped.bank(cfg, commands, crate::learn::shipped_negatives::Part::Train)?;
        Ok(Negatives {
            scan: SpeechScan {
                with_command: left_out,
                ..Default::default()
            },
            pool: Arc::new(CropPool::new(cfg.clip_samples)),
            hard: Arc::new(CropPool::new(cfg.clip_samples)),
            rounds: Vec::new(),
            bank: Some(Arc::new(bank)),
            hard_windows: Arc::new(Vec::new()),
        })
    }

    /// Fixed crops of the validation split's speech (so that early stopping weighs
    /// staying quiet too).
    pub fn validation_crops(
        &self,
        len: usize,
        count: usize,
        seed: u64,
    ) -> (Vec<Vec<f32>>, Vec<String>) {
        let files = self.scan.of_split(Split::Validation);
        let pool = CropPool::from_files(&files, len, 2.0, count, &mut Rng::new(seed ^ 0x76_616c));
        ((0..pool.len()).map(|i| pool.get(i)).collect(), pool.skipped)
    }

    /// One mining round at `epoch`: runs `model` over a share of the training speech
    /// and keeps the windows that nearly fire.
    pub fn mine(
        &mut self,
        model: &Model,
        norm: &Normalisation,
        epoch: usize,
        seed: u64,
    ) -> Result<&MiningRound> {
        let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(epoch as u64));
        if let Some(bank) = &self.bank {
            let (found, mut round) = mine_bank(model, norm, bank, &mut rng);
            round.epoch = epoch;
            let mut hard: Vec<u32> = found;
            hard.extend(self.hard_windows.iter().copied());
            hard.truncate(HARD_MAX);
            round.kept = hard.len();
            self.hard_windows = Arc::new(hard);
            self.rounds.push(round);
            return Ok(self.rounds.last().expect("just pushed"));
        }
        let mut files = self.scan.of_split(Split::Train);
        rng.shuffle(&mut files);
        let (found, mut round) = mine_files(model, norm, &files, MINE_SECONDS, &mut rng)?;
        round.epoch = epoch;
        // The newest windows first: they are what the model gets wrong now.
        let mut hard = CropPool::new(self.hard.len);
        for x in found.iter().take(HARD_MAX) {
            hard.push(x);
        }
        for i in 0..self.hard.len() {
            if hard.len() >= HARD_MAX {
                break;
            }
            hard.push(&self.hard.get(i));
        }
        round.kept = hard.len();
        self.hard = Arc::new(hard);
        self.rounds.push(round);
        Ok(self.rounds.last().expect("just pushed"))
    }
}

/// Runs `model` over `files` (up to `seconds` of audio) as the streaming engine sees
/// them: a window of the model's length every 100 ms. Returns the waveforms of the
/// windows where a command's probability reached [`MINE_THRESHOLD`], shuffled.
pub fn mine_files(
    model: &Model,
    norm: &Normalisation,
    files: &[&SpeechFile],
    seconds: f64,
    rng: &mut Rng,
) -> Result<(Vec<Vec<f32>>, MiningRound)> {
    let cfg = model.card.features.clone();
    let mut fe = FeatureExtractor::new(&cfg)?;
    let (frames, bins, hop) = (cfg.n_frames(), cfg.n_bins(), cfg.hop_length);
    let commands: Vec<usize> = (0..model.card.labels.len())
        .filter(|&i| model.card.is_command(i))
        .collect();
    let mut found = Vec::new();
    let (mut done, mut windows, mut near, mut unreadable) = (0.0, 0usize, 0usize, 0usize);
    for f in files {
        if done >= seconds {
            break;
        }
        let Ok(mut x) = wav::read_mono_16k(&f.path, 120.0) else {
            // Already named when the pool was cropped from the same files.
            unreadable += 1;
            continue;
        };
        // A recording shorter than a window is seen as a stream sees it: after quiet.
        if x.len() < cfg.clip_samples {
            let mut padded = vec![0.0; cfg.clip_samples - x.len()];
            padded.extend_from_slice(&x);
            x = padded;
        }
        done += x.len() as f64 / wav::SAMPLE_RATE as f64;
        let mut feats = fe.compute(&x);
        norm.apply(&mut feats);
        let total = feats.len() / bins;
        let starts: Vec<usize> = (0..total.saturating_sub(frames) + 1)
            .step_by((MINE_HOP_MS * wav::SAMPLE_RATE as usize / 1000 / hop).max(1))
            .collect();
        for batch in starts.chunks(256) {
            let mut xs = Vec::with_capacity(batch.len() * frames * bins);
            for &s in batch {
                xs.extend_from_slice(&feats[s * bins..(s + frames) * bins]);
            }
            for (&s, p) in batch.iter().zip(model.probabilities(&xs, batch.len())) {
                windows += 1;
                if commands.iter().any(|&c| p[c] >= MINE_THRESHOLD) {
                    near += 1;
                    let a = s * hop;
                    let mut w = x[a..(a + cfg.clip_samples).min(x.len())].to_vec();
                    w.resize(cfg.clip_samples, 0.0);
                    found.push(w);
                }
            }
        }
    }
    rng.shuffle(&mut found);
    let hours = done / 3600.0;
    Ok((
        found,
        MiningRound {
            epoch: 0,
            hours,
            windows,
            near_fires: near,
            near_fires_per_hour: if hours > 0.0 {
                near as f64 / hours
            } else {
                0.0
            },
            kept: 0,
            unreadable,
        },
    ))
}

/// [`mine_files`] over a speech bank: the head alone over every window (one every
/// 80 ms). Returns the indices of the windows that nearly fire, shuffled.
pub fn mine_bank(
    model: &Model,
    norm: &Normalisation,
    bank: &SpeechBank,
    rng: &mut Rng,
) -> (Vec<u32>, MiningRound) {
    let commands: Vec<usize> = (0..model.card.labels.len())
        .filter(|&i| model.card.is_command(i))
        .collect();
    let mut found = Vec::new();
    let all: Vec<usize> = (0..bank.len()).collect();
    for batch in all.chunks(1024) {
        let mut xs = Vec::with_capacity(batch.len() * bank.window(0).len());
        for &i in batch {
            xs.extend_from_slice(bank.window(i));
        }
        norm.apply(&mut xs);
        for (&i, p) in batch.iter().zip(model.probabilities(&xs, batch.len())) {
            if commands.iter().any(|&c| p[c] >= MINE_THRESHOLD) {
                found.push(i as u32);
            }
        }
    }
    rng.shuffle(&mut found);
    let hours = bank.hours();
    let round = MiningRound {
        epoch: 0,
        hours,
        windows: bank.len(),
        near_fires: found.len(),
        near_fires_per_hour: if hours > 0.0 {
            found.len() as f64 / hours
        } else {
            0.0
        },
        kept: 0,
        unreadable: bank.unreadable,
    };
    (found, round)
}

/// Mixes `speech` under `x` so that `x` stands `snr_db` above it: a command said while
/// someone else talks.
pub fn mix_under(x: &mut [f32], speech: &[f32], snr_db: f32) {
    let (sx, ss) = (rms(x), rms(speech));
    if sx <= 1e-6 || ss <= 1e-6 {
        return;
    }
    let g = sx / ss / 10f32.powf(snr_db / 20.0);
    for (a, b) in x.iter_mut().zip(speech) {
        *a += b * g;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mining_sees_recordings_shorter_than_a_window() {
        let arch = crate::model::Arch::default_tcresnet();
        let mut f = arch.default_features();
        f.lead_samples = 6400;
        f.clip_samples += 6400;
        let norm = Normalisation {
            mean: vec![0.0; 40],
            std: vec![1.0; 40],
        };
        let labels = vec!["_unknown_".to_string(), "left".to_string()];
        let card = crate::model::ModelCard::new(arch, labels, f, norm.clone());
        let model = Model::new(card, tch::Device::Cpu).unwrap();
        let d = tempfile::tempdir().unwrap();
        let (short, long) = (d.path().join("short.wav"), d.path().join("long.wav"));
        let tone = |n: usize| {
            (0..n)
                .map(|i| (i as f32 * 0.2).sin() * 0.3)
                .collect::<Vec<f32>>()
        };
        wav::write_wav(&short, &tone(8000), 16000).unwrap();
        wav::write_wav(&long, &tone(48000), 16000).unwrap();
        let files: Vec<SpeechFile> = [short, long]
            .into_iter()
            .map(|path| SpeechFile {
                path,
                group: "g".into(),
                split: Split::Train,
            })
            .collect();
        let refs: Vec<&SpeechFile> = files.iter().collect();
        let (found, round) = mine_files(&model, &norm, &refs, 3600.0, &mut Rng::new(1)).unwrap();
        // 0.5 s: one window; 3 s: one every 100 ms while a 1.4 s window fits.
        assert_eq!(round.windows, 1 + 17);
        assert!(found.iter().all(|w| w.len() == 22400));
        assert_eq!(round.near_fires, found.len());
    }

    #[test]
    fn speech_is_mixed_at_the_asked_level() {
        let mut x: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.1).sin() * 0.5).collect();
        let s: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.37).cos() * 0.05).collect();
        let before = x.clone();
        mix_under(&mut x, &s, 10.0);
        let added: Vec<f32> = x.iter().zip(&before).map(|(a, b)| a - b).collect();
        let snr = 20.0 * (rms(&before) / rms(&added)).log10();
        assert!((snr - 10.0).abs() < 0.01, "snr {snr}");
    }
}
