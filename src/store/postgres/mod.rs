//! PostgreSQL storage (in progress): the OData translation only.

#[allow(dead_code)]
mod query;
