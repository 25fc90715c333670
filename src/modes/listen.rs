//! `listen` (the microphone) and `listen --input FILE` (a recording, faster than real
//! time; with `--truth`, scored; with `--sweep`, over a range of detector settings).
use crate::live::detect::{Detection, DetectorConfig};
use crate::live::engine::EngineConfig;
use crate::live::exec::{ExecOutput, Executor};
use crate::live::{capture, display, session};
use crate::measure::{score, streams};
use crate::model::{Model, ModelCard};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Detector settings from the command line; unset ones come from the model's card.
#[derive(Clone, Debug, Default)]
pub struct DetectorArgs {
    pub threshold: Option<f32>,
    pub smoothing: Option<usize>,
    pub min_windows: Option<usize>,
    pub hop_ms: u32,
    pub refractory_ms: u64,
    /// Debugging: sleep after each model run / stall once at the first.
    pub inference_delay_ms: u64,
    pub stall_ms: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ListenOptions {
    pub model: Option<PathBuf>,
    /// A recording instead of the microphone.
    pub input: Option<PathBuf>,
    /// The microphone (part of its name).
    pub device: Option<String>,
    pub detector: DetectorArgs,
    pub exec: Option<String>,
    pub json: bool,
    pub quiet: bool,
    /// With `input`: score against this truth CSV.
    pub truth: Option<PathBuf>,
    pub tolerance_ms: u64,
    pub sweep: bool,
    pub plot: Option<PathBuf>,
    /// With `input`: cores to score it on.
    pub threads: usize,
}

impl ListenOptions {
    /// Values that mean nothing, refused before any work.
    pub fn check(&self) -> Result<()> {
        let d = &self.detector;
        if let Some(t) = d.threshold.filter(|t| !(0.0..=1.0).contains(t)) {
            bail!("--threshold {t}: use a value between 0 and 1");
        }
        if d.hop_ms == 0 || d.hop_ms > 1000 {
            bail!("--hop-ms {}: use 1 to 1000", d.hop_ms);
        }
        if d.smoothing == Some(0) || d.min_windows == Some(0) {
            bail!("--smoothing and --min-windows: use 1 or more (1: no smoothing, one window)");
        }
        if self.device.as_deref().is_some_and(|n| n.trim().is_empty()) {
            bail!("--device \"\": give part of a device's name (listen --list-devices lists them)");
        }
        Ok(())
    }
}

/// The engine's settings: each detector setting from the command line, else the
/// model's own (its card), else the built-in default.
pub fn engine_config(args: &DetectorArgs, card: &ModelCard, sweep: bool) -> EngineConfig {
    let own = card.detector.clone().unwrap_or_default();
    EngineConfig {
        hop_ms: args.hop_ms,
        detector: DetectorConfig {
            threshold: args.threshold.unwrap_or(own.threshold),
            smoothing: args.smoothing.unwrap_or(own.smoothing).max(1),
            min_windows: args.min_windows.unwrap_or(own.min_windows).max(1),
            refractory_ms: args.refractory_ms,
        },
        inference_delay_ms: args.inference_delay_ms,
        stall_ms: args.stall_ms,
        record_posteriors: sweep,
    }
}

pub fn run(opts: &ListenOptions) -> Result<i32> {
    opts.check()?;
    let model = Model::open(opts.model.as_deref())?;
    let cfg = engine_config(&opts.detector, &model.card, opts.sweep);
    match (&opts.input, &opts.truth) {
        (Some(file), Some(truth)) => run_scored(opts, model, file, truth, cfg),
        (Some(file), None) => run_input(opts, model, file, cfg),
        (None, _) => run_microphone(opts, model, cfg),
    }
}

/// Prints a detection on stdout (text or a JSON line).
fn print_detection(d: &Detection, json: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = if json {
        writeln!(out, "{}", session::json_line(d))
    } else {
        writeln!(out, "{}", session::text_line(d))
    };
    let _ = out.flush();
}

/// `--input FILE`: every detection with its time in the file (JSON lines when stdout
/// is not a terminal, or with `--json`).
fn run_input(opts: &ListenOptions, model: Model, file: &Path, cfg: EngineConfig) -> Result<i32> {
    let json = opts.json || !std::io::stdout().is_terminal();
    let exec = opts
        .exec
        .clone()
        .map(|c| Executor::new(c, ExecOutput::Stderr));
    let emit = |d: &Detection| {
        print_detection(d, json);
        if let Some(e) = &exec {
            e.run_waiting(d);
        }
    };
    let found = session::run_file(model, file, cfg, opts.threads, emit, || {
        !session::stdout_closed()
    })?;
    finish_exec(exec);
    if !opts.quiet && !session::stdout_closed() {
        eprintln!("{}: {} detection(s)", file.display(), found.detections);
    }
    Ok(0)
}

/// The microphone, with the terminal display, or JSON lines when stdout is not a
/// terminal (or `--json`).
fn run_microphone(opts: &ListenOptions, model: Model, cfg: EngineConfig) -> Result<i32> {
    let json = opts.json || !std::io::stdout().is_terminal();
    // With the terminal display, command output would scribble over it.
    let exec_output = if json {
        ExecOutput::Stderr
    } else {
        ExecOutput::Discard
    };
    let exec = opts.exec.clone().map(|c| Executor::new(c, exec_output));
    // Open the device before touching the terminal, so device errors print plainly.
    let cap = capture::open(opts.device.as_deref(), 2.0)?;
    let redraw = Duration::from_millis(100);
    let model_name = format!("{}{}", model.source, model.card.provenance());
    let interrupted = if json {
        if !opts.quiet {
            eprintln!(
                "listen: listening on '{}' ({} Hz, {} ch, {}) with {model_name}; JSON lines on stdout, Ctrl-C quits",
                cap.id, cap.rate, cap.channels, cap.format
            );
        }
        let stop = super::stop_on_ctrl_c();
        let (mut reported, mut last_warning) = (0, None::<Instant>);
        let emit = |d: &Detection| {
            print_detection(d, true);
            if let Some(e) = &exec {
                e.run(d);
            }
        };
        let r = session::run_live(model, cap, cfg, emit, redraw, |s| {
            // Overruns go to the log (stderr), at most one line every 2 s.
            let over = s.capture.stats.overruns.load(Ordering::Relaxed);
            if over > reported && last_warning.is_none_or(|t| t.elapsed().as_secs() >= 2) {
                reported = over;
                last_warning = Some(Instant::now());
                eprintln!(
                    "listen: warning: overrun: {:.2} s of audio dropped so far (the machine is too slow)",
                    session::dropped_secs(s.capture)
                );
            }
            Ok(!stop.load(Ordering::SeqCst) && !session::stdout_closed())
        });
        finish_exec(exec);
        r?;
        stop.load(Ordering::SeqCst)
    } else {
        // Terminal display; the guard restores the terminal on every way out.
        let guard = display::TerminalGuard::enter()?;
        let exec_stats = exec.as_ref().map(|e| e.stats.clone());
        let emit = |d: &Detection| {
            if let Some(e) = &exec {
                e.run(d);
            }
        };
        let mut quit = display::Quit::No;
        let r = session::run_live(model, cap, cfg, emit, redraw, |s| {
            display::draw(s, &model_name, exec_stats.as_deref())?;
            quit = display::quit_requested()?;
            Ok(quit == display::Quit::No)
        });
        drop(guard);
        finish_exec(exec);
        r?;
        quit == display::Quit::Interrupt
    };
    Ok(if interrupted { super::INTERRUPTED } else { 0 })
}

/// Ends `--exec`: waits a little for the commands in flight and ends the rest (none
/// outlives listen), and says so on stderr when any failed, was skipped or was ended.
fn finish_exec(exec: Option<Executor>) {
    if let Some(e) = exec {
        let stats = e.stats.clone();
        let summary = e.finish();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        if get(&stats.failed) + get(&stats.skipped) + get(&stats.ended) > 0 {
            eprintln!("listen: --exec: {summary}");
        }
    }
}

/// The first mistakes of a scored run, each with its time in the recording (all of
/// them are in the JSON output).
fn print_mistakes(mistakes: &[score::Mistake]) {
    const SHOWN: usize = 20;
    if mistakes.is_empty() {
        return;
    }
    let more = if mistakes.len() > SHOWN {
        format!("; the first {SHOWN}, --json lists all")
    } else {
        String::new()
    };
    println!("mistakes ({} in all{more}):", mistakes.len());
    for m in mistakes.iter().take(SHOWN) {
        println!("  {m}");
    }
}

/// `--input FILE --truth CSV [--sweep]`: the engine over the file, scored.
fn run_scored(
    opts: &ListenOptions,
    model: Model,
    file: &Path,
    truth: &Path,
    cfg: EngineConfig,
) -> Result<i32> {
    let words = streams::read_truth(truth)?;
    let card = model.card.clone();
    let commands = card.commands();
    let detector = cfg.detector.clone();
    // Before the run, by the header's length (a long file takes a while); after it,
    // by the real one (a header may lie).
    let announced = {
        let w = crate::audio::wav::WavStream::open(file)?;
        w.frames_announced() as f64 / w.sample_rate() as f64
    };
    if announced > 0.0 {
        check_truth_fits(&words, truth, file, announced)?;
    }
    let mut detections = Vec::new();
    let run = session::run_file(
        model,
        file,
        cfg,
        opts.threads,
        |d| detections.push(d.clone()),
        || true,
    )?;
    check_truth_fits(&words, truth, file, run.duration_s)?;
    let tol = opts.tolerance_ms;
    let result = score::score(&words, &detections, &commands, tol, run.duration_s);
    if !opts.sweep {
        let mistakes = score::mistakes(&words, &detections, &commands, tol);
        if opts.json {
            let mut v = serde_json::to_value(&result)?;
            v["mistakes"] = serde_json::to_value(&mistakes)?;
            println!("{v}");
        } else {
            print!("{}", result.text());
            print_mistakes(&mistakes);
        }
        return Ok(0);
    }
    let thresholds: Vec<f32> = (0..=34).map(|i| 0.30 + 0.02 * i as f32).collect();
    let shapes = [(1, 1), (3, 1), (3, 2), (5, 2), (5, 3)];
    let points = score::sweep(
        &card.labels,
        &commands,
        &run.posteriors,
        &words,
        &detector,
        &thresholds,
        &shapes,
        tol,
        run.duration_s,
    );
    let plot = opts.plot.clone().unwrap_or_else(|| {
        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
        file.with_file_name(format!("{stem}-det.png"))
    });
    let curves: Vec<crate::learn::plots::DetCurve> = shapes
        .iter()
        .map(|&(sm, mw)| {
            let pts = points
                .iter()
                .filter(|p| p.smoothing == sm && p.min_windows == mw)
                .map(|p| (p.score.false_alarms_per_hour, p.score.miss_rate * 100.0))
                .collect();
            (format!("smoothing {sm}, {mw} window(s) in a row"), pts)
        })
        .collect();
    let chosen = (result.false_alarms_per_hour, result.miss_rate * 100.0);
    crate::learn::plots::det(
        &plot,
        &curves,
        Some(chosen),
        &format!(
            "DET: {} ({:.1} min, {} keywords)",
            file.file_name().unwrap_or_default().to_string_lossy(),
            run.duration_s / 60.0,
            result.keywords
        ),
    )?;
    if opts.json {
        println!(
            "{}",
            serde_json::json!({"settings": detector, "score": result, "sweep": points, "plot": plot.display().to_string()})
        );
    } else {
        println!(
            "At the given settings (threshold {:.2}, smoothing {}, {} window(s)):\n{}\n{}\nDET curve: {}",
            detector.threshold,
            detector.smoothing,
            detector.min_windows,
            result.text(),
            score::sweep_table(&points),
            plot.display()
        );
    }
    Ok(0)
}

/// A truth whose words run past the end of the audio belongs to another recording:
/// scoring it would count every word past the end as missed.
fn check_truth_fits(
    words: &[streams::TruthWord],
    truth: &Path,
    file: &Path,
    duration_s: f64,
) -> Result<()> {
    let last_ms = words.iter().map(|w| w.end_ms).max().unwrap_or(0);
    // A word may end in the flush after the last sample; a second is plenty.
    if last_ms as f64 > duration_s * 1000.0 + 1000.0 {
        bail!(
            "{}: its words run to {:.1} s but {} is {:.1} s long; is it the truth of another recording?",
            truth.display(),
            last_ms as f64 / 1000.0,
            file.display(),
            duration_s
        );
    }
    Ok(())
}
