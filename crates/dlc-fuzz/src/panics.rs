//! Panics as findings: [`catching`] runs a closure, and a panic inside it (on this
//! thread or a worker thread it waits for) becomes an error message with the
//! panic's location instead of unwinding further or printing to stderr.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

/// How many [`catching`] scopes are active (panics inside them are not printed).
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
/// The first panic message (with location) seen while a scope was active.
static FIRST: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();
/// Held by the outermost [`catching`] scope of a thread: the message slot is
/// process-wide, so scopes on different threads take turns (nested scopes on
/// one thread do not wait for themselves).
static SCOPE: Mutex<()> = Mutex::new(());

thread_local! {
    /// How deep this thread is in [`catching`] scopes.
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.load(Ordering::SeqCst) == 0 {
                return previous(info);
            }
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(non-string panic payload)".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let mut first = FIRST.lock().unwrap_or_else(|e| e.into_inner());
            if first.is_none() {
                *first = Some(format!("{msg}{at}"));
            }
        }));
    });
}

/// Runs `f`; a panic becomes `Err(message at file:line)`. Scopes on different
/// threads run one at a time (`f` must not wait for another thread's scope).
pub fn catching<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_hook();
    let _turn = (DEPTH.get() == 0).then(|| SCOPE.lock().unwrap_or_else(|e| e.into_inner()));
    DEPTH.set(DEPTH.get() + 1);
    *FIRST.lock().unwrap_or_else(|e| e.into_inner()) = None;
    ACTIVE.fetch_add(1, Ordering::SeqCst);
    let r = catch_unwind(AssertUnwindSafe(f));
    ACTIVE.fetch_sub(1, Ordering::SeqCst);
    DEPTH.set(DEPTH.get() - 1);
    r.map_err(|payload| {
        FIRST
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(non-string panic payload)".into())
    })
}

#[cfg(test)]
mod tests {
    use super::catching;

    /// One test (the message slot is process-wide): a panic here and one on a
    /// worker thread both become messages.
    #[test]
    fn panics_become_messages_with_their_location() {
        let e = catching(|| -> u32 { panic!("boom {}", 7) }).unwrap_err();
        assert!(
            e.starts_with("boom 7 at ") && e.contains("panics.rs"),
            "{e}"
        );
        assert_eq!(catching(|| 3).unwrap(), 3);
        let e = catching(|| std::thread::scope(|s| s.spawn(|| panic!("worker")).join().unwrap()));
        assert!(e.unwrap_err().starts_with("worker at "));
    }
}
