//! The one streaming engine, whatever the audio comes from (microphone, WAV file, test):
//! interleaved samples at the source's rate -> mono -> 16 kHz (rubato) -> feature frames
//! computed once each as audio arrives -> every hop, the model on the last second ->
//! the detector. It runs on the thread that owns the model.
use crate::audio::features::FeatureExtractor;
use crate::audio::resample::StreamResampler;
use crate::audio::wav::{mix_to_mono, rms, SAMPLE_RATE};
use crate::live::detect::{Detection, Detector, DetectorConfig};
use crate::model::Model;
use anyhow::{bail, Result};

/// Frames computed in one call at most (bounds the front end's memory on a long push).
const MAX_FRAMES_AT_ONCE: usize = 64;

#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How often the model looks at the last second.
    pub hop_ms: u32,
    pub detector: DetectorConfig,
    /// Debugging aid: sleep this long after every model run (simulates a slow machine).
    pub inference_delay_ms: u64,
    /// Debugging aid: one stall this long at the first model run (a machine that
    /// hiccups once), to check that overruns are counted and the engine recovers.
    pub stall_ms: u64,
    /// Keep every window's posteriors (for scoring sweeps over a file).
    pub record_posteriors: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            hop_ms: 50,
            detector: DetectorConfig::default(),
            inference_delay_ms: 0,
            stall_ms: 0,
            record_posteriors: false,
        }
    }
}

pub struct Engine {
    model: Model,
    fe: FeatureExtractor,
    detector: Detector,
    resampler: StreamResampler,
    channels: usize,
    /// Scratch: mono at the source rate, and 16 kHz output of the resampler.
    mono: Vec<f32>,
    resampled: Vec<f32>,
    /// 16 kHz samples not yet consumed by a feature frame (starts with `win - hop` of context).
    pending: Vec<f32>,
    /// Circular store of the last `n_frames` feature frames.
    frames: Vec<f32>,
    frame_head: usize,
    /// Contiguous, normalised windows waiting for the model (batched per push), and the
    /// stream time at the end of each.
    batch: Vec<f32>,
    batch_times: Vec<u64>,
    frames_since_run: usize,
    hop_frames: usize,
    /// 16 kHz samples consumed into frames since the start (for timestamps).
    consumed: u64,
    /// Samples of latency the resampler adds (subtracted from timestamps).
    delay: u64,
    inference_delay_ms: u64,
    stall_ms: u64,
    level: f32,
    runs: u64,
    record: bool,
    posteriors: Vec<(u64, Vec<f32>)>,
}

impl Engine {
    pub fn new(model: Model, input_rate: u32, channels: usize, cfg: EngineConfig) -> Result<Self> {
        if channels == 0 {
            bail!("audio source has no channels");
        }
        let f = model.card.features.clone();
        let mut fe = FeatureExtractor::new(&f)?;
        let resampler = StreamResampler::new(input_rate, SAMPLE_RATE)?;
        let (n_frames, bins) = (f.n_frames(), f.n_bins());
        // Start from digital silence so that a word in the first second is still heard.
        let mut silent = vec![0.0; bins];
        fe.frame_into(&vec![0.0; f.win_length], &mut silent);
        let frames: Vec<f32> = (0..n_frames).flat_map(|_| silent.iter().copied()).collect();
        let hop_frames =
            ((cfg.hop_ms as usize * SAMPLE_RATE as usize / 1000) / f.hop_length).max(1);
        let delay = resampler.delay() as u64;
        Ok(Engine {
            detector: Detector::new(&model.card.labels, cfg.detector.clone()),
            fe,
            resampler,
            channels,
            mono: Vec::with_capacity(8192),
            resampled: Vec::with_capacity(8192),
            pending: vec![0.0; f.win_length - f.hop_length],
            frames,
            frame_head: 0,
            batch: Vec::with_capacity(n_frames * bins * 8),
            batch_times: Vec::with_capacity(8),
            frames_since_run: 0,
            hop_frames,
            consumed: 0,
            delay,
            inference_delay_ms: cfg.inference_delay_ms,
            stall_ms: cfg.stall_ms,
            level: 0.0,
            runs: 0,
            record: cfg.record_posteriors,
            posteriors: Vec::new(),
            model,
        })
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// RMS level of the last pushed block (0..1).
    pub fn level(&self) -> f32 {
        self.level
    }

    /// Model runs so far.
    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Every window's (end time, posteriors) so far, when recording was asked for.
    pub fn take_posteriors(&mut self) -> Vec<(u64, Vec<f32>)> {
        std::mem::take(&mut self.posteriors)
    }

    /// Milliseconds of the source that have been analysed.
    pub fn time_ms(&self) -> u64 {
        self.consumed.saturating_sub(self.delay) * 1000 / SAMPLE_RATE as u64
    }

    /// Feeds interleaved samples; detections are appended to `out`.
    pub fn push(&mut self, interleaved: &[f32], out: &mut Vec<Detection>) -> Result<()> {
        mix_to_mono(interleaved, self.channels, &mut self.mono);
        if !self.mono.is_empty() {
            self.level = rms(&self.mono);
        }
        self.resampled.clear();
        self.resampler.process(&self.mono, &mut self.resampled)?;
        self.pending.extend_from_slice(&self.resampled);
        let hop = self.fe.config().hop_length;
        let bins = self.fe.config().n_bins();
        let n_frames = self.frames.len() / bins;
        // Every whole new frame in one call: the same numbers as frame by frame, and the
        // speech embedding's network then runs once over a long block of a file.
        let new = self.fe.config().frames_for(self.pending.len());
        let win = self.fe.config().win_length;
        let mut computed = Vec::with_capacity(new * bins);
        for first in (0..new).step_by(MAX_FRAMES_AT_ONCE) {
            let n = MAX_FRAMES_AT_ONCE.min(new - first);
            let span = &self.pending[first * hop..(first + n - 1) * hop + win];
            computed.extend(self.fe.compute(span));
        }
        for row in computed.chunks_exact(bins) {
            let slot = self.frame_head * bins;
            self.frames[slot..slot + bins].copy_from_slice(row);
            self.frame_head = (self.frame_head + 1) % n_frames;
            self.consumed += hop as u64;
            self.frames_since_run += 1;
            if self.frames_since_run >= self.hop_frames {
                self.frames_since_run = 0;
                self.queue_window();
            }
        }
        self.pending.drain(..new * hop);
        self.run_model(out);
        Ok(())
    }

    /// Copies the last second of frames (oldest first), normalised, into the batch.
    fn queue_window(&mut self) {
        let bins = self.fe.config().n_bins();
        let n = self.frames.len();
        let split = self.frame_head * bins;
        let at = self.batch.len();
        self.batch.extend_from_slice(&self.frames[split..]);
        self.batch.extend_from_slice(&self.frames[..split]);
        self.model
            .card
            .normalisation
            .apply(&mut self.batch[at..at + n]);
        self.batch_times.push(self.time_ms());
    }

    /// One forward pass over every window queued during this push, then the detector
    /// sees them in order.
    fn run_model(&mut self, out: &mut Vec<Detection>) {
        if self.batch_times.is_empty() {
            return;
        }
        let probs = self
            .model
            .probabilities(&self.batch, self.batch_times.len());
        self.runs += self.batch_times.len() as u64;
        if self.stall_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.stall_ms));
            self.stall_ms = 0;
        }
        if self.inference_delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(
                self.inference_delay_ms * self.batch_times.len() as u64,
            ));
        }
        for (p, &t) in probs.iter().zip(&self.batch_times) {
            if let Some(d) = self.detector.update(p, t) {
                out.push(d);
            }
            if self.record {
                self.posteriors.push((t, p.clone()));
            }
        }
        self.batch.clear();
        self.batch_times.clear();
    }
}
