//! The model card (`model.json`): labels, architecture, feature settings,
//! normalisation, training summary, metrics and detector settings, checked on reading.
use super::Arch;
use crate::audio::features::{FeatureConfig, Normalisation};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

pub const CARD_FORMAT: &str = "listen-model";
pub const CARD_VERSION: u32 = 1;

/// What the model card says about a model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: String,
    pub version: u32,
    pub arch: Arch,
    pub labels: Vec<String>,
    pub features: FeatureConfig,
    pub normalisation: Normalisation,
    #[serde(default)]
    pub parameters: i64,
    /// Where the model came from when it was fine-tuned from another one.
    #[serde(default)]
    pub fine_tuned_from: Option<String>,
    /// Data summary, settings, timings.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Test-split report.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The detector settings this model listens with unless told otherwise, chosen on
    /// held-out streams; absent: the built-in defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detector: Option<crate::live::detect::DetectorConfig>,
}

impl ModelCard {
    pub fn new(
        arch: Arch,
        labels: Vec<String>,
        features: FeatureConfig,
        normalisation: Normalisation,
    ) -> Self {
        ModelCard {
            format: CARD_FORMAT.into(),
            version: CARD_VERSION,
            arch,
            labels,
            features,
            normalisation,
            parameters: 0,
            fine_tuned_from: None,
            training: serde_json::Value::Null,
            metrics: serde_json::Value::Null,
            detector: None,
        }
    }

    /// How it was made, where a listener should know it: a model of `--train-words`
    /// that heard no recording says so.
    pub fn provenance(&self) -> &'static str {
        match self.training["words"]["trained_without_recordings"].as_bool() {
            Some(true) => " (trained on synthetic voices only)",
            Some(false) => " (trained on synthetic voices and your takes)",
            None => "",
        }
    }

    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| anyhow!("{source}: model card is not valid JSON ({e})"))?;
        match v.get("format").and_then(|f| f.as_str()) {
            Some(CARD_FORMAT) => {}
            _ => bail!("{source}: not a listen model card (no \"format\": \"{CARD_FORMAT}\")"),
        }
        let version = v.get("version").and_then(|f| f.as_u64()).unwrap_or(0);
        if version != CARD_VERSION as u64 {
            bail!("{source}: model card version {version}, this listen reads version {CARD_VERSION}; retrain the model with this listen");
        }
        let card: ModelCard = serde_json::from_value(v)
            .map_err(|e| anyhow!("{source}: model card is incomplete or malformed ({e})"))?;
        card.check(source)?;
        Ok(card)
    }

    pub(super) fn check(&self, source: &str) -> Result<()> {
        self.features
            .validate()
            .with_context(|| source.to_string())?;
        if let Some(d) = &self.detector {
            if !(0.0..=1.0).contains(&d.threshold) || d.smoothing == 0 || d.min_windows == 0 {
                bail!(
                    "{source}: the card's detector settings (threshold {}, smoothing {}, {} window(s)) are out of range; fix or remove \"detector\" in model.json",
                    d.threshold,
                    d.smoothing,
                    d.min_windows
                );
            }
        }
        if self.labels.len() < 2 {
            bail!(
                "{source}: the card lists {} label(s); a model needs at least 2",
                self.labels.len()
            );
        }
        let bins = self.features.n_bins();
        if self.normalisation.mean.len() != bins || self.normalisation.std.len() != bins {
            bail!(
                "{source}: normalisation has {} values but the feature settings give {bins} bins per frame",
                self.normalisation.mean.len()
            );
        }
        use crate::audio::features::FeatureKind;
        let kind = self.features.kind;
        match self.arch {
            Arch::Tutorial if kind != FeatureKind::StftMagnitude => {
                bail!("{source}: the tutorial architecture needs stft_magnitude features")
            }
            Arch::EmbeddingHead { .. } if kind != FeatureKind::SpeechEmbedding => {
                bail!("{source}: the embedding head needs speech_embedding features")
            }
            Arch::TcResnet { .. } if kind == FeatureKind::SpeechEmbedding => {
                bail!("{source}: a TC-ResNet reads log-mel frames, not speech embeddings")
            }
            _ => {}
        }
        Ok(())
    }

    /// Labels that are commands (not `_silence_` / `_unknown_`).
    pub fn is_command(&self, index: usize) -> bool {
        !self.labels[index].starts_with('_')
    }

    /// The command labels, in label order.
    pub fn commands(&self) -> Vec<String> {
        (0..self.labels.len())
            .filter(|&i| self.is_command(i))
            .map(|i| self.labels[i].clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_of_synthetic_voices_says_so_when_it_listens() {
        let mut card = ModelCard::new(
            Arch::by_name("embedding-head").unwrap(),
            vec!["_unknown_".into(), "lights".into()],
            FeatureConfig::speech_embedding(1000),
            Normalisation {
                mean: vec![0.0; 96],
                std: vec![1.0; 96],
            },
        );
        assert_eq!(card.provenance(), "");
        card.training = serde_json::json!({"words": {"trained_without_recordings": true}});
        assert!(card.provenance().contains("synthetic voices only"));
        card.training["words"]["trained_without_recordings"] = false.into();
        assert!(card.provenance().contains("and your takes"));
    }
}
