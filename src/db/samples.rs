//! Real parameter values, sampled from the host app's timed pool, so the
//! index advisor can plan a statement with the values it actually runs
//! with (custom plans), not only its generic plan.
//!
//! pg_stat_statements keeps `status = $1`, and a generic plan cannot tell
//! a status held by 0.1 % of the rows from one held by 60 %; the timed pool
//! sees the bound values. So, per statement text (with its `$n`
//! placeholders, as the app sent it, which is what pg_stat_statements
//! keeps when the app writes no literals), this store keeps a few samples
//! of the bound parameters, each exactly as the driver encoded it against
//! the prepared statement's parameter type: `(Type, bytes or NULL)`.
//!
//! It is shaped by what the values are: data of the app's users.
//!
//! - **Process-local**: one store per process ([`store`]), read only by
//!   the index advisor of the same process (a host app that watches its
//!   own database through the `Perfscope` handle). Nothing here is logged,
//!   labelled, serialized or returned by the API or the pages; `Debug`
//!   prints counts and types only.
//! - **Bounded**: at most [`STATEMENTS_SAMPLED`] texts (a new one past it
//!   evicts an old one), [`SAMPLES_PER_STATEMENT`] distinct samples each
//!   (the oldest replaced), and a sample with a value over
//!   [`MAX_VALUE_BYTES`], more than [`MAX_PARAMS`] parameters or more than
//!   [`MAX_SAMPLE_BYTES`] in all is not kept at all; nor a text over
//!   [`MAX_TEXT_BYTES`] (never planned).
//! - **Only what the advisor plans, only what ran**: SELECT, UPDATE and
//!   DELETE texts (never an INSERT's or a COPY's values), kept after the
//!   app's call succeeded (a value the server refused is not replayed).
//! - **Cheap on the request path**: the pool asks [`due`] with a per-text
//!   call counter (one atomic add); only the first
//!   [`ALWAYS_SAMPLED_CALLS`] calls of a text and then one in
//!   [`SAMPLE_EVERY`] encode their values.
//! - **Never written into SQL**: the planner binds them as parameters of
//!   the extended protocol ([`Param`] is a `ToSql` that writes the stored
//!   bytes, for the stored type only).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// Distinct samples kept per statement text.
pub const SAMPLES_PER_STATEMENT: usize = 4;
/// Statement texts with samples, at most.
pub const STATEMENTS_SAMPLED: usize = 256;
/// A sample with one value longer than this (encoded) is not kept.
pub const MAX_VALUE_BYTES: usize = 256;
/// Parameters of a sample, at most.
pub const MAX_PARAMS: usize = 64;
/// Bytes of a sample's values together, at most.
pub const MAX_SAMPLE_BYTES: usize = 4_096;
/// Bytes of a sampled statement text, at most (longer ones are never
/// planned).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The first calls of each text are all sampled.
pub const ALWAYS_SAMPLED_CALLS: u64 = 4;
/// After them, one call in this many is.
pub const SAMPLE_EVERY: u64 = 1024;

/// Whether the call numbered `call` (from 0) of a text is sampled.
pub fn due(call: u64) -> bool {
    call < ALWAYS_SAMPLED_CALLS || call.is_multiple_of(SAMPLE_EVERY)
}

/// One bound parameter as the driver encoded it.
#[derive(Clone, PartialEq, Eq)]
pub struct Param {
    ty: Type,
    /// The binary encoding; `None` for NULL.
    value: Option<Bytes>,
}

impl Param {
    /// The parameter's type, as the server inferred it for the app.
    pub fn ty(&self) -> &Type {
        &self.ty
    }
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Param")
            .field("type", &self.ty.name())
            .field("value", &"<redacted>")
            .finish()
    }
}

/// Writes exactly the stored bytes, and only for the stored type: a
/// statement whose parameter the server now types differently refuses the
/// value instead of reinterpreting it.
impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        if *ty != self.ty {
            return Err("a sampled value is bound only as the type it was sampled with".into());
        }
        match &self.value {
            None => Ok(IsNull::Yes),
            Some(bytes) => {
                out.extend_from_slice(bytes);
                Ok(IsNull::No)
            }
        }
    }

    fn accepts(_: &Type) -> bool {
        // The check is per value, in `to_sql`.
        true
    }

    to_sql_checked!();
}

/// The bound parameters of one call.
#[derive(Clone, PartialEq, Eq)]
pub struct Sample {
    params: Arc<[Param]>,
}

impl std::fmt::Debug for Sample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sample")
            .field("params", &self.params)
            .finish()
    }
}

impl Sample {
    /// Encodes `params` against the prepared statement's `types` exactly
    /// as the driver will send them; `None` when a value cannot be encoded
    /// or is over [`MAX_VALUE_BYTES`] (or the counts differ).
    pub fn encode(types: &[Type], params: &[&(dyn ToSql + Sync)]) -> Option<Self> {
        if types.len() != params.len() || params.is_empty() || params.len() > MAX_PARAMS {
            return None;
        }
        let mut total = 0;
        let mut out = Vec::with_capacity(params.len());
        let mut buffer = BytesMut::new();
        for (ty, param) in types.iter().zip(params) {
            buffer.clear();
            let value = match param.to_sql_checked(ty, &mut buffer).ok()? {
                IsNull::Yes => None,
                IsNull::No if buffer.len() > MAX_VALUE_BYTES => return None,
                IsNull::No => {
                    total += buffer.len();
                    if total > MAX_SAMPLE_BYTES {
                        return None;
                    }
                    Some(Bytes::copy_from_slice(&buffer))
                }
            };
            out.push(Param {
                ty: ty.clone(),
                value,
            });
        }
        Some(Self { params: out.into() })
    }

    /// Its parameters, in order, to bind as they are.
    pub fn params(&self) -> &[Param] {
        &self.params
    }
}

/// One text's samples, the oldest replaced first.
#[derive(Default)]
struct Slot {
    samples: Vec<Sample>,
    next: usize,
}

/// The bounded store of samples, by statement text.
#[derive(Default)]
pub struct SampleStore {
    by_text: Mutex<HashMap<Box<str>, Slot>>,
}

impl std::fmt::Debug for SampleStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SampleStore")
            .field("statements", &self.len())
            .finish_non_exhaustive()
    }
}

impl SampleStore {
    /// Keeps `sample` for `text`, unless the same values are kept already.
    pub fn record(&self, text: &str, sample: Sample) {
        if text.len() > MAX_TEXT_BYTES {
            return;
        }
        // Never waits on the request path: a sample that finds the store
        // busy is dropped (the text is sampled again later).
        let Some(mut by_text) = self.by_text.try_lock() else {
            return;
        };
        if !by_text.contains_key(text) && by_text.len() >= STATEMENTS_SAMPLED {
            // Any one goes: a text still in use is sampled again later.
            if let Some(old) = by_text.keys().next().cloned() {
                by_text.remove(&old);
            }
        }
        let slot = by_text.entry(text.into()).or_default();
        if slot.samples.contains(&sample) {
            return;
        }
        if slot.samples.len() < SAMPLES_PER_STATEMENT {
            slot.samples.push(sample);
        } else {
            let at = slot.next % SAMPLES_PER_STATEMENT;
            slot.samples[at] = sample;
            slot.next = at + 1;
        }
    }

    /// The samples kept for `text` (empty when none).
    pub fn get(&self, text: &str) -> Vec<Sample> {
        self.by_text
            .lock()
            .get(text)
            .map(|slot| slot.samples.clone())
            .unwrap_or_default()
    }

    /// How many texts have samples.
    pub fn len(&self) -> usize {
        self.by_text.lock().len()
    }

    /// Whether no text has samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

static STORE: LazyLock<SampleStore> = LazyLock::new(SampleStore::default);

/// The process's store: the host app's timed pools write it, the index
/// advisor of the same process reads it.
pub fn store() -> &'static SampleStore {
    &STORE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_sample(value: &str) -> Sample {
        Sample::encode(&[Type::TEXT], &[&value]).expect("encodes")
    }

    #[test]
    fn the_store_is_bounded_in_texts_samples_and_value_size() {
        let store = SampleStore::default();
        for i in 0..STATEMENTS_SAMPLED * 3 {
            store.record(&format!("SELECT {i} WHERE a = $1"), text_sample("v"));
        }
        assert_eq!(store.len(), STATEMENTS_SAMPLED);

        for i in 0..SAMPLES_PER_STATEMENT * 5 {
            store.record("SELECT 1 WHERE b = $1", text_sample(&format!("v{i}")));
        }
        let kept = store.get("SELECT 1 WHERE b = $1");
        assert_eq!(kept.len(), SAMPLES_PER_STATEMENT);
        // The newest is among them (the oldest were replaced).
        let last = format!("v{}", SAMPLES_PER_STATEMENT * 5 - 1);
        assert!(kept.contains(&text_sample(&last)));
        assert_eq!(store.len(), STATEMENTS_SAMPLED);

        // The same values are kept once.
        store.record("SELECT 2 WHERE c = $1", text_sample("same"));
        store.record("SELECT 2 WHERE c = $1", text_sample("same"));
        assert_eq!(store.get("SELECT 2 WHERE c = $1").len(), 1);

        let long = "x".repeat(MAX_VALUE_BYTES + 1);
        assert!(Sample::encode(&[Type::TEXT], &[&long]).is_none());
        let fits = "x".repeat(MAX_VALUE_BYTES);
        assert!(Sample::encode(&[Type::TEXT], &[&fits]).is_some());
        // Too many parameters, or too many bytes together: not kept.
        let many: Vec<&(dyn ToSql + Sync)> = vec![&7i32; MAX_PARAMS + 1];
        assert!(Sample::encode(&vec![Type::INT4; MAX_PARAMS + 1], &many).is_none());
        assert!(Sample::encode(&vec![Type::INT4; MAX_PARAMS], &many[..MAX_PARAMS]).is_some());
        let wide: Vec<&(dyn ToSql + Sync)> = vec![&fits; MAX_SAMPLE_BYTES / MAX_VALUE_BYTES + 1];
        assert!(Sample::encode(&vec![Type::TEXT; wide.len()], &wide).is_none());
        // Nor a text longer than is ever planned.
        let store = SampleStore::default();
        let sample = Sample::encode(&[Type::INT4], &[&7i32]).expect("encodes");
        store.record(&"x".repeat(MAX_TEXT_BYTES + 1), sample.clone());
        assert_eq!(store.len(), 0);
        store.record("select 1 where $1 = 1", sample);
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn values_are_encoded_for_their_type_and_bound_only_as_it() {
        let none: Option<i32> = None;
        let sample = Sample::encode(&[Type::INT4, Type::INT4], &[&7i32, &none]).expect("encodes");
        let mut out = BytesMut::new();
        let first = &sample.params()[0];
        assert!(matches!(
            first.to_sql_checked(&Type::INT4, &mut out),
            Ok(IsNull::No)
        ));
        assert_eq!(&out[..], &7i32.to_be_bytes());
        assert!(matches!(
            sample.params()[1].to_sql_checked(&Type::INT4, &mut out),
            Ok(IsNull::Yes)
        ));
        assert!(first.to_sql_checked(&Type::INT8, &mut out).is_err());
        // A value of the wrong Rust type for the statement is not sampled.
        assert!(Sample::encode(&[Type::INT4], &[&"seven"]).is_none());
    }

    #[test]
    fn debug_output_never_shows_a_value() {
        let store = SampleStore::default();
        let sample = text_sample("urgent-7f3a9c");
        store.record("SELECT 1 WHERE s = $1", sample.clone());
        let printed = format!(
            "{store:?} {sample:?} {:?}",
            store.get("SELECT 1 WHERE s = $1")
        );
        assert!(!printed.contains("urgent"), "{printed}");
        assert!(printed.contains("text"), "{printed}");
    }

    #[test]
    fn the_first_calls_then_one_in_many_are_due() {
        let due_calls = (0..10 * SAMPLE_EVERY).filter(|c| due(*c)).count() as u64;
        assert_eq!(due_calls, ALWAYS_SAMPLED_CALLS - 1 + 10);
        assert!(due(0) && due(ALWAYS_SAMPLED_CALLS - 1) && !due(ALWAYS_SAMPLED_CALLS));
    }
}
