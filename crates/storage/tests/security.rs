//! The security part of the storage contract (audit log, API tokens, login throttling,
//! session activity, role changes), on SQLite and on PostgreSQL (when `TEST_DATABASE_URL` is
//! set; a fresh database per test, dropped afterwards).
//!
//! Run: `TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo test -p switchboard-storage --test security`

use std::time::Duration;

use serde_json::json;
use switchboard_core::ports::{Session, Store, StoreError};
use switchboard_core::security::{
    NewApiToken, NewAudit, SecurityStore, ThrottlePolicy, TokenScope,
};
use switchboard_core::{Email, NewUser, Role, Tenant, Timestamp, User};
use switchboard_crypto::audit::{AuditEntry, ChainBreak, verify_chain};
use switchboard_storage::{Backend, SqlStore};

// ---------------------------------------------------------------- harness

/// Runs each test body against both backends, with a URL for a second, raw connection
/// (to play the attacker who edits rows behind the application's back).
macro_rules! security_contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let path = dir.path().join("switchboard.db");
                    let path = path.to_str().expect("utf-8 path").to_string();
                    let store = switchboard_storage::open(&path, super::test_master()).await.expect("open sqlite");
                    super::$name(store.clone(), format!("sqlite://{path}")).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = super::PgDatabase::create().await else { return };
                    let store = switchboard_storage::open(&db.url, super::test_master()).await.expect("open postgres");
                    let run = tokio::spawn(super::$name(store.clone(), db.url.clone())).await;
                    store.close().await;
                    db.drop_database().await;
                    if let Err(e) = run {
                        std::panic::resume_unwind(e.into_panic());
                    }
                }
            )*
        }
    };
}

#[macro_use]
mod common;
use common::{PgDatabase, test_master};

/// A raw connection beside the store's pool.
async fn raw(url: &str) -> sqlx::AnyConnection {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    sqlx::AnyConnection::connect(url)
        .await
        .expect("raw connection")
}

async fn exec(conn: &mut sqlx::AnyConnection, sql: &str) -> Result<u64, sqlx::Error> {
    sqlx::Executor::execute(conn, sqlx::AssertSqlSafe(sql.to_string()))
        .await
        .map(|r| r.rows_affected())
}

fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_timestamp(1_800_000_000 + secs).expect("valid time")
}

async fn tenant(s: &SqlStore, slug: &str) -> Tenant {
    s.create_tenant(slug, slug, t(0)).await.expect("tenant")
}

async fn user(s: &SqlStore, tenant: &Tenant, email: &str, role: Role) -> User {
    s.create_user(
        NewUser {
            tenant_id: tenant.id,
            email: Email::parse(email).expect("email"),
            name: email.into(),
            role,
            password_hash: "x".into(),
        },
        t(0),
    )
    .await
    .expect("user")
}

fn entry(at: i64, action: &str, subject: &str) -> NewAudit {
    NewAudit {
        at: t(at) + time::Duration::microseconds(123_456),
        actor: "user:0190".into(),
        action: action.into(),
        subject: subject.into(),
        details: json!({"z": 1, "a": {"y": "b", "x": [3, 1]}}),
    }
}

async fn chain(s: &SqlStore, tenant: &Tenant) -> Vec<AuditEntry> {
    s.audit_entries(tenant.id, 0, 10_000)
        .await
        .expect("entries")
        .into_iter()
        .map(|r| AuditEntry {
            seq: r.seq as u64,
            at: r.at,
            actor: r.actor,
            action: r.action,
            subject: r.subject,
            details: r.details,
            prev_hash: r.prev_hash,
            hash: r.hash,
        })
        .collect()
}

// ---------------------------------------------------------------- audit log

async fn audit_entries_chain_per_tenant_and_read_back_exactly(s: SqlStore, _url: String) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    for i in 0..3 {
        s.append_audit(a.id, entry(i, "contact.view", &format!("contact:{i}")))
            .await
            .expect("append a");
    }
    let first_b = s
        .append_audit(b.id, entry(9, "auth.login", "user:b"))
        .await
        .expect("append b");
    // Each tenant has its own chain, starting at 1 from the genesis hash.
    assert_eq!(first_b.seq, 1);
    assert_eq!(first_b.prev_hash, "0".repeat(64));
    let entries = chain(&s, &a).await;
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(entries[1].prev_hash, entries[0].hash);
    // Microseconds and nested details survive the round trip, so hashes recompute.
    assert_eq!(entries[0].at.microsecond(), 123_456);
    assert_eq!(
        entries[0].details,
        json!({"a": {"x": [3, 1], "y": "b"}, "z": 1})
    );
    verify_chain(&entries).expect("intact chain");
    let head = s.audit_head(a.id).await.expect("head").expect("some head");
    assert_eq!(head, (3, entries[2].hash.clone()));
    let mut tenants = s.audit_tenants().await.expect("tenants");
    tenants.sort();
    let mut want = vec![a.id, b.id];
    want.sort();
    assert_eq!(tenants, want);
    // Paging.
    let page = s.audit_entries(a.id, 1, 1).await.expect("page");
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].seq, 2);
    // Details must be an object; nothing is written otherwise.
    let mut bad = entry(5, "x", "y");
    bad.details = json!([1]);
    assert!(matches!(
        s.append_audit(a.id, bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(chain(&s, &a).await.len(), 3);
}

async fn concurrent_appends_queue_instead_of_forking_the_chain(s: SqlStore, _url: String) {
    let a = tenant(&s, "a").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let s = s.clone();
        let id = a.id;
        tasks.push(tokio::spawn(async move {
            s.append_audit(id, entry(i, "contact.view", &format!("contact:{i}")))
                .await
        }));
    }
    for task in tasks {
        task.await.expect("task").expect("append");
    }
    let entries = chain(&s, &a).await;
    assert_eq!(entries.len(), 40);
    assert_eq!(
        entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>()
    );
    verify_chain(&entries).expect("one unbroken chain");
}

async fn the_database_refuses_to_update_or_delete_audit_rows(s: SqlStore, url: String) {
    let a = tenant(&s, "a").await;
    s.append_audit(a.id, entry(1, "auth.login", "user:1"))
        .await
        .expect("append");
    let mut conn = raw(&url).await;
    let update = exec(&mut conn, "UPDATE audit_log SET subject = 'user:2'").await;
    assert!(
        update.unwrap_err().to_string().contains("append-only"),
        "update must be refused"
    );
    let delete = exec(&mut conn, "DELETE FROM audit_log").await;
    assert!(delete.unwrap_err().to_string().contains("append-only"));
    verify_chain(&chain(&s, &a).await).expect("still intact");
}

async fn an_entry_edited_behind_the_applications_back_breaks_the_chain_there(
    s: SqlStore,
    url: String,
) {
    let a = tenant(&s, "a").await;
    for i in 0..5 {
        s.append_audit(a.id, entry(i, "contact.view", &format!("contact:{i}")))
            .await
            .expect("append");
    }
    // Arrange: an attacker with database rights switches the guard off and edits entry 3.
    let mut conn = raw(&url).await;
    let disable = match s.backend() {
        Backend::Sqlite => "DROP TRIGGER audit_log_no_update",
        Backend::Postgres => "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    };
    exec(&mut conn, disable).await.expect("disable the guard");
    let edited = exec(
        &mut conn,
        "UPDATE audit_log SET subject = 'contact:someone-else' WHERE seq = 3",
    )
    .await
    .expect("edit");
    assert_eq!(edited, 1);
    // Act
    let err = verify_chain(&chain(&s, &a).await).unwrap_err();
    // Assert: the first broken entry is named.
    assert_eq!(err.seq, 3);
    assert_eq!(err.reason, ChainBreak::ContentEdited);
}

// ---------------------------------------------------------------- API tokens

async fn api_tokens_are_found_by_hash_until_revoked_and_stay_in_their_tenant(
    s: SqlStore,
    _url: String,
) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    let ann = user(&s, &a, "ann@a.test", Role::Admin).await;
    let bob = user(&s, &b, "bob@b.test", Role::Admin).await;
    let new = |tenant: &Tenant, user: &User, hash: &str| NewApiToken {
        tenant_id: tenant.id,
        user_id: user.id,
        name: "CRM sync".into(),
        scope: TokenScope::Read,
        token_hash: hash.into(),
    };
    let tok = s
        .create_api_token(new(&a, &ann, "h1"), t(1))
        .await
        .expect("token");
    // A user of another tenant cannot own a tenant's token.
    assert!(matches!(
        s.create_api_token(new(&a, &bob, "h2"), t(1)).await,
        Err(StoreError::NotFound("user"))
    ));
    assert_eq!(s.api_tokens(a.id).await.expect("list"), vec![tok.clone()]);
    assert!(s.api_tokens(b.id).await.expect("list").is_empty());
    // Found by hash; the first use is recorded, a use within the touch interval is not.
    let (found, owner) = s
        .api_token_by_hash("h1", t(10), t(0))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!((found.id, owner.id), (tok.id, ann.id));
    assert_eq!(found.last_used_at, Some(t(10)));
    let (again, _) = s
        .api_token_by_hash("h1", t(20), t(5))
        .await
        .expect("lookup")
        .expect("found");
    assert_eq!(again.last_used_at, Some(t(10)));
    assert!(
        s.api_token_by_hash("nope", t(20), t(5))
            .await
            .expect("lookup")
            .is_none()
    );
    // Another tenant cannot revoke it; its own tenant can, and then it is gone.
    assert!(matches!(
        s.revoke_api_token(b.id, tok.id, t(30)).await,
        Err(StoreError::NotFound(_))
    ));
    let revoked = s
        .revoke_api_token(a.id, tok.id, t(30))
        .await
        .expect("revoke");
    assert_eq!(revoked.revoked_at, Some(t(30)));
    assert!(
        s.api_token_by_hash("h1", t(40), t(40))
            .await
            .expect("lookup")
            .is_none()
    );
    // Revoking twice keeps the first time.
    let twice = s
        .revoke_api_token(a.id, tok.id, t(50))
        .await
        .expect("revoke");
    assert_eq!(twice.revoked_at, Some(t(30)));
}

// ---------------------------------------------------------------- login throttling

async fn repeated_failures_lock_a_key_until_the_lock_ends_or_is_cleared(s: SqlStore, _url: String) {
    let policy = ThrottlePolicy {
        max_failures: 3,
        window: Duration::from_secs(60),
        lock_for: Duration::from_secs(300),
    };
    let key = "account:1";
    assert_eq!(
        s.record_login_failure(key, t(0), policy).await.unwrap(),
        None
    );
    assert_eq!(
        s.record_login_failure(key, t(1), policy).await.unwrap(),
        None
    );
    assert_eq!(s.login_locked_until(key, t(1)).await.unwrap(), None);
    // The third failure within the window locks the key for `lock_for`.
    assert_eq!(
        s.record_login_failure(key, t(2), policy).await.unwrap(),
        Some(t(302))
    );
    assert_eq!(s.login_locked_until(key, t(3)).await.unwrap(), Some(t(302)));
    // Failures while locked do not extend the lock.
    assert_eq!(
        s.record_login_failure(key, t(100), policy).await.unwrap(),
        None
    );
    assert_eq!(
        s.login_locked_until(key, t(100)).await.unwrap(),
        Some(t(302))
    );
    // The lock ends by itself, and counting starts over.
    assert_eq!(s.login_locked_until(key, t(302)).await.unwrap(), None);
    assert_eq!(
        s.record_login_failure(key, t(303), policy).await.unwrap(),
        None
    );
    assert_eq!(
        s.record_login_failure(key, t(304), policy).await.unwrap(),
        None
    );
    // Failures spread wider than the window never lock.
    assert_eq!(
        s.record_login_failure(key, t(400), policy).await.unwrap(),
        None
    );
    assert_eq!(s.login_locked_until(key, t(400)).await.unwrap(), None);
    // Other keys are independent; clearing forgets a lock.
    for i in 0..3 {
        s.record_login_failure("ip:x", t(500 + i), policy)
            .await
            .unwrap();
    }
    assert!(
        s.login_locked_until("ip:x", t(503))
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(s.login_locked_until(key, t(503)).await.unwrap(), None);
    s.clear_login_failures("ip:x").await.unwrap();
    assert_eq!(s.login_locked_until("ip:x", t(503)).await.unwrap(), None);
}

// ---------------------------------------------------------------- sessions and roles

async fn a_session_ends_when_idle_or_past_its_lifetime(s: SqlStore, _url: String) {
    let a = tenant(&s, "a").await;
    let ann = user(&s, &a, "ann@a.test", Role::Agent).await;
    let session = Session {
        token_hash: "s1".into(),
        user_id: ann.id,
        tenant_id: a.id,
        csrf_token: "c".into(),
        expires_at: t(3600),
    };
    s.create_session(&session).await.expect("session");
    // Never touched: counts as idle (sessions are touched at login).
    assert!(
        s.active_session("s1", t(1), t(0), t(0))
            .await
            .unwrap()
            .is_none()
    );
    s.touch_session("s1", t(10)).await.expect("touch");
    // Used at 10: alive while the idle cutoff is before 10.
    let (found, who) = s
        .active_session("s1", t(100), t(5), t(0))
        .await
        .unwrap()
        .expect("alive");
    assert_eq!((found.token_hash.as_str(), who.id), ("s1", ann.id));
    // Idle since before the cutoff: gone.
    assert!(
        s.active_session("s1", t(100), t(10), t(0))
            .await
            .unwrap()
            .is_none()
    );
    // A use older than `touch_before` is recorded, which keeps the session alive.
    s.active_session("s1", t(200), t(5), t(150))
        .await
        .unwrap()
        .expect("alive");
    assert!(
        s.active_session("s1", t(210), t(199), t(0))
            .await
            .unwrap()
            .is_some()
    );
    // Past the absolute lifetime it is gone however active.
    s.touch_session("s1", t(3599)).await.expect("touch");
    assert!(
        s.active_session("s1", t(3600), t(0), t(0))
            .await
            .unwrap()
            .is_none()
    );
}

async fn a_role_change_stays_in_the_tenant(s: SqlStore, _url: String) {
    let a = tenant(&s, "a").await;
    let b = tenant(&s, "b").await;
    let ann = user(&s, &a, "ann@a.test", Role::Agent).await;
    assert!(matches!(
        s.set_role(b.id, ann.id, Role::Admin).await,
        Err(StoreError::NotFound("user"))
    ));
    let (before, after) = s
        .set_role(a.id, ann.id, Role::Supervisor)
        .await
        .expect("set");
    assert_eq!((before.role, after.role), (Role::Agent, Role::Supervisor));
    let stored = s.user(a.id, ann.id).await.unwrap().expect("user");
    assert_eq!(stored.role, Role::Supervisor);
}

security_contract!(
    audit_entries_chain_per_tenant_and_read_back_exactly,
    concurrent_appends_queue_instead_of_forking_the_chain,
    the_database_refuses_to_update_or_delete_audit_rows,
    an_entry_edited_behind_the_applications_back_breaks_the_chain_there,
    api_tokens_are_found_by_hash_until_revoked_and_stay_in_their_tenant,
    repeated_failures_lock_a_key_until_the_lock_ends_or_is_cleared,
    a_session_ends_when_idle_or_past_its_lifetime,
    a_role_change_stays_in_the_tenant,
);
