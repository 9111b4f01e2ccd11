//! The confirmation prompt of the commands that change an environment (`deploy`, `apply`,
//! `push`). It is asked before the deploy lock is taken: the caller plans again under the lock and
//! refuses what moved while the operator read.

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use manifests::Environment;

use crate::signals::Interrupt;

/// The operator's answer to the confirmation prompt.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    No,
    /// A signal (Ctrl-C) came first: nothing was changed.
    Interrupted(&'static str),
}

/// Asks for confirmation (no lock is held: it is taken after the answer). The answer is read on a
/// thread of its own, so that a signal ends the wait.
pub async fn confirm(
    verb: &str,
    env: &Environment,
    interrupt: Option<&Interrupt>,
    mut input: impl BufRead + Send + 'static,
) -> Result<Answer> {
    eprint!(
        "{verb} this plan to environment {} (context {})? [y/N] ",
        env.name, env.kube_context
    );
    std::io::stderr().flush()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("confirm".into())
        .spawn(move || {
            let mut answer = String::new();
            let _ = tx.send(input.read_line(&mut answer).map(|_| answer));
        })
        .context("starting the prompt's reader")?;
    let read = match interrupt {
        Some(i) => tokio::select! {
            read = rx => read,
            _ = i.wait() => {
                eprintln!();
                return Ok(Answer::Interrupted(i.received().unwrap_or("SIGINT")));
            }
        },
        None => rx.await,
    };
    let answer = read
        .context("reading the answer")?
        .context("reading the answer")?;
    Ok(if matches!(answer.trim(), "y" | "Y" | "yes") {
        Answer::Yes
    } else {
        Answer::No
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cluster::block_on;

    /// Ctrl-C at the prompt ends the wait however long the operator reads: nothing is confirmed.
    #[test]
    fn ctrl_c_ends_the_prompt() {
        let env = manifests::environments::sandbox::environment();
        // The operator's terminal: nothing is typed.
        let (input, _keyboard) = std::io::pipe().unwrap();
        block_on(async {
            let interrupt = Interrupt::detached();
            let operator = async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                interrupt.raise("SIGINT");
            };
            let (answer, ()) = tokio::join!(
                confirm(
                    "Deploy",
                    &env,
                    Some(&interrupt),
                    std::io::BufReader::new(input)
                ),
                operator
            );
            assert_eq!(answer?, Answer::Interrupted("SIGINT"));
            anyhow::Ok(())
        })
        .unwrap();
    }

    #[test]
    fn the_prompt_takes_yes_and_anything_else_is_no() {
        let env = manifests::environments::sandbox::environment();
        for (typed, want) in [
            ("y\n", Answer::Yes),
            ("yes\n", Answer::Yes),
            ("n\n", Answer::No),
            ("\n", Answer::No),
        ] {
            let got = block_on(confirm(
                "Deploy",
                &env,
                None,
                std::io::Cursor::new(typed.as_bytes().to_vec()),
            ))
            .unwrap();
            assert_eq!(got, want, "{typed:?}");
        }
    }
}
