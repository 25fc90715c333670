//! Sample-rate conversion to the pipeline's 16 kHz, with rubato's FFT resampler:
//! whole clips for files, and a streaming resampler for the live engine.
use anyhow::{anyhow, Result};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

/// Resamples a whole mono clip (output aligned with the input, delay trimmed).
pub fn resample_clip(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == to || x.is_empty() {
        return Ok(x.to_vec());
    }
    let mut r = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Both)
        .map_err(|e| anyhow!("resampler {from}->{to} Hz: {e}"))?;
    let input = InterleavedSlice::new(x, 1, x.len()).map_err(|e| anyhow!("{e}"))?;
    let out = r
        .process_all(&input, x.len(), None)
        .map_err(|e| anyhow!("resampling failed: {e}"))?;
    Ok(out.take_data())
}

/// Streaming mono resampler: push any number of samples, get the converted ones.
/// Allocation happens only at construction; `process` reuses its buffers.
pub struct StreamResampler {
    inner: Option<Fft<f32>>,
    pending: Vec<f32>,
    out_buf: Vec<f32>,
    chunk_in: usize,
}

impl StreamResampler {
    pub fn new(from: u32, to: u32) -> Result<Self> {
        if from == to {
            return Ok(StreamResampler {
                inner: None,
                pending: Vec::new(),
                out_buf: Vec::new(),
                chunk_in: 0,
            });
        }
        // ~10 ms chunks keep the added latency small.
        let chunk = (from as usize / 100).max(64);
        let r = Fft::<f32>::new(from as usize, to as usize, chunk, 1, FixedSync::Input)
            .map_err(|e| anyhow!("cannot resample {from} Hz to {to} Hz: {e}"))?;
        let chunk_in = r.input_frames_next();
        let out_max = r.output_frames_max();
        Ok(StreamResampler {
            inner: Some(r),
            pending: Vec::with_capacity(chunk_in * 4),
            out_buf: vec![0.0; out_max],
            chunk_in,
        })
    }

    /// Samples of delay the resampler adds, in output samples.
    pub fn delay(&self) -> usize {
        self.inner.as_ref().map(|r| r.output_delay()).unwrap_or(0)
    }

    /// Converts `input`, appending the output samples to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        let Some(r) = self.inner.as_mut() else {
            out.extend_from_slice(input);
            return Ok(());
        };
        self.pending.extend_from_slice(input);
        let mut start = 0;
        while self.pending.len() - start >= self.chunk_in {
            let slice = &self.pending[start..start + self.chunk_in];
            let inp = InterleavedSlice::new(slice, 1, self.chunk_in).map_err(|e| anyhow!("{e}"))?;
            let n_out = self.out_buf.len();
            let mut outp = InterleavedSlice::new_mut(&mut self.out_buf, 1, n_out)
                .map_err(|e| anyhow!("{e}"))?;
            let (_, produced) = r
                .process_into_buffer(&inp, &mut outp, None)
                .map_err(|e| anyhow!("resampling failed: {e}"))?;
            out.extend_from_slice(&self.out_buf[..produced]);
            start += self.chunk_in;
        }
        self.pending.drain(..start);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn tone(n: usize, rate: u32, f: f32) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * f * i as f32 / rate as f32).sin())
            .collect()
    }

    /// Smallest max-error of `y` against a 16 kHz sine of `f`, over sub-sample shifts.
    pub fn best_fit_error(y: &[f32], f: f32) -> f32 {
        (-20..=20)
            .map(|k| {
                let lag = k as f32 * 0.05;
                (1000..15000)
                    .map(|i| {
                        (y[i] - (2.0 * std::f32::consts::PI * f * (i as f32 + lag) / 16000.0).sin())
                            .abs()
                    })
                    .fold(0.0f32, f32::max)
            })
            .fold(f32::MAX, f32::min)
    }

    #[test]
    fn clip_resampling_keeps_length_and_pitch() {
        for rate in [8000, 22050, 44100, 48000] {
            let x = tone(rate as usize, rate, 1000.0);
            let y = resample_clip(&x, rate, 16000).unwrap();
            assert!((y.len() as i64 - 16000).abs() <= 1, "{rate}: {}", y.len());
            // Same tone, allowing the sub-sample delay the resampler rounds off.
            let err = best_fit_error(&y, 1000.0);
            assert!(err < 0.02, "{rate}: {err}");
        }
    }

    #[test]
    fn streaming_matches_rate_in_odd_pieces() {
        for rate in [44100u32, 48000] {
            let mut r = StreamResampler::new(rate, 16000).unwrap();
            let x = tone(rate as usize * 2, rate, 440.0);
            let mut out = Vec::new();
            let mut i = 0;
            let mut k = 1;
            while i < x.len() {
                let n = (k * 37 % 1500).min(x.len() - i);
                r.process(&x[i..i + n], &mut out).unwrap();
                i += n;
                k += 1;
            }
            // Two seconds in, two seconds out (the first `delay` of them the filter's
            // lead-in), less at most the last 10 ms chunk it holds until more comes.
            let held = 32000 - out.len() as i64;
            assert!(
                (0..=160).contains(&held),
                "{rate}: {} out of 32000",
                out.len()
            );
            // Past the delay, the output is the same tone at 16 kHz.
            let d = r.delay();
            let want = tone(32000, 16000, 440.0);
            let err = (4000..out.len().min(30000))
                .map(|i| (out[i] - want[i - d]).abs())
                .fold(0.0f32, f32::max);
            assert!(err < 0.05, "{rate}: {err}");
        }
    }
}
