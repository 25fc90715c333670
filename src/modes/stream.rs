//! `listen --make-stream DIR --out FILE.wav`: a long test stream (words every few
//! seconds, or running speech with `--speech`) and its truth CSV.
use super::parse_split;
use crate::learn::dataset::Split;
use crate::measure::streams::{self, StreamOptions};
use crate::model::Model;
use anyhow::{bail, Result};
use std::path::PathBuf;

pub struct MakeStreamOptions {
    pub dir: PathBuf,
    pub out: PathBuf,
    pub minutes: f64,
    pub seed: u64,
    /// `--split` as given (its default depends on `speech`).
    pub split: Option<String>,
    pub speech: Option<PathBuf>,
    pub command_every: f64,
    /// Every command clip of the split once instead of random draws.
    pub each_clip: bool,
    /// Whose commands are keywords (default: the bundled model's).
    pub model: Option<PathBuf>,
}

impl MakeStreamOptions {
    pub fn check(&self) -> Result<()> {
        if !(self.command_every == 0.0 || (5.0..=3600.0).contains(&self.command_every)) {
            bail!(
                "--command-every {}: use 0 (none) or 5 to 3600 seconds",
                self.command_every
            );
        }
        Ok(())
    }
}

pub fn run(opts: &MakeStreamOptions) -> Result<i32> {
    opts.check()?;
    let model = Model::open(opts.model.as_deref())?;
    let stream = StreamOptions {
        dir: opts.dir.clone(),
        out: opts.out.clone(),
        minutes: opts.minutes,
        seed: opts.seed,
        split: parse_split(opts.split.as_deref().unwrap_or("test"))?,
        keywords: model.card.commands(),
        unknown_share: 0.3,
        spacing: 3.0,
        speech: opts.speech.clone(),
        // Speech from speakers training never heard: its validation and test parts
        // (training looks at the validation part only to stop early).
        speech_splits: match opts.split.as_deref() {
            None => vec![Split::Validation, Split::Test],
            Some(s) => match parse_split(s)? {
                Some(one) => vec![one],
                None => Split::ALL.to_vec(),
            },
        },
        command_every: opts.command_every,
        each_clip: opts.each_clip,
    };
    let s = streams::make_stream(&stream)?;
    for e in s.skipped.iter().take(10) {
        eprintln!("warning: skipped {e}");
    }
    if !s.skipped.is_empty() {
        eprintln!(
            "warning: skipped {} unreadable recording(s) of speech",
            s.skipped.len()
        );
    }
    if stream.speech.is_some() {
        eprintln!(
            "wrote {} ({:.1} min: {:.1} min of speech in {} utterances ({} distinct) from {} speakers or sources, {} commands) and {}",
            s.wav.display(),
            s.duration_s / 60.0,
            s.speech_s / 60.0,
            s.utterances,
            s.distinct_utterances,
            s.speakers,
            s.keywords,
            s.csv.display()
        );
    } else {
        eprintln!(
            "wrote {} ({:.1} min: {} keywords, {} other words, {} speakers) and {}",
            s.wav.display(),
            s.duration_s / 60.0,
            s.keywords,
            s.others,
            s.speakers,
            s.csv.display()
        );
    }
    Ok(0)
}
