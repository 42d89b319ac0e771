//! itsmflow's engine: the checker that turns `.itsm` syntax into a resolved model, the compiled
//! process graphs, and (in later modules) the runtime and its storage.
//!
//! Invariants: a [`model::Project`] exists only for input that checked without errors; rules
//! run only in the [`script`] sandbox; nothing here knows about HTTP.

pub mod calendar;
pub mod check;
pub mod graph;
pub mod model;
pub mod script;

pub use check::{check, Checked};
pub mod runtime;
pub mod store;
