//! The live terminal display (crossterm): device and rate, an input level meter, a bar
//! per keyword with its smoothed score and the threshold marked, the last detections,
//! overruns, --exec counts; in a small terminal, a compact layout (the detections first).
//! `q` or Esc quits, Ctrl-C interrupts; the terminal is restored on every exit path.
use crate::live::exec::ExecStats;
use crate::live::session::{dropped_secs, text_line, LiveStatus};
use anyhow::Result;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, queue, style, terminal};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Puts the terminal in raw mode on an alternate screen; restores it when dropped
/// (also on errors and panics unwinding through it).
pub struct TerminalGuard;

impl TerminalGuard {
    pub fn enter() -> Result<TerminalGuard> {
        terminal::enable_raw_mode()?;
        let g = TerminalGuard;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )?;
        Ok(g)
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

/// What the keyboard asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quit {
    No,
    /// `q` or Esc: the normal way out.
    Quit,
    /// Ctrl-C (a key in raw mode, not a signal): exits as an interrupt does.
    Interrupt,
}

/// Whether the user asked to quit (q, Esc) or interrupted (Ctrl-C). Never blocks.
pub fn quit_requested() -> Result<Quit> {
    while event::poll(Duration::ZERO)? {
        if let Event::Key(k) = event::read()? {
            if k.kind == KeyEventKind::Release {
                continue;
            }
            match k.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(Quit::Quit),
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    return Ok(Quit::Interrupt)
                }
                _ => {}
            }
        }
    }
    Ok(Quit::No)
}

fn bar(value: f32, width: usize, mark: Option<f32>) -> String {
    let filled = ((value.clamp(0.0, 1.0)) * width as f32).round() as usize;
    let m = mark.map(|t| ((t.clamp(0.0, 1.0)) * width as f32).round() as usize);
    (0..width)
        .map(|i| {
            if Some(i) == m {
                '|'
            } else if i < filled {
                '#'
            } else {
                '.'
            }
        })
        .collect()
}

/// Draws one frame of the display in the terminal's current size.
pub fn draw(s: &LiveStatus, model: &str, exec: Option<&ExecStats>) -> Result<()> {
    let (cols, rows) = terminal::size().unwrap_or((80, 24));
    let lines = layout(s, model, exec, cols as usize, rows as usize);
    let mut out = std::io::stdout();
    queue!(
        out,
        cursor::MoveTo(0, 0),
        terminal::Clear(terminal::ClearType::All)
    )?;
    for (row, l) in lines.iter().enumerate() {
        queue!(out, cursor::MoveTo(0, row as u16), style::Print(l))?;
    }
    out.flush()?;
    Ok(())
}

/// The display's lines for a `cols` x `rows` terminal: every line cut to the width
/// (a wrapped line would overwrite the next), and when the full layout does not fit,
/// a compact one that keeps what matters most: the detections.
pub fn layout(
    s: &LiveStatus,
    model: &str,
    exec: Option<&ExecStats>,
    cols: usize,
    rows: usize,
) -> Vec<String> {
    let card = &s.engine.model().card;
    let det = s.engine.detector();
    let threshold = det.config().threshold;
    let width = cols.saturating_sub(22).clamp(5, 40);
    let db = 20.0 * s.engine.level().max(1e-5).log10();
    let over = s.capture.stats.overruns.load(Ordering::Relaxed);
    let overruns = if over == 0 {
        "overruns: 0".to_string()
    } else {
        format!(
            "overruns: {over} ({:.2} s of audio dropped: the machine is too slow)",
            dropped_secs(s.capture)
        )
    };
    let detections: Vec<String> = s
        .recent
        .iter()
        .rev()
        .map(|d| format!("  {}", text_line(d)))
        .collect();
    let sm = det.smoothed();
    let bars: Vec<String> = card
        .labels
        .iter()
        .enumerate()
        .filter(|(i, _)| card.is_command(*i))
        .map(|(i, l)| {
            let v = sm.get(i).copied().unwrap_or(0.0);
            format!("{l:>10} [{}] {v:.2}", bar(v, width, Some(threshold)))
        })
        .collect();
    let mut full = vec![
        format!("listen - model: {model} - q or Esc quits"),
        format!(
            "device: {} - {} ({} Hz, {} ch, {})",
            s.capture.id, s.capture.name, s.capture.rate, s.capture.channels, s.capture.format
        ),
        format!(
            "level   [{}] {db:>6.1} dBFS",
            bar((db + 60.0) / 60.0, width, None)
        ),
        overruns.clone(),
    ];
    if let Some(e) = exec {
        full.push(format!("--exec: {}", e.summary()));
    }
    full.push(String::new());
    full.extend(bars);
    full.push(format!("{:>10}  threshold {threshold:.2} marked |", ""));
    full.push(String::new());
    full.push("last detections:".to_string());
    full.extend(detections.iter().cloned());
    let lines = if full.len() <= rows {
        full
    } else {
        let mut compact = vec![
            format!("listen - {model} - q quits"),
            format!("{db:.0} dBFS, {overruns}"),
        ];
        compact.extend(detections);
        compact
    };
    lines
        .into_iter()
        .take(rows.max(1))
        .map(|l| l.chars().take(cols.max(1)).collect())
        .collect()
}
