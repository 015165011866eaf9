//! Writing an embedded store's rows in (`store/import.rs`): one
//! transaction, into empty tables, ids kept, counts compared before commit.

use futures_util::pin_mut;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

use super::PgStore;
use crate::store::StoreError;
use crate::store::tables::{Kind, TABLES, Table, Value};

impl PgStore {
    /// Runs `export`, which hands every row of every table to the function
    /// it is given, and writes them in one transaction: the tables must be
    /// empty (checked under a lock on each), the rows keep their ids, each
    /// numbering sequence goes on after the largest id copied, and the
    /// counts are compared with what `export` handed over before the
    /// commit. Rows per table. `from` names the source in errors.
    pub(in crate::store) fn import(
        &self,
        from: &str,
        export: impl FnOnce(
            &mut dyn FnMut(&'static Table, Vec<Vec<Value>>) -> Result<(), StoreError>,
        ) -> Result<(), StoreError>,
    ) -> Result<Vec<(&'static str, u64)>, StoreError> {
        let refuse = |reason: String| StoreError::Import {
            from: from.to_owned(),
            to: self.name().to_owned(),
            reason,
        };
        let mut client = self.block_on(self.client())?;
        let tx = self
            .block_on(client.transaction())
            .map_err(self.db("begin the import"))?;
        for table in TABLES {
            let held: i64 = self
                .block_on(async {
                    tx.batch_execute(&format!("LOCK TABLE {} IN EXCLUSIVE MODE", table.name))
                        .await?;
                    let sql = format!("SELECT COUNT(*) FROM {}", table.name);
                    Ok::<_, tokio_postgres::Error>(tx.query_one(&sql, &[]).await?.get(0))
                })
                .map_err(self.db("check that the target is empty"))?;
            if held > 0 {
                return Err(refuse(format!(
                    "the target already holds {held} row(s) in {}; an import goes only into an empty database (nothing was written)",
                    table.name
                )));
            }
        }
        let mut sent: Vec<(&'static str, u64)> = TABLES.iter().map(|t| (t.name, 0)).collect();
        export(&mut |table, rows| {
            let n = rows.len() as u64;
            self.block_on(copy_rows(&tx, table, rows))
                .map_err(self.db("write the rows imported"))?;
            if let Some(count) = sent.iter_mut().find(|(name, _)| *name == table.name) {
                count.1 += n;
            }
            Ok(())
        })?;
        for (table, (_, expected)) in TABLES.iter().zip(&sent) {
            let written: i64 = self
                .block_on(tx.query_one(&format!("SELECT COUNT(*) FROM {}", table.name), &[]))
                .map_err(self.db("count the rows imported"))?
                .get(0);
            if u64::try_from(written).ok() != Some(*expected) {
                return Err(refuse(format!(
                    "{} holds {written} row(s) after the copy, not the {expected} read (nothing was written)",
                    table.name
                )));
            }
            if let Some(identity) = table.identity {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{0}', '{identity}'), \
                     COALESCE(MAX({identity}), 0) + 1, false) FROM {0}",
                    table.name
                );
                self.block_on(tx.query_one(&sql, &[]))
                    .map_err(self.db("continue the numbering after the rows imported"))?;
            }
        }
        self.block_on(tx.commit())
            .map_err(self.db("commit the import"))?;
        Ok(sent)
    }
}

/// Writes `rows` of `table` with one binary `COPY`.
async fn copy_rows(
    tx: &tokio_postgres::Transaction<'_>,
    table: &Table,
    rows: Vec<Vec<Value>>,
) -> Result<(), tokio_postgres::Error> {
    let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
    let types: Vec<Type> = table.columns.iter().map(|(_, k)| type_of(*k)).collect();
    let sink = tx
        .copy_in(&format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            table.name,
            columns.join(", ")
        ))
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &types);
    pin_mut!(writer);
    for row in &rows {
        let values: Vec<&(dyn ToSql + Sync)> =
            row.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        writer.as_mut().write(&values).await?;
    }
    writer.finish().await?;
    Ok(())
}

/// The PostgreSQL type of a column of `kind`.
fn type_of(kind: Kind) -> Type {
    match kind {
        Kind::Text | Kind::OptText => Type::TEXT,
        Kind::Int8 | Kind::OptInt8 => Type::INT8,
        Kind::Int4 => Type::INT4,
        Kind::Bytes => Type::BYTEA,
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Text(t) => t.to_sql(ty, out),
            Value::Int8(i) => i.to_sql(ty, out),
            Value::Int4(i) => i.to_sql(ty, out),
            Value::Bytes(b) => b.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [Type::TEXT, Type::INT8, Type::INT4, Type::BYTEA].contains(ty)
    }

    to_sql_checked!();
}
