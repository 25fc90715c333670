//! Helpers shared by the integration tests: the binary, data sets the tests make
//! themselves (espeak-ng words through scripts/synth-clips), and the shared data.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod procstat;
pub mod vmic;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_listen"))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch folder under target/ that survives the test (for inspection), made fresh.
pub fn scratch(name: &str) -> PathBuf {
    let d = root().join("target").join("test-scratch").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Caches the tests' training runs write (speech banks, clip variants of test data):
/// under target/, never the user's own cache.
pub fn test_cache() -> PathBuf {
    root().join("target").join("test-cache")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("LISTEN_CACHE_DIR", test_cache())
        .output()
        .expect("run listen")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// Asserts a clean failure: exit code 2 and a one-line error containing every `needle`.
pub fn assert_clean_error(o: &Output, needles: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "exit code; stderr: {err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("listen: error:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "{err}"
    );
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' missing from: {}", lines[0]);
    }
}

/// Four words spoken by 40 synthetic "speakers" (espeak-ng voices, speeds, pitches)
/// over light noise, plus a pink-noise `_background_noise_`. Made once per test binary.
pub fn tts_words() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = root()
            .join("target")
            .join("test-data")
            .join(format!("tts-words-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        // Folders of test binaries that have exited are garbage.
        if let Ok(entries) = std::fs::read_dir(d.parent().unwrap()) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let pid = name
                    .strip_prefix("tts-words-")
                    .and_then(|p| p.parse::<i32>().ok());
                // SAFETY: signal 0 only checks that the process exists.
                if pid.is_some_and(|p| unsafe { libc::kill(p, 0) } != 0) {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let st = Command::new(root().join("scripts/synth-clips"))
            .args([
                d.to_str().unwrap(),
                "left,right,up,down",
                "--speakers",
                "40",
                "--prefix",
                "tts",
                "--noise",
                "0.02",
            ])
            .status()
            .expect("scripts/synth-clips (needs espeak-ng and sox: run scripts/setup)");
        assert!(st.success(), "synth-clips failed");
        d
    })
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let p = e.path();
        if p.is_dir() {
            copy_tree(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// The shared Speech Commands clips decoded to WAV (unpacked once into target/), or None
/// with a message when ../shared is not there.
pub fn speech_commands() -> Option<PathBuf> {
    let src = root().join("../shared/speech-commands");
    if !src.join("unpack").exists() {
        skipped("../shared/speech-commands is absent; this test needs the shared data");
        return None;
    }
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    Some(
        DIR.get_or_init(|| {
            let dest = root().join("target").join("speech-commands");
            let st = Command::new(src.join("unpack"))
                .arg(&dest)
                .status()
                .expect("run unpack");
            assert!(st.success(), "unpack failed");
            dest
        })
        .clone(),
    )
}

/// `word` spoken by espeak-ng (en-us), 16 kHz mono, with its leading/trailing silence cut.
pub fn spoken(word: &str, dir: &std::path::Path) -> Vec<f32> {
    let p = dir.join(format!("{word}.raw.wav"));
    let st = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "140", "-w", p.to_str().unwrap(), word])
        .status()
        .expect("espeak-ng (run scripts/setup)");
    assert!(st.success());
    let x = listen::audio::wav::read_mono_16k(&p, 5.0).unwrap();
    let loud = |v: &f32| v.abs() > 0.02;
    let a = x.iter().position(loud).unwrap();
    let b = x.iter().rposition(loud).unwrap();
    x[a..=b].to_vec()
}

/// Words separated by `gap` seconds over pink-ish noise; returns audio and truth (label, start_ms, end_ms).
pub fn make_stream(
    words: &[&str],
    gap: f32,
    noise: f32,
    dir: &std::path::Path,
) -> (Vec<f32>, Vec<(String, u64, u64)>) {
    let mut rng = listen::util::Rng::new(5);
    let mut x = vec![0.0f32; (gap * 16000.0) as usize];
    let mut truth = Vec::new();
    for w in words {
        let s = spoken(w, dir);
        let start = x.len() as u64 * 1000 / 16000;
        x.extend(s.iter().map(|v| v * 0.5));
        truth.push((w.to_string(), start, x.len() as u64 * 1000 / 16000));
        x.extend(std::iter::repeat_n(0.0, (gap * 16000.0) as usize));
    }
    let mut b = 0.0f32;
    for v in &mut x {
        b = 0.95 * b + 0.05 * rng.normal();
        *v += noise * b;
    }
    (x, truth)
}

/// A folder of speech that is not a command, LibriSpeech style: sentences spoken by
/// espeak-ng as `<speaker>-<chapter>-<utt>.wav` with a `*.trans.txt` beside them (one
/// sentence holds "left", which readers must leave out), and a folder of other words
/// without transcripts. Made once per test binary.
pub fn tts_speech() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = root()
            .join("target")
            .join("test-data")
            .join(format!("tts-speech-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let sentences = [
            "the weather was calm and the river ran quietly past the mill",
            "she opened the window and listened to the birds in the garden",
            "turn left at the corner and walk for a while",
            "a long table stood in the middle of the room",
            "they spoke of many things while the evening grew dark",
            "the old clock in the hall struck nine",
        ];
        let voices = ["en-us", "en-gb", "en-us+f3"];
        let mut trans = std::collections::BTreeMap::<String, String>::new();
        for (i, text) in sentences.iter().enumerate() {
            let speaker = 100 + (i % 3);
            let id = format!("{speaker}-7-{i:04}");
            let dir = d.join(format!("ls/{speaker}/7"));
            std::fs::create_dir_all(&dir).unwrap();
            let wav = dir.join(format!("{id}.wav"));
            let st = Command::new("espeak-ng")
                .args([
                    "-v",
                    voices[i % 3],
                    "-s",
                    "160",
                    "-w",
                    wav.to_str().unwrap(),
                    text,
                ])
                .status()
                .expect("espeak-ng (run scripts/setup)");
            assert!(st.success());
            let t = trans.entry(format!("{speaker}")).or_default();
            t.push_str(&format!("{id} {}\n", text.to_uppercase()));
        }
        for (speaker, t) in trans {
            std::fs::write(d.join(format!("ls/{speaker}/7/{speaker}-7.trans.txt")), t).unwrap();
        }
        std::fs::create_dir_all(d.join("words")).unwrap();
        for (i, w) in ["computer", "jarvis", "coffee"].iter().enumerate() {
            let wav = d.join(format!("words/{i}.wav"));
            let st = Command::new("espeak-ng")
                .args(["-v", "en-us", "-w", wav.to_str().unwrap(), w])
                .status()
                .unwrap();
            assert!(st.success());
        }
        d
    })
}

/// Says that the running test skipped, where `cargo test` shows it whether the test
/// passes or not (written to stderr directly, past the test harness's capture); with
/// LISTEN_REQUIRE_SHARED set (`.ci/run`: CI always has ../shared), fails it instead.
pub fn skipped(reason: &str) {
    use std::io::Write;
    let name = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var_os("LISTEN_REQUIRE_SHARED").is_some() {
        panic!("{name}: {reason} (LISTEN_REQUIRE_SHARED is set)");
    }
    let _ = writeln!(std::io::stderr(), "SKIPPED {name}: {reason}");
}
