//! A real microphone for tests on a machine with no sound card, on the recipe of
//! ../shared/tools/vmic: a private PulseAudio daemon whose null sink's monitor is the
//! default capture source, so cpal's default input (ALSA -> pulse plugin) records, in real
//! time, whatever the test plays into the sink. Each `VirtualMic` has its own socket and
//! state folder, and its processes are started and stopped by pid.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct VirtualMic {
    pub dir: PathBuf,
    /// Value for PULSE_SERVER in the processes that should use this microphone.
    pub server: String,
    daemon: Child,
    keepalive: Option<Child>,
}

fn pulse_tool(server: &str, tool: &str) -> Command {
    let mut c = Command::new(tool);
    c.env("PULSE_SERVER", server).stdin(Stdio::null());
    c
}

impl VirtualMic {
    /// Starts the daemon (48 kHz stereo sink by default) and waits until the monitor
    /// really delivers frames.
    pub fn start(rate: u32, channels: u16) -> VirtualMic {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = PathBuf::from(format!(
            "/tmp/listen-vmic-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("run")).unwrap();
        let sock = dir.join("native");
        let server = format!("unix:{}", sock.display());
        let log = std::fs::File::create(dir.join("pulse.log")).unwrap();
        // Not daemonized: the child is the daemon, so its pid is ours to stop.
        let daemon = Command::new("pulseaudio")
            .env("XDG_RUNTIME_DIR", dir.join("run"))
            .env("HOME", &dir)
            .args([
                "--daemonize=no",
                "--use-pid-file=no",
                "--exit-idle-time=-1",
                "--disallow-exit",
                "--realtime=no",
                "--high-priority=no",
                "--no-cpu-limit=yes",
                "-n",
                &format!(
                    "--load=module-native-protocol-unix auth-anonymous=1 socket={}",
                    sock.display()
                ),
                &format!(
                    "--load=module-null-sink sink_name=vmic rate={rate} channels={channels} sink_properties=device.description=VirtualMic"
                ),
                "--log-target=stderr",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("pulseaudio (run scripts/setup: it installs pulseaudio and pulseaudio-utils)");
        let mut mic = VirtualMic {
            dir,
            server,
            daemon,
            keepalive: None,
        };
        let t = Instant::now();
        while !mic.pactl(&["info"]) {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "pulseaudio did not come up; see {}",
                mic.dir.join("pulse.log").display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(mic.pactl(&["set-default-sink", "vmic"]));
        assert!(mic.pactl(&["set-default-source", "vmic.monitor"]));
        // Keep-alive: endless silence at 20 ms latency keeps the sink rendering in small
        // blocks, so the capture side gets a steady stream even while nothing plays.
        mic.keepalive = Some(
            pulse_tool(&mic.server, "pacat")
                .args([
                    "--playback",
                    "--device=vmic",
                    "--raw",
                    "--format=s16le",
                    &format!("--rate={rate}"),
                    &format!("--channels={channels}"),
                    "--latency-msec=20",
                    "--stream-name=keepalive",
                    "/dev/zero",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pacat"),
        );
        let t = Instant::now();
        while mic
            .output(&["list", "short", "sink-inputs"])
            .trim()
            .is_empty()
        {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "keep-alive never connected"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // Restart the sink's render timer at the keep-alive's latency.
        assert!(mic.pactl(&["suspend-sink", "vmic", "1"]));
        assert!(mic.pactl(&["suspend-sink", "vmic", "0"]));
        // Ready when the monitor delivers 0.1 s of audio.
        let want = (rate as usize * channels as usize * 2) / 10;
        let mut rec = pulse_tool(&mic.server, "pacat")
            .args([
                "--record",
                "--device=vmic.monitor",
                "--raw",
                "--format=s16le",
                &format!("--rate={rate}"),
                &format!("--channels={channels}"),
                "--latency-msec=20",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("pacat");
        let mut got = 0;
        let mut out = rec.stdout.take().unwrap();
        let mut buf = [0u8; 4096];
        let t = Instant::now();
        while got < want && t.elapsed() < Duration::from_secs(10) {
            use std::io::Read;
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
        let _ = rec.kill();
        let _ = rec.wait();
        assert!(got >= want, "the virtual microphone delivers no audio");
        mic
    }

    fn pactl(&self, args: &[&str]) -> bool {
        pulse_tool(&self.server, "pactl")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    fn output(&self, args: &[&str]) -> String {
        pulse_tool(&self.server, "pactl")
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
            .unwrap_or_default()
    }

    /// A `listen` command that captures from this microphone.
    pub fn listen(&self) -> Command {
        let mut c = Command::new(super::bin());
        c.env("PULSE_SERVER", &self.server);
        c
    }

    /// Plays a WAV into the microphone; blocks for its duration (real time). Give files
    /// 0.2 s of leading silence: the first few ms are lost.
    pub fn play(&self, wav: &Path) {
        let st = pulse_tool(&self.server, "paplay")
            .arg("--device=vmic")
            .arg(wav)
            .status()
            .expect("paplay");
        assert!(st.success(), "paplay {}", wav.display());
    }

    /// Kills the sound server at once (SIGKILL), as a crash would.
    pub fn kill_server(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

impl Drop for VirtualMic {
    fn drop(&mut self) {
        if let Some(k) = self.keepalive.as_mut() {
            let _ = k.kill();
            let _ = k.wait();
        }
        // SIGTERM lets the daemon remove its socket; SIGKILL if it lingers.
        // The daemon may have exited already: then there is nothing to signal.
        let _ = Command::new("kill")
            .args(["-TERM", &self.daemon.id().to_string()])
            .stderr(std::process::Stdio::null())
            .status();
        let t = Instant::now();
        while matches!(self.daemon.try_wait(), Ok(None)) && t.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends a signal by name (TERM, INT, KILL...) with kill(1); a signal that could not
/// be sent fails the test (what follows would test nothing).
pub fn signal(pid: u32, name: &str) {
    let st = Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .expect("kill(1) runs (scripts/setup installs procps)");
    assert!(st.success(), "kill -{name} {pid} failed: {st}");
}
