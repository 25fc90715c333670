//! Step 1, the clips: every new word in every voice, each word's sound-alikes in a few
//! voices each (`_unknown_`: they must not fire), and the user's own takes if given,
//! written as the labelled folder `--train` reads. Every clip a voice makes is kept in
//! the cache under what made it (the voice, its settings, the text), so a second run,
//! or another word list sharing a word, says only what is new.
use super::TrainWordsOptions;
use crate::audio::wav::{self, SAMPLE_RATE};
use crate::learn::cache;
use crate::learn::dataset::{self, Split};
use crate::learn::train::{log, progress};
use crate::learn::voices::{self, Spoken, Voice};
use crate::util::stable_hash;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Changes whenever a voice would say the same text differently (the trimming, an
/// engine's version): no clip made otherwise is read from the cache.
const CLIPS_VERSION: &str = "clips-1";
/// Sound-alikes of each word at most.
const SOUND_ALIKES: usize = 40;
/// A word whose clips take longer than this (median) gets 1.5 s of the window, not 1.
const PHRASE_SECONDS: f32 = 0.85;

/// The labelled folder and what went into it.
pub struct Clips {
    /// word/`voiceK_nohash_0.wav`, sound-alikes in folders of their own, takes as
    /// `yoursJ_nohash_N.wav` (always in the training split).
    pub dir: tempfile::TempDir,
    pub voices: Vec<Voice>,
    /// The new words' clips and the sound-alikes', by voice.
    pub spoken: Spoken,
    pub sound_alikes: Vec<String>,
    /// Clips read back from the cache (the rest were made now).
    pub cached: usize,
    /// The user's takes added, per word.
    pub takes: Vec<(String, usize)>,
    /// How much of the window a clip fills, in ms (1000; 1500 for phrases).
    pub clip_ms: u32,
}

impl Clips {
    /// The split a voice's clips fall into (by its speaker name, as `--train` splits).
    pub fn split_of(voice: usize) -> Split {
        dataset::split_of(&voice_file(voice), 0)
    }

    /// Clips of `split` (new words and sound-alikes alike).
    pub fn of_split(&self, split: Split) -> impl Iterator<Item = &voices::Clip> {
        self.spoken
            .clips
            .iter()
            .filter(move |c| Clips::split_of(c.voice) == split)
    }
}

fn voice_file(voice: usize) -> String {
    format!("voice{voice}_nohash_0.wav")
}

/// Says what is needed, writes the folder.
pub fn make(opts: &TrainWordsOptions, words: &[String]) -> Result<Clips> {
    let voices = voices::voices(opts.voices, opts.seed)?;
    let mut alikes: Vec<String> = Vec::new();
    let said_as = voices::pronunciations(words)?;
    for w in words {
        let mut c = voices::confusables(w, words);
        // Not a homophone of a word being trained ("wright" for "right"): by ear it is
        // that word, and as `_unknown_` it would teach the model not to hear it.
        let sounds = voices::pronunciations(&c)?;
        let mut k = 0;
        c.retain(|_| {
            k += 1;
            !said_as.contains(&sounds[k - 1])
        });
        c.truncate(SOUND_ALIKES);
        for a in c {
            if !alikes.contains(&a) {
                alikes.push(a);
            }
        }
    }
    // Every word in every voice; each sound-alike in voices spread over all of them
    // (so that held-out voices say some too).
    let mut jobs: Vec<(String, usize)> = words
        .iter()
        .flat_map(|w| (0..voices.len()).map(move |v| (w.clone(), v)))
        .collect();
    // Voices per sound-alike: 8 of the default 200.
    let per = (voices.len() / 25).clamp(2, 12).min(voices.len());
    for (i, a) in alikes.iter().enumerate() {
        for t in 0..per {
            jobs.push((a.clone(), (i * 7 + t * voices.len() / per) % voices.len()));
        }
    }
    let scratch = tempfile::tempdir().context("cannot make a scratch folder")?;
    let (results, cached) = say_cached(&jobs, &voices, opts, scratch.path())?;
    let mut spoken = Spoken::default();
    for ((text, v), r) in jobs.iter().zip(results) {
        spoken.add(text, *v, &voices[*v], r);
    }
    spoken.check(words)?;
    if let Some(line) = spoken.failures() {
        eprintln!("warning: {line}");
    }
    // Words fill the second a clip has; a phrase longer than most words 1.5 s.
    let longest = words
        .iter()
        .map(|w| spoken.median_seconds(w))
        .fold(0.0, f32::max);
    let clip_ms = if longest > PHRASE_SECONDS { 1500 } else { 1000 };
    let dir = write_folder(&spoken, clip_ms)?;
    let takes = add_takes(dir.path(), opts.takes.as_deref(), words)?;
    log(
        opts.quiet,
        format!(
            "Clips: {} word(s) and {} sound-alikes in {} voices, {} clips ({} from the cache){}",
            words.len(),
            alikes.len(),
            voices.len(),
            spoken.clips.len(),
            cached,
            match takes.iter().map(|t| t.1).sum::<usize>() {
                0 => String::new(),
                n => format!(", and {n} of your own takes"),
            }
        ),
    );
    Ok(Clips {
        dir,
        voices,
        spoken,
        sound_alikes: alikes,
        cached,
        takes,
        clip_ms,
    })
}

/// Each job from the cache where it is there, else said now (and kept).
fn say_cached(
    jobs: &[(String, usize)],
    voices: &[Voice],
    opts: &TrainWordsOptions,
    scratch: &Path,
) -> Result<(Vec<Result<Vec<f32>>>, usize)> {
    let store = cache::dir().map(|d| d.join("voices"));
    let key =
        |text: &str, v: &Voice| stable_hash(format!("{CLIPS_VERSION}|{v:?}|{text}").as_bytes());
    let path = |k: u64| store.as_ref().map(|d| d.join(format!("{k:016x}.clip")));
    let mut out: Vec<Option<Result<Vec<f32>>>> = jobs
        .iter()
        .map(|(t, v)| {
            let k = key(t, &voices[*v]);
            let p = path(k)?;
            cache::read(&p, k).map(|s| Ok(s.floats))
        })
        .collect();
    let cached = out.iter().filter(|r| r.is_some()).count();
    let todo: Vec<usize> = (0..jobs.len()).filter(|&i| out[i].is_none()).collect();
    let said: Vec<(&str, &Voice)> = todo
        .iter()
        .map(|&i| (jobs[i].0.as_str(), &voices[jobs[i].1]))
        .collect();
    let pb = progress(
        said.len() as u64,
        opts.quiet,
        "Voices    {bar:30} {pos}/{len} clips ({eta} left)",
    );
    let results = voices::say_each(&said, opts.threads, scratch, &pb);
    pb.finish_and_clear();
    if let Some(d) = &store {
        let _ = std::fs::create_dir_all(d);
    }
    let mut unkept = 0;
    for (&i, r) in todo.iter().zip(results) {
        if let (Ok(audio), Some(p)) = (&r, path(key(&jobs[i].0, &voices[jobs[i].1]))) {
            let stored = cache::Stored {
                header: vec![],
                ints: vec![],
                floats: audio.clone(),
            };
            if cache::write(&p, key(&jobs[i].0, &voices[jobs[i].1]), &stored).is_err() {
                unkept += 1;
            }
        }
        out[i] = Some(r);
    }
    if unkept > 0 {
        eprintln!(
            "warning: {unkept} clips could not be kept in the cache; the next run says them again"
        );
    }
    Ok((
        out.into_iter()
            .map(|r| r.expect("every job said"))
            .collect(),
        cached,
    ))
}

/// The labelled folder: each new word's clips in its folder, each sound-alike's in one
/// of its own (the trainer takes every folder not named by `--words` as `_unknown_`).
fn write_folder(spoken: &Spoken, clip_ms: u32) -> Result<tempfile::TempDir> {
    let root = cache::dir().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&root)
        .with_context(|| format!("{}: cannot make the cache folder", root.display()))?;
    let dir = tempfile::Builder::new()
        .prefix("train-words-")
        .tempdir_in(&root)
        .with_context(|| format!("{}: cannot make a folder for the clips", root.display()))?;
    for c in &spoken.clips {
        let folder = dir.path().join(folder_name(&c.word));
        std::fs::create_dir_all(&folder)?;
        // Centred in the clip's part of the window (or as long as it is), as recorded
        // clips are in their second.
        let len = c
            .audio
            .len()
            .max(clip_ms as usize * SAMPLE_RATE as usize / 1000);
        let mut x = vec![0.0; len];
        let at = (len - c.audio.len()) / 2;
        x[at..at + c.audio.len()].copy_from_slice(&c.audio);
        wav::write_wav(&folder.join(voice_file(c.voice)), &x, SAMPLE_RATE)?;
    }
    Ok(dir)
}

/// A word or phrase as a folder name: `hey computer` -> `hey_computer`.
pub fn folder_name(word: &str) -> String {
    word.replace(' ', "_")
}

/// `--takes DIR`: a folder with a subfolder of WAV takes for at least one of `words`.
pub fn check_takes(from: &Path, words: &[String]) -> Result<()> {
    if !from.is_dir() {
        return Err(crate::util::not_a_folder(
            from,
            "expected your takes: one folder per word, as `listen --record WORD --into DIR` makes",
        ));
    }
    let any = words
        .iter()
        .any(|w| dataset::list_wavs(&from.join(folder_name(w))).is_ok_and(|f| !f.is_empty()));
    if !any {
        bail!(
            "{}: no takes of {} (expected a folder of WAV files per word, as `listen --record {} --into {}` makes)",
            from.display(),
            words.join(" or "),
            words[0],
            from.display()
        );
    }
    Ok(())
}

/// The user's takes (`--takes DIR`: DIR/WORD/*.wav) of the new words, copied in as one
/// speaker whose name puts it in the training split (a held-out split of one person's
/// ten takes would say little, and take them from training).
fn add_takes(dir: &Path, takes: Option<&Path>, words: &[String]) -> Result<Vec<(String, usize)>> {
    let Some(from) = takes else {
        return Ok(Vec::new());
    };
    check_takes(from, words)?;
    let speaker = (0..)
        .map(|j| format!("yours{j}"))
        .find(|s| dataset::split_of(&format!("{s}_nohash_0.wav"), 0) == Split::Train)
        .expect("some name falls in training");
    let mut added = Vec::new();
    for w in words {
        let src = from.join(folder_name(w));
        let Ok(files) = dataset::list_wavs(&src) else {
            continue;
        };
        let dest = dir.join(folder_name(w));
        std::fs::create_dir_all(&dest)?;
        for (n, f) in files.iter().enumerate() {
            let x = wav::read_mono_16k(f, 10.0)
                .with_context(|| format!("{}: not a usable take", f.display()))?;
            wav::write_wav(
                &dest.join(format!("{speaker}_nohash_{n}.wav")),
                &x,
                SAMPLE_RATE,
            )?;
        }
        added.push((w.clone(), files.len()));
    }
    Ok(added)
}
