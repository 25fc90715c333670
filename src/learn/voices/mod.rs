//! Voices that install here, for words nobody recorded (issue 24, `--train-words`):
//! espeak-ng in its English accents and voice variants, flite's five voices, and the
//! [`neural`] voices: piper-tts's joe and Kokoro-82M's five, blended two at a time
//! (scripts/setup installs them all). Each voice says a word at its own speed and
//! pitch (or generator noise, or blend); the training augmentation then adds the room
//! (noise, level, shift, speed). Synthetic voices are much closer to one another than
//! two people are, so the set is drawn wide; the neural ones sound most like people
//! (a probe: 100 piper voices added to 200 espeak-ng and flite ones took real
//! "computer" from 46% to 68%), so they are half of it.
//!
//! Words are checked before any voice speaks: each bad one is a one-line error naming
//! it. A voice that fails on a word is skipped, named and counted; the others go on.
use crate::audio::wav::{read_mono_16k, rms, SAMPLE_RATE};
use crate::util::Rng;
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;

pub mod neural;

/// The longest word or phrase a model's window holds comfortably, in seconds.
pub const MAX_SECONDS: f32 = 1.5;
/// Letters in a word or phrase at most (longer ones take more than `MAX_SECONDS`).
const MAX_LETTERS: usize = 24;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Espeak,
    Flite,
    Piper,
    Kokoro,
}

impl Engine {
    pub fn program(self) -> &'static str {
        match self {
            Engine::Espeak => "espeak-ng",
            Engine::Flite => "flite",
            Engine::Piper => "piper",
            Engine::Kokoro => "kokoro",
        }
    }

    /// Whether its program is on PATH (the neural ones: installed by set-up).
    pub fn installed(self) -> bool {
        if self.neural() {
            return neural::installed();
        }
        Command::new(self.program())
            .arg("--version")
            .output()
            .is_ok()
    }
}

const ESPEAK_ACCENTS: [&str; 7] = [
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
];
const ESPEAK_VARIANTS: [&str; 23] = [
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "Alex", "Andy",
    "Annie", "Denis", "Gene", "Jacky", "Lee", "Michael", "Mike", "Storm", "adam",
];
const FLITE_VOICES: [&str; 5] = ["kal", "kal16", "awb", "rms", "slt"];
const KOKORO_STYLES: [&str; 5] = [
    "jf_alpha",
    "jf_gongitsune",
    "jf_nezumi",
    "jf_tebukuro",
    "jm_kumo",
];
/// Engines in turn, one voice each: a quarter Kokoro, a quarter piper, the rest rules.
const TURNS: [Engine; 20] = {
    use Engine::*;
    [
        Kokoro, Piper, Espeak, Espeak, Flite, Kokoro, Piper, Espeak, Espeak, Piper, Kokoro, Espeak,
        Piper, Espeak, Flite, Kokoro, Piper, Espeak, Kokoro, Espeak,
    ]
};

impl Engine {
    fn neural(self) -> bool {
        matches!(self, Engine::Piper | Engine::Kokoro)
    }
}

/// One synthetic speaker: an engine's voice at a speed and a pitch.
#[derive(Clone, Debug, PartialEq)]
pub struct Voice {
    pub engine: Engine,
    /// espeak-ng: accent+variant (`en-gb+f3`); flite: its voice (`slt`); piper: `joe`;
    /// Kokoro: the accent of its phonemes and two styles (`en-us:jf_alpha+jm_kumo`).
    pub name: String,
    /// Speaking rate relative to the engine's default (1.0).
    pub speed: f32,
    /// espeak-ng's pitch, 0-99 (50 its default); flite's mean F0 in Hz; else 0.
    pub pitch: u32,
    /// piper: its generator noise (noise_scale); Kokoro: the second style's share.
    pub mix: f32,
}

impl Voice {
    /// What a report calls it.
    pub fn label(&self) -> String {
        let colour = match self.engine {
            Engine::Espeak | Engine::Flite => format!("pitch {}", self.pitch),
            Engine::Piper => format!("noise {:.2}", self.mix),
            Engine::Kokoro => format!("blend {:.2}", self.mix),
        };
        format!(
            "{} {} at {:.2}x, {colour}",
            self.engine.program(),
            self.name,
            self.speed
        )
    }

    /// `text` in this voice, 16 kHz mono, cut to where it is voiced. `scratch` holds the
    /// engine's raw output for the time it takes to read it. (Neural voices say many
    /// clips at a time: [`speak`].)
    pub fn say(&self, text: &str, scratch: &Path) -> Result<Vec<f32>> {
        if self.engine.neural() {
            let hidden = indicatif::ProgressBar::hidden();
            let r = neural::say_all(&[(text, self)], 1, scratch, &hidden).pop();
            return r
                .unwrap_or_else(|| Err(anyhow::anyhow!("said nothing")))
                .and_then(voiced);
        }
        let raw = scratch.join(format!(
            "say-{}-{}.wav",
            std::process::id(),
            crate::util::stable_hash(format!("{self:?}{text}").as_bytes())
        ));
        let mut cmd = Command::new(self.engine.program());
        match self.engine {
            Engine::Espeak => cmd
                .args(["-v", &self.name, "-s"])
                .arg(((175.0 * self.speed) as u32).to_string())
                .args(["-p", &self.pitch.to_string(), "-w"])
                .arg(&raw)
                .arg(text),
            _ => cmd
                .args(["-voice", &self.name, "--setf"])
                .arg(format!("duration_stretch={:.3}", 1.0 / self.speed))
                .arg("--setf")
                .arg(format!("int_f0_target_mean={}", self.pitch))
                .args(["-t", text, "-o"])
                .arg(&raw),
        };
        let out = cmd.output();
        let clip = match out {
            Err(e) => Err(anyhow::anyhow!(
                "{} could not start: {e}",
                self.engine.program()
            )),
            Ok(o) if !o.status.success() => Err(anyhow::anyhow!(
                "{} failed: {}",
                self.engine.program(),
                String::from_utf8_lossy(&o.stderr).trim()
            )),
            Ok(_) => read_mono_16k(&raw, 10.0),
        };
        let _ = std::fs::remove_file(&raw);
        voiced(clip?)
    }
}

/// A clip cut to where it makes a sound: within 40 dB of its loudest 10 ms (a voice's
/// output is clean, and a word's quiet ends, the "s" of "lights", are part of it), with
/// 20 ms either side.
fn voiced(clip: Vec<f32>) -> Result<Vec<f32>> {
    let hop = SAMPLE_RATE as usize / 100;
    let levels: Vec<f32> = clip.chunks(hop).map(rms).collect();
    let peak = levels.iter().copied().fold(0.0f32, f32::max);
    let loud = |l: &f32| *l >= peak * 0.01;
    match (levels.iter().position(loud), levels.iter().rposition(loud)) {
        (Some(a), Some(b)) if peak > 1e-4 => {
            let pad = hop * 2;
            Ok(clip[(a * hop).saturating_sub(pad)..((b + 1) * hop + pad).min(clip.len())].to_vec())
        }
        _ => bail!("said nothing"),
    }
}

/// `count` voices, the same for the same seed: the engines in turn ([`TURNS`]), and
/// within each engine every voice before any repeats (every espeak-ng accent and
/// variant; Kokoro's styles in pairs, the second blended in at up to a half), each at a
/// speed of 0.75-1.3x and a pitch (or noise) drawn over the engine's range. An engine
/// that is not installed is one line naming it.
pub fn voices(count: usize, seed: u64) -> Result<Vec<Voice>> {
    for e in [Engine::Espeak, Engine::Flite] {
        if !e.installed() {
            bail!("{} is not installed: run scripts/setup", e.program());
        }
    }
    neural::require()?;
    let mut rng = Rng::new(seed);
    let mut names = |engine: Engine| -> Vec<String> {
        let mut n: Vec<String> = match engine {
            Engine::Espeak => ESPEAK_ACCENTS
                .iter()
                .flat_map(|a| ESPEAK_VARIANTS.iter().map(move |v| format!("{a}+{v}")))
                .collect(),
            Engine::Flite => FLITE_VOICES.iter().map(|v| v.to_string()).collect(),
            Engine::Piper => vec!["joe".to_string()],
            Engine::Kokoro => ["en-us", "en-gb"]
                .iter()
                .flat_map(|acc| {
                    KOKORO_STYLES.iter().flat_map(move |a| {
                        KOKORO_STYLES.iter().map(move |b| format!("{acc}:{a}+{b}"))
                    })
                })
                .collect(),
        };
        rng.shuffle(&mut n);
        n
    };
    let lists: Vec<(Engine, Vec<String>)> =
        [Engine::Espeak, Engine::Flite, Engine::Piper, Engine::Kokoro]
            .into_iter()
            .map(|e| (e, names(e)))
            .collect();
    let mut used = [0usize; 4];
    Ok((0..count)
        .map(|k| {
            let engine = TURNS[k % TURNS.len()];
            let e = lists
                .iter()
                .position(|(x, _)| *x == engine)
                .expect("every engine listed");
            let list = &lists[e].1;
            let name = list[used[e] % list.len()].clone();
            used[e] += 1;
            let speed = rng.range(0.75, 1.3);
            let (pitch, mix) = match engine {
                Engine::Espeak => (rng.range(15.0, 85.0) as u32, 0.0),
                Engine::Flite => (rng.range(80.0, 220.0) as u32, 0.0),
                Engine::Piper => (0, rng.range(0.3, 1.0)),
                Engine::Kokoro => (0, rng.range(0.0, 0.5)),
            };
            Voice {
                engine,
                name,
                speed,
                pitch,
                mix,
            }
        })
        .collect())
}

/// The words of `--train-words a,b,...`, trimmed and lower-cased, each one a word or a
/// short phrase the voices can say, none given twice, none one of `taken` (the
/// model's other labels). Each problem is one line naming the word.
pub fn check_words(list: &str, taken: &[String]) -> Result<Vec<String>> {
    let mut words: Vec<String> = Vec::new();
    for raw in list.split(',') {
        let w = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase();
        if w.is_empty() {
            bail!("--train-words {list:?}: an empty word (two commas, or a comma at an end); give words like lights,music");
        }
        if taken.iter().any(|t| t.eq_ignore_ascii_case(&w)) || w.starts_with('_') {
            bail!("--train-words: '{w}' is already one of the model's labels");
        }
        if w.chars().all(|c| c.is_ascii_digit() || c == ' ') {
            bail!("--train-words: '{w}' is digits only; write it in words (\"one two\")");
        }
        if let Some(c) = w
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || matches!(c, ' ' | '\'' | '-')))
        {
            bail!("--train-words: '{w}' has '{c}', which the voices cannot say: use English letters, spaces, ' and -");
        }
        if w.chars().filter(char::is_ascii_lowercase).count() > MAX_LETTERS {
            bail!("--train-words: '{w}' is too long: a word or a short phrase said within about {MAX_SECONDS} s");
        }
        if words.contains(&w) {
            bail!("--train-words: '{w}' is given twice");
        }
        words.push(w);
    }
    Ok(words)
}

/// Onsets a sound-alike may start with in place of a word's own.
const ONSETS: [&str; 20] = [
    "b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "w", "ch", "sh", "st", "tr",
    "pl", "br",
];
/// Vowel spellings a sound-alike may have in place of a word's first.
const VOWELS: [&str; 9] = ["a", "e", "i", "o", "u", "ee", "oo", "ai", "ou"];

fn is_vowel(c: char) -> bool {
    matches!(c, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

/// Where the vowel letters starting at `from` end, with a silent "gh" after them
/// ("igh" in "lights" is one vowel sound).
fn nucleus_end(s: &str, from: usize) -> usize {
    let b = s.as_bytes();
    let mut k = from;
    while k < b.len() && is_vowel(b[k] as char) {
        k += 1;
    }
    if k > from && s[k..].starts_with("gh") {
        k += 2;
    }
    k
}

/// How espeak-ng (American) says each of `texts` (words or phrases of letters, spaces,
/// `'` and `-`), stress marks left out: "right", "write" and "wright" all give "ɹaɪt".
/// One call for all of them.
pub fn pronunciations(texts: &[String]) -> Result<Vec<String>> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let input: String = texts
        .iter()
        .map(|t| format!("{}.\n", t.to_lowercase().replace('.', " ")))
        .collect();
    let mut child = Command::new("espeak-ng")
        .args(["-q", "--ipa", "-v", "en-us"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| anyhow::anyhow!("espeak-ng could not start ({e}): run scripts/setup"))?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(input.as_bytes());
    });
    let out = child.wait_with_output()?;
    let _ = writer.join();
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            l.split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace(['ˈ', 'ˌ'], "")
        })
        .collect();
    if lines.len() != texts.len() {
        bail!(
            "espeak-ng gave {} pronunciations for {} words",
            lines.len(),
            texts.len()
        );
    }
    Ok(lines)
}

/// Words a model should not take for `word`, spelt for the voices to say (they read
/// made-up words by rule): the word with another onset ("lights" -> "nights",
/// "bights"), with another first vowel ("lots", "loots"), its first and its last part
/// alone ("compu", "ter"), and for a phrase each of its words alone, and the phrase
/// with one word changed so. None is one of `keep` (the words being trained).
pub fn confusables(word: &str, keep: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Words come through `check_words`: English letters. Anything else has no rules here.
    if !word.is_ascii() {
        return out;
    }
    let mut add = |w: String| {
        let w = w.trim().to_string();
        if w.len() >= 2 && w.chars().any(is_vowel) && !keep.contains(&w) && !out.contains(&w) {
            out.push(w);
        }
    };
    let parts: Vec<&str> = word.split(' ').collect();
    if parts.len() > 1 {
        parts.iter().for_each(|p| add(p.to_string()));
    }
    for (i, part) in parts.iter().enumerate() {
        let with = |new: String| {
            let mut p: Vec<String> = parts.iter().map(|s| s.to_string()).collect();
            p[i] = new;
            p.join(" ")
        };
        let onset = part.find(is_vowel).unwrap_or(0);
        let rest = &part[onset..];
        for o in ONSETS.iter().filter(|o| **o != &part[..onset]) {
            add(with(format!("{o}{rest}")));
        }
        let vowel_end = nucleus_end(rest, 0);
        for v in VOWELS.iter().filter(|v| **v != &rest[..vowel_end]) {
            add(with(format!("{}{v}{}", &part[..onset], &rest[vowel_end..])));
        }
        // Its first and last part: split after the vowel sound nearest the middle.
        let ends: Vec<usize> = (0..part.len())
            .filter(|&k| {
                is_vowel(part.as_bytes()[k] as char)
                    && (k == 0 || !is_vowel(part.as_bytes()[k - 1] as char))
            })
            .map(|k| nucleus_end(part, k))
            .filter(|&e| e < part.len())
            .collect();
        if let Some(&k) = ends.iter().min_by_key(|&&k| (2 * k).abs_diff(part.len())) {
            add(with(part[..k].to_string()));
            add(with(part[k..].to_string()));
        }
    }
    out
}

/// One word said by one voice.
pub struct Clip {
    pub word: String,
    pub voice: usize,
    pub audio: Vec<f32>,
}

/// What the voices said, and which failed on what.
#[derive(Default)]
pub struct Spoken {
    pub clips: Vec<Clip>,
    /// (voice, word, why) for every clip a voice could not make.
    pub failed: Vec<(String, String, String)>,
}

impl Spoken {
    /// One line about the failures, if any: how many, and the first.
    pub fn failures(&self) -> Option<String> {
        let (v, w, why) = self.failed.first()?;
        Some(format!(
            "{} of {} clips could not be made and were skipped (first: {v} on '{w}': {why})",
            self.failed.len(),
            self.failed.len() + self.clips.len()
        ))
    }
}

/// Every word in every voice, on `threads` threads. A failing voice is skipped and
/// counted; a word that no voice can say, or that takes longer than [`MAX_SECONDS`]
/// in most voices, is an error naming it ([`Spoken::check`]).
pub fn speak(
    words: &[String],
    voices: &[Voice],
    threads: usize,
    scratch: &Path,
    progress: &indicatif::ProgressBar,
) -> Result<Spoken> {
    let jobs: Vec<(usize, usize)> = (0..words.len())
        .flat_map(|w| (0..voices.len()).map(move |v| (w, v)))
        .collect();
    let said: Vec<(&str, &Voice)> = jobs
        .iter()
        .map(|&(w, v)| (words[w].as_str(), &voices[v]))
        .collect();
    let mut spoken = Spoken::default();
    for (&(w, v), r) in jobs.iter().zip(say_each(&said, threads, scratch, progress)) {
        spoken.add(&words[w], v, &voices[v], r);
    }
    spoken.check(words)?;
    Ok(spoken)
}

/// Each `(text, voice)` said, in order, on `threads` threads: the neural voices in a
/// few long processes (each loading its models once), the others a process a clip.
/// `progress` counts the clips.
pub fn say_each(
    jobs: &[(&str, &Voice)],
    threads: usize,
    scratch: &Path,
    progress: &indicatif::ProgressBar,
) -> Vec<Result<Vec<f32>>> {
    let (neural_jobs, rule_jobs): (Vec<usize>, Vec<usize>) =
        (0..jobs.len()).partition(|&i| jobs[i].1.engine.neural());
    let said: Vec<(&str, &Voice)> = neural_jobs.iter().map(|&i| jobs[i]).collect();
    let mut results: Vec<(usize, Result<Vec<f32>>)> = neural_jobs
        .iter()
        .copied()
        .zip(neural::say_all(&said, threads, scratch, progress))
        .map(|(i, r)| (i, r.and_then(voiced)))
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let rule = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&i) = rule_jobs.get(k) else { return };
                let (text, voice) = jobs[i];
                let r = voice.say(text, scratch);
                progress.inc(1);
                if let Ok(mut all) = rule.lock() {
                    all.push((i, r));
                }
            });
        }
    });
    results.extend(rule.into_inner().unwrap_or_default());
    results.sort_by_key(|r| r.0);
    results.into_iter().map(|(_, r)| r).collect()
}

impl Spoken {
    /// One clip's outcome: kept, or counted among the failures.
    pub fn add(&mut self, word: &str, v: usize, voice: &Voice, r: Result<Vec<f32>>) {
        match r {
            Ok(audio) => self.clips.push(Clip {
                word: word.to_string(),
                voice: v,
                audio,
            }),
            Err(e) => self
                .failed
                .push((voice.label(), word.to_string(), format!("{e:#}"))),
        }
    }

    /// The median length of `word`'s clips, in seconds (0 if none).
    pub fn median_seconds(&self, word: &str) -> f32 {
        let mut lengths: Vec<f32> = self
            .clips
            .iter()
            .filter(|c| c.word == word)
            .map(|c| c.audio.len() as f32 / SAMPLE_RATE as f32)
            .collect();
        lengths.sort_by(f32::total_cmp);
        lengths.get(lengths.len() / 2).copied().unwrap_or(0.0)
    }

    /// Each of `words` said by some voice, and within [`MAX_SECONDS`] in most: else one
    /// line naming the word.
    pub fn check(&self, words: &[String]) -> Result<()> {
        for w in words {
            if !self.clips.iter().any(|c| &c.word == w) {
                bail!(
                    "--train-words: no voice could say '{w}' ({})",
                    self.failures().unwrap_or_default()
                );
            }
            let median = self.median_seconds(w);
            if median > MAX_SECONDS {
                bail!("--train-words: '{w}' takes {median:.1} s to say; a word or a short phrase within about {MAX_SECONDS} s");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(list: &str) -> String {
        let e = check_words(
            list,
            &["_silence_".into(), "_unknown_".into(), "left".into()],
        )
        .err()
        .unwrap();
        let e = format!("{e:#}");
        assert!(!e.contains('\n'), "{e}");
        e
    }

    #[test]
    fn words_are_trimmed_and_each_bad_one_is_one_line_naming_it() {
        let ok = check_words(" Lights ,hey  computer,rock-n-roll,don't", &[]).unwrap();
        assert_eq!(ok, ["lights", "hey computer", "rock-n-roll", "don't"]);
        assert!(err("lights,,music").contains("empty word"));
        assert!(err("").contains("empty word"));
        assert!(err("lights,42").contains("'42' is digits only"));
        assert!(err("свет").contains("'свет' has 'с'"));
        assert!(err("lights,a2").contains("'a2' has '2'"));
        assert!(err("turn on every light in the house").contains("too long"));
        assert!(err("music,Music").contains("'music' is given twice"));
        assert!(err("lights,left").contains("'left' is already one of the model's labels"));
        assert!(err("_silence_").contains("already one of the model's labels"));
    }

    #[test]
    fn sound_alikes_change_one_part_of_a_word_and_never_give_a_word_being_trained() {
        let keep = vec!["lights".to_string(), "nights".to_string()];
        let c = confusables("lights", &keep);
        for w in ["bights", "fights", "lots", "loots", "ligh"] {
            assert!(c.contains(&w.to_string()), "{w} missing from {c:?}");
        }
        assert!(!c.contains(&"lights".to_string()) && !c.contains(&"nights".to_string()));
        assert!(c.len() >= 20, "{c:?}");
        let c = confusables("computer", &[]);
        assert!(
            c.contains(&"compu".to_string()) && c.contains(&"ter".to_string()),
            "{c:?}"
        );
        assert!(
            c.contains(&"campoter".to_string()) || c.contains(&"cumputer".to_string()),
            "{c:?}"
        );
        // A phrase: each word alone, and the phrase with one word changed.
        let c = confusables("hey jarvis", &[]);
        for w in ["hey", "jarvis", "hey barvis", "hey jorvis", "sey jarvis"] {
            assert!(c.contains(&w.to_string()), "{w} missing from {c:?}");
        }
        // Every one something the voices can say: letters and spaces, no duplicates.
        let mut seen = std::collections::HashSet::new();
        for w in &c {
            assert!(check_words(w, &[]).is_ok(), "{w}");
            assert!(seen.insert(w), "{w} twice");
        }
    }

    #[test]
    fn homophones_share_a_pronunciation_and_other_words_do_not() {
        let w = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let p = pronunciations(&w(&["right", "Write", "wright", "light", "hey computer"])).unwrap();
        assert_eq!(p.len(), 5);
        assert!(p[0] == p[1] && p[1] == p[2], "{p:?}");
        assert_ne!(p[0], p[3]);
        assert!(p[4].contains(' '), "a phrase keeps its words apart: {p:?}");
    }

    #[test]
    fn voices_are_many_varied_and_the_same_for_a_seed() {
        let a = voices(60, 1).unwrap();
        assert_eq!(a, voices(60, 1).unwrap());
        assert_ne!(a, voices(60, 2).unwrap());
        let rules: Vec<&Voice> = a.iter().filter(|v| v.engine == Engine::Espeak).collect();
        let names: std::collections::HashSet<&str> =
            rules.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names.len(),
            rules.len(),
            "no voice twice before every one was used"
        );
        let labels: std::collections::HashSet<String> = a.iter().map(|v| v.label()).collect();
        assert_eq!(labels.len(), 60);
        let accents: std::collections::HashSet<&str> = rules
            .iter()
            .map(|v| v.name.split('+').next().unwrap())
            .collect();
        assert!(accents.len() >= 5, "{accents:?}");
        assert!(a.iter().all(|v| (0.75..1.3).contains(&v.speed)));
        let share = |e: Engine| a.iter().filter(|v| v.engine == e).count();
        assert_eq!(
            [Engine::Kokoro, Engine::Piper, Engine::Espeak, Engine::Flite].map(share),
            [15, 15, 24, 6]
        );
        let styles: std::collections::HashSet<&str> = a
            .iter()
            .filter(|v| v.engine == Engine::Kokoro)
            .map(|v| v.name.as_str())
            .collect();
        assert_eq!(styles.len(), 15, "Kokoro's pairs all differ");
    }

    #[test]
    fn each_voice_says_a_word_and_a_failing_voice_is_skipped_named_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        // One voice of each engine (Kokoro, piper, espeak-ng, flite), and two broken ones.
        let mut vs: Vec<Voice> = voices(5, 3).unwrap();
        vs.remove(3);
        vs.push(Voice {
            engine: Engine::Espeak,
            name: "xx-no-such-voice".into(),
            speed: 1.0,
            pitch: 50,
            mix: 0.0,
        });
        vs.push(Voice {
            engine: Engine::Kokoro,
            name: "en-us:jf_alpha+no_such_style".into(),
            speed: 1.0,
            pitch: 0,
            mix: 0.3,
        });
        let words = vec!["lights".to_string(), "hey computer".to_string()];
        let pb = indicatif::ProgressBar::hidden();
        let s = speak(&words, &vs, 2, dir.path(), &pb).unwrap();
        assert_eq!(pb.position(), 12, "every clip counted");
        assert_eq!(s.clips.len(), 8);
        assert_eq!(s.failed.len(), 4);
        let line = s.failures().unwrap();
        assert!(
            line.starts_with("4 of 12 clips") && line.contains("xx-no-such-voice"),
            "{line}"
        );
        assert!(
            s.failed.iter().any(|f| f.0.contains("no_such_style")),
            "{:?}",
            s.failed
        );
        for c in &s.clips {
            let secs = c.audio.len() as f32 / 16_000.0;
            assert!(
                (0.2..MAX_SECONDS).contains(&secs),
                "{} by {}: {secs} s",
                c.word,
                vs[c.voice].label()
            );
        }
        // Nothing left behind in the scratch folder.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // A phrase too long to say within the window, and a word no voice can say.
        let long = vec!["supercalifragilisticexpialidocious".to_string()];
        let e = format!(
            "{:#}",
            speak(&long, &vs[..4], 2, dir.path(), &pb).err().unwrap()
        );
        assert!(e.contains("takes") && e.contains("expialidocious"), "{e}");
        let none = speak(&words[..1], &vs[4..], 1, dir.path(), &pb)
            .err()
            .unwrap();
        assert!(
            format!("{none:#}").contains("no voice could say 'lights'"),
            "{none:#}"
        );
    }
}
