//! A new history, made whole and then put in place.
//!
//! Made where it lives, a new history took six `fsync`s before the first step could start:
//! SQLite writes a new database's first page through a rollback journal (the journal, its
//! folder, the journal again, the database), then creates the WAL (the WAL, its folder),
//! and each migration after the first parsed the schema again. Here the current schema
//! (`schema::FRESH`) goes into a file of its own, unsynced, in one transaction; that file
//! is synced once, linked in as `bgflow.db` (a link never replaces a file: a history
//! another process made first wins) and its folder synced. A crash before the link
//! leaves only the temporary file, which a later creation removes once it is a minute old;
//! after it, a complete history. Four `fsync`s instead of six.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::schema::{FRESH, MIGRATIONS};

/// Makes the history at `path` (in `state_dir`) if there is no file there. `true` when this
/// call made it; `false` when a file was there (or another process linked its own first).
/// On any failure nothing is left behind and the caller opens `path` as before, which
/// reports the problem in its own words.
pub(super) fn new_history(state_dir: &Path, path: &Path) -> bool {
    // The temporary file is named after the process: two threads of one process (the MCP
    // server starting two runs, the tests' twenty openers) would write, remove and link
    // the same file at once, and one of them could open a history half made ("disk I/O
    // error"). One creation at a time per process; the next finds the history linked.
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = CREATING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if fs::symlink_metadata(path).is_ok() {
        return false;
    }
    remove_stale(state_dir);
    let tmp = state_dir.join(format!(".bgflow.db.{}.new", std::process::id()));
    let made = write(&tmp).and_then(|()| match fs::hard_link(&tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    });
    remove(&tmp);
    match made {
        Ok(true) => {
            // The link is in the folder for good once the folder is synced.
            let _ = fs::File::open(state_dir).and_then(|d| d.sync_all());
            true
        }
        _ => false,
    }
}

/// The schema, in WAL mode, at `tmp`, synced.
fn write(tmp: &Path) -> std::io::Result<()> {
    remove(tmp);
    let sql = |e: rusqlite::Error| std::io::Error::other(e.to_string());
    {
        let conn = Connection::open(tmp).map_err(sql)?;
        // Nothing here is synced or journalled: the file is synced once below, and no one
        // reads it before it is complete.
        conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            .map_err(sql)?;
        conn.execute_batch(&format!(
            "BEGIN; {FRESH} PRAGMA user_version = {}; COMMIT;",
            MIGRATIONS.len()
        ))
        .map_err(sql)?;
        // Recorded in the file's header: every later open finds it in WAL mode.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql)?;
        if mode != "wal" {
            return Err(std::io::Error::other(format!("journal mode {mode}")));
        }
    }
    fs::set_permissions(tmp, fs::Permissions::from_mode(0o600))?;
    fs::File::open(tmp)?.sync_all()
}

/// Removes what a creation that crashed left (`.bgflow.db.<pid>.new` and SQLite's files
/// beside it) once it is a minute old: a creation takes milliseconds, so an older one is no
/// creation still under way.
fn remove_stale(state_dir: &Path) {
    let Ok(entries) = fs::read_dir(state_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(".bgflow.db.") else {
            continue;
        };
        let Some((pid, tail)) = rest.split_once(".new") else {
            continue;
        };
        let ours = !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && ["", "-wal", "-shm", "-journal"].contains(&tail);
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age >= STALE);
        if ours && old {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// How old a temporary file of a creation is before it counts as left by a crash.
const STALE: std::time::Duration = std::time::Duration::from_secs(60);

/// Removes `tmp` and whatever SQLite kept beside it.
fn remove(tmp: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p: PathBuf = tmp.to_path_buf();
        p.as_mut_os_string().push(suffix);
        let _ = fs::remove_file(p);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Each table's columns (name, type, not null, default, primary key), indexes and
    /// foreign keys, and each index's columns, as SQLite reports them.
    fn shape(conn: &Connection) -> Vec<String> {
        // Each query yields one text per row; `?1`, when given, is a table's or index's name.
        let rows = |query: &str, args: &[&dyn rusqlite::ToSql]| -> Vec<String> {
            conn.prepare(query)
                .unwrap()
                .query_map(args, |r| r.get(0))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap()
        };
        let columns = "SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || \
                       coalesce(dflt_value, '-') || ' ' || pk FROM pragma_table_info(?1)";
        let indexes = "SELECT 'index ' || name || ' unique=' || \"unique\" || ' origin=' || \
                       origin FROM pragma_index_list(?1) ORDER BY name";
        let keys = "SELECT 'key ' || \"from\" || ' -> ' || \"table\" || '.' || \"to\" || \
                    ' ' || on_delete FROM pragma_foreign_key_list(?1)";
        let index_columns = "SELECT name || ' ' || coalesce(desc, 0) FROM pragma_index_xinfo(?1) \
                             WHERE key";
        let mut out = Vec::new();
        let objects = rows(
            "SELECT type || ' ' || name || ' on ' || tbl_name FROM sqlite_schema \
             ORDER BY type, name",
            &[],
        );
        for object in objects {
            let mut words = object.split(' ');
            let (kind, name) = (words.next().unwrap(), words.next().unwrap());
            let queries: &[&str] = match kind {
                "table" => &[columns, indexes, keys],
                "index" => &[index_columns],
                _ => &[],
            };
            out.push(object.clone());
            for query in queries {
                out.extend(rows(query, &[&name]).into_iter().map(|r| format!("  {r}")));
            }
        }
        out
    }

    #[test]
    fn the_fresh_schema_is_the_migrated_one() {
        let dir = tempfile::tempdir().unwrap();
        let migrated = Connection::open(dir.path().join("migrated.db")).unwrap();
        for m in MIGRATIONS {
            migrated.execute_batch(m).unwrap();
        }
        let path = dir.path().join("bgflow.db");
        assert!(new_history(dir.path(), &path));
        let fresh = Connection::open(&path).unwrap();
        let (a, b) = (shape(&migrated), shape(&fresh));
        assert!(a.len() > 60, "the comparison sees the schema: {a:#?}");
        assert_eq!(a, b);
        let version: i64 = fresh
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let mode: String = fresh
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }

    #[test]
    fn a_history_already_there_is_kept_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bgflow.db");
        fs::write(&path, b"").unwrap();
        assert!(
            !new_history(dir.path(), &path),
            "an existing file is not replaced"
        );
        assert_eq!(fs::read(&path).unwrap(), b"");
        fs::remove_file(&path).unwrap();
        // A temporary file of an earlier crash under this pid is replaced, not reused.
        let stale = dir
            .path()
            .join(format!(".bgflow.db.{}.new", std::process::id()));
        fs::write(&stale, b"garbage").unwrap();
        assert!(new_history(dir.path(), &path));
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["bgflow.db".to_owned()],
            "only the history is left"
        );
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    #[test]
    fn what_a_crashed_creation_left_is_removed_once_it_is_old() {
        let dir = tempfile::tempdir().unwrap();
        let old = std::time::SystemTime::now() - STALE - std::time::Duration::from_secs(5);
        let touch = |name: &str, at: std::time::SystemTime| {
            let p = dir.path().join(name);
            fs::write(&p, b"x").unwrap();
            fs::File::options()
                .write(true)
                .open(&p)
                .unwrap()
                .set_modified(at)
                .unwrap();
        };
        touch(".bgflow.db.4242.new", old);
        touch(".bgflow.db.4242.new-wal", old);
        // Under way in another process: too young to touch.
        touch(".bgflow.db.4343.new", std::time::SystemTime::now());
        // Not a creation's: left alone however old.
        touch(".bgflow.db.notes", old);
        touch("keep.new", old);
        let path = dir.path().join("bgflow.db");
        assert!(new_history(dir.path(), &path));
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                ".bgflow.db.4343.new",
                ".bgflow.db.notes",
                "bgflow.db",
                "keep.new"
            ]
        );
    }
}
