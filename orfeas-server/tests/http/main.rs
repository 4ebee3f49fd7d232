//! orfeas-server over real HTTP and WebSocket: each test starts `orfeas_server::serve` on
//! 127.0.0.1:0 with its own data directory and talks to it as a client would.

mod support;

mod backgrounds;
mod batch;
mod cancel;
mod crash;
mod download;
mod limits;
mod methods;
mod objects;
mod operation;
mod restart;
mod routes;
mod traversal;
mod ws;
