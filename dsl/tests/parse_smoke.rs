use itsmflow_dsl::{ast::FileId, parse};

#[test]
fn standard_processes_parse() {
    for name in ["shared.itsm", "incident.itsm"] {
        let path = format!("{}/../processes/{name}", env!("CARGO_MANIFEST_DIR"));
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
