//! The one streaming engine, whatever the audio comes from (microphone, WAV file, test),
//! in three stages:
//! - [`Converter`]: interleaved samples at the source's rate -> mono -> 16 kHz (rubato);
//! - [`Scorer`]: 16 kHz audio -> feature frames, each computed once as audio arrives
//!   ([`FeatureStream`]) -> every hop, the model on the last window -> posteriors;
//! - the [`Detector`]: posteriors -> detections.
//!
//! [`Engine`] runs the three in order on the thread that owns the model (live); a file
//! may run many scorers at once over parts of it (`session::run_file`).
use crate::audio::resample::StreamResampler;
use crate::audio::stream::FeatureStream;
use crate::audio::wav::{mix_to_mono, rms, SAMPLE_RATE};
use crate::live::detect::{Detection, Detector, DetectorConfig};
use crate::model::fused::FusedHeads;
use crate::model::Model;
use anyhow::{bail, Result};

/// Windows run through the model at once at most (a file's part holds hundreds; beyond
/// a few dozen a larger batch gains nothing and costs memory).
const MAX_BATCH: usize = 64;

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

/// Source audio -> 16 kHz mono.
pub struct Converter {
    channels: usize,
    resampler: StreamResampler,
    rate: u32,
    mono: Vec<f32>,
    out: Vec<f32>,
    level: f32,
}

impl Converter {
    pub fn new(rate: u32, channels: usize) -> Result<Self> {
        if channels == 0 {
            bail!("audio source has no channels");
        }
        Ok(Converter {
            channels,
            resampler: StreamResampler::new(rate, SAMPLE_RATE)?,
            rate,
            mono: Vec::with_capacity(8192),
            out: Vec::with_capacity(8192),
            level: 0.0,
        })
    }

    /// The 16 kHz samples that `interleaved` completes.
    pub fn push(&mut self, interleaved: &[f32]) -> Result<&[f32]> {
        mix_to_mono(interleaved, self.channels, &mut self.mono);
        if !self.mono.is_empty() {
            self.level = rms(&self.mono);
        }
        self.out.clear();
        self.resampler.process(&self.mono, &mut self.out)?;
        Ok(&self.out)
    }

    /// Output samples by which the resampler lags its input.
    pub fn delay(&self) -> u64 {
        self.resampler.delay() as u64
    }

    /// Forgets the audio so far (after a gap in it).
    pub fn reset(&mut self) -> Result<()> {
        self.resampler = StreamResampler::new(self.rate, SAMPLE_RATE)?;
        Ok(())
    }
}

/// A window's posteriors, with the 16 kHz sample its window ends at (counted from the
/// start of the scorer's audio).
pub type Scored = (u64, Vec<f32>);

/// 16 kHz audio -> the model's posteriors, one window per hop.
pub struct Scorer {
    model: Model,
    /// The model's heads fused for inference, where it has them.
    fused: Option<FusedHeads>,
    features: FeatureStream,
    /// Circular store of the last window's feature frames.
    frames: Vec<f32>,
    /// Scratch: the frames one push completes.
    new_frames: Vec<f32>,
    frame_head: usize,
    silent: Vec<f32>,
    /// Normalised windows waiting for the model (batched per push), and where each ends.
    batch: Vec<f32>,
    batch_ends: Vec<u64>,
    frames_since_run: usize,
    hop_frames: usize,
    /// 16 kHz samples in frames since the start (the end of the last frame).
    consumed: u64,
    runs: u64,
}

impl Scorer {
    pub fn new(model: Model, hop_ms: u32) -> Result<Self> {
        let f = model.card.features.clone();
        let mut features = FeatureStream::new(&f)?;
        let silent = features.silent_frame();
        let hop_frames = ((hop_ms as usize * SAMPLE_RATE as usize / 1000) / f.hop_length).max(1);
        let mut s = Scorer {
            frames: Vec::new(),
            new_frames: Vec::new(),
            frame_head: 0,
            silent,
            batch: Vec::with_capacity(f.n_frames() * f.n_bins() * 8),
            batch_ends: Vec::with_capacity(8),
            frames_since_run: 0,
            hop_frames,
            consumed: 0,
            runs: 0,
            features,
            fused: model.fused(),
            model,
        };
        s.reset();
        Ok(s)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// 16 kHz samples between two model runs.
    pub fn stride(&self) -> u64 {
        (self.hop_frames * self.model.card.features.hop_length) as u64
    }

    /// 16 kHz samples one window covers.
    pub fn window(&self) -> u64 {
        self.model.card.features.clip_samples as u64
    }

    pub fn runs(&self) -> u64 {
        self.runs
    }

    /// Starts again, as if from digital silence (a new stream, or after a gap).
    pub fn reset(&mut self) {
        let f = &self.model.card.features;
        self.features.reset();
        self.frames = (0..f.n_frames())
            .flat_map(|_| self.silent.iter().copied())
            .collect();
        self.frame_head = 0;
        self.frames_since_run = 0;
        self.consumed = 0;
    }

    /// Takes 16 kHz samples; appends the posteriors of every window they complete.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<Scored>) {
        let bins = self.model.card.features.n_bins();
        let hop = self.model.card.features.hop_length as u64;
        let mut new = std::mem::take(&mut self.new_frames);
        new.clear();
        self.features.push(samples, &mut new);
        let n_frames = self.frames.len() / bins;
        for row in new.chunks_exact(bins) {
            let slot = self.frame_head * bins;
            self.frames[slot..slot + bins].copy_from_slice(row);
            self.frame_head = (self.frame_head + 1) % n_frames;
            self.consumed += hop;
            self.frames_since_run += 1;
            if self.frames_since_run >= self.hop_frames {
                self.frames_since_run = 0;
                self.queue_window();
                if self.batch_ends.len() == MAX_BATCH {
                    self.run_model(out);
                }
            }
        }
        self.new_frames = new;
        self.run_model(out);
    }

    /// Copies the last window's frames (oldest first), normalised, into the batch.
    fn queue_window(&mut self) {
        let split = self.frame_head * self.model.card.features.n_bins();
        let at = self.batch.len();
        self.batch.extend_from_slice(&self.frames[split..]);
        self.batch.extend_from_slice(&self.frames[..split]);
        self.model.card.normalisation.apply(&mut self.batch[at..]);
        self.batch_ends.push(self.consumed);
    }

    /// One forward pass over every window queued during this push.
    fn run_model(&mut self, out: &mut Vec<Scored>) {
        if self.batch_ends.is_empty() {
            return;
        }
        let n = self.batch_ends.len();
        let probs = match &self.fused {
            Some(f) => self.model.fused_probabilities(f, &self.batch, n),
            None => self.model.probabilities(&self.batch, n),
        };
        self.runs += self.batch_ends.len() as u64;
        out.extend(self.batch_ends.drain(..).zip(probs));
        self.batch.clear();
    }
}

/// The three stages in order, on one thread: what live listening runs.
pub struct Engine {
    converter: Converter,
    scorer: Scorer,
    detector: Detector,
    detector_cfg: DetectorConfig,
    /// Source frames before the current stream began (audio pushed, and audio lost in
    /// gaps): times stay on the session's clock after a gap.
    base_frames: u64,
    /// Source frames pushed since then.
    pushed: u64,
    scored: Vec<Scored>,
    inference_delay_ms: u64,
    stall_ms: u64,
    record: bool,
    posteriors: Vec<(u64, Vec<f32>)>,
}

impl Engine {
    pub fn new(model: Model, input_rate: u32, channels: usize, cfg: EngineConfig) -> Result<Self> {
        let converter = Converter::new(input_rate, channels)?;
        Ok(Engine {
            detector: Detector::new(&model.card.labels, cfg.detector.clone()),
            detector_cfg: cfg.detector,
            scorer: Scorer::new(model, cfg.hop_ms)?,
            converter,
            base_frames: 0,
            pushed: 0,
            scored: Vec::new(),
            inference_delay_ms: cfg.inference_delay_ms,
            stall_ms: cfg.stall_ms,
            record: cfg.record_posteriors,
            posteriors: Vec::new(),
        })
    }

    pub fn model(&self) -> &Model {
        self.scorer.model()
    }

    pub fn detector(&self) -> &Detector {
        &self.detector
    }

    /// RMS level of the last pushed block (0..1).
    pub fn level(&self) -> f32 {
        self.converter.level
    }

    /// Model runs so far.
    pub fn runs(&self) -> u64 {
        self.scorer.runs()
    }

    /// Every window's (end time, posteriors) so far, when recording was asked for.
    pub fn take_posteriors(&mut self) -> Vec<(u64, Vec<f32>)> {
        std::mem::take(&mut self.posteriors)
    }

    /// The session time of the 16 kHz sample `at` of the current stream.
    fn ms_at(&self, at: u64) -> u64 {
        self.base_frames * 1000 / self.converter.rate as u64
            + at.saturating_sub(self.converter.delay()) * 1000 / SAMPLE_RATE as u64
    }

    /// Feeds interleaved samples; detections are appended to `out`.
    pub fn push(&mut self, interleaved: &[f32], out: &mut Vec<Detection>) -> Result<()> {
        self.pushed += (interleaved.len() / self.converter.channels) as u64;
        let samples = self.converter.push(interleaved)?;
        self.scorer.push(samples, &mut self.scored);
        self.debug_delays();
        for (end, p) in std::mem::take(&mut self.scored) {
            let t = self.ms_at(end);
            if let Some(d) = self.detector.update(&p, t) {
                out.push(d);
            }
            if self.record {
                self.posteriors.push((t, p));
            }
        }
        Ok(())
    }

    /// `frames` source frames were lost (the machine fell behind): the clock moves on by
    /// them, and every stage starts again from silence, so no window joins the audio
    /// before the gap to the audio after it.
    pub fn skip(&mut self, frames: u64) -> Result<()> {
        self.base_frames += self.pushed + frames;
        self.pushed = 0;
        self.converter.reset()?;
        self.scorer.reset();
        self.detector = Detector::new(&self.model().card.labels, self.detector_cfg.clone());
        Ok(())
    }

    fn debug_delays(&mut self) {
        let n = self.scored.len() as u64;
        if n == 0 {
            return;
        }
        if self.stall_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.stall_ms));
            self.stall_ms = 0;
        }
        if self.inference_delay_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(
                self.inference_delay_ms * n,
            ));
        }
    }
}
