//! Starting a step's process: `clone` under CLONE_VFORK, a few system calls, `execve`, with
//! an environment built once per run.
//!
//! `std::process::Command` copies the whole environment into a map and back into C strings
//! for every child once any variable is set, and asks the child to search `PATH` for `sh`
//! on every start (a failed `execve` for each folder before the right one, while the parent
//! waits under `vfork`). For a run of thousands of short steps that was a third of the
//! executor's own time. Here the inherited environment is turned into C strings once, each
//! start adds only the step's own variables, and programs are found on `PATH` once per run.
//!
//! glibc's `posix_spawn`, used before, makes about 70 system calls per start that this does
//! not: one `sigaction` per signal in the child (64; here only the dozen that can differ
//! from the default), a `getrlimit` per descriptor it checks, and a fresh stack mapped and
//! unmapped. At about 1 µs per system call on a VM, the parent waiting for all of them,
//! that was 60 µs of every start.
//!
//! This is the one module allowed `unsafe`: `clone` and the child's system calls, and
//! `pidfd_open`. Every pointer handed to the child outlives its use there.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{CStr, CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

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
    /// The signals a child resets before `execve` (`signals_to_reset`).
    reset: Vec<libc::c_int>,
    /// The descriptor limit a child gets back when the run raised its own
    /// (`raise_descriptor_limit`).
    nofile: Option<libc::rlimit>,
    /// USER_HZ, the unit of /proc's start times (`start_time_between`).
    ticks_per_second: u64,
}

/// Raises this process's soft limit on open descriptors to its hard limit, once, and
/// returns the limit it had. Each running step holds descriptors in the supervisor (its
/// output pipe's two ends, a pidfd, and its cgroup's files): at a common soft limit of
/// 1,024 a run of a few hundred parallel steps would fail to start some with "Too many
/// open files". Go's runtime does the same. The steps get the old limit back
/// (`child_main`), so a program that uses `select(2)` sees what it would have.
fn raise_descriptor_limit() -> Option<libc::rlimit> {
    static BEFORE: OnceLock<Option<libc::rlimit>> = OnceLock::new();
    *BEFORE.get_or_init(|| {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on a local struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 || lim.rlim_cur >= lim.rlim_max {
                return None;
            }
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            (libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0).then_some(lim)
        }
    })
}

/// Variables bgflow sets for each step; an inherited value is never passed on.
const PER_STEP: [&str; 5] = [
    "BGFLOW_RUN_ID",
    "BGFLOW_STEP",
    "BGFLOW_ATTEMPT",
    "BGFLOW_PROGRESS",
    "BGFLOW_STEP_TOKEN",
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
            reset: signals_to_reset(),
            nofile: raise_descriptor_limit(),
            ticks_per_second: ticks_per_second(),
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
    /// A cgroup to start the child in: the folder (for `clone3`'s CLONE_INTO_CGROUP, where
    /// the child is born in it) and its `cgroup.procs`, open for writing (elsewhere, the
    /// child moves itself in before `execve`). Either way nothing it starts is ever outside.
    pub cgroup: Option<(BorrowedFd<'a>, BorrowedFd<'a>)>,
}

/// A started process.
pub struct Started {
    pub pid: i32,
    /// A pidfd for it, made by `clone` (Linux 5.2+); `None` on an older kernel.
    pub pidfd: Option<OwnedFd>,
    /// Its start time as /proc/PID/stat gives it (`procfs::start_time`), when the clock
    /// says it without a doubt; see `start_time_between`.
    pub start_time: Option<u64>,
}

/// CLOCK_BOOTTIME in nanoseconds: the clock the kernel stamps a new process's start with.
fn boottime_ns() -> Option<u64> {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a plain system call (vDSO) writing into `t`.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut t) } == 0;
    let (s, n) = (
        u64::try_from(t.tv_sec).ok()?,
        u64::try_from(t.tv_nsec).ok()?,
    );
    ok.then(|| s.saturating_mul(1_000_000_000).saturating_add(n))
}

/// The start time of a process made between two readings of `boottime_ns`, in the clock
/// ticks /proc/PID/stat counts (the kernel stamps CLOCK_BOOTTIME as it makes the process
/// and shows it divided down to ticks): known when both readings fall in the same tick,
/// as all but about one start in a hundred do; `None` for the others (read /proc then).
/// Reading /proc/PID/stat just after the start instead waited for the child's `execve`
/// to let go of its lock: a sleep and a wake of the supervisor per step (`perf record -g
/// -e sched:sched_switch`: 480 of 1,000 starts).
pub fn start_time_between(before: u64, after: u64, ticks_per_second: u64) -> Option<u64> {
    let per_tick = 1_000_000_000u64.checked_div(ticks_per_second)?;
    (1_000_000_000 % ticks_per_second == 0
        && before / per_tick == after / per_tick
        && before <= after)
        .then_some(before / per_tick)
}

/// USER_HZ, the unit of /proc's times.
fn ticks_per_second() -> u64 {
    // SAFETY: a plain library call.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(0)
}

/// Starts the process as the leader of a new process group, with an empty signal mask and
/// default dispositions.
pub fn spawn(envs: &Environment, l: &Launch<'_>) -> io::Result<Started> {
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

    let mut args = ChildArgs {
        path: path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ptr(),
        stdin: l.stdin.as_raw_fd(),
        output: l.output.as_raw_fd(),
        cgroup_procs: l.cgroup.map_or(-1, |(_, procs)| procs.as_raw_fd()),
        reset: envs.reset.as_ptr(),
        reset_len: envs.reset.len(),
        nofile: envs
            .nofile
            .as_ref()
            .map_or(std::ptr::null(), std::ptr::from_ref),
        err: 0,
    };
    let mut pidfd: libc::c_int = -1;
    let before = boottime_ns();
    let pid = CHILD_STACK.with_borrow_mut(|stack| {
        // The stack grows down from its 16-byte aligned end.
        let top = stack.as_mut_ptr_range().end as usize & !15;
        // SAFETY: signals (but SIGCHLD) are blocked around the clone so that no handler of
        // this process runs in the child (which shares our memory) before the child has
        // reset it; the old mask is restored right after. `clone` with CLONE_VFORK returns
        // once the child has called `execve` or exited, so `args`, every pointer in it and
        // the stack outlive the child's use of them; the child only makes plain system
        // calls on them (see `child_main`). With CLONE_PIDFD the kernel writes a new
        // descriptor into `pidfd`, the argument `clone` takes for the parent's thread id.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            // All but SIGCHLD. A signal blocked by the thread it is sent to is queued,
            // even one whose action is to be ignored, and then delivered to another thread
            // of ours: a step that ended while this thread waited here woke the main thread
            // for nothing (213 times in a run of 1,000 short steps), taking a CPU a step
            // could use. Unblocked, an ignored SIGCHLD is dropped when sent. Nothing sends
            // SIGCHLD to the child before it has children of its own, after `execve`.
            libc::sigdelset(&mut all, libc::SIGCHLD);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let mut pid = -1;
            let mut clone_error = io::Error::from_raw_os_error(libc::ENOSYS);
            if let Some((dir, _)) = l.cgroup {
                let base = (stack.as_mut_ptr() as usize + 15) & !15;
                match clone3::into_cgroup(
                    dir.as_raw_fd(),
                    base,
                    top - base,
                    std::ptr::addr_of_mut!(pidfd),
                    std::ptr::addr_of_mut!(args),
                ) {
                    Ok(p) => pid = p,
                    Err(e) => clone_error = e,
                }
            }
            if pid < 0 && clone_error.raw_os_error() == Some(libc::ENOSYS) {
                pid = libc::clone(
                    child_main,
                    top as *mut libc::c_void,
                    libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
                    std::ptr::addr_of_mut!(args).cast(),
                    std::ptr::addr_of_mut!(pidfd),
                );
                clone_error = io::Error::last_os_error();
            }
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                Err(clone_error)
            } else {
                Ok(pid)
            }
        }
    })?;
    let start_time = before
        .zip(boottime_ns())
        .and_then(|(b, a)| start_time_between(b, a, envs.ticks_per_second));
    // SAFETY: a descriptor the kernel just made for us (or -1, left as it was by a kernel
    // without CLONE_PIDFD).
    let pidfd = (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) });
    // SAFETY: the child wrote `err`, if at all, before it exited or exec'd.
    let err = unsafe { std::ptr::addr_of!(args.err).read_volatile() };
    if err != 0 {
        // The child exited with 127 before `execve`; reap it so that no zombie is left.
        let mut status = 0;
        // SAFETY: a plain system call on our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        return Err(io::Error::from_raw_os_error(err));
    }
    Ok(Started {
        pid,
        pidfd,
        start_time,
    })
}

/// `clone3` with CLONE_INTO_CGROUP: the child is born in the step's cgroup, so the
/// kernel need not migrate it there (the child's own write to `cgroup.procs` took the
/// cgroup threadgroup lock for writing, measured at about 300 µs a start here, against
/// 80 µs for this). glibc exports no `clone3`, and a child sharing our memory must start
/// on its own stack, so the system call is made here as glibc's `clone` makes its own.
mod clone3 {
    use super::{child_main, ChildArgs};
    use std::io;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Cleared once the kernel refuses `clone3` or CLONE_INTO_CGROUP (Linux < 5.7): every
    /// later start uses `clone` and the child's own move.
    static WORKS: AtomicBool = AtomicBool::new(true);
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

    /// `struct clone_args` (linux/sched.h), version 2.
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }

    /// Starts `child_main(args)` in the cgroup folder `dir` on the stack `[base, base +
    /// size)`, as `clone(CLONE_VM | CLONE_VFORK | CLONE_PIDFD)` does. ENOSYS: not done here
    /// (another architecture, or an older kernel); use `clone`.
    ///
    /// SAFETY: as for `clone` in `spawn`: signals are blocked, and `args`, the stack and
    /// `pidfd` outlive the child's use of them (CLONE_VFORK).
    pub(super) unsafe fn into_cgroup(
        dir: libc::c_int,
        base: usize,
        size: usize,
        pidfd: *mut libc::c_int,
        args: *mut ChildArgs,
    ) -> io::Result<libc::c_int> {
        if !WORKS.load(Ordering::Relaxed) || !cfg!(target_arch = "x86_64") {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        let Ok(dir) = u64::try_from(dir) else {
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        };
        // The child is in the cgroup from its first instruction: it moves nothing.
        let procs = unsafe { (*args).cgroup_procs };
        unsafe { (*args).cgroup_procs = -1 };
        let mut ca = CloneArgs {
            flags: (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD) as u64
                | CLONE_INTO_CGROUP,
            pidfd: pidfd as u64,
            child_tid: 0,
            parent_tid: 0,
            exit_signal: libc::SIGCHLD as u64,
            stack: base as u64,
            stack_size: size as u64,
            tls: 0,
            set_tid: 0,
            set_tid_size: 0,
            cgroup: dir,
        };
        let ret = unsafe { raw(&mut ca, args) };
        if ret >= 0 {
            return Ok(libc::c_int::try_from(ret).unwrap_or(-1));
        }
        unsafe { (*args).cgroup_procs = procs };
        let errno = libc::c_int::try_from(-ret).unwrap_or(libc::EINVAL);
        if matches!(
            errno,
            libc::ENOSYS | libc::EINVAL | libc::E2BIG | libc::EOPNOTSUPP
        ) {
            WORKS.store(false, Ordering::Relaxed);
            return Err(io::Error::from_raw_os_error(libc::ENOSYS));
        }
        Err(io::Error::from_raw_os_error(errno))
    }

    /// The system call. In the child (it returns 0 there, on the new stack) calls
    /// `child_main(args)`, which never returns (`execve` or `_exit`); exits should it.
    #[cfg(target_arch = "x86_64")]
    unsafe fn raw(ca: *mut CloneArgs, args: *mut ChildArgs) -> i64 {
        let ret: i64;
        let f: extern "C" fn(*mut libc::c_void) -> libc::c_int = child_main;
        // SAFETY: the kernel keeps every register but rax, rcx and r11 across `syscall`
        // (declared clobbered, not late, so no input is placed in them); the child starts
        // with the parent's registers and a 16-byte aligned stack, as `call` expects.
        unsafe {
            std::arch::asm!(
                "syscall",
                "test rax, rax",
                "jnz 2f",
                "mov rdi, {arg}",
                "call {f}",
                "mov edi, eax",
                "mov eax, 60",
                "syscall",
                "ud2",
                "2:",
                arg = in(reg) args,
                f = in(reg) f,
                inlateout("rax") 435_i64 => ret,
                in("rdi") ca,
                in("rsi") std::mem::size_of::<CloneArgs>(),
                out("rcx") _,
                out("r11") _,
            );
        }
        ret
    }

    #[cfg(not(target_arch = "x86_64"))]
    unsafe fn raw(_: *mut CloneArgs, _: *mut ChildArgs) -> i64 {
        -i64::from(libc::ENOSYS)
    }
}

thread_local! {
    /// The stack the child runs on between `clone` and `execve`, reused for every start
    /// from this thread (the parent waits under CLONE_VFORK, so one child at a time uses
    /// it). The child makes a dozen system calls and needs a few hundred bytes of it.
    static CHILD_STACK: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; 64 * 1024]);
}

/// What the child needs, all prepared by the parent. The child writes only `err`.
#[repr(C)]
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: libc::c_int,
    output: libc::c_int,
    /// `cgroup.procs` of the step's cgroup, or -1.
    cgroup_procs: libc::c_int,
    reset: *const libc::c_int,
    reset_len: usize,
    /// The descriptor limit to give back before `execve`, or null.
    nofile: *const libc::rlimit,
    /// The errno of the call that failed before `execve` (0: none failed).
    err: libc::c_int,
}

/// The child between `clone` and `execve`. It shares the parent's memory while the parent
/// is suspended, so it only makes system calls on what `ChildArgs` points to: no
/// allocation, no lock, nothing of Rust's runtime. Signals are blocked on entry.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive until this child execs or exits.
    let a = unsafe { &mut *arg.cast::<ChildArgs>() };
    // SAFETY: plain system calls on values and C strings the parent keeps alive.
    unsafe {
        // A handler of the parent must not run here, and an ignored signal would stay
        // ignored across `execve`: both go back to the default (`execve` resets the rest).
        let default = KernelSigaction::default();
        for sig in std::slice::from_raw_parts(a.reset, a.reset_len) {
            rt_sigaction(*sig, &default, std::ptr::null_mut());
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        // "0" written to `cgroup.procs` moves the writer, this child, into that cgroup.
        let ready = (a.nofile.is_null() || libc::setrlimit(libc::RLIMIT_NOFILE, a.nofile) == 0)
            && libc::setpgid(0, 0) == 0
            && (a.cgroup_procs < 0 || libc::write(a.cgroup_procs, b"0".as_ptr().cast(), 1) == 1)
            && onto(a.stdin, 0)
            && onto(a.output, 1)
            && onto(a.output, 2)
            && libc::chdir(a.cwd) == 0
            && libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut()) == 0;
        if ready {
            libc::execve(a.path, a.argv, a.envp);
        }
        a.err = *libc::__errno_location();
        libc::_exit(127)
    }
}

/// Makes `fd` the child's descriptor `target`, left open across `execve`. Only for the
/// child.
fn onto(fd: libc::c_int, target: libc::c_int) -> bool {
    // SAFETY: plain system calls on descriptors.
    unsafe {
        if fd == target {
            // dup2 onto itself would keep the close-on-exec flag.
            return libc::fcntl(fd, libc::F_SETFD, 0) == 0;
        }
        libc::dup2(fd, target) == target
    }
}

/// The signals a child resets to their default before `execve`: every one this process
/// has a handler for or ignores when the run starts, and those bgflow may give a handler
/// later (SIGINT, SIGTERM and SIGHUP by the executor, SIGCHLD by tokio for a service's
/// probe). `posix_spawn` resets or queries all 64 in the child, one system call each
/// (about 1 µs apiece on a VM), while the parent waits.
///
/// glibc's `sigaction` refuses signals 32 and 33, which it keeps for itself, and its
/// `posix_spawn` leaves them ignored in every child; the system call reaches all 64, so
/// a step starts with none ignored.
fn signals_to_reset() -> Vec<libc::c_int> {
    const LATER: [libc::c_int; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGCHLD];
    let mut reset: Vec<libc::c_int> = LATER.to_vec();
    for sig in 1..=64 {
        if reset.contains(&sig) || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = KernelSigaction::default();
        // SAFETY: a query; the kernel writes `old`.
        let rc = unsafe { rt_sigaction(sig, std::ptr::null(), &mut old) };
        if rc == 0 && old.handler != libc::SIG_DFL {
            reset.push(sig);
        }
    }
    reset
}

/// `struct sigaction` as the `rt_sigaction` system call takes it (not glibc's), in the
/// layout of x86_64, aarch64 and the other architectures with `sa_restorer`.
#[repr(C)]
#[derive(Default)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The `rt_sigaction` system call, which unlike glibc's wrapper reaches every signal.
///
/// SAFETY: `new` and `old` are null or valid.
unsafe fn rt_sigaction(
    sig: libc::c_int,
    new: *const KernelSigaction,
    old: *mut KernelSigaction,
) -> libc::c_long {
    unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, new, old, 8_usize) }
}

/// An event on the runtime for the exit of a started process: its pidfd, which becomes
/// readable when the process exits, from `clone` or else `pidfd_open` (Linux 5.3+). `None`
/// where the kernel has neither. Must be called on the runtime.
pub fn exit_event(started: Started) -> Option<tokio::io::unix::AsyncFd<OwnedFd>> {
    let fd = match started.pidfd {
        Some(fd) => fd,
        None => {
            // SAFETY: a plain system call; a non-negative result is a new descriptor we own.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, started.pid, 0) };
            let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
            // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
            unsafe { OwnedFd::from_raw_fd(fd) }
        }
    };
    // SAFETY: the AsyncFd owns `fd`, so it stays open and the same for the AsyncFd's life.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .ok()
}

/// A pidfd for `pid` (Linux 5.3+): it names that one process for as long as it is open,
/// even once the number is given to another process.
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
    // SAFETY: a plain system call; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0);
    match fd {
        // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
        Some(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
        None => Err(io::Error::last_os_error()),
    }
}

/// Sends `signal` to the process a pidfd names (never to a later owner of its number).
pub fn pidfd_signal(fd: BorrowedFd<'_>, signal: libc::c_int) -> io::Result<()> {
    // SAFETY: a plain system call on a descriptor we hold; no siginfo is passed.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
#[path = "spawn_tests.rs"]
mod tests;
