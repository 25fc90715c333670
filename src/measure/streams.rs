//! Long test streams (`--make-stream`): what a spotter hears at a desk. From a labelled
//! folder (only the speakers of one split, never those training heard) and its
//! `_background_noise_` (the matching time part of each recording), it writes a long
//! WAV with one word every ~3 s over background noise at random levels, about 30% of
//! them words that are not commands, and a CSV of where each word really is
//! (`label,start_ms,end_ms`, the voiced part of the clip). Deterministic from a seed.
//! Words are drawn at random (a label, then one of its clips), or, with `each_clip`,
//! every command clip of the split is said exactly once, so that no one recording
//! weighs on recall more than another.
use crate::audio::wav::{read_clip, rms, voiced_span, write_wav, SAMPLE_RATE};
use crate::learn::augment::NoiseBank;
use crate::learn::dataset::{
    file_name, folder_splits, is_synthetic, label_folders, list_wavs, Split, NOISE_DIR,
};
use crate::model::{SILENCE, UNKNOWN};
use crate::util::{write_atomic, Rng};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug)]
pub struct StreamOptions {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub minutes: f64,
    pub seed: u64,
    /// Speakers of this split only (the speaker hash training uses; seed 1 as in training).
    pub split: Option<Split>,
    /// The commands: folders with these names are keywords, every other word folder
    /// supplies the non-keywords.
    pub keywords: Vec<String>,
    /// Share of words that are not keywords.
    pub unknown_share: f64,
    /// Mean spacing between word starts, in seconds (each gap varies by +-0.5 s).
    pub spacing: f64,
    /// Running speech instead of words every few seconds (`--speech DIR`): utterances of
    /// this folder's held-out part laid end to end, with a command said alone about
    /// every `command_every` seconds (never, when 0).
    pub speech: Option<PathBuf>,
    /// With `speech`: the speech folder's splits to draw from.
    pub speech_splits: Vec<Split>,
    pub command_every: f64,
    /// Every command clip of the split once, in a shuffled order (the stream is as long
    /// as that takes; `minutes` is not used), instead of random draws.
    pub each_clip: bool,
}

/// The truth label of a stretch of running speech: not a command, so any detection in
/// it is a false alarm.
pub const SPEECH_LABEL: &str = "_speech_";

/// One spoken word in a stream.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TruthWord {
    pub label: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

pub struct StreamSummary {
    pub wav: PathBuf,
    pub csv: PathBuf,
    pub duration_s: f64,
    pub keywords: usize,
    pub others: usize,
    pub speakers: usize,
    /// With --speech: recordings that could not be read (named), skipped.
    pub skipped: Vec<String>,
    /// With --speech: utterances laid (and how many distinct), seconds of speech.
    pub utterances: usize,
    pub distinct_utterances: usize,
    pub speech_s: f64,
}

/// The truth CSV written beside a stream WAV.
pub fn truth_path(wav: &Path) -> PathBuf {
    wav.with_extension("csv")
}

/// Clips of each word folder that belong to `split` (all clips when None).
fn word_clips(dir: &Path, split: Option<Split>) -> Result<Vec<(String, Vec<PathBuf>)>> {
    let mut out = Vec::new();
    for (name, path) in label_folders(dir)? {
        if name == NOISE_DIR || name == SILENCE || name == UNKNOWN {
            continue;
        }
        let all = list_wavs(&path)?;
        let names: Vec<&str> = all.iter().map(|p| file_name(p)).collect();
        let splits = folder_splits(&names, 1);
        // Synthetic clips (scripts/synth-clips) are for training only.
        let files: Vec<PathBuf> = all
            .iter()
            .zip(&splits)
            .filter(|(p, s)| !is_synthetic(file_name(p)) && split.is_none_or(|w| **s == w))
            .map(|(p, _)| p.clone())
            .collect();
        if !files.is_empty() {
            out.push((name, files));
        }
    }
    Ok(out)
}

/// A word to lay: its label, its clip and whether it is a command.
type Word<'a> = (&'a str, &'a Path, bool);

/// With `each_clip`: every command clip once, and as many other words as the unknown
/// share asks for (each clip at most once), in a shuffled order.
fn each_clip_plan<'a>(
    keys: &'a [(String, Vec<PathBuf>)],
    others: &'a [(String, Vec<PathBuf>)],
    unknown_share: f64,
    seed: u64,
) -> Vec<Word<'a>> {
    let clips = |pool: &'a [(String, Vec<PathBuf>)], keyword: bool| {
        pool.iter()
            .flat_map(move |(l, fs)| fs.iter().map(move |f| (l.as_str(), f.as_path(), keyword)))
            .collect::<Vec<_>>()
    };
    // Its own generator: the random draws of the default stream stay as they were.
    let mut rng = Rng::new(seed ^ 0xeac4_c11b);
    let mut plan = clips(keys, true);
    let mut extra = clips(others, false);
    rng.shuffle(&mut extra);
    let share = unknown_share.clamp(0.0, 0.9);
    extra.truncate((plan.len() as f64 * share / (1.0 - share)).round() as usize);
    plan.extend(extra);
    rng.shuffle(&mut plan);
    plan
}

pub fn make_stream(opts: &StreamOptions) -> Result<StreamSummary> {
    // --each-clip takes as long as its clips do.
    let minutes_ok = opts.minutes > 0.0 && opts.minutes <= 600.0;
    if !opts.each_clip && !minutes_ok {
        bail!(
            "--minutes {}: use more than 0 and at most 600",
            opts.minutes
        );
    }
    check_out(&opts.out)?;
    let words = word_clips(&opts.dir, opts.split)?;
    let (keys, others): (Vec<_>, Vec<_>) = words
        .into_iter()
        .partition(|(n, _)| opts.keywords.contains(n));
    let which = opts
        .split
        .map(|s| format!(" of the {} split", s.name()))
        .unwrap_or_default();
    if keys.is_empty() {
        bail!(
            "{}: no clips{which} for any of the model's commands ({})",
            opts.dir.display(),
            opts.keywords.join(", ")
        );
    }
    let sr = SAMPLE_RATE as usize;
    let spacing = opts.spacing.max(1.5);
    let mut plan = opts
        .each_clip
        .then(|| each_clip_plan(&keys, &others, opts.unknown_share, opts.seed).into_iter());
    let minutes = match &plan {
        // Room for the widest gaps; the stream is cut after its last word.
        Some(p) => (3.0 + p.len() as f64 * (spacing + 0.5)) / 60.0,
        None => opts.minutes,
    };
    if minutes > 600.0 {
        bail!(
            "--each-clip: {} clips{which} would make a stream of {minutes:.0} minutes; the most is 600 (use --split or fewer clips)",
            plan.map_or(0, |p| p.len())
        );
    }
    let mut rng = Rng::new(opts.seed ^ 0x57_12ea);
    let total = (minutes * 60.0 * SAMPLE_RATE as f64) as usize;
    let mut x = noise_bed(opts, total, &mut rng)?;
    if opts.speech.is_some() {
        return speech_stream(opts, x, &keys, &mut rng);
    }

    let mut truth = Vec::new();
    let mut speakers = std::collections::BTreeSet::new();
    let (mut n_keys, mut n_others) = (0, 0);
    let mut t = sr as f64 * 1.5;
    let mut silent = 0;
    loop {
        let at = t as usize;
        if at + sr >= total {
            break;
        }
        let (label, path, keyword) = match plan.as_mut() {
            Some(p) => match p.next() {
                Some(word) => word,
                None => break,
            },
            None => {
                let keyword = others.is_empty() || rng.f32() as f64 >= opts.unknown_share;
                let pool = if keyword { &keys } else { &others };
                let (label, files) = &pool[rng.below(pool.len())];
                (
                    label.as_str(),
                    files[rng.below(files.len())].as_path(),
                    keyword,
                )
            }
        };
        // Up to 1.5 s: a short phrase whole (Speech Commands clips are 1 s).
        let clip = read_clip(path, sr * 3 / 2)
            .with_context(|| format!("--make-stream: {}", path.display()))?;
        let Some((a, b)) = voiced_span(&clip, SAMPLE_RATE) else {
            // A silent clip: draw another, but not forever.
            silent += 1;
            if silent >= 1000 {
                bail!(
                    "{}: no audible clips{which} (1000 silent clips drawn in a row); check the recordings",
                    opts.dir.display()
                );
            }
            continue;
        };
        silent = 0;
        // Words at -30 to -16 dBFS (voiced part): 10-40 dB above the background.
        let level = 10f32.powf(rng.range(-30.0, -16.0) / 20.0);
        let g = level / rms(&clip[a..b]).max(1e-6);
        for (i, v) in clip.iter().take(total - at).enumerate() {
            x[at + i] += v * g;
        }
        truth.push(TruthWord {
            label: label.to_string(),
            start_ms: ((at + a) * 1000 / sr) as u64,
            end_ms: ((at + b) * 1000 / sr) as u64,
        });
        if let Some(s) = crate::learn::dataset::speaker_of(
            &path.file_name().unwrap_or_default().to_string_lossy(),
        ) {
            speakers.insert(s);
        }
        if keyword {
            n_keys += 1;
        } else {
            n_others += 1;
        }
        t += (spacing + rng.range(-0.5, 0.5) as f64) * sr as f64;
    }
    if opts.each_clip {
        x.truncate((t as usize).min(total));
    }
    write_stream(
        opts,
        x,
        &truth,
        StreamSummary {
            keywords: n_keys,
            others: n_others,
            speakers: speakers.len(),
            ..StreamSummary::empty()
        },
    )
}

/// Refuses, before any work, an `--out` whose replacement could lose something the user
/// made: only a stream this command wrote (the WAV and its truth CSV, both files) may
/// be replaced.
fn check_out(out: &Path) -> Result<()> {
    let csv = truth_path(out);
    let (wav_there, csv_there) = (
        std::fs::symlink_metadata(out).ok(),
        std::fs::symlink_metadata(&csv).ok(),
    );
    let is_file = |m: &Option<std::fs::Metadata>| m.as_ref().is_some_and(|m| m.is_file());
    match (&wav_there, &csv_there) {
        (None, None) => Ok(()),
        (Some(_), Some(_)) if is_file(&wav_there) && is_file(&csv_there) => Ok(()),
        (Some(_), _) => bail!(
            "--out {}: it exists and is not a stream made by --make-stream (no truth {} beside it); give a new name",
            out.display(),
            csv.display()
        ),
        (None, Some(_)) => bail!(
            "--out {}: {} exists and would be replaced by the truth; give a new name",
            out.display(),
            csv.display()
        ),
    }
}

/// Background: the folder's `_background_noise_` (the part of each recording that
/// belongs to the stream's split) in 5-15 s segments, each at its own level (-60 to
/// -35 dBFS), crossfaded over 50 ms.
fn noise_bed(opts: &StreamOptions, total: usize, rng: &mut Rng) -> Result<Vec<f32>> {
    let noise_dir = opts.dir.join(NOISE_DIR);
    let noise = if noise_dir.is_dir() {
        let mut recs = Vec::new();
        for p in list_wavs(&noise_dir)? {
            recs.push(crate::audio::wav::read_mono_16k(&p, 3600.0)?);
        }
        NoiseBank::from_recordings(recs)
    } else {
        NoiseBank::synthetic()
    };
    let noise_split = opts.split.unwrap_or(Split::Test);
    let sr = SAMPLE_RATE as usize;
    let mut x = Vec::with_capacity(total);
    let fade = sr / 20;
    while x.len() < total {
        let len = sr * 5 + rng.below(sr * 10);
        let mut seg = noise.window(noise_split, rng, len + fade);
        let level = 10f32.powf(rng.range(-60.0, -35.0) / 20.0);
        let g = level / rms(&seg).max(1e-6);
        seg.iter_mut().for_each(|v| *v *= g);
        let start = x.len().saturating_sub(fade);
        for (i, v) in seg.into_iter().enumerate() {
            let at = start + i;
            if at < x.len() {
                let w = i as f32 / fade as f32;
                x[at] = x[at] * (1.0 - w) + v * w;
            } else {
                x.push(v);
            }
        }
    }
    x.truncate(total);
    Ok(x)
}

/// Adds `clip` at `at` with its voiced part at `level_db` dBFS.
fn lay(x: &mut [f32], clip: &[f32], at: usize, level_db: f32) {
    let g = 10f32.powf(level_db / 20.0) / rms(clip).max(1e-6);
    for (o, v) in x[at..].iter_mut().zip(clip) {
        *o += v * g;
    }
}

/// Running speech of the held-out speakers end to end (pauses of 0.3-1.5 s between
/// utterances, each at -30 to -16 dBFS), and where asked, a command from the folder's
/// split said alone every `command_every` s (+-30%), with 0.6-1.2 s of quiet on each side.
fn speech_stream(
    opts: &StreamOptions,
    mut x: Vec<f32>,
    keys: &[(String, Vec<PathBuf>)],
    rng: &mut Rng,
) -> Result<StreamSummary> {
    let dir = opts.speech.as_deref().expect("called with --speech");
    let scan = crate::learn::speech::scan(dir, &opts.keywords)?;
    let mut files: Vec<&crate::learn::speech::SpeechFile> = scan
        .files
        .iter()
        .filter(|f| opts.speech_splits.contains(&f.split))
        .collect();
    if files.is_empty() {
        bail!(
            "{}: no recordings in the held-out split(s) asked for",
            dir.display()
        );
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let sr = SAMPLE_RATE as usize;
    let total = x.len();
    let mut s = StreamSummary::empty();
    let mut truth = Vec::new();
    let (mut order, mut next) = (Vec::new(), 0usize);
    let mut seen = std::collections::BTreeSet::new();
    let mut groups = std::collections::BTreeSet::new();
    let every = opts.command_every;
    let mut command_at = if every > 0.0 {
        every * rng.range(0.7, 1.3) as f64
    } else {
        f64::INFINITY
    };
    let mut t = sr * 3 / 2;
    while t + sr < total {
        if (t as f64 / sr as f64) >= command_at {
            command_at += every * rng.range(0.7, 1.3) as f64;
            let (label, clips) = &keys[rng.below(keys.len())];
            let path = &clips[rng.below(clips.len())];
            let clip = read_clip(path, sr)
                .with_context(|| format!("--make-stream: {}", path.display()))?;
            let Some((a, b)) = voiced_span(&clip, SAMPLE_RATE) else {
                continue;
            };
            let at = t + (rng.range(0.6, 1.2) * sr as f32) as usize - a;
            if at + sr >= total {
                break;
            }
            lay(&mut x, &clip[a..b], at + a, rng.range(-30.0, -16.0));
            truth.push(TruthWord {
                label: label.clone(),
                start_ms: ((at + a) * 1000 / sr) as u64,
                end_ms: ((at + b) * 1000 / sr) as u64,
            });
            s.keywords += 1;
            t = at + b + (rng.range(0.6, 1.2) * sr as f32) as usize;
            continue;
        }
        // Utterances in a shuffled order; once all are used, again in another order.
        if next == order.len() {
            order = (0..files.len()).collect();
            rng.shuffle(&mut order);
            next = 0;
        }
        let f = files[order[next]];
        next += 1;
        let u = match crate::audio::wav::read_mono_16k(&f.path, 60.0) {
            Ok(u) => u,
            Err(e) => {
                if !s
                    .skipped
                    .iter()
                    .any(|m| m.contains(&*f.path.to_string_lossy()))
                {
                    s.skipped.push(format!("{e:#}"));
                }
                if s.skipped.len() >= files.len() {
                    bail!(
                        "{}: none of its held-out recordings could be read ({})",
                        dir.display(),
                        s.skipped[0]
                    );
                }
                continue;
            }
        };
        let Some((a, b)) = voiced_span(&u, SAMPLE_RATE) else {
            continue;
        };
        let room = total.saturating_sub(t + sr);
        if room < sr / 4 {
            break;
        }
        let len = (b - a).min(room);
        lay(&mut x, &u[a..a + len], t, rng.range(-30.0, -16.0));
        truth.push(TruthWord {
            label: SPEECH_LABEL.into(),
            start_ms: (t * 1000 / sr) as u64,
            end_ms: ((t + len) * 1000 / sr) as u64,
        });
        seen.insert(f.path.clone());
        groups.insert(f.group.clone());
        s.utterances += 1;
        s.speech_s += len as f64 / sr as f64;
        t += len + (rng.range(0.3, 1.5) * sr as f32) as usize;
    }
    s.distinct_utterances = seen.len();
    s.speakers = groups.len();
    write_stream(opts, x, &truth, s)
}

/// Scales down a stream that would clip, writes it and its truth beside it.
fn write_stream(
    opts: &StreamOptions,
    mut x: Vec<f32>,
    truth: &[TruthWord],
    summary: StreamSummary,
) -> Result<StreamSummary> {
    let peak = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    if peak > 0.99 {
        x.iter_mut().for_each(|v| *v *= 0.99 / peak);
    }
    let csv = truth_path(&opts.out);
    write_wav(&opts.out, &x, SAMPLE_RATE)?;
    write_atomic(&csv, truth_csv(truth).as_bytes())?;
    Ok(StreamSummary {
        wav: opts.out.clone(),
        csv,
        duration_s: x.len() as f64 / SAMPLE_RATE as f64,
        ..summary
    })
}

impl StreamSummary {
    fn empty() -> Self {
        StreamSummary {
            wav: PathBuf::new(),
            csv: PathBuf::new(),
            duration_s: 0.0,
            keywords: 0,
            others: 0,
            speakers: 0,
            skipped: Vec::new(),
            utterances: 0,
            distinct_utterances: 0,
            speech_s: 0.0,
        }
    }
}

pub fn truth_csv(truth: &[TruthWord]) -> String {
    let mut s = String::from("label,start_ms,end_ms\n");
    for w in truth {
        s.push_str(&format!("{},{},{}\n", w.label, w.start_ms, w.end_ms));
    }
    s
}

/// Reads a truth CSV (`label,start_ms,end_ms`, header optional).
pub fn read_truth(path: &Path) -> Result<Vec<TruthWord>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the truth file", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || (i == 0 && line.starts_with("label")) {
            continue;
        }
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let parsed = (f.len() == 3)
            .then(|| Some((f[1].parse::<u64>().ok()?, f[2].parse::<u64>().ok()?)))
            .flatten();
        match parsed {
            Some((a, b)) if a <= b && !f[0].is_empty() => out.push(TruthWord {
                label: f[0].to_string(),
                start_ms: a,
                end_ms: b,
            }),
            _ => bail!(
                "{}:{}: expected 'label,start_ms,end_ms' with start <= end, got '{line}'",
                path.display(),
                i + 1
            ),
        }
    }
    out.sort_by_key(|w| w.start_ms);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(words: &[(&str, usize)]) -> Vec<(String, Vec<PathBuf>)> {
        words
            .iter()
            .map(|&(w, n)| {
                (
                    w.to_string(),
                    (0..n)
                        .map(|i| PathBuf::from(format!("{w}/{i}.wav")))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn each_clip_plan_holds_every_command_clip_once_and_others_at_their_share() {
        let keys = pool(&[("go", 2), ("up", 12)]);
        let others = pool(&[("cat", 30)]);
        let plan = each_clip_plan(&keys, &others, 0.3, 7);
        let mut commands: Vec<&Path> = plan.iter().filter(|w| w.2).map(|w| w.1).collect();
        commands.sort();
        commands.dedup();
        assert_eq!(commands.len(), 14);
        assert_eq!(plan.iter().filter(|w| w.2).count(), 14);
        // 30% of the words: 6 others beside 14 commands, none twice.
        let mut rest: Vec<&Path> = plan.iter().filter(|w| !w.2).map(|w| w.1).collect();
        assert_eq!(rest.len(), 6);
        rest.sort();
        rest.dedup();
        assert_eq!(rest.len(), 6);
        assert_eq!(
            plan,
            each_clip_plan(&keys, &others, 0.3, 7),
            "deterministic"
        );
        assert_ne!(
            plan,
            each_clip_plan(&keys, &others, 0.3, 8),
            "another seed, another order"
        );
        // Fewer others than the share asks for: all of them, once.
        let two = pool(&[("cat", 2)]);
        let few = each_clip_plan(&keys, &two, 0.3, 7);
        assert_eq!(few.iter().filter(|w| !w.2).count(), 2);
    }
}
