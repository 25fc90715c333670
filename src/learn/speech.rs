//! Speech that is not a command (`--negatives DIR` for training, `--speech DIR` for
//! streams): a folder tree of recordings of any length (running speech, other words,
//! other languages). It is split like the clips (80/10/10 by the same hash): LibriSpeech
//! names (`<speaker>-<chapter>-<utt>.wav`) by speaker, VoxLingua names
//! (`<video>__<rest>.wav`) by video, anything else by its path. Recordings that may hold
//! a command are left out: a LibriSpeech utterance whose transcript (`*.trans.txt`
//! beside it) holds a command, a homophone ("know", "write") or its plural, and a
//! LibriSpeech-named file with no transcript line at all. Hands on: the files of each
//! split, and 1-s crops of them read one recording at a time (never the folder whole).
use crate::audio::wav;
use crate::learn::dataset::{split_by_hash, Split};
use crate::util::Rng;
use anyhow::{bail, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One recording of speech that is not a command.
#[derive(Clone, Debug)]
pub struct SpeechFile {
    pub path: PathBuf,
    /// Who or what it came from: a speaker, a video, or the file itself.
    pub group: String,
    pub split: Split,
}

#[derive(Debug, Default)]
pub struct SpeechScan {
    pub files: Vec<SpeechFile>,
    /// Utterances left out because their transcript holds a command or a homophone.
    pub with_command: usize,
    /// LibriSpeech-named utterances left out for want of a transcript.
    pub untranscribed: usize,
}

impl SpeechScan {
    pub fn of_split(&self, split: Split) -> Vec<&SpeechFile> {
        self.files.iter().filter(|f| f.split == split).collect()
    }

    /// Distinct speakers/videos/files of a split.
    pub fn groups(&self, split: Split) -> usize {
        self.of_split(split)
            .iter()
            .map(|f| f.group.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    }
}

/// Words that sound like a command, for leaving utterances out by their transcript.
fn sound_alikes(command: &str) -> Vec<String> {
    // A phrase's label is its folder name: smart_mirror is "smart mirror".
    let c = command.replace(['_', '-'], " ").to_ascii_uppercase();
    let mut v = vec![c.clone(), format!("{c}S"), format!("{c}'S")];
    let extra: &[&str] = match command {
        "no" => &["KNOW", "KNOWS", "KNOWN", "NOH"],
        "right" => &["WRITE", "WRITES", "RITE", "RITES", "WRIGHT"],
        "go" => &["GOES"],
        "yes" => &["YES'M"],
        _ => &[],
    };
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Whether a folder below `root` is named after a command or a sound-alike (`_` and
/// `-` read as spaces: smart_mirror is "smart mirror"). Names of two letters are
/// language codes (other-languages/no is Norwegian, not "no"), never commands.
fn folder_names_a_command(root: &Path, dir: &Path, alikes: &BTreeSet<String>) -> bool {
    dir.strip_prefix(root).unwrap_or(dir).components().any(|c| {
        let name = c.as_os_str().to_string_lossy().replace(['_', '-'], " ");
        name.len() > 2 && alikes.contains(&name.to_ascii_uppercase())
    })
}

/// `<speaker>-<chapter>-<utt>`: LibriSpeech's utterance names.
fn librispeech_speaker(stem: &str) -> Option<&str> {
    let parts: Vec<&str> = stem.split('-').collect();
    (parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
    .then_some(parts[0])
}

/// The transcripts of one folder (`*.trans.txt`: `<utt> WORDS...` per line).
pub(crate) fn transcripts(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in
        std::fs::read_dir(dir).with_context(|| format!("{}: cannot read folder", dir.display()))?
    {
        let p = e?.path();
        if !p.to_string_lossy().ends_with(".trans.txt") {
            continue;
        }
        let text =
            std::fs::read_to_string(&p).with_context(|| format!("{}: cannot read", p.display()))?;
        for line in text.lines() {
            if let Some((id, words)) = line.trim().split_once(' ') {
                out.insert(id.to_string(), words.to_ascii_uppercase());
            }
        }
    }
    Ok(out)
}

/// Scans a speech folder (recursively; WAV files), leaving out what may hold one of
/// `commands`.
pub fn scan(dir: &Path, commands: &[String]) -> Result<SpeechScan> {
    if !dir.is_dir() {
        return Err(crate::util::not_a_folder(
            dir,
            "expected recordings of speech that is not a command",
        ));
    }
    let alikes: BTreeSet<String> = commands.iter().flat_map(|c| sound_alikes(c)).collect();
    let mut scan = SpeechScan::default();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut wavs = Vec::new();
        for e in
            std::fs::read_dir(&d).with_context(|| format!("{}: cannot read folder", d.display()))?
        {
            let p = e?.path();
            let name = crate::learn::dataset::file_name(&p);
            if name.starts_with('.') {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x.eq_ignore_ascii_case("wav")) {
                wavs.push(p);
            }
        }
        if wavs.is_empty() {
            continue;
        }
        wavs.sort();
        // A folder named after a command (other-words/computer when training
        // "computer") holds that command said alone: none of it is a negative.
        if folder_names_a_command(dir, &d, &alikes) {
            scan.with_command += wavs.len();
            continue;
        }
        let trans = transcripts(&d)?;
        for p in wavs {
            let stem = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let group = if let Some(s) = librispeech_speaker(&stem) {
                let Some(text) = trans.get(&stem) else {
                    scan.untranscribed += 1;
                    continue;
                };
                if text.split_whitespace().any(|w| alikes.contains(w)) {
                    scan.with_command += 1;
                    continue;
                }
                format!("librispeech:{s}")
            } else if let Some((video, _)) = stem.split_once("__") {
                format!("video:{video}")
            } else {
                format!("file:{}", p.strip_prefix(dir).unwrap_or(&p).display())
            };
            let split = split_by_hash(&group);
            scan.files.push(SpeechFile {
                path: p,
                group,
                split,
            });
        }
    }
    scan.files.sort_by(|a, b| a.path.cmp(&b.path));
    if scan.files.is_empty() {
        bail!(
            "{}: no usable WAV recordings ({} left out as holding a command, {} for want of a transcript)",
            dir.display(),
            scan.with_command,
            scan.untranscribed
        );
    }
    Ok(scan)
}

/// 1-s (or `len`-sample) crops of speech, kept as 16-bit samples.
pub struct CropPool {
    crops: Vec<Vec<i16>>,
    pub len: usize,
    /// Recordings that could not be read (named).
    pub skipped: Vec<String>,
    /// Seconds of audio the crops were taken from.
    pub seconds: f64,
}

impl CropPool {
    pub fn new(len: usize) -> Self {
        CropPool {
            crops: Vec::new(),
            len,
            skipped: Vec::new(),
            seconds: 0.0,
        }
    }

    pub fn len(&self) -> usize {
        self.crops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.crops.is_empty()
    }

    pub fn push(&mut self, x: &[f32]) {
        self.crops.push(
            x.iter()
                .map(|v| (v.clamp(-1.0, 1.0) * 32767.0) as i16)
                .collect(),
        );
    }

    /// A hash of every crop, for cache keys of work made from them.
    pub fn fingerprint(&self) -> u64 {
        let mut key = crate::learn::cache::Key::new();
        for c in &self.crops {
            let bytes: Vec<u8> = c.iter().flat_map(|v| v.to_le_bytes()).collect();
            key.add(&bytes);
        }
        key.value()
    }

    pub fn get(&self, i: usize) -> Vec<f32> {
        self.crops[i].iter().map(|&v| v as f32 / 32767.0).collect()
    }

    /// Crops from `files`, read one at a time: about one crop per `every` seconds of
    /// audio, at random offsets, and at most `max` in all (files are visited in a
    /// shuffled order, so a cap takes a spread of them).
    pub fn from_files(
        files: &[&SpeechFile],
        len: usize,
        every: f64,
        max: usize,
        rng: &mut Rng,
    ) -> CropPool {
        let mut pool = CropPool::new(len);
        let mut order: Vec<&SpeechFile> = files.to_vec();
        rng.shuffle(&mut order);
        for f in order {
            if pool.len() >= max {
                break;
            }
            let x = match wav::read_mono_16k(&f.path, 120.0) {
                Ok(x) => x,
                Err(e) => {
                    pool.skipped.push(format!("{e:#}"));
                    continue;
                }
            };
            pool.seconds += x.len() as f64 / wav::SAMPLE_RATE as f64;
            let n = ((x.len() as f64 / wav::SAMPLE_RATE as f64) / every)
                .round()
                .max(1.0) as usize;
            for _ in 0..n.min(max - pool.len()) {
                pool.push(&window_at(&x, len, rng));
            }
        }
        pool
    }
}

/// A `len`-sample window of `x` at a random offset (zero-padded if `x` is shorter).
pub fn window_at(x: &[f32], len: usize, rng: &mut Rng) -> Vec<f32> {
    if x.len() <= len {
        let mut w = x.to_vec();
        w.resize(len, 0.0);
        return w;
    }
    let at = rng.below(x.len() - len);
    x[at..at + len].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, secs: f32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let x: Vec<f32> = (0..(secs * 16000.0) as usize)
            .map(|i| (i as f32 * 0.05).sin() * 0.3)
            .collect();
        wav::write_wav(path, &x, 16000).unwrap();
    }

    #[test]
    fn transcripts_leave_out_commands_and_sound_alikes() {
        let d = tempfile::tempdir().unwrap();
        let ch = d.path().join("ls/19/198");
        for u in 0..4 {
            write(&ch.join(format!("19-198-000{u}.wav")), 0.5);
        }
        write(
            &d.path().join("ls/untranscribed/103/103-1240-0000.wav"),
            0.5,
        );
        write(&d.path().join("words/alexa/0.wav"), 0.5);
        write(
            &d.path().join("lang/en/vid1__U__S1---0001.000-0003.000.wav"),
            0.5,
        );
        std::fs::write(
            ch.join("19-198.trans.txt"),
            "19-198-0000 I DO NOT KNOW\n19-198-0001 WRITE IT DOWN\n19-198-0002 A QUIET SENTENCE\n19-198-0003 GOING NOWHERE\n",
        )
        .unwrap();
        write(
            &d.path().join("lang/no/vid2__U__S1---0001.000-0003.000.wav"),
            0.5,
        );
        write(&d.path().join("words/smart_mirror/0.wav"), 0.5);
        write(&d.path().join("words/smart_mirror/1.wav"), 0.5);
        let commands = [
            "no".to_string(),
            "right".to_string(),
            // As a model's label: its folder name.
            "smart_mirror".to_string(),
        ];
        let s = scan(d.path(), &commands).unwrap();
        let names: Vec<String> = s
            .files
            .iter()
            .map(|f| crate::learn::dataset::file_name(&f.path).to_string())
            .collect();
        // "know" and "write" are out; "going nowhere" holds neither word; a folder
        // named after a command is out whole.
        assert_eq!(s.with_command, 4);
        assert!(!names.iter().any(|n| n == "1.wav"), "{names:?}");
        assert_eq!(s.untranscribed, 1);
        assert!(names.contains(&"19-198-0002.wav".to_string()), "{names:?}");
        assert!(names.contains(&"19-198-0003.wav".to_string()), "{names:?}");
        assert!(!names.contains(&"19-198-0000.wav".to_string()));
        let groups: Vec<&str> = s.files.iter().map(|f| f.group.as_str()).collect();
        assert!(groups.contains(&"librispeech:19"), "{groups:?}");
        assert!(groups.contains(&"video:vid1"), "{groups:?}");
        assert!(
            groups.contains(&"video:vid2"),
            "Norwegian is not \"no\": {groups:?}"
        );
        assert!(groups.contains(&"file:words/alexa/0.wav"), "{groups:?}");
        // One speaker, one split.
        let ls: BTreeSet<Split> = s
            .files
            .iter()
            .filter(|f| f.group == "librispeech:19")
            .map(|f| f.split)
            .collect();
        assert_eq!(ls.len(), 1);
    }

    #[test]
    fn a_folder_of_nothing_usable_is_one_clear_error() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("19/198/19-198-0000.wav"), 0.5);
        let e = scan(d.path(), &["no".to_string()]).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("no usable WAV") && e.contains("1 for want of a transcript"),
            "{e}"
        );
    }

    #[test]
    fn crops_are_bounded_and_unreadable_files_named() {
        let d = tempfile::tempdir().unwrap();
        write(&d.path().join("a.wav"), 5.0);
        write(&d.path().join("b.wav"), 5.0);
        std::fs::write(d.path().join("c.wav"), b"RIFF broken").unwrap();
        let s = scan(d.path(), &[]).unwrap();
        let files: Vec<&SpeechFile> = s.files.iter().collect();
        let pool = CropPool::from_files(&files, 16000, 1.0, 7, &mut Rng::new(1));
        assert_eq!(pool.len(), 7);
        assert!(pool.get(0).len() == 16000);
        let all = CropPool::from_files(&files, 16000, 1.0, 100, &mut Rng::new(1));
        assert_eq!(all.len(), 10, "one crop a second of 10 s");
        assert_eq!(all.skipped.len(), 1);
        assert!(all.skipped[0].contains("c.wav"), "{:?}", all.skipped);
    }
}
