//! A step's name as a file name in the run's folder (`<name>.log`, `<name>.progress`).
//!
//! A plain step name (letters, digits, `-`, `_`) is its own file name. A matrix instance's
//! name `step[v1,v2]` may hold any character of its values, `/` among them: each byte
//! outside letters, digits and `-_.,=+@[]` is written `%XX` (`%` itself too), so that two
//! names never share a file. A name whose file name would pass 200 bytes keeps its first
//! 180 and ends with `~` and 16 hex digits of its SHA-256.

use std::borrow::Cow;

/// The file name (without extension) for step `name`'s files.
pub fn step_file_name(name: &str) -> Cow<'_, str> {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"-_.,=+@[]".contains(&b);
    if name.len() <= 200 && name.bytes().all(keep) && !name.starts_with('.') {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    for (i, b) in name.bytes().enumerate() {
        // A leading dot would hide the file.
        if keep(b) && !(i == 0 && b == b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.len() > 200 {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let mut cut: usize = 180;
        // `%XX` is never cut in two.
        while out.as_bytes().get(cut.saturating_sub(1)) == Some(&b'%')
            || out.as_bytes().get(cut.saturating_sub(2)) == Some(&b'%')
        {
            cut -= 1;
        }
        out.truncate(cut);
        out.push('~');
        for b in &digest[..8] {
            out.push_str(&format!("{b:02x}"));
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::step_file_name;

    #[test]
    fn names_become_safe_distinct_file_names() {
        assert_eq!(step_file_name("build-docs_2"), "build-docs_2");
        assert_eq!(step_file_name("t[3.11,fast]"), "t[3.11,fast]");
        assert_eq!(step_file_name("c[data/a b.csv]"), "c[data%2Fa%20b.csv]");
        assert_eq!(step_file_name("c[50%]"), "c[50%25]");
        assert_ne!(step_file_name("c[a/b]"), step_file_name("c[a%2Fb]"));
        let long = format!("c[{}]", "x/".repeat(300));
        let name = step_file_name(&long);
        assert!(name.len() <= 200 + 17, "{}", name.len());
        assert!(!name.contains('/'));
        assert_ne!(name, step_file_name(&format!("c[{}]", "x/".repeat(301))));
    }
}
