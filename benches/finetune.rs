//! Fine-tuning a new word from few clips: 30 clips each of `on` and `off` (words the
//! bundled model does not have) from training-split speakers, plus every other word of
//! the shared data as before, trained (a) by fine-tuning the bundled model
//! (`--from`) and (b) from scratch on the same folder with the bundled model's recipe;
//! (c) fine-tuning on the 30+30 clips alone, without the shared words, shows what a
//! user who brings no negatives gets. Scored on the `on`/`off` clips of validation- and
//! test-split speakers (no model trained on their `on`/`off`; the bundled model met
//! them only as `_unknown_` in its validation loss) and on the 8 old commands' test split.
//!
//!   cargo bench --bench finetune
//!
//! Writes target/bench/finetune.json and the `finetune` section of BENCHMARKS.md.
mod common;
use common::bin;
use listen::learn::dataset::{split_of, Split};
use std::path::{Path, PathBuf};
use std::process::Command;

const NEW: [&str; 2] = ["on", "off"];
const CLIPS: usize = 30;
const OLD: [&str; 8] = ["down", "go", "left", "no", "right", "stop", "up", "yes"];

fn listen(args: &[&str]) -> serde_json::Value {
    let o = Command::new(bin()).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "listen {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let json = out
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or(serde_json::Value::Null);
    json
}

fn link_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        std::fs::hard_link(e.path(), to.join(e.file_name())).unwrap();
    }
}

/// Weighted recall over `labels` from an evaluation report.
fn recall(report: &serde_json::Value, labels: &[&str]) -> (f64, u64) {
    let (mut hit, mut n) = (0.0, 0u64);
    for l in labels {
        let p = &report["per_label"][*l];
        let s = p["support"].as_u64().unwrap_or(0);
        hit += p["recall"].as_f64().unwrap_or(0.0) * s as f64;
        n += s;
    }
    (hit / n.max(1) as f64, n)
}

fn main() {
    let root = common::root();
    let Some(sc) = common::speech_commands() else {
        return;
    };
    let out = root.join("target/bench/finetune");
    let (train, alone, eval) = (out.join("train"), out.join("alone"), out.join("eval"));
    for d in [&train, &alone, &eval] {
        let _ = std::fs::remove_dir_all(d);
    }
    let mut speakers = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(&sc).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_dir() {
            continue;
        }
        if !NEW.contains(&name.as_str()) {
            link_tree(&e.path(), &train.join(&name));
            if name == listen::learn::dataset::NOISE_DIR {
                link_tree(&e.path(), &alone.join(&name));
            }
            continue;
        }
        let mut files: Vec<PathBuf> = listen::learn::dataset::list_wavs(&e.path()).unwrap();
        // A fixed pseudo-random pick, not the first speakers in name order.
        files.sort_by_key(|p| listen::util::stable_hash(p.file_name().unwrap().as_encoded_bytes()));
        let name_of = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        for (dir, pick) in [
            (&train, Split::Train),
            (&alone, Split::Train),
            (&eval, Split::Validation),
            (&eval, Split::Test),
        ] {
            let d = dir.join(&name);
            std::fs::create_dir_all(&d).unwrap();
            let chosen = files.iter().filter(|p| split_of(&name_of(p), 1) == pick);
            let chosen: Vec<&PathBuf> = if pick == Split::Train {
                chosen.take(CLIPS).collect()
            } else {
                chosen.collect()
            };
            for p in chosen {
                if pick == Split::Train {
                    speakers.insert(listen::learn::dataset::speaker_of(&name_of(p)));
                }
                std::fs::hard_link(p, d.join(p.file_name().unwrap())).unwrap();
            }
        }
    }
    let all_words = [OLD.as_slice(), NEW.as_slice()].concat().join(",");
    let runs: [(&str, &Path, Vec<&str>); 3] = [
        (
            "fine-tuned from the bundled model",
            &train,
            vec!["--from", "--words", "on,off", "--epochs", "20"],
        ),
        (
            "from scratch, same folder (the bundled model's recipe)",
            &train,
            vec!["--words", &all_words, "--epochs", "60"],
        ),
        (
            "fine-tuned on the 60 clips alone (no other words)",
            &alone,
            vec!["--from", "--epochs", "20"],
        ),
    ];
    let mut rows = Vec::new();
    let test_split = |model: &str| {
        listen(&[
            "--evaluate",
            sc.to_str().unwrap(),
            "--split",
            "test",
            "--model",
            model,
            "--json",
        ])
    };
    let bundled_old = {
        let r = listen(&[
            "--evaluate",
            sc.to_str().unwrap(),
            "--split",
            "test",
            "--json",
        ]);
        recall(&r, &OLD)
    };
    for (i, (name, data, extra)) in runs.iter().enumerate() {
        let model = out.join(format!("model{i}"));
        let model_s = model.to_str().unwrap().to_string();
        let mut args = vec![
            "--train",
            data.to_str().unwrap(),
            "--model",
            &model_s,
            "--seed",
            "1",
            "-q",
            "--json",
        ];
        args.extend(extra.iter().copied());
        // A model this benchmark already trained is reused (LISTEN_BENCH_FRESH=1 retrains).
        if !model.join("model.json").exists() || std::env::var_os("LISTEN_BENCH_FRESH").is_some() {
            listen(&args);
        }
        let card: serde_json::Value =
            serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();
        let new_eval = listen(&[
            "--evaluate",
            eval.to_str().unwrap(),
            "--model",
            &model_s,
            "--json",
        ]);
        let (new_acc, new_n) = recall(&new_eval, &NEW);
        let (old_acc, old_n) = recall(&test_split(&model_s), &OLD);
        rows.push(serde_json::json!({
            "run": name,
            "command": format!("listen {}", args.join(" ")).replace(&root.display().to_string(), "."),
            "new_words_accuracy": new_acc,
            "new_words_clips": new_n,
            "old_commands_accuracy": old_acc,
            "old_commands_clips": old_n,
            "train_seconds": card["training"]["train_seconds"],
            "seconds_per_epoch": card["training"]["seconds_per_epoch"],
            "train_clips": card["training"]["clips"]["train"],
            "epochs_run": card["training"]["epochs_run"],
        }));
    }
    let report = serde_json::json!({
        "machine": listen::util::machine(),
        "new_words": NEW,
        "clips_per_new_word": CLIPS,
        "training_speakers_of_new_words": speakers.len(),
        "bundled_old_commands_accuracy": bundled_old.0,
        "runs": rows,
    });
    std::fs::write(
        out.join("../finetune.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let mut md = format!(
        "Machine: {}. `cargo bench --bench finetune`: {} clips each of `on` and `off` from {} training-split speakers; scored on every `on`/`off` clip of validation- and test-split speakers ({} clips, never trained on) and on the 8 old commands' test split ({} clips; the bundled model scores {:.1}% on them).\n\n| run | `on`/`off` accuracy, unseen speakers | old commands accuracy | `on`+`off` clips trained on | training loop (2 cores) | epochs | command |\n|---|---|---|---|---|---|---|\n",
        report["machine"].as_str().unwrap_or("?"),
        CLIPS,
        speakers.len(),
        rows[0]["new_words_clips"],
        rows[0]["old_commands_clips"],
        bundled_old.0 * 100.0
    );
    for r in &rows {
        md += &format!(
            "| {} | **{:.1}%** | {:.1}% | {} | {:.0} s | {} | `{}` |\n",
            r["run"].as_str().unwrap(),
            r["new_words_accuracy"].as_f64().unwrap() * 100.0,
            r["old_commands_accuracy"].as_f64().unwrap() * 100.0,
            r["train_clips"]["on"].as_u64().unwrap_or(0)
                + r["train_clips"]["off"].as_u64().unwrap_or(0),
            r["train_seconds"].as_f64().unwrap(),
            r["epochs_run"],
            r["command"].as_str().unwrap()
        );
    }
    println!("{md}");
    listen::util::replace_section(&root.join("BENCHMARKS.md"), "finetune", &md).unwrap();
}
