//! The console's loops: line editing with history and completion on a terminal, plain
//! lines otherwise.

use std::io::{BufRead, IsTerminal, Write};

use rustyline::{
    completion::{Completer, Pair},
    highlight::Highlighter,
    hint::Hinter,
    history::DefaultHistory,
    validate::Validator,
    Context, Editor, Helper,
};

use super::{verbs, Shell};
use crate::steps::Action;

/// Tab completion of verbs and their arguments.
struct Completion {
    paths: Vec<String>,
}

impl Completion {
    fn candidates(&self, line: &str) -> (usize, Vec<String>) {
        let start = line.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let word = &line[start..];
        let before: Vec<&str> = line[..start].split_whitespace().collect();
        let options: Vec<String> = match before.as_slice() {
            [] => verbs().map(|(v, _, _)| v.to_string()).collect(),
            ["explain"] => self.paths.clone(),
            [verb, arguments @ ..] => Action::completions(verb, arguments.len())
                .iter()
                .map(|o| o.to_string())
                .collect(),
        };
        (
            start,
            options
                .into_iter()
                .filter(|o| o.starts_with(word))
                .collect(),
        )
    }
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, found) = self.candidates(&line[..pos]);
        Ok((
            start,
            found
                .into_iter()
                .map(|c| Pair {
                    display: c.clone(),
                    replacement: c,
                })
                .collect(),
        ))
    }
}

impl Hinter for Completion {
    type Hint = String;
}
impl Highlighter for Completion {}
impl Validator for Completion {}
impl Helper for Completion {}

/// Runs the console: line editing with history and completion on a terminal, plain lines
/// otherwise. Returns whether the session succeeded: on a terminal, every `expect` held;
/// scripted, every command succeeded (so a script of commands is a test).
pub fn run(mut shell: Shell) -> bool {
    if std::io::stdin().is_terminal() {
        interactive(&mut shell) && !shell.expectations_failed
    } else {
        scripted(&mut shell)
    }
}

fn show(result: &Result<String, String>) {
    match result {
        Ok(text) if text.is_empty() => {}
        Ok(text) | Err(text) => println!("{text}"),
    }
}

fn is_quit(line: &str) -> bool {
    matches!(line.trim(), "quit" | "exit")
}

/// Reads commands line by line; whether every one succeeded (an error line, whether a
/// refusal, a failed `expect` or a typo, fails the session).
fn scripted(shell: &mut Shell) -> bool {
    let stdin = std::io::stdin();
    let mut succeeded = true;
    for line in stdin.lock().lines().map_while(Result::ok) {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        println!("> {trimmed}");
        if is_quit(trimmed) {
            break;
        }
        let result = shell.execute(trimmed);
        succeeded &= result.is_ok();
        show(&result);
        let _ = std::io::stdout().flush();
    }
    succeeded
}

/// Line editing on a terminal; false only if it fell back to plain lines and one failed.
fn interactive(shell: &mut Shell) -> bool {
    let mut editor: Editor<Completion, DefaultHistory> = match Editor::new() {
        Ok(editor) => editor,
        Err(e) => {
            eprintln!("host-sim: no line editor ({e}); reading plain lines");
            return scripted(shell);
        }
    };
    editor.set_helper(Some(Completion {
        paths: shell.paths.clone(),
    }));
    println!(
        "KSN Usage task console on {} device(s). `help` lists the commands.",
        shell.world.devices.len()
    );
    loop {
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if is_quit(&line) {
                    break;
                }
                show(&shell.execute(&line));
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_offers_verbs_paths_and_arguments() {
        let c = Completion {
            paths: vec!["task.schedule".into(), "task.checksum_limit_mb".into()],
        };
        assert_eq!(c.candidates("expl"), (0, vec!["explain".to_string()]));
        assert_eq!(
            c.candidates("exp").1,
            vec!["explain".to_string(), "expect".to_string()]
        );
        assert_eq!(
            c.candidates("explain task.s"),
            (8, vec!["task.schedule".to_string()])
        );
        assert_eq!(
            c.candidates("set_network pr").1,
            vec!["proxy".to_string(), "private".to_string()]
        );
        assert_eq!(
            c.candidates("set_network proxy d").1,
            vec!["down".to_string()]
        );
        assert_eq!(
            c.candidates("set_private_ksn o").1,
            vec!["on".to_string(), "off".to_string()]
        );
        assert!(c.candidates("start x").1.is_empty());
    }
}
