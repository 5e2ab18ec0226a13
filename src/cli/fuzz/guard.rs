//! Last-resort reporting for what `catch_unwind` cannot catch: a fatal signal
//! (a crash in generated code, an abort) or a case that never finishes. Either
//! way the process says which case it was running and how to replay it.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const CAP: usize = 1024;
static BANNER: [AtomicU8; CAP] = [const { AtomicU8::new(0) }; CAP];
static LEN: AtomicUsize = AtomicUsize::new(0);
/// Milliseconds since `EPOCH` + 1 when the current case started; 0 when idle.
static STARTED: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Installs the fatal-signal handlers and a watchdog that ends the process when
/// one case runs longer than `timeout`.
pub fn install(timeout: Duration) {
    let epoch = *EPOCH.get_or_init(Instant::now);
    #[cfg(unix)]
    for sig in [
        libc::SIGSEGV,
        libc::SIGBUS,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGABRT,
    ] {
        // SAFETY: `on_fatal` only reads atomics and calls write(2), both
        // async-signal-safe; SA_RESETHAND restores the default action, so the
        // process still dies of the signal after the message.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fatal as *const () as usize;
            sa.sa_flags = libc::SA_RESETHAND | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut());
        }
    }
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let started = STARTED.load(Ordering::SeqCst);
            let now = epoch.elapsed().as_millis() as u64 + 1;
            if started != 0 && now.saturating_sub(started) > timeout.as_millis() as u64 {
                eprintln!(
                    "\ndlc fuzz: hang: a case ran longer than {:?}{}",
                    timeout,
                    banner()
                );
                std::process::exit(1);
            }
        }
    });
}

/// Marks the start of a case; `banner` is printed if it crashes or hangs.
pub fn begin(banner: &str) {
    let b = banner.as_bytes();
    let n = b.len().min(CAP);
    LEN.store(0, Ordering::SeqCst);
    for (slot, &byte) in BANNER.iter().zip(&b[..n]) {
        slot.store(byte, Ordering::Relaxed);
    }
    LEN.store(n, Ordering::SeqCst);
    let epoch = EPOCH.get_or_init(Instant::now);
    STARTED.store(epoch.elapsed().as_millis() as u64 + 1, Ordering::SeqCst);
}

/// Marks the end of a case.
pub fn end() {
    STARTED.store(0, Ordering::SeqCst);
}

fn banner() -> String {
    let n = LEN.load(Ordering::SeqCst);
    let bytes: Vec<u8> = BANNER[..n]
        .iter()
        .map(|b| b.load(Ordering::Relaxed))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(unix)]
extern "C" fn on_fatal(_sig: libc::c_int) {
    let mut buf = [0u8; CAP + 64];
    let head = b"\ndlc fuzz: fatal signal";
    buf[..head.len()].copy_from_slice(head);
    let mut n = head.len();
    let len = LEN.load(Ordering::SeqCst);
    for slot in &BANNER[..len] {
        buf[n] = slot.load(Ordering::Relaxed);
        n += 1;
    }
    buf[n] = b'\n';
    // SAFETY: write(2) on a valid buffer; async-signal-safe.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n + 1);
    }
}
