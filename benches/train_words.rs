//! Your own words without recording them (issue 24): models trained by `--train-words`
//! alone, measured at their default settings on real recordings that no step of
//! training used.
//!
//!   cargo bench --bench train_words                   # computer,jarvis: the targets
//!   LISTEN_WORDS=alexa,snowboy cargo bench --bench train_words   # another pair
//!
//! For WORDS (two of ../shared/speech/other-words: alexa, computer, jarvis,
//! smart_mirror, snowboy, view_glass):
//! - `--train-words WORDS` from nothing (an empty cache: every clip said, every
//!   embedding computed), timed; then again with its cache, timed;
//! - recall on every real recording of WORDS said alone once over noise (each cut to
//!   its voiced span), with the other four words of other-words between them as
//!   non-commands (`--each-clip`);
//! - false alarms on held-out talk: for computer,jarvis 120 minutes of the test part of
//!   the shared speech (its ~85 minutes, then again in another order); for any other
//!   pair, used to choose the recipe, 60 minutes of its validation part (and the
//!   recordings of computer and jarvis are left out of its streams altogether);
//!
//! and, for computer,jarvis only (it writes BENCHMARKS.md's `train-words` block):
//! - takes: `--train-words left,right` alone, and with 10 takes of one Speech Commands
//!   speaker of the training split (5 of each word) added with `--takes`, on every
//!   left and right of the test split's speakers once (`test-each`, the other words of
//!   that stream as non-commands), and on the same held-out talk.
//!
//! Writes target/bench/train-words-WORDS.json.
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

mod common;
use common::{bin, root};
use listen::audio::wav;

fn listen(args: &[&str], cache: Option<&Path>) -> Value {
    let mut c = Command::new(bin());
    c.args(args);
    if let Some(d) = cache {
        c.env("LISTEN_CACHE_DIR", d);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "listen {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap_or(Value::Null)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// other-words recordings (3 s each, the word somewhere in them) cut to the voiced span
/// with 0.1 s either side, at most 1.5 s; `_background_noise_` from Speech Commands.
fn cut_other_words(speech: &Path, sc: &Path) -> PathBuf {
    let out = root().join("target/bench/other-words-cut");
    let stamp = out.join(".done");
    if stamp.exists() {
        return out;
    }
    let _ = std::fs::remove_dir_all(&out);
    for e in std::fs::read_dir(speech.join("other-words")).unwrap() {
        let dir = e.unwrap().path();
        let dest = out.join(dir.file_name().unwrap());
        std::fs::create_dir_all(&dest).unwrap();
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let Ok(x) = wav::read_mono_16k(&f, 10.0) else {
                continue;
            };
            let Some((a, b)) = wav::voiced_span(&x, wav::SAMPLE_RATE) else {
                continue;
            };
            let pad = 1600;
            let (a, b) = (a.saturating_sub(pad), (b + pad).min(x.len()));
            let b = b.min(a + 24_000);
            wav::write_wav(&dest.join(f.file_name().unwrap()), &x[a..b], 16_000).unwrap();
        }
    }
    std::os::unix::fs::symlink(
        sc.join("_background_noise_"),
        out.join("_background_noise_"),
    )
    .unwrap();
    std::fs::write(&stamp, "").unwrap();
    out
}

/// The cut other-words folder less the targets' words (links).
fn without_targets(cut: &Path) -> PathBuf {
    let out = root().join("target/bench/other-words-cut-val");
    if !out.exists() {
        std::fs::create_dir_all(&out).unwrap();
        for e in std::fs::read_dir(cut).unwrap() {
            let p = e.unwrap().path();
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            if p.is_dir() && !["computer", "jarvis"].contains(&name.as_str()) {
                std::os::unix::fs::symlink(&p, out.join(&name)).unwrap();
            }
        }
    }
    out
}

/// `--make-stream` once into target/bench/NAME.wav.
fn stream(name: &str, args: &[&str]) -> PathBuf {
    let wav = root().join(format!("target/bench/{name}.wav"));
    if !wav.with_extension("csv").exists() {
        let mut a = args.to_vec();
        a.extend(["--out", s(&wav)]);
        listen(&a, None);
    }
    wav
}

/// The model's default settings on a stream.
fn scored(model: &Path, wav: &Path) -> Value {
    let truth = wav.with_extension("csv");
    let mut v = listen(
        &[
            "--input",
            s(wav),
            "--truth",
            s(&truth),
            "--json",
            "--model",
            s(model),
        ],
        None,
    );
    if let Some(o) = v.as_object_mut() {
        o.remove("mistakes");
    }
    v
}

/// Trains WORDS into target/bench/tw-NAME with the cache in `cache`; returns the seconds.
fn train(words: &str, name: &str, cache: &Path, extra: &[&str]) -> (PathBuf, f64) {
    let model = root().join(format!("target/bench/tw-{name}"));
    let _ = std::fs::remove_dir_all(&model);
    let t = Instant::now();
    let mut a = vec![
        "--train-words",
        words,
        "--model",
        s(&model),
        "--quiet",
        "--json",
    ];
    a.extend(extra);
    listen(&a, Some(cache));
    (model, t.elapsed().as_secs_f64())
}

fn main() {
    let root = root();
    let Some(sc) = common::speech_commands() else {
        return;
    };
    if !root.join("../shared/speech/unpack").exists() {
        eprintln!("SKIPPED: ../shared/speech is absent; this benchmark needs it");
        return;
    }
    assert!(Command::new(root.join("scripts/negatives"))
        .status()
        .unwrap()
        .success());
    let negatives = root.join("data/negatives");
    let words = std::env::var("LISTEN_WORDS").unwrap_or_else(|_| "computer,jarvis".into());
    let tag = words.replace(',', "-");
    std::fs::create_dir_all(root.join("target/bench")).unwrap();
    let cut = cut_other_words(&root.join("data/speech"), &sc);

    // From nothing, then with its cache.
    let cache = root.join(format!("target/bench/tw-cache-{tag}"));
    let _ = std::fs::remove_dir_all(&cache);
    // Folder names to words: smart_mirror is "smart mirror".
    let said = words.replace('_', " ");
    let (model, fresh_s) = train(&said, &tag, &cache, &[]);
    let (_, cached_s) = train(&said, &format!("{tag}-again"), &cache, &[]);
    let card: Value =
        serde_json::from_slice(&std::fs::read(model.join("model.json")).unwrap()).unwrap();

    let m = s(&model);
    // The targets' words are measured on the test part of the talk; any other pair
    // (for choosing the recipe) on the validation part, and never beside the targets'
    // recordings.
    let target = words == "computer,jarvis";
    let (split, minutes) = if target {
        ("test", "120")
    } else {
        ("validation", "60")
    };
    let words_dir = if target {
        cut.clone()
    } else {
        without_targets(&cut)
    };
    let alone = stream(
        &format!("ow-each-{tag}"),
        &[
            "--make-stream",
            s(&words_dir),
            "--each-clip",
            "--split",
            "all",
            "--seed",
            "1",
            "--model",
            m,
        ],
    );
    let talk = stream(
        &format!("talk-words-{tag}"),
        &[
            "--make-stream",
            s(&words_dir),
            "--speech",
            s(&negatives),
            "--split",
            split,
            "--minutes",
            minutes,
            "--seed",
            "5",
            "--model",
            m,
        ],
    );
    let mut report = json!({
        "words": words,
        "talk": format!("{minutes} min of the {split} part"),
        "machine": listen::util::machine(),
        "seconds_from_nothing": fresh_s,
        "seconds_with_cache": cached_s,
        "detector": card["detector"],
        "alone": scored(&model, &alone),
        "on_talk": scored(&model, &talk),
        "held_out_voices": card["training"]["words"]["detector_choice"]["voices"],
    });
    eprintln!("{}", serde_json::to_string_pretty(&report).unwrap());
    if words == "computer,jarvis" {
        report["takes"] = takes(&sc, &negatives, &cache);
        eprintln!(
            "{}",
            serde_json::to_string_pretty(&report["takes"]).unwrap()
        );
    }
    let out = root.join(format!("target/bench/train-words-{tag}.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&report).unwrap()).unwrap();
    eprintln!("wrote {}", out.display());
    if target {
        listen::util::replace_section(&root.join("BENCHMARKS.md"), "train-words", &block(&report))
            .unwrap();
        eprintln!("updated BENCHMARKS.md (train-words)");
    }
}

fn pct(v: &Value) -> String {
    format!("{:.1}%", v.as_f64().unwrap_or(0.0) * 100.0)
}

/// False alarms per hour with their 95% interval.
fn per_hour(v: &Value) -> String {
    let i = &v["false_alarms_per_hour_95"];
    format!(
        "{:.1}/h ({} in {:.0} min; 95%: {:.1}-{:.1})",
        v["false_alarms_per_hour"].as_f64().unwrap_or(0.0),
        v["false_alarms"],
        v["duration_s"].as_f64().unwrap_or(0.0) / 60.0,
        i[0].as_f64().unwrap_or(0.0),
        i[1].as_f64().unwrap_or(0.0)
    )
}

/// The generated block of BENCHMARKS.md.
fn block(r: &Value) -> String {
    let a = &r["alone"];
    let t = &r["takes"];
    let row = |name: &str, v: &Value| {
        format!(
            "| {name} | {} of {} ({}) | {} on {} other words | {} |\n",
            v["each"]["correct"],
            v["each"]["keywords"],
            pct(&v["each"]["recall"]),
            v["each"]["false_alarms"],
            v["each"]["non_keywords"],
            per_hour(&v["talk"])
        )
    };
    format!(
        "Machine: {}. `cargo bench --bench train_words` (computer, jarvis; the models at their own default settings, threshold {:.2}).\n\n\
| `listen --train-words computer,jarvis` | |\n|---|---|\n\
| from nothing (every clip said, every embedding computed) | {:.0} s |\n\
| again, with its cache | {:.0} s |\n\
| real recordings said alone over noise (other-words, 50+ speakers, none trained on) | **{} of {} ({})**, {} false alarms on {} alexa, smart mirror, snowboy and view glass |\n\
| held-out talk, {} | **{}** |\n\
| held-out synthetic voices (what the detector saw) | {} |\n\n\
With 10 takes of one speaker (Speech Commands speaker {}, 5 of each word, training split), `--train-words left,right`, on every left and right of the test split's speakers once (`test-each`; the other words of that stream, up, down, yes, no, go, stop and 99 others, as non-commands) and on the same held-out talk:\n\n\
| model | left and right heard | false alarms in the stream | held-out talk |\n|---|---|---|---|\n{}{}",
        r["machine"].as_str().unwrap_or(""),
        r["detector"]["threshold"].as_f64().unwrap_or(0.0),
        r["seconds_from_nothing"].as_f64().unwrap_or(0.0),
        r["seconds_with_cache"].as_f64().unwrap_or(0.0),
        a["correct"],
        a["keywords"],
        pct(&a["recall"]),
        a["false_alarms"],
        a["non_keywords"],
        r["talk"].as_str().unwrap_or(""),
        per_hour(&r["on_talk"]),
        pct(&r["held_out_voices"]["recall"]),
        t["speaker"].as_str().unwrap_or(""),
        row("voices alone", &t["alone"]),
        row("voices + 10 takes", &t["with_takes"]),
    )
}

/// left,right alone and with 10 takes of one training-split speaker.
fn takes(sc: &Path, negatives: &Path, cache: &Path) -> Value {
    let root = root();
    // A speaker with 5 takes of each word, in the training split (so never in test-each).
    let speaker = "e41a903b";
    let split = listen::learn::dataset::split_of(&format!("{speaker}_nohash_0.wav"), 1);
    assert_eq!(split, listen::learn::dataset::Split::Train, "{speaker}");
    let dir = root.join("target/bench/takes-one-speaker");
    for w in ["left", "right"] {
        let d = dir.join(w);
        std::fs::create_dir_all(&d).unwrap();
        for n in 0..5 {
            let f = format!("{speaker}_nohash_{n}.wav");
            if !d.join(&f).exists() {
                std::fs::copy(sc.join(w).join(&f), d.join(&f)).unwrap();
            }
        }
    }
    let each = stream(
        "test-each",
        &[
            "--make-stream",
            s(sc),
            "--each-clip",
            "--seed",
            "1",
            "--split",
            "test",
        ],
    );
    let (alone, _) = train("left,right", "left-right", cache, &[]);
    let (with, _) = train(
        "left,right",
        "left-right-takes",
        cache,
        &["--takes", s(&dir)],
    );
    let talk = stream(
        "talk-words-left-right",
        &[
            "--make-stream",
            s(sc),
            "--speech",
            s(negatives),
            "--split",
            "test",
            "--minutes",
            "120",
            "--seed",
            "5",
            "--model",
            s(&alone),
        ],
    );
    json!({
        "speaker": speaker,
        "takes": 10,
        "alone": {"each": scored(&alone, &each), "talk": scored(&alone, &talk)},
        "with_takes": {"each": scored(&with, &each), "talk": scored(&with, &talk)},
    })
}
