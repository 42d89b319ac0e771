//! The records the runtime and the store share: ids, instances, their history and tasks, the
//! changes that move them ([`types`]), published versions ([`definition`]), and their stored
//! form ([`codec`], [`values`]).
//!
//! This layer sits below both: it names neither the runtime nor the store, so the store
//! depends on the records it keeps and on nothing of the runtime that makes them.

pub mod codec;
pub mod definition;
pub mod types;
pub mod values;

pub use definition::{DefinitionId, Definitions, ProcessVersion, ProjectSource};
