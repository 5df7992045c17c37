//! HTTP tests against a real server on a loopback port, plus the storage
//! conformance suite. One test binary keeps linking fast.

mod a2a;
mod audit;
mod batch;
mod collections;
mod connections;
mod consistency;
mod console;
mod control;
mod conventions;
mod copilot;
mod delta;
mod durability;
mod etags;
mod examples;
mod identity;
mod instances;
mod manifests;
mod migration;
mod odata;
mod openapi;
mod packages;
mod paging;
mod permissions;
mod pg;
mod postgres;
mod readme;
mod registrations;
mod startup;
mod store;
mod subscriptions;
mod support;
mod tenancy;
mod transfer;
mod watch;
mod webdriver;
