//! Side-by-side benchmark of trained models (the project's TC-ResNet and the tutorial's
//! CNN, trained by the same trainer on the same split by scripts/bench): parameters, test
//! accuracy on unseen speakers, seconds per epoch, training time, inference time per 1 s
//! window, streaming recall / false alarms per hour / latency on a 10-minute stream of
//! unseen speakers, real-time factor of `--input`, and its peak memory.
//!
//!   LISTEN_BENCH_MODELS="name=DIR;name=DIR" cargo bench --bench compare
//!
//! Without LISTEN_BENCH_MODELS it measures the bundled model (assets/model). Writes
//! target/bench/compare.json and rewrites the comparison section of BENCHMARKS.md.
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

mod common;
use common::bin;

/// Runs a command to completion; returns (stdout, wall seconds, peak RSS in MB).
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its peak memory
fn measured(cmd: &mut Command) -> (String, f64, f64) {
    let t = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut out, &mut s).unwrap();
        s
    });
    let mut status = 0;
    // SAFETY: plain wait4 on our own child, with zeroed out-parameters.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    let secs = t.elapsed().as_secs_f64();
    let stdout = reader.join().unwrap();
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "command failed"
    );
    (stdout, secs, ru.ru_maxrss as f64 / 1024.0)
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("target/bench");
    std::fs::create_dir_all(&out).unwrap();
    let models = common::bench_models();
    let stream = match std::env::var("LISTEN_BENCH_STREAM") {
        Ok(p) => PathBuf::from(p),
        Err(_) => match common::test_stream("test-stream", 10.0, 1) {
            Some(wav) => wav,
            None => return,
        },
    };
    let truth = stream.with_extension("csv");
    tch::set_num_threads(1);
    let mut rows = Vec::new();
    for (name, dir) in &models {
        let model = listen::model::Model::load(dir, tch::Device::Cpu).unwrap();
        let card = &model.card;
        let tr = &card.training;
        let f = &card.features;
        // Inference on one 1 s window (features already computed), one thread.
        let window = vec![0.1f32; f.n_frames() * f.n_bins()];
        for _ in 0..10 {
            model.probabilities(&window, 1);
        }
        let times: Vec<f64> = (0..100)
            .map(|_| {
                let t = Instant::now();
                model.probabilities(&window, 1);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let infer_ms = listen::util::median(&times);
        // The engine over the stream, scored; wall time and peak memory of the process.
        let (json, secs, peak_mb) = measured(
            Command::new(bin())
                .args([
                    "--input",
                    stream.to_str().unwrap(),
                    "--truth",
                    truth.to_str().unwrap(),
                ])
                .args(["--json", "--model", dir.to_str().unwrap()]),
        );
        let s: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        let duration = s["duration_s"].as_f64().unwrap();
        rows.push(serde_json::json!({
            "name": name,
            "model": dir.strip_prefix(&root).unwrap_or(dir).display().to_string(),
            "arch": format!("{:?}", card.arch),
            "parameters": card.parameters,
            "features": format!("{} x {}", f.n_frames(), f.n_bins()),
            "test_accuracy": card.metrics["test"]["accuracy"],
            "seconds_per_epoch": tr["seconds_per_epoch"],
            "train_seconds": tr["train_seconds"],
            "epochs_run": tr["epochs_run"],
            "inference_ms_per_window": infer_ms,
            "stream": s,
            "input_real_time_factor": duration / secs,
            "input_peak_rss_mb": peak_mb,
        }));
    }
    let report = serde_json::json!({"machine": listen::util::machine(), "stream": stream.display().to_string(), "models": rows});
    std::fs::write(
        out.join("compare.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    let md = markdown(&report);
    println!("{md}");
    listen::util::replace_section(&root.join("BENCHMARKS.md"), "compare", &md).unwrap();
}

fn markdown(r: &serde_json::Value) -> String {
    let mut s = format!(
        "Machine: {}. Stream: {} (10 min, test-split speakers never heard in training, one word every ~3 s, ~30% of them not commands, over `_background_noise_` at random levels), default detector settings.\n\n",
        r["machine"].as_str().unwrap(),
        Path::new(r["stream"].as_str().unwrap()).file_name().unwrap().to_string_lossy()
    );
    s.push_str("| | parameters | test accuracy | s/epoch | training | epochs | inference per 1 s window | streaming recall | false alarms/h | median latency | `--input` speed | peak memory |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for m in r["models"].as_array().unwrap() {
        let st = &m["stream"];
        s.push_str(&format!(
            "| {} ({}) | {} | {:.2}% | {:.1} | {:.0} s | {} | {:.2} ms | {:.1}% ({}/{}) | {:.1} | {} ms | {:.0}x real time | {:.0} MB |\n",
            m["name"].as_str().unwrap(),
            m["arch"].as_str().unwrap(),
            m["parameters"],
            m["test_accuracy"].as_f64().unwrap_or(0.0) * 100.0,
            m["seconds_per_epoch"].as_f64().unwrap_or(0.0),
            m["train_seconds"].as_f64().unwrap_or(0.0),
            m["epochs_run"],
            m["inference_ms_per_window"].as_f64().unwrap(),
            st["recall"].as_f64().unwrap() * 100.0,
            st["correct"],
            st["keywords"],
            st["false_alarms_per_hour"].as_f64().unwrap(),
            st["median_latency_ms"].as_f64().map(|v| format!("{v:.0}")).unwrap_or("-".into()),
            m["input_real_time_factor"].as_f64().unwrap(),
            m["input_peak_rss_mb"].as_f64().unwrap(),
        ));
    }
    s
}
