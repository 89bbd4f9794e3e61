//! `wfc fmt`: rewrite files in the canonical layout, or list those that
//! would change.

use std::path::PathBuf;

use super::error::{Code, Error, Worst};
use wfc::check::Problem;
use wfc::loader::Loader;

#[derive(clap::Args)]
pub(super) struct Args {
    /// Files, or folders to search for `*.wf` files (default: the current folder)
    paths: Vec<PathBuf>,
    /// Change nothing; list the files that are not formatted and exit 1 if any
    #[arg(long)]
    check: bool,
}

pub(super) fn run(args: &Args) -> Result<(), Error> {
    let paths = super::discover(&args.paths)?;
    let mut loader = Loader::default();
    let mut worst = Worst::default();
    for path in &paths {
        let loaded = match loader.load(path) {
            Ok(loaded) => loaded,
            Err(err) => {
                worst.show(&super::unreadable(path, err));
                continue;
            }
        };
        let module = match &loaded.module {
            Ok(module) => module,
            Err(syntax) => {
                let problem = Problem::Syntax(syntax.clone());
                eprint!(
                    "{}",
                    wfc::diagnostics::human(
                        &loaded.source,
                        [&problem as &dyn miette::Diagnostic],
                        super::color(&std::io::stderr())
                    )
                );
                worst.show(&Error::Problems(format!(
                    "`{}` cannot be formatted until its syntax error is fixed",
                    path.display()
                )));
                continue;
            }
        };
        let formatted = wfc::format::format(&loaded.source, module);
        if formatted == loaded.source.text() {
            continue;
        }
        if args.check {
            outln!("{}", path.display());
            worst.note(Code::Problems);
        } else if let Err(err) = std::fs::write(path, formatted) {
            worst.show(&Error::usage(format!(
                "cannot write `{}`: {}",
                path.display(),
                wfc::files::reason(&err)
            )));
        } else {
            eprintln!("formatted {}", path.display());
        }
    }
    worst.finish()
}
