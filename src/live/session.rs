//! Driving the engine: from a WAV file (`--input`, as fast as the CPU allows) or from the
//! microphone (live), sending detections to a sink: the terminal display, JSON lines on
//! stdout, and `--exec` commands (`exec`).
use crate::audio::wav::WavStream;
use crate::audio::wav::SAMPLE_RATE;
use crate::live::capture::{Capture, Read};
use crate::live::detect::Detection;
use crate::live::detect::Detector;
use crate::live::engine::{Converter, Engine, EngineConfig};
use crate::live::parallel;
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

/// Runs the engine's stages over a whole recording, the scoring on `threads` cores
/// ([`parallel`]); `on_detection` sees each detection as it fires, in order. `keep_going`
/// is asked between chunks (about once a second of audio): false stops early, with
/// what was found so far. (The live debugging aids, `inference_delay_ms` and
/// `stall_ms`, do not apply to files.)
pub fn run_file(
    model: Model,
    path: &Path,
    cfg: EngineConfig,
    threads: usize,
    mut on_detection: impl FnMut(&Detection),
    mut keep_going: impl FnMut() -> bool,
) -> Result<FileRun> {
    let mut wav = WavStream::open(path)?;
    // Each worker scores its own part: intra-op threads would only contend with them.
    tch::set_num_threads(1);
    let (rate, channels) = (wav.sample_rate(), wav.channels());
    let mut converter = Converter::new(rate, channels)?;
    let delay = converter.delay();
    let mut detector = Detector::new(&model.card.labels, cfg.detector.clone());
    let (mut chunk, mut frames, mut flushed) = (Vec::new(), 0u64, false);
    let mut cut = None;
    let mut run = FileRun {
        detections: 0,
        posteriors: Vec::new(),
        duration_s: 0.0,
    };
    let read = |out: &mut Vec<f32>| -> Result<bool> {
        if flushed || !keep_going() {
            return Ok(false);
        }
        // ~1 s at a time.
        let n = match wav.read_chunk(&mut chunk, 16384) {
            Ok(n) => n,
            Err(e) => {
                // A file cut short (mid-frame, or before its header's length): what
                // came before the cut is heard, then the error is reported.
                chunk.truncate(chunk.len() / channels * channels);
                cut = Some(e);
                chunk.len() / channels
            }
        };
        frames += n as u64;
        if n == 0 && cut.is_none() && frames == 0 {
            // As reading a clip does (--predict, training): a file without a sample is
            // an error, not "0 detections".
            anyhow::bail!("{}: no audio in file", path.display());
        }
        if n == 0 || cut.is_some() {
            // Flush: a second of silence lets a word at the very end finish.
            chunk.resize(chunk.len() + rate as usize * channels, 0.0);
            flushed = true;
        }
        out.extend_from_slice(converter.push(&chunk)?);
        Ok(true)
    };
    let emit = |end: u64, p: Vec<f32>| -> Result<bool> {
        let t = end.saturating_sub(delay) * 1000 / SAMPLE_RATE as u64;
        if let Some(d) = detector.update(&p, t) {
            on_detection(&d);
            run.detections += 1;
        }
        if cfg.record_posteriors {
            run.posteriors.push((t, p));
        }
        Ok(true)
    };
    parallel::score(&model, cfg.hop_ms, threads, read, emit)?;
    if let Some(e) = cut {
        return Err(e);
    }
    run.duration_s = frames as f64 / rate as f64;
    Ok(run)
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
        let n = match cap.read_or_gap(&mut buf, cap.rate as usize / 10 * cap.channels) {
            Read::Samples(n) => n,
            Read::Gap(frames) => {
                engine.skip(frames)?;
                continue;
            }
        };
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
