//! `orfeas worker` against a real `nats-server` (Debian's package; `scripts/test.sh` installs
//! it, `ORFEAS_NATS_SERVER` names another binary), started here on a free loopback port with a
//! temporary store. Jobs are submitted through `orfeas_server::cluster::Broker`, the API the
//! front end uses; workers are real `orfeas worker` processes, killed for real.

mod capabilities;
mod front;
mod recovery;
mod stores;
mod studio;
mod support;
mod worker;
