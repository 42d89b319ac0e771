//! itsmflow's engine: the checker that turns `.itsm` syntax into a resolved model, the compiled
//! process graphs, business calendars, the runtime and its storage.
//!
//! Invariants: a [`model::Project`] exists only for input that checked without errors; rules
//! run only in the [`script`] sandbox; only [`store`] writes SQL; nothing here knows about HTTP.

pub mod allocator;
pub mod calendar;
pub mod check;
pub mod diff;
pub mod graph;
pub mod model;
pub mod record;
pub mod runtime;
pub mod script;
pub mod store;
pub mod testing;

pub use check::{check, check_published, Checked};
