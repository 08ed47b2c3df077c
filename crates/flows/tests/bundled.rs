//! The bundled flows in `flows/` parse and pass `check`, alone and as a library.

use std::path::PathBuf;

use switchboard_flows::{FlowLibrary, check, check_library, parse_flow};

fn flows_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../flows")
}

#[test]
fn every_bundled_flow_passes_check() {
    let mut lib = FlowLibrary::default();
    let mut count = 0;
    for entry in std::fs::read_dir(flows_dir()).expect("flows/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let src = std::fs::read_to_string(&path).expect("readable");
        let def = match parse_flow(&src) {
            Ok(d) => d,
            Err(p) => panic!("{}: {p:?}", path.display()),
        };
        let problems = check(&def);
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            path.display(),
            problems
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        );
        lib.insert(def);
        count += 1;
    }
    assert_eq!(count, 5, "main menu and four services");
    let problems = check_library(&lib);
    assert!(problems.is_empty(), "{problems:?}");
}
