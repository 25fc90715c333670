//! Between epochs, with `--negatives`: hard-negative mining rounds. The model in
//! training listens to a share of the training speech as the engine would, and the
//! windows where a command nearly fires join the epochs after as `_unknown_`.
use super::{log, TrainOptions};
use crate::audio::features::Normalisation;
use crate::learn::negatives::Negatives;
use crate::model::Model;
use anyhow::Result;

/// Mining rounds fall at even intervals of the epochs: for 60 epochs and 2 rounds, at
/// the start of epochs 21 and 41.
pub(super) fn due(epoch: usize, opts: &TrainOptions) -> bool {
    let r = opts.mining_rounds;
    r > 0 && epoch > 1 && (1..=r).any(|k| epoch == opts.epochs * k / (r + 1) + 1)
}

/// A mining round when one is due, unless the last round found no fewer near-fires
/// than the one before (mining again would only find the same windows).
pub(super) fn round_if_due(
    opts: &TrainOptions,
    epoch: usize,
    negatives: &mut Negatives,
    model: &Model,
    norm: &Normalisation,
) -> Result<()> {
    if !due(epoch, opts) {
        return Ok(());
    }
    let falling = match negatives.rounds.as_slice() {
        [.., a, b] => b.near_fires_per_hour < 0.9 * a.near_fires_per_hour,
        _ => true,
    };
    if falling {
        let r = negatives.mine(model, norm, epoch, opts.seed)?;
        log(
            opts.quiet,
            format!(
                "Mining at epoch {epoch}: {:.1} h of training speech, {} of {} windows nearly fire ({:.0}/h); {} hard negatives kept",
                r.hours, r.near_fires, r.windows, r.near_fires_per_hour, r.kept
            ),
        );
    }
    Ok(())
}
