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
    listen::audio::write_wav(&wav, &x, 16000).unwrap();
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
