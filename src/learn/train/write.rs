//! Step 7, the model folder: weights, card, history, test report and plots written
//! into a staging folder beside the destination, then swapped in at once, so that a
//! crash or Ctrl-C never leaves half a model where the previous one was.
use super::data::Examples;
use super::TrainOptions;
use crate::audio::features::FeatureExtractor;
use crate::audio::wav;
use crate::learn::plots;
use crate::learn::report::Report;
use crate::model::{self, Model};
use crate::util;
use anyhow::{bail, Context, Result};

/// Writes weights, card, history, report and plots into a staging folder, then swaps it in.
pub(super) fn write_model_folder(
    model: &Model,
    history: &[plots::Epoch],
    report: &Report,
    heading: &str,
    test: &Examples,
    fe: &mut FeatureExtractor,
    opts: &TrainOptions,
) -> Result<()> {
    let out = opts.out.as_path();
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    util::remove_stale_siblings(out);
    let stage = model::staging_dir(out);
    let _ = std::fs::remove_dir_all(&stage);
    std::fs::create_dir_all(&stage)
        .with_context(|| format!("cannot create {}", stage.display()))?;
    let result = (|| -> Result<()> {
        model.write_into(&stage)?;
        let mut csv = String::from("epoch,loss,accuracy,val_loss,val_accuracy,lr,seconds\n");
        for e in history {
            csv += &format!(
                "{},{:.6},{:.6},{:.6},{:.6},{:.3e},{:.2}\n",
                e.epoch, e.loss, e.accuracy, e.val_loss, e.val_accuracy, e.lr, e.seconds
            );
        }
        std::fs::write(stage.join("history.csv"), csv)?;
        std::fs::write(
            stage.join("report.txt"),
            format!(
                "{heading}\n\n{}\n{}",
                report.text(),
                report.confusion_text()
            ),
        )?;
        plots::history(&stage.join("history.png"), history)?;
        plots::confusion(
            &stage.join("confusion.png"),
            &report.labels,
            &report.confusion,
            "Confusion matrix (test split)",
        )?;
        // One keyword clip from the test split, as the tutorial shows.
        let pick = (0..test.labels.len())
            .find(|&i| model.card.is_command(test.labels[i]))
            .unwrap_or(0);
        if let Some(wave) = test.clips.get(pick) {
            let mut spec = fe.compute(wave);
            if model.card.features.kind == crate::audio::features::FeatureKind::StftMagnitude {
                spec.iter_mut().for_each(|v| *v = (*v + 1e-6).ln());
            }
            let title = &model.card.labels[test.labels[pick]];
            plots::wave_and_spectrogram(
                &stage.join("example.png"),
                title,
                wave,
                wav::SAMPLE_RATE,
                &spec,
                model.card.features.n_bins(),
            )?;
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&stage);
        return Err(e);
    }
    util::sync_dir(&stage)?;
    // Checked again: something may have been put there while training ran.
    if let Err(e) = model::check_destination(out, &opts.data) {
        let keep = util::free_name(out);
        std::fs::rename(&stage, &keep)
            .with_context(|| format!("{e:#}; cannot move the new model to {}", keep.display()))?;
        bail!(
            "{e:#}; the new model was saved to {} instead",
            keep.display()
        );
    }
    util::replace_dir_atomic(&stage, out)
}
