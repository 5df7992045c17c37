//! `agentry export` and `agentry import`: every tenant of a database as a
//! stream of JSON lines, so that data moves between backends (SQLite to
//! PostgreSQL, or back) without holding a tenant in memory.
//!
//! The stream starts with a header, ends with a trailer that counts the
//! records, and holds one object per line in between, in the order an import
//! needs them (see [`Section`]). An import merges: objects whose id exists
//! are kept as they are, so an interrupted import can simply be run again.

use crate::domain::apps::AppRegistration;
use crate::domain::copilot::{Policy, TenantSetting};
use crate::domain::users::LocalUser;
use crate::store::{ImportReport, Section, Store, StoreError, TenantState};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::io::{BufRead, Write};

/// The name in the header line.
pub const FORMAT: &str = "agentry-export";
/// The version of the line format this build writes and reads.
pub const VERSION: u32 = 1;
/// Objects read from the database at a time.
const CHUNK: usize = 1000;
/// Objects written to the database at a time (one transaction each): large
/// enough that commits and per-statement overheads stop counting.
const IMPORT_CHUNK: usize = 10_000;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Record {
    Header {
        format: String,
        version: u32,
    },
    Collection {
        tenant: String,
        data: Map<String, Value>,
    },
    Manifest {
        tenant: String,
        data: Map<String, Value>,
    },
    Instance {
        tenant: String,
        data: Map<String, Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        manifest_id: Option<String>,
    },
    Member {
        tenant: String,
        collection_id: String,
        instance_id: String,
    },
    Registration {
        tenant: String,
        data: Map<String, Value>,
    },
    Package {
        tenant: String,
        data: Map<String, Value>,
    },
    Policy {
        tenant: String,
        data: Policy,
    },
    Setting {
        tenant: String,
        name: String,
        data: Map<String, Value>,
    },
    App {
        tenant: String,
        data: AppRegistration,
    },
    /// A local user: its name, object id, roles and password hash (a PHC
    /// string; the password itself is never known). Its lockout stays behind.
    User {
        tenant: String,
        data: LocalUser,
    },
    Trailer {
        records: u64,
    },
}

impl Record {
    fn tenant(&self) -> Option<&str> {
        match self {
            Record::Collection { tenant, .. }
            | Record::Manifest { tenant, .. }
            | Record::Instance { tenant, .. }
            | Record::Member { tenant, .. }
            | Record::Registration { tenant, .. }
            | Record::Package { tenant, .. }
            | Record::Policy { tenant, .. }
            | Record::Setting { tenant, .. }
            | Record::App { tenant, .. }
            | Record::User { tenant, .. } => Some(tenant),
            Record::Header { .. } | Record::Trailer { .. } => None,
        }
    }
}

/// Why an export or an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot {action}: {source}")]
    Io {
        action: &'static str,
        source: std::io::Error,
    },
    #[error("line {line}: {reason}")]
    Malformed { line: u64, reason: String },
    #[error(
        "the stream ends without its trailer after {records} records: the export was cut short \
         (what was read is imported; run the import again with a whole file)"
    )]
    Truncated { records: u64 },
}

/// What a transfer did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub tenants: u64,
    /// Object records (header and trailer not counted).
    pub records: u64,
    /// Objects written (import only).
    pub created: u64,
    /// Objects left alone because their id existed (import only).
    pub kept: u64,
}

/// Called after each chunk with the records done so far and, for imports
/// from a file, the bytes read.
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

fn write_line(out: &mut dyn Write, record: &Record) -> Result<(), TransferError> {
    let io = |source| TransferError::Io {
        action: "write the export",
        source,
    };
    serde_json::to_writer(&mut *out, record).map_err(|e| io(e.into()))?;
    out.write_all(b"\n").map_err(io)
}

fn records_of(tenant: &str, state: TenantState) -> Vec<Record> {
    let t = || tenant.to_owned();
    let mut out = Vec::new();
    out.extend(
        state
            .collections
            .into_iter()
            .map(|data| Record::Collection { tenant: t(), data }),
    );
    out.extend(
        state
            .manifests
            .into_iter()
            .map(|data| Record::Manifest { tenant: t(), data }),
    );
    out.extend(
        state
            .instances
            .into_iter()
            .map(|(data, manifest_id)| Record::Instance {
                tenant: t(),
                data,
                manifest_id,
            }),
    );
    out.extend(
        state
            .members
            .into_iter()
            .map(|(collection_id, instance_id)| Record::Member {
                tenant: t(),
                collection_id,
                instance_id,
            }),
    );
    out.extend(
        state
            .registrations
            .into_iter()
            .map(|data| Record::Registration { tenant: t(), data }),
    );
    out.extend(
        state
            .packages
            .into_iter()
            .map(|data| Record::Package { tenant: t(), data }),
    );
    out.extend(
        state
            .policies
            .into_iter()
            .map(|data| Record::Policy { tenant: t(), data }),
    );
    out.extend(
        state
            .settings
            .into_iter()
            .map(|(kind, data)| Record::Setting {
                tenant: t(),
                name: kind.key().to_owned(),
                data,
            }),
    );
    out
}

/// Writes every tenant of `store` to `out`, a chunk at a time.
pub async fn export(
    store: &dyn Store,
    out: &mut dyn Write,
    progress: Progress<'_>,
) -> Result<Summary, TransferError> {
    let mut summary = Summary::default();
    write_line(
        out,
        &Record::Header {
            format: FORMAT.to_owned(),
            version: VERSION,
        },
    )?;
    for tenant in store.list_tenants().await? {
        summary.tenants += 1;
        for section in Section::ALL {
            let mut after: Option<String> = None;
            loop {
                let (state, next) = store
                    .export_section(&tenant, section, after.as_deref(), CHUNK)
                    .await?;
                for record in records_of(&tenant, state) {
                    write_line(out, &record)?;
                    summary.records += 1;
                }
                progress(summary.records, 0);
                match next {
                    Some(key) => after = Some(key),
                    None => break,
                }
            }
        }
        for data in store.list_apps(&tenant).await? {
            write_line(
                out,
                &Record::App {
                    tenant: tenant.clone(),
                    data,
                },
            )?;
            summary.records += 1;
        }
        for data in store.list_users(&tenant).await? {
            write_line(
                out,
                &Record::User {
                    tenant: tenant.clone(),
                    data,
                },
            )?;
            summary.records += 1;
        }
    }
    write_line(
        out,
        &Record::Trailer {
            records: summary.records,
        },
    )?;
    out.flush().map_err(|source| TransferError::Io {
        action: "write the export",
        source,
    })?;
    Ok(summary)
}

/// Objects of one tenant waiting to be written together.
#[derive(Default)]
struct Batch {
    tenant: String,
    state: TenantState,
    apps: Vec<AppRegistration>,
    users: Vec<LocalUser>,
    len: usize,
}

impl Batch {
    fn add(&mut self, record: Record) {
        self.len += 1;
        let s = &mut self.state;
        match record {
            Record::Collection { data, .. } => s.collections.push(data),
            Record::Manifest { data, .. } => s.manifests.push(data),
            Record::Instance {
                data, manifest_id, ..
            } => s.instances.push((data, manifest_id)),
            Record::Member {
                collection_id,
                instance_id,
                ..
            } => s.members.push((collection_id, instance_id)),
            Record::Registration { data, .. } => s.registrations.push(data),
            Record::Package { data, .. } => s.packages.push(data),
            Record::Policy { data, .. } => s.policies.push(data),
            Record::Setting { data, name, .. } => {
                if let Some(kind) = TenantSetting::ALL.into_iter().find(|k| k.key() == name) {
                    s.settings.push((kind, data));
                }
            }
            Record::App { data, .. } => self.apps.push(data),
            Record::User { data, .. } => self.users.push(data),
            Record::Header { .. } | Record::Trailer { .. } => self.len -= 1,
        }
    }

    /// Writes the batch; its parsed state comes back, to be freed by the
    /// reading thread.
    async fn flush(
        self,
        store: &dyn Store,
        now: &str,
    ) -> Result<(ImportReport, TenantState), StoreError> {
        let mut batch = self;
        let mut report = ImportReport::default();
        if batch.len == 0 {
            return Ok((report, batch.state));
        }
        if batch.len > batch.apps.len() + batch.users.len() {
            let state = std::mem::take(&mut batch.state);
            (report, batch.state) = store.import_batch(&batch.tenant, state, now).await?;
        }
        for app in batch.apps {
            if store.get_app(&app.client_id).await?.is_some() {
                report.kept += 1;
            } else {
                store.create_app(app).await?;
                report.created += 1;
            }
        }
        for mut user in batch.users {
            // A user moves into the tenant of its record, as every object does.
            user.tenant_id = batch.tenant.clone();
            if store.create_user(user).await? {
                report.created += 1;
            } else {
                report.kept += 1;
            }
        }
        Ok((report, batch.state))
    }
}

/// What the reading thread of an import hands over, in order.
enum Read {
    /// A batch to write, with the object records, tenants and bytes read
    /// so far (the batch's included).
    Batch {
        batch: Box<Batch>,
        records: u64,
        tenants: u64,
        bytes: u64,
    },
    /// The stream is over: its last line's number and the trailer's count.
    End {
        line: u64,
        trailer: Option<u64>,
    },
    Failed(TransferError),
}

/// Reads and checks the lines of an export, handing over batches of
/// records as they fill; stops at the first bad line, or when the writing
/// side hangs up. Frees the states of written batches that come back on
/// `spent` here, where they were built, while the next batch is written.
fn read_batches(
    mut input: Box<dyn BufRead + Send>,
    out: tokio::sync::mpsc::Sender<Read>,
    spent: std::sync::mpsc::Receiver<TenantState>,
) {
    let mut batch = Batch::default();
    let mut line = String::new();
    let mut number = 0u64;
    let mut bytes = 0u64;
    let mut records = 0u64;
    let mut trailer = None;
    let mut tenants = std::collections::BTreeSet::new();
    let failed = |e| {
        let _ = out.blocking_send(Read::Failed(e));
    };
    loop {
        line.clear();
        let n = match input.read_line(&mut line) {
            Ok(n) => n,
            Err(source) => {
                return failed(TransferError::Io {
                    action: "read the export",
                    source,
                });
            }
        };
        if n == 0 {
            break;
        }
        number += 1;
        bytes += n as u64;
        if line.trim().is_empty() {
            continue;
        }
        let malformed = |reason: String| TransferError::Malformed {
            line: number,
            reason,
        };
        if trailer.is_some() {
            return failed(malformed("data after the trailer".into()));
        }
        let record: Record = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => return failed(malformed(e.to_string())),
        };
        match (&record, number) {
            (Record::Header { format, version }, 1) => {
                if format != FORMAT || *version != VERSION {
                    return failed(malformed(format!(
                        "this build reads {FORMAT} version {VERSION}, not {format} version {version}"
                    )));
                }
                continue;
            }
            (_, 1) => {
                return failed(malformed(format!(
                    "the first line must be the {FORMAT} header"
                )));
            }
            (Record::Header { .. }, _) => return failed(malformed("a second header".into())),
            (Record::Trailer { records }, _) => {
                trailer = Some(*records);
                continue;
            }
            _ => {}
        }
        let tenant = record.tenant().unwrap_or_default();
        if tenant != batch.tenant || batch.len >= IMPORT_CHUNK {
            let full = std::mem::take(&mut batch);
            let handed = Read::Batch {
                batch: Box::new(full),
                records,
                tenants: tenants.len() as u64,
                bytes,
            };
            if out.blocking_send(handed).is_err() {
                return;
            }
            spent.try_iter().for_each(drop);
            batch.tenant = tenant.to_owned();
        }
        tenants.insert(tenant.to_owned());
        batch.add(record);
        records += 1;
    }
    let last = Read::Batch {
        batch: Box::new(batch),
        records,
        tenants: tenants.len() as u64,
        bytes,
    };
    if out.blocking_send(last).is_ok() {
        let _ = out.blocking_send(Read::End {
            line: number,
            trailer,
        });
    }
}

/// Reads an export from `input` into `store`, merging with what it holds.
/// `now` stamps what the records lack (the reserved collections of a tenant
/// that had none). A thread reads and parses the next batch while the store
/// writes the one before.
pub async fn import(
    store: &dyn Store,
    input: Box<dyn BufRead + Send>,
    now: &str,
    progress: Progress<'_>,
) -> Result<Summary, TransferError> {
    // One batch read ahead.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let (done, spent) = std::sync::mpsc::channel();
    let reader = std::thread::Builder::new()
        .name("agentry-import-reader".into())
        .spawn(move || read_batches(input, tx, spent))
        .map_err(|source| TransferError::Io {
            action: "start reading the export",
            source,
        })?;
    let mut summary = Summary::default();
    let mut end = None;
    while let Some(read) = rx.recv().await {
        match read {
            Read::Batch {
                batch,
                records,
                tenants,
                bytes,
            } => {
                let (report, state) = (*batch).flush(store, now).await?;
                // Freed by the reader, if it is still reading; else here.
                let _ = done.send(state);
                summary.created += report.created as u64;
                summary.kept += report.kept as u64;
                summary.records = records;
                summary.tenants = tenants;
                progress(summary.records, bytes);
            }
            Read::End { line, trailer } => end = Some((line, trailer)),
            Read::Failed(e) => return Err(e),
        }
    }
    let _ = reader.join();
    store.finish_bulk_load(summary.created > 0).await?;
    match end {
        Some((_, Some(records))) if records == summary.records => Ok(summary),
        Some((line, Some(records))) => Err(TransferError::Malformed {
            line,
            reason: format!(
                "the trailer counts {records} records but the stream holds {}",
                summary.records
            ),
        }),
        Some((0, None)) => Err(TransferError::Malformed {
            line: 0,
            reason: "the input is empty".into(),
        }),
        _ => Err(TransferError::Truncated {
            records: summary.records,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_tagged_lines_with_camel_case_fields() {
        let r = Record::Instance {
            tenant: "t".into(),
            data: serde_json::from_str(r#"{"id":"i"}"#).unwrap(),
            manifest_id: Some("m".into()),
        };
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            r#"{"type":"instance","tenant":"t","data":{"id":"i"},"manifestId":"m"}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&text).unwrap(), r);
        let member = r#"{"type":"member","tenant":"t","collectionId":"c","instanceId":"i"}"#;
        assert!(matches!(
            serde_json::from_str::<Record>(member).unwrap(),
            Record::Member { .. }
        ));
    }

    #[test]
    fn unknown_record_types_and_fields_are_refused() {
        for text in [
            r#"{"type":"widget","tenant":"t"}"#,
            r#"{"type":"member","tenant":"t","collectionId":"c","instanceId":"i","x":1}"#,
            r#"{"tenant":"t"}"#,
        ] {
            assert!(serde_json::from_str::<Record>(text).is_err(), "{text}");
        }
    }
}
