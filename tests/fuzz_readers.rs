//! Fuzzing the audio and dataset readers with proptest: random bytes, truncated files,
//! WAV headers that lie about their sizes, zero or 65,535 channels, absurd rates and
//! bit depths, empty and 10-minute clips, and training folders full of such files.
//! Every case must end in a correct read or a clean one-line error naming the file: no
//! panic, no hang (each case runs under a watchdog) and no allocation out of proportion
//! to the file (a counting allocator measures each case's peak).
//!
//! `LISTEN_FUZZ_CASES=N cargo test --release --test fuzz_readers -- --nocapture` runs N
//! header cases (default 3,000) and N/20 folder cases, and prints how many ran.
use listen::audio::wav::{self, WavStream};
use listen::learn::dataset;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        System.dealloc(p, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let q = System.realloc(p, layout, new_size);
        if !q.is_null() {
            if new_size >= layout.size() {
                let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MB: usize = 1 << 20;

/// Runs `f` on a helper thread under a watchdog; returns its result and the peak number
/// of bytes allocated above the level at the start (all threads: this file holds a
/// single test, so nothing else runs meanwhile).
fn guarded<T: Send + 'static>(
    what: &str,
    timeout: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(timeout) {
        Ok(v) => (v, PEAK.load(Ordering::Relaxed).saturating_sub(base)),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still running after {timeout:?} (a hang)")
        }
        Err(_) => panic!("{what}: the reader panicked"),
    }
}

/// A WAV file described field by field, so that any field can lie.
#[derive(Debug, Clone)]
struct WavCase {
    format: u16,
    channels: u16,
    rate: u32,
    bits: u16,
    frames: usize,
    extensible: bool,
    riff_size: Option<u32>,
    data_size: Option<u32>,
    block_align: Option<u16>,
    /// An unknown chunk before "data": (declared size, bytes actually present).
    junk_chunk: Option<(u32, usize)>,
    /// Cut the file at this fraction (per mille) of its length.
    truncate: Option<u16>,
    seed: u32,
}

impl WavCase {
    /// Everything in the header is true and supported.
    fn honest(&self) -> bool {
        let supported = matches!((self.format, self.bits), (1, 8 | 16 | 24 | 32) | (3, 32));
        supported
            && (1..=wav::MAX_CHANNELS).contains(&self.channels)
            && (wav::MIN_RATE..=wav::MAX_RATE).contains(&self.rate)
            && self.riff_size.is_none()
            && self.data_size.is_none()
            && self.block_align.is_none()
            && self.junk_chunk.is_none_or(|(d, a)| d as usize == a)
            && self.truncate.is_none()
    }

    fn sample(&self, i: usize) -> f32 {
        // A deterministic pseudo-random signal in [-0.5, 0.5).
        let h = (i as u32 ^ self.seed).wrapping_mul(2_654_435_761);
        (h >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    fn bytes(&self) -> Vec<u8> {
        let bytes_per_sample = (self.bits as usize).div_ceil(8).min(8);
        let n = self.frames * self.channels.min(wav::MAX_CHANNELS) as usize;
        let mut data = Vec::with_capacity(n * bytes_per_sample);
        for i in 0..n {
            let v = self.sample(i);
            match (self.format, bytes_per_sample) {
                (3, 4) => data.extend_from_slice(&v.to_le_bytes()),
                (_, 1) => data.push((v * 255.0 + 128.0) as u8),
                (_, b) => {
                    let x = (v as f64 * (1u64 << (8 * b - 1)) as f64) as i64;
                    data.extend_from_slice(&x.to_le_bytes()[..b]);
                }
            }
        }
        let fmt_len: u32 = if self.extensible { 40 } else { 16 };
        let align = self.block_align.unwrap_or(
            (self.channels as u32 * bytes_per_sample as u32).min(u16::MAX as u32) as u16,
        );
        let mut f = Vec::new();
        f.extend_from_slice(b"RIFF");
        f.extend_from_slice(&0u32.to_le_bytes()); // patched below
        f.extend_from_slice(b"WAVEfmt ");
        f.extend_from_slice(&fmt_len.to_le_bytes());
        f.extend_from_slice(&(if self.extensible { 0xFFFE } else { self.format }).to_le_bytes());
        f.extend_from_slice(&self.channels.to_le_bytes());
        f.extend_from_slice(&self.rate.to_le_bytes());
        f.extend_from_slice(&self.rate.wrapping_mul(align as u32).to_le_bytes());
        f.extend_from_slice(&align.to_le_bytes());
        f.extend_from_slice(&self.bits.to_le_bytes());
        if self.extensible {
            f.extend_from_slice(&22u16.to_le_bytes());
            f.extend_from_slice(&self.bits.to_le_bytes()); // valid bits
            f.extend_from_slice(&0u32.to_le_bytes()); // channel mask
            f.extend_from_slice(&self.format.to_le_bytes()); // sub-format GUID
            f.extend_from_slice(&[
                0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71,
            ]);
        }
        if let Some((declared, actual)) = self.junk_chunk {
            f.extend_from_slice(b"junk");
            f.extend_from_slice(&declared.to_le_bytes());
            f.extend(std::iter::repeat_n(0xA5u8, actual));
        }
        f.extend_from_slice(b"data");
        f.extend_from_slice(&self.data_size.unwrap_or(data.len() as u32).to_le_bytes());
        f.extend_from_slice(&data);
        let riff = self.riff_size.unwrap_or(f.len() as u32 - 8);
        f[4..8].copy_from_slice(&riff.to_le_bytes());
        if let Some(t) = self.truncate {
            f.truncate(f.len() * t as usize / 1000);
        }
        f
    }
}

fn wav_case() -> impl Strategy<Value = WavCase> {
    let format = prop_oneof![4 => Just(1u16), 2 => Just(3u16), 1 => any::<u16>()];
    let channels = prop_oneof![
        6 => 1u16..=2,
        1 => Just(0u16),
        1 => 3u16..=8,
        1 => Just(u16::MAX),
        1 => any::<u16>()
    ];
    let rate = prop_oneof![
        3 => Just(16_000u32),
        1 => Just(8_000u32),
        1 => Just(44_100u32),
        1 => Just(48_000u32),
        1 => Just(0u32),
        1 => Just(1u32),
        1 => Just(u32::MAX),
        1 => any::<u32>()
    ];
    let bits = prop_oneof![
        2 => Just(16u16),
        1 => Just(8u16),
        1 => Just(24u16),
        1 => Just(32u16),
        1 => Just(0u16),
        1 => Just(64u16),
        1 => any::<u16>()
    ];
    let lie = || prop::option::weighted(0.1, any::<u32>());
    (
        (
            format,
            channels,
            rate,
            bits,
            0usize..4000,
            prop::bool::weighted(0.1),
        ),
        (
            lie(),
            lie(),
            prop::option::weighted(0.05, any::<u16>()),
            prop::option::weighted(0.1, (any::<u32>(), 0usize..64)),
            prop::option::weighted(0.15, 0u16..1000),
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (format, channels, rate, bits, frames, extensible),
                (riff_size, data_size, block_align, junk_chunk, truncate, seed),
            )| WavCase {
                format,
                channels,
                rate,
                bits,
                frames,
                extensible,
                riff_size,
                data_size,
                block_align,
                junk_chunk,
                truncate,
                seed,
            },
        )
}

/// A file's content: a WAV case, or bytes that are not a WAV file at all.
#[derive(Debug, Clone)]
enum FileCase {
    Wav(WavCase),
    Bytes(Vec<u8>),
}

impl FileCase {
    fn bytes(&self) -> Vec<u8> {
        match self {
            FileCase::Wav(w) => w.bytes(),
            FileCase::Bytes(b) => b.clone(),
        }
    }
}

fn file_case() -> impl Strategy<Value = FileCase> {
    prop_oneof![
        8 => wav_case().prop_map(FileCase::Wav),
        1 => prop::collection::vec(any::<u8>(), 0..2048).prop_map(FileCase::Bytes),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|tail| {
            // A real RIFF/WAVE start followed by garbage.
            let mut b = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
            b.extend(tail);
            FileCase::Bytes(b)
        }),
    ]
}

/// A clean error: one line, naming the file.
fn check_error(e: &anyhow::Error, path: &Path) -> Result<(), TestCaseError> {
    let msg = format!("{e:#}");
    prop_assert!(
        msg.contains(&path.display().to_string()) && !msg.contains('\n'),
        "not a clean one-line error naming the file: {msg:?}"
    );
    Ok(())
}

/// Reads one file every way `listen` does and checks the outcome.
fn check_file(case: &FileCase, path: &Path) -> Result<(), TestCaseError> {
    let bytes = case.bytes();
    std::fs::write(path, &bytes).unwrap();
    let p = path.to_path_buf();
    let ((clip, stream), peak) =
        guarded("reading a fuzzed WAV", Duration::from_secs(20), move || {
            let clip = wav::read_clip(&p, 16_000);
            let stream = WavStream::open(&p).and_then(|mut w| {
                let mut buf = Vec::new();
                let mut frames = 0u64;
                loop {
                    let n = w.read_chunk(&mut buf, 4096)?;
                    if n == 0 {
                        return Ok(frames);
                    }
                    frames += n as u64;
                }
            });
            (clip, stream)
        });
    // Decoding 1.5 s at up to 768 kHz and 64 channels in 64k-frame chunks stays well
    // under this; a reader that trusted a size field would not.
    prop_assert!(
        peak < 64 * MB + 16 * bytes.len(),
        "{peak} bytes allocated for a {}-byte file",
        bytes.len()
    );
    if let Err(e) = &clip {
        check_error(e, path)?;
    }
    if let Err(e) = &stream {
        check_error(e, path)?;
    }
    if let FileCase::Wav(w) = case {
        if w.honest() {
            let frames = stream.map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
            prop_assert_eq!(frames, w.frames as u64, "an honest file must read whole");
            if w.frames == 0 {
                prop_assert!(clip.is_err(), "an empty clip is an error, not silence");
            } else {
                let x = clip.map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
                prop_assert_eq!(x.len(), 16_000);
                if w.rate == 16_000 && w.channels == 1 && w.bits >= 16 {
                    let tol = if w.bits == 16 { 1e-4 } else { 1e-6 };
                    for (i, &v) in x.iter().enumerate().take(w.frames) {
                        prop_assert!((v - w.sample(i)).abs() < tol, "sample {i}: {v}");
                    }
                    prop_assert!(x[w.frames..].iter().all(|&v| v == 0.0), "padding");
                }
            }
        }
    }
    Ok(())
}

/// A training folder of fuzzed files: labels with clips (some broken, some not WAV at
/// all), maybe a `_background_noise_` folder, maybe a label folder with nothing usable.
fn check_folder(files: &[(usize, FileCase)], noise: &[FileCase]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    for (i, (label, case)) in files.iter().enumerate() {
        let folder = root.join(format!("word{label}"));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("s{i}_nohash_0.wav")), case.bytes()).unwrap();
    }
    for (i, case) in noise.iter().enumerate() {
        let folder = root.join(dataset::NOISE_DIR);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("noise{i}.wav")), case.bytes()).unwrap();
    }
    let root2 = root.clone();
    let (scan, _) = guarded(
        "scanning a fuzzed folder",
        Duration::from_secs(30),
        move || dataset::scan(&root2, None, 1),
    );
    let scan = match scan {
        Ok(s) => s,
        Err(e) => return check_error(&e, &root),
    };
    let paths: Vec<PathBuf> = scan.clips.iter().map(|c| c.path.clone()).collect();
    let n = paths.len();
    let ((decoded, errors), _) = guarded(
        "loading a fuzzed folder",
        Duration::from_secs(60),
        move || {
            let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
            dataset::load_clips(
                &refs,
                &listen::audio::features::FeatureConfig::log_mel(),
                2,
                &indicatif::ProgressBar::hidden(),
            )
        },
    );
    prop_assert_eq!(decoded.len(), n);
    let failed = decoded.iter().filter(|d| d.is_none()).count();
    prop_assert_eq!(failed, errors.len(), "every skipped file is reported");
    for e in &errors {
        prop_assert!(
            e.contains(".wav") && !e.contains('\n'),
            "skip message: {e:?}"
        );
    }
    for d in decoded.iter().flatten() {
        prop_assert_eq!(d.len(), 16_000);
        prop_assert!(d.iter().all(|v| v.is_finite()));
    }
    for p in &scan.noise_files {
        match wav::read_mono_16k(p, 5.0) {
            Ok(x) => prop_assert!(!x.is_empty() && x.iter().all(|v| v.is_finite())),
            Err(e) => check_error(&e, p)?,
        }
    }
    Ok(())
}

/// The fuzz seed: LISTEN_FUZZ_SEED replays a run; otherwise a fresh one, printed (on
/// stderr, past the test harness's capture) so that any failure can be replayed.
fn seed() -> u64 {
    let seed = std::env::var("LISTEN_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            t.as_nanos() as u64 ^ u64::from(std::process::id())
        });
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "fuzz seed {seed} (replay: LISTEN_FUZZ_SEED={seed} cargo test --release --test fuzz_readers)"
    );
    seed
}

/// A proptest runner drawing from `seed` (the same seed, the same cases).
fn runner(cases: u32, seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = proptest::test_runner::TestRng::from_seed(
        proptest::test_runner::RngAlgorithm::ChaCha,
        &bytes,
    );
    TestRunner::new_with_rng(
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        },
        rng,
    )
}

fn cases() -> u32 {
    std::env::var("LISTEN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000)
}

/// A 10-minute clip (16 kHz mono, 19 MB): a training read takes its first second
/// without loading the rest, and streaming it whole keeps memory flat.
fn ten_minute_clip(dir: &Path) {
    let path = dir.join("ten_minutes.wav");
    let case = WavCase {
        format: 1,
        channels: 1,
        rate: 16_000,
        bits: 16,
        frames: 10 * 60 * 16_000,
        extensible: false,
        riff_size: None,
        data_size: None,
        block_align: None,
        junk_chunk: None,
        truncate: None,
        seed: 7,
    };
    std::fs::write(&path, case.bytes()).unwrap();
    let p = path.clone();
    let (clip, peak) = guarded("a 10-minute clip", Duration::from_secs(20), move || {
        wav::read_clip(&p, 16_000)
    });
    let clip = clip.unwrap();
    assert_eq!(clip.len(), 16_000);
    assert!((clip[123] - case.sample(123)).abs() < 1e-4);
    assert!(
        peak < 4 * MB,
        "reading one second of a long clip took {peak} bytes"
    );
    let p = path.clone();
    let (frames, peak) = guarded(
        "streaming a 10-minute clip",
        Duration::from_secs(60),
        move || {
            let mut w = WavStream::open(&p).unwrap();
            let mut buf = Vec::new();
            let mut frames = 0;
            loop {
                match w.read_chunk(&mut buf, 16_000).unwrap() {
                    0 => break frames,
                    n => frames += n,
                }
            }
        },
    );
    assert_eq!(frames, case.frames);
    assert!(peak < 4 * MB, "streaming a long file took {peak} bytes");
}

#[test]
fn readers_survive_fuzzed_files_and_folders() {
    let dir = tempfile::tempdir().unwrap();
    ten_minute_clip(dir.path());

    let n = cases();
    let seed = seed();
    let path = dir.path().join("case.wav");
    let mut files = runner(n, seed);
    let ran = AtomicUsize::new(0);
    let honest = AtomicUsize::new(0);
    files
        .run(&file_case(), |case| {
            ran.fetch_add(1, Ordering::Relaxed);
            if matches!(&case, FileCase::Wav(w) if w.honest()) {
                honest.fetch_add(1, Ordering::Relaxed);
            }
            check_file(&case, &path)
        })
        .unwrap_or_else(|e| panic!("{e} (replay: LISTEN_FUZZ_SEED={seed})"));

    let folder_cases = (n / 20).max(10);
    let mut folders = runner(folder_cases, seed.wrapping_add(1));
    let folders_ran = AtomicUsize::new(0);
    let strategy = (
        prop::collection::vec((0usize..4, file_case()), 0..12),
        prop::collection::vec(file_case(), 0..3),
    );
    folders
        .run(&strategy, |(files, noise)| {
            folders_ran.fetch_add(1, Ordering::Relaxed);
            check_folder(&files, &noise)
        })
        .unwrap_or_else(|e| panic!("{e} (replay: LISTEN_FUZZ_SEED={seed})"));
    let (ran, honest, folders) = (
        ran.into_inner(),
        honest.into_inner(),
        folders_ran.into_inner(),
    );
    eprintln!(
        "fuzz: {ran} files ({honest} honest WAVs read exactly, the rest refused or read \
         cleanly), {folders} training folders, 1 ten-minute clip: no panic, hang or runaway \
         allocation"
    );
    // The strategy must keep producing both kinds of case.
    assert!(
        honest > ran / 20 && honest < ran,
        "{honest} of {ran} honest"
    );
}
