//! structured-merge-diff's worked scenarios (`tests/upstream/structured-merge-diff.yaml`): their
//! schemas as `manifests::shapes` tables, and a replay through this server's apply and update,
//! so that both this server and the tool's read-only planner can be checked against what upstream
//! says each scenario ends in.

use std::borrow::Cow;
use std::collections::BTreeMap;

use manifests::shapes::{ListKey, Rule, Schema, Shape};
use serde_json::Value;

use super::ssa;

/// The scenario file, as checked in.
pub const SCENARIOS: &str = include_str!("../../../tests/upstream/structured-merge-diff.yaml");

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Apply,
    ForceApply,
    Update,
}

#[derive(Clone, Debug)]
pub struct Op {
    pub kind: OpKind,
    pub manager: String,
    pub object: Value,
    /// For an apply that upstream says is refused: (manager, field path as the API server prints it).
    pub conflicts: Option<Vec<(String, String)>>,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: String,
    /// Upstream file, line and test name.
    pub source: String,
    pub schema: Schema,
    pub ops: Vec<Op>,
    /// What upstream says the object is after the last operation.
    pub object: Value,
    /// What upstream says each manager owns then (FieldsV1), when it says.
    pub managed: Option<BTreeMap<String, Value>>,
}

/// The state between two operations: the object and each manager's fields (FieldsV1).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    pub object: Value,
    pub managed: BTreeMap<String, Value>,
}

/// One operation as this server carried it out.
#[derive(Clone, Debug)]
pub struct Step {
    pub op: Op,
    pub before: State,
    pub after: State,
    /// The conflicts it met (it changed nothing then).
    pub conflicts: Vec<(String, String)>,
}

fn shape(spec: &Value) -> Result<Shape, String> {
    if let Some(s) = spec.as_str() {
        return match s {
            "scalar" => Ok(Shape::Scalar),
            "struct" => Ok(Shape::Struct),
            "map" => Ok(Shape::Map),
            "atomic-map" => Ok(Shape::AtomicMap),
            "atomic-list" => Ok(Shape::AtomicList),
            "set" => Ok(Shape::Set),
            other => Err(format!("unknown shape {other:?}")),
        };
    }
    let keys = spec
        .get("map-list")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("unknown shape {spec}"))?;
    keys.iter()
        .map(|k| match k {
            Value::String(name) => Ok(ListKey::new(name.clone())),
            Value::Object(m) => Ok(ListKey {
                name: Cow::Owned(
                    m.get("name")
                        .and_then(Value::as_str)
                        .ok_or("a key needs a name")?
                        .to_string(),
                ),
                default: m.get("default").cloned(),
            }),
            other => Err(format!("bad key {other}")),
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Shape::MapList)
}

fn schema(name: &str, spec: &Value) -> Result<Schema, String> {
    let objects = match spec.get("objects").and_then(Value::as_str) {
        Some("map") => Shape::Map,
        Some("struct") | None => Shape::Struct,
        Some(other) => return Err(format!("schema {name}: objects {other:?}")),
    };
    let mut rules = Vec::new();
    for (path, s) in spec
        .get("rules")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        rules.push(Rule {
            path: Cow::Owned(path.clone()),
            shape: shape(s).map_err(|e| format!("schema {name}, {path}: {e}"))?,
            source: Cow::Owned(format!("structured-merge-diff test schema {name}")),
        });
    }
    Ok(Schema {
        name: Cow::Owned(name.to_string()),
        rules,
        objects,
    })
}

/// Every scenario of the file.
pub fn scenarios() -> Result<Vec<Scenario>, String> {
    let doc: Value = serde_yaml::from_str(SCENARIOS).map_err(|e| e.to_string())?;
    let mut schemas = BTreeMap::new();
    for (name, spec) in doc["schemas"].as_object().ok_or("no schemas")? {
        schemas.insert(name.clone(), schema(name, spec)?);
    }
    let mut out = Vec::new();
    for s in doc["scenarios"].as_array().ok_or("no scenarios")? {
        let name = s["name"].as_str().ok_or("a scenario without a name")?;
        let schema_name = s["schema"].as_str().ok_or(format!("{name}: no schema"))?;
        let mut ops = Vec::new();
        for op in s["ops"].as_array().ok_or(format!("{name}: no ops"))? {
            let (kind, manager) = [
                ("apply", OpKind::Apply),
                ("force-apply", OpKind::ForceApply),
                ("update", OpKind::Update),
            ]
            .iter()
            .find_map(|(k, kind)| op.get(*k).and_then(Value::as_str).map(|m| (*kind, m)))
            .ok_or(format!(
                "{name}: an op without apply, force-apply or update"
            ))?;
            let conflicts = op.get("conflicts").and_then(Value::as_array).map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c["manager"].as_str().unwrap_or_default().to_string(),
                            c["path"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            });
            ops.push(Op {
                kind,
                manager: manager.to_string(),
                object: op["object"].clone(),
                conflicts,
            });
        }
        out.push(Scenario {
            name: name.to_string(),
            source: s["source"].as_str().unwrap_or_default().to_string(),
            schema: schemas
                .get(schema_name)
                .cloned()
                .ok_or(format!("{name}: no schema {schema_name}"))?,
            ops,
            object: s["object"].clone(),
            managed: s.get("managed").and_then(Value::as_object).map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect::<BTreeMap<_, _>>()
            }),
        });
    }
    Ok(out)
}

fn state(object: &Value, managers: &ssa::Managers) -> State {
    State {
        object: object.clone(),
        managed: managers
            .iter()
            .map(|(m, set)| (m.clone(), ssa::to_fields_v1(set)))
            .collect(),
    }
}

/// Runs the scenario's operations through this server's apply and update (managers by name, as
/// upstream's fixture keeps them). An apply upstream expects to be refused must be refused with
/// exactly those conflicts; any other refusal is an error.
pub fn replay(s: &Scenario) -> Result<Vec<Step>, String> {
    let mut object = serde_json::json!({});
    let mut managers = ssa::Managers::new();
    let mut steps = Vec::new();
    for (i, op) in s.ops.iter().enumerate() {
        let before = state(&object, &managers);
        let mut conflicts = Vec::new();
        match op.kind {
            OpKind::Update => {
                ssa::update_core(&s.schema, &object, &op.object, &mut managers, &op.manager);
                object = op.object.clone();
            }
            OpKind::Apply | OpKind::ForceApply => {
                let force = op.kind == OpKind::ForceApply;
                match ssa::apply_core(
                    &s.schema,
                    &object,
                    &managers,
                    &op.object,
                    &op.manager,
                    force,
                ) {
                    Ok((new, m)) => {
                        if op.conflicts.is_some() {
                            return Err(format!(
                                "{}: operation {i} should have been refused with {:?}",
                                s.name, op.conflicts
                            ));
                        }
                        object = new;
                        managers = m;
                    }
                    Err(cs) => {
                        conflicts = cs
                            .into_iter()
                            .map(|(m, p)| (m, ssa::path_string(&p)))
                            .collect();
                        if op.conflicts.is_none() {
                            return Err(format!(
                                "{}: operation {i} was refused with {conflicts:?}",
                                s.name
                            ));
                        }
                    }
                }
            }
        }
        steps.push(Step {
            op: op.clone(),
            before,
            after: state(&object, &managers),
            conflicts,
        });
    }
    Ok(steps)
}
