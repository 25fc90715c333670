//! scripts/synth-clips, the synthetic words users can add to their training folders:
//! its piper-tts voice (installed into .deps/piper on first use, from PyPI) and its
//! refusal of an engine it does not have.
use listen::audio::wav;
use std::process::Command;

mod common;
use common::{root, scratch};

fn synth(args: &[&str]) -> std::process::Output {
    Command::new(root().join("scripts/synth-clips"))
        .args(args)
        .output()
        .expect("scripts/synth-clips")
}

#[test]
fn piper_writes_one_second_clips_per_word_and_variant() {
    let d = scratch("synth-piper");
    let out = d.join("words");
    let o = synth(&[
        out.to_str().unwrap(),
        "go,stop",
        "--speakers",
        "3",
        "--engine",
        "piper",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut levels = Vec::new();
    for w in ["go", "stop"] {
        for k in 0..3 {
            let f = out.join(w).join(format!("synthpiper{k}_nohash_0.wav"));
            let w = wav::WavStream::open(&f).unwrap();
            let shape = (w.sample_rate(), w.channels(), w.frames_announced());
            assert_eq!(shape, (16_000, 1, 16_000), "{}", f.display());
            levels.push(wav::rms(&wav::read_mono_16k(&f, 2.0).unwrap()));
        }
    }
    // Spoken, not silence, and the variants differ.
    assert!(levels.iter().all(|&l| l > 0.01), "{levels:?}");
    assert!(levels.windows(2).any(|p| p[0] != p[1]), "{levels:?}");
    // A second run leaves what is there.
    let f = out.join("go/synthpiper0_nohash_0.wav");
    let before = std::fs::metadata(&f).unwrap().modified().unwrap();
    let o = synth(&[
        out.to_str().unwrap(),
        "go",
        "--speakers",
        "1",
        "--engine",
        "piper",
    ]);
    assert!(o.status.success());
    assert_eq!(std::fs::metadata(&f).unwrap().modified().unwrap(), before);
}

#[test]
fn an_unknown_engine_is_one_line_naming_the_choices() {
    let d = scratch("synth-engine");
    let o = synth(&[d.join("w").to_str().unwrap(), "go", "--engine", "festival"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("festival") && err.contains("espeak, flite or piper"),
        "{err}"
    );
}
