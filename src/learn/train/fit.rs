//! Step 4, the fit: epochs of balanced, freshly augmented examples (made on a second
//! thread while the model trains on the previous batch), AdamW with warm-up and cosine
//! decay, validation after every epoch, early stopping on the validation loss, the best
//! epoch's weights kept; Ctrl-C (the `stop` flag) ends after the current batch. Mining
//! rounds ([`super::mining`]) run between epochs. Hands on the history and the best
//! epoch, with its weights restored into the model.
use super::data::{Data, NEGATIVE_DRAWS};
use super::inputs::Inputs;
use super::plan::Plan;
use super::{log, mining, progress, TrainOptions};
use crate::audio::embedding;
use crate::audio::features::{FeatureConfig, FeatureExtractor, FeatureKind, Normalisation};
use crate::learn::augment::{self, AugmentConfig, NoiseBank};
use crate::learn::cache;
use crate::learn::dataset::Split;
use crate::learn::negatives;
use crate::learn::plots;
use crate::learn::speech::CropPool;
use crate::learn::speech_bank::SpeechBank;
use crate::model::Model;
use crate::util::Rng;
use anyhow::{bail, Result};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;
use tch::{nn, nn::OptimizerConfig, Device, Kind, Tensor};

/// Share of `_silence_` examples whose lead is digital zeros.
const ZERO_LEAD_SHARE: f32 = 0.25;

/// Distillation temperature for fine-tuning.
pub(super) const DISTILL_T: f64 = 2.0;

pub(super) struct Fit {
    pub history: Vec<plots::Epoch>,
    pub best_epoch: usize,
    pub interrupted: bool,
    pub train_seconds: f64,
}

/// The best epoch so far: validation loss, epoch, weights.
type Best = (f64, usize, Vec<(String, Tensor)>);

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

/// The learning rate over the run: linear warm-up over the first epoch, then cosine decay.
struct Schedule {
    warmup: usize,
    total: usize,
    peak: f64,
}

impl Schedule {
    fn lr(&self, step: usize) -> f64 {
        let lr = self.peak;
        if step < self.warmup {
            lr * (step + 1) as f64 / self.warmup as f64
        } else {
            let p =
                (step - self.warmup) as f64 / self.total.saturating_sub(self.warmup).max(1) as f64;
            1e-5 + (lr - 1e-5) * 0.5 * (1.0 + (std::f64::consts::PI * p.min(1.0)).cos())
        }
    }
}

/// What the batch thread draws from: the training clips and every other source.
#[derive(Clone)]
struct Sources {
    clips: Arc<Vec<Vec<f32>>>,
    labels: Arc<Vec<usize>>,
    noise: Arc<NoiseBank>,
    norm: Arc<Normalisation>,
    features: FeatureConfig,
    augment: AugmentConfig,
    /// Speech that is not a command, and mined windows (empty without negatives).
    pool: Arc<CropPool>,
    hard: Arc<CropPool>,
    silence: usize,
    unknown: usize,
    /// Features kept across epochs when the front end is frozen and costly.
    memo: Option<Arc<Mutex<Memo>>>,
    /// The training speech embedded once (models on the speech embedding): speech and
    /// mined items are its windows.
    bank: Option<Arc<SpeechBank>>,
    hard_windows: Arc<Vec<u32>>,
}

/// Augmented examples' features, kept across epochs and runs. With the speech
/// embedding a window's features cost ~6 ms (the network), 100 times the head's
/// training step, so each clip is augmented in a few variants once and an epoch draws
/// among them (speech and mined windows come from the speech bank, already embedded).
/// A variant depends only on the seed and its key, never on the order of the draws, so
/// the variants kept on disk (under a key of all that made them) are those a run
/// without them would make.
struct Memo {
    map: HashMap<(u8, usize, usize), Arc<Vec<f32>>>,
    seed: u64,
    /// The cache file and its key; how many variants were read from it.
    file: Option<(PathBuf, u64)>,
    loaded: usize,
}

/// Variants kept per training clip and partial word; `_silence_` examples kept.
const MEMO_VARIANTS: usize = 4;
const MEMO_SILENCES: usize = 1024;
/// Changes whenever what a variant holds changes for the same inputs.
const MEMO_VERSION: &[u8] = b"clip-variants-1";

impl Memo {
    /// The key of one draw of `item`: which variant of it this epoch uses (None:
    /// speech and mined crops, drawn fresh, as without a bank).
    fn key(item: Item, rng: &mut Rng) -> Option<(u8, usize, usize)> {
        let v = rng.below(MEMO_VARIANTS);
        match item {
            Item::Clip(i) => Some((0, i, v)),
            Item::Partial(i) => Some((1, i, v)),
            Item::Silence => Some((2, rng.below(MEMO_SILENCES), 0)),
            Item::Speech(_) | Item::Hard(_) => None,
        }
    }

    /// The random draws of one variant: from the seed and its key alone.
    fn rng(&self, key: (u8, usize, usize)) -> Rng {
        let mut k = cache::Key::new();
        k.add(&self.seed.to_le_bytes())
            .add(&[key.0])
            .add(&(key.1 as u64).to_le_bytes())
            .add(&(key.2 as u64).to_le_bytes());
        Rng::new(k.value())
    }

    /// The variants kept by an earlier run of the same inputs, if any.
    fn open(opts: &TrainOptions, data: &Data, src: &Sources) -> Result<Memo> {
        let mut key = cache::Key::new();
        key.add(MEMO_VERSION)
            .add(&embedding::fingerprint().to_le_bytes())
            .add(&serde_json::to_vec(&src.features)?)
            .add(&serde_json::to_vec(&opts.augment)?)
            .add(&opts.seed.to_le_bytes())
            .add(&src.noise.fingerprint().to_le_bytes())
            .add(&src.pool.fingerprint().to_le_bytes())
            .add(&(MEMO_VARIANTS as u64).to_le_bytes())
            .add(&(MEMO_SILENCES as u64).to_le_bytes());
        for c in data.kept.iter().filter(|c| c.split == Split::Train) {
            key.add_file(&c.path).add(&(c.label as u64).to_le_bytes());
        }
        let key = key.value();
        let file = cache::dir().map(|d| (d.join(format!("clip-variants-{key:016x}.bin")), key));
        let per = (src.features.n_frames() * src.features.n_bins()) as u32;
        let map: HashMap<_, _> = file
            .as_ref()
            .and_then(|(p, k)| cache::read(p, *k))
            .filter(|s| {
                let n = s.ints.len() / 3;
                s.header == [per as f64]
                    && s.ints.len() == 3 * n
                    && s.floats.len() == n * per as usize
            })
            .map(|s| {
                s.ints
                    .chunks_exact(3)
                    .zip(s.floats.chunks_exact(per as usize))
                    .map(|(k, f)| {
                        (
                            (k[0] as u8, k[1] as usize, k[2] as usize),
                            Arc::new(f.to_vec()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Memo {
            loaded: map.len(),
            map,
            seed: opts.seed,
            file,
        })
    }

    /// Keeps the variants on disk when this run made new ones; a cache that cannot be
    /// written is one line, and the model is kept all the same.
    fn keep(&self) {
        let Some((path, key)) = &self.file else {
            return;
        };
        if self.map.len() == self.loaded {
            return;
        }
        let mut entries: Vec<_> = self.map.iter().collect();
        entries.sort_by_key(|(k, _)| **k);
        let per = entries.first().map_or(0, |(_, f)| f.len());
        let stored = cache::Stored {
            header: vec![per as f64],
            ints: entries
                .iter()
                .flat_map(|(k, _)| [k.0 as u32, k.1 as u32, k.2 as u32])
                .collect(),
            floats: entries
                .iter()
                .flat_map(|(_, f)| f.iter().copied())
                .collect(),
        };
        if let Err(e) = cache::write(path, *key, &stored) {
            eprintln!(
                "Could not keep the clip variants in {} ({e}); the next run computes them again",
                path.display()
            );
        }
    }
}

pub(super) fn fit(
    opts: &TrainOptions,
    plan: &Plan,
    data: &mut Data,
    inputs: &Inputs,
    model: &mut Model,
    stop: &AtomicBool,
) -> Result<Fit> {
    let mut opt = nn::AdamW {
        wd: opts.weight_decay,
        ..Default::default()
    }
    .build(&model.vs, opts.lr)?;
    let mut sources = Sources {
        clips: Arc::new(std::mem::take(&mut data.splits[0].clips)),
        labels: Arc::new(data.splits[0].labels.clone()),
        noise: data.noise.clone(),
        norm: inputs.norm.clone(),
        features: plan.features.clone(),
        augment: opts.augment.clone(),
        pool: Arc::new(CropPool::new(plan.clip_len())),
        hard: Arc::new(CropPool::new(plan.clip_len())),
        silence: data.silence.unwrap_or(0),
        unknown: data.unknown.unwrap_or(0),
        memo: None,
        bank: None,
        hard_windows: Arc::new(Vec::new()),
    };
    if let Some(n) = &data.negatives {
        sources.pool = n.pool.clone();
    }
    if plan.features.kind == FeatureKind::SpeechEmbedding {
        sources.memo = Some(Arc::new(Mutex::new(Memo::open(opts, data, &sources)?)));
    }
    let steps_per_epoch = steps_per_epoch(opts, data);
    let schedule = Schedule {
        warmup: steps_per_epoch.max(1),
        total: (steps_per_epoch * opts.epochs).max(1),
        peak: opts.lr,
    };
    let mut history: Vec<plots::Epoch> = Vec::new();
    let mut best: Option<Best> = None;
    let mut interrupted = false;
    let mut step = 0usize;
    let train_start = Instant::now();

    for epoch in 1..=opts.epochs {
        if stop.load(Ordering::SeqCst) {
            interrupted = true;
            break;
        }
        if out_of_time(opts, &history, train_start) {
            break;
        }
        if let Some(n) = data.negatives.as_mut() {
            mining::round_if_due(opts, epoch, n, model, &inputs.norm)?;
            sources.pool = n.pool.clone();
            sources.hard = n.hard.clone();
            sources.bank = n.bank.clone();
            sources.hard_windows = n.hard_windows.clone();
        }
        let e0 = Instant::now();
        let mut rng = Rng::new(opts.seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
        let order = epoch_order(opts, data, &sources.labels, &mut rng);
        let n_batches = order.len().div_ceil(opts.batch_size);
        let (batches, producer) = spawn_batches(
            order,
            opts.batch_size,
            sources.clone(),
            Rng::new(rng.next_u64()),
        );
        let pb = progress(
            n_batches as u64,
            opts.quiet,
            &format!(
                "Epoch {epoch}/{} {{bar:30}} {{pos}}/{{len}} {{msg}}",
                opts.epochs
            ),
        );
        let pass = train_epoch(
            opts, plan, model, &mut opt, &schedule, &mut step, batches, stop, &pb,
        );
        producer
            .join()
            .map_err(|_| anyhow::anyhow!("data thread failed"))??;
        pb.finish_and_clear();
        interrupted |= pass.interrupted;
        if pass.interrupted && pass.seen == 0 {
            break;
        }
        let (val_loss, val_acc, _) =
            evaluate_features(model, &inputs.val_x, &data.splits[1].labels);
        let row = plots::Epoch {
            epoch,
            loss: pass.loss_sum / pass.seen.max(1) as f64,
            accuracy: pass.correct as f64 / pass.seen.max(1) as f64,
            val_loss,
            val_accuracy: val_acc,
            lr: schedule.lr(step),
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
        let rounds = Rounds {
            last: data
                .negatives
                .as_ref()
                .and_then(|n| n.rounds.last())
                .map_or(0, |r| r.epoch),
            ahead: data.negatives.is_some()
                && (epoch + 1..=opts.epochs).any(|e| mining::due(e, opts)),
        };
        if keep_best(opts, &mut best, val_loss, epoch, &rounds, model) == Verdict::Stop {
            break;
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
    if let Some(m) = &sources.memo {
        m.lock()
            .map_err(|_| anyhow::anyhow!("feature memo poisoned"))?
            .keep();
    }
    Ok(Fit {
        history,
        best_epoch,
        interrupted,
        train_seconds: train_start.elapsed().as_secs_f64(),
    })
}

#[derive(PartialEq)]
enum Verdict {
    GoOn,
    Stop,
}

/// Mining rounds as early stopping sees them: the epoch of the last one run (0: none)
/// and whether one is still planned.
struct Rounds {
    last: usize,
    ahead: bool,
}

/// Keeps the weights of the epoch with the best validation loss so far, and says when
/// to stop early ([`patience_ran_out`]).
fn keep_best(
    opts: &TrainOptions,
    best: &mut Option<Best>,
    val_loss: f64,
    epoch: usize,
    rounds: &Rounds,
    model: &Model,
) -> Verdict {
    match best {
        Some((loss, be, _)) if val_loss >= *loss => {
            if patience_ran_out(opts.patience, epoch, *be, rounds) {
                log(
                    opts.quiet,
                    format!("Early stopping: no better validation loss since epoch {be}"),
                );
                return Verdict::Stop;
            }
        }
        _ => *best = Some((val_loss, epoch, model.snapshot())),
    }
    Verdict::GoOn
}

/// `patience` epochs without a better validation loss, counted from the last mining
/// round too (it changes what is trained on, so it gets `patience` epochs of its own);
/// never while a round is still planned, since stopping there would skip it and keep
/// weights from the middle of the learning-rate schedule (measured: a run on 75% of the
/// speakers stopped at epoch 39 of 80, before its second round, at 91.5% on test clips).
fn patience_ran_out(patience: usize, epoch: usize, best_epoch: usize, rounds: &Rounds) -> bool {
    !rounds.ahead && epoch - best_epoch.max(rounds.last) >= patience
}

/// `--time-budget`: no new epoch that would end past the budget, at the pace so far.
fn out_of_time(opts: &TrainOptions, history: &[plots::Epoch], start: Instant) -> bool {
    let Some(budget) = opts.time_budget else {
        return false;
    };
    if history.is_empty() {
        return false;
    }
    let spent = start.elapsed().as_secs_f64();
    let per = spent / history.len() as f64;
    if spent + per > budget {
        log(
            opts.quiet,
            format!(
                "Time budget of {budget:.0} s reached after {} epochs",
                history.len()
            ),
        );
        return true;
    }
    false
}

/// Batches an epoch holds (as `epoch_order` makes it), for the learning-rate schedule.
fn steps_per_epoch(opts: &TrainOptions, data: &Data) -> usize {
    let target = data.target;
    let counts = data.train_counts();
    let n: usize = (0..data.labels.len())
        .map(|l| {
            if Some(l) == data.silence {
                target
            } else if counts[l] > 0 {
                counts[l].max(target)
            } else {
                0
            }
        })
        .sum();
    let partial = if data.unknown.is_some() {
        (target as f32 * opts.augment.partial_share) as usize
    } else {
        0
    };
    let speech = if data.negatives.is_some() {
        (NEGATIVE_DRAWS + 1) * target
    } else {
        0
    };
    (n + partial + speech).div_ceil(opts.batch_size)
}

/// A balanced epoch: every clip once and every label drawn up to `target` times (thin
/// ones oversampled), `_silence_` generated fresh, parts of commands and speech as
/// `_unknown_`, and at most a label's worth of mined windows; shuffled.
fn epoch_order(
    opts: &TrainOptions,
    data: &Data,
    train_labels: &[usize],
    rng: &mut Rng,
) -> Vec<Item> {
    let target = data.target;
    let labels = &data.labels;
    let mut order: Vec<Item> = Vec::new();
    let commands: Vec<usize> = (0..train_labels.len())
        .filter(|&i| !labels[train_labels[i]].starts_with('_'))
        .collect();
    if data.unknown.is_some() && !commands.is_empty() {
        let n = (target as f32 * opts.augment.partial_share) as usize;
        order.extend((0..n).map(|_| Item::Partial(commands[rng.below(commands.len())])));
    }
    if let Some(n) = &data.negatives {
        let k = n.bank.as_ref().map_or(n.pool.len(), |b| b.len());
        if k > 0 {
            order.extend((0..NEGATIVE_DRAWS * target).map(|_| Item::Speech(rng.below(k))));
        }
        // Mined windows: a label's worth and no more, so that `_unknown_` does not
        // crowd out the commands.
        let mined = match &n.bank {
            Some(_) => n.hard_windows.len(),
            None => n.hard.len(),
        };
        let mut hard: Vec<usize> = (0..mined).collect();
        rng.shuffle(&mut hard);
        order.extend(hard.into_iter().take(target).map(Item::Hard));
    }
    for l in 0..labels.len() {
        if Some(l) == data.silence {
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
    order
}

/// Makes the epoch's batches (augmented, featurised, normalised) on a thread of
/// their own, a few ahead of the model.
type Batch = (Vec<f32>, Vec<i64>);

fn spawn_batches(
    order: Vec<Item>,
    batch_size: usize,
    src: Sources,
    mut rng: Rng,
) -> (Receiver<Batch>, JoinHandle<Result<()>>) {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(4);
    let producer = std::thread::spawn(move || -> Result<()> {
        let mut fe = FeatureExtractor::new(&src.features)?;
        let (frames, bins) = (src.features.n_frames(), src.features.n_bins());
        let mut unknown_aug = src.augment.clone();
        unknown_aug.shift_ms = src.augment.unknown_shift_ms;
        for chunk in order.chunks(batch_size) {
            let mut xs = Vec::with_capacity(chunk.len() * frames * bins);
            let mut ys = Vec::with_capacity(chunk.len());
            for item in chunk {
                let (f, y) = item_features(&src, &mut fe, &unknown_aug, *item, &mut rng)?;
                xs.extend(f);
                ys.push(y as i64);
            }
            if tx.send((xs, ys)).is_err() {
                break;
            }
        }
        Ok(())
    });
    (rx, producer)
}

/// One item's normalised features and label: a speech bank's window as it is, a kept
/// variant (frozen front end), or a fresh draw augmented and computed.
fn item_features(
    src: &Sources,
    fe: &mut FeatureExtractor,
    unknown_aug: &AugmentConfig,
    item: Item,
    rng: &mut Rng,
) -> Result<(Vec<f32>, usize)> {
    let banked = match (&src.bank, item) {
        (Some(b), Item::Speech(i)) => Some(b.window(i)),
        (Some(b), Item::Hard(i)) => Some(b.window(src.hard_windows[i] as usize)),
        _ => None,
    };
    if let Some(w) = banked {
        let mut f = w.to_vec();
        src.norm.apply(&mut f);
        mask_embeddings(&mut f, src, rng);
        return Ok((f, src.unknown));
    }
    let poisoned = || anyhow::anyhow!("feature memo poisoned");
    let kept = src
        .memo
        .as_ref()
        .and_then(|m| Memo::key(item, rng).map(|k| (m, k)));
    if let Some((memo, key)) = &kept {
        let (found, mut own) = {
            let m = memo.lock().map_err(|_| poisoned())?;
            (m.map.get(key).cloned(), m.rng(*key))
        };
        let f = match found {
            Some(f) => f,
            None => {
                // Kept raw, so that the variant does not depend on this run's statistics.
                let (wave, _) = example(src, unknown_aug, item, &mut own);
                let f = Arc::new(fe.compute(&wave));
                let mut m = memo.lock().map_err(|_| poisoned())?;
                m.map.insert(*key, f.clone());
                f
            }
        };
        let mut f = f.to_vec();
        src.norm.apply(&mut f);
        mask_embeddings(&mut f, src, rng);
        return Ok((f, label_of(src, item)));
    }
    let (wave, y) = example(src, unknown_aug, item, rng);
    let mut f = fe.compute(&wave);
    src.norm.apply(&mut f);
    if src.memo.is_none() {
        let (frames, bins) = (src.features.n_frames(), src.features.n_bins());
        augment::spec_augment(&mut f, frames, bins, rng, &src.augment);
    }
    Ok((f, y))
}

/// SpecAugment over kept embeddings, drawn afresh at every use: a kept variant or a
/// bank window then never comes back exactly as it was, so the head cannot learn it by
/// heart. Masks of up to 2 steps (160 ms) and up to 12 of the 96 values, twice each.
fn mask_embeddings(f: &mut [f32], src: &Sources, rng: &mut Rng) {
    let masks = AugmentConfig {
        time_masks: src.augment.time_masks,
        time_mask_max: src.augment.time_mask_max.min(2),
        freq_masks: src.augment.freq_masks,
        freq_mask_max: 2 * src.augment.freq_mask_max,
        ..src.augment.clone()
    };
    let (frames, bins) = (src.features.n_frames(), src.features.n_bins());
    augment::spec_augment(f, frames, bins, rng, &masks);
}

/// The label `example` gives `item`.
fn label_of(src: &Sources, item: Item) -> usize {
    match item {
        Item::Clip(i) => src.labels[i],
        Item::Silence => src.silence,
        Item::Partial(_) | Item::Speech(_) | Item::Hard(_) => src.unknown,
    }
}

/// One augmented waveform and its label. `_unknown_` material is shifted further
/// (`unknown_aug`): a word's part may sit anywhere in the window.
fn example(
    src: &Sources,
    unknown_aug: &AugmentConfig,
    item: Item,
    rng: &mut Rng,
) -> (Vec<f32>, usize) {
    let (noise, aug, unk) = (&*src.noise, &src.augment, src.unknown);
    match item {
        Item::Clip(i) if src.labels[i] == unk => (
            augment::augment_wave(&src.clips[i], noise, rng, unknown_aug),
            unk,
        ),
        Item::Clip(i) => {
            let mut w = augment::augment_wave(&src.clips[i], noise, rng, aug);
            // Some commands said while someone else talks.
            if !src.pool.is_empty() && rng.f32() < negatives::OVER_SPEECH_SHARE {
                let s = src.pool.get(rng.below(src.pool.len()));
                negatives::mix_under(&mut w, &s, rng.range(5.0, 20.0));
            }
            (w, src.labels[i])
        }
        Item::Speech(i) => (
            augment::augment_wave(&src.pool.get(i), noise, rng, unknown_aug),
            unk,
        ),
        Item::Hard(i) => (
            augment::augment_wave(&src.hard.get(i), noise, rng, aug),
            unk,
        ),
        Item::Partial(i) => {
            let part = augment::partial_word(&src.clips[i], rng);
            (augment::augment_wave(&part, noise, rng, unknown_aug), unk)
        }
        Item::Silence => {
            let mut w = augment::silence_clip(noise, Split::Train, rng, src.features.clip_samples);
            // A lone clip of a room (`--predict`, `--evaluate`) comes after digital
            // zeros in the model's window; training shows that window too.
            if rng.f32() < ZERO_LEAD_SHARE {
                w[..src.features.lead_samples].fill(0.0);
            }
            (w, src.silence)
        }
    }
}

/// Sums over one pass of the training batches.
struct Pass {
    loss_sum: f64,
    correct: usize,
    seen: usize,
    interrupted: bool,
}

/// One epoch's optimisation steps over the batches as they arrive.
#[allow(clippy::too_many_arguments)]
fn train_epoch(
    opts: &TrainOptions,
    plan: &Plan,
    model: &Model,
    opt: &mut nn::Optimizer,
    schedule: &Schedule,
    step: &mut usize,
    batches: Receiver<Batch>,
    stop: &AtomicBool,
    pb: &indicatif::ProgressBar,
) -> Pass {
    let features = &plan.features;
    let mut pass = Pass {
        loss_sum: 0.0,
        correct: 0,
        seen: 0,
        interrupted: false,
    };
    for (xs, ys) in batches.iter() {
        if stop.load(Ordering::SeqCst) {
            pass.interrupted = true;
            break;
        }
        opt.set_lr(schedule.lr(*step));
        let b = ys.len() as i64;
        let x = Tensor::from_slice(&xs)
            .view([b, features.n_frames() as i64, features.n_bins() as i64])
            .to_device(opts.device);
        let y = Tensor::from_slice(&ys).to_device(opts.device);
        // An ensemble's members learn each on its own loss, so that they stay different.
        let members = model.member_logits(&x, true);
        let ce = members
            .iter()
            .map(|l| l.cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, 0.05))
            .sum::<Tensor>()
            / members.len() as f64;
        let logits = crate::model::net::ensemble(&members);
        let loss = match plan.base.as_ref().filter(|_| opts.distill > 0.0) {
            Some(base) => {
                ce + distillation(base, &x, &logits) * (opts.distill * DISTILL_T * DISTILL_T)
            }
            None => ce,
        };
        opt.backward_step(&loss);
        let c = logits
            .argmax(-1, false)
            .eq_tensor(&y)
            .to_kind(Kind::Int64)
            .sum(Kind::Int64)
            .int64_value(&[]);
        pass.loss_sum += loss.double_value(&[]) * b as f64;
        pass.correct += c as usize;
        pass.seen += b as usize;
        *step += 1;
        pb.inc(1);
        pb.set_message(format!(
            "loss: {:.4} - accuracy: {:.4}",
            pass.loss_sum / pass.seen as f64,
            pass.correct as f64 / pass.seen as f64
        ));
    }
    // Dropping the receiver ends the batch thread early when the epoch was cut short.
    drop(batches);
    pass
}

/// Learning without forgetting (Li & Hoiem 2016): on every example, the new model's
/// answer over the base model's labels stays close to the base model's, which keeps
/// the learned features and the old labels' ranking. It cannot teach the new rows to
/// stay quiet on old commands the data lacks: that needs their clips as negatives
/// (the data step warns).
fn distillation(base: &Model, x: &Tensor, logits: &Tensor) -> Tensor {
    let n_old = base.card.labels.len() as i64;
    let teacher = tch::no_grad(|| (base.forward_t(x, false) / DISTILL_T).softmax(-1, Kind::Float));
    let student = (logits.narrow(1, 0, n_old) / DISTILL_T).log_softmax(-1, Kind::Float);
    (&teacher * ((&teacher + 1e-8).log() - student)).sum(Kind::Float) / logits.size()[0] as f64
}

/// Mean loss, accuracy and predictions of `model` over normalised features.
pub(super) fn evaluate_features(model: &Model, xs: &[f32], ys: &[usize]) -> (f64, f64, Vec<usize>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patience_counts_from_the_best_epoch_or_the_last_round_and_waits_for_planned_rounds() {
        let none = Rounds {
            last: 0,
            ahead: false,
        };
        assert!(!patience_ran_out(10, 19, 10, &none));
        assert!(patience_ran_out(10, 20, 10, &none));
        let after_round = Rounds {
            last: 21,
            ahead: false,
        };
        assert!(!patience_ran_out(10, 30, 10, &after_round));
        assert!(patience_ran_out(10, 31, 10, &after_round));
        let round_planned = Rounds {
            last: 21,
            ahead: true,
        };
        assert!(!patience_ran_out(10, 39, 29, &round_planned));
        assert!(!patience_ran_out(10, 60, 29, &round_planned));
    }

    #[test]
    fn rounds_are_planned_at_even_intervals() {
        let mut opts = TrainOptions::new("data".into(), "model".into());
        opts.epochs = 80;
        opts.mining_rounds = 3;
        let due: Vec<usize> = (1..=80).filter(|&e| mining::due(e, &opts)).collect();
        assert_eq!(due, [21, 41, 61]);
    }
}
