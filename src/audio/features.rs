//! The one feature front-end, used by training, evaluation and live listening alike:
//! framing, a periodic Hann window, a real FFT (realfft on rustfft), and either a
//! log-mel filterbank (the default) or the tutorial's linear STFT magnitude.
//! Streaming computes one frame at a time with the same `frame_into` that whole
//! clips use, so training and serving cannot disagree.
use crate::audio::embedding::SpeechFrontEnd;
use anyhow::{bail, Result};
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    /// log(mel power + 1e-6), HTK mel scale, triangular filters without area normalisation.
    LogMel,
    /// |STFT| linear magnitude, as the tutorial's `tf.signal.stft` + `tf.abs`.
    StftMagnitude,
    /// Google's speech embedding ([`crate::audio::embedding`]): a frame is 96 numbers
    /// every 80 ms, each from the 775 ms before it.
    SpeechEmbedding,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct FeatureConfig {
    pub kind: FeatureKind,
    pub sample_rate: u32,
    /// Samples in one model input window: the lead, then a 1-s clip.
    pub clip_samples: usize,
    /// Quiet before the clip in the model's window (0 in older models). A training clip
    /// is a word said alone; with a lead, the model sees what came before a word in a
    /// stream, so a word inside running speech does not look like a command said alone.
    #[serde(default)]
    pub lead_samples: usize,
    pub n_fft: usize,
    pub win_length: usize,
    pub hop_length: usize,
    /// Mel bins (LogMel only).
    pub n_mels: usize,
    pub f_min: f32,
    pub f_max: f32,
}

impl FeatureConfig {
    /// 40 log-mel bins, 30 ms window, 10 ms hop: 98 frames per second.
    pub fn log_mel() -> Self {
        FeatureConfig {
            kind: FeatureKind::LogMel,
            sample_rate: 16_000,
            clip_samples: 16_000,
            lead_samples: 0,
            n_fft: 512,
            win_length: 480,
            hop_length: 160,
            n_mels: 40,
            f_min: 20.0,
            f_max: 7_600.0,
        }
    }

    /// The tutorial's STFT: frame 255, step 128, FFT 256 -> 124 frames x 129 bins.
    pub fn tutorial_stft() -> Self {
        FeatureConfig {
            kind: FeatureKind::StftMagnitude,
            sample_rate: 16_000,
            clip_samples: 16_000,
            lead_samples: 0,
            n_fft: 256,
            win_length: 255,
            hop_length: 128,
            n_mels: 0,
            f_min: 0.0,
            f_max: 8_000.0,
        }
    }

    /// Speech embeddings that cover `lead_ms` of what came before a 1-s clip, and the
    /// clip: the window is a whole number of 80-ms steps, its lead what is left after
    /// the clip (at least 352 samples: 4 embeddings).
    pub fn speech_embedding(lead_ms: u32) -> Self {
        use crate::audio::embedding::{HOP_SAMPLES, WINDOW_SAMPLES};
        let want = 16_000 + lead_ms as usize * 16;
        let steps = ((want - WINDOW_SAMPLES) as f64 / HOP_SAMPLES as f64).round() as usize;
        let clip_samples = WINDOW_SAMPLES + steps.max(3) * HOP_SAMPLES;
        FeatureConfig {
            kind: FeatureKind::SpeechEmbedding,
            sample_rate: 16_000,
            clip_samples,
            lead_samples: clip_samples - 16_000,
            n_fft: crate::audio::embedding::N_FFT,
            win_length: WINDOW_SAMPLES,
            hop_length: HOP_SAMPLES,
            n_mels: crate::audio::embedding::DIM,
            f_min: 0.0,
            f_max: 8_000.0,
        }
    }

    /// Values per frame.
    pub fn n_bins(&self) -> usize {
        match self.kind {
            FeatureKind::LogMel => self.n_mels,
            FeatureKind::StftMagnitude => self.n_fft / 2 + 1,
            FeatureKind::SpeechEmbedding => crate::audio::embedding::DIM,
        }
    }

    /// Frames in `samples` samples (no padding: frames lie wholly inside the signal).
    pub fn frames_for(&self, samples: usize) -> usize {
        if samples < self.win_length {
            0
        } else {
            1 + (samples - self.win_length) / self.hop_length
        }
    }

    /// Samples of a clip read from a file: the window less its lead.
    pub fn clip_part(&self) -> usize {
        self.clip_samples - self.lead_samples
    }

    /// A clip of [`Self::clip_part`] samples put in a window, after the lead's quiet.
    pub fn place(&self, clip: &[f32]) -> Vec<f32> {
        let mut w = vec![0.0; self.lead_samples];
        w.extend_from_slice(clip);
        w.resize(self.clip_samples, 0.0);
        w
    }

    /// Frames in one model input window.
    pub fn n_frames(&self) -> usize {
        self.frames_for(self.clip_samples)
    }

    pub fn validate(&self) -> Result<()> {
        if self.lead_samples >= self.clip_samples {
            bail!(
                "feature settings are inconsistent (lead of {} samples in a window of {})",
                self.lead_samples,
                self.clip_samples
            );
        }
        if self.sample_rate != crate::audio::wav::SAMPLE_RATE {
            bail!(
                "feature sample rate {} Hz is not supported (only 16000)",
                self.sample_rate
            );
        }
        if self.kind == FeatureKind::SpeechEmbedding {
            use crate::audio::embedding::{DIM, HOP_SAMPLES, WINDOW_SAMPLES};
            if self.win_length != WINDOW_SAMPLES
                || self.hop_length != HOP_SAMPLES
                || self.n_mels != DIM
                || self.clip_samples < WINDOW_SAMPLES
            {
                bail!(
                    "speech embedding settings are not the embedding's own (window {}, hop {}, {} values)",
                    self.win_length,
                    self.hop_length,
                    self.n_mels
                );
            }
        } else if self.win_length == 0 || self.win_length > self.n_fft || self.hop_length == 0 {
            bail!(
                "feature settings are inconsistent (window {}, FFT {}, hop {})",
                self.win_length,
                self.n_fft,
                self.hop_length
            );
        }
        if self.n_frames() == 0 || self.n_fft > 1 << 16 {
            bail!(
                "feature settings give no frames for a {}-sample window",
                self.clip_samples
            );
        }
        if self.kind == FeatureKind::LogMel
            && (self.n_mels == 0
                || self.n_mels > 256
                || !(self.f_min >= 0.0
                    && self.f_min < self.f_max
                    && self.f_max <= self.sample_rate as f32 / 2.0))
        {
            bail!(
                "mel settings are inconsistent ({} bins, {}-{} Hz)",
                self.n_mels,
                self.f_min,
                self.f_max
            );
        }
        Ok(())
    }
}

fn hz_to_mel(f: f32) -> f32 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f32) -> f32 {
    700.0 * (10f32.powf(m / 2595.0) - 1.0)
}

/// Triangular mel filters over the `n_fft/2+1` FFT bins, as (first bin, weights).
fn mel_filters(cfg: &FeatureConfig) -> Vec<(usize, Vec<f32>)> {
    let n_freqs = cfg.n_fft / 2 + 1;
    let bin_hz: Vec<f32> = (0..n_freqs)
        .map(|k| k as f32 * cfg.sample_rate as f32 / cfg.n_fft as f32)
        .collect();
    let (m_lo, m_hi) = (hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max));
    let pts: Vec<f32> = (0..cfg.n_mels + 2)
        .map(|i| mel_to_hz(m_lo + (m_hi - m_lo) * i as f32 / (cfg.n_mels + 1) as f32))
        .collect();
    (0..cfg.n_mels)
        .map(|m| {
            let (l, c, r) = (pts[m], pts[m + 1], pts[m + 2]);
            let w: Vec<f32> = bin_hz
                .iter()
                .map(|&f| {
                    let up = (f - l) / (c - l);
                    let down = (r - f) / (r - c);
                    up.min(down).max(0.0)
                })
                .collect();
            let first = w.iter().position(|&v| v > 0.0).unwrap_or(0);
            let last = w.iter().rposition(|&v| v > 0.0).unwrap_or(0);
            (first, w[first..=last.max(first)].to_vec())
        })
        .collect()
}

/// Computes feature frames. Owns its FFT plan and scratch buffers; not shared between threads.
pub struct FeatureExtractor {
    cfg: FeatureConfig,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
    filters: Vec<(usize, Vec<f32>)>,
    buf: Vec<f32>,
    spec: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
    power: Vec<f32>,
    /// The speech embedding, for [`FeatureKind::SpeechEmbedding`].
    embedding: Option<SpeechFrontEnd>,
}

impl FeatureExtractor {
    pub fn new(cfg: &FeatureConfig) -> Result<Self> {
        cfg.validate()?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(cfg.n_fft);
        // Periodic Hann (torch.hann_window / tf.signal.hann_window default).
        let window = (0..cfg.win_length)
            .map(|i| {
                0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / cfg.win_length as f32).cos()
            })
            .collect();
        let filters = if cfg.kind == FeatureKind::LogMel {
            mel_filters(cfg)
        } else {
            Vec::new()
        };
        let embedding = match cfg.kind {
            FeatureKind::SpeechEmbedding => Some(SpeechFrontEnd::load()?),
            _ => None,
        };
        Ok(FeatureExtractor {
            embedding,
            window,
            buf: fft.make_input_vec(),
            spec: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            power: vec![0.0; cfg.n_fft / 2 + 1],
            fft,
            filters,
            cfg: cfg.clone(),
        })
    }

    pub fn config(&self) -> &FeatureConfig {
        &self.cfg
    }

    /// The speech front end, for speech-embedding features.
    pub fn speech(&mut self) -> Option<&mut SpeechFrontEnd> {
        self.embedding.as_mut()
    }

    /// One frame: `frame` holds `win_length` samples; `out` receives `n_bins` values.
    pub fn frame_into(&mut self, frame: &[f32], out: &mut [f32]) {
        debug_assert_eq!(frame.len(), self.cfg.win_length);
        if let Some(e) = &mut self.embedding {
            return e.frame_into(frame, out);
        }
        for (b, (&x, &w)) in self.buf.iter_mut().zip(frame.iter().zip(&self.window)) {
            *b = x * w;
        }
        for b in &mut self.buf[self.cfg.win_length..] {
            *b = 0.0;
        }
        // Lengths are fixed at construction, so this cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut self.buf, &mut self.spec, &mut self.scratch);
        match self.cfg.kind {
            FeatureKind::StftMagnitude => {
                for (o, c) in out.iter_mut().zip(&self.spec) {
                    *o = c.norm();
                }
            }
            FeatureKind::SpeechEmbedding => unreachable!("computed by the speech front end"),
            FeatureKind::LogMel => {
                for (p, c) in self.power.iter_mut().zip(&self.spec) {
                    *p = c.norm_sqr();
                }
                for (o, (first, w)) in out.iter_mut().zip(&self.filters) {
                    let e: f32 = w
                        .iter()
                        .zip(&self.power[*first..])
                        .map(|(a, b)| a * b)
                        .sum();
                    *o = (e + 1e-6).ln();
                }
            }
        }
    }

    /// All frames of a signal, row-major `[frames][n_bins]`.
    pub fn compute(&mut self, signal: &[f32]) -> Vec<f32> {
        if let Some(e) = &mut self.embedding {
            // The network runs once over the whole signal: the same numbers as frame
            // by frame, a fifth of the work for a 2-s window.
            return e.compute(signal);
        }
        let n = self.cfg.frames_for(signal.len());
        let bins = self.cfg.n_bins();
        let mut out = vec![0.0; n * bins];
        for t in 0..n {
            let s = t * self.cfg.hop_length;
            let (win, hop) = (self.cfg.win_length, bins);
            let frame = &signal[s..s + win];
            // split borrow: copy the frame reference before the mutable call
            let row = &mut out[t * hop..(t + 1) * hop];
            self.frame_into(frame, row);
        }
        out
    }
}

/// Per-bin normalisation fitted on the training split and stored in the model card.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Normalisation {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Normalisation {
    /// Fits mean and standard deviation per bin over row-major `[frames][bins]` blocks.
    pub fn fit<'a>(features: impl Iterator<Item = &'a [f32]>, bins: usize) -> Self {
        let mut sum = vec![0f64; bins];
        let mut sq = vec![0f64; bins];
        let mut n = 0f64;
        for f in features {
            for row in f.chunks_exact(bins) {
                for (i, &v) in row.iter().enumerate() {
                    sum[i] += v as f64;
                    sq[i] += (v as f64) * (v as f64);
                }
                n += 1.0;
            }
        }
        let n = n.max(1.0);
        let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
        let std = sq
            .iter()
            .zip(&mean)
            .map(|(q, &m)| ((q / n - (m as f64).powi(2)).max(0.0).sqrt() as f32).max(1e-3))
            .collect();
        Normalisation { mean, std }
    }

    pub fn apply(&self, features: &mut [f32]) {
        let bins = self.mean.len();
        for row in features.chunks_exact_mut(bins) {
            for ((v, m), s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = (*v - m) / s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_match_the_settings() {
        let c = FeatureConfig::log_mel();
        assert_eq!(c.n_frames(), 98);
        assert_eq!(c.n_bins(), 40);
        let t = FeatureConfig::tutorial_stft();
        assert_eq!((t.n_frames(), t.n_bins()), (124, 129));
    }

    #[test]
    fn a_tone_lights_the_right_mel_bin() {
        let c = FeatureConfig::log_mel();
        let mut fe = FeatureExtractor::new(&c).unwrap();
        let x: Vec<f32> = (0..16000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16000.0).sin())
            .collect();
        let f = fe.compute(&x);
        let row = &f[40 * 50..40 * 51];
        let argmax = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        // 1 kHz on a 20-7600 Hz HTK scale with 40 bins sits near bin 12.
        let centre = |m: usize| {
            mel_to_hz(
                hz_to_mel(20.0) + (hz_to_mel(7600.0) - hz_to_mel(20.0)) * (m + 1) as f32 / 41.0,
            )
        };
        assert!(
            (centre(argmax) - 1000.0).abs() < 120.0,
            "bin {argmax} centred at {}",
            centre(argmax)
        );
    }

    #[test]
    fn streaming_frames_equal_clip_frames() {
        let c = FeatureConfig::log_mel();
        let mut fe = FeatureExtractor::new(&c).unwrap();
        let mut r = crate::util::Rng::new(3);
        let x: Vec<f32> = (0..16000).map(|_| r.normal() * 0.1).collect();
        let all = fe.compute(&x);
        let mut one = vec![0.0; 40];
        fe.frame_into(&x[160 * 17..160 * 17 + 480], &mut one);
        assert_eq!(&all[40 * 17..40 * 18], &one[..]);
    }

    #[test]
    fn normalisation_gives_zero_mean_unit_std() {
        let data: Vec<f32> = (0..400)
            .map(|i| (i % 4) as f32 * 2.0 + (i / 4 % 3) as f32)
            .collect();
        let n = Normalisation::fit(std::iter::once(&data[..]), 4);
        let mut d = data.clone();
        n.apply(&mut d);
        for b in 0..4 {
            let col: Vec<f32> = d.iter().skip(b).step_by(4).copied().collect();
            let m = col.iter().sum::<f32>() / col.len() as f32;
            let v = col.iter().map(|x| (x - m).powi(2)).sum::<f32>() / col.len() as f32;
            assert!(m.abs() < 1e-4 && (v - 1.0).abs() < 1e-3, "bin {b}: {m} {v}");
        }
    }
}
