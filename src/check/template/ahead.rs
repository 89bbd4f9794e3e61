//! The prompts of a large file's later tasks, analysed on another core
//! while the checker works through the earlier ones. Analysing a template
//! (minijinja's parse and the walk over it) is most of the checker's work on
//! a large file, and it needs nothing but the template's own text.

use rustc_hash::FxHashMap as HashMap;
use std::num::NonZero;
use std::thread::JoinHandle;

use super::uses::{SyntaxError, Uses, analyze};
use crate::ast::Text;

/// Below this many prompts the checker analyses them all itself: a thread
/// would cost more than it saves.
const FEWEST: usize = 256;

type Analysis = Result<Uses, SyntaxError>;

/// Analyses by the file offset of their text.
type ByOffset = HashMap<usize, Analysis>;

#[derive(Default)]
pub(super) enum Ahead {
    /// Every prompt is left to the checker.
    #[default]
    Idle,
    /// The other thread analyses the prompts from offset `from` on.
    Running {
        from: usize,
        thread: JoinHandle<ByOffset>,
    },
    /// What the other thread made and the checker has not taken yet.
    Done(ByOffset),
}

impl Ahead {
    /// Begins analysing the later two thirds of `texts` (in file order) on
    /// another thread, when they are many and there is a core for it.
    pub(super) fn start<'t>(texts: impl Iterator<Item = &'t Text>) -> Ahead {
        let cores = std::thread::available_parallelism().map_or(1, NonZero::get);
        Ahead::start_on(texts, cores)
    }

    fn start_on<'t>(texts: impl Iterator<Item = &'t Text>, cores: usize) -> Ahead {
        let texts: Vec<&Text> = texts.collect();
        if texts.len() < FEWEST || cores < 2 {
            return Ahead::default();
        }
        // Besides the templates, the checker has about as much other work
        // per task, so by the time it has done the first third itself, the
        // other thread has analysed the rest.
        let later: Vec<(usize, String)> = texts[texts.len() / 3..]
            .iter()
            .map(|text| (text.span.start, text.value.clone()))
            .collect();
        let from = later[0].0;
        let thread = std::thread::spawn(move || {
            later
                .into_iter()
                .map(|(offset, source)| (offset, analyze(&source)))
                .collect()
        });
        Ahead::Running { from, thread }
    }

    /// The analysis of `text`'s value, if the other thread made it; waits
    /// for the other thread the first time it is asked for one of its texts.
    pub(super) fn take(&mut self, text: &Text) -> Option<Analysis> {
        if let Ahead::Running { from, .. } = self
            && text.span.start >= *from
            && let Ahead::Running { thread, .. } = std::mem::take(self)
        {
            *self = Ahead::Done(
                thread
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        match self {
            Ahead::Done(analyses) => analyses.remove(&text.span.start),
            Ahead::Idle | Ahead::Running { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Item, Module};
    use crate::source::SourceFile;

    fn module(tasks: usize) -> Module {
        let mut text = String::from("workflow w {\n  input record: text\n");
        for i in 0..tasks {
            let prompt = if i % 50 == 49 {
                format!("Step {i}: {{{{ record ")
            } else {
                format!(
                    "Step {i}: {{{{ record | upper }}}} {{% if t{i} %}}{{{{ t{i}.x }}}}{{% endif %}}"
                )
            };
            text.push_str(&format!("  task t{i} -> A {{ prompt = \"{prompt}\" }}\n"));
        }
        text.push_str("}\n");
        crate::parse::parse(&SourceFile::new("w.wf", text)).expect("parses")
    }

    fn texts(module: &Module) -> Vec<&Text> {
        let Item::Workflow(workflow) = &module.items[0] else {
            panic!("a workflow")
        };
        crate::check::tasks::sent_texts(&[workflow]).collect()
    }

    #[test]
    fn the_later_two_thirds_are_analysed_on_another_thread_as_they_would_be_here() {
        let module = module(3 * FEWEST);
        let texts = texts(&module);
        let mut ahead = Ahead::start_on(texts.iter().copied(), 2);
        for (i, text) in texts.iter().enumerate() {
            let analysis = ahead.take(text);
            assert_eq!(analysis.is_some(), i >= FEWEST, "text {i}");
            if let Some(analysis) = analysis {
                assert_eq!(
                    format!("{analysis:?}"),
                    format!("{:?}", analyze(&text.value))
                );
            }
        }
        // Each analysis is handed out once.
        assert!(ahead.take(texts[FEWEST]).is_none());
    }

    #[test]
    fn a_few_prompts_or_a_single_core_are_left_to_the_checker() {
        let module = module(FEWEST - 1);
        let texts = texts(&module);
        let mut ahead = Ahead::start_on(texts.iter().copied(), 2);
        assert!(texts.iter().all(|text| ahead.take(text).is_none()));
        let module = super::tests::module(2 * FEWEST);
        let mut ahead = Ahead::start_on(self::texts(&module).into_iter(), 1);
        assert!(
            self::texts(&module)
                .iter()
                .all(|text| ahead.take(text).is_none())
        );
    }
}
