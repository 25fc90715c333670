//! Driving the engine: from a WAV file (`--input`, as fast as the CPU allows) or from the
//! microphone (live), sending detections to a sink: the terminal display, JSON lines on
//! stdout, and `--exec` commands (`exec`).
use crate::audio::wav::WavStream;
use crate::live::capture::Capture;
use crate::live::detect::Detection;
use crate::live::engine::{Engine, EngineConfig};
use crate::model::Model;
use anyhow::Result;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What a run over a file found. The detections themselves go to the caller as they
/// fire (kept here, a 100-hour file would grow memory by every one of them).
pub struct FileRun {
    pub detections: usize,
    /// Per-window posteriors, when `cfg.record_posteriors` was set.
    pub posteriors: Vec<(u64, Vec<f32>)>,
    pub duration_s: f64,
}

/// Runs the engine over a whole recording; `on_detection` sees each detection as it fires.
/// `keep_going` is asked between chunks (about once a second of audio): false
/// stops early, with what was found so far.
pub fn run_file(
    model: Model,
    path: &Path,
    cfg: EngineConfig,
    mut on_detection: impl FnMut(&Detection),
    mut keep_going: impl FnMut() -> bool,
) -> Result<FileRun> {
    let mut wav = WavStream::open(path)?;
    // One window at a time is too small to gain from intra-op threads.
    tch::set_num_threads(1);
    let mut engine = Engine::new(model, wav.sample_rate(), wav.channels(), cfg)?;
    let mut chunk = Vec::new();
    let mut found = 0;
    let mut out = Vec::new();
    let mut frames = 0u64;
    loop {
        if !keep_going() {
            return Ok(FileRun {
                detections: found,
                posteriors: engine.take_posteriors(),
                duration_s: frames as f64 / wav.sample_rate() as f64,
            });
        }
        // ~1 s at a time, so that a frozen front end runs over a dozen windows at once.
        let n = wav.read_chunk(&mut chunk, 16384)?;
        if n == 0 {
            break;
        }
        frames += (n / wav.channels()) as u64;
        out.clear();
        engine.push(&chunk, &mut out)?;
        for d in &out {
            on_detection(d);
        }
        found += out.len();
    }
    // As reading a clip does (--predict, training): a file without a sample is an error,
    // not "0 detections".
    if frames == 0 {
        anyhow::bail!("{}: no audio in file", path.display());
    }
    // Flush: a second of silence lets a word at the very end finish.
    let silence = vec![0.0; wav.sample_rate() as usize * wav.channels()];
    out.clear();
    engine.push(&silence, &mut out)?;
    for d in &out {
        on_detection(d);
    }
    found += out.len();
    Ok(FileRun {
        detections: found,
        posteriors: engine.take_posteriors(),
        duration_s: frames as f64 / wav.sample_rate() as f64,
    })
}

/// Whether the reader of stdout has gone away (the other end of a pipe closed, as after
/// `listen | head -1`): then nobody hears of detections any more, and listening stops.
pub fn stdout_closed() -> bool {
    let mut p = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd and no wait; POLLERR/POLLHUP are reported unasked.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// One JSON object per detection.
pub fn json_line(d: &Detection) -> String {
    serde_json::json!({"label": d.label, "score": (d.score as f64 * 10000.0).round() / 10000.0, "time_ms": d.time_ms}).to_string()
}

pub fn text_line(d: &Detection) -> String {
    let s = d.time_ms / 1000;
    format!(
        "{:>3}:{:02}.{:03}  {:<10} {:.2}",
        s / 60,
        s % 60,
        d.time_ms % 1000,
        d.label,
        d.score
    )
}

/// What the live loop reports to its display after each block.
pub struct LiveStatus<'a> {
    pub engine: &'a Engine,
    pub capture: &'a Capture,
    pub recent: &'a [Detection],
}

/// Reads an open capture until `display` asks to stop. `display` is called at most every
/// `redraw` with the current state and returns false to quit.
pub fn run_live(
    model: Model,
    mut cap: Capture,
    cfg: EngineConfig,
    mut on_detection: impl FnMut(&Detection),
    redraw: Duration,
    mut display: impl FnMut(&LiveStatus) -> Result<bool>,
) -> Result<()> {
    tch::set_num_threads(1);
    let mut engine = Engine::new(model, cap.rate, cap.channels, cfg)?;
    let mut buf = Vec::with_capacity(cap.rate as usize * cap.channels);
    let mut out = Vec::new();
    let mut recent: Vec<Detection> = Vec::new();
    let mut last_draw = Instant::now() - redraw;
    let mut last_audio = Instant::now();
    loop {
        let n = cap.read(&mut buf, cap.rate as usize / 10 * cap.channels);
        if n == 0 {
            cap.check_alive(last_audio)?;
            // Nothing yet: the device delivers every ~40 ms (see capture::open).
            std::thread::sleep(Duration::from_millis(20));
        } else {
            last_audio = Instant::now();
            out.clear();
            engine.push(&buf, &mut out)?;
            for d in out.drain(..) {
                on_detection(&d);
                recent.push(d);
                if recent.len() > 8 {
                    recent.remove(0);
                }
            }
        }
        if last_draw.elapsed() >= redraw {
            last_draw = Instant::now();
            // Before the display reports overruns: a device that runs ahead of real
            // time overruns too, and that is not the machine being slow.
            cap.check_pace()?;
            if !display(&LiveStatus {
                engine: &engine,
                capture: &cap,
                recent: &recent,
            })? {
                return Ok(());
            }
        }
    }
}

/// Seconds of audio lost so far (ring buffer overruns).
pub fn dropped_secs(cap: &Capture) -> f64 {
    cap.stats.overrun_samples.load(Ordering::Relaxed) as f64
        / (cap.rate as f64 * cap.channels as f64)
}
