//! `listen --train-words`: a model of new words from synthetic voices alone (and with a
//! few takes of one's own), end to end on a small scale, and every bad input the issue
//! lists. (Its accuracy on real speakers is a benchmark: `cargo bench --bench
//! train_words`.)
mod common;
use common::*;
use std::path::Path;

fn card(model: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap()
}

fn json_line(o: &std::process::Output) -> serde_json::Value {
    let out = stdout(o);
    serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{}", stderr(o)))
}

#[test]
fn a_word_nobody_recorded_becomes_a_model_that_hears_it_and_says_how_it_was_made() {
    let d = scratch("train-words");
    let model = d.join("lights-model");
    let m = model.to_str().unwrap();
    let o = run(&[
        "--train-words",
        "lights",
        "--voices",
        "24",
        "--epochs",
        "8",
        "--model",
        m,
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v = json_line(&o);
    let threshold = v["detector"]["threshold"].as_f64().unwrap();
    assert!((0.3..=0.99).contains(&threshold), "{v}");
    let c = card(&model);
    assert_eq!(c["labels"], serde_json::json!(["_unknown_", "lights"]));
    let w = &c["training"]["words"];
    assert_eq!(w["trained_without_recordings"], true, "{w}");
    assert_eq!(w["voices"], 24);
    for e in ["espeak-ng", "flite", "piper", "kokoro"] {
        assert!(w["engines"][e].as_u64().unwrap() > 0, "{e} missing: {w}");
    }
    let alikes: Vec<&str> = w["sound_alikes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        alikes.contains(&"nights") && !alikes.contains(&"lights"),
        "{alikes:?}"
    );
    let in_card = c["detector"]["threshold"].as_f64().unwrap();
    assert!((in_card - threshold).abs() < 1e-6, "{in_card} {threshold}");
    // The negatives were the bank built into listen: no speech folder was given.
    assert_eq!(
        c["training"]["negatives"]["folder"], "the bank built into listen",
        "{}",
        c["training"]
    );

    // It hears the word said by a voice it never trained on (espeak-ng's default one,
    // at its default speed and pitch: no voice drawn has exactly those), and not a
    // word it was never taught.
    let said = d.join("said");
    std::fs::create_dir_all(&said).unwrap();
    let (x, _) = make_stream(&["lights", "table", "lights"], 2.0, 0.003, &said);
    let wav = d.join("lights.wav");
    listen::audio::wav::write_wav(&wav, &x, 16_000).unwrap();
    let o = run(&[
        "--input",
        wav.to_str().unwrap(),
        "--model",
        m,
        "--json",
        "--threshold",
        "0.5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let heard: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at: Vec<u64> = heard
        .iter()
        .map(|d| d["time_ms"].as_u64().unwrap())
        .collect();
    assert!(heard.iter().all(|d| d["label"] == "lights"), "{heard:?}");
    assert!(
        at.iter().any(|&t| t < 4_000) && at.iter().any(|&t| t > 6_500),
        "both 'lights' heard, 'table' not: {heard:?}"
    );
    assert!(
        !at.iter().any(|&t| (4_200..6_200).contains(&t)),
        "{heard:?}"
    );

    // Again with three takes of one's own: the card counts them, and the clips said
    // the first time come from the cache.
    let takes = d.join("takes/lights");
    std::fs::create_dir_all(&takes).unwrap();
    for n in 0..3 {
        let x = spoken("lights", &said);
        listen::audio::wav::write_wav(&takes.join(format!("me_nohash_{n}.wav")), &x, 16_000)
            .unwrap();
    }
    let again = d.join("lights-takes");
    let o = run(&[
        "--train-words",
        "lights",
        "--voices",
        "24",
        "--epochs",
        "1",
        "--model",
        again.to_str().unwrap(),
        "--takes",
        d.join("takes").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("from the cache"), "{}", stderr(&o));
    let w = &card(&again)["training"]["words"];
    assert_eq!(w["trained_without_recordings"], false, "{w}");
    assert_eq!(w["your_takes"]["lights"], 3, "{w}");
}

#[test]
fn bad_words_a_foreign_folder_missing_voices_and_missing_takes_are_one_line_each() {
    let d = scratch("train-words-bad");
    let m = d.join("m");
    let m = m.to_str().unwrap();
    for (words, needle) in [
        ("42", "'42' is digits only"),
        ("lights,,music", "empty word"),
        ("lights,Lights", "'lights' is given twice"),
        ("свет", "'свет' has"),
        ("_unknown_", "already one of the model's labels"),
        ("turn on every light in the house", "too long"),
    ] {
        let o = run(&["--train-words", words, "--model", m]);
        assert_clean_error(&o, &[needle]);
    }
    assert!(!Path::new(m).exists(), "nothing written for bad words");

    // A folder that is not a model: refused before any work, its file untouched.
    let mine = d.join("mine");
    std::fs::create_dir_all(&mine).unwrap();
    std::fs::write(mine.join("notes.txt"), "mine").unwrap();
    let o = run(&["--train-words", "lights", "--model", mine.to_str().unwrap()]);
    assert_clean_error(&o, &["notes.txt", "not part of a model"]);
    assert_eq!(
        std::fs::read_to_string(mine.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&mine).unwrap().count(), 1);

    // Takes that are not there, or hold no take of the words.
    let o = run(&[
        "--train-words",
        "lights",
        "--model",
        m,
        "--takes",
        "/no/such/takes",
    ]);
    assert_clean_error(&o, &["/no/such/takes"]);
    let empty = d.join("takes");
    std::fs::create_dir_all(empty.join("music")).unwrap();
    let o = run(&[
        "--train-words",
        "lights",
        "--model",
        m,
        "--takes",
        empty.to_str().unwrap(),
    ]);
    assert_clean_error(&o, &["no takes of lights"]);

    // The neural voices not installed: one line naming them and set-up.
    let o = std::process::Command::new(bin())
        .args(["--train-words", "lights", "--model", m])
        .env("LISTEN_CACHE_DIR", test_cache())
        .env("LISTEN_VOICES_DIR", d.join("no-voices"))
        .output()
        .unwrap();
    assert_clean_error(&o, &["neural voices", "not installed", "scripts/setup"]);

    // Options of --train are not --train-words' own.
    let o = run(&["--train-words", "lights", "--negatives", "speech"]);
    assert_clean_error(&o, &["--negatives does not apply to --train-words"]);
}
