//! The neural voices (piper-tts's joe, Kokoro-82M), installed by scripts/setup into
//! `.deps/voices` and run by `neural.py`: one Python process per thread says its share
//! of the clips, loading each model once. Kokoro is given English phonemes: espeak-ng's
//! IPA, respelt in the symbols Kokoro was trained on (misaki's).
use super::{Engine, Voice};
use crate::audio::wav::read_mono_16k;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

const SCRIPT: &str = include_str!("neural.py");
/// Written by scripts/setup once the voices are whole.
const STAMP: &str = ".installed-1";

/// Where the neural voices are: `LISTEN_VOICES_DIR`, else `.deps/voices` in the checkout.
pub fn dir() -> PathBuf {
    std::env::var_os("LISTEN_VOICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/voices"))
}

/// Whether the neural voices are installed (set-up finished).
pub fn installed() -> bool {
    dir().join(STAMP).is_file()
}

/// One line when they are not.
pub fn require() -> Result<()> {
    if !installed() {
        bail!(
            "the neural voices (piper-tts, Kokoro) are not installed in {}: run scripts/setup",
            dir().display()
        );
    }
    Ok(())
}

/// A job line's engine and parameters for `voice`.
fn params(voice: &Voice) -> (&'static str, String) {
    match voice.engine {
        Engine::Piper => (
            "piper",
            format!(
                "{:.3},{:.3},{:.3}",
                1.0 / voice.speed,
                voice.mix,
                0.4 + voice.mix
            ),
        ),
        _ => {
            let styles = voice
                .name
                .split_once(':')
                .map_or(voice.name.as_str(), |n| n.1);
            let (a, b) = styles.split_once('+').unwrap_or((styles, styles));
            (
                "kokoro",
                format!("{a},{b},{:.3},{:.3}", voice.mix, voice.speed),
            )
        }
    }
}

/// Each `(text, voice)` said, in order, on `threads` processes (`progress` counts the
/// clips). A clip that fails is an error of its own; a process that fails fails every
/// clip it had not made.
pub fn say_all(
    jobs: &[(&str, &Voice)],
    threads: usize,
    scratch: &Path,
    progress: &indicatif::ProgressBar,
) -> Vec<Result<Vec<f32>>> {
    if jobs.is_empty() {
        return Vec::new();
    }
    let tag = format!("neural-{}", std::process::id());
    let script = scratch.join(format!("{tag}.py"));
    if let Err(e) = std::fs::write(&script, SCRIPT) {
        let why = format!("cannot write {}: {e}", script.display());
        return jobs.iter().map(|_| Err(anyhow::anyhow!("{why}"))).collect();
    }
    let outs: Vec<PathBuf> = (0..jobs.len())
        .map(|i| scratch.join(format!("{tag}-{i}.wav")))
        .collect();
    let workers = threads.clamp(1, jobs.len());
    let tag = &tag;
    let failures: Vec<Result<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (script, outs) = (&script, &outs);
                s.spawn(move || -> Result<String> {
                    let mut lines = String::new();
                    for i in (w..jobs.len()).step_by(workers) {
                        let (text, voice) = jobs[i];
                        let text = match voice.engine {
                            Engine::Kokoro => kokoro_phonemes(text, &voice.name)?,
                            _ => text.to_string(),
                        };
                        let (engine, p) = params(voice);
                        lines += &format!("{engine}\t{p}\t{text}\t{}\n", outs[i].display());
                    }
                    let list = scratch.join(format!("{tag}-jobs-{w}.txt"));
                    std::fs::write(&list, lines)?;
                    let r = run_worker(script, &list, progress);
                    let _ = std::fs::remove_file(&list);
                    r
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a voice worker panicked")))
            })
            .collect()
    });
    let _ = std::fs::remove_file(&script);
    let mut failed = std::collections::HashMap::new();
    for (w, f) in failures.iter().enumerate() {
        match f {
            Ok(stdout) => {
                for line in stdout.lines() {
                    if let Some(rest) = line.strip_prefix("FAIL\t") {
                        let (out, why) = rest.split_once('\t').unwrap_or((rest, "failed"));
                        failed.insert(PathBuf::from(out), why.to_string());
                    }
                }
            }
            Err(e) => {
                for i in (w..jobs.len()).step_by(workers) {
                    failed.insert(outs[i].clone(), format!("{e:#}"));
                }
            }
        }
    }
    outs.iter()
        .map(|o| {
            let r = match failed.get(o) {
                Some(why) if !o.exists() => Err(anyhow::anyhow!("{why}")),
                _ => read_mono_16k(o, 10.0),
            };
            let _ = std::fs::remove_file(o);
            r
        })
        .collect()
}

/// Runs one `neural.py` over a jobs list, counting its clips as they come; returns
/// what it printed.
fn run_worker(script: &Path, list: &Path, progress: &indicatif::ProgressBar) -> Result<String> {
    use std::io::{BufRead, BufReader};
    // stderr to a file: a full pipe nobody reads would stall the process.
    let err_path = list.with_extension("err");
    let mut child = Command::new("python3")
        .arg(script)
        .arg(dir())
        .arg(list)
        .env("PYTHONPATH", dir())
        .env("OMP_NUM_THREADS", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&err_path)?)
        .spawn()
        .context("python3 could not start")?;
    let mut said = String::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            progress.inc(1);
            said += &line;
            said.push('\n');
        }
    }
    let status = child.wait()?;
    let err = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&err_path);
    if !status.success() {
        let last = err
            .lines()
            .last()
            .unwrap_or("python3 failed")
            .trim()
            .to_string();
        // What it made before it failed is kept (`say_all`); the rest fail with this.
        bail!("{last}");
    }
    Ok(said)
}

/// `text` in Kokoro's phonemes: espeak-ng's IPA for an American or (for a voice whose
/// name says `gb`) a British reading, respelt as misaki writes English.
pub fn kokoro_phonemes(text: &str, voice: &str) -> Result<String> {
    let accent = if voice.contains("gb") {
        "en-gb"
    } else {
        "en-us"
    };
    let out = Command::new("espeak-ng")
        .args(["-q", "--ipa", "-v", accent])
        .arg(text)
        .output()
        .context("espeak-ng could not start (it gives Kokoro its phonemes)")?;
    let ipa = String::from_utf8_lossy(&out.stdout);
    let ipa = ipa.split_whitespace().collect::<Vec<_>>().join(" ");
    if ipa.is_empty() {
        bail!("espeak-ng gave no phonemes");
    }
    Ok(respell(&ipa, accent == "en-us"))
}

/// espeak-ng IPA to misaki's symbols (as misaki's own espeak fallback maps them).
fn respell(ipa: &str, american: bool) -> String {
    const BOTH: [(&str, &str); 16] = [
        ("aɪ", "I"),
        ("aʊ", "W"),
        ("dʒ", "ʤ"),
        ("tʃ", "ʧ"),
        ("eɪ", "A"),
        ("ɔɪ", "Y"),
        ("ɚ", "əɹ"),
        ("ɐ", "ə"),
        ("r", "ɹ"),
        ("x", "k"),
        ("ç", "k"),
        ("ɬ", "l"),
        ("ʔ", "t"),
        ("ʲ", ""),
        ("e", "A"),
        ("ɜː", "ɜɹ"),
    ];
    let mut s = ipa.to_string();
    let oh = if american {
        ("oʊ", "O")
    } else {
        ("əʊ", "Q")
    };
    s = s.replace(oh.0, oh.1);
    for (a, b) in BOTH {
        s = s.replace(a, b);
    }
    if american {
        s = s.replace('ː', "");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn espeak_ipa_is_respelt_as_kokoro_reads_it() {
        assert_eq!(respell("kəmpjˈuːɾɚ", true), "kəmpjˈuɾəɹ");
        assert_eq!(respell("dʒˈɑːɹvɪs", true), "ʤˈɑɹvɪs");
        assert_eq!(respell("lˈaɪts ˌɔn", true), "lˈIts ˌɔn");
        assert_eq!(respell("hˈeɪ", false), "hˈA");
        assert_eq!(respell("ɡˈəʊ", false), "ɡˈQ");
    }
}
