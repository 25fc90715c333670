//! Quiet while people talk: models side by side where users feel them, on speakers
//! and sources no model trained on.
//!
//!   LISTEN_BENCH_MODELS="name=DIR;name=DIR" cargo bench --bench speech
//!
//! Streams (made once in target/bench by `listen --make-stream`):
//! - talk-heldout: 150 min of running speech, other words, coffee orders and other
//!   languages of the validation and test parts of the shared speech (`--speech`), no
//!   command in it: every detection is a false alarm;
//! - talk-test: 60 min of the same from the test part alone;
//! - mixed: 30 min of running speech with a command said alone about every 15 s;
//! - test-stream: the 10-minute keyword stream (one word every ~3 s);
//! - test-each: every command clip of the test split once (`--each-clip`, 33 min).
//!
//! For each model: default settings on each stream (false alarms per hour with their
//! 95% interval, recall), test-split clip accuracy, the share of held-out `on`/`off`
//! clips heard as a command, and a DET curve joining the sweep of the talk stream (false
//! alarms) to that of the keyword stream (misses), for every model on one plot
//! (assets/benchmarks/det-speech.png). And two points of each model's curve apart from
//! its chosen setting: the highest recall on test-each among the swept settings with at
//! most 2 and 6 false alarms an hour on the talk stream, since a setting chosen on the
//! validation speech's few false alarms lands a little differently for each model.
//! Writes target/bench/speech.json and the section of BENCHMARKS.md between
//! `<!-- speech:begin -->` and `<!-- speech:end -->`.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{bin, root};

fn listen(args: &[&str]) -> Value {
    let o = Command::new(bin()).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "listen {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

fn stream(sc: &Path, speech: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let wav = root().join("target/bench").join(format!("{name}.wav"));
    if !wav.with_extension("csv").exists() {
        let mut args = vec![
            "--make-stream",
            sc.to_str().unwrap(),
            "--out",
            wav.to_str().unwrap(),
        ];
        if !speech.as_os_str().is_empty() {
            args.extend(["--speech", speech.to_str().unwrap()]);
        }
        args.extend(extra);
        listen(&args);
    }
    wav
}

fn main() {
    let root = root();
    let Some(sc) = common::speech_commands() else {
        return;
    };
    if !root.join("../shared/speech/unpack").exists() {
        eprintln!("SKIPPED: ../shared/speech is absent; this benchmark needs it");
        return;
    }
    let negatives = root.join("data/negatives");
    assert!(Command::new(root.join("scripts/negatives"))
        .status()
        .unwrap()
        .success());
    std::fs::create_dir_all(root.join("target/bench")).unwrap();
    let none = PathBuf::new();
    let talk = stream(
        &sc,
        &negatives,
        "talk-heldout",
        &["--minutes", "150", "--seed", "1"],
    );
    let talk_test = stream(
        &sc,
        &negatives,
        "talk-test",
        &["--minutes", "60", "--seed", "3", "--split", "test"],
    );
    let mixed = stream(
        &sc,
        &negatives,
        "mixed",
        &[
            "--minutes",
            "30",
            "--seed",
            "2",
            "--split",
            "test",
            "--command-every",
            "15",
        ],
    );
    let keywords = stream(
        &sc,
        &none,
        "test-stream",
        &["--minutes", "10", "--seed", "1", "--split", "test"],
    );
    // The keyword stream draws clips at random, so a word with few test clips repeats
    // them (6 `go` clips said 19 times); this one says every test clip once.
    let each_clip = stream(
        &sc,
        &none,
        "test-each",
        &["--each-clip", "--seed", "1", "--split", "test"],
    );
    // Held-out on/off: Speech Commands' two words closest to commands ("off" ~ "up").
    let onoff = root.join("target/bench/onoff");
    std::fs::create_dir_all(&onoff).unwrap();
    for w in ["on", "off"] {
        let link = onoff.join(w);
        if !link.exists() {
            std::os::unix::fs::symlink(sc.join(w), &link).unwrap();
        }
    }

    let models = common::bench_models();
    let mut rows = Vec::new();
    let mut curves = Vec::new();
    for (name, dir) in &models {
        let m = dir.to_str().unwrap();
        let scored = |wav: &Path| {
            let truth = wav.with_extension("csv");
            listen(&[
                "--input",
                wav.to_str().unwrap(),
                "--truth",
                truth.to_str().unwrap(),
                "--json",
                "--model",
                m,
            ])
        };
        let swept = |wav: &Path| {
            let truth = wav.with_extension("csv");
            let stream = wav.file_stem().unwrap().to_string_lossy();
            let plot = root
                .join("target/bench")
                .join(format!("{name}-{stream}-det.png"));
            listen(&[
                "--input",
                wav.to_str().unwrap(),
                "--truth",
                truth.to_str().unwrap(),
                "--sweep",
                "--json",
                "--plot",
                plot.to_str().unwrap(),
                "--model",
                m,
            ])
        };
        let clips = listen(&[
            "--evaluate",
            sc.to_str().unwrap(),
            "--split",
            "test",
            "--json",
            "--model",
            m,
        ]);
        let oo = listen(&[
            "--evaluate",
            onoff.to_str().unwrap(),
            "--split",
            "test",
            "--json",
            "--model",
            m,
        ]);
        let card: Value =
            serde_json::from_slice(&std::fs::read(dir.join("model.json")).unwrap()).unwrap();
        // DET: each setting's false alarms on the talk stream against its misses on the
        // keyword stream.
        let (ts, ks) = (swept(&talk), swept(&keywords));
        let pts: Vec<(f64, f64)> = ts["sweep"]
            .as_array()
            .unwrap()
            .iter()
            .zip(ks["sweep"].as_array().unwrap())
            .filter(|(a, b)| {
                a["threshold"] == b["threshold"]
                    && a["smoothing"] == b["smoothing"]
                    && a["min_windows"] == b["min_windows"]
            })
            .filter(|(a, _)| {
                a["smoothing"] == ts["settings"]["smoothing"]
                    && a["min_windows"] == ts["settings"]["min_windows"]
            })
            .map(|(a, b)| {
                (
                    a["score"]["false_alarms_per_hour"].as_f64().unwrap(),
                    b["score"]["miss_rate"].as_f64().unwrap() * 100.0,
                )
            })
            .collect();
        curves.push((name.clone(), pts));
        let matched = at_matched_false_alarms(&ts, &swept(&each_clip));
        rows.push(serde_json::json!({
            "name": name,
            "model": dir.strip_prefix(&root).unwrap_or(dir).display().to_string(),
            "parameters": card["parameters"],
            "card_test_accuracy": card["metrics"]["test"]["accuracy"],
            "clips": clips,
            "onoff_heard_as_command": heard_as_command(&oo),
            "talk_heldout": scored(&talk),
            "talk_test": scored(&talk_test),
            "mixed": scored(&mixed),
            "keywords": scored(&keywords),
            "each_clip": scored(&each_clip),
            "each_clip_at_talk_fa": matched,
            "settings": ts["settings"],
            "train_seconds": card["training"]["train_seconds"],
            "mining_rounds": card["training"]["negatives"]["mining_rounds"],
        }));
    }
    let plot = root.join("assets/benchmarks/det-speech.png");
    listen::learn::plots::det(
        &plot,
        &curves,
        None,
        "DET: misses on the keyword stream vs false alarms on 2.5 h of talk",
    )
    .unwrap();
    let report = serde_json::json!({"machine": listen::util::machine(), "models": rows});
    std::fs::write(
        root.join("target/bench/speech.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let md = markdown(&report);
    println!("{md}");
    listen::util::replace_section(&root.join("BENCHMARKS.md"), "speech", &md).unwrap();
}

/// The acoustic model apart from its chosen setting: the highest recall on the test
/// each-clip stream among the swept settings that keep false alarms on the talk stream
/// at or under 2 and 6 an hour (two points of its DET curve; null where no setting
/// stays under the limit).
fn at_matched_false_alarms(talk: &Value, words: &Value) -> Value {
    let key = |p: &Value| {
        (
            p["threshold"].as_f64().map(|t| (t * 100.0).round() as i64),
            p["smoothing"].as_u64(),
            p["min_windows"].as_u64(),
        )
    };
    let talk_fa: std::collections::HashMap<_, f64> = talk["sweep"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                key(p),
                p["score"]["false_alarms_per_hour"].as_f64().unwrap(),
            )
        })
        .collect();
    let best = |limit: f64| {
        words["sweep"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| talk_fa.get(&key(p)).is_some_and(|&fa| fa <= limit))
            .map(|p| p["score"]["recall"].as_f64().unwrap())
            .reduce(f64::max)
    };
    serde_json::json!({"2": best(2.0), "6": best(6.0)})
}

/// Share of clips whose prediction is a command (neither `_silence_` nor `_unknown_`).
fn heard_as_command(report: &Value) -> f64 {
    let labels: Vec<&str> = report["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let (mut total, mut command) = (0u64, 0u64);
    for row in report["confusion_matrix"].as_array().unwrap() {
        for (j, n) in row.as_array().unwrap().iter().enumerate() {
            let n = n.as_u64().unwrap();
            total += n;
            if !labels[j].starts_with('_') {
                command += n;
            }
        }
    }
    command as f64 / total.max(1) as f64
}

fn fa(s: &Value) -> String {
    format!(
        "{:.1} ({:.1}-{:.1})",
        s["false_alarms_per_hour"].as_f64().unwrap(),
        s["false_alarms_per_hour_95"][0].as_f64().unwrap(),
        s["false_alarms_per_hour_95"][1].as_f64().unwrap()
    )
}

fn recall(s: &Value) -> String {
    format!(
        "{:.1}% ({}/{})",
        s["recall"].as_f64().unwrap() * 100.0,
        s["correct"],
        s["keywords"]
    )
}

/// A recall at matched false alarms, or that no swept setting stays under the limit.
fn at_most(recall: &Value) -> String {
    recall
        .as_f64()
        .map_or("no setting".into(), |r| format!("{:.1}%", r * 100.0))
}

fn markdown(r: &Value) -> String {
    let mut s = format!(
        "Machine: {}. Default detector settings of each model. False alarms per hour with their exact 95% Poisson interval. Training: from each model's card, on the machine it was trained on.\n\n",
        r["machine"].as_str().unwrap()
    );
    s.push_str("| model | parameters | settings (threshold, smoothing, windows) | talk, 2.5 h held-out: FA/h | talk, 1 h test part: FA/h | keyword stream: recall, FA/h | every test clip once (33 min): recall, FA/h | mixed (30 min): recall, FA/h | every test clip once at talk <= 2/h, <= 6/h (any setting) | test-split clips | held-out on/off heard as a command | training |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for m in r["models"].as_array().unwrap() {
        let st = &m["settings"];
        let rounds = m["mining_rounds"]
            .as_array()
            .map(|r| format!(", {} mining rounds", r.len()))
            .unwrap_or_default();
        s.push_str(&format!(
            "| {} (`{}`) | {} | {:.2}, {}, {} | {} | {} | {}, {} | {}, {} | {}, {} | {}, {} | {:.2}% | {:.1}% | {:.0} s{} |\n",
            m["name"].as_str().unwrap(),
            m["model"].as_str().unwrap(),
            m["parameters"],
            st["threshold"].as_f64().unwrap(),
            st["smoothing"],
            st["min_windows"],
            fa(&m["talk_heldout"]),
            fa(&m["talk_test"]),
            recall(&m["keywords"]),
            fa(&m["keywords"]),
            recall(&m["each_clip"]),
            fa(&m["each_clip"]),
            recall(&m["mixed"]),
            fa(&m["mixed"]),
            at_most(&m["each_clip_at_talk_fa"]["2"]),
            at_most(&m["each_clip_at_talk_fa"]["6"]),
            m["card_test_accuracy"].as_f64().unwrap_or(0.0) * 100.0,
            m["onoff_heard_as_command"].as_f64().unwrap() * 100.0,
            m["train_seconds"].as_f64().unwrap_or(0.0),
            rounds
        ));
    }
    s
}
