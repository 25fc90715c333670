//! The log-mel front-end against values computed independently with PyTorch
//! (scripts/logmel_reference.py: torch.fft.rfft, torch.hann_window, torchaudio's mel recipe).
use listen::audio::features::{FeatureConfig, FeatureExtractor};

#[test]
fn logmel_matches_the_pytorch_reference() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/logmel_reference.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let want: Vec<f32> = v["logmel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    let pi = std::f64::consts::PI;
    let x: Vec<f32> = (0..16000)
        .map(|i| {
            let t = i as f64 / 16000.0;
            (0.4 * (2.0 * pi * 440.0 * t).sin()
                + 0.3 * (2.0 * pi * (100.0 * t + 2000.0 * t * t)).sin()
                + 0.1 * t * (2.0 * pi * 3000.0 * t).sin()) as f32
        })
        .collect();
    let mut fe = FeatureExtractor::new(&FeatureConfig::log_mel()).unwrap();
    let got = fe.compute(&x);
    assert_eq!(got.len(), want.len());
    assert_eq!(v["frames"].as_u64(), Some(98));
    let mut worst = 0f32;
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // Absolute tolerance on log energy; f32 FFT vs float64 reference.
        let tol = if *w > -8.0 { 2e-3 } else { 5e-2 };
        assert!(
            (g - w).abs() < tol,
            "frame {} bin {}: {g} vs {w}",
            i / 40,
            i % 40
        );
        worst = worst.max((g - w).abs());
    }
    eprintln!("max |difference| = {worst}");
}
