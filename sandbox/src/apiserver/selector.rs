//! Label selectors (`labelSelector`) and the `metadata.name` / `metadata.namespace` field selectors.

use serde_json::Value;

use super::object_rules::{check_label_value, check_qualified_name};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Equals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

/// A parsed label selector; the requirements are ANDed. Empty = everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    pub requirements: Vec<Requirement>,
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return Err(format!(
                        "unable to parse requirement: unexpected ')' in {s:?}"
                    ));
                }
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(format!(
            "unable to parse requirement: unclosed '(' in {s:?}"
        ));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn parse_set(rest: &str, req: &str) -> Result<Vec<String>, String> {
    let rest = rest.trim();
    let inner = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: found {rest:?}, expected: '(' in {req:?}")
        })?;
    let values: Vec<String> = inner.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().all(String::is_empty) {
        return Err(format!(
            "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty in {req:?}"
        ));
    }
    for v in &values {
        check_label_value(v).map_err(|e| {
            format!("unable to parse requirement: values[0]: Invalid value: {v:?}: {e}")
        })?;
    }
    Ok(values)
}

fn parse_requirement(req: &str) -> Result<Requirement, String> {
    let req = req.trim();
    if req.is_empty() {
        return Err("unable to parse requirement: found '', expected: identifier".to_string());
    }
    if let Some(key) = req.strip_prefix('!') {
        let key = key.trim();
        check_key(key)?;
        return Ok(Requirement {
            key: key.to_string(),
            op: Op::DoesNotExist,
            values: vec![],
        });
    }
    let key_end = req
        .find(|c: char| c.is_whitespace() || "=!<>()".contains(c))
        .unwrap_or(req.len());
    let key = &req[..key_end];
    check_key(key)?;
    let rest = req[key_end..].trim_start();
    let single = |op: Op, value: &str| -> Result<Requirement, String> {
        let value = value.trim();
        check_label_value(value)
            .map_err(|e| format!("unable to parse requirement: Invalid value: {value:?}: {e}"))?;
        Ok(Requirement {
            key: key.to_string(),
            op,
            values: vec![value.to_string()],
        })
    };
    if rest.is_empty() {
        Ok(Requirement {
            key: key.to_string(),
            op: Op::Exists,
            values: vec![],
        })
    } else if let Some(v) = rest.strip_prefix("==") {
        single(Op::Equals, v)
    } else if let Some(v) = rest.strip_prefix("!=") {
        single(Op::NotEquals, v)
    } else if let Some(v) = rest.strip_prefix('=') {
        single(Op::Equals, v)
    } else if let Some(v) = rest.strip_prefix('>').or_else(|| rest.strip_prefix('<')) {
        let op = if rest.starts_with('>') {
            Op::GreaterThan
        } else {
            Op::LessThan
        };
        let v = v.trim();
        v.parse::<i64>()
            .map_err(|_| format!("unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer in {req:?}"))?;
        Ok(Requirement {
            key: key.to_string(),
            op,
            values: vec![v.to_string()],
        })
    } else if let Some(v) = rest
        .strip_prefix("notin")
        .filter(|v| v.trim_start().starts_with('('))
    {
        Ok(Requirement {
            key: key.to_string(),
            op: Op::NotIn,
            values: parse_set(v, req)?,
        })
    } else if let Some(v) = rest
        .strip_prefix("in")
        .filter(|v| v.trim_start().starts_with('('))
    {
        Ok(Requirement {
            key: key.to_string(),
            op: Op::In,
            values: parse_set(v, req)?,
        })
    } else {
        Err(format!(
            "unable to parse requirement: found {rest:?}, expected: in, notin, =, ==, !=, gt, lt in {req:?}"
        ))
    }
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("unable to parse requirement: found '', expected: identifier".to_string());
    }
    check_qualified_name(key)
        .map_err(|e| format!("unable to parse requirement: key: Invalid value: {key:?}: {e}"))
}

impl LabelSelector {
    pub(crate) fn parse(s: &str) -> Result<LabelSelector, String> {
        if s.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        let requirements = split_top_level(s)?
            .into_iter()
            .map(parse_requirement)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LabelSelector { requirements })
    }

    /// Whether an object's `metadata.labels` (a JSON map, possibly absent) match.
    pub(crate) fn matches(&self, labels: Option<&Value>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| {
            let v = get(&r.key);
            match r.op {
                Op::Equals => v == Some(r.values[0].as_str()),
                Op::NotEquals => v != Some(r.values[0].as_str()),
                Op::In => v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::NotIn => !v.is_some_and(|v| r.values.iter().any(|x| x == v)),
                Op::Exists => v.is_some(),
                Op::DoesNotExist => v.is_none(),
                Op::GreaterThan | Op::LessThan => {
                    let (Some(Ok(have)), Ok(want)) =
                        (v.map(str::parse::<i64>), r.values[0].parse::<i64>())
                    else {
                        return false;
                    };
                    if r.op == Op::GreaterThan {
                        have > want
                    } else {
                        have < want
                    }
                }
            }
        })
    }
}

/// `fieldSelector` on `metadata.name` / `metadata.namespace` (`=`, `==`, `!=`), ANDed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    /// (field, wanted value, equal?)
    terms: Vec<(String, String, bool)>,
}

impl FieldSelector {
    pub(crate) fn parse(s: &str) -> Result<FieldSelector, String> {
        let mut terms = Vec::new();
        for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let (field, value, eq) = if let Some((f, v)) = term.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = term.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = term.split_once('=') {
                (f, v, true)
            } else {
                return Err(format!(
                    "invalid selector: {term:?}; can't understand {term:?}"
                ));
            };
            let field = field.trim();
            if field != "metadata.name" && field != "metadata.namespace" {
                return Err(format!(
                    "field label not supported: {field} (the sandbox supports metadata.name and metadata.namespace)"
                ));
            }
            terms.push((field.to_string(), value.trim().to_string(), eq));
        }
        Ok(FieldSelector { terms })
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.terms.iter().all(|(field, want, eq)| {
            let have = field
                .strip_prefix("metadata.")
                .and_then(|f| obj.get("metadata")?.get(f)?.as_str())
                .unwrap_or("");
            (have == want) == *eq
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn equality_and_inequality() {
        let labels = json!({"app": "zk", "tier": "db"});
        assert!(sel("app=zk").matches(Some(&labels)));
        assert!(sel("app==zk").matches(Some(&labels)));
        assert!(!sel("app=other").matches(Some(&labels)));
        assert!(sel("app!=other").matches(Some(&labels)));
        assert!(!sel("app!=zk").matches(Some(&labels)));
        // != also matches objects without the label.
        assert!(sel("missing!=x").matches(Some(&labels)));
        assert!(sel(" app = zk , tier == db ").matches(Some(&labels)));
        assert!(!sel("app=zk,tier=web").matches(Some(&labels)));
    }

    #[test]
    fn existence_and_sets() {
        let labels = json!({"app": "zk", "app.kubernetes.io/name": "zookeeper"});
        assert!(sel("app").matches(Some(&labels)));
        assert!(!sel("!app").matches(Some(&labels)));
        assert!(sel("!other").matches(Some(&labels)));
        assert!(sel("app in (zk, kafka)").matches(Some(&labels)));
        assert!(sel("app in(zk)").matches(Some(&labels)));
        assert!(!sel("app in (kafka)").matches(Some(&labels)));
        assert!(sel("app notin (kafka,web)").matches(Some(&labels)));
        assert!(!sel("app notin (zk)").matches(Some(&labels)));
        assert!(sel("other notin (zk)").matches(Some(&labels)));
        assert!(!sel("other in (zk)").matches(Some(&labels)));
        assert!(sel("app.kubernetes.io/name in (zookeeper),app=zk,!x").matches(Some(&labels)));
        assert!(sel("").matches(None));
        assert!(!sel("app").matches(None));
        assert!(sel("!app").matches(None));
    }

    #[test]
    fn numeric_comparisons() {
        let labels = json!({"n": "5"});
        assert!(sel("n>4").matches(Some(&labels)));
        assert!(!sel("n<4").matches(Some(&labels)));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "app in (a",
            "app in ()",
            "=x",
            "app=zk,",
            "bad key=x",
            "app=in valid",
            "app in a",
            "a)",
        ] {
            assert!(
                LabelSelector::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn field_selectors() {
        let obj = json!({"metadata": {"name": "zk0", "namespace": "ns"}});
        assert!(FieldSelector::parse("metadata.name=zk0")
            .unwrap()
            .matches(&obj));
        assert!(!FieldSelector::parse("metadata.name!=zk0")
            .unwrap()
            .matches(&obj));
        assert!(
            FieldSelector::parse("metadata.namespace==ns,metadata.name!=x")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("spec.type=LoadBalancer").is_err());
    }
}
