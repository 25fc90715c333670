//! Whole-clip recognition: `listen --evaluate DIR` (the classification report for any
//! labelled folder) and `listen --predict FILE...` (top label and every label's
//! probability), through the same features and model as training and listening.
use crate::audio::features::FeatureExtractor;
use crate::audio::wav;
use crate::learn::dataset::{self, Split, NOISE_DIR};
use crate::learn::report::Report;
use crate::model::{Model, SILENCE, UNKNOWN};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// Probabilities for decoded 1-s clips.
pub fn classify(model: &Model, clips: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
    let mut fe = FeatureExtractor::new(&model.card.features)?;
    let mut out = Vec::with_capacity(clips.len());
    for chunk in clips.chunks(256) {
        let mut xs = Vec::new();
        for c in chunk {
            let mut f = fe.compute(c);
            model.card.normalisation.apply(&mut f);
            xs.extend(f);
        }
        out.extend(model.probabilities(&xs, chunk.len()));
    }
    Ok(out)
}

fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
        .unwrap_or(0)
}

pub struct Evaluation {
    pub report: Report,
    pub skipped: Vec<String>,
    pub ignored_folders: Vec<String>,
}

/// Evaluates `model` on every clip of a folder-per-label tree. Folders that are not
/// labels of the model count as `_unknown_` when the model has it.
/// `only`: keep the clips that fall in this split (speaker hash, as training splits;
/// other names with seed 1, training's default).
pub fn evaluate_dir(
    model: &Model,
    dir: &Path,
    only: Option<Split>,
    threads: usize,
    progress: &indicatif::ProgressBar,
) -> Result<Evaluation> {
    let labels = &model.card.labels;
    let find = |l: &str| labels.iter().position(|x| x == l);
    let mut items: Vec<(PathBuf, usize)> = Vec::new();
    let mut ignored = Vec::new();
    for (name, path) in dataset::label_folders(dir)? {
        if name == NOISE_DIR {
            continue;
        }
        let label = match (find(&name), name == SILENCE) {
            (Some(i), _) => Some(i),
            (None, true) => None,
            (None, false) => find(UNKNOWN),
        };
        let Some(label) = label else {
            ignored.push(name);
            continue;
        };
        let mut files = dataset::list_wavs(&path)?;
        if let Some(split) = only {
            let names: Vec<&str> = files.iter().map(|p| dataset::file_name(p)).collect();
            let splits = dataset::folder_splits(&names, 1);
            files = files
                .iter()
                .zip(splits)
                .filter(|(p, s)| *s == split && !dataset::is_synthetic(dataset::file_name(p)))
                .map(|(p, _)| p.clone())
                .collect();
        }
        items.extend(files.into_iter().map(|f| (f, label)));
    }
    if items.is_empty() {
        bail!(
            "{}: no WAV clips in folders the model can score (model labels: {})",
            dir.display(),
            labels.join(", ")
        );
    }
    progress.set_length(items.len() as u64);
    let paths: Vec<&Path> = items.iter().map(|(p, _)| p.as_path()).collect();
    let (decoded, skipped) = dataset::load_clips(&paths, &model.card.features, threads, progress);
    let mut clips = Vec::new();
    let mut truth = Vec::new();
    for ((_, l), d) in items.iter().zip(decoded) {
        if let Some(x) = d {
            clips.push(x);
            truth.push(*l);
        }
    }
    if clips.is_empty() {
        bail!(
            "{}: none of the {} clips could be read",
            dir.display(),
            items.len()
        );
    }
    let probs = classify(model, &clips)?;
    let preds: Vec<usize> = probs.iter().map(|p| argmax(p)).collect();
    Ok(Evaluation {
        report: Report::new(labels, &truth, &preds),
        skipped,
        ignored_folders: ignored,
    })
}

pub struct Prediction {
    pub file: PathBuf,
    pub label: String,
    pub score: f32,
    pub probabilities: Vec<(String, f32)>,
}

impl Prediction {
    pub fn json(&self) -> serde_json::Value {
        let probs: serde_json::Map<String, serde_json::Value> = self
            .probabilities
            .iter()
            .map(|(l, p)| (l.clone(), serde_json::json!(p)))
            .collect();
        serde_json::json!({"file": self.file.display().to_string(), "label": self.label, "score": self.score, "probabilities": probs})
    }

    /// The top label and a bar per label.
    pub fn text(&self) -> String {
        let w = self
            .probabilities
            .iter()
            .map(|(l, _)| l.len())
            .max()
            .unwrap_or(8);
        let mut s = format!(
            "{}: {} ({:.1}%)\n",
            self.file.display(),
            self.label,
            self.score * 100.0
        );
        for (l, p) in &self.probabilities {
            let n = (p * 40.0).round() as usize;
            s += &format!("  {l:>w$} {:<40} {:5.1}%\n", "#".repeat(n), p * 100.0);
        }
        s
    }
}

/// Recognises whole clips (the first second of each file).
pub fn predict_files(model: &Model, files: &[PathBuf]) -> Result<Vec<Result<Prediction>>> {
    let mut out = Vec::new();
    for f in files {
        let cfg = &model.card.features;
        let r = wav::read_clip(f, cfg.clip_part()).and_then(|x| {
            let p = classify(model, &[cfg.place(&x)])?.remove(0);
            let top = argmax(&p);
            Ok(Prediction {
                file: f.clone(),
                label: model.card.labels[top].clone(),
                score: p[top],
                probabilities: model.card.labels.iter().cloned().zip(p).collect(),
            })
        });
        out.push(r);
    }
    Ok(out)
}
