//! `listen --train DIR`: a folder of labelled clips to a model folder, in named steps:
//!
//! 1. [`plan`]: what the options mean, decided once (fine-tuning's `--from` included);
//! 2. [`data`]: scan, speaker split, decode, negatives, held-out splits completed;
//! 3. [`inputs`]: normalisation and the held-out features;
//! 4. [`fit`]: balanced, augmented epochs, early stopping, best weights, Ctrl-C, with
//!    [`mining`] rounds between epochs;
//! 5. the test report on speakers never heard ([`crate::learn::report`]);
//! 6. [`card`]: what the model was trained on, in its card;
//! 7. [`write`](mod@write): the model folder, swapped in atomically.
pub mod card;
pub mod data;
pub mod fit;
pub mod inputs;
pub mod mining;
pub mod plan;
pub mod write;

pub use plan::open_base;

use crate::learn::augment::AugmentConfig;
use crate::learn::plots;
use crate::learn::report::Report;
use crate::model::{Arch, Model, ModelCard};
use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tch::Device;

#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub data: PathBuf,
    pub words: Option<Vec<String>>,
    pub out: PathBuf,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    pub device: Device,
    pub arch: Arch,
    pub lr: f64,
    pub weight_decay: f64,
    pub patience: usize,
    pub augment: AugmentConfig,
    /// Stop starting new epochs after this many seconds of training.
    pub time_budget: Option<f64>,
    pub threads: usize,
    /// Hide progress bars (tests, CI logs).
    pub quiet: bool,
    /// Fine-tune from this model (a folder, or "bundled") instead of starting afresh.
    pub from: Option<String>,
    /// Fine-tuning: weight of the distillation loss that keeps the base model's answers
    /// on its own labels (learning without forgetting).
    pub distill: f64,
    /// Speech that is not a command (`--negatives`): `_unknown_` crops, background under
    /// commands, and hard-negative mining.
    pub negatives: Option<crate::learn::negatives::NegativesFrom>,
    /// Hard-negative mining rounds (with `negatives`).
    pub mining_rounds: usize,
    /// Quiet before each clip in the model's window, in ms (see `FeatureConfig`).
    pub lead_ms: u32,
    /// Models on the speech embedding: how much of the window each clip fills after
    /// the lead, in ms (the lead gives way; the window stays): 1000 for words,
    /// `--train-words` gives phrases 1500.
    pub clip_ms: u32,
}

impl TrainOptions {
    pub fn new(data: PathBuf, out: PathBuf) -> Self {
        TrainOptions {
            data,
            words: None,
            out,
            epochs: 40,
            batch_size: 64,
            seed: 1,
            device: Device::Cpu,
            arch: Arch::default_tcresnet(),
            lr: 3e-3,
            weight_decay: 1e-2,
            patience: 10,
            augment: AugmentConfig::default(),
            time_budget: None,
            threads: 2,
            quiet: false,
            from: None,
            distill: 1.0,
            negatives: None,
            mining_rounds: 3,
            lead_ms: 0,
            clip_ms: 1000,
        }
    }
}

pub struct TrainOutcome {
    pub report: Report,
    pub card: ModelCard,
    pub history: Vec<plots::Epoch>,
    pub interrupted: bool,
    pub skipped: Vec<String>,
    /// Too few speakers to hold any out: the test split shares voices with training.
    pub split_by_clip: bool,
}

/// What the test split is, for the report's heading.
pub fn test_heading(split_by_clip: bool) -> &'static str {
    if split_by_clip {
        "Test split (clips held out by file name; too few speakers to hold any out)"
    } else {
        "Test split (speakers never seen in training)"
    }
}

/// Trains a model as `opts` say and writes its folder to `opts.out`; `stop` (Ctrl-C)
/// ends training after the current batch and keeps the best epoch so far.
pub fn train(opts: &TrainOptions, stop: &AtomicBool) -> Result<TrainOutcome> {
    let t0 = Instant::now();
    let plan = plan::Plan::new(opts)?;
    let mut data = data::prepare(opts, &plan)?;
    let mut inputs = inputs::prepare(opts, &plan, &data)?;
    let mut model = build_model(opts, &plan, &data, &inputs)?;
    let fit = fit::fit(opts, &plan, &mut data, &inputs, &mut model, stop)?;
    let test = &data.splits[2];
    let (_, _, preds) = fit::evaluate_features(&model, &inputs.test_x, &test.labels);
    let report = Report::new(&data.labels, &test.labels, &preds);
    model.card.training = card::training(opts, &plan, &data, &fit);
    model.card.metrics = serde_json::json!({"test": report.json()});
    let heading = test_heading(data.split_by_clip);
    write::write_model_folder(
        &model,
        &fit.history,
        &report,
        heading,
        test,
        &mut inputs.extractor,
        opts,
    )?;
    log(
        opts.quiet,
        format!(
            "Saved model to {} ({:.0} s in all); listen with it: listen --model {}",
            opts.out.display(),
            t0.elapsed().as_secs_f64(),
            opts.out.display()
        ),
    );
    Ok(TrainOutcome {
        report,
        card: model.card.clone(),
        history: fit.history,
        interrupted: fit.interrupted,
        skipped: data.skipped,
        split_by_clip: data.split_by_clip,
    })
}

/// The network: fresh, or grown from the base model with rows for the new labels.
fn build_model(
    opts: &TrainOptions,
    plan: &plan::Plan,
    data: &data::Data,
    inputs: &inputs::Inputs,
) -> Result<Model> {
    let labels = &data.labels;
    let model = match &plan.base {
        Some(b) => Model::grow_from(b, labels.clone(), opts.device)?,
        None => Model::new(
            ModelCard::new(
                plan.arch.clone(),
                labels.clone(),
                plan.features.clone(),
                (*inputs.norm).clone(),
            ),
            opts.device,
        )?,
    };
    if let Some(b) = &plan.base {
        log(
            opts.quiet,
            format!(
                "Fine-tuning {} ({}): keeps its labels, adds {}",
                b.source,
                b.card.labels.join(", "),
                match &labels[b.card.labels.len()..] {
                    [] => "none".to_string(),
                    new => new.join(", "),
                }
            ),
        );
    }
    let [train, val, test] = &data.splits;
    log(
        opts.quiet,
        format!(
            "Model: {}, {} parameters; {} train / {} validation / {} test examples; device {:?}",
            plan.arch.describe(),
            model.card.parameters,
            train.clips.len(),
            val.clips.len(),
            test.clips.len(),
            opts.device
        ),
    );
    Ok(model)
}

pub(crate) fn log(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

pub(crate) fn progress(len: u64, quiet: bool, template: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b
}
