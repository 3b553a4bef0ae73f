//! Quipu's integration tests: one binary, one module per area.

mod common;
mod demo;
mod deploy;
mod faults;

mod cache;
mod catalog;
mod cli;
mod clients;
mod cluster;
mod differential;
mod expressions;
mod flight;
mod forecast;
mod generator;
mod lake;
mod lake_write;
mod live_faults;
mod oracle;
mod pgwire;
mod pushdown;
mod report;
mod s3;
mod secrets;
mod security;
mod semantics;
mod servers;
mod shell;
mod slt;
mod views;
