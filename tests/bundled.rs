//! The bundled model, evaluated on the shared Speech Commands clips of speakers it never
//! trained on (the test split by speaker hash). Skips, saying so, where ../shared is absent.
mod common;
use common::*;

#[test]
fn bundled_model_is_accurate_on_unseen_speakers() {
    if !listen::model::Model::has_bundled() {
        panic!("this build has no bundled model (assets/model is missing)");
    }
    let Some(dir) = speech_commands() else { return };
    let o = run(&[
        "--evaluate",
        dir.to_str().unwrap(),
        "--split",
        "test",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let acc = r["accuracy"].as_f64().unwrap();
    let total = r["total"].as_u64().unwrap();
    eprintln!(
        "bundled model on {total} test-split clips: accuracy {acc:.4}, keywords {:.4}",
        r["keyword_accuracy"]
    );
    assert!(total > 500, "too few test clips: {total}");
    // BENCHMARKS.md records the figure; this guards against a broken model or front-end.
    assert!(acc >= 0.93, "accuracy {acc} on unseen speakers");
    for w in [
        "down",
        "go",
        "left",
        "no",
        "right",
        "stop",
        "up",
        "yes",
        "_unknown_",
    ] {
        assert!(
            r["per_label"][w]["support"].as_u64().unwrap() > 0,
            "{w} has no test clips"
        );
    }
}

#[test]
fn the_bundled_model_works_from_any_directory() {
    let d = scratch("anywhere");
    let clip = d.join("tone.wav");
    let x: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.05).sin() * 0.01).collect();
    listen::audio::wav::write_wav(&clip, &x, 16000).unwrap();
    let o = std::process::Command::new(bin())
        .current_dir(&d)
        .args(["--predict", "tone.wav", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    assert_eq!(v["probabilities"].as_object().unwrap().len(), 10);
}
