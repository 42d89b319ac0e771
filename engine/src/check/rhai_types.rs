//! Types for rules: a small inference over each rule's rhai syntax tree, so that what would
//! fail when a rule runs (a method a value does not have, an operator between values it does
//! not apply to, an unset field used as if it were set, a guard that does not give true or
//! false, a computed value its field cannot hold) and what can never hold (a string compared
//! with an enum field that is not one of its values, an int compared with a string) is
//! reported when the definition is checked, at the place in the rule where it is.
//!
//! The tree checked is the one that runs: the rule as compiled (and optimised) for the model.
//!
//! **Types** are sets of rhai's kinds of value ([`Kinds`]): `()`, bool, int, float, string,
//! char, array, map, function pointer, ranges. A field's type is what `runtime::values::
//! to_dynamic` gives for it, with `()` when the field may be unset where the rule runs. A
//! string may also know which strings it can be (an enum field's values, the stages, string
//! literals), and an int whether it is never negative. Everything is checked against the
//! current kinds of each value, one combination at a time, so a union such as "string or ()"
//! is sound. What the checker cannot see is *unknown* (every kind): array elements, map
//! values, what script functions and closures return, variables a closure captures, values
//! inside `try`. Nothing is reported about an unknown value, except that a rule's result must
//! be provably right: a guard's result must be a bool, a computed value must fit its field.
//!
//! **Flow**: `let` gives a variable its initialiser's type; assignments change it; `if`,
//! `switch`, `&&`, `||` and `??` join what their branches leave. Conditions narrow: after
//! `x != ()` (in `&&`, in an `if`, or after `if x == () { return ...; }`) `x` is not `()`.
//! Loops are analysed to a fixed point (a few rounds; then what they assign is unknown).
//!
//! **Functions and methods** are those of a small explicit table ([`SIGS`]), each with the
//! kinds it takes and gives, checked against the sandbox's engine by this module's tests (in
//! both directions: every entry works, and every other combination of kinds the table's names
//! are called with fails). A call the table does not have is an error, so a rule the checker
//! accepts never calls a function that is not there. Inside `fn` definitions and closures the
//! checker knows no types; it checks only that every function and method called there exists.
//!
//! The analysis is one pass over the tree (loops: a bounded number of passes), so checking is
//! linear in the size of the rules.

use std::rc::Rc;

use rhai::{ASTFlags, ASTNode, Dynamic, Expr, FnCallExpr, Position, Stmt, AST};

use crate::model::FieldType;

// ---------------------------------------------------------------------------------------------
// Kinds and types

/// A set of rhai's kinds of value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Kinds(u16);

impl Kinds {
    pub const NEVER: Kinds = Kinds(0);
    pub const UNIT: Kinds = Kinds(1);
    pub const BOOL: Kinds = Kinds(1 << 1);
    pub const INT: Kinds = Kinds(1 << 2);
    pub const FLOAT: Kinds = Kinds(1 << 3);
    pub const STR: Kinds = Kinds(1 << 4);
    pub const CHAR: Kinds = Kinds(1 << 5);
    pub const ARRAY: Kinds = Kinds(1 << 6);
    pub const MAP: Kinds = Kinds(1 << 7);
    pub const FNPTR: Kinds = Kinds(1 << 8);
    /// `a..b`
    pub const RANGE: Kinds = Kinds(1 << 9);
    /// `a..=b`
    pub const IRANGE: Kinds = Kinds(1 << 10);
    /// Anything else (a blob, an iterator): nothing is known about it.
    pub const OTHER: Kinds = Kinds(1 << 11);
    pub const ANY: Kinds = Kinds((1 << 12) - 1);

    const NAMES: [(Kinds, &'static str); 12] = [
        (Kinds::UNIT, "()"),
        (Kinds::BOOL, "a bool"),
        (Kinds::INT, "an int"),
        (Kinds::FLOAT, "a float"),
        (Kinds::STR, "a string"),
        (Kinds::CHAR, "a char"),
        (Kinds::ARRAY, "an array"),
        (Kinds::MAP, "a map"),
        (Kinds::FNPTR, "a function pointer"),
        (Kinds::RANGE, "a range"),
        (Kinds::IRANGE, "an inclusive range"),
        (Kinds::OTHER, "a value of another type"),
    ];

    pub const fn or(self, o: Kinds) -> Kinds {
        Kinds(self.0 | o.0)
    }
    pub const fn has(self, o: Kinds) -> bool {
        self.0 & o.0 != 0
    }
    /// Every kind of `self` is in `o`.
    pub const fn within(self, o: Kinds) -> bool {
        self.0 & !o.0 == 0
    }
    pub const fn minus(self, o: Kinds) -> Kinds {
        Kinds(self.0 & !o.0)
    }
    pub const fn is_never(self) -> bool {
        self.0 == 0
    }
    /// Unknown: anything at all (or anything of a kind nothing is known about).
    pub const fn is_unknown(self) -> bool {
        self.has(Kinds::OTHER)
    }
    /// The single kinds in the set.
    pub fn singles(self) -> impl Iterator<Item = Kinds> {
        Kinds::NAMES
            .iter()
            .map(|(k, _)| *k)
            .filter(move |k| self.has(*k))
    }
    /// "a string or ()".
    pub fn describe(self) -> String {
        if self == Kinds::ANY {
            return "a value of any type".to_string();
        }
        let names: Vec<&str> = Kinds::NAMES
            .iter()
            .filter(|(k, _)| self.has(*k))
            .map(|(_, n)| *n)
            .collect();
        match names.split_last() {
            None => "nothing".to_string(),
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        }
    }
    /// The kind of a value.
    pub fn of(d: &Dynamic) -> Kinds {
        if d.is_unit() {
            Kinds::UNIT
        } else if d.is_bool() {
            Kinds::BOOL
        } else if d.is_int() {
            Kinds::INT
        } else if d.is_float() {
            Kinds::FLOAT
        } else if d.is_string() {
            Kinds::STR
        } else if d.is_char() {
            Kinds::CHAR
        } else if d.is_array() {
            Kinds::ARRAY
        } else if d.is_map() {
            Kinds::MAP
        } else if d.is::<rhai::FnPtr>() {
            Kinds::FNPTR
        } else if d.is::<std::ops::Range<rhai::INT>>() {
            Kinds::RANGE
        } else if d.is::<std::ops::RangeInclusive<rhai::INT>>() {
            Kinds::IRANGE
        } else {
            Kinds::ANY
        }
    }
}

/// The strings a string value can be.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Strs {
    pub values: Vec<String>,
    /// What they are the values of, for messages (`` `change_type` ``, a stage): `None` for
    /// string literals.
    pub of: Option<String>,
}

/// A value's type.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Ty {
    pub k: Kinds,
    /// With [`Kinds::STR`]: the strings it can be, when known.
    pub strs: Option<Rc<Strs>>,
    /// With [`Kinds::INT`]: never negative.
    pub nonneg: bool,
    /// With [`Kinds::ARRAY`]: the type of its elements, when known (a list field's).
    pub elem: Option<Rc<Ty>>,
}

/// String sets joined beyond this size are forgotten (they only serve messages and checks of
/// literals, which are few).
const MAX_STRS: usize = 4096;

impl Ty {
    pub const fn new(k: Kinds) -> Ty {
        Ty {
            k,
            strs: None,
            nonneg: false,
            elem: None,
        }
    }
    pub const fn any() -> Ty {
        Ty::new(Kinds::ANY)
    }
    pub const fn never() -> Ty {
        Ty::new(Kinds::NEVER)
    }
    pub const fn int(nonneg: bool) -> Ty {
        Ty {
            k: Kinds::INT,
            strs: None,
            nonneg,
            elem: None,
        }
    }
    pub fn literal(s: &str) -> Ty {
        Ty {
            k: Kinds::STR,
            strs: Some(Rc::new(Strs {
                values: vec![s.to_string()],
                of: None,
            })),
            nonneg: false,
            elem: None,
        }
    }
    /// One of `strs`.
    pub fn one_of(strs: Rc<Strs>) -> Ty {
        Ty {
            k: Kinds::STR,
            strs: Some(strs),
            nonneg: false,
            elem: None,
        }
    }
    /// A field of this type as a rule sees it (see `runtime::values::to_dynamic`), `()` too
    /// when it may be unset; an enum's values come as `values`.
    pub fn field(ty: &FieldType, values: Option<Rc<Strs>>, may_be_unset: bool) -> Ty {
        let t = match ty {
            FieldType::Text | FieldType::Person => Ty::new(Kinds::STR),
            FieldType::Int | FieldType::DateTime => Ty::int(false),
            FieldType::Duration => Ty::int(true),
            FieldType::Bool => Ty::new(Kinds::BOOL),
            FieldType::Enum(_) => match values {
                Some(v) => Ty::one_of(v),
                None => Ty::new(Kinds::STR),
            },
            // An array, never holding `()`: indexing it gives an element.
            FieldType::List(element) => Ty {
                elem: Some(Rc::new(Ty::field(element, values, false))),
                ..Ty::new(Kinds::ARRAY)
            },
        };
        // An unset list reaches a rule as an empty array, never `()`.
        if may_be_unset && ty.element().is_none() {
            t.with_unit()
        } else {
            t
        }
    }
    pub fn with_unit(mut self) -> Ty {
        self.k = self.k.or(Kinds::UNIT);
        self
    }
    pub fn without_unit(mut self) -> Ty {
        if !self.k.is_unknown() {
            self.k = self.k.minus(Kinds::UNIT);
        }
        self
    }
    fn nonneg_ints(&self) -> bool {
        !self.k.has(Kinds::INT) || self.nonneg
    }
    pub fn join(&self, o: &Ty) -> Ty {
        let k = self.k.or(o.k);
        let strs = match (self.k.has(Kinds::STR), o.k.has(Kinds::STR)) {
            (true, false) => self.strs.clone(),
            (false, true) => o.strs.clone(),
            (false, false) => None,
            (true, true) => match (&self.strs, &o.strs) {
                (Some(a), Some(b)) if Rc::ptr_eq(a, b) || a == b => Some(a.clone()),
                (Some(a), Some(b)) if a.values.len() + b.values.len() <= MAX_STRS => {
                    let mut values = a.values.clone();
                    for v in &b.values {
                        if !values.contains(v) {
                            values.push(v.clone());
                        }
                    }
                    Some(Rc::new(Strs {
                        values,
                        of: if a.of == b.of { a.of.clone() } else { None },
                    }))
                }
                _ => None,
            },
        };
        let elem = match (self.k.has(Kinds::ARRAY), o.k.has(Kinds::ARRAY)) {
            (true, false) => self.elem.clone(),
            (false, true) => o.elem.clone(),
            (true, true) => match (&self.elem, &o.elem) {
                (Some(a), Some(b)) if a == b => Some(a.clone()),
                _ => None,
            },
            (false, false) => None,
        };
        Ty {
            k,
            strs: if k.is_unknown() { None } else { strs },
            nonneg: k.has(Kinds::INT) && !k.is_unknown() && self.nonneg_ints() && o.nonneg_ints(),
            elem: if k.is_unknown() { None } else { elem },
        }
    }
    fn of_dynamic(d: &Dynamic) -> Ty {
        let k = Kinds::of(d);
        if k == Kinds::STR {
            if let Ok(s) = d.as_immutable_string_ref() {
                return Ty::literal(s.as_str());
            }
        }
        if k == Kinds::INT {
            return Ty::int(d.as_int().is_ok_and(|n| n >= 0));
        }
        Ty::new(k)
    }
}

// ---------------------------------------------------------------------------------------------
// Operators

/// Comparison operators: always give a bool when they do not fail.
fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | "<" | "<=" | ">" | ">=")
}

fn is_operator(name: &str) -> bool {
    matches!(
        name,
        "+" | "-"
            | "*"
            | "/"
            | "%"
            | "**"
            | "<<"
            | ">>"
            | "&"
            | "|"
            | "^"
            | "=="
            | "!="
            | "<"
            | "<="
            | ">"
            | ">="
            | "!"
            | ".."
            | "..="
    )
}

/// What `a OP b` gives for values of single kinds `a` and `b`, as the sandbox evaluates it
/// (rhai's built-in operators, then the standard packages' functions); `None` if it fails.
/// Checked against the engine by `operators_match_the_engine`.
pub(super) fn binary_kinds(op: &str, a: Kinds, b: Kinds) -> Option<Kinds> {
    use Kinds as K;
    let num = |k: Kinds| k == K::INT || k == K::FLOAT;
    let text = |k: Kinds| k == K::STR || k == K::CHAR;
    if is_comparison(op) {
        let ordering = !matches!(op, "==" | "!=");
        let fails = match (a, b) {
            (K::FNPTR, K::FNPTR) => true,
            (K::ARRAY, K::ARRAY) | (K::MAP, K::MAP) => ordering,
            (K::RANGE, K::RANGE) | (K::IRANGE, K::IRANGE) => ordering,
            // rhai has no `==` between the two kinds of range (only `!=`).
            (K::RANGE, K::IRANGE) | (K::IRANGE, K::RANGE) => op != "!=",
            _ => false,
        };
        return (!fails).then_some(K::BOOL);
    }
    match op {
        "+" => match (a, b) {
            (K::INT, K::INT) => Some(K::INT),
            (x, y) if num(x) && num(y) => Some(K::FLOAT),
            (x, y) if text(x) && text(y) => Some(K::STR),
            // A string and anything else: the other's `to_string`.
            (K::STR, _) | (_, K::STR) => Some(K::STR),
            (K::ARRAY, K::ARRAY) => Some(K::ARRAY),
            (K::MAP, K::MAP) => Some(K::MAP),
            _ => None,
        },
        "-" => match (a, b) {
            (K::INT, K::INT) => Some(K::INT),
            (x, y) if num(x) && num(y) => Some(K::FLOAT),
            (K::STR, K::STR) | (K::STR, K::CHAR) => Some(K::STR),
            _ => None,
        },
        "*" | "/" | "%" | "**" => match (a, b) {
            (K::INT, K::INT) => Some(K::INT),
            (x, y) if num(x) && num(y) => Some(K::FLOAT),
            _ => None,
        },
        "<<" | ">>" => (a == K::INT && b == K::INT).then_some(K::INT),
        "&" | "|" | "^" => match (a, b) {
            (K::INT, K::INT) => Some(K::INT),
            (K::BOOL, K::BOOL) => Some(K::BOOL),
            _ => None,
        },
        ".." => match (a, b) {
            (K::INT, K::INT) | (K::INT, K::UNIT) | (K::UNIT, K::INT) => Some(K::RANGE),
            _ => None,
        },
        "..=" => match (a, b) {
            (K::INT, K::INT) | (K::INT, K::UNIT) | (K::UNIT, K::INT) => Some(K::IRANGE),
            _ => None,
        },
        _ => None,
    }
}

/// What `a OP= b` leaves in `a`: as `a OP b`, except that `+=` appends anything to an array.
pub(super) fn assign_kinds(op: &str, a: Kinds, b: Kinds) -> Option<Kinds> {
    if op == "+" && a == Kinds::ARRAY {
        return Some(Kinds::ARRAY);
    }
    binary_kinds(op, a, b)
}

/// What `OP a` gives; `None` if it fails.
pub(super) fn unary_kinds(op: &str, a: Kinds) -> Option<Kinds> {
    match (op, a) {
        ("-" | "+", Kinds::INT) => Some(Kinds::INT),
        ("-" | "+", Kinds::FLOAT) => Some(Kinds::FLOAT),
        ("!", Kinds::BOOL) => Some(Kinds::BOOL),
        _ => None,
    }
}

/// What `a[i]` gives; `None` if it fails.
pub(super) fn index_kinds(a: Kinds, i: Kinds) -> Option<Kinds> {
    use Kinds as K;
    match (a, i) {
        (K::STR, K::INT) => Some(K::CHAR),
        (K::STR, K::RANGE | K::IRANGE) => Some(K::STR),
        (K::INT, K::INT) => Some(K::BOOL),
        (K::INT, K::RANGE | K::IRANGE) => Some(K::INT),
        (K::ARRAY, K::INT) | (K::MAP, K::STR) => Some(K::ANY),
        _ => None,
    }
}

/// Two single kinds whose values can be equal (or ordered) meaningfully.
fn comparable(a: Kinds, b: Kinds) -> bool {
    let num = |k: Kinds| k == Kinds::INT || k == Kinds::FLOAT;
    let text = |k: Kinds| k == Kinds::STR || k == Kinds::CHAR;
    a == b || (num(a) && num(b)) || (text(a) && text(b)) || a.is_unknown() || b.is_unknown()
}

// ---------------------------------------------------------------------------------------------
// Functions and methods

/// What a function gives.
#[derive(Clone, Copy, Debug)]
pub(super) enum Ret {
    K(Kinds),
    /// An int never negative.
    NonNeg,
    /// `max`/`min` of ints: never negative when one (`max`) or both (`min`) are not.
    Max,
    Min,
}

/// A function or method of the sandbox: its parameters' kinds (the receiver first, for a
/// method) and what it gives.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sig {
    pub name: &'static str,
    pub params: &'static [Kinds],
    pub ret: Ret,
    /// Also a property (`s.len` as well as `s.len()`).
    pub getter: bool,
    /// Changes its receiver (so it cannot be called on a constant).
    pub mutates: bool,
    /// Takes any number of further arguments of any kind (`call`, `curry`).
    pub variadic: bool,
}

const S: Kinds = Kinds::STR;
const C: Kinds = Kinds::CHAR;
const I: Kinds = Kinds::INT;
const F: Kinds = Kinds::FLOAT;
const A: Kinds = Kinds::ARRAY;
const M: Kinds = Kinds::MAP;
const SC: Kinds = Kinds::STR.or(Kinds::CHAR);
const ANYK: Kinds = Kinds::ANY;
const RANGES: Kinds = Kinds::RANGE.or(Kinds::IRANGE);
/// Anything but a function pointer (which some array functions call instead of comparing).
const VALUE: Kinds = Kinds::ANY.minus(Kinds::FNPTR);

const fn sig(name: &'static str, params: &'static [Kinds], ret: Ret) -> Sig {
    Sig {
        name,
        params,
        ret,
        getter: false,
        mutates: false,
        variadic: false,
    }
}
const fn prop(name: &'static str, params: &'static [Kinds], ret: Ret) -> Sig {
    Sig {
        getter: true,
        ..sig(name, params, ret)
    }
}
const fn mutator(name: &'static str, params: &'static [Kinds]) -> Sig {
    mutator_giving(name, params, Ret::K(Kinds::UNIT))
}
const fn mutator_giving(name: &'static str, params: &'static [Kinds], ret: Ret) -> Sig {
    Sig {
        mutates: true,
        ..sig(name, params, ret)
    }
}

/// The functions and methods rules may call. Every function may be called as a method of its
/// first argument (`s.len()` or `len(s)`).
pub(super) const SIGS: &[Sig] = &[
    // Any value.
    sig("to_string", &[ANYK], Ret::K(S)),
    sig("to_debug", &[ANYK], Ret::K(S)),
    sig("type_of", &[ANYK], Ret::K(S)),
    sig("print", &[ANYK], Ret::K(Kinds::UNIT)),
    sig("debug", &[ANYK], Ret::K(Kinds::UNIT)),
    // Strings.
    prop("len", &[S], Ret::NonNeg),
    prop("is_empty", &[S], Ret::K(Kinds::BOOL)),
    prop("bytes", &[S], Ret::NonNeg),
    sig("contains", &[S, SC], Ret::K(Kinds::BOOL)),
    sig("starts_with", &[S, SC], Ret::K(Kinds::BOOL)),
    sig("ends_with", &[S, SC], Ret::K(Kinds::BOOL)),
    sig("index_of", &[S, SC], Ret::K(I)),
    sig("index_of", &[S, SC, I], Ret::K(I)),
    sig("sub_string", &[S, I], Ret::K(S)),
    sig("sub_string", &[S, I, I], Ret::K(S)),
    sig("sub_string", &[S, RANGES], Ret::K(S)),
    sig("to_upper", &[S], Ret::K(S)),
    sig("to_lower", &[S], Ret::K(S)),
    sig("to_upper", &[C], Ret::K(C)),
    sig("to_lower", &[C], Ret::K(C)),
    sig("get", &[S, I], Ret::K(Kinds::CHAR.or(Kinds::UNIT))),
    sig("split", &[S], Ret::K(A)),
    sig("split", &[S, SC], Ret::K(A)),
    sig("split", &[S, SC, I], Ret::K(A)),
    sig("split", &[S, I], Ret::K(A)),
    sig("to_chars", &[S], Ret::K(A)),
    sig("max", &[S, S], Ret::K(S)),
    sig("min", &[S, S], Ret::K(S)),
    sig("max", &[C, C], Ret::K(C)),
    sig("min", &[C, C], Ret::K(C)),
    sig("to_int", &[C], Ret::K(I)),
    mutator("trim", &[S]),
    mutator("make_upper", &[SC]),
    mutator("make_lower", &[SC]),
    mutator("clear", &[Kinds::STR.or(A).or(M)]),
    mutator("truncate", &[Kinds::STR.or(A), I]),
    mutator("remove", &[S, SC]),
    mutator("replace", &[S, SC, SC]),
    mutator("append", &[S, ANYK]),
    mutator_giving("pop", &[S], Ret::K(Kinds::CHAR.or(Kinds::UNIT))),
    mutator_giving("pop", &[S, I], Ret::K(S)),
    // Numbers.
    sig("abs", &[I], Ret::NonNeg),
    sig("abs", &[F], Ret::K(F)),
    sig("sign", &[I], Ret::K(I)),
    sig("sign", &[F], Ret::K(I)),
    prop("is_odd", &[I], Ret::K(Kinds::BOOL)),
    prop("is_even", &[I], Ret::K(Kinds::BOOL)),
    prop("is_zero", &[I], Ret::K(Kinds::BOOL)),
    prop("is_zero", &[F], Ret::K(Kinds::BOOL)),
    sig("max", &[I, I], Ret::Max),
    sig("min", &[I, I], Ret::Min),
    sig("max", &[F, F], Ret::K(F)),
    sig("min", &[F, F], Ret::K(F)),
    sig("max", &[I, F], Ret::K(F)),
    sig("min", &[I, F], Ret::K(F)),
    sig("max", &[F, I], Ret::K(F)),
    sig("min", &[F, I], Ret::K(F)),
    sig("to_float", &[I], Ret::K(F)),
    sig("to_float", &[F], Ret::K(F)),
    sig("to_int", &[I], Ret::K(I)),
    sig("to_int", &[F], Ret::K(I)),
    prop("floor", &[F], Ret::K(F)),
    prop("ceiling", &[F], Ret::K(F)),
    prop("round", &[F], Ret::K(F)),
    // Arrays.
    prop("len", &[A], Ret::NonNeg),
    prop("is_empty", &[A], Ret::K(Kinds::BOOL)),
    sig("contains", &[A, ANYK], Ret::K(Kinds::BOOL)),
    sig("index_of", &[A, VALUE], Ret::K(I)),
    sig("index_of", &[A, VALUE, I], Ret::K(I)),
    sig("get", &[A, I], Ret::K(ANYK)),
    mutator_giving("remove", &[A, I], Ret::K(ANYK)),
    mutator_giving("split", &[A, I], Ret::K(A)),
    mutator("push", &[A, ANYK]),
    mutator("insert", &[A, I, ANYK]),
    mutator("append", &[A, A]),
    mutator("reverse", &[A]),
    mutator_giving("pop", &[A], Ret::K(ANYK)),
    mutator_giving("shift", &[A], Ret::K(ANYK)),
    // Maps.
    prop("len", &[M], Ret::NonNeg),
    prop("is_empty", &[M], Ret::K(Kinds::BOOL)),
    sig("contains", &[M, S], Ret::K(Kinds::BOOL)),
    sig("keys", &[M], Ret::K(A)),
    sig("values", &[M], Ret::K(A)),
    sig("get", &[M, S], Ret::K(ANYK)),
    mutator_giving("remove", &[M, S], Ret::K(ANYK)),
    // Ranges (`x in 1..10`).
    sig("contains", &[RANGES, I], Ret::K(Kinds::BOOL)),
    prop("is_empty", &[RANGES], Ret::K(Kinds::BOOL)),
    // Function pointers.
    sig("Fn", &[S], Ret::K(Kinds::FNPTR)),
    Sig {
        variadic: true,
        ..sig("call", &[Kinds::FNPTR], Ret::K(ANYK))
    },
    Sig {
        variadic: true,
        ..sig("curry", &[Kinds::FNPTR], Ret::K(Kinds::FNPTR))
    },
];

/// Functions of [`SIGS`] that are keywords of rhai, called only as functions.
const KEYWORDS: [&str; 3] = ["Fn", "print", "debug"];

impl Sig {
    fn takes(&self, arity: usize) -> bool {
        self.params.len() == arity || (self.variadic && arity >= self.params.len())
    }
    /// Whether it takes these single kinds (beyond its parameters, a variadic one takes any).
    fn fits(&self, kinds: &[Kinds]) -> bool {
        self.takes(kinds.len()) && self.params.iter().zip(kinds).all(|(p, k)| p.has(*k))
    }
    fn gives(&self, args: &[&Ty]) -> Ty {
        match self.ret {
            Ret::K(k) => Ty::new(k),
            Ret::NonNeg => Ty::int(true),
            Ret::Max => Ty::int(args.iter().any(|t| t.nonneg)),
            Ret::Min => Ty::int(args.iter().all(|t| t.nonneg)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Findings

/// A problem found in a rule, at byte offsets of its code.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub code: &'static str,
    pub warning: bool,
    pub start: usize,
    pub end: usize,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

/// The byte offset in `code` of rhai's 1-based line and column (columns count characters).
pub(super) fn offset_of(code: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in code.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col = l
                .char_indices()
                .nth(column.saturating_sub(1))
                .map(|(o, _)| o)
                .unwrap_or(l.trim_end_matches('\n').len());
            return offset + col;
        }
        offset += l.len();
    }
    code.len()
}

/// Where one token that starts at `at` ends (a name, a number, a string or char literal, an
/// operator).
fn token_end(code: &str, at: usize) -> usize {
    let Some(rest) = code.get(at..) else {
        return at;
    };
    let mut chars = rest.char_indices();
    let Some((_, first)) = chars.next() else {
        return at;
    };
    if first == '"' || first == '`' || first == '\'' {
        let mut escaped = false;
        for (i, c) in chars {
            if escaped {
                escaped = false;
            } else if c == '\\' && first != '`' {
                escaped = true;
            } else if c == first {
                return at + i + c.len_utf8();
            }
        }
        return code.len();
    }
    if first.is_alphanumeric() || first == '_' {
        let len = rest
            .char_indices()
            .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
            .map_or(rest.len(), |(i, _)| i);
        return at + len;
    }
    const OPS: [&str; 19] = [
        "..=", "==", "!=", "<=", ">=", "&&", "||", "??", "**", "<<", ">>", "+=", "-=", "*=", "/=",
        "?.", "?[", "..", "=>",
    ];
    match OPS.iter().find(|op| rest.starts_with(**op)) {
        Some(op) => at + op.len(),
        None => at + first.len_utf8(),
    }
}

/// Where the bracketed item that starts at `at` (with `[`, `(` or `{`) ends, skipping string
/// literals; the end of the code if it does not.
fn bracket_end(code: &str, at: usize) -> usize {
    let bytes = code.as_bytes();
    let mut depth = 0usize;
    let mut i = at;
    while i < bytes.len() {
        match bytes[i] {
            b'"' | b'`' | b'\'' => {
                i = token_end(code, i);
                continue;
            }
            b'[' | b'(' | b'{' => depth += 1,
            b']' | b')' | b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    code.len()
}

/// The string literals (plain `"..."` ones without escapes) between `from` and `to`: their
/// text and where each starts.
fn string_literals(code: &str, from: usize, to: usize) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let mut i = from;
    let to = to.min(code.len());
    while i < to {
        let Some(c) = code.get(i..).and_then(|r| r.chars().next()) else {
            break;
        };
        if c == '"' {
            let end = token_end(code, i);
            if let Some(inner) = code.get(i + 1..end.saturating_sub(1)) {
                if end > i + 1 && !inner.contains('\\') {
                    out.push((inner.to_string(), i));
                }
            }
            i = end.max(i + 1);
        } else {
            i += c.len_utf8();
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Variables

/// A variable in scope.
#[derive(Clone, Debug)]
pub(super) struct Var {
    pub name: String,
    pub ty: Ty,
    /// A priority level, or a `const`: cannot be assigned or changed by a method.
    pub constant: bool,
    /// What to do about it being `()` (for a field that may be unset).
    pub unset_help: Option<String>,
}

#[derive(Clone, Debug)]
struct Env {
    vars: Vec<Var>,
    /// Types narrowed by conditions (index into `vars`), undone when the condition's scope
    /// ends; the last one for a variable counts.
    overlay: Vec<(usize, Ty)>,
    /// No path reaches here (after `return`, `throw`, `break`).
    dead: bool,
}

impl Env {
    fn find(&self, name: &str) -> Option<usize> {
        self.vars.iter().rposition(|v| v.name == name)
    }
    fn ty(&self, i: usize) -> Ty {
        self.overlay
            .iter()
            .rev()
            .find(|(j, _)| *j == i)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| self.vars[i].ty.clone())
    }
    fn assign(&mut self, i: usize, ty: Ty, weak: bool) {
        let new = |old: &Ty| if weak { old.join(&ty) } else { ty.clone() };
        let v = new(&self.vars[i].ty);
        self.vars[i].ty = v;
        for (j, t) in &mut self.overlay {
            if *j == i {
                *t = new(t);
            }
        }
    }
    /// The environment after either of two paths (with the same variables in scope).
    fn join(a: Env, b: Env) -> Env {
        if a.dead {
            return b;
        }
        if b.dead {
            return a;
        }
        let mut out = a;
        for (v, w) in out.vars.iter_mut().zip(&b.vars) {
            v.ty = v.ty.join(&w.ty);
        }
        let n = out
            .overlay
            .iter()
            .zip(&b.overlay)
            .take_while(|((i, _), (j, _))| i == j)
            .count();
        out.overlay.truncate(n);
        for ((_, t), (_, u)) in out.overlay.iter_mut().zip(&b.overlay) {
            *t = t.join(u);
        }
        out
    }
    fn same(&self, o: &Env) -> bool {
        self.dead == o.dead
            && self.vars.len() == o.vars.len()
            && self.vars.iter().zip(&o.vars).all(|(a, b)| a.ty == b.ty)
    }
}

// ---------------------------------------------------------------------------------------------
// The checker

/// What a rule's result must be.
pub(super) enum Expect<'a> {
    Guard,
    Computes {
        field: &'a str,
        ty: &'a FieldType,
        required: bool,
    },
}

/// Rounds of a loop's analysis before what it assigns is taken as unknown.
const LOOP_ROUNDS: usize = 4;

struct Checker<'a> {
    code: &'a str,
    /// Script functions the rule defines: name and number of parameters.
    fns: Vec<(String, usize)>,
    found: Vec<Found>,
    /// Above zero: findings are not reported (a loop's first rounds, a `try` block).
    quiet: u32,
    /// Above zero: the code runs only on some paths, so assignments join.
    weak: u32,
    /// Above zero: inside a loop being analysed to a fixed point (nested loops are not).
    looping: u32,
    /// Per enclosing loop: the environments at its `break`s and `continue`s.
    jumps: Vec<Vec<Env>>,
    /// The types of `return`s of the rule and where each is.
    returns: Vec<(Ty, Position)>,
    /// What to do about a variable of the rule's scope being unset, by name.
    unset_help: Vec<(String, String)>,
}

/// Check a compiled rule: `vars` is what it can read; what it gives must fit `expect`.
pub(super) fn check_rule(ast: &AST, code: &str, vars: Vec<Var>, expect: &Expect) -> Vec<Found> {
    let mut c = Checker {
        code,
        fns: ast
            .iter_functions()
            .map(|f| (f.name.to_string(), f.params.len()))
            .collect(),
        found: Vec::new(),
        quiet: 0,
        weak: 0,
        looping: 0,
        jumps: Vec::new(),
        returns: Vec::new(),
        unset_help: vars
            .iter()
            .filter_map(|v| Some((v.name.clone(), v.unset_help.clone()?)))
            .collect(),
    };
    let mut env = Env {
        vars,
        overlay: Vec::new(),
        dead: false,
    };
    let stmts = ast.statements();
    let last = c.block(&mut env, stmts);
    let mut result = last.clone();
    for (t, _) in &c.returns {
        result = result.join(t);
    }
    c.result(stmts.last(), &last, &result, expect);
    c.names_everywhere(ast);
    c.found
}

impl Checker<'_> {
    // --- reporting

    fn report(
        &mut self,
        code: &'static str,
        (start, end): (usize, usize),
        message: String,
        label: &str,
        help: Option<String>,
    ) {
        self.push(Found {
            code,
            warning: false,
            start,
            end,
            message,
            label: label.to_string(),
            help,
        });
    }

    fn push(&mut self, f: Found) {
        if self.quiet > 0 || self.found.iter().any(|g| g.start == f.start) {
            return;
        }
        self.found.push(f);
    }

    fn offset(&self, pos: Position) -> Option<usize> {
        let line = pos.line()?;
        Some(offset_of(self.code, line, pos.position().unwrap_or(1)))
    }

    /// The token at `pos`.
    fn at(&self, pos: Position) -> (usize, usize) {
        match self.offset(pos) {
            Some(o) => (
                o,
                token_end(self.code, o)
                    .max(o + 1)
                    .min(self.code.len().max(o)),
            ),
            None => (0, self.code.len()),
        }
    }

    /// From the first to the last token of an expression.
    fn extent(&self, e: &Expr) -> (usize, usize) {
        let mut span: Option<(usize, usize)> = None;
        let mut add = |s: (usize, usize)| {
            span = Some(match span {
                None => s,
                Some((a, b)) => (a.min(s.0), b.max(s.1)),
            });
        };
        e.walk(&mut Vec::new(), &mut |path: &[ASTNode]| {
            if let Some(node) = path.last() {
                let pos = node.position();
                if let Some(o) = self.offset(pos) {
                    let end = match node {
                        ASTNode::Expr(Expr::DynamicConstant(..)) => {
                            let c = self.code.as_bytes().get(o).copied();
                            if matches!(c, Some(b'[' | b'(' | b'{' | b'#')) {
                                let from = if c == Some(b'#') { o + 1 } else { o };
                                bracket_end(self.code, from)
                            } else {
                                token_end(self.code, o)
                            }
                        }
                        ASTNode::Expr(Expr::Stmt(b)) => b
                            .end_position()
                            .line()
                            .map(|_| {
                                let e = self.at(b.end_position());
                                e.1
                            })
                            .unwrap_or_else(|| token_end(self.code, o)),
                        _ => token_end(self.code, o),
                    };
                    add((o, end.max(o)));
                }
            }
            true
        });
        // A call's closing parenthesis is no node of its own, nor is an index's bracket.
        let (start, mut end) = span.unwrap_or((0, self.code.len()));
        let close = match e {
            Expr::FnCall(..) | Expr::Dot(..) | Expr::MethodCall(..) => Some(')'),
            Expr::Index(..) => Some(']'),
            _ => None,
        };
        if let Some(close) = close {
            let rest = self.code.get(end..).unwrap_or("");
            let trimmed = rest.trim_start();
            if trimmed.starts_with(close) {
                end += rest.len() - trimmed.len() + 1;
            }
        }
        (start, end.max(start + 1).min(self.code.len().max(start)))
    }

    /// From the first to the last token of a statement (an `if` to its last `}`).
    fn stmt_extent(&self, s: &Stmt) -> (usize, usize) {
        let start = self.at(s.position()).0;
        let block_end = |b: &rhai::StmtBlock| {
            let end = b.end_position();
            self.offset(end).filter(|_| !end.is_none()).map(|o| o + 1)
        };
        let end = match s {
            Stmt::Expr(e) => return self.extent(e),
            Stmt::FnCall(f, pos) => return self.extent(&Expr::FnCall(f.clone(), *pos)),
            Stmt::If(x, _) => block_end(&x.branch).or_else(|| block_end(&x.body)),
            Stmt::Switch(..) | Stmt::While(..) | Stmt::Do(..) | Stmt::For(..) | Stmt::Block(..) => {
                self.code[start..]
                    .find('{')
                    .map(|i| bracket_end(self.code, start + i))
            }
            _ => None,
        };
        match end {
            Some(e) if e > start => (start, e.min(self.code.len())),
            _ => self.at(s.position()),
        }
    }

    /// How a message names an expression: its source text when short, else "this value".
    fn what(&self, e: &Expr) -> String {
        let (a, b) = self.extent(e);
        match self.code.get(a..b) {
            Some(t) if t.chars().count() <= 40 && !t.contains('\n') => format!("`{t}`"),
            _ => "this value".to_string(),
        }
    }

    // --- statements

    /// A block's value (its last statement's); its `let`s end with it.
    fn block(&mut self, env: &mut Env, stmts: &[Stmt]) -> Ty {
        let scope = env.vars.len();
        let mut last = Ty::new(Kinds::UNIT);
        for s in stmts {
            if env.dead {
                break;
            }
            last = self.stmt(env, s);
        }
        env.vars.truncate(scope);
        env.overlay.retain(|(i, _)| *i < scope);
        if env.dead {
            Ty::never()
        } else {
            last
        }
    }

    fn stmt(&mut self, env: &mut Env, s: &Stmt) -> Ty {
        let unit = Ty::new(Kinds::UNIT);
        match s {
            Stmt::Noop(..) => unit,
            Stmt::Expr(e) => self.expr(env, e),
            Stmt::FnCall(f, pos) => self.call(env, f, *pos),
            Stmt::Block(b) => self.block(env, b.statements()),
            Stmt::Var(x, flags, _) => {
                let (ident, init, _) = &**x;
                let ty = self.expr(env, init);
                env.vars.push(Var {
                    name: ident.name.to_string(),
                    ty,
                    constant: flags.contains(ASTFlags::CONSTANT),
                    unset_help: None,
                });
                unit
            }
            Stmt::Assignment(x) => {
                let (op, bin) = &**x;
                let rhs = self.expr(env, &bin.rhs);
                match &bin.lhs {
                    Expr::Variable(v, _, pos) => {
                        let name = v.1.as_str();
                        if let Some(i) = env.find(name) {
                            if env.vars[i].constant {
                                self.constant(&env.vars[i].name, *pos, "assigned");
                            }
                            let new = match op.get_op_assignment_info() {
                                Some((.., base)) => {
                                    let cur = env.ty(i);
                                    let op_pos = op.position();
                                    self.binary(
                                        base,
                                        (&cur, &bin.lhs),
                                        (&rhs, &bin.rhs),
                                        op_pos,
                                        true,
                                    )
                                }
                                None => rhs,
                            };
                            env.assign(i, new, self.weak > 0);
                        }
                    }
                    lhs => {
                        // An element or property set: the target keeps its kind; setters
                        // are not checked.
                        self.quiet += 1;
                        self.expr(env, lhs);
                        self.quiet -= 1;
                    }
                }
                unit
            }
            Stmt::If(x, _) => {
                let saved = env.overlay.len();
                let cond = self.expr(env, &x.expr);
                self.need_bool(&cond, &x.expr, "`if`");
                let mut then_env = env.clone();
                self.narrow(&mut then_env, &x.expr, true);
                let t = self.block(&mut then_env, x.body.statements());
                let mut else_env = env.clone();
                self.narrow(&mut else_env, &x.expr, false);
                let e = self.block(&mut else_env, x.branch.statements());
                // When one path ends (`if x == () { return false; }`), what the other knew
                // holds after the `if`; else what either narrowed ends with it.
                if then_env.dead == else_env.dead {
                    then_env.overlay.truncate(saved);
                    else_env.overlay.truncate(saved);
                }
                *env = Env::join(then_env, else_env);
                if env.dead {
                    return Ty::never();
                }
                t.join(&e)
            }
            Stmt::Switch(x, _) => {
                let (value, cases) = &**x;
                let v = self.expr(env, value);
                self.switch_cases(value, &v, cases, s.position());
                let before = env.clone();
                let mut out: Option<Env> = None;
                let mut ty = Ty::never();
                for case in cases.expressions.iter() {
                    let mut e = before.clone();
                    if !matches!(case.lhs, Expr::BoolConstant(..)) {
                        let c = self.expr(&mut e, &case.lhs);
                        self.need_bool(&c, &case.lhs, "a `switch` case's condition");
                        self.narrow(&mut e, &case.lhs, true);
                    }
                    let t = self.expr(&mut e, &case.rhs);
                    e.overlay.truncate(before.overlay.len());
                    ty = ty.join(&t);
                    out = Some(match out {
                        None => e,
                        Some(o) => Env::join(o, e),
                    });
                }
                if cases.def_case.is_none() || cases.expressions.is_empty() {
                    ty = ty.join(&Ty::new(Kinds::UNIT));
                    out = Some(match out {
                        None => before,
                        Some(o) => Env::join(o, before),
                    });
                }
                if let Some(o) = out {
                    *env = o;
                }
                ty
            }
            Stmt::While(x, _) => {
                let is_loop = matches!(x.expr, Expr::Unit(..) | Expr::BoolConstant(true, ..));
                self.looped(env, s, |c, env| {
                    if !is_loop {
                        let t = c.expr(env, &x.expr);
                        c.need_bool(&t, &x.expr, "`while`");
                        let mut inside = env.clone();
                        c.narrow(&mut inside, &x.expr, true);
                        c.block(&mut inside, x.body.statements());
                        inside.overlay.truncate(env.overlay.len());
                        inside
                    } else {
                        let mut inside = env.clone();
                        c.block(&mut inside, x.body.statements());
                        inside
                    }
                })
            }
            Stmt::Do(x, _, _) => self.looped(env, s, |c, env| {
                let mut inside = env.clone();
                c.block(&mut inside, x.body.statements());
                if !inside.dead {
                    let t = c.expr(&mut inside, &x.expr);
                    c.need_bool(&t, &x.expr, "`do ... while`");
                }
                inside
            }),
            Stmt::For(x, _) => {
                let (var, counter, fc) = &**x;
                let over = self.expr(env, &fc.expr);
                let item = if over.k.is_unknown() {
                    Ty::any()
                } else if over.k.within(RANGES) {
                    Ty::int(false)
                } else if over.k == Kinds::STR {
                    Ty::new(Kinds::CHAR)
                } else {
                    Ty::any()
                };
                self.looped(env, s, |c, env| {
                    let mut inside = env.clone();
                    let scope = inside.vars.len();
                    inside.vars.push(Var {
                        name: var.name.to_string(),
                        ty: item.clone(),
                        constant: false,
                        unset_help: None,
                    });
                    if let Some(counter) = counter {
                        inside.vars.push(Var {
                            name: counter.name.to_string(),
                            ty: Ty::int(true),
                            constant: false,
                            unset_help: None,
                        });
                    }
                    c.block(&mut inside, fc.body.statements());
                    inside.vars.truncate(scope);
                    inside.overlay.retain(|(i, _)| *i < scope);
                    inside
                })
            }
            Stmt::TryCatch(x, _) => {
                // What fails inside `try` is caught: nothing there is reported.
                self.quiet += 1;
                let mut body = env.clone();
                self.block(&mut body, x.body.statements());
                let mut catch = env.clone();
                let scope = catch.vars.len();
                if let Expr::Variable(v, ..) = &x.expr {
                    catch.vars.push(Var {
                        name: v.1.to_string(),
                        ty: Ty::any(),
                        constant: false,
                        unset_help: None,
                    });
                }
                self.block(&mut catch, x.branch.statements());
                catch.vars.truncate(scope);
                catch.overlay.retain(|(i, _)| *i < scope);
                self.quiet -= 1;
                // Either may have stopped anywhere: what they assign is unknown after.
                let mut out = Env::join(body, catch);
                out.dead = false;
                for (v, w) in out.vars.iter_mut().zip(&env.vars) {
                    if v.ty != w.ty {
                        v.ty = Ty::any();
                    }
                }
                *env = out;
                Ty::any()
            }
            Stmt::BreakLoop(value, _, _) => {
                if let Some(v) = value {
                    self.expr(env, v);
                }
                if let Some(j) = self.jumps.last_mut() {
                    j.push(env.clone());
                }
                env.dead = true;
                Ty::never()
            }
            Stmt::Return(value, flags, pos) => {
                let t = match value {
                    Some(v) => self.expr(env, v),
                    None => Ty::new(Kinds::UNIT),
                };
                if !flags.contains(ASTFlags::BREAK) {
                    let at = value.as_ref().map_or(*pos, |v| v.start_position());
                    self.returns.push((t, at));
                }
                env.dead = true;
                Ty::never()
            }
            Stmt::Share(vars) => {
                // Captured by a closure, which may change them whenever it is called.
                for (ident, _) in vars.iter() {
                    if let Some(i) = env.find(ident.name.as_str()) {
                        env.vars[i].ty = Ty::any();
                        env.assign(i, Ty::any(), false);
                    }
                }
                unit
            }
            _ => Ty::any(),
        }
    }

    /// A loop: `round` analyses one pass of it from an environment and returns the one its
    /// body ends with. Rounds repeat until the environment at the loop's start is stable;
    /// then a last round reports. The loop's value is `()` (or unknown, with `break VALUE`).
    fn looped(
        &mut self,
        env: &mut Env,
        s: &Stmt,
        mut round: impl FnMut(&mut Self, &mut Env) -> Env,
    ) -> Ty {
        let before = env.clone();
        let mut entry = env.clone();
        if self.looping == 0 {
            self.looping += 1;
            self.quiet += 1;
            let mut stable = false;
            for _ in 0..LOOP_ROUNDS {
                self.jumps.push(Vec::new());
                let end = round(self, &mut entry.clone());
                let jumps = self.jumps.pop().unwrap_or_default();
                let mut next = Env::join(before.clone(), end);
                for j in jumps {
                    next = Env::join(next, j);
                }
                next.dead = false;
                if next.same(&entry) {
                    stable = true;
                    break;
                }
                entry = next;
            }
            self.quiet -= 1;
            self.looping -= 1;
            if !stable {
                entry = self.widened(&before, s);
            }
        } else {
            entry = self.widened(&before, s);
        }
        self.jumps.push(Vec::new());
        let end = round(self, &mut entry.clone());
        let jumps = self.jumps.pop().unwrap_or_default();
        let mut after = Env::join(entry, end);
        for j in jumps {
            after = Env::join(after, j);
        }
        after.dead = false;
        *env = after;
        if breaks_with_value(s) {
            Ty::any()
        } else {
            Ty::new(Kinds::UNIT)
        }
    }

    /// `before`, with every variable the loop assigns unknown.
    fn widened(&self, before: &Env, s: &Stmt) -> Env {
        let mut names = Vec::new();
        assigned_in(s, &mut names);
        let mut out = before.clone();
        for name in names {
            if let Some(i) = out.find(&name) {
                out.assign(i, Ty::any(), false);
            }
        }
        out
    }

    // --- expressions

    fn expr(&mut self, env: &mut Env, e: &Expr) -> Ty {
        match e {
            Expr::DynamicConstant(d, _) => Ty::of_dynamic(d),
            Expr::BoolConstant(..) => Ty::new(Kinds::BOOL),
            Expr::IntegerConstant(n, _) => Ty::int(*n >= 0),
            Expr::FloatConstant(..) => Ty::new(Kinds::FLOAT),
            Expr::CharConstant(..) => Ty::new(Kinds::CHAR),
            Expr::StringConstant(s, _) => Ty::literal(s.as_str()),
            Expr::InterpolatedString(parts, _) => {
                for p in parts.iter() {
                    self.expr(env, p);
                }
                Ty::new(Kinds::STR)
            }
            Expr::Array(items, _) => {
                for i in items.iter() {
                    self.expr(env, i);
                }
                Ty::new(Kinds::ARRAY)
            }
            Expr::Map(m, _) => {
                for (_, v) in m.0.iter() {
                    self.expr(env, v);
                }
                Ty::new(Kinds::MAP)
            }
            Expr::Unit(_) => Ty::new(Kinds::UNIT),
            Expr::Variable(v, ..) => match env.find(v.1.as_str()) {
                Some(i) => env.ty(i),
                None => Ty::any(),
            },
            Expr::Stmt(b) => self.block(env, b.statements()),
            Expr::FnCall(f, pos) => self.call(env, f, *pos),
            Expr::Dot(..) | Expr::Index(..) => self.chain(env, e),
            Expr::And(items, _) => self.logic(env, items, true),
            Expr::Or(items, _) => self.logic(env, items, false),
            Expr::Coalesce(items, _) => {
                let mut out = Ty::never();
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.weak += 1;
                    }
                    let t = self.expr(env, item);
                    if i > 0 {
                        self.weak -= 1;
                    }
                    let last = i + 1 == items.len();
                    if last || t.k.is_unknown() {
                        out = out.join(&t);
                    } else {
                        out = out.join(&t.clone().without_unit());
                    }
                    if !t.k.has(Kinds::UNIT) {
                        break;
                    }
                }
                out
            }
            _ => Ty::any(),
        }
    }

    /// `a && b && ...` or `a || b || ...`: each must be a bool; each is evaluated knowing the
    /// ones before held (`&&`) or did not (`||`).
    fn logic(&mut self, env: &mut Env, items: &[Expr], and: bool) -> Ty {
        let saved = env.overlay.len();
        let op = if and { "`&&`" } else { "`||`" };
        for (i, item) in items.iter().enumerate() {
            if i == 1 {
                self.weak += 1;
            }
            let t = self.expr(env, item);
            self.need_bool(&t, item, op);
            self.narrow(env, item, and);
        }
        if items.len() > 1 {
            self.weak -= 1;
        }
        env.overlay.truncate(saved);
        Ty::new(Kinds::BOOL)
    }

    /// What holds of variables when `cond` is `truth`: `x != ()`, `x == ()`, `x == LITERAL`,
    /// through `!`, `&&` and `||`.
    fn narrow(&self, env: &mut Env, cond: &Expr, truth: bool) {
        match cond {
            Expr::FnCall(f, _) if f.args.len() == 2 && matches!(f.name.as_str(), "==" | "!=") => {
                let equal = (f.name.as_str() == "==") == truth;
                let (var, other) = match (&f.args[0], &f.args[1]) {
                    (Expr::Variable(v, ..), o) => (v.1.as_str(), o),
                    (o, Expr::Variable(v, ..)) => (v.1.as_str(), o),
                    _ => return,
                };
                let Some(i) = env.find(var) else {
                    return;
                };
                let cur = env.ty(i);
                if cur.k.is_unknown() {
                    return;
                }
                let new = match other {
                    Expr::Unit(_) if equal && cur.k.has(Kinds::UNIT) => Ty::new(Kinds::UNIT),
                    Expr::Unit(_) if !equal => cur.without_unit(),
                    Expr::StringConstant(..)
                    | Expr::IntegerConstant(..)
                    | Expr::BoolConstant(..)
                    | Expr::CharConstant(..)
                    | Expr::FloatConstant(..)
                        if equal =>
                    {
                        cur.without_unit()
                    }
                    _ => return,
                };
                env.overlay.push((i, new));
            }
            Expr::FnCall(f, _) if f.args.len() == 1 && f.name.as_str() == "!" => {
                self.narrow(env, &f.args[0], !truth);
            }
            Expr::And(items, _) if truth => {
                for i in items.iter() {
                    self.narrow(env, i, true);
                }
            }
            Expr::Or(items, _) if !truth => {
                for i in items.iter() {
                    self.narrow(env, i, false);
                }
            }
            _ => {}
        }
    }

    /// Where rhai needs a bool (`&&`, `||`, `if`, `while`).
    fn need_bool(&mut self, t: &Ty, e: &Expr, place: &str) {
        if t.k.is_unknown() || t.k.is_never() || t.k == Kinds::BOOL {
            return;
        }
        if t.k.has(Kinds::UNIT) && t.k != Kinds::UNIT && t.k.minus(Kinds::UNIT).within(Kinds::BOOL)
        {
            self.maybe_unset(e, format!("{place} needs true or false"), "false");
        } else {
            self.report(
                "rule-type-mismatch",
                self.extent(e),
                format!(
                    "{place} needs true or false, but {} is {}",
                    self.what(e),
                    t.k.describe()
                ),
                "not a bool",
                Some("compare it to get a bool, e.g. `x == 1` or `x != \"\"`".to_string()),
            );
        }
    }

    /// `e` may be `()` where that fails.
    fn maybe_unset(&mut self, e: &Expr, what_fails: String, fallback: &str) {
        let name = self.what(e);
        let var = match e {
            Expr::Variable(v, ..) => Some(v.1.to_string()),
            _ => None,
        };
        let help = match &var {
            Some(v) => self
                .unset_help
                .iter()
                .find(|(n, _)| n == v)
                .map(|(_, h)| h.clone())
                .unwrap_or_else(|| {
                    format!(
                        "check it first (`{v} != () && ...`), or give a value for when it is \
                         unset: `({v} ?? {fallback})`"
                    )
                }),
            None => format!(
                "check it first (`!= ()`), or give a value for when it is unset with `?? {fallback}`"
            ),
        };
        let subject = var.map_or(name, |v| format!("`{v}`"));
        self.report(
            "rule-maybe-unset",
            self.extent(e),
            format!("{subject} may be unset (`()`) here, and {what_fails}"),
            "fails when the rule runs if this is `()`",
            Some(help),
        );
    }

    fn constant(&mut self, name: &str, pos: Position, how: &str) {
        self.report(
            "rule-assigns-constant",
            self.at(pos),
            format!("`{name}` is a constant and cannot be {how}"),
            "fails when the rule runs",
            Some("copy it into a variable first: `let x = ...;`".to_string()),
        );
    }

    // --- calls and operators

    fn call(&mut self, env: &mut Env, f: &FnCallExpr, pos: Position) -> Ty {
        let name = f.name.as_str();
        if is_operator(name) && (1..=2).contains(&f.args.len()) {
            if f.args.len() == 1 {
                let a = self.expr(env, &f.args[0]);
                return self.unary(name, &a, &f.args[0], pos);
            }
            let a = self.expr(env, &f.args[0]);
            let b = self.expr(env, &f.args[1]);
            return self.binary(name, (&a, &f.args[0]), (&b, &f.args[1]), pos, false);
        }
        let tys: Vec<Ty> = f.args.iter().map(|a| self.expr(env, a)).collect();
        if self
            .fns
            .iter()
            .any(|(n, k)| n == name && *k == f.args.len())
        {
            return Ty::any();
        }
        if name == "contains" && tys.len() == 2 {
            self.check_in(&f.args[0], &tys[1]);
        }
        let args: Vec<(&Ty, Option<&Expr>)> = tys
            .iter()
            .zip(f.args.iter())
            .map(|(t, e)| (t, Some(e)))
            .collect();
        self.apply(name, &args, pos, Style::Function)
    }

    fn unary(&mut self, op: &str, a: &Ty, e: &Expr, pos: Position) -> Ty {
        if a.k.is_never() {
            return Ty::never();
        }
        if a.k.is_unknown() {
            return Ty::any();
        }
        let mut out = Kinds::NEVER;
        let mut fails = Kinds::NEVER;
        for k in a.k.singles() {
            match unary_kinds(op, k) {
                Some(r) => out = out.or(r),
                None => fails = fails.or(k),
            }
        }
        if !fails.is_never() {
            if fails == Kinds::UNIT && a.k != Kinds::UNIT {
                self.maybe_unset(e, format!("`{op}` does not apply to `()`"), "0");
            } else {
                self.report(
                    "rule-type-mismatch",
                    self.at(pos),
                    format!(
                        "`{op}` does not apply to {} ({})",
                        fails.describe(),
                        self.what(e)
                    ),
                    "fails when the rule runs",
                    None,
                );
            }
        }
        if out.is_never() {
            return Ty::any();
        }
        Ty::new(out)
    }

    /// `a OP b`, or with `assign` `a OP= b`.
    fn binary(
        &mut self,
        op: &str,
        (a, ea): (&Ty, &Expr),
        (b, eb): (&Ty, &Expr),
        pos: Position,
        assign: bool,
    ) -> Ty {
        if a.k.is_never() || b.k.is_never() {
            return Ty::never();
        }
        let cmp = is_comparison(op);
        if a.k.is_unknown() || b.k.is_unknown() {
            return if cmp { Ty::new(Kinds::BOOL) } else { Ty::any() };
        }
        let mut out = Kinds::NEVER;
        let mut fails: Vec<(Kinds, Kinds)> = Vec::new();
        for ka in a.k.singles() {
            for kb in b.k.singles() {
                let r = if assign {
                    assign_kinds(op, ka, kb)
                } else {
                    binary_kinds(op, ka, kb)
                };
                match r {
                    Some(r) => out = out.or(r),
                    None => fails.push((ka, kb)),
                }
            }
        }
        if !fails.is_empty() {
            // Explained by a side that may be `()`? Then each such side is reported.
            let unit_a = a.k != Kinds::UNIT && fails.iter().any(|(x, _)| *x == Kinds::UNIT);
            let unit_b = b.k != Kinds::UNIT && fails.iter().any(|(_, y)| *y == Kinds::UNIT);
            let explained = fails.iter().all(|(x, y)| {
                (*x == Kinds::UNIT && a.k != Kinds::UNIT)
                    || (*y == Kinds::UNIT && b.k != Kinds::UNIT)
            });
            let fallback = |t: &Ty| {
                if op == "+" && (a.k.has(Kinds::STR) || b.k.has(Kinds::STR)) {
                    "\"\""
                } else {
                    fallback_for(t.k)
                }
            };
            if explained {
                if unit_a {
                    self.maybe_unset(ea, format!("`{op}` does not apply to `()`"), fallback(a));
                }
                if unit_b {
                    self.maybe_unset(eb, format!("`{op}` does not apply to `()`"), fallback(b));
                }
            } else {
                let (x, y) = fails
                    .iter()
                    .copied()
                    .find(|(x, y)| *x != Kinds::UNIT && *y != Kinds::UNIT)
                    .unwrap_or(fails[0]);
                self.report(
                    "rule-type-mismatch",
                    self.at(pos),
                    format!(
                        "`{op}` does not apply to {} and {} ({} {op} {})",
                        x.describe(),
                        y.describe(),
                        self.what(ea),
                        self.what(eb)
                    ),
                    "fails when the rule runs",
                    Some(operator_help(op).to_string()),
                );
            }
        } else if cmp {
            self.comparison(op, (a, ea), (b, eb), pos);
        }
        if out.is_never() {
            return Ty::any();
        }
        // Never negative: sums, products, quotients and remainders of such, and a power of one
        // (a negative exponent fails).
        let nonneg = out == Kinds::INT
            && a.nonneg
            && (matches!(op, "+" | "*" | "/" | "%" | ">>") && b.nonneg || op == "**");
        Ty {
            k: out,
            strs: None,
            nonneg,
            elem: None,
        }
    }

    /// A comparison that cannot fail: is it meaningful?
    fn comparison(
        &mut self,
        op: &str,
        (a, ea): (&Ty, &Expr),
        (b, eb): (&Ty, &Expr),
        pos: Position,
    ) {
        let equality = matches!(op, "==" | "!=");
        // A string literal and a value whose strings are known.
        if equality {
            for (lit, other, oe) in [(ea, b, eb), (eb, a, ea)] {
                if let Expr::StringConstant(s, lpos) = lit {
                    if let Some(strs) = other.strs.as_ref().filter(|x| x.of.is_some()) {
                        if !strs.values.iter().any(|v| v == s.as_str()) {
                            self.unknown_value(s.as_str(), strs, self.at(*lpos), op);
                            return;
                        }
                    }
                    if s.is_empty()
                        && other.k.has(Kinds::UNIT)
                        && other.k.has(Kinds::STR)
                        && !other.k.is_unknown()
                    {
                        self.unset_vs_empty(op, oe, pos);
                        return;
                    }
                }
            }
        }
        // Values of kinds that are never equal (a comparison with `()` itself is a test of
        // being unset, and `()` against anything else is meaningful for an unset field).
        if a.k == Kinds::UNIT || b.k == Kinds::UNIT {
            return;
        }
        let xa = a.k.minus(Kinds::UNIT);
        let xb = b.k.minus(Kinds::UNIT);
        if xa.is_never() || xb.is_never() {
            return;
        }
        let any_pair = xa.singles().any(|x| xb.singles().any(|y| comparable(x, y)));
        if !any_pair {
            let always = if op == "!=" {
                "always true"
            } else {
                "always false"
            };
            let help = comparison_help(a, b);
            self.report(
                "rule-type-mismatch",
                self.at(pos),
                format!(
                    "{} is {} and {} is {}: `{op}` between them is {always}",
                    self.what(ea),
                    xa.describe(),
                    self.what(eb),
                    xb.describe()
                ),
                always,
                Some(help),
            );
        }
    }

    fn unknown_value(&mut self, s: &str, strs: &Strs, at: (usize, usize), op: &str) {
        let of = strs.of.as_deref().unwrap_or("the value");
        let consequence = match op {
            "!=" => "`!=` with it is always true",
            "==" => "`==` with it is always false",
            "switch" => "this case never matches",
            _ => "it never matches",
        };
        let list = if strs.values.len() <= 12 {
            strs.values.join(", ")
        } else {
            format!("{}, ...", strs.values[..12].join(", "))
        };
        let suggestion = super::names::did_you_mean(s, strs.values.iter().map(String::as_str));
        let help = match suggestion {
            Some(v) => format!("did you mean \"{v}\"? {of} is one of: {list}"),
            None => format!("{of} is one of: {list}"),
        };
        self.report(
            "rule-unknown-value",
            at,
            format!("\"{s}\" is not a value of {of}, so {consequence}"),
            "not a value",
            Some(help),
        );
    }

    fn unset_vs_empty(&mut self, op: &str, e: &Expr, pos: Position) {
        let name = self.what(e);
        let (res, when) = if op == "!=" {
            ("true", "when it is unset")
        } else {
            ("false", "when it is unset")
        };
        let (start, _) = self.extent(e);
        let end = self.at(pos).1.max(start);
        let (_, lit_end) = {
            // Underline the whole comparison where possible.
            let rest_start = end;
            let rest = self.code.get(rest_start..).unwrap_or("");
            let skip = rest.len() - rest.trim_start().len();
            (rest_start, token_end(self.code, rest_start + skip))
        };
        let fix = match e {
            Expr::Variable(v, ..) => format!("`({} ?? \"\") {op} \"\"`", v.1),
            _ => format!("`({name} ?? \"\") {op} \"\"`"),
        };
        self.push(Found {
            code: "rule-unset-comparison",
            warning: true,
            start,
            end: lit_end.max(end),
            message: format!(
                "{name} may be unset, and an unset field is `()`, not `\"\"`: `{op} \"\"` is {res} {when}"
            ),
            label: format!("{res} when unset"),
            help: Some(format!("to treat unset as empty, write {fix}")),
        });
    }

    /// `x in [..]` (`contains(array, x)`): every string literal of the array must be one of
    /// the values `x` can be.
    fn check_in(&mut self, container: &Expr, item: &Ty) {
        let Some(strs) = item.strs.as_ref().filter(|s| s.of.is_some()) else {
            return;
        };
        let literals: Vec<(String, (usize, usize))> = match container {
            Expr::Array(items, _) => items
                .iter()
                .filter_map(|i| match i {
                    Expr::StringConstant(s, p) => Some((s.to_string(), self.at(*p))),
                    _ => None,
                })
                .collect(),
            Expr::DynamicConstant(d, p) if d.is_array() => {
                let Some(o) = self.offset(*p) else {
                    return;
                };
                let end = bracket_end(self.code, o);
                string_literals(self.code, o, end)
                    .into_iter()
                    .map(|(s, at)| {
                        let e = token_end(self.code, at);
                        (s, (at, e))
                    })
                    .collect()
            }
            _ => return,
        };
        let strs = strs.clone();
        for (s, at) in literals {
            if !strs.values.contains(&s) {
                self.unknown_value(&s, &strs, at, "in");
            }
        }
    }

    /// `affected.contains("emial")` on a list of enum values: a string literal asked for must
    /// be one of them.
    fn check_element(&mut self, list: &Ty, item: &Expr) {
        let Some(strs) = list
            .elem
            .as_ref()
            .filter(|_| list.k == Kinds::ARRAY)
            .and_then(|e| e.strs.as_ref())
            .filter(|s| s.of.is_some())
        else {
            return;
        };
        if let Expr::StringConstant(s, p) = item {
            if !strs.values.iter().any(|v| v == s.as_str()) {
                let strs = strs.clone();
                self.unknown_value(s.as_str(), &strs, self.at(*p), "contains");
            }
        }
    }

    /// A `switch` over a value whose strings are known: each case must be one of them.
    fn switch_cases(
        &mut self,
        value: &Expr,
        v: &Ty,
        cases: &rhai::SwitchCasesCollection,
        pos: Position,
    ) {
        let Some(strs) = v.strs.as_ref().filter(|s| s.of.is_some()).cloned() else {
            return;
        };
        if cases.cases.is_empty() {
            return;
        }
        // The cases are kept as hashes of their values: compile a `switch` over every value
        // and every string literal of this one to tell which hash is which.
        let Some(start) = self.offset(pos) else {
            return;
        };
        let open = self.code[start..].find('{').map_or(start, |i| start + i);
        let end = bracket_end(self.code, open);
        let literals = string_literals(self.code, open, end);
        // Cases written other than as plain `"..."` strings are not told apart.
        let region_is_plain = !self.code[open..end].contains(['\\', '`']);
        let mut probe = String::from("switch x {");
        let mut texts: Vec<&str> = strs.values.iter().map(String::as_str).collect();
        for (l, _) in &literals {
            if !texts.contains(&l.as_str()) {
                texts.push(l);
            }
        }
        for (i, t) in texts.iter().enumerate() {
            if t.contains(['"', '\\']) {
                continue;
            }
            probe.push_str(&format!(" \"{t}\" => {i},"));
        }
        probe.push('}');
        let engine = rhai::Engine::new_raw();
        let mut scope = rhai::Scope::new();
        scope.push_dynamic("x", Dynamic::UNIT);
        let Ok(ast) = engine.compile_with_scope(&scope, &probe) else {
            return;
        };
        let Some(Stmt::Switch(px, _)) = ast.statements().first() else {
            return;
        };
        let known = &px.1;
        let text_of = |hash: &u64| -> Option<&str> {
            let case = known.cases.get(hash)?;
            let block = *case.blocks.first()?;
            match known.expressions.get(block)?.rhs {
                Expr::IntegerConstant(i, _) => texts.get(i as usize).copied(),
                _ => None,
            }
        };
        let mut unknown: Vec<(String, usize)> = Vec::new();
        for hash in cases.cases.keys() {
            match text_of(hash) {
                Some(t) if strs.values.iter().any(|v| v == t) => {}
                Some(t) => {
                    if let Some((_, at)) = literals.iter().find(|(l, _)| l == t) {
                        unknown.push((t.to_string(), *at));
                    }
                }
                None if !region_is_plain => {}
                None => {
                    // Not a string at all: never equal to one.
                    self.report(
                        "rule-type-mismatch",
                        self.at(pos),
                        format!(
                            "{} is a string, but a case of this `switch` is not: it never matches",
                            self.what(value)
                        ),
                        "a case never matches",
                        Some("write the cases as strings, e.g. `\"high\" => ...`".to_string()),
                    );
                }
            }
        }
        unknown.sort_by_key(|(_, at)| *at);
        for (t, at) in unknown {
            let span = (at, token_end(self.code, at));
            self.unknown_value(&t, &strs, span, "switch");
        }
    }

    /// A call of a function of [`SIGS`] (or of a method, with the receiver first).
    fn apply(
        &mut self,
        name: &str,
        args: &[(&Ty, Option<&Expr>)],
        pos: Position,
        style: Style,
    ) -> Ty {
        let named: Vec<&Sig> = SIGS
            .iter()
            .filter(|s| s.name == name && (style != Style::Property || s.getter))
            .filter(|s| style == Style::Function || !KEYWORDS.contains(&s.name))
            .collect();
        if named.is_empty() {
            let receiver = match style {
                Style::Function => None,
                _ => args.first().map(|(t, e)| (t.k, e.map(|e| self.what(e)))),
            };
            self.unknown_function(name, receiver, pos, style);
            return Ty::any();
        }
        let fitting: Vec<&Sig> = named
            .iter()
            .copied()
            .filter(|s| s.takes(args.len()))
            .collect();
        if fitting.is_empty() {
            let mut counts: Vec<usize> = named
                .iter()
                .map(|s| s.params.len() - usize::from(style != Style::Function))
                .collect();
            counts.sort_unstable();
            counts.dedup();
            let counts: Vec<String> = counts.iter().map(usize::to_string).collect();
            self.report(
                "rule-unknown-method",
                self.at(pos),
                format!(
                    "`{name}` takes {} argument(s), not {}",
                    counts.join(" or "),
                    args.len() - usize::from(style != Style::Function)
                ),
                "no such call",
                None,
            );
            return Ty::any();
        }
        if args.iter().any(|(t, _)| t.k.is_never()) {
            return Ty::never();
        }
        let tys: Vec<&Ty> = args.iter().map(|(t, _)| *t).collect();
        if tys.iter().any(|t| t.k.is_unknown()) {
            // Only what is known can be checked: some function must take it.
            let mut out = Ty::never();
            for s in &fitting {
                if s.params
                    .iter()
                    .zip(&tys)
                    .all(|(p, t)| t.k.is_unknown() || p.has(t.k) || t.k.singles().any(|k| p.has(k)))
                {
                    out = out.join(&s.gives(&tys));
                }
            }
            return if out.k.is_never() { Ty::any() } else { out };
        }
        // Every combination of the arguments' kinds must be taken by some function.
        let mut out = Ty::never();
        let mut fails: Vec<Vec<Kinds>> = Vec::new();
        let mut combo: Vec<Kinds> = Vec::with_capacity(tys.len());
        combinations(
            &tys,
            &mut combo,
            &mut |kinds| match fitting.iter().find(|s| s.fits(kinds)) {
                Some(s) => out = out.join(&s.gives(&tys)),
                None => fails.push(kinds.to_vec()),
            },
        );
        if !fails.is_empty() {
            self.call_fails(name, args, &fitting, &fails, pos, style);
            if out.k.is_never() {
                // What it would have given, so that one mistake is reported once.
                for s in &fitting {
                    out = out.join(&s.gives(&tys));
                }
            }
        }
        if out.k.is_never() {
            Ty::any()
        } else {
            out
        }
    }

    fn call_fails(
        &mut self,
        name: &str,
        args: &[(&Ty, Option<&Expr>)],
        fitting: &[&Sig],
        fails: &[Vec<Kinds>],
        pos: Position,
        style: Style,
    ) {
        // Explained by arguments that may be `()`? Then each is reported.
        let maybe_unit = |i: usize| args[i].0.k != Kinds::UNIT;
        let explained = fails.iter().all(|f| {
            f.iter()
                .enumerate()
                .any(|(i, k)| *k == Kinds::UNIT && maybe_unit(i))
        });
        if explained {
            for (i, (t, e)) in args.iter().enumerate() {
                if maybe_unit(i) && fails.iter().any(|f| f[i] == Kinds::UNIT) {
                    if let Some(e) = e {
                        let how = if i == 0 && style != Style::Function {
                            format!("`{name}` does not apply to `()`")
                        } else {
                            format!("`{name}` does not take `()`")
                        };
                        self.maybe_unset(e, how, fallback_for(t.k));
                    }
                }
            }
            return;
        }
        let first = &fails[0];
        if style != Style::Function {
            let recv = first[0];
            if !fitting.iter().any(|s| s.params[0].has(recv)) {
                let whose = args[0].1.map(|e| self.what(e));
                self.unknown_method_for(name, recv, whose.as_deref(), pos, style);
                return;
            }
        }
        let kinds: Vec<String> = first.iter().map(|k| k.describe()).collect();
        let takes: Vec<String> = fitting
            .iter()
            .map(|s| {
                let ps: Vec<String> = s.params.iter().map(|p| p.describe()).collect();
                format!("({})", ps.join(", "))
            })
            .collect();
        self.report(
            "rule-type-mismatch",
            self.at(pos),
            format!("`{name}` does not take ({})", kinds.join(", ")),
            "fails when the rule runs",
            Some(format!("`{name}` takes {}", takes.join(" or "))),
        );
    }

    fn unknown_method_for(
        &mut self,
        name: &str,
        recv: Kinds,
        whose: Option<&str>,
        pos: Position,
        style: Style,
    ) {
        let what = if style == Style::Property {
            "property"
        } else {
            "method"
        };
        let available: Vec<&str> = method_names(recv, style == Style::Property);
        let kind = recv.describe();
        let list = available.join(", ");
        let help = match suggest(name, &available) {
            Some(s) => format!("did you mean `{s}`? {kind} has: {list}"),
            None if available.is_empty() => format!("{kind} has no {what}s"),
            None => format!("{kind} has: {list}"),
        };
        let message = match whose {
            Some(w) => format!("{kind} has no {what} `{name}` ({w} is {kind})"),
            None => format!("{kind} has no {what} `{name}`"),
        };
        self.report(
            "rule-unknown-method",
            self.at(pos),
            message,
            "no such method",
            Some(help),
        );
    }

    fn unknown_function(
        &mut self,
        name: &str,
        receiver: Option<(Kinds, Option<String>)>,
        pos: Position,
        style: Style,
    ) {
        match receiver {
            Some((r, whose)) if !r.is_unknown() && !r.is_never() => {
                // Name one kind it is (not `()`, if it may be something else).
                let known = r.minus(Kinds::UNIT);
                let recv = known.singles().next().unwrap_or(r);
                self.unknown_method_for(name, recv, whose.as_deref(), pos, style);
            }
            _ => {
                let names = function_names();
                let what = if style == Style::Function {
                    "function"
                } else {
                    "method"
                };
                let help = match suggest(name, &names) {
                    Some(s) => format!(
                        "did you mean `{s}`? rules can call the functions listed in \
                         docs/language.md (Rules)"
                    ),
                    None => "rules can call the functions listed in docs/language.md (Rules)"
                        .to_string(),
                };
                self.report(
                    "rule-unknown-method",
                    self.at(pos),
                    format!("rules have no {what} `{name}`"),
                    "no such function",
                    Some(help),
                );
            }
        }
    }

    /// `base.x.y()[i]...`: each step applies to what the one before gave; `?.` and `?[` give
    /// `()` for `()` and skip the rest of the chain.
    fn chain(&mut self, env: &mut Env, e: &Expr) -> Ty {
        let (b, flags, pos, dot) = match e {
            Expr::Dot(b, flags, pos) => (b, *flags, *pos, true),
            Expr::Index(b, flags, pos) => (b, *flags, *pos, false),
            _ => return self.expr(env, e),
        };
        let base = self.expr(env, &b.lhs);
        let (t, short) = self.chain_rest(env, base, Some(&b.lhs), dot, flags, &b.rhs, pos);
        if short {
            t.with_unit()
        } else {
            t
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn chain_rest(
        &mut self,
        env: &mut Env,
        base: Ty,
        base_expr: Option<&Expr>,
        dot: bool,
        flags: ASTFlags,
        rhs: &Expr,
        pos: Position,
    ) -> (Ty, bool) {
        let optional = flags.contains(ASTFlags::NEGATED);
        let short = optional && base.k.has(Kinds::UNIT) && !base.k.is_unknown();
        let base = if short { base.without_unit() } else { base };
        if base.k.is_never() {
            return (Ty::never(), short);
        }
        if short {
            self.weak += 1;
        }
        let out = match rhs {
            // Without `BREAK`, a nested `.` or `[` continues the chain; with it, `rhs` is
            // the whole index (`s[n.abs()]`).
            Expr::Dot(nb, nflags, npos) | Expr::Index(nb, nflags, npos)
                if !flags.contains(ASTFlags::BREAK) =>
            {
                let next_dot = matches!(rhs, Expr::Dot(..));
                let v = self.chain_step(env, base, base_expr, dot, &nb.lhs, pos);
                let (t, s2) = self.chain_rest(env, v, None, next_dot, *nflags, &nb.rhs, *npos);
                (t, short || s2)
            }
            leaf => (self.chain_step(env, base, base_expr, dot, leaf, pos), short),
        };
        if short {
            self.weak -= 1;
        }
        out
    }

    /// One step of a chain: `.property`, `.method(...)` or `[index]`.
    fn chain_step(
        &mut self,
        env: &mut Env,
        base: Ty,
        base_expr: Option<&Expr>,
        dot: bool,
        e: &Expr,
        pos: Position,
    ) -> Ty {
        if !dot {
            let i = self.expr(env, e);
            return self.index(&base, base_expr, &i, e, pos);
        }
        match e {
            Expr::Property(p, ppos) => {
                let name = p.2.as_str();
                if base.k.is_unknown() {
                    return Ty::any();
                }
                if base.k.has(Kinds::MAP) {
                    // A map's property is its entry (or `()`); its other kinds are checked.
                    let rest = base.k.minus(Kinds::MAP).minus(Kinds::UNIT);
                    if rest.is_never() && !base.k.has(Kinds::UNIT) {
                        return Ty::any();
                    }
                    if !rest.is_never() || base.k.has(Kinds::UNIT) {
                        let rest_ty = Ty {
                            k: base.k.minus(Kinds::MAP),
                            ..base.clone()
                        };
                        self.apply(name, &[(&rest_ty, base_expr)], *ppos, Style::Property);
                    }
                    return Ty::any();
                }
                self.apply(name, &[(&base, base_expr)], *ppos, Style::Property)
            }
            Expr::MethodCall(f, mpos) => {
                let name = f.name.as_str();
                let tys: Vec<Ty> = f.args.iter().map(|a| self.expr(env, a)).collect();
                if self
                    .fns
                    .iter()
                    .any(|(n, k)| n == name && *k == f.args.len())
                {
                    return Ty::any();
                }
                if base.k.is_unknown() && !SIGS.iter().any(|s| s.name == name) {
                    self.unknown_function(name, None, *mpos, Style::Method);
                    return Ty::any();
                }
                // A method that changes its receiver, on a constant.
                if let Some(Expr::Variable(v, _, vpos)) = base_expr {
                    if let Some(i) = env.find(v.1.as_str()) {
                        if env.vars[i].constant
                            && SIGS
                                .iter()
                                .any(|s| s.name == name && s.mutates && s.fits_first(base.k))
                        {
                            let n = env.vars[i].name.clone();
                            self.constant(&n, *vpos, &format!("changed by `{name}`"));
                        }
                    }
                }
                if name == "contains" && tys.len() == 1 {
                    if let Some(be) = base_expr {
                        self.check_in(be, &tys[0]);
                    }
                    self.check_element(&base, &f.args[0]);
                }
                let mut args: Vec<(&Ty, Option<&Expr>)> = vec![(&base, base_expr)];
                args.extend(tys.iter().zip(f.args.iter()).map(|(t, a)| (t, Some(a))));
                self.apply(name, &args, *mpos, Style::Method)
            }
            other => {
                self.expr(env, other);
                Ty::any()
            }
        }
    }

    fn index(
        &mut self,
        base: &Ty,
        base_expr: Option<&Expr>,
        i: &Ty,
        ie: &Expr,
        pos: Position,
    ) -> Ty {
        if base.k.is_never() || i.k.is_never() {
            return Ty::never();
        }
        if base.k.is_unknown() || i.k.is_unknown() {
            return Ty::any();
        }
        let mut out = Kinds::NEVER;
        let mut fails: Vec<(Kinds, Kinds)> = Vec::new();
        for a in base.k.singles() {
            for b in i.k.singles() {
                match index_kinds(a, b) {
                    Some(r) => out = out.or(r),
                    None => fails.push((a, b)),
                }
            }
        }
        if !fails.is_empty() {
            if base.k != Kinds::UNIT && fails.iter().all(|(a, _)| *a == Kinds::UNIT) {
                if let Some(be) = base_expr {
                    self.maybe_unset(be, "`()` cannot be indexed".to_string(), "\"\"");
                }
            } else {
                let (a, b) = fails[0];
                self.report(
                    "rule-type-mismatch",
                    self.at(pos),
                    format!(
                        "{} cannot be indexed by {} ({})",
                        a.describe(),
                        b.describe(),
                        self.what(ie)
                    ),
                    "fails when the rule runs",
                    Some(
                        "strings are indexed by position (`s[0]`), arrays by position, maps by \
                         name"
                            .to_string(),
                    ),
                );
            }
        }
        // A list field's array indexed by position gives one of its elements (or fails).
        if let Some(elem) = base.elem.as_ref().filter(|_| base.k == Kinds::ARRAY) {
            if i.k == Kinds::INT {
                return (**elem).clone();
            }
        }
        if out.is_never() {
            Ty::any()
        } else {
            Ty::new(out)
        }
    }

    // --- the result

    fn result(&mut self, last: Option<&Stmt>, last_ty: &Ty, result: &Ty, expect: &Expect) {
        let at = match last {
            Some(s) => self.stmt_extent(s),
            None => (0, self.code.len()),
        };
        // Where the wrong part comes from: the last statement, or a `return`.
        let wrong_at = |wrong: &dyn Fn(&Ty) -> bool, me: &Self| -> (usize, usize) {
            if wrong(last_ty) {
                return at;
            }
            me.returns
                .iter()
                .find(|(t, _)| wrong(t))
                .map(|(_, p)| me.at(*p))
                .unwrap_or(at)
        };
        match expect {
            Expect::Guard => {
                let k = result.k;
                if k.is_never() || k == Kinds::BOOL || (k.is_unknown() && !self.found.is_empty()) {
                    return;
                }
                let not_bool = |t: &Ty| t.k != Kinds::BOOL && !t.k.is_never();
                let span = wrong_at(&not_bool, self);
                let (message, help) = if k.is_unknown() {
                    (
                        "the checker cannot tell that this guard gives true or false".to_string(),
                        "a guard must give a bool: compare the value (`... == true`)".to_string(),
                    )
                } else if k.has(Kinds::UNIT)
                    && k.minus(Kinds::UNIT).within(Kinds::BOOL)
                    && k != Kinds::UNIT
                {
                    (
                        "this guard may give `()` instead of true or false".to_string(),
                        "an unset field is `()`, and so is an `if` without `else` when its \
                         condition is false: compare (`flag == true` is false when `flag` is \
                         unset), or add the `else`"
                            .to_string(),
                    )
                } else {
                    (
                        format!("this guard gives {}, not true or false", k.describe()),
                        "a guard's last expression must be a bool, e.g. `resolution != \"\"`"
                            .to_string(),
                    )
                };
                self.report("rule-not-bool", span, message, "not a bool", Some(help));
            }
            Expect::Computes {
                field,
                ty,
                required,
            } => self.computes(field, ty, *required, result, last_ty, at),
        }
    }

    fn computes(
        &mut self,
        field: &str,
        ty: &FieldType,
        required: bool,
        result: &Ty,
        last_ty: &Ty,
        at: (usize, usize),
    ) {
        let k = result.k;
        if k.is_never() {
            return;
        }
        let type_name = ty.to_string();
        let span = |me: &Self, bad: &dyn Fn(&Ty) -> bool| -> (usize, usize) {
            if bad(last_ty) {
                return at;
            }
            me.returns
                .iter()
                .find(|(t, _)| bad(t))
                .map(|(_, p)| me.at(*p))
                .unwrap_or(at)
        };
        if k.is_unknown() && !self.found.is_empty() {
            return;
        }
        if k.is_unknown() {
            self.report(
                "rule-computes-wrong-type",
                at,
                format!("the checker cannot tell that this gives a value `{field}` ({type_name}) can hold"),
                "unknown type",
                Some(format!("give {} (or `()` to leave it unset)", kind_for(ty).describe())),
            );
            return;
        }
        let allowed = kind_for(ty);
        let wrong = k.minus(Kinds::UNIT).minus(allowed);
        if !wrong.is_never() {
            let s = span(self, &|t: &Ty| {
                !t.k.minus(Kinds::UNIT).minus(allowed).is_never()
            });
            self.report(
                "rule-computes-wrong-type",
                s,
                format!(
                    "this gives {}, but `{field}` is {} field",
                    wrong.describe(),
                    article(&type_name)
                ),
                "wrong type",
                Some(format!(
                    "{} field takes {}{}",
                    article(&type_name),
                    allowed.describe(),
                    field_type_hint(ty)
                )),
            );
            return;
        }
        if required && k.has(Kinds::UNIT) {
            let s = span(self, &|t: &Ty| t.k.has(Kinds::UNIT));
            self.report(
                "rule-computes-wrong-type",
                s,
                format!("this may give `()` (unset), but `{field}` is required"),
                "may be `()`",
                Some("give a value on every path (e.g. an `else` branch), or use `??` for unset fields".to_string()),
            );
            return;
        }
        if let FieldType::Enum(values) = ty {
            match &result.strs {
                Some(strs) if k.has(Kinds::STR) => {
                    let bad: Vec<&String> =
                        strs.values.iter().filter(|v| !values.contains(v)).collect();
                    if let Some(v) = bad.first() {
                        let list = values.join(", ");
                        let suggestion =
                            super::names::did_you_mean(v, values.iter().map(String::as_str));
                        // The literal itself, if it is in the rule's text.
                        let lit = string_literals(self.code, 0, self.code.len())
                            .into_iter()
                            .find(|(s, _)| s == *v)
                            .map(|(_, o)| (o, token_end(self.code, o)))
                            .unwrap_or(at);
                        let help = match suggestion {
                            Some(s) => format!("did you mean \"{s}\"? `{field}` is one of: {list}"),
                            None => format!("`{field}` is one of: {list}"),
                        };
                        self.report(
                            "rule-unknown-value",
                            lit,
                            format!(
                                "\"{v}\" is not a value of `{field}`, which this rule computes"
                            ),
                            "not a value",
                            Some(help),
                        );
                    }
                }
                _ if k.has(Kinds::STR) => {
                    self.report(
                        "rule-computes-wrong-type",
                        at,
                        format!("this may give a string that is not a value of `{field}`"),
                        "any string",
                        Some(format!(
                            "give one of its values ({}) on every path, e.g. with `if` or `switch`",
                            values.join(", ")
                        )),
                    );
                }
                _ => {}
            }
        }
        if matches!(ty, FieldType::Duration) && k.has(Kinds::INT) && !result.nonneg {
            self.report(
                "rule-computes-wrong-type",
                at,
                format!("this may give a negative number, but `{field}` is a duration"),
                "may be negative",
                Some("a duration is whole seconds, never negative: e.g. `max(0, ...)`".to_string()),
            );
        }
    }

    // --- names inside `fn` definitions and closures

    /// Every function and method called anywhere (function bodies included) must exist for
    /// some kind of value.
    fn names_everywhere(&mut self, ast: &AST) {
        let mut calls: Vec<(String, usize, Position, Style)> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Expr(Expr::FnCall(f, pos)))
                | Some(ASTNode::Stmt(Stmt::FnCall(f, pos))) => {
                    calls.push((f.name.to_string(), f.args.len(), *pos, Style::Function));
                }
                Some(ASTNode::Expr(Expr::MethodCall(f, pos))) => {
                    calls.push((f.name.to_string(), f.args.len() + 1, *pos, Style::Method));
                }
                _ => {}
            }
            true
        });
        for (name, arity, pos, style) in calls {
            if is_operator(&name) {
                continue;
            }
            let script = self.fns.iter().any(|(n, k)| {
                *n == name && (*k == arity || (style == Style::Method && *k + 1 == arity))
            });
            if script || SIGS.iter().any(|s| s.name == name && s.takes(arity)) {
                continue;
            }
            if SIGS.iter().any(|s| s.name == name) {
                continue; // the typed pass reports a wrong number of arguments
            }
            self.unknown_function(&name, None, pos, style);
        }
    }
}

impl Sig {
    fn fits_first(&self, k: Kinds) -> bool {
        self.params
            .first()
            .is_some_and(|p| p.has(k) || k.is_unknown())
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Function,
    Method,
    Property,
}

/// Call `f` with every combination of the single kinds of `tys`.
fn combinations(tys: &[&Ty], combo: &mut Vec<Kinds>, f: &mut impl FnMut(&[Kinds])) {
    match tys.split_first() {
        None => f(combo),
        Some((t, rest)) => {
            for k in t.k.singles() {
                combo.push(k);
                combinations(rest, combo, f);
                combo.pop();
            }
        }
    }
}

/// Whether a loop statement has a `break VALUE` of its own.
fn breaks_with_value(s: &Stmt) -> bool {
    let mut found = false;
    s.walk(&mut Vec::new(), &mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::BreakLoop(Some(_), flags, _))) = path.last() {
            if flags.contains(ASTFlags::BREAK) {
                found = true;
            }
        }
        !found
    });
    found
}

/// The variables a statement assigns (or whose element or property it sets).
fn assigned_in(s: &Stmt, out: &mut Vec<String>) {
    s.walk(&mut Vec::new(), &mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Assignment(x))) => {
                let mut target = &x.1.lhs;
                while let Expr::Dot(b, ..) | Expr::Index(b, ..) = target {
                    target = &b.lhs;
                }
                if let Expr::Variable(v, ..) = target {
                    out.push(v.1.to_string());
                }
            }
            Some(ASTNode::Stmt(Stmt::Share(vars))) => {
                out.extend(vars.iter().map(|(i, _)| i.name.to_string()));
            }
            // A method may change its receiver (`s.trim()` keeps it a string, though).
            _ => {}
        }
        true
    });
}

/// The kinds a field of this type takes from a rule (see `runtime::values::from_dynamic`).
fn kind_for(ty: &FieldType) -> Kinds {
    match ty {
        FieldType::Text | FieldType::Person | FieldType::Enum(_) => Kinds::STR,
        FieldType::Int | FieldType::Duration | FieldType::DateTime => Kinds::INT,
        FieldType::Bool => Kinds::BOOL,
        FieldType::List(_) => Kinds::ARRAY,
    }
}

fn field_type_hint(ty: &FieldType) -> &'static str {
    match ty {
        FieldType::Duration => " (whole seconds, not negative)",
        FieldType::DateTime => " (seconds since 1970-01-01 UTC)",
        FieldType::Enum(_) => " (one of its values)",
        FieldType::List(_) => " (of values its elements take)",
        _ => "",
    }
}

fn article(word: &str) -> String {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {word}")
    } else {
        format!("a {word}")
    }
}

fn fallback_for(k: Kinds) -> &'static str {
    let k = k.minus(Kinds::UNIT);
    if k == Kinds::STR {
        "\"\""
    } else if k == Kinds::BOOL {
        "false"
    } else {
        "0"
    }
}

fn operator_help(op: &str) -> &'static str {
    match op {
        "+" => "`+` adds numbers, or joins when one side is a string",
        "-" | "*" | "/" | "%" | "**" => "arithmetic needs numbers on both sides",
        "&" | "|" | "^" => "these need two ints or two bools; for logic write `&&` or `||`",
        "<<" | ">>" => "shifts need two ints",
        _ => "compare values of the same type",
    }
}

fn comparison_help(a: &Ty, b: &Ty) -> String {
    let enum_side = [a, b]
        .iter()
        .any(|t| t.strs.as_ref().is_some_and(|s| s.of.is_some()));
    let ints = a.k.has(Kinds::INT) || b.k.has(Kinds::INT);
    if enum_side && ints {
        "an enum value reaches a rule as its name, a string: compare with a string, e.g. `\"2\"`"
            .to_string()
    } else if (a.k.has(Kinds::STR) || b.k.has(Kinds::STR)) && ints {
        "compare with a value of the same type: a priority level is an int constant (`P1`), a \
         duration whole seconds, a datetime seconds since 1970"
            .to_string()
    } else {
        "compare values of the same type (docs/language.md, Rules, says how each field type reaches a rule)"
            .to_string()
    }
}

/// The methods (or properties) values of this kind have.
fn method_names(k: Kinds, properties: bool) -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    let methods = SIGS.iter().filter(|s| !KEYWORDS.contains(&s.name));
    for s in methods.clone() {
        let first = s.params.first().copied().unwrap_or(Kinds::NEVER);
        if (!properties || s.getter)
            && first.has(k)
            && first != Kinds::ANY
            && !out.contains(&s.name)
        {
            out.push(s.name);
        }
    }
    if !properties {
        for s in methods {
            if s.params.first() == Some(&Kinds::ANY) && !out.contains(&s.name) {
                out.push(s.name);
            }
        }
    }
    out
}

/// Every function of [`SIGS`].
fn function_names() -> Vec<&'static str> {
    let mut out: Vec<&str> = Vec::new();
    for s in SIGS {
        if !out.contains(&s.name) {
            out.push(s.name);
        }
    }
    out
}

/// Names other languages give rhai's functions, and what rhai calls them.
const ALIASES: [(&str, &str); 14] = [
    ("length", "len"),
    ("size", "len"),
    ("count", "len"),
    ("isEmpty", "is_empty"),
    ("includes", "contains"),
    ("startsWith", "starts_with"),
    ("endsWith", "ends_with"),
    ("indexOf", "index_of"),
    ("substring", "sub_string"),
    ("substr", "sub_string"),
    ("toUpperCase", "to_upper"),
    ("upper", "to_upper"),
    ("toLowerCase", "to_lower"),
    ("lower", "to_lower"),
];

/// The function of `available` a misspelt or foreign `name` means, if any.
fn suggest(name: &str, available: &[&'static str]) -> Option<&'static str> {
    let aliases = ALIASES
        .iter()
        .filter(|(_, to)| available.contains(to))
        .map(|(from, _)| *from);
    let best = super::names::did_you_mean(name, available.iter().copied().chain(aliases))?;
    match ALIASES.iter().find(|(from, _)| *from == best) {
        Some((_, to)) => Some(to),
        None => available.iter().copied().find(|a| *a == best),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script;

    /// A value of each single kind, as rhai source.
    const SAMPLES: [(Kinds, &str); 11] = [
        (Kinds::UNIT, "()"),
        (Kinds::BOOL, "true"),
        (Kinds::INT, "3"),
        (Kinds::FLOAT, "1.5"),
        (Kinds::STR, "\"ab\""),
        (Kinds::CHAR, "'c'"),
        (Kinds::ARRAY, "[1]"),
        (Kinds::MAP, "#{a: 1}"),
        (Kinds::FNPTR, "Fn(\"len\")"),
        (Kinds::RANGE, "0..2"),
        (Kinds::IRANGE, "0..=2"),
    ];

    /// Evaluate `code` in the sandbox with `a`, `b`, `c` set to these samples (as variables,
    /// so that nothing is folded when compiling).
    fn run(engine: &rhai::Engine, args: &[&str], code: &str) -> Result<Dynamic, String> {
        let mut scope = rhai::Scope::new();
        for (name, src) in ["a", "b", "c"].iter().zip(args) {
            let v = engine
                .eval::<Dynamic>(src)
                .unwrap_or_else(|e| panic!("{src}: {e}"));
            scope.push_dynamic(*name, v);
        }
        let ast = engine
            .compile_with_scope(&scope, code)
            .map_err(|e| format!("compile: {e}"))?;
        engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
            .map_err(|e| e.to_string())
    }

    fn describe(args: &[Kinds]) -> String {
        args.iter()
            .map(|k| k.describe())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Compare a prediction with the engine: `None` must fail, `Some(k)` must give a value of
    /// a kind in `k`.
    fn agree(
        what: &str,
        predicted: Option<Kinds>,
        actual: Result<Dynamic, String>,
        bad: &mut Vec<String>,
    ) {
        match (predicted, actual) {
            (None, Err(_)) => {}
            (Some(k), Ok(v)) if k.has(Kinds::of(&v)) || k == Kinds::ANY => {}
            (p, a) => bad.push(format!("{what}: predicted {p:?}, engine gave {a:?}")),
        }
    }

    /// Every operator on every pair of kinds: the checker's table and the engine agree.
    #[test]
    fn operators_match_the_engine() {
        let engine = script::sandboxed_engine();
        let mut bad = Vec::new();
        let ops = [
            "+", "-", "*", "/", "%", "**", "<<", ">>", "&", "|", "^", "==", "!=", "<", "<=", ">",
            ">=",
        ];
        for op in ops {
            for (ka, sa) in SAMPLES {
                for (kb, sb) in SAMPLES {
                    let what = format!("{} {op} {}", ka.describe(), kb.describe());
                    let code = format!("a {op} b");
                    let predicted = binary_kinds(op, ka, kb);
                    agree(&what, predicted, run(&engine, &[sa, sb], &code), &mut bad);
                    if !is_comparison(op) {
                        agree(
                            &format!("{what} (as {op}=)"),
                            assign_kinds(op, ka, kb),
                            run(&engine, &[sa, sb], &format!("a {op}= b; a")),
                            &mut bad,
                        );
                    }
                }
            }
        }
        for op in ["-", "+", "!"] {
            for (k, s) in SAMPLES {
                let what = format!("{op}{}", k.describe());
                let code = format!("{op}a");
                agree(
                    &what,
                    unary_kinds(op, k),
                    run(&engine, &[s], &code),
                    &mut bad,
                );
            }
        }
        for (ka, sa) in SAMPLES {
            for (kb, sb) in SAMPLES {
                let what = format!("{}[{}]", ka.describe(), kb.describe());
                // Indices that exist: 0 (an int), "a" (a map's key), 0..2.
                let sb = match kb {
                    Kinds::INT => "0",
                    Kinds::STR => "\"a\"",
                    _ => sb,
                };
                agree(
                    &what,
                    index_kinds(ka, kb),
                    run(&engine, &[sa, sb], "a[b]"),
                    &mut bad,
                );
            }
        }
        assert!(
            bad.is_empty(),
            "{} disagreements:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }

    /// Every function of the table, on every combination of kinds, as a function, a method
    /// and a property: where the table has it, it works and gives what the table says; where
    /// the table has not, the engine fails too (so the checker refuses nothing that works).
    #[test]
    fn functions_match_the_engine() {
        let engine = script::sandboxed_engine();
        let mut bad = Vec::new();
        // Every name of the table, with up to three arguments (the receiver counting).
        let mut names: Vec<(&str, usize)> = SIGS
            .iter()
            .filter(|s| !s.variadic)
            .flat_map(|s| (1..=3).map(move |n| (s.name, n)))
            .collect();
        names.sort_unstable();
        names.dedup();
        fn each(n: usize, combo: &mut Vec<usize>, all: &mut Vec<Vec<usize>>) {
            if combo.len() == n {
                all.push(combo.clone());
                return;
            }
            for i in 0..SAMPLES.len() {
                combo.push(i);
                each(n, combo, all);
                combo.pop();
            }
        }
        for (name, arity) in names {
            let mut all: Vec<Vec<usize>> = Vec::new();
            each(arity, &mut Vec::new(), &mut all);
            for c in all {
                let kinds: Vec<Kinds> = c.iter().map(|i| SAMPLES[*i].0).collect();
                let srcs: Vec<&str> = c
                    .iter()
                    .map(|i| match SAMPLES[*i].0 {
                        // Arguments that are in range.
                        Kinds::INT => "1",
                        _ => SAMPLES[*i].1,
                    })
                    .collect();
                let fitting: Vec<&Sig> = SIGS
                    .iter()
                    .filter(|s| s.name == name && s.fits(&kinds))
                    .collect();
                let predicted = fitting.first().map(|s| {
                    let tys: Vec<Ty> = kinds.iter().map(|k| Ty::new(*k)).collect();
                    let refs: Vec<&Ty> = tys.iter().collect();
                    s.gives(&refs).k
                });
                let what = format!("{name}({})", describe(&kinds));
                // A function pointer given to an array's `index_of` is called as a test, and
                // is not here (the start is past the end).
                if what == "index_of(an array, a function pointer, an int)" {
                    continue;
                }
                let params = ["a", "b", "c"][..arity].join(", ");
                let code = format!("{name}({params})");
                agree(&what, predicted, run(&engine, &srcs, &code), &mut bad);
                // Keywords, not methods (rhai does not compile `x.print()`).
                if KEYWORDS.contains(&name) {
                    continue;
                }
                let rest = ["b", "c"][..arity.saturating_sub(1)].join(", ");
                agree(
                    &format!("{what} as a method"),
                    predicted,
                    run(&engine, &srcs, &format!("a.{name}({rest})")),
                    &mut bad,
                );
                // A map's property is its entry, whatever its name.
                if arity == 1 && kinds[0] != Kinds::MAP {
                    let getter = fitting.iter().any(|s| s.getter);
                    agree(
                        &format!("{what} as a property"),
                        predicted.filter(|_| getter),
                        run(&engine, &srcs, &format!("a.{name}")),
                        &mut bad,
                    );
                }
            }
        }
        assert!(
            bad.is_empty(),
            "{} disagreements:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }

    const PROCESS: &str = r#"
process p {
  fields {
    title:    text required
    note:     text
    count:    int default 0
    total:    int required
    flag:     bool
    kind:     enum(standard, normal, emergency) required
    cat:      enum(0, 1, 2) required
    wait:     duration
    label:    enum(x, y) required
    out_text: text
    out_int:  int
    out_dur:  duration
    out_bool: bool
    out_req:  int required default 0
  }
  priorities P1, P2
  stage open initial
  stage done final
  transition finish: open -> done requires note
  transition close: open -> done
  RULE
}
"#;

    /// The codes of rules (and rhai) the checker reports for a project with this rule.
    fn codes(rule: &str) -> Vec<&'static str> {
        let mut sources = itsmflow_dsl::Sources::new();
        sources.add("p.itsm", PROCESS.replace("RULE", rule));
        let checked = crate::check(&sources);
        let mut codes: Vec<&'static str> = checked
            .diagnostics
            .iter()
            .map(|d| d.code)
            .filter(|c| c.starts_with("rule-") || c.starts_with("rhai"))
            .collect();
        codes.sort_unstable();
        codes.dedup();
        codes
    }

    fn guard(body: &str) -> Vec<&'static str> {
        codes(&format!("rule r when transition close {{ {body} }}"))
    }

    fn computes(field: &str, body: &str) -> Vec<&'static str> {
        codes(&format!("rule r computes {field} {{ {body} }}"))
    }

    #[test]
    fn guards() {
        let cases: &[(&str, &[&str])] = &[
            ("title.len() > 3", &[]),
            ("note.len() > 3", &["rule-maybe-unset"]),
            ("note != () && note.len() > 3", &[]),
            ("note == () || note.len() > 3", &[]),
            ("if note == () { return false; } note.len() > 3", &[]),
            ("if note != () { note.len() > 3 } else { false }", &[]),
            ("note?.len() > 3", &[]),
            ("(note ?? \"\").len() > 3", &[]),
            ("title.lenght() > 3", &["rule-unknown-method"]),
            ("total.len() > 3", &["rule-unknown-method"]),
            ("lenght(title) > 3", &["rule-unknown-method"]),
            ("title.contains(3)", &["rule-type-mismatch"]),
            ("title.len", &["rule-not-bool"]),
            ("kind != \"emergncy\"", &["rule-unknown-value"]),
            ("kind != \"emergency\"", &[]),
            (
                "kind in [\"standard\", \"emergncy\"]",
                &["rule-unknown-value"],
            ),
            ("kind in [\"standard\", \"emergency\"]", &[]),
            ("stage == \"closd\"", &["rule-unknown-value"]),
            ("stage == \"open\"", &[]),
            ("cat == 2", &["rule-type-mismatch"]),
            ("cat == \"2\"", &[]),
            ("total == \"5\"", &["rule-type-mismatch"]),
            ("flag", &["rule-not-bool"]),
            ("flag == true", &[]),
            ("total + 1 > 0", &[]),
            ("count + 1 > 0", &["rule-maybe-unset"]),
            ("count > 0", &[]),
            ("title + total != \"\"", &[]),
            ("total && flag == true", &["rule-type-mismatch"]),
            ("P1 = 3; true", &["rule-assigns-constant"]),
            ("note != \"\"", &["rule-unset-comparison"]),
            ("(note ?? \"\") != \"\"", &[]),
            ("let x = [1, 2]; x[0] == 1", &[]),
            ("let s = 0; for i in 0..3 { s += i; } s > 1", &[]),
            (
                "let s = 0; for i in 0..3 { s += note; } s > 1",
                &["rule-maybe-unset"],
            ),
            (
                "switch kind { \"standard\" => true, \"emergncy\" => false, _ => true }",
                &["rule-unknown-value"],
            ),
            ("switch kind { \"standard\" => true, _ => false }", &[]),
            ("switch kind { \"standard\" => true }", &["rule-not-bool"]),
            ("fn f(x) { x.lenght() } f(1) == 1", &["rule-unknown-method"]),
            ("fn f(x) { x.len() } f(title) == 1", &[]),
            ("let f = |x| x.len() + total; f.call(title) == 3", &[]),
            ("priority <= P1", &[]),
            ("priority + 1 > 2", &["rule-maybe-unset"]),
            ("wait > 3600", &[]),
            ("let t = title; t.trim(); t.len() > 0", &[]),
            (
                "const c = \"x\"; c.trim(); true",
                &["rule-assigns-constant"],
            ),
            ("if total > 0 { true } else { 1 }", &["rule-not-bool"]),
            ("if total > 0 { return true; } 1", &["rule-not-bool"]),
            ("if total > 0 { throw \"no\"; } true", &[]),
            ("try { title.len() > 1 } catch { false }; true", &[]),
            (
                "let x = if flag == true { 1 } else { \"a\" }; x.len() > 0",
                &["rule-unknown-method"],
            ),
            ("title[0] == 'a'", &[]),
            ("total[0]", &[]),
            ("kind.len() > 0 && label != \"z\"", &["rule-unknown-value"]),
            ("title.toUpperCase() == \"\"", &["rule-unknown-method"]),
            ("x.Fn() == 1", &["rhai-syntax"]),
        ];
        let mut bad = Vec::new();
        for (body, want) in cases {
            let got = guard(body);
            if got != *want {
                bad.push(format!("{body}: expected {want:?}, got {got:?}"));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn computed_fields() {
        let cases: &[(&str, &str, &[&str])] = &[
            ("out_int", "total * 2", &[]),
            ("out_int", "title", &["rule-computes-wrong-type"]),
            ("out_int", "count", &[]),
            ("out_int", "1.5", &["rule-computes-wrong-type"]),
            ("out_text", "title + \"!\"", &[]),
            ("out_text", "'c'", &["rule-computes-wrong-type"]),
            ("label", "\"z\"", &["rule-unknown-value"]),
            ("label", "if flag == true { \"x\" } else { \"y\" }", &[]),
            ("label", "title", &["rule-computes-wrong-type"]),
            (
                "label",
                "switch kind { \"standard\" => \"x\", _ => \"y\" }",
                &[],
            ),
            ("out_dur", "total", &["rule-computes-wrong-type"]),
            ("out_dur", "max(0, total)", &[]),
            ("out_dur", "wait + 3600", &["rule-maybe-unset"]),
            ("out_dur", "(wait ?? 0) + 3600", &[]),
            ("out_dur", "3600", &[]),
            ("out_req", "count", &["rule-computes-wrong-type"]),
            ("out_req", "count ?? 0", &[]),
            (
                "out_req",
                "if total > 1 { 1 }",
                &["rule-computes-wrong-type"],
            ),
            ("out_bool", "kind == \"normal\"", &[]),
            ("out_bool", "()", &[]),
            (
                "out_int",
                "let a = [1]; a[0]",
                &["rule-computes-wrong-type"],
            ),
        ];
        let mut bad = Vec::new();
        for (field, body, want) in cases {
            let got = computes(field, body);
            if got != *want {
                bad.push(format!("{field} = {body}: expected {want:?}, got {got:?}"));
            }
        }
        assert!(bad.is_empty(), "{}", bad.join("\n"));
    }

    #[test]
    fn guards_on_transitions_that_require_a_field_see_it_set() {
        assert_eq!(
            codes("rule r when transition finish { note.len() > 3 }"),
            Vec::<&str>::new()
        );
        assert_eq!(
            codes("rule r when transition finish, close { note.len() > 3 }"),
            vec!["rule-maybe-unset"]
        );
    }

    #[test]
    fn suggestions_know_other_languages_names() {
        assert_eq!(suggest("lenght", &["len", "contains"]), Some("len"));
        assert_eq!(suggest("length", &["len"]), Some("len"));
        assert_eq!(suggest("toUpperCase", &["to_upper"]), Some("to_upper"));
        assert_eq!(suggest("contians", &["len", "contains"]), Some("contains"));
        assert_eq!(suggest("frobnicate", &["len"]), None);
    }
}
