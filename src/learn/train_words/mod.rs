//! `listen --train-words lights,music`: a model of new words with no recording, in
//! named steps:
//!
//! 1. [`clips`]: the words checked, then said by many synthetic voices ([`voices`]),
//!    with sound-alikes of each word as `_unknown_` (every clip cached);
//! 2. training as `--train` does it ([`crate::learn::train`]) on those clips, the bundled
//!    model's network on the speech embedding, against the negatives built into listen
//!    ([`shipped_negatives`]) less any recording that says a new word;
//! 3. [`detector`]: its settings chosen on held-out voices and held-out talk;
//! 4. the card: the detector, and that the model was trained without recordings (or
//!    with how many of the user's own takes).
//!
//! [`voices`]: crate::learn::voices
//! [`shipped_negatives`]: crate::learn::shipped_negatives
pub mod clips;
pub mod detector;

use crate::learn::negatives::NegativesFrom;
use crate::learn::report::Report;
use crate::learn::train::{self, log, TrainOptions};
use crate::learn::voices;
use crate::model::{self, Arch, Model, SILENCE, UNKNOWN};
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

#[derive(Clone, Debug)]
pub struct TrainWordsOptions {
    /// `--train-words`, as given: words or short phrases, comma-separated.
    pub words: String,
    pub out: PathBuf,
    /// Synthetic voices saying each word.
    pub voices: usize,
    /// The user's takes (`--takes DIR`: DIR/WORD/*.wav), added to the voices.
    pub takes: Option<PathBuf>,
    pub epochs: usize,
    pub seed: u64,
    pub threads: usize,
    pub quiet: bool,
}

impl TrainWordsOptions {
    pub fn new(words: &str, out: PathBuf) -> Self {
        TrainWordsOptions {
            words: words.to_string(),
            out,
            voices: 200,
            takes: None,
            epochs: 30,
            seed: 1,
            threads: 2,
            quiet: false,
        }
    }
}

pub struct TrainWordsOutcome {
    /// On the held-out synthetic voices.
    pub report: Report,
    pub choice: detector::Choice,
    pub interrupted: bool,
    pub seconds: f64,
}

/// Runs every step and writes the model folder to `opts.out`; `stop` (Ctrl-C) ends
/// training after the current batch, keeping the best epoch so far.
pub fn train_words(opts: &TrainWordsOptions, stop: &AtomicBool) -> Result<TrainWordsOutcome> {
    let t0 = Instant::now();
    let words = voices::check_words(&opts.words, &[SILENCE.to_string(), UNKNOWN.to_string()])?;
    // Refused before minutes of work, as --train refuses it.
    model::check_destination(&opts.out, &std::env::temp_dir())?;
    if let Some(t) = &opts.takes {
        clips::check_takes(t, &words)?;
    }
    let clips = clips::make(opts, &words)?;
    let t_clips = t0.elapsed().as_secs_f64();
    let mut train_opts = training_options(opts, &words, clips.dir.path().to_path_buf())?;
    train_opts.clip_ms = clips.clip_ms;
    let out = train::train(&train_opts, stop)?;
    let mut model = Model::load(&opts.out, tch::Device::Cpu)?;
    let labels: Vec<String> = words.iter().map(|w| clips::folder_name(w)).collect();
    let choice = detector::choose(&model, &clips, &labels, opts.threads)?;
    log(
        opts.quiet,
        format!(
            "Detector: threshold {:.2} (held-out voices: {:.1}% heard; {} false alarm(s) in {:.0} min of held-out talk)",
            choice.detector.threshold,
            choice.voices.recall * 100.0,
            choice.talk_false_alarms,
            choice.talk_hours * 60.0
        ),
    );
    model.card.detector = Some(choice.detector.clone());
    model.card.training["words"] = serde_json::json!({
        "trained_without_recordings": clips.takes.is_empty(),
        "words": words,
        "voices": clips.voices.len(),
        "engines": engines(&clips.voices),
        "sound_alikes": clips.sound_alikes,
        "clips": clips.spoken.clips.len(),
        "clips_failed": clips.spoken.failed.len(),
        "clip_ms": clips.clip_ms,
        "your_takes": clips.takes.iter().map(|(w, n)| (w.clone(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        "detector_choice": choice,
        "seconds": {"clips": t_clips, "all": t0.elapsed().as_secs_f64()},
    });
    let card = serde_json::to_vec_pretty(&model.card)?;
    let path = opts.out.join(model::CARD_FILE);
    crate::util::write_atomic(&path, &card)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(TrainWordsOutcome {
        report: out.report,
        choice,
        interrupted: out.interrupted,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// Training as the bundled model was trained, on the clips' folder.
fn training_options(
    opts: &TrainWordsOptions,
    words: &[String],
    data: PathBuf,
) -> Result<TrainOptions> {
    let mut t = TrainOptions::new(data, opts.out.clone());
    t.words = Some(words.iter().map(|w| clips::folder_name(w)).collect());
    t.arch = Arch::by_name("embedding-head-x3")?;
    t.lead_ms = 1000;
    t.negatives = Some(NegativesFrom::Shipped);
    t.epochs = opts.epochs;
    t.seed = opts.seed;
    t.threads = opts.threads;
    t.quiet = opts.quiet;
    t.device = tch::Device::Cpu;
    Ok(t)
}

/// Voices per engine.
fn engines(voices: &[voices::Voice]) -> std::collections::BTreeMap<&'static str, usize> {
    let mut m = std::collections::BTreeMap::new();
    for v in voices {
        *m.entry(v.engine.program()).or_insert(0) += 1;
    }
    m
}
