//! `wfc fmt`: rewrite files in the canonical layout, or list those that
//! would change.

use std::path::PathBuf;

use super::{exit, files};
use crate::check::Problem;
use crate::loader::Loader;

#[derive(clap::Args)]
pub struct Args {
    /// Files, or folders to search for `*.wf` files (default: the current folder)
    paths: Vec<PathBuf>,
    /// Change nothing; list the files that are not formatted and exit 1 if any
    #[arg(long)]
    check: bool,
}

pub fn run(args: &Args) -> i32 {
    let Some(paths) = files::discover_or_report(&args.paths) else {
        return exit::USAGE;
    };
    let mut loader = Loader::default();
    let mut code = exit::OK;
    for path in &paths {
        let loaded = match loader.load(path) {
            Ok(loaded) => loaded,
            Err(err) => {
                eprintln!(
                    "error: cannot read `{}`: {}",
                    path.display(),
                    files::reason(&err)
                );
                code = exit::USAGE;
                continue;
            }
        };
        let module = match &loaded.module {
            Ok(module) => module,
            Err(syntax) => {
                let problem = Problem::Syntax(syntax.clone());
                eprint!(
                    "{}",
                    crate::diagnostics::human(
                        &loaded.source,
                        [&problem as &dyn miette::Diagnostic],
                        super::color()
                    )
                );
                eprintln!(
                    "error: `{}` cannot be formatted until its syntax error is fixed",
                    path.display()
                );
                code = code.max(exit::PROBLEMS);
                continue;
            }
        };
        let formatted = crate::format::format(&loaded.source, module);
        if formatted == loaded.source.text() {
            continue;
        }
        if args.check {
            outln!("{}", path.display());
            code = code.max(exit::PROBLEMS);
        } else if let Err(err) = std::fs::write(path, formatted) {
            eprintln!(
                "error: cannot write `{}`: {}",
                path.display(),
                files::reason(&err)
            );
            code = exit::USAGE;
        } else {
            eprintln!("formatted {}", path.display());
        }
    }
    code
}
