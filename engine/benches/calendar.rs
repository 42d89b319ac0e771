//! Business-time arithmetic: `add` of typical targets and `elapsed` over a week, on office hours
//! in Europe/Amsterdam with holidays and on `24x7`. Each iteration takes the next of 256 starts
//! spread over two years (inside and outside hours, across changes of clocks and holidays).
//!
//! ```sh
//! cargo bench -p itsmflow-engine --bench calendar
//! ```

use std::hint::black_box;
use std::time::Duration as WallTime;

use chrono::{DateTime, TimeDelta, Utc};
use criterion::{criterion_group, criterion_main, Criterion};
use itsmflow_dsl::{parse_duration, Sources};
use itsmflow_engine::calendar::BusinessCalendar;
use itsmflow_engine::model::Calendar;

const OFFICE: &str = r#"
calendar office {
  timezone "Europe/Amsterdam"
  hours mon-fri 08:00-17:00
  holidays 2026-01-01, 2026-04-06, 2026-04-27, 2026-05-05, 2026-05-14, 2026-05-25
  holidays 2026-12-25, 2026-12-26, 2027-01-01, 2027-03-29, 2027-04-27, 2027-05-06
  holidays 2027-05-17, 2027-12-25, 2027-12-26
}
"#;

fn office() -> Calendar {
    let mut sources = Sources::new();
    sources.add("office.itsm", OFFICE);
    let checked = itsmflow_engine::check(&sources);
    checked.project.expect("office checks").calendars.remove(0)
}

/// 256 starts from 2026-01-01, 2 days 17 hours 13 minutes apart: every hour of the day and
/// every weekday come up.
fn starts() -> Vec<DateTime<Utc>> {
    let first = DateTime::from_timestamp(1_767_225_600, 0).expect("2026-01-01");
    let step = TimeDelta::minutes(((2 * 24) + 17) * 60 + 13);
    (0..256).map(|i| first + step * i).collect()
}

fn bench(c: &mut Criterion) {
    let office = office();
    let calendars = [
        ("office", BusinessCalendar::new(&office)),
        ("24x7", BusinessCalendar::always_open()),
    ];
    let starts = starts();
    let mut group = c.benchmark_group("calendar");
    for (name, cal) in &calendars {
        for d in ["4h", "3d", "10d"] {
            let duration = parse_duration(d).expect("duration");
            let mut i = 0;
            group.bench_function(format!("{name}/add {d}"), |b| {
                b.iter(|| {
                    i = (i + 1) % starts.len();
                    cal.add(black_box(starts[i]), black_box(&duration))
                })
            });
        }
        let week = TimeDelta::days(7);
        let mut i = 0;
        group.bench_function(format!("{name}/elapsed over a week"), |b| {
            b.iter(|| {
                i = (i + 1) % starts.len();
                cal.elapsed(black_box(starts[i]), black_box(starts[i] + week))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(WallTime::from_secs(3));
    targets = bench
}
criterion_main!(benches);
