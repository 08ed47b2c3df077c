//! The harness the storage test files share: the test master key and a throwaway
//! PostgreSQL database per test (created from `TEST_DATABASE_URL`, dropped afterwards).
//! Each test file keeps its own small macro that runs a body on SQLite and on PostgreSQL.
//! [`world`] is the smallest tenant the desk and routing tests start from.

use switchboard_core::ports::Store;
use switchboard_core::{
    Channel, ChannelKind, ChannelSettings, Email, NewChannel, NewUser, Role, Tenant, Timestamp,
    User,
};
use switchboard_storage::SqlStore;

/// The master key of every storage test (tests pass an explicit key; none is made).
pub fn test_master() -> switchboard_storage::MasterKeyring {
    switchboard_storage::MasterKeyring::new(
        switchboard_storage::MasterKey::from_bytes(&[7u8; 32]).expect("32 bytes"),
    )
}

/// A throwaway PostgreSQL database.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// The URL of the new database.
    pub url: String,
}

impl PgDatabase {
    /// `None` (after printing why) when `TEST_DATABASE_URL` is unset.
    pub async fn create() -> Option<PgDatabase> {
        let Ok(admin_url) = std::env::var("TEST_DATABASE_URL") else {
            // Written past the test harness's output capture, once, so it is always seen.
            static SAID: std::sync::Once = std::sync::Once::new();
            SAID.call_once(|| {
                use std::io::Write as _;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED: PostgreSQL storage tests (set TEST_DATABASE_URL)"
                );
            });
            return None;
        };
        let name = format!("sb_{}", uuid::Uuid::new_v4().simple());
        let base = admin_url.split('?').next().unwrap_or(&admin_url);
        let (server, _) = base
            .rsplit_once('/')
            .expect("TEST_DATABASE_URL needs a database path");
        let url = format!("{server}/{name}");
        let mut conn = connect_admin(&admin_url).await;
        sqlx::Executor::execute(
            &mut conn,
            sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
        )
        .await
        .expect("CREATE DATABASE");
        Some(PgDatabase {
            admin_url,
            name,
            url,
        })
    }

    /// Drops the database (forcing out any connection left).
    pub async fn drop_database(self) {
        let mut conn = connect_admin(&self.admin_url).await;
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(sql))
            .await
            .expect("DROP DATABASE");
    }
}

async fn connect_admin(url: &str) -> sqlx::PgConnection {
    use sqlx::Connection;
    sqlx::PgConnection::connect(url).await.unwrap_or_else(|e| {
        panic!("TEST_DATABASE_URL is set but PostgreSQL is unreachable at {url}: {e}")
    })
}

/// Runs each named test body (an `async fn(SqlStore)` of the including file) on SQLite and,
/// when `TEST_DATABASE_URL` is set, on a throwaway PostgreSQL database.
#[allow(unused_macros)] // each test file uses this or its own variant
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().expect("temp dir");
                    let path = dir.path().join("switchboard.db");
                    let store = switchboard_storage::open(path.to_str().expect("utf-8 path"), super::test_master())
                        .await
                        .expect("open sqlite");
                    super::$name(store.clone()).await;
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
                    let run = tokio::spawn(super::$name(store.clone())).await;
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

/// `secs` seconds after the fixed start of the tests' clock.
#[allow(dead_code)] // not every test file uses the shared fixtures
pub fn t(secs: i64) -> Timestamp {
    Timestamp::from_unix_timestamp(1_700_000_000 + secs).expect("valid time")
}

/// A tenant with one web chat channel and one agent.
#[allow(dead_code)] // not every test file uses the shared fixtures
pub struct World {
    /// The tenant (slug as given).
    pub tenant: Tenant,
    /// Its web chat channel "Chat".
    pub channel: Channel,
    /// Its agent Ann, `ann@<slug>.test`.
    pub agent: User,
}

/// Creates a [`World`] for the tenant `slug` at `t(0)`.
#[allow(dead_code)] // not every test file uses the shared fixtures
pub async fn world(s: &SqlStore, slug: &str) -> World {
    let tenant = s
        .create_tenant(slug, &format!("{slug} Inc"), t(0))
        .await
        .expect("tenant");
    let channel = s
        .create_channel(
            NewChannel {
                tenant_id: tenant.id,
                kind: ChannelKind::Webchat,
                name: "Chat".into(),
                credentials: serde_json::json!({}),
                settings: ChannelSettings::default(),
            },
            t(0),
        )
        .await
        .expect("channel");
    let agent = s
        .create_user(
            NewUser {
                tenant_id: tenant.id,
                email: Email::parse(&format!("ann@{slug}.test")).expect("email"),
                name: "Ann".into(),
                role: Role::Agent,
                password_hash: "$argon2id$hash".into(),
            },
            t(0),
        )
        .await
        .expect("user");
    World {
        tenant,
        channel,
        agent,
    }
}
