//! The house a newcomer walks: each crate's `lib.rs` map names every module of the crate, so
//! that a module added without its line there is caught.

use std::path::Path;

/// Every module under `dir` as a path from the crate root (`sys::keep`), the roots excepted.
fn modules(dir: &Path, prefix: &str, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let module = format!("{prefix}{name}");
        if path.is_dir() {
            out.push(module.clone());
            modules(&path, &format!("{module}::"), out);
        } else if path.extension().is_some_and(|e| e == "rs")
            && !["lib", "main", "mod"].contains(&name.as_str())
        {
            out.push(module);
        }
    }
}

#[test]
fn each_lib_rs_map_names_every_module_of_its_crate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for krate in [root.to_path_buf(), root.join("actors")] {
        let src = krate.join("src");
        let map = std::fs::read_to_string(src.join("lib.rs")).unwrap();
        let mut all = Vec::new();
        modules(&src, "", &mut all);
        assert!(all.len() > 20, "{all:?}");
        let missing: Vec<&String> = all
            .iter()
            .filter(|m| !map.contains(&format!("`{m}`")))
            .collect();
        assert!(
            missing.is_empty(),
            "not in {}'s map: {missing:?}",
            src.join("lib.rs").display()
        );
    }
}
