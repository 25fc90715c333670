//! Model folders that are incomplete, from another version, or whose card and weights
//! disagree: `listen` refuses each in one line naming the mismatch, for every command
//! that loads a model (`--predict` here; `--input` and live share `Model::open`).
mod common;
use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A copy of the bundled model folder, its card parsed for editing.
fn model_copy(name: &str) -> (PathBuf, Value) {
    let dir = scratch(&format!("model-folder/{name}"));
    let model = dir.join("model");
    copy_tree(&root().join("assets/model"), &model);
    let card = serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    (model, card)
}

/// A TC-ResNet folder on 40 log-mel bins (fresh weights), for what only such a card has.
fn tcresnet_folder(name: &str) -> (PathBuf, Value) {
    use listen::audio::features::{FeatureConfig, Normalisation};
    use listen::model::{Arch, Model, ModelCard};
    let model = scratch(&format!("model-folder/{name}")).join("model");
    std::fs::create_dir_all(&model).unwrap();
    let labels = ["_silence_", "_unknown_", "left", "right"];
    let card = ModelCard::new(
        Arch::default_tcresnet(),
        labels.iter().map(|l| l.to_string()).collect(),
        FeatureConfig::log_mel(),
        Normalisation {
            mean: vec![0.0; 40],
            std: vec![1.0; 40],
        },
    );
    Model::new(card, tch::Device::Cpu)
        .unwrap()
        .write_into(&model)
        .unwrap();
    let card = serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    (model, card)
}

fn write_card(model: &Path, card: &Value) {
    std::fs::write(
        model.join("model.json"),
        serde_json::to_vec_pretty(card).unwrap(),
    )
    .unwrap();
}

/// A one-second clip to recognise, beside the model copy (each test its own: the
/// tests run in parallel, and a shared scratch folder is remade by each).
fn clip(model: &Path) -> PathBuf {
    let p = model.parent().unwrap().join("clip.wav");
    let x: Vec<f32> = (0..16_000).map(|i| (i as f32 * 0.05).sin() * 0.1).collect();
    listen::audio::wav::write_wav(&p, &x, 16_000).unwrap();
    p
}

fn predict(model: &Path) -> std::process::Output {
    let c = clip(model);
    run(&[
        "--model",
        model.to_str().unwrap(),
        "--predict",
        c.to_str().unwrap(),
    ])
}

#[test]
fn an_intact_copy_loads() {
    // The control for every case below: the untouched copy works.
    let (model, _) = model_copy("intact");
    let o = predict(&model);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn incomplete_folders_are_refused() {
    let (model, _) = model_copy("no-weights");
    std::fs::remove_file(model.join("model.safetensors")).unwrap();
    assert_clean_error(&predict(&model), &["model.safetensors", "incomplete"]);

    let (model, _) = model_copy("no-card");
    std::fs::remove_file(model.join("model.json")).unwrap();
    assert_clean_error(&predict(&model), &["model.json", "model folder"]);

    let (model, _) = model_copy("missing");
    std::fs::remove_dir_all(&model).unwrap();
    assert_clean_error(&predict(&model), &["does not exist"]);

    let (model, _) = model_copy("truncated-weights");
    let w = std::fs::read(model.join("model.safetensors")).unwrap();
    std::fs::write(model.join("model.safetensors"), &w[..w.len() / 2]).unwrap();
    assert_clean_error(&predict(&model), &["not a valid safetensors file"]);

    let (model, _) = model_copy("truncated-card");
    let c = std::fs::read(model.join("model.json")).unwrap();
    std::fs::write(model.join("model.json"), &c[..c.len() / 2]).unwrap();
    assert_clean_error(&predict(&model), &["not valid JSON"]);

    let (model, mut card) = model_copy("card-without-labels");
    card.as_object_mut().unwrap().remove("labels");
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["incomplete or malformed", "labels"]);
}

#[test]
fn other_versions_and_formats_are_refused() {
    let (model, mut card) = model_copy("version");
    card["version"] = json!(99);
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["version 99", "retrain"]);

    let (model, mut card) = model_copy("format");
    card["format"] = json!("some-other-tool");
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["not a listen model card"]);

    let (model, mut card) = model_copy("arch");
    card["arch"]["name"] = json!("transformer");
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["malformed"]);
}

#[test]
fn card_and_weights_that_disagree_are_refused() {
    // One label more than the weights' output layer has.
    let (model, mut card) = model_copy("labels");
    card["labels"].as_array_mut().unwrap().push(json!("lights"));
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["11 labels", "disagree"]);

    // The speech embedding's settings are its own: a card cannot change them.
    let (model, mut card) = model_copy("embedding-bins");
    card["features"]["n_mels"] = json!(64);
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["not the embedding's own"]);

    // Feature settings changed with the normalisation to match: the weights' input
    // layer was trained on 40 mel bins.
    let (model, mut card) = tcresnet_folder("n-mels");
    card["features"]["n_mels"] = json!(64);
    card["normalisation"]["mean"] = json!(vec![0.0; 64]);
    card["normalisation"]["std"] = json!(vec![1.0; 64]);
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["64 bins", "disagree"]);

    // Feature settings changed alone: the normalisation no longer fits.
    let (model, mut card) = tcresnet_folder("n-mels-alone");
    card["features"]["n_mels"] = json!(32);
    write_card(&model, &card);
    assert_clean_error(
        &predict(&model),
        &["normalisation has 40 values", "32 bins"],
    );

    // Impossible feature settings.
    let (model, mut card) = model_copy("hop");
    card["features"]["hop_length"] = json!(0);
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["hop"]);

    // Another architecture's card over these weights.
    let (model, mut card) = model_copy("channels");
    card["arch"]["channels"] = json!([16, 24, 32, 48]);
    write_card(&model, &card);
    assert_clean_error(&predict(&model), &["disagree"]);
}
