//! The API's own request and response types: what goes over the wire, one module per
//! resource. Handlers convert the engine's types into these (the `From` impls here), so the
//! engine's runtime types can change without changing the API, and the OpenAPI document
//! (`super::openapi`) is derived from them.

pub mod approvals;
pub mod catalog;
pub mod checklists;
pub mod definitions;
pub mod explain;
pub mod health;
pub mod identity;
pub mod instances;
pub mod migrations;
pub mod notifications;
pub mod problem;
pub mod queues;
pub mod tailoring;
pub mod tasks;
