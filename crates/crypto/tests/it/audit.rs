use serde_json::json;
use switchboard_crypto::audit::canonical_json;
use switchboard_crypto::{
    AuditEntry, ChainBreak, ChainError, ChainHead, ChainVerifier, GENESIS_HASH, NewAuditEntry,
    chain_next, verify_chain, verify_chain_to,
};
use time::macros::datetime;

fn event(n: u32) -> NewAuditEntry {
    NewAuditEntry {
        at: datetime!(2026-11-25 10:00:00 UTC) + time::Duration::seconds(i64::from(n)),
        actor: format!("user:{n}"),
        action: [
            "auth.login",
            "contact.view",
            "contact.export",
            "contact.erase",
            "user.role_change",
            "config.change",
        ][n as usize % 6]
            .to_owned(),
        subject: format!("contact:{n}"),
        details: json!({ "n": n, "fields": ["phone", "name"], "ip": "192.0.2.1" }),
    }
}

fn chain(len: u32) -> Vec<AuditEntry> {
    let mut entries: Vec<AuditEntry> = Vec::new();
    for n in 0..len {
        let next = chain_next(entries.last(), event(n));
        entries.push(next);
    }
    entries
}

fn broken_at(seq: u64, reason: ChainBreak) -> Result<(), ChainError> {
    Err(ChainError { seq, reason })
}

#[test]
fn an_untouched_chain_verifies() {
    let entries = chain(6);
    assert_eq!(entries[0].seq, 1);
    assert_eq!(entries[0].prev_hash, GENESIS_HASH);
    assert_eq!(entries[3].prev_hash, entries[2].hash);
    assert_eq!(verify_chain(&entries), Ok(()));
    assert_eq!(verify_chain(&[]), Ok(()));
}

#[test]
fn the_canonical_form_is_fixed() {
    // A test vector for other implementations (e.g. a SQL or Python verifier). The hash was
    // cross-checked with `printf '%s' "$canonical" | sha256sum` and with Python
    // `json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
    let entry = chain_next(
        None,
        NewAuditEntry {
            at: datetime!(2026-11-25 10:00:00.123456789 +01:00),
            actor: "user:ada".into(),
            action: "contact.view".into(),
            subject: "contact:42".into(),
            details: json!({ "z": 1, "a": ["x", null, true], "m": { "b": "line\nbreak \"q\" é", "a": -3 } }),
        },
    );
    assert_eq!(
        entry.canonical_form(),
        r#"{"action":"contact.view","actor":"user:ada","at":"2026-11-25T09:00:00.123456Z","details":{"a":["x",null,true],"m":{"a":-3,"b":"line\nbreak \"q\" é"},"z":1},"prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","seq":1,"subject":"contact:42","v":1}"#
    );
    assert_eq!(
        entry.hash,
        "5967de2f2c9577ad2ce0461aa943b724ab92f8230cd21ccf604e0e217a180391"
    );
    assert_eq!(
        entry.at,
        datetime!(2026-11-25 09:00:00.123456 UTC),
        "stored at µs precision in UTC"
    );
}

#[test]
fn canonical_json_matches_serde_json_for_sorted_maps() {
    let value = json!({ "b": [1, 2, { "d": "\u{1}\t", "c": 1.5 }], "a": "ü/\\" });
    assert_eq!(
        canonical_json(&value),
        serde_json::to_string(&value).unwrap()
    );
}

#[test]
fn the_hash_survives_a_json_round_trip_and_another_offset() {
    let entries = chain(3);
    let json = serde_json::to_string(&entries).unwrap();
    let back: Vec<AuditEntry> = serde_json::from_str(&json).unwrap();
    assert_eq!(verify_chain(&back), Ok(()));

    let mut shifted = entries.clone();
    shifted[1].at = shifted[1].at.to_offset(time::macros::offset!(-05:00));
    assert_eq!(
        verify_chain(&shifted),
        Ok(()),
        "the same instant in another offset"
    );
}

#[test]
fn editing_any_field_is_detected_at_that_entry() {
    type Edit = fn(&mut AuditEntry);
    let edits: [(&str, Edit); 6] = [
        ("actor", |e| e.actor = "user:mallory".into()),
        ("action", |e| e.action = "auth.login".into()),
        ("subject", |e| e.subject.push('x')),
        ("details", |e| e.details["n"] = json!(99)),
        ("at", |e| e.at += time::Duration::microseconds(1)),
        ("hash", |e| e.hash = "f".repeat(64)),
    ];
    for (field, edit) in edits {
        let mut entries = chain(5);
        edit(&mut entries[2]);
        // An edited `hash` no longer matches the content either, so it is caught at the same
        // entry (before the next entry's link is checked).
        assert_eq!(
            verify_chain(&entries),
            broken_at(3, ChainBreak::ContentEdited),
            "{field}"
        );
    }
}

#[test]
fn an_edit_with_a_recomputed_hash_breaks_the_next_link() {
    let mut entries = chain(5);
    entries[2].details = json!({ "n": 2, "fields": [] });
    entries[2].hash = entries[2].compute_hash();
    assert_eq!(verify_chain(&entries), broken_at(4, ChainBreak::BrokenLink));
}

#[test]
fn deleting_an_entry_is_detected() {
    let mut middle = chain(5);
    middle.remove(2);
    assert_eq!(
        verify_chain(&middle),
        broken_at(4, ChainBreak::UnexpectedSeq { expected: 3 })
    );

    let mut first = chain(5);
    first.remove(0);
    assert_eq!(
        verify_chain(&first),
        broken_at(2, ChainBreak::UnexpectedSeq { expected: 1 })
    );

    // Deleting and renumbering the rest still breaks the link.
    let mut renumbered = chain(5);
    renumbered.remove(2);
    for (i, e) in renumbered.iter_mut().enumerate().skip(2) {
        e.seq = i as u64 + 1;
        e.hash = e.compute_hash();
    }
    assert_eq!(
        verify_chain(&renumbered),
        broken_at(3, ChainBreak::BrokenLink)
    );
}

#[test]
fn inserting_an_entry_is_detected() {
    // A well-formed entry forged after entry 2, pushed in front of the real entry 3.
    let mut entries = chain(5);
    let forged = chain_next(Some(&entries[1]), event(77));
    entries.insert(2, forged);
    assert_eq!(
        verify_chain(&entries),
        broken_at(3, ChainBreak::UnexpectedSeq { expected: 4 })
    );

    // Renumbering everything after it (without rehashing the whole tail) breaks the link.
    let mut renumbered = chain(5);
    let forged = chain_next(Some(&renumbered[1]), event(77));
    renumbered.insert(2, forged);
    for (i, e) in renumbered.iter_mut().enumerate().skip(3) {
        e.seq = i as u64 + 1;
        e.hash = e.compute_hash();
    }
    assert_eq!(
        verify_chain(&renumbered),
        broken_at(4, ChainBreak::BrokenLink)
    );
}

#[test]
fn reordering_entries_is_detected() {
    let mut entries = chain(5);
    entries.swap(1, 3);
    assert_eq!(
        verify_chain(&entries),
        broken_at(4, ChainBreak::UnexpectedSeq { expected: 2 })
    );

    // Swapping the seq numbers too leaves the links broken.
    let mut relabelled = chain(5);
    relabelled.swap(1, 3);
    relabelled[1].seq = 2;
    relabelled[3].seq = 4;
    assert!(matches!(
        verify_chain(&relabelled),
        Err(ChainError { seq: 2, .. })
    ));
}

#[test]
fn an_anchor_catches_a_dropped_tail_and_a_rewritten_chain() {
    let entries = chain(6);
    let anchor = ChainHead {
        seq: 5,
        hash: entries[4].hash.clone(),
    };
    assert_eq!(
        verify_chain_to(&entries, &anchor),
        Ok(Some(ChainHead {
            seq: 6,
            hash: entries[5].hash.clone()
        }))
    );

    // The newest entries deleted: the chain itself still verifies, the anchor does not.
    assert_eq!(verify_chain(&entries[..3]), Ok(()));
    assert_eq!(
        verify_chain_to(&entries[..3], &anchor),
        Err(ChainError {
            seq: 5,
            reason: ChainBreak::AnchorMismatch
        })
    );

    // Every entry rewritten and rehashed from the start: consistent, but not the anchored chain.
    let mut rewritten: Vec<AuditEntry> = Vec::new();
    for n in 0..6 {
        let mut new = event(n);
        if n == 1 {
            new.actor = "user:mallory".into();
        }
        let next = chain_next(rewritten.last(), new);
        rewritten.push(next);
    }
    assert_eq!(verify_chain(&rewritten), Ok(()));
    assert_eq!(
        verify_chain_to(&rewritten, &anchor),
        Err(ChainError {
            seq: 5,
            reason: ChainBreak::AnchorMismatch
        })
    );
}

#[test]
fn a_verifier_resumes_from_a_recorded_head() {
    let entries = chain(6);
    let mut first = ChainVerifier::new();
    assert_eq!(first.head(), None);
    entries[..4].iter().try_for_each(|e| first.push(e)).unwrap();
    let head = first.head().unwrap();
    assert_eq!(head.seq, 4);

    let mut rest = ChainVerifier::resume_after(&head);
    entries[4..].iter().try_for_each(|e| rest.push(e)).unwrap();
    assert_eq!(rest.head().unwrap().hash, entries[5].hash);

    let mut wrong = ChainVerifier::resume_after(&ChainHead {
        seq: 4,
        hash: "0".repeat(64),
    });
    assert_eq!(
        wrong.push(&entries[4]),
        broken_at(5, ChainBreak::BrokenLink).map(|_| ())
    );
}
