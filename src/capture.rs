//! Microphone capture with cpal: device listing and selection (case-insensitive
//! substring), opened at the device's own rate, channel count and sample format. The
//! audio callback only converts samples to f32 and pushes whole frames into a lock-free
//! SPSC ring buffer (ringbuf): no allocation, no lock, no printing. Overruns (the worker
//! falling behind) are counted; stream errors raise a flag the worker reads.
use anyhow::{anyhow, bail, Result};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceInfo {
    pub name: String,
    pub default_rate: u32,
    pub channels: u16,
    pub format: String,
    pub is_default: bool,
}

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|x| x.name().to_string())
        .unwrap_or_else(|_| d.to_string())
}

fn host() -> cpal::Host {
    cpal::default_host()
}

/// Every input device with its default configuration.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    let host = host();
    let default = host.default_input_device().map(|d| device_name(&d));
    let devices = host
        .input_devices()
        .map_err(|e| anyhow!("cannot list audio input devices: {e}"))?;
    let mut out = Vec::new();
    for d in devices {
        let name = device_name(&d);
        if let Ok(c) = d.default_input_config() {
            out.push(DeviceInfo {
                is_default: default.as_deref() == Some(name.as_str()),
                name,
                default_rate: c.sample_rate(),
                channels: c.channels(),
                format: format!("{}", c.sample_format()),
            });
        }
    }
    Ok(out)
}

/// Counters shared between the audio callback and the worker.
#[derive(Default)]
pub struct CaptureStats {
    /// Samples dropped because the ring buffer was full.
    pub overrun_samples: AtomicU64,
    /// Times the callback had to drop samples.
    pub overruns: AtomicU64,
    /// Samples delivered by the device.
    pub captured: AtomicU64,
    /// The stream reported an error (device gone, server died...).
    pub failed: AtomicBool,
}

/// An open input stream and the consumer end of its ring buffer.
pub struct Capture {
    _stream: cpal::Stream,
    pub consumer: HeapCons<f32>,
    pub stats: Arc<CaptureStats>,
    pub name: String,
    pub rate: u32,
    pub channels: usize,
    pub format: String,
}

/// Opens `want` (a case-insensitive substring of the device name) or the default input.
/// `buffer_secs` of audio fit in the ring buffer before overruns are counted.
pub fn open(want: Option<&str>, buffer_secs: f32) -> Result<Capture> {
    let host = host();
    let device = match want {
        None => host
            .default_input_device()
            .ok_or_else(|| anyhow!("no audio input device found (is a microphone connected? try --list-devices, or --input FILE.wav)"))?,
        Some(w) => {
            let needle = w.to_lowercase();
            let devices = host.input_devices().map_err(|e| anyhow!("cannot list audio input devices: {e} (try --input FILE.wav)"))?;
            let matches: Vec<cpal::Device> = devices.filter(|d| device_name(d).to_lowercase().contains(&needle)).collect();
            match matches.len() {
                0 => bail!("no input device matches '{w}' (see --list-devices)"),
                _ => matches.into_iter().next().expect("one match"),
            }
        }
    };
    let name = device_name(&device);
    // The device's own configuration; never ask the user to change their device.
    let mut candidates = Vec::new();
    if let Ok(c) = device.default_input_config() {
        candidates.push(c);
    }
    if let Ok(cs) = device.supported_input_configs() {
        for c in cs {
            let rate = if c.min_sample_rate() <= 48_000 && c.max_sample_rate() >= 48_000 {
                48_000
            } else {
                c.max_sample_rate()
            };
            candidates.push(c.with_sample_rate(rate));
        }
    }
    if candidates.is_empty() {
        bail!("input device '{name}' offers no usable configuration (see --list-devices)");
    }
    let mut last_err = String::new();
    for c in candidates {
        let (rate, channels, format) = (c.sample_rate(), c.channels() as usize, c.sample_format());
        if channels == 0 || !(crate::audio::MIN_RATE..=crate::audio::MAX_RATE).contains(&rate) {
            continue;
        }
        let capacity = ((rate as f32 * buffer_secs) as usize).max(4096) * channels;
        let (prod, consumer) = HeapRb::<f32>::new(capacity).split();
        let stats = Arc::new(CaptureStats::default());
        let config = cpal::StreamConfig {
            channels: channels as u16,
            sample_rate: rate,
            buffer_size: cpal::BufferSize::Default,
        };
        let built = match format {
            SampleFormat::F32 => build::<f32>(&device, &config, prod, stats.clone()),
            SampleFormat::I16 => build::<i16>(&device, &config, prod, stats.clone()),
            SampleFormat::I32 => build::<i32>(&device, &config, prod, stats.clone()),
            SampleFormat::U16 => build::<u16>(&device, &config, prod, stats.clone()),
            SampleFormat::I8 => build::<i8>(&device, &config, prod, stats.clone()),
            SampleFormat::U8 => build::<u8>(&device, &config, prod, stats.clone()),
            SampleFormat::F64 => build::<f64>(&device, &config, prod, stats.clone()),
            other => Err(anyhow!("sample format {other} is not supported")),
        };
        match built.and_then(|s| s.play().map(|_| s).map_err(|e| anyhow!("{e}"))) {
            Ok(stream) => {
                return Ok(Capture {
                    _stream: stream,
                    consumer,
                    stats,
                    name,
                    rate,
                    channels,
                    format: format!("{format}"),
                });
            }
            Err(e) => last_err = format!("{e:#}"),
        }
    }
    bail!("input device '{name}' refused every configuration ({last_err}); try another --device (see --list-devices)")
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    mut prod: HeapProd<f32>,
    stats: Arc<CaptureStats>,
) -> Result<cpal::Stream>
where
    T: SizedSample + Sample,
    f32: FromSample<T>,
{
    let channels = config.channels as usize;
    let err_stats = stats.clone();
    device
        .build_input_stream::<T, _, _>(
            *config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                // Whole frames only, so channels stay aligned after an overrun.
                let room = prod.vacant_len() / channels * channels;
                let n = data.len().min(room);
                prod.push_iter(data[..n].iter().map(|&s| f32::from_sample(s)));
                stats.captured.fetch_add(n as u64, Ordering::Relaxed);
                if n < data.len() {
                    stats
                        .overrun_samples
                        .fetch_add((data.len() - n) as u64, Ordering::Relaxed);
                    stats.overruns.fetch_add(1, Ordering::Relaxed);
                }
            },
            move |_err| {
                err_stats.failed.store(true, Ordering::SeqCst);
            },
            None,
        )
        .map_err(|e| anyhow!("{e}"))
}

impl Capture {
    /// Moves up to `max` available samples (whole frames) into `out` (cleared first).
    pub fn read(&mut self, out: &mut Vec<f32>, max: usize) -> usize {
        out.clear();
        let avail = self.consumer.occupied_len().min(max) / self.channels * self.channels;
        out.resize(avail, 0.0);
        let n = self.consumer.pop_slice(out);
        out.truncate(n);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The callback's logic on its own: whole frames, overruns counted, order kept.
    #[test]
    fn ring_buffer_keeps_frames_whole_and_counts_overruns() {
        for (channels, cap) in [(1usize, 1000usize), (2, 1001)] {
            let (mut prod, mut cons) = HeapRb::<f32>::new(cap).split();
            let stats = CaptureStats::default();
            let mut push = |data: &[i16]| {
                let room = prod.vacant_len() / channels * channels;
                let n = data.len().min(room);
                prod.push_iter(data[..n].iter().map(|&s| f32::from_sample(s)));
                if n < data.len() {
                    stats
                        .overrun_samples
                        .fetch_add((data.len() - n) as u64, Ordering::Relaxed);
                    stats.overruns.fetch_add(1, Ordering::Relaxed);
                }
            };
            let block: Vec<i16> = (0..600).map(|i| (i * 10) as i16).collect();
            push(&block);
            push(&block);
            assert_eq!(stats.overruns.load(Ordering::Relaxed), 1);
            let kept = cons.occupied_len();
            assert_eq!(kept % channels, 0);
            assert_eq!(
                stats.overrun_samples.load(Ordering::Relaxed) as usize,
                1200 - kept
            );
            let mut out = vec![0.0; kept];
            cons.pop_slice(&mut out);
            assert!((out[1] - 10.0 / 32768.0).abs() < 1e-6);
        }
    }
}
