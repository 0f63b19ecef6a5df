//! JSON <-> CBOR for `greentic:component/node@0.6.0` payloads.
//!
//! Inputs are JSON values encoded as CBOR. Outputs must be CBOR that maps onto
//! JSON: text-keyed maps, finite numbers, no byte strings. Anything else is
//! reported rather than guessed at.

use ciborium::value::Value as Cbor;
use serde_json::{Map, Number, Value};

/// Encodes a JSON value as CBOR.
pub fn json_to_cbor(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).expect("writing CBOR into a Vec cannot fail");
    out
}

/// Decodes CBOR into JSON; the error says what in the CBOR has no JSON form.
pub fn cbor_to_json(bytes: &[u8]) -> Result<Value, String> {
    // Fast path: straight into JSON. It refuses what JSON cannot hold (byte
    // strings, non-text keys, ...); the slow path then says where.
    let mut reader = bytes;
    if let Ok(value) = ciborium::from_reader::<Value, _>(&mut reader)
        && reader.is_empty()
        && !has_non_finite(&value)
    {
        return Ok(value);
    }
    let mut reader = bytes;
    let value: Cbor =
        ciborium::from_reader(&mut reader).map_err(|e| format!("output is not valid CBOR: {e}"))?;
    if !reader.is_empty() {
        return Err(format!(
            "output is not valid CBOR: {} trailing bytes after the value",
            reader.len()
        ));
    }
    to_json(value, "$")
}

/// serde_json may turn a non-finite float into `null`; CBOR can hold NaN and
/// infinities, so a `null` sends the value through the slow path, which
/// reports those and keeps real nulls.
fn has_non_finite(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_non_finite),
        Value::Object(map) => map.values().any(has_non_finite),
        _ => false,
    }
}

fn to_json(value: Cbor, at: &str) -> Result<Value, String> {
    Ok(match value {
        Cbor::Null => Value::Null,
        Cbor::Bool(b) => Value::Bool(b),
        Cbor::Text(s) => Value::String(s),
        Cbor::Integer(i) => {
            let i = i128::from(i);
            if let Ok(u) = u64::try_from(i) {
                Value::Number(u.into())
            } else if let Ok(s) = i64::try_from(i) {
                Value::Number(s.into())
            } else {
                return Err(format!(
                    "output at `{at}`: integer {i} does not fit in 64 bits"
                ));
            }
        }
        Cbor::Float(f) => Value::Number(
            Number::from_f64(f)
                .ok_or_else(|| format!("output at `{at}`: {f} is not a JSON number"))?,
        ),
        Cbor::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| to_json(v, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Cbor::Map(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (k, v) in entries {
                let Cbor::Text(key) = k else {
                    return Err(format!("output at `{at}`: map key {k:?} is not a string"));
                };
                let path = format!("{at}.{key}");
                map.insert(key, to_json(v, &path)?);
            }
            Value::Object(map)
        }
        Cbor::Tag(_, inner) => to_json(*inner, at)?,
        Cbor::Bytes(_) => return Err(format!("output at `{at}`: byte strings have no JSON form")),
        other => {
            return Err(format!(
                "output at `{at}`: unsupported CBOR value {other:?}"
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_json() {
        let v = json!({"a": 1, "b": -2, "c": 1.5, "d": [true, null, "x"], "e": {"f": u64::MAX}});
        assert_eq!(cbor_to_json(&json_to_cbor(&v)).unwrap(), v);
    }

    #[test]
    fn non_finite_floats_are_reported_not_nulled() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&Cbor::Array(vec![Cbor::Float(f64::NAN)]), &mut bytes).unwrap();
        assert!(
            cbor_to_json(&bytes)
                .unwrap_err()
                .contains("is not a JSON number")
        );
        assert_eq!(
            cbor_to_json(&json_to_cbor(&json!([null, {"a": null}]))).unwrap(),
            json!([null, {"a": null}])
        );
    }

    #[test]
    fn rejects_garbage_and_non_json() {
        assert!(
            cbor_to_json(&[0xff, 0x00])
                .unwrap_err()
                .contains("not valid CBOR")
        );
        assert!(cbor_to_json(&[]).unwrap_err().contains("not valid CBOR"));
        let mut bytes = Vec::new();
        ciborium::into_writer(&Cbor::Bytes(vec![1, 2]), &mut bytes).unwrap();
        assert!(cbor_to_json(&bytes).unwrap_err().contains("byte strings"));
        let mut two = json_to_cbor(&json!(1));
        two.extend(json_to_cbor(&json!(2)));
        assert!(cbor_to_json(&two).unwrap_err().contains("trailing"));
    }
}
