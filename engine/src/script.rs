//! The rhai sandbox for rules.
//!
//! Rules are compiled once per definition with the same engine configuration they later run
//! with, so a rule that compiles here cannot fail at run time for reasons of syntax or unknown
//! variables. The sandbox has no modules (`import` does not exist), no clock (`timestamp`
//! does not exist), no `eval`, and bounded operations, call depth, expression depth and
//! string, array and map sizes. `print` and `debug` go nowhere.

use rhai::{Dynamic, Engine, Scope};

/// Limits that bound what one rule evaluation may cost.
pub const MAX_OPERATIONS: u64 = 100_000;
pub const MAX_CALL_LEVELS: usize = 16;
pub const MAX_EXPR_DEPTH: usize = 64;
pub const MAX_FUNCTION_EXPR_DEPTH: usize = 32;
pub const MAX_STRING_SIZE: usize = 64 * 1024;
pub const MAX_COLLECTION_SIZE: usize = 10_000;

/// Names the engine puts in scope besides the process's fields.
pub const STAGE_VARIABLE: &str = "stage";
pub const PRIORITY_VARIABLE: &str = "priority";

/// A sandboxed engine with strict variables: reading a variable that is not in scope is a
/// compile error, which is how the checker reports unknown fields in rules.
pub fn sandboxed_engine() -> Engine {
    let mut engine = Engine::new();
    engine
        .set_strict_variables(true)
        .set_max_operations(MAX_OPERATIONS)
        .set_max_call_levels(MAX_CALL_LEVELS)
        .set_max_expr_depths(MAX_EXPR_DEPTH, MAX_FUNCTION_EXPR_DEPTH)
        .set_max_string_size(MAX_STRING_SIZE)
        .set_max_array_size(MAX_COLLECTION_SIZE)
        .set_max_map_size(MAX_COLLECTION_SIZE)
        .disable_symbol("eval")
        .on_print(|_| {})
        .on_debug(|_, _, _| {});
    engine
}

/// The scope a rule of a process is compiled against: every field, `stage`, `priority`, and
/// each priority level's name as a constant holding its position (1 for the first), so
/// `priority > P2` reads as "less urgent than P2".
pub fn compile_scope<'a>(
    fields: impl IntoIterator<Item = &'a str>,
    priorities: impl IntoIterator<Item = &'a str>,
) -> Scope<'static> {
    let mut scope = Scope::new();
    for f in fields {
        scope.push_dynamic(f.to_string(), Dynamic::UNIT);
    }
    scope.push_dynamic(STAGE_VARIABLE, Dynamic::UNIT);
    scope.push_dynamic(PRIORITY_VARIABLE, Dynamic::UNIT);
    for (i, p) in priorities.into_iter().enumerate() {
        scope.push_constant(p.to_string(), (i as i64) + 1);
    }
    scope
}
