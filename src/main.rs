//! The `listen` binary: parses arguments and dispatches to the library. Every error
//! ends as one line on stderr and exit code 2.
use anyhow::{bail, Result};
use clap::Parser;
use listen::dataset::Split;
use listen::{evaluate, model::Model, train};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Offline keyword spotting: say a command, see it in the terminal.
#[derive(Parser, Debug)]
#[command(name = "listen", version, about)]
struct Args {
    /// Train a model on DIR (one folder of WAV clips per label; `_background_noise_` feeds
    /// augmentation and `_silence_`).
    #[arg(long, value_name = "DIR", help_heading = "Modes")]
    train: Option<PathBuf>,
    /// Report accuracy, per-label precision/recall/F1 and the confusion matrix on a labelled folder.
    #[arg(
        long,
        value_name = "DIR",
        help_heading = "Modes",
        conflicts_with = "train"
    )]
    evaluate: Option<PathBuf>,
    /// With --evaluate or --make-stream: only the clips of this split (train, validation,
    /// test), by the same speaker hash as training. --make-stream defaults to test.
    #[arg(long, value_name = "SPLIT")]
    split: Option<String>,
    /// Recognise whole clips (the first second of each file).
    #[arg(long, value_name = "FILE", num_args = 1.., help_heading = "Modes", conflicts_with_all = ["train", "evaluate"])]
    predict: Vec<PathBuf>,

    /// Run the listening engine on a recording (any rate and channel count) instead of the
    /// microphone, faster than real time, printing each detection with its time in the file.
    #[arg(long, value_name = "FILE", help_heading = "Modes")]
    input: Option<PathBuf>,
    /// Write a long test stream from a labelled folder: words every ~3 s over its
    /// `_background_noise_`, ~30% of them not commands, as --out WAV plus a truth CSV beside it.
    #[arg(long, value_name = "DIR", help_heading = "Modes", requires = "out")]
    make_stream: Option<PathBuf>,
    /// With --make-stream: running speech instead of words every few seconds: the
    /// recordings of this folder (a tree of WAVs, as --negatives reads it) from speakers
    /// training never heard, end to end over the background noise, as `_speech_` rows of
    /// the truth. Utterances whose transcript holds a command are left out.
    #[arg(long, value_name = "DIR", requires = "make_stream")]
    speech: Option<PathBuf>,
    /// With --speech: a command said alone (from --make-stream DIR's split) about every
    /// SECS seconds between the utterances; 0 for none (a stream of speech only).
    #[arg(long, value_name = "SECS", default_value_t = 0.0, requires = "speech")]
    command_every: f64,
    /// With --make-stream: the WAV to write (the truth goes to the same name with .csv).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// With --make-stream: length in minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    /// With --input: score the detections against this truth CSV (label,start_ms,end_ms):
    /// recall, misses, false alarms per hour, latency.
    #[arg(long, value_name = "CSV", requires = "input")]
    truth: Option<PathBuf>,
    /// With --truth: how long after a word's end its detection may come, in ms.
    #[arg(long, default_value_t = listen::score::DEFAULT_TOLERANCE_MS)]
    tolerance_ms: u64,
    /// With --truth: score a range of thresholds and smoothing settings, print the table
    /// and draw the DET curve (miss rate against false alarms per hour).
    #[arg(long, requires = "truth")]
    sweep: bool,
    /// With --sweep: where to draw the DET curve (default: beside --input, *-det.png).
    #[arg(long, value_name = "PNG")]
    plot: Option<PathBuf>,
    /// Record your own clips of WORD from the microphone (with --into DIR): a countdown,
    /// a level meter, the word cut out and saved centred as DIR/WORD/<speaker>_nohash_<n>.wav.
    #[arg(long, value_name = "WORD", help_heading = "Modes", requires = "into")]
    record: Option<String>,
    /// With --record: the data folder (one subfolder per word, as --train reads).
    #[arg(long, value_name = "DIR")]
    into: Option<PathBuf>,
    /// With --record: how many clips to record.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// With --record: your name in the clips' names (default: your login name); training
    /// keeps each speaker's clips out of the test split of another's.
    #[arg(long, value_name = "NAME")]
    speaker: Option<String>,
    /// List audio input devices with their default rate, channels and sample format.
    #[arg(long, help_heading = "Modes")]
    list_devices: bool,

    /// Smoothed score a command must reach to be reported [default: the model's own
    /// setting, chosen on held-out streams (its card's `detector`), else 0.62].
    #[arg(long, allow_negative_numbers = true, help_heading = "Listening")]
    threshold: Option<f32>,
    /// How often the model looks at the last second, in ms.
    #[arg(long, default_value_t = 50, help_heading = "Listening")]
    hop_ms: u32,
    /// Windows averaged for smoothing [default: the model's own, else 5].
    #[arg(long, help_heading = "Listening")]
    smoothing: Option<usize>,
    /// Consecutive windows above the threshold before a detection [default: the
    /// model's own, else 3].
    #[arg(long, help_heading = "Listening")]
    min_windows: Option<usize>,
    /// No new detection for this long after one, in ms.
    #[arg(long, default_value_t = 1000, help_heading = "Listening")]
    refractory_ms: u64,
    /// Run this shell command on each detection, with LISTEN_LABEL, LISTEN_SCORE and
    /// LISTEN_TIME_MS set; it never delays detection.
    #[arg(long, value_name = "CMD", help_heading = "Listening")]
    exec: Option<String>,
    /// Debugging: sleep this long after each model run (simulates a slow machine).
    #[arg(long, default_value_t = 0, hide = true)]
    inference_delay_ms: u64,
    /// Debugging: stall once for this long at the first model run.
    #[arg(long, default_value_t = 0, hide = true)]
    stall_ms: u64,

    /// Model folder. Listening/evaluating: the model to use (default: the bundled one).
    /// Training: where to write it (default: ./listen-model).
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Listening: input device (case-insensitive part of its name, see --list-devices).
    /// Training: compute device, cpu or cuda (default: cuda when available).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    /// Keywords (comma-separated); other word folders become `_unknown_`. Default: every folder.
    #[arg(long, value_delimiter = ',', help_heading = "Training")]
    words: Option<Vec<String>>,
    /// Passes over the training data at most (early stopping may end sooner).
    #[arg(long, default_value_t = 40, help_heading = "Training")]
    epochs: usize,
    /// Examples per training step.
    #[arg(long, default_value_t = 64, help_heading = "Training")]
    batch_size: usize,
    /// Seed of the weights, the augmentation and the split of files without a speaker;
    /// with --make-stream, of the stream.
    #[arg(long, default_value_t = 1, help_heading = "Training")]
    seed: u64,
    /// Network: tcresnet (97,218 parameters for 10 labels; the default without
    /// --negatives), tcresnet-wide (218,346; the default with --negatives) or tutorial
    /// (the tutorial's 29.5M CNN).
    #[arg(long, help_heading = "Training")]
    arch: Option<String>,
    /// Fine-tune from a model (a folder; no value: the bundled one) instead of starting
    /// afresh: its labels are kept, the folders of DIR add new ones.
    #[arg(long, value_name = "MODEL", num_args = 0..=1, default_missing_value = "bundled", requires = "train", help_heading = "Training")]
    from: Option<String>,
    /// Peak learning rate (AdamW, warm-up then cosine decay). Default 3e-3, 1e-3 with --from.
    #[arg(long, help_heading = "Training")]
    lr: Option<f64>,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long, default_value_t = 10, help_heading = "Training")]
    patience: usize,
    /// Start no new epoch after this many seconds.
    #[arg(long, value_name = "SECS", help_heading = "Training")]
    time_budget: Option<f64>,
    /// Speech that is not a command (a folder tree of WAV recordings of any length:
    /// running speech, other words, other languages): 1-s crops become `_unknown_`,
    /// commands are mixed over it, and windows that fire on it are mined and trained
    /// against. LibriSpeech utterances whose transcript holds a command are left out.
    #[arg(long, value_name = "DIR", help_heading = "Training")]
    negatives: Option<PathBuf>,
    /// Quiet before each clip in the model's window, in ms: the model then sees what
    /// came before a word (speech, or the pause of a command said alone) [default: 400
    /// with --negatives, else 0].
    #[arg(long, help_heading = "Training")]
    lead_ms: Option<u32>,
    /// With --negatives: hard-negative mining rounds.
    #[arg(long, default_value_t = 3, help_heading = "Training")]
    mining_rounds: usize,
    /// Train without augmentation (for comparisons).
    #[arg(long, help_heading = "Training")]
    no_augment: bool,
    /// Worker threads (default: every core).
    #[arg(long, help_heading = "Training")]
    threads: Option<usize>,
    /// No progress bars or epoch lines.
    #[arg(long, short)]
    quiet: bool,
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("listen: internal error: {info}");
    }));
    let args = match Args::try_parse() {
        Ok(a) => a,
        Err(e) => exit_on_argument_error(e),
    };
    match run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("listen: error: {e:#}");
            std::process::exit(2);
        }
    }
}

/// `--help` and `--version` print as clap prints them; any other argument error is one
/// `listen: error:` line with exit code 2, as every other error.
fn exit_on_argument_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    eprintln!("listen: error: {first} (listen --help lists the options)");
    std::process::exit(2);
}

fn threads(args: &Args) -> usize {
    args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    })
}

fn run(args: Args) -> Result<i32> {
    if let Some(dir) = &args.train {
        return run_train(&args, dir.clone());
    }
    if let Some(dir) = &args.evaluate {
        let model = Model::open(args.model.as_deref())?;
        let pb = if args.quiet || args.json || !std::io::stderr().is_terminal() {
            indicatif::ProgressBar::hidden()
        } else {
            indicatif::ProgressBar::new(0)
        };
        let only = parse_split(args.split.as_deref().unwrap_or("all"))?;
        let ev = evaluate::evaluate_dir(&model, dir, only, threads(&args), &pb)?;
        pb.finish_and_clear();
        for s in &ev.skipped {
            eprintln!("warning: skipped {s}");
        }
        if !ev.skipped.is_empty() {
            eprintln!("warning: skipped {} unusable file(s)", ev.skipped.len());
        }
        for f in &ev.ignored_folders {
            eprintln!("warning: folder '{f}' is not a label of the model and it has no _unknown_; ignored");
        }
        if args.json {
            println!("{}", ev.report.json());
        } else {
            println!(
                "Model: {}\n\n{}\n{}",
                model.source,
                ev.report.text(),
                ev.report.confusion_text()
            );
        }
        return Ok(0);
    }
    if !args.predict.is_empty() {
        let model = Model::open(args.model.as_deref())?;
        let mut failed = 0;
        for r in evaluate::predict_files(&model, &args.predict)? {
            match r {
                Ok(p) if args.json => println!("{}", p.json()),
                Ok(p) => print!("{}", p.text()),
                Err(e) => {
                    eprintln!("listen: error: {e:#}");
                    failed += 1;
                }
            }
        }
        return Ok(if failed > 0 { 2 } else { 0 });
    }
    if let Some(dir) = &args.make_stream {
        let model = Model::open(args.model.as_deref())?;
        let keywords = model.card.commands();
        let out = args.out.clone().expect("clap requires --out");
        let opts = listen::streams::StreamOptions {
            dir: dir.clone(),
            out,
            minutes: args.minutes,
            seed: args.seed,
            split: parse_split(args.split.as_deref().unwrap_or("test"))?,
            keywords,
            unknown_share: 0.3,
            spacing: 3.0,
            speech: args.speech.clone(),
            // Speech from speakers training never heard: its validation and test parts
            // (training looks at the validation part only to stop early).
            speech_splits: match args.split.as_deref() {
                None => vec![Split::Validation, Split::Test],
                Some(s) => match parse_split(s)? {
                    Some(one) => vec![one],
                    None => Split::ALL.to_vec(),
                },
            },
            command_every: args.command_every,
        };
        if !(opts.command_every == 0.0 || (5.0..=3600.0).contains(&opts.command_every)) {
            bail!(
                "--command-every {}: use 0 (none) or 5 to 3600 seconds",
                opts.command_every
            );
        }
        let s = listen::streams::make_stream(&opts)?;
        for e in s.skipped.iter().take(10) {
            eprintln!("warning: skipped {e}");
        }
        if !s.skipped.is_empty() {
            eprintln!(
                "warning: skipped {} unreadable recording(s) of speech",
                s.skipped.len()
            );
        }
        if opts.speech.is_some() {
            eprintln!(
                "wrote {} ({:.1} min: {:.1} min of speech in {} utterances ({} distinct) from {} speakers or sources, {} commands) and {}",
                s.wav.display(),
                s.duration_s / 60.0,
                s.speech_s / 60.0,
                s.utterances,
                s.distinct_utterances,
                s.speakers,
                s.keywords,
                s.csv.display()
            );
            return Ok(0);
        }
        eprintln!(
            "wrote {} ({:.1} min: {} keywords, {} other words, {} speakers) and {}",
            s.wav.display(),
            s.duration_s / 60.0,
            s.keywords,
            s.others,
            s.speakers,
            s.csv.display()
        );
        return Ok(0);
    }
    if let Some(word) = &args.record {
        return run_record(&args, word);
    }
    if args.list_devices {
        let devices = listen::capture::list_devices()?;
        if devices.is_empty() {
            bail!("no audio input devices found (is a microphone connected? --input FILE.wav runs on a recording)");
        }
        for d in devices {
            if args.json {
                println!("{}", serde_json::to_string(&d)?);
            } else {
                println!(
                    "{}{:<12} {} ({} Hz, {} ch, {})",
                    if d.is_default { "* " } else { "  " },
                    d.id,
                    d.name,
                    d.default_rate,
                    d.channels,
                    d.format
                );
            }
        }
        return Ok(0);
    }
    run_listen(&args)
}

/// The engine's settings: each detector setting from the command line, else the
/// model's own (its card), else the built-in default.
fn engine_config(
    args: &Args,
    card: &listen::model::ModelCard,
) -> Result<listen::engine::EngineConfig> {
    let own = card.detector.clone().unwrap_or_default();
    let threshold = args.threshold.unwrap_or(own.threshold);
    if !(0.0..=1.0).contains(&threshold) {
        bail!("--threshold {threshold}: use a value between 0 and 1");
    }
    if args.hop_ms == 0 || args.hop_ms > 1000 {
        bail!("--hop-ms {}: use 1 to 1000", args.hop_ms);
    }
    if args.smoothing == Some(0) || args.min_windows == Some(0) {
        bail!("--smoothing and --min-windows: use 1 or more (1: no smoothing, one window)");
    }
    Ok(listen::engine::EngineConfig {
        hop_ms: args.hop_ms,
        detector: listen::detect::DetectorConfig {
            threshold,
            smoothing: args.smoothing.unwrap_or(own.smoothing).max(1),
            min_windows: args.min_windows.unwrap_or(own.min_windows).max(1),
            refractory_ms: args.refractory_ms,
        },
        inference_delay_ms: args.inference_delay_ms,
        stall_ms: args.stall_ms,
        record_posteriors: args.sweep,
    })
}

fn run_listen(args: &Args) -> Result<i32> {
    let model = Model::open(args.model.as_deref())?;
    let cfg = engine_config(args, &model.card)?;
    let json = args.json || !std::io::stdout().is_terminal();
    // With the terminal display, command output would scribble over it.
    let live_display = args.input.is_none() && !json;
    let exec_output = if live_display {
        listen::exec::ExecOutput::Discard
    } else {
        listen::exec::ExecOutput::Stderr
    };
    let exec = args
        .exec
        .clone()
        .map(|c| listen::exec::Executor::new(c, exec_output));
    let mut emit = |d: &listen::detect::Detection| {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = if json {
            writeln!(out, "{}", listen::listen::json_line(d))
        } else {
            writeln!(out, "{}", listen::listen::text_line(d))
        };
        let _ = out.flush();
        match &exec {
            Some(e) if args.input.is_some() => e.run_waiting(d),
            Some(e) => e.run(d),
            None => {}
        }
    };
    if let Some(file) = &args.input {
        if let Some(truth) = &args.truth {
            return run_scored(args, model, file, truth, cfg);
        }
        let found = listen::listen::run_file(model, file, cfg, &mut emit, || {
            !listen::listen::stdout_closed()
        })?;
        finish_exec(exec);
        if !args.quiet && !listen::listen::stdout_closed() {
            eprintln!(
                "{}: {} detection(s)",
                file.display(),
                found.detections.len()
            );
        }
        return Ok(0);
    }
    // Open the device before touching the terminal, so device errors print plainly.
    let cap = listen::capture::open(args.device.as_deref(), 2.0)?;
    let redraw = std::time::Duration::from_millis(100);
    if json {
        if !args.quiet {
            eprintln!(
                "listen: listening on '{}' ({} Hz, {} ch, {}); JSON lines on stdout, Ctrl-C quits",
                cap.id, cap.rate, cap.channels, cap.format
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let _ = ctrlc::set_handler(move || s.store(true, Ordering::SeqCst));
        let (mut reported, mut last_warning) = (0, None::<std::time::Instant>);
        let r = listen::listen::run_live(model, cap, cfg, emit, redraw, |s| {
            // Overruns go to the log (stderr), at most one line every 2 s.
            let over = s.capture.stats.overruns.load(Ordering::Relaxed);
            if over > reported && last_warning.is_none_or(|t| t.elapsed().as_secs() >= 2) {
                reported = over;
                last_warning = Some(std::time::Instant::now());
                eprintln!(
                    "listen: warning: overrun: {:.2} s of audio dropped so far (the machine is too slow)",
                    listen::listen::dropped_secs(s.capture)
                );
            }
            Ok(!stop.load(Ordering::SeqCst) && !listen::listen::stdout_closed())
        });
        finish_exec(exec);
        return r.map(|_| 0);
    }
    // Terminal display; the guard restores the terminal on every way out.
    let guard = listen::ui::TerminalGuard::enter()?;
    let exec_stats = exec.as_ref().map(|e| e.stats.clone());
    let mut recent_emit = |d: &listen::detect::Detection| {
        if let Some(e) = &exec {
            e.run(d);
        }
    };
    let r = listen::listen::run_live(model, cap, cfg, &mut recent_emit, redraw, |s| {
        listen::ui::draw(s, exec_stats.as_deref())?;
        Ok(!listen::ui::quit_requested()?)
    });
    drop(guard);
    finish_exec(exec);
    r.map(|_| 0)
}

/// Ends `--exec`: waits a little for the commands in flight and ends the rest (none
/// outlives listen), and says so on stderr when any failed, was skipped or was ended.
fn finish_exec(exec: Option<listen::exec::Executor>) {
    if let Some(e) = exec {
        let stats = e.stats.clone();
        let summary = e.finish();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        if get(&stats.failed) + get(&stats.skipped) + get(&stats.ended) > 0 {
            eprintln!("listen: --exec: {summary}");
        }
    }
}

fn run_record(args: &Args, word: &str) -> Result<i32> {
    use listen::record;
    let opts = record::RecordOptions {
        word: word.to_string(),
        into: args.into.clone().expect("clap requires --into"),
        count: args.count,
        speaker: args.speaker.clone().unwrap_or_else(record::default_speaker),
        room_secs: 3.0,
        take_secs: 2.5,
        beat: std::time::Duration::from_millis(600),
        meter: std::io::stderr().is_terminal(),
    };
    // Names first: a bad word should not wait for the device.
    opts.check()?;
    let cap = listen::capture::open(args.device.as_deref(), 5.0)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let done = record::record(&opts, cap, &stop)?;
    eprintln!(
        "{}saved {} clip(s) of '{}' in {} ({} take(s) refused){}",
        if done.interrupted {
            "\nStopped: "
        } else {
            "Done: "
        },
        done.saved.len(),
        opts.word,
        opts.into.join(&opts.word).display(),
        done.refused,
        if done.saved.is_empty() {
            String::new()
        } else {
            format!(
                ". Next: listen --train {} --from (fine-tunes the bundled model with your words)",
                opts.into.display()
            )
        }
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "word": opts.word,
                "saved": done.saved.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "room": done.room.map(|p| p.display().to_string()),
                "refused": done.refused,
                "interrupted": done.interrupted,
            })
        );
    }
    Ok(if done.interrupted { 130 } else { 0 })
}

fn parse_split(name: &str) -> Result<Option<Split>> {
    Ok(match name {
        "all" => None,
        "train" => Some(Split::Train),
        "validation" => Some(Split::Validation),
        "test" => Some(Split::Test),
        other => bail!("--split {other}: use train, validation, test or all"),
    })
}

/// `--input FILE --truth CSV [--sweep]`: the engine over the file, scored.
fn run_scored(
    args: &Args,
    model: Model,
    file: &std::path::Path,
    truth: &std::path::Path,
    cfg: listen::engine::EngineConfig,
) -> Result<i32> {
    use listen::score;
    let words = listen::streams::read_truth(truth)?;
    let card = model.card.clone();
    let commands = card.commands();
    let detector = cfg.detector.clone();
    let run = listen::listen::run_file(model, file, cfg, |_| {}, || true)?;
    let tol = args.tolerance_ms;
    let result = score::score(&words, &run.detections, &commands, tol, run.duration_s);
    if !args.sweep {
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            print!("{}", result.text());
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
    let plot = args.plot.clone().unwrap_or_else(|| {
        let stem = file.file_stem().unwrap_or_default().to_string_lossy();
        file.with_file_name(format!("{stem}-det.png"))
    });
    let curves: Vec<listen::plots::DetCurve> = shapes
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
    listen::plots::det(
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
    if args.json {
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

fn run_train(args: &Args, dir: PathBuf) -> Result<i32> {
    let device = match args.device.as_deref() {
        None => tch::Device::cuda_if_available(),
        Some("cpu") => tch::Device::Cpu,
        Some("cuda") => {
            if !tch::Cuda::is_available() {
                bail!("--device cuda: libtorch sees no CUDA GPU on this machine; use --device cpu");
            }
            tch::Device::Cuda(0)
        }
        Some(other) => bail!("--device {other}: training runs on cpu or cuda"),
    };
    let mut opts = train::TrainOptions::new(
        dir,
        args.model
            .clone()
            .unwrap_or_else(|| PathBuf::from("listen-model")),
    );
    opts.words = args.words.clone();
    opts.epochs = args.epochs;
    opts.batch_size = args.batch_size;
    opts.seed = args.seed;
    opts.device = device;
    if let (Some(a), Some(_)) = (&args.arch, &args.from) {
        bail!("--arch {a}: a fine-tuned model keeps the architecture of --from; leave out --arch");
    }
    // With negatives, the bundled model's network; without, the small one as before.
    let arch = match (&args.arch, &args.negatives) {
        (Some(a), _) => a.as_str(),
        (None, Some(_)) => "tcresnet-wide",
        (None, None) => "tcresnet",
    };
    opts.arch = listen::model::Arch::by_name(arch)?;
    opts.from = args.from.clone();
    opts.lr = args
        .lr
        .unwrap_or(if args.from.is_some() { 1e-3 } else { 3e-3 });
    if !(opts.lr > 0.0 && opts.lr < 1.0) {
        bail!("--lr {}: use a value between 0 and 1, e.g. 3e-3", opts.lr);
    }
    opts.patience = args.patience;
    opts.negatives = args.negatives.clone();
    opts.mining_rounds = args.mining_rounds;
    // With negatives, the bundled model's recipe (BENCHMARKS.md); without, as before.
    opts.lead_ms = args
        .lead_ms
        .unwrap_or(if args.negatives.is_some() { 400 } else { 0 });
    if opts.lead_ms > 2000 {
        bail!("--lead-ms {}: use 0 to 2000", opts.lead_ms);
    }
    if args.from.is_some() && args.lead_ms.is_some() {
        bail!("--lead-ms: a fine-tuned model keeps the window of --from; leave out --lead-ms");
    }
    opts.time_budget = args.time_budget;
    opts.threads = threads(args);
    opts.quiet = args.quiet;
    if args.no_augment {
        opts.augment = listen::augment::AugmentConfig::none();
    }
    // Ctrl-C / SIGTERM: finish the current batch, keep the best model so far.
    // A second Ctrl-C quits at once (the previous model folder is untouched).
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nlisten: stopped; the previous model is untouched");
                std::process::exit(130);
            }
            eprintln!("\nlisten: stopping after this batch and saving the best model so far (Ctrl-C again to quit now)");
        });
    }
    let out = train::train(&opts, &stop)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({"model": opts.out.display().to_string(), "interrupted": out.interrupted, "test": out.report.json()})
        );
    } else {
        println!(
            "\nTest split (speakers never seen in training):\n\n{}\n{}",
            out.report.text(),
            out.report.confusion_text()
        );
    }
    Ok(if out.interrupted { 130 } else { 0 })
}
