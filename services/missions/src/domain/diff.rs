//! Where two copies of a board differ, compared as the JSON both stores hold: what `compare`
//! lists and what a DUAL divergence records.

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::board::Board;

/// One place where the FILE and SQL copies of a board differ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub user_id: Uuid,
    /// The JSON path in the board, e.g. `slots[0].petalsRemaining`; empty for the whole board
    /// (present on one side only).
    pub path: String,
    /// None: absent on this side.
    pub file_value: Option<Value>,
    pub sql_value: Option<Value>,
}

/// Every difference between two copies of a user's board, compared as the JSON both stores
/// hold: objects field by field, arrays element by element. A board is plain data with string
/// keys, so turning it into JSON does not fail; the error is passed on rather than assumed away.
pub fn diff_boards(
    user_id: Uuid,
    file: Option<&Board>,
    sql: Option<&Board>,
) -> Result<Vec<Difference>, serde_json::Error> {
    let file = file.map(serde_json::to_value).transpose()?;
    let sql = sql.map(serde_json::to_value).transpose()?;
    let mut differences = Vec::new();
    diff_values(
        user_id,
        String::new(),
        file.as_ref(),
        sql.as_ref(),
        &mut differences,
    );
    Ok(differences)
}

fn diff_values(
    user_id: Uuid,
    path: String,
    file: Option<&Value>,
    sql: Option<&Value>,
    differences: &mut Vec<Difference>,
) {
    match (file, sql) {
        (Some(Value::Object(file)), Some(Value::Object(sql))) => {
            let keys: BTreeSet<&String> = file.keys().chain(sql.keys()).collect();
            for key in keys {
                let path = field_path(&path, key);
                diff_values(user_id, path, file.get(key), sql.get(key), differences);
            }
        }
        (Some(Value::Array(file)), Some(Value::Array(sql))) => {
            for index in 0..file.len().max(sql.len()) {
                let path = format!("{path}[{index}]");
                diff_values(user_id, path, file.get(index), sql.get(index), differences);
            }
        }
        (file, sql) if file != sql => differences.push(Difference {
            user_id,
            path,
            file_value: file.cloned(),
            sql_value: sql.cloned(),
        }),
        _ => {}
    }
}

fn field_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_owned(),
        (false, true) => format!("{parent}.{key}"),
        // Keys of free-form payloads may hold anything; quote them so the path stays readable.
        (_, false) => format!("{parent}[{}]", Value::String(key.to_owned())),
    }
}
