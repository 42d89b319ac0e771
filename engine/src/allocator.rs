//! The allocator of the `itsmflow` binary and of the benchmarks (so their figures are the
//! binary's): mimalloc, keeping the memory it frees for a second before giving it back.
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: itsmflow_engine::allocator::Allocator = itsmflow_engine::allocator::Allocator;
//!
//! fn main() {
//!     itsmflow_engine::allocator::hold_freed_memory();
//!     // ...
//! }
//! ```

/// mimalloc: the engine allocates many small, short-lived values per action, where it is
/// markedly faster than the system allocator (see `engine/benches/runtime.rs`).
pub use mimalloc::MiMalloc as Allocator;

/// mimalloc's `purge_delay` option: its place in mimalloc v2's `mi_option_t`, which
/// libmimalloc-sys does not name (a test holds it to the option's documented default).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory is kept before it is returned to the OS, in milliseconds.
const HOLD_MS: std::os::raw::c_long = 1_000;

/// Keep freed memory for a second (mimalloc's default is 10 ms) unless the environment sets the
/// delay (`MIMALLOC_PURGE_DELAY`, or its older name `MIMALLOC_RESET_DELAY`). Memory given back
/// is zeroed by the kernel when next touched, and a busy engine frees and reuses the same
/// memory all the time: with 10 ms it kept paying for that, which on a virtual machine whose
/// host backs memory lazily halved one thread's in-memory lifecycles per second in about one
/// run in three. Memory unused for longer still goes back (purges run as the allocator is next
/// used; whole arenas wait ten times the delay).
///
/// Call it first thing in `main`, before any other thread starts (mimalloc's options are not
/// thread safe).
pub fn hold_freed_memory() {
    if !delay_set_by_environment() {
        // SAFETY: sets a plain integer option; called before other threads exist.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, HOLD_MS) }
    }
}

/// Whether the environment sets the purge delay (mimalloc reads its variables' names without
/// regard to case).
fn delay_set_by_environment() -> bool {
    std::env::vars_os().any(|(name, _)| {
        name.to_str().is_some_and(|n| {
            n.eq_ignore_ascii_case("MIMALLOC_PURGE_DELAY")
                || n.eq_ignore_ascii_case("MIMALLOC_RESET_DELAY")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_set_is_the_purge_delay() {
        if delay_set_by_environment() {
            return; // the environment decides; nothing of ours to check
        }
        // SAFETY: reads a plain integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(
            default, 10,
            "mimalloc v2 documents purge_delay = 10 ms by default"
        );
        hold_freed_memory();
        let now = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(now, HOLD_MS);
    }
}
