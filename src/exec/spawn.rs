//! `posix_spawn` with an environment built once per run.
//!
//! `std::process::Command` copies the whole environment into a map and back into C strings
//! for every child once any variable is set, and asks the child to search `PATH` for `sh`
//! on every start (a failed `execve` for each folder before the right one, while the parent
//! waits under `vfork`). For a run of thousands of short steps that was a third of the
//! executor's own time. Here the inherited environment is turned into C strings once, each
//! start adds only the step's own variables, and programs are found on `PATH` once per run.
//!
//! This is the one module allowed `unsafe`: the calls into libc's `posix_spawn` family and
//! `pidfd_open`. Every pointer handed to libc outlives the call that takes it.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The variables every step of a run starts with: bgflow's own environment with the
/// workflow's `[env]` applied, as `KEY=value` C strings.
pub struct Environment {
    base: Vec<CString>,
    /// A run-wide variable that cannot be passed to a child (it holds a NUL byte): every
    /// start fails with this, rather than the variable being dropped in silence.
    invalid: Option<String>,
    /// `PATH` as the base has it, for finding programs.
    path: Option<OsString>,
    /// Whether every folder of that `PATH` is absolute (so a lookup does not depend on
    /// the step's cwd).
    path_absolute: bool,
    /// Programs already found on that `PATH`, by name.
    found: Mutex<HashMap<String, Arc<CStr>>>,
}

/// Variables bgflow sets for each step; an inherited value is never passed on.
const PER_STEP: [&str; 4] = [
    "BGFLOW_RUN_ID",
    "BGFLOW_STEP",
    "BGFLOW_ATTEMPT",
    "BGFLOW_PROGRESS",
];

impl Environment {
    /// Captures the current process environment with `run_wide` applied on top.
    pub fn capture(run_wide: &[(String, String)]) -> Self {
        let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
            .filter(|(k, _)| !PER_STEP.iter().any(|p| k == OsStr::new(p)))
            .collect();
        for (k, v) in run_wide {
            match vars.iter_mut().find(|(old, _)| old == OsStr::new(k)) {
                Some(slot) => slot.1 = OsString::from(v),
                None => vars.push((OsString::from(k), OsString::from(v))),
            }
        }
        let path = vars
            .iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.clone());
        let mut invalid = None;
        let mut base = Vec::with_capacity(vars.len());
        for (k, v) in vars {
            match pair(k.as_bytes(), v.as_bytes()) {
                Ok(c) => base.push(c),
                Err(_) => {
                    invalid.get_or_insert_with(|| {
                        format!(
                            "environment variable {} holds a NUL byte",
                            k.to_string_lossy()
                        )
                    });
                }
            }
        }
        let path_absolute = path
            .as_ref()
            .is_none_or(|p| std::env::split_paths(p).all(|d| d.is_absolute()));
        Self {
            base,
            invalid,
            path_absolute,
            path,
            found: Mutex::new(HashMap::new()),
        }
    }

    /// The environment of one start: the base with `own` applied on top (later wins).
    fn with(&self, own: &[(&str, &str)]) -> io::Result<(Vec<CString>, Vec<*const libc::c_char>)> {
        if let Some(why) = &self.invalid {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, why.clone()));
        }
        let extra = own
            .iter()
            .map(|(k, v)| pair(k.as_bytes(), v.as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        // The base holds none of bgflow's per-step variables, so only the step's own keys
        // can replace one of its entries (usually none).
        let replaced: Vec<&str> = own
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| !PER_STEP.contains(k))
            .collect();
        let overridden = |entry: &CStr| {
            let bytes = entry.to_bytes();
            replaced.iter().any(|k| {
                bytes.len() > k.len() && bytes.starts_with(k.as_bytes()) && bytes[k.len()] == b'='
            })
        };
        let mut ptrs: Vec<*const libc::c_char> =
            Vec::with_capacity(self.base.len() + extra.len() + 1);
        ptrs.extend(
            self.base
                .iter()
                .filter(|e| !overridden(e))
                .map(|e| e.as_ptr()),
        );
        // A key set twice by the step keeps its last value, as with `Command::env`.
        for (i, e) in extra.iter().enumerate() {
            let key = own[i].0;
            if !own[i + 1..].iter().any(|(k, _)| *k == key) {
                ptrs.push(e.as_ptr());
            }
        }
        ptrs.push(std::ptr::null());
        Ok((extra, ptrs))
    }

    /// Finds `program` as `execvp` would, on the `PATH` the child gets. Lookups on the
    /// run's own `PATH` are kept for the rest of the run when every folder in it is
    /// absolute; a step's own `PATH`, or a relative folder (found from the step's cwd), is
    /// searched each time.
    fn find(&self, program: &str, own: &[(&str, &str)], cwd: &Path) -> io::Result<Arc<CStr>> {
        if program.contains('/') {
            return Ok(c_string(cwd.join(program).as_os_str())?.into());
        }
        if program.is_empty() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let own_path = own
            .iter()
            .rev()
            .find(|(k, _)| *k == "PATH")
            .map(|(_, v)| *v);
        let keep = own_path.is_none() && self.path_absolute;
        if keep {
            if let Some(hit) = self.found.lock().ok().and_then(|m| m.get(program).cloned()) {
                return Ok(hit);
            }
        }
        let search = own_path
            .map(OsString::from)
            .or_else(|| self.path.clone())
            .unwrap_or_else(|| OsString::from("/usr/bin:/bin"));
        let hit: Arc<CStr> = which::which_in(program, Some(search), cwd)
            .map_err(|_| io::Error::from_raw_os_error(libc::ENOENT))
            .and_then(|p| c_string(p.as_os_str()))?
            .into();
        if keep {
            if let Ok(mut m) = self.found.lock() {
                m.insert(program.to_owned(), Arc::clone(&hit));
            }
        }
        Ok(hit)
    }
}

fn pair(k: &[u8], v: &[u8]) -> io::Result<CString> {
    let mut s = Vec::with_capacity(k.len() + v.len() + 2);
    s.extend_from_slice(k);
    s.push(b'=');
    s.extend_from_slice(v);
    CString::new(s).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "environment variable {} holds a NUL byte",
                String::from_utf8_lossy(k)
            ),
        )
    })
}

fn c_string(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes().to_vec()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} holds a NUL byte", Path::new(s).display()),
        )
    })
}

/// One process to start.
pub struct Launch<'a> {
    /// The program and its arguments; the program is searched on `PATH` unless it has a `/`.
    pub argv: &'a [&'a str],
    pub cwd: &'a Path,
    /// Variables of this start on top of the run's: the step's `env`, then bgflow's own.
    pub env: &'a [(&'a str, &'a str)],
    pub stdin: BorrowedFd<'a>,
    /// Both stdout and stderr.
    pub output: BorrowedFd<'a>,
}

/// Starts the process as the leader of a new process group, with an empty signal mask and
/// default dispositions. Returns its pid.
pub fn spawn(envs: &Environment, l: &Launch<'_>) -> io::Result<i32> {
    let (program, _) = l
        .argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let path = envs.find(program, l.env, l.cwd)?;
    let cwd = c_string(l.cwd.as_os_str())?;
    let args = l
        .argv
        .iter()
        .map(|a| c_string(OsStr::new(a)))
        .collect::<io::Result<Vec<_>>>()?;
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let (_owned, envp) = envs.with(l.env)?;

    // SAFETY: the libc init/destroy pairs for these two C structs.
    let mut actions = unsafe {
        Posix::new(
            libc::posix_spawn_file_actions_init,
            libc::posix_spawn_file_actions_destroy,
        )
    }?;
    ok(unsafe {
        libc::posix_spawn_file_actions_adddup2(&mut actions.value, l.stdin.as_raw_fd(), 0)
    })?;
    for target in [1, 2] {
        ok(unsafe {
            libc::posix_spawn_file_actions_adddup2(&mut actions.value, l.output.as_raw_fd(), target)
        })?;
    }
    ok(unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut actions.value, cwd.as_ptr()) })?;

    let mut attr =
        unsafe { Posix::new(libc::posix_spawnattr_init, libc::posix_spawnattr_destroy) }?;
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        // Every catchable signal back to its default: Rust ignores SIGPIPE, and an ignored
        // signal would stay ignored in the child.
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::sigdelset(&mut all, libc::SIGKILL);
        libc::sigdelset(&mut all, libc::SIGSTOP);
        ok(libc::posix_spawnattr_setsigmask(&mut attr.value, &empty))?;
        ok(libc::posix_spawnattr_setsigdefault(&mut attr.value, &all))?;
        ok(libc::posix_spawnattr_setpgroup(&mut attr.value, 0))?;
        let flags = libc::POSIX_SPAWN_SETPGROUP
            | libc::POSIX_SPAWN_SETSIGMASK
            | libc::POSIX_SPAWN_SETSIGDEF;
        ok(libc::posix_spawnattr_setflags(
            &mut attr.value,
            flags as libc::c_short,
        ))?;
    }

    let mut pid: libc::pid_t = 0;
    // SAFETY: `path`, `argv` (and the strings it points into), `envp` (and `envs.base`,
    // `_owned`), `actions` and `attr` all live until after this call returns.
    let rc = unsafe {
        libc::posix_spawn(
            &mut pid,
            path.as_ptr(),
            &actions.value,
            &attr.value,
            argv.as_ptr().cast::<*mut libc::c_char>(),
            envp.as_ptr().cast::<*mut libc::c_char>(),
        )
    };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(pid)
}

fn ok(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// A libc `posix_spawn` object (file actions or attributes), initialised in place and
/// destroyed when dropped.
struct Posix<T> {
    value: T,
    destroy: unsafe extern "C" fn(*mut T) -> libc::c_int,
}

impl<T> Posix<T> {
    /// SAFETY: `T` must be a plain C struct that may be zeroed before `init`, and `init` and
    /// `destroy` the libc pair for it.
    unsafe fn new(
        init: unsafe extern "C" fn(*mut T) -> libc::c_int,
        destroy: unsafe extern "C" fn(*mut T) -> libc::c_int,
    ) -> io::Result<Self> {
        let mut value: T = unsafe { std::mem::zeroed() };
        // Not initialised on an error: no `Posix` exists to destroy it.
        ok(unsafe { init(&mut value) })?;
        Ok(Self { value, destroy })
    }
}

impl<T> Drop for Posix<T> {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` by the `init` that pairs with `destroy`.
        unsafe { (self.destroy)(&mut self.value) };
    }
}

/// An event on the runtime for the exit of process `pid`: a pidfd (Linux 5.3+), which
/// becomes readable when the process exits. `None` where the kernel has no `pidfd_open`.
/// Must be called on the runtime.
pub fn exit_event(pid: i32) -> Option<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: a plain system call; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: the AsyncFd owns `fd`, so it stays open and the same for the AsyncFd's life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(e: &Environment, own: &[(&str, &str)]) -> Vec<String> {
        let (_owned, ptrs) = e.with(own).expect("env");
        ptrs.iter()
            .take_while(|p| !p.is_null())
            .map(|p| unsafe { CStr::from_ptr(*p) }.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn run_wide_then_own_variables_win_and_each_key_appears_once() {
        let e = Environment::capture(&[
            ("BGFLOW_TEST_A".into(), "run".into()),
            ("BGFLOW_TEST_B".into(), "run".into()),
        ]);
        let vars = env_of(
            &e,
            &[
                ("BGFLOW_TEST_B", "step"),
                ("BGFLOW_TEST_B", "last"),
                ("BGFLOW_STEP", "s"),
            ],
        );
        let get = |k: &str| {
            vars.iter()
                .filter(|v| v.starts_with(&format!("{k}=")))
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(get("BGFLOW_TEST_A"), ["BGFLOW_TEST_A=run"]);
        assert_eq!(get("BGFLOW_TEST_B"), ["BGFLOW_TEST_B=last"]);
        assert_eq!(get("BGFLOW_STEP"), ["BGFLOW_STEP=s"]);
        // A key that only shares a prefix is not overridden.
        let vars = env_of(&e, &[("BGFLOW_TEST", "x")]);
        assert!(vars.contains(&"BGFLOW_TEST_A=run".to_owned()));
    }

    #[test]
    fn programs_are_found_on_the_path_the_child_gets() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        for d in [&a, &b] {
            std::fs::create_dir(d).expect("mkdir");
            let tool = d.join("bgflow-test-tool");
            std::fs::write(&tool, "#!/bin/sh\n").expect("write");
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let a_path = a.display().to_string();
        let e = Environment::capture(&[("PATH".into(), a_path.clone())]);
        let found = |own: &[(&str, &str)]| {
            e.find("bgflow-test-tool", own, dir.path())
                .map(|c| c.to_string_lossy().into_owned())
        };
        let in_a = a.join("bgflow-test-tool").display().to_string();
        let in_b = b.join("bgflow-test-tool").display().to_string();
        assert_eq!(found(&[]).expect("on [env]'s PATH"), in_a);
        let b_path = b.display().to_string();
        assert_eq!(
            found(&[("PATH", &b_path)]).expect("on the step's PATH"),
            in_b,
            "a step's own PATH is searched, not the run's cached answer"
        );
        assert_eq!(found(&[]).expect("cached"), in_a);
        assert!(found(&[("PATH", "/nonexistent")]).is_err());
        // A relative folder is found from the step's cwd.
        assert_eq!(found(&[("PATH", "b")]).expect("relative"), in_b);
    }

    #[test]
    fn a_nul_byte_is_an_error_not_a_panic() {
        let e = Environment::capture(&[]);
        assert!(e.with(&[("K", "a\0b")]).is_err());
    }
}
