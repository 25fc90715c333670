//! `listen --train DIR`: loads a folder-per-label data set, splits it by speaker,
//! trains the model with augmentation and class balancing, keeps the epoch with the best
//! validation loss (early stopping; Ctrl-C keeps the best so far), evaluates it on the
//! unseen-speaker test split and writes the model folder atomically.
use crate::audio;
use crate::augment::{self, AugmentConfig, NoiseBank};
use crate::dataset::{self, Split};
use crate::features::{FeatureExtractor, Normalisation};
use crate::metrics::Report;
use crate::model::{self, Arch, Model, ModelCard, SILENCE};
use crate::negatives::{self, Negatives};
use crate::plots;
use crate::speech::CropPool;
use crate::util::{self, Rng};
use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

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
    pub negatives: Option<PathBuf>,
    /// Hard-negative mining rounds (with `negatives`).
    pub mining_rounds: usize,
    /// Quiet before each clip in the model's window, in ms (see `FeatureConfig`).
    pub lead_ms: u32,
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
        }
    }
}

type Best = (f64, usize, Vec<(String, Tensor)>);

pub struct TrainOutcome {
    pub report: Report,
    pub card: ModelCard,
    pub history: Vec<plots::Epoch>,
    pub interrupted: bool,
    pub skipped: Vec<String>,
}

/// Decoded examples of one split: clips (16 kHz, 1 s) and their labels.
struct Examples {
    clips: Vec<Vec<f32>>,
    labels: Vec<usize>,
}

fn log(quiet: bool, msg: impl AsRef<str>) {
    if !quiet {
        eprintln!("{}", msg.as_ref());
    }
}

fn bar(len: u64, quiet: bool, template: &str) -> ProgressBar {
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

/// Features of every clip, normalised, row-major `[n][frames][bins]`.
/// One training example of an epoch.
#[derive(Clone, Copy)]
enum Item {
    /// A training clip with its own label.
    Clip(usize),
    /// The head or tail of a command clip, labelled `_unknown_`.
    Partial(usize),
    /// Background noise, labelled `_silence_`.
    Silence,
    /// A crop of speech that is not a command, labelled `_unknown_`.
    Speech(usize),
    /// A mined window that fired or nearly fired, labelled `_unknown_`.
    Hard(usize),
}

fn features_of(
    fe: &mut FeatureExtractor,
    norm: Option<&Normalisation>,
    clips: &[Vec<f32>],
) -> Vec<f32> {
    let mut out = Vec::new();
    for c in clips {
        let mut f = fe.compute(c);
        if let Some(n) = norm {
            n.apply(&mut f);
        }
        out.extend(f);
    }
    out
}

/// Mean loss, accuracy and predictions of `model` over normalised features.
pub fn evaluate_features(model: &Model, xs: &[f32], ys: &[usize]) -> (f64, f64, Vec<usize>) {
    let cfg = &model.card.features;
    let per = cfg.n_frames() * cfg.n_bins();
    let n = ys.len();
    let mut preds = Vec::with_capacity(n);
    let mut loss_sum = 0.0;
    for start in (0..n).step_by(256) {
        let end = (start + 256).min(n);
        let x = Tensor::from_slice(&xs[start * per..end * per])
            .view([
                (end - start) as i64,
                cfg.n_frames() as i64,
                cfg.n_bins() as i64,
            ])
            .to_device(model.device());
        let y = Tensor::from_slice(&ys[start..end].iter().map(|&v| v as i64).collect::<Vec<_>>())
            .to_device(model.device());
        let (l, p) = tch::no_grad(|| {
            let logits = model.forward_t(&x, false);
            let l = logits.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Sum, -100, 0.0);
            (
                l.double_value(&[]),
                logits.argmax(-1, false).to_device(Device::Cpu),
            )
        });
        loss_sum += l;
        preds.extend(
            Vec::<i64>::try_from(p)
                .unwrap_or_default()
                .into_iter()
                .map(|v| v as usize),
        );
    }
    let correct = preds.iter().zip(ys).filter(|(a, b)| a == b).count();
    (
        loss_sum / n.max(1) as f64,
        correct as f64 / n.max(1) as f64,
        preds,
    )
}

/// Fixed `_silence_` examples for a held-out split.
fn silence_examples(
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
    Model::load(p, device).context("--from")
}

/// Fewest draws of each label per epoch.
const MIN_DRAWS: usize = 128;

/// With `--negatives`: crops of speech drawn per epoch, in units of a label's draws.
const NEGATIVE_DRAWS: usize = 2;

/// Mining rounds fall at even intervals of the epochs: for 60 epochs and 2 rounds, at
/// the start of epochs 21 and 41.
fn mining_due(epoch: usize, opts: &TrainOptions) -> bool {
    let r = opts.mining_rounds;
    r > 0 && epoch > 1 && (1..=r).any(|k| epoch == opts.epochs * k / (r + 1) + 1)
}

/// Distillation temperature for fine-tuning.
const DISTILL_T: f64 = 2.0;

pub fn train(opts: &TrainOptions, stop: &AtomicBool) -> Result<TrainOutcome> {
    let t0 = Instant::now();
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
        None => {
            let mut f = arch.default_features();
            f.lead_samples = opts.lead_ms as usize * f.sample_rate as usize / 1000;
            f.clip_samples += f.lead_samples;
            f
        }
    };
    let len = features.clip_samples;
    if opts.batch_size == 0 || opts.epochs == 0 {
        bail!("--epochs and --batch-size must be at least 1");
    }

    // ---- data -------------------------------------------------------------------
    let scan = match &base {
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
    let labels = scan.labels.clone();
    if scan.split_by_clip {
        eprintln!(
            "warning: {}: no speaker falls into the validation or test split (too few speakers); clips are split by file name instead, so the held-out figures include voices heard in training",
            opts.data.display()
        );
    }
    let silence = labels.iter().position(|l| l == SILENCE);
    log(
        opts.quiet,
        format!(
            "Found {} files belonging to {} labels: {}",
            scan.clips.len(),
            labels.len(),
            labels.join(", ")
        ),
    );
    let paths: Vec<&Path> = scan.clips.iter().map(|c| c.path.as_path()).collect();
    let pb = bar(
        paths.len() as u64,
        opts.quiet,
        "Decoding {bar:30} {pos}/{len} clips",
    );
    let (decoded, mut skipped) = dataset::load_clips(&paths, &features, opts.threads, &pb);
    pb.finish_and_clear();
    let mut noise_recs = Vec::new();
    for p in &scan.noise_files {
        match audio::read_mono_16k(p, 1800.0) {
            Ok(x) => noise_recs.push(x),
            Err(e) => skipped.push(format!("{e:#}")),
        }
    }
    let mut negatives = match &opts.negatives {
        Some(dir) => {
            let commands: Vec<String> = labels
                .iter()
                .filter(|l| !l.starts_with('_'))
                .cloned()
                .collect();
            let n = Negatives::load(dir, &commands, len, opts.seed)?;
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
            skipped.extend(n.pool.skipped.iter().cloned());
            Some(n)
        }
        None => None,
    };
    if !skipped.is_empty() {
        for s in skipped.iter().take(20) {
            eprintln!("warning: skipped {s}");
        }
        if skipped.len() > 20 {
            eprintln!("warning: ... and {} more", skipped.len() - 20);
        }
        eprintln!(
            "warning: skipped {} unusable file(s) of {}",
            skipped.len(),
            paths.len()
                + scan.noise_files.len()
                + negatives.as_ref().map_or(0, |n| n.scan.files.len())
        );
    }
    let noise = if noise_recs.is_empty() {
        NoiseBank::synthetic()
    } else {
        NoiseBank::from_recordings(noise_recs)
    };
    let mut splits: Vec<Examples> = (0..3)
        .map(|_| Examples {
            clips: Vec::new(),
            labels: Vec::new(),
        })
        .collect();
    let mut kept = Vec::new();
    for (c, d) in scan.clips.iter().zip(decoded) {
        if let Some(x) = d {
            splits[c.split as usize].clips.push(x);
            splits[c.split as usize].labels.push(c.label);
            kept.push(c.clone());
        }
    }
    if kept.is_empty() {
        bail!(
            "{}: none of the {} clips could be read",
            opts.data.display(),
            scan.clips.len()
        );
    }
    let distinct: std::collections::BTreeSet<usize> =
        kept.iter().map(|c| c.label).chain(silence).collect();
    if distinct.len() < 2 {
        bail!(
            "{}: only one label has usable clips; a keyword model needs at least two",
            opts.data.display()
        );
    }
    // Held-out splits must not be empty: say so rather than report on nothing; and
    // say when they are so small that their figures mean little.
    for s in [Split::Validation, Split::Test] {
        let n = splits[s as usize].clips.len();
        if (1..5).contains(&n) {
            eprintln!(
                "warning: {}: the {} split holds only {n} clip(s) (too few clips to hold more out); its figures say next to nothing: judge the model by listening to it",
                opts.data.display(),
                s.name()
            );
        }
        if splits[s as usize].clips.is_empty() {
            bail!(
                "{}: the {} split is empty ({} usable clips); add clips from more speakers",
                opts.data.display(),
                s.name(),
                kept.len()
            );
        }
    }
    let counts = dataset::counts(&kept, labels.len());
    let train_counts = &counts[&Split::Train];
    if let Some(b) = &base {
        let missing: Vec<&str> = (0..b.card.labels.len())
            .filter(|&i| b.card.is_command(i) && train_counts[i] == 0)
            .map(|i| labels[i].as_str())
            .collect();
        if !missing.is_empty() && labels.len() > b.card.labels.len() {
            eprintln!(
                "warning: {} has no clips of {}: the new words are never trained against them and may fire on them; add a few dozen clips of each (folders from Speech Commands, `listen --record`, or `scripts/synth-clips {} {}`)",
                opts.data.display(),
                missing.join(", "),
                opts.data.display(),
                missing.join(",")
            );
        }
    }
    let real: Vec<f64> = train_counts
        .iter()
        .enumerate()
        .filter(|(i, &n)| Some(*i) != silence && n > 0)
        .map(|(_, &n)| n as f64)
        .collect();
    // Every label is drawn `target` times an epoch (thin ones oversampled, each draw
    // augmented afresh); at least MIN_DRAWS, so that a few dozen clips of a new word
    // still make an epoch worth the name.
    let target = util::median(&real).max(MIN_DRAWS as f64) as usize;
    // _silence_ examples for held-out splits: as many as an average label has there.
    for s in [Split::Validation, Split::Test] {
        if let Some(si) = silence {
            let ex = &mut splits[s as usize];
            let k = labels.len().saturating_sub(1).max(1);
            let count = (ex.clips.len() / k).max(1);
            for x in silence_examples(&noise, s, count, opts.seed, len) {
                ex.clips.push(x);
                ex.labels.push(si);
            }
        }
    }
    // Speech for validation: early stopping weighs staying quiet too.
    let unknown_label = labels.iter().position(|l| l == model::UNKNOWN);
    if let (Some(n), Some(u)) = (&negatives, unknown_label) {
        let count = NEGATIVE_DRAWS * (splits[1].clips.len() / labels.len().max(1)).max(1);
        let (crops, bad) = n.validation_crops(len, count, opts.seed);
        skipped.extend(bad);
        splits[1].labels.extend(std::iter::repeat_n(u, crops.len()));
        splits[1].clips.extend(crops);
    }

    // ---- features & normalisation ---------------------------------------------
    let mut fe = FeatureExtractor::new(&features)?;
    let train_plain = features_of(&mut fe, None, &splits[0].clips);
    let mut norm_blocks: Vec<&[f32]> = train_plain
        .chunks(features.n_frames() * features.n_bins())
        .collect();
    let sil_train = silence
        .map(|_| silence_examples(&noise, Split::Train, target.min(500), opts.seed, len))
        .unwrap_or_default();
    let sil_feats = features_of(&mut fe, None, &sil_train);
    norm_blocks.extend(sil_feats.chunks(features.n_frames() * features.n_bins()));
    // Fine-tuning keeps the base model's normalisation: its layers were trained on it.
    let norm = match &base {
        Some(b) => b.card.normalisation.clone(),
        None => Normalisation::fit(norm_blocks.into_iter(), features.n_bins()),
    };
    drop(train_plain);
    let val_x = features_of(&mut fe, Some(&norm), &splits[1].clips);
    let test_x = features_of(&mut fe, Some(&norm), &splits[2].clips);

    let mut model = match &base {
        Some(b) => Model::grow_from(b, labels.clone(), opts.device)?,
        None => Model::new(
            ModelCard::new(arch.clone(), labels.clone(), features.clone(), norm.clone()),
            opts.device,
        )?,
    };
    let mut card = model.card.clone();
    if let Some(b) = &base {
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
    log(
        opts.quiet,
        format!(
            "Model: {:?}, {} parameters; {} train / {} validation / {} test examples; device {:?}",
            arch,
            card.parameters,
            splits[0].clips.len(),
            splits[1].clips.len(),
            splits[2].clips.len(),
            opts.device
        ),
    );

    // ---- training ---------------------------------------------------------------
    let mut opt = nn::AdamW {
        wd: opts.weight_decay,
        ..Default::default()
    }
    .build(&model.vs, opts.lr)?;
    let train_clips = Arc::new(std::mem::take(&mut splits[0].clips));
    let train_labels = splits[0].labels.clone();
    let noise = Arc::new(noise);
    let norm = Arc::new(norm);
    let mut history: Vec<plots::Epoch> = Vec::new();
    // (validation loss, epoch, weights) of the best epoch so far
    let mut best: Option<Best> = None;
    let mut interrupted = false;
    let steps_per_epoch = {
        let n: usize = (0..labels.len())
            .map(|l| {
                if Some(l) == silence {
                    target
                } else if train_counts[l] > 0 {
                    train_counts[l].max(target)
                } else {
                    0
                }
            })
            .sum();
        let partial = if labels.iter().any(|l| l == model::UNKNOWN) {
            (target as f32 * opts.augment.partial_share) as usize
        } else {
            0
        };
        let speech = if negatives.is_some() {
            (NEGATIVE_DRAWS + 1) * target
        } else {
            0
        };
        (n + partial + speech).div_ceil(opts.batch_size)
    };
    let total_steps = (steps_per_epoch * opts.epochs).max(1);
    let warmup = steps_per_epoch.max(1);
    let mut step = 0usize;
    let train_start = Instant::now();

    for epoch in 1..=opts.epochs {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if let Some(b) = opts.time_budget {
            let spent = train_start.elapsed().as_secs_f64();
            let per = if history.is_empty() {
                0.0
            } else {
                spent / history.len() as f64
            };
            if spent + per > b && !history.is_empty() {
                log(
                    opts.quiet,
                    format!(
                        "Time budget of {b:.0} s reached after {} epochs",
                        history.len()
                    ),
                );
                break;
            }
        }
        if let Some(n) = negatives.as_mut().filter(|_| mining_due(epoch, opts)) {
            let falling = match n.rounds.as_slice() {
                [.., a, b] => b.near_fires_per_hour < 0.9 * a.near_fires_per_hour,
                _ => true,
            };
            if falling {
                let r = n.mine(&model, &norm, epoch, opts.seed)?;
                log(
                    opts.quiet,
                    format!(
                        "Mining at epoch {epoch}: {:.1} h of training speech, {} of {} windows nearly fire ({:.0}/h); {} hard negatives kept",
                        r.hours, r.near_fires, r.windows, r.near_fires_per_hour, r.kept
                    ),
                );
            }
        }
        let e0 = Instant::now();
        // Balanced epoch: every label drawn up to `target` times (thin ones oversampled),
        // `_silence_` generated fresh.
        let mut rng = Rng::new(opts.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let mut order: Vec<Item> = Vec::new();
        let unknown = labels.iter().position(|l| l == model::UNKNOWN);
        let commands: Vec<usize> = (0..train_labels.len())
            .filter(|&i| !labels[train_labels[i]].starts_with('_'))
            .collect();
        if unknown.is_some() && !commands.is_empty() {
            let n = (target as f32 * opts.augment.partial_share) as usize;
            order.extend((0..n).map(|_| Item::Partial(commands[rng.below(commands.len())])));
        }
        if let Some(n) = &negatives {
            if !n.pool.is_empty() {
                let k = n.pool.len();
                order.extend((0..NEGATIVE_DRAWS * target).map(|_| Item::Speech(rng.below(k))));
            }
            // Mined windows: a label's worth and no more, so that `_unknown_` does not
            // crowd out the commands.
            let mut hard: Vec<usize> = (0..n.hard.len()).collect();
            rng.shuffle(&mut hard);
            order.extend(hard.into_iter().take(target).map(Item::Hard));
        }
        for l in 0..labels.len() {
            if Some(l) == silence {
                order.extend(std::iter::repeat_n(Item::Silence, target));
                continue;
            }
            let idx: Vec<usize> = (0..train_labels.len())
                .filter(|&i| train_labels[i] == l)
                .collect();
            if idx.is_empty() {
                continue;
            }
            let want = idx.len().max(target);
            order.extend(idx.iter().map(|&i| Item::Clip(i)));
            for _ in idx.len()..want {
                order.push(Item::Clip(idx[rng.below(idx.len())]));
            }
        }
        rng.shuffle(&mut order);
        let n_batches = order.len().div_ceil(opts.batch_size);
        let (tx, rx) = std::sync::mpsc::sync_channel::<(Vec<f32>, Vec<i64>)>(4);
        let producer = {
            let (clips, noise, norm, feats, aug) = (
                train_clips.clone(),
                noise.clone(),
                norm.clone(),
                features.clone(),
                opts.augment.clone(),
            );
            let labels_of = train_labels.clone();
            let (pool, hard) = match &negatives {
                Some(n) => (n.pool.clone(), n.hard.clone()),
                None => (Arc::new(CropPool::new(len)), Arc::new(CropPool::new(len))),
            };
            let bs = opts.batch_size;
            let sil = silence.unwrap_or(0);
            let unk = unknown.unwrap_or(0);
            let mut unk_aug = aug.clone();
            unk_aug.shift_ms = aug.unknown_shift_ms;
            let mut rng = Rng::new(rng.next_u64());
            std::thread::spawn(move || -> Result<()> {
                let mut fe = FeatureExtractor::new(&feats)?;
                let (frames, bins) = (feats.n_frames(), feats.n_bins());
                for chunk in order.chunks(bs) {
                    let mut xs = Vec::with_capacity(chunk.len() * frames * bins);
                    let mut ys = Vec::with_capacity(chunk.len());
                    for item in chunk {
                        let (wave, y) = match *item {
                            Item::Clip(i) if labels_of[i] == unk => (
                                augment::augment_wave(&clips[i], &noise, &mut rng, &unk_aug),
                                unk,
                            ),
                            Item::Clip(i) => {
                                let mut w =
                                    augment::augment_wave(&clips[i], &noise, &mut rng, &aug);
                                // Some commands said while someone else talks.
                                if !pool.is_empty() && rng.f32() < negatives::OVER_SPEECH_SHARE {
                                    let s = pool.get(rng.below(pool.len()));
                                    negatives::mix_under(&mut w, &s, rng.range(5.0, 20.0));
                                }
                                (w, labels_of[i])
                            }
                            Item::Speech(i) => (
                                augment::augment_wave(&pool.get(i), &noise, &mut rng, &unk_aug),
                                unk,
                            ),
                            Item::Hard(i) => (
                                augment::augment_wave(&hard.get(i), &noise, &mut rng, &aug),
                                unk,
                            ),
                            Item::Partial(i) => {
                                let part = augment::partial_word(&clips[i], &mut rng);
                                (
                                    augment::augment_wave(&part, &noise, &mut rng, &unk_aug),
                                    unk,
                                )
                            }
                            Item::Silence => (
                                augment::silence_clip(
                                    &noise,
                                    Split::Train,
                                    &mut rng,
                                    feats.clip_samples,
                                ),
                                sil,
                            ),
                        };
                        let mut f = fe.compute(&wave);
                        norm.apply(&mut f);
                        augment::spec_augment(&mut f, frames, bins, &mut rng, &aug);
                        xs.extend(f);
                        ys.push(y as i64);
                    }
                    if tx.send((xs, ys)).is_err() {
                        break;
                    }
                }
                Ok(())
            })
        };
        let pb = bar(
            n_batches as u64,
            opts.quiet,
            &format!(
                "Epoch {epoch}/{} {{bar:30}} {{pos}}/{{len}} {{msg}}",
                opts.epochs
            ),
        );
        let (mut loss_sum, mut correct, mut seen) = (0.0, 0usize, 0usize);
        for (xs, ys) in rx.iter() {
            if stop.load(Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            // Learning rate: linear warm-up over the first epoch, then cosine decay.
            let lr = opt_lr_now(step, warmup, total_steps, opts.lr);
            opt.set_lr(lr);
            let b = ys.len() as i64;
            let x = Tensor::from_slice(&xs)
                .view([b, features.n_frames() as i64, features.n_bins() as i64])
                .to_device(opts.device);
            let y = Tensor::from_slice(&ys).to_device(opts.device);
            let logits = model.forward_t(&x, true);
            let ce =
                logits.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, 0.05);
            let loss = match base.as_ref().filter(|_| opts.distill > 0.0) {
                // Learning without forgetting (Li & Hoiem 2016): on every example, the
                // new model's answer over the base model's labels stays close to the base
                // model's, which keeps the learned features and the old labels' ranking.
                // It cannot teach the new rows to stay quiet on old commands the data
                // lacks: that needs their clips as negatives (train() warns).
                Some(bm) => {
                    let n_old = bm.card.labels.len() as i64;
                    let teacher = tch::no_grad(|| {
                        (bm.forward_t(&x, false) / DISTILL_T).softmax(-1, Kind::Float)
                    });
                    let student =
                        (logits.narrow(1, 0, n_old) / DISTILL_T).log_softmax(-1, Kind::Float);
                    let kl = (&teacher * ((&teacher + 1e-8).log() - student)).sum(Kind::Float)
                        / b as f64;
                    ce + kl * (opts.distill * DISTILL_T * DISTILL_T)
                }
                None => ce,
            };
            opt.backward_step(&loss);
            let l = loss.double_value(&[]);
            let c = logits
                .argmax(-1, false)
                .eq_tensor(&y)
                .to_kind(Kind::Int64)
                .sum(Kind::Int64)
                .int64_value(&[]);
            loss_sum += l * b as f64;
            correct += c as usize;
            seen += b as usize;
            step += 1;
            pb.inc(1);
            pb.set_message(format!(
                "loss: {:.4} - accuracy: {:.4}",
                loss_sum / seen as f64,
                correct as f64 / seen as f64
            ));
        }
        drop(rx);
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("data thread failed"))??;
        pb.finish_and_clear();
        if interrupted && seen == 0 {
            break;
        }
        let (val_loss, val_acc, _) = evaluate_features(&model, &val_x, &splits[1].labels);
        let row = plots::Epoch {
            epoch,
            loss: loss_sum / seen.max(1) as f64,
            accuracy: correct as f64 / seen.max(1) as f64,
            val_loss,
            val_accuracy: val_acc,
            lr: opt_lr_now(step, warmup, total_steps, opts.lr),
            seconds: e0.elapsed().as_secs_f64(),
        };
        log(
            opts.quiet,
            format!(
                "Epoch {epoch}/{} - {:.0}s - loss: {:.4} - accuracy: {:.4} - val_loss: {:.4} - val_accuracy: {:.4}",
                opts.epochs, row.seconds, row.loss, row.accuracy, row.val_loss, row.val_accuracy
            ),
        );
        history.push(row);
        if best.as_ref().map(|b| val_loss < b.0).unwrap_or(true) {
            best = Some((val_loss, epoch, model.snapshot()));
        } else if let Some((_, be, _)) = &best {
            // A mining round changes what is trained on: give it `patience` epochs too.
            let mined = negatives
                .as_ref()
                .and_then(|n| n.rounds.last())
                .map_or(0, |r| r.epoch);
            if epoch - (*be).max(mined) >= opts.patience {
                log(
                    opts.quiet,
                    format!("Early stopping: no better validation loss since epoch {be}"),
                );
                break;
            }
        }
        if interrupted {
            break;
        }
    }
    let Some((best_loss, best_epoch, snap)) = best else {
        bail!("training was stopped before the first epoch finished; the previous model (if any) is untouched");
    };
    if interrupted {
        eprintln!("Interrupted: keeping the best model so far (epoch {best_epoch}, val_loss {best_loss:.4})");
    }
    model.restore(&snap);
    let train_seconds = train_start.elapsed().as_secs_f64();

    // ---- test report --------------------------------------------------------------
    let (_, _, preds) = evaluate_features(&model, &test_x, &splits[2].labels);
    let report = Report::new(&labels, &splits[2].labels, &preds);

    // ---- card -------------------------------------------------------------------------
    let per_split = |s: Split| -> serde_json::Value {
        let c = &counts[&s];
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), serde_json::json!(c[i])))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let speakers = |s: Split| {
        kept.iter()
            .filter(|c| c.split == s && !c.synthetic)
            .filter_map(|c| c.speaker.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let synthetic: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            (
                l.clone(),
                serde_json::json!(kept.iter().filter(|c| c.synthetic && c.label == i).count()),
            )
        })
        .filter(|(_, v)| v.as_u64() != Some(0))
        .collect();
    card.training = serde_json::json!({
        "data": opts.data.file_name().map(|n| n.to_string_lossy().to_string()),
        "clips": {"train": per_split(Split::Train), "validation": per_split(Split::Validation), "test": per_split(Split::Test)},
        "speakers": {"train": speakers(Split::Train), "validation": speakers(Split::Validation), "test": speakers(Split::Test)},
        "synthetic_clips": synthetic,
        "unknown_words": kept.iter().filter(|c| labels[c.label] == model::UNKNOWN).map(|c| c.folder.clone()).collect::<std::collections::BTreeSet<_>>(),
        "silence": if silence.is_some() { if noise.synthetic { "synthetic noise" } else { "_background_noise_ (first 80% of each file for training)" } } else { "none" },
        "skipped_files": skipped.len(),
        "split": if scan.split_by_clip { "by seeded file-name hash (too few speakers to hold any out); 80/10/10" } else { "by speaker hash (<speaker>_nohash_<n>.wav), else by seeded file-name hash; words with fewer than 5 speakers by file name; 80/10/10" },
        "balancing": format!("every clip once per epoch; a label with fewer clips than {target} (the median label count, at least {MIN_DRAWS}) drawn again at random up to {target}"),
        "augmentation": opts.augment,
        "epochs_run": history.len(),
        "best_epoch": best_epoch,
        "batch_size": opts.batch_size,
        "learning_rate": opts.lr,
        "weight_decay": opts.weight_decay,
        "seed": opts.seed,
        "device": format!("{:?}", opts.device),
        "threads": opts.threads,
        "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / history.len().max(1) as f64,
        "interrupted": interrupted,
    });
    if let Some(n) = &negatives {
        card.training["negatives"] = serde_json::json!({
            "folder": opts.negatives.as_ref().and_then(|d| d.file_name()).map(|n| n.to_string_lossy().to_string()),
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
        });
    }
    if let Some(b) = &base {
        card.training["fine_tuning"] = serde_json::json!({
            "from": b.source,
            "base_labels": b.card.labels,
            "new_labels": labels[b.card.labels.len()..],
            "base_labels_without_clips": b.card.labels.iter().enumerate()
                .filter(|(i, l)| !l.starts_with('_') && train_counts[*i] == 0)
                .map(|(_, l)| l.clone()).collect::<Vec<_>>(),
            "distillation_weight": opts.distill,
            "distillation_temperature": DISTILL_T,
            "normalisation": "kept from the base model",
        });
    }
    card.metrics = serde_json::json!({"test": report.json()});
    model.card = card.clone();

    // ---- write the folder ---------------------------------------------------------------
    write_model_folder(&model, &history, &report, &splits[2], &mut fe, opts)?;
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
        card,
        history,
        interrupted,
        skipped,
    })
}

fn opt_lr_now(step: usize, warmup: usize, total: usize, lr: f64) -> f64 {
    if step < warmup {
        lr * (step + 1) as f64 / warmup as f64
    } else {
        let p = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
        1e-5 + (lr - 1e-5) * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())
    }
}

/// Writes weights, card, history, report and plots into a staging folder, then swaps it in.
fn write_model_folder(
    model: &Model,
    history: &[plots::Epoch],
    report: &Report,
    test: &Examples,
    fe: &mut FeatureExtractor,
    opts: &TrainOptions,
) -> Result<()> {
    let out = opts.out.as_path();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    util::remove_stale_siblings(out);
    let stage = model::staging_dir(out);
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)
        .with_context(|| format!("cannot create {}", stage.display()))?;
    let result = (|| -> Result<()> {
        model.write_into(&stage)?;
        let mut csv = String::from("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n");
        for e in history {
            csv += &format!(
                "{},{:.6},{:.6},{:.6},{:.6},{:.3e},{:.2}\n",
                e.epoch, e.loss, e.accuracy, e.val_loss, e.val_accuracy, e.lr, e.seconds
            );
        }
        std::fs::write(stage.join("history.csv"), csv)?;
        std::fs::write(
            stage.join("report.txt"),
            format!(
                "Test split (speakers never seen in training)\n\n{}\n{}",
                report.text(),
                report.confusion_text()
            ),
        )?;
        plots::history(&stage.join("history.png"), history)?;
        plots::confusion(
            &stage.join("confusion.png"),
            &report.labels,
            &report.confusion,
            "Confusion matrix (test split)",
        )?;
        // One keyword clip from the test split, as the tutorial shows.
        let pick = (0..test.labels.len())
            .find(|&i| model.card.is_command(test.labels[i]))
            .unwrap_or(0);
        if let Some(wave) = test.clips.get(pick) {
            let mut spec = fe.compute(wave);
            if model.card.features.kind == crate::features::FeatureKind::StftMagnitude {
                spec.iter_mut().for_each(|v| *v = (*v + 1e-6).ln());
            }
            let title = &model.card.labels[test.labels[pick]];
            plots::wave_and_spectrogram(
                &stage.join("example.png"),
                title,
                wave,
                audio::SAMPLE_RATE,
                &spec,
                model.card.features.n_bins(),
            )?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&stage);
        return Err(e);
    }
    util::sync_dir(&stage)?;
    // Checked again: something may have been put there while training ran.
    if let Err(e) = model::check_destination(out, &opts.data) {
        let keep = util::free_name(out);
        std::fs::rename(&stage, &keep)
            .with_context(|| format!("{e:#}; cannot move the new model to {}", keep.display()))?;
        bail!(
            "{e:#}; the new model was saved to {} instead",
            keep.display()
        );
    }
    util::replace_dir_atomic(&stage, out)
}
