//! Live listening through the real capture path: a private PulseAudio daemon's null sink
//! is the microphone (tests/common/vmic.rs); `listen` runs as the user runs it while the
//! test plays spoken words into it. Also device faults: no sound server, a device name
//! that matches nothing, a device that cannot be opened, the server dying mid-stream, and
//! a worker too slow to keep up.
mod common;
use common::vmic::{signal, VirtualMic};
use common::*;
use listen::audio::wav::write_wav;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// A running `listen` with its stdout and stderr lines arriving (with their arrival time)
/// on channels.
struct Running {
    child: Child,
    out: Receiver<(Instant, String)>,
    err: Receiver<(Instant, String)>,
    err_seen: Vec<String>,
    /// When the line `wait_stderr` last found was printed.
    hit_at: Option<Instant>,
}

/// Listens at the built-in detector settings rather than the bundled model's stricter
/// own (chosen to stay quiet while people talk): these tests are about the live path.
fn builtin_detector(c: &mut Command) {
    let d = listen::live::detect::DetectorConfig::default();
    c.args([
        "--threshold".to_string(),
        d.threshold.to_string(),
        "--smoothing".to_string(),
        d.smoothing.to_string(),
        "--min-windows".to_string(),
        d.min_windows.to_string(),
    ]);
}

/// Spawns `listen` and waits (up to 20 s) until it says it is listening.
fn spawn_listening(cmd: Command) -> Running {
    let mut l = spawn(cmd);
    assert!(
        l.wait_stderr("listening on", Duration::from_secs(20)),
        "{}",
        l.stderr()
    );
    l
}

fn spawn(mut cmd: Command) -> Running {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn listen");
    let lines = |r: Box<dyn std::io::Read + Send>| {
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            for l in BufReader::new(r).lines() {
                let Ok(l) = l else { break };
                if tx.send((Instant::now(), l)).is_err() {
                    break;
                }
            }
        });
        rx
    };
    let out = lines(Box::new(child.stdout.take().unwrap()));
    let err = lines(Box::new(child.stderr.take().unwrap()));
    Running {
        child,
        out,
        err,
        err_seen: Vec::new(),
        hit_at: None,
    }
}

impl Running {
    /// Waits for a stderr line containing `needle`.
    fn wait_stderr(&mut self, needle: &str, within: Duration) -> bool {
        let end = Instant::now() + within;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.err.recv_timeout(left) {
                Ok((at, l)) => {
                    let hit = l.contains(needle);
                    self.err_seen.push(l);
                    if hit {
                        self.hit_at = Some(at);
                        return true;
                    }
                }
                Err(_) => return false,
            }
        }
        false
    }

    /// Waits for the process to end; None if it is still running after `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if let Ok(Some(st)) = self.child.try_wait() {
                // Collect the rest of stderr.
                while let Ok((_, l)) = self.err.recv_timeout(Duration::from_millis(500)) {
                    self.err_seen.push(l);
                }
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stderr(&self) -> String {
        self.err_seen.join("\n")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Words with pauses, 16 kHz, written to `dir/name.wav`; returns the truth.
fn words_wav(
    words: &[&str],
    dir: &std::path::Path,
    name: &str,
) -> (std::path::PathBuf, Vec<(String, u64, u64)>) {
    let (x, truth) = make_stream(words, 1.5, 0.005, dir);
    let p = dir.join(format!("{name}.wav"));
    write_wav(&p, &x, 16000).unwrap();
    (p, truth)
}

#[test]
fn played_words_are_detected_live_in_order_with_their_timing() {
    let d = scratch("live-words");
    let words = ["left", "yes", "stop", "right", "no", "go"];
    let (wav, truth) = words_wav(&words, &d, "words");
    let mic = VirtualMic::start(48000, 2);
    let execd = d.join("exec.txt");
    let mut cmd = mic.listen();
    // The built-in detector settings, as the soak uses: with the bundled model's own
    // (threshold 0.86) espeak-ng's "stop" peaks at 0.868 through --input, a margin that
    // live resampling eats now and then (3 misses in 6 runs beside a busy CPU). This
    // test is about the live path (order, timing, --exec), not that one margin.
    builtin_detector(&mut cmd);
    cmd.args([
        "--json",
        "--exec",
        &format!(
            "echo \"$LISTEN_LABEL $LISTEN_SCORE\" >> {}",
            execd.display()
        ),
    ]);
    let mut l = spawn(cmd);
    assert!(
        l.wait_stderr(
            "listening on 'default' (48000 Hz, 2 ch",
            Duration::from_secs(20)
        ),
        "{}",
        l.stderr()
    );
    let played = Instant::now();
    mic.play(&wav);
    std::thread::sleep(Duration::from_millis(1500));
    signal(l.child.id(), "INT");
    assert_eq!(
        l.wait_exit(Duration::from_secs(10)),
        Some(130),
        "{}",
        l.stderr()
    );
    let got: Vec<(Instant, serde_json::Value)> = l
        .out
        .try_iter()
        .map(|(t, s)| {
            (
                t,
                serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}")),
            )
        })
        .collect();
    let labels: Vec<&str> = got.iter().map(|g| g.1["label"].as_str().unwrap()).collect();
    assert_eq!(labels, words, "{}", l.stderr());
    // Wall-clock: each word is out within 1 s of its end being played (the benchmark
    // measures the median; this only catches a stalled or batching pipeline).
    for ((at, g), (w, _, end)) in got.iter().zip(&truth) {
        let latency = at.duration_since(played).as_millis() as i64 - *end as i64;
        assert!(
            (-300..1000).contains(&latency),
            "{w}: printed {latency} ms after its end was played ({g})"
        );
    }
    // Stream time: the gaps between detections are the gaps between the words.
    for (a, b) in got.windows(2).zip(truth.windows(2)) {
        let dt = a[1].1["time_ms"].as_i64().unwrap() - a[0].1["time_ms"].as_i64().unwrap();
        let want = b[1].2 as i64 - b[0].2 as i64;
        assert!(
            (dt - want).abs() <= 300,
            "{dt} ms apart, words {want} ms apart"
        );
    }
    assert!(!l.stderr().contains("overrun"), "{}", l.stderr());
    // --exec ran once per detection with the label and score in its environment.
    std::thread::sleep(Duration::from_millis(300));
    let ran = std::fs::read_to_string(&execd).unwrap();
    let ran: Vec<&str> = ran.lines().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(ran, words);
}

#[test]
fn silence_from_the_microphone_gives_nothing() {
    // (The ALSA pulse route opens at 48 kHz stereo whatever the sink's rate; pulse
    // converts. The 44.1 kHz/mono/i16 device side is covered by the capture unit tests.)
    let mic = VirtualMic::start(44100, 1);
    let mut l = spawn({
        let mut c = mic.listen();
        c.arg("--json");
        c
    });
    assert!(
        l.wait_stderr("listening on 'default'", Duration::from_secs(20)),
        "{}",
        l.stderr()
    );
    std::thread::sleep(Duration::from_secs(5));
    signal(l.child.id(), "TERM");
    assert_eq!(
        l.wait_exit(Duration::from_secs(10)),
        Some(130),
        "{}",
        l.stderr()
    );
    let got: Vec<String> = l.out.try_iter().map(|x| x.1).collect();
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn the_sound_server_dying_mid_stream_is_a_one_line_error() {
    let mut mic = VirtualMic::start(48000, 2);
    let mut l = spawn_listening({
        let mut c = mic.listen();
        c.arg("--json");
        c
    });
    std::thread::sleep(Duration::from_millis(500));
    mic.kill_server();
    let code = l.wait_exit(Duration::from_secs(15));
    assert_eq!(code, Some(2), "{}", l.stderr());
    let err = l.stderr();
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("listen: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains("'default'") && errors[0].contains("--list-devices"),
        "{err}"
    );
    // Nothing else from the sound libraries.
    assert!(err.lines().all(|l| l.starts_with("listen: ")), "{err}");
}

#[test]
fn device_problems_are_one_line_errors() {
    // No sound server and no sound card: the default device cannot be opened.
    let o = Command::new(bin())
        .env("PULSE_SERVER", "unix:/nonexistent/socket")
        .arg("--json")
        .output()
        .unwrap();
    assert_clean_error(&o, &["default", "--list-devices", "--input"]);
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));

    let mic = VirtualMic::start(48000, 2);
    // A name that matches nothing.
    let o = mic
        .listen()
        .args(["--json", "--device", "no-such-mic"])
        .output()
        .unwrap();
    assert_clean_error(&o, &["no-such-mic", "--list-devices"]);
    // --list-devices names the virtual microphone's route and marks the default.
    let o = mic.listen().arg("--list-devices").output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).lines().any(|l| l.starts_with("* default")),
        "{}",
        stdout(&o)
    );
    assert!(stderr(&o).is_empty(), "sound-library noise: {}", stderr(&o));
    // A device that exists but refuses to open (an ALSA PCM on a card that is not there).
    let home = scratch("live-broken-device");
    std::fs::write(
        home.join(".asoundrc"),
        "pcm.broken { type hw card 9 hint { show on description \"Broken test device\" } }\n",
    )
    .unwrap();
    let o = mic
        .listen()
        .env("HOME", &home)
        .args(["--json", "--device", "broken"])
        .output()
        .unwrap();
    assert_clean_error(&o, &["broken", "--device", "--list-devices"]);
}

#[test]
fn a_stalled_worker_counts_overruns_and_keeps_going() {
    let d = scratch("live-overrun");
    let (wav, _) = words_wav(&["left"], &d, "left");
    let mic = VirtualMic::start(48000, 2);
    // 20 windows/s at 150 ms each: the worker falls behind and the 2 s ring buffer fills.
    let mut l = spawn_listening({
        let mut c = mic.listen();
        c.args(["--json", "--inference-delay-ms", "150"]);
        c
    });
    assert!(
        l.wait_stderr("overrun", Duration::from_secs(15)),
        "{}",
        l.stderr()
    );
    mic.play(&wav);
    // Still running, still reading the microphone.
    assert!(
        l.wait_exit(Duration::from_secs(1)).is_none(),
        "{}",
        l.stderr()
    );
    signal(l.child.id(), "INT");
    assert_eq!(
        l.wait_exit(Duration::from_secs(10)),
        Some(130),
        "{}",
        l.stderr()
    );
}

/// JSON detections received so far, with their arrival times.
fn detections(l: &Running) -> Vec<(Instant, serde_json::Value)> {
    l.out
        .try_iter()
        .map(|(t, s)| {
            (
                t,
                serde_json::from_str(&s).unwrap_or_else(|e| panic!("{e}: {s}")),
            )
        })
        .collect()
}

/// Each detection printed within 1 s of its word's end being played.
fn assert_prompt(
    got: &[(Instant, serde_json::Value)],
    truth: &[(String, u64, u64)],
    played: Instant,
) {
    for ((at, g), (w, _, end)) in got.iter().zip(truth) {
        let latency = at.duration_since(played).as_millis() as i64 - *end as i64;
        assert!(
            (-300..1000).contains(&latency),
            "{w}: printed {latency} ms after its end was played ({g})"
        );
    }
}

#[test]
fn the_engine_recovers_after_a_stall() {
    let d = scratch("live-stall");
    // Words the bundled model hears in espeak-ng's voice at its own settings (its "stop"
    // is missed now and then): recovery is under test here, not the model.
    let words = ["right", "up", "yes"];
    let (wav, truth) = words_wav(&words, &d, "words");
    let mic = VirtualMic::start(48000, 2);
    // One 5 s stall at the first model run: the 2 s ring buffer overflows.
    let mut l = spawn({
        let mut c = mic.listen();
        c.args(["--json", "--stall-ms", "5000"]);
        c
    });
    assert!(l.wait_stderr("listening on", Duration::from_secs(20)));
    let started = l.hit_at.unwrap();
    assert!(
        l.wait_stderr("overrun", Duration::from_secs(30)),
        "the stall was not reported: {}",
        l.stderr()
    );
    // After the stall: back to normal, words detected promptly.
    std::thread::sleep(Duration::from_millis(500));
    let played = Instant::now();
    mic.play(&wav);
    std::thread::sleep(Duration::from_millis(1500));
    signal(l.child.id(), "INT");
    assert_eq!(
        l.wait_exit(Duration::from_secs(10)),
        Some(130),
        "{}",
        l.stderr()
    );
    let got = detections(&l);
    let labels: Vec<&str> = got.iter().map(|g| g.1["label"].as_str().unwrap()).collect();
    assert_eq!(labels, words, "{}", l.stderr());
    assert_prompt(&got, &truth, played);
    // Times stay on the session's clock: the ~3 s lost in the stall are counted (a
    // clock that skipped them would run 3 s early).
    for (at, g) in &got {
        let wall = at.duration_since(started).as_millis() as i64;
        let t = g["time_ms"].as_i64().unwrap();
        assert!(
            (-1000..1000).contains(&(wall - t)),
            "{g}: printed {wall} ms into the session"
        );
    }
    // One stall, and no dropping after recovery: every overrun warning counts the
    // stall's ~3 s, give or take a hiccup of a busy machine (the suite runs the soak
    // beside this test on 2 cores), never growing on.
    let err = l.stderr();
    let dropped: Vec<f64> = err
        .lines()
        .filter_map(|line| line.split("overrun: ").nth(1))
        .filter_map(|rest| rest.split(" s of audio").next()?.parse().ok())
        .collect();
    assert!(!dropped.is_empty(), "the stall was not reported: {err}");
    assert!(
        dropped
            .iter()
            .all(|&s| (dropped[0]..dropped[0] + 0.25).contains(&s)),
        "audio kept being dropped after the stall: {err}"
    );
}

#[test]
fn exec_commands_that_fail_hang_or_flood_never_delay_detection() {
    let d = scratch("live-exec");
    let words = ["left", "yes", "right", "no"];
    let (wav, truth) = words_wav(&words, &d, "words");
    let mic = VirtualMic::start(48000, 2);
    let ran = d.join("ran.txt");
    // Every command logs its label, then: 'left' fails, 'yes' hangs for 20 s, all of
    // them print 200,000 lines.
    let script = format!(
        "echo $LISTEN_LABEL >> {}; yes flood | head -n 200000; \
         case $LISTEN_LABEL in left) exit 3;; yes) sleep 20;; esac",
        ran.display()
    );
    let mut l = spawn_listening({
        let mut c = mic.listen();
        c.args(["--json", "--exec", &script]);
        c
    });
    let played = Instant::now();
    mic.play(&wav);
    assert!(
        l.wait_stderr("--exec for 'left' exit status: 3", Duration::from_secs(15)),
        "the failure was not reported"
    );
    std::thread::sleep(Duration::from_millis(1500));
    let t = Instant::now();
    signal(l.child.id(), "INT");
    // The hanging command does not hold listen up either.
    assert_eq!(l.wait_exit(Duration::from_secs(10)), Some(130));
    assert!(t.elapsed() < Duration::from_secs(5));
    let got = detections(&l);
    let labels: Vec<&str> = got.iter().map(|g| g.1["label"].as_str().unwrap()).collect();
    assert_eq!(labels, words);
    assert_prompt(&got, &truth, played);
    assert_eq!(
        std::fs::read_to_string(&ran)
            .unwrap()
            .lines()
            .collect::<Vec<_>>(),
        words
    );
    assert!(!l.stderr().contains("overrun"));
}

/// A bounded soak: LISTEN_SOAK_MINUTES (default 2) of words played in real time.
/// Every word detected, in order and promptly; no overrun; memory flat. The hour-long
/// soak with unseen speakers is the benchmark (`LISTEN_BENCH_MINUTES=60 cargo bench
/// --bench live`).
#[test]
fn a_soak_detects_every_word_with_no_overrun_and_flat_memory() {
    let minutes: f64 = std::env::var("LISTEN_SOAK_MINUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    let d = scratch("live-soak");
    // Words the bundled model hears in espeak-ng's voice (its "stop" is missed now and
    // then): the capture path is under test here, not the model.
    let vocabulary = ["left", "yes", "up", "right", "no", "go"];
    // About 2.6 s per word with its gap.
    let n = ((minutes * 60.0 / 2.6) as usize).max(6);
    let mut rng = listen::util::Rng::new(11);
    let words: Vec<&str> = (0..n)
        .map(|_| vocabulary[rng.below(vocabulary.len())])
        .collect();
    let (wav, truth) = words_wav(&words, &d, "soak");
    let mic = VirtualMic::start(48000, 2);
    let mut l = spawn_listening({
        let mut c = mic.listen();
        // The capture path must deliver every word: listened to at the built-in
        // settings, not at the bundled model's stricter own (chosen to stay quiet while
        // people talk), which misses about 1 in 50 espeak-ng words (BENCHMARKS.md).
        builtin_detector(&mut c);
        c.arg("--json");
        c
    });
    std::thread::sleep(Duration::from_secs(1));
    let (_, rss_start) = procstat::usage(l.child.id());
    let played = Instant::now();
    mic.play(&wav);
    std::thread::sleep(Duration::from_millis(1500));
    let (_, rss_end) = procstat::usage(l.child.id());
    signal(l.child.id(), "INT");
    assert_eq!(
        l.wait_exit(Duration::from_secs(10)),
        Some(130),
        "{}",
        l.stderr()
    );
    let got = detections(&l);
    let labels: Vec<&str> = got.iter().map(|g| g.1["label"].as_str().unwrap()).collect();
    assert_eq!(labels, words, "{}", l.stderr());
    assert_prompt(&got, &truth, played);
    assert!(!l.stderr().contains("overrun"), "{}", l.stderr());
    eprintln!("soak: {minutes} min, {n} words, all detected; RSS {rss_start} -> {rss_end} kB");
    assert!(rss_start > 0 && rss_end > 0);
    // Bounded, not a slope: under CPU contention RSS has been seen to step up once by
    // ~9 MB and stay flat after (BENCHMARKS.md, Reliability). 16 MB over 2 minutes is
    // what a leak of 7 kB per model run (20 runs a second) would reach.
    assert!(
        rss_end < rss_start + 16 * 1024,
        "memory grew from {rss_start} to {rss_end} kB"
    );
}

#[test]
fn record_saves_centred_clips_refuses_bad_takes_and_never_overwrites() {
    let d = scratch("record");
    let into = d.join("mine");
    let word_dir = into.join("lights");
    std::fs::create_dir_all(&word_dir).unwrap();
    // A clip the user already has: it must survive, byte for byte.
    std::fs::write(word_dir.join("tester_nohash_0.wav"), b"an older take").unwrap();
    let word = spoken("lights", &d);
    let pad = |x: &[f32], gain: f32| {
        let mut v = vec![0.0f32; 3200];
        v.extend(x.iter().map(|s| (s * gain).clamp(-1.0, 1.0)));
        v.extend(vec![0.0f32; 3200]);
        v
    };
    let normal = d.join("lights.wav");
    write_wav(&normal, &pad(&word, 1.0), 16_000).unwrap();
    let clipped = d.join("lights-clipped.wav");
    write_wav(&clipped, &pad(&word, 12.0), 16_000).unwrap();

    let mic = VirtualMic::start(48000, 2);
    let mut cmd = mic.listen();
    cmd.args([
        "--record",
        "lights",
        "--into",
        into.to_str().unwrap(),
        "--count",
        "3",
        "--speaker",
        "tester",
    ]);
    let mut l = spawn(cmd);
    assert!(
        l.wait_stderr("Room noise", Duration::from_secs(30)),
        "{}",
        l.stderr()
    );
    // What the test does at each "now": say it, say nothing, shout it, say it, say it.
    let plan = [
        Some(&normal),
        None,
        Some(&clipped),
        Some(&normal),
        Some(&normal),
    ];
    for (i, what) in plan.iter().enumerate() {
        assert!(
            l.wait_stderr("say 'lights' now", Duration::from_secs(20)),
            "prompt {i}: {}",
            l.stderr()
        );
        if let Some(wav) = what {
            mic.play(wav);
        }
    }
    assert_eq!(
        l.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        l.stderr()
    );
    let err = l.stderr();
    assert!(err.contains("refused, heard nothing"), "{err}");
    assert!(err.contains("refused, clipped"), "{err}");
    assert!(err.contains("saved 3 clip(s) of 'lights'"), "{err}");
    assert_eq!(
        std::fs::read(word_dir.join("tester_nohash_0.wav")).unwrap(),
        b"an older take"
    );
    let mut names: Vec<String> = std::fs::read_dir(&word_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "tester_nohash_0.wav",
            "tester_nohash_1.wav",
            "tester_nohash_2.wav",
            "tester_nohash_3.wav"
        ]
    );
    for n in 1..=3 {
        let p = word_dir.join(format!("tester_nohash_{n}.wav"));
        let spec = hound::WavReader::open(&p).unwrap().spec();
        assert_eq!((spec.sample_rate, spec.channels), (16_000, 1), "{n}");
        let x = listen::audio::wav::read_clip(&p, 16_000).unwrap();
        assert_eq!(
            hound::WavReader::open(&p).unwrap().duration(),
            16_000,
            "{n}: one second"
        );
        let (s, e) = listen::audio::wav::voiced_span(&x, 16_000).unwrap();
        let mid = (s + e) as i64 / 2;
        assert!((mid - 8_000).abs() < 1_600, "clip {n}: word at {s}..{e}");
        // The whole word is in: as long as the one played (within 25%).
        let played = listen::audio::wav::voiced_span(&word, 16_000).unwrap();
        let (len, want) = ((e - s) as f64, (played.1 - played.0) as f64);
        assert!(
            (len / want - 1.0).abs() < 0.25,
            "clip {n}: {len} vs {want} samples"
        );
    }
    let noise: Vec<_> = std::fs::read_dir(into.join("_background_noise_"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(noise, ["room_tester_0.wav"]);
}

#[test]
fn record_refuses_bad_names_and_counts_before_opening_a_device() {
    // No sound server is given: each of these must fail on its argument, not the device.
    let d = scratch("record-bad-args");
    let into = d.to_str().unwrap();
    for (args, needle) in [
        (vec!["--record", "a b", "--into", into], "--record 'a b'"),
        (
            vec!["--record", "_silence_", "--into", into],
            "--record '_silence_'",
        ),
        (
            vec!["--record", "lights", "--into", into, "--speaker", "synth1"],
            "--speaker 'synth1'",
        ),
        (
            vec!["--record", "lights", "--into", into, "--speaker", "a_b"],
            "--speaker 'a_b'",
        ),
        (
            vec!["--record", "lights", "--into", into, "--count", "0"],
            "--count 0",
        ),
    ] {
        let o = Command::new(bin())
            .args(&args)
            .env("PULSE_SERVER", "unix:/nonexistent")
            .output()
            .unwrap();
        assert_clean_error(&o, &[needle]);
        assert!(
            std::fs::read_dir(&d).unwrap().next().is_none(),
            "{args:?} wrote into {into}"
        );
    }
}

#[test]
fn a_device_that_runs_ahead_of_real_time_is_refused_not_blamed_on_the_machine() {
    // ALSA's `null` input returns silence as fast as it is read.
    let devices = run(&["--list-devices"]);
    if !stdout(&devices)
        .lines()
        .any(|l| l.split_whitespace().any(|w| w == "null"))
    {
        skipped("ALSA has no `null` device here");
        return;
    }
    let mut l = spawn({
        let mut c = Command::new(bin());
        c.args(["--device", "null", "--json"]);
        c
    });
    assert_eq!(
        l.wait_exit(Duration::from_secs(15)),
        Some(2),
        "{}",
        l.stderr()
    );
    let err = l.stderr();
    assert!(err.contains("faster than real time"), "{err}");
    assert!(!err.contains("machine is too slow"), "{err}");
}

#[test]
fn a_word_in_the_first_second_of_a_live_session_is_heard() {
    // The engine starts from the features of silence: a command said as soon as
    // listening starts is a command said alone, not cut by a window of zeros.
    let d = scratch("live-first-second");
    let mut x: Vec<f32> = vec![0.0; 3200];
    x.extend(spoken("go", &d).iter().map(|v| v * 0.5));
    x.extend(std::iter::repeat_n(0.0, 16000));
    let wav = d.join("go.wav");
    write_wav(&wav, &x, 16000).unwrap();
    let mic = VirtualMic::start(48000, 2);
    let mut l = spawn_listening({
        let mut c = mic.listen();
        builtin_detector(&mut c);
        c.arg("--json");
        c
    });
    mic.play(&wav);
    std::thread::sleep(Duration::from_millis(1500));
    signal(l.child.id(), "INT");
    assert_eq!(
        l.wait_exit(Duration::from_secs(10)),
        Some(130),
        "{}",
        l.stderr()
    );
    let got = detections(&l);
    let labels: Vec<&str> = got.iter().map(|g| g.1["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["go"], "{}", l.stderr());
}
