//! Quality scoring, made explicit: a task's answer is scored by the share of
//! its `expect` checks it meets. An empty answer, or one cut off by
//! `max_tokens`, scores 0 whatever it contains.

use crate::check::Check;
use crate::record::Quality;

/// The passage ids a retrieval task gave, by the task's name (for `expect
/// cites`); none when it gave none.
pub type PassageIds<'a> = &'a dyn Fn(&str) -> Vec<String>;

pub fn score(
    text: &str,
    finish_reason: Option<&str>,
    checks: &[Check],
    passages: PassageIds<'_>,
) -> Quality {
    let broken = if text.trim().is_empty() {
        Some("the answer is empty")
    } else if finish_reason == Some("length") {
        Some("max_tokens cut the answer off")
    } else {
        None
    };
    if let Some(reason) = broken {
        return Quality {
            score: 0.0,
            failed: vec![reason.to_string()],
        };
    }
    let failed: Vec<String> = checks
        .iter()
        .filter(|check| !check.holds(text, passages))
        .map(Check::to_string)
        .collect();
    let score = if checks.is_empty() {
        1.0
    } else {
        (checks.len() - failed.len()) as f64 / checks.len() as f64
    };
    Quality {
        score: (score * 100.0).round() / 100.0,
        failed,
    }
}

impl Check {
    #[must_use]
    pub fn holds(&self, text: &str, passages: PassageIds<'_>) -> bool {
        match self {
            Check::Cites(task) => passages(task).iter().any(|id| text.contains(id.as_str())),
            Check::Contains(needle) => text.contains(needle.as_str()),
            Check::Matches(regex) => regex.is_match(text),
            Check::Heading(title) => text.lines().any(|line| is_heading(line, title)),
            Check::MinLength(least) => text.trim().chars().count() >= *least,
            Check::Json => serde_json::from_str::<serde_json::Value>(text.trim()).is_ok(),
        }
    }
}

/// `## Title`, `=== TITLE ===`, `Title:` and the like, in any case.
fn is_heading(line: &str, title: &str) -> bool {
    let bare = line
        .trim()
        .trim_start_matches(['#', '='])
        .trim_end_matches(['=', ':'])
        .trim()
        .trim_matches('*')
        .trim();
    bare.eq_ignore_ascii_case(title)
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Contains(text) => write!(f, "contains {text:?}"),
            Check::Matches(regex) => write!(f, "matches {:?}", regex.as_str()),
            Check::Heading(title) => write!(f, "heading {title:?}"),
            Check::MinLength(least) => write!(f, "min_length {least}"),
            Check::Json => f.write_str("json"),
            Check::Cites(task) => write!(f, "cites {task}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks() -> Vec<Check> {
        vec![
            Check::Heading("Hospital Course".into()),
            Check::Contains("I21".into()),
            Check::Matches(regex::Regex::new(r"(?m)^- ").unwrap()),
            Check::MinLength(40),
        ]
    }

    const NONE: PassageIds<'static> = &|_| Vec::new();

    #[test]
    fn the_score_is_the_share_of_checks_met() {
        let answer =
            "=== HOSPITAL COURSE ===\nPCI to the RCA, one drug-eluting stent.\n- I21.19 STEMI";
        assert_eq!(score(answer, Some("stop"), &checks(), NONE).score, 1.0);
        let partial = score("## Hospital course\nshort", Some("stop"), &checks(), NONE);
        assert_eq!(partial.score, 0.25);
        assert_eq!(
            partial.failed,
            [r#"contains "I21""#, r#"matches "(?m)^- ""#, "min_length 40"]
        );
        assert_eq!(score("anything", None, &[], NONE).score, 1.0);
    }

    #[test]
    fn empty_or_cut_off_answers_score_zero() {
        let answer = "=== HOSPITAL COURSE ===\nPCI to the RCA.\n- I21.19 STEMI";
        let cut = score(answer, Some("length"), &checks(), NONE);
        assert_eq!(cut.score, 0.0);
        assert_eq!(cut.failed, ["max_tokens cut the answer off"]);
        assert_eq!(score("  \n", Some("stop"), &[], NONE).score, 0.0);
    }

    #[test]
    fn json_means_the_whole_answer() {
        assert!(Check::Json.holds(" {\"icd10\": [\"I21.19\"]}\n", NONE));
        assert!(!Check::Json.holds("Here it is: {\"icd10\": []}", NONE));
    }

    #[test]
    fn an_answer_cites_when_it_names_a_passage_it_was_given() {
        let given = |task: &str| match task {
            "policy" => vec!["lumbar_mri#2".to_string(), "formulary#7".to_string()],
            _ => Vec::new(),
        };
        let cites = Check::Cites("policy".into());
        assert!(cites.holds("Criteria met [lumbar_mri#2].", &given));
        assert!(!cites.holds("Criteria met [lumbar_mri#3].", &given));
        assert!(!Check::Cites("other".into()).holds("lumbar_mri#2", &given));
    }
}
