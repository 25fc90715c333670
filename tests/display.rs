//! The live terminal display, in a real terminal (tmux, on a private server socket):
//! it shows the device, the keyword bars and a played word as a detection, says so when
//! audio is dropped, and `q` quits leaving the terminal restored.
mod common;
use common::vmic::VirtualMic;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    /// A detached 100x40 session running `cmd` (then reporting its exit code and waiting).
    fn start(name: &str, cmd: &str) -> Tmux {
        Tmux::start_sized(name, cmd, 100, 40)
    }

    fn start_sized(name: &str, cmd: &str, cols: u16, rows: u16) -> Tmux {
        let t = Tmux {
            socket: format!("listen-test-{}-{name}", std::process::id()),
        };
        let shell = format!("{cmd}; echo EXITED=$?; sleep 60");
        assert!(t
            .cmd(&[
                "new-session",
                "-d",
                "-x",
                &cols.to_string(),
                "-y",
                &rows.to_string(),
                "sh",
                "-c",
                &shell
            ])
            .status
            .success());
        t
    }

    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("tmux (run scripts/setup)")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-J"]).stdout).to_string()
    }

    fn query(&self, format: &str) -> String {
        String::from_utf8_lossy(&self.cmd(&["display-message", "-p", format]).stdout)
            .trim()
            .to_string()
    }

    /// Waits until the screen satisfies `pred`; returns the last screen seen.
    fn wait_for(&self, within: Duration, pred: impl Fn(&str) -> bool) -> Result<String, String> {
        let t = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return Ok(s);
            }
            if t.elapsed() > within {
                return Err(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn listen_cmd(mic: &VirtualMic, extra: &str) -> String {
    format!("PULSE_SERVER={} {} {extra}", mic.server, bin().display())
}

/// A detection line: "  m:ss.mmm  label  score".
fn shows_detection(screen: &str, label: &str) -> bool {
    screen.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() == 3 && f[0].contains(':') && f[0].contains('.') && f[1] == label
    })
}

#[test]
fn display_shows_a_played_word_and_quits_cleanly_on_q() {
    let d = scratch("display-word");
    let (x, _) = make_stream(&["right"], 1.0, 0.005, &d);
    let wav = d.join("right.wav");
    listen::audio::wav::write_wav(&wav, &x, 16000).unwrap();
    let mic = VirtualMic::start(48000, 2);
    let tmux = Tmux::start("word", &listen_cmd(&mic, ""));
    let screen = tmux
        .wait_for(Duration::from_secs(20), |s| s.contains("level"))
        .unwrap_or_else(|s| panic!("no display: {s}"));
    assert!(screen.contains("device: default"), "{screen}");
    assert!(screen.contains("model: bundled model"), "{screen}");
    assert!(screen.contains("48000 Hz"), "{screen}");
    assert!(screen.contains("overruns: 0"), "{screen}");
    for w in ["left", "right", "yes", "no"] {
        assert!(
            screen
                .lines()
                .any(|l| l.trim_start().starts_with(w) && l.contains('|')),
            "bar for {w}: {screen}"
        );
    }
    assert_eq!(
        tmux.query("#{alternate_on}"),
        "1",
        "the display uses the alternate screen"
    );
    mic.play(&wav);
    tmux.wait_for(Duration::from_secs(3), |s| shows_detection(s, "right"))
        .unwrap_or_else(|s| panic!("no detection shown: {s}"));
    tmux.cmd(&["send-keys", "q"]);
    let after = tmux
        .wait_for(Duration::from_secs(5), |s| s.contains("EXITED="))
        .unwrap_or_else(|s| panic!("did not quit on q: {s}"));
    assert!(after.contains("EXITED=0"), "{after}");
    // Restored: main screen, cursor visible, cooked mode (the shell's echo works again).
    assert_eq!(tmux.query("#{alternate_on}"), "0");
    assert_eq!(tmux.query("#{cursor_flag}"), "1");
}

#[test]
fn display_says_when_audio_is_dropped_and_esc_quits() {
    let mic = VirtualMic::start(48000, 2);
    let tmux = Tmux::start("overrun", &listen_cmd(&mic, "--inference-delay-ms 150"));
    let screen = tmux
        .wait_for(Duration::from_secs(30), |s| {
            s.contains("s of audio dropped")
        })
        .unwrap_or_else(|s| panic!("overruns not shown: {s}"));
    assert!(screen.contains("overruns: "), "{screen}");
    tmux.cmd(&["send-keys", "Escape"]);
    let after = tmux
        .wait_for(Duration::from_secs(10), |s| s.contains("EXITED="))
        .unwrap_or_else(|s| panic!("did not quit on Esc: {s}"));
    assert!(after.contains("EXITED=0"), "{after}");
    assert_eq!(tmux.query("#{alternate_on}"), "0");
}

#[test]
fn a_device_error_leaves_the_terminal_usable() {
    let tmux = Tmux::start(
        "error",
        &format!("PULSE_SERVER=unix:/nonexistent {}", bin().display()),
    );
    let after = tmux
        .wait_for(Duration::from_secs(10), |s| s.contains("EXITED="))
        .unwrap_or_else(|s| panic!("did not exit: {s}"));
    assert!(after.contains("EXITED=2"), "{after}");
    assert!(after.contains("listen: error:"), "{after}");
    assert_eq!(tmux.query("#{alternate_on}"), "0");
    assert_eq!(tmux.query("#{cursor_flag}"), "1");

    // The sound server dying while the display is up: one error line, terminal restored.
    let mut mic = VirtualMic::start(48000, 2);
    let tmux = Tmux::start("died", &listen_cmd(&mic, ""));
    tmux.wait_for(Duration::from_secs(20), |s| s.contains("level"))
        .unwrap_or_else(|s| panic!("no display: {s}"));
    mic.kill_server();
    let after = tmux
        .wait_for(Duration::from_secs(15), |s| s.contains("EXITED="))
        .unwrap_or_else(|s| panic!("did not exit: {s}"));
    assert!(after.contains("EXITED=2"), "{after}");
    let errors: Vec<&str> = after
        .lines()
        .filter(|l| l.contains("listen: error:"))
        .collect();
    assert_eq!(errors.len(), 1, "{after}");
    assert!(errors[0].contains("--list-devices"), "{after}");
    assert_eq!(tmux.query("#{alternate_on}"), "0");
    assert_eq!(tmux.query("#{cursor_flag}"), "1");
}

#[test]
fn a_small_terminal_gets_a_compact_display_that_still_shows_detections() {
    let d = scratch("display-small");
    let (x, _) = make_stream(&["left"], 1.0, 0.005, &d);
    let wav = d.join("left.wav");
    listen::audio::wav::write_wav(&wav, &x, 16000).unwrap();
    let mic = VirtualMic::start(48000, 2);
    let tmux = Tmux::start_sized("small", &listen_cmd(&mic, ""), 40, 10);
    let screen = tmux
        .wait_for(Duration::from_secs(20), |s| s.contains("dBFS"))
        .unwrap_or_else(|s| panic!("no display: {s}"));
    assert!(
        screen.contains("bundled model"),
        "names the model: {screen}"
    );
    mic.play(&wav);
    let screen = tmux
        .wait_for(Duration::from_secs(3), |s| shows_detection(s, "left"))
        .unwrap_or_else(|s| panic!("no detection shown at 40x10: {s}"));
    // No line ran into the next (a wrapped line would leave pieces of another).
    for l in screen.lines() {
        assert!(l.chars().count() <= 40, "{l:?}");
        assert!(
            !l.contains("marked |") || l.trim_start().starts_with("threshold"),
            "{screen}"
        );
    }
    // Ctrl-C in the display is an interrupt: exit code 130, as everywhere.
    tmux.cmd(&["send-keys", "C-c"]);
    let after = tmux
        .wait_for(Duration::from_secs(5), |s| s.contains("EXITED="))
        .unwrap_or_else(|s| panic!("did not quit on Ctrl-C: {s}"));
    assert!(after.contains("EXITED=130"), "{after}");
    assert_eq!(tmux.query("#{alternate_on}"), "0");
}
