//! Step 3, the detector: chosen as `scripts/choose-detector` chooses the bundled
//! model's, but on what `--train-words` has: a stream of the held-out synthetic voices
//! saying the new words and their sound-alikes over noise (run through the streaming
//! engine), and the held-out fifth of the negatives bank (talk no step of training
//! saw, the head run over every window a stream would show it).
//!
//! Rule: the lowest threshold (smoothing 1, one window: the quickest) at which, and
//! above which, the held-out talk gives no false alarm and at most half of the held-out
//! voices' sound-alikes fire, raised by [`MARGIN`] (a quarter of an hour of talk cannot
//! show a rate of one an hour), and at least [`LOWEST`]. Chosen on two other pairs of
//! words than the benchmark's (BENCHMARKS.md): there, smoothing bought nothing, the
//! sound-alikes (near misses on purpose: "blexa") fired far more than real other words
//! ever did, and the synthetic voices' recall said little about real people's.
use super::clips::Clips;
use crate::audio::wav::{rms, SAMPLE_RATE};
use crate::learn::augment::NoiseBank;
use crate::learn::dataset::Split;
use crate::learn::shipped_negatives::{Part, Shipped};
use crate::live::detect::DetectorConfig;
use crate::live::parallel;
use crate::measure::score::{self, Posteriors, Score};
use crate::measure::streams::TruthWord;
use crate::model::Model;
use crate::util::Rng;
use anyhow::Result;
use serde::Serialize;

/// Share of the held-out sound-alikes that may fire (they are near misses on purpose:
/// "blexa" for "alexa"; "smart" alone for "smart mirror").
pub const SOUND_ALIKE_SHARE: f64 = 0.5;
/// Added to the lowest quiet threshold.
pub const MARGIN: f32 = 0.1;
pub const LOWEST: f32 = 0.5;

/// What the choice saw, for the card.
#[derive(Clone, Debug, Serialize)]
pub struct Choice {
    pub detector: DetectorConfig,
    /// On the held-out voices' stream at the chosen setting.
    pub voices: Score,
    pub talk_hours: f64,
    pub talk_false_alarms: usize,
    pub held_out_voices: usize,
    /// Every tenth threshold: (threshold, recall on the voices, false alarms on the
    /// sound-alikes, false alarms on the talk).
    pub curve: Vec<(f32, f64, usize, usize)>,
}

/// `words` are the model's labels for the new words (folder names: `hey_computer`).
pub fn choose(model: &Model, clips: &Clips, words: &[String], threads: usize) -> Result<Choice> {
    let (audio, truth) = voice_stream(clips, 7);
    let duration_s = audio.len() as f64 / SAMPLE_RATE as f64;
    let words_post = stream_posteriors(model, &audio, threads)?;
    let (talk_post, talk_s) = talk_posteriors(model, words)?;
    let labels = &model.card.labels;
    let base = DetectorConfig::default();
    let thresholds: Vec<f32> = (30..=99).map(|t| t as f32 / 100.0).collect();
    let shape = [(1, 1)];
    let on_words = score::sweep(
        labels,
        words,
        &words_post,
        &truth,
        &base,
        &thresholds,
        &shape,
        500,
        duration_s,
    );
    let on_talk = score::sweep(
        labels,
        words,
        &talk_post,
        &[],
        &base,
        &thresholds,
        &shape,
        500,
        talk_s,
    );
    let alikes = truth.iter().filter(|w| !words.contains(&w.label)).count();
    let quiet = |i: usize| {
        on_talk[i].score.false_alarms == 0
            && on_words[i].score.false_alarms as f64 <= SOUND_ALIKE_SHARE * alikes as f64
    };
    // The lowest quiet threshold above which every one is quiet too; none: the highest.
    let first = (0..thresholds.len())
        .rev()
        .take_while(|&i| quiet(i))
        .last()
        .unwrap_or(thresholds.len() - 1);
    let want = (thresholds[first] + MARGIN).clamp(LOWEST, thresholds[thresholds.len() - 1]);
    let i = thresholds
        .iter()
        .position(|&t| t >= want - 1e-4)
        .unwrap_or(thresholds.len() - 1);
    let p = &on_words[i];
    Ok(Choice {
        detector: DetectorConfig {
            threshold: p.threshold,
            smoothing: p.smoothing,
            min_windows: p.min_windows,
            refractory_ms: base.refractory_ms,
        },
        voices: p.score.clone(),
        talk_hours: talk_s / 3600.0,
        talk_false_alarms: on_talk[i].score.false_alarms,
        curve: on_words
            .iter()
            .zip(&on_talk)
            .filter(|(w, _)| ((w.threshold * 100.0).round() as u32).is_multiple_of(5))
            .map(|(w, t)| {
                (
                    w.threshold,
                    w.score.recall,
                    w.score.false_alarms,
                    t.score.false_alarms,
                )
            })
            .collect(),
        held_out_voices: clips
            .voices
            .iter()
            .enumerate()
            .filter(|(v, _)| Clips::split_of(*v) == Split::Validation)
            .count(),
    })
}

/// The validation voices' clips one after another, each after 0.8-2 s, at -30 to
/// -16 dBFS, over quiet noise; and where each word lies.
fn voice_stream(clips: &Clips, seed: u64) -> (Vec<f32>, Vec<TruthWord>) {
    let mut rng = Rng::new(seed);
    let mut order: Vec<&crate::learn::voices::Clip> = clips.of_split(Split::Validation).collect();
    rng.shuffle(&mut order);
    let sr = SAMPLE_RATE as f32;
    let mut audio: Vec<f32> = Vec::new();
    let mut truth = Vec::new();
    for c in order {
        audio.resize(audio.len() + (rng.range(0.8, 2.0) * sr) as usize, 0.0);
        let g = 10f32.powf(rng.range(-30.0, -16.0) / 20.0) / rms(&c.audio).max(1e-6);
        let start = audio.len();
        audio.extend(c.audio.iter().map(|v| v * g));
        truth.push(TruthWord {
            label: super::clips::folder_name(&c.word),
            start_ms: start as u64 * 1000 / SAMPLE_RATE as u64,
            end_ms: audio.len() as u64 * 1000 / SAMPLE_RATE as u64,
        });
    }
    audio.resize(audio.len() + SAMPLE_RATE as usize, 0.0);
    let noise = NoiseBank::synthetic().window(Split::Validation, &mut rng, audio.len());
    let k = 10f32.powf(rng.range(-60.0, -45.0) / 20.0) / rms(&noise).max(1e-6);
    audio
        .iter_mut()
        .zip(&noise)
        .for_each(|(a, n)| *a = (*a + k * n).clamp(-1.0, 1.0));
    (audio, truth)
}

/// The engine's posteriors over 16 kHz audio, every hop, timed by window end.
fn stream_posteriors(model: &Model, audio: &[f32], threads: usize) -> Result<Posteriors> {
    let mut given = false;
    let mut out = Vec::new();
    parallel::score(
        model,
        crate::live::engine::EngineConfig::default().hop_ms,
        threads,
        |buf| {
            if given {
                return Ok(false);
            }
            buf.extend_from_slice(audio);
            given = true;
            Ok(true)
        },
        |end, p| {
            out.push((end * 1000 / SAMPLE_RATE as u64, p));
            Ok(true)
        },
    )?;
    Ok(out)
}

/// The head over every window of the held-out talk (one every 80 ms, as a stream shows
/// them), recordings 2 s apart; and its length in seconds.
fn talk_posteriors(model: &Model, words: &[String]) -> Result<(Posteriors, f64)> {
    let cfg = &model.card.features;
    let (bank, _) = Shipped::bundled()?.bank(cfg, words, Part::Held)?;
    let mut out = Vec::with_capacity(bank.len());
    let step_ms = (crate::audio::embedding::HOP_SAMPLES as u64 * 1000) / SAMPLE_RATE as u64;
    let mut t = 0u64;
    let mut last_start = None;
    let all: Vec<usize> = (0..bank.len()).collect();
    for batch in all.chunks(1024) {
        let mut xs = Vec::with_capacity(batch.len() * bank.window(0).len());
        for &i in batch {
            xs.extend_from_slice(bank.window(i));
        }
        model.card.normalisation.apply(&mut xs);
        for (&i, p) in batch.iter().zip(model.probabilities(&xs, batch.len())) {
            // A new recording: its windows do not follow the last one's.
            let start = bank.start(i);
            t += match last_start {
                Some(s) if start == s + 1 => step_ms,
                _ => 2000,
            };
            last_start = Some(start);
            out.push((t, p));
        }
    }
    Ok((out, bank.seconds))
}
