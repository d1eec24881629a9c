//! A poll's new rows — stories, items, their tags, editions and GUIDs — held back and written
//! together: one multi-row `INSERT` per table instead of one statement per row, the tables in
//! the order their foreign keys need (stories, items, then what refers to items). Rows are new
//! (their ids reserved beforehand), so nothing but order matters; whoever holds them writes
//! them before anything that must see them (a query, an update of those rows). How a table's
//! rows are inserted together is the database's ([`Conn::insert_later`]).

use super::sql::{Conn, Insert, Value};
use super::StoreError;

/// The tables, in the order their rows are written.
#[derive(Debug, Clone, Copy)]
pub(super) enum Table {
    Stories,
    Items,
    Tags,
    Alternates,
    Guids,
}

impl Table {
    const IN_ORDER: [Table; 5] = [Table::Stories, Table::Items, Table::Tags, Table::Alternates, Table::Guids];

    /// Its rows' insert.
    fn insert(self) -> &'static Insert {
        const BIGINT: &str = "BIGINT";
        const TEXT: &str = "TEXT";
        match self {
            Table::Stories => &Insert { table: "stories", columns: &[("id", BIGINT)], tail: "" },
            Table::Items => &Insert {
                table: "items",
                columns: &[
                    ("id", BIGINT),
                    ("source_id", BIGINT),
                    ("canonical_link", TEXT),
                    ("link", TEXT),
                    ("title", TEXT),
                    ("author", TEXT),
                    ("published", BIGINT),
                    ("updated", BIGINT),
                    ("categories", TEXT),
                    ("summary", TEXT),
                    ("content_html", TEXT),
                    ("content_text", TEXT),
                    ("extracted_by", TEXT),
                    ("first_seen", BIGINT),
                    ("fingerprint", BIGINT),
                    ("bands", "BYTEA"),
                    ("duplicate_of", BIGINT),
                    ("language", TEXT),
                    ("hidden", "INTEGER"),
                    ("story_id", BIGINT),
                ],
                tail: "",
            },
            Table::Tags => &Insert {
                table: "item_tags",
                columns: &[("tag", TEXT), ("item_id", BIGINT)],
                tail: " ON CONFLICT DO NOTHING",
            },
            Table::Alternates => &Insert {
                table: "item_alternates",
                columns: &[("item_id", BIGINT), ("link", TEXT), ("language", TEXT)],
                tail: " ON CONFLICT DO NOTHING",
            },
            Table::Guids => &Insert {
                table: "item_guids",
                columns: &[("source_id", BIGINT), ("guid", TEXT), ("item_id", BIGINT), ("feed_hash", TEXT)],
                tail: "",
            },
        }
    }
}

/// Rows waiting to be written, by table.
#[derive(Debug, Default)]
pub(super) struct PendingRows {
    values: [Vec<Value>; 5],
}

impl PendingRows {
    /// Holds back a row of `table` (its values in the order of [`Table::insert`]'s columns).
    pub fn add(&mut self, table: Table, row: &[Value]) {
        debug_assert_eq!(row.len(), table.insert().columns.len(), "{table:?}");
        self.values[table as usize].extend_from_slice(row);
    }

    /// How many item rows are held back.
    pub fn items(&self) -> usize {
        self.values[Table::Items as usize].len() / Table::Items.insert().columns.len()
    }

    /// Hands every row held back to `conn` ([`Conn::insert_later`]), table by table.
    pub fn write(&mut self, conn: &mut dyn Conn) -> Result<(), StoreError> {
        for table in Table::IN_ORDER {
            let values = std::mem::take(&mut self.values[table as usize]);
            if !values.is_empty() {
                conn.insert_later(table.insert(), values)?;
            }
        }
        Ok(())
    }
}
