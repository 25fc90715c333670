//! Live listening benchmark through the real capture path: a stream of words from
//! speakers the model never heard (`listen --make-stream`, test split) is played in real
//! time into the PulseAudio null-sink microphone while `listen --json` listens as a user
//! runs it. Measures, from the wall clock: latency from the end of each word being played
//! to its JSON line arriving, recall and false alarms per hour, CPU (share of one core,
//! from /proc) and resident memory at the start and the end; overruns from its log.
//!
//!   cargo bench --bench live                      # 3 minutes
//!   LISTEN_BENCH_MINUTES=60 cargo bench --bench live   # the one-hour soak
//!
//! Writes target/bench/live.json and prints a summary.
mod common;
use common::bin;
#[path = "../tests/common/procstat.rs"]
mod procstat;
#[path = "../tests/common/vmic.rs"]
mod vmic;
use listen::util::machine;
use procstat::{thread_ticks, usage};

use listen::live::detect::Detection;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() {
    // `cargo bench` passes --bench; other harness flags are ignored.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let minutes: f64 = std::env::var("LISTEN_BENCH_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3.0);
    let Some(wav) = common::test_stream("live-stream", minutes, 3) else {
        return;
    };
    let out = root.join("target/bench");
    let truth = listen::measure::streams::read_truth(&wav.with_extension("csv")).unwrap();
    let model = listen::model::Model::bundled().unwrap();
    let commands = model.card.commands();

    let mic = vmic::VirtualMic::start(48000, 2);
    let mut child = mic
        .listen()
        .arg("--json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, String)>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((Instant::now(), l));
        }
    });
    let (etx, erx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = etx.send(l);
        }
    });
    let first = erx
        .recv_timeout(Duration::from_secs(20))
        .expect("listen did not start");
    assert!(first.contains("listening on"), "{first}");
    std::thread::sleep(Duration::from_secs(1));
    let (ticks0, rss0) = usage(pid);
    let threads0 = thread_ticks(pid);
    let t0 = Instant::now();
    // Memory every minute, to tell a leak (steady growth) from warm-up.
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let on = sampling.clone();
        std::thread::spawn(move || {
            let mut rss = Vec::new();
            let mut next = Instant::now() + Duration::from_secs(60);
            while on.load(std::sync::atomic::Ordering::SeqCst) {
                if Instant::now() >= next {
                    rss.push(usage(pid).1);
                    next += Duration::from_secs(60);
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            rss
        })
    };
    mic.play(&wav);
    std::thread::sleep(Duration::from_millis(1500));
    let (ticks1, rss1) = usage(pid);
    let threads1 = thread_ticks(pid);
    let elapsed = t0.elapsed().as_secs_f64();
    sampling.store(false, std::sync::atomic::Ordering::SeqCst);
    let rss_per_minute = sampler.join().unwrap();
    vmic::signal(pid, "INT");
    let status = child.wait().unwrap();
    let log: Vec<String> = erx.try_iter().collect();
    let overrun_lines = log.iter().filter(|l| l.contains("overrun")).count();

    // Detections with their arrival time on the wall clock, relative to the start of play.
    let dets: Vec<Detection> = rx
        .try_iter()
        .map(|(at, line)| {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            Detection {
                label: v["label"].as_str().unwrap().to_string(),
                score: v["score"].as_f64().unwrap() as f32,
                time_ms: at.duration_since(t0).as_millis() as u64,
            }
        })
        .collect();
    let s = listen::measure::score::score(&truth, &dets, &commands, 1000, elapsed);
    // Latency per detected keyword (first detection of its label within its span + 1 s),
    // against where it ends in the file. Over an hour the sound server's clock and the
    // wall clock drift apart, so the latency is also given for the first 3 minutes, and
    // the drift as the slope of a line fitted through latency against time.
    let lat: Vec<(f64, f64)> = truth
        .iter()
        .filter(|w| commands.contains(&w.label))
        .filter_map(|w| {
            dets.iter()
                .find(|d| {
                    d.label == w.label && d.time_ms >= w.start_ms && d.time_ms <= w.end_ms + 1000
                })
                .map(|d| (w.end_ms as f64, d.time_ms as f64 - w.end_ms as f64))
        })
        .collect();
    let early: Vec<f64> = lat
        .iter()
        .filter(|(t, _)| *t < 180_000.0)
        .map(|p| p.1)
        .collect();
    let early_median = listen::util::median(&early);
    let drift_ppm = {
        let n = lat.len().max(1) as f64;
        let (mx, my) = (
            lat.iter().map(|p| p.0).sum::<f64>() / n,
            lat.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxy: f64 = lat.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = lat.iter().map(|p| (p.0 - mx).powi(2)).sum();
        if sxx > 0.0 {
            sxy / sxx * 1e6
        } else {
            0.0
        }
    };
    let tick = clk_tck();
    let cpu = (ticks1 - ticks0) as f64 / tick / elapsed * 100.0;
    // Per thread (the main thread is the worker that owns the model; cpal's capture
    // thread is where a busy-polling audio backend shows up).
    let by_thread: Vec<(String, f64)> = threads1
        .iter()
        .map(|(tid, name, t1)| {
            let t0 = threads0
                .iter()
                .find(|t| t.0 == *tid)
                .map(|t| t.2)
                .unwrap_or(0);
            let name = if *tid == pid { "worker" } else { name.as_str() };
            (name.to_string(), (t1 - t0) as f64 / tick / elapsed * 100.0)
        })
        .filter(|(_, share)| *share >= 0.05)
        .collect();
    let by_thread_text = by_thread
        .iter()
        .map(|(n, c)| format!("{n} {c:.1}%"))
        .collect::<Vec<_>>()
        .join(", ");
    let report = serde_json::json!({
        "minutes": minutes,
        "exit_code": status.code(),
        "keywords": s.keywords, "correct": s.correct, "wrong": s.wrong, "missed": s.missed,
        "false_alarms": s.false_alarms, "recall": s.recall,
        "false_alarms_per_hour": s.false_alarms_per_hour,
        "median_latency_ms_wall_clock": s.median_latency_ms,
        "median_latency_ms_first_3_min": early_median,
        "clock_drift_ppm": drift_ppm,
        "rss_kb_per_minute": rss_per_minute,
        "cpu_percent_of_one_core": cpu,
        "cpu_percent_by_thread": by_thread.iter().map(|(n, c)| serde_json::json!({"thread": n, "percent": c})).collect::<Vec<_>>(),
        "rss_kb_start": rss0, "rss_kb_end": rss1,
        "overrun_warnings": overrun_lines,
    });
    std::fs::write(
        out.join("live.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&report).unwrap());
    let md = format!(
        "Machine: {}. `LISTEN_BENCH_MINUTES={minutes} cargo bench --bench live`: a {minutes}-minute stream of test-split speakers (seed 3) played in real time into the PulseAudio null-sink microphone (48 kHz stereo f32) while `listen --json` listens.\n\n\
         | median latency (end of word played -> JSON line), first 3 min | over the whole run (clock drift) | recall | false alarms/h | CPU (share of one core) | RSS start -> end | overrun warnings |\n|---|---|---|---|---|---|---|\n\
         | {early_median:.0} ms | {} ms ({drift_ppm:+.0} ppm) | {:.1}% ({}/{}) | {:.1} | {cpu:.1}% ({by_thread_text}) | {:.1} -> {:.1} MB{} | {} |\n",
        machine(),
        s.median_latency_ms.map(|l| format!("{l:.0}")).unwrap_or("-".into()),
        s.recall * 100.0,
        s.correct,
        s.keywords,
        s.false_alarms_per_hour,
        rss0 as f64 / 1024.0,
        rss1 as f64 / 1024.0,
        if rss_per_minute.len() >= 10 {
            let at = |i: usize| rss_per_minute[i] as f64 / 1024.0;
            let k = rss_per_minute.len();
            format!(" (minute 1 {:.1}, minute {} {:.1}, minute {k} {:.1})", at(0), k / 2, at(k / 2 - 1), at(k - 1))
        } else {
            String::new()
        },
        overrun_lines
    );
    let section = if minutes >= 30.0 { "soak" } else { "live" };
    listen::util::replace_section(&root.join("BENCHMARKS.md"), section, &md).unwrap();
    println!(
        "live, {minutes} min through the PulseAudio null-sink microphone: median latency {} ms after a word's end was played; recall {:.1}% ({} of {}), {:.1} false alarms/h; CPU {cpu:.1}% of one core; RSS {} -> {} MB; {} overrun warnings",
        s.median_latency_ms.map(|l| format!("{l:.0}")).unwrap_or("-".into()),
        s.recall * 100.0,
        s.correct,
        s.keywords,
        s.false_alarms_per_hour,
        rss0 / 1024,
        rss1 / 1024,
        overrun_lines
    );
}

/// Clock ticks per second (for /proc CPU times).
fn clk_tck() -> f64 {
    let out = Command::new("getconf").arg("CLK_TCK").output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(100.0)
}
