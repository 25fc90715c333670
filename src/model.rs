//! The keyword model: a compact temporal-convolution ResNet (TC-ResNet, Choi et al. 2019)
//! over log-mel frames, or the tutorial's 2-D CNN for comparison, in tch (libtorch).
//! A model is a folder: `model.safetensors` (weights) + `model.json` (the card: labels,
//! feature settings, normalisation, training summary, metrics). The default model is
//! embedded in the binary. One thread owns a loaded model.
use crate::audio::features::{FeatureConfig, Normalisation};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::{nn, Device, Kind, Tensor};

pub const CARD_FORMAT: &str = "listen-model";
pub const CARD_VERSION: u32 = 1;
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CARD_FILE: &str = "model.json";
pub const SILENCE: &str = "_silence_";
pub const UNKNOWN: &str = "_unknown_";

/// Network architecture and its size settings, stored in the card.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Arch {
    /// 1-D convolutions over time with the frequency bins as channels.
    TcResnet {
        channels: Vec<i64>,
        kernel: i64,
        dropout: f64,
    },
    /// The tutorial's CNN: resize to 64x64, Conv2D 64, Conv2D 128, max-pool, dropout,
    /// Dense 256, dropout, Dense.
    Tutorial,
    /// A small head over Google's speech embedding (one 96-number frame every 80 ms):
    /// TC-ResNet blocks over the embeddings, then a dense layer over the flattened
    /// result, so that the head knows where in its window a word ends.
    EmbeddingHead {
        channels: Vec<i64>,
        kernel: i64,
        dropout: f64,
    },
}

impl Arch {
    pub fn by_name(name: &str) -> Result<Arch> {
        match name {
            "tcresnet" | "tc-resnet" => Ok(Arch::default_tcresnet()),
            "tcresnet-wide" => Ok(Arch::TcResnet {
                channels: vec![32, 48, 64, 80],
                kernel: 9,
                dropout: 0.2,
            }),
            "tutorial" => Ok(Arch::Tutorial),
            "embedding-head" => Ok(Arch::EmbeddingHead {
                channels: vec![64, 96, 128],
                kernel: 3,
                dropout: 0.3,
            }),
            other => {
                bail!("unknown architecture '{other}' (try tcresnet, tcresnet-wide, embedding-head or tutorial)")
            }
        }
    }

    pub fn default_tcresnet() -> Arch {
        Arch::TcResnet {
            channels: vec![20, 32, 40, 56],
            kernel: 9,
            dropout: 0.2,
        }
    }

    /// How the architecture reads in a banner: its `--arch` name where it has one,
    /// e.g. "tcresnet-wide (channels 32-48-64-80, kernel 9)".
    pub fn describe(&self) -> String {
        match self {
            Arch::TcResnet {
                channels, kernel, ..
            } => {
                let named = ["tcresnet", "tcresnet-wide"]
                    .into_iter()
                    .find(|n| Arch::by_name(n).ok().as_ref() == Some(self))
                    .unwrap_or("tcresnet");
                let ch: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
                format!("{named} (channels {}, kernel {kernel})", ch.join("-"))
            }
            Arch::Tutorial => "tutorial (the tutorial's CNN)".to_string(),
            Arch::EmbeddingHead {
                channels, kernel, ..
            } => {
                let ch: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
                format!(
                    "embedding-head (channels {}, kernel {kernel}) on Google's speech embedding",
                    ch.join("-")
                )
            }
        }
    }

    /// Name of the output layer (one row per label).
    pub fn output_layer(&self) -> &'static str {
        match self {
            Arch::TcResnet { .. } | Arch::EmbeddingHead { .. } => "fc",
            Arch::Tutorial => "fc2",
        }
    }

    /// The feature front-end the architecture was designed for.
    pub fn default_features(&self) -> FeatureConfig {
        match self {
            Arch::TcResnet { .. } => FeatureConfig::log_mel(),
            Arch::Tutorial => FeatureConfig::tutorial_stft(),
            Arch::EmbeddingHead { .. } => FeatureConfig::speech_embedding(0),
        }
    }
}

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

    fn check(&self, source: &str) -> Result<()> {
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

struct ConvBn {
    conv: nn::Conv1D,
    bn: nn::BatchNorm,
}

impl ConvBn {
    fn new(p: nn::Path, i: i64, o: i64, k: i64, stride: i64) -> Self {
        let cfg = nn::ConvConfig {
            stride,
            padding: k / 2,
            bias: false,
            ..Default::default()
        };
        ConvBn {
            conv: nn::conv1d(&p / "conv", i, o, k, cfg),
            bn: nn::batch_norm1d(&p / "bn", o, Default::default()),
        }
    }

    fn forward_t(&self, x: &Tensor, train: bool) -> Tensor {
        x.apply(&self.conv).apply_t(&self.bn, train)
    }
}

struct ResBlock {
    a: ConvBn,
    b: ConvBn,
    shortcut: Option<ConvBn>,
}

enum Net {
    TcResnet {
        stem: ConvBn,
        blocks: Vec<ResBlock>,
        dropout: f64,
        fc: nn::Linear,
    },
    Head {
        stem: ConvBn,
        blocks: Vec<ResBlock>,
        dropout: f64,
        fc: nn::Linear,
    },
    Tutorial {
        conv1: nn::Conv2D,
        conv2: nn::Conv2D,
        fc1: nn::Linear,
        fc2: nn::Linear,
    },
}

impl Net {
    fn new(root: &nn::Path, arch: &Arch, frames: i64, bins: i64, n_labels: i64) -> Result<Net> {
        Ok(match arch {
            Arch::TcResnet {
                channels,
                kernel,
                dropout,
            } => {
                let (stem, blocks) = residual_tower(root, "tc_resnet", channels, *kernel, bins)?;
                let last = *channels.last().unwrap_or(&1);
                Net::TcResnet {
                    stem,
                    blocks,
                    dropout: *dropout,
                    fc: nn::linear(root / "fc", last, n_labels, Default::default()),
                }
            }
            Arch::EmbeddingHead {
                channels,
                kernel,
                dropout,
            } => {
                let (stem, blocks) =
                    residual_tower(root, "embedding_head", channels, *kernel, bins)?;
                // Each block halves time (padding k/2, stride 2).
                let steps =
                    (0..blocks.len()).fold(frames, |t, _| (t + 2 * (kernel / 2) - kernel) / 2 + 1);
                let last = *channels.last().unwrap_or(&1);
                Net::Head {
                    stem,
                    blocks,
                    dropout: *dropout,
                    fc: nn::linear(root / "fc", last * steps, n_labels, Default::default()),
                }
            }
            Arch::Tutorial => Net::Tutorial {
                conv1: nn::conv2d(root / "conv1", 1, 64, 3, Default::default()),
                conv2: nn::conv2d(root / "conv2", 64, 128, 3, Default::default()),
                fc1: nn::linear(root / "fc1", 128 * 30 * 30, 256, Default::default()),
                fc2: nn::linear(root / "fc2", 256, n_labels, Default::default()),
            },
        })
    }

    /// `xs`: normalised features `[batch, frames, bins]` -> logits `[batch, labels]`.
    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        match self {
            Net::TcResnet {
                stem,
                blocks,
                dropout,
                fc,
            } => residual_forward(stem, blocks, xs, train)
                .mean_dim(&[2i64][..], false, Kind::Float)
                .dropout(*dropout, train)
                .apply(fc),
            Net::Head {
                stem,
                blocks,
                dropout,
                fc,
            } => residual_forward(stem, blocks, xs, train)
                .flatten(1, -1)
                .dropout(*dropout, train)
                .apply(fc),
            Net::Tutorial {
                conv1,
                conv2,
                fc1,
                fc2,
            } => xs
                .unsqueeze(1)
                .upsample_bilinear2d([64, 64], false, None, None)
                .apply(conv1)
                .relu()
                .apply(conv2)
                .relu()
                .max_pool2d([2, 2], [2, 2], [0, 0], [1, 1], false)
                .dropout(0.25, train)
                .flatten(1, -1)
                .apply(fc1)
                .relu()
                .dropout(0.5, train)
                .apply(fc2),
        }
    }
}

/// A stem and residual blocks (each halving time) over `[batch, channels=bins, time]`.
fn residual_tower(
    root: &nn::Path,
    what: &str,
    channels: &[i64],
    kernel: i64,
    bins: i64,
) -> Result<(ConvBn, Vec<ResBlock>)> {
    if channels.is_empty() || kernel < 1 || channels.iter().any(|&c| c < 1) {
        bail!("{what} settings are invalid: channels {channels:?}, kernel {kernel}");
    }
    let stem = ConvBn::new(root / "stem", bins, channels[0], 3, 1);
    let blocks = channels
        .windows(2)
        .enumerate()
        .map(|(i, w)| {
            let p = root / format!("block{i}");
            ResBlock {
                a: ConvBn::new(&p / "a", w[0], w[1], kernel, 2),
                b: ConvBn::new(&p / "b", w[1], w[1], kernel, 1),
                shortcut: Some(ConvBn::new(&p / "shortcut", w[0], w[1], 1, 2)),
            }
        })
        .collect();
    Ok((stem, blocks))
}

/// `xs` `[batch, frames, bins]` through the stem and blocks: `[batch, channels, steps]`.
fn residual_forward(stem: &ConvBn, blocks: &[ResBlock], xs: &Tensor, train: bool) -> Tensor {
    let mut x = stem.forward_t(&xs.transpose(1, 2), train).relu();
    for b in blocks {
        let y = b.a.forward_t(&x, train).relu();
        let y = b.b.forward_t(&y, train);
        let s = match &b.shortcut {
            Some(s) => s.forward_t(&x, train),
            None => x.shallow_clone(),
        };
        x = (y + s).relu();
    }
    x
}

/// A loaded (or freshly initialised) model.
pub struct Model {
    pub card: ModelCard,
    pub vs: nn::VarStore,
    net: Net,
    /// Where it was loaded from (a folder, or "bundled model").
    pub source: String,
}

#[cfg(bundled_model)]
const BUNDLED: Option<(&[u8], &[u8])> = Some((
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/model/model.json"
    )),
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/assets/model/model.safetensors"
    )),
));
#[cfg(not(bundled_model))]
const BUNDLED: Option<(&[u8], &[u8])> = None;

impl Model {
    /// A model with fresh random weights for `card`.
    pub fn new(mut card: ModelCard, device: Device) -> Result<Model> {
        card.check("model")?;
        let vs = nn::VarStore::new(device);
        let net = Net::new(
            &vs.root(),
            &card.arch,
            card.features.n_frames() as i64,
            card.features.n_bins() as i64,
            card.labels.len() as i64,
        )?;
        card.parameters = vs
            .trainable_variables()
            .iter()
            .map(|t| t.numel() as i64)
            .sum();
        Ok(Model {
            card,
            vs,
            net,
            source: "new model".into(),
        })
    }

    /// The model at `path`, or the bundled one when `path` is None.
    pub fn open(path: Option<&Path>) -> Result<Model> {
        match path {
            Some(p) if !p.exists() => bail!(
                "model folder {} does not exist (train one with --train DIR, or leave out --model for the bundled one)",
                p.display()
            ),
            Some(p) => Model::load(p, Device::Cpu),
            None => Model::bundled(),
        }
    }

    pub fn bundled() -> Result<Model> {
        match BUNDLED {
            Some((card, weights)) => Model::from_bytes(card, weights, "bundled model", Device::Cpu),
            None => bail!("this listen was built without a bundled model; pass --model PATH (train one with --train DIR)"),
        }
    }

    pub fn has_bundled() -> bool {
        BUNDLED.is_some()
    }

    pub fn load(dir: &Path, device: Device) -> Result<Model> {
        let d = dir.display();
        if dir.exists() && !dir.is_dir() {
            bail!("{d} is a file; a model is a folder (model.json and model.safetensors, as --train writes)");
        }
        if !dir.is_dir() {
            bail!("model folder {d} does not exist (train one with --train DIR)");
        }
        let card_path = dir.join(CARD_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);
        let card = std::fs::read(&card_path).map_err(|e| {
            anyhow!(
                "{}: cannot read model card ({e}); is {d} a listen model folder?",
                card_path.display()
            )
        })?;
        let weights = std::fs::read(&weights_path).map_err(|e| {
            anyhow!(
                "{}: cannot read weights ({e}); the model folder {d} is incomplete",
                weights_path.display()
            )
        })?;
        Model::from_bytes(&card, &weights, &d.to_string(), device)
    }

    pub fn from_bytes(card: &[u8], weights: &[u8], source: &str, device: Device) -> Result<Model> {
        let card = ModelCard::parse(card, source)?;
        let mut m = Model::new(card, device)?;
        m.load_weights(weights, source)?;
        m.source = source.to_string();
        Ok(m)
    }

    /// Copies weights from safetensors bytes, checking every tensor's name and shape.
    fn load_weights(&mut self, bytes: &[u8], source: &str) -> Result<()> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
            anyhow!("{source}: {WEIGHTS_FILE} is not a valid safetensors file ({e:?})")
        })?;
        let mut vars = self.vs.variables();
        let mut names: Vec<_> = vars.keys().cloned().collect();
        names.sort();
        for name in &names {
            let view = st.tensor(name).map_err(|_| {
                anyhow!("{source}: weights have no tensor '{name}': card and weights disagree (architecture {:?})", self.card.arch)
            })?;
            let var = vars.get_mut(name).expect("name comes from the map");
            let want: Vec<usize> = var.size().iter().map(|&s| s as usize).collect();
            if view.shape() != want.as_slice() {
                bail!(
                    "{source}: weight '{name}' has shape {:?} but the card ({} labels, {} bins) needs {:?}: card and weights disagree",
                    view.shape(),
                    self.card.labels.len(),
                    self.card.features.n_bins(),
                    want
                );
            }
            let t =
                Tensor::try_from(view).map_err(|e| anyhow!("{source}: weight '{name}': {e}"))?;
            tch::no_grad(|| var.copy_(&t.to_kind(var.kind())));
        }
        if st.len() != names.len() {
            bail!("{source}: weights hold {} tensors, the card's architecture has {}: card and weights disagree", st.len(), names.len());
        }
        Ok(())
    }

    pub fn device(&self) -> Device {
        self.vs.device()
    }

    /// Logits for normalised features `[batch, frames, bins]`.
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    /// Softmax probabilities for `n` feature blocks (normalised, row-major), `[n][labels]`.
    pub fn probabilities(&self, features: &[f32], n: usize) -> Vec<Vec<f32>> {
        if n == 0 {
            return Vec::new();
        }
        let (frames, bins) = (
            self.card.features.n_frames() as i64,
            self.card.features.n_bins() as i64,
        );
        let x = Tensor::from_slice(features)
            .view([n as i64, frames, bins])
            .to_device(self.device());
        let p = tch::no_grad(|| self.forward_t(&x, false).softmax(-1, Kind::Float))
            .to_device(Device::Cpu);
        let flat: Vec<f32> = Vec::<f32>::try_from(p.flatten(0, -1)).unwrap_or_default();
        flat.chunks(self.card.labels.len())
            .map(|c| c.to_vec())
            .collect()
    }

    /// A model for `labels` that starts from `base`: same architecture, features and
    /// normalisation; every layer copied, and the output layer's rows copied for the
    /// labels `base` already has (new labels start from fresh rows).
    pub fn grow_from(base: &Model, labels: Vec<String>, device: Device) -> Result<Model> {
        let mut card = ModelCard::new(
            base.card.arch.clone(),
            labels,
            base.card.features.clone(),
            base.card.normalisation.clone(),
        );
        card.fine_tuned_from = Some(base.source.clone());
        let m = Model::new(card, device)?;
        let from = base.vs.variables();
        // Output row of each new label in the base model, if it has one.
        let rows: Vec<Option<i64>> = m
            .card
            .labels
            .iter()
            .map(|l| {
                base.card
                    .labels
                    .iter()
                    .position(|b| b == l)
                    .map(|i| i as i64)
            })
            .collect();
        let head = base.card.arch.output_layer();
        let mut vars = m.vs.variables();
        tch::no_grad(|| -> Result<()> {
            for (name, var) in vars.iter_mut() {
                let src = from
                    .get(name)
                    .ok_or_else(|| anyhow!("{}: has no tensor '{name}'", base.source))?
                    .to_device(device);
                if name.starts_with(&format!("{head}.")) {
                    // The output layer: one row per label.
                    for (i, r) in rows.iter().enumerate() {
                        if let Some(r) = r {
                            var.get(i as i64).copy_(&src.get(*r));
                        }
                    }
                } else {
                    var.copy_(&src);
                }
            }
            Ok(())
        })?;
        Ok(m)
    }

    /// Writes weights and card into `dir` (which must exist).
    pub fn write_into(&self, dir: &Path) -> Result<()> {
        let mut named: Vec<(String, Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.to_device(Device::Cpu)))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        let path = dir.join(WEIGHTS_FILE);
        Tensor::write_safetensors(&named, &path)
            .map_err(|e| anyhow!("cannot write {}: {e}", path.display()))?;
        let card = serde_json::to_vec_pretty(&self.card)?;
        std::fs::write(dir.join(CARD_FILE), card)
            .with_context(|| format!("cannot write {}", dir.join(CARD_FILE).display()))
    }

    /// Snapshot of all weights (to keep the best epoch in memory).
    pub fn snapshot(&self) -> Vec<(String, Tensor)> {
        self.vs
            .variables()
            .into_iter()
            .map(|(k, v)| (k, v.detach().copy()))
            .collect()
    }

    pub fn restore(&mut self, snap: &[(String, Tensor)]) {
        let mut vars = self.vs.variables();
        tch::no_grad(|| {
            for (k, t) in snap {
                if let Some(v) = vars.get_mut(k) {
                    v.copy_(t);
                }
            }
        });
    }
}

/// Every file `--train` writes into a model folder; a folder holding anything else is
/// not a model folder, and training never replaces it.
pub const FOLDER_FILES: [&str; 7] = [
    WEIGHTS_FILE,
    CARD_FILE,
    "history.csv",
    "history.png",
    "confusion.png",
    "report.txt",
    "example.png",
];

/// Refuses, before any work, a `--model` destination whose replacement could lose
/// something the user made. Allowed: a path that does not exist yet (its parent may be
/// made), an empty folder, or a model folder (a card and only the files training
/// writes). Refused: `.`, `..` and `/`; a file or a symbolic link; a folder with other
/// contents; the training folder or a folder that holds it.
pub fn check_destination(out: &Path, data: &Path) -> Result<()> {
    let shown = out.display();
    let named = out.file_name().is_some_and(|n| n != "." && n != "..");
    if !named {
        bail!("--model {shown}: give a new folder name for the model, e.g. --model my-model");
    }
    let abs = absolute(out);
    if let Ok(data) = std::fs::canonicalize(data) {
        if data.starts_with(&abs) {
            bail!("--model {shown}: that would replace the training folder {}; give a new folder name, e.g. --model my-model", data.display());
        }
    }
    let Ok(meta) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    if meta.file_type().is_symlink() {
        bail!("--model {shown} is a symbolic link; give the folder itself or a new name");
    }
    if !meta.is_dir() {
        bail!("--model {shown} is a file, not a model folder; give a new folder name, e.g. --model my-model");
    }
    let mut entries = Vec::new();
    for e in std::fs::read_dir(out).with_context(|| format!("--model {shown}: cannot read it"))? {
        entries.push(
            e.with_context(|| format!("--model {shown}: cannot read it"))?
                .file_name(),
        );
    }
    if entries.is_empty() {
        return Ok(());
    }
    let foreign = entries
        .iter()
        .filter(|n| !FOLDER_FILES.iter().any(|f| n.as_os_str() == *f))
        .min();
    if let Some(f) = foreign {
        bail!(
            "--model {shown} holds {}, which is not part of a model; training replaces only model folders, so give a new folder name",
            f.to_string_lossy()
        );
    }
    if !entries.iter().any(|n| n.as_os_str() == CARD_FILE) {
        bail!("--model {shown} has no {CARD_FILE}, so it is not a model folder; give a new folder name");
    }
    Ok(())
}

/// `path` made absolute, with the existing part of it resolved (links, `..`).
fn absolute(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            absolute(parent).join(name)
        }
        _ => std::env::current_dir().unwrap_or_default().join(path),
    }
}

/// Staging folder for writing a model next to its final place.
pub fn staging_dir(dest: &Path) -> PathBuf {
    crate::util::sibling(dest, &format!(".tmp-{}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(arch: Arch, labels: usize) -> ModelCard {
        let f = arch.default_features();
        let bins = f.n_bins();
        ModelCard::new(
            arch,
            (0..labels).map(|i| format!("w{i}")).collect(),
            f,
            Normalisation {
                mean: vec![0.0; bins],
                std: vec![1.0; bins],
            },
        )
    }

    #[test]
    fn a_grown_model_answers_like_its_base_on_the_old_labels() {
        for arch in [Arch::default_tcresnet(), Arch::Tutorial] {
            tch::manual_seed(3);
            let mut base = Model::new(card(arch.clone(), 4), Device::Cpu).unwrap();
            base.source = "base".into();
            let mut labels = base.card.labels.clone();
            labels.swap(0, 1);
            labels.push("lights".into());
            let grown = Model::grow_from(&base, labels, Device::Cpu).unwrap();
            assert_eq!(grown.card.fine_tuned_from.as_deref(), Some("base"));
            let f = &base.card.features;
            let x = Tensor::randn(
                [3, f.n_frames() as i64, f.n_bins() as i64],
                (Kind::Float, Device::Cpu),
            );
            let a = base.forward_t(&x, false);
            let b = grown.forward_t(&x, false);
            assert_eq!(b.size(), [3, 5]);
            // Same logits for the same labels, wherever they now sit.
            let diff = (a.select(1, 0) - b.select(1, 1))
                .abs()
                .max()
                .double_value(&[])
                + (a.select(1, 1) - b.select(1, 0))
                    .abs()
                    .max()
                    .double_value(&[])
                + (a.narrow(1, 2, 2) - b.narrow(1, 2, 2))
                    .abs()
                    .max()
                    .double_value(&[]);
            assert!(diff < 1e-5, "{arch:?}: {diff}");
        }
    }

    #[test]
    fn new_empty_and_model_folders_are_fair_destinations() {
        let d = tempfile::tempdir().unwrap();
        let data = d.path().join("data");
        std::fs::create_dir_all(data.join("left")).unwrap();
        // Not there yet, even under folders that are not there yet.
        check_destination(&d.path().join("new/deeper/m"), &data).unwrap();
        check_destination(&data.join("m"), &data).unwrap();
        let empty = d.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        check_destination(&empty, &data).unwrap();
        let model = d.path().join("model");
        std::fs::create_dir(&model).unwrap();
        for f in FOLDER_FILES {
            std::fs::write(model.join(f), "x").unwrap();
        }
        check_destination(&model, &data).unwrap();
        std::fs::write(model.join("notes.txt"), "mine").unwrap();
        let e = check_destination(&model, &data).unwrap_err();
        assert!(format!("{e}").contains("holds notes.txt"), "{e}");
    }

    #[test]
    fn detector_settings_out_of_range_are_refused() {
        let mut c = card(Arch::default_tcresnet(), 3);
        c.detector = Some(crate::live::detect::DetectorConfig {
            threshold: 1.5,
            ..Default::default()
        });
        let bytes = serde_json::to_vec(&c).unwrap();
        let e = ModelCard::parse(&bytes, "m").unwrap_err();
        assert!(format!("{e}").contains("detector settings"), "{e}");
        c.detector = Some(Default::default());
        ModelCard::parse(&serde_json::to_vec(&c).unwrap(), "m").unwrap();
    }

    #[test]
    fn default_model_is_small() {
        let m = Model::new(card(Arch::default_tcresnet(), 10), Device::Cpu).unwrap();
        assert!(
            m.card.parameters > 10_000 && m.card.parameters <= 100_000,
            "{}",
            m.card.parameters
        );
    }

    #[test]
    fn embedding_head_is_under_250k_parameters_and_reads_its_window() {
        let m = Model::new(
            card(Arch::by_name("embedding-head").unwrap(), 10),
            Device::Cpu,
        )
        .unwrap();
        assert!(m.card.parameters <= 250_000, "{}", m.card.parameters);
        let f = FeatureConfig::speech_embedding(1000);
        assert_eq!((f.n_frames(), f.n_bins(), f.clip_part()), (16, 96, 16_000));
        let mut c = card(Arch::by_name("embedding-head").unwrap(), 10);
        c.features = f;
        c.normalisation = Normalisation {
            mean: vec![0.0; 96],
            std: vec![1.0; 96],
        };
        let m = Model::new(c, Device::Cpu).unwrap();
        assert_eq!(m.probabilities(&vec![0.5; 2 * 16 * 96], 2).len(), 2);
        // A TC-ResNet card with embeddings (or the head with log-mel) is refused.
        let mut wrong = card(Arch::default_tcresnet(), 3);
        wrong.features = FeatureConfig::speech_embedding(1000);
        wrong.normalisation = m.card.normalisation.clone();
        let e = ModelCard::parse(&serde_json::to_vec(&wrong).unwrap(), "m").unwrap_err();
        assert!(format!("{e}").contains("not speech embeddings"), "{e}");
    }

    #[test]
    fn tutorial_model_has_the_tutorial_size() {
        let m = Model::new(card(Arch::Tutorial, 8), Device::Cpu).unwrap();
        // The tutorial's summary: 29,568,011 parameters including 3 of its Normalization layer.
        assert_eq!(m.card.parameters, 29_568_008);
        let p = m.probabilities(&vec![0.0; 124 * 129], 1);
        assert_eq!(p[0].len(), 8);
    }

    #[test]
    fn save_then_load_gives_identical_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let m = Model::new(card(Arch::default_tcresnet(), 5), Device::Cpu).unwrap();
        m.write_into(dir.path()).unwrap();
        let l = Model::load(dir.path(), Device::Cpu).unwrap();
        let mut r = crate::util::Rng::new(1);
        let x: Vec<f32> = (0..3 * 98 * 40).map(|_| r.normal()).collect();
        assert_eq!(m.probabilities(&x, 3), l.probabilities(&x, 3));
    }

    #[test]
    fn mismatched_card_and_weights_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        Model::new(card(Arch::default_tcresnet(), 5), Device::Cpu)
            .unwrap()
            .write_into(dir.path())
            .unwrap();
        let c = card(Arch::default_tcresnet(), 6);
        std::fs::write(dir.path().join(CARD_FILE), serde_json::to_vec(&c).unwrap()).unwrap();
        let e = format!("{:#}", Model::load(dir.path(), Device::Cpu).err().unwrap());
        assert!(e.contains("disagree") && e.contains("6 labels"), "{e}");
    }
}
