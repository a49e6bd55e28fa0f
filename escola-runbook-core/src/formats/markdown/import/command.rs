//! Shell commands in fenced code blocks: which blocks are commands, and
//! the script a step runs from one.

/// A code block that looks like a command but holds none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum CommandError {
    /// A console transcript without any `$ ` line.
    #[error(
        "console block has no `$ ` prompt line, so no command was found in it; prefix commands with `$ `"
    )]
    NoPrompt,
}

/// A shell command taken from a code block.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Command {
    pub(super) script: String,
    pub(super) multi_line: bool,
}

/// The command in a fenced block: `Some(Ok)` for a shell block with a
/// command, `Some(Err)` for a console block with no `$` prompt, `None` for
/// other languages and indented blocks.
pub(super) fn command_of(lang: Option<&str>, text: &str) -> Option<Result<Command, CommandError>> {
    let lang = lang?;
    let console = matches!(
        lang,
        "console" | "shell-session" | "shellsession" | "terminal"
    );
    let shell = matches!(lang, "" | "bash" | "sh" | "shell" | "zsh" | "ksh");
    if !console && !shell {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let prompted = |l: &str| {
        let t = l.trim_start();
        t == "$" || t.starts_with("$ ")
    };
    let mut kept: Vec<String> = Vec::new();
    let all_prompted = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .all(|l| prompted(l));
    if console || all_prompted {
        let mut continuing = false;
        for l in &lines {
            let t = l.trim_start();
            if prompted(l) {
                let cmd = t.trim_start_matches('$').trim_start();
                continuing = cmd.ends_with('\\');
                kept.push(cmd.to_owned());
            } else if continuing {
                continuing = l.ends_with('\\');
                kept.push((*l).to_owned());
            }
        }
        if kept.iter().all(|l| l.trim().is_empty()) {
            return if console {
                Some(Err(CommandError::NoPrompt))
            } else {
                None
            };
        }
    } else {
        kept = lines.iter().map(|l| (*l).to_owned()).collect();
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    while kept.first().is_some_and(|l| l.trim().is_empty()) {
        kept.remove(0);
    }
    if kept.is_empty() {
        return None;
    }
    let commands = kept
        .iter()
        .enumerate()
        .filter(|(i, l)| {
            let t = l.trim();
            let continuation = *i > 0 && kept[i - 1].trim_end().ends_with('\\');
            !(t.is_empty() || t.starts_with('#') || continuation)
        })
        .count();
    let multi_line = commands > 1;
    let body = kept.join("\n");
    Some(Ok(Command {
        script: if multi_line {
            format!("set -e\n{body}")
        } else {
            body
        },
        multi_line,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_from_code_blocks() {
        let c = command_of(Some("bash"), "php artisan up\n")
            .unwrap()
            .unwrap();
        assert_eq!(c.script, "php artisan up");
        assert!(!c.multi_line);
        let c = command_of(
            Some("console"),
            "$ php artisan up\nApplication is now live.\n$ echo \\\n  done\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.script, "set -e\nphp artisan up\necho \\\n  done");
        assert!(c.multi_line);
        assert_eq!(
            command_of(Some("console"), "just output\n"),
            Some(Err(CommandError::NoPrompt))
        );
        assert_eq!(command_of(Some("json"), "{}"), None);
        assert_eq!(command_of(None, "indented"), None);
        assert_eq!(command_of(Some("sh"), "\n\n"), None);
        let c = command_of(Some(""), "$ ls\n").unwrap().unwrap();
        assert_eq!(c.script, "ls");
    }

    #[test]
    fn comments_and_continuations_are_not_commands_of_their_own() {
        let c = command_of(Some("sh"), "# migrate\nphp artisan migrate \\\n  --force\n")
            .unwrap()
            .unwrap();
        assert!(!c.multi_line, "{c:?}");
        assert_eq!(c.script, "# migrate\nphp artisan migrate \\\n  --force");
    }
}
