//! Step 3, the model's inputs: the normalisation (fitted on the training clips and
//! silence, or kept from the base model when fine-tuning: its layers were trained on
//! it) and the held-out splits' features, computed once for every epoch's validation
//! and for the test report.
use super::data::{silence_examples, Data};
use super::plan::Plan;
use super::TrainOptions;
use crate::audio::features::{FeatureExtractor, Normalisation};
use crate::learn::dataset::Split;
use anyhow::Result;
use std::sync::Arc;

pub(super) struct Inputs {
    pub extractor: FeatureExtractor,
    pub norm: Arc<Normalisation>,
    /// Normalised features of the validation and test examples, row-major
    /// `[n][frames][bins]`.
    pub val_x: Vec<f32>,
    pub test_x: Vec<f32>,
}

pub(super) fn prepare(opts: &TrainOptions, plan: &Plan, data: &Data) -> Result<Inputs> {
    let features = &plan.features;
    let per = features.n_frames() * features.n_bins();
    let mut fe = FeatureExtractor::new(features)?;
    let norm = match &plan.base {
        Some(b) => b.card.normalisation.clone(),
        None => {
            let train_plain = features_of(&mut fe, None, &data.splits[0].clips);
            let sil_train = data
                .silence
                .map(|_| {
                    let n = data.target.min(500);
                    silence_examples(&data.noise, Split::Train, n, opts.seed, plan.clip_len())
                })
                .unwrap_or_default();
            let sil_feats = features_of(&mut fe, None, &sil_train);
            let blocks = train_plain.chunks(per).chain(sil_feats.chunks(per));
            Normalisation::fit(blocks, features.n_bins())
        }
    };
    let val_x = features_of(&mut fe, Some(&norm), &data.splits[1].clips);
    let test_x = features_of(&mut fe, Some(&norm), &data.splits[2].clips);
    Ok(Inputs {
        extractor: fe,
        norm: Arc::new(norm),
        val_x,
        test_x,
    })
}

/// Features of every clip, optionally normalised, row-major `[n][frames][bins]`.
fn features_of(
    fe: &mut FeatureExtractor,
    norm: Option<&Normalisation>,
    clips: &[Vec<f32>],
) -> Vec<f32> {
    let mut out = Vec::new();
    for c in clips {
        let mut f = fe.compute(c);
        if let Some(n) = norm {
            n.apply(&mut f);
        }
        out.extend(f);
    }
    out
}
