//! Feature frames of a stream, each computed once as its 16 kHz audio arrives. Log-mel
//! and STFT frames come straight from the samples, one per hop. Speech-embedding frames
//! come from mel frames (one per 10 ms, each computed once) through the embedding
//! network streamed layer by layer ([`EmbeddingStream`]): an 80-ms hop costs 8 mel
//! frames' worth of work, not the whole 775-ms window's.
//!
//! A stream starts as if `win - hop` samples of digital silence came before it (so a
//! word in its first second is heard), and its first frame ends one hop into the audio.
use crate::audio::embedding::{
    self, EmbeddingStream, HOP_FRAMES, MEL_BINS, MEL_HOP, N_FFT, WINDOW_FRAMES,
};
use crate::audio::features::{FeatureConfig, FeatureExtractor};
use anyhow::Result;
use tch::Tensor;

/// Mel frames or feature frames computed in one call at most (bounds memory on a long push).
const MAX_FRAMES_AT_ONCE: usize = 512;

pub struct FeatureStream {
    fe: FeatureExtractor,
    /// Samples not yet in a frame (for the embedding: not yet in a mel frame).
    pending: Vec<f32>,
    /// The embedding network's state, for speech-embedding features.
    net: Option<EmbeddingStream>,
    /// Mel frames not yet through the network, and how many went through since the
    /// stream began.
    mel: Vec<f32>,
    mel_fed: u64,
}

impl FeatureStream {
    pub fn new(cfg: &FeatureConfig) -> Result<Self> {
        let mut fe = FeatureExtractor::new(cfg)?;
        let net = fe.speech().map(|_| EmbeddingStream::default());
        let mut s = FeatureStream {
            fe,
            pending: Vec::new(),
            net,
            mel: Vec::new(),
            mel_fed: 0,
        };
        s.reset();
        Ok(s)
    }

    /// Back to the start: what came before is forgotten, silence is assumed instead.
    pub fn reset(&mut self) {
        let c = self.fe.config();
        let lead = c.win_length - c.hop_length;
        self.pending.clear();
        self.pending.resize(lead, 0.0);
        if let Some(net) = &mut self.net {
            net.reset();
            self.mel.clear();
            self.mel_fed = 0;
            // The silence goes through the network now, as any audio would.
            let mut none = Vec::new();
            self.push(&[], &mut none);
            debug_assert!(none.is_empty());
        }
    }

    /// The frame a window of digital silence gives.
    pub fn silent_frame(&mut self) -> Vec<f32> {
        let c = self.fe.config().clone();
        let mut f = vec![0.0; c.n_bins()];
        self.fe.frame_into(&vec![0.0; c.win_length], &mut f);
        f
    }

    /// Takes `samples` (16 kHz, -1..1), appends the frames they complete to `out`
    /// (row-major), and returns how many.
    pub fn push(&mut self, samples: &[f32], out: &mut Vec<f32>) -> usize {
        self.pending.extend_from_slice(samples);
        match self.net.is_some() {
            true => self.push_embedding(out),
            false => self.push_frames(out),
        }
    }

    fn push_frames(&mut self, out: &mut Vec<f32>) -> usize {
        let c = self.fe.config();
        let (hop, win) = (c.hop_length, c.win_length);
        let new = c.frames_for(self.pending.len());
        for first in (0..new).step_by(MAX_FRAMES_AT_ONCE) {
            let n = MAX_FRAMES_AT_ONCE.min(new - first);
            let span = &self.pending[first * hop..(first + n - 1) * hop + win];
            out.extend(self.fe.compute(span));
        }
        self.pending.drain(..new * hop);
        new
    }

    /// Mel frames as their audio arrives; the network once it has whole embeddings'
    /// worth of them. Run only then, it always sees the same shapes (a hop's 8 frames,
    /// live), which oneDNN has ready, and never half a hop twice.
    fn push_embedding(&mut self, out: &mut Vec<f32>) -> usize {
        let (Some(speech), Some(net)) = (self.fe.speech(), self.net.as_mut()) else {
            return 0;
        };
        let frames = embedding::frames_in(self.pending.len());
        let kept = self.mel.len() / MEL_BINS;
        self.mel.resize((kept + frames) * MEL_BINS, 0.0);
        for (t, row) in self.mel[kept * MEL_BINS..].chunks_mut(MEL_BINS).enumerate() {
            let at = t * MEL_HOP;
            speech.mel.frame_into(&self.pending[at..at + N_FFT], row);
        }
        self.pending.drain(..frames * MEL_HOP);
        // Frames up to the end of the last embedding they complete.
        let have = self.mel_fed + (kept + frames) as u64;
        let (w, h) = (WINDOW_FRAMES as u64, HOP_FRAMES as u64);
        let usable = match have {
            n if n < w => 0,
            n => (w + (n - w) / h * h - self.mel_fed) as usize,
        };
        let mut made = 0;
        for first in (0..usable).step_by(MAX_FRAMES_AT_ONCE) {
            let n = MAX_FRAMES_AT_ONCE.min(usable - first);
            let rows = &self.mel[first * MEL_BINS..(first + n) * MEL_BINS];
            let mel = Tensor::from_slice(rows).view([1, n as i64, MEL_BINS as i64]);
            let e = tch::no_grad(|| speech.net.stream(net, &mel));
            made += e.size()[0] as usize;
            out.extend(Vec::<f32>::try_from(e.flatten(0, -1)).unwrap_or_default());
        }
        self.mel.drain(..usable * MEL_BINS);
        self.mel_fed += usable as u64;
        made
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream in pieces of any size gives the frames its whole signal gives, with
    /// `win - hop` of silence before it.
    fn streams_like_the_whole(cfg: FeatureConfig, tolerance: f32) {
        let mut r = crate::util::Rng::new(9);
        let x: Vec<f32> = (0..16_000 * 3).map(|_| r.normal() * 0.1).collect();
        let mut whole_input = vec![0.0; cfg.win_length - cfg.hop_length];
        whole_input.extend_from_slice(&x);
        let whole = FeatureExtractor::new(&cfg).unwrap().compute(&whole_input);
        for piece in [1usize, 160, 1000, 1280, 4801, 48_000] {
            let mut s = FeatureStream::new(&cfg).unwrap();
            let mut got = Vec::new();
            let n: usize = x.chunks(piece).map(|c| s.push(c, &mut got)).sum();
            assert_eq!(got.len(), whole.len(), "piece {piece}");
            assert_eq!(n * cfg.n_bins(), got.len());
            // Relative to the largest value (float sums in other orders: relative to
            // their terms, not to a result that happens to be near zero).
            let scale = whole.iter().fold(1f32, |m, v| m.max(v.abs()));
            let worst = got
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs() / scale)
                .fold(0f32, f32::max);
            assert!(worst <= tolerance, "piece {piece}: {worst}");
        }
    }

    #[test]
    fn log_mel_frames_stream_exactly() {
        streams_like_the_whole(FeatureConfig::log_mel(), 0.0);
    }

    #[test]
    fn embedding_frames_stream_like_whole_windows() {
        // The network's sums run in other orders for other shapes: rounding only.
        streams_like_the_whole(FeatureConfig::speech_embedding(1000), 1e-5);
    }

    #[test]
    fn a_reset_stream_starts_again_from_silence() {
        let cfg = FeatureConfig::speech_embedding(1000);
        let mut r = crate::util::Rng::new(2);
        let x: Vec<f32> = (0..16_000).map(|_| r.normal() * 0.1).collect();
        let mut s = FeatureStream::new(&cfg).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        s.push(&x[..7_000], &mut a);
        s.reset();
        s.push(&x, &mut a);
        let mut fresh = FeatureStream::new(&cfg).unwrap();
        fresh.push(&x, &mut b);
        assert_eq!(&a[a.len() - b.len()..], &b[..]);
    }
}
