//! The environments, one module each. Add one by adding a module and listing it in [`all`].

pub mod production;
pub mod sandbox;

use crate::environment::Environment;

/// Every environment, in a fixed order.
pub fn all() -> Vec<Environment> {
    vec![production::environment(), sandbox::environment()]
}

/// The environment called `name`.
pub fn by_name(name: &str) -> Option<Environment> {
    all().into_iter().find(|e| e.name == name)
}

/// The names of every environment, for `--help` and error messages.
pub fn names() -> Vec<String> {
    all().into_iter().map(|e| e.name).collect()
}
