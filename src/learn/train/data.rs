//! Step 2, the data: the folder scanned into labels and a speaker-disjoint split, every
//! clip decoded once, the background noise and the speech that is not a command loaded,
//! and the held-out splits completed with `_silence_` (and speech, for early stopping
//! to weigh staying quiet). Hands on decoded examples per split and how many times each
//! label is drawn an epoch.
use super::plan::Plan;
use super::{log, progress, TrainOptions};
use crate::audio::features::FeatureConfig;
use crate::audio::wav;
use crate::learn::augment::{self, NoiseBank};
use crate::learn::dataset::{self, ClipRef, Scan, Split};
use crate::learn::negatives::{Negatives, NegativesFrom};
use crate::model::{self, Model, SILENCE};
use crate::util::{self, Rng};
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// Fewest draws of each label per epoch.
pub(super) const MIN_DRAWS: usize = 128;

/// With `--negatives`: crops of speech drawn per epoch, in units of a label's draws.
pub(super) const NEGATIVE_DRAWS: usize = 2;

/// Decoded examples of one split: clips (16 kHz, the model's window) and their labels.
#[derive(Default)]
pub(super) struct Examples {
    pub clips: Vec<Vec<f32>>,
    pub labels: Vec<usize>,
}

pub(super) struct Data {
    pub labels: Vec<String>,
    pub silence: Option<usize>,
    pub unknown: Option<usize>,
    /// Too few speakers: clips were split by file name.
    pub split_by_clip: bool,
    /// The clips that decoded, with their split.
    pub kept: Vec<ClipRef>,
    /// Train, validation, test.
    pub splits: [Examples; 3],
    pub counts: BTreeMap<Split, Vec<usize>>,
    /// Draws of every label per epoch.
    pub target: usize,
    pub noise: Arc<NoiseBank>,
    pub negatives: Option<Negatives>,
    pub skipped: Vec<String>,
}

impl Data {
    pub fn train_counts(&self) -> &[usize] {
        &self.counts[&Split::Train]
    }
}

pub(super) fn prepare(opts: &TrainOptions, plan: &Plan) -> Result<Data> {
    let len = plan.clip_len();
    let scan = scan_labels(opts, plan.base.as_ref())?;
    let labels = scan.labels.clone();
    let silence = labels.iter().position(|l| l == SILENCE);
    let unknown = labels.iter().position(|l| l == model::UNKNOWN);
    let paths: Vec<&Path> = scan.clips.iter().map(|c| c.path.as_path()).collect();
    let pb = progress(
        paths.len() as u64,
        opts.quiet,
        "Decoding {bar:30} {pos}/{len} clips",
    );
    let (decoded, mut skipped) = dataset::load_clips(&paths, &plan.features, opts.threads, &pb);
    pb.finish_and_clear();
    let noise = load_noise(&scan, &mut skipped);
    let negatives = load_negatives(opts, &labels, &plan.features, &noise, &mut skipped)?;
    report_skipped(
        &skipped,
        paths.len() + scan.noise_files.len() + negatives.as_ref().map_or(0, |n| n.scan.files.len()),
    );
    let mut splits: [Examples; 3] = Default::default();
    let mut kept = Vec::new();
    for (c, d) in scan.clips.iter().zip(decoded) {
        if let Some(x) = d {
            splits[c.split as usize].clips.push(x);
            splits[c.split as usize].labels.push(c.label);
            kept.push(c.clone());
        }
    }
    check_usable(opts, &scan, &kept, silence, &splits)?;
    let counts = dataset::counts(&kept, labels.len());
    if let Some(b) = &plan.base {
        warn_base_commands_without_clips(opts, b, &labels, &counts[&Split::Train]);
    }
    let target = draws_per_label(&counts[&Split::Train], silence);
    let mut data = Data {
        labels,
        silence,
        unknown,
        split_by_clip: scan.split_by_clip,
        kept,
        splits,
        counts,
        target,
        noise: Arc::new(noise),
        negatives,
        skipped,
    };
    complete_held_out(&mut data, opts.seed, len);
    Ok(data)
}

/// The folder's labels and split; fine-tuning keeps the base model's labels first.
fn scan_labels(opts: &TrainOptions, base: Option<&Model>) -> Result<Scan> {
    let scan = match base {
        None => dataset::scan(&opts.data, opts.words.as_deref(), opts.seed)?,
        Some(b) => {
            // The base model's commands stay commands; --words adds to them.
            let words = opts.words.as_ref().map(|ws| {
                let mut all = b.card.commands();
                all.extend(ws.iter().cloned());
                all.retain(|w| opts.data.join(w).is_dir() || ws.contains(w));
                all
            });
            dataset::with_base_labels(
                dataset::scan(&opts.data, words.as_deref(), opts.seed)?,
                &b.card.labels,
            )
        }
    };
    let scan = if opts.negatives.is_some() {
        dataset::with_unknown(scan)
    } else {
        scan
    };
    if scan.split_by_clip {
        eprintln!(
            "warning: {}: no speaker falls into the validation or test split (too few speakers); clips are split by file name instead, so the held-out figures include voices heard in training",
            opts.data.display()
        );
    }
    log(
        opts.quiet,
        format!(
            "Found {} files belonging to {} labels: {}",
            scan.clips.len(),
            scan.labels.len(),
            scan.labels.join(", ")
        ),
    );
    Ok(scan)
}

/// `_background_noise_` recordings, else synthetic noise.
fn load_noise(scan: &Scan, skipped: &mut Vec<String>) -> NoiseBank {
    let mut recs = Vec::new();
    for p in &scan.noise_files {
        match wav::read_mono_16k(p, 1800.0) {
            Ok(x) => recs.push(x),
            Err(e) => skipped.push(format!("{e:#}")),
        }
    }
    if recs.is_empty() {
        NoiseBank::synthetic()
    } else {
        NoiseBank::from_recordings(recs)
    }
}

/// `--negatives`: speech that is not a command, scanned and cropped.
fn load_negatives(
    opts: &TrainOptions,
    labels: &[String],
    features: &FeatureConfig,
    noise: &NoiseBank,
    skipped: &mut Vec<String>,
) -> Result<Option<Negatives>> {
    let Some(from) = &opts.negatives else {
        return Ok(None);
    };
    let commands: Vec<String> = labels
        .iter()
        .filter(|l| !l.starts_with('_'))
        .cloned()
        .collect();
    let bar = |n| {
        progress(
            n,
            opts.quiet,
            "Embedding speech {bar:30} {pos}/{len} recordings",
        )
    };
    let dir = match from {
        NegativesFrom::Folder(dir) => dir,
        NegativesFrom::Shipped => {
            let n = Negatives::shipped(&commands, features)?;
            if let Some(b) = &n.bank {
                log(
                    opts.quiet,
                    format!(
                        "Negatives: {:.1} h of speech built into listen, {} windows ({} recordings left out as saying {})",
                        b.hours(),
                        b.len(),
                        n.scan.with_command,
                        commands.join(" or ").replace('_', " ")
                    ),
                );
            }
            return Ok(Some(n));
        }
    };
    let n = Negatives::load(dir, &commands, features, opts.seed, noise, bar)?;
    log(
        opts.quiet,
        format!(
            "Negatives: {} recordings of speech in {} ({} left out as holding a command, {} without a transcript); {} training crops from {:.1} h",
            n.scan.files.len(),
            dir.display(),
            n.scan.with_command,
            n.scan.untranscribed,
            n.pool.len(),
            n.pool.seconds / 3600.0
        ),
    );
    if let Some(b) = &n.bank {
        log(
            opts.quiet,
            format!(
                "Speech bank: {:.1} h of training speech embedded once, {} windows",
                b.hours(),
                b.len()
            ),
        );
    }
    skipped.extend(n.pool.skipped.iter().cloned());
    Ok(Some(n))
}

/// One report of every file that could not be used: the first 20 named, then a count.
fn report_skipped(skipped: &[String], of: usize) {
    if skipped.is_empty() {
        return;
    }
    for s in skipped.iter().take(20) {
        eprintln!("warning: skipped {s}");
    }
    if skipped.len() > 20 {
        eprintln!("warning: ... and {} more", skipped.len() - 20);
    }
    eprintln!(
        "warning: skipped {} unusable file(s) of {of}",
        skipped.len()
    );
}

/// Enough to train and to hold out: clips of two labels at least, and no empty
/// held-out split (say so rather than report on nothing; and say when they are so
/// small that their figures mean little).
fn check_usable(
    opts: &TrainOptions,
    scan: &Scan,
    kept: &[ClipRef],
    silence: Option<usize>,
    splits: &[Examples; 3],
) -> Result<()> {
    let data = opts.data.display();
    if kept.is_empty() {
        bail!(
            "{data}: none of the {} clips could be read",
            scan.clips.len()
        );
    }
    let distinct: std::collections::BTreeSet<usize> =
        kept.iter().map(|c| c.label).chain(silence).collect();
    if distinct.len() < 2 {
        bail!("{data}: only one label has usable clips; a keyword model needs at least two");
    }
    for s in [Split::Validation, Split::Test] {
        let n = splits[s as usize].clips.len();
        if (1..5).contains(&n) {
            eprintln!(
                "warning: {data}: the {} split holds only {n} clip(s) (too few clips to hold more out); its figures say next to nothing: judge the model by listening to it",
                s.name()
            );
        }
        if n == 0 {
            bail!(
                "{data}: the {} split is empty ({} usable clips); add clips from more speakers",
                s.name(),
                kept.len()
            );
        }
    }
    Ok(())
}

/// Fine-tuning: new words never trained against an old command may fire on it.
fn warn_base_commands_without_clips(
    opts: &TrainOptions,
    base: &Model,
    labels: &[String],
    train_counts: &[usize],
) {
    let missing: Vec<&str> = (0..base.card.labels.len())
        .filter(|&i| base.card.is_command(i) && train_counts[i] == 0)
        .map(|i| labels[i].as_str())
        .collect();
    if !missing.is_empty() && labels.len() > base.card.labels.len() {
        eprintln!(
            "warning: {} has no clips of {}: the new words are never trained against them and may fire on them; add a few dozen clips of each (folders from Speech Commands, `listen --record`, or `scripts/synth-clips {} {}`)",
            opts.data.display(),
            missing.join(", "),
            opts.data.display(),
            missing.join(",")
        );
    }
}

/// Every label is drawn this many times an epoch (thin ones oversampled, each draw
/// augmented afresh): the median label's count, at least MIN_DRAWS, so that a few
/// dozen clips of a new word still make an epoch worth the name.
fn draws_per_label(train_counts: &[usize], silence: Option<usize>) -> usize {
    let real: Vec<f64> = train_counts
        .iter()
        .enumerate()
        .filter(|(i, &n)| Some(*i) != silence && n > 0)
        .map(|(_, &n)| n as f64)
        .collect();
    util::median(&real).max(MIN_DRAWS as f64) as usize
}

/// Held-out `_silence_` (as many as an average label has there) and, with negatives,
/// validation speech: early stopping weighs staying quiet too.
fn complete_held_out(data: &mut Data, seed: u64, len: usize) {
    if let Some(si) = data.silence {
        for s in [Split::Validation, Split::Test] {
            let ex = &mut data.splits[s as usize];
            let k = data.labels.len().saturating_sub(1).max(1);
            let count = (ex.clips.len() / k).max(1);
            for x in silence_examples(&data.noise, s, count, seed, len) {
                ex.clips.push(x);
                ex.labels.push(si);
            }
        }
    }
    if let (Some(n), Some(u)) = (&data.negatives, data.unknown) {
        let val = &mut data.splits[Split::Validation as usize];
        let count = NEGATIVE_DRAWS * (val.clips.len() / data.labels.len().max(1)).max(1);
        let (crops, bad) = n.validation_crops(len, count, seed);
        data.skipped.extend(bad);
        val.labels.extend(std::iter::repeat_n(u, crops.len()));
        val.clips.extend(crops);
    }
}

/// Fixed `_silence_` examples for a split.
pub(super) fn silence_examples(
    noise: &NoiseBank,
    split: Split,
    count: usize,
    seed: u64,
    len: usize,
) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(seed ^ ((split as u64 + 1) * 0x1234_5678));
    (0..count)
        .map(|_| augment::silence_clip(noise, split, &mut rng, len))
        .collect()
}
