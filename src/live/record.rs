//! `listen --record WORD --into DIR`: your own training clips from the microphone,
//! through the same capture and resampling code as listening. First a few seconds of
//! the room (saved to `DIR/_background_noise_/`, and the noise floor for what follows),
//! then N takes: a countdown, a level meter while the take runs, the word cut out by
//! energy (voice activity) and saved centred in 1 s of 16 kHz mono as
//! `DIR/WORD/<speaker>_nohash_<n>.wav`. Takes that are too quiet, clipped, cut off or
//! too long are refused on the spot and asked again. An existing clip is never
//! overwritten: a clip is written to a temporary file and linked to a free name.
use crate::audio::resample::StreamResampler;
use crate::audio::wav::{self, SAMPLE_RATE};
use crate::learn::dataset::NOISE_DIR;
use crate::live::capture::Capture;
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub word: String,
    pub into: PathBuf,
    pub count: usize,
    pub speaker: String,
    /// Seconds of room noise recorded first.
    pub room_secs: f32,
    /// Seconds each take listens for, from the "now" prompt.
    pub take_secs: f32,
    /// Length of one countdown beat.
    pub beat: Duration,
    /// Draw a live level meter (a terminal); else plain lines.
    pub meter: bool,
}

/// What was wrong with a take, in words the user can act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Nothing,
    TooQuiet,
    Clipped,
    CutOff,
    TooLong,
    TooShort,
}

impl Refusal {
    pub fn advice(self) -> &'static str {
        match self {
            Refusal::Nothing => "heard nothing: say the word after the countdown",
            Refusal::TooQuiet => "too quiet: speak up or come closer to the microphone",
            Refusal::Clipped => "clipped (too loud): speak softer or move back a little",
            Refusal::CutOff => "cut off: start after \"now\" and finish within the take",
            Refusal::TooLong => "longer than 1 s: say just the word, at a normal pace",
            Refusal::TooShort => "too short to be a word (a click or a knock?)",
        }
    }
}

/// The span of the word in a take, or why the take is refused. `noise` is the room's
/// RMS level.
pub fn judge(take: &[f32], noise: f32) -> Result<(usize, usize), Refusal> {
    let rate = SAMPLE_RATE as usize;
    let hop = rate / 100;
    let peak_level = take.chunks(hop).map(wav::rms).fold(0.0f32, f32::max);
    // -50 dBFS, or 4x (12 dB above) the room, whichever is higher.
    let floor = (noise * 4.0).max(10f32.powf(-50.0 / 20.0));
    if peak_level < floor * 0.5 {
        return Err(Refusal::Nothing);
    }
    // The loudest 10 ms must stand 20 dB over the room, and reach -40 dBFS.
    if peak_level < (noise * 10.0).max(0.01) {
        return Err(Refusal::TooQuiet);
    }
    let clipped = take.iter().filter(|v| v.abs() >= 0.99).count();
    if clipped >= 3 {
        return Err(Refusal::Clipped);
    }
    let (s, e) = wav::voiced_span_above(take, SAMPLE_RATE, floor).ok_or(Refusal::Nothing)?;
    let edge = 3 * hop;
    if s < edge || e + edge > take.len() {
        return Err(Refusal::CutOff);
    }
    if e - s > rate {
        return Err(Refusal::TooLong);
    }
    if e - s < rate / 10 {
        return Err(Refusal::TooShort);
    }
    Ok((s, e))
}

/// One second of `take` centred on the span `(s, e)` (padded with silence where the
/// take is shorter).
pub fn centred(take: &[f32], (s, e): (usize, usize)) -> Vec<f32> {
    let len = SAMPLE_RATE as usize;
    let mid = (s + e) / 2;
    let start = mid as isize - len as isize / 2;
    (0..len as isize)
        .map(|i| {
            let j = start + i;
            if j >= 0 && (j as usize) < take.len() {
                take[j as usize]
            } else {
                0.0
            }
        })
        .collect()
}

/// Writes `samples` as `dir/<stem>_<n>.wav` with the first free `n` above every
/// existing one, never replacing a file (even one that appears meanwhile): written to a
/// temporary file, then hard-linked to its name, which fails if the name is taken.
pub fn save_new(dir: &Path, stem: &str, samples: &[f32]) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let prefix = format!("{stem}_");
    let mut n = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)?
                .strip_suffix(".wav")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .map_or(0, |m| m + 1);
    let tmp = dir.join(format!(".{stem}.tmp-{}.wav", std::process::id()));
    wav::write_wav(&tmp, samples, SAMPLE_RATE)?;
    let result = loop {
        let path = dir.join(format!("{prefix}{n}.wav"));
        match std::fs::hard_link(&tmp, &path) {
            Ok(()) => break Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
            Err(e) => break Err(e).with_context(|| format!("cannot write {}", path.display())),
        }
    };
    let _ = std::fs::remove_file(&tmp);
    result
}

/// A word usable as a label folder.
pub fn check_word(word: &str) -> Result<()> {
    let ok = !word.is_empty()
        && word.len() <= 40
        && !word.starts_with(['_', '.', '-'])
        && word
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    if !ok {
        bail!("--record '{word}': a word is 1 to 40 letters, digits, '-' or '_', not starting with '_', '.' or '-' (it names a folder and a label)");
    }
    Ok(())
}

/// A speaker name usable in `<speaker>_nohash_<n>.wav`.
pub fn check_speaker(speaker: &str) -> Result<()> {
    let ok = !speaker.is_empty()
        && speaker.len() <= 40
        && speaker.chars().all(|c| c.is_ascii_alphanumeric())
        && !speaker.starts_with("synth");
    if !ok {
        bail!("--speaker '{speaker}': use 1 to 40 ASCII letters and digits, not starting with 'synth' (it names your clips: <speaker>_nohash_<n>.wav)");
    }
    Ok(())
}

/// The default speaker name: the login name, letters and digits only.
pub fn default_speaker() -> String {
    let user: String = std::env::var("USER")
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(40)
        .collect();
    if user.is_empty() || user.starts_with("synth") {
        "me".into()
    } else {
        user
    }
}

/// The microphone as 16 kHz mono.
struct Mic {
    cap: Capture,
    resampler: StreamResampler,
    buf: Vec<f32>,
    mono: Vec<f32>,
    last_audio: Instant,
}

impl Mic {
    fn new(cap: Capture) -> Result<Mic> {
        let resampler = StreamResampler::new(cap.rate, SAMPLE_RATE)?;
        Ok(Mic {
            cap,
            resampler,
            buf: Vec::new(),
            mono: Vec::new(),
            last_audio: Instant::now(),
        })
    }

    /// Appends what the device has delivered so far to `out`.
    fn pull(&mut self, out: &mut Vec<f32>) -> Result<()> {
        let max = self.cap.rate as usize * self.cap.channels;
        while self.cap.read(&mut self.buf, max) > 0 {
            self.last_audio = Instant::now();
            wav::mix_to_mono(&self.buf, self.cap.channels, &mut self.mono);
            self.resampler.process(&self.mono, out)?;
        }
        self.cap.check_alive(self.last_audio)
    }

    /// Drops what is waiting, so that the next pull starts now.
    fn drain(&mut self) -> Result<()> {
        let mut sink = Vec::new();
        self.pull(&mut sink)
    }

    /// Records `secs` from now, calling `tick` with the level of the last 50 ms every
    /// 50 ms. Stops early (returns what it has) when `stop` is set.
    fn record(
        &mut self,
        secs: f32,
        stop: &AtomicBool,
        mut tick: impl FnMut(f32),
    ) -> Result<Vec<f32>> {
        self.drain()?;
        // The resampler's delay: what comes out first was captured before now.
        let delay = self.resampler.delay();
        let want = (secs * SAMPLE_RATE as f32) as usize + delay;
        let mut out = Vec::with_capacity(want);
        while out.len() < want && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
            self.pull(&mut out)?;
            let tail = &out[out.len().saturating_sub(800)..];
            tick(wav::rms(tail));
        }
        out.truncate(want);
        Ok(out.split_off(delay.min(out.len())))
    }
}

impl RecordOptions {
    /// The word, speaker and count are usable (checked before the device is opened).
    pub fn check(&self) -> Result<()> {
        check_word(&self.word)?;
        check_speaker(&self.speaker)?;
        if self.count == 0 || self.count > 1000 {
            bail!("--count {}: record 1 to 1000 clips at a time", self.count);
        }
        Ok(())
    }
}

/// What a recording session did.
#[derive(Debug, Default)]
pub struct Recorded {
    pub saved: Vec<PathBuf>,
    pub room: Option<PathBuf>,
    pub refused: usize,
    pub interrupted: bool,
}

/// A level meter: `[#######......] -23 dBFS`.
fn meter(level: f32) -> String {
    let db = 20.0 * level.max(1e-6).log10();
    let filled = (((db + 60.0) / 60.0).clamp(0.0, 1.0) * 30.0) as usize;
    format!(
        "[{}{}] {:>4.0} dBFS",
        "#".repeat(filled),
        ".".repeat(30 - filled),
        db
    )
}

/// Refused takes in a row before giving up.
const MAX_REFUSED_IN_A_ROW: usize = 5;

/// Runs a recording session on an open capture. Messages go to stderr.
pub fn record(opts: &RecordOptions, cap: Capture, stop: &AtomicBool) -> Result<Recorded> {
    opts.check()?;
    let word_dir = opts.into.join(&opts.word);
    std::fs::create_dir_all(&word_dir)
        .with_context(|| format!("cannot create {}", word_dir.display()))?;
    let mut mic = Mic::new(cap)?;
    let con = Console { meter: opts.meter };
    let mut done = Recorded::default();
    con.say(&format!(
        "Recording '{}' {} time(s) from '{}' ({} Hz, {} ch) as speaker '{}' into {}",
        opts.word,
        opts.count,
        mic.cap.id,
        mic.cap.rate,
        mic.cap.channels,
        opts.speaker,
        word_dir.display()
    ));
    let Some((noise, room_path)) = record_room(opts, &mut mic, stop, &con)? else {
        done.interrupted = true;
        return Ok(done);
    };
    done.room = Some(room_path);
    let mut take = 1;
    let mut refused_in_a_row = 0;
    while take <= opts.count {
        let Some(x) = record_take(opts, &mut mic, stop, &con, take)? else {
            done.interrupted = true;
            return Ok(done);
        };
        let counter = format!("take {take}/{}", opts.count);
        match judge(&x, noise) {
            Ok(span) => {
                let clip = centred(&x, span);
                let path = save_new(&word_dir, &format!("{}_nohash", opts.speaker), &clip)?;
                con.say(&format!(
                    "{counter}: saved {} ({} ms of sound)",
                    path.display(),
                    (span.1 - span.0) * 1000 / SAMPLE_RATE as usize
                ));
                done.saved.push(path);
                take += 1;
                refused_in_a_row = 0;
            }
            Err(why) => {
                done.refused += 1;
                refused_in_a_row += 1;
                con.say(&format!("{counter}: refused, {}; again", why.advice()));
                if refused_in_a_row >= MAX_REFUSED_IN_A_ROW {
                    bail!(
                        "{MAX_REFUSED_IN_A_ROW} takes in a row refused (last: {}) on '{}'; check the microphone and its level (--list-devices, --device NAME); {} clip(s) saved so far",
                        why.advice(),
                        mic.cap.id,
                        done.saved.len()
                    );
                }
            }
        }
    }
    Ok(done)
}

/// Prompts on stderr: with a meter (a terminal), one line redrawn in place.
struct Console {
    meter: bool,
}

impl Console {
    /// A line that the next one replaces (with a meter) or follows.
    fn line(&self, s: &str) {
        let mut err = std::io::stderr();
        if self.meter {
            let _ = write!(err, "\r\x1b[2K{s}");
        } else {
            let _ = writeln!(err, "{s}");
        }
        let _ = err.flush();
    }

    /// Ends a redrawn line, so that what follows starts on a new one.
    fn end_line(&self) {
        if self.meter {
            let _ = writeln!(std::io::stderr());
        }
    }

    /// A line that stays.
    fn say(&self, s: &str) {
        let _ = writeln!(std::io::stderr(), "{s}");
    }
}

/// A few seconds of the room: its noise floor (the median 10 ms level: a cough does not
/// move it) and where the recording was saved. None when Ctrl-C came first.
fn record_room(
    opts: &RecordOptions,
    mic: &mut Mic,
    stop: &AtomicBool,
    con: &Console,
) -> Result<Option<(f32, PathBuf)>> {
    con.line(&format!("Room: stay quiet for {:.0} s...", opts.room_secs));
    let room = mic.record(opts.room_secs, stop, |l| {
        if opts.meter {
            con.line(&format!("Room: stay quiet  {}", meter(l)));
        }
    })?;
    con.end_line();
    if stop.load(Ordering::SeqCst) {
        return Ok(None);
    }
    let mut levels: Vec<f32> = room.chunks(160).map(wav::rms).collect();
    levels.sort_by(f32::total_cmp);
    let noise = levels.get(levels.len() / 2).copied().unwrap_or(0.0);
    let room_path = save_new(
        &opts.into.join(NOISE_DIR),
        &format!("room_{}", opts.speaker),
        &room,
    )?;
    con.say(&format!(
        "Room noise {:.0} dBFS, saved to {}",
        20.0 * noise.max(1e-6).log10(),
        room_path.display()
    ));
    Ok(Some((noise, room_path)))
}

/// One take: a countdown, then the prompt with a level meter while it records. None
/// when Ctrl-C came first.
fn record_take(
    opts: &RecordOptions,
    mic: &mut Mic,
    stop: &AtomicBool,
    con: &Console,
    take: usize,
) -> Result<Option<Vec<f32>>> {
    for beat in (1..=3).rev() {
        if stop.load(Ordering::SeqCst) {
            return Ok(None);
        }
        con.line(&format!("take {take}/{}: {beat}...", opts.count));
        std::thread::sleep(opts.beat);
    }
    let prompt = format!("take {take}/{}: say '{}' now", opts.count, opts.word);
    con.line(&prompt);
    let x = mic.record(opts.take_secs, stop, |l| {
        if opts.meter {
            con.line(&format!("{prompt}  {}", meter(l)));
        }
    })?;
    con.end_line();
    if stop.load(Ordering::SeqCst) {
        return Ok(None);
    }
    Ok(Some(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2.5 s take: room noise with a 400 ms "word" (a chirp) at `at` seconds.
    fn take(at: f32, dur: f32, amp: f32) -> Vec<f32> {
        let mut rng = crate::util::Rng::new(5);
        (0..40_000)
            .map(|i| {
                let t = i as f32 / 16_000.0;
                let noise = (rng.f32() - 0.5) * 0.002;
                let word = if t >= at && t < at + dur {
                    amp * (2.0 * std::f32::consts::PI * (300.0 + 400.0 * (t - at)) * t).sin()
                } else {
                    0.0
                };
                noise + word
            })
            .collect()
    }

    #[test]
    fn takes_are_judged_like_a_user_would() {
        let noise = 0.002 / 12f32.sqrt();
        let (s, e) = judge(&take(1.0, 0.4, 0.3), noise).unwrap();
        assert!(
            (s as i64 - 16_000).abs() < 320 && (e as i64 - 22_400).abs() < 320,
            "{s} {e}"
        );
        assert_eq!(judge(&take(1.0, 0.4, 0.0), noise), Err(Refusal::Nothing));
        assert_eq!(judge(&take(1.0, 0.4, 0.006), noise), Err(Refusal::TooQuiet));
        assert_eq!(
            judge(
                &take(1.0, 0.4, 1.5)
                    .iter()
                    .map(|v| v.clamp(-1.0, 1.0))
                    .collect::<Vec<_>>(),
                noise
            ),
            Err(Refusal::Clipped)
        );
        assert_eq!(judge(&take(0.0, 0.4, 0.3), noise), Err(Refusal::CutOff));
        assert_eq!(judge(&take(2.3, 0.4, 0.3), noise), Err(Refusal::CutOff));
        assert_eq!(judge(&take(0.5, 1.3, 0.3), noise), Err(Refusal::TooLong));
        assert_eq!(judge(&take(1.0, 0.04, 0.3), noise), Err(Refusal::TooShort));
        // A loud room raises the bar: the same word in it is too quiet.
        assert_eq!(judge(&take(1.0, 0.4, 0.03), 0.01), Err(Refusal::TooQuiet));
    }

    #[test]
    fn clips_are_centred_on_the_word() {
        let x = take(1.4, 0.4, 0.3);
        let span = judge(&x, 0.001).unwrap();
        let c = centred(&x, span);
        assert_eq!(c.len(), 16_000);
        let (s, e) = wav::voiced_span(&c, SAMPLE_RATE).unwrap();
        assert!(((s + e) as i64 / 2 - 8_000).abs() < 200, "{s} {e}");
        // Near the start of a take: padded, still centred.
        let c = centred(&x[..], (100, 900));
        assert_eq!(c.len(), 16_000);
        assert_eq!(c[0], 0.0);
    }

    #[test]
    fn saving_never_overwrites_and_counts_on() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("me_nohash_3.wav"), b"mine").unwrap();
        let a = save_new(d.path(), "me_nohash", &[0.1; 16_000]).unwrap();
        let b = save_new(d.path(), "me_nohash", &[0.2; 16_000]).unwrap();
        assert_eq!(a.file_name().unwrap(), "me_nohash_4.wav");
        assert_eq!(b.file_name().unwrap(), "me_nohash_5.wav");
        assert_eq!(
            std::fs::read(d.path().join("me_nohash_3.wav")).unwrap(),
            b"mine"
        );
        assert_eq!(wav::read_clip(&a, 16_000).unwrap().len(), 16_000);
        // No temporary files left behind.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 3);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_word("lights").is_ok());
        assert!(check_word("turn-on").is_ok());
        for bad in ["", "_silence_", "../x", "a b", ".hidden", "x/y"] {
            assert!(check_word(bad).is_err(), "{bad}");
        }
        assert!(check_speaker("alice2").is_ok());
        for bad in ["", "a_b", "synth1", "a b", "x/y"] {
            assert!(check_speaker(bad).is_err(), "{bad}");
        }
    }
}
