//! Training-time augmentation: speed/pitch perturbation, time shift, gain, background
//! noise at a random SNR, SpecAugment masks; and `_silence_` clips cut from background
//! noise. Noise recordings are split by time (first 80% train, next 10% validation,
//! last 10% test) so that evaluation never hears the noise training heard.
use crate::audio::wav::rms;
use crate::learn::dataset::Split;
use crate::util::Rng;

#[derive(Clone, Debug, serde::Serialize)]
pub struct AugmentConfig {
    pub shift_ms: f32,
    pub speed_min: f32,
    pub speed_max: f32,
    pub gain_db: f32,
    pub noise_prob: f32,
    pub snr_db_min: f32,
    pub snr_db_max: f32,
    pub time_masks: usize,
    pub time_mask_max: usize,
    pub freq_masks: usize,
    pub freq_mask_max: usize,
    /// Time shift for `_unknown_` words: a streaming window sees words at any position,
    /// cut at its edges, and none of those views should look like a command.
    pub unknown_shift_ms: f32,
    /// Extra `_unknown_` examples per epoch, as a share of a label's count: the head or
    /// the tail of a command alone ("st-" of "stop", "-op" of "stop"), which must not fire.
    pub partial_share: f32,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            shift_ms: 100.0,
            speed_min: 0.85,
            speed_max: 1.15,
            gain_db: 6.0,
            noise_prob: 0.8,
            snr_db_min: 0.0,
            snr_db_max: 20.0,
            time_masks: 2,
            time_mask_max: 10,
            freq_masks: 2,
            freq_mask_max: 6,
            unknown_shift_ms: 400.0,
            partial_share: 0.5,
        }
    }
}

impl AugmentConfig {
    /// No augmentation at all (for ablations).
    pub fn none() -> Self {
        AugmentConfig {
            shift_ms: 0.0,
            speed_min: 1.0,
            speed_max: 1.0,
            gain_db: 0.0,
            noise_prob: 0.0,
            snr_db_min: 0.0,
            snr_db_max: 0.0,
            time_masks: 0,
            time_mask_max: 0,
            freq_masks: 0,
            freq_mask_max: 0,
            unknown_shift_ms: 0.0,
            partial_share: 0.0,
        }
    }
}

/// Background noise, cut by time into train / validation / test parts.
#[derive(Clone, Debug, Default)]
pub struct NoiseBank {
    parts: [Vec<Vec<f32>>; 3],
    pub synthetic: bool,
}

impl NoiseBank {
    /// From decoded noise recordings (16 kHz mono). Recordings shorter than 3 s are
    /// used for training only.
    pub fn from_recordings(recs: Vec<Vec<f32>>) -> Self {
        let mut parts: [Vec<Vec<f32>>; 3] = Default::default();
        for r in recs {
            let n = r.len();
            if n < 48_000 {
                if n > 0 {
                    parts[0].push(r);
                }
                continue;
            }
            let (a, b) = (n * 8 / 10, n * 9 / 10);
            parts[0].push(r[..a].to_vec());
            parts[1].push(r[a..b].to_vec());
            parts[2].push(r[b..].to_vec());
        }
        NoiseBank {
            parts,
            synthetic: false,
        }
    }

    /// When a data set brings no `_background_noise_`: white, pink-ish and brown-ish
    /// noise, a minute each, from a fixed seed.
    pub fn synthetic() -> Self {
        let mut rng = Rng::new(0x5eed);
        let mut recs = Vec::new();
        for kind in 0..3 {
            let mut x = Vec::with_capacity(960_000);
            let (mut b, mut p) = (0f32, [0f32; 3]);
            for _ in 0..960_000 {
                let w = rng.normal() * 0.05;
                x.push(match kind {
                    0 => w,
                    1 => {
                        p[0] = 0.997 * p[0] + 0.029 * w;
                        p[1] = 0.985 * p[1] + 0.032 * w;
                        p[2] = 0.950 * p[2] + 0.048 * w;
                        (p[0] + p[1] + p[2]) * 3.0
                    }
                    _ => {
                        b = (b + w * 0.1).clamp(-0.5, 0.5) * 0.999;
                        b
                    }
                });
            }
            recs.push(x);
        }
        let mut nb = NoiseBank::from_recordings(recs);
        nb.synthetic = true;
        nb
    }

    pub fn is_empty(&self) -> bool {
        self.parts[0].is_empty()
    }

    /// A hash of every sample: caches of work made with this noise are keyed by it.
    pub fn fingerprint(&self) -> u64 {
        let mut bytes = vec![self.synthetic as u8];
        for part in &self.parts {
            for rec in part {
                bytes.extend_from_slice(&(rec.len() as u64).to_le_bytes());
                rec.iter()
                    .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes()));
            }
        }
        crate::util::stable_hash(&bytes)
    }

    /// A random `len`-sample window of noise from the given split's part.
    pub fn window(&self, split: Split, rng: &mut Rng, len: usize) -> Vec<f32> {
        let part = &self.parts[split as usize];
        let part = if part.is_empty() {
            &self.parts[0]
        } else {
            part
        };
        if part.is_empty() {
            return vec![0.0; len];
        }
        let r = &part[rng.below(part.len())];
        let mut out = Vec::with_capacity(len);
        let mut pos = if r.len() > len {
            rng.below(r.len() - len)
        } else {
            0
        };
        while out.len() < len {
            let take = (len - out.len()).min(r.len() - pos);
            out.extend_from_slice(&r[pos..pos + take]);
            pos = 0;
        }
        out
    }
}

/// A `_silence_` example: background noise from anywhere between very quiet and its
/// recorded level, sometimes digital near-silence.
pub fn silence_clip(noise: &NoiseBank, split: Split, rng: &mut Rng, len: usize) -> Vec<f32> {
    if rng.f32() < 0.1 || noise.is_empty() {
        return (0..len).map(|_| rng.normal() * 1e-4).collect();
    }
    let gain = 10f32.powf(rng.range(-40.0, 3.0) / 20.0);
    noise
        .window(split, rng, len)
        .into_iter()
        .map(|v| v * gain)
        .collect()
}

/// Linear-interpolation resampling by `factor` (> 1 = faster and higher), then centred
/// back to `len` samples.
fn change_speed(x: &[f32], factor: f32, len: usize) -> Vec<f32> {
    let n = ((x.len() as f32) / factor) as usize;
    let mut y = Vec::with_capacity(n);
    for i in 0..n {
        let pos = i as f32 * factor;
        let j = pos as usize;
        let f = pos - j as f32;
        let a = x.get(j).copied().unwrap_or(0.0);
        let b = x.get(j + 1).copied().unwrap_or(0.0);
        y.push(a + (b - a) * f);
    }
    centre_to(&y, len)
}

fn centre_to(y: &[f32], len: usize) -> Vec<f32> {
    let mut out = vec![0.0; len];
    if y.len() >= len {
        let s = (y.len() - len) / 2;
        out.copy_from_slice(&y[s..s + len]);
    } else {
        let s = (len - y.len()) / 2;
        out[s..s + y.len()].copy_from_slice(y);
    }
    out
}

/// A part of a word that is not the word: the first or last 20-45% of its voiced span,
/// alone, at a random place in the clip (silence elsewhere).
pub fn partial_word(x: &[f32], rng: &mut Rng) -> Vec<f32> {
    let len = x.len();
    let (a, b) =
        crate::audio::wav::voiced_span(x, crate::audio::wav::SAMPLE_RATE).unwrap_or((0, len));
    let keep = (((b - a) as f32) * rng.range(0.2, 0.45)) as usize;
    let piece = if rng.f32() < 0.5 {
        &x[a..a + keep]
    } else {
        &x[b - keep..b]
    };
    let mut out = vec![0.0; len];
    let at = rng.below(len - piece.len() + 1);
    out[at..at + piece.len()].copy_from_slice(piece);
    out
}

/// Waveform augmentation of one clip.
pub fn augment_wave(x: &[f32], noise: &NoiseBank, rng: &mut Rng, cfg: &AugmentConfig) -> Vec<f32> {
    let len = x.len();
    let mut y = if cfg.speed_max > cfg.speed_min {
        change_speed(x, rng.range(cfg.speed_min, cfg.speed_max), len)
    } else {
        x.to_vec()
    };
    let max_shift = (cfg.shift_ms / 1000.0 * crate::audio::wav::SAMPLE_RATE as f32) as i64;
    if max_shift > 0 {
        let shift = rng.below(2 * max_shift as usize + 1) as i64 - max_shift;
        let mut z = vec![0.0; len];
        for (i, v) in z.iter_mut().enumerate() {
            let j = i as i64 - shift;
            if j >= 0 && (j as usize) < len {
                *v = y[j as usize];
            }
        }
        y = z;
    }
    if cfg.gain_db > 0.0 {
        let g = 10f32.powf(rng.range(-cfg.gain_db, cfg.gain_db) / 20.0);
        y.iter_mut().for_each(|v| *v *= g);
    }
    if !noise.is_empty() && rng.f32() < cfg.noise_prob {
        let n = noise.window(Split::Train, rng, len);
        let (sp, np) = (rms(&y).max(1e-4), rms(&n).max(1e-6));
        let snr = rng.range(cfg.snr_db_min, cfg.snr_db_max);
        let k = sp / np / 10f32.powf(snr / 20.0);
        for (v, m) in y.iter_mut().zip(&n) {
            *v += k * m;
        }
    }
    for v in &mut y {
        *v = v.clamp(-1.0, 1.0);
    }
    y
}

/// SpecAugment: zero (= the training mean, after normalisation) random time and frequency bands.
pub fn spec_augment(f: &mut [f32], frames: usize, bins: usize, rng: &mut Rng, cfg: &AugmentConfig) {
    for _ in 0..cfg.time_masks {
        let w = rng.below(cfg.time_mask_max + 1).min(frames);
        let s = rng.below(frames - w + 1);
        f[s * bins..(s + w) * bins]
            .iter_mut()
            .for_each(|v| *v = 0.0);
    }
    for _ in 0..cfg.freq_masks {
        let w = rng.below(cfg.freq_mask_max + 1).min(bins);
        let s = rng.below(bins - w + 1);
        for t in 0..frames {
            f[t * bins + s..t * bins + s + w]
                .iter_mut()
                .for_each(|v| *v = 0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_is_mixed_at_the_asked_snr() {
        let mut rng = Rng::new(1);
        let noise = NoiseBank::synthetic();
        let x: Vec<f32> = (0..16000).map(|i| (i as f32 * 0.1).sin() * 0.3).collect();
        let cfg = AugmentConfig {
            noise_prob: 1.0,
            snr_db_min: 10.0,
            snr_db_max: 10.0,
            ..AugmentConfig::none()
        };
        let y = augment_wave(&x, &noise, &mut rng, &cfg);
        let d: Vec<f32> = y.iter().zip(&x).map(|(a, b)| a - b).collect();
        let snr = 20.0 * (rms(&x) / rms(&d)).log10();
        assert!((snr - 10.0).abs() < 0.5, "snr {snr}");
    }

    #[test]
    fn speed_change_keeps_length_and_moves_pitch() {
        let x: Vec<f32> = (0..16000)
            .map(|i| (2.0 * std::f32::consts::PI * 500.0 * i as f32 / 16000.0).sin())
            .collect();
        let y = change_speed(&x, 1.1, 16000);
        assert_eq!(y.len(), 16000);
        let crossings = |v: &[f32]| {
            v[2000..14000]
                .windows(2)
                .filter(|w| w[0] < 0.0 && w[1] >= 0.0)
                .count()
        };
        let (a, b) = (crossings(&x), crossings(&y));
        assert!((b as f32 / a as f32 - 1.1).abs() < 0.03, "{a} {b}");
    }

    #[test]
    fn noise_parts_do_not_overlap() {
        let rec: Vec<f32> = (0..100_000).map(|i| i as f32).collect();
        let nb = NoiseBank::from_recordings(vec![rec]);
        let mut rng = Rng::new(2);
        for _ in 0..50 {
            assert!(nb
                .window(Split::Train, &mut rng, 1000)
                .iter()
                .all(|&v| v < 80_000.0));
            assert!(nb
                .window(Split::Test, &mut rng, 1000)
                .iter()
                .all(|&v| v >= 90_000.0));
        }
    }
}
