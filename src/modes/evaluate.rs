//! `listen --evaluate DIR` (the classification report on a labelled folder) and
//! `listen --predict FILE...` (every label's probability for each clip).
use crate::learn::dataset::Split;
use crate::measure::evaluate;
use crate::model::Model;
use anyhow::Result;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

pub struct EvaluateOptions {
    pub dir: PathBuf,
    pub model: Option<PathBuf>,
    /// Only the clips of one split (None: all).
    pub split: Option<Split>,
    pub threads: usize,
    pub json: bool,
    pub quiet: bool,
}

pub fn run(opts: &EvaluateOptions) -> Result<i32> {
    let model = Model::open(opts.model.as_deref())?;
    let pb = if opts.quiet || opts.json || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(0)
    };
    let ev = evaluate::evaluate_dir(&model, &opts.dir, opts.split, opts.threads, &pb)?;
    pb.finish_and_clear();
    for s in &ev.skipped {
        eprintln!("warning: skipped {s}");
    }
    if !ev.skipped.is_empty() {
        eprintln!("warning: skipped {} unusable file(s)", ev.skipped.len());
    }
    for f in &ev.ignored_folders {
        eprintln!(
            "warning: folder '{f}' is not a label of the model and it has no _unknown_; ignored"
        );
    }
    if opts.json {
        println!("{}", ev.report.json());
    } else {
        println!(
            "Model: {}\n\n{}\n{}",
            model.source,
            ev.report.text(),
            ev.report.confusion_text()
        );
    }
    Ok(0)
}

/// Each file's prediction; a file that cannot be read is one error line, and the
/// others still run (exit 2 if any failed).
pub fn predict(model: Option<&Path>, files: &[PathBuf], json: bool) -> Result<i32> {
    let model = Model::open(model)?;
    let mut failed = 0;
    for r in evaluate::predict_files(&model, files)? {
        match r {
            Ok(p) if json => println!("{}", p.json()),
            Ok(p) => print!("{}", p.text()),
            Err(e) => {
                eprintln!("listen: error: {e:#}");
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 { 2 } else { 0 })
}
