//! `listen --train`, `--evaluate` and `--predict` end to end on data the tests make
//! (espeak-ng words), and every bad input the training issue lists.
mod common;
use common::*;
use std::process::{Command, Stdio};

fn json_line(s: &str) -> serde_json::Value {
    serde_json::from_str(s.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// `listen ARGS`, which must succeed: its last line of stdout as JSON.
fn listen_json(args: &[&str]) -> serde_json::Value {
    let o = run(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    json_line(&stdout(&o))
}

/// Trains on the espeak-ng words into `out` (seed 3, quiet, JSON) with `extra` options.
fn train_tts(out: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let data = tts_words().to_str().unwrap();
    let mut args = vec!["--train", data, "--model", out.to_str().unwrap()];
    args.extend(extra);
    args.extend(["--seed", "3", "--json", "--quiet"]);
    listen_json(&args)
}

#[test]
fn a_tiny_model_learns_and_its_folder_is_complete() {
    let data = tts_words();
    let out = scratch("tiny-model").join("model");
    let v = train_tts(&out, &["--epochs", "15"]);
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    // 5 labels (4 words + _silence_): chance is 0.2.
    assert!(
        acc >= 0.6,
        "test accuracy {acc} is not clearly above chance: {v}"
    );
    for f in [
        "model.safetensors",
        "model.json",
        "history.csv",
        "history.png",
        "confusion.png",
        "example.png",
        "report.txt",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(
        card["labels"],
        serde_json::json!(["_silence_", "down", "left", "right", "up"])
    );
    assert_eq!(card["normalisation"]["mean"].as_array().unwrap().len(), 40);
    assert_eq!(card["features"]["n_mels"], 40);
    assert!(card["metrics"]["test"]["accuracy"].as_f64().unwrap() == acc);
    let epochs = card["training"]["epochs_run"].as_u64().unwrap() as usize;
    let csv = std::fs::read_to_string(out.join("history.csv")).unwrap();
    assert_eq!(csv.lines().count(), epochs + 1, "{csv}");
    assert!(csv.starts_with("epoch,loss,accuracy,val_loss,val_accuracy"));

    // --predict on a clip: every label's probability, summing to one.
    let clip = data.join("left/tts0_nohash_0.wav");
    let o = run(&[
        "--predict",
        clip.to_str().unwrap(),
        "--model",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p = json_line(&stdout(&o));
    let sum: f64 = p["probabilities"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_f64().unwrap())
        .sum();
    assert!((sum - 1.0).abs() < 1e-3, "{p}");
    assert_eq!(p["probabilities"].as_object().unwrap().len(), 5);
    let o = run(&[
        "--predict",
        clip.to_str().unwrap(),
        "--model",
        out.to_str().unwrap(),
    ]);
    let text = stdout(&o);
    assert!(
        text.contains("tts0_nohash_0.wav") && text.contains('%') && text.contains("_silence_"),
        "{text}"
    );

    // --evaluate on the whole folder, JSON and text.
    let o = run(&[
        "--evaluate",
        data.to_str().unwrap(),
        "--model",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let r = json_line(&stdout(&o));
    assert!(r["accuracy"].as_f64().unwrap() > 0.6, "{r}");
    assert_eq!(r["confusion_matrix"].as_array().unwrap().len(), 5);
    assert_eq!(r["per_label"]["left"]["support"], 40);
    for k in ["precision", "recall", "f1"] {
        assert!(r["per_label"]["up"][k].is_number());
    }
    let o = run(&[
        "--evaluate",
        data.to_str().unwrap(),
        "--model",
        out.to_str().unwrap(),
    ]);
    let t = stdout(&o);
    assert!(
        t.contains("precision") && t.contains("weighted avg") && t.contains("confusion"),
        "{t}"
    );
}

#[test]
fn words_flag_turns_other_folders_into_unknown() {
    let scan = listen::learn::dataset::scan(
        tts_words(),
        Some(&["left".to_string(), "right".to_string()]),
        1,
    )
    .unwrap();
    assert_eq!(scan.labels, ["_silence_", "_unknown_", "left", "right"]);
    let unknown = scan.clips.iter().filter(|c| c.label == 1).count();
    assert_eq!(unknown, 80, "up and down clips become _unknown_");
    let e =
        listen::learn::dataset::scan(tts_words(), Some(&["lights".to_string()]), 1).unwrap_err();
    assert!(format!("{e:#}").contains("no folder for the word 'lights'"));
}

#[test]
fn a_missing_folder_is_a_clean_error() {
    let o = run(&["--train", "/nonexistent/words", "--model", "/tmp/never"]);
    assert_clean_error(&o, &["/nonexistent/words", "no such folder"]);
}

#[test]
fn a_folder_without_clips_is_a_clean_error() {
    let d = scratch("no-clips");
    std::fs::create_dir_all(d.join("left")).unwrap();
    std::fs::write(d.join("left/readme.txt"), "no audio").unwrap();
    let o = run(&[
        "--train",
        d.to_str().unwrap(),
        "--model",
        d.join("m").to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["no WAV clips"]);
}

#[test]
fn a_single_label_is_a_clean_error() {
    let d = scratch("one-label");
    copy_tree(&tts_words().join("left"), &d.join("left"));
    let o = run(&[
        "--train",
        d.to_str().unwrap(),
        "--model",
        d.join("m").to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["only one label"]);
}

#[test]
fn unreadable_files_are_skipped_with_their_names_and_a_count() {
    let d = scratch("bad-files");
    copy_tree(tts_words(), &d.join("data"));
    let data = d.join("data");
    std::fs::write(data.join("left/garbage.wav"), b"definitely not RIFF audio").unwrap();
    std::fs::write(data.join("up/empty.wav"), b"").unwrap();
    let good = std::fs::read(data.join("right/tts1_nohash_0.wav")).unwrap();
    std::fs::write(data.join("right/truncated.wav"), &good[..good.len() / 3]).unwrap();
    listen::audio::wav::write_wav(&data.join("down/silent0.wav"), &[], 16000).unwrap();
    let o = run(&[
        "--train",
        data.to_str().unwrap(),
        "--model",
        d.join("m").to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
    ]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    for name in ["garbage.wav", "empty.wav", "truncated.wav", "silent0.wav"] {
        assert!(
            err.lines()
                .any(|l| l.starts_with("warning: skipped") && l.contains(name)),
            "{name} not named: {err}"
        );
    }
    assert!(err.contains("skipped 4 unusable file(s)"), "{err}");
}

#[test]
fn ctrl_c_keeps_the_best_model_and_sigkill_keeps_the_previous_one() {
    let d = scratch("interrupt");
    let data = tts_words().to_str().unwrap().to_string();
    let model = d.join("m");
    // A previous model, then a run killed with SIGKILL mid-training: the previous
    // model must be intact, byte for byte.
    let o = run(&[
        "--train",
        &data,
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = std::fs::read(model.join("model.safetensors")).unwrap();
    let train_long = |sig: i32| {
        let mut child = Command::new(bin())
            .args([
                "--train",
                &data,
                "--model",
                model.to_str().unwrap(),
                "--epochs",
                "500",
                "--patience",
                "500",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the first finished epoch on stderr, then signal.
        let mut err = child.stderr.take().unwrap();
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        use std::io::Read;
        while !seen.contains("Epoch 2/500 - ") {
            let n = err.read(&mut buf).unwrap();
            assert!(n > 0, "training ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        unsafe { libc::kill(child.id() as i32, sig) };
        let mut rest = String::new();
        let _ = err.read_to_string(&mut rest);
        (child.wait().unwrap(), seen + &rest)
    };
    let (status, _) = train_long(libc::SIGKILL);
    assert!(!status.success());
    assert_eq!(
        std::fs::read(model.join("model.safetensors")).unwrap(),
        before,
        "SIGKILL changed the previous model"
    );
    listen::model::Model::load(&model, tch::Device::Cpu).unwrap();

    // Ctrl-C: the best model so far is saved and marked as interrupted.
    let (status, err) = train_long(libc::SIGINT);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("keeping the best model so far"), "{err}");
    let m = listen::model::Model::load(&model, tch::Device::Cpu).unwrap();
    assert_eq!(m.card.training["interrupted"], true);
    assert!(m.card.training["epochs_run"].as_u64().unwrap() >= 2);
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n != "m")
        .collect();
    assert!(
        leftovers
            .iter()
            .all(|n| n.to_string_lossy().contains(".tmp-")),
        "{leftovers:?}"
    );
}

#[test]
fn killed_at_random_points_the_model_folder_is_always_whole() {
    // SIGKILL, SIGTERM and SIGINT at random moments of short runs: while loading,
    // training, writing plots, or swapping the folder in. After every one the model
    // folder must load, and be either the previous model byte for byte or a
    // complete new one. Temp folders of killed runs are cleaned by the next save.
    let d = scratch("random-kills");
    let data = tts_words().to_str().unwrap().to_string();
    let model = d.join("m");
    let args = [
        "--train",
        &data,
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "3",
        "--quiet",
    ];
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let t0 = std::time::Instant::now();
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let full_run_ms = t0.elapsed().as_millis() as u64;
    let cases: u64 = std::env::var("LISTEN_KILL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let (mut kept_old, mut got_new) = (0, 0);
    for case in 0..cases {
        let before = std::fs::read(model.join("model.safetensors")).unwrap();
        let sig = [libc::SIGKILL, libc::SIGTERM, libc::SIGINT][next(3) as usize];
        // Up to 20% past a typical full run, so some kills land during the save.
        let delay = next(full_run_ms * 12 / 10 + 1);
        let mut child = Command::new(bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay));
        unsafe { libc::kill(child.id() as i32, sig) };
        let status = child.wait().unwrap();
        let m = listen::model::Model::load(&model, tch::Device::Cpu).unwrap_or_else(|e| {
            panic!("case {case}: signal {sig} after {delay} ms left a broken model: {e:#}")
        });
        assert_eq!(m.card.labels.len(), 5, "case {case}");
        let after = std::fs::read(model.join("model.safetensors")).unwrap();
        if after == before {
            kept_old += 1;
        } else {
            got_new += 1;
            // A new folder is only swapped in whole: card and weights agree, and the
            // plots and report written before the swap are there too.
            for f in ["model.json", "history.csv", "report.txt", "history.png"] {
                assert!(model.join(f).exists(), "case {case}: {f} missing");
            }
        }
        eprintln!("case {case}: signal {sig} at {delay} ms -> {status}");
    }
    // The early kills (the delays are seeded, some within the first tenth of a run)
    // land before any save: the old model must have survived those.
    assert!(kept_old > 0, "no kill kept the old model ({got_new} new)");
    // One clean run removes what the killed ones left behind.
    let o = run(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let leftovers: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "m")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Recall of each label in an `--evaluate --json` report.
fn recalls(report: &serde_json::Value, labels: &[&str]) -> Vec<f64> {
    labels
        .iter()
        .map(|l| report["per_label"][*l]["recall"].as_f64().unwrap())
        .collect()
}

#[test]
fn fine_tuning_adds_words_and_keeps_the_old_ones() {
    let d = scratch("fine-tune");
    let data = d.join("data");
    let eval = d.join("eval");
    let synth = |out: &std::path::Path, words: &str, speakers: &str, prefix: &str, seed: &str| {
        let st = Command::new(root().join("scripts/synth-clips"))
            .args([out.to_str().unwrap(), words, "--speakers", speakers])
            .args(["--prefix", prefix, "--noise", "0.02", "--seed", seed])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    };
    // Two new words, and a few clips of half of the bundled model's commands.
    synth(&data, "lights,pause", "20", "tts", "1");
    synth(&data, "left,right,yes,no", "8", "old", "2");
    // Held out: other voices and variants.
    synth(&eval, "lights,pause,left,right,yes,no", "8", "ev", "9");
    let model = d.join("m");
    let o = run(&[
        "--train",
        data.to_str().unwrap(),
        "--from",
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "12",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The commands without clips are named, with what to do.
    let err = stderr(&o);
    assert!(
        err.contains("has no clips of down, go, stop, up") && err.contains("synth-clips"),
        "{err}"
    );
    let m = listen::model::Model::load(&model, tch::Device::Cpu).unwrap();
    let bundled = listen::model::Model::bundled().unwrap();
    assert_eq!(m.card.labels[..10], bundled.card.labels[..]);
    assert_eq!(m.card.labels[10..], ["lights", "pause"]);
    assert_eq!(m.card.fine_tuned_from.as_deref(), Some("bundled model"));
    assert_eq!(
        m.card.training["fine_tuning"]["base_labels_without_clips"],
        serde_json::json!(["down", "go", "stop", "up"])
    );

    let evaluate = |model: Option<&std::path::Path>| {
        let mut args = vec!["--evaluate", eval.to_str().unwrap(), "--json"];
        if let Some(m) = model {
            args.extend(["--model", m.to_str().unwrap()]);
        }
        let o = run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o)).unwrap()
    };
    let old = ["left", "right", "yes", "no"];
    let before = recalls(&evaluate(None), &old);
    let after_report = evaluate(Some(&model));
    let after = recalls(&after_report, &old);
    let new = recalls(&after_report, &["lights", "pause"]);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    eprintln!("old words: bundled {before:?}, fine-tuned {after:?}; new words {new:?}");
    assert!(
        mean(&after) >= mean(&before) - 0.15,
        "old words forgotten: {before:?} -> {after:?}"
    );
    assert!(mean(&new) >= 0.7, "new words not learned: {new:?}");

    // Bad combinations are one-line errors.
    let o = run(&[
        "--train",
        data.to_str().unwrap(),
        "--from",
        d.join("nope").to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["--from", "nope", "no such model folder"]);
    let o = run(&[
        "--train",
        data.to_str().unwrap(),
        "--from",
        "--arch",
        "tutorial",
    ]);
    assert_clean_error(&o, &["--arch tutorial", "--from"]);
}

#[test]
fn an_impossible_learning_rate_is_a_clean_error() {
    let data = tts_words().to_str().unwrap().to_string();
    for lr in ["--lr=0", "--lr=-1e-3", "--lr=2"] {
        let o = run(&["--train", &data, lr, "--model", "/nonexistent/m"]);
        assert_clean_error(&o, &["--lr", "between 0 and 1"]);
    }
}

#[test]
fn negatives_become_unknown_and_mining_rounds_are_recorded() {
    let d = scratch("train-negatives");
    let model = d.join("m");
    let o = run(&[
        "--train",
        tts_words().to_str().unwrap(),
        "--negatives",
        tts_speech().to_str().unwrap(),
        "--arch",
        "tcresnet-wide",
        "--epochs",
        "4",
        "--mining-rounds",
        "1",
        "--lead-ms",
        "300",
        "--model",
        model.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
    // Every folder is a command (no --words), and the speech gives `_unknown_` examples.
    assert_eq!(
        card["labels"],
        serde_json::json!(["_silence_", "_unknown_", "down", "left", "right", "up"])
    );
    let n = &card["training"]["negatives"];
    assert_eq!(n["left_out_holding_a_command"], 1, "{n}");
    let rounds = n["mining_rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 1, "{n}");
    assert_eq!(
        rounds[0]["epoch"], 3,
        "mining at the start of epoch 4 * 1/2 + 1"
    );
    assert!(rounds[0]["windows"].as_u64().unwrap() > 0, "{n}");
    // The lead is part of the model's window, and every mode reads it from the card.
    assert_eq!(card["features"]["lead_samples"], 4800);
    assert_eq!(card["features"]["clip_samples"], 20800);
    let clip = tts_words().join("left");
    let first = std::fs::read_dir(&clip)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let o = run(&[
        "--predict",
        first.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn a_negatives_folder_without_speech_is_one_line_before_training() {
    let d = scratch("train-negatives-empty");
    std::fs::create_dir_all(d.join("speech")).unwrap();
    let o = run(&[
        "--train",
        tts_words().to_str().unwrap(),
        "--negatives",
        d.join("speech").to_str().unwrap(),
        "--model",
        d.join("m").to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["speech", "no usable WAV recordings"]);
    assert!(!d.join("m").exists());
}

#[test]
fn the_readmes_recording_flow_fine_tunes_on_two_speakers_and_a_few_takes() {
    // As `listen --record lights --into mywords --speaker alice` (and bob) leave them:
    // 3 takes each of two words from two people, named <speaker>_nohash_<n>.wav.
    let d = scratch("train-few-takes");
    let made = d.join("made");
    let st = std::process::Command::new(root().join("scripts/synth-clips"))
        .args([
            made.to_str().unwrap(),
            "lights,pause",
            "--speakers",
            "6",
            "--prefix",
            "t",
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let words = d.join("mywords");
    for w in ["lights", "pause"] {
        std::fs::create_dir_all(words.join(w)).unwrap();
        for k in 0..6 {
            let who = if k < 3 { "alice" } else { "bob" };
            std::fs::copy(
                made.join(w).join(format!("t{k}_nohash_0.wav")),
                words.join(w).join(format!("{who}_nohash_{}.wav", k % 3)),
            )
            .unwrap();
        }
    }
    let model = d.join("my-model");
    let o = run(&[
        "--train",
        words.to_str().unwrap(),
        "--from",
        "--model",
        model.to_str().unwrap(),
        "--epochs",
        "3",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("split by file name"), "{err}");
    assert!(err.contains("holds only 1 clip(s)"), "{err}");
    let m = listen::model::Model::load(&model, tch::Device::Cpu).unwrap();
    assert!(
        m.card.labels.iter().any(|l| l == "lights") && m.card.labels.iter().any(|l| l == "pause")
    );
}

/// The embedding head end to end: trained on Google's speech embedding, its folder
/// says so, `--predict` and `--evaluate` read clips through the same front end, and
/// `--input` hears the words in a stream (the streaming engine, embedding every 80 ms).
#[test]
fn an_embedding_head_learns_and_hears_words_in_a_stream() {
    let data = tts_words();
    let out = scratch("embedding-head").join("model");
    let v = train_tts(&out, &["--arch", "embedding-head", "--epochs", "12"]);
    let acc = v["test"]["accuracy"].as_f64().unwrap();
    assert!(acc >= 0.8, "test accuracy {acc}: {v}");
    let card: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.json")).unwrap()).unwrap();
    assert_eq!(card["arch"]["name"], "embedding_head");
    assert_eq!(card["features"]["kind"], "speech_embedding");
    assert_eq!(card["normalisation"]["mean"].as_array().unwrap().len(), 96);
    assert!(card["parameters"].as_i64().unwrap() <= 250_000);

    let (clip, model) = (data.join("left/tts0_nohash_0.wav"), out.to_str().unwrap());
    let p = listen_json(&[
        "--predict",
        clip.to_str().unwrap(),
        "--model",
        model,
        "--json",
    ]);
    assert_eq!(p["probabilities"].as_object().unwrap().len(), 5);
    let r = listen_json(&[
        "--evaluate",
        data.to_str().unwrap(),
        "--model",
        model,
        "--json",
    ]);
    assert!(r["accuracy"].as_f64().unwrap() > 0.8, "{r}");

    let dir = scratch("embedding-head-stream");
    let words = ["left", "up", "right", "down", "left", "right"];
    let (x, truth) = make_stream(&words, 2.0, 0.01, &dir);
    let wav = dir.join("stream.wav");
    listen::audio::wav::write_wav(&wav, &x, 16_000).unwrap();
    let o = run(&[
        "--input",
        wav.to_str().unwrap(),
        "--model",
        out.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let heard: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Each word heard once, with its own label, after it ends and within a second.
    let hits = truth
        .iter()
        .filter(|(w, _, end)| {
            heard.iter().any(|d| {
                let t = d["time_ms"].as_u64().unwrap();
                d["label"] == w.as_str() && t >= *end && t <= end + 1000
            })
        })
        .count();
    assert!(hits >= 5, "heard {hits} of 6: {heard:?}");
    assert!(heard.len() <= 7, "false alarms: {heard:?}");
}

/// The clip variants of a head's training (augmented clips through the frozen front
/// end) are kept on disk, and a run that reads them trains exactly the model a run that
/// computes them does; another seed is other work, under another key.
#[test]
fn kept_clip_variants_train_the_same_model_as_fresh_ones() {
    let cache = scratch("variant-cache");
    let train = |name: &str, seed: &str| -> Vec<u8> {
        let out = scratch(name).join("model");
        let data = tts_words().to_str().unwrap();
        let o = std::process::Command::new(bin())
            .args(["--train", data, "--model", out.to_str().unwrap()])
            .args([
                "--arch",
                "embedding-head-x3",
                "--epochs",
                "3",
                "--seed",
                seed,
            ])
            .arg("--quiet")
            .env("LISTEN_CACHE_DIR", &cache)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::read(out.join("model.safetensors")).unwrap()
    };
    let kept = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("clip-variants-"))
            .collect();
        v.sort();
        v
    };
    let fresh = train("variants-fresh", "3");
    assert_eq!(kept().len(), 1, "{:?}", kept());
    let stamp = std::fs::metadata(cache.join(&kept()[0]))
        .unwrap()
        .modified()
        .unwrap();
    let read = train("variants-read", "3");
    assert!(
        fresh == read,
        "the model trained from kept variants differs"
    );
    let again = std::fs::metadata(cache.join(&kept()[0]))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        stamp, again,
        "nothing new to keep: the file is not rewritten"
    );
    train("variants-other-seed", "4");
    assert_eq!(kept().len(), 2, "{:?}", kept());
}
