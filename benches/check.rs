//! Benchmarks of the parser, the checker and the formatter.
//!
//! * `processes`: checking the sample project in `processes/` (read at bench time). This is the
//!   baseline: the generated projects below are measured in the same run, so their figures can
//!   be compared with it whatever the machine's load.
//! * `parse`, `check`, `check_files`, for a generated process of N stages and 4N transitions
//!   (N = 500, 5,000, 50,000): parsing alone, checking over a pre-built `Sources` (parse
//!   included, what `itsmflow check` does), and the checker alone on pre-parsed trees. The
//!   throughput is N elements (stages), so linear growth shows as a constant time per element.
//! * `format`: the formatter over the 5,000-stage file.
//!
//! Run with `cargo bench --bench check` (about two minutes); pass a filter (a regex) to run a
//! part, e.g. `cargo bench --bench check -- 'stages_5000/'` or `-- check_files`. To compare
//! two versions, run `-- --save-baseline before` on one and `-- --baseline before` on the
//! other. Setting up the generated projects (generating, and checking once that they check)
//! takes a few seconds whatever the filter.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use itsmflow_dsl::ast::FileId;
use itsmflow_dsl::format::format;
use itsmflow_dsl::{parse, Sources};
use itsmflow_engine::check::check_files;

/// Stage counts of the generated projects.
const SIZES: [usize; 3] = [500, 5_000, 50_000];

/// xorshift64: a fixed, dependency-free sequence, so every run checks the same project.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// A project with one process of `n` stages (plus a final one) and `4n` transitions, using
/// every kind of declaration so that every check runs: a calendar, roles, queues with tiers,
/// fields, priorities, a priority table, targets, stages with queues and clocks, a forward
/// chain of transitions plus `3n` to random earlier or later stages, routing, an escalation,
/// an approval and a rule.
fn generated_project(n: usize) -> String {
    assert!(n >= 3);
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut s = String::with_capacity(n * 200);
    s.push_str(
        r#"// Generated for the benchmark.

calendar office "Office hours" {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-12:30, 13:00-17:00
  hours sat, sun closed
  holidays 2026-12-25 "Christmas Day", 2027-01-01 "New Year's Day"
}

role agent "Agent"
role engineer
role lead "Team lead"

queue desk "Service desk" {
  tier 1
  escalates_to second
  members agent
  assign round_robin
}

queue second "Second line" {
  tier 2
  escalates_to third
  members engineer
  assign least_loaded
}

queue third "Third line" {
  tier 3
  members engineer, lead
}

process big "A large process" {
  fields {
    impact:  enum(high, medium, low) required
    urgency: enum(high, medium, low) required default medium
    note:    text
    count:   int default 0
    urgent:  bool default false
  }

  priorities P1, P2, P3, P4

  priority from impact, urgency {
    high   => P1, P1, P2
    medium => P1, P2, P3
    low    => P2, P3, P4
  }

  targets on office {
    P1: respond 15m, resolve 4h on 24x7
    P2: respond 1h, resolve 8h
    P3: respond 4h, resolve 3d
    P4: respond 1d, resolve 5d
  }

"#,
    );
    // Stages: s0 is initial, `done` is final.
    for i in 0..n {
        let _ = write!(s, "  stage s{i} \"Stage {i}\"");
        if i == 0 {
            s.push_str(" initial");
        }
        match i % 4 {
            0 => s.push_str(" {\n    queue by routing\n  }\n"),
            1 => s.push_str(" {\n    queue desk\n    stops respond\n  }\n"),
            2 => s.push_str(" {\n    pauses resolve\n  }\n"),
            _ => s.push('\n'),
        }
    }
    s.push_str("  stage done \"Done\" final {\n    stops resolve\n  }\n\n");
    // A forward chain, so that every stage is reachable and can reach `done`.
    for i in 0..n {
        let to = if i + 1 == n {
            "done".to_string()
        } else {
            format!("s{}", i + 1)
        };
        let _ = writeln!(s, "  transition t{i}: s{i} -> {to} by role agent, engineer");
    }
    // Three more per stage, to random stages (earlier or later), with every kind of clause.
    for j in 0..3 * n {
        let from = rng.below(n);
        let to = rng.below(n);
        let _ = write!(s, "  transition x{j} \"Extra {j}\": s{from}");
        if j % 5 == 0 {
            let _ = write!(s, ", s{}", rng.below(n));
        }
        let _ = write!(s, " -> s{to}");
        match j % 3 {
            0 => s.push_str(" by role agent"),
            1 => s.push_str(" by role engineer or after 2d"),
            _ => s.push_str(" by role lead requires note"),
        }
        s.push('\n');
    }
    s.push_str(
        r#"
  routing {
    when priority == P1 => second
    when impact == high and urgent == true => second
    when impact in (medium, low) and not (urgency == high) => desk
    otherwise => desk
  }

  escalation on resolve {
    at 50% => notify role lead
    at 75% => move to next tier
    at 100% => notify role lead, raise priority
  }

  approval in s1 {
    when impact == high => any 1 of role lead, then all of role engineer
    otherwise => none
    on approve => s2
    on reject => s0
    on expire after 3d => s0
  }

  rule needs_note when transition t1, t2 {
    note != "" || count > 0
  }

  rule escalated computes urgent {
    impact == "high" && priority <= P2
  }
}
"#,
    );
    s
}

fn processes_sources() -> Sources {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("processes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "itsm"))
        .collect();
    files.sort();
    let mut sources = Sources::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable .itsm file");
        sources.add(path.display().to_string(), text);
    }
    sources
}

fn sources_of(text: &str) -> Sources {
    let mut sources = Sources::new();
    sources.add("big.itsm", text);
    sources
}

/// Fail loudly if a generated project does not check: a benchmark of the error path would
/// measure something else.
fn assert_checks(sources: &Sources) {
    let checked = itsmflow_engine::check(sources);
    assert!(
        checked.project.is_some(),
        "the benchmark's project does not check:\n{}",
        itsmflow_dsl::diagnostic::render_text(sources, &checked.diagnostics)
    );
}

fn bench_processes(c: &mut Criterion) {
    let sources = processes_sources();
    assert_checks(&sources);
    let mut group = c.benchmark_group("processes");
    group.bench_function("check", |b| {
        b.iter(|| itsmflow_engine::check(black_box(&sources)))
    });
    group.finish();
}

fn bench_generated(c: &mut Criterion) {
    for n in SIZES {
        let text = generated_project(n);
        let sources = sources_of(&text);
        assert_checks(&sources);
        let parsed = parse(FileId(0), &text);
        assert!(!parsed.has_errors());
        let files = vec![parsed.file];
        eprintln!(
            "stages_{n}: {n} stages, {} transitions, {} bytes, {} lines",
            4 * n,
            text.len(),
            text.lines().count()
        );

        let mut group = c.benchmark_group(format!("stages_{n}"));
        group.throughput(Throughput::Elements(n as u64));
        if n >= 50_000 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(5));
        } else if n >= 5_000 {
            group
                .sample_size(10)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(3));
        } else {
            group
                .sample_size(20)
                .warm_up_time(Duration::from_secs(1))
                .measurement_time(Duration::from_secs(2));
        }
        group.bench_with_input(BenchmarkId::new("parse", n), &text, |b, text| {
            b.iter(|| parse(FileId(0), black_box(text)))
        });
        group.bench_with_input(BenchmarkId::new("check", n), &sources, |b, sources| {
            b.iter(|| itsmflow_engine::check(black_box(sources)))
        });
        group.bench_with_input(BenchmarkId::new("check_files", n), &files, |b, files| {
            b.iter(|| check_files(black_box(files), HashSet::new(), Vec::new()))
        });
        if n == 5_000 {
            group.bench_with_input(BenchmarkId::new("format", n), &text, |b, text| {
                b.iter(|| format(black_box(text), black_box(&files[0])))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_processes, bench_generated);
criterion_main!(benches);
