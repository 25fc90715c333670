//! The speech front end (src/audio/embedding.rs) against the ONNX graphs it was
//! converted from, run by onnxruntime on a few seconds of speech over noise
//! (scripts/frontend_reference.py wrote tests/fixtures/frontend_reference.json).
//! Tolerances: 1e-4 on the mel (its unit is 10 dB, so 0.001 dB; measured 1.8e-5), and
//! 1e-4 of the embedding's largest magnitude on each value (measured 1e-6): f32 FFT against the graph's
//! STFT-as-convolution, and libtorch's convolutions against onnxruntime's.
use listen::audio::embedding::{self, SpeechFrontEnd, DIM, MEL_BINS};
use listen::audio::wav;
use std::path::Path;

fn fixture() -> (Vec<f32>, serde_json::Value) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let audio = wav::read_mono_16k(&root.join("frontend-speech.wav"), 10.0).unwrap();
    let text = std::fs::read_to_string(root.join("frontend_reference.json")).unwrap();
    (audio, serde_json::from_str(&text).unwrap())
}

fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn mel_matches_the_onnx_graph() {
    let (audio, v) = fixture();
    let want = floats(&v["mel"]);
    let mut fe = SpeechFrontEnd::load().expect("built with the speech front end");
    let got = fe.mel.compute(&audio);
    assert_eq!(
        got.len() / MEL_BINS,
        v["mel_frames"].as_u64().unwrap() as usize
    );
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    eprintln!("mel: max |difference| {worst}");
    assert!(worst < 1e-4, "mel differs from the ONNX graph by {worst}");
}

#[test]
fn embeddings_match_the_onnx_graph_whole_and_window_by_window() {
    let (audio, v) = fixture();
    let want = floats(&v["embedding"]);
    let n = v["embeddings"].as_u64().unwrap() as usize;
    let mut fe = SpeechFrontEnd::load().unwrap();
    let got = fe.compute(&audio);
    assert_eq!(got.len(), n * DIM);
    let scale = want.iter().fold(0f32, |m, w| m.max(w.abs()));
    let worst = got
        .iter()
        .zip(&want)
        .map(|(g, w)| (g - w).abs())
        .fold(0f32, f32::max);
    eprintln!("embedding: max |difference| {worst} (largest value {scale})");
    assert!(
        worst < 1e-4 * scale,
        "embedding differs by {worst} (largest {scale})"
    );
    // One window at a time, as a stream computes them, gives the same numbers.
    let mut one = vec![0f32; DIM];
    for i in [0, n / 2, n - 1] {
        let s = i * embedding::HOP_SAMPLES;
        fe.frame_into(&audio[s..s + embedding::WINDOW_SAMPLES], &mut one);
        let d = one
            .iter()
            .zip(&got[i * DIM..(i + 1) * DIM])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(d < 1e-5 * scale, "window {i}: {d}");
    }
}
