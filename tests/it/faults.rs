//! Faults checked against the answer, in the style of Jepsen (issue 17).
//!
//! A stream of queries runs on the multi-process cluster (a scheduler and
//! two executors, each its own `quipu` process) while faults are injected
//! at random moments: an executor SIGKILLed (and replaced), an executor
//! paused with SIGSTOP for less or more than the executor timeout, the
//! PostgreSQL source stopped and restarted, the MongoDB source paused, the
//! scheduler killed and restarted. Every answer is compared with the
//! fault-free answer: it must be that answer, or an error that names what
//! failed (the source, the executor, the scheduler) — never another answer,
//! never a hang past [`HANG`].
//!
//! The sources are this test's own (a PostgreSQL server and a SecantusDB
//! server that no other test uses), so stopping them disturbs nothing
//! else. `QUIPU_FAULTS=N` sets how many faulted queries run (default 6, in
//! the test command), `QUIPU_FAULT_SEED` the seed; docs/testing.md has the
//! long run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cluster::{Procs, cluster_client};
use crate::common::{add_lake_source, client, env_number, try_query, write_keyed_table};
use crate::oracle::normalised;
use crate::servers::{MongoServer, PgServer};
use quipu_scheduler::{ClientSession, Engine};

/// A query still running this long after its fault is a hang.
const HANG: Duration = Duration::from_secs(180);

const WORKLOAD: &[(&str, &str)] = &[
    (
        "shuffle join",
        "SELECT a.g, count(*) FROM lake.public.big a JOIN lake.public.big b ON a.k = b.k GROUP BY a.g",
    ),
    (
        "postgres x lake",
        "SELECT c.city, count(*), sum(o.amount) FROM shop.public.orders o \
         JOIN shop.public.customers c ON c.id = o.customer_id \
         JOIN lake.public.big b ON b.k = o.id GROUP BY c.city",
    ),
    (
        "mongodb x lake",
        "SELECT s.qty, count(*) FROM inv.public.stock s JOIN lake.public.big b ON b.k = s.n \
         GROUP BY s.qty",
    ),
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    KillExecutor,
    PauseExecutor { secs: u64 },
    StopPostgres,
    PauseMongo,
    RestartScheduler,
}

impl Fault {
    /// Whether an error is one this fault may cause, naming what failed.
    fn explains(&self, err: &str) -> bool {
        let e = err.to_lowercase();
        match self {
            Fault::KillExecutor | Fault::PauseExecutor { .. } => {
                e.contains("executor") || e.contains("fetch") || e.contains("partition")
            }
            Fault::StopPostgres => e.contains("shop"),
            Fault::PauseMongo => e.contains("inv"),
            Fault::RestartScheduler => e.contains("scheduler"),
        }
    }
}

/// splitmix64: a fixed seed gives the same faults on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid} failed");
}

struct World {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    pg: PgServer,
    mongo: MongoServer,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    write_keyed_table(&dir.path().join("lake"), "big", 4, 250_000).await;
    let pg = PgServer::start();
    pg.psql("postgres", "CREATE DATABASE shop");
    pg.psql(
        "shop",
        "CREATE TABLE customers (id bigint PRIMARY KEY, city text);
         INSERT INTO customers SELECT i, (ARRAY['Lima','Cusco','Arequipa','Puno'])[1 + i % 4]
           FROM generate_series(1, 20000) i;
         CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric(12,2));
         INSERT INTO orders SELECT i, 1 + i % 20000, (i % 1000) / 10.0
           FROM generate_series(1, 200000) i;
         ANALYZE",
    );
    let mongo = MongoServer::start();
    mongo.pymongo(
        "inv",
        "db.stock.insert_many([{'n': i * 7, 'qty': i % 50} for i in range(20000)])",
    );
    let data = dir.path().join("data");
    crate::views::add_pg_source(&data, "shop", pg.port, "shop");
    add_lake_source(&data, &dir.path().join("lake"));
    crate::views::add_mongo_source(&data, "inv", mongo.port, "inv");
    World {
        _dir: dir,
        data,
        pg,
        mongo,
    }
}

async fn on_cluster(w: &World, procs: &Procs) -> Arc<ClientSession> {
    let c = cluster_client(&w.data, procs).await;
    // Enough tasks per stage for both executors to hold part of each.
    try_query(&c, "SET datafusion.execution.target_partitions = 8")
        .await
        .unwrap();
    Arc::new(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_under_faults_are_right_or_name_the_fault() {
    let faults: usize = env_number("QUIPU_FAULTS", 6);
    let seed: u64 = env_number("QUIPU_FAULT_SEED", 17);
    let w = world().await;
    let local_engine = Engine::open(&w.data).unwrap();
    let local = client(&local_engine, "local").await;
    let mut expected = vec![];
    for (name, sql) in WORKLOAD {
        let rows = normalised(
            try_query(&local, sql)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .0,
        );
        assert!(rows.len() > 1, "{name} checks too little: {rows:?}");
        expected.push(rows);
    }
    let mut procs = Procs::start(&w.data, 2);
    let mut c = on_cluster(&w, &procs).await;
    // The fault-free answers on the cluster first.
    for ((name, sql), want) in WORKLOAD.iter().zip(&expected) {
        let got = try_query(&c, sql)
            .await
            .unwrap_or_else(|e| panic!("{name} without a fault: {e}\n{}", procs.logs()));
        assert_eq!(&normalised(got.0), want, "{name} without a fault");
    }

    let mut live: Vec<usize> = (0..procs.executor_count()).collect();
    let mut rng = Rng(seed);
    let (mut right, mut named, mut failures) = (0, 0, vec![]);
    let mut log = vec![];
    for i in 0..faults {
        let q = rng.below(WORKLOAD.len() as u64) as usize;
        let (name, sql) = WORKLOAD[q];
        let fault = match rng.below(6) {
            0 | 1 => Fault::KillExecutor,
            2 => Fault::PauseExecutor {
                // Under or over the executor timeout (6 s in `Procs`).
                secs: [2, 9][rng.below(2) as usize],
            },
            3 => Fault::StopPostgres,
            4 => Fault::PauseMongo,
            _ => Fault::RestartScheduler,
        };
        // Sources are read early in a query: their faults come early.
        let delay = Duration::from_millis(match fault {
            Fault::StopPostgres | Fault::PauseMongo => 50 + rng.below(600),
            _ => 200 + rng.below(2500),
        });
        let victim = live[rng.below(live.len() as u64) as usize];
        let runner = c.clone();
        let started = Instant::now();
        let running = tokio::spawn(async move { try_query(&runner, sql).await });
        tokio::time::sleep(delay).await;
        match fault {
            Fault::KillExecutor => procs.kill_executor(victim),
            Fault::PauseExecutor { secs } => {
                let pid = procs.executor_pid(victim);
                signal(pid, "-STOP");
                tokio::time::sleep(Duration::from_secs(secs)).await;
                signal(pid, "-CONT");
            }
            Fault::StopPostgres => {
                w.pg.stop();
                tokio::time::sleep(Duration::from_secs(1 + rng.below(3))).await;
                w.pg.restart();
            }
            Fault::PauseMongo => {
                signal(w.mongo.pid(), "-STOP");
                tokio::time::sleep(Duration::from_secs(2 + rng.below(4))).await;
                signal(w.mongo.pid(), "-CONT");
            }
            Fault::RestartScheduler => {
                procs.kill_scheduler();
                procs.start_scheduler();
            }
        }
        let outcome = tokio::time::timeout(HANG, running).await;
        let took = started.elapsed();
        let verdict = match outcome {
            Err(_) => {
                failures.push(format!(
                    "#{i} {name} under {fault:?}: no answer after {HANG:?}"
                ));
                "HANG".to_string()
            }
            Ok(joined) => match joined.unwrap() {
                Ok((rows, _)) if normalised(rows.clone()) == expected[q] => {
                    right += 1;
                    "right".into()
                }
                Ok((rows, _)) => {
                    failures.push(format!(
                        "#{i} {name} under {fault:?} after {delay:?}: WRONG ANSWER {:?}, expected {:?}",
                        normalised(rows),
                        expected[q]
                    ));
                    "WRONG".into()
                }
                Err(e) if fault.explains(&e) => {
                    named += 1;
                    format!("error: {}", e.lines().next().unwrap_or_default())
                }
                Err(e) => {
                    failures.push(format!(
                        "#{i} {name} under {fault:?}: an error that does not name the fault: {e}"
                    ));
                    format!("UNCLEAR error: {e}")
                }
            },
        };
        log.push(format!(
            "#{i} {name} | {fault:?} after {delay:?} | {verdict} | {took:?}"
        ));
        // Repair before the next round.
        match fault {
            Fault::KillExecutor => {
                live.retain(|&e| e != victim);
                procs.add_executor();
                live.push(procs.executor_count() - 1);
                procs.wait_live(2);
            }
            Fault::RestartScheduler => {
                procs.wait_live(2);
                c = on_cluster(&w, &procs).await;
            }
            Fault::PauseExecutor { .. } => procs.wait_live(2),
            _ => {}
        }
    }
    eprintln!(
        "{faults} faulted queries (seed {seed}): {right} right, {named} errors naming the fault, {} failures\n{}",
        failures.len(),
        log.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{}\n--- all rounds:\n{}\n{}",
        failures.join("\n"),
        log.join("\n"),
        procs.scheduler_log()
    );
}
