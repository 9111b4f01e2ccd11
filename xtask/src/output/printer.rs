//! Human-facing output: coloured when stderr/stdout is a terminal (and NO_COLOR is unset).

use std::sync::atomic::{AtomicBool, Ordering};

use anstream::{eprint, eprintln, print, println};
use anstyle::{AnsiColor, Style};
use hosts::{Problem, Severity};

const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();
const DIM: Style = Style::new().dimmed();

/// An error with what to do about it: printed as its message with a last `hint:` line, the way a
/// validation problem ends with `fix:`. In one-line forms (`{e:#}`, JSON reports) the hint
/// follows the message: `message (hint: ...)`.
#[derive(Debug)]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

impl std::fmt::Display for Hinted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (hint: {})", self.message, self.hint)
    }
}

impl std::error::Error for Hinted {}

/// An error saying `message`, and `hint`: what to do.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Hinted {
        message: message.into(),
        hint: hint.into(),
    })
}

pub fn error(e: &anyhow::Error) {
    let text = |c: &(dyn std::error::Error + 'static)| match c.downcast_ref::<Hinted>() {
        Some(h) => h.message.clone(),
        None => c.to_string(),
    };
    let mut chain = e.chain();
    if let Some(first) = chain.next() {
        eprintln!("{RED}error{RED:#}: {}", text(first));
    }
    for cause in chain {
        eprintln!("  {DIM}caused by:{DIM:#} {}", text(cause));
    }
    if let Some(h) = e.chain().find_map(|c| c.downcast_ref::<Hinted>()) {
        eprintln!("  {DIM}hint:{DIM:#} {}", h.hint);
    }
}

/// An error already formatted with its causes (`{e:#}`), as a report carries it.
pub fn error_message(msg: &str) {
    eprintln!("{RED}error{RED:#}: {msg}");
}

pub fn problem(env: &str, p: &Problem) {
    let (style, word) = match p.severity {
        Severity::Error => (RED, "error"),
        Severity::Warning => (YELLOW, "warning"),
    };
    eprintln!("{style}{word}{style:#}: [{env}] {}: {}", p.field, p.message);
    eprintln!("  {DIM}fix:{DIM:#} {}", p.fix);
}

/// Whether the lines for people go to stderr: while `deploy --output json` shows the plan before
/// its prompt, stdout keeps the one JSON document.
static TO_STDERR: AtomicBool = AtomicBool::new(false);

/// Sends the lines for people to stderr (`true`) or back to stdout.
pub fn to_stderr(on: bool) {
    TO_STDERR.store(on, Ordering::Relaxed);
}

fn out(text: std::fmt::Arguments<'_>) {
    if TO_STDERR.load(Ordering::Relaxed) {
        eprintln!("{text}");
    } else {
        println!("{text}");
    }
}

pub fn ok(line: &str) {
    println!("{GREEN}ok{GREEN:#} {line}");
}

pub fn line(line: &str) {
    out(format_args!("{line}"));
}

/// A progress line on stderr (waits, retries).
pub fn progress(line: &str) {
    eprintln!("{DIM}...{DIM:#} {line}");
}

pub fn warning(line: &str) {
    eprintln!("{YELLOW}warning{YELLOW:#}: {line}");
}

/// One planned change: `+ create Service/ns/name`.
pub fn change(sign: char, word: &str, what: &str) {
    let style = match sign {
        '+' => GREEN,
        '-' | '!' => RED,
        _ => YELLOW,
    };
    out(format_args!("{style}{sign} {word}{style:#} {what}"));
}

/// A unified diff, coloured when stdout is a terminal.
pub fn diff(text: &str) {
    if TO_STDERR.load(Ordering::Relaxed) {
        eprint!("{}", crate::output::unified_diff::colorize(text));
    } else {
        print!("{}", crate::output::unified_diff::colorize(text));
    }
}

/// The result of acting on one object or host, coloured by its tone.
pub fn outcome(what: &str, result: &dyn Outcome) {
    let style = style(result.tone());
    let word = result.word();
    out(format_args!("  {style}{word:<10}{style:#} {what}"));
}

fn style(tone: Tone) -> Style {
    match tone {
        Tone::Quiet => DIM,
        Tone::Good => GREEN,
        Tone::Warn => YELLOW,
        Tone::Bad => RED,
    }
}

/// `1.5s`, `10m`.
pub fn duration(d: std::time::Duration) -> String {
    if !d.as_millis().is_multiple_of(1000) {
        format!("{:.1}s", d.as_secs_f64())
    } else if d.as_secs().is_multiple_of(60) && d.as_secs() > 0 {
        format!("{}m", d.as_secs() / 60)
    } else {
        format!("{}s", d.as_secs())
    }
}

/// How an outcome reads: what it is worth to the person looking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Nothing happened, nothing to do.
    Quiet,
    /// A change that went well.
    Good,
    /// Something to look at.
    Warn,
    /// A failure.
    Bad,
}

/// An outcome shown as a word with a tone.
pub trait Outcome {
    fn word(&self) -> &'static str;
    fn tone(&self) -> Tone;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hint_is_found_through_context_and_follows_the_message_in_one_line_forms() {
        let e = hinted("there is no terminal to ask on", "pass --yes").context("deploy");
        assert_eq!(
            format!("{e:#}"),
            "deploy: there is no terminal to ask on (hint: pass --yes)"
        );
        let h = e.chain().find_map(|c| c.downcast_ref::<Hinted>()).unwrap();
        assert_eq!(
            (h.message.as_str(), h.hint.as_str()),
            ("there is no terminal to ask on", "pass --yes")
        );
        assert!(anyhow::anyhow!("plain")
            .chain()
            .all(|c| c.downcast_ref::<Hinted>().is_none()));
    }
}
