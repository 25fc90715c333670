//! The networks: the architecture named in a card ([`Arch`]) and the tch modules that
//! implement it (TC-ResNet over log-mel frames, the embedding head over the speech
//! embedding, the tutorial's CNN).
use crate::audio::features::FeatureConfig;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use tch::{nn, Kind, Tensor};

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
    /// `members` such heads side by side, trained each on its own loss and averaged in
    /// probability: an ensemble that keeps one member's learned-by-heart quirks from
    /// firing alone.
    EmbeddingHead {
        channels: Vec<i64>,
        kernel: i64,
        dropout: f64,
        #[serde(default = "one", skip_serializing_if = "is_one")]
        members: i64,
    },
}

fn one() -> i64 {
    1
}

fn is_one(n: &i64) -> bool {
    *n == 1
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
                members: 1,
            }),
            "embedding-head-x3" => Ok(Arch::EmbeddingHead {
                channels: vec![40, 64, 80],
                kernel: 3,
                dropout: 0.3,
                members: 3,
            }),
            other => {
                bail!("unknown architecture '{other}' (try tcresnet, tcresnet-wide, embedding-head, embedding-head-x3 or tutorial)")
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
                channels,
                kernel,
                members,
                ..
            } => {
                let ch: Vec<String> = channels.iter().map(|c| c.to_string()).collect();
                let named = ["embedding-head", "embedding-head-x3"]
                    .into_iter()
                    .find(|n| Arch::by_name(n).ok().as_ref() == Some(self))
                    .unwrap_or("embedding-head");
                let times = match members {
                    1 => String::new(),
                    n => format!("{n} members of "),
                };
                format!(
                    "{named} ({times}channels {}, kernel {kernel}) on Google's speech embedding",
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

pub(super) struct ConvBn {
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

pub(super) struct Head {
    stem: ConvBn,
    blocks: Vec<ResBlock>,
    dropout: f64,
    fc: nn::Linear,
}

impl ConvBn {
    pub(super) fn parts(&self) -> (&nn::Conv1D, &nn::BatchNorm) {
        (&self.conv, &self.bn)
    }
}

impl ResBlock {
    pub(super) fn a(&self) -> &ConvBn {
        &self.a
    }
    pub(super) fn b(&self) -> &ConvBn {
        &self.b
    }
    pub(super) fn shortcut(&self) -> Option<&ConvBn> {
        self.shortcut.as_ref()
    }
}

impl Head {
    pub(super) fn stem(&self) -> &ConvBn {
        &self.stem
    }
    pub(super) fn blocks(&self) -> &[ResBlock] {
        &self.blocks
    }
    pub(super) fn fc(&self) -> &nn::Linear {
        &self.fc
    }

    fn new(
        root: &nn::Path,
        channels: &[i64],
        kernel: i64,
        dropout: f64,
        frames: i64,
        bins: i64,
        n_labels: i64,
    ) -> Result<Head> {
        let (stem, blocks) = residual_tower(root, "embedding_head", channels, kernel, bins)?;
        // Each block halves time (padding k/2, stride 2).
        let steps = (0..blocks.len()).fold(frames, |t, _| (t + 2 * (kernel / 2) - kernel) / 2 + 1);
        let last = *channels.last().unwrap_or(&1);
        Ok(Head {
            stem,
            blocks,
            dropout,
            fc: nn::linear(root / "fc", last * steps, n_labels, Default::default()),
        })
    }

    fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        residual_forward(&self.stem, &self.blocks, xs, train)
            .flatten(1, -1)
            .dropout(self.dropout, train)
            .apply(&self.fc)
    }
}

pub(super) struct ResBlock {
    a: ConvBn,
    b: ConvBn,
    shortcut: Option<ConvBn>,
}

pub(super) enum Net {
    TcResnet {
        stem: ConvBn,
        blocks: Vec<ResBlock>,
        dropout: f64,
        fc: nn::Linear,
    },
    Heads(Vec<Head>),
    Tutorial {
        conv1: nn::Conv2D,
        conv2: nn::Conv2D,
        fc1: nn::Linear,
        fc2: nn::Linear,
    },
}

impl Net {
    pub(super) fn new(
        root: &nn::Path,
        arch: &Arch,
        frames: i64,
        bins: i64,
        n_labels: i64,
    ) -> Result<Net> {
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
                members,
            } => {
                if !(1..=8).contains(members) {
                    bail!("embedding head settings are invalid: {members} members (1 to 8)");
                }
                // One member keeps the names of the heads trained before ensembles.
                let member = |i: i64| match members {
                    1 => root.clone(),
                    _ => root / format!("member{i}"),
                };
                let heads = (0..*members)
                    .map(|i| {
                        Head::new(
                            &member(i),
                            channels,
                            *kernel,
                            *dropout,
                            frames,
                            bins,
                            n_labels,
                        )
                    })
                    .collect::<Result<_>>()?;
                Net::Heads(heads)
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
    pub(super) fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
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
            Net::Heads(heads) if heads.len() == 1 => heads[0].forward_t(xs, train),
            Net::Heads(heads) => ensemble(
                &heads
                    .iter()
                    .map(|h| h.forward_t(xs, train))
                    .collect::<Vec<_>>(),
            ),
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

impl Net {
    pub(super) fn member_logits(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        match self {
            Net::Heads(heads) => heads.iter().map(|h| h.forward_t(xs, train)).collect(),
            _ => vec![self.forward_t(xs, train)],
        }
    }
}

/// Members' logits -> the log of their mean probabilities (one member: its logits).
pub fn ensemble(logits: &[Tensor]) -> Tensor {
    match logits {
        [one] => one.shallow_clone(),
        _ => {
            let p: Vec<Tensor> = logits.iter().map(|l| l.softmax(-1, Kind::Float)).collect();
            (Tensor::stack(&p, 0).mean_dim(&[0i64][..], false, Kind::Float) + 1e-12).log()
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
