//! What the README shows, read as a reader reads it: the commands of its
//! shell blocks, the `$ `-lines of its transcripts, the commands of its
//! crontab lines, and the inline code that starts with a program's name;
//! and its blocks, found by the heading they follow.

use std::path::Path;

/// The README, as the tests read it.
pub fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Programs whose name, as the first word of inline code, makes that code
/// a command (with at least one argument, so that `heartbeat` the name
/// and `logrotate` the tool are not).
pub const PROGRAMS: &[&str] = &[
    "apt",
    "apt-get",
    "cargo",
    "cat",
    "chmod",
    "chown",
    "curl",
    "docker",
    "dpkg",
    "dpkg-deb",
    "etcdctl",
    "flock",
    "git",
    "heartbeat",
    "install",
    "ip",
    "journalctl",
    "keepalived",
    "kill",
    "lintian",
    "logger",
    "mkdir",
    "monit",
    "promtool",
    "python3",
    "rm",
    "rustup",
    "sed",
    "service",
    "sh",
    "socat",
    "sudo",
    "systemctl",
    "systemd-analyze",
];

/// Scripts of this tree that are commands on their own, without arguments.
pub const SCRIPTS: &[&str] = &[".ci/run", "contrib/debian/build"];

/// One command the README shows.
#[derive(Debug, Clone)]
pub struct Shown {
    /// Its line in README.md (1-based; the first line of a command continued
    /// with `\`).
    pub line: usize,
    /// The command, whitespace collapsed to single spaces.
    pub text: String,
}

/// Every command of the README, in order, repeats included.
pub fn commands(readme: &str) -> Vec<Shown> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut out = Vec::new();
    let mut paragraph: Vec<(usize, &str)> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            inline_commands(&paragraph, &mut out);
            paragraph.clear();
            let lang = lang.trim();
            let start = i + 1;
            i += 1;
            while i < lines.len() && !lines[i].trim_start().starts_with("```") {
                i += 1;
            }
            let body: Vec<(usize, &str)> = (start..i.min(lines.len()))
                .map(|n| (n + 1, lines[n]))
                .collect();
            block_commands(lang, &body, &mut out);
            i += 1;
            continue;
        }
        if line.trim().is_empty() {
            inline_commands(&paragraph, &mut out);
            paragraph.clear();
        } else {
            paragraph.push((i + 1, line));
        }
        i += 1;
    }
    inline_commands(&paragraph, &mut out);
    out
}

/// The commands of one fenced block of language `lang`.
fn block_commands(lang: &str, body: &[(usize, &str)], out: &mut Vec<Shown>) {
    match lang {
        "sh" | "bash" | "shell" | "console" => {
            let mut joined = String::new();
            let mut first = None;
            for &(n, line) in body {
                first.get_or_insert(n);
                if let Some(head) = line.trim_end().strip_suffix('\\') {
                    joined.push_str(head);
                    joined.push(' ');
                    continue;
                }
                joined.push_str(line);
                let command = strip_comment(&joined);
                if !command.trim().is_empty() {
                    out.push(shown(first.unwrap_or(n), command));
                }
                joined.clear();
                first = None;
            }
        }
        "crontab" => {
            for &(n, line) in body {
                let words: Vec<&str> = line.split_whitespace().collect();
                // Five time fields, the user, then the command.
                if words.len() > 6 && !line.trim_start().starts_with('#') {
                    out.push(shown(n, &words[6..].join(" ")));
                }
            }
        }
        _ => {
            for &(n, line) in body {
                if let Some(command) = line.strip_prefix("$ ") {
                    out.push(shown(n, command));
                }
            }
        }
    }
}

/// The inline code of one paragraph (its lines joined, as Markdown joins
/// them) that is a command.
fn inline_commands(paragraph: &[(usize, &str)], out: &mut Vec<Shown>) {
    let mut text = String::new();
    let mut line_of = Vec::new();
    for &(n, line) in paragraph {
        for _ in 0..=line.len() {
            line_of.push(n);
        }
        text.push_str(line);
        text.push(' ');
    }
    let mut rest = 0;
    while let Some(open) = text[rest..].find('`').map(|o| o + rest) {
        let Some(close) = text[open + 1..].find('`').map(|c| c + open + 1) else {
            break;
        };
        let code = &text[open + 1..close];
        let words: Vec<&str> = code.split_whitespace().collect();
        let is_command = match words.as_slice() {
            [] => false,
            [one] => SCRIPTS.contains(one),
            [first, ..] => PROGRAMS.contains(first) || SCRIPTS.contains(first),
        };
        if is_command {
            out.push(shown(line_of[open], code));
        }
        rest = close + 1;
    }
}

/// A shell line without its comment: from a `#` that starts a word,
/// outside quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double, mut previous) = (false, false, ' ');
    for (at, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && previous.is_whitespace() => return &line[..at],
            _ => {}
        }
        previous = c;
    }
    line
}

fn shown(line: usize, text: &str) -> Shown {
    Shown {
        line,
        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
    }
}

/// The body of the `n`-th (from 0) block of language `lang` after the
/// heading `heading` (a whole line, `### keepalived`) and before the next
/// heading of the same or a higher level.
///
/// # Panics
/// When there is no such block: the message names the heading.
pub fn block_after(readme: &str, heading: &str, lang: &str, n: usize) -> String {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = readme.lines().skip_while(|l| *l != heading);
    assert!(
        lines.next().is_some(),
        "README.md has no heading {heading:?}"
    );
    enum State {
        Outside,
        Mine(String),
        Other,
    }
    let mut found = 0;
    let mut state = State::Outside;
    for line in lines {
        let fence = line.trim_start().strip_prefix("```");
        state = match (state, fence) {
            (State::Mine(body), Some(_)) if found == n => return body,
            (State::Mine(_), Some(_)) => {
                found += 1;
                State::Outside
            }
            (State::Mine(mut body), None) => {
                body.push_str(line);
                body.push('\n');
                State::Mine(body)
            }
            (State::Other, Some(_)) => State::Outside,
            (State::Other, None) => State::Other,
            (State::Outside, Some(tag)) if tag.trim() == lang => State::Mine(String::new()),
            (State::Outside, Some(_)) => State::Other,
            (State::Outside, None) => {
                let hashes = line.chars().take_while(|&c| c == '#').count();
                if hashes > 0 && hashes <= level && line[hashes..].starts_with(' ') {
                    break;
                }
                State::Outside
            }
        };
    }
    panic!("README.md has no block {n} of language {lang:?} under {heading:?}");
}

#[test]
fn blocks_inline_code_transcripts_and_crontab_lines_give_their_commands() {
    let text = "# t\n\n```sh\n# a comment\nheartbeat -t   # validate\nheartbeat --check tcp://a:1 \\\n    --listen :9 # the port\necho '# not a comment'\n```\n\n\
                Run `heartbeat -c FILE status` or\n`systemctl reload\nheartbeat`; not `heartbeat` nor `logrotate -f x`, but `.ci/run`.\n\n\
                ```\n$ heartbeat status\nOK\n```\n\n```crontab\n*/5 * * * * root heartbeat -c f --once\n```\n\n```ini\n[a]\nheartbeat = x\n```\n";
    let got: Vec<(usize, String)> = commands(text)
        .into_iter()
        .map(|c| (c.line, c.text))
        .collect();
    let want: Vec<(usize, String)> = [
        (5, "heartbeat -t"),
        (6, "heartbeat --check tcp://a:1 --listen :9"),
        (8, "echo '# not a comment'"),
        (11, "heartbeat -c FILE status"),
        (12, "systemctl reload heartbeat"),
        (13, ".ci/run"),
        (16, "heartbeat status"),
        (21, "heartbeat -c f --once"),
    ]
    .into_iter()
    .map(|(n, t)| (n, t.to_owned()))
    .collect();
    assert_eq!(got, want);
}

#[test]
fn a_block_is_found_under_its_heading() {
    let text = "## A\n\n```ini\none\n```\n\n### B\n\n```sh\nx\n```\n\n```ini\ntwo\n```\n\n```ini\nthree\n```\n\n## C\n\n```ini\nfour\n```\n";
    assert_eq!(block_after(text, "### B", "ini", 0), "two\n");
    assert_eq!(block_after(text, "### B", "ini", 1), "three\n");
    assert_eq!(block_after(text, "## A", "sh", 0), "x\n");
    assert_eq!(block_after(text, "## C", "ini", 0), "four\n");
}
