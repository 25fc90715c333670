//! A very long recording through `--input`, streamed, never held whole:
//!
//!   LISTEN_LONG_HOURS=100 cargo bench --bench long_input
//!
//! The audio is generated while `listen` reads it, through a named pipe: a 10-second
//! period (room noise and espeak-ng's "left" at 3 s, identical in every period), 8 kHz
//! unsigned 8-bit mono so that 100 hours (2.9 GB) fit in one WAV's 4 GiB. Since every
//! period is the same audio, the engine must report "left" once per period at the
//! same offset: the last detection's time must be the first one's plus a whole number
//! of periods, to the millisecond (times are counted in samples, so no drift). Memory
//! (listen's resident set) is sampled every 10 s and must stay flat. Writes
//! target/bench/long-input.json.
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{bin, root};

const RATE: u32 = 8000;
const PERIOD_S: u64 = 10;

/// One period: noise at about -50 dBFS and the word at 3 s, as unsigned 8-bit samples.
fn period() -> Vec<u8> {
    let dir = root().join("target/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let raw = dir.join("long-left.wav");
    let st = Command::new("espeak-ng")
        .args([
            "-v",
            "en-us",
            "-s",
            "140",
            "-w",
            raw.to_str().unwrap(),
            "left",
        ])
        .status()
        .expect("espeak-ng (run scripts/setup)");
    assert!(st.success());
    let word = listen::audio::wav::read_mono_16k(&raw, 5.0).unwrap();
    let n = (RATE as u64 * PERIOD_S) as usize;
    let mut x = vec![0f32; n];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for v in x.iter_mut() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *v = ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.006;
    }
    // 16 kHz -> 8 kHz by taking every other sample of a 2-tap average (speech has
    // little above 4 kHz; this is a benchmark of streaming, not of resampling).
    let at = 3 * RATE as usize;
    for (i, pair) in word.chunks(2).enumerate() {
        if at + i < n {
            x[at + i] += pair.iter().sum::<f32>() / pair.len() as f32 * 0.8;
        }
    }
    x.iter()
        .map(|v| ((v.clamp(-1.0, 1.0) * 127.0).round() + 128.0) as u8)
        .collect()
}

fn header(data_bytes: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend(b"RIFF");
    h.extend((36 + data_bytes).to_le_bytes());
    h.extend(b"WAVEfmt ");
    h.extend(16u32.to_le_bytes());
    h.extend(1u16.to_le_bytes()); // PCM
    h.extend(1u16.to_le_bytes()); // mono
    h.extend(RATE.to_le_bytes());
    h.extend(RATE.to_le_bytes()); // bytes per second
    h.extend(1u16.to_le_bytes()); // block align
    h.extend(8u16.to_le_bytes()); // bits
    h.extend(b"data");
    h.extend(data_bytes.to_le_bytes());
    h
}

fn rss_kb(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let hours: f64 = std::env::var("LISTEN_LONG_HOURS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100.0);
    let periods = (hours * 3600.0 / PERIOD_S as f64).round() as u64;
    let one = period();
    let data_bytes = u32::try_from(one.len() as u64 * periods).expect("at most 4 GiB of audio");
    let fifo = root().join("target/bench/long-input.wav");
    let _ = std::fs::remove_file(&fifo);
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());

    let t0 = Instant::now();
    let mut child = Command::new(bin())
        .args(["--input", fifo.to_str().unwrap(), "--json", "--quiet"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let writer = std::thread::spawn(move || {
        let mut w = BufWriter::new(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
        w.write_all(&header(data_bytes)).unwrap();
        for _ in 0..periods {
            w.write_all(&one).unwrap();
        }
        w.flush().unwrap();
    });
    let memory = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(f64, u64)>::new()));
    let sampler = {
        let memory = memory.clone();
        std::thread::spawn(move || {
            while let Some(kb) = rss_kb(pid) {
                memory
                    .lock()
                    .unwrap()
                    .push((t0.elapsed().as_secs_f64(), kb));
                std::thread::sleep(Duration::from_secs(10));
            }
        })
    };
    let mut times = Vec::new();
    let mut wrong = 0;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        if v["label"] == "left" {
            times.push(v["time_ms"].as_u64().unwrap());
        } else {
            wrong += 1;
        }
    }
    let status = child.wait().unwrap();
    writer.join().unwrap();
    sampler.join().unwrap();
    let wall = t0.elapsed().as_secs_f64();
    assert!(status.success(), "listen --input failed: {status}");

    let first = *times.first().expect("no detection at all");
    let last = *times.last().unwrap();
    let period_ms = PERIOD_S * 1000;
    let off_period = times
        .iter()
        .enumerate()
        .filter(|(k, &t)| t != first + *k as u64 * period_ms)
        .count();
    let mem = memory.lock().unwrap().clone();
    // Flat: after the first minute (the model and buffers settled), the most the
    // resident set grew.
    let settled: Vec<u64> = mem.iter().filter(|(t, _)| *t > 60.0).map(|m| m.1).collect();
    let growth_kb = match (settled.first(), settled.iter().max()) {
        (Some(a), Some(m)) => m.saturating_sub(*a),
        _ => 0,
    };
    let max_kb = mem.iter().map(|m| m.1).max().unwrap_or(0);
    // The resident set a minute at a time, and what the second half of the run added
    // to the first half's highest (a leak keeps growing; an allocator settles).
    let by_minute: Vec<f64> = mem
        .iter()
        .step_by(6)
        .map(|m| (m.1 as f64 / 1024.0 * 10.0).round() / 10.0)
        .collect();
    let half = mem.len() / 2;
    let first_half_max = mem[..half].iter().map(|m| m.1).max().unwrap_or(0);
    let second_half_max = mem[half..].iter().map(|m| m.1).max().unwrap_or(0);
    let result = serde_json::json!({
        "hours": hours,
        "periods": periods,
        "detections": times.len(),
        "other_detections": wrong,
        "first_ms": first,
        "last_ms": last,
        "last_expected_ms": first + (periods - 1) * period_ms,
        "detections_off_their_period": off_period,
        "wall_seconds": wall,
        "times_real_time": hours * 3600.0 / wall,
        "rss_max_mb": max_kb as f64 / 1024.0,
        "rss_growth_after_first_minute_mb": growth_kb as f64 / 1024.0,
        "rss_samples": mem.len(),
        "rss_mb_by_minute": by_minute,
        "rss_second_half_above_first_half_mb": second_half_max.saturating_sub(first_half_max) as f64 / 1024.0,
    });
    std::fs::write(
        root().join("target/bench/long-input.json"),
        serde_json::to_string_pretty(&result).unwrap(),
    )
    .unwrap();
    println!("{}", serde_json::to_string_pretty(&result).unwrap());
    assert_eq!(times.len() as u64, periods, "one detection per period");
    assert_eq!(
        last,
        first + (periods - 1) * period_ms,
        "the last detection's time"
    );
    assert_eq!(off_period, 0);
}
