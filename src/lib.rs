//! Agentry: a self-hostable server for the Microsoft Graph beta Agent Registry
//! and Copilot admin settings APIs.
//!
//! A request travels through the layers in this order:
//!
//! - [`http`]: routing, extractors (token, body, query), the Graph error envelope.
//! - [`auth`]: signing keys, access tokens and the caller they describe.
//! - [`odata`]: query options parsed into a syntax tree (no SQL, no HTTP).
//! - [`domain`]: resources, validation and the rules of each write.
//! - [`store`]: one storage trait and one implementation per backend; SQL lives only there.
//!
//! [`app`] wires them together; [`seed`] loads a seed file through the domain
//! and the store at start; [`cli`] and [`config`] are the binary's edge.

pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod files;
pub mod http;
pub mod odata;
pub mod seed;
pub mod store;
pub mod tls;
pub mod transfer;
