//! A PgTicketStore on its own throwaway PostgreSQL server (stopped when dropped).

#![allow(dead_code)]

use std::ops::Deref;
use steward_pgstore::PgTicketStore;
use steward_testbed::LocalPostgres;

pub struct Pg {
    // Dropped before the server stops.
    pub store: PgTicketStore,
    pub server: LocalPostgres,
}

impl Deref for Pg {
    type Target = PgTicketStore;
    fn deref(&self) -> &PgTicketStore {
        &self.store
    }
}

pub fn pg() -> Pg {
    let server = LocalPostgres::start().expect("start PostgreSQL");
    let store = PgTicketStore::connect(&server.url()).expect("connect");
    Pg { store, server }
}

/// A plain client on the same database, to look at what is committed.
pub fn client(pg: &Pg) -> postgres::Client {
    postgres::Client::connect(&pg.server.url(), postgres::NoTls).expect("client")
}

pub fn count(c: &mut postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).expect("count").get(0)
}
