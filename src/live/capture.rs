//! Microphone capture with cpal: device listing and selection (case-insensitive
//! substring of the device's id or name), opened at the device's own rate, channel count
//! and sample format. The audio callback only converts samples to f32 and pushes whole
//! frames into a lock-free SPSC ring buffer (ringbuf): no allocation, no lock, no
//! printing. Overruns (the worker falling behind) are counted; stream errors set atomic
//! flags the worker reads.
use crate::util::QuietStderr;
use anyhow::{anyhow, bail, Result};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

#[derive(Clone, Debug, serde::Serialize)]
pub struct DeviceInfo {
    /// Short identifier (the ALSA PCM name on Linux: `default`, `pulse`, `hw:1,0`...).
    pub id: String,
    /// Human-readable description.
    pub name: String,
    pub default_rate: u32,
    pub channels: u16,
    pub format: String,
    pub is_default: bool,
}

/// (id, name) of a device.
fn describe(d: &cpal::Device) -> (String, String) {
    match d.description() {
        Ok(desc) => {
            let id = desc.driver().unwrap_or(desc.name()).to_string();
            (id, desc.name().to_string())
        }
        Err(_) => (d.to_string(), d.to_string()),
    }
}

fn host() -> cpal::Host {
    cpal::default_host()
}

/// Every input device with its default configuration.
pub fn list_devices() -> Result<Vec<DeviceInfo>> {
    let _quiet = QuietStderr::new();
    let host = host();
    let default = host.default_input_device().map(|d| describe(&d).0);
    let devices = host
        .input_devices()
        .map_err(|e| anyhow!("cannot list audio input devices: {e}"))?;
    let mut out = Vec::new();
    for d in devices {
        let (id, name) = describe(&d);
        if let Ok(c) = d.default_input_config() {
            out.push(DeviceInfo {
                is_default: default.as_deref() == Some(id.as_str()),
                id,
                name,
                default_rate: c.sample_rate(),
                channels: c.channels(),
                format: format!("{}", c.sample_format()),
            });
        }
    }
    Ok(out)
}

const NO_GAP: u64 = u64::MAX;

/// Counters shared between the audio callback and the worker.
pub struct CaptureStats {
    /// Samples dropped because the ring buffer was full.
    pub overrun_samples: AtomicU64,
    /// Times the callback had to drop samples.
    pub overruns: AtomicU64,
    /// Samples delivered by the device.
    pub captured: AtomicU64,
    /// Overruns reported by the device itself (xruns: the audio thread was not scheduled).
    pub xruns: AtomicU64,
    /// Where in the captured samples the first drop the worker has not yet taken
    /// account of happened ([`NO_GAP`] when none).
    gap_at: AtomicU64,
    /// Non-zero once the stream reported a fatal error (see [`CaptureStats::failure`]).
    fatal: AtomicU8,
}

impl Default for CaptureStats {
    fn default() -> Self {
        CaptureStats {
            overrun_samples: AtomicU64::new(0),
            overruns: AtomicU64::new(0),
            captured: AtomicU64::new(0),
            xruns: AtomicU64::new(0),
            gap_at: AtomicU64::new(NO_GAP),
            fatal: AtomicU8::new(0),
        }
    }
}

impl CaptureStats {
    /// Why the stream died, if it did.
    pub fn failure(&self) -> Option<&'static str> {
        match self.fatal.load(Ordering::SeqCst) {
            0 => None,
            1 => Some("the device is no longer available (disconnected?)"),
            2 => Some("the sound server or audio subsystem went away"),
            3 => Some("the stream was invalidated (the device changed its configuration)"),
            4 => Some("permission to use the device was withdrawn"),
            _ => Some("the stream stopped with an error"),
        }
    }

    fn on_error(&self, kind: cpal::ErrorKind) {
        use cpal::ErrorKind as K;
        let code = match kind {
            K::Xrun => {
                self.xruns.fetch_add(1, Ordering::Relaxed);
                return;
            }
            // Not fatal: the stream goes on (a dead stream that says nothing is caught by
            // the worker's no-audio watchdog).
            K::DeviceChanged | K::RealtimeDenied | K::BackendError | K::Other => return,
            K::DeviceNotAvailable => 1,
            K::HostUnavailable => 2,
            K::StreamInvalidated => 3,
            K::PermissionDenied => 4,
            _ => 5,
        };
        self.fatal.store(code, Ordering::SeqCst);
    }
}

/// The audio callback's whole job: convert and push whole frames, count what does not fit.
pub fn push_frames<T>(prod: &mut HeapProd<f32>, stats: &CaptureStats, channels: usize, data: &[T])
where
    T: Sample,
    f32: FromSample<T>,
{
    let room = prod.vacant_len() / channels * channels;
    let n = data.len().min(room);
    prod.push_iter(data[..n].iter().map(|&s| f32::from_sample(s)));
    let captured = stats.captured.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
    if n < data.len() {
        // Only the first gap's place is kept until the worker reaches it; later drops
        // count towards it (their audio is lost either way, and the clock stays right).
        let _ =
            stats
                .gap_at
                .compare_exchange(NO_GAP, captured, Ordering::AcqRel, Ordering::Relaxed);
        stats
            .overrun_samples
            .fetch_add((data.len() - n) as u64, Ordering::Relaxed);
        stats.overruns.fetch_add(1, Ordering::Relaxed);
    }
}

/// A ring buffer holding `secs` of audio, and its counters.
pub fn ring(
    rate: u32,
    channels: usize,
    secs: f32,
) -> (HeapProd<f32>, HeapCons<f32>, Arc<CaptureStats>) {
    let capacity = ((rate as f32 * secs) as usize).max(4096) * channels;
    let (prod, cons) = HeapRb::<f32>::new(capacity).split();
    (prod, cons, Arc::new(CaptureStats::default()))
}

/// An open input stream and the consumer end of its ring buffer.
pub struct Capture {
    /// None once abandoned (see [`Capture::abandon`]).
    stream: Option<cpal::Stream>,
    pub consumer: HeapCons<f32>,
    pub stats: Arc<CaptureStats>,
    /// Device id and name.
    pub id: String,
    pub name: String,
    pub rate: u32,
    pub channels: usize,
    pub format: String,
    /// When the stream started, to tell a live input from one that runs ahead of time.
    started: std::time::Instant,
    gaps: GapReader,
}

/// Opens `want` (a case-insensitive substring of the device's id or name; an exact id
/// wins) or the default input. `buffer_secs` of audio fit in the ring buffer before
/// overruns are counted.
pub fn open(want: Option<&str>, buffer_secs: f32) -> Result<Capture> {
    let quiet = QuietStderr::new();
    let host = host();
    let device = match want {
        None => host.default_input_device().ok_or_else(|| {
            anyhow!("no audio input device found (is a microphone connected? see --list-devices, or run on a recording with --input FILE.wav)")
        })?,
        Some(w) => {
            let needle = w.to_lowercase();
            let devices = host.input_devices().map_err(|e| {
                anyhow!("cannot list audio input devices: {e} (try --input FILE.wav)")
            })?;
            let mut matches: Vec<cpal::Device> = devices
                .filter(|d| {
                    let (id, name) = describe(d);
                    id.to_lowercase().contains(&needle) || name.to_lowercase().contains(&needle)
                })
                .collect();
            if let Some(i) = matches.iter().position(|d| describe(d).0.to_lowercase() == needle) {
                matches.swap(0, i);
            }
            match matches.into_iter().next() {
                Some(d) => d,
                None => bail!("no input device matches '{w}' (see --list-devices for the names)"),
            }
        }
    };
    let (id, name) = describe(&device);
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
    let what = if want.is_none() {
        format!("the default input device '{id}'")
    } else {
        format!("input device '{id}' ({name})")
    };
    if candidates.is_empty() {
        bail!("{what} cannot be opened (no sound card or sound server?); pick another with --device (see --list-devices), or run on a recording with --input FILE.wav");
    }
    let mut last_err = String::new();
    for c in candidates {
        let (rate, channels, format) = (c.sample_rate(), c.channels() as usize, c.sample_format());
        if channels == 0
            || !(crate::audio::wav::MIN_RATE..=crate::audio::wav::MAX_RATE).contains(&rate)
        {
            last_err = format!("{rate} Hz, {channels} channels");
            continue;
        }
        let (prod, consumer, stats) = ring(rate, channels, buffer_secs);
        let config = cpal::StreamConfig {
            channels: channels as u16,
            sample_rate: rate,
            // ~40 ms device periods: small next to the detector's own delay, large
            // enough that the audio thread does not spin. Measured through ALSA's pulse
            // plugin over 20 s: the default period cost 3.7% of a core in cpal's thread,
            // 40 ms 0.2% (20 ms was worse than the default, 15%).
            buffer_size: match c.buffer_size() {
                cpal::SupportedBufferSize::Range { min, max } => {
                    cpal::BufferSize::Fixed((rate / 25).clamp(*min, *max))
                }
                _ => cpal::BufferSize::Default,
            },
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
                drop(quiet);
                return Ok(Capture {
                    stream: Some(stream),
                    consumer,
                    stats,
                    id,
                    name,
                    rate,
                    channels,
                    format: format!("{format}"),
                    started: std::time::Instant::now(),
                    gaps: GapReader::default(),
                });
            }
            Err(e) => last_err = format!("{e:#}"),
        }
    }
    bail!("{what} refused every configuration it offers (last: {last_err}); pick another with --device (see --list-devices)")
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
                push_frames(&mut prod, &stats, channels, data)
            },
            move |err| err_stats.on_error(err.kind()),
            None,
        )
        .map_err(|e| anyhow!("{e}"))
}

impl Capture {
    /// Gives up on a stream whose device died. Dropping it would join cpal's audio
    /// thread, which can be stuck for good inside a sound library whose server went away
    /// (seen with ALSA's pulse plugin); the thread is left behind for the process's exit.
    pub fn abandon(&mut self) {
        if let Some(s) = self.stream.take() {
            std::mem::forget(s);
        }
    }

    /// Fails (and gives the stream up) when the device reported a fatal error or has
    /// delivered nothing since `last_audio` for 3 s.
    pub fn check_alive(&mut self, last_audio: std::time::Instant) -> Result<()> {
        if let Some(why) = self.stats.failure() {
            self.abandon();
            bail!(
                "the audio device '{}' stopped: {why}; check it with --list-devices",
                self.id
            );
        }
        if last_audio.elapsed() > std::time::Duration::from_secs(3) {
            self.abandon();
            bail!("the audio device '{}' delivered no audio for 3 s (disconnected, or the sound server went away?); check it with --list-devices", self.id);
        }
        self.check_pace()
    }

    /// Fails when the device delivers audio far faster than real time (ALSA's `null`,
    /// a file-backed PCM): not a live input, and every overrun it causes would be
    /// blamed on a slow machine.
    pub fn check_pace(&mut self) -> Result<()> {
        let secs = self.started.elapsed().as_secs_f64();
        let delivered = self.stats.captured.load(Ordering::Relaxed)
            + self.stats.overrun_samples.load(Ordering::Relaxed);
        let audio_secs = delivered as f64 / self.channels.max(1) as f64 / self.rate as f64;
        // A live input is never more than its buffer ahead of the clock: allow a second.
        if audio_secs > 3.0 * secs && audio_secs > secs + 1.0 {
            let pace = audio_secs / secs.max(1e-3);
            self.abandon();
            bail!(
                "the audio device '{}' delivers audio {pace:.0} times faster than real time: not a live input; pick a microphone with --device (see --list-devices)",
                self.id
            );
        }
        Ok(())
    }

    /// Moves up to `max` available samples (whole frames) into `out` (cleared first),
    /// passing over gaps.
    pub fn read(&mut self, out: &mut Vec<f32>, max: usize) -> usize {
        loop {
            if let Read::Samples(n) = self.read_or_gap(out, max) {
                return n;
            }
        }
    }

    /// As [`Capture::read`], but stops at a gap (audio dropped because the worker fell
    /// behind) and reports it, so that the clock can count it.
    pub fn read_or_gap(&mut self, out: &mut Vec<f32>, max: usize) -> Read {
        self.gaps
            .read(&mut self.consumer, &self.stats, self.channels, out, max)
    }
}

/// The worker's side of the ring buffer: whole frames only.
/// The worker's place in the captured samples, to find the gaps in them.
#[derive(Default)]
pub struct GapReader {
    /// Samples read from the ring so far.
    read: u64,
    /// Dropped samples already reported.
    reported: u64,
}

/// What one read found: samples in `out`, or (with none) a gap of dropped frames.
#[derive(Debug, PartialEq, Eq)]
pub enum Read {
    Samples(usize),
    Gap(u64),
}

impl GapReader {
    /// Reads up to `max` samples (whole frames) into `out`, stopping at a gap; at the
    /// gap itself, reports how many frames were dropped there.
    pub fn read(
        &mut self,
        cons: &mut HeapCons<f32>,
        stats: &CaptureStats,
        channels: usize,
        out: &mut Vec<f32>,
        max: usize,
    ) -> Read {
        let gap = stats.gap_at.load(Ordering::Acquire);
        if gap == self.read {
            stats.gap_at.store(NO_GAP, Ordering::Release);
            let dropped = stats.overrun_samples.load(Ordering::Acquire) - self.reported;
            self.reported += dropped;
            out.clear();
            return Read::Gap(dropped / channels as u64);
        }
        let max = match gap {
            NO_GAP => max,
            g => max.min((g - self.read) as usize),
        };
        let n = read_frames(cons, channels, out, max);
        self.read += n as u64;
        Read::Samples(n)
    }
}

pub fn read_frames(
    cons: &mut HeapCons<f32>,
    channels: usize,
    out: &mut Vec<f32>,
    max: usize,
) -> usize {
    out.clear();
    let avail = cons.occupied_len().min(max) / channels * channels;
    out.resize(avail, 0.0);
    let n = cons.pop_slice(out);
    out.truncate(n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::resample::StreamResampler;

    fn tone(n: usize, rate: u32, f: f32) -> Vec<f32> {
        (0..n)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * f * i as f32 / rate as f32).sin())
            .collect()
    }

    /// The device side (the real callback function, in device-sized blocks) through the ring
    /// buffer to the worker side (read in other block sizes, mixed, resampled): at 44.1 and
    /// 48 kHz, mono and stereo, i16 and f32, the 16 kHz output is the played tone, nothing
    /// lost or reordered.
    fn through_ring<T>(rate: u32, channels: usize, to_t: impl Fn(f32) -> T)
    where
        T: Sample,
        f32: FromSample<T>,
    {
        let x = tone(rate as usize * 2, rate, 440.0);
        // Channel c carries the tone scaled by 1/(c+1); the mono mix is their mean.
        let gain: f32 = (0..channels).map(|c| 1.0 / (c + 1) as f32).sum::<f32>() / channels as f32;
        let device: Vec<T> = x
            .iter()
            .flat_map(|&s| (0..channels).map(move |c| s / (c + 1) as f32))
            .map(&to_t)
            .collect();
        let (mut prod, mut cons, stats) = ring(rate, channels, 0.5);
        let mut resampler = StreamResampler::new(rate, 16_000).unwrap();
        let (mut buf, mut mono, mut out) = (Vec::new(), Vec::new(), Vec::new());
        let period = rate as usize / 100 * channels; // 10 ms device periods
        for (k, block) in device.chunks(period).enumerate() {
            push_frames(&mut prod, &stats, channels, block);
            if k % 3 == 2 {
                read_frames(&mut cons, channels, &mut buf, 7777);
                crate::audio::wav::mix_to_mono(&buf, channels, &mut mono);
                resampler.process(&mono, &mut out).unwrap();
            }
        }
        while read_frames(&mut cons, channels, &mut buf, 7777) > 0 {
            crate::audio::wav::mix_to_mono(&buf, channels, &mut mono);
            resampler.process(&mono, &mut out).unwrap();
        }
        assert_eq!(stats.overruns.load(Ordering::Relaxed), 0);
        assert_eq!(
            stats.captured.load(Ordering::Relaxed) as usize,
            device.len()
        );
        let want: Vec<f32> = out.iter().map(|v| v / gain / 0.5).collect();
        let err = crate::audio::resample::tests::best_fit_error(&want[resampler.delay()..], 440.0);
        assert!(err < 0.02, "{rate} Hz, {channels} ch: error {err}");
    }

    #[test]
    fn ring_and_resampler_at_device_rates_and_formats() {
        for rate in [44_100, 48_000] {
            for channels in [1, 2] {
                through_ring::<f32>(rate, channels, |v| v);
                through_ring::<i16>(rate, channels, |v| (v * 32767.0).round() as i16);
            }
        }
    }

    /// A stalled worker: the callback drops what does not fit (whole frames), counts it,
    /// and the stream goes on normally once the worker reads again.
    #[test]
    fn overrun_is_counted_and_recovers() {
        for channels in [1usize, 2] {
            let (mut prod, mut cons, stats) = ring(8_000, channels, 0.5);
            let cap = ((8_000.0 * 0.5) as usize).max(4096) * channels;
            let block: Vec<i16> = (0..960 * channels).map(|i| i as i16).collect();
            let mut pushed = 0;
            while pushed < cap + block.len() * 2 {
                push_frames(&mut prod, &stats, channels, &block);
                pushed += block.len();
            }
            assert!(stats.overruns.load(Ordering::Relaxed) >= 2);
            let kept = cons.occupied_len();
            assert_eq!(kept % channels, 0, "frames stay whole");
            assert_eq!(
                stats.overrun_samples.load(Ordering::Relaxed) as usize,
                pushed - kept
            );
            let mut out = Vec::new();
            assert_eq!(read_frames(&mut cons, channels, &mut out, usize::MAX), kept);
            assert!((out[1] - 1.0 / 32768.0).abs() < 1e-6, "order kept");
            // The worker caught up: the next block goes through whole.
            let before = stats.overruns.load(Ordering::Relaxed);
            push_frames(&mut prod, &stats, channels, &block);
            assert_eq!(stats.overruns.load(Ordering::Relaxed), before);
            assert_eq!(cons.occupied_len(), block.len());
        }
    }

    /// The worker reads up to the place where audio was dropped, then learns how much
    /// was lost there, then reads on.
    #[test]
    fn a_gap_is_found_where_it_happened_and_says_how_much_was_lost() {
        let channels = 2;
        let (mut prod, mut cons, stats) = ring(8_000, channels, 0.5);
        let cap = prod.capacity().get();
        let block: Vec<i16> = vec![7; 1000 * channels];
        let mut pushed = 0;
        while pushed + block.len() <= cap {
            push_frames(&mut prod, &stats, channels, &block);
            pushed += block.len();
        }
        // Two more blocks: the first partly fits, the rest is lost.
        push_frames(&mut prod, &stats, channels, &block);
        push_frames(&mut prod, &stats, channels, &block);
        let lost = 2 * block.len() - (cap - pushed);
        let mut gaps = GapReader::default();
        let mut out = Vec::new();
        let mut before = 0;
        loop {
            match gaps.read(&mut cons, &stats, channels, &mut out, 3000) {
                Read::Samples(n) => before += n,
                Read::Gap(frames) => {
                    assert_eq!(frames as usize * channels, lost);
                    break;
                }
            }
        }
        assert_eq!(before, cap, "every sample before the gap, none after");
        // After it: the audio that came later, and no gap reported again.
        push_frames(&mut prod, &stats, channels, &block);
        assert_eq!(
            gaps.read(&mut cons, &stats, channels, &mut out, usize::MAX),
            Read::Samples(block.len())
        );
        assert_eq!(
            gaps.read(&mut cons, &stats, channels, &mut out, usize::MAX),
            Read::Samples(0)
        );
    }

    #[test]
    fn stream_errors_are_sorted_into_fatal_and_not() {
        let s = CaptureStats::default();
        s.on_error(cpal::ErrorKind::Xrun);
        s.on_error(cpal::ErrorKind::DeviceChanged);
        assert_eq!(s.xruns.load(Ordering::Relaxed), 1);
        assert!(s.failure().is_none());
        s.on_error(cpal::ErrorKind::HostUnavailable);
        assert!(s.failure().unwrap().contains("sound server"));
    }
}
