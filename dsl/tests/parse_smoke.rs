use itsmflow_dsl::{ast::FileId, parse};

/// Every file of the standard library (processes, their tests, shared declarations) parses.
#[test]
fn standard_processes_parse() {
    let dir = format!("{}/../processes", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("processes/")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".itsm"))
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    for name in names {
        let path = format!("{dir}/{name}");
        let text = std::fs::read_to_string(&path).expect("read");
        let parsed = parse(FileId(0), &text);
        assert!(
            parsed.diagnostics.is_empty(),
            "{name}: {:#?}",
            parsed.diagnostics
        );
        assert!(!parsed.file.items.is_empty());
    }
}

/// A byte-order mark at the start is not a syntax error, and spans and columns still point at
/// the right text (the mark is no column).
#[test]
fn byte_order_mark_is_accepted() {
    let text = "\u{feff}role agent\nprocess p {\n  stage a initial final\n}\n";
    let parsed = parse(FileId(0), text);
    assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
    let name = &parsed.file.items[0].name().span;
    assert_eq!(&text[name.range()], "agent");
    let mut sources = itsmflow_dsl::Sources::new();
    let id = sources.add("bom.itsm", text);
    assert_eq!(
        sources.get(id).map(|f| f.line_col(name.start as usize)),
        Some((1, 6))
    );
    // With a syntax error elsewhere, the file is read item by item: the first item still parses.
    let broken = format!("{text}queue q {{ tier }}\n");
    let parsed = parse(FileId(0), &broken);
    assert_eq!(parsed.file.items.len(), 2, "{:#?}", parsed.diagnostics);
}

/// A transition without `->` between its stages is told so, at the stage after the gap.
#[test]
fn a_missing_arrow_is_named() {
    let text =
        "process p {\n  stage new initial\n  stage done final\n  transition a: new done\n}\n";
    let parsed = parse(FileId(0), text);
    let d = parsed.diagnostics.first().expect("a syntax error");
    assert_eq!(d.message, "expected `->`, found `done`");
    assert_eq!(&text[d.span.range()], "done");
    assert_eq!(d.span.start as usize, text.find("done\n}").unwrap_or(0));
}
