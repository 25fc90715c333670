//! The `listen` binary: parses arguments and dispatches to the library. Every error
//! ends as one line on stderr and exit code 2.
use anyhow::{bail, Result};
use clap::Parser;
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
    #[arg(long, value_name = "DIR", help_heading = "Modes", conflicts_with = "train")]
    evaluate: Option<PathBuf>,
    /// Recognise whole clips (the first second of each file).
    #[arg(long, value_name = "FILE", num_args = 1.., help_heading = "Modes", conflicts_with_all = ["train", "evaluate"])]
    predict: Vec<PathBuf>,

    /// Model folder. Listening/evaluating: the model to use (default: the bundled one).
    /// Training: where to write it (default: ./listen-model).
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
    /// Training: compute device, cpu or cuda (default: cuda when available).
    #[arg(long, value_name = "NAME")]
    device: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,

    /// Keywords (comma-separated); other word folders become `_unknown_`. Default: every folder.
    #[arg(long, value_delimiter = ',', help_heading = "Training")]
    words: Option<Vec<String>>,
    #[arg(long, default_value_t = 40, help_heading = "Training")]
    epochs: usize,
    #[arg(long, default_value_t = 64, help_heading = "Training")]
    batch_size: usize,
    #[arg(long, default_value_t = 1, help_heading = "Training")]
    seed: u64,
    /// Network: tcresnet (default, ~66k parameters) or tutorial (the tutorial's 29.5M CNN).
    #[arg(long, default_value = "tcresnet", help_heading = "Training")]
    arch: String,
    /// Peak learning rate (AdamW, warm-up then cosine decay).
    #[arg(long, default_value_t = 3e-3, help_heading = "Training")]
    lr: f64,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long, default_value_t = 10, help_heading = "Training")]
    patience: usize,
    /// Start no new epoch after this many seconds.
    #[arg(long, value_name = "SECS", help_heading = "Training")]
    time_budget: Option<f64>,
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
    let args = Args::parse();
    match run(args) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("listen: error: {e:#}");
            std::process::exit(2);
        }
    }
}

fn threads(args: &Args) -> usize {
    args.threads.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2))
}

fn run(args: Args) -> Result<i32> {
    if let Some(dir) = &args.train {
        return run_train(&args, dir.clone());
    }
    if let Some(dir) = &args.evaluate {
        let model = Model::open(args.model.as_deref())?;
        let pb = if args.quiet || args.json || !std::io::stderr().is_terminal() { indicatif::ProgressBar::hidden() } else { indicatif::ProgressBar::new(0) };
        let ev = evaluate::evaluate_dir(&model, dir, threads(&args), &pb)?;
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
            println!("Model: {}\n\n{}\n{}", model.source, ev.report.text(), ev.report.confusion_text());
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
    bail!("live listening is not available in this build yet; use --train, --evaluate or --predict")
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
    let mut opts = train::TrainOptions::new(dir, args.model.clone().unwrap_or_else(|| PathBuf::from("listen-model")));
    opts.words = args.words.clone();
    opts.epochs = args.epochs;
    opts.batch_size = args.batch_size;
    opts.seed = args.seed;
    opts.device = device;
    opts.arch = listen::model::Arch::by_name(&args.arch)?;
    opts.lr = args.lr;
    opts.patience = args.patience;
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
        println!("{}", serde_json::json!({"model": opts.out.display().to_string(), "interrupted": out.interrupted, "test": out.report.json()}));
    } else {
        println!("\nTest split (speakers never seen in training):\n\n{}\n{}", out.report.text(), out.report.confusion_text());
    }
    Ok(if out.interrupted { 130 } else { 0 })
}
