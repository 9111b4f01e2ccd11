//! Unified diffs of text, and their colours on a terminal.

use anstyle::{AnsiColor, Style};
use similar::TextDiff;

/// A unified diff (3 lines of context) between two texts; empty when equal.
pub fn unified(old: &str, new: &str, old_label: &str, new_label: &str) -> String {
    if old == new {
        return String::new();
    }
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(old_label, new_label)
        .to_string()
}

/// Colours a unified diff for a terminal: removals red, additions green, hunks cyan.
pub fn colorize(diff: &str) -> String {
    let red = AnsiColor::Red.on_default();
    let green = AnsiColor::Green.on_default();
    let cyan = AnsiColor::Cyan.on_default();
    let bold = Style::new().bold();
    diff.lines()
        .map(|l| {
            let style = if l.starts_with("+++") || l.starts_with("---") {
                bold
            } else if l.starts_with('+') {
                green
            } else if l.starts_with('-') {
                red
            } else if l.starts_with("@@") {
                cyan
            } else {
                Style::new()
            };
            format!("{style}{l}{style:#}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unified_is_empty_when_equal_and_shows_changes() {
        assert_eq!(unified("a\n", "a\n", "x", "y"), "");
        let d = unified("a: 1\nb: 2\n", "a: 1\nb: 3\n", "live", "desired");
        assert!(d.contains("--- live\n+++ desired\n"), "{d}");
        assert!(d.contains("-b: 2\n+b: 3\n"), "{d}");
    }
}
