//! What `/proc` says about a process: its state, group and start time. A base module:
//! the engine (`exec`) and the history (`store`) both read it, and it imports neither.

/// State letter and process group of a pid, from /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may itself hold spaces or parentheses.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let mut fields = rest.split(' ');
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

/// The start time of a process (clock ticks after boot), from /proc/PID/stat field 22: with
/// the pid, it names one process even once the number is recycled.
pub fn start_time(pid: u32) -> Option<u64> {
    use std::io::Read;
    // One `read` into a buffer: read_to_string would also stat the file and read twice,
    // and this runs once per step start.
    let mut buf = [0u8; 1024];
    let n = std::fs::File::open(format!("/proc/{pid}/stat"))
        .ok()?
        .read(&mut buf)
        .ok()?;
    let stat = buf.get(..n)?;
    // The command (in parentheses) may hold any bytes; the fields after it do not.
    let rest = stat.get(stat.iter().rposition(|b| *b == b')')? + 2..)?;
    // Fields after the command: state(3) ... starttime(22) => index 19 in `rest`.
    let field = rest.split(|b| *b == b' ').nth(19)?;
    std::str::from_utf8(field).ok()?.parse().ok()
}

/// The command line of a process, for people: at most 80 characters, its arguments joined
/// by spaces, and control characters other than white space shown as `?` (as `ps` does),
/// so that a hostile command line cannot drive the terminal it is printed on.
pub fn command_line(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = for_people(&raw);
    let text = if text.is_empty() {
        std::fs::read_to_string(format!("/proc/{pid}/comm"))
            .map(|c| format!("[{}]", for_people(c.trim().as_bytes())))
            .unwrap_or_else(|_| "?".to_owned())
    } else {
        text
    };
    if text.chars().count() > 80 {
        text.chars().take(79).collect::<String>() + "…"
    } else {
        text
    }
}

/// `cmdline` bytes as text: NUL-separated arguments joined by spaces, tabs and line breaks
/// (of a multi-line script) as spaces, and any other control character as `?`.
fn for_people(raw: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .map(|c| match c {
            '\0' | '\t' | '\n' | '\r' => ' ',
            c if c.is_control() => '?',
            c => c,
        })
        .collect();
    text.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_cannot_carry_terminal_controls() {
        let raw = b"sh\0-c\0printf '\x1b]0;owned\x07'; sleep 1\r\n\0";
        assert_eq!(for_people(raw), "sh -c printf '?]0;owned?'; sleep 1");
        assert_eq!(for_people(b"sleep\x00600\x00"), "sleep 600");
        assert_eq!(for_people("caf\u{e9} \u{9b}2J".as_bytes()), "caf\u{e9} ?2J");
    }
}
