//! The itsmflow language: grammar, spanned syntax tree, formatter and diagnostics.
//!
//! Invariants: this crate does no I/O (callers hand it text), never panics on any input, and
//! keeps pest's types private. Everything it knows about meaning (names, types, graphs) lives
//! in `itsmflow_engine`; this crate knows only what was written and where.

pub mod ast;
pub mod diagnostic;
pub mod format;
mod parser;
pub mod source;

pub use diagnostic::{Diagnostic, Severity};
pub use parser::{parse, parse_duration, Parsed};
pub use source::{SourceFile, Sources};
