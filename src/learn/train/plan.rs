//! Step 1, the plan: what the options mean for this run, decided once. Fine-tuning
//! (`--from`) is settled here: the base model's architecture, features and (later) its
//! normalisation and labels are kept; a fresh model takes the options' architecture and
//! window.
use super::TrainOptions;
use crate::audio::features::FeatureConfig;
use crate::model::{self, Arch, Model};
use anyhow::{bail, Context, Result};
use std::path::Path;
use tch::Device;

pub(super) struct Plan {
    /// The model fine-tuned from, if any.
    pub base: Option<Model>,
    pub arch: Arch,
    pub features: FeatureConfig,
}

impl Plan {
    /// Checks the destination and the options, opens the base model, and fixes the
    /// network and its input.
    pub fn new(opts: &TrainOptions) -> Result<Plan> {
        // Before any work: training must never replace what the user made.
        model::check_destination(&opts.out, &opts.data)?;
        tch::set_num_threads(opts.threads.max(1) as i32);
        tch::manual_seed(opts.seed as i64);
        let base = match &opts.from {
            Some(f) => Some(open_base(f, opts.device)?),
            None => None,
        };
        let arch = base
            .as_ref()
            .map(|b| b.card.arch.clone())
            .unwrap_or_else(|| opts.arch.clone());
        let features = match &base {
            Some(b) => b.card.features.clone(),
            None if matches!(arch, Arch::EmbeddingHead { .. }) => {
                let mut f = FeatureConfig::speech_embedding(opts.lead_ms);
                let clip = opts.clip_ms as usize * f.sample_rate as usize / 1000;
                if clip >= f.clip_samples {
                    bail!(
                        "a clip of {} ms does not fit the model's window of {} ms",
                        opts.clip_ms,
                        f.clip_samples * 1000 / f.sample_rate as usize
                    );
                }
                f.lead_samples = f.clip_samples - clip;
                f
            }
            None => {
                let mut f = arch.default_features();
                f.lead_samples = opts.lead_ms as usize * f.sample_rate as usize / 1000;
                f.clip_samples += f.lead_samples;
                f
            }
        };
        if opts.batch_size == 0 || opts.epochs == 0 {
            bail!("--epochs and --batch-size must be at least 1");
        }
        Ok(Plan {
            base,
            arch,
            features,
        })
    }

    /// Samples in one training example (the model's window).
    pub fn clip_len(&self) -> usize {
        self.features.clip_samples
    }
}

/// The model to fine-tune from: a model folder, or "bundled".
pub fn open_base(from: &str, device: Device) -> Result<Model> {
    let p = Path::new(from);
    if from == "bundled" && !p.exists() {
        let mut m = Model::bundled()?;
        if device != Device::Cpu {
            m.vs.set_device(device);
        }
        return Ok(m);
    }
    if !p.exists() {
        bail!(
            "--from {from}: no such model folder (train one with --train DIR; --from alone fine-tunes the bundled model)"
        );
    }
    Model::load(p, device).context("--from")
}
