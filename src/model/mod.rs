//! The keyword model: a network over the front end's frames (TC-ResNet over log-mel,
//! a small head over Google's speech embedding, or the tutorial's 2-D CNN), in tch.
//! A model is a folder: `model.safetensors` (weights) + `model.json` (the card: labels,
//! feature settings, normalisation, training summary, metrics). The default model is
//! embedded in the binary. One thread owns a loaded model.
//!
//! - [`net`]: the architectures and their modules;
//! - [`card`]: the card and its checks;
//! - [`folder`]: where a model folder may be written;
//! - [`fused`]: the embedding heads folded and grouped for listening;
//! - here: loading (folder, bytes, bundled), running, growing, saving.
pub mod card;
pub mod folder;
pub mod fused;
pub mod net;

pub use card::{ModelCard, CARD_FORMAT, CARD_VERSION};
pub use folder::{check_destination, staging_dir, FOLDER_FILES};
pub use net::Arch;

use anyhow::{anyhow, bail, Context, Result};
use net::Net;
use std::path::Path;
use tch::{nn, Device, Kind, Tensor};

pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const CARD_FILE: &str = "model.json";
pub const SILENCE: &str = "_silence_";
pub const UNKNOWN: &str = "_unknown_";

/// `[n, labels]` probabilities as one row per window.
fn rows(p: &Tensor) -> Vec<Vec<f32>> {
    let width = p.size().last().copied().unwrap_or(1).max(1) as usize;
    let flat = Vec::<f32>::try_from(p.to_device(Device::Cpu).flatten(0, -1)).unwrap_or_default();
    flat.chunks(width).map(|c| c.to_vec()).collect()
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

    /// Logits for normalised features `[batch, frames, bins]` (an ensemble's are the
    /// log of its members' mean probabilities).
    pub fn forward_t(&self, xs: &Tensor, train: bool) -> Tensor {
        self.net.forward_t(xs, train)
    }

    /// Each member's logits (one tensor unless the architecture is an ensemble), for a
    /// loss per member.
    pub fn member_logits(&self, xs: &Tensor, train: bool) -> Vec<Tensor> {
        self.net.member_logits(xs, train)
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
        let p = tch::no_grad(|| self.forward_t(&x, false).softmax(-1, Kind::Float));
        rows(&p)
    }

    /// As [`Model::probabilities`], by the heads fused for listening.
    pub fn fused_probabilities(
        &self,
        fused: &fused::FusedHeads,
        features: &[f32],
        n: usize,
    ) -> Vec<Vec<f32>> {
        let f = &self.card.features;
        let x = Tensor::from_slice(features).view([n as i64, f.n_frames() as i64, -1]);
        rows(&tch::no_grad(|| fused.probabilities(&x)))
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
                if name.rsplit('.').nth(1) == Some(head) {
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

    /// This model's heads fused for listening (None for other architectures). A copy:
    /// training the model later does not change it.
    pub fn fused(&self) -> Option<fused::FusedHeads> {
        tch::no_grad(|| fused::FusedHeads::new(&self.net))
    }

    /// Another copy of this model, for another thread.
    pub fn duplicate(&self) -> Result<Model> {
        let mut m = Model::new(self.card.clone(), self.device())?;
        m.restore(&self.snapshot());
        m.card = self.card.clone();
        m.source = self.source.clone();
        Ok(m)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::features::{FeatureConfig, Normalisation};

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
    fn an_ensemble_averages_its_members_probabilities_and_grows_member_by_member() {
        let arch = Arch::by_name("embedding-head-x3").unwrap();
        tch::manual_seed(5);
        let mut base = Model::new(card(arch.clone(), 4), Device::Cpu).unwrap();
        assert!(base.card.parameters <= 250_000, "{}", base.card.parameters);
        base.source = "base".into();
        let f = &base.card.features;
        let x = Tensor::randn(
            [3, f.n_frames() as i64, f.n_bins() as i64],
            (Kind::Float, Device::Cpu),
        );
        let members = base.member_logits(&x, false);
        assert_eq!(members.len(), 3);
        let mean: Tensor = members
            .iter()
            .map(|l| l.softmax(-1, Kind::Float))
            .sum::<Tensor>()
            / 3.0;
        let p = base.forward_t(&x, false).softmax(-1, Kind::Float);
        assert!((p - &mean).abs().max().double_value(&[]) < 1e-5);
        // The members differ: an ensemble of copies would be one model.
        let spread = (&members[0] - &members[1]).abs().max().double_value(&[]);
        assert!(spread > 1e-3, "{spread}");
        // Growing keeps each member's rows for the labels it had.
        let mut labels = base.card.labels.clone();
        labels.push("lights".into());
        let grown = Model::grow_from(&base, labels, Device::Cpu).unwrap();
        for (a, b) in members.iter().zip(grown.member_logits(&x, false)) {
            let diff = (a - b.narrow(1, 0, 4)).abs().max().double_value(&[]);
            assert!(diff < 1e-5, "{diff}");
        }
    }

    #[test]
    fn fused_heads_give_the_models_own_probabilities() {
        let mut r = crate::util::Rng::new(4);
        let mut models = vec![Model::bundled().unwrap()];
        // A single head with batch-norm statistics and scales of its own (not the
        // initial 0 and 1, which would hide a fold gone wrong).
        let one = Model::new(
            card(Arch::by_name("embedding-head").unwrap(), 5),
            Device::Cpu,
        )
        .unwrap();
        tch::no_grad(|| {
            for (name, mut v) in one.vs.variables() {
                if name.contains("bn") {
                    v.copy_(&(v.rand_like() + 0.5));
                }
            }
        });
        models.push(one);
        for m in &models {
            let (frames, bins) = (m.card.features.n_frames(), m.card.features.n_bins());
            let x: Vec<f32> = (0..3 * frames * bins).map(|_| r.normal()).collect();
            let want = m.probabilities(&x, 3).concat();
            let xs = Tensor::from_slice(&x).view([3, frames as i64, bins as i64]);
            let got = tch::no_grad(|| m.fused().unwrap().probabilities(&xs));
            let got: Vec<f32> = Vec::try_from(got.flatten(0, -1)).unwrap();
            assert_eq!(got.len(), want.len());
            let worst = want
                .iter()
                .zip(&got)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "{worst}");
        }
        let tc = Model::new(card(Arch::default_tcresnet(), 5), Device::Cpu).unwrap();
        assert!(tc.fused().is_none());
    }

    #[test]
    fn a_single_head_card_reads_and_writes_as_before_ensembles() {
        let one = Arch::by_name("embedding-head").unwrap();
        let json = serde_json::to_string(&one).unwrap();
        assert!(!json.contains("members"), "{json}");
        let old = r#"{"name":"embedding_head","channels":[64,96,128],"kernel":3,"dropout":0.3}"#;
        assert_eq!(serde_json::from_str::<Arch>(old).unwrap(), one);
        let three = Arch::by_name("embedding-head-x3").unwrap();
        let back: Arch = serde_json::from_str(&serde_json::to_string(&three).unwrap()).unwrap();
        assert_eq!(back, three);
        assert!(three
            .describe()
            .starts_with("embedding-head-x3 (3 members of"));
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
