//! `listen --train DIR`: a model folder from labelled clips (fresh, or fine-tuned
//! `--from` a model), with its test report printed at the end.
use crate::learn::augment::AugmentConfig;
use crate::learn::negatives::NegativesFrom;
use crate::learn::train::{self, TrainOptions};
use crate::model::Arch;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Training's options as the command line gives them; defaults that depend on other
/// options (architecture, learning rate, lead) are settled by [`TrainArgs::options`].
#[derive(Clone, Debug, Default)]
pub struct TrainArgs {
    pub dir: PathBuf,
    pub model: Option<PathBuf>,
    pub words: Option<Vec<String>>,
    pub epochs: usize,
    pub batch_size: usize,
    pub seed: u64,
    /// cpu or cuda (default: cuda when available).
    pub compute: Option<String>,
    pub arch: Option<String>,
    pub from: Option<String>,
    pub lr: Option<f64>,
    pub patience: usize,
    pub time_budget: Option<f64>,
    pub negatives: Option<PathBuf>,
    pub lead_ms: Option<u32>,
    pub mining_rounds: usize,
    pub no_augment: bool,
    pub threads: usize,
    pub quiet: bool,
    pub json: bool,
}

impl TrainArgs {
    /// The library's options, every value checked.
    pub fn options(&self) -> Result<TrainOptions> {
        let device = match self.compute.as_deref() {
            None => tch::Device::cuda_if_available(),
            Some("cpu") => tch::Device::Cpu,
            Some("cuda") => {
                if !tch::Cuda::is_available() {
                    bail!("--compute cuda: libtorch sees no CUDA GPU on this machine; use --compute cpu");
                }
                tch::Device::Cuda(0)
            }
            Some(other) => bail!("--compute {other}: training runs on cpu or cuda"),
        };
        let out = self
            .model
            .clone()
            .unwrap_or_else(|| PathBuf::from("listen-model"));
        let mut opts = TrainOptions::new(self.dir.clone(), out);
        opts.words = self.words.clone();
        opts.epochs = self.epochs;
        opts.batch_size = self.batch_size;
        opts.seed = self.seed;
        opts.device = device;
        if let (Some(a), Some(_)) = (&self.arch, &self.from) {
            bail!(
                "--arch {a}: a fine-tuned model keeps the architecture of --from; leave out --arch"
            );
        }
        // With negatives, the bundled model's network; without, the small one as before.
        let arch = match (&self.arch, &self.negatives) {
            (Some(a), _) => a.as_str(),
            (None, Some(_)) => "embedding-head-x3",
            (None, None) => "tcresnet",
        };
        opts.arch = Arch::by_name(arch)?;
        opts.from = self.from.clone();
        opts.lr = self
            .lr
            .unwrap_or(if self.from.is_some() { 1e-3 } else { 3e-3 });
        if !(opts.lr > 0.0 && opts.lr < 1.0) {
            bail!("--lr {}: use a value between 0 and 1, e.g. 3e-3", opts.lr);
        }
        opts.patience = self.patience;
        opts.negatives = self.negatives.clone().map(NegativesFrom::Folder);
        opts.mining_rounds = self.mining_rounds;
        // With negatives, the bundled model's recipe (BENCHMARKS.md); without, as before.
        // The embedding head sees 16 embeddings (1.98 s): the clip and ~1 s before it.
        let embedding = matches!(opts.arch, Arch::EmbeddingHead { .. });
        opts.lead_ms = self.lead_ms.unwrap_or(match (embedding, &self.negatives) {
            (true, _) => 1000,
            (false, Some(_)) => 400,
            (false, None) => 0,
        });
        if opts.lead_ms > 2000 {
            bail!("--lead-ms {}: use 0 to 2000", opts.lead_ms);
        }
        if self.from.is_some() && self.lead_ms.is_some() {
            bail!("--lead-ms: a fine-tuned model keeps the window of --from; leave out --lead-ms");
        }
        opts.time_budget = self.time_budget;
        opts.threads = self.threads;
        opts.quiet = self.quiet;
        if self.no_augment {
            opts.augment = AugmentConfig::none();
        }
        Ok(opts)
    }
}

/// Ctrl-C / SIGTERM: finish the current batch, keep the best model so far. A second
/// Ctrl-C quits at once (the previous model folder is untouched).
pub(super) fn keep_best_on_ctrl_c() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nlisten: stopped; the previous model is untouched");
            std::process::exit(super::INTERRUPTED);
        }
        eprintln!("\nlisten: stopping after this batch and saving the best model so far (Ctrl-C again to quit now)");
    });
    stop
}

pub fn run(args: &TrainArgs) -> Result<i32> {
    let opts = args.options()?;
    let stop = keep_best_on_ctrl_c();
    let out = train::train(&opts, &stop)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"model": opts.out.display().to_string(), "interrupted": out.interrupted, "test": out.report.json()})
        );
    } else {
        println!(
            "\n{}:\n\n{}\n{}",
            train::test_heading(out.split_by_clip),
            out.report.text(),
            out.report.confusion_text()
        );
    }
    Ok(if out.interrupted {
        super::INTERRUPTED
    } else {
        0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negatives_bring_the_bundled_recipe_and_clips_alone_the_small_network() {
        let args = |arch: Option<&str>, negatives: bool| TrainArgs {
            arch: arch.map(String::from),
            negatives: negatives.then(|| PathBuf::from("speech")),
            epochs: 40,
            batch_size: 64,
            ..Default::default()
        };
        let bundled = args(None, true).options().unwrap();
        assert_eq!(bundled.arch, Arch::by_name("embedding-head-x3").unwrap());
        assert_eq!(bundled.lead_ms, 1000);
        let small = args(None, false).options().unwrap();
        assert_eq!((small.arch, small.lead_ms), (Arch::default_tcresnet(), 0));
        let wide = args(Some("tcresnet-wide"), true).options().unwrap();
        assert_eq!(wide.lead_ms, 400);
    }
}
