//! Names of failing tests that can be pasted into their runner (pytest node ids).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Names a failing test so that it can be pasted into its runner.
///
/// pytest's report gives `classname="tests.test_x.TestA"` and `name="test_b"` (its node id
/// `tests/test_x.py::TestA::test_b` with `/` turned into `.` and `.py` dropped), and a
/// `file` attribute only with `junit_family = "xunit1"`. Where the module ends and the
/// classes begin is not in the report, so the namer asks the filesystem: the longest dotted
/// prefix of `classname` that is a `.py` file under the step's folder (or under the
/// workflow's root, and inside the step's folder) is the module. A
/// `file` attribute that is such a file and agrees with `classname` is taken as it is. When
/// no `.py` file matches (cargo-nextest, Surefire, a report from elsewhere), the name is
/// `classname::name`, as the report has it.
pub struct Namer {
    /// Where pytest's paths may be relative to: the step's folder, then the workflow's
    /// root (pytest's rootdir when its configuration is there); none: never look.
    bases: Vec<PathBuf>,
    /// Classname -> (module file, classes), or nothing when no file matches.
    modules: HashMap<String, Option<(String, Vec<String>)>>,
}

impl Namer {
    /// A namer looking under `cwd` (the step's folder) and then `root`; shown paths are
    /// relative to `cwd`. `None`: names as the report has them.
    pub fn new(cwd: Option<&Path>, root: Option<&Path>) -> Self {
        let mut bases: Vec<PathBuf> = cwd.into_iter().map(Path::to_path_buf).collect();
        if let (Some(cwd), Some(root)) = (cwd, root) {
            if root != cwd {
                bases.push(root.to_path_buf());
            }
        }
        Self {
            bases,
            modules: HashMap::new(),
        }
    }

    pub(super) fn name(&mut self, classname: &str, name: &str, file: Option<&str>) -> String {
        if let Some((module, classes)) = self.module_of(classname, file) {
            let mut id = module;
            for part in classes.iter().map(String::as_str).chain([name]) {
                id.push_str("::");
                id.push_str(part);
            }
            return id;
        }
        if classname.is_empty() {
            name.to_owned()
        } else {
            format!("{classname}::{name}")
        }
    }

    fn module_of(&mut self, classname: &str, file: Option<&str>) -> Option<(String, Vec<String>)> {
        if self.bases.is_empty() || classname.is_empty() {
            return None;
        }
        if let Some(found) = self.modules.get(classname) {
            return found.clone();
        }
        let found = self
            .bases
            .iter()
            .find_map(|base| self.module_under(base, classname, file));
        self.modules.insert(classname.to_owned(), found.clone());
        found
    }

    /// The module of `classname` as a `.py` file under `base`, named relative to the step's
    /// folder (the first base); `None` when there is none, or it lies outside that folder.
    fn module_under(
        &self,
        base: &Path,
        classname: &str,
        file: Option<&str>,
    ) -> Option<(String, Vec<String>)> {
        let cwd = self.bases.first()?;
        let shown = |rel: &str| -> Option<String> {
            let full = base.join(rel);
            if !full.is_file() {
                return None;
            }
            let under = full.strip_prefix(cwd).ok()?;
            under.to_str().map(str::to_owned)
        };
        let from_file = file.filter(|f| f.ends_with(".py")).and_then(|f| {
            let module = f.trim_end_matches(".py").replace('/', ".");
            let rest = classname.strip_prefix(&module)?;
            let classes: Vec<String> = match rest.strip_prefix('.') {
                Some(r) => r.split('.').map(str::to_owned).collect(),
                None if rest.is_empty() => Vec::new(),
                None => return None,
            };
            Some((shown(f)?, classes))
        });
        from_file.or_else(|| {
            let parts: Vec<&str> = classname.split('.').collect();
            (1..=parts.len()).rev().find_map(|k| {
                let file = format!("{}.py", parts[..k].join("/"));
                let classes = parts[k..].iter().map(|s| (*s).to_owned()).collect();
                Some((shown(&file)?, classes))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pytest_names_become_node_ids_when_the_module_is_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("tests/unit")).expect("mkdir");
        std::fs::write(dir.path().join("tests/unit/test_x.py"), "").expect("write");
        std::fs::write(dir.path().join("test_top.py"), "").expect("write");
        let mut n = Namer::new(Some(dir.path()), None);
        assert_eq!(
            n.name("tests.unit.test_x.TestA.Inner", "test_b[1-2]", None),
            "tests/unit/test_x.py::TestA::Inner::test_b[1-2]"
        );
        assert_eq!(
            n.name("tests.unit.test_x", "test_c", None),
            "tests/unit/test_x.py::test_c"
        );
        assert_eq!(n.name("test_top", "test_d", None), "test_top.py::test_d");
        // xunit1's `file` attribute, agreeing with the classname.
        assert_eq!(
            n.name(
                "tests.unit.test_x.TestA",
                "test_e",
                Some("tests/unit/test_x.py")
            ),
            "tests/unit/test_x.py::TestA::test_e"
        );
        // No such file: as the report has it.
        assert_eq!(n.name("com.x.AppTest", "t", None), "com.x.AppTest::t");
        assert_eq!(n.name("", "t", None), "t");
        // pytest's rootdir above the step's folder: paths relative to the root, shown
        // relative to the step's folder; a module outside it keeps the report's name.
        let mut n = Namer::new(Some(&dir.path().join("tests")), Some(dir.path()));
        assert_eq!(n.name("tests.unit.test_x", "t", None), "unit/test_x.py::t");
        assert_eq!(n.name("test_top", "t", None), "test_top::t");
    }
}
