//! Statement parameters that either backend binds ([`SqlValue`]), and the row statements
//! whose SQL is the same but for the table and its columns ([`RowSql`]): the import's inserts
//! and the edits' single-column updates are written once as column lists, and each backend
//! turns a list into its statement.

/// One statement parameter. SQLite binds it as its own type (a boolean as 0 or 1);
/// PostgreSQL binds it to the column's type (`Real` to `real` as f32, else f64).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SqlValue<'a> {
    Int(i64),
    OptInt(Option<i64>),
    Real(f64),
    Bool(bool),
    Text(&'a str),
    OptText(Option<&'a str>),
    Blob(&'a [u8]),
}

/// The row statements built from a table's name and a column list. `table` and the column
/// names are constants of this crate, never input; every value is a bound parameter.
// One line per statement (rustfmt would fold the longer ones), so the list reads as a table.
#[rustfmt::skip]
pub trait RowSql {
    /// `INSERT` one row of `columns` = `values` (same length) into `table`, writing nothing
    /// when it would break a uniqueness constraint; returns whether the row was inserted.
    /// PostgreSQL with pgvector also fills an episode's `embedding_v` from its `embedding`.
    fn insert_row(&mut self, table: &'static str, columns: &[&'static str], values: &[SqlValue<'_>]) -> anyhow::Result<bool>;
    /// `UPDATE table SET column = value, … WHERE user_id = user AND id = id`.
    fn set_columns(&mut self, table: &'static str, user: &str, id: i64, set: &[(&'static str, SqlValue<'_>)]) -> anyhow::Result<()>;
}

/// The SQL of [`RowSql::insert_row`] with parameters numbered by `param` (`?1` or `$1`):
/// `INSERT {or} INTO table (columns) VALUES (params) {conflict}`, where `extra` adds columns
/// whose value expressions the caller writes.
pub fn insert_sql(
    verb: &str,
    table: &str,
    columns: &[&str],
    extra: &[(&str, String)],
    param: impl Fn(usize) -> String,
    conflict: &str,
) -> String {
    let names: Vec<&str> = columns
        .iter()
        .copied()
        .chain(extra.iter().map(|(c, _)| *c))
        .collect();
    let values: Vec<String> = (1..=columns.len())
        .map(&param)
        .chain(extra.iter().map(|(_, v)| v.clone()))
        .collect();
    format!(
        "{verb} INTO {table} ({}) VALUES ({}){conflict}",
        names.join(", "),
        values.join(", ")
    )
}

/// The SQL of [`RowSql::set_columns`], parameters numbered by `param`: `?1`/`$1` is the user,
/// `?2`/`$2` the id, then the values in order.
pub fn update_sql(table: &str, columns: &[&str], param: impl Fn(usize) -> String) -> String {
    let set: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", param(i + 3)))
        .collect();
    format!(
        "UPDATE {table} SET {} WHERE user_id = {} AND id = {}",
        set.join(", "),
        param(1),
        param(2)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_every_column_and_number_every_parameter() {
        assert_eq!(
            insert_sql(
                "INSERT OR IGNORE",
                "t",
                &["a", "b"],
                &[],
                |i| format!("?{i}"),
                ""
            ),
            "INSERT OR IGNORE INTO t (a, b) VALUES (?1, ?2)"
        );
        assert_eq!(
            insert_sql(
                "INSERT",
                "t",
                &["a"],
                &[("v", "CAST($2::text AS vector)".into())],
                |i| format!("${i}"),
                " ON CONFLICT DO NOTHING"
            ),
            "INSERT INTO t (a, v) VALUES ($1, CAST($2::text AS vector)) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            update_sql("rules", &["kind", "topic"], |i| format!("${i}")),
            "UPDATE rules SET kind = $3, topic = $4 WHERE user_id = $1 AND id = $2"
        );
    }
}
