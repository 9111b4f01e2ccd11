//! Human-facing output: coloured when stderr/stdout is a terminal (and NO_COLOR is unset).

use anstream::{eprintln, println};
use anstyle::{AnsiColor, Style};
use hosts::{Problem, Severity};

const RED: Style = AnsiColor::Red.on_default().bold();
const YELLOW: Style = AnsiColor::Yellow.on_default().bold();
const GREEN: Style = AnsiColor::Green.on_default().bold();
const DIM: Style = Style::new().dimmed();

pub fn error(e: &anyhow::Error) {
    eprintln!("{RED}error{RED:#}: {e}");
    for cause in e.chain().skip(1) {
        eprintln!("  {DIM}caused by:{DIM:#} {cause}");
    }
}

pub fn problem(env: &str, p: &Problem) {
    let (style, word) = match p.severity {
        Severity::Error => (RED, "error"),
        Severity::Warning => (YELLOW, "warning"),
    };
    eprintln!("{style}{word}{style:#}: [{env}] {}: {}", p.field, p.message);
    eprintln!("  {DIM}fix:{DIM:#} {}", p.fix);
}

pub fn ok(line: &str) {
    println!("{GREEN}ok{GREEN:#} {line}");
}

pub fn line(line: &str) {
    println!("{line}");
}
