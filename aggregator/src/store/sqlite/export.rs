//! Reading every row out, for an import into PostgreSQL
//! (`store/import.rs`).

use rusqlite::types::ValueRef;

use super::SqliteStore;
use crate::store::StoreError;
use crate::store::tables::{BATCH_ROWS, Kind, TABLES, Table, Value};

impl SqliteStore {
    /// Hands every row of every table ([`TABLES`], in order, each in the
    /// order of its first column) to `copy`, [`BATCH_ROWS`] at a time, in
    /// one read transaction: what a running aggregator writes meanwhile is
    /// not half seen. Stops at the first error, of either side.
    pub(in crate::store) fn export(
        &self,
        mut copy: impl FnMut(&'static Table, Vec<Vec<Value>>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(self.db("begin the export"))?;
        for table in TABLES {
            let columns: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
            let sql = format!(
                "SELECT {} FROM {} ORDER BY {}",
                columns.join(", "),
                table.name,
                columns[0]
            );
            let mut statement = tx
                .prepare(&sql)
                .map_err(self.db("read a table to export"))?;
            let mut rows = statement
                .query([])
                .map_err(self.db("read a table to export"))?;
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            while let Some(row) = rows.next().map_err(self.db("read a row to export"))? {
                let mut values = Vec::with_capacity(table.columns.len());
                for (i, (column, kind)) in table.columns.iter().enumerate() {
                    let raw = row.get_ref(i).map_err(self.db("read a value to export"))?;
                    values.push(value(raw, *kind).ok_or_else(|| StoreError::Damaged {
                        path: self.path.clone(),
                        reason: format!(
                            "{}.{column} holds a value of type {:?}, not {kind:?}",
                            table.name,
                            raw.data_type()
                        ),
                    })?);
                }
                batch.push(values);
                if batch.len() == BATCH_ROWS {
                    copy(
                        table,
                        std::mem::replace(&mut batch, Vec::with_capacity(BATCH_ROWS)),
                    )?;
                }
            }
            if !batch.is_empty() {
                copy(table, batch)?;
            }
        }
        // Nothing was written: ending the transaction only releases it.
        tx.rollback().map_err(self.db("end the export"))
    }
}

/// `raw` as a value of `kind`; `None` when it is not one.
fn value(raw: ValueRef<'_>, kind: Kind) -> Option<Value> {
    Some(match (kind, raw) {
        (Kind::Text | Kind::OptText, ValueRef::Text(t)) => {
            Value::Text(Some(std::str::from_utf8(t).ok()?.to_owned()))
        }
        (Kind::OptText, ValueRef::Null) => Value::Text(None),
        (Kind::Int8 | Kind::OptInt8, ValueRef::Integer(i)) => Value::Int8(Some(i)),
        (Kind::OptInt8, ValueRef::Null) => Value::Int8(None),
        (Kind::Int4, ValueRef::Integer(i)) => Value::Int4(i32::try_from(i).ok()?),
        (Kind::Bytes, ValueRef::Blob(b)) => Value::Bytes(b.to_vec()),
        _ => return None,
    })
}
