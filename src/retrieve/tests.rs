//! The index end to end, on corpora written to temporary folders.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{Chunking, CorpusIndex, Passage, Query, Refresh, RetrieveError};

const LUMBAR: &str = "# Lumbar spine MRI

Policy for magnetic resonance imaging of the lumbar spine.

## Coverage criteria

Lumbar spine MRI (CPT 72148) is covered when low back pain persists after six weeks of \
conservative therapy, or when red flags such as cauda equina syndrome are present.

## Exclusions

Imaging is not covered for acute low back pain without red flags in the first six weeks.
";

const KNEE: &str = "# Knee MRI

## Coverage criteria

Knee MRI is covered after a suspected meniscal tear or ligament injury when an X-ray is \
inconclusive.
";

const SLEEP: &str = "# Sleep study

## Coverage criteria

A home sleep apnea test is covered for adults with suspected obstructive sleep apnea.
";

const APPEALS: &str = "Appeals must be filed within 60 days of the denial letter.

An expedited appeal is decided within 72 hours when delay could harm the patient.
";

const PRIOR_AUTH: &str = r#"{"id": "pa-imaging", "title": "Prior authorization for imaging", "text": "Advanced imaging such as MRI and CT requires prior authorization from the plan.", "payer": "Acme", "year": 2024, "plan.tier": "gold"}
{"id": "pa-drugs", "title": "Prior authorization for drugs", "text": "Specialty drugs require prior authorization and step therapy.", "payer": "Globex", "year": 2023}
{"id": "pa-dme", "title": "Durable medical equipment", "text": "CPAP machines for sleep apnea need prior authorization after a positive sleep study.", "payer": "Acme", "year": 2023}
"#;

const FAQ: &str = r#"{"id": "faq-1", "title": "How long does an appeal take?", "text": "Standard appeals are answered within 30 days.", "payer": "Globex"}
"#;

struct Fixture {
    _dir: TempDir,
    corpus: std::path::PathBuf,
    index: std::path::PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = TempDir::new().unwrap();
        let fixture = Fixture {
            corpus: dir.path().join("corpus"),
            index: dir.path().join("index"),
            _dir: dir,
        };
        fixture.write("policies/lumbar_mri.md", LUMBAR);
        fixture.write("policies/knee_mri.md", KNEE);
        fixture.write("policies/sleep_study.md", SLEEP);
        fixture.write("notes/appeals.txt", APPEALS);
        fixture.write("records/prior_auth.jsonl", PRIOR_AUTH);
        fixture.write("records/faq.jsonl", FAQ);
        // Neither hidden files nor other kinds of file are documents.
        fixture.write(".drafts/secret.md", "# Lumbar lumbar lumbar");
        fixture.write("policies/.lumbar.md.swp", "lumbar");
        fixture.write("policies/scan.pdf", "lumbar");
        fixture
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.corpus.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn open(&self) -> (CorpusIndex, Refresh) {
        self.open_with(&Chunking::default()).unwrap()
    }

    fn open_with(&self, chunking: &Chunking) -> Result<(CorpusIndex, Refresh), RetrieveError> {
        CorpusIndex::open("policies", &self.corpus, &self.index, chunking)
    }
}

fn search(index: &CorpusIndex, text: &str, filters: &[(&str, &str)]) -> Vec<Passage> {
    let filters: Vec<(String, String)> = filters
        .iter()
        .map(|&(key, value)| (key.to_string(), value.to_string()))
        .collect();
    index
        .search(&Query {
            text,
            top_k: 3,
            filters: &filters,
        })
        .unwrap()
}

fn ids(passages: &[Passage]) -> Vec<&str> {
    passages.iter().map(|p| p.id.as_str()).collect()
}

fn counts(refresh: &Refresh) -> [usize; 4] {
    [
        refresh.added,
        refresh.changed,
        refresh.removed,
        refresh.unchanged,
    ]
}

#[test]
fn a_first_open_builds_the_index() {
    let fixture = Fixture::new();
    let (index, refresh) = fixture.open();
    assert!(refresh.full_build);
    assert_eq!(refresh.files, 6);
    assert_eq!(refresh.passages, 10);
    assert_eq!(counts(&refresh), [6, 0, 0, 0]);
    let passages = index.passages().unwrap();
    assert_eq!(
        ids(&passages),
        [
            "notes/appeals#1",
            "policies/knee_mri#1",
            "policies/lumbar_mri#1",
            "policies/lumbar_mri#2",
            "policies/lumbar_mri#3",
            "policies/sleep_study#1",
            "faq-1",
            "pa-imaging",
            "pa-drugs",
            "pa-dme",
        ]
    );
    let coverage = &passages[3];
    assert_eq!(coverage.title, "Lumbar spine MRI › Coverage criteria");
    assert_eq!(coverage.source, "policies/lumbar_mri.md");
    assert_eq!(passages[7].metadata["payer"], "Acme");
    assert_eq!(passages[7].metadata["year"], "2024");
}

#[test]
fn bm25_ranks_the_passages_that_answer_the_query_first() {
    let fixture = Fixture::new();
    let (index, _) = fixture.open();
    let cases: [(&str, &[&str]); 3] = [
        (
            "Is a lumbar spine MRI covered for low back pain?",
            &[
                "policies/lumbar_mri#2",
                "policies/lumbar_mri#3",
                "policies/lumbar_mri#1",
            ],
        ),
        ("sleep apnea test", &["policies/sleep_study#1", "pa-dme"]),
        ("appeal denial letter days", &["notes/appeals#1", "faq-1"]),
    ];
    for (query, expected) in cases {
        let found = search(&index, query, &[]);
        assert_eq!(ids(&found), expected, "{query}: {found:#?}");
        assert!(found.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(found.iter().all(|p| p.score > 0.0));
    }
}

#[test]
fn filters_restrict_the_results() {
    let fixture = Fixture::new();
    let (index, _) = fixture.open();
    let all = search(&index, "prior authorization", &[]);
    assert_eq!(ids(&all), ["pa-drugs", "pa-imaging", "pa-dme"]);
    let acme = search(&index, "prior authorization", &[("payer", "Acme")]);
    assert_eq!(ids(&acme), ["pa-imaging", "pa-dme"]);
    // A filter selects; it does not change how well a passage matches.
    assert_eq!(acme[0].score, all[1].score);
    let acme_2023 = search(
        &index,
        "prior authorization",
        &[("payer", "Acme"), ("year", "2023")],
    );
    assert_eq!(ids(&acme_2023), ["pa-dme"]);
    assert!(search(&index, "prior authorization", &[("payer", "acme")]).is_empty());
    assert!(search(&index, "prior authorization", &[("unknown", "x")]).is_empty());
    // A dot is part of the key, not a path.
    let gold = search(&index, "prior authorization", &[("plan.tier", "gold")]);
    assert_eq!(ids(&gold), ["pa-imaging"]);
    assert!(search(&index, "prior authorization", &[("plan", "gold")]).is_empty());

    let knee = search(
        &index,
        "MRI coverage",
        &[("source", "policies/knee_mri.md")],
    );
    assert_eq!(ids(&knee), ["policies/knee_mri#1"]);
    let by_id = search(&index, "MRI", &[("id", "pa-imaging")]);
    assert_eq!(ids(&by_id), ["pa-imaging"]);
}

#[test]
fn any_query_text_is_searchable() {
    let fixture = Fixture::new();
    let (index, _) = fixture.open();
    let found = search(&index, r#"MRI (CPT 72148): "lumbar"?"#, &[]);
    assert_eq!(found[0].id, "policies/lumbar_mri#2");
    for text in [
        r#"AND OR NOT -lumbar +knee title:"sleep" [a TO z] {x} ^2 ~1 * \ / ' ` ! & |"#,
        "日本語のクエリ",
        "?!:()\"",
        "",
    ] {
        index
            .search(&Query {
                text,
                top_k: 5,
                filters: &[],
            })
            .unwrap();
    }
    assert!(search(&index, "?!:() -- ", &[]).is_empty());
    let none = index.search(&Query {
        text: "lumbar",
        top_k: 0,
        filters: &[],
    });
    assert!(none.unwrap().is_empty());
}

#[test]
fn ties_are_ordered_by_id() {
    let fixture = Fixture::new();
    for name in ["c", "a", "d", "b"] {
        fixture.write(&format!("same/{name}.txt"), "identical zebra text");
    }
    let (index, _) = fixture.open();
    let found = search(&index, "zebra", &[]);
    assert_eq!(ids(&found), ["same/a#1", "same/b#1", "same/c#1"]);
    assert_eq!(found[0].score, found[2].score);
}

#[test]
fn an_update_redoes_only_the_files_that_changed() {
    let fixture = Fixture::new();
    let (_, first) = fixture.open();
    assert!(first.full_build);

    fixture.write(
        "policies/knee_mri.md",
        "# Knee MRI\n\n## Coverage criteria\n\nKnee MRI needs an orthopaedic referral.\n",
    );
    fixture.write(
        "policies/hip.md",
        "# Hip replacement\n\nHip arthroplasty is covered.\n",
    );
    fs::remove_file(fixture.corpus.join("notes/appeals.txt")).unwrap();
    let (index, refresh) = fixture.open();
    assert!(!refresh.full_build);
    assert_eq!(counts(&refresh), [1, 1, 1, 4]);
    assert_eq!((refresh.files, refresh.passages), (6, 10));

    assert!(search(&index, "meniscal tear", &[]).is_empty());
    assert_eq!(
        ids(&search(&index, "orthopaedic referral", &[])),
        ["policies/knee_mri#1"]
    );
    assert_eq!(
        ids(&search(&index, "hip arthroplasty", &[]))[0],
        "policies/hip#1"
    );
    assert!(search(&index, "denial letter", &[]).is_empty());

    // The same files indexed from scratch score the same: the update left no
    // trace of the passages it replaced.
    let fresh = CorpusIndex::open(
        "policies",
        &fixture.corpus,
        &fixture.corpus.parent().unwrap().join("fresh"),
        &Chunking::default(),
    )
    .unwrap()
    .0;
    for query in ["MRI covered", "sleep apnea", "appeal within days", "knee"] {
        assert_eq!(
            search(&index, query, &[]),
            search(&fresh, query, &[]),
            "{query}"
        );
    }

    let (_, again) = fixture.open();
    assert!(!again.full_build);
    assert_eq!(counts(&again), [0, 0, 0, 6]);

    let (index, rechunked) = fixture.open_with(&Chunking { max_chars: 40 }).unwrap();
    assert!(rechunked.full_build);
    assert_eq!(counts(&rechunked), [6, 0, 0, 0]);
    assert!(rechunked.passages > 10);
    assert!(
        index
            .passages()
            .unwrap()
            .iter()
            .all(|p| p.text.chars().count() <= 40)
    );
}

#[test]
fn an_index_of_another_format_is_rebuilt_and_removed() {
    let fixture = Fixture::new();
    fixture.open();
    let manifest_path = fixture.index.join("manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    manifest["format"] = 0.into();
    fs::write(&manifest_path, manifest.to_string()).unwrap();
    fs::create_dir_all(fixture.index.join("v0")).unwrap();

    let (_, refresh) = fixture.open();
    assert!(refresh.full_build);
    assert!(!fixture.index.join("v0").exists());
    assert!(fixture.index.join("v1").exists());
}

#[test]
fn a_deleted_index_folder_is_rebuilt() {
    let fixture = Fixture::new();
    fixture.open();
    fs::remove_dir_all(fixture.index.join("v1")).unwrap();
    let (index, refresh) = fixture.open();
    assert!(refresh.full_build);
    assert_eq!(index.passages().unwrap().len(), 10);
}

#[test]
fn an_index_folder_inside_the_corpus_is_not_indexed() {
    let fixture = Fixture::new();
    let index_dir = fixture.corpus.join("index");
    let open = || {
        CorpusIndex::open(
            "policies",
            &fixture.corpus,
            &index_dir,
            &Chunking::default(),
        )
    };
    open().unwrap();
    // Tantivy's files do not look like documents, but a stray `.txt` left in
    // the index folder must not be indexed either.
    fs::write(index_dir.join("notes.txt"), "lumbar").unwrap();
    let (_, refresh) = open().unwrap();
    assert_eq!(counts(&refresh), [0, 0, 0, 6]);
}

#[test]
fn two_opens_at_once_build_the_index_once() {
    let fixture = Fixture::new();
    let refreshes: Vec<Refresh> = thread::scope(|scope| {
        let opens: Vec<_> = (0..2).map(|_| scope.spawn(|| fixture.open().1)).collect();
        opens.into_iter().map(|open| open.join().unwrap()).collect()
    });
    assert_eq!(
        refreshes.iter().filter(|r| r.full_build).count(),
        1,
        "{refreshes:#?}"
    );
    assert!(refreshes.iter().all(|r| r.passages == 10), "{refreshes:#?}");
    let leftovers: Vec<_> = fs::read_dir(&fixture.index)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn an_up_to_date_index_opens_while_another_process_writes() {
    let fixture = Fixture::new();
    fixture.open();
    let held = hold_writer(&fixture.index);
    let (index, refresh) = fixture.open();
    assert_eq!(counts(&refresh), [0, 0, 0, 6]);
    assert_eq!(
        search(&index, "sleep apnea", &[])[0].id,
        "policies/sleep_study#1"
    );
    drop(held);
}

#[test]
fn an_update_waits_for_another_writer() {
    let fixture = Fixture::new();
    fixture.open();
    fixture.write("notes/new.txt", "A brand new note about zebras.");

    let held = hold_writer(&fixture.index);
    let started = Instant::now();
    let error = CorpusIndex::open_waiting(
        "policies",
        &fixture.corpus,
        &fixture.index,
        &Chunking::default(),
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let message = error.to_string();
    assert!(
        matches!(error, RetrieveError::IndexBusy { .. }),
        "{message}"
    );
    assert!(
        message.contains("another process is updating the index"),
        "{message}"
    );
    assert!(message.contains("corpus `policies`"), "{message}");

    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(200));
        drop(held);
    });
    let (index, refresh) = fixture.open();
    releaser.join().unwrap();
    assert_eq!(counts(&refresh), [1, 0, 0, 6]);
    assert_eq!(search(&index, "zebras", &[])[0].id, "notes/new#1");
}

/// Takes the index's writer lock as another process would.
fn hold_writer(index_dir: &Path) -> tantivy::IndexWriter {
    let index = tantivy::Index::open_in_dir(index_dir.join("v1")).unwrap();
    index.writer(15_000_000).unwrap()
}

#[test]
fn bad_input_fails_the_open_and_leaves_the_index_as_it_was() {
    let fixture = Fixture::new();
    fixture.open();
    fixture.write(
        "records/faq.jsonl",
        &format!("{FAQ}{{\"title\": \"no text\"}}\n"),
    );
    fixture.write("notes/extra.txt", "An extra zebra note.");
    let error = fixture.open_with(&Chunking::default()).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("records/faq.jsonl` line 2:"), "{message}");
    assert!(message.contains("no `text` field"), "{message}");

    fixture.write("records/faq.jsonl", FAQ);
    let (index, refresh) = fixture.open();
    assert_eq!(counts(&refresh), [1, 0, 0, 6]);
    assert_eq!(search(&index, "zebra", &[])[0].id, "notes/extra#1");
}

#[test]
fn duplicate_ids_are_an_error() {
    let fixture = Fixture::new();
    fixture.open();
    fixture.write(
        "records/more.jsonl",
        r#"{"id": "pa-dme", "text": "Again."}"#,
    );
    let message = fixture
        .open_with(&Chunking::default())
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        "passage id `pa-dme` is used by both `records/more.jsonl` and `records/prior_auth.jsonl`; \
         ids must be unique in corpus `policies`: change one record's `id`, or rename one of the files"
    );
}

#[test]
fn a_missing_corpus_folder_says_what_to_fix() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("nowhere");
    let error = CorpusIndex::open(
        "claims",
        &missing,
        &dir.path().join("index"),
        &Chunking::default(),
    )
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "the corpus folder `{}` does not exist; create it or fix `path` for corpus `claims` in wfc.toml",
            missing.display()
        )
    );
}
