//! Reading and writing audio files: WAV of any rate, channel count and sample
//! format (8/16/24/32-bit int, 32-bit float) in, 16 kHz mono f32 clips out.
//! Every failure names the file; nothing here panics on a malformed file.
use crate::audio::resample;
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// The rate the whole pipeline works at after capture/decoding.
pub const SAMPLE_RATE: u32 = 16_000;
/// Rates outside this range are refused as nonsense rather than resampled.
pub const MIN_RATE: u32 = 1_000;
pub const MAX_RATE: u32 = 768_000;
pub const MAX_CHANNELS: u16 = 64;

/// A WAV file opened for streaming: yields interleaved f32 frames in chunks, so that
/// a 10-hour recording never has to fit in memory.
pub struct WavStream {
    reader: hound::WavReader<BufReader<File>>,
    spec: hound::WavSpec,
    path: String,
    frames_read: u64,
}

impl WavStream {
    pub fn open(path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        let reader = hound::WavReader::open(path).map_err(|e| match e {
            // What hound cannot read: say what the file is and how to convert it.
            hound::Error::FormatError(_) | hound::Error::Unsupported => match sniff(path) {
                Some(what) => anyhow::anyhow!(
                    "{name}: {what}, which listen does not read; convert it to a 16-bit WAV: sox {name} -b 16 out.wav (or ffmpeg -i {name} out.wav)"
                ),
                None => describe(&name, e),
            },
            e => describe(&name, e),
        })?;
        let spec = reader.spec();
        check_spec(&name, &spec)?;
        Ok(WavStream {
            reader,
            spec,
            path: name,
            frames_read: 0,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.spec.sample_rate
    }

    pub fn channels(&self) -> usize {
        self.spec.channels as usize
    }

    /// Number of frames the header announces (it may lie; reading stops at the real end).
    pub fn frames_announced(&self) -> u64 {
        self.reader.duration() as u64
    }

    /// Reads up to `max_frames` frames of interleaved samples into `out` (cleared first).
    /// Returns the number of whole frames read; 0 at the end of the file. On an error
    /// (a file cut short), `out` holds the samples read before it.
    pub fn read_chunk(&mut self, out: &mut Vec<f32>, max_frames: usize) -> Result<usize> {
        out.clear();
        let want = max_frames * self.channels();
        let spec = self.spec;
        match spec.sample_format {
            hound::SampleFormat::Float => {
                if spec.bits_per_sample != 32 {
                    bail!(
                        "{}: {}-bit float WAV is not supported (use 32-bit float or integer PCM)",
                        self.path,
                        spec.bits_per_sample
                    );
                }
                for s in self.reader.samples::<f32>().take(want) {
                    let v = s.map_err(|e| describe(&self.path, e))?;
                    out.push(if v.is_finite() { v } else { 0.0 });
                }
            }
            hound::SampleFormat::Int => {
                let scale = 1.0 / (1u64 << (spec.bits_per_sample - 1)) as f32;
                for s in self.reader.samples::<i32>().take(want) {
                    let v = s.map_err(|e| describe(&self.path, e))?;
                    out.push(v as f32 * scale);
                }
            }
        }
        let frames = out.len() / self.channels();
        out.truncate(frames * self.channels());
        self.frames_read += frames as u64;
        Ok(frames)
    }
}

fn check_spec(name: &str, spec: &hound::WavSpec) -> Result<()> {
    if spec.channels == 0 || spec.channels > MAX_CHANNELS {
        bail!(
            "{name}: WAV header says {} channels; not a usable audio file",
            spec.channels
        );
    }
    if !(MIN_RATE..=MAX_RATE).contains(&spec.sample_rate) {
        bail!(
            "{name}: WAV header says {} Hz; not a usable sample rate",
            spec.sample_rate
        );
    }
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, 8 | 16 | 24 | 32) | (hound::SampleFormat::Float, 32) => Ok(()),
        (f, b) => bail!(
            "{name}: unsupported sample format ({b}-bit {f:?}); convert it to a 16-bit WAV: sox {name} -b 16 out.wav (or ffmpeg -i {name} out.wav)"
        ),
    }
}

fn describe(name: &str, e: hound::Error) -> anyhow::Error {
    match e {
        hound::Error::IoError(io)
            if io.kind() == std::io::ErrorKind::UnexpectedEof
                || io.to_string().contains("enough bytes") =>
        {
            anyhow::anyhow!("{name}: truncated WAV file")
        }
        hound::Error::IoError(io) => anyhow::anyhow!("{name}: cannot read: {io}"),
        hound::Error::FormatError(m) => anyhow::anyhow!("{name}: not a valid WAV file ({m})"),
        hound::Error::Unsupported => anyhow::anyhow!("{name}: unsupported WAV variant"),
        other => anyhow::anyhow!("{name}: {other}"),
    }
}

/// What a file that is not a readable WAV is, from its first bytes: another container
/// (MP3, Ogg, FLAC, AIFF...) or a WAV of an encoding listen does not read (A-law,
/// µ-law, ADPCM, 64-bit float...). None when it is neither recognisable nor a WAV.
pub fn sniff(path: &Path) -> Option<String> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let n = File::open(path).ok()?.read(&mut head).ok()?;
    let h = &head[..n];
    let other = |what: &str| Some(format!("an {what} file, not a WAV"));
    match h {
        [b'I', b'D', b'3', ..] => return other("MP3"),
        [0xFF, b, ..] if b & 0xE0 == 0xE0 => return other("MP3 (or AAC)"),
        [b'O', b'g', b'g', b'S', ..] => return other("Ogg (Vorbis or Opus)"),
        [b'f', b'L', b'a', b'C', ..] => return Some("a FLAC file, not a WAV".into()),
        [b'F', b'O', b'R', b'M', ..] => return other("AIFF"),
        [_, _, _, _, b'f', b't', b'y', b'p', ..] => return other("MP4/M4A"),
        _ => {}
    }
    if h.len() < 36 || &h[..4] != b"RIFF" || &h[8..12] != b"WAVE" {
        return None;
    }
    // The first chunk is nearly always `fmt `; its format tag and bit depth.
    if &h[12..16] != b"fmt " {
        return None;
    }
    let mut tag = u16::from_le_bytes([h[20], h[21]]);
    let bits = u16::from_le_bytes([h[34], h[35]]);
    if tag == 0xFFFE && h.len() >= 46 {
        // WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
        tag = u16::from_le_bytes([h[44], h[45]]);
    }
    let encoding = match tag {
        1 => format!("{bits}-bit integer PCM"),
        2 | 0x11 => "ADPCM".to_string(),
        3 => format!("{bits}-bit float"),
        6 => "A-law".to_string(),
        7 => "µ-law".to_string(),
        0x55 => "MP3-in-WAV".to_string(),
        t => format!("format {t:#06x}"),
    };
    Some(format!("a WAV of {encoding} samples"))
}

/// Averages interleaved frames into one channel, into `mono` (cleared first; no
/// allocation once it has grown). Files and the live engine both mix with it.
pub fn mix_to_mono(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    if channels <= 1 {
        mono.extend_from_slice(interleaved);
    } else {
        let c = channels as f32;
        mono.extend(
            interleaved
                .chunks_exact(channels)
                .map(|f| f.iter().sum::<f32>() / c),
        );
    }
}

/// Reads a whole file (at most `max_seconds` of it) as 16 kHz mono.
pub fn read_mono_16k(path: &Path, max_seconds: f32) -> Result<Vec<f32>> {
    let mut wav = WavStream::open(path)?;
    let rate = wav.sample_rate();
    let max_frames = (max_seconds as f64 * rate as f64) as usize;
    let mut all = Vec::new();
    let (mut chunk, mut mono) = (Vec::new(), Vec::new());
    while all.len() < max_frames {
        let n = wav.read_chunk(&mut chunk, (max_frames - all.len()).min(65_536))?;
        if n == 0 {
            break;
        }
        mix_to_mono(&chunk, wav.channels(), &mut mono);
        all.extend_from_slice(&mono);
    }
    if all.is_empty() {
        bail!("{}: no audio in file", path.display());
    }
    if rate != SAMPLE_RATE {
        all = resample::resample_clip(&all, rate, SAMPLE_RATE)
            .with_context(|| format!("{}: cannot resample from {rate} Hz", path.display()))?;
    }
    Ok(all)
}

/// Reads a clip for training or recognition: 16 kHz mono, padded with silence or
/// trimmed to exactly `len` samples.
pub fn read_clip(path: &Path, len: usize) -> Result<Vec<f32>> {
    // Read a little more than needed so a resampler has context at the end.
    let secs = (len as f32 / SAMPLE_RATE as f32) + 0.5;
    let mut x = read_mono_16k(path, secs)?;
    x.resize(len, 0.0);
    Ok(x)
}

/// Writes 16-bit mono PCM atomically (temp file + rename).
pub fn write_wav(path: &Path, samples: &[f32], rate: u32) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let tmp = crate::util::sibling(path, &format!(".tmp-{}", std::process::id()));
    let result = (|| -> Result<()> {
        let mut w = hound::WavWriter::create(&tmp, spec)?;
        for &s in samples {
            w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
        }
        w.finalize()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context(format!("cannot write {}", path.display())));
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The span of `x` that holds the sound (a word in a clip): from the first to the last
/// 10 ms frame whose level is within 20 dB of the loudest frame (and above -50 dBFS).
/// None for silence.
pub fn voiced_span(x: &[f32], rate: u32) -> Option<(usize, usize)> {
    voiced_span_above(x, rate, 10f32.powf(-50.0 / 20.0))
}

/// [`voiced_span`] with the lowest level that counts as sound given (e.g. a few times
/// the measured room noise).
pub fn voiced_span_above(x: &[f32], rate: u32, min_level: f32) -> Option<(usize, usize)> {
    let hop = (rate as usize / 100).max(1);
    let levels: Vec<f32> = x.chunks(hop).map(rms).collect();
    let peak = levels.iter().copied().fold(0.0f32, f32::max);
    let floor = (peak * 0.1).max(min_level);
    if peak < floor {
        return None;
    }
    let first = levels.iter().position(|&l| l >= floor)?;
    let last = levels.iter().rposition(|&l| l >= floor)?;
    Some((first * hop, ((last + 1) * hop).min(x.len())))
}

/// Root-mean-square level.
pub fn rms(x: &[f32]) -> f32 {
    if x.is_empty() {
        return 0.0;
    }
    (x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_raw(
        path: &Path,
        spec: hound::WavSpec,
        f: impl Fn(&mut hound::WavWriter<std::io::BufWriter<File>>),
    ) {
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        f(&mut w);
        w.finalize().unwrap();
    }

    #[test]
    fn reads_every_sample_format_as_the_same_tone() {
        let dir = tempfile::tempdir().unwrap();
        let tone = |i: usize, rate: u32| {
            (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin() * 0.5
        };
        let cases: Vec<(u16, u16, hound::SampleFormat, u32)> = vec![
            (1, 8, hound::SampleFormat::Int, 16000),
            (2, 16, hound::SampleFormat::Int, 44100),
            (1, 24, hound::SampleFormat::Int, 48000),
            (2, 32, hound::SampleFormat::Int, 8000),
            (2, 32, hound::SampleFormat::Float, 22050),
        ];
        for (ch, bits, fmt, rate) in cases {
            let p = dir.path().join(format!("t{ch}{bits}{fmt:?}{rate}.wav"));
            let spec = hound::WavSpec {
                channels: ch,
                sample_rate: rate,
                bits_per_sample: bits,
                sample_format: fmt,
            };
            write_raw(&p, spec, |w| {
                for i in 0..rate as usize {
                    for _ in 0..ch {
                        let v = tone(i, rate);
                        match (fmt, bits) {
                            (hound::SampleFormat::Float, _) => w.write_sample(v).unwrap(),
                            (_, 8) => w.write_sample((v * 127.0) as i8).unwrap(),
                            (_, 16) => w.write_sample((v * 32767.0) as i16).unwrap(),
                            (_, b) => w
                                .write_sample((v * ((1i64 << (b - 1)) - 1) as f32) as i32)
                                .unwrap(),
                        }
                    }
                }
            });
            let x = read_clip(&p, 16000).unwrap();
            assert_eq!(x.len(), 16000);
            // Same tone at 16 kHz (up to the resampler's sub-sample delay), away from the edges.
            let err = crate::audio::resample::tests::best_fit_error(
                &x.iter().map(|v| v * 2.0).collect::<Vec<_>>(),
                440.0,
            ) / 2.0;
            let tol = if bits == 8 { 0.03 } else { 0.01 };
            assert!(err < tol, "{}: max error {err}", p.display());
        }
    }

    #[test]
    fn short_clips_are_padded_and_long_ones_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("short.wav");
        write_wav(&p, &vec![0.25; 4000], 16000).unwrap();
        let x = read_clip(&p, 16000).unwrap();
        assert_eq!(x.len(), 16000);
        assert!((x[100] - 0.25).abs() < 1e-3 && x[8000] == 0.0);
        let p = dir.path().join("long.wav");
        write_wav(&p, &vec![0.1; 48000], 16000).unwrap();
        assert_eq!(read_clip(&p, 16000).unwrap().len(), 16000);
    }

    #[test]
    fn bad_files_get_errors_naming_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("noise.wav");
        std::fs::write(&p, b"this is not audio at all").unwrap();
        let e = format!("{:#}", read_clip(&p, 16000).unwrap_err());
        assert!(
            e.contains("noise.wav") && e.contains("not a valid WAV"),
            "{e}"
        );
        let p = dir.path().join("empty.wav");
        write_wav(&p, &[], 16000).unwrap();
        let e = format!("{:#}", read_clip(&p, 16000).unwrap_err());
        assert!(e.contains("empty.wav") && e.contains("no audio"), "{e}");
        let p = dir.path().join("trunc.wav");
        write_wav(&p, &vec![0.1; 16000], 16000).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2 + 1]).unwrap();
        let e = format!("{:#}", read_clip(&p, 16000).unwrap_err());
        assert!(e.contains("trunc.wav") && e.contains("truncated"), "{e}");
    }
}
