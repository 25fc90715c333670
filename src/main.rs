//! The `listen` binary: parses the arguments, picks the one mode they ask for, refuses
//! options that do not belong to it, and hands the mode its options
//! (`listen::modes`). Every error ends as one line on stderr and exit code 2.
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches, Parser};
use listen::modes::{self, evaluate, listen::DetectorArgs, listen::ListenOptions, train};
use std::path::PathBuf;

/// Offline keyword spotting: say a command, see it in the terminal.
///
/// One mode per run: listening on the microphone (no mode option), or one of the
/// modes below. Each group of options below names the modes it belongs to; an option
/// given to another mode is refused.
#[derive(Parser, Debug)]
#[command(name = "listen", version, about, long_about)]
struct Args {
    /// Train a model on DIR (one folder of WAV clips per label; `_background_noise_` feeds
    /// augmentation and `_silence_`).
    #[arg(long, value_name = "DIR", help_heading = "Modes")]
    train: Option<PathBuf>,
    /// Report accuracy, per-label precision/recall/F1 and the confusion matrix on a labelled folder.
    #[arg(long, value_name = "DIR", help_heading = "Modes")]
    evaluate: Option<PathBuf>,
    /// Recognise whole clips (the first second of each file).
    #[arg(long, value_name = "FILE", num_args = 1.., help_heading = "Modes")]
    predict: Vec<PathBuf>,
    /// Run the listening engine on a recording (any rate and channel count) instead of the
    /// microphone, faster than real time, printing each detection with its time in the file.
    #[arg(long, value_name = "FILE", help_heading = "Modes")]
    input: Option<PathBuf>,
    /// Write a long test stream from a labelled folder: words every ~3 s over its
    /// `_background_noise_`, each one not a command with probability 0.3, as --out WAV plus
    /// a truth CSV beside it.
    #[arg(long, value_name = "DIR", help_heading = "Modes", requires = "out")]
    make_stream: Option<PathBuf>,
    /// Record your own clips of WORD from the microphone (with --into DIR): a countdown,
    /// a level meter, the word cut out and saved centred as DIR/WORD/<speaker>_nohash_<n>.wav.
    #[arg(long, value_name = "WORD", help_heading = "Modes", requires = "into")]
    record: Option<String>,
    /// List audio input devices with their default rate, channels and sample format.
    #[arg(long, help_heading = "Modes")]
    list_devices: bool,
    /// Train a model of new words or short phrases (comma-separated) with no recording:
    /// many synthetic voices say them, and the speech built into listen keeps the model
    /// quiet while people talk. Writes --model (default ./listen-model).
    #[arg(long, value_name = "WORDS", help_heading = "Modes")]
    train_words: Option<String>,

    /// Model folder. Listening, --input, --evaluate, --predict: the model to use
    /// (default: the bundled one); --make-stream: whose commands are keywords;
    /// --train, --train-words: where to write it (default: ./listen-model).
    #[arg(long, value_name = "PATH", help_heading = "Shared by several modes")]
    model: Option<PathBuf>,
    /// Print JSON instead of text (every mode but --make-stream).
    #[arg(long, help_heading = "Shared by several modes")]
    json: bool,
    /// No progress bars, epoch lines or start-up line (--train, --train-words,
    /// --evaluate, --input, listening).
    #[arg(long, short, help_heading = "Shared by several modes")]
    quiet: bool,

    /// Smoothed score a command must reach to be reported [default: the model's own
    /// setting, chosen on held-out streams (its card's `detector`), else 0.62].
    #[arg(
        long,
        allow_negative_numbers = true,
        help_heading = "Listening and --input"
    )]
    threshold: Option<f32>,
    /// How often the model looks at the last second, in ms.
    #[arg(long, default_value_t = 50, help_heading = "Listening and --input")]
    hop_ms: u32,
    /// Windows averaged for smoothing [default: the model's own, else 5].
    #[arg(long, help_heading = "Listening and --input")]
    smoothing: Option<usize>,
    /// Consecutive windows above the threshold before a detection [default: the
    /// model's own, else 3].
    #[arg(long, help_heading = "Listening and --input")]
    min_windows: Option<usize>,
    /// No new detection for this long after one, in ms.
    #[arg(long, default_value_t = 1000, help_heading = "Listening and --input")]
    refractory_ms: u64,
    /// Run this shell command on each detection, with LISTEN_LABEL, LISTEN_SCORE and
    /// LISTEN_TIME_MS set; it never delays detection.
    #[arg(long, value_name = "CMD", help_heading = "Listening and --input")]
    exec: Option<String>,
    /// The microphone: a case-insensitive part of its name (see --list-devices).
    /// Listening and --record.
    #[arg(long, value_name = "NAME", help_heading = "Shared by several modes")]
    device: Option<String>,
    /// Debugging: sleep this long after each model run (simulates a slow machine).
    #[arg(long, default_value_t = 0, hide = true)]
    inference_delay_ms: u64,
    /// Debugging: stall once for this long at the first model run.
    #[arg(long, default_value_t = 0, hide = true)]
    stall_ms: u64,

    /// Score the detections against this truth CSV (label,start_ms,end_ms): recall,
    /// misses, false alarms per hour, latency.
    #[arg(long, value_name = "CSV", requires = "input", help_heading = "--input")]
    truth: Option<PathBuf>,
    /// With --truth: how long after a word's end its detection may come, in ms.
    #[arg(long, default_value_t = listen::measure::score::DEFAULT_TOLERANCE_MS, help_heading = "--input")]
    tolerance_ms: u64,
    /// With --truth: score a range of thresholds and smoothing settings, print the table
    /// and draw the DET curve (miss rate against false alarms per hour).
    #[arg(long, requires = "truth", help_heading = "--input")]
    sweep: bool,
    /// With --sweep: where to draw the DET curve (default: beside --input, *-det.png).
    #[arg(long, value_name = "PNG", requires = "sweep", help_heading = "--input")]
    plot: Option<PathBuf>,

    /// --evaluate and --make-stream: only the clips of this split (train, validation,
    /// test, all), by the same speaker hash as training. --make-stream defaults to test.
    #[arg(
        long,
        value_name = "SPLIT",
        help_heading = "--evaluate and --make-stream"
    )]
    split: Option<String>,
    /// The WAV to write (the truth goes to the same name with .csv).
    #[arg(long, value_name = "FILE", help_heading = "--make-stream")]
    out: Option<PathBuf>,
    /// Length in minutes.
    #[arg(long, default_value_t = 10.0, help_heading = "--make-stream")]
    minutes: f64,
    /// Running speech instead of words every few seconds: the recordings of this
    /// folder (a tree of WAVs, as --negatives reads it) from speakers training never
    /// heard, end to end over the background noise, as `_speech_` rows of the truth.
    /// Utterances whose transcript holds a command are left out.
    #[arg(
        long,
        value_name = "DIR",
        requires = "make_stream",
        help_heading = "--make-stream"
    )]
    speech: Option<PathBuf>,
    /// With --speech: a command said alone (from --make-stream DIR's split) about every
    /// SECS seconds between the utterances; 0 for none (a stream of speech only).
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0.0,
        requires = "speech",
        help_heading = "--make-stream"
    )]
    command_every: f64,
    /// Every command clip of the split exactly once, in a shuffled order, with other
    /// words at the usual share, instead of random draws (which repeat the clips of a
    /// word that has few): as long as that takes, so not with --minutes.
    #[arg(
        long,
        requires = "make_stream",
        conflicts_with_all = ["minutes", "speech"],
        help_heading = "--make-stream"
    )]
    each_clip: bool,

    /// The data folder (one subfolder per word, as --train reads).
    #[arg(long, value_name = "DIR", help_heading = "--record")]
    into: Option<PathBuf>,
    /// How many clips to record.
    #[arg(long, default_value_t = 10, help_heading = "--record")]
    count: usize,
    /// Your name in the clips' names (default: your login name); training keeps each
    /// speaker's clips out of the test split of another's.
    #[arg(long, value_name = "NAME", help_heading = "--record")]
    speaker: Option<String>,

    /// Keywords (comma-separated); other word folders become `_unknown_`. Default: every folder.
    #[arg(long, value_delimiter = ',', help_heading = "--train")]
    words: Option<Vec<String>>,
    /// Passes over the training data at most (early stopping may end sooner)
    /// [default: 40; --train-words: 30].
    #[arg(long, help_heading = "--train")]
    epochs: Option<usize>,
    /// Examples per training step.
    #[arg(long, default_value_t = 64, help_heading = "--train")]
    batch_size: usize,
    /// Seed of the weights, the augmentation and the split of files without a speaker;
    /// with --make-stream, of the stream; with --train-words, of the voices too.
    #[arg(long, default_value_t = 1, help_heading = "--train")]
    seed: u64,
    /// Where training runs: cpu or cuda (default: cuda when available).
    #[arg(long, value_name = "cpu|cuda", help_heading = "--train")]
    compute: Option<String>,
    /// Network: tcresnet (97,218 parameters for 10 labels; the default without
    /// --negatives), tcresnet-wide (218,346), embedding-head-x3 (233,646: three small
    /// heads on Google's speech embedding, the bundled model's; the default with
    /// --negatives; see README), embedding-head (one head, 175,562) or tutorial (the
    /// tutorial's 29.5M CNN).
    #[arg(long, help_heading = "--train")]
    arch: Option<String>,
    /// Fine-tune from a model (a folder; no value: the bundled one) instead of starting
    /// afresh: its labels are kept, the folders of DIR add new ones.
    #[arg(long, value_name = "MODEL", num_args = 0..=1, default_missing_value = "bundled", requires = "train", help_heading = "--train")]
    from: Option<String>,
    /// Peak learning rate (AdamW, warm-up then cosine decay). Default 3e-3, 1e-3 with --from.
    #[arg(long, help_heading = "--train")]
    lr: Option<f64>,
    /// Stop after this many epochs without a better validation loss.
    #[arg(long, default_value_t = 10, help_heading = "--train")]
    patience: usize,
    /// Start no new epoch after this many seconds.
    #[arg(long, value_name = "SECS", help_heading = "--train")]
    time_budget: Option<f64>,
    /// Speech that is not a command (a folder tree of WAV recordings of any length:
    /// running speech, other words, other languages): 1-s crops become `_unknown_`,
    /// commands are mixed over it, and windows that fire on it are mined and trained
    /// against. LibriSpeech utterances whose transcript holds a command are left out.
    #[arg(long, value_name = "DIR", help_heading = "--train")]
    negatives: Option<PathBuf>,
    /// Quiet before each clip in the model's window, in ms: the model then sees what
    /// came before a word (speech, or the pause of a command said alone) [default: 400
    /// with --negatives, else 0].
    #[arg(long, help_heading = "--train")]
    lead_ms: Option<u32>,
    /// With --negatives: hard-negative mining rounds.
    #[arg(long, default_value_t = 3, help_heading = "--train")]
    mining_rounds: usize,
    /// Train without augmentation (for comparisons).
    #[arg(long, help_heading = "--train")]
    no_augment: bool,
    /// Worker threads: --train, --train-words, --evaluate and --input (default: every core).
    #[arg(long, help_heading = "--train")]
    threads: Option<usize>,

    /// Synthetic voices saying each word.
    #[arg(long, default_value_t = 200, help_heading = "--train-words")]
    voices: usize,
    /// Your own takes of the words, added to the voices: a folder with one subfolder
    /// per word, as `listen --record WORD --into DIR` makes it.
    #[arg(long, value_name = "DIR", help_heading = "--train-words")]
    takes: Option<PathBuf>,
}

/// What one run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Listen,
    Input,
    Train,
    Evaluate,
    Predict,
    MakeStream,
    Record,
    ListDevices,
    TrainWords,
}

/// The options that choose a mode (listening is the absence of all of them).
const MODE_FLAGS: [(&str, Mode); 8] = [
    ("train", Mode::Train),
    ("evaluate", Mode::Evaluate),
    ("predict", Mode::Predict),
    ("input", Mode::Input),
    ("make_stream", Mode::MakeStream),
    ("record", Mode::Record),
    ("list_devices", Mode::ListDevices),
    ("train_words", Mode::TrainWords),
];

/// The modes each option belongs to (mode options themselves aside).
fn belongs_to(option: &str) -> &'static [Mode] {
    use Mode::*;
    match option {
        "model" => &[
            Listen, Input, Train, Evaluate, Predict, MakeStream, TrainWords,
        ],
        "json" => &[
            Listen,
            Input,
            Train,
            Evaluate,
            Predict,
            Record,
            ListDevices,
            TrainWords,
        ],
        "quiet" => &[Listen, Input, Train, Evaluate, TrainWords],
        "threshold" | "hop_ms" | "smoothing" | "min_windows" | "refractory_ms" | "exec"
        | "inference_delay_ms" | "stall_ms" => &[Listen, Input],
        "device" => &[Listen, Record],
        "truth" | "tolerance_ms" | "sweep" | "plot" => &[Input],
        "split" => &[Evaluate, MakeStream],
        "out" | "minutes" | "speech" | "command_every" | "each_clip" => &[MakeStream],
        "seed" => &[Train, MakeStream, TrainWords],
        "into" | "count" | "speaker" => &[Record],
        "threads" => &[Train, Evaluate, Input, TrainWords],
        "epochs" => &[Train, TrainWords],
        "voices" | "takes" => &[TrainWords],
        _ => &[Train],
    }
}

fn flag(id: &str) -> String {
    format!("--{}", id.replace('_', "-"))
}

fn mode_name(mode: Mode) -> String {
    match MODE_FLAGS.iter().find(|(_, m)| *m == mode) {
        Some((id, _)) => flag(id),
        None => "listening on the microphone".to_string(),
    }
}

/// The one mode the options ask for; two modes, or an option of another mode, is an error.
fn pick_mode(given: &[&str]) -> Result<Mode, String> {
    let modes: Vec<&(&str, Mode)> = MODE_FLAGS
        .iter()
        .filter(|(id, _)| given.contains(id))
        .collect();
    let mode = match modes.as_slice() {
        [] => Mode::Listen,
        [(_, m)] => *m,
        [(a, _), (b, _), ..] => {
            return Err(format!(
                "{} and {} are two modes; run one at a time (listen --help lists the modes)",
                flag(a),
                flag(b)
            ))
        }
    };
    for id in given
        .iter()
        .filter(|id| !MODE_FLAGS.iter().any(|(m, _)| m == *id))
    {
        if !belongs_to(id).contains(&mode) {
            let hint = if *id == "device" && mode == Mode::Train {
                " (it names a microphone; training's cpu or cuda is --compute)"
            } else {
                ""
            };
            return Err(format!(
                "{} does not apply to {}{hint}; listen --help shows which options belong to which mode",
                flag(id),
                mode_name(mode)
            ));
        }
    }
    Ok(mode)
}

fn main() {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("listen: internal error: {info}");
    }));
    let matches = Args::command()
        .try_get_matches()
        .unwrap_or_else(|e| exit_on_argument_error(e));
    let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| exit_on_argument_error(e));
    let given = given_on_command_line(&matches);
    let mode = pick_mode(&given).unwrap_or_else(|e| exit_with(&e));
    match dispatch(args, mode) {
        Ok(code) => std::process::exit(code),
        Err(e) => exit_with(&format!("{e:#}")),
    }
}

fn exit_with(message: &str) -> ! {
    eprintln!("listen: error: {message}");
    std::process::exit(2);
}

/// `--help` and `--version` print as clap prints them; any other argument error is one
/// `listen: error:` line with exit code 2, as every other error.
fn exit_on_argument_error(e: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("bad arguments");
    let first = first.strip_prefix("error: ").unwrap_or(first);
    exit_with(&format!("{first} (listen --help lists the options)"));
}

/// The options typed on the command line (not defaults; not clap's argument groups).
fn given_on_command_line(m: &ArgMatches) -> Vec<&str> {
    let cmd = Args::command();
    m.ids()
        .map(|id| id.as_str())
        .filter(|id| cmd.get_arguments().any(|a| a.get_id() == *id))
        .filter(|id| m.value_source(id) == Some(ValueSource::CommandLine))
        .collect()
}

fn dispatch(a: Args, mode: Mode) -> anyhow::Result<i32> {
    let threads = modes::threads(a.threads)?;
    match mode {
        Mode::Listen | Mode::Input => modes::listen::run(&ListenOptions {
            model: a.model,
            input: a.input,
            device: a.device,
            detector: DetectorArgs {
                threshold: a.threshold,
                smoothing: a.smoothing,
                min_windows: a.min_windows,
                hop_ms: a.hop_ms,
                refractory_ms: a.refractory_ms,
                inference_delay_ms: a.inference_delay_ms,
                stall_ms: a.stall_ms,
            },
            exec: a.exec,
            json: a.json,
            quiet: a.quiet,
            truth: a.truth,
            tolerance_ms: a.tolerance_ms,
            sweep: a.sweep,
            plot: a.plot,
            threads,
        }),
        Mode::Train => modes::train::run(&train::TrainArgs {
            dir: a.train.unwrap_or_default(),
            model: a.model,
            words: a.words,
            epochs: a.epochs.unwrap_or(40),
            batch_size: a.batch_size,
            seed: a.seed,
            compute: a.compute,
            arch: a.arch,
            from: a.from,
            lr: a.lr,
            patience: a.patience,
            time_budget: a.time_budget,
            negatives: a.negatives,
            lead_ms: a.lead_ms,
            mining_rounds: a.mining_rounds,
            no_augment: a.no_augment,
            threads,
            quiet: a.quiet,
            json: a.json,
        }),
        Mode::Evaluate => evaluate::run(&evaluate::EvaluateOptions {
            dir: a.evaluate.unwrap_or_default(),
            model: a.model,
            split: modes::parse_split(a.split.as_deref().unwrap_or("all"))?,
            threads,
            json: a.json,
            quiet: a.quiet,
        }),
        Mode::Predict => evaluate::predict(a.model.as_deref(), &a.predict, a.json),
        Mode::MakeStream => modes::stream::run(&modes::stream::MakeStreamOptions {
            dir: a.make_stream.unwrap_or_default(),
            out: a.out.unwrap_or_default(),
            minutes: a.minutes,
            seed: a.seed,
            split: a.split,
            speech: a.speech,
            command_every: a.command_every,
            each_clip: a.each_clip,
            model: a.model,
        }),
        Mode::Record => {
            use listen::live::record;
            let opts = record::RecordOptions {
                word: a.record.unwrap_or_default(),
                into: a.into.unwrap_or_default(),
                count: a.count,
                speaker: a.speaker.unwrap_or_else(record::default_speaker),
                room_secs: 3.0,
                take_secs: 2.5,
                beat: std::time::Duration::from_millis(600),
                meter: std::io::IsTerminal::is_terminal(&std::io::stderr()),
            };
            modes::record::run(&opts, a.device.as_deref(), a.json)
        }
        Mode::ListDevices => modes::devices::run(a.json),
        Mode::TrainWords => {
            use listen::learn::train_words::TrainWordsOptions;
            let mut o = TrainWordsOptions::new(
                &a.train_words.unwrap_or_default(),
                a.model.unwrap_or_else(|| PathBuf::from("listen-model")),
            );
            o.voices = a.voices;
            o.takes = a.takes;
            o.epochs = a.epochs.unwrap_or(o.epochs);
            o.seed = a.seed;
            o.threads = threads;
            o.quiet = a.quiet;
            modes::train_words::run(&o, a.json)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_is_accepted_by_the_modes_it_belongs_to() {
        use Mode::*;
        let ok: [(&[&str], Mode); 9] = [
            (
                &[
                    "device",
                    "threshold",
                    "smoothing",
                    "min_windows",
                    "hop_ms",
                    "refractory_ms",
                    "exec",
                    "model",
                    "json",
                    "quiet",
                ],
                Listen,
            ),
            (
                &[
                    "input",
                    "truth",
                    "tolerance_ms",
                    "sweep",
                    "plot",
                    "threshold",
                    "exec",
                    "model",
                    "json",
                    "quiet",
                    "inference_delay_ms",
                    "stall_ms",
                ],
                Input,
            ),
            (
                &[
                    "train",
                    "model",
                    "words",
                    "epochs",
                    "batch_size",
                    "seed",
                    "compute",
                    "arch",
                    "from",
                    "lr",
                    "patience",
                    "time_budget",
                    "negatives",
                    "lead_ms",
                    "mining_rounds",
                    "no_augment",
                    "threads",
                    "quiet",
                    "json",
                ],
                Train,
            ),
            (
                &["evaluate", "split", "threads", "model", "json", "quiet"],
                Evaluate,
            ),
            (&["predict", "model", "json"], Predict),
            (
                &[
                    "make_stream",
                    "out",
                    "minutes",
                    "seed",
                    "split",
                    "speech",
                    "command_every",
                    "each_clip",
                    "model",
                ],
                MakeStream,
            ),
            (
                &["record", "into", "count", "speaker", "device", "json"],
                Record,
            ),
            (&["list_devices", "json"], ListDevices),
            (
                &[
                    "train_words",
                    "model",
                    "voices",
                    "takes",
                    "epochs",
                    "seed",
                    "threads",
                    "quiet",
                    "json",
                ],
                TrainWords,
            ),
        ];
        for (given, want) in ok {
            assert_eq!(pick_mode(given), Ok(want), "{given:?}");
        }
        // Every option of the command line is in one of the lists above.
        let listed: Vec<&str> = ok.iter().flat_map(|(g, _)| g.iter().copied()).collect();
        for a in Args::command().get_arguments() {
            let id = a.get_id().as_str();
            assert!(
                listed.contains(&id) || ["help", "version"].contains(&id),
                "{id} belongs to no mode in this test"
            );
        }
    }

    #[test]
    fn options_of_other_modes_and_second_modes_are_refused() {
        for given in [
            &["input", "device"][..],
            &["predict", "threshold"],
            &["make_stream", "out", "json"],
            &["record", "into", "model"],
            &["list_devices", "quiet"],
            &["train", "exec"],
            &["train_words", "negatives"],
            &["train", "voices"],
            &["into"],
        ] {
            let e = pick_mode(given).unwrap_err();
            assert!(e.contains("does not apply"), "{given:?}: {e}");
            // The --compute hint is for --device given to --train, and only that.
            assert!(!e.contains("--compute"), "{given:?}: {e}");
        }
        let e = pick_mode(&["train", "device"]).unwrap_err();
        assert!(e.contains("--compute"), "{e}");
        let e = pick_mode(&["input", "predict"]).unwrap_err();
        assert!(e.contains("--predict and --input are two modes"), "{e}");
    }
}
