//! What the benchmarks share: the binary, and a stream of test-split speakers made from
//! the shared Speech Commands clips with `listen --make-stream`.
use std::path::PathBuf;
use std::process::Command;

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_listen"))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The models to measure: `LISTEN_BENCH_MODELS="name=DIR;name=DIR"` (folders relative
/// to the repository), by default the bundled model's folder.
#[allow(dead_code)]
pub fn bench_models() -> Vec<(String, PathBuf)> {
    std::env::var("LISTEN_BENCH_MODELS")
        .unwrap_or_else(|_| "bundled=assets/model".into())
        .split(';')
        .filter(|s| !s.is_empty())
        .map(|s| {
            let (n, d) = s
                .split_once('=')
                .expect("LISTEN_BENCH_MODELS: name=DIR;name=DIR");
            (n.to_string(), root().join(d))
        })
        .collect()
}

/// The shared Speech Commands clips, unpacked once into target/speech-commands. None,
/// with a message, when ../shared is absent.
pub fn speech_commands() -> Option<PathBuf> {
    let root = root();
    let shared = root.join("../shared/speech-commands");
    if !shared.join("unpack").exists() {
        eprintln!("SKIPPED: ../shared/speech-commands is absent; this benchmark needs it");
        return None;
    }
    let data = root.join("target/speech-commands");
    if !data.join("yes").is_dir() {
        assert!(Command::new(shared.join("unpack"))
            .arg(&data)
            .status()
            .unwrap()
            .success());
    }
    Some(data)
}

/// `target/bench/NAME.wav` (+ .csv): `minutes` of test-split speakers from `seed`. None,
/// with a message, when ../shared is absent.
#[allow(dead_code)]
pub fn test_stream(name: &str, minutes: f64, seed: u64) -> Option<PathBuf> {
    let root = root();
    let data = speech_commands()?;
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let wav = out.join(format!("{name}.wav"));
    let st = Command::new(bin())
        .args([
            "--make-stream",
            data.to_str().unwrap(),
            "--out",
            wav.to_str().unwrap(),
        ])
        .args([
            "--minutes",
            &minutes.to_string(),
            "--seed",
            &seed.to_string(),
            "--split",
            "test",
        ])
        .status()
        .unwrap();
    assert!(st.success(), "--make-stream failed");
    Some(wav)
}
