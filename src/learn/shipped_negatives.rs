//! Negatives that travel (issue 24): a user of `--train-words` has no folder of speech,
//! so `listen` carries one as derived data, `assets/negatives/speech-bank.bin`: about
//! 2.2 hours of running speech, other words, coffee orders and other languages,
//! presented as a stream presents them and put through the frozen front end once,
//! its embeddings stored at 4 bits per value (under 5 MB, built into the binary). No audio
//! is kept. Each recording keeps the words it says (a transcript, or the word an
//! other-words folder is named after), so that recordings saying a word being trained
//! are left out when the bank is read.
//!
//! Built from the shared speech (`scripts/negatives-bank`), training split only: the
//! held-out talk the benchmarks measure false alarms on is never in it.
use crate::audio::embedding;
use crate::audio::features::{FeatureConfig, FeatureExtractor};
use crate::audio::wav;
use crate::learn::augment::NoiseBank;
use crate::learn::dataset::Split;
use crate::learn::speech::{self, SpeechFile};
use crate::learn::speech_bank::{Room, SpeechBank};
use crate::util::Rng;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

const MAGIC: &[u8; 8] = b"LSNSHIP2";
/// Levels of each stored value (4 bits: two a byte).
const LEVELS: usize = 16;
static SHIPPED: &[u8] = include_bytes!("../../assets/negatives/speech-bank.bin");

/// Seconds of each kind of speech the bank holds at most (kind: the first folder).
const BUDGET: [(&str, f64); 4] = [
    ("librispeech", 4000.0),
    ("other-languages", 1500.0),
    ("other-words", 1200.0),
    ("coffee-orders", 1200.0),
];
/// Seconds of one recording at most: more speakers, rather than long readings.
const MAX_RECORDING: f64 = 20.0;

/// Which recordings: most train; every fifth (by a hash of its place) is held out, for
/// choosing a model's detector on talk it never trained on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    Train,
    Held,
}

impl Part {
    fn of(recording: usize) -> Part {
        if crate::util::stable_hash(&(recording as u64).to_le_bytes()).is_multiple_of(5) {
            Part::Held
        } else {
            Part::Train
        }
    }
}

/// One recording in the bank: what it says, and its embeddings at 4 bits.
struct Recording {
    /// Upper-case words, space-separated (empty where unknown).
    words: String,
    frames: usize,
    /// One level a value, two a byte (the first in the low half).
    codes: Vec<u8>,
}

/// The bank as stored: each value's 16 levels, then recordings.
pub struct Shipped {
    fingerprint: u64,
    /// `[bins][LEVELS]`: the levels of each of a frame's values, rising.
    levels: Vec<f32>,
    recordings: Vec<Recording>,
    /// Seconds of each kind.
    pub kinds: BTreeMap<String, f64>,
}

impl Shipped {
    /// The bank built into this binary.
    pub fn bundled() -> Result<Shipped> {
        Shipped::parse(SHIPPED).context(
            "the negatives bank built into listen (assets/negatives/speech-bank.bin) is missing or damaged; rebuild it with scripts/negatives-bank",
        )
    }

    /// A `SpeechBank` of `part`, windows of `cfg`'s length, leaving out every recording
    /// that says one of `words` (or its plural); returns it with the recordings left out.
    pub fn bank(
        &self,
        cfg: &FeatureConfig,
        words: &[String],
        part: Part,
    ) -> Result<(SpeechBank, usize)> {
        if self.fingerprint != embedding::fingerprint() {
            bail!("the negatives bank built into listen was made with another speech front end; rebuild it with scripts/negatives-bank");
        }
        let bins = self.levels.len() / LEVELS;
        if bins != cfg.n_bins() {
            bail!(
                "the negatives bank has {bins} values a frame, the model's features {}",
                cfg.n_bins()
            );
        }
        let words = self.with_homophones(words);
        let mut bank = SpeechBank::empty(cfg);
        let mut left_out = 0;
        for (i, r) in self.recordings.iter().enumerate() {
            if Part::of(i) != part {
                continue;
            }
            if says_any(&r.words, &words) {
                left_out += 1;
                continue;
            }
            let rows: Vec<f32> = (0..r.frames * bins)
                .map(|i| self.levels[(i % bins) * LEVELS + code(&r.codes, i)])
                .collect();
            bank.push(&rows);
            bank.seconds += (r.frames * embedding::HOP_SAMPLES) as f64 / wav::SAMPLE_RATE as f64;
        }
        Ok((bank, left_out))
    }

    /// `words` and every word of the bank's transcripts that sounds like one of them
    /// ("write" for "right"), as espeak-ng says them. Without espeak-ng, `words` alone.
    fn with_homophones(&self, words: &[String]) -> Vec<String> {
        let mut out = words.to_vec();
        let said: std::collections::BTreeSet<&str> = self
            .recordings
            .iter()
            .flat_map(|r| r.words.split_whitespace())
            .collect();
        let said: Vec<String> = said.into_iter().map(|w| w.to_lowercase()).collect();
        let (Ok(targets), Ok(heard)) = (
            crate::learn::voices::pronunciations(words),
            crate::learn::voices::pronunciations(&said),
        ) else {
            return out;
        };
        for (w, p) in said.iter().zip(&heard) {
            if targets.contains(p) && !out.contains(w) {
                out.push(w.clone());
            }
        }
        out
    }

    fn parse(b: &[u8]) -> Option<Shipped> {
        let mut r = Reader { b, at: 0 };
        if r.take(8)? != MAGIC {
            return None;
        }
        let fingerprint = r.u64()?;
        let bins = r.u32()? as usize;
        let levels = (0..bins * LEVELS)
            .map(|_| r.f32())
            .collect::<Option<Vec<_>>>()?;
        let kinds: BTreeMap<String, f64> = serde_json::from_slice(r.block()?).ok()?;
        let n = r.u32()? as usize;
        let mut recordings = Vec::with_capacity(n);
        for _ in 0..n {
            let words = String::from_utf8(r.block()?.to_vec()).ok()?;
            let frames = r.u32()? as usize;
            let codes = r.take((frames * bins).div_ceil(2))?.to_vec();
            recordings.push(Recording {
                words,
                frames,
                codes,
            });
        }
        (r.at == b.len()).then_some(Shipped {
            fingerprint,
            levels,
            recordings,
            kinds,
        })
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(self.fingerprint.to_le_bytes());
        out.extend(((self.levels.len() / LEVELS) as u32).to_le_bytes());
        for v in &self.levels {
            out.extend(v.to_le_bytes());
        }
        let block = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend((b.len() as u32).to_le_bytes());
            out.extend(b);
        };
        block(
            &mut out,
            &serde_json::to_vec(&self.kinds).unwrap_or_default(),
        );
        out.extend((self.recordings.len() as u32).to_le_bytes());
        for r in &self.recordings {
            block(&mut out, r.words.as_bytes());
            out.extend((r.frames as u32).to_le_bytes());
            out.extend(&r.codes);
        }
        out
    }

    /// Hours of speech in the bank.
    pub fn hours(&self) -> f64 {
        self.kinds.values().sum::<f64>() / 3600.0
    }
}

/// Whether `said` (upper-case words) holds one of `words` (a word or phrase), or its
/// plural, as whole words.
fn says_any(said: &str, words: &[String]) -> bool {
    let said = format!(" {said} ");
    words.iter().any(|w| {
        // A phrase's label is its folder name: smart_mirror is "smart mirror".
        let w = w.replace(['_', '-'], " ").to_ascii_uppercase();
        [format!(" {w} "), format!(" {w}S "), format!(" {w}'S ")]
            .iter()
            .any(|x| said.contains(x.as_str()))
    })
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn f32(&mut self) -> Option<f32> {
        Some(f32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn block(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

/// Builds the bank from a speech folder (as `scripts/negatives` makes it) and writes it
/// to `out` (atomically): its training split, each kind up to its budget, recordings
/// drawn in a fixed random order.
pub fn build(dir: &Path, out: &Path, progress: &indicatif::ProgressBar) -> Result<Shipped> {
    let scan = speech::scan(dir, &[])?;
    let mut files = scan.of_split(Split::Train);
    Rng::new(24).shuffle(&mut files);
    let cfg = FeatureConfig::speech_embedding(1000);
    let mut fe = FeatureExtractor::new(&cfg)?;
    let noise = NoiseBank::synthetic();
    let room = Room {
        noise: &noise,
        seed: 24,
    };
    let mut rng = Rng::new(25);
    let mut kinds: BTreeMap<String, f64> = BTreeMap::new();
    let mut taken: Vec<(String, Vec<f32>)> = Vec::new();
    progress.set_length(files.len() as u64);
    for f in files {
        progress.inc(1);
        let kind = kind_of(dir, f);
        let budget = BUDGET.iter().find(|b| b.0 == kind).map_or(0.0, |b| b.1);
        let used = kinds.get(&kind).copied().unwrap_or(0.0);
        if used >= budget {
            continue;
        }
        let Ok(mut x) = wav::read_mono_16k(&f.path, 120.0) else {
            continue;
        };
        x.truncate((MAX_RECORDING * wav::SAMPLE_RATE as f64) as usize);
        *kinds.entry(kind).or_default() += x.len() as f64 / wav::SAMPLE_RATE as f64;
        let x = room.present(&x, cfg.clip_samples, &mut rng);
        taken.push((words_of(dir, f)?, fe.compute(&x)));
    }
    if taken.is_empty() {
        bail!(
            "{}: no training-split speech to build a negatives bank from",
            dir.display()
        );
    }
    let shipped = quantise(taken, cfg.n_bins(), kinds);
    crate::util::write_atomic(out, &shipped.to_bytes())?;
    Ok(shipped)
}

/// The first folder below `dir`: librispeech, other-words, ...
fn kind_of(dir: &Path, f: &SpeechFile) -> String {
    f.path
        .strip_prefix(dir)
        .ok()
        .and_then(|p| p.components().next())
        .map(|c| c.as_os_str().to_string_lossy().to_string())
        .unwrap_or_default()
}

/// What a recording says: its LibriSpeech transcript, or the word its other-words
/// folder is named after.
fn words_of(dir: &Path, f: &SpeechFile) -> Result<String> {
    let parent = f.path.parent().unwrap_or(dir);
    if kind_of(dir, f) == "other-words" {
        let name = parent.file_name().unwrap_or_default().to_string_lossy();
        return Ok(name.replace(['_', '-'], " ").to_ascii_uppercase());
    }
    let stem = f.path.file_stem().unwrap_or_default().to_string_lossy();
    Ok(speech::transcripts(parent)?
        .remove(stem.as_ref())
        .unwrap_or_default())
}

/// Level `i` of packed codes.
fn code(codes: &[u8], i: usize) -> usize {
    ((codes[i / 2] >> (4 * (i % 2))) & 0xf) as usize
}

/// Each value as one of 16 levels of its own: the middles of its sixteenths over the
/// whole bank (levels where values are, not evenly spread over a long tail).
fn quantise(taken: Vec<(String, Vec<f32>)>, bins: usize, kinds: BTreeMap<String, f64>) -> Shipped {
    let mut levels = vec![0.0f32; bins * LEVELS];
    for b in 0..bins {
        let mut v: Vec<f32> = taken
            .iter()
            .flat_map(|(_, rows)| rows.iter().skip(b).step_by(bins).copied())
            .collect();
        v.sort_by(f32::total_cmp);
        for k in 0..LEVELS {
            let at = ((2 * k + 1) * v.len()) / (2 * LEVELS);
            levels[b * LEVELS + k] = v.get(at).copied().unwrap_or(0.0);
        }
    }
    let nearest = |b: usize, x: f32| -> u8 {
        let l = &levels[b * LEVELS..(b + 1) * LEVELS];
        // Levels rise: the first whose midpoint with the next lies above x.
        (0..LEVELS - 1)
            .find(|&k| x < (l[k] + l[k + 1]) / 2.0)
            .unwrap_or(LEVELS - 1) as u8
    };
    let recordings = taken
        .into_iter()
        .map(|(words, rows)| {
            let mut codes = vec![0u8; rows.len().div_ceil(2)];
            for (i, v) in rows.iter().enumerate() {
                codes[i / 2] |= nearest(i % bins, *v) << (4 * (i % 2));
            }
            Recording {
                words,
                frames: rows.len() / bins,
                codes,
            }
        })
        .collect();
    Shipped {
        fingerprint: embedding::fingerprint(),
        levels,
        recordings,
        kinds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recording_saying_a_word_being_trained_is_found_by_its_words() {
        let w = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(says_any("THE COMPUTER IS ON", &w(&["computer"])));
        assert!(says_any("COMPUTERS EVERYWHERE", &w(&["computer"])));
        assert!(says_any("SMART MIRROR", &w(&["smart mirror"])));
        assert!(says_any("A SMART MIRROR", &w(&["smart_mirror"])));
        assert!(!says_any("COMPUTATION", &w(&["computer"])));
        assert!(!says_any("", &w(&["computer"])));
        assert!(!says_any("SMART PEOPLE", &w(&["smart mirror"])));
    }

    #[test]
    fn a_stored_bank_reads_back_to_its_nearest_levels_and_damage_is_refused() {
        let bins = 2;
        // 40 frames of two values: the first spread evenly, the second mostly zero.
        let rows: Vec<f32> = (0..40)
            .flat_map(|i| [i as f32, if i % 10 == 0 { 5.0 } else { 0.0 }])
            .collect();
        let taken = vec![
            ("HELLO THERE".to_string(), rows[..30].to_vec()),
            ("COMPUTER".to_string(), rows[30..].to_vec()),
        ];
        let kinds = BTreeMap::from([("librispeech".to_string(), 1.5)]);
        let s = quantise(taken.clone(), bins, kinds);
        let bytes = s.to_bytes();
        let back = Shipped::parse(&bytes).expect("reads back");
        assert_eq!(back.recordings.len(), 2);
        assert_eq!(back.recordings[0].words, "HELLO THERE");
        assert_eq!(back.recordings[0].frames, 15);
        for (r, (_, rows)) in back.recordings.iter().zip(&taken) {
            for (i, v) in rows.iter().enumerate() {
                let l = &back.levels[(i % bins) * LEVELS..][..LEVELS];
                let got = l[code(&r.codes, i)];
                let best = l
                    .iter()
                    .map(|x| (x - v).abs())
                    .fold(f32::INFINITY, f32::min);
                assert_eq!((got - v).abs(), best, "value {v} stored as {got}");
            }
        }
        // The evenly spread value: levels 2.5 apart; the mostly-zero one: zero exactly.
        assert!(back.recordings[0].codes.len() == 15);
        let first = &back.levels[..LEVELS];
        assert!(
            first.windows(2).all(|w| (w[1] - w[0] - 2.5).abs() < 1.01),
            "{first:?}"
        );
        assert_eq!(back.levels[LEVELS + 3], 0.0);
        assert!(
            Shipped::parse(&bytes[..bytes.len() - 1]).is_none(),
            "cut short"
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Shipped::parse(&longer).is_none(), "trailing bytes");
        assert!(Shipped::parse(b"LSNBANK1").is_none());
    }

    #[test]
    fn the_bundled_bank_is_whole_and_leaves_out_recordings_of_the_new_words() {
        let s = Shipped::bundled().unwrap();
        assert!(s.hours() > 1.0, "{} h", s.hours());
        let cfg = FeatureConfig::speech_embedding(1000);
        let (all, none_out) = s.bank(&cfg, &[], Part::Train).unwrap();
        assert_eq!(none_out, 0);
        let (fewer, out) = s
            .bank(&cfg, &["computer".to_string()], Part::Train)
            .unwrap();
        assert!(out > 10, "other-words/computer is in the bank: {out}");
        // "no" leaves out what says "know" too.
        let homophones = s.with_homophones(&["no".to_string()]);
        assert!(homophones.contains(&"know".to_string()), "{homophones:?}");
        assert!(!homophones.contains(&"now".to_string()), "{homophones:?}");
        assert!(fewer.len() < all.len());
        let (held, _) = s.bank(&cfg, &[], Part::Held).unwrap();
        let share = held.hours() / (held.hours() + all.hours());
        assert!((0.12..0.28).contains(&share), "held out: {share}");
    }
}
