//! Step 6, the card: what the model was trained on and how, written into its JSON card
//! beside the test figures, so that a model folder explains itself.
use super::data::{Data, MIN_DRAWS, NEGATIVE_DRAWS};
use super::fit::{Fit, DISTILL_T};
use super::plan::Plan;
use super::TrainOptions;
use crate::learn::dataset::Split;
use crate::learn::negatives::{self, Negatives};
use crate::model::{self, Model};
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// The card's `training` section.
pub(super) fn training(opts: &TrainOptions, plan: &Plan, data: &Data, fit: &Fit) -> Value {
    let labels = &data.labels;
    let kept = &data.kept;
    let per_split = |s: Split| -> Value {
        let c = &data.counts[&s];
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), json!(c[i])))
            .collect::<Map<_, _>>()
            .into()
    };
    let speakers = |s: Split| {
        kept.iter()
            .filter(|c| c.split == s && !c.synthetic)
            .filter_map(|c| c.speaker.clone())
            .collect::<BTreeSet<_>>()
            .len()
    };
    let synthetic: Map<String, Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                l.clone(),
                json!(kept.iter().filter(|c| c.synthetic && c.label == i).count()),
            )
        })
        .filter(|(_, v)| v.as_u64() != Some(0))
        .collect();
    let target = data.target;
    let mut t = json!({
        "data": opts.data.file_name().map(|n| n.to_string_lossy().to_string()),
        "clips": {"train": per_split(Split::Train), "validation": per_split(Split::Validation), "test": per_split(Split::Test)},
        "speakers": {"train": speakers(Split::Train), "validation": speakers(Split::Validation), "test": speakers(Split::Test)},
        "synthetic_clips": synthetic,
        "unknown_words": kept.iter().filter(|c| labels[c.label] == model::UNKNOWN).map(|c| c.folder.clone()).collect::<BTreeSet<_>>(),
        "silence": if data.silence.is_some() { if data.noise.synthetic { "synthetic noise" } else { "_background_noise_ (first 80% of each file for training)" } } else { "none" },
        "skipped_files": data.skipped.len(),
        "split": if data.split_by_clip { "by seeded file-name hash (too few speakers to hold any out); 80/10/10" } else { "by speaker hash (<speaker>_nohash_<n>.wav), else by seeded file-name hash; words with fewer than 5 speakers by file name; 80/10/10" },
        "balancing": format!("every clip once per epoch; a label with fewer clips than {target} (the median label count, at least {MIN_DRAWS}) drawn again at random up to {target}"),
        "augmentation": opts.augment,
        "epochs_run": fit.history.len(),
        "best_epoch": fit.best_epoch,
        "batch_size": opts.batch_size,
        "learning_rate": opts.lr,
        "weight_decay": opts.weight_decay,
        "seed": opts.seed,
        "device": format!("{:?}", opts.device),
        "threads": opts.threads,
        "train_seconds": fit.train_seconds,
        "seconds_per_epoch": fit.train_seconds / fit.history.len().max(1) as f64,
        "interrupted": fit.interrupted,
    });
    if let Some(n) = &data.negatives {
        t["negatives"] = negatives_section(opts, n, target);
    }
    if let Some(b) = &plan.base {
        t["fine_tuning"] = fine_tuning_section(opts, b, labels, data.train_counts());
    }
    t
}

fn negatives_section(opts: &TrainOptions, n: &Negatives, target: usize) -> Value {
    json!({
        "folder": opts.negatives.as_ref().map(|n| n.name()),
        "recordings": {"train": n.scan.of_split(Split::Train).len(), "validation": n.scan.of_split(Split::Validation).len(), "test": n.scan.of_split(Split::Test).len()},
        "groups": {"train": n.scan.groups(Split::Train), "validation": n.scan.groups(Split::Validation), "test": n.scan.groups(Split::Test)},
        "left_out_holding_a_command": n.scan.with_command,
        "left_out_without_transcript": n.scan.untranscribed,
        "training_crops": n.pool.len(),
        "training_hours_cropped": n.pool.seconds / 3600.0,
        "speech_draws_per_epoch": NEGATIVE_DRAWS * target,
        "commands_over_speech_share": negatives::OVER_SPEECH_SHARE,
        "mining_threshold": negatives::MINE_THRESHOLD,
        "mining_rounds": n.rounds,
    })
}

fn fine_tuning_section(
    opts: &TrainOptions,
    base: &Model,
    labels: &[String],
    train_counts: &[usize],
) -> Value {
    json!({
        "from": base.source,
        "base_labels": base.card.labels,
        "new_labels": labels[base.card.labels.len()..],
        "base_labels_without_clips": base.card.labels.iter().enumerate()
            .filter(|(i, l)| !l.starts_with('_') && train_counts[*i] == 0)
            .map(|(_, l)| l.clone()).collect::<Vec<_>>(),
        "distillation_weight": opts.distill,
        "distillation_temperature": DISTILL_T,
        "normalisation": "kept from the base model",
    })
}
