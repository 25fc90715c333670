//! Long test streams and their scoring through the CLI: `--make-stream` is deterministic
//! and its truth is where the words really are; `--truth` and `--sweep` score a run.
mod common;
use common::*;
use listen::audio::wav::{read_mono_16k, rms};

fn make(dir: &std::path::Path, name: &str, seed: &str) -> std::path::PathBuf {
    let out = dir.join(format!("{name}.wav"));
    let o = run(&[
        "--make-stream",
        tts_words().to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--minutes",
        "1",
        "--split",
        "all",
        "--seed",
        seed,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("keywords"), "{}", stderr(&o));
    out
}

#[test]
fn make_stream_is_deterministic_and_its_truth_is_where_the_words_are() {
    let d = scratch("streams-make");
    let a = make(&d, "a", "5");
    let b = make(&d, "b", "5");
    let c = make(&d, "c", "6");
    let bytes = |p: &std::path::Path| std::fs::read(p).unwrap();
    assert_eq!(bytes(&a), bytes(&b), "same seed, same audio");
    assert_eq!(
        bytes(&a.with_extension("csv")),
        bytes(&b.with_extension("csv"))
    );
    assert_ne!(bytes(&a), bytes(&c), "another seed, another stream");

    let x = read_mono_16k(&a, 120.0).unwrap();
    assert_eq!(x.len(), 60 * 16000);
    let truth = listen::measure::streams::read_truth(&a.with_extension("csv")).unwrap();
    // One word every ~3 s.
    assert!((17..=21).contains(&truth.len()), "{} words", truth.len());
    let ms = |t: u64| (t as usize * 16).min(x.len());
    for (i, w) in truth.iter().enumerate() {
        assert!(["left", "right", "up", "down"].contains(&w.label.as_str()));
        assert!(
            w.end_ms > w.start_ms + 100 && w.end_ms - w.start_ms < 1000,
            "{w:?}"
        );
        if i > 0 {
            assert!(
                w.start_ms >= truth[i - 1].end_ms + 1000,
                "words apart: {w:?}"
            );
        }
        // The word is well above the background just before it.
        let word = rms(&x[ms(w.start_ms)..ms(w.end_ms)]);
        let before =
            rms(&x[ms(w.start_ms.saturating_sub(400))..ms(w.start_ms.saturating_sub(100))]);
        assert!(
            word > 3.0 * before,
            "{w:?}: word {word} vs background {before}"
        );
    }
}

#[test]
fn each_clip_says_every_command_clip_once() {
    let d = scratch("streams-each-clip");
    let out = d.join("each.wav");
    let (words, out_s) = (tts_words().to_str().unwrap(), out.to_str().unwrap());
    let args = |seed| {
        [
            "--make-stream",
            words,
            "--each-clip",
            "--split",
            "all",
            "--seed",
            seed,
            "--out",
            out_s,
        ]
    };
    let o = run(&args("3"));
    assert!(o.status.success(), "{}", stderr(&o));
    let truth = listen::measure::streams::read_truth(&out.with_extension("csv")).unwrap();
    for word in ["left", "right", "up", "down"] {
        let clips = std::fs::read_dir(tts_words().join(word)).unwrap().count();
        let said = truth.iter().filter(|w| w.label == word).count();
        assert_eq!(said, clips, "{word}: every clip once");
    }
    // The stream ends a little after its last word, not at a length asked for.
    let x = read_mono_16k(&out, 3600.0).unwrap();
    let last = truth.last().unwrap().end_ms as usize * 16;
    assert!(
        x.len() > last && x.len() < last + 4 * 16000,
        "{} after {last}",
        x.len()
    );
    // Another seed: the same words in another order.
    let first = std::fs::read(out.with_extension("csv")).unwrap();
    let o = run(&args("4"));
    assert!(o.status.success(), "{}", stderr(&o));
    let again = listen::measure::streams::read_truth(&out.with_extension("csv")).unwrap();
    assert_eq!(again.len(), truth.len());
    assert_ne!(std::fs::read(out.with_extension("csv")).unwrap(), first);

    let o = run(&[&args("3")[..], &["--minutes", "5"]].concat());
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--minutes"), "{}", stderr(&o));
}

#[test]
fn each_clip_refuses_a_stream_longer_than_600_minutes() {
    // 10,500 command clips at ~3.5 s each would make ~612 minutes. The clips are never
    // read: the plan is refused before any audio is made.
    let d = scratch("streams-each-clip-long");
    let yes = d.join("words/yes");
    std::fs::create_dir_all(&yes).unwrap();
    for i in 0..10_500 {
        std::fs::write(yes.join(format!("s{i}_nohash_0.wav")), b"").unwrap();
    }
    let out = d.join("long.wav");
    let o = run(&[
        "--make-stream",
        d.join("words").to_str().unwrap(),
        "--each-clip",
        "--split",
        "all",
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--each-clip: 10500 clips") && err.contains("600"),
        "{err}"
    );
    assert!(!out.exists() && !out.with_extension("csv").exists());
}

#[test]
fn truth_scoring_and_sweep() {
    let d = scratch("streams-score");
    let a = make(&d, "s", "7");
    let csv = a.with_extension("csv");
    let o = run(&[
        "--input",
        a.to_str().unwrap(),
        "--truth",
        csv.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(stdout(&o).trim()).unwrap();
    let n = listen::measure::streams::read_truth(&csv).unwrap().len() as u64;
    assert_eq!(
        v["keywords"].as_u64().unwrap() + v["non_keywords"].as_u64().unwrap(),
        n
    );
    let parts = ["correct", "wrong", "missed"].map(|k| v[k].as_u64().unwrap());
    assert_eq!(parts.iter().sum::<u64>(), v["keywords"].as_u64().unwrap());
    // Clear synthetic words: the bundled model gets most of them.
    assert!(v["recall"].as_f64().unwrap() > 0.6, "{v}");
    // Every miss is listed with its time, and the text output says the same.
    let listed = |kind: &str| {
        let m = v["mistakes"].as_array().unwrap();
        m.iter().filter(|x| x["kind"] == kind).count() as u64
    };
    assert_eq!(listed("missed"), v["missed"].as_u64().unwrap(), "{v}");
    assert_eq!(listed("wrong"), v["wrong"].as_u64().unwrap(), "{v}");
    assert_eq!(listed("false_alarm"), v["false_alarms"].as_u64().unwrap());
    let text = run(&[
        "--input",
        a.to_str().unwrap(),
        "--truth",
        csv.to_str().unwrap(),
    ]);
    let misses = stdout(&text).matches(" s  missed ").count() as u64;
    assert_eq!(
        misses,
        v["missed"].as_u64().unwrap().min(20),
        "{}",
        stdout(&text)
    );

    let plot = d.join("det.png");
    let o = run(&[
        "--input",
        a.to_str().unwrap(),
        "--truth",
        csv.to_str().unwrap(),
        "--sweep",
        "--plot",
        plot.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let table = stdout(&o);
    assert!(table.contains("threshold smoothing min_windows"), "{table}");
    assert!(std::fs::read(&plot).unwrap().starts_with(b"\x89PNG"));
    // Replaying the recorded posteriors at the settings the run used (the bundled
    // model's own, from its card) gives exactly what the streaming detector gave.
    let own = listen::model::Model::bundled()
        .unwrap()
        .card
        .detector
        .unwrap_or_default();
    let default_row = [
        format!("{:.2}", own.threshold),
        own.smoothing.to_string(),
        own.min_windows.to_string(),
    ];
    let row: Vec<u64> = table
        .lines()
        .find(|l| l.split_whitespace().take(3).collect::<Vec<_>>() == default_row)
        .unwrap_or_else(|| panic!("no default row: {table}"))
        .split_whitespace()
        .skip(6)
        .take(4)
        .map(|x| x.parse().unwrap())
        .collect();
    let live: Vec<u64> = ["correct", "wrong", "missed", "false_alarms"]
        .iter()
        .map(|k| v[k].as_u64().unwrap())
        .collect();
    assert_eq!(row, live, "{table}");
}

#[test]
fn bad_truth_and_stream_inputs_are_clean_errors() {
    let d = scratch("streams-bad");
    let wav = d.join("x.wav");
    listen::audio::wav::write_wav(&wav, &vec![0.0; 16000], 16000).unwrap();
    let csv = d.join("bad.csv");
    std::fs::write(&csv, "label,start_ms,end_ms\nleft,100,oops\n").unwrap();
    assert_clean_error(
        &run(&[
            "--input",
            wav.to_str().unwrap(),
            "--truth",
            csv.to_str().unwrap(),
        ]),
        &["bad.csv:2", "label,start_ms,end_ms"],
    );
    assert_clean_error(
        &run(&["--input", wav.to_str().unwrap(), "--truth", "/no/truth.csv"]),
        &["/no/truth.csv"],
    );
    assert_clean_error(
        &run(&[
            "--make-stream",
            "/no/dir",
            "--out",
            d.join("o.wav").to_str().unwrap(),
        ]),
        &["/no/dir"],
    );
    assert_clean_error(
        &run(&[
            "--make-stream",
            tts_words().to_str().unwrap(),
            "--out",
            d.join("o.wav").to_str().unwrap(),
            "--minutes",
            "0",
        ]),
        &["--minutes 0"],
    );
    // A folder without any of the model's commands.
    let other = d.join("other/bed");
    std::fs::create_dir_all(&other).unwrap();
    listen::audio::wav::write_wav(&other.join("a_nohash_0.wav"), &vec![0.1; 16000], 16000).unwrap();
    assert_clean_error(
        &run(&[
            "--make-stream",
            d.join("other").to_str().unwrap(),
            "--out",
            d.join("o.wav").to_str().unwrap(),
            "--split",
            "all",
        ]),
        &["no clips", "commands"],
    );
    // Only silent clips of a command: an error, not an endless search for a word.
    let silent = d.join("silent/left");
    std::fs::create_dir_all(&silent).unwrap();
    listen::audio::wav::write_wav(&silent.join("a_nohash_0.wav"), &vec![0.0; 16000], 16000)
        .unwrap();
    assert_clean_error(
        &run(&[
            "--make-stream",
            d.join("silent").to_str().unwrap(),
            "--out",
            d.join("o.wav").to_str().unwrap(),
            "--split",
            "all",
            "--minutes",
            "0.5",
        ]),
        &["no audible clips", "silent"],
    );
    assert!(!d.join("o.wav").exists(), "nothing half-written");
}

#[test]
fn a_speech_stream_holds_running_speech_and_commands_said_alone() {
    let d = scratch("streams-speech");
    let make = |name: &str, every: &str| {
        let out = d.join(format!("{name}.wav"));
        let o = run(&[
            "--make-stream",
            tts_words().to_str().unwrap(),
            "--speech",
            tts_speech().to_str().unwrap(),
            "--split",
            "all",
            "--command-every",
            every,
            "--minutes",
            "1",
            "--seed",
            "3",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        (out, stderr(&o))
    };
    let (talk, said) = make("talk", "0");
    // 6 sentences and 3 words; the sentence with "left" is left out.
    assert!(said.contains("(8 distinct)"), "{said}");
    let truth = listen::measure::streams::read_truth(&talk.with_extension("csv")).unwrap();
    assert!(truth.len() > 5, "{truth:?}");
    assert!(truth
        .iter()
        .all(|w| w.label == listen::measure::streams::SPEECH_LABEL));
    let speech_ms: u64 = truth.iter().map(|w| w.end_ms - w.start_ms).sum();
    assert!(
        speech_ms > 30_000,
        "the minute is mostly speech: {speech_ms} ms"
    );

    let (mixed, _) = make("mixed", "10");
    let truth = listen::measure::streams::read_truth(&mixed.with_extension("csv")).unwrap();
    let commands: Vec<_> = truth
        .iter()
        .filter(|w| w.label != listen::measure::streams::SPEECH_LABEL)
        .collect();
    assert!((3..=8).contains(&commands.len()), "{truth:?}");
    // Said alone: at least half a second of quiet on either side.
    for c in commands {
        for w in &truth {
            if w != c {
                assert!(
                    w.end_ms + 500 <= c.start_ms || c.end_ms + 500 <= w.start_ms,
                    "{c:?} touches {w:?}"
                );
            }
        }
    }

    // Scored: every detection on speech is a false alarm, and the rate comes with its
    // interval.
    let o = run(&[
        "--input",
        talk.to_str().unwrap(),
        "--truth",
        talk.with_extension("csv").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("0 keywords") && out.contains("95% interval"),
        "{out}"
    );
}

#[test]
fn a_speech_folder_with_nothing_usable_is_one_line() {
    let d = scratch("streams-speech-empty");
    let sp = d.join("speech/19/198");
    std::fs::create_dir_all(&sp).unwrap();
    std::fs::copy(
        tts_speech().join("ls/100/7/100-7-0000.wav"),
        sp.join("19-198-0000.wav"),
    )
    .unwrap();
    let o = run(&[
        "--make-stream",
        tts_words().to_str().unwrap(),
        "--speech",
        d.join("speech").to_str().unwrap(),
        "--out",
        d.join("s.wav").to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["no usable WAV recordings", "want of a transcript"]);
    assert!(!d.join("s.wav").exists());
}

#[test]
fn an_unreadable_recording_among_the_speech_is_named_and_skipped() {
    let d = scratch("streams-speech-broken");
    let sp = d.join("speech");
    copy_tree(tts_speech(), &sp);
    // Cut off inside its header.
    let good = std::fs::read(sp.join("words/0.wav")).unwrap();
    std::fs::write(sp.join("words/broken.wav"), &good[..20]).unwrap();
    let out = d.join("s.wav");
    let o = run(&[
        "--make-stream",
        tts_words().to_str().unwrap(),
        "--speech",
        sp.to_str().unwrap(),
        "--split",
        "all",
        "--minutes",
        "1",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("broken.wav") && err.contains("skipped 1 unreadable"),
        "{err}"
    );
    assert!(out.exists());
}

#[test]
fn a_stream_never_replaces_what_the_user_made() {
    let d = scratch("streams-out-guard");
    let mine = d.join("take.wav");
    std::fs::write(&mine, "RIFF my recording").unwrap();
    std::fs::write(d.join("notes.csv"), "mine").unwrap();
    for (out, needle) in [
        (mine.clone(), "not a stream made by --make-stream"),
        (d.join("notes.wav"), "notes.csv exists"),
    ] {
        let o = run(&[
            "--make-stream",
            tts_words().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--minutes",
            "0.5",
            "--split",
            "all",
        ]);
        assert_clean_error(&o, &[needle]);
    }
    assert_eq!(std::fs::read(&mine).unwrap(), b"RIFF my recording");
    assert_eq!(std::fs::read(d.join("notes.csv")).unwrap(), b"mine");
    assert!(!d.join("take.csv").exists() && !d.join("notes.wav").exists());
    // A stream made before may be made again.
    let again = d.join("s.wav");
    for _ in 0..2 {
        let o = run(&[
            "--make-stream",
            tts_words().to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
            "--minutes",
            "0.5",
            "--split",
            "all",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
}
