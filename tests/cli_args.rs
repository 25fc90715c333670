//! Arguments as users give them: every misuse is one `listen:` line with exit code 2,
//! and the detector settings given on the command line are the ones used.
mod common;
use common::*;

#[test]
fn argument_errors_are_one_line() {
    for args in [
        &["--no-such-flag"][..],
        &["--threshold"],
        &["--hop-ms", "fast"],
        &["--train", "x", "--evaluate", "y"],
    ] {
        let o = run(args);
        assert_clean_error(&o, &["listen --help"]);
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
    let o = run(&["--help"]);
    assert!(o.status.success() && stdout(&o).contains("--threshold"));
}

#[test]
fn meaningless_detector_settings_are_refused() {
    for (args, needle) in [
        (&["--threshold", "-1"][..], "--threshold -1"),
        (&["--threshold=1.5"], "--threshold 1.5"),
        (&["--smoothing", "0"], "--smoothing"),
        (&["--min-windows", "0"], "--min-windows"),
        (&["--hop-ms", "0"], "--hop-ms 0"),
        (&["--hop-ms", "1001"], "--hop-ms 1001"),
    ] {
        let mut a = args.to_vec();
        a.extend(["--input", "/nonexistent.wav"]);
        assert_clean_error(&run(&a), &[needle]);
    }
}

#[test]
fn the_threshold_given_is_the_threshold_used() {
    let d = scratch("cli-threshold");
    let (x, _) = make_stream(&["left", "yes", "stop", "right", "no", "go"], 1.5, 0.01, &d);
    let wav = d.join("words.wav");
    listen::audio::wav::write_wav(&wav, &x, 16000).unwrap();
    let scores = |extra: &[&str]| -> Vec<f64> {
        let mut a = vec!["--input", wav.to_str().unwrap(), "--json", "--quiet"];
        a.extend(extra);
        let o = run(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["score"]
                    .as_f64()
                    .unwrap()
            })
            .collect()
    };
    let loose = scores(&[
        "--threshold",
        "0.3",
        "--smoothing",
        "1",
        "--min-windows",
        "1",
    ]);
    let strict = scores(&[
        "--threshold",
        "0.99",
        "--smoothing",
        "1",
        "--min-windows",
        "1",
    ]);
    assert!(
        loose.len() > strict.len(),
        "0.3: {loose:?}, 0.99: {strict:?}"
    );
    assert!(loose.iter().all(|&s| s >= 0.3) && strict.iter().all(|&s| s >= 0.99));
}

#[test]
fn a_command_every_few_seconds_is_refused() {
    for every in ["2", "5000"] {
        let o = run(&[
            "--make-stream",
            "/nonexistent",
            "--speech",
            "/nonexistent",
            "--command-every",
            every,
            "--out",
            "/nonexistent/x.wav",
        ]);
        assert_clean_error(&o, &[&format!("--command-every {every}")]);
    }
}

#[test]
fn a_lead_out_of_range_or_with_from_is_refused() {
    let o = run(&[
        "--train",
        "/nonexistent",
        "--lead-ms",
        "3000",
        "--model",
        "/nonexistent/m",
    ]);
    assert_clean_error(&o, &["--lead-ms 3000"]);
    let o = run(&[
        "--train",
        "/nonexistent",
        "--from",
        "--lead-ms",
        "400",
        "--model",
        "/nonexistent/m",
    ]);
    assert_clean_error(&o, &["--lead-ms", "keeps the window of --from"]);
}

#[test]
fn one_mode_per_run() {
    let pairs: [(&[&str], &str); 6] = [
        (
            &["--input", "x.wav", "--record", "w", "--into", "d"],
            "two modes",
        ),
        (&["--input", "x.wav", "--predict", "y.wav"], "two modes"),
        (
            &["--list-devices", "--input", "x.wav", "--predict", "y.wav"],
            "two modes",
        ),
        (
            &["--make-stream", "d", "--out", "o.wav", "--input", "x.wav"],
            "two modes",
        ),
        (&["--train", "x", "--evaluate", "y"], "two modes"),
        // --into belongs to --record: alone, it is not a way to start listening.
        (&["--into", "d"], "--into does not apply to listening"),
    ];
    for (args, needle) in pairs {
        let o = run(args);
        assert_clean_error(&o, &[needle]);
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn options_of_another_mode_are_refused_by_name() {
    let cases: [(&[&str], &str); 9] = [
        (
            &["--input", "x.wav", "--words", "a,b"],
            "--words does not apply to --input",
        ),
        (
            &["--input", "x.wav", "--epochs", "3"],
            "--epochs does not apply to --input",
        ),
        (
            &["--input", "x.wav", "--split", "test"],
            "--split does not apply to --input",
        ),
        (
            &["--input", "x.wav", "--device", "nosuch"],
            "--device does not apply to --input",
        ),
        (
            &["--predict", "y.wav", "--threshold", "0.5"],
            "--threshold does not apply to --predict",
        ),
        (
            &["--predict", "y.wav", "--exec", "true"],
            "--exec does not apply to --predict",
        ),
        (
            &["--evaluate", "d", "--seed", "3"],
            "--seed does not apply to --evaluate",
        ),
        (&["--train", "d", "--device", "cpu"], "--compute"),
        (
            &["--predict", "y.wav", "--threads", "2"],
            "--threads does not apply to --predict",
        ),
    ];
    // --threads belongs to --input too (its parts are scored on that many cores): the
    // error is then about the file, not the option.
    let o = run(&["--input", "nosuch.wav", "--threads", "2"]);
    assert_clean_error(&o, &["nosuch.wav"]);
    assert!(!stderr(&o).contains("--threads"), "{}", stderr(&o));
    // No threads at all is no way to work.
    for mode in [&["--input", "x.wav"][..], &["--evaluate", "d"][..]] {
        let mut args = mode.to_vec();
        args.extend(["--threads", "0"]);
        assert_clean_error(&run(&args), &["--threads 0", "1 or more"]);
    }
    assert_clean_error(
        &run(&["--train", "d", "--compute", "tpu"]),
        &["--compute tpu", "cpu or cuda"],
    );
    for (args, needle) in cases {
        assert_clean_error(&run(args), &[needle, "listen --help"]);
    }
    // An empty device name is no device.
    assert_clean_error(&run(&["--device", ""]), &["--device", "--list-devices"]);
}

#[test]
fn a_truth_longer_than_the_audio_is_refused() {
    let d = scratch("cli-truth-length");
    let wav = d.join("short.wav");
    listen::audio::wav::write_wav(&wav, &vec![0.0; 16000 * 5], 16000).unwrap();
    let truth = d.join("long.csv");
    std::fs::write(
        &truth,
        "label,start_ms,end_ms\nleft,1000,1600\nright,3600000,3600600\n",
    )
    .unwrap();
    let o = run(&[
        "--input",
        wav.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["long.csv", "3600.6 s", "5.0 s", "another recording"]);
    // A word may end in the second of flush after the audio: up to 6.000 s is this
    // recording's truth, 6.001 s is not.
    for (end_ms, fits) in [(5500, true), (6000, true), (6001, false)] {
        std::fs::write(
            &truth,
            format!("label,start_ms,end_ms\nleft,{},{end_ms}\n", end_ms - 400),
        )
        .unwrap();
        let o = run(&[
            "--input",
            wav.to_str().unwrap(),
            "--truth",
            truth.to_str().unwrap(),
            "--hop-ms",
            "1000",
        ]);
        assert_eq!(o.status.success(), fits, "{end_ms}: {}", stderr(&o));
    }
}

/// A WAV header with the given format tag and bit depth, and a little data.
fn wav_with_format(tag: u16, bits: u16) -> Vec<u8> {
    let block = bits / 8;
    let data = vec![0u8; 1600 * block as usize];
    let mut v = Vec::new();
    v.extend(b"RIFF");
    v.extend((36 + data.len() as u32).to_le_bytes());
    v.extend(b"WAVEfmt ");
    v.extend(16u32.to_le_bytes());
    v.extend(tag.to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(16000u32.to_le_bytes());
    v.extend((16000 * block as u32).to_le_bytes());
    v.extend(block.to_le_bytes());
    v.extend(bits.to_le_bytes());
    v.extend(b"data");
    v.extend((data.len() as u32).to_le_bytes());
    v.extend(data);
    v
}

#[test]
fn unreadable_audio_formats_are_named_with_a_way_to_convert_them() {
    let d = scratch("cli-formats");
    let mut mp3 = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    mp3.extend([0xFF, 0xFB, 0x90, 0x64]);
    mp3.extend(vec![0u8; 400]);
    let cases: [(&str, Vec<u8>, &str); 4] = [
        ("f64.wav", wav_with_format(3, 64), "64-bit float"),
        ("alaw.wav", wav_with_format(6, 8), "A-law"),
        ("mulaw.wav", wav_with_format(7, 8), "µ-law"),
        ("song.wav", mp3, "MP3"),
    ];
    for (name, bytes, what) in cases {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        for mode in ["--input", "--predict"] {
            let o = run(&[mode, p.to_str().unwrap()]);
            assert_clean_error(&o, &[name, what, "sox", "ffmpeg"]);
        }
    }
}

#[test]
fn paths_of_the_wrong_kind_say_what_they_are() {
    let d = scratch("cli-paths");
    let file = d.join("notes.txt");
    std::fs::write(&file, "mine").unwrap();
    let f = file.to_str().unwrap();
    let model = d.join("m").to_str().unwrap().to_string();
    assert_clean_error(
        &run(&["--train", f, "--model", &model]),
        &["notes.txt is a file, not a folder"],
    );
    assert_clean_error(
        &run(&["--evaluate", f]),
        &["notes.txt is a file, not a folder"],
    );
    assert_clean_error(
        &run(&["--predict", "x.wav", "--model", f]),
        &["notes.txt is a file"],
    );
    // --from names the model to fine-tune: no advice about --model.
    let data = d.join("data");
    std::fs::create_dir_all(data.join("a")).unwrap();
    let o = run(&[
        "--train",
        data.to_str().unwrap(),
        "--from",
        "/nonexistent",
        "--model",
        &model,
    ]);
    assert_clean_error(&o, &["--from /nonexistent", "no such model folder"]);
    assert!(!stderr(&o).contains("leave out --model"), "{}", stderr(&o));
}

#[test]
fn a_wav_without_samples_is_the_same_error_everywhere() {
    let d = scratch("cli-header-only");
    let wav = d.join("empty.wav");
    listen::audio::wav::write_wav(&wav, &[], 16000).unwrap();
    for mode in ["--input", "--predict"] {
        assert_clean_error(
            &run(&[mode, wav.to_str().unwrap()]),
            &["empty.wav", "no audio"],
        );
    }
}
