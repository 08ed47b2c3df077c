//! Small helpers shared by every repository module: a SQL builder that writes the right
//! placeholders for the connection it runs on, value conversion (ids as text, timestamps as
//! unix milliseconds), row decoding that never panics, and error mapping.

use std::fmt::{Display, Write as _};
use std::str::FromStr;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, AnyConnection, Arguments, Row};
use switchboard_core::Timestamp;
use switchboard_core::ports::{StoreError, StoreResult};
use uuid::{ContextV7, Uuid};

/// A value bound to a statement. The schema only uses TEXT and BIGINT columns.
#[derive(Debug, Clone)]
pub(crate) enum Val {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(Some(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(Some(v.to_string()))
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(Some(v.clone()))
    }
}
impl From<Option<String>> for Val {
    fn from(v: Option<String>) -> Self {
        Val::Text(v)
    }
}
impl From<Option<&str>> for Val {
    fn from(v: Option<&str>) -> Self {
        Val::Text(v.map(str::to_string))
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::Int(Some(v))
    }
}
impl From<Option<i64>> for Val {
    fn from(v: Option<i64>) -> Self {
        Val::Int(v)
    }
}

/// Marks a placeholder in [`Sql`] text until the statement is rendered for a backend.
const SLOT: char = '\u{0}';

/// Builds a statement and its arguments together. Placeholders become `$1, $2, ...` on
/// PostgreSQL and positional `?` on SQLite: SQLite accepts `$n` too, but resolving named
/// parameters costs a linear scan per parameter (quadratic in a multi-row insert), which
/// made a 500-row batch insert 100x slower. Each bound value has its own placeholder, so
/// the two spellings mean the same.
pub(crate) struct Sql {
    text: String,
    args: AnyArguments,
    n: usize,
    error: Option<String>,
}

impl Sql {
    /// Starts a statement.
    pub(crate) fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            args: AnyArguments::default(),
            n: 0,
            error: None,
        }
    }

    /// Appends SQL text.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder and binds its value.
    pub(crate) fn bind(&mut self, v: impl Into<Val>) -> &mut Self {
        self.n += 1;
        self.text.push(SLOT);
        let res = match v.into() {
            Val::Text(t) => self.args.add(t),
            Val::Int(i) => self.args.add(i),
        };
        if let Err(e) = res
            && self.error.is_none()
        {
            self.error = Some(e.to_string());
        }
        self
    }

    /// Appends `v1, v2, ...` as placeholders.
    pub(crate) fn list<V: Into<Val>>(&mut self, vals: impl IntoIterator<Item = V>) -> &mut Self {
        for (i, v) in vals.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self
    }

    /// Appends `(a, b, ..)` rows for a multi-row `VALUES` list.
    pub(crate) fn rows(&mut self, rows: impl IntoIterator<Item = Vec<Val>>) -> &mut Self {
        for (i, row) in rows.into_iter().enumerate() {
            self.push(if i > 0 { ", (" } else { "(" });
            self.list(row);
            self.push(")");
        }
        self
    }

    /// The statement text for a backend (`"SQLite"` or anything else for `$n`).
    fn render(&self, backend: &str) -> String {
        let mut out = String::with_capacity(self.text.len() + 4 * self.n);
        let mut k = 0;
        for ch in self.text.chars() {
            if ch != SLOT {
                out.push(ch);
            } else if backend == "SQLite" {
                out.push('?');
            } else {
                k += 1;
                let _ = write!(out, "${k}");
            }
        }
        out
    }

    fn query(
        self,
        conn: &AnyConnection,
    ) -> Result<sqlx::query::Query<'static, Any, AnyArguments>, sqlx::Error> {
        if let Some(e) = self.error {
            return Err(sqlx::Error::Protocol(format!("cannot bind argument: {e}")));
        }
        let text = self.render(conn.backend_name());
        Ok(sqlx::query_with(sqlx::AssertSqlSafe(text), self.args))
    }

    /// Runs it, returning the number of rows affected.
    pub(crate) async fn execute(self, conn: &mut AnyConnection) -> Result<u64, sqlx::Error> {
        let q = self.query(conn)?;
        Ok(q.execute(conn).await?.rows_affected())
    }

    /// Runs it and returns all rows.
    pub(crate) async fn fetch_all(
        self,
        conn: &mut AnyConnection,
    ) -> Result<Vec<AnyRow>, sqlx::Error> {
        let q = self.query(conn)?;
        q.fetch_all(conn).await
    }

    /// Runs it and returns the first row, if any.
    pub(crate) async fn fetch_optional(
        self,
        conn: &mut AnyConnection,
    ) -> Result<Option<AnyRow>, sqlx::Error> {
        let q = self.query(conn)?;
        q.fetch_optional(conn).await
    }
}

/// Inserts rows in chunks that stay under both backends' limits on bound parameters.
/// `head` is `INSERT INTO t (a, b) VALUES `.
pub(crate) async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    rows: Vec<Vec<Val>>,
) -> Result<(), sqlx::Error> {
    let width = rows.first().map_or(1, Vec::len).max(1);
    let per_chunk = (30_000 / width).clamp(1, 1000);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Val>> = rows.by_ref().take(per_chunk).collect();
        let mut sql = Sql::new(head);
        sql.rows(chunk);
        sql.execute(conn).await?;
    }
    Ok(())
}

/// Splits a list so `IN (...)` lists stay small.
pub(crate) fn chunks<T: Clone>(items: &[T]) -> impl Iterator<Item = Vec<T>> + '_ {
    items.chunks(500).map(<[T]>::to_vec)
}

// ---- errors ----

/// Maps a database error to `Backend`.
pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Whether the error is a unique-constraint violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

/// Whether the error is a foreign-key violation.
pub(crate) fn is_fk_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_foreign_key_violation())
}

/// Extension to map `sqlx` results into store results.
pub(crate) trait DbResult<T> {
    /// Any failure is a backend failure.
    fn db(self) -> StoreResult<T>;
    /// A unique violation is a `Conflict` naming `field`; others are backend failures.
    fn unique(self, field: &str) -> StoreResult<T>;
}

impl<T> DbResult<T> for Result<T, sqlx::Error> {
    fn db(self) -> StoreResult<T> {
        self.map_err(db)
    }
    fn unique(self, field: &str) -> StoreResult<T> {
        self.map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("{field} is already taken"))
            } else {
                db(e)
            }
        })
    }
}

/// A decode failure (data in the database that does not fit the domain).
pub(crate) fn corrupt(what: &str, e: impl Display) -> StoreError {
    StoreError::Backend(format!("cannot decode {what}: {e}"))
}

// ---- time and ids ----

/// A timestamp as unix milliseconds, the storage representation.
pub(crate) fn ms(t: Timestamp) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Unix milliseconds back to a timestamp.
pub(crate) fn from_ms(v: i64) -> StoreResult<Timestamp> {
    Timestamp::from_unix_timestamp_nanos(i128::from(v) * 1_000_000)
        .map_err(|e| corrupt("timestamp", e))
}

/// The timestamp as storage will return it (millisecond precision), so values handed back
/// from a write equal those read later.
pub(crate) fn trunc(t: Timestamp) -> Timestamp {
    from_ms(ms(t)).unwrap_or(t)
}

/// A new UUIDv7 for `now`. Ids made in this process are strictly increasing even within one
/// millisecond (a shared counter), so "order by id" is the order rows were written in:
/// the outbox and message timelines rely on it.
pub(crate) fn new_uuid(now: Timestamp) -> Uuid {
    static CONTEXT: Mutex<ContextV7> = Mutex::new(ContextV7::new());
    let ms = u64::try_from(ms(now)).unwrap_or(0);
    let guard = CONTEXT.lock().unwrap_or_else(|p| p.into_inner());
    let ts = uuid::Timestamp::from_unix(&*guard, ms / 1000, ((ms % 1000) * 1_000_000) as u32);
    Uuid::new_v7(ts)
}

// ---- rows ----

/// Typed, non-panicking column access.
pub(crate) trait RowExt {
    fn text(&self, col: &str) -> StoreResult<String>;
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>>;
    fn int(&self, col: &str) -> StoreResult<i64>;
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>>;
    fn ts(&self, col: &str) -> StoreResult<Timestamp> {
        from_ms(self.int(col)?)
    }
    fn opt_ts(&self, col: &str) -> StoreResult<Option<Timestamp>> {
        self.opt_int(col)?.map(from_ms).transpose()
    }
    /// Parses a column with `FromStr` (ids, enums).
    fn parse<T>(&self, col: &str) -> StoreResult<T>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.text(col)?.parse().map_err(|e| corrupt(col, e))
    }
    fn opt_parse<T>(&self, col: &str) -> StoreResult<Option<T>>
    where
        T: FromStr,
        T::Err: Display,
    {
        self.opt_text(col)?
            .map(|s| s.parse().map_err(|e| corrupt(col, e)))
            .transpose()
    }
    /// Decodes a JSON column.
    fn json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<T> {
        serde_json::from_str(&self.text(col)?).map_err(|e| corrupt(col, e))
    }
    fn opt_json<T: DeserializeOwned>(&self, col: &str) -> StoreResult<Option<T>> {
        self.opt_text(col)?
            .map(|s| serde_json::from_str(&s).map_err(|e| corrupt(col, e)))
            .transpose()
    }
}

impl RowExt for AnyRow {
    fn text(&self, col: &str) -> StoreResult<String> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn opt_text(&self, col: &str) -> StoreResult<Option<String>> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn int(&self, col: &str) -> StoreResult<i64> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
    fn opt_int(&self, col: &str) -> StoreResult<Option<i64>> {
        self.try_get(col).map_err(|e| corrupt(col, e))
    }
}

/// JSON text of a value we serialize ourselves.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Backend(format!("cannot encode JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_made_in_the_same_millisecond_still_increase() {
        let now = Timestamp::from_unix_timestamp(1_700_000_000).unwrap();
        let ids: Vec<Uuid> = (0..1000).map(|_| new_uuid(now)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind("x").push(" AND b IN (").list([1i64, 2]).push(")");
        assert_eq!(
            sql.render("PostgreSQL"),
            "SELECT 1 WHERE a = $1 AND b IN ($2, $3)"
        );
        assert_eq!(sql.render("SQLite"), "SELECT 1 WHERE a = ? AND b IN (?, ?)");
    }
}
