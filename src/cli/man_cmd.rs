//! `bgflow man`: the manual pages, generated from the same clap definitions as `--help`
//! (checked in at man/, kept current by a test, like the JSON Schema at schema/).

use std::io;
use std::path::Path;

use clap::CommandFactory;

use super::Cli;
use crate::{exit, report};

/// Every page as (file name, roff text): `bgflow.1`, then `bgflow-<command>.1` for each
/// command `--help` lists, in its order.
pub fn pages() -> io::Result<Vec<(String, String)>> {
    let mut root = Cli::command();
    root.build();
    let mut pages = vec![("bgflow.1".to_owned(), render(root.clone())?)];
    for sub in root
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        let name = format!("bgflow-{}", sub.get_name());
        // The page's title and NAME line are `bgflow-run`, as git's are `git-commit`; the
        // synopsis keeps the words a user types (`bgflow run`).
        let page = sub.clone().name(name.clone()).display_name(name.clone());
        pages.push((format!("{name}.1"), render(page)?));
    }
    Ok(pages)
}

fn render(cmd: clap::Command) -> io::Result<String> {
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut buf)?;
    String::from_utf8(buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Print `bgflow.1`, or with `dir`, write every page into it (made if missing).
pub fn man(dir: Option<&Path>) -> io::Result<u8> {
    let pages = pages()?;
    let Some(dir) = dir else {
        return report::stdout(&pages[0].1).map(|()| exit::SUCCESS);
    };
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        pages
            .iter()
            .try_for_each(|(name, text)| std::fs::write(dir.join(name), text))
    });
    match written {
        Ok(()) => {
            report::stderr(&format!(
                "wrote {} pages to {}\n",
                pages.len(),
                dir.display()
            ));
            Ok(exit::SUCCESS)
        }
        Err(e) => {
            report::stderr(&format!("error: cannot write {}: {e}\n", dir.display()));
            Ok(exit::INTERNAL)
        }
    }
}
