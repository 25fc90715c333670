//! Streaming inference (issue 23): the engine computes each frame once as audio
//! arrives, yet every window's posteriors are the ones its whole window gives; a file
//! scored on two cores in parts gives the live engine's detections.
mod common;
use common::*;
use listen::audio::features::FeatureExtractor;
use listen::audio::wav::write_wav;
use listen::live::engine::{Engine, EngineConfig};
use listen::model::Model;

/// Probabilities may differ by float rounding only: the same sums, in other orders
/// where the shapes differ (a hop's frames against a whole window's).
const TOLERANCE: f32 = 1e-4;

fn recording_config() -> EngineConfig {
    EngineConfig {
        record_posteriors: true,
        ..Default::default()
    }
}

/// The model on the window of `x` (16 kHz) that ends at `end`, silence before the start.
fn whole_window(model: &Model, fe: &mut FeatureExtractor, x: &[f32], end: usize) -> Vec<f32> {
    let f = &model.card.features;
    let mut w = vec![0.0; f.clip_samples];
    let from = end.saturating_sub(f.clip_samples);
    let have = &x[from..end.min(x.len())];
    let at = f.clip_samples - (end - from);
    w[at..at + have.len()].copy_from_slice(have);
    let mut feats = fe.compute(&w);
    model.card.normalisation.apply(&mut feats);
    model.probabilities(&feats, 1).remove(0)
}

#[test]
fn streamed_posteriors_in_irregular_pieces_equal_each_whole_windows() {
    let d = scratch("streaming-whole");
    let (x, _) = make_stream(&["left", "yes", "up"], 1.0, 0.01, &d);
    let model = Model::bundled().unwrap();
    let mut fe = FeatureExtractor::new(&model.card.features).unwrap();
    let labels = model.card.labels.clone();
    let mut e = Engine::new(Model::bundled().unwrap(), 16_000, 1, recording_config()).unwrap();
    // A device that delivers odd-sized, irregular buffers, one of them empty.
    let sizes = [1usize, 37, 0, 1601, 160, 5000, 999];
    let (mut at, mut out) = (0, Vec::new());
    for n in sizes.iter().cycle() {
        if at >= x.len() {
            break;
        }
        let n = (*n).min(x.len() - at);
        e.push(&x[at..at + n], &mut out).unwrap();
        at += n;
    }
    let got = e.take_posteriors();
    assert!(
        got.len() as u64 >= x.len() as u64 / 1280 - 1,
        "{} windows",
        got.len()
    );
    let mut worst = 0f32;
    for (t, p) in &got {
        let want = whole_window(&model, &mut fe, &x, *t as usize * 16);
        for (a, b) in p.iter().zip(&want) {
            worst = worst.max((a - b).abs());
        }
    }
    assert!(worst <= TOLERANCE, "largest difference {worst}");
    // Not a vacuous match: the words were heard in the stream.
    let heard: Vec<&str> = out.iter().map(|d| d.label.as_str()).collect();
    assert_eq!(heard, ["left", "yes", "up"], "{labels:?}");
}

#[test]
fn a_file_on_two_cores_gives_the_live_engines_detections_across_its_seams() {
    let d = scratch("streaming-parts");
    // 85 s of words every ~1.5 s: its 30-s parts cut through words, and through the
    // windows around them.
    let words = ["left", "yes", "up", "right", "no", "go"];
    let many: Vec<&str> = words.iter().cycle().take(56).copied().collect();
    let (x, _) = make_stream(&many, 1.1, 0.01, &d);
    assert!(x.len() > 16_000 * 80, "{} s", x.len() / 16_000);
    let wav = d.join("long.wav");
    write_wav(&wav, &x, 16_000).unwrap();
    // The live path: one engine, 100-ms pushes, and a second of silence at the end.
    let model = Model::bundled().unwrap();
    // The model's own detector settings, as `--input` uses them.
    let cfg = EngineConfig {
        detector: model.card.detector.clone().unwrap(),
        ..Default::default()
    };
    let threshold = cfg.detector.threshold;
    let mut e = Engine::new(model, 16_000, 1, cfg).unwrap();
    let mut live = Vec::new();
    for c in x
        .chunks(1600)
        .chain(std::iter::once(&vec![0.0; 16_000][..]))
    {
        e.push(c, &mut live).unwrap();
    }
    assert!(live.len() >= 40, "{} detections", live.len());
    for threads in ["1", "2"] {
        let o = run(&[
            "--input",
            wav.to_str().unwrap(),
            "--json",
            "--quiet",
            "--threads",
            threads,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let file: Vec<serde_json::Value> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(file.len(), live.len(), "{threads} thread(s)");
        // The same words at the same times; where rounding moved a score across the
        // threshold (a window scored within the tolerance of it), one hop apart.
        for (f, l) in file.iter().zip(&live) {
            assert_eq!(f["label"], l.label.as_str(), "{f} against {l:?}");
            let t = f["time_ms"].as_u64().unwrap();
            let score = f["score"].as_f64().unwrap() as f32;
            let at_threshold = (score.min(l.score) - threshold).abs() <= 10.0 * TOLERANCE;
            assert!(
                t == l.time_ms || (t.abs_diff(l.time_ms) <= 80 && at_threshold),
                "{f} against {l:?}"
            );
        }
    }
}
