//! API errors rendered as `meta/v1` Status objects.

use serde_json::{json, Map, Value};

use super::resources::Resource;

/// One invalid field, as in k8s.io/apimachinery/pkg/util/validation/field.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct FieldError {
    pub field: String,
    pub kind: FieldErrorKind,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum FieldErrorKind {
    Invalid(Value, String),
    Required(String),
    Duplicate(Value),
    NotSupported(Value, Vec<&'static str>),
    Forbidden(String),
}

impl FieldError {
    pub(crate) fn invalid(
        field: impl Into<String>,
        value: Value,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Invalid(value, detail.into()),
        }
    }

    pub(crate) fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Required(detail.into()),
        }
    }

    pub(crate) fn duplicate(field: impl Into<String>, value: Value) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Duplicate(value),
        }
    }

    pub(crate) fn not_supported(
        field: impl Into<String>,
        value: Value,
        supported: &[&'static str],
    ) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::NotSupported(value, supported.to_vec()),
        }
    }

    pub(crate) fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            kind: FieldErrorKind::Forbidden(detail.into()),
        }
    }

    pub(crate) fn reason(&self) -> &'static str {
        match self.kind {
            FieldErrorKind::Invalid(..) => "FieldValueInvalid",
            FieldErrorKind::Required(_) => "FieldValueRequired",
            FieldErrorKind::Duplicate(_) => "FieldValueDuplicate",
            FieldErrorKind::NotSupported(..) => "FieldValueNotSupported",
            FieldErrorKind::Forbidden(_) => "FieldValueForbidden",
        }
    }

    /// The message without the field, e.g. `Invalid value: 0: must be between 1 and 65535, inclusive`.
    pub(crate) fn message(&self) -> String {
        match &self.kind {
            FieldErrorKind::Invalid(v, detail) => format!("Invalid value: {v}: {detail}"),
            FieldErrorKind::Required(d) if d.is_empty() => "Required value".to_string(),
            FieldErrorKind::Required(d) => format!("Required value: {d}"),
            FieldErrorKind::Duplicate(v) => format!("Duplicate value: {v}"),
            FieldErrorKind::Forbidden(d) => format!("Forbidden: {d}"),
            FieldErrorKind::NotSupported(v, supported) => {
                let list: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
                format!(
                    "Unsupported value: {v}: supported values: {}",
                    list.join(", ")
                )
            }
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message())
    }
}

/// An error answer: HTTP status, Status reason, message and optional details.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

/// The Status reason the real API server uses for an HTTP status code.
pub(crate) fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Expired",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        c if c >= 500 => "InternalError",
        _ => "BadRequest",
    }
}

fn resource_details(res: &Resource, name: &str) -> Value {
    let mut d = Map::new();
    d.insert("name".into(), json!(name));
    if !res.group.is_empty() {
        d.insert("group".into(), json!(res.group));
    }
    d.insert("kind".into(), json!(res.plural));
    Value::Object(d)
}

impl ApiError {
    pub(crate) fn new(code: u16, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason: reason_for_code(code),
            message: message.into(),
            details: None,
        }
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(400, message)
    }

    pub(crate) fn unauthorized() -> Self {
        ApiError::new(401, "Unauthorized")
    }

    pub(crate) fn not_found(res: &Resource, name: &str) -> Self {
        ApiError {
            details: Some(resource_details(res, name)),
            ..ApiError::new(404, format!("{} {name:?} not found", res.qualified()))
        }
    }

    pub(crate) fn namespace_not_found(ns: &str) -> Self {
        ApiError {
            details: Some(json!({"name": ns, "kind": "namespaces"})),
            ..ApiError::new(404, format!("namespaces {ns:?} not found"))
        }
    }

    /// A path the server does not serve.
    pub(crate) fn no_route() -> Self {
        ApiError {
            details: Some(json!({})),
            ..ApiError::new(404, "the server could not find the requested resource")
        }
    }

    pub(crate) fn already_exists(res: &Resource, name: &str) -> Self {
        ApiError {
            reason: "AlreadyExists",
            details: Some(resource_details(res, name)),
            ..ApiError::new(409, format!("{} {name:?} already exists", res.qualified()))
        }
    }

    /// Optimistic-concurrency failure (stale resourceVersion).
    pub(crate) fn modified(res: &Resource, name: &str) -> Self {
        ApiError {
            details: Some(resource_details(res, name)),
            ..ApiError::new(
                409,
                format!(
                    "Operation cannot be fulfilled on {} {name:?}: the object has been modified; \
                     please apply your changes to the latest version and try again",
                    res.qualified()
                ),
            )
        }
    }

    pub(crate) fn precondition(res: &Resource, name: &str, message: String) -> Self {
        ApiError {
            details: Some(resource_details(res, name)),
            ..ApiError::new(
                409,
                format!(
                    "Operation cannot be fulfilled on {} {name:?}: {message}",
                    res.qualified()
                ),
            )
        }
    }

    pub(crate) fn invalid(res: &Resource, name: &str, errors: &[FieldError]) -> Self {
        let rendered: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let joined = if rendered.len() == 1 {
            rendered[0].clone()
        } else {
            format!("[{}]", rendered.join(", "))
        };
        let causes: Vec<Value> = errors
            .iter()
            .map(|e| json!({"reason": e.reason(), "message": e.message(), "field": e.field}))
            .collect();
        let mut details = resource_details(res, name);
        details["kind"] = json!(res.kind);
        details["causes"] = Value::Array(causes);
        ApiError {
            details: Some(details),
            ..ApiError::new(422, format!("{} {name:?} is invalid: {joined}", res.kind))
        }
    }

    /// 403 from the authorizer, worded like `responsewriters.forbiddenMessage`
    /// (staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go) inside
    /// `errors.NewForbidden`.
    pub(crate) fn forbidden(
        user: &str,
        verb: &str,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: Option<&str>,
    ) -> Self {
        let scope = match namespace {
            Some(ns) => format!("in the namespace {ns:?}"),
            None => "at the cluster scope".to_string(),
        };
        let why = format!(
            "User {user:?} cannot {verb} resource {resource:?} in API group {group:?} {scope}"
        );
        let qualified = match (group, resource.split_once('/')) {
            ("", _) => resource.to_string(),
            (g, Some((r, sub))) => format!("{r}.{g}/{sub}"),
            (g, None) => format!("{resource}.{g}"),
        };
        let message = match name {
            Some(n) => format!("{qualified} {n:?} is forbidden: {why}"),
            None => format!("{qualified} is forbidden: {why}"),
        };
        let mut details = json!({"kind": resource.split('/').next().unwrap_or(resource)});
        if let Some(n) = name {
            details["name"] = json!(n);
        }
        if !group.is_empty() {
            details["group"] = json!(group);
        }
        ApiError {
            details: Some(details),
            ..ApiError::new(403, message)
        }
    }

    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(405, message)
    }

    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        ApiError::new(
            415,
            format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/merge-patch+json, application/strategic-merge-patch+json, \
                 application/apply-patch+yaml (the sandbox API server does not implement {content_type:?})"
            ),
        )
    }

    /// The Status object for this error.
    pub(crate) fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }
}
